"""The spiking network: the learning rule as event code, checked against numpy.

The simulation's applied weight and bias changes for one example are compared
with the update of specification 1.9-1.10 computed here, in numpy, from the
potentials and PSP traces recorded by StateMonitors (not from the network's own
accumulators), so both the window averaging and the event code are checked.
"""

from __future__ import annotations

import brian2
import numpy as np
import pytest
from brian2 import SpikeMonitor, StateMonitor, ms
from conftest import mnist_dir

from brian_dendrite.datasets import load_mnist
from brian_dendrite.model import PhaseSchedule, load_model
from brian_dendrite.simulation import SpikingNetwork

#: Window sums of ~20 float64 values and one multiply: agreement to 1e-9 relative
#: (absolute 1e-12) leaves room only for rounding, not for a wrong window or factor.
RTOL, ATOL = 1e-9, 1e-12


def _sigma(x):
    return 1 / (1 + np.exp(-x))


@pytest.fixture(scope="module")
def mnist_small():
    train = load_mnist("train", data_dir=mnist_dir())
    return train.images[:50], train.labels[:50]


def _record(net):
    mons = {}
    for group in net.layers:
        variables = ["s_out"]
        if group is not net.input:
            variables += ["V_soma"]
        if group in net.hidden:
            variables += ["V_apical"]
        mon = StateMonitor(group, variables, record=True, when="before_thresholds", name=f"rec_{group.name}")
        net.net.add(mon)
        mons[group.name] = mon
    return mons


def _expected_updates(net, mons, schedule, label):
    params = net.params
    cell = params.cell
    (f_start, f_len, *_), (t_start, t_len, *_) = schedule.phase_table[:2]
    win = int(params.protocol.window_length / cell.dt)
    fwd = slice(f_start + f_len - win, f_start + f_len)
    tgt = slice(t_start + t_len - win, t_start + t_len)
    eta = params.network.learning_rates
    phi = float(cell.phi_max * ms)  # spikes per ms
    P_hidden, P_final = 20 / phi, 20 / phi**2
    updates = []
    skip = params.network.skip_psp_below
    for m, (pre, post) in enumerate(zip(net.layers[:-1], net.layers[1:], strict=True)):
        s_f = mons[pre.name].s_out[:, fwd].mean(axis=1)
        s_f = np.where(s_f > skip, s_f, 0.0)  # presynaptic neurons at or below the floor do not update
        V_f = mons[post.name].V_soma[:, fwd].mean(axis=1)
        if post is net.output:
            # un-normalised form of specification 1.9: E = (phi* - phi_max sigma(V_f)) * -k_D phi_max sigma'(V_f)
            phi_t = (phi * _sigma(mons[post.name].V_soma[:, tgt])).mean(axis=1)
            E = (phi_t - phi * _sigma(V_f)) * -cell.k_D * phi * _sigma(V_f) * (1 - _sigma(V_f))
            P = P_final
        else:
            alpha_f = _sigma(mons[post.name].V_apical[:, fwd].mean(axis=1))
            alpha_t = _sigma(mons[post.name].V_apical[:, tgt].mean(axis=1))
            E = (alpha_t - alpha_f) * -cell.k_B * phi * _sigma(V_f) * (1 - _sigma(V_f))
            P = P_hidden
        updates.append((-eta[m] * P * np.outer(E, s_f), -eta[m] * P * E))
    return updates


@pytest.fixture
def use_target(request):
    old = brian2.prefs.codegen.target
    brian2.prefs.codegen.target = request.param
    yield request.param
    brian2.prefs.codegen.target = old


# Deeper networks only on numpy: every architecture costs a fresh Cython compile.
# skip: None = the default skip_psp_below; 0.05 (spikes/ms) skips many active inputs too, so that
# the skipping itself is checked (the skipped rows must be exactly unchanged, the rest exact).
@pytest.mark.parametrize(
    "model, hidden, use_target, skip",
    [
        ("one_hidden", (40,), "numpy", None),
        ("one_hidden", (40,), "cython", None),
        ("two_hidden", (30, 20), "numpy", None),
        ("no_hidden", (), "numpy", None),
        ("one_hidden", (40,), "numpy", 0.05),
        ("one_hidden", (40,), "numpy", 0.0),
    ],
    indirect=["use_target"],
)
def test_applied_update_equals_numpy_rule(use_target, mnist_small, model, hidden, skip):
    base = load_model(model)
    rates = base.network.learning_rates
    network = base.network.replace(hidden=hidden, learning_rates=rates)
    if skip is not None:
        network = network.replace(skip_psp_below=skip)
    params = base.replace(network=network)
    images, labels = mnist_small
    net = SpikingNetwork(params, seed=3, chunk_size=1)
    # Carry some state into the example (the paper does not reset between examples).
    net.train_chunk(images[:1], labels[:1], key=(0, 0))
    before = net.get_weights()
    mons = _record(net)
    rng = np.random.default_rng(np.random.SeedSequence([net.seed, 0x5C, 0, 1]))
    schedule = PhaseSchedule.training(labels[1:2], params.protocol, params.cell.dt, rng,
                                      capacity=net._train_capacity)
    net.train_chunk(images[1:2], labels[1:2], key=(0, 1))
    after = net.get_weights()
    assert len(mons["output"].t) == schedule.n_steps  # the schedule the test rebuilt is the one that ran
    expected = _expected_updates(net, mons, schedule, labels[1])
    for m, (dW, db) in enumerate(expected):
        applied_W = after.W[m] - before.W[m]
        applied_b = after.b[m] - before.b[m]
        assert np.abs(dW).max() > 0, f"layer {m}: the rule predicts no change; the test would be vacuous"
        np.testing.assert_allclose(applied_W, dW, rtol=RTOL, atol=ATOL, err_msg=f"W[{m}]")
        np.testing.assert_allclose(applied_b, db, rtol=RTOL, atol=ATOL, err_msg=f"b[{m}]")
        if skip:
            s_f = np.asarray(net.layers[m].s_mean_f[:])
            skipped = s_f <= skip
            assert skipped.any() and (~skipped).any(), "the skip threshold must split the presynaptic neurons"
            assert np.all(applied_W[:, skipped] == 0), f"W[{m}]: skipped presynaptic neurons changed"
            assert np.all(np.abs(applied_W[:, ~skipped]).max(axis=0) > 0)
    # feedback weights are fixed
    for y0, y1 in zip(before.Y, after.Y, strict=True):
        np.testing.assert_array_equal(y0, y1)


def test_weights_round_trip_into_simulation(numpy_target):
    params = load_model("one_hidden")
    params = params.replace(network=params.network.replace(hidden=(7,)))
    net = SpikingNetwork(params, seed=1, chunk_size=1)
    w = net.get_weights()
    w.W[0][3, 5] = 1.25
    w.b[1][2] = -0.5
    net.set_weights(w)
    back = net.get_weights()
    assert back.W[0][3, 5] == 1.25 and back.b[1][2] == -0.5
    syn = net.forward_synapses[0]
    k = np.flatnonzero((syn.i[:] == 5) & (syn.j[:] == 3))
    assert syn.w[k] == 1.25


def test_rejects_mismatched_weights(numpy_target):
    params = load_model("one_hidden")
    small = params.replace(network=params.network.replace(hidden=(7,)))
    other = SpikingNetwork(small.replace(network=small.network.replace(hidden=(8,))), seed=1, chunk_size=1)
    with pytest.raises(ValueError, match="layer sizes"):
        SpikingNetwork(small, weights=other.get_weights())


def test_symmetric_feedback_is_transposed_forward_weights(numpy_target, mnist_small):
    """feedback='symmetric': V_apical = W_out^T s_out (through the output synapses' on_post pathway)."""
    base = load_model("one_hidden")
    params = base.replace(network=base.network.replace(hidden=(12,), feedback="symmetric"))
    images, labels = mnist_small
    net = SpikingNetwork(params, seed=2, chunk_size=1)
    W_out = net.get_weights().W[1]
    np.testing.assert_array_equal(net.get_weights().Y[0], W_out.T)
    hid = StateMonitor(net.hidden[0], "V_apical", record=True, when="before_thresholds")
    out = StateMonitor(net.output, "s_out", record=True, when="before_thresholds")
    net.net.add(hid, out)
    net.train_chunk(images[:1], labels[:1])
    last = net.last_schedule.n_steps - 1  # the weights change at the very last step
    expected = W_out.T @ out.s_out[:, :last]
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(hid.V_apical[:, :last], expected, rtol=1e-9, atol=1e-12)
    # after learning the feedback follows the new weights
    np.testing.assert_array_equal(net.get_weights().Y[0], net.get_weights().W[1].T)
    assert not np.array_equal(net.get_weights().W[1], W_out)


def test_noisy_symmetric_feedback(numpy_target, mnist_small):
    """noisy_symmetric: V_apical = (W_out + noise)^T s_out with the noise redrawn at each update (sd 0.05)."""
    base = load_model("one_hidden")
    params = base.replace(network=base.network.replace(hidden=(40,), feedback="noisy_symmetric"))
    images, labels = mnist_small
    net = SpikingNetwork(params, seed=2, chunk_size=2)
    w0 = net.get_weights()
    noise0 = net.feedback_noise()
    # 400 values of N(0, 0.05): the sample sd lies within 15 % of 0.05 with overwhelming probability
    assert abs(noise0.std() - 0.05) < 0.0075
    np.testing.assert_allclose(w0.Y[0], w0.W[1].T + noise0)
    hid = StateMonitor(net.hidden[0], "V_apical", record=True, when="before_thresholds")
    out = StateMonitor(net.output, "s_out", record=True, when="before_thresholds")
    net.net.add(hid, out)
    net.train_chunk(images[:1], labels[:1])
    last = net.last_schedule.n_steps - 1
    expected = (w0.W[1] + noise0.T).T @ out.s_out[:, :last]
    np.testing.assert_allclose(hid.V_apical[:, :last], expected, rtol=1e-9, atol=1e-12)
    noise1 = net.feedback_noise()
    assert not np.allclose(noise1, noise0)  # redrawn at the update
    assert abs(noise1.std() - 0.05) < 0.0075


def test_zeroed_spike_generators_are_refused_and_reset_state_keeps_spiking(numpy_target, mnist_small):
    params = load_model("one_hidden")
    params = params.replace(network=params.network.replace(hidden=(20,)))
    images, labels = mnist_small
    net = SpikingNetwork(params, seed=4, chunk_size=1)
    state = net.get_state()
    zeroed = {k: 0 * v for k, v in state.items()}
    with pytest.raises(ValueError, match=r"input\.spike_u.*\(0, 1\]"):
        net.set_state(zeroed)
    net.train_chunk(images[:1], labels[:1], key=(0, 0))
    net.reset_state()
    after = net.get_state()
    assert all(np.all(after[k] == 0) for k in after if k.endswith(("V_soma", "y_L", "x_basal_L", "s_mean_f")))
    assert all(np.all((after[k] > 0) & (after[k] <= 1)) for k in after if k.endswith(".spike_u"))
    before = net.get_weights()
    spikes = SpikeMonitor(net.hidden[0], name="reset_spikes")
    net.net.add(spikes)
    net.train_chunk(images[1:2], labels[1:2], key=(0, 1))
    assert len(spikes.i) > 0
    assert np.abs(net.get_weights().W[0] - before.W[0]).max() > 0


def test_redrawn_spike_generators_make_repeats_independent(numpy_target, mnist_small):
    params = load_model("one_hidden")
    params = params.replace(network=params.network.replace(hidden=(20,)))
    images, labels = mnist_small
    net = SpikingNetwork(params, seed=4, chunk_size=1)
    net.train_chunk(images[:1], labels[:1], key=(0, 0))
    state, w0 = net.get_state(), net.get_weights()
    results = []
    for redraw in (None, None, (1,), (2,)):
        net.set_state(state)
        net.set_weights(w0)
        if redraw is not None:
            net.redraw_spike_generators(redraw)
        net.train_chunk(images[1:2], labels[1:2], key=(0, 1))  # the same Brian2 seed every time
        results.append(net.get_weights().W[0])
    np.testing.assert_array_equal(results[0], results[1])  # same state and seed: identical
    assert not np.array_equal(results[0], results[2]) and not np.array_equal(results[2], results[3])


def test_test_refuses_an_empty_batch(numpy_target):
    """Zero test images is a clear error, before anything runs (it failed inside np.concatenate)."""
    params = load_model("one_hidden", network={"hidden": [5]})
    net = SpikingNetwork(params, seed=0, chunk_size=2, test_chunk_size=2)
    with pytest.raises(ValueError, match="0 test images"):
        net.test(np.zeros((0, 784)), np.zeros(0, dtype=int))

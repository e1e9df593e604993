"""The NEURON network against the Brian2 network: feedback and plateau variants, two
hidden layers, the test phase, every model file, and a longer training run (slow).

Same principle and tolerance as tests/test_nrn.py: everything the Brian2 run draws at
random (spikes of every layer, plateau offsets, feedback noise) is replayed in NEURON,
so the two runs are the same computation and agree to round-off; the tests assert
``STRICT`` (1e-9 relative), the report the Rallpack-style ``TOLERANCES``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from brian2 import ms
from conftest import mnist_dir

from brian_dendrite.model import (
    CellParameters,
    PhaseSchedule,
    ProtocolParameters,
    available_models,
    initial_weights,
    load_model,
)
from brian_dendrite.nrn import STRICT, learning_crosscheck, load_mechanisms, test_crosscheck
from brian_dendrite.nrn.crosscheck import default_learning_params, learning_variants, small_model


@pytest.fixture(scope="module")
def nrn():
    pytest.importorskip("neuron")
    return load_mechanisms()


def _ok(*errors):
    return all(e["rel_rms"] < STRICT["rel_rms"] and e["rel_max"] < STRICT["rel_max"] for e in errors)


def _mnist(k, split="train"):
    from brian_dendrite.datasets import load_mnist

    data = load_mnist(split, data_dir=mnist_dir(), download=False)
    return data.images[:k], data.labels[:k]


def _assert_learning_agrees(res):
    for lay in res["layers"]:
        assert lay["max_abs_dW_brian2"] > 1e-3  # something was learned in every layer
        assert _ok(lay["dW"], lay["db"]), lay
    assert all(d < STRICT["rel_max"] for d in res["bias_drift"]), res["bias_drift"]
    assert res["passed"]


# ---------------------------------------------------------------- learning: variants and two hidden layers
@pytest.mark.parametrize("variant", ["symmetric", "noisy_symmetric", "stochastic_plateau"])
def test_learning_variant_crosscheck(nrn, variant):
    """Symmetric feedback (Y = W^T through the output synapses), its noisy form (noise redrawn at every
    update, replayed from Brian2) and stochastic plateau times (offsets replayed): 784-5-10, 2 examples."""
    params = learning_variants(5, CellParameters())[variant]
    images, labels = _mnist(2)
    res = learning_crosscheck(params, images, labels, seed=4, trajectory=True)
    _assert_learning_agrees(res)
    if variant in ("symmetric", "noisy_symmetric"):
        assert _ok(res["dY"])
    assert res["stochastic_plateau"] == (variant == "stochastic_plateau")


@pytest.mark.parametrize("kernel", ["full", "truncated"])
def test_two_hidden_layers_crosscheck(nrn, kernel):
    """784-8-6-10 (broadcast feedback to both hidden layers), 2 examples."""
    params = default_learning_params((8, 6)).replace(cell=CellParameters(kernel=kernel))
    images, labels = _mnist(2)
    res = learning_crosscheck(params, images, labels, seed=2, trajectory=True)
    assert res["layer_sizes"] == [784, 8, 6, 10] and len(res["layers"]) == 3
    _assert_learning_agrees(res)


# ---------------------------------------------------------------- the test phase
@pytest.mark.parametrize("hidden,kernel", [((8,), "full"), ((6, 5), "truncated")])
def test_test_phase_crosscheck(nrn, hidden, kernel):
    """Two 250-ms test images (state zeroed after each): output V_soma step by step, the window-mean
    readouts and the predicted classes agree."""
    params = default_learning_params(hidden).replace(cell=CellParameters(kernel=kernel))
    weights = initial_weights(params, np.random.default_rng(3))
    images, labels = _mnist(2, "test")
    res = test_crosscheck(params, weights, images, labels, seed=3)
    assert res["n_steps"] == 500 and res["spikes"]["output"] > 50 and res["spikes"]["input"] > 1000
    assert _ok(res["V_soma"], res["V_mean"], res["rate_mean"]), res
    assert res["same_predictions"] and res["error"]["brian2"] == res["error"]["neuron"]
    assert res["passed"]


def test_test_reset_zeroes_the_state(nrn):
    """After the last step of a test phase the soma, the dendrites and the own trace are zeroed."""
    from brian_dendrite.nrn import NrnModel

    cell, protocol = CellParameters(), ProtocolParameters()
    schedule = PhaseSchedule.test(2, protocol, cell.dt)
    model = NrnModel(cell, protocol, schedule, test_reset=True)
    c = model.add_cell("pyramidal", basal_bias=0.5, forced=True)
    model.force_spikes(c, [240, 249])
    model.connect_fixed(model.add_source([245, 249]), c.dend_b, 1.0)
    model.connect_fixed(model.add_source([248]), c.dend_a, 1.0)
    v, xb, xa, y = (model.record(ref) for ref in (c.soma(0.5)._ref_v, c.dend_b._ref_xL, c.dend_a._ref_xL,
                                                   c.cell._ref_yL))
    model.run()
    v, xb, xa, y = (np.asarray(r) for r in (v, xb, xa, y))
    assert v[250] > 0.1 and xb[250] > 0.5 and xa[250] > 0.5 and y[250] > 0.3  # after step 249
    assert xb[251] == 0 and xa[251] == 0 and y[251] == 0  # zeroed, then decayed: still 0
    # the soma restarts from 0 towards the bias: one exponential-Euler step of k_B * b_basal
    a = float((cell.g_L + cell.g_B) * cell.dt)
    assert v[251] == pytest.approx(0.5 * float(cell.g_B * cell.dt) / a * (1 - np.exp(-a)), rel=1e-12)


# ---------------------------------------------------------------- NEURON's own draws
def test_noisy_symmetric_noise_is_redrawn(nrn):
    """NEURON alone: the feedback noise is redrawn at every update, N(0, symmetric_noise)."""
    from brian_dendrite.nrn import NrnNetwork, bernoulli_input_steps, initial_feedback_noise

    params = learning_variants(20, CellParameters())["noisy_symmetric"]
    images, labels = _mnist(2)
    rng = np.random.default_rng(5)
    schedule = PhaseSchedule.training(labels, params.protocol, params.cell.dt, rng)
    inputs = bernoulli_input_steps(images, schedule, float(params.cell.phi_max * params.cell.dt), rng)
    w0 = initial_weights(params, np.random.default_rng(6))
    net = NrnNetwork(params, w0, schedule, inputs, seed=5)
    first = initial_feedback_noise(params, 5)
    np.testing.assert_array_equal(net.feedback_noise(), first)
    net.run()
    noise = net.feedback_noise()
    assert noise.shape == (20, 10) and not np.any(noise == first)
    sd = params.network.symmetric_noise  # 200 draws: 5-sigma bounds of the sample mean and sd
    assert abs(noise.mean()) < 5 * sd / np.sqrt(200)
    assert abs(noise.std() - sd) < 5 * sd / np.sqrt(400)
    w1 = net.get_weights()
    np.testing.assert_array_equal(w1.Y[0], w1.W[-1].T + noise)


def test_stochastic_plateau_offsets_drawn_in_neuron(nrn):
    """NEURON alone: offsets min(floor(|N(0, sd)|), max) steps, redrawn at every phase end."""
    from brian_dendrite.nrn import NrnModel

    cell, protocol = CellParameters(), ProtocolParameters(stochastic_plateau=True)
    phases = [p for k in range(20) for p in (("forward", 50 * ms, k, 0), ("target", 50 * ms, k, 0))]
    schedule = PhaseSchedule.from_phases(phases, protocol, dt=cell.dt)
    model = NrnModel(cell, protocol, schedule, seed=9)
    cells = [model.add_cell("pyramidal", basal_bias=0.3) for _ in range(40)]
    recs = [model.record(c.cell._ref_offset) for c in cells]
    plateaus = [model.record(c.cell._ref_nplateaus) for c in cells]
    model.run()
    # the offset of phase k (set at the end of phase k - 1) is held at the phase's start
    starts = schedule.phase_table[1:, 0]
    draws = np.concatenate([np.asarray(r)[starts + 1] for r in recs]).astype(int)
    assert len(draws) == 40 * 39
    sd, top = float(protocol.plateau_offset_sd / cell.dt), int(protocol.plateau_offset_max / cell.dt)
    edges = np.arange(top + 1) / sd
    folded = np.array([math.erf(x / math.sqrt(2)) for x in edges])  # P(|N(0, 1)| < x)
    p = np.append(np.diff(folded), 1 - folded[-1])
    counts = np.bincount(draws, minlength=top + 1)
    assert len(counts) == top + 1
    n = len(draws)
    assert np.all(np.abs(counts - n * p) < 5 * np.sqrt(n * p * (1 - p))), (counts, n * p)
    assert all(np.asarray(r)[-1] == 40 for r in plateaus)  # one plateau per forward and target phase


def test_input_cells_spike_inside_neuron(nrn):
    """Input cells driven by the pixels (``input_steps=None``): Bernoulli at ``phi_max * pixel`` per step
    of the current image, silent for blank pixels."""
    from brian_dendrite.nrn import NrnNetwork

    params = default_learning_params(2)
    images, _ = _mnist(2, "test")
    schedule = PhaseSchedule.test(2, params.protocol, params.cell.dt)
    net = NrnNetwork(params, initial_weights(params, np.random.default_rng(0)), schedule, None, seed=8, images=images)
    counts = [net.model.record(c.cell._ref_nspikes) for c in net.layers["input"]]
    net.run()
    counts = np.array([np.asarray(r) for r in counts])  # (784, n_steps + 2)
    p_max = float(params.cell.phi_max * params.cell.dt)
    for k, (a, b) in enumerate(((0, 250), (250, 500))):
        n = counts[:, b + 1] - counts[:, a + 1]  # spikes in steps a .. b - 1 (bookkeeping shows at index + 2)
        p = p_max * images[k]
        assert np.all(n[p == 0] == 0)
        mean, sd = 250 * p.sum(), np.sqrt(250 * np.sum(p * (1 - p)))
        assert abs(n.sum() - mean) < 5 * sd, (n.sum(), mean, sd)
    assert len({tuple(r[250:260]) for r in counts[images[0] > 0.9]}) > 5  # independent streams


# ---------------------------------------------------------------- every model file
@pytest.mark.parametrize("name", available_models())
def test_every_model_file_runs_in_neuron(nrn, name):
    """Each shipped model (hidden layers of 4 neurons) builds and learns one example in NEURON, freely
    spiking, or is refused with the reason, exactly where the Brian2 spiking network refuses it."""
    from brian_dendrite.nrn import NrnNetwork, bernoulli_input_steps, check_nrn_supported
    from brian_dendrite.simulation._build import check_supported

    params = small_model(load_model(name), 4)
    try:
        check_supported(params)
        brian2_ok = True
    except NotImplementedError:
        brian2_ok = False
    if not brian2_ok:
        with pytest.raises(NotImplementedError, match="Brian2"):
            check_nrn_supported(params)
        return
    images, labels = _mnist(1)
    rng = np.random.default_rng(1)
    schedule = PhaseSchedule.training(labels, params.protocol, params.cell.dt, rng)
    inputs = bernoulli_input_steps(images, schedule, float(params.cell.phi_max * params.cell.dt), rng)
    w0 = initial_weights(params, np.random.default_rng(2))
    net = NrnNetwork(params, w0, schedule, inputs, seed=1)
    net.run()
    w1 = net.get_weights()
    w1.check_finite()
    assert any(np.any(a != b) for a, b in zip(w1.b, w0.b, strict=True))
    assert net.model.clock.nlearn == 1


@pytest.mark.parametrize("change,reason", [
    ({"feedback_spiking": False}, "rate model"),
    ({"feedback": "symmetric", "hidden": (4, 3), "learning_rates": (0.2, 0.2, 0.1)}, "one hidden layer"),
])
def test_unsupported_networks_name_the_reason(nrn, change, reason):
    from brian_dendrite.nrn import NrnNetwork

    params = default_learning_params(4)
    params = params.replace(network=params.network.replace(**change))
    weights = initial_weights(params, np.random.default_rng(0)) if "hidden" not in change else None
    schedule = PhaseSchedule.from_phases([("forward", 60 * ms, 0, 0)], ProtocolParameters())
    with pytest.raises(NotImplementedError, match=reason):
        NrnNetwork(params, weights, schedule, [np.array([], dtype=int)] * 784)


# ---------------------------------------------------------------- a longer training run
@pytest.mark.slow
def test_longer_training_crosscheck(nrn):
    """784-20-10 on 30 MNIST examples: weights and the bias trajectory still agree to round-off."""
    images, labels = _mnist(30)
    res = learning_crosscheck(default_learning_params(20), images, labels, seed=0, trajectory=True)
    assert len(res["bias_drift"]) == 30
    _assert_learning_agrees(res)


@pytest.mark.slow
def test_free_running_runs_agree_in_distribution(nrn):
    """Own hidden and output spikes in each simulator (inputs shared): the weight changes of Brian2 and
    NEURON are as alike as those of two NEURON runs (a loose statistical check, see docs/neuron.rst)."""
    from brian_dendrite.nrn.crosscheck import free_running_comparison

    images, labels = _mnist(20)
    res = free_running_comparison(default_learning_params(20), images, labels, seed=0, neuron_seeds=(1, 2, 3))
    for lay in res["layers"]:
        assert np.mean(lay["corr_brian2_neuron"]) > 0.9 * np.mean(lay["corr_neuron_neuron"]), lay
        assert all(0.8 < r < 1.25 for r in lay["norm_ratio"]), lay

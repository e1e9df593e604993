"""The public plugin API (brian_dendrite.cells): factories, the learning rule on user-built groups, bad input.

The learning-rule test follows tests/test_network.py: the weight and bias changes
applied by the event code are compared with the update of specification 1.9-1.10
computed here in numpy from potentials and PSPs recorded by StateMonitors.
"""

from __future__ import annotations

import doctest

import brian2
import numpy as np
import pytest
from brian2 import EventMonitor, Hz, Network, PoissonGroup, SpikeMonitor, StateMonitor, TimedArray, ms, mV

import brian_dendrite
from brian_dendrite import (
    CellParameters,
    dendritic_synapses,
    input_neurons,
    learning_rule,
    output_neurons,
    phase_schedule,
    pyramidal_neurons,
    rate_model,
    steady_state,
)
from brian_dendrite.model import FORWARD, IDLE, TARGET, ModelParameters, ParameterError, PhaseSchedule
from brian_dendrite.rate import RateNetwork

#: As in tests/test_network.py: window sums of ~20 float64 values and one multiply.
RTOL, ATOL = 1e-9, 1e-12

PHASES = [("forward", 60 * ms, 1), ("target", 60 * ms, 1)]


def _sigma(x):
    return 1 / (1 + np.exp(-x))


# --- the factories build what they document -------------------------------------------------------


def test_public_names_are_exported_from_the_package():
    for name in ("pyramidal_neurons", "output_neurons", "input_neurons", "dendritic_synapses", "learning_rule",
                 "steady_state", "rate_model", "phase_schedule", "SITES"):
        assert name in brian_dendrite.__all__
        assert getattr(brian_dendrite, name) is getattr(brian_dendrite.cells, name)
    # the exports that were there before stay
    for name in ("CellParameters", "ModelParameters", "load_model", "ParameterError"):
        assert name in brian_dendrite.__all__


def test_groups_without_phases_have_only_spikes(numpy_target):
    hid = pyramidal_neurons(4)
    out = output_neurons(3)
    assert set(hid.events) == {"spike", "phase_end"}
    assert set(out.events) == {"spike", "phase_end"}
    for var in ("V_soma", "V_basal", "V_apical", "b_basal", "c_apical", "rate", "s_out", "alpha_f", "alpha_t"):
        assert var in hid.variables, var
    assert "V_apical" not in out.variables and "g_E" in out.variables
    assert brian2.have_same_dimensions(out.g_E, 1 / ms)
    assert brian2.have_same_dimensions(hid.rate, Hz)


def test_phases_define_plateau_and_learning_events(numpy_target):
    hid = pyramidal_neurons(4, phases=PHASES, plateau=True)
    assert set(hid.events) == {"spike", "phase_end", "plateau", "learn", "learn_pre"}
    no_plateau = pyramidal_neurons(4, phases=PHASES)
    assert "plateau" not in no_plateau.events


def test_phase_schedule_ends_in_an_endless_idle_phase():
    sched = phase_schedule(PHASES)
    assert sched.n_steps == 121
    assert list(sched.phase[[0, 59, 60, 119, 120]]) == [FORWARD, FORWARD, TARGET, TARGET, IDLE]
    assert sched.steps_left[119] == 0 and sched.steps_left[120] > 10**6
    assert list(sched.label[:120]) == [1] * 120
    # a TimedArray of codes and a PhaseSchedule give the same phases
    codes = TimedArray(np.repeat([FORWARD, TARGET], 60), dt=1 * ms)
    np.testing.assert_array_equal(phase_schedule(codes).phase, sched.phase)
    again = phase_schedule(PhaseSchedule.from_phases([("forward", 60, 0, 1), ("target", 60, 0, 1)],
                                                     brian_dendrite.ProtocolParameters()))
    np.testing.assert_array_equal(again.steps_left, sched.steps_left)
    assert phase_schedule(None).n_steps == 1


def test_plateaus_follow_the_apical_potential(numpy_target):
    """With a constant apical bias, alpha = sigma(bias) at the end of both phases."""
    hid = pyramidal_neurons(3, phases=[("forward", 50 * ms), ("target", 50 * ms)], plateau=True)
    hid.c_apical = [-1.0, 0.0, 2.0]
    mon = EventMonitor(hid, "plateau", variables=["alpha_f", "alpha_t"], when="after_synapses")
    Network(hid, mon).run(100 * ms)
    assert list(mon.t / ms) == [49.0] * 3 + [99.0] * 3
    np.testing.assert_allclose(hid.alpha_f[:], _sigma(np.array([-1.0, 0.0, 2.0])), rtol=1e-12)
    np.testing.assert_allclose(hid.alpha_t[:], _sigma(np.array([-1.0, 0.0, 2.0])), rtol=1e-12)


@pytest.mark.parametrize("site", ["basal", "apical", "soma"])
def test_synapses_deliver_the_kernel_to_their_site(numpy_target, site):
    """One spike of weight w adds w * kappa(t) to psp_<site> (kappa integrates to 1)."""
    cell = CellParameters()
    hid = pyramidal_neurons(2, cell, somatic_input=True)
    src = brian2.SpikeGeneratorGroup(1, [0], [5] * ms, dt=cell.dt)
    syn = dendritic_synapses(src, hid, site, weights=[0.5, 2.0])
    mon = StateMonitor(hid, f"psp_{site}", record=True)
    Network(hid, src, syn, mon).run(60 * ms)
    psp = getattr(mon, f"psp_{site}")
    # the kernel's integral (per ms) is 1: the sum over steps of kappa(t) dt
    np.testing.assert_allclose(psp.sum(axis=1) * float(cell.dt / ms), [0.5, 2.0], rtol=0.02)
    others = [s for s in ("basal", "apical", "soma") if s != site]
    assert np.all(getattr(hid, f"psp_{others[0]}")[:] == 0)


def test_weight_matrix_is_post_by_pre(numpy_target):
    src = PoissonGroup(3, 10 * Hz, dt=1 * ms)
    hid = pyramidal_neurons(2)
    W = np.arange(6.0).reshape(2, 3)  # W[post, pre], as Weights.W
    syn = dendritic_synapses(src, hid, "basal", weights=W)
    np.testing.assert_array_equal(np.asarray(syn.w[1, 0]), [W[0, 1]])
    np.testing.assert_array_equal(np.asarray(syn.w[2, 1]), [W[1, 2]])


def test_somatic_input_shifts_the_leak_reversal():
    """The rate abstraction: the soma relaxes to (g_B V_basal + g_A V_apical) / (g_L + g_B + g_A)."""
    cell = CellParameters(g_A=0.05 / ms)
    V, rate = steady_state([0.0, 2.0], 1.0, cell)
    expected = (0.6 * np.array([0.0, 2.0]) + 0.05 * 1.0) / 0.75
    np.testing.assert_allclose(V, expected, rtol=1e-12)
    np.testing.assert_allclose(rate / Hz, 200 * _sigma(expected), rtol=1e-12)
    V_out, _ = steady_state(1.0, kind="output", g_E=1 / ms)
    assert V_out == pytest.approx((0.6 * 1.0 + 8.0) / 1.7)


def test_spiking_soma_reaches_the_rate_abstraction(numpy_target):
    """A pyramidal neuron with constant dendrites settles to steady_state's V_soma (10 time constants)."""
    cell = CellParameters(g_A=0.05 / ms)
    hid = pyramidal_neurons(3, cell)
    hid.b_basal = [-1.0, 0.5, 3.0]
    hid.c_apical = 1.0
    Network(hid).run(50 * ms)
    V, _ = steady_state(np.array([-1.0, 0.5, 3.0]), 1.0, cell)
    np.testing.assert_allclose(hid.V_soma[:], V, rtol=1e-6)


def test_rate_model_is_the_rate_network():
    net = rate_model(ModelParameters(), rng=np.random.default_rng(0))
    assert isinstance(net, RateNetwork)


def test_docstring_examples_run(numpy_target):
    from brian_dendrite.cells import _neurons, _rate

    for module in (_neurons, _rate):
        result = doctest.testmod(module, raise_on_error=False, verbose=False)
        assert result.attempted > 0 and result.failed == 0, module.__name__


# --- the learning rule on groups the user built ---------------------------------------------------


def _build_learning_network(seed: int):
    rng = np.random.default_rng(seed)
    inputs = input_neurons(12, np.linspace(20, 180, 12) * Hz, phases=PHASES)
    hidden = pyramidal_neurons(6, phases=PHASES, plateau=True)
    out = output_neurons(3, phases=PHASES, teaching="phases")
    hidden.b_basal = rng.normal(0.5, 0.5, 6)
    W0 = learning_rule(inputs, hidden, weights=rng.normal(0, 1, (6, 12)), learning_rate=0.5)
    W1 = learning_rule(hidden, out, weights=rng.normal(0, 1, (3, 6)), learning_rate=0.4)
    Y = dendritic_synapses(out, hidden, "apical", weights=rng.normal(0, 2, (6, 3)))
    mons = {
        "input": StateMonitor(inputs, "s_out", record=True, when="before_thresholds"),
        "hidden": StateMonitor(hidden, ["s_out", "V_soma", "V_apical"], record=True, when="before_thresholds"),
        "output": StateMonitor(out, "V_soma", record=True, when="before_thresholds"),
    }
    net = Network(inputs, hidden, out, W0, W1, Y, *mons.values())
    return net, (inputs, hidden, out), (W0, W1), mons


def _matrix(syn):
    return np.asarray(syn.w[:]).reshape(len(syn.source), len(syn.target)).T.copy()


def test_learning_rule_on_user_groups_equals_numpy_rule(target):
    """On both runtime targets: the rule is event code, generated per target."""
    brian2.seed(11)
    net, (inputs, hidden, out), (W0, W1), mons = _build_learning_network(seed=2)
    before = [_matrix(W0), _matrix(W1)]
    b_before = [np.asarray(hidden.b_basal[:]).copy(), np.asarray(out.b_basal[:]).copy()]
    net.run(120 * ms)
    cell = CellParameters()
    fwd, tgt = slice(40, 60), slice(100, 120)  # the last 20 ms (window_length) of each phase
    phi = float(cell.phi_max * ms)
    P_hidden, P_final = 20 / phi, 20 / phi**2
    s_in = mons["input"].s_out[:, fwd].mean(axis=1)
    s_hid = mons["hidden"].s_out[:, fwd].mean(axis=1)
    # output (label 1): E = (phi* - phi sigma(V_f)) * -k_D phi sigma'(V_f)
    Vo = mons["output"].V_soma
    Vf = Vo[:, fwd].mean(axis=1)
    phi_t = (phi * _sigma(Vo[:, tgt])).mean(axis=1)
    E_out = (phi_t - phi * _sigma(Vf)) * -cell.k_D * phi * _sigma(Vf) * (1 - _sigma(Vf))
    # hidden: E = (alpha_t - alpha_f) * -k_B phi sigma'(V_f)
    Vh = mons["hidden"].V_soma[:, fwd].mean(axis=1)
    A = mons["hidden"].V_apical
    alpha_f, alpha_t = _sigma(A[:, fwd].mean(axis=1)), _sigma(A[:, tgt].mean(axis=1))
    E_hid = (alpha_t - alpha_f) * -cell.k_B * phi * _sigma(Vh) * (1 - _sigma(Vh))
    expected = [(-0.5 * P_hidden * np.outer(E_hid, s_in), -0.5 * P_hidden * E_hid),
                (-0.4 * P_final * np.outer(E_out, s_hid), -0.4 * P_final * E_out)]
    after = [_matrix(W0), _matrix(W1)]
    b_after = [np.asarray(hidden.b_basal[:]), np.asarray(out.b_basal[:])]
    for m, (dW, db) in enumerate(expected):
        assert np.abs(dW).max() > 1e-4, f"layer {m}: the rule predicts no change; the test would be vacuous"
        np.testing.assert_allclose(after[m] - before[m], dW, rtol=RTOL, atol=ATOL, err_msg=f"W[{m}]")
        np.testing.assert_allclose(b_after[m] - b_before[m], db, rtol=RTOL, atol=ATOL, err_msg=f"b[{m}]")
    # the direction of specification 1.9: the label's output neuron is pushed up, the others down
    dW_out = after[1] - before[1]
    active = s_hid > 0
    assert active.any()
    assert np.all(dW_out[1, active] > 0) and np.all(dW_out[[0, 2]][:, active] < 0)


def test_learning_rule_shares_one_rate_per_target(numpy_target):
    inputs = input_neurons(3, 50 * Hz, phases=PHASES)
    out = output_neurons(2, phases=PHASES)
    learning_rule(inputs, out, learning_rate=0.3)
    learning_rule(inputs, out, learning_rate=0.3)  # the same rate: fine (a second pathway)
    with pytest.raises(ValueError, match="learning_rate"):
        learning_rule(inputs, out, learning_rate=0.2)


def test_no_learning_after_the_last_phase(numpy_target):
    """The endless idle phase after the user's phases: the rule fires once, not every later step."""
    inputs = input_neurons(4, 150 * Hz, phases=PHASES)
    out = output_neurons(3, phases=PHASES, teaching="phases")
    syn = learning_rule(inputs, out, weights=0.5)
    learn = EventMonitor(out, "learn")
    Network(inputs, out, syn, learn).run(200 * ms)
    assert list(np.unique(learn.t / ms)) == [119.0]


# --- bad input: each refusal names the argument ----------------------------------------------------


@pytest.mark.parametrize(
    "call, exc, name",
    [
        (lambda: pyramidal_neurons(0), ValueError, "N"),
        (lambda: pyramidal_neurons(2.5), TypeError, "N"),
        (lambda: pyramidal_neurons(True), TypeError, "N"),
        (lambda: output_neurons(-3), ValueError, "N"),
        (lambda: pyramidal_neurons(3, params="paper"), TypeError, "params"),
        (lambda: pyramidal_neurons(3, method="rk4"), ValueError, "method"),
        (lambda: pyramidal_neurons(3, plateau=True), ValueError, "plateau"),
        (lambda: pyramidal_neurons(3, plateau="yes"), TypeError, "plateau"),
        (lambda: pyramidal_neurons(3, phases=[("forwards", 50 * ms)]), ValueError, "phases"),
        (lambda: pyramidal_neurons(3, phases=[("forward", 50 * mV)]), ValueError, "phases"),
        (lambda: pyramidal_neurons(3, phases=[("forward", 50.5 * ms)]), ValueError, "phases"),
        (lambda: pyramidal_neurons(3, phases="forward"), TypeError, "phases"),
        (lambda: pyramidal_neurons(3, phases=TimedArray([0, 5], dt=1 * ms)), ValueError, "phases"),
        (lambda: pyramidal_neurons(3, phases=TimedArray([0, 1], dt=0.5 * ms)), ValueError, "phases"),
        (lambda: pyramidal_neurons(3, protocol=CellParameters()), TypeError, "protocol"),
        (lambda: output_neurons(3, teaching="label"), ValueError, "teaching"),
        (lambda: output_neurons(3, teaching="phases"), ValueError, "teaching"),
        (lambda: output_neurons(2, phases=[("target", 50 * ms, 5)], teaching="phases"), ValueError, "label"),
        (lambda: input_neurons(3, 10 * mV), ValueError, "rates"),
        (lambda: input_neurons(3, [1, 2] * Hz), ValueError, "rates"),
        (lambda: input_neurons(3, np.array([1, np.nan, 2]) * Hz), ValueError, "rates"),
        (lambda: input_neurons(3, -5 * Hz), ValueError, "rates"),
        (lambda: input_neurons(3, 2000 * Hz), ValueError, "rates"),
        (lambda: steady_state(1 * mV), ValueError, "basal"),
        (lambda: steady_state(1.0, kind="apical"), ValueError, "kind"),
        (lambda: steady_state(1.0, kind="output", g_E=1 * Hz * mV), ValueError, "g_E"),
        (lambda: steady_state(float("nan")), ValueError, "basal"),
        (lambda: rate_model(CellParameters()), TypeError, "params"),
        (lambda: rate_model(weights=np.zeros(3)), TypeError, "weights"),
        (lambda: rate_model(seed=3), TypeError, "seed"),
    ],
)
def test_factories_refuse_bad_input_naming_the_argument(numpy_target, call, exc, name):
    with pytest.raises(exc) as info:
        call()
    assert name in str(info.value), str(info.value)


@pytest.fixture
def groups(numpy_target):
    src = PoissonGroup(4, 20 * Hz, dt=1 * ms)
    hid = pyramidal_neurons(3)
    out = output_neurons(2)
    return src, hid, out


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        ({"site": "dendrite"}, ValueError, "site"),
        ({"site": "soma"}, ValueError, "soma"),  # the target was built without somatic_input
        ({"weights": np.ones((4, 3))}, ValueError, "weights"),  # (n_source, n_target): transposed
        ({"weights": np.ones(5)}, ValueError, "weights"),
        ({"weights": np.full((3, 4), np.nan)}, ValueError, "weights"),
        ({"weights": 0.5 * mV}, ValueError, "weights"),
        ({"weights": "heavy"}, TypeError, "weights"),
        ({"weights": np.ones((3, 4)), "connect": "i != j"}, ValueError, "weights"),
        ({"connect": 3}, TypeError, "connect"),
        ({"connect": {"probability": 0.5}}, ValueError, "connect"),
        ({"params": 5}, TypeError, "params"),
        ({"params": CellParameters(kernel="truncated")}, ValueError, "params"),
        ({"name": 7}, TypeError, "name"),
    ],
)
def test_dendritic_synapses_refuse_bad_input(groups, kwargs, exc, name):
    src, hid, _ = groups
    with pytest.raises(exc) as info:
        dendritic_synapses(src, hid, **kwargs)
    assert name in str(info.value), str(info.value)


def test_synapse_factories_refuse_wrong_groups(groups):
    src, hid, out = groups
    with pytest.raises(ValueError, match="target 'output.*apical"):
        dendritic_synapses(src, out, "apical")
    with pytest.raises(TypeError, match="source"):
        dendritic_synapses(np.zeros(3), hid)
    with pytest.raises(TypeError, match="target"):
        dendritic_synapses(src, src)
    slow = PoissonGroup(2, 5 * Hz, dt=0.1 * ms)
    with pytest.raises(ValueError, match="source .*dt"):
        dendritic_synapses(slow, hid)
    # the learning rule needs the groups' phases and plateaus
    with pytest.raises(ValueError, match="source .*learn_pre"):
        learning_rule(src, out)
    inputs = input_neurons(4, 20 * Hz, phases=PHASES)
    with pytest.raises(ValueError, match="target .*learn"):
        learning_rule(inputs, out)
    no_plateau = pyramidal_neurons(3, phases=PHASES)
    with pytest.raises(ValueError, match="target .*plateau"):
        learning_rule(inputs, no_plateau)
    target = output_neurons(2, phases=PHASES)
    for bad, exc in ((-0.1, ValueError), (float("nan"), ValueError), ("fast", TypeError), (0.1 * Hz, TypeError)):
        with pytest.raises(exc, match="learning_rate"):
            learning_rule(inputs, target, learning_rate=bad)


def test_magic_run_collects_the_groups(numpy_target):
    """The factories' objects work with Brian2's magic run() (no explicit Network)."""
    brian2.start_scope()
    src = PoissonGroup(20, 100 * Hz, dt=1 * ms)
    hid = pyramidal_neurons(5)
    syn = dendritic_synapses(src, hid, "basal", weights=1.0)  # noqa: F841 (found by run())
    spikes = SpikeMonitor(hid)
    brian2.run(100 * ms)
    assert spikes.num_spikes > 0
    assert np.all(hid.V_basal[:] != 0)


def test_parameter_errors_name_the_field():
    with pytest.raises(ParameterError, match="tau_s"):
        pyramidal_neurons(2, CellParameters(tau_s=20 * ms))

"""The compartmental neurons against their analytic behaviour (specification 1.2-1.4, 1.7).

Every test runs once per runtime code-generation target (numpy, cython); the
cpp_standalone run is in ``test_standalone.py`` (marked slow).
"""

from __future__ import annotations

import numpy as np
import pytest
from brian2 import Hz, Network, SpikeGeneratorGroup, StateMonitor, ms

from brian_dendrite.model import (
    CellParameters,
    PhaseSchedule,
    ProtocolParameters,
    kernel_synapses,
    pyramidal_group,
)
from brian_dendrite.simulation import CellPopulation, PoissonDrive

#: Float64 arithmetic of a few hundred steps: anything above ~1e-12 is a model error.
FLOAT_TOL = 1e-9


def _sigma(x):
    return 1 / (1 + np.exp(-x))


@pytest.mark.parametrize("method", ["exponential_euler", "euler"])
@pytest.mark.parametrize("g_A", [0.0, 0.05, 0.6])
def test_soma_steady_state_and_approach(target, method, g_A):
    cell = CellParameters(g_A=g_A / ms, method=method)
    basal = np.array([-2.0, 0.5, 3.0])
    apical = np.array([1.0, -1.0, 0.0])
    pop = CellPopulation("pyramidal", 3, cell=cell, basal_bias=basal, apical_bias=apical,
                         phases=[("forward", 150 * ms)])
    pop.run()
    g_tot = float((cell.g_L + cell.g_B + cell.g_A) * ms)
    v_inf = (0.6 * basal + g_A * apical) / g_tot
    if g_A == 0:
        assert np.allclose(v_inf, cell.k_B * basal)
    # The monitor samples after the k-th update (k = 1, 2, ...) from V = 0.
    k = np.arange(1, len(pop.state.t) + 1)
    decay = np.exp(-g_tot) if method == "exponential_euler" else 1 - g_tot
    expected = v_inf[:, None] * (1 - decay ** k[None, :])
    assert np.max(np.abs(pop.state.V_soma - expected)) < FLOAT_TOL
    assert np.max(np.abs(pop.group.V_soma[:] - v_inf)) < FLOAT_TOL


def _single_spike_response(cell, t_spike=5 * ms, duration=60 * ms):
    protocol = ProtocolParameters()
    schedule = PhaseSchedule.from_phases([("idle", duration, 0, 0)], protocol, dt=cell.dt)
    group = pyramidal_group(1, cell, protocol, schedule.timed_arrays(), name="kernel_probe")
    group.b_basal = 0
    source = SpikeGeneratorGroup(1, [0], [t_spike], dt=cell.dt)
    syn = kernel_synapses(source, group, "basal", cell)
    syn.connect()
    syn.w = 1.0
    mon = StateMonitor(group, "psp_basal", record=0, when="before_thresholds")
    Network(group, source, syn, mon).run(duration)
    return mon.t / ms, mon.psp_basal[0]


@pytest.mark.parametrize("kernel, gain", [("full", 1.0), ("truncated", 1.0), ("full", 0.5)])
def test_kernel_shape_and_integral(target, kernel, gain):
    cell = CellParameters(kernel=kernel, kernel_gain=gain)
    t, s = _single_spike_response(cell)
    s = s / gain  # kernel_gain scales the PSP, not its shape
    lag = np.round(t - 5).astype(int)  # steps since the spike
    kappa = (np.exp(-lag / 10) - np.exp(-lag / 3)) / 7 * (lag >= 0)
    if kernel == "truncated":
        kappa = kappa * (lag <= 10)
    # The spike reaches the traces in the synapses slot of its step; the first
    # sample that sees it is one step later: s(k) = kappa(k dt) for k >= 1.
    assert np.max(np.abs(s - kappa)) < FLOAT_TOL
    total = s.sum()
    if kernel == "full":
        # sum_{k>=1} kappa(k) = 0.99723 (a Riemann sum of an integral of 1; 55 ms of tail
        # after t = 5 ms leave 0.4 % of mass unsampled)
        expected = sum((np.exp(-k / 10) - np.exp(-k / 3)) / 7 for k in range(1, 55))
        assert total == pytest.approx(expected, abs=1e-9)
        assert total == pytest.approx(1.0, abs=0.01)
    else:
        # specification 1.2: the published code's kappa(1..10) sums to 0.510
        assert total == pytest.approx(0.510, abs=5e-4)


def test_spike_count_matches_rate(target):
    """Counts over 20 s x 20 neurons against phi_max * sigma(V).

    Spikes are Bernoulli per 1 ms step with p = phi_max sigma(V) dt, so the count
    is binomial; the bound is 5 standard deviations (false-failure probability
    < 1e-6), fixed seed for reproducibility.
    """
    n, duration = 20, 20000 * ms
    basal = np.linspace(-3, 3, n)
    pop = CellPopulation("pyramidal", n, basal_bias=basal, phases=[("forward", duration)], record=False, seed=7)
    cell = pop.cell
    v = cell.k_B * basal
    pop.group.V_soma = v  # start at the steady state: no transient
    pop.run()
    p = float(cell.phi_max * cell.dt) * _sigma(v)
    steps = int(duration / cell.dt)
    counts = np.bincount(pop.spikes.i[:], minlength=n)
    mean, sd = steps * p, np.sqrt(steps * p * (1 - p))
    assert np.all(np.abs(counts - mean) < 5 * sd), (counts, mean)
    total_sd = np.sqrt(np.sum(sd**2))
    assert abs(counts.sum() - mean.sum()) < 5 * total_sd


@pytest.mark.parametrize("g_teach", [1.0, 0.1])
def test_output_neuron_steady_states(target, g_teach):
    cell = CellParameters(g_teach=g_teach / ms)
    basal = np.array([1.0, -0.5, 2.0, 0.0])
    label = 2
    pop = CellPopulation("output", 4, cell=cell, basal_bias=basal, label=label,
                         phases=[("forward", 100 * ms), ("target", 100 * ms)])
    pop.run()
    forward_end = np.argmin(np.abs(pop.state.t - 99 * ms))
    assert np.max(np.abs(pop.state.V_soma[:, forward_end] - cell.k_D * basal)) < FLOAT_TOL
    E = np.where(np.arange(4) == label, 8.0, -8.0)
    expected = (0.6 * basal + g_teach * E) / (0.1 + 0.6 + g_teach)
    if g_teach == 1.0:
        # specification 1.4: (g_D V_b +- 8)/1.7
        assert np.allclose(expected, (0.6 * basal + E) / 1.7)
    assert np.max(np.abs(pop.group.V_soma[:] - expected)) < FLOAT_TOL
    # window means stored at the phase ends
    assert np.allclose(pop.group.V_mean_f[:], cell.k_D * basal, atol=FLOAT_TOL)
    assert np.allclose(pop.group.rate_mean_t[:], _sigma(expected), atol=FLOAT_TOL)


def test_output_neuron_constant_teaching(target):
    pop = CellPopulation("output", 2, basal_bias=1.0, g_E=np.array([1.0, 0.0]) / ms,
                         g_I=np.array([0.0, 1.0]) / ms, phases=[("forward", 100 * ms)])
    pop.run()
    assert np.allclose(pop.group.V_soma[:], [(0.6 + 8) / 1.7, (0.6 - 8) / 1.7], atol=FLOAT_TOL)


@pytest.mark.parametrize("stochastic", [False, True])
def test_plateau_is_sigma_of_window_mean(target, stochastic):
    """alpha = sigma(mean V_apical over the window ending at the plateau), per neuron."""
    protocol = ProtocolParameters(stochastic_plateau=stochastic)
    rng = np.random.default_rng(3)
    n = 6
    drive = PoissonDrive(rates=np.full(30, 40.0) * Hz, weights=rng.normal(0, 1.0, size=(30, n)))
    pop = CellPopulation("pyramidal", n, protocol=protocol, apical_drive=drive, basal_bias=0.5,
                         phases=[("forward", 57 * ms), ("target", 53 * ms), ("forward", 60 * ms)], seed=11)
    pop.run()
    t = np.round(pop.state.t / ms).astype(int)
    A = pop.state.V_apical
    assert np.std(A) > 0.1  # the apical potential really fluctuates
    ev_t = np.round(pop.plateaus.t / ms).astype(int)
    ev_i = pop.plateaus.i[:]
    assert len(ev_t) == 3 * n  # one plateau per neuron and phase
    ends = np.array([56, 109, 169])
    offsets = []
    for time, i, af, at in zip(ev_t, ev_i, pop.plateaus.alpha_f[:], pop.plateaus.alpha_t[:], strict=True):
        window = (t > time - 20) & (t <= time)
        alpha = _sigma(A[i, window].mean())
        phase = np.searchsorted(ends, time)
        assert (af if phase != 1 else at) == pytest.approx(alpha, abs=FLOAT_TOL)
        offsets.append(ends[phase] - time)
    offsets = np.array(offsets)
    if stochastic:
        assert offsets.max() <= 5 and offsets.min() >= 0 and len(set(offsets)) > 1
    else:
        assert np.all(offsets == 0)


def test_population_rejects_bad_input(numpy_target):
    with pytest.raises(ValueError, match="kind = 'basket'"):
        CellPopulation("basket", 2)
    with pytest.raises(ValueError, match="basal_bias has shape \\(3,\\), expected a scalar or \\(2,\\)"):
        CellPopulation("pyramidal", 2, basal_bias=[1, 2, 3])
    with pytest.raises(ValueError, match="apical_bias contains NaN"):
        CellPopulation("pyramidal", 2, apical_bias=[1, np.nan])
    with pytest.raises(ValueError, match="basal_drive.weights has shape \\(3, 3\\), expected .* \\(3, 2\\)"):
        CellPopulation("pyramidal", 2, basal_drive=PoissonDrive(np.ones(3) * Hz, np.ones((3, 3))))
    with pytest.raises(ValueError, match="basal_drive.rates .*expected rates in Hz"):
        CellPopulation("pyramidal", 2, basal_drive=PoissonDrive(np.ones(3), np.ones((3, 2))))
    with pytest.raises(ValueError, match="output neurons have no apical compartment"):
        CellPopulation("output", 2, apical_bias=1.0)
    with pytest.raises(ValueError, match="g_E = .*expected a conductance per capacitance in 1/ms"):
        CellPopulation("output", 2, g_E=1.0)
    with pytest.raises(ValueError, match="unknown phase kind 'warmup'"):
        CellPopulation("pyramidal", 2, phases=[("warmup", 10 * ms)])
    with pytest.raises(ValueError, match="not a whole number of time steps"):
        CellPopulation("pyramidal", 2, phases=[("forward", 10.5 * ms)])

"""Validation of the spiking network against the rate model (brian_dendrite.validation).

Two kinds of tests:

* the fast validation tier itself (one run, shared by the tests that check its
  report): every check must pass;
* unit tests of each check function with synthetic inputs, showing that the check
  passes on data drawn from its own null hypothesis and FAILS on deliberately
  mismatched data (a wrong kernel mass, shuffled neurons, a biased plateau, a
  wrong update direction or size, Poisson instead of Bernoulli spikes, ...).
"""

from __future__ import annotations

import json
from pathlib import Path

import brian2
import numpy as np
import pytest
from brian2 import Network, SpikeGeneratorGroup, StateMonitor, ms
from conftest import mnist_dir

from brian_dendrite import validation as val
from brian_dendrite.model import (
    CellParameters,
    ProtocolParameters,
    effective_kernel_masses,
    load_model,
    psp_kernels,
    soma_kernel,
    window_variance_factor,
)
from brian_dendrite.rate import RateNetwork, sigma
from brian_dendrite.validation import runner
from brian_dendrite.validation.spike_trains import _bernoulli_reference, _cv_of_windows

# --------------------------------------------------------------------------------------------------
# The fast tier
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fast_report(tmp_path_factory):
    """Run the fast tier once (about 3-4 min on 2 cores with a warm Cython cache)."""
    out = tmp_path_factory.mktemp("validation")
    report, passed = val.run_validation("fast", out, mnist_dir(), seed=0, target="cython")
    return report, passed, out


@pytest.mark.parametrize("check", ["rates", "plateaus", "updates", "learning", "spike_statistics"])
def test_fast_tier_check_passes(fast_report, check):
    report, _, _ = fast_report
    result = report["checks"][check]
    assert result["passed"], json.dumps(result, indent=1, default=str)[:4000]


def test_fast_tier_report_and_figures(fast_report):
    report, passed, out = fast_report
    assert passed is True and report["passed"] is True
    saved = json.loads((out / "report_fast.json").read_text())
    assert saved["tier"] == "fast" and saved["seed"] == 0
    assert set(saved["checks"]) == {"rates", "plateaus", "updates", "learning", "spike_statistics"}
    for name in ("rates", "plateaus", "updates", "learning", "spike_statistics"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
    # every check states its tolerance next to its values
    rates = saved["checks"]["rates"]["layers"]["hidden_0"]
    assert {"pearson_r", "median_relative_error", "tolerance", "explanation"} <= set(rates)


def test_fast_tier_sanity_of_measured_values(fast_report):
    """Loose physical sanity beyond the pass flags: the values the checks rest on are plausible."""
    report, _, _ = fast_report
    rates = report["checks"]["rates"]
    # the input layer is exactly Bernoulli at phi_max*pixel: no systematic deviation
    assert abs(rates["layers"]["input"]["relative_bias_vs_rate_model"]) < 0.01
    # the noise model predicts the window-mean fluctuation of the output potential to 25 %
    jo = rates["jensen_from_recorded_V"]["output"]
    assert jo["window_mean_V_sd_measured"] == pytest.approx(jo["window_mean_V_sd_predicted"], rel=0.25)
    # learning happened in both models (chance is 90 %; both reach 25-55 % in the second half)
    learn = report["checks"]["learning"]
    assert learn["late_mean_rate"] < 75 and learn["late_mean_spiking"] < 75


# --------------------------------------------------------------------------------------------------
# Kernels and noise model
# --------------------------------------------------------------------------------------------------


def test_kernel_masses_full_and_truncated():
    full = effective_kernel_masses(CellParameters())
    assert full["continuous"] == 1.0
    # sum_m kappa(m * 1 ms) for the full double exponential
    assert full["soma"] == pytest.approx(0.99723, abs=1e-5)
    assert full["trace"] == pytest.approx(0.99723, abs=1e-5)
    trunc = effective_kernel_masses(CellParameters(kernel="truncated"))
    assert trunc["continuous"] == pytest.approx(0.48975, abs=1e-5)
    assert trunc["soma"] == pytest.approx(0.46295, abs=1e-5)  # kappa(0..9)
    assert trunc["trace"] == pytest.approx(0.51041, abs=1e-5)  # kappa(1..10), the published code's 0.510
    # kernel_gain scales every mass; 1/0.51041 restores the full kernel's PSP per unit rate
    gained = effective_kernel_masses(CellParameters(kernel="truncated", kernel_gain=1 / 0.5104085323840832))
    assert gained["trace"] == pytest.approx(1.0, abs=1e-9)
    assert gained["soma"] == pytest.approx(0.46295 / 0.51041, abs=1e-4)
    assert CellParameters(kernel_gain=2.0).kernel_mass == 2.0


@pytest.mark.parametrize("kernel, gain", [("full", 1.0), ("truncated", 1.0), ("truncated", 1 / 0.5104085323840832)])
def test_psp_kernels_match_the_simulation(numpy_target, kernel, gain):
    """The kernels of the noise model and the mean-field twin are what Brian2 integrates.

    One spike of unit weight onto one pyramidal neuron: the recorded V_soma must be
    soma_kernel('hidden') and the recorded V_basal the trace kernel, step by step
    (agreement to rounding: 1e-12).
    """
    from brian_dendrite.model import PhaseSchedule, kernel_synapses, pyramidal_group

    cell, protocol = CellParameters(kernel=kernel, kernel_gain=gain), ProtocolParameters()
    arrays = PhaseSchedule.from_phases([("idle", 120, 0, 0)], protocol).timed_arrays()
    group = pyramidal_group(1, cell, protocol, arrays, name="h")
    source = SpikeGeneratorGroup(1, [0], [10] * ms, dt=cell.dt)
    syn = kernel_synapses(source, group, "basal", cell)
    syn.connect()
    syn.w = 1.0
    mon = StateMonitor(group, ["V_soma", "V_basal"], record=0, when="before_thresholds")
    net = Network(group, source, syn, mon)
    net.run(120 * ms, namespace={})
    V = np.asarray(mon.V_soma[0])[10:]  # from the spike's step on
    B = np.asarray(mon.V_basal[0])[10:]
    g = soma_kernel(cell, "hidden", len(V))
    trace = psp_kernels(cell, len(B))["trace"]
    np.testing.assert_allclose(V, g, rtol=0, atol=1e-12)
    np.testing.assert_allclose(B - B[0], trace, rtol=0, atol=1e-12)


def test_window_variance_factor():
    # a one-step kernel: the mean of T independent unit-variance values has variance 1/T
    k = np.array([0.0, 1.0])
    assert window_variance_factor(k, 1) == pytest.approx(1.0)
    assert window_variance_factor(k, 20) == pytest.approx(1 / 20)
    with pytest.raises(ValueError, match="n_window"):
        window_variance_factor(k, 0)


def test_window_variance_factor_against_monte_carlo():
    """Variance of a 20-step mean of a kernel-filtered Bernoulli train, simulated (fixed seed)."""
    cell = CellParameters()
    kernel = psp_kernels(cell, 200)["trace"]
    p, T = 0.1, 20
    rng = np.random.default_rng(7)  # fixed: the tolerance below is 5 sd of the estimate
    x = (rng.random((4000, 400)) < p).astype(float)
    filtered = np.array([np.convolve(row, kernel)[:400] for row in x])
    means = filtered[:, 300:320].mean(axis=1)
    predicted = p * (1 - p) * window_variance_factor(kernel, T)
    # sd of a sample variance over 4000 draws ~ var*sqrt(2/4000) = 2.2 %
    assert means.var() == pytest.approx(predicted, rel=0.11)


def test_mean_field_converges_to_rate_model():
    """Long test phase, no noise: window means equal the rate model with psp_scale = soma mass."""
    params = load_model("one_hidden")
    params = params.replace(network=params.network.replace(hidden=(20,)))
    rng = np.random.default_rng(3)
    from brian_dendrite.model import initial_weights

    W = initial_weights(params, rng)
    images = rng.random((4, 784)) * (rng.random((4, 784)) < 0.2)
    mf = val.MeanFieldNetwork(params, W, batch=4)
    out = mf.run_phase("test", 600, images, window=200)
    mass = effective_kernel_masses(params.cell)["soma"]
    states = RateNetwork(params, W, psp_scale=mass).forward(images)
    for lay, st in enumerate(states):
        np.testing.assert_allclose(out["V_mean"][lay], st.C, rtol=1e-6, atol=1e-8)
    # and the weights passed in are not changed by training the twin
    before = W.W[0].copy()
    twin = val.MeanFieldNetwork(params, W, batch=1)
    twin.train(images[:2], np.array([1, 2]), np.array([[51, 51], [50, 52]]))
    np.testing.assert_array_equal(W.W[0], before)
    assert not np.array_equal(twin.W[0], before)


def test_stationary_noise_shapes_and_bernoulli_limit():
    params = load_model("one_hidden")
    params = params.replace(network=params.network.replace(hidden=(30,)))
    from brian_dendrite.model import initial_weights

    rng = np.random.default_rng(0)
    W = initial_weights(params, rng)
    image = rng.random(784) * (rng.random(784) < 0.2)
    q = RateNetwork(params, W).example_quantities(image, 3)
    nz = val.stationary_noise(params, W, dict(q, pixels=image), "forward", 1)
    assert [v.shape for v in nz["V"]] == [(30,), (10,)]
    assert [v.shape for v in nz["A"]] == [(30,)]
    # the first hidden layer sees only the input: Var = sum_j W^2 p(1-p) sum g^2
    p_in = 0.2 * image
    g = soma_kernel(params.cell, "hidden")
    expected = (W.W[0] ** 2) @ (p_in * (1 - p_in)) * np.sum(g**2)
    np.testing.assert_allclose(nz["V"][0], expected, rtol=1e-12)
    with pytest.raises(ValueError, match="phase"):
        val.stationary_noise(params, W, dict(q, pixels=image), "test", 1)


# --------------------------------------------------------------------------------------------------
# Check 1: rates
# --------------------------------------------------------------------------------------------------


def _synthetic_rates(rng, n_img=40, n=200):
    predicted = 200.0 * sigma(rng.normal(0.0, 2.0, (n_img, n)))
    corrected = predicted * 1.002
    sd = np.sqrt(predicted / 220e-3 * 1e-3 * 1e3) + 1.0  # ~ count noise of a 220-ms window (Hz)
    return predicted, corrected, sd


def test_rate_agreement_passes_under_its_null():
    rng = np.random.default_rng(11)  # fixed seed: a synthetic draw from the null hypothesis
    pred, corr, sd = _synthetic_rates(rng)
    measured = corr + sd * rng.standard_normal(pred.shape)
    res = val.rate_agreement(measured, pred, corr, sd, layer="synthetic")
    assert res["passed"], res
    assert abs(res["mean_z"]) < 0.05 and res["sd_z"] == pytest.approx(1.0, abs=0.05)


def test_rate_agreement_fails_for_a_wrong_kernel_mass():
    """The truncated kernel's drive (0.49) predicted with the full kernel's (1): rates far too high."""
    rng = np.random.default_rng(12)
    pred, corr, sd = _synthetic_rates(rng)
    V = np.log(pred / (200.0 - pred))
    wrong = 200.0 * sigma(0.49 * V)  # what a spiking network with half the drive would fire
    measured = wrong + sd * rng.standard_normal(pred.shape)
    res = val.rate_agreement(measured, pred, corr, sd)
    assert not res["passed"]
    assert res["median_relative_error"] > res["tolerance"]["median_relative_error_max"]


def test_rate_agreement_fails_for_shuffled_neurons():
    rng = np.random.default_rng(13)
    pred, corr, sd = _synthetic_rates(rng)
    measured = corr + sd * rng.standard_normal(pred.shape)
    shuffled = measured[:, rng.permutation(measured.shape[1])]
    res = val.rate_agreement(shuffled, pred, corr, sd)
    assert not res["passed"]
    assert res["pearson_r"] < res["tolerance"]["pearson_r_min"]


def test_rate_agreement_fails_when_the_noise_is_underestimated():
    rng = np.random.default_rng(14)
    pred, corr, sd = _synthetic_rates(rng)
    measured = corr + 2.0 * sd * rng.standard_normal(pred.shape)
    res = val.rate_agreement(measured, pred, corr, sd)
    assert not res["passed"]
    assert res["sd_z"] > res["tolerance"]["sd_z_range"][1]


def test_rate_agreement_fails_for_a_small_systematic_bias():
    """A 5 % excess over the corrected prediction is invisible per pair but not in the mean z."""
    rng = np.random.default_rng(15)
    pred, corr, sd = _synthetic_rates(rng, n_img=200)
    measured = 1.05 * corr + sd * rng.standard_normal(pred.shape)
    res = val.rate_agreement(measured, pred, corr, sd)
    assert not res["passed"]
    assert res["mean_z"] > res["tolerance"]["abs_mean_z_max"]


def test_rate_agreement_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        val.rate_agreement(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 3)), np.ones((3, 2)))


# --------------------------------------------------------------------------------------------------
# Check 2: plateaus
# --------------------------------------------------------------------------------------------------


def _synthetic_plateaus(rng, repeats=3, n_ex=10, n=300, noise=0.03, bias=0.0):
    # apical noise is a projection of 10 output neurons' noise, shared by all hidden neurons
    Y = rng.normal(0, 0.6, (n, 10))
    A_f, A_t = rng.normal(0, 0.3, (n_ex, n)), rng.normal(0, 0.3, (n_ex, n))
    rate = {"f": sigma(A_f), "t": sigma(A_t)}
    spk = {}
    for k, A in (("f", A_f), ("t", A_t)):
        eps = rng.normal(0, noise, (repeats, n_ex, 10)) @ Y.T
        spk[k] = sigma(A[None] + eps) + bias
    return spk, rate


def test_plateau_agreement_passes_under_its_null():
    rng = np.random.default_rng(21)
    spk, rate = _synthetic_plateaus(rng)
    res = val.plateau_agreement(spk, rate)
    assert res["passed"], res
    for phase in ("f", "t", "t-f"):
        assert res["phases"][phase]["msd_over_noise_variance"] < 1.3


def test_plateau_agreement_fails_for_a_biased_plateau():
    rng = np.random.default_rng(22)
    spk, rate = _synthetic_plateaus(rng, bias=0.0)
    spk["f"] = spk["f"] + 0.02  # alpha_f shifted by about one noise sd
    res = val.plateau_agreement(spk, rate)
    assert not res["passed"]
    assert not res["phases"]["f"]["passed"] and res["phases"]["t"]["passed"]


def test_plateau_agreement_fails_for_other_examples():
    rng = np.random.default_rng(23)
    spk, rate = _synthetic_plateaus(rng)
    rate_wrong = {k: v[::-1] for k, v in rate.items()}  # the plateaus of other examples
    res = val.plateau_agreement(spk, rate_wrong)
    assert not res["passed"]


def test_plateau_agreement_needs_repeats():
    rng = np.random.default_rng(24)
    spk, rate = _synthetic_plateaus(rng, repeats=1)
    with pytest.raises(ValueError, match="2 repeats"):
        val.plateau_agreement(spk, rate)


# --------------------------------------------------------------------------------------------------
# Check 3: weight updates
# --------------------------------------------------------------------------------------------------


def _synthetic_updates(rng, n_ex=12, repeats=3, scale=1.0, noise=0.4, direction_ok=True):
    dW_rate, dW_spk = [], []
    for _ in range(n_ex):
        delta, s = rng.normal(size=50), rng.random(80)
        ref = [np.outer(delta, s), np.outer(rng.normal(size=10), rng.random(50))]
        dW_rate.append(ref)
        # the spiking network's mean update: the rate update, or a consistent but unrelated direction
        means = ref if direction_ok else [np.linalg.norm(m) / np.sqrt(m.size) * rng.normal(size=m.shape) for m in ref]
        reps = []
        for _ in range(repeats):
            rep = []
            for m, base in zip(ref, means, strict=True):
                rep.append(scale * base + noise * np.linalg.norm(m) / np.sqrt(m.size) * rng.normal(size=m.shape))
            reps.append(rep)
        dW_spk.append(reps)
    return dW_spk, dW_rate


def test_update_agreement_passes_under_its_null():
    rng = np.random.default_rng(31)
    spk, rate = _synthetic_updates(rng)
    res = val.update_agreement(spk, rate)
    assert res["passed"], res
    for lay in res["layers"].values():
        assert lay["cosine_mean"] == pytest.approx(lay["noise_ceiling_mean"], abs=0.03)


def test_update_agreement_fails_for_a_wrong_direction():
    rng = np.random.default_rng(32)
    spk, rate = _synthetic_updates(rng, direction_ok=False)
    res = val.update_agreement(spk, rate)
    assert not res["passed"]
    assert res["layers"]["W_0"]["cosine_mean"] < res["layers"]["W_0"]["tolerance"]["cosine_mean_min"]


def test_update_agreement_fails_for_a_wrong_size():
    """Right direction, half the size (e.g. the truncated kernel's 0.51 in s_mean_f): cosines fine, scale not."""
    rng = np.random.default_rng(33)
    spk, rate = _synthetic_updates(rng, scale=0.5, noise=0.1)
    res = val.update_agreement(spk, rate)
    assert not res["passed"]
    assert res["layers"]["W_0"]["projection_scale_mean"] == pytest.approx(0.5, abs=0.05)


def test_update_agreement_needs_repeats():
    rng = np.random.default_rng(34)
    spk, rate = _synthetic_updates(rng, repeats=1)
    with pytest.raises(ValueError, match="2 spiking repeats"):
        val.update_agreement(spk, rate)


# --------------------------------------------------------------------------------------------------
# Check 4: learning
# --------------------------------------------------------------------------------------------------


def _curve(values, every=250):
    return [(k * every, v) for k, v in enumerate(values)]


def test_learning_agreement_passes_and_fails():
    orders = [_curve([90, 60, 40, 30 + d, 28 + d, 27 + d]) for d in (-2, -1, 0, 1, 2, 3)]
    rate = _curve([90, 55, 42, 31, 29, 26])
    close = [_curve([90, 70, 50, 32, 30, 28])]
    far = [_curve([90, 88, 85, 70, 65, 60])]
    ok = val.learning_agreement(close, rate, orders, late_from=750, discordant=(40, 30), n_test=2000)
    assert ok["passed"], ok
    bad = val.learning_agreement(far, rate, orders, late_from=750, discordant=(400, 30), n_test=2000)
    assert not bad["passed"]
    assert abs(bad["difference"]) > bad["tolerance"]["abs_difference_max"]


def test_learning_agreement_input_errors():
    rate = _curve([90, 50, 30])
    with pytest.raises(ValueError, match="2 rate-model orders"):
        val.learning_agreement([rate], rate, [rate], late_from=250)
    with pytest.raises(ValueError, match="n_test"):
        val.learning_agreement([rate], rate, [rate, rate], late_from=250, discordant=(1, 2))
    with pytest.raises(ValueError, match="no evaluation point"):
        val.learning_agreement([rate], rate, [rate, rate], late_from=10_000)


# --------------------------------------------------------------------------------------------------
# Check 5: spike statistics
# --------------------------------------------------------------------------------------------------


def test_bernoulli_expectations():
    np.testing.assert_allclose(val.bernoulli_isi_cv([0.0, 0.2, 1.0]), [1.0, np.sqrt(0.8), 0.0])
    np.testing.assert_allclose(val.bernoulli_fano([0.05, 0.2]), [0.95, 0.8])


def _spike_groups(rng, generator, n_neurons=60, n_steps=5000, bin_steps=50, n_boot=150):
    """Per-neuron statistics of synthetic trains against the Bernoulli bootstrap at the same p.

    ``generator``: 'bernoulli' (what the network does) or 'poisson' (Poisson counts per
    step, which can exceed 1, as in the published code).
    """
    g = {k: [] for k in ("cv", "cv_expected", "cv_sd", "fano", "fano_expected", "fano_sd")}
    for p in rng.uniform(0.05, 0.2, n_neurons):
        if generator == "bernoulli":
            counts_per_step = (rng.random(n_steps) < p).astype(int)
        else:
            counts_per_step = rng.poisson(p, n_steps)
        steps = np.repeat(np.arange(n_steps), counts_per_step)
        counts = counts_per_step[: n_steps // bin_steps * bin_steps].reshape(-1, bin_steps).sum(axis=1)
        ref = _bernoulli_reference(np.full((1, n_steps), p), n_boot, rng, bin_steps)
        g["cv"].append(_cv_of_windows([steps]))
        g["fano"].append(counts.var() / counts.mean())
        g["cv_expected"].append(ref["cv_mean"])
        g["cv_sd"].append(ref["cv_sd"])
        g["fano_expected"].append(ref["fano_mean"])
        g["fano_sd"].append(ref["fano_sd"])
    return {"synthetic": {k: np.asarray(v) for k, v in g.items()}}


def test_spike_statistics_passes_for_bernoulli_spikes():
    rng = np.random.default_rng(41)
    res = val.spike_statistics(_spike_groups(rng, "bernoulli"))
    assert res["passed"], res


def test_spike_statistics_fails_for_poisson_spikes():
    """Poisson counts per step (the published code's generator): CV and Fano factor near 1, not 1 - p."""
    rng = np.random.default_rng(42)
    res = val.spike_statistics(_spike_groups(rng, "poisson"))
    assert not res["passed"]
    syn = res["groups"]["synthetic"]
    assert syn["cv"]["mean_z"] > syn["cv"]["tolerance"]["abs_mean_z_max"]
    assert syn["fano"]["mean_z"] > syn["fano"]["tolerance"]["abs_mean_z_max"]


def test_spike_statistics_fails_for_miscounted_spikes():
    """Counts given the rate: an extra spike per window is caught by the conditional count scores."""
    rng = np.random.default_rng(43)
    groups = _spike_groups(rng, "bernoulli")
    p = rng.uniform(0.02, 0.2, (2000, 220))  # as many windows as the fast tier has (9600)
    counts = (rng.random(p.shape) < p).sum(axis=1) + 1
    groups["synthetic"]["count_z"] = (counts - p.sum(axis=1)) / np.sqrt((p * (1 - p)).sum(axis=1))
    res = val.spike_statistics(groups)
    assert not res["passed"]
    assert not res["groups"]["synthetic"]["count_given_rate"]["passed"]


# --------------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------------


def test_run_validation_rejects_unknown_names():
    with pytest.raises(ValueError, match="tier"):
        val.run_validation("medium")
    with pytest.raises(ValueError, match="unknown check"):
        val.run_validation("fast", checks=["rates", "speed"])
    with pytest.raises(ValueError, match="target"):
        val.run_validation("fast", target="cuda")


@pytest.mark.parametrize("passed, code", [(True, 0), (False, 1)])
def test_main_exit_status(monkeypatch, tmp_path, capsys, passed, code):
    report = {"tier": "fast", "seed": 0, "target": "cython", "passed": passed, "seconds": {"total": 1.0},
              "checks": {"learning": {"passed": passed, "late_from_examples": 1000, "late_mean_spiking": 30.0,
                                      "late_mean_rate": 31.0, "difference": -1.0,
                                      "tolerance": {"abs_difference_max": 10.0}}}}
    calls = {}

    def fake(tier, output_dir, data_dir, seed, target, checks):
        calls.update(tier=tier, output_dir=output_dir, seed=seed, checks=checks)
        return report, passed

    monkeypatch.setattr(runner, "run_validation", fake)
    assert runner.main(["--tier", "fast", "--output", str(tmp_path), "--seed", "3", "--checks", "learning"]) == code
    assert calls == {"tier": "fast", "output_dir": tmp_path, "seed": 3, "checks": ["learning"]}
    assert ("PASSED" if passed else "FAILED") in capsys.readouterr().out


def test_main_bad_usage_returns_2(monkeypatch, capsys):
    def fake(*args):
        raise ValueError("unknown check(s) ['speed']")

    monkeypatch.setattr(runner, "run_validation", fake)
    assert runner.main(["--checks", "speed"]) == 2
    assert "error: unknown check" in capsys.readouterr().err


def test_one_command_line_for_both_entry_points(monkeypatch, capsys):
    """``brian-dendrite validate`` and ``python -m brian_dendrite.validation``: same options, defaults, exit codes."""
    import argparse

    from brian_dendrite.cli import build_parser
    from brian_dendrite.cli import main as cli_main

    module_args = vars(runner.add_validation_arguments(argparse.ArgumentParser()).parse_args([]))
    cli_args = vars(build_parser().parse_args(["validate"]))
    assert {k: cli_args[k] for k in module_args} == module_args
    assert module_args == {"tier": "fast", "output": Path("validation-report"), "data_dir": None, "seed": 0,
                           "target": "cython", "checks": None, "quiet": False}
    calls = []

    def fake(tier, output_dir, data_dir, seed, target, checks):
        calls.append((tier, output_dir, data_dir, seed, target, checks))
        if checks == ["speed"]:
            raise ValueError("unknown check(s) ['speed']")
        return {"tier": tier, "seed": seed, "target": target, "passed": False, "seconds": {"total": 0.0},
                "checks": {}}, False

    monkeypatch.setattr(runner, "run_validation", fake)
    argv = ["--tier", "full", "--seed", "2", "--target", "numpy", "--checks", "rates, updates"]
    assert cli_main(["validate", *argv]) == 1
    assert runner.main(argv) == 1
    assert calls[0] == calls[1] == ("full", Path("validation-report"), None, 2, "numpy", ["rates", "updates"])
    assert cli_main(["validate", "--checks", "speed"]) == 2
    assert "error: unknown check" in capsys.readouterr().err


def test_run_validation_without_output_dir_writes_nothing(monkeypatch, tmp_path):
    """``output_dir=None`` runs the checks and writes nothing: no report, no figures, no directory.

    A small tier (monkeypatched sizes) and the cheapest check, on the numpy target.
    """
    writes = []
    monkeypatch.setattr(runner, "write_json_atomic", lambda *args: writes.append(args))
    monkeypatch.setattr(runner, "_save", lambda *args: writes.append(args))
    monkeypatch.setitem(runner.TIERS, "fast", runner.TierConfig("fast", pretrain_examples=20, stat_repeats=2,
                                                                  stat_bootstrap=20, chunk_size=10,
                                                                  test_chunk_size=2))
    monkeypatch.chdir(tmp_path)
    report, passed = val.run_validation("fast", None, mnist_dir(), seed=0, target="numpy",
                                        checks=["spike_statistics"])
    assert set(report["checks"]) == {"spike_statistics"}
    assert passed is report["passed"]
    assert report["figures"] == {}
    assert writes == []
    assert list(tmp_path.iterdir()) == []


def test_brian2_target_restored(monkeypatch):
    old = brian2.prefs.codegen.target
    with pytest.raises(FileNotFoundError):
        val.run_validation("fast", data_dir="/nonexistent/mnist", target="numpy")
    assert brian2.prefs.codegen.target == old

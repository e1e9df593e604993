"""Check 1, rates: firing rates of every layer in test phases against the rate model's.

:func:`measure_rates` runs test phases of the spiking network with the trained
weights, counts every neuron's spikes over each phase's averaging window, and puts
beside them the rate model's ``phi_max sigma(C)``, the mean-field twin's prediction
without and with the noise correction (effects (a) and (b) of
:mod:`brian_dendrite.validation`) and the expected noise of a window rate (effect
(c)). From the recorded somatic potentials it also measures effect (b) directly.

:func:`rate_agreement` judges one layer: the correlation and the median relative
error against the rate model must be what the corrected prediction plus count noise
would give, and the residuals' standard scores must have mean near 0 and sd near 1.
The noise-variance margin is :data:`~brian_dendrite.validation.NOISE_VARIANCE_MARGIN`.
"""

from __future__ import annotations

import math

import numpy as np
from brian2 import second

from ..model import cell_floats
from ..rate import RateNetwork, sigma
from ._common import _pearson
from .mean_field import MeanFieldNetwork
from .noise import NOISE_VARIANCE_MARGIN, _expected_sigma, stationary_noise

__all__ = ["measure_rates", "rate_agreement"]


def rate_agreement(measured, predicted, corrected, noise_sd, layer: str = "", min_rate: float = 5.0,
                   margin: float = NOISE_VARIANCE_MARGIN, seed: int = 0) -> dict:
    """Check 1 for one layer: measured spike rates against the rate model's rates.

    Parameters
    ----------
    measured : array (n_images, n_neurons)
        Rates from spike counts over the averaging windows (Hz).
    predicted : array
        The rate model's ``phi_max sigma(C)`` (Hz).
    corrected : array
        The prediction with the known systematic effects (a) and (b) included (Hz),
        e.g. from :class:`MeanFieldNetwork` with noise.
    noise_sd : array
        Expected standard deviation of a measured rate around ``corrected``, effect
        (c) (Hz).
    layer : str
        Name of the layer, copied into the result.
    min_rate : float
        Relative errors are taken over pairs with ``predicted >= min_rate`` (Hz,
        default 5); below, a relative error is dominated by the count of a handful of spikes.
    margin : float
        Allowed excess of the noise variance over the prediction (default
        :data:`NOISE_VARIANCE_MARGIN`).
    seed : int
        Seed of the simulated null distribution (default 0): fixed, so that the
        tolerances are reproducible.

    Returns
    -------
    dict
        Values, tolerances, ``passed`` and an explanation. Passing requires

        * Pearson r(measured, predicted) >= the r that the prediction would reach
          if the measurements were ``corrected`` plus noise of ``margin`` times the
          predicted variance;
        * median relative error <= its value under the same hypothesis;
        * standard scores ``(measured - corrected)/noise_sd`` with mean within
          ``+-(0.1 + 3/sqrt(n))`` (no systematic residual beyond a tenth of one
          measurement's noise, plus 3 standard errors of a mean of ``n`` scores)
          and sd within ``[1/sqrt(margin), sqrt(margin)]``.

    Raises
    ------
    ValueError
        If the four arrays do not have the same shape.
    """
    m = np.asarray(measured, dtype=float)
    pred = np.asarray(predicted, dtype=float)
    corr = np.asarray(corrected, dtype=float)
    sd = np.asarray(noise_sd, dtype=float)
    if not (m.shape == pred.shape == corr.shape == sd.shape):
        raise ValueError(f"rate_agreement: shapes differ: measured {m.shape}, predicted {pred.shape}, "
                         f"corrected {corr.shape}, noise_sd {sd.shape}")
    rng = np.random.default_rng(seed)  # the null distribution is simulated; fixed seed: reproducible tolerances
    r = _pearson(m, pred)
    sel = pred >= min_rate
    medrel = float(np.median(np.abs(m[sel] - pred[sel]) / pred[sel])) if sel.any() else float("nan")
    # Null hypothesis: measured = corrected + Gaussian noise with `margin` times the predicted variance.
    r_null, medrel_null, r_exp, medrel_exp = [], [], [], []
    for _ in range(20):
        eps = rng.standard_normal(m.shape)
        sim = corr + math.sqrt(margin) * sd * eps
        r_null.append(_pearson(sim, pred))
        medrel_null.append(np.median(np.abs(sim[sel] - pred[sel]) / pred[sel]) if sel.any() else np.nan)
        sim1 = corr + sd * eps
        r_exp.append(_pearson(sim1, pred))
        medrel_exp.append(np.median(np.abs(sim1[sel] - pred[sel]) / pred[sel]) if sel.any() else np.nan)
    r_tol = float(np.min(r_null))
    medrel_tol = float(np.max(medrel_null))
    valid = sd > 0
    z = (m[valid] - corr[valid]) / sd[valid]
    mean_z = float(z.mean()) if z.size else float("nan")
    sd_z = float(z.std(ddof=1)) if z.size > 1 else float("nan")
    mean_z_tol = 0.1 + 3.0 / math.sqrt(max(z.size, 1))
    total_pred = float(pred.sum())
    bias_raw = float((m.sum() - total_pred) / total_pred) if total_pred > 0 else float("nan")
    bias_corr = float((m.sum() - corr.sum()) / corr.sum()) if corr.sum() > 0 else float("nan")
    systematic = float((corr.sum() - total_pred) / total_pred) if total_pred > 0 else float("nan")
    # per-neuron means over images: noise averages out, systematic effects remain
    mn, pn = m.mean(axis=0), pred.mean(axis=0)
    seln = pn >= min_rate
    passed = bool(
        np.isfinite(r) and r >= r_tol
        and (not sel.any() or medrel <= medrel_tol)
        and abs(mean_z) <= mean_z_tol
        and 1 / math.sqrt(margin) <= sd_z <= math.sqrt(margin)
    )
    return {
        "layer": layer,
        "n_pairs": int(m.size),
        "pearson_r": r,
        "pearson_r_expected": float(np.mean(r_exp)),
        "median_relative_error": medrel,
        "median_relative_error_expected": float(np.nanmean(medrel_exp)),
        "mean_z": mean_z,
        "sd_z": sd_z,
        "relative_bias_vs_rate_model": bias_raw,
        "relative_bias_explained_by_a_b": systematic,
        "relative_bias_vs_corrected": bias_corr,
        "mean_measured_hz": float(m.mean()),
        "mean_predicted_hz": float(pred.mean()),
        "per_neuron_mean": {
            "pearson_r": _pearson(mn, pn),
            "median_relative_error": float(np.median(np.abs(mn[seln] - pn[seln]) / pn[seln])) if seln.any() else None,
        },
        "tolerance": {
            "pearson_r_min": r_tol,
            "median_relative_error_max": medrel_tol,
            "abs_mean_z_max": mean_z_tol,
            "sd_z_range": [1 / math.sqrt(margin), math.sqrt(margin)],
            "min_rate_hz": min_rate,
            "noise_variance_margin": margin,
        },
        "passed": passed,
        "explanation": (
            "Rates from spike counts over each test phase's averaging window against phi_max*sigma(C) of "
            "the rate model. Tolerances: what the rate model's r and median relative error would be if the "
            "spiking rates were the corrected prediction (kernel sampling, settling and E[sigma(V)] included) "
            f"plus count noise with {margin:g} times the predicted variance; residual standard scores must "
            "have |mean| <= 0.1 + 3/sqrt(n) and sd within the same variance margin."
        ),
    }


def measure_rates(net, rate: RateNetwork, images, labels, recorded_hidden: int = 100, key=(1,)) -> dict:
    """Run test phases with spike and potential recording; return what check 1 needs.

    Parameters
    ----------
    net : SpikingNetwork
        The spiking network, with the weights to test.
    rate : RateNetwork
        The rate model with the same weights.
    images : array (n_images, n_input)
        Test images, pixel values in [0, 1].
    labels : array (n_images,)
        Their classes.
    recorded_hidden : int
        Hidden neurons per layer whose ``V_soma`` is recorded (default 100).
    key : tuple
        Spike-seed key of the recording run.

    Returns
    -------
    dict
        ``"layers"`` (names), per layer the ``"measured"`` rates, the rate model's
        ``"predicted"`` rates, the ``"mean_field"`` and noise-``"corrected"``
        predictions and the expected ``"noise_sd"`` (all Hz, (images, neurons));
        ``"jensen"``: effect (b) measured on the recorded potentials; and
        ``"n_window_steps"``.
    """
    from ..analysis import spike_counts

    params = net.params
    cell, protocol = params.cell, params.protocol
    c = cell_floats(cell)
    images = np.asarray(images, dtype=float)
    n = len(images)
    n_test = int(round(float(protocol.test_duration / cell.dt)))
    n_win = int(round(float(protocol.test_window / cell.dt)))
    n_hidden = len(net.hidden)
    potentials = {f"hidden_{h}": np.arange(min(recorded_hidden, len(net.hidden[h]))) for h in range(n_hidden)}
    potentials["output"] = np.arange(len(net.output))
    rec = net.record(images, labels, mode="test", potentials=potentials, variables=("V_soma",), key=key)
    phases = rec.phases[rec.phases[:, 2] == 2]
    stops = phases[:, 1]
    starts = stops - n_win * c["dt"] * 1e-3
    windows = np.column_stack([starts, stops]) * second
    layer_names = ["input"] + [f"hidden_{h}" for h in range(n_hidden)] + ["output"]
    measured = []
    for name in layer_names:
        counts = spike_counts(rec.spikes[name], windows=windows, t_stop=rec.duration)  # (neurons, windows)
        measured.append(counts.T / (n_win * c["dt"]) * 1000.0)  # Hz
    # rate model
    states = rate.forward(images)
    phi_hz = float(cell.phi_max / (1 / second))
    predicted = [phi_hz * images] + [np.asarray(s.rate) * 1000.0 / 1.0 for s in states]
    noise_inst, noise_win = _noise_per_image(params, rate, images, states, n_win)
    weights = rate.weights
    mf_plain = MeanFieldNetwork(params, weights, batch=n)
    out_plain = mf_plain.run_phase("test", n_test, images)
    mf = MeanFieldNetwork(params, weights, batch=n)
    out_corr = mf.run_phase("test", n_test, images, noise={"V": noise_inst})
    to_hz = 1000.0 / c["dt"]
    mean_field = [phi_hz * images] + [p * to_hz for p in out_plain["p_mean"]]
    corrected = [phi_hz * images] + [p * to_hz for p in out_corr["p_mean"]]
    # noise of a window-rate estimate: Bernoulli count variance + variance of the rate itself
    noise_sd = []
    p_in = c["p_max"] * images
    noise_sd.append(np.sqrt(p_in * (1 - p_in) / n_win) * to_hz)
    for lay in range(len(states)):
        p = out_corr["p_mean"][lay]
        slope = c["p_max"] * sigma(out_corr["V_mean"][lay]) * (1 - sigma(out_corr["V_mean"][lay]))
        var = p * (1 - p) / n_win + slope**2 * noise_win[lay]
        noise_sd.append(np.sqrt(var) * to_hz)
    jensen = _jensen_from_potentials(rec, layer_names[1:], n, n_test, n_win, noise_inst, noise_win, out_corr)
    return {
        "layers": layer_names,
        "measured": measured,
        "predicted": predicted,
        "mean_field": mean_field,
        "corrected": corrected,
        "noise_sd": noise_sd,
        "jensen": jensen,
        "n_window_steps": n_win,
    }


def _noise_per_image(params, rate: RateNetwork, images, states, n_win: int) -> tuple[list, list]:
    """Instantaneous and window-mean variances of every non-input potential, per image (:func:`stationary_noise`)."""
    n = len(images)
    # stationary noise per image (rates in spikes/ms -> the dicts stationary_noise expects)
    noise_inst = [np.zeros((n, k)) for k in rate.sizes[1:]]
    noise_win = [np.zeros((n, k)) for k in rate.sizes[1:]]
    for i in range(n):
        ex = {"pixels": images[i], "s_in": images[i], "rates_f": [s.rate[i] for s in states],
              "C_f": [s.C[i] for s in states]}
        nz_i = stationary_noise(params, rate.weights, ex, "forward", 1)
        nz_w = stationary_noise(params, rate.weights, ex, "forward", n_win)
        for lay in range(len(noise_inst)):
            noise_inst[lay][i] = nz_i["V"][lay]
            noise_win[lay][i] = nz_w["V"][lay]
    return noise_inst, noise_win


def _jensen_from_potentials(rec, names, n: int, n_test: int, n_win: int, noise_inst, noise_win,
                            out_corr: dict) -> dict:
    """Effect (b), ``E[sigma(V)] - sigma(E[V])``, measured on the recorded ``V_soma`` of every non-input layer."""
    jensen = {}
    for lay, name in enumerate(names):
        pot = rec.potentials[name]["V_soma"]
        V = np.asarray(pot.values)[:, : n * n_test].reshape(len(pot.neurons), n, n_test)[:, :, n_test - n_win:]
        mean_sig = sigma(V).mean(axis=2).T  # (images, neurons)
        sig_mean = sigma(V.mean(axis=2)).T
        idx = np.asarray(pot.neurons)
        # the measured gap uses each window's own mean: compare with the within-window variance
        within = np.maximum(noise_inst[lay][:, idx] - noise_win[lay][:, idx], 0.0)
        model_gap = _expected_sigma(V.mean(axis=2).T, within) - sig_mean
        jensen[name] = {
            "n_neurons": int(len(idx)),
            "mean_sd_V_within_window": float(V.std(axis=2).mean()),
            "predicted_sd_V": float(np.sqrt(noise_inst[lay][:, idx]).mean()),
            "mean_sigma_V_minus_sigma_mean_V": float((mean_sig - sig_mean).mean()),
            "mean_sigma_V_minus_sigma_mean_field_V": float(
                (mean_sig - sigma(out_corr["V_mean"][lay][:, idx])).mean()),
            "relative_to_rate": float((mean_sig - sig_mean).sum() / max(sig_mean.sum(), 1e-300)),
            "gaussian_model_gap": float(model_gap.mean()),
            "window_mean_V_sd_measured": float((V.mean(axis=2).T - out_corr["V_mean"][lay][:, idx]).std()),
            "window_mean_V_sd_predicted": float(np.sqrt(noise_win[lay][:, idx].mean())),
        }
    return jensen

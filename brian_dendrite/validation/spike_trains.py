"""Check 5, spike statistics: interval and count statistics against the exact Bernoulli expectation.

The network's spikes are Bernoulli draws per time step with ``p = phi_max sigma(V) dt``,
not Poisson events: at constant ``p`` the ISI CV is ``sqrt(1 - p)`` and the Fano
factor ``1 - p`` (:func:`~brian_dendrite.validation.bernoulli_isi_cv`,
:func:`~brian_dendrite.validation.bernoulli_fano`), both below a Poisson process's 1.

:func:`measure_spike_statistics` records repeated test phases of one image: input
neurons fire at a constant ``p`` for the whole run; hidden neurons are taken in the
settled window of every phase, with their recorded potential giving ``p(t)`` (doubly
stochastic, so above the constant-rate values). The expectation of every estimate
and its sampling sd come from a parametric bootstrap with the same probabilities,
windows and counting bins, so that the finite-sample biases of the estimators are
part of the expectation.

:func:`spike_statistics` turns the per-neuron estimates into standard scores and
requires their mean and sd to be those of independent standard normal scores within
4-sigma bounds.
"""

from __future__ import annotations

import math

import numpy as np
from brian2 import second

from ..model import cell_floats
from ..rate import sigma
from .noise import bernoulli_fano, bernoulli_isi_cv

__all__ = ["measure_spike_statistics", "spike_statistics"]


def _z_summary(z, name: str, n_sigma: float = 4.0) -> dict:
    """Mean and sd of standard scores against 4-sigma bounds for n independent scores."""
    z = np.asarray(z, dtype=float)
    z = z[np.isfinite(z)]
    n = int(z.size)
    if n < 2:
        return {"name": name, "n": n, "mean_z": None, "sd_z": None, "passed": False,
                "tolerance": "need at least 2 scores"}
    mean_tol = n_sigma / math.sqrt(n)
    sd_tol = n_sigma / math.sqrt(2 * n)
    mean_z, sd_z = float(z.mean()), float(z.std(ddof=1))
    return {
        "name": name,
        "n": n,
        "mean_z": mean_z,
        "sd_z": sd_z,
        "tolerance": {"abs_mean_z_max": mean_tol, "sd_z_range": [max(0.0, 1 - sd_tol), 1 + sd_tol]},
        "passed": bool(abs(mean_z) <= mean_tol and abs(sd_z - 1) <= sd_tol),
    }


def _cv_of_windows(steps_list) -> float:
    """ISI CV of spike steps from several windows, intervals inside windows only.

    The intervals of all windows are pooled and passed to
    :func:`elephant.statistics.cv` (population sd, ``ddof = 0``).
    """
    from elephant.statistics import cv

    isis = [np.diff(np.asarray(s)) for s in steps_list if len(s) >= 2]
    isis = np.concatenate(isis) if isis else np.zeros(0)
    if isis.size < 2:
        return float("nan")
    return float(cv(isis.astype(float)))


def _cv_batch(spikes: np.ndarray) -> np.ndarray:
    """ISI CV (ddof = 0) of every replicate of boolean spikes (replicates, windows, steps)."""
    B = spikes.shape[0]
    b, w, t = np.nonzero(spikes)
    same = (b[1:] == b[:-1]) & (w[1:] == w[:-1])
    isi = (t[1:] - t[:-1])[same].astype(float)
    bb = b[1:][same]
    n = np.bincount(bb, minlength=B).astype(float)
    s1 = np.bincount(bb, isi, minlength=B)
    s2 = np.bincount(bb, isi**2, minlength=B)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / n
        var = np.maximum(s2 / n - mean**2, 0.0)
        return np.where(n >= 2, np.sqrt(var) / mean, np.nan)


def _bin_counts(spikes: np.ndarray, bin_steps: int) -> np.ndarray:
    """Counts in consecutive bins of ``bin_steps`` steps inside every window: (..., windows, steps) -> (..., bins)."""
    *lead, n_win, n_steps = spikes.shape
    n_bins = n_steps // bin_steps
    trimmed = spikes[..., : n_bins * bin_steps].reshape(*lead, n_win, n_bins, bin_steps)
    return trimmed.sum(axis=-1).reshape(*lead, n_win * n_bins)


def _bernoulli_reference(p_trace: np.ndarray, n_boot: int, rng, bin_steps: int) -> dict:
    """Mean and sd of ISI CV and Fano factor of Bernoulli spikes with probabilities ``p_trace`` (windows, steps).

    Parametric bootstrap: ``n_boot`` replicates with exactly the probabilities,
    windows and counting bins of the measurement, so that the finite-sample biases
    of both estimators (intervals censored by the windows, the ``(n-1)/n`` of a
    ddof = 0 variance over ``n`` bins) are part of the expectation.
    """
    p_trace = np.asarray(p_trace, dtype=float)
    spikes = rng.random((n_boot, *p_trace.shape)) < p_trace
    cvs = _cv_batch(spikes)
    counts = _bin_counts(spikes, bin_steps).astype(float)
    mean = counts.mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        fanos = np.where(mean > 0, counts.var(axis=1) / np.where(mean > 0, mean, 1.0), np.nan)
    return {"cv_mean": float(np.nanmean(cvs)), "cv_sd": float(np.nanstd(cvs, ddof=1)),
            "fano_mean": float(np.nanmean(fanos)), "fano_sd": float(np.nanstd(fanos, ddof=1))}


def spike_statistics(groups: dict) -> dict:
    """Check 5: spike statistics against the exact Bernoulli expectation.

    Parameters
    ----------
    groups : dict
        Name -> dict with per-neuron arrays ``cv``, ``cv_expected``, ``cv_sd`` (sd of
        the estimate under the expectation), ``fano``, ``fano_expected``,
        ``fano_sd``, and optionally ``count_z`` (standard scores of window spike
        counts given the recorded rates).

    Returns
    -------
    dict
        Per group and statistic, the standard scores' mean and sd against 4-sigma
        bounds for independent scores (``|mean z| <= 4/sqrt(n)``,
        ``|sd z - 1| <= 4/sqrt(2n)``); passes if all do.
    """
    out = {"groups": {}}
    passed = True
    for name, g in groups.items():
        entry = {}
        for stat in ("cv", "fano"):
            z = (np.asarray(g[stat]) - np.asarray(g[f"{stat}_expected"])) / np.asarray(g[f"{stat}_sd"])
            s = _z_summary(z, f"{name} {stat}")
            s["measured_mean"] = float(np.nanmean(g[stat]))
            s["expected_mean"] = float(np.nanmean(g[f"{stat}_expected"]))
            for extra in ("bernoulli", "bernoulli_limit", "poisson"):
                if f"{stat}_{extra}" in g and np.size(g[f"{stat}_{extra}"]):
                    s[f"{extra}_mean"] = float(np.nanmean(g[f"{stat}_{extra}"]))
            entry[stat] = s
            passed &= s["passed"]
        if "count_z" in g:
            s = _z_summary(g["count_z"], f"{name} window counts given V")
            entry["count_given_rate"] = s
            passed &= s["passed"]
        entry["n_neurons"] = int(np.sum(np.isfinite(np.asarray(g["cv"], dtype=float))))
        out["groups"][name] = entry
    out["passed"] = bool(passed)
    out["explanation"] = (
        "Spikes are Bernoulli per time step with p = phi_max*sigma(V)*dt. Input neurons (constant p = "
        "0.2*pixel) must show ISI CV sqrt(1-p) and Fano factor 1-p (not Poisson's 1); hidden neurons, given "
        "their recorded potentials, must show the CV and Fano factor of Bernoulli draws from the recorded "
        "p(t) (doubly stochastic: above the constant-rate Bernoulli values), and window counts with "
        "standard scores (N - sum p)/sqrt(sum p(1-p)) of mean 0 and sd 1. Expectations and their sampling "
        "sd come from parametric bootstrap with the same p, window lengths and number of windows; 4-sigma "
        "bounds on the mean and sd of the standard scores of n independent neurons."
    )
    return out


def measure_spike_statistics(net, image, label, repeats: int, n_boot: int, seed: int, key=(5,),
                             min_input_pixel: float = 0.25, min_hidden_rate_hz: float = 10.0,
                             input_bin_steps: int = 50, hidden_bins_per_window: int = 4) -> dict:
    """Record ``repeats`` test phases of one image; build the inputs of :func:`spike_statistics`.

    Input neurons fire at a constant probability for the whole run: their ISIs are
    taken over the whole run and their counts in bins of ``input_bin_steps``.
    Hidden neurons are taken in the settled averaging window of each test phase
    (the state is zeroed between phases): ISIs inside windows, counts in
    ``hidden_bins_per_window`` bins per window; their expectation is the bootstrap
    from the recorded ``p(t) = p_max sigma(V_soma(t))``, and, for comparison, from a
    constant ``p`` equal to its mean.

    Parameters
    ----------
    net : SpikingNetwork
        The spiking network, with the weights to test.
    image : array (n_input,)
        The image, pixel values in [0, 1].
    label : int
        Its class.
    repeats : int
        Test phases recorded.
    n_boot : int
        Bootstrap replicates per input neuron (half, at least 20, per hidden neuron).
    seed : int
        Seeds the bootstrap.
    key : tuple
        Spike-seed key of the recording run.
    min_input_pixel : float
        Input neurons with a smaller pixel value are left out (default 0.25).
    min_hidden_rate_hz : float
        Hidden neurons firing less on average are left out (default 10 Hz).
    input_bin_steps : int
        Counting bin of the input neurons, in steps (default 50).
    hidden_bins_per_window : int
        Counting bins per averaging window of the hidden neurons (default 4).

    Returns
    -------
    dict
        ``{"input": ..., "hidden_0": ...}``: per-neuron arrays as
        :func:`spike_statistics` expects them, plus the constant-rate Bernoulli and
        Poisson values and, for ``hidden_0``, ``count_z``.
    """
    from ..analysis import fano_factor

    params = net.params
    cell, protocol = params.cell, params.protocol
    c = cell_floats(cell)
    n_test = int(round(float(protocol.test_duration / cell.dt)))
    n_win = int(round(float(protocol.test_window / cell.dt)))
    images = np.repeat(np.asarray(image, dtype=float)[None], repeats, axis=0)
    labels = np.full(repeats, int(label))
    rec = net.record(images, labels, mode="test", potentials={"hidden_0": np.arange(len(net.hidden[0]))},
                     variables=("V_soma",), key=key)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x55]))
    n_total = repeats * n_test

    def spike_matrix(layer, n_neurons):
        t = np.rint(np.asarray(rec.spikes[layer].times / second) / (c["dt"] * 1e-3)).astype(np.int64)
        i = np.asarray(rec.spikes[layer].indices)
        m = np.zeros((n_neurons, n_total), dtype=bool)
        keep = t < n_total
        m[i[keep], t[keep]] = True
        return m

    def record_stat(g, wins_bool, ref, bin_steps, p_mean):
        g["cv"].append(_cv_of_windows([np.flatnonzero(w) for w in wins_bool]))
        g["fano"].append(float(fano_factor(_bin_counts(wins_bool, bin_steps).astype(float))))
        g["cv_expected"].append(ref["cv_mean"])
        g["cv_sd"].append(ref["cv_sd"])
        g["fano_expected"].append(ref["fano_mean"])
        g["fano_sd"].append(ref["fano_sd"])
        g["cv_bernoulli_limit"].append(float(bernoulli_isi_cv(p_mean)))
        g["fano_bernoulli_limit"].append(float(bernoulli_fano(p_mean)))
        g["cv_poisson"].append(1.0)
        g["fano_poisson"].append(1.0)
        g["p"].append(p_mean)

    keys = ("cv", "cv_expected", "cv_sd", "fano", "fano_expected", "fano_sd", "cv_bernoulli_limit",
            "fano_bernoulli_limit", "cv_poisson", "fano_poisson", "p", "cv_bernoulli", "fano_bernoulli")
    groups = {}
    # input neurons: constant p for the whole run, one window
    pix = np.asarray(image, dtype=float).ravel()
    spikes_in = spike_matrix("input", len(pix))
    g = {k: [] for k in keys}
    for k in np.flatnonzero(pix >= min_input_pixel):
        p = c["p_max"] * pix[k]
        ref = _bernoulli_reference(np.full((1, n_total), p), n_boot, rng, input_bin_steps)
        record_stat(g, spikes_in[k][None], ref, input_bin_steps, p)
        g["cv_bernoulli"].append(ref["cv_mean"])
        g["fano_bernoulli"].append(ref["fano_mean"])
    groups["input"] = {k: np.asarray(v, dtype=float) for k, v in g.items()}
    # hidden neurons: Bernoulli given the recorded potential, settled windows only
    pot = rec.potentials["hidden_0"]["V_soma"]
    V = np.asarray(pot.values)[:, :n_total].reshape(len(pot.neurons), repeats, n_test)[:, :, n_test - n_win:]
    P = c["p_max"] * sigma(V)  # (neurons, windows, steps)
    spikes_h = spike_matrix("hidden_0", len(net.hidden[0])).reshape(-1, repeats, n_test)[:, :, n_test - n_win:]
    bin_h = n_win // hidden_bins_per_window
    g = {k: [] for k in keys}
    zs = []
    n_boot_h = max(n_boot // 2, 20)
    for k in range(len(pot.neurons)):
        pbar = float(P[k].mean())
        if pbar * 1000.0 / c["dt"] < min_hidden_rate_hz:
            continue
        wins = spikes_h[int(pot.neurons[k])]
        counts = wins.sum(axis=1)
        zs.append((counts - P[k].sum(axis=1)) / np.sqrt((P[k] * (1 - P[k])).sum(axis=1)))
        ref = _bernoulli_reference(P[k], n_boot_h, rng, bin_h)
        record_stat(g, wins, ref, bin_h, pbar)
        const = _bernoulli_reference(np.full(P[k].shape, pbar), n_boot_h, rng, bin_h)
        g["cv_bernoulli"].append(const["cv_mean"])
        g["fano_bernoulli"].append(const["fano_mean"])
    groups["hidden_0"] = {k: np.asarray(v, dtype=float) for k, v in g.items()}
    groups["hidden_0"]["count_z"] = np.concatenate(zs) if zs else np.zeros(0)
    return groups

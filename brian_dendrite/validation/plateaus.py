"""Check 2, plateaus: the hidden layers' plateau potentials after single training examples.

After a training example the spiking network's hidden neurons hold the plateau
potentials ``alpha_f`` and ``alpha_t``: ``sigma`` of the window-mean apical potential
of the forward and the target phase. The rate model's are
:meth:`~brian_dendrite.rate.RateNetwork.example_quantities`. The spiking plateaus
are measured by :func:`~brian_dendrite.validation.measure_examples` (shared with
check 3, which uses the same runs): each example is run several times from the same
network state with different spike seeds, so that the noise of a plateau is measured
rather than assumed.

:func:`plateau_agreement` passes if the mean squared difference between spiking and
rate plateaus is at most :data:`~brian_dendrite.validation.NOISE_VARIANCE_MARGIN`
times the repeat-to-repeat noise variance, for ``alpha_f``, ``alpha_t`` and
``alpha_t - alpha_f``.
"""

from __future__ import annotations

import math

import numpy as np
from brian2 import ms

from ..model import psp_kernels, window_variance_factor
from ..rate import sigma
from ._common import _pearson
from .noise import NOISE_VARIANCE_MARGIN, stationary_noise

__all__ = ["plateau_agreement"]


def plateau_agreement(alpha_spiking, alpha_rate, layer: str = "hidden_0", analytic_sd=None,
                      margin: float = NOISE_VARIANCE_MARGIN) -> dict:
    """Check 2 for one hidden layer: spiking plateaus against the rate model's.

    Parameters
    ----------
    alpha_spiking : dict of array (n_repeats, n_examples, n_neurons)
        ``{"f": alpha_f, "t": alpha_t}`` of the spiking network, each example run
        ``n_repeats >= 2`` times from the same state with different spike seeds.
    alpha_rate : dict of array (n_examples, n_neurons)
        The rate model's plateaus for the same weights, images and labels.
    layer : str
        Name of the layer, copied into the result.
    analytic_sd : dict, optional
        Per phase key, named arrays (n_examples, n_neurons) of predicted noise sd
        (e.g. Poisson-only and full propagation), reported beside the measured one.
    margin : float
        Allowed ratio of mean squared spiking-rate difference to the noise variance
        (default :data:`NOISE_VARIANCE_MARGIN`).

    Returns
    -------
    dict
        Per phase ``f``, ``t`` and the difference ``t - f``: Pearson r, mean absolute
        difference, the noise sd measured from the repeats and the tolerances.
        Passing requires, for ``f``, ``t`` and ``t - f``, the mean squared
        difference between spiking and rate plateaus to be at most ``margin`` times
        the repeat-to-repeat noise variance (a systematic part with rms up to
        ``sqrt(margin - 1) = 0.71`` noise sd is accepted).

    Raises
    ------
    ValueError
        If the spiking plateaus are not (repeats, examples, neurons) matching the
        rate plateaus, or have fewer than 2 repeats.
    """
    out = {"layer": layer, "phases": {}}
    passed = True
    spk = {k: np.asarray(v, dtype=float) for k, v in alpha_spiking.items()}
    rat = {k: np.asarray(v, dtype=float) for k, v in alpha_rate.items()}
    spk["t-f"] = spk["t"] - spk["f"]
    rat["t-f"] = rat["t"] - rat["f"]
    for key in ("f", "t", "t-f"):
        s, r = spk[key], rat[key]
        if s.ndim != 3 or s.shape[1:] != r.shape:
            raise ValueError(f"plateau_agreement: spiking plateaus must be (repeats, examples, neurons) matching "
                             f"the rate plateaus {r.shape}; got {s.shape}")
        R = s.shape[0]
        if R < 2:
            raise ValueError("plateau_agreement: need at least 2 repeats per example to measure the noise")
        noise_var = float(s.var(axis=0, ddof=1).mean())
        diff = s - r[None]
        msd = float((diff**2).mean())
        mad = float(np.abs(diff).mean())
        r_corr = _pearson(s, np.broadcast_to(r, s.shape))
        var_r = float(r.var())
        r_expected = math.sqrt(var_r / (var_r + noise_var)) if var_r + noise_var > 0 else float("nan")
        ratio = msd / noise_var if noise_var > 0 else float("inf")
        ok = bool(ratio <= margin)
        passed &= ok
        entry = {
            "pearson_r": r_corr,
            "pearson_r_expected_from_noise": r_expected,
            "mean_abs_difference": mad,
            "mean_abs_difference_expected_from_noise": math.sqrt(2 / math.pi * noise_var),
            "rms_difference": math.sqrt(msd),
            "noise_sd_from_repeats": math.sqrt(noise_var),
            "systematic_rms": math.sqrt(max(msd - noise_var, 0.0)),
            "msd_over_noise_variance": ratio,
            "mean_difference": float(diff.mean()),
            "tolerance": {"msd_over_noise_variance_max": margin},
            "passed": ok,
        }
        if analytic_sd is not None and key in analytic_sd:
            for name, arr in analytic_sd[key].items():
                entry[f"noise_sd_{name}"] = float(np.sqrt(np.mean(np.asarray(arr) ** 2)))
        out["phases"][key] = entry
    out["passed"] = bool(passed)
    out["explanation"] = (
        "Each example is run several times from the same network state with different spike seeds; the "
        "repeat-to-repeat variance of alpha is the irreducible noise of a 20-ms window of the apical "
        "potential (Y times kernel-filtered output spikes, themselves doubly stochastic). The spiking and "
        f"rate plateaus agree if their mean squared difference is at most {margin:g} times that variance, "
        "i.e. any systematic difference is below 0.71 noise sd."
    )
    return out


def _analytic_plateau_sd(params, weights, images, qs: list) -> dict:
    """Predicted noise sd of ``alpha_f`` and ``alpha_t`` per hidden layer and example.

    Two predictions of the apical noise, each passed through the slope of ``sigma``:
    Poisson output spikes only (``"poisson_output_only"``), and the full propagation of
    every layer's spike noise by :func:`stationary_noise` (``"propagated"``).
    """
    win = int(round(float(params.protocol.window_length / params.cell.dt)))
    n_h = len(weights.Y)
    analytic = {}
    for h in range(n_h):
        sd_p = {"f": [], "t": []}
        sd_full = {"f": [], "t": []}
        trace = psp_kernels(params.cell)["trace"]
        fac = window_variance_factor(trace, win)
        for e, q in enumerate(qs):
            for ph, suffix in (("f", "f"), ("t", "t")):
                p_out = np.asarray(q[f"rates_{suffix}"][-1]) * float(params.cell.dt / ms)
                varA_p = (weights.Y[h] ** 2) @ (p_out * (1 - p_out)) * fac
                ex = dict(q, pixels=images[e])
                varA = stationary_noise(params, weights, ex, "forward" if ph == "f" else "target", win)["A"][h]
                slope = sigma(q[f"A_{suffix}"][h]) * (1 - sigma(q[f"A_{suffix}"][h]))
                sd_p[ph].append(slope * np.sqrt(varA_p))
                sd_full[ph].append(slope * np.sqrt(varA))
        analytic[h] = {ph: {"poisson_output_only": np.array(sd_p[ph]),
                            "propagated": np.array(sd_full[ph])} for ph in ("f", "t")}
    return analytic


def _plateau_check(runs: dict, qs: list, mf: dict, analytic: dict) -> tuple[dict, tuple]:
    """:func:`plateau_agreement` per hidden layer, with how much of the residual the mean-field twin explains.

    Returns the results per layer and the spiking and rate plateaus of the first
    hidden layer (the arguments of :func:`plot_plateau_scatter`).
    """
    per_layer = {}
    shown = None
    for h in range(len(analytic)):
        spk = {"f": runs["alpha_f"][h], "t": runs["alpha_t"][h]}
        rat = {"f": np.array([q["alpha_f"][h] for q in qs]), "t": np.array([q["alpha_t"][h] for q in qs])}
        res = plateau_agreement(spk, rat, layer=f"hidden_{h}", analytic_sd=analytic[h])
        # how much of the residual the mean-field twin (transients + Jensen) explains
        mfa = {"f": mf["alpha_f"][h], "t": mf["alpha_t"][h]}
        mfa["t-f"] = mfa["t"] - mfa["f"]
        spk["t-f"] = spk["t"] - spk["f"]
        rat["t-f"] = rat["t"] - rat["f"]
        for key in ("f", "t", "t-f"):
            res["phases"][key]["rms_difference_vs_mean_field"] = float(
                np.sqrt(((spk[key] - mfa[key][None]) ** 2).mean()))
            res["phases"][key]["rms_mean_field_minus_rate"] = float(
                np.sqrt(((mfa[key] - rat[key]) ** 2).mean()))
        per_layer[f"hidden_{h}"] = res
        if h == 0:
            shown = (spk, rat)
    return per_layer, shown

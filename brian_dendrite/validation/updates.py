"""Check 3, weight updates: the weight change of single training examples, spiking against rate.

:func:`measure_examples` presents single training examples to the spiking network
and records, per example and repeat (different spike seeds from the same state), the
weight change (weights after minus before a one-example training chunk) and the
plateaus of check 2. ``_mean_field_examples`` runs the same examples, with the same
phase lengths, through the noise-free mean-field twin.

:func:`update_agreement` compares the spiking updates with the rate model's
:meth:`~brian_dendrite.rate.RateNetwork.update_deltas` as cosine similarities: the
mean cosine may fall short of the noise ceiling (the cosine between two spiking runs
of the same example, square-rooted) by at most ``max(0.05, 3 standard errors)``, and
the spiking update's component along the rate update must have the rate update's
size within [0.8, 1.25].
"""

from __future__ import annotations

import math

import numpy as np

from ..model import ModelParameters, Weights
from ..rate import RateNetwork
from ._common import _cos, _pearson, _reset_state
from .mean_field import MeanFieldNetwork
from .noise import stationary_noise

__all__ = ["measure_examples", "update_agreement"]


def update_agreement(dW_spiking, dW_rate, layer_names=None, min_margin: float = 0.05) -> dict:
    """Check 3: cosine similarity of spiking and rate weight changes, per layer.

    Parameters
    ----------
    dW_spiking : nested list [example][repeat][layer] of array
        Weight changes of single examples in the spiking network (``n_repeats >= 2``
        runs per example from the same state, different spike seeds).
    dW_rate : nested list [example][layer] of array
        The rate model's weight changes for the same weights and examples.
    layer_names : list of str, optional
        Names of the weight layers (default ``W_0``, ``W_1``, ...).
    min_margin : float
        Smallest allowed shortfall of the mean cosine below the noise ceiling (default 0.05).

    Returns
    -------
    dict
        Per layer: cosine with the rate update per example (mean, min), the noise
        ceiling ``sqrt(cos(spiking run, other spiking run))`` averaged over pairs
        (the cosine expected if the rate update were the spiking network's mean
        update), the projection scale ``<dW_spk, dW_rate>/|dW_rate|^2`` and the norm
        ratio. Passing requires, per layer, mean cosine >= mean ceiling -
        max(min_margin, 3 standard errors of the per-example shortfall) and a mean
        projection scale within [0.8, 1.25].

    Raises
    ------
    ValueError
        If the two models have different or no examples, or an example has fewer
        than 2 spiking repeats.
    """
    n_ex = len(dW_spiking)
    if n_ex != len(dW_rate) or n_ex == 0:
        raise ValueError("update_agreement: need the same, non-zero number of examples for both models")
    n_layers = len(dW_rate[0])
    names = layer_names or [f"W_{k}" for k in range(n_layers)]
    result = {"layers": {}, "n_examples": n_ex}
    passed = True
    for lay in range(n_layers):
        cos_rate, ceiling, scale, norm_ratio = [], [], [], []
        for e in range(n_ex):
            reps = [np.asarray(r[lay], dtype=float) for r in dW_spiking[e]]
            ref = np.asarray(dW_rate[e][lay], dtype=float)
            if len(reps) < 2:
                raise ValueError("update_agreement: need at least 2 spiking repeats per example")
            cr = [_cos(x, ref) for x in reps]
            pairs = [_cos(reps[i], reps[j]) for i in range(len(reps)) for j in range(i + 1, len(reps))]
            cos_rate.append(float(np.mean(cr)))
            ceiling.append(math.sqrt(max(float(np.mean(pairs)), 0.0)))
            nr = float(np.linalg.norm(ref))
            scale.append(float(np.mean([x.ravel() @ ref.ravel() for x in reps]) / nr**2) if nr > 0 else np.nan)
            norm_ratio.append(float(np.mean([np.linalg.norm(x) for x in reps]) / nr) if nr > 0 else np.nan)
        cos_rate, ceiling = np.array(cos_rate), np.array(ceiling)
        shortfall = ceiling - cos_rate
        se = float(shortfall.std(ddof=1) / math.sqrt(n_ex)) if n_ex > 1 else float("inf")
        allowed = max(min_margin, 3 * se)
        mean_scale = float(np.nanmean(scale))
        ok = bool(cos_rate.mean() >= ceiling.mean() - allowed and 0.8 <= mean_scale <= 1.25)
        passed &= ok
        result["layers"][names[lay]] = {
            "cosine_mean": float(cos_rate.mean()),
            "cosine_min": float(cos_rate.min()),
            "cosine_per_example": cos_rate.tolist(),
            "noise_ceiling_mean": float(ceiling.mean()),
            "noise_ceiling_per_example": ceiling.tolist(),
            "projection_scale_mean": mean_scale,
            "norm_ratio_mean": float(np.nanmean(norm_ratio)),
            "tolerance": {"cosine_mean_min": float(ceiling.mean() - allowed), "allowed_shortfall": allowed,
                          "projection_scale_range": [0.8, 1.25]},
            "passed": ok,
        }
    result["passed"] = bool(passed)
    result["explanation"] = (
        "dW of one example = weights after minus before a one-example train_chunk. If the rate update were "
        "the spiking network's mean update, its cosine with one spiking run would equal the noise ceiling "
        "sqrt(cos between two spiking runs of the same example). The mean cosine may fall short of the "
        "mean ceiling by at most max(0.05, 3 standard errors); the component of the spiking update along "
        "the rate update must have the same size within [0.8, 1.25]."
    )
    return result


def measure_examples(net, params: ModelParameters, weights: Weights, images, labels, repeats: int = 3,
                     mode: str = "warmup", previous=None, key: int = 0) -> dict:
    """Run single training examples in the spiking network; collect dW and plateaus.

    Modes (the spiking network carries its state from one example to the next, the
    rate model has none):

    ``'warmup'`` (used for the pass/fail checks)
        state zeroed, the same example presented once (its weight change discarded by
        restoring the weights), then the measured example from that state,
        ``repeats`` times with different spike seeds. Every layer then starts at the
        steady state of this image; only the forward/target switch, which is part of
        the model, leaves a transient.
    ``'carryover'``
        as in training: the previous example of the sequence (``previous``) is
        presented first. Diagnostic: shows the effect of the 30-ms settling on
        plateaus.
    ``'reset'``
        state zeroed, no warm-up. Diagnostic: three kernels in series (input ->
        hidden -> output -> apical, mean delay 13 ms each) have not settled by the
        forward window.

    Parameters
    ----------
    net : SpikingNetwork
        The spiking network; its weights are restored to ``weights`` at the end.
    params : ModelParameters
        The model of ``net``.
    weights : Weights
        The weights every example starts from.
    images : array (n_examples, n_input)
        Training images, pixel values in [0, 1].
    labels : array (n_examples,)
        Their classes.
    repeats : int
        Runs of every example from the same state, with different spike seeds (default 3).
    mode : {'warmup', 'carryover', 'reset'}
        How the state before an example is prepared (default ``'warmup'``).
    previous : (array, array), optional
        Images and labels of the preceding examples, needed for ``'carryover'``.
    key : int
        Spike-seed key of the runs (default 0).

    Returns
    -------
    dict
        ``dW`` [example][repeat][layer], ``db``, ``alpha_f`` / ``alpha_t`` arrays
        (repeats, examples, neurons) per hidden layer, ``s_mean_f`` etc., and the
        phase tables of the runs.

    Raises
    ------
    ValueError
        For an unknown ``mode``.
    """
    if mode not in ("warmup", "carryover", "reset"):
        raise ValueError(f"mode = {mode!r}: expected 'warmup', 'carryover' or 'reset'")
    images = np.asarray(images, dtype=float)
    labels = np.asarray(labels, dtype=int)
    n_ex = len(labels)
    n_hidden = len(net.hidden)
    out = {"dW": [], "db": [], "alpha_f": [np.zeros((repeats, n_ex, len(g))) for g in net.hidden],
           "alpha_t": [np.zeros((repeats, n_ex, len(g))) for g in net.hidden],
           "s_mean_f": [], "V_mean_f": [], "rate_mean_t": [], "schedules": [], "warmup_schedules": []}
    mode_code = {"warmup": 1, "carryover": 2, "reset": 3}[mode]
    W_before = weights
    for e in range(n_ex):
        img, lab = images[e : e + 1], labels[e : e + 1]
        net.set_weights(W_before)
        _reset_state(net)
        if mode == "warmup":
            net.train_chunk(img, lab, key=(key, mode_code, e, 10_000))
        elif mode == "carryover":
            prev_img, prev_lab = previous[0][e : e + 1], previous[1][e : e + 1]
            net.train_chunk(prev_img, prev_lab, key=(key, mode_code, e, 10_000))
        out["warmup_schedules"].append(None if mode == "reset" else net.last_schedule.phase_table.copy())
        state = net.get_state()
        dWs, dbs, s_f, V_f, r_t, scheds = [], [], [], [], [], []
        for r in range(repeats):
            net.set_state(state)
            # independent repeats: the saved state holds each neuron's next spike threshold
            net.redraw_spike_generators((key, mode_code, e, r))
            net.set_weights(W_before)
            net.train_chunk(img, lab, key=(key, mode_code, e, r))
            after = net.get_weights()
            dWs.append([a - b for a, b in zip(after.W, W_before.W, strict=True)])
            dbs.append([a - b for a, b in zip(after.b, W_before.b, strict=True)])
            for h in range(n_hidden):
                out["alpha_f"][h][r, e] = np.array(net.hidden[h].alpha_f[:], dtype=float)
                out["alpha_t"][h][r, e] = np.array(net.hidden[h].alpha_t[:], dtype=float)
            # np.array copies: a state variable read with [:] may be a view that the next run overwrites
            s_f.append([np.array(g.s_mean_f[:], dtype=float) for g in net.layers[:-1]])
            V_f.append([np.array(g.V_mean_f[:], dtype=float) for g in net.layers[1:]])
            r_t.append(np.array(net.output.rate_mean_t[:], dtype=float))
            scheds.append(net.last_schedule.phase_table.copy())
        out["dW"].append(dWs)
        out["db"].append(dbs)
        out["s_mean_f"].append(s_f)
        out["V_mean_f"].append(V_f)
        out["rate_mean_t"].append(r_t)
        out["schedules"].append(scheds)
    net.set_weights(W_before)
    return out


def _mean_field_examples(params, weights, images, labels, runs: dict, mode: str, noise: bool, previous=None):
    """Mean-field twin of :func:`measure_examples` with the same phase lengths."""
    n_ex = len(labels)
    n_hidden = len(weights.Y)
    rate = RateNetwork(params, weights)
    alpha_f = [np.zeros((n_ex, len(weights.b[h]))) for h in range(n_hidden)]
    alpha_t = [np.zeros_like(a) for a in alpha_f]
    dW = []
    win = int(round(float(params.protocol.window_length / params.cell.dt)))
    for e in range(n_ex):
        mf = MeanFieldNetwork(params, weights, batch=1)
        q = rate.example_quantities(images[e], labels[e])
        nz = None
        if noise:
            ex = dict(q, pixels=images[e])
            f_i = stationary_noise(params, weights, ex, "forward", 1)
            t_i = stationary_noise(params, weights, ex, "target", 1)
            f_w = stationary_noise(params, weights, ex, "forward", win)
            t_w = stationary_noise(params, weights, ex, "target", win)
            nz = {"f": {"V": f_i["V"], "A": f_w["A"]}, "t": {"V": t_i["V"], "A": t_w["A"]}, "Vwin": f_w["V"]}
        warm = runs["warmup_schedules"][e]
        if warm is not None:
            w_img = images[e] if mode == "warmup" else previous[0][e]
            w_lab = labels[e] if mode == "warmup" else previous[1][e]
            mf.run_phase("forward", int(warm[0, 1]), w_img[None], noise=nz and nz["f"])
            mf.run_phase("target", int(warm[1, 1]), w_img[None], np.array([w_lab]), noise=nz and nz["t"])
        sched = runs["schedules"][e][0]
        f = mf.run_phase("forward", int(sched[0, 1]), images[e][None], noise=nz and nz["f"])
        t = mf.run_phase("target", int(sched[1, 1]), images[e][None], np.array([labels[e]]), noise=nz and nz["t"])
        for h in range(n_hidden):
            alpha_f[h][e] = f["alpha"][h][0]
            alpha_t[h][e] = t["alpha"][h][0]
        dW.append([u[0][0] for u in mf.example_update(f, t, None if nz is None else nz["Vwin"])])
    return {"alpha_f": alpha_f, "alpha_t": alpha_t, "dW": dW}


def _projection_scale(dW, dW_rate, k: int) -> float:
    """Mean over examples of ``<dW, dW_rate>/|dW_rate|^2`` for weight layer ``k`` (dW: [example][layer])."""
    return float(np.mean([dW[e][k].ravel() @ dW_rate[e][k].ravel() / np.sum(dW_rate[e][k] ** 2)
                          for e in range(len(dW_rate))]))


def _update_check(runs: dict, mf: dict, mf0: dict, qs: list, dW_rate: list, rate: RateNetwork, images, labels,
                  repeats: int) -> dict:
    """:func:`update_agreement` of the warm-up runs, with what the mean-field twin and the factors of dW explain."""
    names = [f"W_{k}" for k in range(len(dW_rate[0]))]
    upd = update_agreement(runs["dW"], dW_rate, names)
    for k, name in enumerate(names):
        upd["layers"][name]["cosine_mean_field_vs_rate_mean"] = float(
            np.mean([_cos(mf["dW"][e][k], dW_rate[e][k]) for e in range(len(labels))]))
        upd["layers"][name]["projection_scale_mean_field"] = _projection_scale(mf["dW"], dW_rate, k)
        upd["layers"][name]["projection_scale_mean_field_without_noise"] = _projection_scale(mf0["dW"], dW_rate, k)
        # dW = delta s^T in both models: cos(dW) = cos(delta) * cos(s_pre)
        upd["layers"][name]["cosine_presynaptic_factor_mean"] = float(np.mean([
            _cos(runs["s_mean_f"][e][r][k], qs[e]["s_pre_f"][k])
            for e in range(len(labels)) for r in range(repeats)]))
        upd["layers"][name]["cosine_bias_update_mean"] = float(np.mean([
            _cos(runs["db"][e][r][k], rate.update_deltas(images[e], labels[e])[k][1])
            for e in range(len(labels)) for r in range(repeats)]))
    return upd


def _diagnostic_mode(d_runs: dict, mf_d: dict, dW_rate: list, qs: list) -> dict:
    """Summary of one diagnostic mode of :func:`measure_examples` (one run per example) against the rate model."""
    n_ex = len(dW_rate)
    names = [f"W_{k}" for k in range(len(dW_rate[0]))]
    spiking_dW = [d_runs["dW"][e][0] for e in range(n_ex)]
    alpha_f_rate = [q["alpha_f"][0] for q in qs]
    return {
        "cosine_mean": {names[k]: float(np.mean([_cos(spiking_dW[e][k], dW_rate[e][k]) for e in range(n_ex)]))
                        for k in range(len(names))},
        "projection_scale_mean": {names[k]: _projection_scale(spiking_dW, dW_rate, k) for k in range(len(names))},
        "mean_field_cosine_mean": {names[k]: float(np.mean([_cos(mf_d["dW"][e][k], dW_rate[e][k])
                                                            for e in range(n_ex)]))
                                   for k in range(len(names))},
        "mean_field_projection_scale_mean": {names[k]: _projection_scale(mf_d["dW"], dW_rate, k)
                                             for k in range(len(names))},
        "alpha_f_pearson_r": _pearson(d_runs["alpha_f"][0][0], alpha_f_rate),
        "alpha_t_pearson_r": _pearson(d_runs["alpha_t"][0][0], [q["alpha_t"][0] for q in qs]),
        "alpha_f_rms_difference": float(np.sqrt(np.mean(
            (d_runs["alpha_f"][0][0] - np.array(alpha_f_rate)) ** 2))),
    }

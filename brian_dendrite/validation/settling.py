"""Settling of the training protocol: how far the averaging windows are from the steady state.

The learning rule (specification 1.9) compares window means of the forward and the
target phase. The rate abstraction evaluates it at the steady state of each phase;
the spiking network at the end of phases of about 50 ms, with the state carried
over from the previous example (specification 1.6, section 5 items 7 and 8). Whatever
has not settled by the window is a residue of the previous phase, and it enters the
update of every example.

How deep the residue is depends on the kernel (specification section 5, item 3). Each
layer of the feedforward path, and the feedback path to the apical dendrites,
passes its input through one PSP kernel. The full double exponential is the density
of a sum of two exponential delays (means ``tau_L`` and ``tau_s``), so ``k`` kernels
in series leave a residue ``P(T_1 + ... + T_k > t)``: the output's basal potential is
two kernels deep (about 20 % left 30 ms after a switch), the apical potential three
(about 40 %). The published code's kernel is cut after 10 ms, so three kernels in
series have fully settled after 30 ms; that is the settling time the paper's
protocol assumes.

The residue has a fixed size set by how different consecutive examples are, while
the learning signal (target minus forward) shrinks as the network learns. At
initial weights the residue is negligible; once the error is small it dominates the
update. :func:`settling_fidelity` measures that with the noise-free mean-field twin
(:class:`~brian_dendrite.validation.MeanFieldNetwork`: the spiking network's update
with spikes replaced by their probabilities), so the result is about the protocol
and the kernel alone, not spike noise.

``python validation/settling.py`` runs it for the paper's and the alternative
kernels and phase lengths and writes ``validation/settling.md``.
"""

from __future__ import annotations

import numpy as np

from ..model import ModelParameters, Weights
from ..rate import RateNetwork
from ._common import _cos
from .mean_field import MeanFieldNetwork

__all__ = ["settling_fidelity"]


def _rms(x) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def _rate_references(rate: RateNetwork, images, labels, idx, skip: int) -> tuple[dict, dict]:
    """The rate model's dW and example quantities of every scored example, keyed by (stream, example)."""
    ref_dW, ref_q = {}, {}
    streams, examples = idx.shape
    for s in range(streams):
        for e in range(skip, examples):
            i = idx[s, e]
            ref_dW[s, e] = [dW for dW, _ in rate.update_deltas(images[i], labels[i])]
            ref_q[s, e] = rate.example_quantities(images[i], labels[i])
    return ref_dW, ref_q


def _window_quantity(key: str, layer: int, forward: dict, target: dict, stream: int):
    """One window quantity of the twin for one stream: output ``V_f``, ``alpha_f``, ``alpha_t`` or their difference."""
    if key == "V_f":
        return forward["V_mean"][layer][stream]
    if key == "alpha_f":
        return forward["alpha"][layer][stream]
    if key == "alpha_t":
        return target["alpha"][layer][stream]
    return target["alpha"][layer][stream] - forward["alpha"][layer][stream]


def settling_fidelity(params: ModelParameters, weights: Weights, images, labels, phase_lengths=(50, 70, 100, 300),
                      streams: int = 25, examples: int = 12, skip: int = 2, seed: int = 0) -> dict:
    """Per-example updates of the spiking protocol (noise-free) against the rate model's.

    ``streams`` independent sequences of ``examples`` consecutive training examples,
    drawn from ``images``/``labels`` with ``seed``, run through the mean-field twin
    with forward and target phases of ``L`` steps each (the window is the protocol's;
    no random extra length) and the state carried over from one example to the next,
    as in training. The weights are held fixed. The first ``skip`` examples of each
    stream start from a zero state and are not scored.

    Parameters
    ----------
    params : ModelParameters
    weights : Weights
    images : array (n, n_input)
    labels : array (n,)
    phase_lengths : sequence of int
        Phase lengths in time steps.
    streams, examples, skip, seed : int

    Returns
    -------
    dict
        ``"phase_steps"``, ``"examples_scored"``, and per phase length a dict with,
        per weight layer ``W_k``: ``"cosine_mean"`` (mean over examples of the cosine
        between the twin's and the rate model's dW), ``"summed_cosine"`` (cosine of
        the dW summed over all scored examples, which is what learning integrates)
        and ``"summed_norm_ratio"`` (norm of the twin's summed dW over the rate
        model's); and ``"residual"``: per window quantity (output ``V_f``, per hidden
        layer ``alpha_f``, ``alpha_t`` and ``alpha_t - alpha_f``), the rms difference
        from the rate model's steady state divided by the rms of the rate model's
        own value across examples and neurons (0: settled).

    Raises
    ------
    ValueError
        For a phase length shorter than the averaging window, or ``skip >= examples``.
    """
    images = np.asarray(images, dtype=float)
    labels = np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"settling_fidelity: {len(images)} images but {len(labels)} labels")
    window = int(round(float(params.protocol.window_length / params.cell.dt)))
    lengths = [int(L) for L in phase_lengths]
    if any(L < window for L in lengths):
        raise ValueError(f"settling_fidelity: phase lengths {lengths} must be at least the window ({window} steps)")
    if not 0 <= skip < examples:
        raise ValueError(f"settling_fidelity: skip = {skip} must be in [0, examples = {examples})")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(images), size=(streams, examples))
    n_layers = len(weights.W)
    n_hidden = n_layers - 1
    ref_dW, ref_q = _rate_references(RateNetwork(params, weights), images, labels, idx, skip)

    def ref_quantity(name, layer):
        if name == "V_f":
            return np.array([ref_q[k]["C_f"][layer] for k in sorted(ref_q)])
        if name == "alpha_d":
            return np.array([ref_q[k]["alpha_t"][layer] - ref_q[k]["alpha_f"][layer] for k in sorted(ref_q)])
        return np.array([ref_q[k][name][layer] for k in sorted(ref_q)])

    quantities = [("V_f", n_layers - 1, "output V_f")]
    for h in range(n_hidden):
        quantities += [("alpha_f", h, f"hidden_{h} alpha_f"), ("alpha_t", h, f"hidden_{h} alpha_t"),
                       ("alpha_d", h, f"hidden_{h} alpha_t - alpha_f")]
    results = {}
    for L in lengths:
        mf = MeanFieldNetwork(params, weights, batch=streams)
        cos = [[] for _ in range(n_layers)]
        tot = [[0.0, 0.0] for _ in range(n_layers)]
        got = {name: {} for _, _, name in quantities}
        for e in range(examples):
            im, lab = images[idx[:, e]], labels[idx[:, e]]
            f = mf.run_phase("forward", L, im, window=window)
            t = mf.run_phase("target", L, im, lab, window=window)
            if e < skip:
                continue
            upd = mf.example_update(f, t)
            for lay, (dW, _) in enumerate(upd):
                for s in range(streams):
                    r = ref_dW[s, e][lay]
                    cos[lay].append(_cos(dW[s], r))
                    tot[lay][0] = tot[lay][0] + dW[s]
                    tot[lay][1] = tot[lay][1] + r
            for s in range(streams):
                for key, layer, name in quantities:
                    got[name][s, e] = _window_quantity(key, layer, f, t, s)
        updates = {}
        for lay in range(n_layers):
            a, b = tot[lay]
            nb = float(np.linalg.norm(b))
            updates[f"W_{lay}"] = {
                "cosine_mean": float(np.mean(cos[lay])),
                "summed_cosine": _cos(a, b),
                "summed_norm_ratio": float(np.linalg.norm(a) / nb) if nb > 0 else float("nan"),
            }
        residual = {}
        for key, layer, name in quantities:
            ref = ref_quantity(key, layer)
            mine = np.array([got[name][k] for k in sorted(ref_q)])
            scale = _rms(ref)
            residual[name] = _rms(mine - ref) / scale if scale > 0 else float("nan")
        results[L] = {"updates": updates, "residual": residual}
    return {"phase_steps": lengths, "window_steps": window, "examples_scored": streams * (examples - skip),
            "seed": seed, "by_length": results}

"""Validation of the spiking network against its rate abstraction (MODEL.md section 4).

The spiking network (:class:`~brian_dendrite.simulation.network.SpikingNetwork`) and the rate
network (:class:`~brian_dendrite.rate.network.RateNetwork`) implement the same model: the rate
network is the Lemma-1 limit of the spiking one (mean rates, exact steady states,
no Poisson noise). This module measures how closely they agree, check by check,
with tolerances derived from the noise the spiking network must have, and writes a
JSON report with figures.

Checks
------
1. :func:`rate_agreement` - firing rates of every layer in test phases (spike
   counts over the averaging window) against the rate model's ``phi_max*sigma(C)``.
2. :func:`plateau_agreement` - plateau potentials ``alpha_f``, ``alpha_t`` of the
   hidden layers after single training examples against
   :meth:`RateNetwork.example_quantities`.
3. :func:`update_agreement` - the weight change of one training example (difference
   of :meth:`SpikingNetwork.get_weights` before and after) against
   :meth:`RateNetwork.update_deltas`, as cosine similarities.
4. :func:`learning_agreement` - test-error curves of both models trained from the
   same initial weights on the same example order.
5. :func:`spike_statistics` - ISI CV, Fano factor and spike counts of neurons at
   constant drive against the exact expectation of the Bernoulli spike generator.

Each check function is pure (arrays in, a result ``dict`` out) so that it can be
tested with deliberately mismatched inputs; the ``measure_*`` functions run the
simulations that produce its inputs; :func:`run_validation` runs a whole tier.

The three known differences between the models
----------------------------------------------
(a) **Kernel sampling and settling.** The rate model assumes that a presynaptic
    rate ``r`` gives a mean PSP ``psp_scale*r``. In the simulation the kernel is
    sampled once per step: with the full kernel the soma receives
    ``sum_m kappa(m dt) dt = 0.9972`` per spike (not 1); with the truncated kernel
    it receives ``kappa(0..9)``, sum 0.463, while the recorded basal potential and
    the learning rule's presynaptic average see ``kappa(1..10)``, sum 0.510
    (:func:`effective_kernel_masses`). Averaging windows also start before the
    cascade of kernels (one per layer, mean delay ``tau_L + tau_s = 13 ms`` each)
    has settled. :class:`MeanFieldNetwork` reproduces both exactly: it is the
    spiking network's own discrete-time update with every spike replaced by its
    probability.
(b) **E[sigma(V)] versus sigma(E[V]).** Poisson input makes the somatic potential
    fluctuate (sd about 0.3 in the hidden layer and 1 in the output layer for the
    paper's network), and a neuron fires at ``phi_max*E[sigma(V)]``, not
    ``phi_max*sigma(E[V])``. :func:`stationary_noise` computes the variance of every
    potential by propagating the Bernoulli variance of every layer's spikes through
    the weights, kernels and rate slopes (first order); the mean-field network
    optionally averages ``sigma`` over that Gaussian.
(c) **Finite windows.** A count over ``T`` steps at spike probability ``p`` has
    variance ``p(1-p)T`` plus the variance of the fluctuating rate itself;
    :func:`stationary_noise` gives both.

Tolerances are stated next to each check and, with their justification, in
``validation/README.md``.
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from brian2 import ms, second

from ..model import ModelParameters, Weights, initial_weights, load_model
from ..model.kernels import KERNEL_STEPS as _KERNEL_STEPS
from ..model.kernels import (
    _cell_floats,
    effective_kernel_masses,
    psp_kernels,
    soma_kernel,
    window_variance_factor,
)
from ..provenance import versions, write_json_atomic
from ..rate import RateNetwork, sigma

__all__ = [
    "TierConfig",
    "TIERS",
    "effective_kernel_masses",
    "psp_kernels",
    "soma_kernel",
    "window_variance_factor",
    "stationary_noise",
    "MeanFieldNetwork",
    "rate_agreement",
    "plateau_agreement",
    "update_agreement",
    "learning_agreement",
    "spike_statistics",
    "bernoulli_isi_cv",
    "bernoulli_fano",
    "measure_rates",
    "measure_examples",
    "measure_learning",
    "measure_spike_statistics",
    "run_validation",
    "main",
]

logger = logging.getLogger("brian2.brian_dendrite.validation")

#: Gauss-Hermite (probabilists') nodes for E[sigma(V)] with Gaussian V.
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(24)
_GH_W = _GH_W / _GH_W.sum()

#: Noise-variance margin shared by checks 1 and 2: the measured scatter may exceed the
#: predicted (check 1) or repeat-measured (check 2) noise variance by at most 50 %.
NOISE_VARIANCE_MARGIN = 1.5


# --------------------------------------------------------------------------------------------------
# Tiers
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TierConfig:
    """Sizes of one validation tier (all counts are examples or images)."""

    name: str
    model: str = "one_hidden"
    #: Rate-model training examples that produce the "trained" weights of checks 1 and 5.
    pretrain_examples: int = 2000
    #: Check 1: test images, and hidden neurons whose V_soma is recorded.
    rate_images: int = 50
    rate_recorded_hidden: int = 100
    #: Checks 2 and 3: examples, spiking repeats per example, weight sets, diagnostic modes.
    update_examples: int = 10
    update_repeats: int = 3
    update_weights: tuple = ("initial",)
    update_diagnostics: tuple = ("carryover", "reset")
    #: Check 4: training examples, evaluation interval and images (rate readout), spiking-test images,
    #: rate-model orders and spiking runs.
    learn_examples: int = 2000
    learn_eval_every: int = 250
    learn_eval_images: int = 1000
    learn_test_images: int = 300
    learn_orders: int = 8
    learn_spiking_runs: int = 1
    #: Examples of the (noise-free) mean-field twin trained with the spiking protocol (diagnostic).
    learn_mean_field_examples: int = 2000
    #: Check 5: test phases of one repeated image.
    stat_repeats: int = 20
    stat_bootstrap: int = 200
    #: Network chunk sizes (fixed: they set the compiled code's array shapes).
    chunk_size: int = 500
    test_chunk_size: int = 500


TIERS = {
    "fast": TierConfig("fast"),
    "full": TierConfig(
        "full",
        rate_images=400,
        rate_recorded_hidden=100,
        update_examples=40,
        update_repeats=4,
        update_weights=("initial", "trained"),
        learn_examples=60000,
        learn_eval_every=2000,
        learn_eval_images=5000,
        learn_test_images=2000,
        learn_orders=8,
        learn_spiking_runs=2,
        learn_mean_field_examples=20000,
        stat_repeats=80,
        chunk_size=1000,
        test_chunk_size=1000,
    ),
}


# --------------------------------------------------------------------------------------------------
# Kernels and noise
# --------------------------------------------------------------------------------------------------


def _expected_sigma(mu, var):
    """E[sigma(V)] for V ~ N(mu, var), elementwise (Gauss-Hermite)."""
    mu = np.asarray(mu, dtype=float)
    sd = np.sqrt(np.maximum(np.asarray(var, dtype=float), 0.0))
    return np.sum(sigma(mu[..., None] + sd[..., None] * _GH_X) * _GH_W, axis=-1)


def stationary_noise(params: ModelParameters, weights: Weights, example: dict, phase: str = "forward",
                     n_window: int = 1) -> dict:
    """Variances of the potentials of one example's steady state, from Bernoulli spiking.

    Every layer's spikes are independent Bernoulli draws with variance ``p(1-p)``
    per step around the rate model's probabilities ``p``; their effect on a potential
    downstream is followed through the weights, the kernels of every layer
    (:func:`soma_kernel`, the apical trace kernel) and the slopes
    ``d p/d V = p_max sigma'(C)`` of the intermediate layers (first order), so that
    rate fluctuations inherited from upstream noise (doubly stochastic spiking and
    the correlations it creates) are included. The loop through the apical
    conductance (``g_A > 0``) is ignored.

    Parameters
    ----------
    example : dict
        Output of :meth:`RateNetwork.example_quantities` (or a dict with ``s_in`` and
        per-layer ``C_f`` / ``C_t`` and ``rates_f`` / ``rates_t``).
    phase : {'forward', 'target'}
        Forward (and test) phase or target phase (teaching conductance on).
    n_window : int
        Length of the averaging window in steps (1: instantaneous variance).

    Returns
    -------
    dict
        ``"V"``: per non-input layer, the variance of the (window-averaged) somatic
        potential; ``"A"``: per hidden layer, that of the apical potential;
        ``"V_inst"`` and ``"A_inst"`` the instantaneous variances.
    """
    cell = params.cell
    c = _cell_floats(cell)
    suffix = "f" if phase == "forward" else "t"
    if phase not in ("forward", "target"):
        raise ValueError(f"phase = {phase!r}: expected 'forward' or 'target'")
    n_layers = len(weights.W)
    n_hidden = n_layers - 1
    rate_unit = c["dt"]  # rates in spikes/ms -> probability per step
    p_in = np.asarray(example["s_in"], dtype=float)
    # s_in = psp_scale * phi * pixel: recover the input probability from the pixels if given
    if "pixels" in example:
        p_in = c["p_max"] * np.asarray(example["pixels"], dtype=float)
    else:
        scale = float(example.get("psp_scale", cell.kernel_mass))
        p_in = p_in * rate_unit / scale if scale > 0 else p_in * 0
    probs = [p_in] + [np.asarray(r, dtype=float) * rate_unit for r in example[f"rates_{suffix}"]]
    Cs = [np.asarray(v, dtype=float) for v in example[f"C_{suffix}"]]
    slopes = [c["p_max"] * sigma(C) * (1 - sigma(C)) for C in Cs]
    kinds = ["hidden"] * n_hidden + ["output" if phase == "forward" else "output_target"]
    kernels = [soma_kernel(cell, k) for k in kinds]
    trace = psp_kernels(cell)["trace"]
    src_var = [p * (1 - p) for p in probs]

    def total(paths, n_win):
        out = 0.0
        for src, M, K in paths:
            out = out + (M**2) @ src_var[src] * window_variance_factor(K, n_win)
        return out

    paths_prev = None
    V_win, V_inst, layer_paths = [], [], []
    for lay in range(n_layers):
        W = np.asarray(weights.W[lay], dtype=float)
        K = kernels[lay]
        paths = [(lay, W, K)]
        if paths_prev is not None:
            d = slopes[lay - 1]
            for src, M, Kp in paths_prev:
                paths.append((src, W @ (d[:, None] * M), np.convolve(K, Kp)[:_KERNEL_STEPS * 2]))
        V_win.append(total(paths, n_window))
        V_inst.append(total(paths, 1))
        layer_paths.append(paths)
        paths_prev = paths
    A_win, A_inst = [], []
    d_out = slopes[-1]
    for h in range(n_hidden):
        Y = np.asarray(weights.Y[h], dtype=float)
        paths = [(n_layers, Y, trace)]
        for src, M, Kp in layer_paths[-1]:
            paths.append((src, Y @ (d_out[:, None] * M), np.convolve(trace, Kp)[:_KERNEL_STEPS * 2]))
        A_win.append(total(paths, n_window))
        A_inst.append(total(paths, 1))
    return {"V": V_win, "V_inst": V_inst, "A": A_win, "A_inst": A_inst}


# --------------------------------------------------------------------------------------------------
# Mean-field twin of the spiking network
# --------------------------------------------------------------------------------------------------


class MeanFieldNetwork:
    """The spiking network's discrete-time update with every spike replaced by its probability.

    Same time step, integrator, kernel sampling, update order within a step, phase
    schedule, averaging windows and resets as :class:`SpikingNetwork`, for a batch of
    independent networks (one per image). Without ``noise`` it is the exact
    expectation of the spiking network's *linear* parts (kernels, potentials) and
    neglects only the nonlinearity of ``sigma``; with ``noise`` (stationary
    variances from :func:`stationary_noise`) the spike probability is
    ``p_max E[sigma(V)]`` over a Gaussian ``V`` and plateaus are
    ``E[sigma(A_mean)]``, which adds effect (b) of the module docstring.

    It exists to explain the residual between spiking and rate network: the
    difference mean-field minus rate model is effect (a), the transient and kernel
    sampling, and the difference spiking minus mean-field is noise plus effect (b).

    Parameters
    ----------
    params : ModelParameters
    weights : Weights
    batch : int
        Number of independent copies (images) simulated side by side.
    """

    def __init__(self, params: ModelParameters, weights: Weights, batch: int = 1):
        self.params = params
        self.c = _cell_floats(params.cell)
        # copies: train() changes W and b in place
        self.W = [np.array(w, dtype=float) for w in weights.W]
        self.b = [np.array(v, dtype=float) for v in weights.b]
        self.Y = [np.array(y, dtype=float) for y in weights.Y]
        self.c_apical = [np.array(v, dtype=float) for v in weights.c]
        self.sizes = [self.W[0].shape[1]] + [w.shape[0] for w in self.W]
        self.n_layers = len(self.W)
        self.n_hidden = self.n_layers - 1
        self.batch = int(batch)
        c = self.c
        self.decay = (math.exp(-c["dt"] / c["tau_L"]), math.exp(-c["dt"] / c["tau_s"]))
        self.psp = c["gain"] / (c["tau_L"] - c["tau_s"])
        if c["cut"] is not None:
            self.cut_decay = (math.exp(-c["cut"] * c["dt"] / c["tau_L"]), math.exp(-c["cut"] * c["dt"] / c["tau_s"]))
        self.reset()

    def reset(self) -> None:
        """Zero all state (potentials and traces), as before a test image."""
        B, n = self.batch, self.sizes
        z = np.zeros
        self.state = {
            "V": [z((B, k)) for k in n[1:]],
            "X": [[z((B, k)), z((B, k))] for k in n[1:]],  # basal traces (L, s) of every non-input layer
            "XA": [[z((B, k)), z((B, k))] for k in n[1:-1]],  # apical traces of hidden layers
            "y": [[z((B, k)), z((B, k))] for k in n],  # own traces
            "pending": [],  # truncation: increments still to be removed (step, layer key, array)
            "step": 0,
        }

    def copy_state(self) -> dict:
        return copy.deepcopy(self.state)

    def set_state(self, state: dict) -> None:
        self.state = copy.deepcopy(state)

    def _p(self, V, var):
        if var is None:
            return self.c["p_max"] * sigma(V)
        return self.c["p_max"] * _expected_sigma(V, var)

    def run_phase(self, kind: str, n_steps: int, pixels, labels=None, window: int | None = None,
                  noise: dict | None = None) -> dict:
        """Run one phase and return its window means.

        Parameters
        ----------
        kind : {'forward', 'target', 'test'}
        n_steps : int
        pixels : array (batch, n_input)
        labels : array (batch,), needed for 'target'
        window : int, optional
            Averaging window in steps (default: the protocol's).
        noise : dict, optional
            ``{"V": [var per non-input layer], "A": [var of the window-mean apical
            potential per hidden layer]}``, arrays broadcastable to (batch, n); the
            ``"V"`` entries are instantaneous variances.

        Returns
        -------
        dict
            ``V_mean``, ``rate_mean`` (fraction of phi_max), ``p_mean`` (per step) per
            non-input layer; ``s_mean`` per layer (own PSP); ``A_mean`` and ``alpha``
            per hidden layer.
        """
        if kind not in ("forward", "target", "test"):
            raise ValueError(f"kind = {kind!r}: expected 'forward', 'target' or 'test'")
        protocol = self.params.protocol
        c, st = self.c, self.state
        dt_q = self.params.cell.dt
        if window is None:
            if kind == "test":
                window = int(round(float(protocol.test_window / dt_q)))
            elif protocol.window == "last":
                window = int(round(float(protocol.window_length / dt_q)))
            else:
                window = n_steps - int(round(float(protocol.settle_time / dt_q)))
        window = min(window, n_steps)
        pixels = np.asarray(pixels, dtype=float).reshape(self.batch, -1)
        p_in = c["p_max"] * pixels
        if kind == "target":
            labels = np.asarray(labels).reshape(self.batch)
            n_out = self.sizes[-1]
            onehot = np.zeros((self.batch, n_out))
            onehot[np.arange(self.batch), labels] = 1.0
            g_E = c["g_teach"] * onehot
            g_I = c["g_teach"] * (1 - onehot)
        var_V = (noise or {}).get("V", [None] * self.n_layers)
        var_A = (noise or {}).get("A", [None] * self.n_hidden)
        dL, ds = self.decay
        euler = self.params.cell.method == "euler"
        sums = {"V": [0.0] * self.n_layers, "rate": [0.0] * self.n_layers, "p": [0.0] * self.n_layers,
                "s": [0.0] * (self.n_layers + 1), "A": [0.0] * self.n_hidden}
        W_in_drive = p_in @ self.W[0].T  # the input's delivery to layer 0's traces, constant in a phase
        for j in range(n_steps):
            in_window = j >= n_steps - window
            # 1. state update (values at the start of the step), then decay of the traces
            for lay in range(self.n_layers):
                XL, Xs = st["X"][lay]
                B = (XL - Xs) * self.psp + self.b[lay]
                V = st["V"][lay]
                if lay < self.n_hidden:
                    XAL, XAs = st["XA"][lay]
                    A = (XAL - XAs) * self.psp + self.c_apical[lay]
                    a = c["g_L"] + c["g_B"] + c["g_A"]
                    drive = c["g_B"] * B + c["g_A"] * A
                else:
                    a = c["g_L"] + c["g_D"]
                    drive = c["g_D"] * B
                    if kind == "target":
                        a = a + g_E + g_I
                        drive = drive + g_E * self.params.cell.E_E + g_I * self.params.cell.E_I
                if euler:
                    st["V"][lay] = V + c["dt"] * (drive - a * V)
                else:
                    keep = np.exp(-a * c["dt"])
                    st["V"][lay] = V * keep + drive / a * (1 - keep)
                XL *= dL
                Xs *= ds
            for lay in range(self.n_hidden):
                st["XA"][lay][0] *= dL
                st["XA"][lay][1] *= ds
            for y in st["y"]:
                y[0] *= dL
                y[1] *= ds
            # 2. window accumulation (after the update)
            probs = [p_in]
            for lay in range(self.n_layers):
                probs.append(self._p(st["V"][lay], var_V[lay]))
            if in_window:
                for lay in range(self.n_layers):
                    sums["V"][lay] = sums["V"][lay] + st["V"][lay]
                    sums["p"][lay] = sums["p"][lay] + probs[lay + 1]
                for k, y in enumerate(st["y"]):
                    sums["s"][k] = sums["s"][k] + (y[0] - y[1]) * self.psp
                for h in range(self.n_hidden):
                    XAL, XAs = st["XA"][h]
                    sums["A"][h] = sums["A"][h] + (XAL - XAs) * self.psp + self.c_apical[h]
            # 3./4. expected spikes, delivered through the synapses
            for lay in range(self.n_layers):
                inc = W_in_drive if lay == 0 else probs[lay] @ self.W[lay].T
                st["X"][lay][0] += inc
                st["X"][lay][1] += inc
                if c["cut"] is not None:
                    st["pending"].append((st["step"] + c["cut"], ("X", lay), inc))
            for h in range(self.n_hidden):
                inc = probs[-1] @ self.Y[h].T
                st["XA"][h][0] += inc
                st["XA"][h][1] += inc
                if c["cut"] is not None:
                    st["pending"].append((st["step"] + c["cut"], ("XA", h), inc))
            for k, y in enumerate(st["y"]):
                y[0] += probs[k]
                y[1] += probs[k]
                if c["cut"] is not None:
                    st["pending"].append((st["step"] + c["cut"], ("y", k), probs[k]))
            if c["cut"] is not None:
                keep_pending = []
                for due, (name, k), inc in st["pending"]:
                    if due == st["step"]:
                        target = st[name][k]
                        target[0] -= inc * self.cut_decay[0]
                        target[1] -= inc * self.cut_decay[1]
                    else:
                        keep_pending.append((due, (name, k), inc))
                st["pending"] = keep_pending
            st["step"] += 1
        out = {
            "V_mean": [v / window for v in sums["V"]],
            "p_mean": [v / window for v in sums["p"]],
            "rate_mean": [v / window / c["p_max"] for v in sums["p"]],
            "s_mean": [v / window for v in sums["s"]],
            "A_mean": [v / window for v in sums["A"]],
        }
        out["alpha"] = [sigma(A) if var_A[h] is None else _expected_sigma(A, var_A[h])
                        for h, A in enumerate(out["A_mean"])]
        if kind == "test":
            self.reset_potentials()
        return out

    def reset_potentials(self) -> None:
        """The end-of-test-phase reset of the spiking network (pending truncations are kept)."""
        pending = self.state["pending"]
        step = self.state["step"]
        self.reset()
        self.state["pending"] = pending
        self.state["step"] = step

    def train(self, images, labels, phase_lengths) -> None:
        """Online training with the spiking protocol: forward and target phase per example, state carried over.

        Parameters
        ----------
        images : array (n, n_input)
        labels : array (n,)
        phase_lengths : array (n, 2)
            Forward and target phase lengths in steps (e.g. from
            :func:`brian_dendrite.model.schedule.draw_phase_lengths`).

        Only for ``batch == 1``. The weight change of each example (:meth:`example_update`)
        is applied after its target phase, as in the spiking network.
        """
        if self.batch != 1:
            raise ValueError("MeanFieldNetwork.train needs batch == 1")
        for img, lab, (n_f, n_t) in zip(np.asarray(images, dtype=float), np.asarray(labels), phase_lengths,
                                        strict=True):
            f = self.run_phase("forward", int(n_f), img[None])
            t = self.run_phase("target", int(n_t), img[None], np.array([lab]))
            for lay, (dW, db) in enumerate(self.example_update(f, t)):
                self.W[lay] += dW[0]
                self.b[lay] += db[0]

    @property
    def weights(self) -> Weights:
        """The current weights (copies)."""
        return Weights(W=[w.copy() for w in self.W], b=[v.copy() for v in self.b], Y=[y.copy() for y in self.Y],
                       c=[v.copy() for v in self.c_apical], Y_mask=[None] * len(self.Y))

    def example_update(self, forward: dict, target: dict, window_var=None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Weight and bias changes from the window means of a forward and a target phase (MODEL.md 1.9).

        ``window_var``: per non-input layer, the variance of the forward window mean of
        the somatic potential; if given, the local error is averaged over a Gaussian
        ``V_mean_f`` (the rule is nonlinear in it: ``sigma(V) sigma'(V)`` at the output).
        """
        from ..model import learning_scales

        scales = learning_scales(self.params)
        out = []
        for lay in range(self.n_layers):
            mu = np.asarray(forward["V_mean"][lay])
            if window_var is None:
                V = mu[..., None]
                w = np.ones(1)
            else:
                V = mu[..., None] + np.sqrt(np.maximum(window_var[lay], 0.0))[..., None] * _GH_X
                w = _GH_W
            sf = sigma(V)
            if lay == self.n_layers - 1:
                err = target["rate_mean"][lay][..., None] - sf
            else:
                err = (target["alpha"][lay] - forward["alpha"][lay])[..., None]
            delta = scales[lay] * np.sum(err * sf * (1 - sf) * w, axis=-1)
            s_pre = forward["s_mean"][lay]
            out.append((np.einsum("bi,bj->bij", delta, s_pre), delta))
        return out


# --------------------------------------------------------------------------------------------------
# Statistics helpers
# --------------------------------------------------------------------------------------------------


def _pearson(a, b) -> float:
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.size < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _cos(a, b) -> float:
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return float("nan")
    return float(a @ b / (na * nb))


def bernoulli_isi_cv(p) -> np.ndarray:
    """Exact ISI CV of a Bernoulli process with probability ``p`` per step: ``sqrt(1 - p)``.

    Intervals are geometric on {1, 2, ...} steps: mean ``1/p``, variance
    ``(1-p)/p**2``. A Poisson process has CV 1; the one-spike-per-step grid makes the
    Bernoulli process more regular (CV 0.894 at 200 Hz and dt = 1 ms).
    """
    return np.sqrt(1.0 - np.asarray(p, dtype=float))


def bernoulli_fano(p) -> np.ndarray:
    """Fano factor of the count of a Bernoulli process over any window: ``1 - p`` (binomial)."""
    return 1.0 - np.asarray(p, dtype=float)


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


# --------------------------------------------------------------------------------------------------
# Check 1: rates
# --------------------------------------------------------------------------------------------------


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
    min_rate : float
        Relative errors are taken over pairs with ``predicted >= min_rate`` (Hz);
        below, a relative error is dominated by the count of a handful of spikes.
    margin : float
        Allowed excess of the noise variance over the prediction.

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

    Returns measured rates per layer (Hz), the rate model's and the mean-field
    predictions, the expected noise, and from the recorded V_soma traces the direct
    estimate of effect (b).
    """
    from ..analysis import spike_counts

    params = net.params
    cell, protocol = params.cell, params.protocol
    c = _cell_floats(cell)
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
    # effect (b) measured directly on the recorded neurons
    jensen = {}
    for lay, name in enumerate(layer_names[1:]):
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


# --------------------------------------------------------------------------------------------------
# Checks 2 and 3: plateaus and weight updates of single examples
# --------------------------------------------------------------------------------------------------


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
    analytic_sd : dict of array (n_examples, n_neurons), optional
        Predicted noise sd (e.g. Poisson-only and full propagation), reported.
    margin : float
        Allowed ratio of mean squared spiking-rate difference to the noise variance.

    Returns
    -------
    dict
        Per phase ``f``, ``t`` and the difference ``t - f``: Pearson r, mean absolute
        difference, the noise sd measured from the repeats and the tolerances.
        Passing requires, for ``f``, ``t`` and ``t - f``, the mean squared
        difference between spiking and rate plateaus to be at most ``margin`` times
        the repeat-to-repeat noise variance (a systematic part with rms up to
        ``sqrt(margin - 1) = 0.71`` noise sd is accepted).
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


def update_agreement(dW_spiking, dW_rate, layer_names=None, min_margin: float = 0.05) -> dict:
    """Check 3: cosine similarity of spiking and rate weight changes, per layer.

    Parameters
    ----------
    dW_spiking : nested list [example][repeat][layer] of array
        Weight changes of single examples in the spiking network (``n_repeats >= 2``
        runs per example from the same state, different spike seeds).
    dW_rate : nested list [example][layer] of array
        The rate model's weight changes for the same weights and examples.
    min_margin : float
        Smallest allowed shortfall of the mean cosine below the noise ceiling.

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


def _reset_state(net) -> None:
    net.reset_state()


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

    Returns
    -------
    dict
        ``dW`` [example][repeat][layer], ``db``, ``alpha_f`` / ``alpha_t`` arrays
        (repeats, examples, neurons) per hidden layer, ``s_mean_f`` etc., and the
        phase tables of the runs.
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


# --------------------------------------------------------------------------------------------------
# Check 4: learning
# --------------------------------------------------------------------------------------------------


def _late_mean(curve, late_from: int) -> float:
    pts = [float(e) for n, e in curve if n >= late_from]
    if not pts:
        raise ValueError(f"no evaluation point at or after {late_from} examples")
    return float(np.mean(pts))


def learning_agreement(spiking_curves, rate_curve, rate_order_curves, late_from: int, discordant=None,
                       n_test: int | None = None) -> dict:
    """Check 4: test error during training, spiking against rate.

    Parameters
    ----------
    spiking_curves : list of list of (examples, error %)
        One curve per spiking run (different spike seeds), each with the spiking
        network's weights evaluated at regular intervals.
    rate_curve : list of (examples, error %)
        The rate model trained from the same initial weights on the same example order.
    rate_order_curves : list of curves
        The rate model trained on the same examples in other (random) orders: the
        measured variability of a training trajectory.
    late_from : int
        The compared statistic is the mean error over the evaluation points from
        this many examples on (the second half of training): online learning at the
        paper's learning rates makes the error jump by several percentage points from
        one evaluation to the next, in both models, and averaging a stretch of the
        curve removes most of that.
    discordant : (int, int), optional
        Test images misclassified only by the spiking / only by the rate model at
        the end; with ``n_test`` gives the paired (McNemar) sd of an error difference.

    Returns
    -------
    dict
        Passing requires ``|late mean spiking - late mean rate| <=
        3 sqrt(2 sd_traj^2 + sd_pair^2)`` with ``sd_traj`` the sd of the late mean
        over the rate model's orders (pooled with the spiking runs' if there are
        several) and ``sd_pair`` the paired test-set sd.
    """
    if len(rate_order_curves) < 2:
        raise ValueError("learning_agreement: need at least 2 rate-model orders to measure the spread")
    if not spiking_curves:
        raise ValueError("learning_agreement: need at least one spiking curve")
    order_means = np.array([_late_mean(c, late_from) for c in rate_order_curves])
    spk_means = np.array([_late_mean(c, late_from) for c in spiking_curves])
    r_mean = _late_mean(rate_curve, late_from)
    sd_orders = float(order_means.std(ddof=1))
    spreads = {"rate_orders_sd": sd_orders}
    sd_traj = sd_orders
    if spk_means.size >= 2:
        sd_spk = float(spk_means.std(ddof=1))
        spreads["spiking_runs_sd"] = sd_spk
        dof_o, dof_s = order_means.size - 1, spk_means.size - 1
        sd_traj = math.sqrt((sd_orders**2 * dof_o + sd_spk**2 * dof_s) / (dof_o + dof_s))
    sd_pair = 0.0
    if discordant is not None:
        if not n_test:
            raise ValueError("learning_agreement: n_test is required with discordant counts")
        b, c = discordant
        sd_pair = 100.0 * math.sqrt(max(b + c - (b - c) ** 2 / n_test, 0.0)) / n_test
    tol = 3.0 * math.sqrt(2 * sd_traj**2 + sd_pair**2)
    diff = float(spk_means[0] - r_mean)
    return {
        "spiking_curves": [[[int(n), float(e)] for n, e in c] for c in spiking_curves],
        "rate_curve": [[int(n), float(e)] for n, e in rate_curve],
        "late_from_examples": int(late_from),
        "late_mean_spiking": float(spk_means[0]),
        "late_mean_spiking_runs": spk_means.tolist(),
        "late_mean_rate": r_mean,
        "late_mean_rate_orders": order_means.tolist(),
        "final_spiking_error": float(spiking_curves[0][-1][1]),
        "final_rate_error": float(rate_curve[-1][1]),
        "difference": diff,
        "spread": dict(spreads, trajectory_sd=sd_traj, paired_test_sd=sd_pair),
        "tolerance": {"abs_difference_max": tol},
        "passed": bool(abs(diff) <= tol),
        "explanation": (
            "Both models start from the same weights and see the same examples in the same order; their "
            "weights are evaluated with the same deterministic readout (the rate model's forward pass, argmax "
            "of the output potential) on the same test images. The mean error over the second half of "
            "training may differ by 3 sd of the difference between two independent training trajectories "
            "(sd measured over random example orders of the rate model, pooled with spiking runs with other "
            "spike seeds where run) combined with the paired test-set noise."
        ),
    }


def measure_learning(net, params, W0: Weights, train, test, cfg: TierConfig, seed: int) -> dict:
    """Train both models from ``W0`` on the same examples; evaluate the weights at regular intervals.

    All curves use the rate model's deterministic readout on ``learn_eval_images``
    test images, so that they differ only through learning; the spiking network's
    own (stochastic, 250-ms) test is run at the start and the end on
    ``learn_test_images`` images and compared with that readout.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x1EA]))
    n = cfg.learn_examples
    n_train = len(train.labels)
    order = np.concatenate([rng.permutation(n_train) for _ in range(math.ceil(n / n_train))])[:n]
    X, y = train.images[order], train.labels[order]
    eX, ey = test.images[: cfg.learn_eval_images], test.labels[: cfg.learn_eval_images]
    tX, ty = test.images[: cfg.learn_test_images], test.labels[: cfg.learn_test_images]
    every = cfg.learn_eval_every

    def evaluate(weights) -> float:
        return RateNetwork(params, weights).test_error(eX, ey)

    def rate_curve(perm):
        model = RateNetwork(params, W0.copy())
        curve = [(0, model.test_error(eX, ey))]
        for a in range(0, n, every):
            model.train(X[perm[a : a + every]], y[perm[a : a + every]])
            curve.append((min(a + every, n), model.test_error(eX, ey)))
        return curve, model

    t0 = time.perf_counter()
    r_curve, r_model = rate_curve(np.arange(n))
    order_curves = [rate_curve(np.random.default_rng(np.random.SeedSequence([seed, 0x0D, k])).permutation(n))[0]
                    for k in range(cfg.learn_orders)]
    rate_seconds = time.perf_counter() - t0
    # the mean-field twin: the spiking protocol (phase lengths, windows, carried-over state) without noise
    t0 = time.perf_counter()
    from ..model import draw_phase_lengths

    lengths = draw_phase_lengths(2 * n, params.protocol, params.cell.dt,
                                 np.random.default_rng(np.random.SeedSequence([seed, 0x3F]))).reshape(n, 2)
    mf = MeanFieldNetwork(params, W0, batch=1)
    mf_curve = [(0, evaluate(W0))]
    n_mf = min(n, cfg.learn_mean_field_examples)
    for a in range(0, n_mf, every):
        stop = min(a + every, n_mf)
        mf.train(X[a:stop], y[a:stop], lengths[a:stop])
        mf_curve.append((stop, evaluate(mf.weights)))
    mf_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    spiking_curves = []
    readout = {}
    for run in range(cfg.learn_spiking_runs):
        net.set_weights(W0)
        _reset_state(net)
        curve = [(0, evaluate(W0))]
        if run == 0:
            first = net.test(tX, ty, key=(seed, 0x7E, run, 0))
            readout["spiking_test_initial"] = first.error
            readout["rate_readout_initial"] = RateNetwork(params, W0).test_error(tX, ty)
        for a in range(0, n, every):
            stop = min(a + every, n)
            for lo in range(a, stop, cfg.chunk_size):
                hi = min(lo + cfg.chunk_size, stop)
                net.train_chunk(X[lo:hi], y[lo:hi], key=(seed, 0x4C, run, lo))
            curve.append((stop, evaluate(net.get_weights())))
            logger.info("spiking run %d: %d examples, error %.2f %%", run, stop, curve[-1][1])
        spiking_curves.append(curve)
        if run == 0:
            final_weights = net.get_weights()
            last = net.test(tX, ty, key=(seed, 0x7E, run, n))
            readout_model = RateNetwork(params, final_weights)
            readout["spiking_test_final"] = last.error
            readout["rate_readout_final"] = readout_model.test_error(tX, ty)
            readout["readout_agreement_final"] = float(np.mean(last.predictions == readout_model.predict(tX)))
            spk_pred = readout_model.predict(eX)
    spiking_seconds = time.perf_counter() - t0
    rate_pred = r_model.predict(eX)
    b = int(np.sum((spk_pred != ey) & (rate_pred == ey)))
    c = int(np.sum((spk_pred == ey) & (rate_pred != ey)))
    return {"spiking_curves": spiking_curves, "rate_curve": r_curve, "rate_order_curves": order_curves,
            "mean_field_curve": mf_curve, "discordant": (b, c), "n_eval": len(ey), "readout": readout,
            "n_test": len(ty), "rate_seconds": rate_seconds, "spiking_seconds": spiking_seconds,
            "mean_field_seconds": mf_seconds}


# --------------------------------------------------------------------------------------------------
# Check 5: spike statistics
# --------------------------------------------------------------------------------------------------


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
    """
    from ..analysis import fano_factor

    params = net.params
    cell, protocol = params.cell, params.protocol
    c = _cell_floats(cell)
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


# --------------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------------


def plot_rate_scatter(rates: dict, axes=None, **kwds):
    """Measured against predicted rates per layer: every (image, neuron) pair, and per-neuron means.

    Top row: one point per image and neuron (count noise dominates); bottom row:
    per-neuron means over the images, where the noise averages out and systematic
    effects would show. Returns the Axes (2 x n_layers).
    """
    import matplotlib.pyplot as plt

    layers = rates["layers"]
    if axes is None:
        _, axes = plt.subplots(2, len(layers), figsize=(4 * len(layers), 7.5), squeeze=False)
    style = {"s": 3, "alpha": 0.3, "lw": 0}
    style.update(kwds)
    for col, (name, m, p, cr) in enumerate(zip(layers, rates["measured"], rates["predicted"], rates["corrected"],
                                               strict=True)):
        for row, (mm, pp, cc) in enumerate(((m, p, cr), (m.mean(axis=0), p.mean(axis=0), cr.mean(axis=0)))):
            ax = axes[row][col]
            ax.scatter(pp.ravel(), mm.ravel(), color="tab:blue", label="spiking vs rate model", **style)
            ax.scatter(pp.ravel(), cc.ravel(), color="tab:orange", s=2, alpha=0.6, lw=0,
                       label="corrected prediction (a)+(b)")
            top = max(float(np.max(pp)), float(np.max(mm)), 1.0)
            ax.plot([0, top], [0, top], "k--", lw=0.8)
            ax.set_title(f"{name}: " + ("every image and neuron" if row == 0 else "per-neuron mean over images"),
                         fontsize=9)
            ax.set_xlabel("rate model phi_max*sigma(C) (Hz)")
        axes[0][0].set_ylabel("spiking rate in test window (Hz)")
        axes[1][0].set_ylabel("mean spiking rate (Hz)")
    axes[0][0].legend(loc="upper left", fontsize=7, markerscale=4)
    return axes


def plot_plateau_scatter(alpha_spiking: dict, alpha_rate: dict, axes=None, **kwds):
    """Spiking against rate plateaus (alpha_f, alpha_t, alpha_t - alpha_f); returns the Axes."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(12, 4), squeeze=False)
        axes = list(axes[0])
    style = {"s": 2, "alpha": 0.3, "lw": 0}
    style.update(kwds)
    spk = dict(alpha_spiking, **{"t-f": alpha_spiking["t"] - alpha_spiking["f"]})
    rat = dict(alpha_rate, **{"t-f": alpha_rate["t"] - alpha_rate["f"]})
    for ax, key, title in zip(axes, ("f", "t", "t-f"), ("alpha_f", "alpha_t", "alpha_t - alpha_f"), strict=True):
        s, r = np.asarray(spk[key]), np.asarray(rat[key])
        ax.scatter(np.broadcast_to(r, s.shape).ravel(), s.ravel(), **style)
        lo, hi = float(min(r.min(), s.min())), float(max(r.max(), s.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_title(title)
        ax.set_xlabel("rate model")
    axes[0].set_ylabel("spiking network (every repeat)")
    return axes


def plot_update_cosines(updates: dict, axes=None, **kwds):
    """Per-example cosine of spiking and rate weight changes with the noise ceiling; returns the Axes."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 1, figsize=(6, 4))
    for k, (name, lay) in enumerate(updates["layers"].items()):
        x = np.arange(len(lay["cosine_per_example"]))
        colour = f"C{k}"
        axes.plot(x, lay["cosine_per_example"], "o", color=colour, label=f"{name}: cos(spiking, rate)", **kwds)
        axes.plot(x, lay["noise_ceiling_per_example"], "_", ms=12, color=colour, label=f"{name}: noise ceiling")
    axes.set_xlabel("example")
    axes.set_ylabel("cosine similarity of dW")
    axes.set_ylim(min(0.0, axes.get_ylim()[0]), 1.02)
    axes.legend(fontsize=7)
    return axes


def plot_learning_curves(learning: dict, axes=None, **kwds):
    """Test error (rate readout) against examples for both models; returns the Axes."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 1, figsize=(7, 4))
    for k, curve in enumerate(learning.get("rate_order_curves", [])):
        c = np.asarray(curve, dtype=float)
        axes.plot(c[:, 0], c[:, 1], "-", color="0.75", lw=0.8, label="rate model, other orders" if k == 0 else None)
    r = np.asarray(learning["rate_curve"], dtype=float)
    axes.plot(r[:, 0], r[:, 1], "o-", ms=3, color="tab:blue", label="rate model", **kwds)
    for k, curve in enumerate(learning["spiking_curves"]):
        c = np.asarray(curve, dtype=float)
        axes.plot(c[:, 0], c[:, 1], "s-", ms=3, color=f"C{1 + k}",
                  label="spiking network" + (f" (run {k})" if k else ""), **kwds)
    if "mean_field_curve" in learning:
        c = np.asarray(learning["mean_field_curve"], dtype=float)
        axes.plot(c[:, 0], c[:, 1], "--", color="k", lw=1, label="mean-field twin (spiking protocol, no noise)")
    late = learning["late_from_examples"]
    axes.axvspan(late, r[-1, 0], color="tab:green", alpha=0.07, label="compared stretch")
    axes.set_xlabel("training examples")
    axes.set_ylabel("test error (%), rate-model readout")
    axes.legend(fontsize=7)
    return axes


def plot_spike_statistics(groups: dict, axes=None, **kwds):
    """Measured against expected ISI CV and Fano factor per neuron; returns the Axes."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 4), squeeze=False)
        axes = list(axes[0])
    for k, (name, g) in enumerate(groups.items()):
        for ax, stat in zip(axes, ("cv", "fano"), strict=True):
            ax.errorbar(g[f"{stat}_expected"], g[stat], yerr=g[f"{stat}_sd"], fmt="o", ms=2, lw=0.5,
                        color=f"C{k}", label=name, **kwds)
    for ax, stat in zip(axes, ("ISI CV", "Fano factor"), strict=True):
        lo, hi = ax.get_xlim()
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
        ax.set_xlabel(f"expected {stat} (Bernoulli bootstrap)")
        ax.set_ylabel(f"measured {stat}")
        ax.legend(fontsize=7)
    return axes


# --------------------------------------------------------------------------------------------------
# Running a tier
# --------------------------------------------------------------------------------------------------


def _versions() -> dict:
    import elephant
    import neo

    return {**versions(), "elephant": elephant.__version__, "neo": neo.__version__}


def _save(fig_axes, path: Path) -> str:
    import matplotlib.pyplot as plt

    ax = np.ravel(np.asarray(fig_axes, dtype=object))[0] if isinstance(fig_axes, list | tuple | np.ndarray) else fig_axes
    fig = ax.figure
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


@dataclass
class _Timer:
    times: dict = field(default_factory=dict)

    def __call__(self, name, start):
        self.times[name] = round(time.perf_counter() - start, 1)


def run_validation(tier: str = "fast", output_dir=None, data_dir=None, seed: int = 0, target: str = "cython",
                   checks=None) -> tuple[dict, bool]:
    """Run one validation tier; write ``report_<tier>.json`` and ``figures/`` into ``output_dir``.

    Parameters
    ----------
    tier : {'fast', 'full'}
        ``'fast'`` (CI: under 5 min on 2 cores including compilation) or ``'full'``
        (about an hour): see :data:`TIERS`.
    output_dir : str or Path, optional
        Where the report and figures go (created); None: nothing is written.
    data_dir : str or Path, optional
        The MNIST folder (see :func:`brian_dendrite.datasets.load_mnist`).
    seed : int
        Seeds the weights, the orders and the spikes.
    target : {'cython', 'numpy'}
        Brian2 code-generation target.
    checks : iterable of str, optional
        Subset of ``('rates', 'plateaus', 'updates', 'learning', 'spike_statistics')``;
        default all. ``'plateaus'`` and ``'updates'`` share their simulations.

    Returns
    -------
    (dict, bool)
        The report and whether every check that was run passed.

    Raises
    ------
    ValueError
        For an unknown tier or check name (the valid ones are listed).
    """
    import brian2
    import matplotlib

    from ..datasets import load_mnist
    from ..simulation import SpikingNetwork

    if tier not in TIERS:
        raise ValueError(f"tier = {tier!r}: expected one of {', '.join(sorted(TIERS))}")
    all_checks = ("rates", "plateaus", "updates", "learning", "spike_statistics")
    checks = tuple(all_checks if checks is None else checks)
    unknown = sorted(set(checks) - set(all_checks))
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; valid checks are {', '.join(all_checks)}")
    if target not in ("cython", "numpy"):
        raise ValueError(f"target = {target!r}: expected 'cython' or 'numpy'")
    cfg = TIERS[tier]
    out_dir = None
    if output_dir is not None:
        out_dir = Path(output_dir)
        (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    matplotlib.use("Agg")
    old_target = brian2.prefs.codegen.target
    brian2.prefs.codegen.target = target
    timer = _Timer()
    t_start = time.perf_counter()
    try:
        params = load_model(cfg.model)
        train = load_mnist("train", data_dir)
        test = load_mnist("test", data_dir)
        W0 = initial_weights(params, np.random.default_rng(np.random.SeedSequence([seed, 0xD1])))
        t0 = time.perf_counter()
        pre = RateNetwork(params, W0.copy())
        pre_idx = np.random.default_rng(np.random.SeedSequence([seed, 0x9E])).permutation(len(train.labels))
        pre_idx = pre_idx[: cfg.pretrain_examples]
        pre.train(train.images[pre_idx], train.labels[pre_idx])
        W_trained = pre.weights
        pretrain_error = pre.test_error(test.images[:1000], test.labels[:1000])
        timer("pretrain_rate_model", t0)
        t0 = time.perf_counter()
        net = SpikingNetwork(params, weights=W0, seed=seed, chunk_size=cfg.chunk_size,
                             test_chunk_size=cfg.test_chunk_size)
        timer("build_network", t0)
        report = {
            "tier": tier,
            "seed": seed,
            "target": target,
            "model": params.name,
            "layer_sizes": list(params.network.layer_sizes),
            "config": asdict(cfg),
            "versions": _versions(),
            "kernel_masses": effective_kernel_masses(params.cell),
            "pretrained_weights": {"rate_examples": cfg.pretrain_examples,
                                   "rate_model_test_error_first_1000": pretrain_error},
            "checks": {},
            "figures": {},
        }
        figs = {}

        if "rates" in checks:
            t0 = time.perf_counter()
            net.set_weights(W_trained)
            rate = RateNetwork(params, W_trained)
            n = cfg.rate_images
            rates = measure_rates(net, rate, test.images[:n], test.labels[:n], cfg.rate_recorded_hidden,
                                  key=(seed, 1))
            layers = {}
            for k, name in enumerate(rates["layers"]):
                layers[name] = rate_agreement(rates["measured"][k], rates["predicted"][k], rates["corrected"][k],
                                              rates["noise_sd"][k], layer=name, seed=seed)
                mfp = rates["mean_field"][k]
                pred = rates["predicted"][k]
                layers[name]["relative_bias_kernel_and_settling"] = float(
                    (mfp.sum() - pred.sum()) / pred.sum()) if pred.sum() > 0 else None
                layers[name]["relative_bias_jensen"] = float(
                    (rates["corrected"][k].sum() - mfp.sum()) / pred.sum()) if pred.sum() > 0 else None
            report["checks"]["rates"] = {
                "weights": f"rate model trained on {cfg.pretrain_examples} examples",
                "images": n,
                "window_steps": rates["n_window_steps"],
                "layers": layers,
                "jensen_from_recorded_V": rates["jensen"],
                "passed": all(v["passed"] for v in layers.values()),
            }
            figs["rates"] = (plot_rate_scatter, (rates,))
            timer("check_rates", t0)

        if "plateaus" in checks or "updates" in checks:
            t0 = time.perf_counter()
            idx = np.arange(cfg.update_examples) + 100  # examples 100..: the first ones are the pretraining's
            order = np.random.default_rng(np.random.SeedSequence([seed, 0x3A])).permutation(len(train.labels))
            ex_idx = order[idx]
            prev_idx = order[idx - 1]
            images, labels = train.images[ex_idx], train.labels[ex_idx]
            previous = (train.images[prev_idx], train.labels[prev_idx])
            plateau_results, update_results = {}, {}
            for wname in cfg.update_weights:
                W = W0 if wname == "initial" else W_trained
                rate = RateNetwork(params, W)
                qs = [rate.example_quantities(images[e], labels[e]) for e in range(len(labels))]
                dW_rate = [[d[0] for d in rate.update_deltas(images[e], labels[e])] for e in range(len(labels))]
                runs = measure_examples(net, params, W, images, labels, cfg.update_repeats, "warmup",
                                        key=seed * 100 + (1 if wname == "initial" else 2))
                mf = _mean_field_examples(params, W, images, labels, runs, "warmup", noise=True)
                mf0 = _mean_field_examples(params, W, images, labels, runs, "warmup", noise=False)
                # analytic apical noise: Poisson output spikes only, and the full propagation
                win = int(round(float(params.protocol.window_length / params.cell.dt)))
                n_h = len(W.Y)
                analytic = {}
                for h in range(n_h):
                    sd_p = {"f": [], "t": []}
                    sd_full = {"f": [], "t": []}
                    trace = psp_kernels(params.cell)["trace"]
                    fac = window_variance_factor(trace, win)
                    for e, q in enumerate(qs):
                        for ph, suffix in (("f", "f"), ("t", "t")):
                            p_out = np.asarray(q[f"rates_{suffix}"][-1]) * float(params.cell.dt / ms)
                            varA_p = (W.Y[h] ** 2) @ (p_out * (1 - p_out)) * fac
                            ex = dict(q, pixels=images[e])
                            varA = stationary_noise(params, W, ex, "forward" if ph == "f" else "target", win)["A"][h]
                            slope = sigma(q[f"A_{suffix}"][h]) * (1 - sigma(q[f"A_{suffix}"][h]))
                            sd_p[ph].append(slope * np.sqrt(varA_p))
                            sd_full[ph].append(slope * np.sqrt(varA))
                    analytic[h] = {ph: {"poisson_output_only": np.array(sd_p[ph]),
                                        "propagated": np.array(sd_full[ph])} for ph in ("f", "t")}
                per_layer = {}
                for h in range(n_h):
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
                    if wname == cfg.update_weights[0] and h == 0:
                        figs["plateaus"] = (plot_plateau_scatter, (spk, rat))
                plateau_results[wname] = {"layers": per_layer,
                                          "passed": all(v["passed"] for v in per_layer.values())}
                names = [f"W_{k}" for k in range(len(W.W))]
                upd = update_agreement(runs["dW"], dW_rate, names)
                for k, name in enumerate(names):
                    upd["layers"][name]["cosine_mean_field_vs_rate_mean"] = float(
                        np.mean([_cos(mf["dW"][e][k], dW_rate[e][k]) for e in range(len(labels))]))
                    upd["layers"][name]["projection_scale_mean_field"] = float(np.mean([
                        mf["dW"][e][k].ravel() @ dW_rate[e][k].ravel() / np.sum(dW_rate[e][k] ** 2)
                        for e in range(len(labels))]))
                    upd["layers"][name]["projection_scale_mean_field_without_noise"] = float(np.mean([
                        mf0["dW"][e][k].ravel() @ dW_rate[e][k].ravel() / np.sum(dW_rate[e][k] ** 2)
                        for e in range(len(labels))]))
                    # dW = delta s^T in both models: cos(dW) = cos(delta) * cos(s_pre)
                    upd["layers"][name]["cosine_presynaptic_factor_mean"] = float(np.mean([
                        _cos(runs["s_mean_f"][e][r][k], qs[e]["s_pre_f"][k])
                        for e in range(len(labels)) for r in range(cfg.update_repeats)]))
                    upd["layers"][name]["cosine_bias_update_mean"] = float(np.mean([
                        _cos(runs["db"][e][r][k], rate.update_deltas(images[e], labels[e])[k][1])
                        for e in range(len(labels)) for r in range(cfg.update_repeats)]))
                diag = {}
                for mode in cfg.update_diagnostics:
                    d_runs = measure_examples(net, params, W, images, labels, 1, mode, previous=previous,
                                              key=seed * 100 + 50 + (1 if wname == "initial" else 2))
                    mf_d = _mean_field_examples(params, W, images, labels, d_runs, mode, noise=False,
                                                previous=previous)
                    diag[mode] = {
                        "cosine_mean": {names[k]: float(np.mean([_cos(d_runs["dW"][e][0][k], dW_rate[e][k])
                                                                 for e in range(len(labels))]))
                                        for k in range(len(names))},
                        "projection_scale_mean": {names[k]: float(np.mean([
                            d_runs["dW"][e][0][k].ravel() @ dW_rate[e][k].ravel() / np.sum(dW_rate[e][k] ** 2)
                            for e in range(len(labels))])) for k in range(len(names))},
                        "mean_field_cosine_mean": {names[k]: float(np.mean([_cos(mf_d["dW"][e][k], dW_rate[e][k])
                                                                            for e in range(len(labels))]))
                                                   for k in range(len(names))},
                        "mean_field_projection_scale_mean": {names[k]: float(np.mean([
                            mf_d["dW"][e][k].ravel() @ dW_rate[e][k].ravel() / np.sum(dW_rate[e][k] ** 2)
                            for e in range(len(labels))])) for k in range(len(names))},
                        "alpha_f_pearson_r": _pearson(d_runs["alpha_f"][0][0], [q["alpha_f"][0] for q in qs]),
                        "alpha_t_pearson_r": _pearson(d_runs["alpha_t"][0][0], [q["alpha_t"][0] for q in qs]),
                        "alpha_f_rms_difference": float(np.sqrt(np.mean(
                            (d_runs["alpha_f"][0][0] - np.array([q["alpha_f"][0] for q in qs])) ** 2))),
                    }
                upd["diagnostic_modes"] = diag
                upd["alpha_f_pearson_r_warmup"] = _pearson(runs["alpha_f"][0],
                                                           np.broadcast_to([q["alpha_f"][0] for q in qs],
                                                                           runs["alpha_f"][0].shape))
                update_results[wname] = upd
                if wname == cfg.update_weights[0]:
                    figs["updates"] = (plot_update_cosines, (upd,))
            if "plateaus" in checks:
                report["checks"]["plateaus"] = {
                    "protocol": "warm-up with the same example, then repeats from that state",
                    "examples": cfg.update_examples, "repeats": cfg.update_repeats,
                    "weights": plateau_results,
                    "passed": all(v["passed"] for v in plateau_results.values()),
                }
            if "updates" in checks:
                report["checks"]["updates"] = {
                    "protocol": "warm-up with the same example, then repeats from that state",
                    "examples": cfg.update_examples, "repeats": cfg.update_repeats,
                    "weights": update_results,
                    "passed": all(v["passed"] for v in update_results.values()),
                }
            timer("check_plateaus_updates", t0)

        if "learning" in checks:
            t0 = time.perf_counter()
            learn = measure_learning(net, params, W0, train, test, cfg, seed)
            res = learning_agreement(learn["spiking_curves"], learn["rate_curve"], learn["rate_order_curves"],
                                     late_from=cfg.learn_examples // 2, discordant=learn["discordant"],
                                     n_test=learn["n_eval"])
            res["rate_order_curves"] = [[[int(a), float(b)] for a, b in c] for c in learn["rate_order_curves"]]
            res["mean_field_curve"] = [[int(a), float(b)] for a, b in learn["mean_field_curve"]]
            res["area_under_curve_mean_error"] = {
                "spiking": float(np.mean([e for _, e in learn["spiking_curves"][0][1:]])),
                "rate": float(np.mean([e for _, e in learn["rate_curve"][1:]])),
                "rate_orders": [float(np.mean([e for _, e in c[1:]])) for c in learn["rate_order_curves"]],
            }
            if learn["mean_field_curve"][-1][0] >= cfg.learn_examples // 2:
                res["late_mean_mean_field"] = _late_mean(learn["mean_field_curve"], cfg.learn_examples // 2)
            res["examples"] = cfg.learn_examples
            res["eval_images"] = cfg.learn_eval_images
            res["spiking_readout"] = dict(learn["readout"], test_images=learn["n_test"])
            res["seconds"] = {"rate": learn["rate_seconds"], "spiking": learn["spiking_seconds"],
                              "mean_field": learn["mean_field_seconds"]}
            report["checks"]["learning"] = res
            figs["learning"] = (plot_learning_curves, (res,))
            timer("check_learning", t0)

        if "spike_statistics" in checks:
            t0 = time.perf_counter()
            net.set_weights(W_trained)
            k = 0
            groups = measure_spike_statistics(net, test.images[k], test.labels[k], cfg.stat_repeats,
                                              cfg.stat_bootstrap, seed, key=(seed, 5))
            res = spike_statistics(groups)
            res["image"] = "test image 0, repeated"
            res["repeats"] = cfg.stat_repeats
            report["checks"]["spike_statistics"] = res
            figs["spike_statistics"] = (plot_spike_statistics, (groups,))
            timer("check_spike_statistics", t0)

        report["passed"] = bool(all(c["passed"] for c in report["checks"].values()))
        report["seconds"] = dict(timer.times, total=round(time.perf_counter() - t_start, 1))
        if out_dir is not None:
            for name, (fn, args) in figs.items():
                report["figures"][name] = "figures/" + _save(fn(*args), out_dir / "figures" / f"{name}.png")
        write_json_atomic(out_dir / f"report_{tier}.json", report)
        return report, report["passed"]
    finally:
        brian2.prefs.codegen.target = old_target


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def _summary_lines(report: dict) -> list[str]:
    lines = [f"validation tier {report['tier']} (seed {report['seed']}, {report['target']}): "
             f"{'PASSED' if report['passed'] else 'FAILED'} in {report['seconds']['total']} s"]
    for name, check in report["checks"].items():
        lines.append(f"  {name}: {'pass' if check['passed'] else 'FAIL'}")
        if name == "rates":
            for lay, v in check["layers"].items():
                lines.append(f"    {lay}: r = {v['pearson_r']:.4f} (min {v['tolerance']['pearson_r_min']:.4f}), "
                             f"median rel. error = {v['median_relative_error']:.3f} "
                             f"(max {v['tolerance']['median_relative_error_max']:.3f}), "
                             f"mean z = {v['mean_z']:+.3f}, sd z = {v['sd_z']:.3f}")
        elif name == "plateaus":
            for w, res in check["weights"].items():
                for lay, v in res["layers"].items():
                    for ph, e in v["phases"].items():
                        lines.append(f"    {w} {lay} {ph}: r = {e['pearson_r']:.3f}, MAD = "
                                     f"{e['mean_abs_difference']:.4f}, MSD/noise var = "
                                     f"{e['msd_over_noise_variance']:.2f} (max {e['tolerance']['msd_over_noise_variance_max']})")
        elif name == "updates":
            for w, res in check["weights"].items():
                for lay, v in res["layers"].items():
                    lines.append(f"    {w} {lay}: cos mean {v['cosine_mean']:.3f} min {v['cosine_min']:.3f} "
                                 f"(ceiling {v['noise_ceiling_mean']:.3f}, min allowed "
                                 f"{v['tolerance']['cosine_mean_min']:.3f}), scale {v['projection_scale_mean']:.2f}")
        elif name == "learning":
            lines.append(f"    mean error from {check['late_from_examples']} examples: spiking "
                         f"{check['late_mean_spiking']:.2f} %, rate {check['late_mean_rate']:.2f} %, "
                         f"|diff| {abs(check['difference']):.2f} (max {check['tolerance']['abs_difference_max']:.2f})")
        elif name == "spike_statistics":
            for g, v in check["groups"].items():
                for stat in ("cv", "fano", "count_given_rate"):
                    if stat in v:
                        s = v[stat]
                        lines.append(f"    {g} {stat}: mean z {s['mean_z']:+.3f}, sd z {s['sd_z']:.3f}, n {s['n']}")
    return lines


def main(argv=None) -> int:
    """``python -m brian_dendrite.validation.core [--tier fast|full] [--output DIR] ...``; exit 0 if all checks pass."""
    parser = argparse.ArgumentParser(prog="brian-dendrite validate",
                                     description="Validate the spiking network against the rate model.")
    parser.add_argument("--tier", choices=sorted(TIERS), default="fast")
    parser.add_argument("--output", type=Path, default=Path("validation"),
                        help="directory for report_<tier>.json and figures/ (default ./validation)")
    parser.add_argument("--data-dir", type=Path, default=None, help="MNIST folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", choices=["cython", "numpy"], default="cython")
    parser.add_argument("--checks", default=None,
                        help="comma-separated subset of rates,plateaus,updates,learning,spike_statistics")
    args = parser.parse_args(argv)
    checks = None if args.checks is None else [c.strip() for c in args.checks.split(",") if c.strip()]
    try:
        report, passed = run_validation(args.tier, args.output, args.data_dir, args.seed, args.target, checks)
    except (ValueError, FileNotFoundError) as err:  # bad usage or input (e.g. no MNIST files)
        print(f"error: {err}")
        return 2
    print("\n".join(_summary_lines(report)))
    print(f"report: {args.output / f'report_{args.tier}.json'}")
    return 0 if passed else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

"""The mean-field twin: the spiking network's own update with every spike replaced by its probability.

:class:`MeanFieldNetwork` runs the discrete-time update of
:class:`~brian_dendrite.simulation.SpikingNetwork` - same time step, integrator,
kernel sampling (full or truncated), update order within a step, phase schedule,
averaging windows and resets - on expected spikes instead of sampled ones, for a
batch of independent networks side by side (one per image). It is deterministic and
needs no Brian2.

It separates the two sources of the difference between the spiking network and the
rate abstraction (:class:`~brian_dendrite.rate.RateNetwork`):

* mean-field minus rate model is effect (a) of :mod:`brian_dendrite.validation`:
  the kernel sampled once per step and windows that start before the cascade of
  kernels has settled;
* spiking minus mean-field is the spike noise plus effect (b), ``E[sigma(V)]`` versus
  ``sigma(E[V])``, which the twin adds itself when given the stationary variances of
  :func:`~brian_dendrite.validation.stationary_noise`.

The twin is also a fast, noise-free stand-in for the spiking network in training
(:func:`brian_dendrite.training.train_mean_field`) and in the settling study
(:func:`~brian_dendrite.validation.settling_fidelity`).
"""

from __future__ import annotations

import copy
import math

import numpy as np

from ..model import ModelParameters, Weights, cell_floats, learning_scales
from ..rate import sigma
from .noise import _GH_W, _GH_X, _expected_sigma

__all__ = ["MeanFieldNetwork"]


class MeanFieldNetwork:
    """The spiking network's discrete-time update with every spike replaced by its probability.

    Same time step, integrator, kernel sampling, update order within a step, phase
    schedule, averaging windows and resets as :class:`SpikingNetwork`, for a batch of
    independent networks (one per image). Without ``noise`` it is the exact
    expectation of the spiking network's *linear* parts (kernels, potentials) and
    neglects only the nonlinearity of ``sigma``; with ``noise`` (stationary
    variances from :func:`stationary_noise`) the spike probability is
    ``p_max E[sigma(V)]`` over a Gaussian ``V`` and plateaus are
    ``E[sigma(A_mean)]``, which adds effect (b) of :mod:`brian_dendrite.validation`.

    It exists to explain the residual between spiking and rate network: the
    difference mean-field minus rate model is effect (a), the transient and kernel
    sampling, and the difference spiking minus mean-field is noise plus effect (b).

    Parameters
    ----------
    params : ModelParameters
        The model (cell constants, kernel, protocol).
    weights : Weights
        Initial weights; copied, so that :meth:`train` leaves them unchanged.
    batch : int
        Number of independent copies (images) simulated side by side (default 1).

    Attributes
    ----------
    state : dict
        Potentials ``V``, basal traces ``X``, apical traces ``XA``, own traces ``y``
        (each a pair of exponentials, time constants ``tau_L`` and ``tau_s``), the
        truncations still ``pending`` and the ``step`` counter.
    """

    def __init__(self, params: ModelParameters, weights: Weights, batch: int = 1):
        self.params = params
        self.c = cell_floats(params.cell)
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

    def set_state(self, state: dict) -> None:
        """Replace the state by a (deep) copy of ``state``, e.g. one restored from a checkpoint."""
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
            The phase: a test phase ends with the spiking network's reset of the potentials.
        n_steps : int
            Length of the phase in time steps.
        pixels : array (batch, n_input)
            The images, pixel values in [0, 1].
        labels : array (batch,), optional
            The taught classes, needed for ``'target'``.
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

        Raises
        ------
        ValueError
            For an unknown ``kind``.
        """
        if kind not in ("forward", "target", "test"):
            raise ValueError(f"kind = {kind!r}: expected 'forward', 'target' or 'test'")
        window = min(self._window_steps(kind, n_steps, window), n_steps)
        pixels = np.asarray(pixels, dtype=float).reshape(self.batch, -1)
        p_in = self.c["p_max"] * pixels
        teaching = self._teaching_conductances(labels) if kind == "target" else None
        var_V = (noise or {}).get("V", [None] * self.n_layers)
        var_A = (noise or {}).get("A", [None] * self.n_hidden)
        euler = self.params.cell.method == "euler"
        sums = {"V": [0.0] * self.n_layers, "rate": [0.0] * self.n_layers, "p": [0.0] * self.n_layers,
                "s": [0.0] * (self.n_layers + 1), "A": [0.0] * self.n_hidden}
        W_in_drive = p_in @ self.W[0].T  # the input's delivery to layer 0's traces, constant in a phase
        for j in range(n_steps):
            # 1. state update (values at the start of the step), then decay of the traces
            self._update_potentials(teaching, euler)
            # 2. window accumulation (after the update)
            probs = [p_in]
            for lay in range(self.n_layers):
                probs.append(self._p(self.state["V"][lay], var_V[lay]))
            if j >= n_steps - window:
                self._accumulate(sums, probs)
            # 3./4. expected spikes, delivered through the synapses
            self._deliver(W_in_drive, probs)
            if self.c["cut"] is not None:
                self._remove_truncated()
            self.state["step"] += 1
        out = self._window_means(sums, window, var_A)
        if kind == "test":
            self.reset_potentials()
        return out

    def _window_steps(self, kind: str, n_steps: int, window: int | None) -> int:
        """The averaging window of a phase in steps: ``window`` if given, else the protocol's."""
        if window is not None:
            return window
        protocol = self.params.protocol
        dt_q = self.params.cell.dt
        if kind == "test":
            return int(round(float(protocol.test_window / dt_q)))
        if protocol.window == "last":
            return int(round(float(protocol.window_length / dt_q)))
        return n_steps - int(round(float(protocol.settle_time / dt_q)))

    def _teaching_conductances(self, labels) -> tuple[np.ndarray, np.ndarray]:
        """Excitatory and inhibitory teaching conductances of the output layer (batch, n_output)."""
        labels = np.asarray(labels).reshape(self.batch)
        n_out = self.sizes[-1]
        onehot = np.zeros((self.batch, n_out))
        onehot[np.arange(self.batch), labels] = 1.0
        g_E = self.c["g_teach"] * onehot
        g_I = self.c["g_teach"] * (1 - onehot)
        return g_E, g_I

    def _update_potentials(self, teaching, euler: bool) -> None:
        """One step of every somatic potential from the traces at the start of the step; then decay all traces."""
        c, st = self.c, self.state
        dL, ds = self.decay
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
                if teaching is not None:
                    g_E, g_I = teaching
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

    def _accumulate(self, sums: dict, probs: list) -> None:
        """Add this step's potentials, spike probabilities, own PSPs and apical potentials to the window sums."""
        st = self.state
        for lay in range(self.n_layers):
            sums["V"][lay] = sums["V"][lay] + st["V"][lay]
            sums["p"][lay] = sums["p"][lay] + probs[lay + 1]
        for k, y in enumerate(st["y"]):
            sums["s"][k] = sums["s"][k] + (y[0] - y[1]) * self.psp
        for h in range(self.n_hidden):
            XAL, XAs = st["XA"][h]
            sums["A"][h] = sums["A"][h] + (XAL - XAs) * self.psp + self.c_apical[h]

    def _deliver(self, W_in_drive, probs: list) -> None:
        """Add the expected spikes to the basal, apical and own traces; remember them for the truncation."""
        c, st = self.c, self.state
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

    def _remove_truncated(self) -> None:
        """Truncated kernel: remove the remainder of the increments delivered ``cut`` steps ago."""
        st = self.state
        keep_pending = []
        for due, (name, k), inc in st["pending"]:
            if due == st["step"]:
                target = st[name][k]
                target[0] -= inc * self.cut_decay[0]
                target[1] -= inc * self.cut_decay[1]
            else:
                keep_pending.append((due, (name, k), inc))
        st["pending"] = keep_pending

    def _window_means(self, sums: dict, window: int, var_A: list) -> dict:
        """The window means of :meth:`run_phase` from the window sums, and the plateaus ``alpha``."""
        p_max = self.c["p_max"]
        out = {
            "V_mean": [v / window for v in sums["V"]],
            "p_mean": [v / window for v in sums["p"]],
            "rate_mean": [v / window / p_max for v in sums["p"]],
            "s_mean": [v / window for v in sums["s"]],
            "A_mean": [v / window for v in sums["A"]],
        }
        out["alpha"] = [sigma(A) if var_A[h] is None else _expected_sigma(A, var_A[h])
                        for h, A in enumerate(out["A_mean"])]
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

        Only for ``batch == 1``. The weight change of each example (:meth:`example_update`)
        is applied after its target phase, as in the spiking network.

        Parameters
        ----------
        images : array (n, n_input)
            Training images, pixel values in [0, 1].
        labels : array (n,)
            Their classes.
        phase_lengths : array (n, 2)
            Forward and target phase lengths in steps (e.g. from
            :func:`brian_dendrite.model.draw_phase_lengths`).

        Raises
        ------
        ValueError
            If the network was built with ``batch != 1``.
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
        """Weight and bias changes from the window means of a forward and a target phase (specification 1.9).

        Parameters
        ----------
        forward, target : dict
            Outputs of :meth:`run_phase` for the forward and the target phase.
        window_var : list of array, optional
            Per non-input layer, the variance of the forward window mean of the
            somatic potential; if given, the local error is averaged over a Gaussian
            ``V_mean_f`` (the rule is nonlinear in it: ``sigma(V) sigma'(V)`` at the output).

        Returns
        -------
        list of (array (batch, n_post, n_pre), array (batch, n_post))
            Per weight layer, the weight and bias changes of every copy.
        """
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

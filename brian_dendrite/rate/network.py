"""The rate-based abstraction of the network ("nonspiking mode", MODEL.md section 4).

A deterministic numpy network built from the same parameter objects
(:class:`~brian_dendrite.model.parameters.ModelParameters`) and weights
(:class:`~brian_dendrite.model.initialization.Weights`) as the spiking network. Each
phase of an example is replaced by the exact steady state of the compartmental
equations driven by mean rates: it is the Lemma-1 limit of the spiking model
(no Poisson noise, no settling transient, no window averaging). It serves as a
fast reference for the spiking simulation and for quick experiments.

Units: rates in spikes/ms (``phi = cell.phi_max`` in spikes/ms, 0.2 by
default), potentials and weights dimensionless, conductances in 1/ms taken as
plain floats (MODEL.md section 5, item 1).

Equations (MODEL.md 1.1-1.9 at steady state)
--------------------------------------------
Input (1.1, 1.2)
    ``r_in = phi * pixel``; the presynaptic "PSP" of every layer is
    ``s = psp_scale * r`` where ``psp_scale`` is the mean of the kernel-filtered
    spike train per unit rate: ``cell.kernel_mass`` (1) for the full kernel. The
    somatic drive of the next layer is ``W (drive_scale * r)``, with ``drive_scale
    = psp_scale`` for the full kernel. For the truncated kernel (a discrete-time
    construction of the published code) the defaults are the sums the spiking
    network's time steps see: the dendrites, the apical potential and the rule's
    presynaptic average ``kappa(1..10) = 0.510``, the soma (integrated from the
    traces at the start of each step) ``kappa(0..9) = 0.463``
    (:func:`brian_dendrite.model.kernels.effective_kernel_masses`). The published
    nonspiking mode uses 1, the published spiking code 0.510 for both.
Hidden layer ``h`` (1.3)
    ``B = W s_pre + b``; the somatic steady state of
    ``dC/dt = -g_L C + g_B (B - C) + g_A (A - C)`` is
    ``C = (g_B B + g_A A)/(g_L + g_B + g_A) = k_B B + g_A/(g_L+g_B+g_A) A``;
    ``rate = phi sigma(C)``. (The published nonspiking mode drops the apical
    term; it is exact here and vanishes for the default ``g_A = 0``.)
Apical (1.3, 1.13)
    ``A^h = Y^h (fb_scale * r_out) + c^h`` with the output rates of the same
    phase. ``fb_scale = psp_scale`` for spiking feedback (the output spikes are
    kernel-filtered) and 1 for rate feedback (``network.feedback_spiking =
    False``, Fig. 7A red: ``A = Y phi^1`` without kernel).
Output (1.4)
    forward ``C = k_D B``; target
    ``C = (g_D B + g_teach E)/(g_L + g_D + g_teach)`` with ``E = E_E`` for the
    label's neuron and ``E_I`` for the others.
Plateaus (1.7)
    ``alpha_f = sigma(A_f)``, ``alpha_t = sigma(A_t)``.

With ``g_A > 0`` the hidden somata depend on ``A``, which depends on the output,
which depends on the hidden layers: each phase is then solved as a fixed point
in the output rates, ``r = F(r)``, by fixed-point iteration started from the
network without feedback (``A = c``), damped against oscillation and finished
by Newton steps with the analytic Jacobian when it is slow. It stops when no
apical potential changes by more than ``tol = 1e-10`` between iterations and
raises :class:`ConvergenceError` after ``max_iter`` iterations (default 10,000; see
:meth:`RateNetwork._solve_fixed_point`). For the paper's parameters the loop
gain is small and two or three iterations suffice; near a saddle-node of the
loop (largest loop-gain eigenvalue close to 1, no root nearby, Newton steps
cannot land) the relaxation passes slowly and may need thousands.

Learning rule (1.9, normalised form)
------------------------------------
Per example, online, with ``eta = network.learning_rates[l]`` and
``scale = network.error_scale`` (20)::

    output: delta = eta * scale * k_D * (sigma(C_t) - sigma(C_f)) * sigma'(C_f)
    hidden: delta = eta * scale * k_B * (alpha_t - alpha_f) * sigma'(C_f)
    W += outer(delta, s_pre_f);  b += delta

``sigma(C_t)`` is the target-phase mean output rate divided by ``phi``;
``s_pre_f`` is the forward-phase presynaptic PSP in spikes/ms. This equals the
paper's un-normalised rule with ``P_hidden = scale/phi`` and
``P_final = scale/phi**2``. ``k_B`` includes ``g_A``. After every update,
symmetric feedback is recomputed (with fresh noise for ``noisy_symmetric``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from brian2 import ms

from ..model import ModelParameters, Weights, effective_kernel_masses, initial_weights, symmetric_feedback

try:  # a single, overflow-free ufunc
    from scipy.special import expit as _sigma
except ImportError:  # pragma: no cover - scipy is normally installed with the dependencies

    def _sigma(x):
        return np.exp(-np.logaddexp(0.0, -x))


__all__ = ["RateNetwork", "LayerState", "ConvergenceError", "sigma", "sigma_prime"]

logger = logging.getLogger("brian2.brian_dendrite.rate")

#: Contraction factor of the plain fixed-point iteration above which Newton steps are tried.
_SLOW = 0.25
#: A Newton step is kept only if the residual it leaves is below this fraction of phi.
_NEWTON_ACCEPT = 1e-6
#: Smallest relaxation factor of the damped fixed-point iteration.
_MIN_BETA = 1.0 / 256

#: Images per block in batched inference (bounds the memory of the hidden activities).
_BLOCK = 512


class ConvergenceError(RuntimeError):
    """The fixed-point iteration of a phase with apical conductance did not converge."""


def sigma(x):
    """Logistic function ``1/(1 + exp(-x))`` (overflow-free)."""
    return _sigma(x)


def sigma_prime(x):
    """Derivative of the logistic function, ``sigma(x)(1 - sigma(x))``."""
    s = _sigma(x)
    return s * (1.0 - s)


@dataclass
class LayerState:
    """Steady state of one (hidden or output) layer for a batch or a single example.

    Attributes
    ----------
    B : ndarray
        Basal (hidden) or dendritic (output) potential.
    C : ndarray
        Somatic potential.
    rate : ndarray
        Firing rate ``phi*sigma(C)`` in spikes/ms.
    A : ndarray or None
        Apical potential (hidden layers only).
    """

    B: np.ndarray
    C: np.ndarray
    rate: np.ndarray
    A: np.ndarray | None = None


class RateNetwork:
    """Deterministic rate network of the segregated-dendrite model (MODEL.md section 4).

    Parameters
    ----------
    params : ModelParameters
        Cell, network and protocol parameters (the protocol's timing is not used;
        ``protocol.readout`` is the default readout).
    weights : Weights, optional
        Initial weights (copied). Default: :func:`initial_weights` with ``rng``.
    psp_scale : float, optional
        Mean PSP per unit presynaptic rate as the dendrites and the learning rule
        see it; default 1.0 for the full kernel (its integral), 0.510 for the
        truncated one (``sum kappa(1..10)``). Use 1.0 to match the published
        nonspiking mode with a truncated-kernel parameter set.
    drive_scale : float, optional
        The same for the somatic drive ``B = W (drive_scale r) + b``; default
        ``psp_scale`` for the full kernel, 0.463 (``sum kappa(0..9)``) for the
        truncated one; with ``psp_scale`` given, default ``psp_scale``.
    rng : numpy.random.Generator, optional
        Used for the initial weights when ``weights`` is None and for the noise
        of ``noisy_symmetric`` feedback (redrawn after every update). Default:
        ``numpy.random.default_rng()``.
    tol : float
        Fixed-point tolerance on the apical potentials when ``g_A > 0``.
    max_iter : int
        Maximum number of fixed-point iterations per phase (:class:`ConvergenceError` beyond).
        Near a saddle-node of the loop (the loop gain's largest eigenvalue close to 1, seen
        with ``g_A = 0.6`` after 35 epochs: MNIST test image 4284 needs between 1,000 and
        2,000) the relaxation passes slowly; in a batch, every example leaves the
        iteration when it has converged, so such an example costs only its own sweeps.

    Attributes
    ----------
    examples_seen : int
        Number of training examples presented so far.
    psp_scale, drive_scale, fb_scale : float
        Mean PSP per unit rate seen by the dendrites and the rule, by the soma,
        and by the apical dendrites (``psp_scale`` for spiking feedback, 1 for
        rate feedback).

    Raises
    ------
    ValueError
        If the weights do not match ``params.network.layer_sizes`` or are not finite.
    """

    def __init__(
        self,
        params: ModelParameters,
        weights: Weights | None = None,
        *,
        psp_scale: float | None = None,
        drive_scale: float | None = None,
        rng: np.random.Generator | None = None,
        tol: float = 1e-10,
        max_iter: int = 10000,
    ):
        if not isinstance(params, ModelParameters):
            raise ValueError(f"RateNetwork: params must be a ModelParameters, got {type(params).__name__}")
        self.params = params
        self._rng = rng if rng is not None else np.random.default_rng()
        if weights is None:
            weights = initial_weights(params, self._rng)
        if not isinstance(weights, Weights):
            raise ValueError(f"RateNetwork: weights must be a Weights object, got {type(weights).__name__}")
        weights.check_shapes(params.network.layer_sizes)
        weights.check_finite()

        cell, net = params.cell, params.network
        self.sizes = tuple(net.layer_sizes)
        self.n_layers = len(self.sizes) - 1
        self.n_hidden = self.n_layers - 1
        self.phi = float(cell.phi_max * ms)
        g_L, g_B, g_A, g_D, g_t = (
            float(g * ms) for g in (cell.g_L, cell.g_B, cell.g_A, cell.g_D, cell.g_teach)
        )
        self.g_A = g_A
        self.k_B = cell.k_B
        self.k_D = cell.k_D
        self.k_A = g_A / (g_L + g_B + g_A)
        self._k_D_t = g_D / (g_L + g_D + g_t)
        self._k_teach = g_t / (g_L + g_D + g_t)
        self.E_E, self.E_I = float(cell.E_E), float(cell.E_I)
        if cell.kernel == "full":
            default_psp = default_drive = cell.kernel_mass
        else:
            masses = effective_kernel_masses(cell)
            default_psp, default_drive = masses["trace"], masses["soma"]
        self.psp_scale = float(default_psp if psp_scale is None else psp_scale)
        if drive_scale is None:
            drive_scale = default_drive if psp_scale is None else self.psp_scale
        self.drive_scale = float(drive_scale)
        for name, value in (("psp_scale", self.psp_scale), ("drive_scale", self.drive_scale)):
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"RateNetwork: {name} = {value!r} must be a finite number >= 0")
        # B = drive_ratio * (W s) + b with s the rule's PSP (psp_scale r)
        self._drive_ratio = self.drive_scale / self.psp_scale if self.psp_scale > 0 else 0.0
        self.fb_scale = self.psp_scale if net.feedback_spiking else 1.0
        self.etas = tuple(float(e) for e in net.learning_rates)
        self.error_scale = float(net.error_scale)
        self.tol = float(tol)
        self.max_iter = int(max_iter)
        self._symmetric = net.feedback in ("symmetric", "noisy_symmetric")

        # W is stored transposed, (n_pre, n_post), C-contiguous: batched forward passes are
        # s @ Wt and the rank-1 updates touch only the rows of active presynaptic neurons.
        self._Wt = [np.ascontiguousarray(w.T, dtype=float) for w in weights.W]
        self._b = [v.astype(float, copy=True) for v in weights.b]
        self._Y = [y.astype(float, copy=True) for y in weights.Y]
        self._c = [v.astype(float, copy=True) for v in weights.c]
        self._mask = [None if m is None else m.copy() for m in weights.Y_mask]
        self._buf = [(np.empty_like(wt), np.empty_like(wt)) for wt in self._Wt]
        self.examples_seen = 0

    # ------------------------------------------------------------------ weights
    @property
    def weights(self) -> Weights:
        """A copy of the current weights."""
        return Weights(
            W=[wt.T.copy() for wt in self._Wt],
            b=[v.copy() for v in self._b],
            Y=[y.copy() for y in self._Y],
            c=[v.copy() for v in self._c],
            Y_mask=[None if m is None else m.copy() for m in self._mask],
        )

    # ------------------------------------------------------------------ validation
    def _check_images(self, images, single: bool) -> np.ndarray:
        n_in = self.sizes[0]
        arr = np.asarray(images)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ValueError(f"images must be numeric pixel values in [0, 1], got dtype {arr.dtype}")
        if single:
            if arr.size != n_in:
                raise ValueError(
                    f"image has shape {arr.shape} ({arr.size} pixels); expected {n_in} pixels "
                    f"(network.n_input)"
                )
            arr = arr.reshape(n_in)
        else:
            if arr.ndim < 2 or int(np.prod(arr.shape[1:])) != n_in:
                raise ValueError(
                    f"images have shape {arr.shape}; expected (n_images, {n_in}) or (n_images, ...) "
                    f"with {n_in} pixels per image (for a single image use images[None])"
                )
            if arr.shape[0] == 0:
                raise ValueError("images: empty batch (0 images)")
            arr = arr.reshape(arr.shape[0], n_in)
        if arr.dtype == bool:
            arr = arr.astype(float)
        if np.issubdtype(arr.dtype, np.floating):
            finite = np.isfinite(arr)
            if not finite.all():
                bad = arr.size - int(np.count_nonzero(finite))
                raise ValueError(f"images contain {bad} NaN or infinite pixel values")
        lo, hi = arr.min(), arr.max()
        if lo < 0 or hi > 1:
            raise ValueError(
                f"pixel values must lie in [0, 1] (rate = phi_max*pixel); got range [{lo}, {hi}] "
                "(MNIST bytes must be divided by 255)"
            )
        return arr

    def _check_labels(self, labels, n: int | None) -> np.ndarray:
        lab = np.asarray(labels)
        if lab.dtype == bool or not np.issubdtype(lab.dtype, np.number):
            raise ValueError(f"labels must be integers, got dtype {lab.dtype}")
        if n is None:
            if lab.ndim != 0:
                raise ValueError(f"label must be a single integer, got shape {lab.shape}")
        elif lab.shape != (n,):
            raise ValueError(f"labels have shape {lab.shape}; expected ({n},), one per image")
        if not np.issubdtype(lab.dtype, np.integer):
            if not np.all(np.isfinite(lab)) or np.any(lab != np.round(lab)):
                raise ValueError("labels must be integers (got non-integer or NaN values)")
        n_out = self.sizes[-1]
        if lab.size and (lab.min() < 0 or lab.max() >= n_out):
            raise ValueError(
                f"labels must lie in [0, {n_out - 1}] (network.n_output = {n_out}); got range "
                f"[{lab.min()}, {lab.max()}]"
            )
        return lab.astype(np.intp)

    # ------------------------------------------------------------------ steady states
    def _drive(self, Ws):
        """Somatic drive ``W (drive_scale r)`` from ``W s`` with ``s = psp_scale r``."""
        return Ws if self._drive_ratio == 1.0 else self._drive_ratio * Ws

    def _input_psp(self, pixels: np.ndarray) -> np.ndarray:
        return (self.psp_scale * self.phi) * np.asarray(pixels, dtype=float)

    def _apical(self, r_out: np.ndarray) -> list[np.ndarray]:
        s_fb = self.fb_scale * r_out
        return [s_fb @ y.T + c for y, c in zip(self._Y, self._c, strict=True)]

    def _sweep(self, s_in, A, E, B0=None):
        """One bottom-up pass; ``A`` (per hidden layer) only used when g_A > 0; ``E`` teaching potentials.

        ``B0``: the first layer's potential ``W[0] s_in + b[0]`` if already computed
        (it does not change between sweeps and phases of an example).
        """
        s = s_in
        s_pre, states = [], []
        for lay in range(self.n_layers):
            s_pre.append(s)
            if lay == 0 and B0 is not None:
                B = B0
            else:
                B = self._drive(s @ self._Wt[lay]) + self._b[lay]
            if lay < self.n_hidden:
                C = self.k_B * B
                if self.g_A > 0:
                    C = C + self.k_A * A[lay]
            elif E is None:
                C = self.k_D * B
            else:
                C = self._k_D_t * B + self._k_teach * E
            r = self.phi * _sigma(C)
            states.append(LayerState(B=B, C=C, rate=r))
            s = self.psp_scale * r
        return s_pre, states

    def _phase(self, s_in, E=None, B0=None):
        """Steady state of a phase (forward: ``E`` None; target: teaching potentials ``E``).

        Returns the presynaptic PSPs of each weight layer and a LayerState per
        non-input layer (hidden states carry A).
        """
        if self.g_A > 0 and self.n_hidden:
            if B0 is None:  # the input layer's drive is the same in every iteration
                B0 = self._drive(s_in @ self._Wt[0]) + self._b[0]
            s_pre, states, A = self._solve_fixed_point(s_in, E, B0)
        else:
            s_pre, states = self._sweep(s_in, None, E, B0)
            A = self._apical(states[-1].rate) if self.n_hidden else []
        for h in range(self.n_hidden):
            states[h].A = A[h]
        return s_pre, states

    def _solve_fixed_point(self, s_in, E, B0):
        """Self-consistent phase with apical conductance (``g_A > 0``).

        The unknowns are the output rates ``r`` (n_output per example): given
        ``r``, the apical potentials ``A(r) = Y (fb_scale r) + c`` fix every
        hidden soma and hence the output rate ``F(r)``; the phase's steady state
        is the fixed point ``r = F(r)``.

        Method: relaxation ``r <- r + beta (F(r) - r)`` started from the output
        of the network without feedback (``A = c``), i.e. the fixed point that a
        relaxation from the feedback-free state reaches, also when several
        exist. ``beta = 1`` (plain fixed-point iteration: cheap, and fast for the
        paper's small loop gain) is halved for an example whenever its residual
        ``F(r) - r`` reverses direction (oscillation, loop gain below -1).
        Where the residual shrinks by less than a factor 4 per iteration (gain
        near 1, e.g. ``g_A = 0.6`` with grown symmetric or amplified sparse
        feedback), a Newton step with the analytic Jacobian ``dF/dr``
        (:meth:`_loop_jacobian`), clipped to ``[0, phi]``, is tried; it is kept
        only where it lands within ``1e-6 phi`` of a root and reduces the
        residual tenfold. Accepting any Newton step that merely reduces the
        residual can stall at the residual's local minimum near a saddle-node
        "ghost", which the relaxation passes.

        Convergence: no apical potential changes by more than ``tol`` between
        ``A(r)`` and ``A(F(r))``. The returned somatic potentials are the exact
        steady state for the returned ``A``.
        """
        if np.ndim(s_in) == 2 and len(s_in) > 1:
            return self._solve_fixed_point_rows(s_in, E, B0)
        batch_shape = np.shape(s_in)[:-1]
        A = [np.broadcast_to(c, (*batch_shape, c.size)) for c in self._c]
        r = self._sweep(s_in, A, E, B0)[1][-1].rate
        beta = np.ones((*batch_shape, 1))
        change = np.inf
        previous, previous_res = np.inf, None
        for _ in range(self.max_iter):
            A = self._apical(r)
            s_pre, states = self._sweep(s_in, A, E, B0)
            res = states[-1].rate - r
            change = max(float(np.max(np.abs(self.fb_scale * res @ y.T))) for y in self._Y)
            if change <= self.tol:
                return s_pre, states, A
            r, beta, previous, previous_res = self._relax(s_in, E, B0, states, r, res, beta, previous, previous_res)
        raise ConvergenceError(
            f"the {'target' if E is not None else 'forward'}-phase fixed point with g_A = {self.g_A}/ms "
            f"did not converge in {self.max_iter} iterations (last change of the apical "
            f"potentials {change:.3g}, tolerance {self.tol:.3g})"
        )

    def _relax(self, s_in, E, B0, states, r, res, beta, previous, previous_res):
        """One step of the damped relaxation, with a Newton step where it is slow (see _solve_fixed_point)."""
        size = np.max(np.abs(res), axis=-1)
        if previous_res is not None:
            flipped = np.sum(res * previous_res, axis=-1, keepdims=True) < 0
            beta = np.where(flipped, np.maximum(0.5 * beta, _MIN_BETA), beta)
        r_next = r + beta * res
        if np.any(size > _SLOW * previous):
            J = self._loop_jacobian(states, E)
            try:
                step = np.linalg.solve(np.eye(self.sizes[-1]) - J, res[..., None])[..., 0]
            except np.linalg.LinAlgError:
                step = res
            r_newton = np.clip(r + step, 0.0, self.phi)
            res_newton = np.max(
                np.abs(self._sweep(s_in, self._apical(r_newton), E, B0)[1][-1].rate - r_newton), axis=-1
            )
            good = (res_newton < 0.1 * size) & (res_newton < _NEWTON_ACCEPT * self.phi)
            r_next = np.where(good[..., None], r_newton, r_next)
        return r_next, beta, size, res

    def _solve_fixed_point_rows(self, s_in, E, B0):
        """:meth:`_solve_fixed_point` for a batch of examples (rows), each iterated until it converges.

        A converged row leaves the iteration, so a rare slow example (e.g. one passing
        near a saddle-node of the loop, where the relaxation needs thousands of
        iterations) costs sweeps of itself only, not of the whole block.
        """
        n = len(s_in)
        E_rows = E is not None and np.ndim(E) == 2
        A0 = [np.broadcast_to(c, (n, c.size)) for c in self._c]
        r = self._sweep(s_in, A0, E, B0)[1][-1].rate
        beta = np.ones((n, 1))
        previous = np.full(n, np.inf)
        previous_res = None
        rows = np.arange(n)
        out_pre = out_states = out_A = None
        change = np.inf
        for _ in range(self.max_iter):
            s_w = s_in[rows]
            B0_w = None if B0 is None else B0[rows]
            E_w = E[rows] if E_rows else E
            A = self._apical(r)
            s_pre, states = self._sweep(s_w, A, E_w, B0_w)
            res = states[-1].rate - r
            row_change = np.max([np.max(np.abs(self.fb_scale * res @ y.T), axis=-1) for y in self._Y], axis=0)
            change = float(np.max(row_change))
            done = row_change <= self.tol
            if np.any(done):
                if out_pre is None:
                    out_pre = [np.empty((n, x.shape[-1])) for x in s_pre]
                    out_states = [LayerState(B=np.empty((n, st.B.shape[-1])), C=np.empty((n, st.C.shape[-1])),
                                             rate=np.empty((n, st.rate.shape[-1]))) for st in states]
                    out_A = [np.empty((n, a.shape[-1])) for a in A]
                idx = rows[done]
                for k, x in enumerate(s_pre):
                    out_pre[k][idx] = x[done]
                for k, st in enumerate(states):
                    out_states[k].B[idx] = st.B[done]
                    out_states[k].C[idx] = st.C[done]
                    out_states[k].rate[idx] = st.rate[done]
                for k, a in enumerate(A):
                    out_A[k][idx] = a[done]
                keep = ~done
                if not np.any(keep):
                    return out_pre, out_states, out_A
                rows, r, res, beta, previous = rows[keep], r[keep], res[keep], beta[keep], previous[keep]
                previous_res = None if previous_res is None else previous_res[keep]
                states = [LayerState(B=st.B[keep], C=st.C[keep], rate=st.rate[keep]) for st in states]
                s_w = s_in[rows]
                B0_w = None if B0 is None else B0[rows]
                E_w = E[rows] if E_rows else E
            r, beta, previous, previous_res = self._relax(s_w, E_w, B0_w, states, r, res, beta, previous,
                                                          previous_res)
        raise ConvergenceError(
            f"the {'target' if E is not None else 'forward'}-phase fixed point with g_A = {self.g_A}/ms "
            f"did not converge in {self.max_iter} iterations for {len(rows)} of {n} examples (last change of "
            f"the apical potentials {change:.3g}, tolerance {self.tol:.3g})"
        )

    def _loop_jacobian(self, states, E):
        """``d r_out / d r_fb`` of one sweep with apical input ``A(r_fb)``, shape (..., n_out, n_out).

        Reverse-mode chain rule from the output down, so that every product is
        one matrix product over the whole batch:
        ``G = d r_out/d s_top = phi sigma'(C_out) k_out W_out``; for each hidden
        layer ``h`` from the top, ``G <- G diag(d s_h/d C_h)``,
        ``J += k_A G (fb_scale Y^h)``, ``G <- k_B G W_h``.
        """

        def rmat(G, M):
            return (G.reshape(-1, G.shape[-1]) @ M).reshape(*G.shape[:-1], M.shape[-1])

        sig = states[-1].rate / self.phi
        k_out = self.k_D if E is None else self._k_D_t
        G = (k_out * self.phi * sig * (1.0 - sig))[..., :, None] * self._Wt[-1].T
        J = 0.0
        for h in range(self.n_hidden - 1, -1, -1):
            sig = states[h].rate / self.phi
            G = G * ((self.drive_scale * self.phi) * sig * (1.0 - sig))[..., None, :]
            J = J + rmat(G, (self.k_A * self.fb_scale) * self._Y[h])
            if h > 0:
                G = rmat(G, self.k_B * self._Wt[h].T)
        return J

    def _teaching(self, label) -> np.ndarray:
        E = np.full(self.sizes[-1], self.E_I)
        E[label] = self.E_E
        return E

    def _first_layer(self, s_in):
        """``B0 = W[0] s_in + b[0]`` for one example, and the active input rows.

        When fewer than half of the inputs are active (most MNIST pixels are 0),
        only their rows of ``W[0]`` are gathered, into a preallocated buffer that
        :meth:`_apply` then updates in place and scatters back; ``rows`` is the
        index array of the active inputs or None (dense path).
        """
        nz = np.flatnonzero(s_in)
        k = nz.size
        if k < 0.5 * s_in.size:
            gathered = self._buf[0][0][:k]
            np.take(self._Wt[0], nz, axis=0, out=gathered)
            return self._drive(s_in[nz] @ gathered) + self._b[0], nz
        return self._drive(s_in @ self._Wt[0]) + self._b[0], None

    def _example(self, s_in, label, B0=None):
        """Forward and target steady states of one example (1-D input PSP)."""
        s_pre_f, forward = self._phase(s_in, None, B0)
        E = self._teaching(label)
        if self.g_A > 0 and self.n_hidden:
            _, target = self._phase(s_in, E, B0)
        else:
            # hidden layers do not see the apical input: only the output changes
            out_f = forward[-1]
            C = self._k_D_t * out_f.B + self._k_teach * E
            out_t = LayerState(B=out_f.B, C=C, rate=self.phi * _sigma(C))
            target = [LayerState(B=st.B, C=st.C, rate=st.rate) for st in forward[:-1]] + [out_t]
            if self.n_hidden:
                A_t = self._apical(out_t.rate)
                for h in range(self.n_hidden):
                    target[h].A = A_t[h]
        return s_pre_f, forward, target

    def _deltas(self, forward, target) -> list[np.ndarray]:
        """Per-layer error terms (the update of b; W's update is outer(delta, s_pre_f))."""
        deltas = []
        for lay in range(self.n_layers):
            f, t = forward[lay], target[lay]
            sf = _sigma(f.C)
            gain = self.etas[lay] * self.error_scale * sf * (1.0 - sf)
            if lay == self.n_layers - 1:
                deltas.append((gain * self.k_D) * (_sigma(t.C) - sf))
            else:
                deltas.append((gain * self.k_B) * (_sigma(t.A) - _sigma(f.A)))
        return deltas

    def _apply(self, s_pre, deltas, rows0=None) -> None:
        """``W += outer(delta, s_pre)``, ``b += delta`` for every layer, in place.

        ``rows0``: the active input rows whose values :meth:`_first_layer` left in
        the gather buffer of layer 0 (None: gather here if worthwhile).
        """
        for lay, (s, d) in enumerate(zip(s_pre, deltas, strict=True)):
            Wt = self._Wt[lay]
            gather, outer = self._buf[lay]
            if lay == 0 and rows0 is not None:
                nz = rows0
                gathered = True
            else:
                nz = np.flatnonzero(s)
                gathered = False
            k = nz.size
            if k < 0.5 * s.size:
                # rows of silent presynaptic neurons do not change; preallocated
                # buffers avoid large temporaries
                if not gathered:
                    np.take(Wt, nz, axis=0, out=gather[:k])
                np.multiply.outer(s[nz], d, out=outer[:k])
                np.add(gather[:k], outer[:k], out=gather[:k])
                Wt[nz] = gather[:k]
            else:
                np.multiply.outer(s, d, out=outer)
                np.add(Wt, outer, out=Wt)
            self._b[lay] += d
        if self._symmetric:
            self._refresh_symmetric()

    def _refresh_symmetric(self) -> None:
        W = [wt.T for wt in self._Wt]
        mask = self._mask if any(m is not None for m in self._mask) else None
        self._Y = symmetric_feedback(W, self.params.network, rng=self._rng, mask=mask)

    # ------------------------------------------------------------------ public API
    def forward(self, images) -> list[LayerState]:
        """Forward-phase steady state of a batch (inference, no teaching).

        Parameters
        ----------
        images : array_like, shape (n, n_input) or (n, ...)
            Pixel values in [0, 1].

        Returns
        -------
        list of LayerState
            One per hidden layer and the output layer (bottom to top), each field
            of shape ``(n, n_layer)``; hidden layers also carry ``A``.
        """
        X = self._check_images(images, single=False)
        return self._forward_checked(X)

    def _forward_checked(self, X) -> list[LayerState]:
        blocks = [self._phase(self._input_psp(X[i : i + _BLOCK]))[1] for i in range(0, X.shape[0], _BLOCK)]
        if len(blocks) == 1:
            return blocks[0]
        out = []
        for lay in range(self.n_layers):
            parts = [blk[lay] for blk in blocks]
            out.append(
                LayerState(
                    B=np.concatenate([p.B for p in parts]),
                    C=np.concatenate([p.C for p in parts]),
                    rate=np.concatenate([p.rate for p in parts]),
                    A=None if parts[0].A is None else np.concatenate([p.A for p in parts]),
                )
            )
        return out

    def predict(self, images, readout: str | None = None) -> np.ndarray:
        """Predicted classes: argmax of the output somatic potential or rate (MODEL.md 1.12).

        Parameters
        ----------
        images : array_like, shape (n, n_input)
        readout : {"voltage", "rate"}, optional
            Default ``params.protocol.readout``. The rate is a monotonic function of
            the voltage; the two differ only where sigma saturates to equal values.
        """
        X = self._check_images(images, single=False)
        return self._predict_checked(X, readout)

    def _predict_checked(self, X, readout=None) -> np.ndarray:
        readout = self.params.protocol.readout if readout is None else readout
        if readout not in ("voltage", "rate"):
            raise ValueError(f"readout = {readout!r}: expected 'voltage' or 'rate'")
        preds = []
        for i in range(0, X.shape[0], _BLOCK):
            out = self._phase(self._input_psp(X[i : i + _BLOCK]))[1][-1]
            preds.append(np.argmax(out.C if readout == "voltage" else out.rate, axis=1))
        return np.concatenate(preds)

    def test_error(self, images, labels, readout: str | None = None) -> float:
        """Percentage of misclassified images (MODEL.md 1.12)."""
        X = self._check_images(images, single=False)
        y = self._check_labels(labels, X.shape[0])
        return float(100.0 * np.mean(self._predict_checked(X, readout) != y))

    def example_quantities(self, image, label) -> dict:
        """All the quantities of one training example that the learning rule uses.

        Returns
        -------
        dict
            ``"s_in"``: input PSP (``psp_scale*phi*pixel``);
            ``"s_pre_f"``: per weight layer, the forward-phase presynaptic PSP;
            ``"B_f", "C_f", "rates_f", "B_t", "C_t", "rates_t"``: per non-input
            layer (hidden layers bottom to top, output last), forward and target
            phase;
            ``"A_f", "A_t", "alpha_f", "alpha_t"``: per hidden layer;
            ``"target"``: the output target ``sigma(C_t)`` (target-phase rate / phi).
            Rates in spikes/ms.
        """
        x = self._check_images(image, single=True)
        lab = int(self._check_labels(label, None))
        s_pre, forward, target = self._example(self._input_psp(x), lab)
        return {
            "s_in": s_pre[0],
            "s_pre_f": s_pre,
            "B_f": [st.B for st in forward],
            "C_f": [st.C for st in forward],
            "rates_f": [st.rate for st in forward],
            "B_t": [st.B for st in target],
            "C_t": [st.C for st in target],
            "rates_t": [st.rate for st in target],
            "A_f": [st.A for st in forward[:-1]],
            "A_t": [st.A for st in target[:-1]],
            "alpha_f": [_sigma(st.A) for st in forward[:-1]],
            "alpha_t": [_sigma(st.A) for st in target[:-1]],
            "target": _sigma(target[-1].C),
        }

    def update_deltas(self, image, label) -> list[tuple[np.ndarray, np.ndarray]]:
        """The weight and bias changes of one example, without applying them (MODEL.md 1.9).

        Returns
        -------
        list of (dW, db)
            Per weight layer, ``dW`` of shape ``(n_post, n_pre)`` and ``db`` of shape ``(n_post,)``.
        """
        x = self._check_images(image, single=True)
        lab = int(self._check_labels(label, None))
        s_pre, forward, target = self._example(self._input_psp(x), lab)
        deltas = self._deltas(forward, target)
        return [(np.outer(d, s), d.copy()) for s, d in zip(s_pre, deltas, strict=True)]

    def train_example(self, image, label) -> None:
        """Present one training example and apply its update (forward phase, target phase, update)."""
        x = self._check_images(image, single=True)
        lab = int(self._check_labels(label, None))
        self._train_checked(x, lab)

    def _train_checked(self, x, label) -> None:
        s_in = self._input_psp(x)
        B0, rows0 = self._first_layer(s_in)
        s_pre, forward, target = self._example(s_in, label, B0)
        self._apply(s_pre, self._deltas(forward, target), rows0)
        self.examples_seen += 1

    def train(
        self,
        images,
        labels,
        rng: np.random.Generator | None = None,
        callback: Callable | None = None,
        test_every: int | None = None,
        test_set: tuple | None = None,
        shuffle: bool = False,
    ) -> list[tuple[int, float | None]]:
        """Online training, one example at a time (MODEL.md 1.12).

        Parameters
        ----------
        images, labels : array_like
            Training set; pixels in [0, 1], integer labels.
        rng : numpy.random.Generator, optional
            Used instead of the network's generator during this call: the
            presentation order when ``shuffle`` and the noise of
            ``noisy_symmetric`` feedback.
        callback : callable, optional
            ``callback(network, examples, test_error)`` called every ``test_every``
            examples and at the end (``test_error`` None without ``test_set``).
        test_every : int, optional
            Interval (in examples of this call) of the tests on ``test_set``.
        test_set : (images, labels), optional
            Test data for the periodic tests and the final test.
        shuffle : bool
            Present the examples in a random order (one epoch); default: given order.

        Returns
        -------
        list of (int, float or None)
            ``(examples seen in this call, test error in %)`` at each test point and at the end.
        """
        X = self._check_images(images, single=False)
        y = self._check_labels(labels, X.shape[0])
        if test_every is not None and (int(test_every) != test_every or test_every < 1):
            raise ValueError(f"test_every = {test_every!r}: expected a positive integer")
        if test_set is not None:
            if not isinstance(test_set, tuple | list) or len(test_set) != 2:
                raise ValueError("test_set must be a pair (images, labels)")
            tX = self._check_images(test_set[0], single=False)
            ty = self._check_labels(test_set[1], tX.shape[0])
        saved_rng = self._rng
        if rng is not None:
            self._rng = rng
        try:
            return self._train_loop(
                X, y, callback, test_every, (tX, ty) if test_set is not None else None, shuffle
            )
        finally:
            self._rng = saved_rng

    def _train_loop(self, X, y, callback, test_every, test_set, shuffle):
        order = self._rng.permutation(X.shape[0]) if shuffle else range(X.shape[0])
        history: list[tuple[int, float | None]] = []

        def checkpoint(n):
            err = None
            if test_set is not None:
                err = float(100.0 * np.mean(self._predict_checked(test_set[0]) != test_set[1]))
            history.append((n, err))
            if err is not None:
                logger.info("rate training: %d examples, test error %.2f %%", n, err)
            else:
                logger.debug("rate training: %d examples", n)
            if callback is not None:
                callback(self, n, err)

        psp = self.psp_scale * self.phi
        n = 0
        for n, idx in enumerate(order, start=1):
            s_in = psp * X[idx].astype(float, copy=False)
            B0, rows0 = self._first_layer(s_in)
            s_pre, forward, target = self._example(s_in, y[idx], B0)
            self._apply(s_pre, self._deltas(forward, target), rows0)
            self.examples_seen += 1
            if test_every is not None and n % test_every == 0 and n < X.shape[0]:
                checkpoint(n)
        checkpoint(n)
        return history

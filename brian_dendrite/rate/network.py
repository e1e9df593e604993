"""The rate network: the segregated-dendrite model with every phase at its steady state.

:class:`RateNetwork` holds the weights and the constants of the model and
computes, per phase, the steady state of the compartmental equations driven by
mean rates (specification 1.1-1.9 at steady state; the equations, the PSP scales and
the learning rule are on the reference page, :mod:`brian_dendrite.rate`). With
apical conductance the phase is solved as a fixed point by
:func:`~brian_dendrite.rate._fixed_point.solve_fixed_point`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from brian2 import ms

from ..model import ModelParameters, Weights, effective_kernel_masses, initial_weights, symmetric_feedback
from ._apical_solver import apical_kernels
from ._checks import check_images, check_labels
from ._fixed_point import ConvergenceError, solve_fixed_point
from ._inference import predict as predict_rows
from ._logistic import logistic as _sigma  # the ufunc itself: no Python call per use in the inner loops
from ._logistic import sigma, sigma_prime
from ._native import kernels as native_kernels
from ._online import add_outer, train_online
from ._online_apical import train_apical
from ._online_c import train_compiled
from ._state import LayerState

# The names this module defined before the solver, the logistic and LayerState moved out, so that
# `from brian_dendrite.rate.network import ...` keeps working; `brian_dendrite.rate` is the public path.
__all__ = ["RateNetwork", "LayerState", "ConvergenceError", "sigma", "sigma_prime"]

logger = logging.getLogger("brian2.brian_dendrite.rate")

#: Images per block in batched inference (bounds the memory of the hidden activities).
_BLOCK = 512


class RateNetwork:
    """Deterministic rate network of the segregated-dendrite model (specification section 4).

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
        A prediction (:meth:`predict`, :meth:`test_error`) whose relaxation has not
        settled after ``max_iter`` iterations takes the fixed point that Newton's method
        finds from the last iterate (counted in ``newton_fallbacks``; training raises).

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

    Examples
    --------
    >>> import numpy as np
    >>> from brian_dendrite.model import load_model
    >>> from brian_dendrite.rate import RateNetwork
    >>> net = RateNetwork(load_model("one_hidden"), rng=np.random.default_rng(0))
    >>> images = np.random.default_rng(1).random((3, 784))
    >>> net.predict(images).shape
    (3,)
    >>> [state.rate.shape for state in net.forward(images)]
    [(3, 500), (3, 10)]
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
        #: Predictions whose relaxation did not settle and took Newton's root (``_fixed_point.newton_root``).
        self.newton_fallbacks = 0
        self._symmetric = net.feedback in ("symmetric", "noisy_symmetric")

        # W is stored transposed, (n_pre, n_post), C-contiguous: batched forward passes are
        # s @ Wt and the rank-1 updates touch only the rows of active presynaptic neurons.
        self._Wt = [np.ascontiguousarray(w.T, dtype=float) for w in weights.W]
        # the biases are views of one array: the training loop updates all of them in one operation
        self._b_all = np.concatenate([np.asarray(v, dtype=float).ravel() for v in weights.b])
        self._b = np.split(self._b_all, np.cumsum([v.size for v in weights.b])[:-1].tolist())
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
        return check_images(images, self.sizes[0], single)

    def _check_labels(self, labels, n: int | None) -> np.ndarray:
        return check_labels(labels, n, self.sizes[-1])

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

    def _phase(self, s_in, E=None, B0=None, fallback=False):
        """Steady state of a phase (forward: ``E`` None; target: teaching potentials ``E``).

        Returns the presynaptic PSPs of each weight layer and a LayerState per
        non-input layer (hidden states carry A). ``fallback``: predictions only, see
        :func:`~._fixed_point.newton_root`.
        """
        if self.g_A > 0 and self.n_hidden:
            if B0 is None:  # the input layer's drive is the same in every iteration
                B0 = self._drive(s_in @ self._Wt[0]) + self._b[0]
            s_pre, states, A = solve_fixed_point(self, s_in, E, B0, fallback)
        else:
            s_pre, states = self._sweep(s_in, None, E, B0)
            A = self._apical(states[-1].rate) if self.n_hidden else []
        for h in range(self.n_hidden):
            states[h].A = A[h]
        return s_pre, states

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
            # mode="clip": with the default "raise", numpy copies into `out` through a buffer
            np.take(self._Wt[0], nz, axis=0, out=gathered, mode="clip")
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
                # rows of silent presynaptic neurons do not change: only the active ones are
                # gathered, updated and scattered back
                if not gathered:
                    np.take(Wt, nz, axis=0, out=gather[:k], mode="clip")
                add_outer(gather[:k], s[nz], d, outer)
                Wt[nz] = gather[:k]
            else:
                add_outer(Wt, s, d, outer)
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
        """Predicted classes: argmax of the output somatic potential or rate (specification 1.12).

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
        if not (self.g_A > 0 and self.n_hidden):  # one sweep per block, in place (same bits as below)
            return predict_rows(self, X, readout, _BLOCK)
        preds = []
        for i in range(0, X.shape[0], _BLOCK):
            out = self._phase(self._input_psp(X[i : i + _BLOCK]), fallback=True)[1][-1]
            preds.append(np.argmax(out.C if readout == "voltage" else out.rate, axis=1))
        return np.concatenate(preds)

    def test_error(self, images, labels, readout: str | None = None) -> float:
        """Percentage of misclassified images (specification 1.12)."""
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
        """The weight and bias changes of one example, without applying them (specification 1.9).

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
        """Online training, one example at a time (specification 1.12).

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

        if not (self.g_A > 0 and self.n_hidden):
            # without the fixed point: the tight loop of _online, bit for bit the same as below
            order = np.asarray(order, dtype=np.intp)
            step = X.shape[0] if test_every is None else int(test_every)
            kernels = native_kernels()  # the compiled kernels (None: the numpy loop; the same bits)
            for start in range(0, X.shape[0], step):
                if kernels is None:
                    train_online(self, X, y, order[start : start + step])
                else:
                    train_compiled(self, X, y, order[start : start + step], kernels)  # else _online_native
                n = min(start + step, X.shape[0])
                if test_every is not None and n < X.shape[0]:
                    checkpoint(n)
            checkpoint(X.shape[0])
            return history
        kernels = native_kernels()
        apical = apical_kernels() if kernels is not None else None
        if apical is not None:
            # the fixed points with the compiled kernels (_online_apical), bit for bit the same as below
            order = np.asarray(order, dtype=np.intp)
            step = max(1, X.shape[0] if test_every is None else int(test_every))
            for start in range(0, X.shape[0], step):
                train_apical(self, X, y, order[start : start + step], kernels, apical)
                n = min(start + step, X.shape[0])
                if test_every is not None and n < X.shape[0]:
                    checkpoint(n)
            checkpoint(X.shape[0])
            return history
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

"""Online training of the rate network with apical conductance (``g_A > 0``): the per-example loop, tightened.

With ``g_A > 0`` each phase of a training example is the fixed point of
:func:`~._fixed_point.solve_fixed_point` (about six sweeps per phase), and
:meth:`RateNetwork.train` spent most of its time on Python and numpy call
overhead: every sweep allocated its arrays anew and ran some thirty small numpy
calls on vectors of 10 to 500 elements. :func:`train_apical` computes exactly
the same floating-point operations, in the same order, as
``RateNetwork._train_checked`` per example (``_first_layer``, ``_example`` with
the solver's relaxation, beta halving and Newton steps, ``_deltas``,
``_apply``), but

- every array is a preallocated buffer (one set per phase, so that the forward
  phase's steady state is kept for the update while the target phase is solved);
- every matrix product is the same numpy ``matmul`` with the same operands
  (shapes, orders and memory layouts: ``s @ W^T`` with ``W`` stored transposed,
  ``(fb r) @ Y^T`` with the transposed view of ``Y``), written with ``out=``;
- each run of elementwise operations between two products is one call of a C
  kernel of :mod:`._apical_native` (checked bit for bit against the numpy
  expressions when loaded), with its arguments converted to :mod:`ctypes` once;
- the sign test of the relaxation keeps numpy's sum (``np.add.reduce`` of
  ``res*prev``, as ``np.sum`` computes it); the rare Newton steps run the
  solver's own code (:func:`~._fixed_point.loop_jacobian`, ``np.linalg.solve``,
  :meth:`RateNetwork._sweep` at the Newton iterate);
- the updates are those of :mod:`._online_native` (the first layer's active
  rows updated and scattered back in one pass, the layers above in place).

Where numpy's own ``cblas_dgemv`` can be called from C (:mod:`._apical_solver`,
checked against ``np.matmul`` for every product before use), the whole
iteration of a phase runs in C (``solve_phase``: the same kernels, the same
BLAS calls with the same arguments, numpy's pairwise sum for the sign test),
returning to Python only for the Newton steps; otherwise (symmetric feedback,
whose matrices are replaced at every update; a product numpy would not send to
gemv) the loop below runs the iteration in Python with the same kernels.
Measured (784-500-100-10, ``two_hidden_apical_0_05``/``_0_6``, one BLAS thread,
2,000 MNIST examples from the seed-3 initial weights, median CPU time of 4
alternating runs on a loaded 2-core machine): 1.29 -> 0.40 and 1.60 -> 0.51 ms
per example; a Newton step (about one per example for ``_0_6`` early in training,
mostly its Jacobian's matrix products) costs about 0.15 ms.

The control flow of the fixed point (tolerance on the change of the apical
potentials, beta halving when the residual reverses, Newton steps where the
residual shrinks slowly, :class:`~._fixed_point.ConvergenceError` after
``max_iter`` iterations, with the same message) is that of
:func:`~._fixed_point.solve_fixed_point` line by line, so the weights, the
biases and the feedback weights are the same bits as with the per-example
methods. Without the kernels (no compiler, or ``BRIAN_DENDRITE_RATE_NATIVE=0``)
:meth:`RateNetwork.train` runs the per-example methods themselves.
"""

from __future__ import annotations

import ctypes

import numpy as np

from ._apical_solver import make_phase, solver
from ._fixed_point import _MIN_BETA, _NEWTON_ACCEPT, _SLOW, ConvergenceError, newton_iterate
from ._online import _BLOCK, _block_inputs, _buffers, add_outer, first_layer_drive
from ._state import LayerState

__all__ = ["train_apical"]


def _args(func, *args):
    """The arguments as ctypes objects of ``func``'s types: ctypes passes them on without converting."""
    return tuple(t(v) for t, v in zip(func.argtypes, args, strict=True))


def _addr(a):
    """The address of an array (None stays None: a NULL pointer)."""
    return None if a is None else a.ctypes.data


class _Phase:
    """The buffers of one phase (forward or target) and the kernel arguments that write them.

    ``A`` and ``SF`` are concatenated over the layers (hidden layers bottom to top,
    the output last for ``SF``), as the error-term kernel reads them.
    """

    def __init__(self, net, K, shared, teach_rows):
        n_hidden, sizes = net.n_hidden, net.sizes
        post = sizes[1:]
        cuts = np.cumsum((0, *post)).tolist()
        self.SF = np.empty(cuts[-1])
        self.A = np.empty(cuts[n_hidden])
        sf = [self.SF[cuts[i] : cuts[i + 1]] for i in range(len(post))]
        a = [self.A[cuts[h] : cuts[h + 1]] for h in range(n_hidden)]
        self.A_h, self.SF_h = a, sf
        self.B = [shared["B0"]] + [np.empty(n) for n in post[1:]]
        self.C = [np.empty(n) for n in post]
        self.R = [np.empty(n) for n in post]
        self.S = [np.empty(n) for n in post[:-1]]
        self.SF_out = sf[-1]
        self.states = [LayerState(B=self.B[i], C=self.C[i], rate=self.R[i]) for i in range(len(post))]
        WS, Wt, b = shared["WS"], net._Wt, net._b
        ratio, phi, psp = net._drive_ratio, net.phi, net.psp_scale
        # the hidden layers of a sweep, first sweep (A = c) and iterations (A = Y fb r + c):
        # (matmul operands or None for the first layer, kernel arguments)
        self.hidden = {}
        for add in (0, 1):
            steps = []
            for h in range(n_hidden):
                mm = None if h == 0 else (self.S[h - 1], Wt[h], WS[h])
                steps.append((mm, _args(K.hidden, None if h == 0 else _addr(WS[h]), _addr(b[h]), ratio,
                                        _addr(self.B[h]), _addr(a[h]), _addr(net._c[h]), add, net.k_B, net.k_A,
                                        phi, psp, _addr(self.C[h]), _addr(sf[h]), _addr(self.R[h]),
                                        _addr(self.S[h]), post[h])))
            self.hidden[add] = steps
        self.top = (self.S[-1], Wt[-1], WS[-1])
        k_out = net.k_D if teach_rows is None else net._k_D_t

        def out_args(e, first):
            return _args(K.output, _addr(WS[-1]), _addr(b[-1]), ratio, k_out, _addr(e), phi, net.fb_scale,
                         _addr(self.B[-1]), _addr(self.C[-1]), _addr(sf[-1]), _addr(self.R[-1]),
                         *(_addr(shared[name]) for name in ("r", "Sfb", "res", "T", "prev", "prod")), first,
                         post[-1])

        rows = [None] if teach_rows is None else teach_rows
        self.teach_rows = rows
        self.output = [(out_args(e, 0), out_args(e, 1)) for e in rows]  # (iterations, first sweep)


def train_apical(net, X, y, idx, K, AK) -> None:  # long: the per-example loop keeps every array in a local
    """Train ``net`` (``g_A > 0``, hidden layers) on ``X[idx]``, ``y[idx]`` in order, bit for bit as
    ``net._train_checked`` per example (module docstring).

    ``K``: the kernels of :func:`._native.kernels` (the updates), ``AK``: those of
    :func:`._apical_solver.apical_kernels`.
    """
    f = _buffers(net)
    sizes, n_hidden, n_out = net.sizes, net.n_hidden, net.sizes[-1]
    n_hid = sum(sizes[1:-1])
    shared = {name: np.empty(n_out) for name in ("r", "Sfb", "res", "T", "prev", "prod")}
    shared["B0"] = np.empty(sizes[1])
    shared["WS"] = [np.empty(n) for n in sizes[1:]]
    teach = []
    for label in range(n_out):
        E = np.full(n_out, net.E_I)
        E[label] = net.E_E
        teach.append(E)
    fwd, tgt = _Phase(net, AK, shared, None), _Phase(net, AK, shared, f["kE"])
    r, res, prod, T, Sfb = shared["r"], shared["res"], shared["prod"], shared["T"], shared["Sfb"]
    CH = np.empty(n_hid)
    ch_cuts = np.cumsum((0, *sizes[1:-1])).astype(np.intp)
    CH_h = [CH[ch_cuts[h] : ch_cuts[h + 1]] for h in range(n_hidden)]
    change_args = _args(AK.change, _addr(CH), _addr(ch_cuts), n_hidden)
    relax = AK.relax
    converted = _args(relax, _addr(r), None, _addr(res), _addr(shared["prev"]), 1.0, net.fb_scale, _addr(Sfb),
                      n_out)
    relax_head, relax_tail = converted[:4], converted[5:]  # beta (argument 4) changes
    hidden_k, output_k, change_k = AK.hidden, AK.output, AK.change
    D = f["D"]
    D_l = f["views"](D)
    delta_args = _args(AK.deltas, _addr(fwd.SF), _addr(fwd.A), _addr(tgt.A), _addr(tgt.SF_out), _addr(f["gain"]),
                       _addr(f["k"]), _addr(D), _addr(net._b_all), n_hid, D.size)
    Wt, B0, WS0 = net._Wt, shared["B0"], shared["WS"][0]
    W0, d0 = Wt[0], D_l[0]
    bias_args = _args(AK.bias, _addr(WS0), _addr(net._b[0]), net._drive_ratio, _addr(B0), sizes[1])
    gather, outer = f["gather"], f["outers"][0]
    scatter = K.scatter_update
    W0_p, G_p, d0_p, n0 = _addr(W0), _addr(gather), _addr(d0), W0.shape[1]
    all_rows = [np.arange(n, dtype=np.intp) for n in sizes]
    upper = [(fwd.S[lay - 1], lay, _args(scatter, _addr(Wt[lay]), _addr(Wt[lay]), _addr(all_rows[lay]),
                                         _addr(fwd.S[lay - 1]), _addr(D_l[lay]), *Wt[lay].shape))
             for lay in range(1, net.n_layers)]
    matmul, add_reduce, count_nonzero = np.matmul, np.add.reduce, np.count_nonzero
    dense_from = 0.5 * sizes[0]
    tol, max_iter = net.tol, net.max_iter
    symmetric = net._symmetric
    YT = [y_.T for y_ in net._Y]

    compiled = None if symmetric else _compiled(net, fwd, tgt, shared, CH, CH_h, ch_cuts, YT)
    solve_phase, P_f, P_t, e_rows = compiled if compiled is not None else (None,) * 4
    newton_residual = None if compiled is None else solver()[0].newton_residual

    def solve_compiled(P, ph, E, s_in):
        """As ``solve``, with the iteration in C (:mod:`._apical_solver`) and the Newton steps here."""
        status = solve_phase(P, 1, None)
        while status == 1:
            r_new = _newton(net, ph.states, E, s_in, B0, r, res, P.contents.size,
                            lambda rn, P=P: newton_residual(P, rn.ctypes.data))
            status = solve_phase(P, 0, None if r_new is None else r_new.ctypes.data)
        if status == 2:
            raise ConvergenceError(
                f"the {'target' if E is not None else 'forward'}-phase fixed point with g_A = {net.g_A}/ms "
                f"did not converge in {net.max_iter} iterations (last change of the apical "
                f"potentials {P.contents.change_value:.3g}, tolerance {net.tol:.3g})"
            )

    def solve(ph, out, E, s_in):
        """The fixed point of one phase into ``ph``'s buffers (solve_fixed_point for one example)."""
        for mm, args in ph.hidden[0]:  # the first sweep, with A = c: the first iterate r
            if mm is not None:
                matmul(mm[0], mm[1], out=mm[2])
            hidden_k(*args)
        top_s, top_w, top_ws = ph.top
        matmul(top_s, top_w, out=top_ws)
        output_k(*out[1])
        A_h, steps, out_iter = ph.A_h, ph.hidden[1], out[0]
        beta, previous, has_prev, change = 1.0, np.inf, False, np.inf
        for _ in range(max_iter):
            for y_t, a in zip(YT, A_h, strict=True):
                matmul(Sfb, y_t, out=a)
            for mm, args in steps:
                if mm is not None:
                    matmul(mm[0], mm[1], out=mm[2])
                hidden_k(*args)
            matmul(top_s, top_w, out=top_ws)
            size = output_k(*out_iter)  # res = R - r, T = fb res, prod = res prev; max |res|
            for y_t, ch in zip(YT, CH_h, strict=True):
                matmul(T, y_t, out=ch)
            change = change_k(*change_args)
            if change <= tol:
                return
            if has_prev and add_reduce(prod) < 0:  # the residual reversed: halve beta
                beta = max(0.5 * beta, _MIN_BETA)
            has_prev = True
            r_new = None
            if size > _SLOW * previous:
                r_new = _newton(net, ph.states, E, s_in, B0, r, res, size)
            previous = size
            if r_new is None:
                relax(*relax_head, beta, *relax_tail)  # r += beta res, prev = res, Sfb = fb r
            else:
                relax(relax_head[0], r_new.ctypes.data, *relax_head[2:], beta, *relax_tail)
        raise ConvergenceError(
            f"the {'target' if E is not None else 'forward'}-phase fixed point with g_A = {net.g_A}/ms "
            f"did not converge in {net.max_iter} iterations (last change of the apical "
            f"potentials {change:.3g}, tolerance {net.tol:.3g})"
        )

    fwd_out = fwd.output[0]
    for start in range(0, len(idx), _BLOCK):
        block = idx[start : start + _BLOCK]
        S_in, cols, vals, offsets = _block_inputs(X, block, net.psp_scale * net.phi)
        cols = cols.astype(np.intp, copy=False)
        cols_p, vals_p, isz_c, isz_v = cols.ctypes.data, vals.ctypes.data, cols.itemsize, vals.itemsize
        labels = y[block].tolist()
        for i in range(len(block)):
            o0, o1 = offsets[i], offsets[i + 1]
            k = o1 - o0
            # first layer: W[0] s_in over the active inputs only (gathered rows, as _first_layer)
            G = first_layer_drive(W0, WS0, gather, S_in[i], cols, vals, o0, o1, dense_from)
            AK.bias(*bias_args)
            label = labels[i]
            if compiled is None:
                solve(fwd, fwd_out, None, S_in[i])
                solve(tgt, tgt.output[label], teach[label], S_in[i])
            else:
                solve_compiled(P_f, fwd, None, S_in[i])
                P_t.contents.e = e_rows[label]
                solve_compiled(P_t, tgt, teach[label], S_in[i])
            AK.deltas(*delta_args)  # the error terms of all layers, and b += delta
            # the weights (as _apply): the active rows of W[0] updated and scattered back, then the others
            if G is None:
                add_outer(W0, S_in[i], d0, outer)
            elif k:
                scatter(W0_p, G_p, cols_p + isz_c * o0, vals_p + isz_v * o0, d0_p, k, n0)
            for s_pre, lay, args in upper:
                if count_nonzero(s_pre) < 0.5 * s_pre.size:
                    _sparse_update(net, lay, s_pre, D_l[lay])
                else:
                    scatter(*args)
            if symmetric:
                net._refresh_symmetric()
                YT[:] = [y_.T for y_ in net._Y]
            net.examples_seen += 1


def _compiled(net, fwd, tgt, shared, CH, CH_h, ch_cuts, YT):
    """``(solve_phase, forward phase_t, target phase_t, teaching rows)`` of :mod:`._apical_solver`, or None."""
    found = solver()
    if found is None:
        return None
    P_f = make_phase(net, fwd, shared, CH, CH_h, ch_cuts, net.k_D, YT)
    P_t = make_phase(net, tgt, shared, CH, CH_h, ch_cuts, net._k_D_t, YT)
    if P_f is None or P_t is None:
        return None
    rows = [row.ctypes.data for row in tgt.teach_rows]
    return found[0].solve_phase, ctypes.pointer(P_f), ctypes.pointer(P_t), rows


def _newton(net, states, E, s_in, B0, r, res, size, residual=None):
    """The Newton step of ``_fixed_point._relax``: the Newton iterate if it is kept, else None.

    ``residual(r_newton)``: ``max |F(r_newton) - r_newton|`` computed elsewhere
    (the compiled sweep, ``newton_residual``); None: with :meth:`RateNetwork._sweep`.
    """
    r_newton = newton_iterate(net, states, E, r, res)
    if residual is not None:
        res_newton = residual(r_newton)
    else:
        res_newton = np.max(
            np.abs(net._sweep(s_in, net._apical(r_newton), E, B0)[1][-1].rate - r_newton), axis=-1
        )
    good = (res_newton < 0.1 * size) & (res_newton < _NEWTON_ACCEPT * net.phi)
    return np.ascontiguousarray(r_newton, dtype=float) if good else None


def _sparse_update(net, lay, s, d) -> None:
    """The update of a layer whose inputs are mostly silent, as ``RateNetwork._apply`` does it."""
    Wt = net._Wt[lay]
    gather, outer = net._buf[lay]
    nz = np.flatnonzero(s)
    k = nz.size
    np.take(Wt, nz, axis=0, out=gather[:k], mode="clip")
    add_outer(gather[:k], s[nz], d, outer)
    Wt[nz] = gather[:k]

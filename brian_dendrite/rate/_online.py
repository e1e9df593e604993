"""Online training of the rate network without apical conductance: the per-example loop, tightened.

With ``g_A = 0`` an example is one bottom-up sweep (forward phase), the output's
target steady state and the apical potentials of both phases, then the update of
every ``W`` and ``b`` (:meth:`RateNetwork._example`, :meth:`~RateNetwork._deltas`,
:meth:`~RateNetwork._apply`). :func:`train_online` computes exactly the same
floating-point operations, in the same order, as those methods (results bit for
bit equal, see below), but without their per-example Python work:

- the input PSPs ``psp_scale*phi*pixels`` of a block of examples, their active
  pixels and the values there are computed once per block (the active pixels by
  ``flatnonzero`` of the boolean mask ``S != 0``, much faster than ``nonzero`` of
  the float array);
- every intermediate array is a preallocated buffer written with ``out=``;
- the error terms of all layers are computed together: the biases, the gains
  ``eta*error_scale``, ``k_B``/``k_D`` and the sigmoids of both phases are
  concatenated over the layers (elementwise products with a per-element constant
  are the products with the layer's scalar, bit for bit); the apical potentials
  of both phases are one array, so ``+ c`` and the plateaus ``sigma(A)`` are one
  call each;
- the rank-1 updates ``W += outer(s, delta)`` run in place as one BLAS ``dgemm``
  with inner dimension 1 and ``beta = 1`` (:func:`add_outer`).

Where a C compiler is at hand, :meth:`RateNetwork.train` runs the loop of
:mod:`._online_native` instead (where supported, all of it in C: :mod:`._online_c`):
the same steps with the elementwise runs between two BLAS products as C kernels
(:mod:`._native`, checked bit for bit against the numpy expressions when loaded)
and the first layer's update fused with its scatter. ``BRIAN_DENDRITE_RATE_NATIVE=0`` selects the numpy loop below; both give
the same bits.

Bit-identity of the update: ``W + s*delta`` rounds twice (the product, then the
sum). A BLAS ``dgemm`` with ``k = 1`` forms the product in its accumulator
(``0 + s*delta``, one rounding) and then adds it to ``C``: the same two roundings.
``dger`` instead fuses both into one FMA (OpenBLAS 0.3.30 on x86-64: 0.4 % of the
elements differ in the last bit), which is why it is not used. Whether the BLAS
at hand behaves so is checked once per process on random data
(:func:`_gemm_is_exact`); if not, or without scipy, the update is numpy's
``outer`` and ``add`` on a preallocated buffer. (The one representable
difference: a weight that is exactly ``-0.0`` and meets a zero product becomes
``+0.0``, equal by value.)

Where the time goes: the first layer. Per example its active rows (about 150 of
784 for MNIST, 4 kB each) are gathered for ``W[0] s_in`` (BLAS gemv on
contiguous rows, as :meth:`RateNetwork._first_layer`; a gemv over all 784 rows
would group the sums differently and change the last bits), updated in place and scattered back: four
passes over about 600 kB, most of the time of an example (three with the fused kernel of :mod:`._native`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ._logistic import logistic as _sigma

try:  # scipy ships with the dependencies (elephant, Brian2's optional parts); numpy only exposes matmul
    from scipy.linalg.blas import dgemm as _dgemm
except ImportError:  # pragma: no cover
    _dgemm = None

__all__ = ["add_outer", "train_online"]

#: Examples whose input PSPs and active pixels are prepared together (bounds that memory).
_BLOCK = 256


def _gemm_update(Wt, s, d) -> None:
    """``Wt += outer(s, d)`` in place by ``dgemm`` on the Fortran view ``Wt.T = d s^T + Wt.T``.

    ``Wt`` must be C-contiguous (``Wt.T`` Fortran-contiguous), or f2py would update a copy.
    """
    _dgemm(1.0, d[:, None], s[None, :], 1.0, Wt.T, overwrite_c=1)


@lru_cache(maxsize=1)
def _gemm_is_exact() -> bool:
    """Whether :func:`_gemm_update` gives ``Wt + np.multiply.outer(s, d)`` bit for bit, in place, here."""
    if _dgemm is None:
        return False
    rng = np.random.default_rng(12345)
    for rows, cols in ((1, 1), (3, 7), (166, 500), (500, 10), (500, 100), (100, 10), (784, 500), (37, 513)):
        Wt = rng.standard_normal((rows, cols)) * 0.1
        s = rng.random(rows) * rng.choice([0.0, 1.0], rows, p=[0.2, 0.8])
        d = rng.standard_normal(cols) * 1e-4
        expected = Wt + np.multiply.outer(s, d)
        work = Wt.copy()
        try:
            out = _dgemm(1.0, d[:, None], s[None, :], 1.0, work.T, overwrite_c=1)
        except Exception:  # pragma: no cover - a BLAS wrapper refusing the views
            return False
        # in place (the loops rely on it) and rounded like numpy, bit for bit (zeros compared by value)
        if not np.shares_memory(out, work) or not np.array_equal(work, expected):
            return False
    return True


def add_outer(Wt: np.ndarray, s: np.ndarray, d: np.ndarray, buf: np.ndarray | None = None) -> None:
    """``Wt += outer(s, d)`` in place, each element rounded as ``Wt[i, j] + s[i]*d[j]``.

    ``Wt`` C-contiguous of shape ``(len(s), len(d))``; ``buf`` (at least that large,
    C-contiguous) holds the products when BLAS cannot be used.

    Examples
    --------
    >>> Wt = np.zeros((3, 2))
    >>> add_outer(Wt, np.array([1.0, 0.0, 2.0]), np.array([0.5, -1.0]))
    >>> Wt
    array([[ 0.5, -1. ],
           [ 0. ,  0. ],
           [ 1. , -2. ]])
    """
    if s.size == 0:
        return
    if _gemm_is_exact():
        _gemm_update(Wt, s, d)
        return
    outer = np.empty_like(Wt) if buf is None else buf.reshape(-1)[: Wt.size].reshape(Wt.shape)
    np.multiply.outer(s, d, out=outer)
    np.add(Wt, outer, out=Wt)


def _block_inputs(X, idx, psp):
    """Input PSPs of the examples ``idx`` and, per example, its active pixels and their values.

    Returns ``(S, cols, vals, offsets)``: ``S`` holds the PSPs ``psp*pixel`` (row ``i``
    for example ``idx[i]``); example ``i``'s active pixels are ``cols[offsets[i]:offsets[i+1]]``
    (ascending, as :func:`numpy.flatnonzero` gives them) and their PSPs ``vals[...]``
    of the same slice. (``flatnonzero`` of the boolean mask ``S != 0``: an order of
    magnitude faster than ``nonzero`` of the float array, same indices.)
    """
    S = X.take(idx, axis=0)
    if S.dtype != np.float64:
        S = S.astype(float)
    np.multiply(psp, S, out=S)
    mask = S != 0
    flat = np.flatnonzero(mask)
    offsets = np.zeros(len(idx) + 1, dtype=np.intp)
    np.cumsum(np.count_nonzero(mask, axis=1), out=offsets[1:])
    return S, flat % S.shape[1], S.ravel().take(flat), offsets.tolist()


def first_layer_drive(W0, WS0, gather, S_in_i, cols, vals, o0, o1, dense_from):
    """``W[0] s_in`` of one example into ``WS0``; returns the gathered active rows (None if dense).

    With fewer than *dense_from* active inputs (``cols[o0:o1]``, values ``vals[o0:o1]``)
    their rows of ``W[0]`` are gathered into ``gather`` and multiplied there (as
    :meth:`RateNetwork._first_layer`); otherwise the whole input row ``S_in_i``.
    """
    k = o1 - o0
    if k < dense_from:
        G = gather[:k]
        W0.take(cols[o0:o1], axis=0, out=G, mode="clip")
        np.matmul(vals[o0:o1], G, out=WS0)
        return G
    np.matmul(S_in_i, W0, out=WS0)
    return None


def _buffers(net):
    """The preallocated arrays of :func:`train_online` (concatenated over the layers where shared).

    ``SF``, ``T1``, ``T2``, ``D`` and the constants ``gain``, ``k`` run over all
    non-input layers (hidden first, output last); ``AA`` holds the apical
    potentials of both phases, ``[A_f of all hidden layers | A_t of all hidden
    layers]``, and ``SA`` their sigmoids, so that each phase pair is one call.
    """
    sizes = net.sizes
    post = sizes[1:]
    total, n_hid = sum(post), sum(sizes[1:-1])
    cuts = np.cumsum((0, *post)).tolist()

    def views(a):
        return [a[cuts[i] : cuts[i + 1]] for i in range(len(post))]

    buf = {name: np.empty(total) for name in ("SF", "T1", "T2", "D")}
    gain = np.concatenate([np.full(n, e * net.error_scale) for n, e in zip(post, net.etas, strict=True)])
    k = np.concatenate([np.full(n, net.k_B) for n in sizes[1:-1]] + [np.full(sizes[-1], net.k_D)])
    E = np.full((sizes[-1], sizes[-1]), net.E_I)
    np.fill_diagonal(E, net.E_E)
    return dict(
        buf, gain=gain, k=k, kE=list(net._k_teach * E), n_hid=n_hid, views=views,
        AA=np.empty(2 * n_hid), SA=np.empty(2 * n_hid), cc=np.concatenate([np.empty(0), *net._c, *net._c]),
        B=[np.empty(n) for n in post], C=[np.empty(n) for n in post], R=[np.empty(n) for n in post],
        S=[np.empty(n) for n in post], WS=[np.empty(n) for n in post],
        Ct=np.empty(sizes[-1]), Rt=np.empty(sizes[-1]), Sfb=np.empty(sizes[-1]), SigT_out=np.empty(sizes[-1]),
        gather=net._buf[0][0], outers=[pair[1] for pair in net._buf],
    )


def apical_drive(net, YT, r_out, r_t, buf, Af_h, At_h) -> list:
    """The feedback products of both phases: ``Af_h[h] = (fb r_out) Y[h]^T``, ``At_h[h] = (fb r_t) Y[h]^T``.

    Shared by the numpy loop and the kernel loop (:mod:`._online_native`), so both
    compute these products with the same operations. ``YT`` holds the transposed
    feedback matrices; with symmetric feedback they follow the forward weights and
    are taken again from ``net._Y``. Returns the ``YT`` used. ``fb r`` goes through
    ``buf``; a unit scale is skipped (``x * 1.0 == x`` exactly).
    """
    if net._symmetric:
        YT = [y_.T for y_ in net._Y]
    fb = net.fb_scale
    for r, parts in ((r_out, Af_h), (r_t, At_h)):
        s_fb = np.multiply(fb, r, out=buf) if fb != 1.0 else r
        for y_t, a in zip(YT, parts, strict=True):
            np.matmul(s_fb, y_t, out=a)
    return YT


def train_online(net, X, y, idx) -> None:  # long: the per-example loop keeps every array in a local
    """Train ``net`` (``g_A = 0`` or no hidden layer) on the examples ``X[idx]``, ``y[idx]`` in order.

    Bit for bit the same as ``net._train_checked`` per example (module docstring).
    """
    f = _buffers(net)
    n_hid, views = f["n_hid"], f["views"]
    SF, T1, T2, D = f["SF"], f["T1"], f["T2"], f["D"]
    SF_l, D_l = views(SF), views(D)
    SF_out, T2_hid, T2_out = SF[n_hid:], T2[:n_hid], T2[n_hid:]
    AA, SA, cc = f["AA"], f["SA"], f["cc"]
    SigF_hid, SigT_hid = SA[:n_hid], SA[n_hid:]
    # per hidden layer, its part of A_f and of A_t in AA
    cuts = np.cumsum((0, *net.sizes[1:-1])).tolist()
    Af_h = [AA[cuts[h] : cuts[h + 1]] for h in range(len(cuts) - 1)]
    At_h = [AA[n_hid + cuts[h] : n_hid + cuts[h + 1]] for h in range(len(cuts) - 1)]
    gain, kvec, kE = f["gain"], f["k"], f["kE"]
    B, C, R, S, WS = f["B"], f["C"], f["R"], f["S"], f["WS"]
    Ct, Rt, Sfb, SigT_out = f["Ct"], f["Rt"], f["Sfb"], f["SigT_out"]
    gather, outers = f["gather"], f["outers"]
    outer = outers[0]
    gemm = _dgemm if _gemm_is_exact() else None
    d0_col = D_l[0][:, None]
    Wt, b_all = net._Wt, net._b_all
    b = net._b
    n_layers, n_hidden = net.n_layers, net.n_hidden
    k_B, k_D, k_D_t, phi = net.k_B, net.k_D, net._k_D_t, net.phi
    psp, ratio = net.psp_scale, net._drive_ratio
    symmetric = net._symmetric
    dense_from = 0.5 * net.sizes[0]
    W0, b0, B0, WS0, d0 = Wt[0], b[0], B[0], WS[0], D_l[0]
    B_out, R_out = B[-1], R[-1]
    # x*1.0 == x exactly: the multiplications by a unit scale are skipped
    S_post = [S[lay] if psp != 1.0 else R[lay] for lay in range(n_layers)]
    # the rank-1 updates of the layers above the first: fixed views for dgemm (C = W^T, Fortran order)
    upper = [(D_l[lay][:, None], S_post[lay - 1][None, :], Wt[lay].T, Wt[lay], S_post[lay - 1], D_l[lay],
              outers[lay]) for lay in range(1, n_layers)]
    # the forward sweep of the layers above the first: (input, W^T, W s, b, B, k, C, sigma(C), rate, PSP)
    sweep = [(S_post[lay - 1], Wt[lay], WS[lay], b[lay], B[lay], k_B if lay < n_hidden else k_D, C[lay],
              SF_l[lay], R[lay], S[lay]) for lay in range(1, n_layers)]
    k_first = k_B if n_hidden else k_D
    C0, SF0, R0, S0 = C[0], SF_l[0], R[0], S[0]
    mul, add, sub, matmul, sigma = np.multiply, np.add, np.subtract, np.matmul, _sigma
    take0 = W0.take  # the method: no numpy.take wrapper per call
    start_psp = net.psp_scale * net.phi
    scale_drive, scale_psp = ratio != 1.0, psp != 1.0
    YT = [y_.T for y_ in net._Y]
    for start in range(0, len(idx), _BLOCK):
        block = idx[start : start + _BLOCK]
        S_in, cols, vals, offsets = _block_inputs(X, block, start_psp)
        labels = y[block].tolist()
        for i in range(len(block)):
            o0, o1 = offsets[i], offsets[i + 1]
            k = o1 - o0
            # first layer: W[0] s_in over the active inputs only (gathered rows, as _first_layer)
            if k < dense_from:
                nz, s_nz = cols[o0:o1], vals[o0:o1]
                G = gather[:k]
                take0(nz, axis=0, out=G, mode="clip")
                matmul(s_nz, G, out=WS0)
            else:
                nz = None
                matmul(S_in[i], W0, out=WS0)
            if scale_drive:
                mul(ratio, WS0, out=WS0)
            add(WS0, b0, out=B0)
            # forward sweep (as _sweep with E None and no apical term)
            mul(k_first, B0, out=C0)
            sigma(C0, out=SF0)
            mul(phi, SF0, out=R0)
            if scale_psp:
                mul(psp, R0, out=S0)
            for s_, w_, ws, b_, B_, k_, C_, SF_, R_, S_ in sweep:
                matmul(s_, w_, out=ws)
                if scale_drive:
                    mul(ratio, ws, out=ws)
                add(ws, b_, out=B_)
                mul(k_, B_, out=C_)
                sigma(C_, out=SF_)
                mul(phi, SF_, out=R_)
                if scale_psp:
                    mul(psp, R_, out=S_)
            # target phase of the output (as _example), then the apical potentials of both phases
            mul(k_D_t, B_out, out=Ct)
            add(Ct, kE[labels[i]], out=Ct)
            sigma(Ct, out=SigT_out)
            if n_hidden:
                mul(phi, SigT_out, out=Rt)
                YT = apical_drive(net, YT, R_out, Rt, Sfb, Af_h, At_h)
                add(AA, cc, out=AA)
                sigma(AA, out=SA)
                sub(SigT_hid, SigF_hid, out=T2_hid)
            # error terms of all layers at once (as _deltas): ((eta*es)*sf*(1-sf)*k) * (sigma_t - sigma_f)
            sub(SigT_out, SF_out, out=T2_out)
            mul(gain, SF, out=T1)
            sub(1.0, SF, out=D)
            mul(T1, D, out=T1)
            mul(T1, kvec, out=T1)
            mul(T1, T2, out=D)
            # updates (as _apply): the active rows of W[0], then the other layers, then the biases
            if nz is None:
                add_outer(W0, S_in[i], d0, outer)
            elif k:
                if gemm is not None:
                    gemm(1.0, d0_col, s_nz[None, :], 1.0, G.T, overwrite_c=1)
                else:
                    add_outer(G, s_nz, d0, outer)
                W0[nz] = G
            for d_col, s_row, wT, w_, s_, d_, out_ in upper:
                if gemm is not None:
                    gemm(1.0, d_col, s_row, 1.0, wT, overwrite_c=1)
                else:
                    add_outer(w_, s_, d_, out_)
            add(b_all, D, out=b_all)
            if symmetric:
                net._refresh_symmetric()
            net.examples_seen += 1

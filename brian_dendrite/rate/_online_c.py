"""The loop of :func:`~._online_native.train_native` in C: all examples of a block in one call, the same bits.

:func:`~._online_native.train_native` runs the training loop without apical
conductance (``g_A = 0``, or no hidden layer) as about fifteen Python-level calls
per example: the gather of the first layer's active rows (``take``), the BLAS
products (``matmul``), the compiled kernels of :mod:`._native` (through
:mod:`ctypes`), the apical drive, the fused update and scatter.
:func:`train_compiled` runs the same steps for all examples of a block of
``_online._BLOCK`` examples in one call of ``train_block``, compiled from this
module's C source appended to the kernels' source (:data:`._native._SOURCE`,
one library, checked with :func:`._native._is_exact` before use):

- the gather is a ``memcpy`` of the active rows of ``W[0]`` into the same buffer
  (``take`` copies them, exact);
- every matrix-vector product is the call that ``numpy.matmul`` makes for it:
  ``cblas_dgemv`` of the BLAS numpy is linked to, with the order, transposition,
  dimensions and leading dimension that numpy's ``DOUBLE_gemv`` derives from the
  strides (the lookup, :func:`._apical_solver.gemv_spec` and the C call
  ``gemv_run`` are those of :mod:`._apical_solver`). The first layer's product
  ``vals @ G`` with ``G`` the ``k`` gathered rows (C order) is the row-major
  transposed gemv with ``M = k``, ``N = lda = len(W[0][0])``, built per example
  in C as :func:`~._apical_solver.gemv_spec` builds it (checked against it and
  against ``np.matmul`` for several ``k``); the products of the layers above and
  of the apical drive are built once per call and checked with
  :func:`~._apical_solver.check_gemv`;
- the elementwise steps are the same C functions as the kernels that
  :func:`~._online_native.train_native` calls (``layer``, ``target``, ``apical``,
  ``deltas``, ``scatter_update``), with the same arguments, in the same order;
  the scalings ``ratio*ws``, ``psp*r``, ``fb*r`` are single IEEE products as
  numpy's ``multiply`` (compiled with ``-ffp-contract=off``).

The same routines with the same arguments in the same order give the same bits.
Where numpy would not call gemv for the first layer (fewer than two active
inputs: numpy's loop without BLAS; at least half the inputs active: the dense
product and update), ``train_block`` returns and that example runs through
:func:`~._online_native.train_native`; then the block resumes. Without the
library or numpy's gemv, with symmetric feedback (new feedback matrices, from
Python, after every update), more than :data:`~._apical_solver.MAX_HIDDEN`
hidden layers, a product that numpy would not send to gemv or that fails its
check, the whole call runs :func:`~._online_native.train_native` (the same bits).
``BRIAN_DENDRITE_RATE_NATIVE=0`` selects the numpy loop of :mod:`._online`.

Measured (one BLAS thread, 784-500-10, ``benchmarks/benchmark.py --rate-baseline``,
6 rounds on a loaded 2-core machine): 0.059 ms CPU per training example, against
0.081 ms for the Python loop on the kernels. What remains is the first layer's
data movement (perf: the fused update and scatter about 26 % of the training
time, the gather's ``memcpy`` 24 %, OpenBLAS's gemv 15 %; the logistic's ``exp``
and the other kernels about 10 %; Python, per block, a few percent).
"""

from __future__ import annotations

import ctypes
import logging
from functools import lru_cache

import numpy as np

from . import _native
from ._apical_solver import (
    GEMV_SOURCE,
    MAX_HIDDEN,
    GemvSpec,
    _numpy_gemv,
    check_gemv,
    fill_gemv_specs,
    gemv_spec,
)
from ._online import _BLOCK, _block_inputs, _buffers
from ._online_native import train_native

__all__ = ["library", "setup", "train_compiled"]

logger = logging.getLogger("brian2.brian_dendrite.rate")

#: At most this many layers above the input (the size of the arrays in the C structure).
MAX_LAYERS = MAX_HIDDEN + 1

LOOP_SOURCE = r"""
#include <string.h>

#define MAXL 9
typedef struct {
    void *gemv;  /* first, as in phase_t: gemv_call */
    int64_t ilp64, n_layers, n_hidden, n_in, n_hid, n_total, scale_drive, scale_psp, scale_fb;
    double ratio, psp, phi, kB, kD, kDt, fb;
    double *W0, *G, *Rt, *Sfb, *SigT, *AA, *SA, *SFall, *Dall, *ball;
    const double *kE, *cc, *gain, *k;
    double *ws[MAXL], *b[MAXL], *B[MAXL], *SF[MAXL], *R[MAXL], *S[MAXL], *Spost[MAXL], *Wt[MAXL], *D[MAXL];
    const ptrdiff_t *rows[MAXL];
    int64_t n[MAXL], wrows[MAXL];
    gemv_spec up[MAXL], fb_f[MAXL], fb_t[MAXL];
} online_t;

void gemv_call(const online_t *P, const gemv_spec *g) { gemv_run(P->gemv, P->ilp64, g); }

static void scale(double a, const double *x, double *y, ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; ++j)
        y[j] = a * x[j];
}

/* the examples start..count-1 of a block (as train_native's loop); returns count, or the first example whose
   first-layer product numpy would not send to gemv (k < 2) or that is dense (2 k >= n_in) */
int64_t train_block(const online_t *P, const ptrdiff_t *cols, const double *vals, const ptrdiff_t *offsets,
                    const int64_t *labels, int64_t start, int64_t count)
{
    const int64_t L = P->n_layers, nh = P->n_hidden, n0 = P->n[0], n_out = P->n[L - 1];
    for (int64_t i = start; i < count; ++i) {
        const ptrdiff_t o0 = offsets[i], k = offsets[i + 1] - o0;
        if (k < 2 || 2 * k >= P->n_in)
            return i;
        const ptrdiff_t *c = cols + o0;
        const double *v = vals + o0;
        for (ptrdiff_t r = 0; r < k; ++r)  /* W[0].take(c, axis=0, out=G) */
            memcpy(P->G + r * n0, P->W0 + c[r] * n0, (size_t)n0 * sizeof(double));
        const gemv_spec g0 = {101, 112, k, n0, n0, P->G, v, P->ws[0]};  /* np.matmul(v, G, out=ws[0]) */
        gemv_run(P->gemv, P->ilp64, &g0);
        for (int64_t l = 0; l < L; ++l) {
            if (l > 0)
                gemv_run(P->gemv, P->ilp64, &P->up[l]);
            if (P->scale_drive)
                scale(P->ratio, P->ws[l], P->ws[l], P->n[l]);
            layer(P->ws[l], P->b[l], l < nh ? P->kB : P->kD, P->phi, P->B[l], P->SF[l], P->R[l], P->n[l]);
            if (P->scale_psp)
                scale(P->psp, P->R[l], P->S[l], P->n[l]);
        }
        target(P->B[L - 1], P->kE + labels[i] * n_out, P->kDt, P->phi, P->SigT, P->Rt, n_out);
        if (nh) {  /* apical_drive, then A + c and the plateaus */
            if (P->scale_fb)
                scale(P->fb, P->R[L - 1], P->Sfb, n_out);
            for (int64_t h = 0; h < nh; ++h)
                gemv_run(P->gemv, P->ilp64, &P->fb_f[h]);
            if (P->scale_fb)
                scale(P->fb, P->Rt, P->Sfb, n_out);
            for (int64_t h = 0; h < nh; ++h)
                gemv_run(P->gemv, P->ilp64, &P->fb_t[h]);
            apical(P->AA, P->cc, P->SA, 2 * P->n_hid);
        }
        deltas(P->SFall, P->SA, P->SigT, P->gain, P->k, P->Dall, P->ball, P->n_hid, P->n_total);
        scatter_update(P->W0, P->G, c, v, P->D[0], k, n0);
        for (int64_t l = 1; l < L; ++l)
            scatter_update(P->Wt[l], P->Wt[l], P->rows[l], P->Spost[l - 1], P->D[l], P->wrows[l], P->n[l]);
    }
    return count;
}
"""

_I64, _F, _P = ctypes.c_int64, ctypes.c_double, ctypes.c_void_p


class OnlineStruct(ctypes.Structure):
    """``online_t``: everything ``train_block`` reads and writes besides the block's inputs."""

    _fields_ = ([("gemv", _P)]
                + [(n, _I64) for n in ("ilp64", "n_layers", "n_hidden", "n_in", "n_hid", "n_total", "scale_drive",
                                       "scale_psp", "scale_fb")]
                + [(n, _F) for n in ("ratio", "psp", "phi", "kB", "kD", "kDt", "fb")]
                + [(n, _P) for n in ("W0", "G", "Rt", "Sfb", "SigT", "AA", "SA", "SFall", "Dall", "ball", "kE", "cc",
                                     "gain", "k")]
                + [(n, _P * MAX_LAYERS) for n in ("ws", "b", "B", "SF", "R", "S", "Spost", "Wt", "D", "rows")]
                + [(n, _I64 * MAX_LAYERS) for n in ("n", "wrows")]
                + [(n, GemvSpec * MAX_LAYERS) for n in ("up", "fb_f", "fb_t")])


_SIGNATURES = {
    **_native._SIGNATURES,
    "gemv_call": [ctypes.POINTER(OnlineStruct), ctypes.POINTER(GemvSpec)],
    "train_block": [ctypes.POINTER(OnlineStruct)] + [_P] * 4 + [_I64] * 2,
    "_restype": {"train_block": _I64},
}


@lru_cache(maxsize=1)
def library():
    """``(lib, (gemv_address, ilp64))``: the compiled loop with the kernels, and numpy's gemv; or None.

    None when disabled (``BRIAN_DENDRITE_RATE_NATIVE=0``), when the library cannot
    be built or loaded, when a kernel does not give numpy's bits
    (:func:`._native._is_exact`) or numpy's ``cblas_dgemv`` is not found.
    """
    if _native.disabled():
        return None
    lib = _native.load(_native._SOURCE + GEMV_SOURCE + LOOP_SOURCE, _SIGNATURES, "rate_online_loop")
    if lib is None:
        return None
    if not _native._is_exact(lib):
        logger.debug("rate online loop: the kernels are not the bits of numpy here, not used")
        return None
    gemv = _numpy_gemv()
    if gemv is None:
        logger.debug("rate online loop: numpy's cblas_dgemv not found, not used")
        return None
    return lib, gemv


def _first_layer_ok(lib, P, W0, gather, ws0) -> bool:
    """Whether ``train_block``'s first-layer product is :func:`gemv_spec`'s and ``np.matmul``'s, for several ``k``."""
    n_in, n0 = W0.shape
    for k in sorted({2, 3, 17, 150, (n_in - 1) // 2} & set(range(2, (n_in + 1) // 2))):
        G = gather[:k]
        W0.take(np.arange(k), axis=0, out=G)
        x = np.empty(k)
        spec = gemv_spec(x, G, ws0)
        if spec is None or (spec.order, spec.trans, spec.M, spec.N, spec.lda) != (101, 112, k, n0, n0):
            return False
        if not check_gemv(lib, P, spec, x, G, ws0):
            return False
    return True


def setup(net, lib, gemv):  # long: one field per buffer
    """``(struct, buffers)`` of ``train_block`` for ``net``, or None (module docstring: the unsupported cases).

    The buffers are those of :func:`._online._buffers` (kept alive with the
    structure); the checks overwrite some of them with random test vectors.
    """
    if net._symmetric or not 1 <= net.n_layers <= MAX_LAYERS:
        return None
    f = _buffers(net)
    n_hid, views = f["n_hid"], f["views"]
    SF, D, AA, SA = f["SF"], f["D"], f["AA"], f["SA"]
    cuts = np.cumsum((0, *net.sizes[1:-1])).tolist()
    Af_h = [AA[cuts[h] : cuts[h + 1]] for h in range(len(cuts) - 1)]
    At_h = [AA[n_hid + cuts[h] : n_hid + cuts[h + 1]] for h in range(len(cuts) - 1)]
    B, R, S, WS = f["B"], f["R"], f["S"], f["WS"]
    Wt, L, nh = net._Wt, net.n_layers, net.n_hidden
    if any(not (w.flags.c_contiguous and w.dtype == np.float64) for w in Wt) or net.sizes[1] < 2:
        return None
    psp, ratio, fb = net.psp_scale, net._drive_ratio, net.fb_scale
    S_post = [S[lay] if psp != 1.0 else R[lay] for lay in range(L)]
    kE = np.ascontiguousarray(np.array(f["kE"], dtype=np.float64))
    rows = [np.arange(n, dtype=np.intp) for n in net.sizes]
    P = OnlineStruct()
    P.gemv, P.ilp64 = gemv
    P.n_layers, P.n_hidden, P.n_in, P.n_hid, P.n_total = L, nh, net.sizes[0], n_hid, SF.size
    P.scale_drive, P.scale_psp, P.scale_fb = ratio != 1.0, psp != 1.0, fb != 1.0
    P.ratio, P.psp, P.phi, P.kB, P.kD, P.kDt, P.fb = ratio, psp, net.phi, net.k_B, net.k_D, net._k_D_t, fb
    keep = dict(f, kE=kE, rows=rows)
    for name, a in (("W0", Wt[0]), ("G", f["gather"]), ("Rt", f["Rt"]), ("Sfb", f["Sfb"]), ("SigT", f["SigT_out"]),
                    ("AA", AA), ("SA", SA), ("SFall", SF), ("Dall", D), ("ball", net._b_all), ("kE", kE),
                    ("cc", f["cc"]), ("gain", f["gain"]), ("k", f["k"])):
        setattr(P, name, a.ctypes.data)
    for lay in range(L):
        for name, a in (("ws", WS), ("b", net._b), ("B", B), ("SF", views(SF)), ("R", R), ("S", S),
                        ("Spost", S_post), ("Wt", Wt), ("D", views(D)), ("rows", rows)):
            getattr(P, name)[lay] = a[lay].ctypes.data
        P.n[lay], P.wrows[lay] = net.sizes[lay + 1], net.sizes[lay]
    products = [(P.up, lay, S_post[lay - 1], Wt[lay], WS[lay]) for lay in range(1, L)]
    YT = [y_.T for y_ in net._Y]
    for h in range(nh):
        products.append((P.fb_f, h, f["Sfb"] if fb != 1.0 else R[-1], YT[h], Af_h[h]))
        products.append((P.fb_t, h, f["Sfb"] if fb != 1.0 else f["Rt"], YT[h], At_h[h]))
    if not fill_gemv_specs(lib, P, products, "rate online loop"):
        return None
    if not _first_layer_ok(lib, P, Wt[0], f["gather"], WS[0]):
        logger.debug("rate online loop: the first layer's gemv differs from np.matmul, not used")
        return None
    return P, keep


def train_compiled(net, X, y, idx, K) -> None:
    """Train ``net`` on ``X[idx]``, ``y[idx]`` in order: :func:`~._online_native.train_native`'s loop in C.

    ``K``: the kernels of :func:`._native.kernels` (for the examples and the calls
    that :func:`~._online_native.train_native` runs instead, module docstring).
    """
    found = library()
    state = setup(net, *found) if found is not None and len(idx) else None
    if state is None:
        train_native(net, X, y, idx, K)
        return
    lib, P = found[0], ctypes.byref(state[0])
    n_out = net.sizes[-1]
    for start in range(0, len(idx), _BLOCK):
        block = idx[start : start + _BLOCK]
        labels = np.ascontiguousarray(y[block], dtype=np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= n_out):  # as the Python loop indexes its list
            train_native(net, X, y, block, K)
            continue
        _, cols, vals, offsets = _block_inputs(X, block, net.psp_scale * net.phi)
        cols = cols.astype(np.intp, copy=False)
        offsets = np.asarray(offsets, dtype=np.intp)
        i, count = 0, len(block)
        while i < count:
            j = lib.train_block(P, cols.ctypes.data, vals.ctypes.data, offsets.ctypes.data, labels.ctypes.data, i,
                                count)
            net.examples_seen += j - i
            if j < count:  # an example whose first layer is not a gemv over its gathered rows
                train_native(net, X, y, block[j : j + 1], K)
                j += 1
            i = j

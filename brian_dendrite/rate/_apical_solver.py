"""The fixed-point iteration of one phase with apical conductance, compiled, with numpy's own BLAS.

:mod:`._online_apical` runs the iteration of :func:`~._fixed_point.solve_fixed_point`
for one example with preallocated buffers and the elementwise kernels of
:mod:`._apical_native`; per iteration that is still some fifteen Python-level
calls (six matrix-vector products, four kernels, a sum). :func:`solver` returns a
compiled ``solve_phase`` that runs the whole iteration in C: the same kernels
(the same C source, compiled into the same library and checked with
:func:`._apical_native._is_exact`), and every matrix-vector product as the call
that ``numpy.matmul`` makes for it: ``cblas_dgemv`` of the BLAS numpy is linked
to (looked up through numpy's own extension module), with the order,
transposition, dimensions and leading dimension that numpy's ``DOUBLE_gemv``
derives from the operands' strides (:func:`gemv_spec`). The same routine with
the same arguments computes the same bits; this is checked for every product
before use (:func:`check_gemv`, against ``np.matmul`` on random vectors, with
the network's own matrices), as is the sum of the relaxation's sign test, which
follows numpy's pairwise summation (``np.add.reduce``; only its sign is used).

The C loop returns to Python when the iteration converged (0), when a Newton
step is due (1: the step runs in Python, :func:`._online_apical._newton`, and
the loop resumes with the Newton iterate or the relaxation; the sweep at the
Newton iterate is ``newton_residual``, in C) and after
``max_iter`` iterations (2: :class:`~._fixed_point.ConvergenceError`). Where
numpy would not call BLAS (a dimension of 1, unusual strides), where the
symbol is not found or a check fails, :func:`solver` or :func:`make_phase`
return None and :mod:`._online_apical` runs its Python-level loop (the same bits).
"""

from __future__ import annotations

import ctypes
import logging
from functools import lru_cache

import numpy as np

from . import _apical_native
from ._fixed_point import _MIN_BETA, _SLOW
from ._native import disabled, load

__all__ = ["GEMV_SOURCE", "MAX_HIDDEN", "SOLVER_SIGNATURES", "SOLVER_SOURCE", "apical_kernels", "check_gemv",
           "gemv_spec", "make_phase", "solver"]

logger = logging.getLogger("brian2.brian_dendrite.rate")

#: At most this many hidden layers (the size of the arrays in the C structure).
MAX_HIDDEN = 8

#: ``gemv_spec`` (the arguments of one ``cblas_dgemv`` call) and ``gemv_run``, the call as numpy's matmul makes it
#: (shared with the compiled training loop of :mod:`._online_c`).
GEMV_SOURCE = r"""
#include <stdint.h>

typedef void (*gemv64_t)(int, int, int64_t, int64_t, double, const double *, int64_t, const double *, int64_t,
                         double, double *, int64_t);
typedef void (*gemv32_t)(int, int, int, int, double, const double *, int, const double *, int, double, double *,
                         int);

typedef struct { int64_t order, trans, M, N, lda; const double *A, *x; double *y; } gemv_spec;

/* y = x @ A as numpy.matmul calls it: cblas_dgemv(order, trans, M, N, 1, A, lda, x, 1, 0, y, 1) */
static void gemv_run(void *gemv, int64_t ilp64, const gemv_spec *g)
{
    if (ilp64)
        ((gemv64_t)gemv)((int)g->order, (int)g->trans, g->M, g->N, 1.0, g->A, g->lda, g->x, 1, 0.0, g->y, 1);
    else
        ((gemv32_t)gemv)((int)g->order, (int)g->trans, (int)g->M, (int)g->N, 1.0, g->A, (int)g->lda, g->x, 1, 0.0,
                         g->y, 1);
}
"""

SOLVER_SOURCE = GEMV_SOURCE + r"""
#define MAXH 8
typedef struct { const double *ws, *b, *c; double *B, *A, *C, *SF, *R, *S; int64_t n; } hidden_spec;
typedef struct {
    void *gemv;
    int64_t ilp64, n_hidden, n_out, max_iter;
    double ratio, kB, kA, phi, psp, k_out, fb, tol, slow, min_beta;
    const double *e;
    hidden_spec hid[MAXH];
    gemv_spec up[MAXH + 1], apical[MAXH], change[MAXH];
    const double *out_ws, *out_b;
    double *out_B, *out_C, *out_SF, *out_R, *r, *Sfb, *res, *T, *prev, *prod, *CH;
    ptrdiff_t ch_cuts[MAXH + 1];
    double beta, previous, size, change_value;
    int64_t has_prev, iterations;
} phase_t;

/* y = x @ A as numpy.matmul calls it */
void gemv_call(const phase_t *P, const gemv_spec *g) { gemv_run(P->gemv, P->ilp64, g); }

/* numpy's pairwise summation of a contiguous float64 array (loops_utils.h.src, PW_BLOCKSIZE 128) */
static double pairwise(const double *a, ptrdiff_t n)
{
    if (n < 8) {
        double res = -0.0;
        for (ptrdiff_t i = 0; i < n; ++i)
            res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        ptrdiff_t i;
        for (int j = 0; j < 8; ++j)
            r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; ++j)
                r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; ++i)
            res += a[i];
        return res;
    }
    ptrdiff_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise(a, n2) + pairwise(a + n2, n - n2);
}

/* np.add.reduce(a): the identity 0 plus the pairwise sum */
double np_sum(const double *a, ptrdiff_t n) { return 0.0 + pairwise(a, n); }

/* the hidden layers of a sweep (add = 0: A = c, the first sweep) and W s of the output layer */
static void sweep(const phase_t *P, int add)
{
    for (int64_t h = 0; h < P->n_hidden; ++h) {
        const hidden_spec *L = &P->hid[h];
        if (h > 0)
            gemv_call(P, &P->up[h]);
        hidden(h > 0 ? L->ws : 0, L->b, P->ratio, L->B, L->A, L->c, add, P->kB, P->kA, P->phi, P->psp, L->C, L->SF,
               L->R, L->S, L->n);
    }
    gemv_call(P, &P->up[P->n_hidden]);
}

static double sweep_output(phase_t *P, int first)
{
    return output(P->out_ws, P->out_b, P->ratio, P->k_out, P->e, P->phi, P->fb, P->out_B, P->out_C, P->out_SF,
                  P->out_R, P->r, P->Sfb, P->res, P->T, P->prev, P->prod, first, P->n_out);
}

/* np.max(np.abs(F(rn) - rn)) of a Newton iterate rn: one sweep with A = Y (fb rn) + c into the phase's
   states (as _relax's net._sweep(s_in, net._apical(r_newton), E, B0)); r, res and prev are kept, Sfb, T
   and prod (recomputed before they are read again) serve as scratch */
double newton_residual(phase_t *P, const double *rn)
{
    const int64_t n = P->n_out;
    for (int64_t j = 0; j < n; ++j)
        P->Sfb[j] = P->fb * rn[j];
    for (int64_t h = 0; h < P->n_hidden; ++h)
        gemv_call(P, &P->apical[h]);
    sweep(P, 1);
    output(P->out_ws, P->out_b, P->ratio, P->k_out, P->e, P->phi, P->fb, P->out_B, P->out_C, P->out_SF, P->out_R,
           P->T, P->prod, P->res, P->T, P->prev, P->prod, 1, n);
    for (int64_t j = 0; j < n; ++j)
        P->T[j] = P->out_R[j] - rn[j];
    return max_abs(P->T, n);
}

/* solve_fixed_point for one example: start = 1 begins, start = 0 resumes after a Newton step (rn: the
   Newton iterate or NULL); returns 0 (converged), 1 (Newton step due, size in P->size), 2 (max_iter) */
int64_t solve_phase(phase_t *P, int64_t start, const double *rn)
{
    const int64_t nh = P->n_hidden;
    if (start) {
        sweep(P, 0);
        sweep_output(P, 1);
        P->beta = 1.0;
        P->previous = INFINITY;
        P->has_prev = 0;
        P->iterations = 0;
        P->change_value = INFINITY;
    } else {
        P->previous = P->size;
        relax(P->r, rn, P->res, P->prev, P->beta, P->fb, P->Sfb, P->n_out);
    }
    while (P->iterations < P->max_iter) {
        P->iterations++;
        for (int64_t h = 0; h < nh; ++h)
            gemv_call(P, &P->apical[h]);
        sweep(P, 1);
        const double size = sweep_output(P, 0);
        for (int64_t h = 0; h < nh; ++h)
            gemv_call(P, &P->change[h]);
        const double ch = change(P->CH, P->ch_cuts, nh);
        P->change_value = ch;
        if (ch <= P->tol)
            return 0;
        if (P->has_prev && np_sum(P->prod, P->n_out) < 0) {
            const double half = 0.5 * P->beta;
            P->beta = P->min_beta > half ? P->min_beta : half;
        }
        P->has_prev = 1;
        P->size = size;
        if (size > P->slow * P->previous)
            return 1;
        P->previous = size;
        relax(P->r, 0, P->res, P->prev, P->beta, P->fb, P->Sfb, P->n_out);
    }
    return 2;
}
"""

_I64, _F, _P = ctypes.c_int64, ctypes.c_double, ctypes.c_void_p


class GemvSpec(ctypes.Structure):
    """``gemv_spec``: the arguments of one ``cblas_dgemv`` call."""

    _fields_ = [(name, _I64) for name in ("order", "trans", "M", "N", "lda")] + [(n, _P) for n in ("A", "x", "y")]


class HiddenSpec(ctypes.Structure):
    """``hidden_spec``: the buffers of one hidden layer (the arguments of the ``hidden`` kernel)."""

    _fields_ = [(name, _P) for name in ("ws", "b", "c", "B", "A", "C", "SF", "R", "S")] + [("n", _I64)]


class PhaseStruct(ctypes.Structure):
    """``phase_t``: everything ``solve_phase`` reads and writes for one phase."""

    _fields_ = ([("gemv", _P)] + [(n, _I64) for n in ("ilp64", "n_hidden", "n_out", "max_iter")]
                + [(n, _F) for n in ("ratio", "kB", "kA", "phi", "psp", "k_out", "fb", "tol", "slow", "min_beta")]
                + [("e", _P), ("hid", HiddenSpec * MAX_HIDDEN), ("up", GemvSpec * (MAX_HIDDEN + 1)),
                   ("apical", GemvSpec * MAX_HIDDEN), ("change", GemvSpec * MAX_HIDDEN)]
                + [(n, _P) for n in ("out_ws", "out_b", "out_B", "out_C", "out_SF", "out_R", "r", "Sfb", "res", "T",
                                     "prev", "prod", "CH")]
                + [("ch_cuts", ctypes.c_ssize_t * (MAX_HIDDEN + 1))]
                + [(n, _F) for n in ("beta", "previous", "size", "change_value")]
                + [(n, _I64) for n in ("has_prev", "iterations")])


#: The argument types of the functions of :data:`SOLVER_SOURCE` (loaded with the kernels of :mod:`._apical_native`).
SOLVER_SIGNATURES = {
    "gemv_call": [ctypes.POINTER(PhaseStruct), ctypes.POINTER(GemvSpec)],
    "np_sum": [_P, ctypes.c_ssize_t],
    "solve_phase": [ctypes.POINTER(PhaseStruct), _I64, _P],
    "newton_residual": [ctypes.POINTER(PhaseStruct), _P],
    "_restype": {"np_sum": _F, "solve_phase": _I64, "newton_residual": _F},
}


def _numpy_gemv():
    """``(address, ilp64)`` of the ``cblas_dgemv`` that numpy's matmul calls, or None."""
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # pragma: no cover - numpy < 2
        from numpy.core import _multiarray_umath as umath
    try:
        handle = ctypes.CDLL(umath.__file__)  # already loaded: the same handle, its dependencies searched
    except OSError:  # pragma: no cover
        return None
    for name, ilp64 in (("scipy_cblas_dgemv64_", 1), ("cblas_dgemv64_", 1), ("scipy_cblas_dgemv", 0),
                        ("cblas_dgemv", 0)):
        try:
            return ctypes.cast(getattr(handle, name), ctypes.c_void_p).value, ilp64
        except AttributeError:
            continue
    return None


def _sum_is_numpys(lib) -> bool:
    """Whether ``np_sum`` gives the value of ``np.add.reduce`` (sizes 1..300, heavy cancellation)."""
    rng = np.random.default_rng(99)
    for n in list(range(1, 40)) + [64, 100, 128, 129, 200, 257, 300]:
        for _ in range(30):
            a = rng.standard_normal(n) * 10.0 ** rng.integers(-8, 8, n)
            a[rng.random(n) < 0.3] *= -1
            got, ref = lib.np_sum(a.ctypes.data, n), np.add.reduce(a)
            if not (got == ref or (np.isnan(got) and np.isnan(ref))):
                return False
    return True


@lru_cache(maxsize=1)
def apical_kernels():
    """The kernels of :mod:`._apical_native` and the loop ``solve_phase`` (one library), or None.

    Arguments: array addresses, scalars, sizes. None when disabled
    (``BRIAN_DENDRITE_RATE_NATIVE=0``), when they cannot be built or loaded, or
    when a kernel does not give numpy's bits (:func:`._apical_native._is_exact`).
    """
    if disabled():
        return None
    native = _apical_native._SIGNATURES
    restype = {**native["_restype"], **SOLVER_SIGNATURES["_restype"]}
    k = load(_apical_native._SOURCE + SOLVER_SOURCE, {**native, **SOLVER_SIGNATURES, "_restype": restype},
             "rate_apical_kernels")
    if k is None:
        return None
    if not _apical_native._is_exact(k):
        logger.debug("rate apical kernels: not the bits of numpy here, not used")
        return None
    return k


@lru_cache(maxsize=1)
def solver():
    """The compiled library (``solve_phase``, ``gemv_call`` and the kernels) and numpy's gemv, or None.

    Returns ``(lib, (gemv_address, ilp64))``. None without :func:`apical_kernels`
    (e.g. ``BRIAN_DENDRITE_RATE_NATIVE=0``), without numpy's ``cblas_dgemv``, or
    when the sum of the sign test is not numpy's.
    """
    lib = apical_kernels()
    if lib is None:
        return None
    gemv = _numpy_gemv()
    if gemv is None:
        logger.debug("rate apical solver: numpy's cblas_dgemv not found, not used")
        return None
    if not _sum_is_numpys(lib):
        logger.debug("rate apical solver: the sum is not numpy's here, not used")
        return None
    return lib, gemv


def gemv_spec(x, M, y):
    """The ``cblas_dgemv`` arguments of ``np.matmul(x, M, out=y)`` (1-D contiguous ``x``, ``y``), or None.

    As numpy's ``DOUBLE_matmul`` and ``DOUBLE_gemv``: vector @ matrix goes to
    ``cblas_dgemv(order, CblasTrans, n, p, 1, M, lda, x, 1, 0, y, 1)``, column-major
    with ``lda = strides[1]`` when the rows of ``M`` are strided and its columns
    contiguous (``Y.T``), else row-major with ``lda = strides[0]``. None where numpy
    would not call gemv (a dimension 1 or 0, strides BLAS cannot take).
    """
    size = 8
    n, p = M.shape
    if M.dtype != np.float64 or x.dtype != np.float64 or y.dtype != np.float64 or n <= 1 or p <= 1:
        return None
    if not (x.flags.c_contiguous and y.flags.c_contiguous and x.shape == (n,) and y.shape == (p,)):
        return None
    s_n, s_p = M.strides

    def blasable(s1, s2, d2):
        return s2 == size and s1 % size == 0 and d2 <= s1 // size <= 2**31 - 2

    if blasable(s_p, s_n, n):
        order, lda = 102, s_p // size  # CblasColMajor
    elif blasable(s_n, s_p, p):
        order, lda = 101, s_n // size  # CblasRowMajor
    else:
        return None
    return GemvSpec(order, 112, n, p, lda, M.ctypes.data, x.ctypes.data, y.ctypes.data)  # 112: CblasTrans


def check_gemv(lib, struct, spec, x, M, y) -> bool:
    """Whether ``gemv_call`` of ``spec`` gives ``np.matmul(x, M)`` bit for bit on random ``x`` (overwrites x, y)."""
    rng = np.random.default_rng(7)
    for _ in range(3):
        x[...] = rng.standard_normal(x.shape) * rng.choice([1e-3, 1.0, 30.0], x.shape)
        lib.gemv_call(ctypes.byref(struct), ctypes.byref(spec))
        if y.tobytes() != np.matmul(x, M).tobytes():
            return False
    return True


def fill_gemv_specs(lib, struct, products, who: str) -> bool:
    """Fill ``array[i]`` with the gemv of every ``(array, i, x, M, y)`` in *products*, then check each.

    False (logged for *who*) if numpy would not call gemv for one of them
    (:func:`gemv_spec` is None) or if one differs from ``np.matmul`` (:func:`check_gemv`).
    """
    for array, i, x, M, y in products:
        spec = gemv_spec(x, M, y)
        if spec is None:
            return False
        array[i] = spec
    for array, i, x, M, y in products:
        if not check_gemv(lib, struct, array[i], x, M, y):
            logger.debug("%s: gemv of shape %s differs from np.matmul, not used", who, M.shape)
            return False
    return True


def make_phase(net, ph, shared, CH, CH_h, ch_cuts, k_out, YT):  # long: one field per buffer
    """The ``phase_t`` of the phase buffers ``ph`` (a :class:`._online_apical._Phase`), or None.

    None without :func:`solver`, with symmetric feedback (whose matrices are
    replaced at every update), more than :data:`MAX_HIDDEN` hidden layers, or a
    product that numpy would not send to gemv or that fails :func:`check_gemv`.
    Overwrites the buffers (with random test vectors).
    """
    found = solver()
    if found is None or net._symmetric or not 1 <= net.n_hidden <= MAX_HIDDEN:
        return None
    lib, (gemv, ilp64) = found
    nh, Wt = net.n_hidden, net._Wt
    P = PhaseStruct()
    P.gemv, P.ilp64, P.n_hidden, P.n_out, P.max_iter = gemv, ilp64, nh, net.sizes[-1], net.max_iter
    P.ratio, P.kB, P.kA, P.phi, P.psp, P.k_out = net._drive_ratio, net.k_B, net.k_A, net.phi, net.psp_scale, k_out
    P.fb, P.tol = net.fb_scale, net.tol
    P.slow, P.min_beta, P.e = _SLOW, _MIN_BETA, None
    WS = shared["WS"]
    products = []  # (spec, x, M, y): every product, checked below
    for h in range(nh):
        P.hid[h] = HiddenSpec(None if h == 0 else WS[h].ctypes.data, net._b[h].ctypes.data, net._c[h].ctypes.data,
                              *(a.ctypes.data for a in (ph.B[h], ph.A_h[h], ph.C[h], ph.SF_h[h], ph.R[h], ph.S[h])),
                              net.sizes[h + 1])
    for lay in range(1, nh + 1):
        products.append((P.up, lay, ph.S[lay - 1], Wt[lay], WS[lay]))
    for h in range(nh):
        products.append((P.apical, h, shared["Sfb"], YT[h], ph.A_h[h]))
        products.append((P.change, h, shared["T"], YT[h], CH_h[h]))
    if not fill_gemv_specs(lib, P, products, "rate apical solver"):
        return None
    P.out_ws, P.out_b = WS[-1].ctypes.data, net._b[-1].ctypes.data
    P.out_B, P.out_C, P.out_SF, P.out_R = (a.ctypes.data for a in (ph.B[-1], ph.C[-1], ph.SF_out, ph.R[-1]))
    for name in ("r", "Sfb", "res", "T", "prev", "prod"):
        setattr(P, name, shared[name].ctypes.data)
    P.CH = CH.ctypes.data
    for h, cut in enumerate(ch_cuts):
        P.ch_cuts[h] = int(cut)
    return P

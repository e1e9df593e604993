"""Compiled kernels of the fixed-point iteration with apical conductance (:mod:`._online_apical`).

With ``g_A > 0`` every phase of a training example is a fixed point in the
output rates (:mod:`._fixed_point`), about six sweeps per phase. Between two
BLAS products (``W s``, ``Y r``) each sweep and each iteration run a chain of
elementwise operations; these kernels do each chain in one loop over the
elements instead of three to eight numpy calls:

``hidden``
    a hidden layer: ``B = ratio (W s) + b`` (skipped for the first layer, whose
    ``B`` is given), ``A = A + c`` (the apical potential; ``A = c`` in the first
    sweep), ``C = k_B B + k_A A``, ``SF = sigma(C)``, ``R = phi SF``, ``S = psp R``;
``output``
    the output layer: ``B = ratio (W s) + b``, ``C = k B`` (``+ k_teach E`` in the
    target phase), ``SF``, ``R``; then either the first iterate ``r = R`` (first
    sweep) or the residual ``res = R - r``, ``T = fb res`` (for the change of the
    apical potentials), ``prod = res prev`` (for the sign test of the
    relaxation) and ``max |res|``;
``change``
    :func:`max` over the hidden layers of ``np.max(np.abs(T Y^T))``;
``relax``
    ``r = r + beta res`` (or the accepted Newton iterate), ``prev = res``,
    ``Sfb = fb r``;
``bias``
    ``B = ratio (W s) + b`` of the first layer;
``deltas``
    the error terms of all layers, ``b += delta``.

Why the bits are the same: each element is computed with the operations, in
the order, of the numpy expressions of :meth:`RateNetwork._sweep`,
:func:`~._fixed_point.solve_fixed_point` and :meth:`RateNetwork._deltas`; IEEE
products, sums and quotients are rounded the same in C as in numpy's loops, the
code is compiled with ``-ffp-contract=off`` and without ``-ffast-math`` (no
fused multiply-add, no reassociation, see :mod:`._native`), the logistic is
``1/(1 + exp(-x))`` as :func:`scipy.special.expit` computes it, and a maximum
of absolute values has no rounding (NaN propagates as in ``np.max``; the
maximum over the layers follows :func:`max`). A multiplication by a unit scale
is exact, so ``ratio``, ``psp``, ``fb`` are always applied. Sums over
elements (``np.sum(res*prev)``, whose grouping numpy chooses) and every matrix
product stay numpy calls. Before first use in a process the kernels are
checked on random data against the numpy expressions, bit for bit
(:func:`_is_exact`); otherwise, or with ``BRIAN_DENDRITE_RATE_NATIVE=0``,
:func:`._apical_solver.apical_kernels` (which compiles this source together with
the loop of :mod:`._apical_solver`, one library) returns None and the training
runs the per-example methods of :class:`RateNetwork`.
"""

from __future__ import annotations

import ctypes
import logging

import numpy as np

from ._native import DELTA_UPDATE

__all__: list[str] = []  # the source and the check; loaded by ._apical_solver.apical_kernels

logger = logging.getLogger("brian2.brian_dendrite.rate")

_SOURCE = (
    r"""
#include <math.h>
#include <stddef.h>

/* scipy.special.expit: 1 / (1 + exp(-x)) with the C library's exp */
static double logistic(double x) { return 1.0 / (1.0 + exp(-x)); }

/* np.max(np.abs(x)) of n >= 1 elements: exact, NaN if any element is NaN */
static double max_abs(const double *x, ptrdiff_t n)
{
    double m = 0.0;
    int nan = 0;
    for (ptrdiff_t j = 0; j < n; ++j) {
        const double a = fabs(x[j]);
        if (a != a)
            nan = 1;
        else if (a > m)
            m = a;
    }
    return nan ? NAN : m;
}

/* B = ratio ws + b */
void bias(const double *ws, const double *b, double ratio, double *B, ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; ++j) {
        const double x = ratio * ws[j];
        B[j] = x + b[j];
    }
}

/* a hidden layer: B = ratio ws + b (ws NULL: B given), A = A + c (add = 0: A = c), C = kB B + kA A,
   SF = logistic(C), R = phi SF, S = psp R */
void hidden(const double *ws, const double *b, double ratio, double *B, double *A, const double *c, int add,
            double kB, double kA, double phi, double psp, double *C, double *SF, double *R, double *S,
            ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; ++j) {
        double Bj;
        if (ws) {
            const double x = ratio * ws[j];
            Bj = x + b[j];
            B[j] = Bj;
        } else {
            Bj = B[j];
        }
        const double Aj = add ? A[j] + c[j] : c[j];
        A[j] = Aj;
        const double u = kB * Bj;
        const double v = kA * Aj;
        const double Cj = u + v;
        const double sj = logistic(Cj);
        C[j] = Cj;
        SF[j] = sj;
        const double rj = phi * sj;
        R[j] = rj;
        S[j] = psp * rj;
    }
}

/* the output layer: B = ratio ws + b, C = k B (+ e[j] if e), SF = logistic(C), R = phi SF;
   first: r = R, Sfb = fb R, returns 0; else res = R - r, T = fb res, prod = res prev, returns max |res| */
double output(const double *ws, const double *b, double ratio, double k, const double *e, double phi, double fb,
              double *B, double *C, double *SF, double *R, double *r, double *Sfb, double *res, double *T,
              const double *prev, double *prod, int first, ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; ++j) {
        const double x = ratio * ws[j];
        const double Bj = x + b[j];
        B[j] = Bj;
        double Cj = k * Bj;
        if (e)
            Cj = Cj + e[j];
        C[j] = Cj;
        const double sj = logistic(Cj);
        SF[j] = sj;
        const double rj = phi * sj;
        R[j] = rj;
        if (first) {
            r[j] = rj;
            Sfb[j] = fb * rj;
        } else {
            const double d = rj - r[j];
            res[j] = d;
            T[j] = fb * d;
            prod[j] = d * prev[j];
        }
    }
    return first ? 0.0 : max_abs(res, n);
}

/* max(np.max(np.abs(x[cuts[h]:cuts[h+1]])) for h < m), with the comparisons of Python's max */
double change(const double *x, const ptrdiff_t *cuts, ptrdiff_t m)
{
    double best = max_abs(x + cuts[0], cuts[1] - cuts[0]);
    for (ptrdiff_t h = 1; h < m; ++h) {
        const double v = max_abs(x + cuts[h], cuts[h + 1] - cuts[h]);
        if (v > best)
            best = v;
    }
    return best;
}

/* the next iterate: r = rn (rn not NULL) or r + beta res; prev = res; Sfb = fb r */
void relax(double *r, const double *rn, const double *res, double *prev, double beta, double fb, double *Sfb,
           ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; ++j) {
        double rj;
        if (rn) {
            rj = rn[j];
        } else {
            const double x = beta * res[j];
            rj = r[j] + x;
        }
        r[j] = rj;
        prev[j] = res[j];
        Sfb[j] = fb * rj;
    }
}

/* error terms D = (((gain SF) (1 - SF)) k) t2 of all layers and b += D, t2 = logistic(At) - logistic(Af)
   for the m hidden neurons, ST - SF for the output's */
void deltas(const double *SF, const double *Af, const double *At, const double *ST, const double *gain,
            const double *k, double *D, double *b, ptrdiff_t m, ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; ++j) {
        double t2;
        if (j < m) {
            const double st = logistic(At[j]);
            const double sf = logistic(Af[j]);
            t2 = st - sf;
        } else {
            t2 = ST[j - m] - SF[j];
        }
"""
    + DELTA_UPDATE
    + r"""    }
}
"""
)

_P, _D, _N, _I = ctypes.c_void_p, ctypes.c_double, ctypes.c_ssize_t, ctypes.c_int

_SIGNATURES = {
    "bias": [_P, _P, _D, _P, _N],
    "hidden": [_P, _P, _D, _P, _P, _P, _I, _D, _D, _D, _D, _P, _P, _P, _P, _N],
    "output": [_P, _P, _D, _D, _P, _D, _D] + [_P] * 10 + [_I, _N],
    "change": [_P, _P, _N],
    "relax": [_P, _P, _P, _P, _D, _D, _P, _N],
    "deltas": [_P] * 8 + [_N, _N],
    "_restype": {"output": ctypes.c_double, "change": ctypes.c_double},
}


def _test_values(rng, n):
    """Random arguments of the logistic over many scales, with extreme and special values."""
    x = np.concatenate([rng.standard_normal(n) * scale for scale in (0.1, 1, 10, 100, 1000)]
                       + [np.array([0.0, -0.0, 5e-324, -5e-324, 709.8, -709.8, 745.2, -745.2, 36.7, -36.7,
                                    np.inf, -np.inf])])
    return x[rng.permutation(x.size)]


def _is_exact(k) -> bool:  # long: one comparison per kernel and mode
    """Whether the kernels ``k`` give the bits of the numpy expressions they replace, on random data."""
    from ._logistic import logistic as sigma

    rng = np.random.default_rng(2017)

    def same(a, b):
        return np.asarray(a).tobytes() == np.asarray(b).tobytes()

    def p(a):
        return None if a is None else a.ctypes.data

    x = _test_values(rng, 4000)
    n = x.size
    ws, b, A, c, e, prev, r = (rng.standard_normal(n) for _ in range(7))
    A[::97] = x[::97]
    for ratio in (1.0, 0.463 / 0.510):
        B = np.empty(n)
        k.bias(p(ws), p(b), ratio, p(B), n)
        if not same(B, ratio * ws + b):
            return False
        for use_ws in (True, False):
            for add in (0, 1):
                B_in = x.copy() if not use_ws else np.empty(n)
                A_io = A.copy()
                out = [np.empty(n) for _ in range(4)]
                k.hidden(p(ws) if use_ws else None, p(b), ratio, p(B_in), p(A_io), p(c), add, 0.8, 0.0667, 0.2,
                         0.51, *(p(o) for o in out), n)
                B_ref = ratio * ws + b if use_ws else x
                A_ref = A + c if add else c
                C_ref = 0.8 * B_ref + 0.0667 * A_ref
                SF_ref = sigma(C_ref)
                R_ref = 0.2 * SF_ref
                if not (same(B_in, B_ref) and same(A_io, A_ref) and same(out[0], C_ref) and same(out[1], SF_ref)
                        and same(out[2], R_ref) and same(out[3], 0.51 * R_ref)):
                    return False
        for teach in (None, e):
            for first in (1, 0):
                for fb in (1.0, 0.51):
                    bufs = [np.empty(n) for _ in range(8)]
                    B_o, C_o, SF_o, R_o, Sfb_o, res_o, T_o, prod_o = bufs
                    r_io = r.copy()
                    size = k.output(p(ws), p(b), ratio, 0.35, p(teach), 0.2, fb, p(B_o), p(C_o), p(SF_o), p(R_o),
                                    p(r_io), p(Sfb_o), p(res_o), p(T_o), p(prev), p(prod_o), first, n)
                    B_ref = ratio * ws + b
                    C_ref = 0.35 * B_ref if teach is None else 0.35 * B_ref + teach
                    SF_ref = sigma(C_ref)
                    R_ref = 0.2 * SF_ref
                    if not (same(B_o, B_ref) and same(C_o, C_ref) and same(SF_o, SF_ref) and same(R_o, R_ref)):
                        return False
                    if first:
                        ok = same(r_io, R_ref) and same(Sfb_o, fb * R_ref) and size == 0.0
                    else:
                        res_ref = R_ref - r
                        ok = (same(res_o, res_ref) and same(T_o, fb * res_ref) and same(prod_o, res_ref * prev)
                              and same(size, np.max(np.abs(res_ref))))
                    if not ok:
                        return False
    # the maximum over the segments, with NaN in the first or a later segment
    for trial in range(4):
        xs = rng.standard_normal(30) * 10.0 ** rng.integers(-12, 3, 30)
        if trial >= 2:
            xs[rng.integers(0, 30) if trial == 2 else 3] = np.nan
        cuts = np.array([0, 5, 17, 30], dtype=np.intp)
        got = k.change(p(xs), p(cuts), 3)
        ref = max(float(np.max(np.abs(xs[cuts[h] : cuts[h + 1]]))) for h in range(3))
        if not (same(got, ref) or (np.isnan(got) and np.isnan(ref))):
            return False
    for newton in (False, True):
        res, r_io, prev_io, Sfb = rng.standard_normal(n), r.copy(), np.empty(n), np.empty(n)
        rn = rng.standard_normal(n) if newton else None
        k.relax(p(r_io), p(rn), p(res), p(prev_io), 0.375, 0.51, p(Sfb), n)
        r_ref = rn if newton else r + np.ones(1) * 0.375 * res
        if not (same(r_io, r_ref) and same(prev_io, res) and same(Sfb, 0.51 * r_ref)):
            return False
    m = n // 3
    SF, ST, gain, kv = rng.random(n), rng.random(n - m), rng.standard_normal(n), rng.standard_normal(n)
    Af, At = x[:m].copy(), x[m : 2 * m].copy()
    D, bias_io = np.empty(n), rng.standard_normal(n)
    t2 = np.concatenate([sigma(At) - sigma(Af), ST - SF[m:]])
    expected_D = ((gain * SF) * (1.0 - SF)) * kv * t2
    expected_b = bias_io + expected_D
    k.deltas(p(SF), p(Af), p(At), p(ST), p(gain), p(kv), p(D), p(bias_io), m, n)
    return same(D, expected_D) and same(bias_io, expected_b)

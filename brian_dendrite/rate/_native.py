"""Optional compiled kernels of the rate model's training loop (:mod:`._online_native`).

Per example, the training loop gathers the rows of ``W[0]`` of the active inputs
into a buffer ``G`` (for the BLAS product ``W[0] s_in``), then updates them and
writes them back. With numpy and BLAS that is two passes over ``G`` and one over
``W[0]``'s rows: ``G += outer(s, delta)`` (``dgemm`` with inner dimension 1) and
``W[0][rows] = G``. ``scatter_update`` does both in one pass,
``W[rows[r], j] = G[r, j] + s[r]*delta[j]`` (and, with ``G = W`` and all rows,
the in-place update of the layers above). ``layer``, ``target``, ``apical`` and
``deltas`` each replace the run of three to seven numpy calls between two BLAS
products (``B = W s + b``, ``sigma(k B)``, ``phi sigma``; the target phase of the
output; ``A + c`` and ``sigma(A)``; the error terms and ``b += delta``), with one
loop over the elements. They compute each element with the same operations in
the same order as the numpy expressions: IEEE products, sums and quotients are
rounded the same in C as in numpy's loops, the code is compiled with
``-ffp-contract=off`` and without ``-ffast-math`` (no fused multiply-add, no
reassociation), and the logistic is ``1/(1 + exp(-x))`` with the C library's
``exp``, which is how :func:`scipy.special.expit` computes it. Measured A/B on
784-500-10 (one BLAS thread): training 1.3-1.4x faster in CPU time than the
numpy loop, the same bits.

The kernels are compiled once per machine with the C compiler (``$CC`` or ``cc``)
into the cache folder (``$BRIAN_DENDRITE_RATE_CACHE``, else
``$XDG_CACHE_HOME/brian_dendrite/rate_kernel`` or ``~/.cache/...``), named by a hash
of their source, flags and compiler, and loaded with :mod:`ctypes`. Before first
use in a process they are checked on random data (and on extreme arguments of
the logistic) against the numpy expressions, bit for bit (:func:`_is_exact`).
Without a compiler, on a failed build, load or check, or with
``BRIAN_DENDRITE_RATE_NATIVE=0``, :func:`kernels` returns None and the training
uses the numpy loop of :mod:`._online` (the same results).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

import numpy as np

__all__ = ["ENV_VAR", "disabled", "kernels", "load"]

logger = logging.getLogger("brian2.brian_dendrite.rate")

#: Set to 0 (or false, no, off) to disable the compiled kernel.
ENV_VAR = "BRIAN_DENDRITE_RATE_NATIVE"

#: The end of the error-term loop body shared by this module's and :mod:`._apical_native`'s
#: ``deltas`` (``t2`` = sigma_t - sigma_f computed before it): D = (((gain SF) (1 - SF)) k) t2, b += D.
DELTA_UPDATE = r"""        double t1 = gain[j] * SF[j];
        const double u = 1.0 - SF[j];
        t1 = t1 * u;
        t1 = t1 * k[j];
        const double Dj = t1 * t2;
        D[j] = Dj;
        b[j] = b[j] + Dj;
"""

_SOURCE = (
    r"""
#include <math.h>
#include <stddef.h>

/* scipy.special.expit: 1 / (1 + exp(-x)) with the C library's exp */
static double logistic(double x) { return 1.0 / (1.0 + exp(-x)); }

/* W[rows[r], :] = G[r, :] + s[r] * d[:] for r < k; W and G C-contiguous with n columns (G may be W) */
void scatter_update(double *W, const double *G, const ptrdiff_t *rows, const double *s,
                    const double *d, ptrdiff_t k, ptrdiff_t n)
{
    for (ptrdiff_t r = 0; r < k; ++r) {
        double *w = W + rows[r] * n;
        const double *g = G + r * n;
        const double sr = s[r];
        for (ptrdiff_t j = 0; j < n; ++j) {
            const double p = sr * d[j];
            w[j] = g[j] + p;
        }
    }
}

/* a layer's steady state: B = ws + b, SF = logistic(k B), R = phi SF */
void layer(const double *ws, const double *b, double k, double phi, double *B, double *SF, double *R,
           ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; ++j) {
        const double Bj = ws[j] + b[j];
        const double Cj = k * Bj;
        const double sj = logistic(Cj);
        B[j] = Bj;
        SF[j] = sj;
        R[j] = phi * sj;
    }
}

/* the output's target phase: SigT = logistic(kt B + e), R = phi SigT */
void target(const double *B, const double *e, double kt, double phi, double *SigT, double *R, ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; ++j) {
        const double Cj = kt * B[j];
        const double sj = logistic(Cj + e[j]);
        SigT[j] = sj;
        R[j] = phi * sj;
    }
}

/* apical potentials and plateaus: A = A + c, SA = logistic(A) */
void apical(double *A, const double *c, double *SA, ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; ++j) {
        const double Aj = A[j] + c[j];
        A[j] = Aj;
        SA[j] = logistic(Aj);
    }
}

/* error terms D = (((gain SF) (1 - SF)) k) (sigma_t - sigma_f) of all layers and b += D; sigma_f, sigma_t:
   SA[j], SA[m + j] for the m hidden neurons, SF[j], ST[j - m] for the output's */
void deltas(const double *SF, const double *SA, const double *ST, const double *gain, const double *k,
            double *D, double *b, ptrdiff_t m, ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; ++j) {
        const double t2 = j < m ? SA[m + j] - SA[j] : ST[j - m] - SF[j];
"""
    + DELTA_UPDATE
    + r"""    }
}
"""
)

# -O3: gcc vectorises the update loop (with a run-time aliasing check) only from -O3 (gcc 12); no
# -ffast-math, no contraction into FMA: each product and sum rounded as numpy rounds them
_FLAGS = ("-O3", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math")
_LIBS = ("-lm",)


def _cache_dir() -> Path:
    root = os.environ.get("BRIAN_DENDRITE_RATE_CACHE")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "brian_dendrite" / "rate_kernel"


def _library(source: str = _SOURCE, stem: str = "rate_kernels") -> Path | None:
    """The library compiled from ``source`` (built into the cache if missing), or None if it cannot be built.

    Named ``{stem}_{hash}.so`` by a hash of the source, the flags and the compiler.
    """
    if os.name != "posix":
        return None
    cc = shlex.split(os.environ.get("CC") or "cc")
    tag = hashlib.sha256(
        "\0".join([source, *_FLAGS, *_LIBS, *cc, platform.machine(), sys.platform]).encode()
    ).hexdigest()[:16]
    folder = _cache_dir()
    lib = folder / f"{stem}_{tag}.so"
    if lib.exists():
        return lib
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            src, out = Path(tmp) / "kernel.c", Path(tmp) / "kernel.so"
            src.write_text(source)
            proc = subprocess.run([*cc, *_FLAGS, "-o", str(out), str(src), *_LIBS], capture_output=True, text=True,
                                  timeout=120)
            if proc.returncode != 0:
                logger.debug("rate kernel: compilation failed: %s", proc.stderr[-2000:])
                return None
            os.replace(out, lib)  # atomic: a concurrent process sees the whole file or none
    except (OSError, subprocess.SubprocessError) as exc:
        logger.debug("rate kernel: not built (%s)", exc)
        return None
    return lib


def disabled() -> bool:
    """Whether the compiled kernels are switched off (``BRIAN_DENDRITE_RATE_NATIVE=0``)."""
    return os.environ.get(ENV_VAR, "").strip().lower() in ("0", "false", "no", "off")


def load(source: str, signatures: dict, stem: str):
    """The functions ``signatures`` (name: argument types) of the library built from ``source``, or None.

    Each function returns None unless its name is in ``signatures["_restype"]`` (a dict name: type).
    Not checked here: the caller compares them with the numpy expressions before use.
    """
    lib = _library(source, stem)
    if lib is None:
        return None
    restypes = signatures.get("_restype", {})
    try:
        handle = ctypes.CDLL(str(lib))
        funcs = {name: getattr(handle, name) for name in signatures if name != "_restype"}
    except (OSError, AttributeError) as exc:
        logger.debug("rate kernels: not loaded (%s)", exc)
        return None
    for name, func in funcs.items():
        func.argtypes = signatures[name]
        func.restype = restypes.get(name)
    return SimpleNamespace(**funcs)


def _is_exact(k) -> bool:
    """Whether the kernels ``k`` give the bits of the numpy expressions they replace, on random data."""
    from ._logistic import logistic

    rng = np.random.default_rng(2017)

    def same(a, b):
        return a.tobytes() == b.tobytes()

    for n_rows, n_act, n in ((1, 1, 1), (5, 0, 7), (784, 150, 500), (500, 500, 10), (60, 13, 513)):
        W = rng.standard_normal((n_rows, n)) * 0.1
        rows = np.sort(rng.choice(n_rows, n_act, replace=False)).astype(np.intp)
        G = W[rows] + rng.standard_normal((n_act, n)) * 1e-3
        s = rng.random(n_act) * rng.choice([0.0, 1.0], n_act, p=[0.2, 0.8])
        d = rng.standard_normal(n) * 1e-4
        expected = W.copy()
        expected[rows] = G + np.multiply.outer(s, d)
        k.scatter_update(W.ctypes.data, G.ctypes.data, rows.ctypes.data, s.ctypes.data, d.ctypes.data, n_act, n)
        if not same(W, expected):
            return False
        expected = W + np.multiply.outer(W[:, 0].copy(), d)  # in place (G is W), over all rows
        s, rows = W[:, 0].copy(), np.arange(n_rows, dtype=np.intp)
        k.scatter_update(W.ctypes.data, W.ctypes.data, rows.ctypes.data, s.ctypes.data, d.ctypes.data, n_rows, n)
        if not same(W, expected):
            return False
    # wide and extreme arguments of the logistic (exp overflows, underflows, signed zeros, subnormals)
    x = np.concatenate([rng.standard_normal(20000) * scale for scale in (0.1, 1, 10, 100, 1000)]
                       + [np.array([0.0, -0.0, 5e-324, -5e-324, 709.8, -709.8, 745.2, -745.2, 36.7, -36.7,
                                    np.inf, -np.inf])])
    n = x.size
    b, e, c, gain, kv = (rng.standard_normal(n) for _ in range(5))
    out = [np.empty(n) for _ in range(3)]
    k.layer(x.ctypes.data, b.ctypes.data, 0.83, 0.2, *(o.ctypes.data for o in out), n)
    B = x + b
    sf = logistic(0.83 * B)
    if not (same(out[0], B) and same(out[1], sf) and same(out[2], 0.2 * sf)):
        return False
    k.target(x.ctypes.data, e.ctypes.data, 0.31, 0.2, out[0].ctypes.data, out[1].ctypes.data, n)
    st = logistic(0.31 * x + e)
    if not (same(out[0], st) and same(out[1], 0.2 * st)):
        return False
    A = x.copy()
    k.apical(A.ctypes.data, c.ctypes.data, out[0].ctypes.data, n)
    if not (same(A, x + c) and same(out[0], logistic(x + c))):
        return False
    m = n // 3
    SF, SA, ST = rng.random(n), rng.random(2 * m), rng.random(n - m)
    D, bias = np.empty(n), rng.standard_normal(n)
    t2 = np.concatenate([SA[m:] - SA[:m], ST - SF[m:]])
    expected_D = ((gain * SF) * (1.0 - SF)) * kv * t2
    expected_b = bias + expected_D
    k.deltas(SF.ctypes.data, SA.ctypes.data, ST.ctypes.data, gain.ctypes.data, kv.ctypes.data, D.ctypes.data,
             bias.ctypes.data, m, n)
    return same(D, expected_D) and same(bias, expected_b)


_SIGNATURES = {
    "scatter_update": [ctypes.c_void_p] * 5 + [ctypes.c_ssize_t] * 2,
    "layer": [ctypes.c_void_p] * 2 + [ctypes.c_double] * 2 + [ctypes.c_void_p] * 3 + [ctypes.c_ssize_t],
    "target": [ctypes.c_void_p] * 2 + [ctypes.c_double] * 2 + [ctypes.c_void_p] * 2 + [ctypes.c_ssize_t],
    "apical": [ctypes.c_void_p] * 3 + [ctypes.c_ssize_t],
    "deltas": [ctypes.c_void_p] * 7 + [ctypes.c_ssize_t] * 2,
}


@lru_cache(maxsize=1)
def kernels():
    """The compiled kernels (attributes ``scatter_update``, ``layer``, ``target``, ``apical``, ``deltas``;
    arguments: array addresses, scalars, sizes), or None.

    None when disabled (``BRIAN_DENDRITE_RATE_NATIVE=0``), when they cannot be built
    or loaded, or when one of them does not give numpy's bits (module docstring).
    """
    if disabled():
        return None
    k = load(_SOURCE, _SIGNATURES, "rate_kernels")
    if k is None:
        return None
    if not _is_exact(k):
        logger.debug("rate kernels: not the bits of numpy here, not used")
        return None
    return k

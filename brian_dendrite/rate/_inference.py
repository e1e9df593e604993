"""Batched inference of the rate network without apical conductance: the test pass, tightened.

With ``g_A = 0`` (or no hidden layer) the forward phase is one bottom-up sweep
(:meth:`RateNetwork._sweep`), and a prediction needs only the output layer's
somatic potential (or rate). :func:`predict` computes the same floating-point
operations as ``RateNetwork._phase`` on the same blocks of images (hence the
same bits, see ``tests/test_rate_speed.py``), but

- it skips what a prediction does not use: the apical potentials of the hidden
  layers (a ``(block, n_out) x (n_out, n_hidden)`` product per hidden layer) and
  the output rates for the voltage readout;
- every elementwise step runs in place on one preallocated array per layer
  (``B = W s + b`` becomes ``C = k B``, then ``sigma(C)``, ``phi sigma(C)`` and
  ``psp_scale r``, each written over the last), instead of a new temporary per
  operation. Multiplying by a scalar is commutative in floating point, so
  ``B *= k`` gives ``k * B`` bit for bit;
- the matrix products ``s @ W`` write into preallocated arrays (``out=``; the
  same BLAS ``dgemm`` call on the same operands).
"""

from __future__ import annotations

import numpy as np

from ._logistic import logistic as _sigma

__all__ = ["outputs", "predict"]


def outputs(net, X: np.ndarray, readout: str, block: int) -> np.ndarray:
    """The output layer's somatic potentials (``readout="voltage"``) or rates of the images ``X``.

    ``X`` validated, of shape ``(n, n_input)``; computed in blocks of ``block`` rows,
    bit for bit as ``net._phase(net._input_psp(X[i:i+block]))[1][-1].C`` (or ``.rate``).
    Only for ``net.g_A == 0`` or a network without hidden layers.
    """
    n = X.shape[0]
    rows = min(block, n)
    psp, ratio, phi = net.psp_scale, net._drive_ratio, net.phi
    n_layers, n_hidden = net.n_layers, net.n_hidden
    start_psp = psp * phi
    S_in = np.empty((rows, net.sizes[0]))
    acts = [np.empty((rows, size)) for size in net.sizes[1:-1]]
    out = np.empty((n, net.sizes[-1]))
    for i in range(0, n, block):
        m = min(block, n - i)
        s = np.multiply(start_psp, X[i : i + m], out=S_in[:m], dtype=float)  # as _input_psp
        for lay in range(n_layers):
            a = acts[lay][:m] if lay < n_hidden else out[i : i + m]
            np.matmul(s, net._Wt[lay], out=a)
            if ratio != 1.0:
                np.multiply(ratio, a, out=a)
            np.add(a, net._b[lay], out=a)  # B
            np.multiply(net.k_B if lay < n_hidden else net.k_D, a, out=a)  # C
            if lay == n_layers - 1 and readout == "voltage":
                break
            _sigma(a, out=a)
            np.multiply(phi, a, out=a)  # rate
            if psp != 1.0 and lay < n_hidden:
                np.multiply(psp, a, out=a)  # the PSP of the next layer's input
            s = a
    return out


def predict(net, X: np.ndarray, readout: str, block: int) -> np.ndarray:
    """Predicted classes: the argmax of :func:`outputs` (specification 1.12)."""
    return np.argmax(outputs(net, X, readout, block), axis=1)

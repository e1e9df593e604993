"""The loop of :func:`~brian_dendrite.rate._online.train_online` with the compiled kernels of :mod:`._native`.

The same steps as the numpy loop of :mod:`._online`, in the same order, with the
same BLAS products (the gathered ``W[0] s_in``, ``W s`` of the layers above, the
apical ``Y r``), but each run of elementwise operations between two products is
one call of a C kernel instead of three to seven numpy calls, and the update of
the first layer's active rows is fused with their scatter (``scatter_update``).
The kernels compute each element with the operations, in the order, of the numpy
expressions they replace (checked bit for bit when they are loaded), so the
weights are the same bits as with the numpy loop and ``train_example``.

:meth:`RateNetwork.train` calls :func:`._online_c.train_compiled`, which runs this
loop in C, a block of examples per call, with the same kernels and BLAS calls
(the same bits); it hands the examples and the networks it does not support back
to :func:`train_native`.
"""

from __future__ import annotations

import numpy as np

from ._online import _BLOCK, _block_inputs, _buffers, add_outer, apical_drive, first_layer_drive

__all__ = ["train_native"]


def train_native(net, X, y, idx, K) -> None:  # long: the per-example loop keeps every array in a local
    """Train ``net`` on ``X[idx]``, ``y[idx]`` in order with the kernels ``K`` (:func:`._native.kernels`)."""
    f = _buffers(net)
    n_hid, views = f["n_hid"], f["views"]
    SF, D = f["SF"], f["D"]
    SF_l, D_l = views(SF), views(D)
    AA, SA, cc = f["AA"], f["SA"], f["cc"]
    cuts = np.cumsum((0, *net.sizes[1:-1])).tolist()
    Af_h = [AA[cuts[h] : cuts[h + 1]] for h in range(len(cuts) - 1)]
    At_h = [AA[n_hid + cuts[h] : n_hid + cuts[h + 1]] for h in range(len(cuts) - 1)]
    B, R, S, WS = f["B"], f["R"], f["S"], f["WS"]
    Rt, Sfb, SigT_out = f["Rt"], f["Sfb"], f["SigT_out"]
    gather, outer = f["gather"], f["outers"][0]
    Wt, b_all = net._Wt, net._b_all
    n_layers, n_hidden = net.n_layers, net.n_hidden
    k_B, k_D, k_D_t, phi = net.k_B, net.k_D, net._k_D_t, net.phi
    psp, ratio = net.psp_scale, net._drive_ratio
    scale_drive, scale_psp = ratio != 1.0, psp != 1.0
    symmetric = net._symmetric
    dense_from = 0.5 * net.sizes[0]
    W0, WS0, R0, S0, d0 = Wt[0], WS[0], R[0], S[0], D_l[0]
    R_out = R[-1]
    S_post = [S[lay] if scale_psp else R[lay] for lay in range(n_layers)]

    def p(a):  # the address of a buffer that lives as long as this call
        return a.ctypes.data

    def c(func, *args):  # the arguments as ctypes objects: ctypes passes them on without converting
        return tuple(t(v) for t, v in zip(func.argtypes, args, strict=True))

    layer, target, apical, deltas, scatter = K.layer, K.target, K.apical, K.deltas, K.scatter_update
    # the kernels' arguments that are the same for every example
    first = c(layer, p(WS0), p(net._b[0]), k_B if n_hidden else k_D, phi, p(B[0]), p(SF_l[0]), p(R0), W0.shape[1])
    sweep = [(S_post[lay - 1], Wt[lay], WS[lay], R[lay], S[lay],
              c(layer, p(WS[lay]), p(net._b[lay]), k_B if lay < n_hidden else k_D, phi, p(B[lay]), p(SF_l[lay]),
                p(R[lay]), Wt[lay].shape[1]))
             for lay in range(1, n_layers)]
    targets = [c(target, p(B[-1]), p(row), k_D_t, phi, p(SigT_out), p(Rt), net.sizes[-1]) for row in f["kE"]]
    apical_args = c(apical, p(AA), p(cc), p(SA), AA.size)
    delta_args = c(deltas, p(SF), p(SA), p(SigT_out), p(f["gain"]), p(f["k"]), p(D), p(b_all), n_hid, D.size)
    W0_p, G_p, d0_p, n0 = p(W0), p(gather), p(d0), W0.shape[1]
    all_rows = [np.arange(n, dtype=np.intp) for n in net.sizes]
    upper = [c(scatter, p(Wt[lay]), p(Wt[lay]), p(all_rows[lay]), p(S_post[lay - 1]), p(D_l[lay]), *Wt[lay].shape)
             for lay in range(1, n_layers)]
    mul, matmul = np.multiply, np.matmul
    start_psp = psp * phi
    YT = [y_.T for y_ in net._Y]
    for start in range(0, len(idx), _BLOCK):
        block = idx[start : start + _BLOCK]
        S_in, cols, vals, offsets = _block_inputs(X, block, start_psp)
        cols = cols.astype(np.intp, copy=False)
        cols_p, vals_p, isz_c, isz_v = p(cols), p(vals), cols.itemsize, vals.itemsize
        labels = y[block].tolist()
        for i in range(len(block)):
            o0, o1 = offsets[i], offsets[i + 1]
            k = o1 - o0
            # first layer: W[0] s_in over the active inputs only (gathered rows, as _first_layer)
            G = first_layer_drive(W0, WS0, gather, S_in[i], cols, vals, o0, o1, dense_from)
            if scale_drive:
                mul(ratio, WS0, out=WS0)
            layer(*first)  # B = W s + b, sigma(k B), phi sigma(k B)
            if scale_psp:
                mul(psp, R0, out=S0)
            for s_, w_, ws, R_, S_, args in sweep:
                matmul(s_, w_, out=ws)
                if scale_drive:
                    mul(ratio, ws, out=ws)
                layer(*args)
                if scale_psp:
                    mul(psp, R_, out=S_)
            # target phase of the output, then the apical potentials of both phases
            target(*targets[labels[i]])
            if n_hidden:
                YT = apical_drive(net, YT, R_out, Rt, Sfb, Af_h, At_h)
                apical(*apical_args)
            deltas(*delta_args)  # the error terms of all layers, and b += delta
            # the weights: the active rows of W[0] (updated and scattered back in one pass), then the others
            if G is None:
                add_outer(W0, S_in[i], d0, outer)
            elif k:
                scatter(W0_p, G_p, cols_p + isz_c * o0, vals_p + isz_v * o0, d0_p, k, n0)
            for args in upper:
                scatter(*args)
            if symmetric:
                net._refresh_symmetric()
            net.examples_seen += 1

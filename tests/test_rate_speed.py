"""The fast paths of the rate model give the same bits as the straightforward computation.

No timing here (``benchmarks/benchmark.py`` measures): these tests pin that the
tightened loops of ``brian_dendrite.rate._online`` (training) and
``brian_dendrite.rate._inference`` (the test pass) compute exactly what the
per-example methods of :class:`RateNetwork` compute.
"""

from __future__ import annotations

import numpy as np
import pytest

from brian_dendrite import CellParameters, ModelParameters, NetworkParameters
from brian_dendrite.model import initial_weights
from brian_dendrite.rate import RateNetwork, _inference, _native, _online
from brian_dendrite.rate import network as rate_network

CONFIGS = [((), {}), ((500,), {}), ((500, 100), {}), ((500,), {"kernel": "truncated"}),
           ((60,), {"feedback_spiking": False, "kernel": "truncated"})]


def make(hidden=(500,), **extra):
    rates = {0: (0.19,), 1: (0.21, 0.21), 2: (0.23, 0.23, 0.12)}[len(hidden)]
    cell = CellParameters(kernel=extra.pop("kernel")) if "kernel" in extra else CellParameters()
    p = ModelParameters(cell=cell, network=NetworkParameters(hidden=tuple(hidden), learning_rates=rates, **extra))
    return p, initial_weights(p, np.random.default_rng(7))


def images(n, seed=1, n_input=784):
    """MNIST-like inputs (mostly zero pixels), with a blank and a dense image."""
    g = np.random.default_rng(seed)
    x = g.random((n, n_input))
    x[g.random((n, n_input)) < 0.8] = 0.0
    x[2] = 0.0
    x[5] = 0.6
    return x


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("psp", [0.2, 0.102, 0.0])
def test_block_inputs_match_nonzero_of_the_psps(psp, dtype):
    X = images(300, seed=3).astype(dtype)
    X[10, 100] = 5e-324 if dtype == np.float64 else 0.0  # 0 once scaled (psp < 0.5): not active
    idx = np.array([0, 299, 2, 5, 10, 17, 17, 40])
    S, cols, vals, offsets = _online._block_inputs(X, idx, psp)
    ref = psp * X[idx].astype(float)
    np.testing.assert_array_equal(S, ref)
    for i in range(len(idx)):
        nz = np.flatnonzero(ref[i])
        np.testing.assert_array_equal(cols[offsets[i] : offsets[i + 1]], nz)
        assert vals[offsets[i] : offsets[i + 1]].tobytes() == ref[i][nz].tobytes()
    assert offsets[-1] == len(cols) == len(vals)


@pytest.mark.parametrize("readout", ["voltage", "rate"])
@pytest.mark.parametrize("hidden, extra", CONFIGS, ids=str)
def test_inference_outputs_are_the_bits_of_the_phase(hidden, extra, readout):
    p, w = make(hidden, **extra)
    net = RateNetwork(p, w)
    net.train(images(30, seed=5), np.arange(30) % 10)  # weights and biases off their initial values
    block = rate_network._BLOCK
    X = images(block + 77, seed=9)  # two blocks, the second one partial
    got = _inference.outputs(net, X, readout, block)
    for i in range(0, len(X), block):
        out = net._phase(net._input_psp(X[i : i + block]))[1][-1]
        ref = out.C if readout == "voltage" else out.rate
        assert got[i : i + block].tobytes() == np.ascontiguousarray(ref).tobytes()
    np.testing.assert_array_equal(net.predict(X, readout), np.argmax(got, axis=1))
    # integer pixels (0 or 1) are converted as _input_psp converts them
    Xi = (X > 0.5).astype(np.uint8)
    ref = net._phase(net._input_psp(Xi[:50]))[1][-1]
    ref = ref.C if readout == "voltage" else ref.rate
    assert _inference.outputs(net, Xi[:50], readout, block).tobytes() == ref.tobytes()


PATHS = ["native", "blas", "numpy"]  # the compiled kernels; the numpy loop with BLAS or numpy rank-1 updates


def use_path(path, monkeypatch):
    if path == "native":
        if _native.kernels() is None:
            pytest.skip("the compiled kernels are not available here (no C compiler?)")
        return
    monkeypatch.setattr(rate_network, "native_kernels", lambda: None)
    if path == "numpy":
        monkeypatch.setattr(_online, "_gemm_is_exact", lambda: False)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("hidden, extra", CONFIGS, ids=str)
def test_training_loop_matches_the_reference_update(hidden, extra, path, monkeypatch):
    """train() (the loop of rate._online) against the per-example phases and a plain numpy update, bit for bit.

    The reference computes each example's steady states with the network's own
    methods (``_first_layer``: ``W[0] s_in`` over the active inputs, whose
    grouping of the sum the loop must keep; ``_example``; ``_deltas``) and adds
    the update as ``W + outer(s, delta)``, ``b + delta`` in new arrays: no
    buffer, no gather/scatter, no BLAS rank-1 update.
    """
    use_path(path, monkeypatch)
    p, w = make(hidden, **extra)
    X = images(_online._BLOCK + 20, seed=11).astype(np.float32)  # float32 pixels: converted per block
    y = (np.arange(len(X)) * 7) % 10
    fast = RateNetwork(p, w)
    ref = RateNetwork(p, w)
    fast.train(X, y)
    for i in range(len(X)):
        s_in = ref._input_psp(X[i])
        B0, _ = ref._first_layer(s_in)
        s_pre, forward, target = ref._example(s_in, int(y[i]), B0)
        for lay, (s, d) in enumerate(zip(s_pre, ref._deltas(forward, target), strict=True)):
            ref._Wt[lay][...] = ref._Wt[lay] + np.multiply.outer(s, d)
            ref._b[lay][...] = ref._b[lay] + d
    for u, v in zip(fast.weights.W + fast.weights.b, ref.weights.W + ref.weights.b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert fast.examples_seen == len(X)


@pytest.mark.parametrize("path", PATHS)
def test_training_loop_with_symmetric_feedback(path, monkeypatch):
    """The loop re-reads the feedback weights that every update recomputes (noisy_symmetric: fresh noise)."""
    use_path(path, monkeypatch)
    p, w = make((500,), feedback="noisy_symmetric")
    X = images(40, seed=13)
    y = np.arange(40) % 10
    a = RateNetwork(p, w, rng=np.random.default_rng(4))
    b = RateNetwork(p, w, rng=np.random.default_rng(4))
    a.train(X, y)
    for i in range(len(X)):
        b.train_example(X[i], y[i])
    for name in ("W", "b", "Y"):
        for u, v in zip(getattr(a.weights, name), getattr(b.weights, name), strict=True):
            np.testing.assert_array_equal(u, v)


def test_native_kernels_can_be_disabled(monkeypatch):
    monkeypatch.setenv(_native.ENV_VAR, "0")
    _native.kernels.cache_clear()
    try:
        assert _native.kernels() is None
    finally:
        monkeypatch.delenv(_native.ENV_VAR)
        _native.kernels.cache_clear()


def test_native_kernels_round_like_numpy():
    """The check the kernels pass before they are used (``_native._is_exact``), run here on its own."""
    kernels = _native.kernels()
    if kernels is None:
        pytest.skip("the compiled kernels are not available here (no C compiler?)")
    assert _native._is_exact(kernels)

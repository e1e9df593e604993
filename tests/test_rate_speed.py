"""The fast paths of the rate model give the same bits as the straightforward computation.

No timing here (``benchmarks/benchmark.py`` measures): these tests pin that the
tightened loops of ``brian_dendrite.rate._online`` (training) and
``brian_dendrite.rate._inference`` (the test pass) compute exactly what the
per-example methods of :class:`RateNetwork` compute.
"""

from __future__ import annotations

import numpy as np
import pytest
from brian2 import ms

from brian_dendrite import CellParameters, ModelParameters, NetworkParameters
from brian_dendrite.datasets import load_mnist
from brian_dendrite.model import Weights, initial_weights, load_model
from brian_dendrite.rate import (
    ConvergenceError,
    RateNetwork,
    _apical_native,
    _apical_solver,
    _inference,
    _native,
    _online,
    _online_apical,
    _online_c,
)
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


# the loop in C (_online_c); the Python loop on the compiled kernels (_online_native); the numpy loop with BLAS
# or numpy rank-1 updates (_online)
PATHS = ["compiled", "native", "blas", "numpy"]


def use_path(path, monkeypatch):
    if path in ("compiled", "native"):
        if _native.kernels() is None:
            pytest.skip("the compiled kernels are not available here (no C compiler?)")
        if path == "native":
            monkeypatch.setattr(_online_c, "library", lambda: None)
            return
        if _online_c.library() is None:
            pytest.skip("the compiled loop is not available here (numpy's cblas_dgemv not found?)")
        original = _online_c.setup

        def setup(net, *args):  # the C loop is used, not train_native (unless symmetric feedback)
            found = original(net, *args)
            assert found is not None or net._symmetric
            return found

        monkeypatch.setattr(_online_c, "setup", setup)
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
    reference_training(ref, X, y)
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


def same_bits(a, b):
    """Every weight, bias, feedback weight and apical bias of ``a`` and ``b`` byte for byte, and examples_seen."""
    for name in ("W", "b", "Y", "c"):
        for u, v in zip(getattr(a.weights, name), getattr(b.weights, name), strict=True):
            assert u.tobytes() == v.tobytes(), name
    assert a.examples_seen == b.examples_seen


def test_compiled_loop_hands_odd_examples_to_the_python_loop(monkeypatch):
    """Examples whose first layer numpy does not compute as a gemv over the gathered rows (fewer than two active
    inputs; at least half of them active) run through train_native, the others in C; the bits of the numpy loop."""
    if _online_c.library() is None or _native.kernels() is None:
        pytest.skip("the compiled loop is not available here")
    p, w = make((60, 20), kernel="truncated")  # psp_scale, drive ratio and fb_scale != 1
    X = images(_online._BLOCK + 30, seed=17)
    X[7] = 0.0
    X[7, 300] = 0.4  # one active input: numpy's loop without BLAS
    X[8] = 0.0
    X[8, [3, 700]] = 0.9  # two: the smallest gemv
    X[9] = 0.0
    X[9, :391] = 0.5  # 391 of 784: gathered rows
    X[10] = 0.0
    X[10, 1:393] = 0.5  # 392: dense
    X[_online._BLOCK + 3] = 0.0  # a blank image in the second block
    y = (np.arange(len(X)) * 3) % 10
    handed = []
    original = _online_c.train_native

    def train_native(net, X_, y_, idx, K):
        handed.extend(idx.tolist())
        original(net, X_, y_, idx, K)

    monkeypatch.setattr(_online_c, "train_native", train_native)
    fast = RateNetwork(p, w)
    fast.train(X, y, test_every=200)
    assert handed == [2, 5, 7, 10, _online._BLOCK + 3]
    monkeypatch.setattr(rate_network, "native_kernels", lambda: None)
    ref = RateNetwork(p, w)
    ref.train(X, y, test_every=200)
    same_bits(fast, ref)


def _compiled_or_skip(find, what):
    """``find()`` (a compiled library and what it needs), or skip the test where it is not available."""
    found = find()
    if found is None:
        pytest.skip(f"{what} is not available here")
    return found


def test_compiled_loop_checks_its_products():
    """The first layer's gemv (built in C per example) is gemv_spec's and np.matmul's; a wrong one is refused."""
    found = _compiled_or_skip(_online_c.library, "the compiled loop")
    lib = found[0]
    p, w = make((500, 100))
    net = RateNetwork(p, w)
    P, keep = _online_c.setup(net, *found)
    W0, gather, ws0 = net._Wt[0], keep["gather"], keep["WS"][0]
    assert _online_c._first_layer_ok(lib, P, W0, gather, ws0)
    # a product of the layers above with another matrix than numpy's fails its check
    x, M, out = keep["R"][0], net._Wt[1], keep["WS"][1]
    M2 = M.copy()
    M2[1, 1] *= 1.0 + 1e-6
    assert _apical_solver.check_gemv(lib, P, P.up[1], x, M, out)
    assert not _apical_solver.check_gemv(lib, P, P.up[1], x, M2, out)
    # symmetric feedback: the Python loop
    p, w = make((500,), feedback="symmetric")
    assert _online_c.setup(RateNetwork(p, w), *found) is None


def _mnist_case(model, n_train):
    """Parameters, seed-3 initial weights, *n_train* MNIST training digits and 100 test digits (or skip)."""
    try:
        train, test = load_mnist("train", download=False), load_mnist("test", download=False)
    except (OSError, ValueError) as exc:
        pytest.skip(f"MNIST not available: {exc}")
    p = load_model(model)
    w = initial_weights(p, np.random.default_rng(3))
    return p, w, train.images[:n_train], train.labels[:n_train], test.images[:100], test.labels[:100]


def _train_each_path(monkeypatch, set_path, paths, p, w, X, y, test_set, test_every, record):
    """Train a fresh network on each path (``set_path(path, monkeypatch_context)``): (net, history, records)."""
    runs = []
    for path in paths:
        with monkeypatch.context() as m:
            set_path(path, m)
            net = RateNetwork(p, w, rng=np.random.default_rng(5))
            seen = []
            history = net.train(X, y, test_every=test_every, test_set=test_set,
                                callback=lambda n_, k, e, seen=seen: seen.append(record(n_, k, e)))
        runs.append((net, history, seen))
    return runs


@pytest.mark.parametrize("model", ["one_hidden", "two_hidden", "sparse_feedback", "one_hidden_truncated_kernel"])
def test_training_on_mnist_matches_the_numpy_loop(model, monkeypatch):
    """The paper's g_A = 0 models on real MNIST digits: weights, test errors, callbacks as the numpy loop's."""
    p, w, X, y, tX, ty = _mnist_case(model, 400)
    runs = _train_each_path(monkeypatch, use_path, ("numpy", "compiled"), p, w, X, y, (tX, ty), 150,
                            lambda n_, k, e: (k, e, n_.examples_seen))
    (a, hist_a, seen_a), (b, hist_b, seen_b) = runs
    assert hist_a == hist_b and seen_a == seen_b and [k for k, _, _ in seen_a] == [150, 300, 400]
    assert [n for _, _, n in seen_b] == [150, 300, 400]
    same_bits(a, b)


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


# ---------------------------------------------------------------------------------------------------------------
# g_A > 0: the fixed points of training in rate._online_apical (C iteration, or kernels between numpy products)

APICAL_PATHS = ["solver", "kernels", "numpy"]  # the compiled iteration; the Python loop on kernels; HEAD's loop


def use_apical_path(path, monkeypatch):
    if path == "numpy":  # train() falls back to the per-example methods, the code the fast paths must match
        monkeypatch.setattr(rate_network, "native_kernels", lambda: None)
        return
    if _native.kernels() is None or _apical_solver.apical_kernels() is None:
        pytest.skip("the compiled kernels are not available here (no C compiler?)")
    if path == "solver" and _apical_solver.solver() is None:
        pytest.skip("numpy's cblas_dgemv not found here")
    if path == "kernels":
        monkeypatch.setattr(_online_apical, "_compiled", lambda *args: None)
    if path == "solver":  # the compiled iteration is used, not the Python loop (unless symmetric feedback)
        original = _online_apical._compiled

        def compiled(net, *args):
            found = original(net, *args)
            assert found is not None or net._symmetric
            return found

        monkeypatch.setattr(_online_apical, "_compiled", compiled)


def make_apical(hidden, g_A=0.6, scale=1.0, **extra):
    """A network with apical conductance; ``scale`` multiplies the feedback weights (loop gain)."""
    rates = {1: (0.21, 0.21), 2: (0.23, 0.23, 0.12), 3: (0.2, 0.2, 0.2, 0.1)}[len(hidden)]
    cell = CellParameters(g_A=g_A / ms, **({"kernel": extra.pop("kernel")} if "kernel" in extra else {}))
    p = ModelParameters(cell=cell, network=NetworkParameters(hidden=tuple(hidden), learning_rates=rates, **extra))
    w = initial_weights(p, np.random.default_rng(7))
    return p, Weights(W=w.W, b=w.b, Y=[scale * y for y in w.Y], c=w.c, Y_mask=w.Y_mask)


def reference_training(ref, X, y):
    """HEAD's steps of one example (``_first_layer``, ``_example`` with ``solve_fixed_point``, ``_deltas``)
    and a plain numpy update, example by example."""
    for i in range(len(X)):
        s_in = ref._input_psp(X[i])
        B0, _ = ref._first_layer(s_in)
        s_pre, forward, target = ref._example(s_in, int(y[i]), B0)
        for lay, (s, d) in enumerate(zip(s_pre, ref._deltas(forward, target), strict=True)):
            ref._Wt[lay][...] = ref._Wt[lay] + np.multiply.outer(s, d)
            ref._b[lay][...] = ref._b[lay] + d
        ref.examples_seen += 1


def assert_same_weights(a, b):
    for name in ("W", "b", "Y", "c"):
        for u, v in zip(getattr(a.weights, name), getattr(b.weights, name), strict=True):
            np.testing.assert_array_equal(u, v)
    assert a.examples_seen == b.examples_seen


APICAL_CONFIGS = [  # (hidden, g_A, feedback scale, network/cell extras)
    ((60, 20), 0.6, 10.0, {}),  # strong loop gain: Newton steps kept and rejected, beta halved
    ((60, 20), 0.05, 1.0, {"kernel": "truncated"}),  # psp_scale and drive ratio != 1
    ((60, 20), 0.6, 3.0, {"feedback_spiking": False, "kernel": "truncated"}),  # fb_scale 1, psp_scale not
    ((40, 30, 20), 0.6, 3.0, {"feedback_bias": True}),  # three hidden layers, apical bias c
    ((60,), 0.6, 3.0, {}),
]


@pytest.mark.parametrize("path", APICAL_PATHS)
@pytest.mark.parametrize("hidden, g_A, scale, extra", APICAL_CONFIGS, ids=str)
def test_apical_training_loop_matches_the_reference(hidden, g_A, scale, extra, path, monkeypatch):
    """train() with g_A > 0 against HEAD's per-example fixed points and a plain update, bit for bit."""
    use_apical_path(path, monkeypatch)
    newton = []
    original = _online_apical._newton

    def spy(*args):
        out = original(*args)
        newton.append(out is not None)
        return out

    monkeypatch.setattr(_online_apical, "_newton", spy)
    p, w = make_apical(hidden, g_A, scale, **extra)
    X = images(70, seed=11).astype(np.float32)
    y = (np.arange(len(X)) * 7) % 10
    fast, ref = RateNetwork(p, w), RateNetwork(p, w)
    fast.train(X, y)
    reference_training(ref, X, y)
    assert_same_weights(fast, ref)
    if path != "numpy" and scale == 10.0:  # the Newton branch was taken, with steps kept and rejected
        assert any(newton) and not all(newton)


@pytest.mark.parametrize("path", ["kernels", "solver"])
def test_apical_training_loop_with_symmetric_feedback(path, monkeypatch):
    """Symmetric feedback is recomputed after every update (noisy: fresh noise); the loop re-reads it."""
    use_apical_path(path, monkeypatch)
    p, w = make_apical((60, 20), 0.6, 1.0, feedback="noisy_symmetric")
    X, y = images(40, seed=13), np.arange(40) % 10
    a = RateNetwork(p, w, rng=np.random.default_rng(4))
    b = RateNetwork(p, w, rng=np.random.default_rng(4))
    a.train(X, y)
    for i in range(len(X)):
        b.train_example(X[i], y[i])
    assert_same_weights(a, b)


@pytest.mark.parametrize("path", ["kernels", "solver"])
def test_apical_convergence_error_is_raised_as_before(path, monkeypatch):
    """Too few iterations: the same ConvergenceError (message included) after the same examples."""
    p, w = make_apical((60, 20), 0.6, 10.0)
    X, y = images(30, seed=17), np.arange(30) % 10
    errors, nets = [], []
    for which in ("numpy", path):
        with monkeypatch.context() as m:
            use_apical_path(which, m)
            net = RateNetwork(p, w, max_iter=4)
            with pytest.raises(ConvergenceError) as info:
                net.train(X, y)
        errors.append(str(info.value))
        nets.append(net)
    assert errors[0] == errors[1] and "did not converge in 4 iterations" in errors[0]
    assert_same_weights(*nets)


@pytest.mark.parametrize("model", ["two_hidden_apical_0_05", "two_hidden_apical_0_6"])
def test_apical_training_on_mnist_matches_the_per_example_loop(model, monkeypatch):
    """The paper's g_A > 0 models on real MNIST digits: weights and test errors as HEAD's loop gives them."""
    p, w, X, y, tX, ty = _mnist_case(model, 300)
    runs = _train_each_path(monkeypatch, use_apical_path, ("numpy", "solver"), p, w, X, y, (tX, ty), 120,
                            lambda _n, k, e: k)
    (a, hist_a, seen_a), (b, hist_b, seen_b) = runs
    assert hist_a == hist_b and seen_a == seen_b == [120, 240, 300]
    assert_same_weights(a, b)


def test_apical_gemv_is_numpys_matmul():
    """The products of the compiled iteration: numpy's cblas_dgemv with numpy's arguments, for both layouts."""
    found = _compiled_or_skip(_apical_solver.solver, "the compiled iteration")
    lib = found[0]
    P = _apical_solver.PhaseStruct()
    P.gemv, P.ilp64 = found[1]
    rng = np.random.default_rng(0)
    for n, p_ in ((500, 100), (100, 10), (10, 500), (10, 100), (3, 2)):
        for M in (rng.standard_normal((n, p_)), np.ascontiguousarray(rng.standard_normal((p_, n))).T):
            x, out = np.empty(n), np.empty(p_)
            spec = _apical_solver.gemv_spec(x, M, out)
            assert spec is not None
            assert _apical_solver.check_gemv(lib, P, spec, x, M, out)
            # another product fails the check (one weight changed in its seventh digit)
            M2 = M.copy(order="K")
            M2[1, 1] *= 1.0 + 1e-6
            assert not _apical_solver.check_gemv(lib, P, _apical_solver.gemv_spec(x, M2, out), x, M, out)
    # where numpy does not call gemv, neither does the compiled loop
    assert _apical_solver.gemv_spec(np.empty(1), np.empty((1, 5)), np.empty(5)) is None
    assert _apical_solver.gemv_spec(np.empty(5), np.empty((5, 1)), np.empty(1)) is None
    assert _apical_solver.gemv_spec(np.empty(6), np.empty((6, 10))[:, ::2], np.empty(5)) is None


def test_apical_sum_is_numpys_and_kernels_round_like_numpy():
    """The checks the compiled code passes before it is used, run here on their own."""
    lib = _apical_solver.apical_kernels()
    if lib is None:
        pytest.skip("the compiled kernels are not available here (no C compiler?)")
    assert _apical_native._is_exact(lib)
    assert _apical_solver._sum_is_numpys(lib)
    a = np.array([1e16, 1.0, -1e16, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1.0])  # grouping-dependent value
    assert lib.np_sum(a.ctypes.data, a.size) == np.add.reduce(a) == 4.0 != sum(a.tolist())  # 5.0 in order

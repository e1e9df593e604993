"""The rate-based network (specification section 4) against the model equations."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

import numpy as np
import pytest
from brian2 import Hz, ms

from brian_dendrite import CellParameters, ModelParameters, NetworkParameters
from brian_dendrite.model import Weights, initial_weights
from brian_dendrite.rate import ConvergenceError, RateNetwork
from brian_dendrite.rate._fixed_point import loop_jacobian

SEED = 20171205
MNIST = Path(
    os.environ.get("BRIAN_DENDRITE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist")
)


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def make(hidden=(500,), cell=None, weights_seed=SEED, **network):
    rates = {0: (0.19,), 1: (0.21, 0.21), 2: (0.23, 0.23, 0.12)}[len(hidden)]
    p = ModelParameters(
        cell=cell or CellParameters(),
        network=NetworkParameters(hidden=tuple(hidden), learning_rates=rates, **network),
    )
    w = initial_weights(p, np.random.default_rng(weights_seed))
    return p, w


def random_images(n, seed=1, n_input=784):
    """MNIST-like inputs: mostly zero pixels, the rest in (0, 1]."""
    g = np.random.default_rng(seed)
    x = g.random((n, n_input))
    x[g.random((n, n_input)) < 0.8] = 0.0
    return x


# ---------------------------------------------------------------------------------------------
# MNIST (IDX format)


def _read_idx(name, count=None):
    path = MNIST / name
    if not path.exists():
        pytest.skip(f"MNIST file {path} not found (set BRIAN_DENDRITE_DATA)")
    with gzip.open(path, "rb") as fh:
        header = fh.read(4)
        ndim = header[3]
        assert header[:2] == b"\x00\x00" and header[2] == 0x08, f"{path}: not an unsigned-byte IDX file"
        dims = [int.from_bytes(fh.read(4), "big") for _ in range(ndim)]
        if count is not None:
            dims[0] = min(dims[0], count)
        data = np.frombuffer(fh.read(int(np.prod(dims))), dtype=np.uint8)
    return data.reshape(dims[0], -1) if ndim > 1 else data


def mnist(kind, count):
    prefix = "train" if kind == "train" else "t10k"
    images = _read_idx(f"{prefix}-images-idx3-ubyte.gz", count) / 255.0
    labels = _read_idx(f"{prefix}-labels-idx1-ubyte.gz", count).astype(int)
    return images, labels


# ---------------------------------------------------------------------------------------------
# steady states


def test_hidden_soma_is_kB_times_basal_without_apical_conductance():
    p, w = make()
    net = RateNetwork(p, w)
    x = random_images(1)[0]
    q = net.example_quantities(x, 3)
    s_in = 0.2 * x  # full kernel: PSP = rate = phi*pixel
    B = w.W[0] @ s_in + w.b[0]
    np.testing.assert_allclose(q["B_f"][0], B, rtol=1e-12)
    np.testing.assert_allclose(q["C_f"][0], p.cell.k_B * B, rtol=1e-12)
    np.testing.assert_allclose(q["C_t"][0], q["C_f"][0])  # no apical conductance: hidden unchanged
    np.testing.assert_allclose(q["rates_f"][0], 0.2 * sig(p.cell.k_B * B), rtol=1e-12)
    np.testing.assert_allclose(q["C_f"][1], p.cell.k_D * q["B_f"][1], rtol=1e-12)
    np.testing.assert_allclose(q["s_pre_f"][1], q["rates_f"][0], rtol=1e-15)
    np.testing.assert_allclose(q["A_f"][0], w.Y[0] @ q["rates_f"][1] + w.c[0], rtol=1e-12)
    np.testing.assert_allclose(q["alpha_t"][0], sig(q["A_t"][0]), rtol=1e-12)


def test_truncated_kernel_scales_psps():
    p, w = make(cell=CellParameters(kernel="truncated"))
    net = RateNetwork(p, w)
    # the sums of the sampled kernel that the spiking network's dendrites/rule and soma see
    tau_L, tau_s = 10.0, 3.0
    kappa = (np.exp(-np.arange(11) / tau_L) - np.exp(-np.arange(11) / tau_s)) / (tau_L - tau_s)
    assert net.psp_scale == pytest.approx(kappa[1:11].sum(), rel=1e-9)  # 0.5104
    assert net.drive_scale == pytest.approx(kappa[0:10].sum(), rel=1e-9)  # 0.4630
    x = random_images(1)[0]
    q = net.example_quantities(x, 0)
    np.testing.assert_allclose(q["B_f"][0], w.W[0] @ (net.drive_scale * 0.2 * x) + w.b[0], rtol=1e-12)
    np.testing.assert_allclose(q["B_f"][1], w.W[1] @ (net.drive_scale * q["rates_f"][0]) + w.b[1], rtol=1e-12)
    np.testing.assert_allclose(q["s_pre_f"][1], net.psp_scale * q["rates_f"][0], rtol=1e-15)
    one = RateNetwork(p, w, psp_scale=1.0)
    assert one.psp_scale == 1.0 and one.drive_scale == 1.0
    assert RateNetwork(p, w, psp_scale=0.51, drive_scale=0.4).drive_scale == 0.4


@pytest.mark.parametrize("g_A", [0.05, 0.6])
@pytest.mark.parametrize("feedback", ["random", "symmetric"])
def test_apical_conductance_fixed_point_is_the_ode_steady_state(g_A, feedback):
    cell = CellParameters(g_A=g_A / ms)
    p, w = make((500, 100), cell=cell, feedback=feedback, feedback_bias=True)
    net = RateNetwork(p, w)
    g_L, g_B, gA = 0.1, 0.6, g_A

    def residual(B, C, A):
        return (-g_L * C + g_B * (B - C) + gA * (A - C)) / (g_L + g_B + gA)

    x = random_images(1, seed=3)[0]
    q = net.example_quantities(x, 7)
    for phase in ("f", "t"):
        r_out = q[f"rates_{phase}"][-1]
        for h in range(2):
            A = w.Y[h] @ r_out + w.c[h]  # recomputed from the returned output rates
            assert np.max(np.abs(residual(q[f"B_{phase}"][h], q[f"C_{phase}"][h], A))) < 1e-9
            np.testing.assert_allclose(q[f"A_{phase}"][h], A, atol=1e-9)
        # the second hidden layer's basal input comes from the first layer's rates of the same phase
        B1 = w.W[1] @ q[f"rates_{phase}"][0] + w.b[1]
        np.testing.assert_allclose(q[f"B_{phase}"][1], B1, rtol=1e-12)
    # the teaching signal changes the hidden layers through the apical conductance
    assert np.max(np.abs(q["C_t"][1] - q["C_f"][1])) > 1e-6
    # batched inference solves the same fixed point
    batch = random_images(20, seed=4)
    out = net.forward(batch)
    for h in range(2):
        A = out[-1].rate @ w.Y[h].T + w.c[h]
        assert np.max(np.abs(residual(out[h].B, out[h].C, A))) < 1e-9
    single = net.forward(x[None])
    np.testing.assert_allclose(single[-1].C[0], q["C_f"][-1], atol=1e-9)


def test_loop_jacobian_matches_finite_differences():
    """The Newton steps of the g_A > 0 solver use d r_out/d r_feedback (analytic)."""
    p, w = make((500, 100), cell=CellParameters(g_A=0.6 / ms, kernel="truncated"), feedback_bias=True)
    net = RateNetwork(p, w)
    X = random_images(3, seed=8)
    s_in = net._input_psp(X)
    E = np.where(np.arange(10) == 2, 8.0, -8.0)
    r0 = np.random.default_rng(0).random((3, 10)) * 0.2

    def F(r):
        return net._sweep(s_in, net._apical(r), E)[1]

    J = loop_jacobian(net, F(r0), E)
    assert J.shape == (3, 10, 10)
    eps = 1e-6
    for j in range(10):
        dr = np.zeros(10)
        dr[j] = eps
        numeric = (F(r0 + dr)[-1].rate - F(r0 - dr)[-1].rate) / (2 * eps)
        np.testing.assert_allclose(J[:, :, j], numeric, rtol=1e-5, atol=1e-9)
    single = loop_jacobian(net, net._sweep(s_in[0], net._apical(r0[0]), E)[1], E)
    np.testing.assert_allclose(single, J[0], rtol=1e-12)


def test_fixed_point_iteration_limit():
    p, w = make(cell=CellParameters(g_A=0.6 / ms))
    net = RateNetwork(p, w, max_iter=1)
    with pytest.raises(ConvergenceError, match="did not converge in 1 iterations"):
        net.forward(random_images(2))


def test_prediction_falls_back_to_newtons_root(monkeypatch):
    """A prediction whose relaxation has not settled after max_iter takes Newton's root from the last
    iterate (the fixed point an unstable focus of the relaxation would leave unreached); training raises."""
    from brian_dendrite.rate import _fixed_point

    p, w = make(cell=CellParameters(g_A=0.6 / ms))
    X = random_images(7, seed=3)
    ref = RateNetwork(p, w)
    settled = ref._phase(ref._input_psp(X))[1][-1]
    for rows in (X, X[:1]):  # a block (rows) and a single image
        net = RateNetwork(p, w, max_iter=1)
        with pytest.raises(ConvergenceError, match="did not converge in 1 iterations"):
            net.forward(rows)
        np.testing.assert_array_equal(net.predict(rows), ref.predict(rows))
        assert net.newton_fallbacks == len(rows)  # none settles in one iteration
        out = net._phase(net._input_psp(rows), fallback=True)[1][-1]
        np.testing.assert_allclose(out.rate, settled.rate[: len(rows)], rtol=0, atol=1e-9)
    assert ref.newton_fallbacks == 0
    with pytest.raises(ConvergenceError, match="did not converge in 1 iterations"):
        RateNetwork(p, w, max_iter=1).train(X, np.arange(7))
    monkeypatch.setattr(_fixed_point, "_FALLBACK_NEWTON_STEPS", 0)  # Newton finds nothing: the error names both
    with pytest.raises(ConvergenceError, match="Newton's method from the last iterate found no root either"):
        RateNetwork(p, w, max_iter=1).predict(X)


@pytest.mark.parametrize("g_teach", [1.0, 0.1])
def test_output_target_steady_state(g_teach):
    p, w = make(cell=CellParameters(g_teach=g_teach / ms))
    net = RateNetwork(p, w)
    label = 4
    q = net.example_quantities(random_images(1)[0], label)
    B = q["B_t"][-1]
    np.testing.assert_allclose(B, q["B_f"][-1])
    E = np.where(np.arange(10) == label, 8.0, -8.0)
    expected = (0.6 * B + g_teach * E) / (0.1 + 0.6 + g_teach)
    np.testing.assert_allclose(q["C_t"][-1], expected, rtol=1e-12)
    np.testing.assert_allclose(q["target"], sig(expected), rtol=1e-12)
    np.testing.assert_allclose(q["rates_t"][-1], 0.2 * sig(expected), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# learning rule


def reference_updates(p, w, x, label):
    """specification 1.9 in the un-normalised (code) form, written independently of rate.py (g_A = 0)."""
    cell = p.cell
    phi = float(cell.phi_max * ms)
    g_L, g_B, g_D, g_T = (float(g * ms) for g in (cell.g_L, cell.g_B, cell.g_D, cell.g_teach))
    psp, drive = _kernel_sums(cell)
    P_hidden, P_final = 20 / phi, 20 / phi**2
    k_B, k_D = g_B / (g_L + g_B), g_D / (g_L + g_D)
    etas = p.network.learning_rates
    n_h = len(w.W) - 1
    s = psp * phi * x
    pre, C_f = [], []
    for lay in range(n_h + 1):
        pre.append(s)
        B = w.W[lay] @ (drive / psp * s) + w.b[lay]
        C = k_B * B if lay < n_h else k_D * B
        C_f.append(C)
        s = psp * phi * sig(C)
    B_out = C_f[-1] / k_D
    t = np.zeros(10)
    t[label] = 1
    # C dV/dt = -g_L V + g_D (B - V) + g_T t (E_E - V) + g_T (1 - t) (E_I - V) = 0
    C_t = (g_D * B_out + g_T * (t * cell.E_E + (1 - t) * cell.E_I)) / (g_L + g_D + g_T)
    lam_f, lam_t = phi * sig(C_f[-1]), phi * sig(C_t)
    out = []
    for h in range(n_h):
        alpha_f = sig(w.Y[h] @ (psp * lam_f) + w.c[h])
        alpha_t = sig(w.Y[h] @ (psp * lam_t) + w.c[h])
        E = (alpha_t - alpha_f) * -k_B * phi * sig(C_f[h]) * (1 - sig(C_f[h]))
        out.append((-etas[h] * P_hidden * np.outer(E, pre[h]), -etas[h] * P_hidden * E))
    E = (lam_t - phi * sig(C_f[-1])) * -k_D * phi * sig(C_f[-1]) * (1 - sig(C_f[-1]))
    out.append((-etas[-1] * P_final * np.outer(E, pre[-1]), -etas[-1] * P_final * E))
    return out


def _kernel_sums(cell):
    """(rule/dendrite scale, soma scale): 1 for the full kernel; the sampled sums for the truncated one."""
    if cell.kernel == "full":
        return 1.0, 1.0
    dt, tl, ts = float(cell.dt / ms), float(cell.tau_L / ms), float(cell.tau_s / ms)
    n = int(round(float(cell.kernel_cutoff / cell.dt)))
    t = dt * np.arange(n + 1)
    kappa = (np.exp(-t / tl) - np.exp(-t / ts)) / (tl - ts) * dt
    return kappa[1:].sum(), kappa[:-1].sum()


VARIANT_CELL = CellParameters(
    g_D=0.4 / ms, g_teach=0.5 / ms, E_E=6.0, E_I=-7.0, kernel="truncated", phi_max=150 * Hz
)


@pytest.mark.parametrize("cell", [None, VARIANT_CELL], ids=["paper", "variant"])
@pytest.mark.parametrize("hidden", [(), (500,), (500, 100)])
def test_update_deltas_equal_unnormalised_rule(hidden, cell):
    p, w = make(hidden, cell=cell, feedback_bias=True)
    net = RateNetwork(p, w)
    for seed, label in ((1, 0), (2, 9)):
        x = random_images(1, seed=seed)[0]
        got = net.update_deltas(x, label)
        ref = reference_updates(p, w, x, label)
        assert len(got) == len(ref) == len(hidden) + 1
        for (dW, db), (rW, rb) in zip(got, ref, strict=True):
            assert np.max(np.abs(rW)) > 0
            np.testing.assert_allclose(dW, rW, rtol=1e-12, atol=1e-12 * np.max(np.abs(rW)))
            np.testing.assert_allclose(db, rb, rtol=1e-12, atol=1e-12 * np.max(np.abs(rb)))


@pytest.mark.parametrize(
    "hidden, g_A", [((), 0.0), ((500,), 0.0), ((500, 100), 0.0), ((500, 100), 0.05)], ids=str
)
def test_train_applies_update_deltas(hidden, g_A):
    """The optimised training path (sparse row updates, cached first layer) equals update_deltas."""
    p, w = make(hidden, cell=CellParameters(g_A=g_A / ms))
    net = RateNetwork(p, w)
    X = random_images(2, seed=5)
    X[1] = 0.7  # a dense image takes the dense update path
    expected = [w.W[lay].copy() for lay in range(len(w.W))], [v.copy() for v in w.b]
    for i, label in enumerate((3, 8)):
        for lay, (dW, db) in enumerate(net.update_deltas(X[i], label)):
            expected[0][lay] += dW
            expected[1][lay] += db
        net.train(X[i : i + 1], [label])
        new = net.weights
        for lay in range(len(w.W)):
            np.testing.assert_allclose(new.W[lay], expected[0][lay], rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(new.b[lay], expected[1][lay], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("exact_gemm", [True, False], ids=["blas", "numpy"])
@pytest.mark.parametrize(
    "hidden, extra",
    [((), {}), ((500,), {}), ((500, 100), {}), ((500,), {"feedback": "noisy_symmetric"}),
     ((500,), {"kernel": "truncated"})],
    ids=str,
)
def test_tight_training_loop_is_bit_identical_to_single_examples(hidden, extra, exact_gemm, monkeypatch):
    """train() (the loop of rate._online, blocks of examples) equals train_example() bit for bit."""
    import brian_dendrite.rate._online as online

    if not exact_gemm:  # the numpy fallback of the rank-1 update
        monkeypatch.setattr(online, "_gemm_is_exact", lambda: False)
    cell = CellParameters(kernel=extra["kernel"]) if "kernel" in extra else None
    network = {k: v for k, v in extra.items() if k != "kernel"}
    p, w = make(hidden, cell=cell, **network)
    X = random_images(online._BLOCK + 40, seed=11)
    X[3] = 0.7  # a dense image: the dense first-layer path
    X[7] = 0.0  # a blank one: no active input
    y = np.arange(len(X)) % 10
    a = RateNetwork(p, w, rng=np.random.default_rng(4))
    b = RateNetwork(p, w, rng=np.random.default_rng(4))
    history = a.train(X, y, test_every=100, test_set=(X[:20], y[:20]))
    for i in range(len(X)):
        b.train_example(X[i], y[i])
    assert [n for n, _ in history] == [100, 200, len(X)] and a.examples_seen == b.examples_seen == len(X)
    wa, wb = a.weights, b.weights
    for name in ("W", "b", "Y"):
        for u, v in zip(getattr(wa, name), getattr(wb, name), strict=True):
            np.testing.assert_array_equal(u, v)


def test_add_outer_rounds_like_numpy():
    from brian_dendrite.rate._online import add_outer

    g = np.random.default_rng(3)
    Wt, s, d = g.standard_normal((200, 30)), g.random(200), g.standard_normal(30) * 1e-3
    expected = Wt + np.multiply.outer(s, d)
    add_outer(Wt, s, d)
    np.testing.assert_array_equal(Wt, expected)


def test_shuffled_training_is_reproducible():
    p, w = make()
    X = random_images(20, seed=9)
    y = np.arange(20) % 10
    a, b = RateNetwork(p, w), RateNetwork(p, w)
    a.train(X, y, rng=np.random.default_rng(1), shuffle=True)
    b.train(X, y, rng=np.random.default_rng(1), shuffle=True)
    np.testing.assert_array_equal(a.weights.W[0], b.weights.W[0])
    c = RateNetwork(p, w)
    c.train(X, y)  # presentation order matters in online learning
    assert not np.array_equal(a.weights.W[0], c.weights.W[0])


def test_train_example_applies_update_deltas():
    p, w = make()
    net = RateNetwork(p, w)
    x = random_images(1)[0]
    deltas = net.update_deltas(x, 5)
    net.train_example(x, 5)
    new = net.weights
    for lay, (dW, db) in enumerate(deltas):
        np.testing.assert_allclose(new.W[lay], w.W[lay] + dW, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(new.b[lay], w.b[lay] + db, rtol=1e-13)
    np.testing.assert_array_equal(new.Y[0], w.Y[0])  # random feedback stays fixed
    # the Weights given to the constructor are not modified
    assert not np.allclose(new.W[1], w.W[1])


def test_output_update_is_the_negative_loss_gradient():
    """Finite differences of L = |sigma(C_t) - sigma(k_D (W s + b))|^2 with the target held fixed."""
    p, w = make()
    net = RateNetwork(p, w)
    x = random_images(1, seed=7)[0]
    label = 2
    q = net.example_quantities(x, label)
    target = q["target"]
    s = q["s_pre_f"][-1]
    W, b = w.W[-1].copy(), w.b[-1]
    k_D = p.cell.k_D

    def loss(Wm):
        return np.sum((target - sig(k_D * (Wm @ s + b))) ** 2)

    eps = 1e-6
    grad = np.empty_like(W)
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            old = W[i, j]
            W[i, j] = old + eps
            up = loss(W)
            W[i, j] = old - eps
            down = loss(W)
            W[i, j] = old
            grad[i, j] = (up - down) / (2 * eps)
    dW = net.update_deltas(x, label)[-1][0]
    cosine = np.sum(dW * -grad) / (np.linalg.norm(dW) * np.linalg.norm(grad))
    assert cosine > 0.999


# ---------------------------------------------------------------------------------------------
# feedback conditions during training


def test_symmetric_feedback_follows_the_weights():
    p, w = make(feedback="symmetric")
    net = RateNetwork(p, w)
    X = random_images(5)
    net.train(X, np.arange(5))
    new = net.weights
    np.testing.assert_array_equal(new.Y[0], new.W[1].T)
    assert not np.allclose(new.Y[0], w.Y[0])


def test_noisy_symmetric_redraws_noise():
    p, w = make(feedback="noisy_symmetric")
    net = RateNetwork(p, w, rng=np.random.default_rng(3))
    X = random_images(2)
    net.train_example(X[0], 1)
    first = net.weights
    noise1 = first.Y[0] - first.W[1].T
    net.train_example(X[1], 2)
    second = net.weights
    noise2 = second.Y[0] - second.W[1].T
    assert np.std(noise1) == pytest.approx(0.05, rel=0.1)
    assert np.corrcoef(noise1.ravel(), noise2.ravel())[0, 1] < 0.2


def test_sparse_feedback_mask_survives_training():
    p, w = make(feedback="sparse")
    net = RateNetwork(p, w)
    net.train(random_images(3), [0, 1, 2])
    new = net.weights
    np.testing.assert_array_equal(new.Y[0], w.Y[0])
    np.testing.assert_array_equal(new.Y_mask[0], w.Y_mask[0])


# ---------------------------------------------------------------------------------------------
# inference


def test_batched_forward_and_predict_match_single_examples():
    p, w = make((500, 100))
    net = RateNetwork(p, w)
    X = random_images(600, seed=11)  # more than one inference block
    out = net.forward(X)
    assert [o.C.shape for o in out] == [(600, 500), (600, 100), (600, 10)]
    assert out[0].A.shape == (600, 500) and out[-1].A is None
    pred_v = net.predict(X, "voltage")
    pred_r = net.predict(X, "rate")
    for i in (0, 17, 511, 512, 599):
        q = net.example_quantities(X[i], 0)
        for lay in range(3):
            np.testing.assert_allclose(out[lay].C[i], q["C_f"][lay], rtol=1e-12, atol=1e-13)
            np.testing.assert_allclose(out[lay].rate[i], q["rates_f"][lay], rtol=1e-12, atol=1e-15)
        assert pred_v[i] == np.argmax(q["C_f"][-1])
        assert pred_r[i] == np.argmax(q["rates_f"][-1])
    single = np.array([net.predict(X[i : i + 1])[0] for i in range(0, 600, 37)])
    np.testing.assert_array_equal(single, pred_v[::37])
    labels = pred_v.copy()
    labels[:60] = (labels[:60] + 1) % 10
    assert net.test_error(X, labels) == pytest.approx(10.0)


def test_input_validation():
    p, w = make()
    net = RateNetwork(p, w)
    X = random_images(3)
    with pytest.raises(ValueError, match="expected 784 pixels"):
        net.example_quantities(X[0, :700], 0)
    with pytest.raises(ValueError, match=r"expected \(n_images, 784\)"):
        net.forward(X[:, :700])
    with pytest.raises(ValueError, match="images\\[None\\]"):
        net.predict(X[0])
    bad = X.copy()
    bad[1, 5] = np.nan
    with pytest.raises(ValueError, match="1 NaN"):
        net.predict(bad)
    with pytest.raises(ValueError, match="divided by 255"):
        net.forward(X * 255)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 9\]"):
        net.train(X, [0, 10, 1])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 9\]"):
        net.train_example(X[0], -1)
    with pytest.raises(ValueError, match=r"shape \(2,\); expected \(3,\)"):
        net.test_error(X, [0, 1])
    with pytest.raises(ValueError, match="integers"):
        net.update_deltas(X[0], 1.5)
    with pytest.raises(ValueError, match="readout"):
        net.predict(X, "spikes")
    with pytest.raises(ValueError, match=r"W\[0\] has shape"):
        RateNetwork(make((300,))[0], w)
    # 28x28 images are accepted
    assert net.predict(X.reshape(3, 28, 28)).shape == (3,)


# ---------------------------------------------------------------------------------------------
# learning MNIST


def test_learns_mnist(record_property):
    """784-500-10 trained online on 5,000 MNIST images; tested on 2,000 test images.

    Measured (weights seed 20171205): 17.25 % error on the first 2,000 test images
    (13.63 % on all 10,000; 90 % before training), about 0.14 ms per training example.
    """
    X, y = mnist("train", 5000)
    Xt, yt = mnist("test", 2000)
    p, w = make()
    net = RateNetwork(p, w)
    before = net.test_error(Xt, yt)
    seen = []
    start = time.perf_counter()
    history = net.train(
        X, y, test_every=2500, test_set=(Xt[:500], yt[:500]), callback=lambda n, k, e: seen.append(k)
    )
    per_example = (time.perf_counter() - start) / 5000 * 1e3
    error = net.test_error(Xt, yt)
    record_property("ms_per_example_incl_tests", per_example)
    record_property("test_error_percent", error)
    assert seen == [2500, 5000] and [h[0] for h in history] == [2500, 5000]
    assert net.examples_seen == 5000
    assert before > 70
    assert error < 25, f"test error {error:.1f} % after 5,000 examples"


def test_batched_fixed_point_equals_single_examples_and_drops_converged_rows(monkeypatch):
    """A batch is solved row by row (converged rows leave the iteration): same steady states as one by one."""
    p, w = make(hidden=(60, 20), cell=CellParameters(g_A=0.6 / ms))
    # feedback strong enough that examples need different numbers of iterations
    w = Weights(W=w.W, b=w.b, Y=[10 * y for y in w.Y], c=w.c, Y_mask=w.Y_mask)
    net = RateNetwork(p, w)
    X = random_images(12)
    sizes = []
    original = RateNetwork._sweep

    def spy(self, s_in, A, E, B0=None):
        sizes.append(len(s_in) if np.ndim(s_in) == 2 else 1)
        return original(self, s_in, A, E, B0)

    monkeypatch.setattr(RateNetwork, "_sweep", spy)
    batch = net.forward(X)
    assert sizes[0] == 12 and min(sizes) < 12  # some rows left before the last converged
    monkeypatch.setattr(RateNetwork, "_sweep", original)
    for i in range(len(X)):
        # one image alone: the 1-D solver of the training path
        s_pre, single = net._phase(net._input_psp(X[i]))
        for b_st, s_st in zip(batch, single, strict=True):
            np.testing.assert_allclose(b_st.rate[i], s_st.rate, rtol=0, atol=1e-9)
            if s_st.A is not None:
                np.testing.assert_allclose(b_st.A[i], s_st.A, rtol=0, atol=1e-9)

"""Weight initialisation and feedback weights (specification 1.11, 1.13)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from brian_dendrite import ModelParameters, NetworkParameters
from brian_dendrite.model import (
    UNIFORM_SD_FACTOR,
    Weights,
    initial_weights,
    symmetric_feedback,
    weight_statistics,
)

SEED = 20171205


def params(hidden=(500,), **network):
    rates = {0: (0.19,), 1: (0.21, 0.21), 2: (0.23, 0.23, 0.12)}.get(len(hidden), (0.2,) * (len(hidden) + 1))
    return ModelParameters(network=NetworkParameters(hidden=tuple(hidden), learning_rates=rates, **network))


def rng(seed=SEED):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------------------------
# statistics


@pytest.mark.parametrize(
    "n, w_avg, w_sd", [(784, 0.018707, 0.504903), (500, 0.029333, 0.632115), (100, 0.146667, 1.410406)]
)
def test_weight_statistics_table(n, w_avg, w_sd):
    avg, sd = weight_statistics(n, NetworkParameters())
    assert avg == pytest.approx(w_avg, abs=1e-5)
    assert sd == pytest.approx(w_sd, abs=1e-5)


def test_weight_statistics_uses_network_and_rejects_nonsense():
    avg, _ = weight_statistics(500, NetworkParameters(init_V_mean=4.0, init_bias_mean=1.0))
    assert avg == pytest.approx((4.0 - 1.0) / (0.05 * 500 * 4.0))
    with pytest.raises(ValueError, match="fan-in"):
        weight_statistics(0)


# ---------------------------------------------------------------------------------------------
# forward weights


def test_paper_init_spread_and_mean():
    w = initial_weights(params(), rng())
    avg, sd = weight_statistics(784)
    assert w.W[0].shape == (500, 784)
    assert np.std(w.W[0]) == pytest.approx(sd, rel=0.02)
    assert np.mean(w.W[0]) == pytest.approx(avg, abs=5 * sd / np.sqrt(w.W[0].size))
    # uniform: the range is W_avg +- 3.465/2 W_sd
    half = UNIFORM_SD_FACTOR * sd / 2
    assert w.W[0].min() >= avg - half and w.W[0].max() <= avg + half
    assert np.all(np.abs(w.b[0] - 0.8) <= UNIFORM_SD_FACTOR * 0.001 / 2)
    _, sd_out = weight_statistics(500)
    assert np.std(w.W[1]) == pytest.approx(sd_out, rel=0.05)


def test_head_init_doubles_spread():
    w = initial_weights(params(init="head"), rng())
    _, sd = weight_statistics(784)
    assert np.std(w.W[0]) == pytest.approx(2 * sd, rel=0.02)
    _, sd_out = weight_statistics(500)
    # independent Y with the output layer's statistics (nonzero mean, sd 2 W_sd)
    assert np.std(w.Y[0]) == pytest.approx(2 * sd_out, rel=0.05)


def test_same_seed_same_weights():
    a = initial_weights(params(), rng(1))
    b = initial_weights(params(), rng(1))
    c = initial_weights(params(), rng(2))
    assert all(np.array_equal(x, y) for x, y in zip(a.W + a.Y, b.W + b.Y, strict=True))
    assert not np.array_equal(a.W[0], c.W[0])


@pytest.mark.parametrize("hidden", [(), (500,), (500, 100)])
def test_shapes(hidden):
    w = initial_weights(params(hidden), rng())
    sizes = (784, *hidden, 10)
    assert w.layer_sizes == sizes
    assert [x.shape for x in w.W] == [(sizes[i + 1], sizes[i]) for i in range(len(sizes) - 1)]
    assert [x.shape for x in w.b] == [(n,) for n in sizes[1:]]
    assert [y.shape for y in w.Y] == [(n, 10) for n in hidden]
    assert [x.shape for x in w.c] == [(n,) for n in hidden]
    assert all(not np.any(x) for x in w.c)  # no feedback bias by default
    assert w.Y_mask == [None] * len(hidden)


# ---------------------------------------------------------------------------------------------
# feedback weights


def test_paper_feedback_one_hidden_is_zero_mean_with_output_spread():
    w = initial_weights(params(), rng())
    _, sd = weight_statistics(500)
    assert np.std(w.Y[0]) == pytest.approx(sd, rel=0.05)
    assert abs(np.mean(w.Y[0])) < 5 * sd / np.sqrt(w.Y[0].size)


def test_paper_feedback_two_hidden_is_a_product():
    """Reproduce the documented construction from the seed: Y1 = R1, Y0 = R0 @ Y1."""
    w = initial_weights(params((500, 100)), rng())
    g = rng()
    k = UNIFORM_SD_FACTOR
    g.random((10, 100))  # W[2]
    g.random(10)  # b[2]
    R1 = g.random((100, 10))
    g.random((100, 500))  # W[1]
    g.random(100)  # b[1]
    R0 = g.random((500, 100))
    Y1 = k * weight_statistics(100)[1] * (R1 - 0.5)
    Y0 = (k * weight_statistics(500)[1] * (R0 - 0.5)) @ Y1
    np.testing.assert_allclose(w.Y[1], Y1, rtol=1e-13)
    np.testing.assert_allclose(w.Y[0], Y0, rtol=1e-12, atol=1e-12)
    # statistics of the product: column j of Y0 has sd W_sd(500) * |Y1[:, j]|
    assert np.std(w.Y[1]) == pytest.approx(1.410406, rel=0.15)
    expected = weight_statistics(500)[1] * np.linalg.norm(w.Y[1], axis=0)
    np.testing.assert_allclose(np.std(w.Y[0], axis=0), expected, rtol=0.15)


def test_feedback_bias():
    w = initial_weights(params(feedback_bias=True), rng())
    assert np.std(w.c[0]) > 0.1
    # c = Y @ v: it lies in the column space of Y
    v, *_ = np.linalg.lstsq(w.Y[0], w.c[0], rcond=None)
    np.testing.assert_allclose(w.Y[0] @ v, w.c[0], atol=1e-10)
    # the bias draws come after the layer's feedback draws: forward weights are unchanged
    plain = initial_weights(params(), rng())
    np.testing.assert_array_equal(plain.W[1], w.W[1])


def test_sparse_feedback_mask_and_gain():
    net = dict(feedback="sparse", sparse_fraction=0.8, sparse_gain=5.0)
    w = initial_weights(params((500, 100), **net), rng())
    dense = initial_weights(params((500, 100)), rng())
    for h in range(2):
        mask = w.Y_mask[h]
        assert mask.dtype == bool and mask.shape == w.Y[h].shape
        assert 1 - mask.mean() == pytest.approx(0.8, abs=0.01)
        assert np.all(w.Y[h][~mask] == 0)
        np.testing.assert_allclose(w.Y[h][mask], 5.0 * dense.Y[h][mask], rtol=1e-14)
    # forward weights do not depend on the feedback condition
    np.testing.assert_array_equal(w.W[0], dense.W[0])


def test_symmetric_feedback():
    w = initial_weights(params(feedback="symmetric"), rng())
    np.testing.assert_array_equal(w.Y[0], w.W[1].T)
    w2 = initial_weights(params((500, 100), feedback="symmetric"), rng())
    np.testing.assert_array_equal(w2.Y[1], w2.W[2].T)
    np.testing.assert_allclose(w2.Y[0], w2.W[1].T @ w2.W[2].T, rtol=1e-13)


def test_noisy_symmetric_and_masked_recompute():
    network = params(feedback="noisy_symmetric", symmetric_noise=0.05).network
    w = initial_weights(params(feedback="noisy_symmetric", symmetric_noise=0.05), rng())
    noise = w.Y[0] - w.W[1].T
    assert np.std(noise) == pytest.approx(0.05, rel=0.05)
    with pytest.raises(ValueError, match="rng"):
        symmetric_feedback(w.W, network)
    again = symmetric_feedback(w.W, network, rng=rng(5))
    assert not np.allclose(again[0], w.Y[0])  # fresh noise each call
    mask = [np.arange(w.Y[0].size).reshape(w.Y[0].shape) % 5 == 0]
    sparse_net = params(feedback="symmetric", sparse_gain=5.0).network
    Y = symmetric_feedback(w.W, sparse_net, mask=mask)
    np.testing.assert_allclose(Y[0], 5.0 * w.W[1].T * mask[0])


# ---------------------------------------------------------------------------------------------
# save / load


def test_save_load_round_trip(tmp_path):
    w = initial_weights(params((500, 100), feedback="sparse", feedback_bias=True), rng())
    path = tmp_path / "weights.npz"
    assert w.save(path) == path
    assert sorted(os.listdir(tmp_path)) == ["weights.npz"]  # no temporary file left behind
    back = Weights.load(path, params((500, 100)))
    for name in ("W", "b", "Y", "c", "Y_mask"):
        for x, y in zip(getattr(w, name), getattr(back, name), strict=True):
            np.testing.assert_array_equal(x, y)
    # masks absent -> None; overwriting an existing file works
    plain = initial_weights(params(), rng())
    plain.save(path)
    assert sorted(os.listdir(tmp_path)) == ["weights.npz"]
    assert Weights.load(path).Y_mask == [None]


def test_array_mapping_and_checkpoint_layout(tmp_path):
    w = initial_weights(params((500, 100), feedback="sparse"), rng())
    arrays = w.to_arrays()
    assert {"layer_sizes", "W_0", "b_2", "Y_1", "c_0", "Y_mask_1"} <= set(arrays)
    back = Weights.from_arrays(arrays, params((500, 100)))
    np.testing.assert_array_equal(back.Y[0], w.Y[0])
    np.testing.assert_array_equal(back.Y_mask[1], w.Y_mask[1])
    with pytest.raises(ValueError, match="missing array 'W_1'"):
        Weights.from_arrays({k: v for k, v in arrays.items() if k != "W_1"})
    # a training checkpoint stores the same arrays under a "weights/" prefix
    path = tmp_path / "checkpoint.npz"
    np.savez(path, **{f"weights/{k}": v for k, v in arrays.items()}, meta=np.array("{}"))
    np.testing.assert_array_equal(Weights.load(path).W[2], w.W[2])


def test_copy_is_deep():
    w = initial_weights(params(), rng())
    c = w.copy()
    c.W[0][0, 0] += 1.0
    assert c.W[0][0, 0] != w.W[0][0, 0]


def test_load_errors(tmp_path):
    w = initial_weights(params(), rng())
    path = tmp_path / "w.npz"
    w.save(path)
    with pytest.raises(ValueError, match=r"W\[0\] has shape \(500, 784\), expected \(300, 784\)"):
        Weights.load(path, params((300,)))
    with pytest.raises(ValueError, match="layer sizes"):
        Weights.load(path, params((500, 100)))
    with pytest.raises(ValueError, match="does not exist"):
        Weights.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an npz archive")
    with pytest.raises(ValueError, match=r"bad\.npz is not a \.npz archive"):
        Weights.load(bad)
    w.W[0][3, 4] = np.nan
    w.save(path)
    with pytest.raises(ValueError, match=r"W\[0\] contains 1 non-finite"):
        Weights.load(path)


def test_inconsistent_weights_rejected():
    w = initial_weights(params(), rng())
    with pytest.raises(ValueError, match=r"Y\[0\] has shape"):
        Weights(W=w.W, b=w.b, Y=[w.Y[0][:, :5]])
    with pytest.raises(ValueError, match="need 1 arrays in Y"):
        Weights(W=w.W, b=w.b, Y=[])

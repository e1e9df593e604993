"""The settling measurement: exact where the kernel is cut, a real residue where it is not."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import mnist_dir

from brian_dendrite.datasets import load_mnist
from brian_dendrite.model import initial_weights, load_model
from brian_dendrite.rate import RateNetwork
from brian_dendrite.validation import settling_fidelity


@pytest.fixture(scope="module")
def data():
    train = load_mnist("train", mnist_dir())
    return train.images[:500], train.labels[:500]


def _params(model):
    params = load_model(model)
    return params.replace(network=params.network.replace(hidden=(20,)))


def test_truncated_kernel_settles_within_the_protocol(data):
    """Three 10-ms kernels in series are over after 30 ms: the 50-ms protocol gives the steady-state update."""
    params = _params("one_hidden_truncated_kernel")
    W = initial_weights(params, np.random.default_rng(3))
    res = settling_fidelity(params, W, *data, phase_lengths=(50,), streams=4, examples=5, skip=1)
    assert res["examples_scored"] == 16
    r = res["by_length"][50]
    # what is left is the somatic relaxation (rate 0.7/ms, exponential: never exactly 0)
    for layer in r["updates"].values():
        assert layer["summed_cosine"] > 1 - 1e-6
        assert layer["cosine_mean"] > 1 - 1e-6
        # the simulation samples the kernel once per step (sum 0.5104 of trace, 0.4630 at the soma);
        # the rate model uses the same sums, so the norms agree closely
        assert layer["summed_norm_ratio"] == pytest.approx(1.0, abs=1e-4)
    assert max(r["residual"].values()) < 1e-4  # the full kernel leaves > 1e-2 (next test)


def test_full_kernel_leaves_a_residue_that_longer_phases_remove(data):
    params = _params("one_hidden")
    W = initial_weights(params, np.random.default_rng(3))
    res = settling_fidelity(params, W, *data, phase_lengths=(50, 100, 300), streams=4, examples=5, skip=1)
    resid = {L: res["by_length"][L]["residual"] for L in (50, 100, 300)}
    for name in resid[50]:
        assert resid[50][name] > resid[100][name] > resid[300][name], name
    # the apical potential is three kernels deep: a few per cent of the previous example remain
    assert resid[50]["hidden_0 alpha_f"] > 0.01
    assert resid[300]["hidden_0 alpha_f"] < 1e-3
    # the full kernel sampled at 1 ms has sum 0.9972, not 1: the long-phase update is the rate model's to 1 %
    for layer in res["by_length"][300]["updates"].values():
        assert layer["summed_cosine"] > 0.999
        assert layer["summed_norm_ratio"] == pytest.approx(1.0, abs=0.02)


def test_settling_fidelity_rejects_bad_arguments(data):
    params = _params("one_hidden")
    W = initial_weights(params, np.random.default_rng(3))
    images, labels = data
    with pytest.raises(ValueError, match="window"):
        settling_fidelity(params, W, images, labels, phase_lengths=(10,))
    with pytest.raises(ValueError, match="skip"):
        settling_fidelity(params, W, images, labels, examples=2, skip=2)
    with pytest.raises(ValueError, match="labels"):
        settling_fidelity(params, W, images, labels[:-1])


def test_settling_script_writes_appends_and_renders(tmp_path):
    """validation/studies/settling/settling.py end to end on a tiny configuration (one phase length, 2 x 3 examples)."""
    import json

    from conftest import validation_script

    script = validation_script("settling")
    base = ["--epochs", "0", "--phases", "50", "--streams", "2", "--examples", "3", "--data-dir", str(mnist_dir()),
            "--out", str(tmp_path)]
    assert script.main(["--models", "one_hidden_truncated_kernel", *base]) == 0
    assert script.main(["--models", "no_hidden", "--append", *base]) == 0
    report = json.loads((tmp_path / "settling.json").read_text())
    assert [(r["model"], r["weights"]) for r in report["runs"]] == [
        ("one_hidden_truncated_kernel", "initial"), ("one_hidden_truncated_kernel", "rate, 0 epochs"),
        ("no_hidden", "initial"), ("no_hidden", "rate, 0 epochs")]
    # with 0 epochs the 'trained' weights are the initial ones: identical results
    assert report["runs"][0]["by_length"] == report["runs"][1]["by_length"]
    md = (tmp_path / "settling.md").read_text()
    assert "`no_hidden`" in md and "`one_hidden_truncated_kernel`" in md and "(x1.0)" in md
    (tmp_path / "settling.md").unlink()
    assert script.main(["--render", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "settling.md").read_text() == md
    with pytest.raises(SystemExit):  # other sampling: refuses to mix
        script.main(["--models", "one_hidden", "--append", *base[:-6], "--streams", "3", *base[-6:]])


class _Split:
    def __init__(self, images, labels):
        self.images, self.labels = images, labels


@pytest.fixture(scope="module")
def twin_data(data):
    images, labels = data
    test = load_mnist("test", mnist_dir())
    return _Split(images[:240], labels[:240]), _Split(test.images[:100], test.labels[:100])


def test_mean_field_training_follows_the_spiking_trainer(twin_data, tmp_path, monkeypatch):
    """Same initial weights, example order and per-chunk phase lengths as Trainer / SpikingNetwork.train_chunk."""
    from brian_dendrite import validation
    from brian_dendrite.model import PhaseSchedule
    from brian_dendrite.training import train_mean_field

    params = _params("one_hidden_truncated_kernel_gain")
    train, test = twin_data
    seen = []
    original = validation.MeanFieldNetwork.train

    def spy(self, images, labels, lengths):
        seen.append((np.array(images), np.array(labels), np.array(lengths)))
        return original(self, images, labels, lengths)

    monkeypatch.setattr(validation.MeanFieldNetwork, "train", spy)
    s = train_mean_field(params, train, test, tmp_path, 300, chunk_size=100, test_every=120)
    # 240 examples per epoch: chunks 100, 100, 40 | 60 (stops at 300 examples)
    assert [len(x[1]) for x in seen] == [100, 100, 40, 60]
    assert [h["examples"] for h in s["test_history"]] == [200, 240, 300]  # rounded up to chunks, and the end
    keys = [(0, 0), (0, 1), (0, 2), (1, 0)]
    offsets = [0, 100, 200, 0]
    for (images, labels, lengths), (epoch, chunk), off in zip(seen, keys, offsets, strict=True):
        order = np.random.default_rng(np.random.SeedSequence([0, 0xE0, epoch])).permutation(240)
        idx = order[off : off + len(labels)]
        np.testing.assert_array_equal(labels, train.labels[idx])
        np.testing.assert_array_equal(images, train.images[idx])
        rng = np.random.default_rng(np.random.SeedSequence([0, 0x5C, epoch, chunk]))
        sched = PhaseSchedule.training(labels, params.protocol, params.cell.dt, rng)
        np.testing.assert_array_equal(lengths.ravel(), sched.phase_table[:, 1])
    # the test is the rate model's on the final weights
    from brian_dendrite.model import Weights

    w = Weights.load(tmp_path / "mean_field_weights.npz", params)
    assert s["final_test_error"] == RateNetwork(params, w).test_error(test.images, test.labels)


def test_mean_field_training_resumes_exactly(twin_data, tmp_path):
    from brian_dendrite.model import Weights
    from brian_dendrite.training import train_mean_field

    params = _params("one_hidden_truncated_kernel_gain")
    train, test = twin_data
    whole = train_mean_field(params, train, test, tmp_path / "whole", 340, chunk_size=100, test_every=100)
    train_mean_field(params, train, test, tmp_path / "cut", 200, chunk_size=100, test_every=100)
    resumed = train_mean_field(params, train, test, tmp_path / "cut", 340, chunk_size=100, test_every=100)
    assert resumed["test_history"] == [dict(h, test_seconds=r["test_seconds"])
                                       for h, r in zip(whole["test_history"], resumed["test_history"], strict=True)]
    a = Weights.load(tmp_path / "whole" / "mean_field_weights.npz")
    b = Weights.load(tmp_path / "cut" / "mean_field_weights.npz")
    for x, y in zip(a.W + a.b, b.W + b.b, strict=True):
        np.testing.assert_array_equal(x, y)
    # a checkpoint of other settings is refused, not overwritten
    with pytest.raises(ValueError, match="another run"):
        train_mean_field(params, train, test, tmp_path / "cut", 400, chunk_size=50, test_every=100)
    with pytest.raises(ValueError, match="cannot train fewer"):
        train_mean_field(params, train, test, tmp_path / "cut", 100, chunk_size=100, test_every=100)


def test_mean_field_training_refuses_what_it_does_not_model(twin_data, tmp_path):
    from brian_dendrite.training import train_mean_field

    train, test = twin_data
    for model in ("symmetric_feedback", "stochastic_plateau"):
        with pytest.raises(NotImplementedError, match=model.split("_")[0]):
            train_mean_field(_params(model), train, test, tmp_path / model, 10)

"""The command line's answers to unusual and bad input (issue 17).

Training without test images works (``--test-examples 0``); options no run can
have are refused before anything is loaded or written, naming the option; the
``test`` command names the weights file when it is the problem, and both the
file and the model when they do not fit. Every refusal exits with 2 and leaves
what was already computed as it was.
"""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from conftest import mnist_dir

from brian_dendrite.cli import main
from brian_dendrite.model import initial_weights, load_model


def _tiny_params(hidden=(5,)):
    p = load_model("one_hidden")
    return p.replace(name="tiny", description="784-5-10, for the command-line tests",
                     network=p.network.replace(hidden=hidden))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A .toml file of a 784-5-10 network (fast on the numpy target)."""
    path = tmp_path_factory.mktemp("model") / "tiny.toml"
    path.write_text(_tiny_params().to_toml())
    return path


def _train_args(model, output, *extra):
    return ["train", "--model", str(model), "--examples", "20", "--chunk-size", "10", "--target", "numpy",
            "--data-dir", str(mnist_dir()), "--output", str(output), "--no-progress", *extra]


@pytest.fixture(scope="module")
def untested_run(tiny_model, tmp_path_factory):
    """A spiking run trained without test images and with a recording: ``(directory, stdout, stderr)``."""
    out = tmp_path_factory.mktemp("runs") / "untested"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = main(_train_args(tiny_model, out, "--test-examples", "0", "--test-every", "10", "--record", "3"))
    assert rc == 0, stderr.getvalue()
    return out, stdout.getvalue(), stderr.getvalue()


def _snapshot(directory):
    """Every file under ``directory``: relative path -> (bytes, mtime)."""
    return {str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*")) if p.is_file()}


def _printed_json(stdout: str) -> dict:
    return json.loads(next(line for line in stdout.splitlines() if line.startswith("{")))


# ------------------------------------------------------------------ train without test images
def test_spiking_training_without_test_images(untested_run):
    """Formerly 'error: need at least one array to concatenate' after training: now no test, null error."""
    out, stdout, stderr = untested_run
    assert _printed_json(stdout)["final_test_error"] is None
    assert "--test-examples 0: the run is not tested" in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["examples_trained"] == 20
    assert summary["test_history"] == [] and summary["final_test_error"] is None
    for name in ("checkpoint.npz", "weights.npz", "recording.npz"):
        assert (out / name).is_file(), name


def test_rate_training_without_test_images(tiny_model, tmp_path, capsys):
    out = tmp_path / "rate"
    assert main(_train_args(tiny_model, out, "--kind", "rate", "--test-examples", "0", "--test-every", "10")) == 0
    assert _printed_json(capsys.readouterr().out)["final_test_error"] is None
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_history"] == [] and summary["final_test_error"] is None
    with np.load(out / "checkpoint.npz") as data:
        assert json.loads(str(data["meta"]))["examples"] == 20


@pytest.mark.parametrize("kind", ["spiking", "rate"])
def test_untested_run_resumes_to_the_uninterrupted_result(kind, tiny_model, tmp_path, capsys):
    """10 examples, then resumed to 20: the weights of a run of 20 at once, still no test."""
    opts = ["--kind", kind, "--test-examples", "0", "--seed", "3"]
    full, split = tmp_path / "full", tmp_path / "split"
    assert main(_train_args(tiny_model, full, *opts)) == 0
    first = _train_args(tiny_model, split, *opts)
    first[first.index("--examples") + 1] = "10"
    assert main(first) == 0
    assert main(_train_args(tiny_model, split, *opts, "--resume")) == 0
    capsys.readouterr()
    summary = json.loads((split / "summary.json").read_text())
    assert summary["examples_trained"] == 20 and summary["final_test_error"] is None
    with np.load(full / "weights.npz") as a, np.load(split / "weights.npz") as b:
        assert a.files == b.files
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])


# ------------------------------------------------------------------ train: refused before anything is written
@pytest.mark.parametrize(("flag", "value"), [("--test-examples", "-1"), ("--test-every", "-5"),
                                             ("--chunk-size", "0"), ("--record", "-1")])
def test_train_refuses_impossible_options(flag, value, tiny_model, untested_run, tmp_path, capsys):
    """Refused with exit 2 and the option named, before loading data: an existing run is unchanged, no new one."""
    out = untested_run[0]
    before = _snapshot(out)
    for output in (out, tmp_path / "new"):
        args = _train_args(tiny_model, output, flag, value, "--resume")
        assert main(args) == 2
        err = capsys.readouterr().err
        assert f"error: {flag} = {value}: expected" in err
    assert _snapshot(out) == before
    assert not (tmp_path / "new").exists()


def test_train_refuses_an_existing_run_without_resume(tiny_model, untested_run, capsys):
    out = untested_run[0]
    before = _snapshot(out)
    assert main(_train_args(tiny_model, out, "--test-examples", "0")) == 2
    err = capsys.readouterr().err
    assert str(out / "checkpoint.npz") in err and "--resume" in err
    assert _snapshot(out) == before


# ------------------------------------------------------------------ test: the weights file first
def _bad_weights_file(kind, directory):
    path = directory / "weights.npz"
    if kind == "missing":
        return path, "does not exist"
    if kind == "directory":
        path.mkdir()
        return path, "is a directory"
    if kind == "text":
        path.write_text("not an npz\n")
        return path, "is not a .npz archive"
    if kind == "empty":
        path.write_bytes(b"")
        return path, "is not a .npz archive"
    if kind == "truncated":
        initial_weights(_tiny_params(), np.random.default_rng(0)).save(path)
        path.write_bytes(path.read_bytes()[:200])
        return path, "is not"
    np.savez(path, x=np.zeros(3))  # an npz, but not weights
    return path, "not a brian_dendrite weights file"


@pytest.mark.parametrize("kind", ["missing", "directory", "text", "empty", "truncated", "other_npz"])
@pytest.mark.parametrize("with_model", [False, True])
def test_test_names_a_bad_weights_file(kind, with_model, tmp_path, capsys):
    """Formerly 'no --model given and no summary.json to take it from' for all of these (without --model)."""
    path, problem = _bad_weights_file(kind, tmp_path)
    before = _snapshot(tmp_path)
    args = ["test", str(path), "--target", "numpy"] + (["--model", "one_hidden"] if with_model else [])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"weights file {path}" in err and problem in err
    assert "no --model given" not in err
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(("model", "detail"), [
    ("one_hidden", "W[0] has shape (5, 784), expected (500, 784)"),
    ("two_hidden", "layer sizes (784, 5, 10)"),
])
def test_test_names_weights_and_model_that_do_not_fit(model, detail, tmp_path, capsys):
    path = tmp_path / "weights.npz"
    initial_weights(_tiny_params(), np.random.default_rng(0)).save(path)
    assert main(["test", str(path), "--model", model, "--target", "numpy"]) == 2
    err = capsys.readouterr().err
    assert f"weights file {path} does not fit model {model!r} (--model {model})" in err
    assert detail in err


@pytest.mark.parametrize("summary_text", [None, "{", "{}"])
def test_test_needs_a_model_from_option_or_summary(summary_text, tmp_path, capsys):
    """Good weights, but no --model and no usable summary.json beside them: both are named."""
    path = tmp_path / "weights.npz"
    initial_weights(_tiny_params(), np.random.default_rng(0)).save(path)
    summary = tmp_path / "summary.json"
    if summary_text is not None:
        summary.write_text(summary_text)
    assert main(["test", str(path), "--target", "numpy"]) == 2
    err = capsys.readouterr().err
    assert str(summary) in err and "--model" in err
    if summary_text is None:
        assert f"weights file {path}" in err


def test_test_refuses_zero_test_examples(untested_run, capsys):
    assert main(["test", str(untested_run[0] / "weights.npz"), "--test-examples", "0"]) == 2
    assert "--test-examples = 0: expected 1 or more" in capsys.readouterr().err


def test_test_takes_the_model_from_the_run(untested_run, capsys):
    """The untested run's weights, tested afterwards with its summary's model."""
    out = untested_run[0]
    args = ["test", str(out / "weights.npz"), "--test-examples", "3", "--target", "numpy",
            "--data-dir", str(mnist_dir())]
    assert main(args) == 0
    result = _printed_json(capsys.readouterr().out)
    assert result["test_images"] == 3 and 0.0 <= result["test_error"] <= 100.0

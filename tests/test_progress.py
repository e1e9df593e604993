"""Progress bars of the long commands and ``--quiet`` (issue 15).

The commands run in a child process, as a user runs them (stderr a pipe, not a
terminal): without ``--quiet`` the bar (count, rate and ETA) is on stderr, with
``--quiet`` stderr is empty. The bars must not change a result: the runs with
and without them give the same bytes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import mnist_dir

from brian_dendrite._progress import LOG_INTERVAL, BrianProgress, NullBar, progress_bar
from brian_dendrite.cli import build_parser
from brian_dendrite.datasets import load_mnist
from brian_dendrite.model import initial_weights, load_model

#: tqdm's "[elapsed<remaining, rate]": the ETA is the part after "<".
ETA = re.compile(r"\[\d\d:\d\d<\d\d:\d\d")


def _tiny(name="one_hidden", hidden=(5,)):
    p = load_model(name)
    return p.replace(name="tiny", description="small network for the progress tests",
                     network=p.network.replace(hidden=hidden))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.toml"
    path.write_text(_tiny().to_toml())
    return path


def _brian2_cache_notice(cwd):
    """Make Brian2 print its import-time cache-size notice (INFO) in processes started in ``cwd``:
    a ``brian_preferences`` file there points its Cython cache at a 2 MB folder and sets the
    limit to 1 MB. The CI machine's own cache passed Brian2's default 1 GB limit once; the
    tests must not depend on that."""
    cache = Path(cwd) / "cython_cache"
    cache.mkdir(exist_ok=True)
    (cache / "blob").write_bytes(b"\0" * 2_200_000)
    (Path(cwd) / "brian_preferences").write_text(
        f"codegen.max_cache_dir_size = 1\ncodegen.runtime.cython.cache_dir = {str(cache)!r}\n")


def _run(*args, cwd):
    env = dict(os.environ, BRIAN_DENDRITE_DATA=str(mnist_dir()), MPLBACKEND="Agg")
    env.pop("TQDM_DISABLE", None)
    proc = subprocess.run([sys.executable, "-m", "brian_dendrite.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_rate_training_progress_and_quiet(tiny_model, tmp_path):
    """600 examples of the rate network: a bar with an ETA on stderr, or nothing with --quiet; same weights."""
    common = ["train", "--kind", "rate", "--model", tiny_model, "--examples", 600, "--test-examples", 20]
    _brian2_cache_notice(tmp_path)
    loud = _run(*common, "--output", tmp_path / "loud", cwd=tmp_path)
    quiet = _run(*common, "--output", tmp_path / "quiet", "--quiet", cwd=tmp_path)
    assert quiet.stderr == ""
    assert "Cache size for target 'cython'" in loud.stderr  # Brian2's notice, held back by --quiet only
    assert "rate training" in loud.stderr and "600/600" in loud.stderr and "example/s" in loud.stderr
    assert ETA.search(loud.stderr), loud.stderr
    results = [json.loads(run.stdout.splitlines()[0]) for run in (loud, quiet)]
    assert results[0]["final_test_error"] == results[1]["final_test_error"]
    assert (tmp_path / "loud" / "weights.npz").read_bytes() == (tmp_path / "quiet" / "weights.npz").read_bytes()


def test_test_command_progress_and_quiet(tiny_model, tmp_path):
    """The spiking test of 3 images: the bar counts images; --quiet leaves stderr empty; same result."""
    weights = tmp_path / "weights.npz"
    initial_weights(_tiny(), np.random.default_rng(0)).save(weights)
    common = ["test", weights, "--model", tiny_model, "--test-examples", 3, "--target", "numpy"]
    _brian2_cache_notice(tmp_path)
    loud = _run(*common, cwd=tmp_path)
    quiet = _run(*common, "--quiet", cwd=tmp_path)
    assert quiet.stderr == ""
    assert "Cache size for target 'cython'" in loud.stderr
    assert "testing" in loud.stderr and "3/3" in loud.stderr and ETA.search(loud.stderr), loud.stderr
    assert json.loads(loud.stdout) == json.loads(quiet.stdout)


def test_sweep_quiet_quiets_its_workers(tiny_model, tmp_path):
    """``sweep --quiet``: nothing on stderr from the command or its Dask worker (its INFO log and Brian2's
    import-time notice included); the task's log file still has the INFO lines. Without it, both show."""
    _brian2_cache_notice(tmp_path)
    common = ["sweep", "--models", tiny_model, "--seeds", 0, "--kind", "rate", "--examples", 50,
              "--test-examples", 10, "--workers", 1]
    loud = _run(*common, "--output", tmp_path / "loud", cwd=tmp_path)
    quiet = _run(*common, "--output", tmp_path / "quiet", "--quiet", cwd=tmp_path)
    assert quiet.stderr == ""
    assert loud.stderr.count("Cache size for target 'cython'") >= 2  # the command and its worker
    assert "task tiny seed 0 (rate, 50 examples)" in loud.stderr
    log = (tmp_path / "quiet" / "tiny" / "seed0" / "task.log").read_text()
    assert "INFO" in log and "task tiny seed 0 (rate, 50 examples)" in log


@pytest.mark.parametrize(("argv", "orig_argv", "quiet"), [
    (["/venv/bin/brian-dendrite", "train", "--quiet"], ["python", "/venv/bin/brian-dendrite"], True),
    (["/venv/bin/brian-dendrite", "train"], ["python", "/venv/bin/brian-dendrite"], False),
    (["-m"], ["python", "-m", "brian_dendrite.cli", "test", "w.npz", "--quiet"], True),
    (["-m"], ["python", "-X", "importtime", "-m", "brian_dendrite.cli", "test", "w.npz"], False),
    (["-m"], ["python", "-m", "other_tool", "--quiet"], False),
    (["script.py", "--quiet"], ["python", "script.py", "--quiet"], False),
    (["/venv/bin/brian-dendrite", "sweep", "--", "--quiet"], ["python", "/venv/bin/brian-dendrite"], False),
])
def test_cli_quiet_is_recognised_before_brian2_is_imported(argv, orig_argv, quiet):
    """Only the brian-dendrite command with --quiet holds back Brian2's import-time notices."""
    from brian_dendrite._brian2_import import cli_quiet_requested

    assert cli_quiet_requested(argv, orig_argv) is quiet


@pytest.mark.parametrize(("model", "hidden"), [("one_hidden", (5,)), ("two_hidden_apical_0_05", (6, 4))])
def test_rate_progress_trains_bit_for_bit_the_same(model, hidden, tmp_path, capsys):
    """Both training paths of the rate network (g_A = 0: tight loop; g_A > 0: fixed point), with and without bar."""
    from brian_dendrite.training import train_rate

    params = _tiny(model, hidden)
    train, test = load_mnist("train", data_dir=mnist_dir()), load_mnist("test", data_dir=mnist_dir())
    for progress in (True, False):
        train_rate(params, train, test, tmp_path / str(progress), 1100, seed=2, test_examples=10, progress=progress)
    assert "1100/1100" in capsys.readouterr().err
    with np.load(tmp_path / "True" / "weights.npz") as a, np.load(tmp_path / "False" / "weights.npz") as b:
        assert a.files == b.files
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_spiking_trainer_bar_moves_within_chunks_and_changes_nothing(tmp_path, monkeypatch):
    """Brian2 reports each chunk's run to the bar; the weights are those of a run without a bar."""
    import brian_dendrite.training.trainer as trainer_module
    from brian_dendrite.training import Trainer

    fractions = []

    class Spy(BrianProgress):
        def __call__(self, elapsed, completed, start, duration):
            fractions.append(float(completed))
            super().__call__(elapsed, completed, start, duration)

    monkeypatch.setattr(trainer_module, "BrianProgress", Spy)
    params = _tiny()
    train, test = load_mnist("train", data_dir=mnist_dir()), load_mnist("test", data_dir=mnist_dir())
    bar = _RecordingBar()
    weights = []
    for name, progress in (("bar", bar), ("none", None)):
        trainer = Trainer(params, train, test, tmp_path / name, seed=1, chunk_size=2, test_examples=0, target="numpy")
        trainer.train(4, progress_bar=progress)
        weights.append(trainer.network.get_weights())
    assert bar.n == 4 and sum(bar.updates) == 4
    # Brian2 reported the start (0) and the end (1) of both chunks' runs, and maybe more every 10 s
    assert fractions[0] == 0.0 and fractions.count(0.0) == 2 and fractions.count(1.0) == 2 and fractions[-1] == 1.0
    for a, b in zip(weights[0].W, weights[1].W, strict=True):
        np.testing.assert_array_equal(a, b)


class _RecordingBar(NullBar):
    def __init__(self):
        super().__init__()
        self.updates = []

    def update(self, n=1):
        super().update(n)
        self.updates.append(n)


def test_brian_progress_maps_runs_to_counts():
    """Fractions of consecutive runs (start 0, periodic, end 1) become counts; finish() completes."""
    bar = _RecordingBar()
    report = BrianProgress(bar, [10, 10, 5])
    for completed in (0.0, 0.5, 1.0, 0.0, 0.25, 1.0, 0.0):
        report(None, completed, None, None)
    assert bar.n == 20 and bar.updates == [5, 5, 2, 8]
    report.finish()
    assert bar.n == 25
    report.finish()  # idempotent
    assert bar.n == 25
    silent = _RecordingBar()  # the standalone device reports nothing: finish() does it all
    BrianProgress(silent, [3, 3]).finish()
    assert silent.updates == [6]


def test_progress_bar_off_and_on_a_log(capsys):
    off = progress_bar(5, "nothing", "x", enabled=False)
    assert isinstance(off, NullBar)
    with off:
        off.update(2)
        off.set_postfix_str("ignored")
    assert off.n == 2
    with progress_bar(5, "work", "item") as bar:  # stderr is captured: not a terminal
        assert bar.mininterval == LOG_INTERVAL
        bar.update(5)
    err = capsys.readouterr().err
    assert "work" in err and "5/5" in err and "item/s" in err


@pytest.mark.parametrize("command", [
    ["train"], ["test", "w.npz"], ["validate"], ["sweep", "--models", "one_hidden"], ["export", "r.npz"],
])
def test_every_long_command_has_quiet(command):
    parser = build_parser()
    assert parser.parse_args([*command, "--quiet"]).quiet is True
    assert parser.parse_args(command).quiet is False
    if command == ["train"]:
        assert parser.parse_args(["train", "--no-progress"]).quiet is True  # the old spelling


def test_quiet_reaches_validate_and_sweep(monkeypatch, tmp_path, capsys):
    """--quiet turns off the bar of run_validation and the bar and the task lines of run_sweep."""
    import brian_dendrite.sweeps._arguments as sweep_arguments
    import brian_dendrite.validation.runner as runner
    from brian_dendrite.cli import main

    calls = {}

    def fake_validation(*args, **kwargs):
        calls["validate"] = kwargs
        return {"tier": "fast", "seed": 0, "target": "numpy", "passed": True, "seconds": {"total": 0}, "checks": {}}, True

    def fake_sweep(*args, **kwargs):
        calls["sweep"] = kwargs
        return []

    monkeypatch.setattr(runner, "run_validation", fake_validation)
    monkeypatch.setattr(sweep_arguments, "run_sweep", fake_sweep)
    monkeypatch.setattr(sweep_arguments, "format_table", lambda rows: "")
    for quiet in (True, False):
        flag = ["--quiet"] if quiet else []
        assert main(["validate", "--output", str(tmp_path), *flag]) == 0
        assert calls["validate"].get("progress", True) is not quiet
        assert main(["sweep", "--models", "one_hidden", "--output", str(tmp_path), *flag]) == 0
        assert calls["sweep"]["progress"] is not quiet
        assert (calls["sweep"]["echo"] is None) is quiet
    capsys.readouterr()

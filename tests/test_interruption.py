"""Interruption and write faults: ``kill -9`` of training and of a sweep worker, a full disk (issue 17).

* ``train`` is started as a separate process and killed with SIGKILL at random
  moments (seeded: after its first checkpoint appears, plus a random delay); every
  file it leaves under its final name is complete (loadable), and ``--resume``
  finishes the run with final weights equal, bit for bit, to those of an
  uninterrupted run with the same seed. For the rate network and for the spiking
  network (runtime ``numpy`` and ``cpp_standalone``; the spiking cases are slow).
* A sweep worker process is killed with SIGKILL in the middle of its task: Dask
  runs the task again on the restarted worker, the task resumes from its
  checkpoint, and its final weights equal those of an uninterrupted run.
* A write error (``ENOSPC``, injected) while a checkpoint or the summary is written
  leaves the previous file intact and no temporary file behind, and the command
  exits with status 3 and a message that names the file.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import mnist_dir

from brian_dendrite.cli import main
from brian_dendrite.model import load_model

#: Random moments of the kills (seeded: a failure can be repeated).
KILL_SEED = 17


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.toml"
    p = load_model("one_hidden")
    path.write_text(p.replace(name="tiny", description="784-5-10, for the interruption tests",
                              network=p.network.replace(hidden=(5,))).to_toml())
    return path


@pytest.fixture(scope="module")
def build_cache(tmp_path_factory):
    """One cpp_standalone build cache for the module (the uninterrupted and the resumed runs share builds)."""
    return tmp_path_factory.mktemp("builds")


def _environment(build_cache: Path) -> dict:
    env = dict(os.environ, BRIAN_DENDRITE_BUILD_CACHE=str(build_cache), MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    return env


def _train_argv(model, output, kind, target, examples, every):
    argv = [sys.executable, "-m", "brian_dendrite.cli", "train", "--model", str(model), "--kind", kind,
            "--examples", str(examples), "--test-examples", "20", "--data-dir", str(mnist_dir()),
            "--output", str(output), "--seed", "5", "--no-progress"]
    if kind == "rate":
        return [*argv, "--test-every", str(every)]
    return [*argv, "--target", target, "--chunk-size", str(every)]


def _run(argv, env):
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=3000)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _kill_at_random_moment(argv, env, output: Path, rng, max_delay: float) -> bool:
    """Start ``argv``; SIGKILL it a random time after its first checkpoint exists. False if it finished first."""
    # a session of its own: the kill reaches the process group, as a job's kill does (with cpp_standalone
    # the simulation runs in a child process, which would otherwise go on writing into the build folder)
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    first = output / "checkpoint.npz"
    mtime = first.stat().st_mtime_ns if first.exists() else None
    try:
        while proc.poll() is None:
            if first.exists() and first.stat().st_mtime_ns != mtime:
                break  # a checkpoint of this process
            time.sleep(0.002)
        if proc.poll() is not None:
            assert proc.returncode == 0, proc.stderr.read()[-3000:]
            return False
        time.sleep(rng.uniform(0, max_delay))
        if proc.poll() is not None:
            return False
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        return proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:  # pragma: no cover - only if an assertion failed above
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stderr.close()


def _check_files_complete(output: Path) -> None:
    """Every file under its final name loads completely; temporary files are hidden (``.name.*``)."""
    for path in output.iterdir():
        if path.is_dir() or path.name.startswith("."):
            continue  # build folders; temporary files of an interrupted write never carry a final name
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                for key in data.files:
                    data[key]  # noqa: B018 - reads and checks (CRC) every array
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.name != "task.log":  # a sweep task's log is appended to, line by line
            raise AssertionError(f"unexpected file {path}")


def _assert_same_weights(a: Path, b: Path) -> None:
    with np.load(a) as x, np.load(b) as y:
        assert x.files == y.files
        for key in x.files:
            assert x[key].dtype == y[key].dtype
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)
            assert x[key].tobytes() == y[key].tobytes(), key  # bit for bit (also -0.0 and NaN patterns)


def _test_errors(summary: Path) -> list:
    return [(h["examples"], h["test_error"]) for h in json.loads(summary.read_text())["test_history"]]


def _train_seconds(summary: Path) -> float:
    return float(json.loads(summary.read_text())["train_seconds"])


def _interrupt_and_resume(model, tmp_path, build_cache, kind, target, examples, every, kills, max_delay):
    """Kill the run ``kills`` times at random moments, resume it, compare with an uninterrupted run.

    The random delay after a checkpoint is at most ``max_delay`` seconds and at most half the
    reference run's training time (so that on a fast machine the kill still lands mid-run);
    when every kill came too late (the run had finished), the interrupted run starts over
    with shorter delays, up to four times.
    """
    env = _environment(build_cache)
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    _run(_train_argv(model, reference, kind, target, examples, every), env)
    max_delay = min(max_delay, 0.5 * _train_seconds(reference / "summary.json"))
    rng = np.random.default_rng(KILL_SEED)
    argv = _train_argv(model, interrupted, kind, target, examples, every)
    for _ in range(4):
        mid_run = 0
        for attempt in range(kills):
            if _kill_at_random_moment([*argv, "--resume"] if attempt else argv, env, interrupted, rng, max_delay):
                _check_files_complete(interrupted)
                # (a kill can also come after the summary was written, before the process ended)
                mid_run += not (interrupted / "summary.json").exists()
        if mid_run:
            break
        shutil.rmtree(interrupted)
        max_delay /= 4
    assert mid_run >= 1, "every run finished before it could be killed: make it longer"
    _run([*argv, "--resume"], env)
    _check_files_complete(interrupted)
    # the temporary files of writes that a kill interrupted are cleaned up by the resumed run
    assert not [p.name for p in interrupted.iterdir() if p.name.startswith(".") and ".tmp" in p.name]
    _assert_same_weights(reference / "weights.npz", interrupted / "weights.npz")
    assert _test_errors(reference / "summary.json") == _test_errors(interrupted / "summary.json")


def test_kill_rate_training_and_resume(tiny_model, tmp_path, build_cache):
    """Rate training of 3000 examples, a checkpoint every 100, killed twice at random moments."""
    _interrupt_and_resume(tiny_model, tmp_path, build_cache, "rate", None, 3000, 100, kills=2, max_delay=1.0)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["numpy", pytest.param("cpp_standalone", marks=pytest.mark.standalone)])
def test_kill_spiking_training_and_resume(target, tiny_model, tmp_path, build_cache):
    """Spiking training of 30 examples in chunks of 5 (a checkpoint per chunk), killed once at a random moment."""
    _interrupt_and_resume(tiny_model, tmp_path, build_cache, "spiking", target, 30, 5, kills=1, max_delay=3.0)


# --------------------------------------------------------------------------- a sweep worker dies
def test_killed_sweep_worker_is_retried_and_resumes(tiny_model, tmp_path, capsys):
    """SIGKILL of the worker process mid-task: Dask reruns the task, which resumes from its checkpoint."""
    distributed = pytest.importorskip("distributed")
    from brian_dendrite.sweeps import run_sweep

    examples, every = 3000, 100
    reference = tmp_path / "reference"
    assert main(["train", "--kind", "rate", "--model", str(tiny_model), "--examples", str(examples),
                 "--test-every", str(every), "--test-examples", "20", "--seed", "0", "--data-dir",
                 str(mnist_dir()), "--output", str(reference), "--no-progress"]) == 0
    out = tmp_path / "sweep"
    task = out / "tiny" / "seed0"
    rng = np.random.default_rng(KILL_SEED)
    # the kill comes within the first quarter of the training time after the first checkpoint (mid-task
    # on a fast machine too)
    max_delay = min(1.0, 0.25 * _train_seconds(reference / "summary.json"))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        (pid,) = client.run(os.getpid).values()
        killed = threading.Event()

        def kill_worker():
            deadline = time.time() + 600
            while not (task / "checkpoint.npz").exists() and time.time() < deadline:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, max_delay))
            if not (task / "summary.json").exists():
                os.kill(pid, signal.SIGKILL)
                killed.set()

        killer = threading.Thread(target=kill_worker, daemon=True)
        killer.start()
        rows = run_sweep([str(tiny_model)], [0], kind="rate", examples=examples, test_examples=20,
                         test_every=every, data_dir=mnist_dir(), output=out, scheduler=cluster.scheduler_address,
                         echo=None)
        killer.join(timeout=60)
    assert killed.is_set(), "the task finished before its worker could be killed"
    assert [r["status"] for r in rows] == ["done"], rows
    assert "resumed rate training from" in (task / "task.log").read_text()
    _check_files_complete(task)
    _assert_same_weights(reference / "weights.npz", task / "weights.npz")
    assert _test_errors(reference / "summary.json") == _test_errors(task / "summary.json")


# --------------------------------------------------------------------------- a full disk
def _rate_argv(model, output, examples):
    return ["train", "--kind", "rate", "--model", str(model), "--examples", str(examples), "--test-every", "10",
            "--test-examples", "20", "--seed", "2", "--data-dir", str(mnist_dir()), "--output", str(output),
            "--no-progress"]


def _disk_full_on(monkeypatch, name: str) -> list:
    """Make every atomic write of a file called ``name`` fail with ENOSPC; the temporary files that failed.

    The error comes from ``fsync`` of the temporary file (where a full disk shows when the
    data sit in the page cache): after the data were written, before the rename.
    """
    import brian_dendrite.provenance as provenance

    failed = []
    real_fsync = provenance.os.fsync

    def fsync(fd):
        written = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if written.name.startswith(f".{name}."):
            failed.append(written)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(provenance.os, "fsync", fsync)
    return failed


def _files(directory: Path) -> dict:
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}


@pytest.mark.parametrize("name", ["checkpoint.npz", "summary.json", "weights.npz"])
def test_full_disk_keeps_the_previous_file(name, tiny_model, tmp_path, monkeypatch, capsys):
    """A run of 20, then resumed to 40 on a 'full disk': exit 3, the file named, the previous files intact."""
    out, reference = tmp_path / "run", tmp_path / "reference"
    assert main(_rate_argv(tiny_model, reference, 40)) == 0
    assert main(_rate_argv(tiny_model, out, 20)) == 0
    before = _files(out)
    capsys.readouterr()
    with monkeypatch.context() as m:
        failed = _disk_full_on(m, name)
        rc = main([*_rate_argv(tiny_model, out, 40), "--resume"])
    err = capsys.readouterr().err
    assert failed, f"no write of {name} was attempted"
    assert rc == 3, err
    assert f"could not write {out / name}" in err and "No space left on device" in err, err
    assert "previous file is unchanged" in err and "Traceback" not in err
    assert (out / name).read_bytes() == before[name]  # the previous file, intact
    assert not [p.name for p in out.iterdir() if p.name.startswith(f".{name}.")]  # no temporary file left
    _check_files_complete(out)
    # space again: the run resumes to the result of an uninterrupted one
    assert main([*_rate_argv(tiny_model, out, 40), "--resume"]) == 0
    _assert_same_weights(reference / "weights.npz", out / "weights.npz")
    assert _test_errors(reference / "summary.json") == _test_errors(out / "summary.json")


def test_full_disk_in_a_new_directory_writes_nothing(tiny_model, tmp_path, monkeypatch, capsys):
    """The first checkpoint cannot be written: exit 3, no checkpoint, no temporary file."""
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _disk_full_on(m, "checkpoint.npz")
        rc = main(_rate_argv(tiny_model, out, 20))
    err = capsys.readouterr().err
    assert rc == 3 and "no file was written" in err, err
    assert sorted(p.name for p in out.iterdir()) == []


def _small_recording(directory: Path) -> Path:
    """A hand-made recording (a few spikes of a 784-5-10 network, two phases): enough for the exporters."""
    from brian2 import ms, second

    from brian_dendrite.simulation import RunRecording
    from brian_dendrite.simulation.recording import SpikeTrains

    rec = RunRecording(
        dt=0.1 * ms, duration=0.1 * second, layer_sizes={"input": 784, "hidden": 5, "output": 10},
        spikes={"hidden": SpikeTrains(times=np.array([0.01, 0.02, 0.05]) * second, indices=np.array([0, 3, 1]),
                                      n_neurons=5),
                "output": SpikeTrains(times=np.array([0.03]) * second, indices=np.array([7]), n_neurons=10)},
        phases=np.array([[0.0, 0.05, 0, 0, 3], [0.05, 0.1, 1, 0, 3]]), stimulus=np.array([0]),
        metadata={"description": "hand-made, for the write-fault tests"})
    directory.mkdir(parents=True, exist_ok=True)
    return rec.save(directory / "recording.npz")


@pytest.mark.parametrize(("fmt", "name"), [("nwb", "recording.nwb"), ("sonata", "recording_spikes.h5")])
def test_full_disk_during_export_keeps_the_previous_file(fmt, name, tmp_path, monkeypatch, capsys):
    """An export over an earlier one fails at its rename (ENOSPC): exit 3, the file named, the earlier one intact."""
    if fmt == "sonata":
        pytest.importorskip("brian_dendrite.io.sonata")
    src = _small_recording(tmp_path / "run")
    assert main(["export", str(src), "--format", fmt, "--quiet"]) == 0
    before = (tmp_path / "run" / name).read_bytes()
    capsys.readouterr()
    real_replace = os.replace

    def replace(a, b, *args, **kwargs):
        if Path(b).name == name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(a, b, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(os, "replace", replace)
        rc = main(["export", str(src), "--format", fmt, "--quiet"])
    err = capsys.readouterr().err
    assert rc == 3, err
    assert f"could not write {tmp_path / 'run' / name}" in err and "No space left on device" in err, err
    assert "Traceback" not in err
    assert (tmp_path / "run" / name).read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == sorted({"recording.npz", name})


def test_resume_removes_temporary_files_of_an_interrupted_write(tiny_model, tmp_path, capsys):
    """What a kill during a write leaves (a hidden, partial temporary file) is removed when the run resumes."""
    out = tmp_path / "run"
    assert main(_rate_argv(tiny_model, out, 20)) == 0
    data = (out / "checkpoint.npz").read_bytes()
    stale = [out / ".checkpoint.npz.k9xq2v.tmp.npz", out / ".summary.json.a1b2c3.tmp"]
    stale[0].write_bytes(data[: len(data) // 3])
    stale[1].write_text('{"model": ')
    assert main([*_rate_argv(tiny_model, out, 30), "--resume"]) == 0
    assert not any(p.exists() for p in stale)
    _check_files_complete(out)
    assert json.loads((out / "summary.json").read_text())["examples_trained"] == 30

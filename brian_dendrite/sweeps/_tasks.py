"""One task of a sweep, as a Dask worker runs it: train one (model, seed), or recognise it as done.

A task is described by a *spec*, a plain dict (picklable, so that it travels to
remote workers) made by :func:`brian_dendrite.sweeps._runner.build_specs`:
``model`` (name or resolved path), ``model_text`` (a file's TOML, or None),
``label``, ``seed``, ``kind``, ``target``, ``examples``, ``test_examples``,
``test_every``, ``initial_test``, ``chunk_size``, ``data_dir`` and ``output``
(the task directory).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import socket
import sys
import time
import traceback
from pathlib import Path

from .._brian2_import import QUIET_ENV, quiet_console
from ..datasets import load_mnist
from ..model import ModelParameters, ParameterError, load_model
from ..provenance import write_json_atomic
from ..training import SUMMARY, Trainer, train_rate
from ._table import ERROR_FILE, MNIST_TEST_SIZE, one_line, task_row

logger = logging.getLogger("brian2.brian_dendrite.sweep")

#: Where and how a task ran (host, process, start, status, wall time), in its directory.
TASK_FILE = "task.json"
#: The library's log messages during the task, in its directory.
TASK_LOG = "task.log"

# the build cache of cpp_standalone projects (brian_dendrite.simulation), private to a task while it runs
_BUILD_CACHE = "BRIAN_DENDRITE_BUILD_CACHE"


def run_task(spec: dict) -> dict:
    """Train one (model, seed) of a sweep in ``spec['output']``; executed in a worker process.

    Returns the task's table row (see :data:`RESULT_COLUMNS`). Never raises for
    a failure of the training itself: the traceback is written to ``error.txt``
    in the task directory and the row has status ``failed``.
    """
    t_start = time.time()
    host = socket.gethostname()
    out = Path(spec["output"])
    handler = None
    # a worker of `brian-dendrite sweep --quiet`: warnings and errors only on its console (task.log keeps all)
    restore_console = quiet_console() if os.environ.get(QUIET_ENV) == "1" else None
    old_cache = os.environ.get(_BUILD_CACHE)
    status_info = {"status": "running", "host": host, "pid": os.getpid(), "started": t_start,
                   "model": spec["label"], "seed": spec["seed"], "kind": spec["kind"],
                   "target": spec["target"], "examples": spec["examples"]}
    try:
        _undo_dask_malloc_settings()
        out.mkdir(parents=True, exist_ok=True)
        params = load_params(spec)
        skipped, reason = finished_row(spec, params)
        if skipped is not None:
            return skipped
        write_json_atomic(out / TASK_FILE, status_info)
        handler = _attach_task_log(out)
        if reason is not None:
            logger.info(f"{out / SUMMARY} exists but {reason}: training again")
        logger.info(f"task {spec['label']} seed {spec['seed']} ({spec['kind']}, {spec['examples']} examples) "
                    f"on {host}, process {os.getpid()}")
        summary = _train(spec, params, out, host)
        (out / ERROR_FILE).unlink(missing_ok=True)
        wall = time.time() - t_start
        status_info.update(status="done", finished=time.time(), wall_seconds=wall)
        write_json_atomic(out / TASK_FILE, status_info)
        error = summary["final_test_error"]
        logger.info(f"task {spec['label']} seed {spec['seed']} done in {wall:.0f} s: "
                    + ("not tested" if error is None else f"test error {error:.2f} %"))
        return task_row(spec, "done", summary, wall_seconds=wall, host=host)
    except Exception as err:  # a failed task is reported, never fatal for the sweep
        wall = time.time() - t_start
        message = one_line(err)
        _record_failure(spec, out, status_info, wall, message)
        logger.error(f"task {spec['label']} seed {spec['seed']} failed: {message}")
        return task_row(spec, "failed", wall_seconds=wall, host=host, error=message)
    finally:
        _clean_up(spec, old_cache, handler)
        if restore_console is not None:
            restore_console()


def _train(spec: dict, params, out: Path, host: str) -> dict:
    """Train the task's network in ``out``; the run's summary."""
    train_set = load_mnist("train", data_dir=spec["data_dir"])
    test_set = load_mnist("test", data_dir=spec["data_dir"])
    n = spec["examples"]
    if spec["kind"] == "rate":
        return train_rate(params, train_set, test_set, out, n, seed=spec["seed"],
                          test_examples=spec["test_examples"], test_every=spec["test_every"],
                          initial_test=spec["initial_test"], progress=False)  # no bars from the workers
    _reset_brian2_device()
    if spec["target"] == "cpp_standalone":
        os.environ[_BUILD_CACHE] = str(out / "build" / host)
    trainer = Trainer(params, train_set, test_set, out, seed=spec["seed"], chunk_size=spec["chunk_size"],
                      test_examples=spec["test_examples"], test_every=spec["test_every"],
                      target=spec["target"])
    if trainer.resume() and trainer.progress["examples"] > n:
        raise ValueError(f"the checkpoint in {out} is after {trainer.progress['examples']} examples, more "
                         f"than the {n} asked for: use another --output or more examples")
    summary = trainer.train(n, initial_test=spec["initial_test"])
    history = summary["test_history"]
    if history and history[-1]["test_images"] != trainer.test_examples:
        # resumed at the end with another --test-examples: the last test is the old one
        trainer.test()
        trainer.save_checkpoint()
        summary = trainer.write_summary()
    del trainer
    return summary


def _attach_task_log(out: Path) -> logging.Handler:
    """Send the library's log messages to ``out/task.log`` too, while the task runs."""
    handler = logging.FileHandler(out / TASK_LOG, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("brian2.brian_dendrite").addHandler(handler)
    return handler


def _record_failure(spec: dict, out: Path, status_info: dict, wall: float, message: str) -> None:
    """The traceback of the exception being handled to ``error.txt``, the status to ``task.json``."""
    text = traceback.format_exc()
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / ERROR_FILE).write_text(
            f"model {spec['label']} seed {spec['seed']} failed on {status_info['host']} (process {os.getpid()}) "
            f"after {wall:.1f} s\n\n{text}", encoding="utf-8")
        status_info.update(status="failed", finished=time.time(), wall_seconds=wall, error=message)
        (out / TASK_FILE).write_text(json.dumps(status_info, indent=2), encoding="utf-8")
    except OSError:
        pass


def _clean_up(spec: dict, old_cache: str | None, handler: logging.Handler | None) -> None:
    """Leave the worker process as the task found it, for the next task."""
    if spec["kind"] == "spiking":
        try:
            _reset_brian2_device()
        except Exception:  # pragma: no cover - best effort
            pass
    if old_cache is None:
        os.environ.pop(_BUILD_CACHE, None)
    else:
        os.environ[_BUILD_CACHE] = old_cache
    if handler is not None:
        logging.getLogger("brian2.brian_dendrite").removeHandler(handler)
        handler.close()
    gc.collect()


# --------------------------------------------------------------------------- finished tasks
def load_params(spec: dict) -> ModelParameters:
    """The task's model: from the text of its file if it has one, else by name."""
    if spec.get("model_text") is not None:
        return ModelParameters.from_toml(spec["model_text"], source=spec["model"])
    return load_model(spec["model"])


def finished_row(spec: dict, params) -> tuple[dict | None, str | None]:
    """``(row, None)`` with status ``skipped`` if the task's summary answers it, else ``(None, reason)``.

    ``reason`` is None when there is no summary at all.
    """
    out = Path(spec["output"])
    summary_path = out / SUMMARY
    if not summary_path.exists():
        return None, None
    summary = _read_json(summary_path)
    reason = "it is unreadable" if summary is None else _summary_mismatch(summary, spec, params)
    if reason is not None:
        return None, reason
    previous = _read_json(out / TASK_FILE) or {}
    return task_row(spec, "skipped", summary, wall_seconds=previous.get("wall_seconds"),
                    host=previous.get("host")), None


def _same_parameters(saved, params) -> bool:
    """Whether a summary's parameters are ``params``.

    Parameter fields added to the package after the summary was written are taken
    at their defaults (new fields default to the behaviour of the code before
    them), so adding a field does not make every finished run look foreign.
    """
    if not isinstance(saved, dict):
        return False
    try:
        restored = ModelParameters.from_dict(saved)
    except ParameterError:
        return False
    return json.loads(json.dumps(restored.to_dict())) == json.loads(json.dumps(params.to_dict()))


def _summary_mismatch(summary: dict, spec: dict, params) -> str | None:
    """Why an existing summary does not answer this task (None if it does)."""
    history = summary.get("test_history") or []
    tested = spec["test_examples"] > 0
    wanted = {
        "kind": spec["kind"], "seed": spec["seed"], "examples_trained": spec["examples"],
    }
    if tested:  # an untested task is answered by any summary of its run, tested or not
        wanted["test images"] = min(spec["test_examples"], MNIST_TEST_SIZE)
    found = {
        "kind": summary.get("kind"), "seed": summary.get("seed"),
        "examples_trained": summary.get("examples_trained"),
        "test images": history[-1].get("test_images") if history else None,
    }
    for key, value in wanted.items():
        if found[key] != value:
            return f"{key} is {found[key]!r}, the sweep asks for {value!r}"
    if tested and summary.get("final_test_error") is None:
        return "it has no final test error"
    if not _same_parameters(summary.get("parameters"), params):
        return "it was written for other model parameters"
    return None


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- the worker process
def _reset_brian2_device() -> None:
    """Back to the runtime device, with a standalone device re-initialised (it can be built once only)."""
    from brian2 import get_device, set_device

    device = get_device()
    if type(device).__name__ == "CPPStandaloneDevice":
        device.reinit()
        set_device("runtime")


def _undo_dask_malloc_settings() -> None:
    """Give the task glibc's default memory allocation behaviour back.

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``
    (config ``distributed.nanny.pre-spawn-environ``). Setting it also fixes
    glibc's mmap threshold at 128 KiB, so every array above that size is a fresh
    ``mmap`` whose pages fault in again: the rate model's per-example weight
    updates (500 x 784) ran 4x slower, most of the time in the kernel. The
    thresholds are raised here with ``mallopt`` (arrays up to 32 MiB come from
    the heap again) and the variable is removed so that child processes (the
    cpp_standalone binary) start without it. Linux/glibc only; a no-op elsewhere.
    """
    os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 32 * 2**20)  # the largest value glibc accepts on 64-bit
        libc.mallopt(m_trim_threshold, 64 * 2**20)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass

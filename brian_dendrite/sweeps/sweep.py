"""Sweeps: a grid of models x seeds trained as independent tasks on Dask distributed.

``brian-dendrite sweep --models one_hidden,two_hidden --seeds 0,1 --kind rate
--epochs 60 --output sweep`` trains every (model, seed) pair of the grid in its
own output directory ``OUTPUT/<model>/seed<seed>/`` (``summary.json``,
``weights.npz``, for the spiking network also ``checkpoint.npz``) and gathers
the results into one table, ``OUTPUT/results.csv`` and ``OUTPUT/results.json``,
beside the paper's test error for the models it reports (MODEL.md section 3).

Where the tasks run
-------------------
Training is online SGD with batch size 1, so one run does not parallelise;
what scales out is independent runs (BRIAN2-NOTES.md, "GPUs and more than one
machine"). Every task is one call of :func:`run_task`, a plain function
executed in a Dask worker process, one task at a time per worker:

* by default a :class:`distributed.LocalCluster` with ``--workers`` (default:
  the number of cores available to this process) single-threaded worker
  *processes* (BLAS and OpenMP limited to one thread each by the Dask nanny;
  the nanny's ``MALLOC_TRIM_THRESHOLD_`` is undone in each task, see
  :func:`_undo_dask_malloc_settings`: it made the rate model 4x slower);
* with ``--scheduler ADDRESS`` a :class:`distributed.Client` is connected to an
  existing cluster instead, e.g. one started by ``dask-jobqueue`` on SLURM
  (``SLURMCluster(cores=1, processes=1, ...)``, or ``dask scheduler`` and
  ``dask worker --nthreads 1`` by hand). The workers need the same
  ``brian_dendrite`` installed, and the output directory and ``--data-dir``
  must be visible to them under the same paths (a shared file system). Model
  files given as paths are read here and sent to the workers as text; model
  names are resolved by the workers' installed package.

Reruns, resume and failures
---------------------------
* A task whose ``summary.json`` exists and matches the request (kind, seed,
  number of training examples, number of test images and the model's
  parameters) is not run again: its row is marked ``skipped`` and its numbers
  are read from the existing summary.
* A spiking task continues from its ``checkpoint.npz`` (:meth:`Trainer.resume`),
  so an interrupted sweep loses at most one chunk per task when rerun with the
  same arguments. A rate task (:func:`train_rate`) has no checkpoint and starts
  again from the beginning.
* A task that raises is reported, not fatal: the traceback goes to
  ``OUTPUT/<model>/seed<seed>/error.txt`` and the first line of the error into
  the table (status ``failed``); the other tasks go on. A worker that dies
  (killed, out of memory) is reported the same way by the client.
* The table is rewritten after every finished task, so a long sweep can be
  followed in ``results.csv``; tasks not finished yet are ``pending``. Each task
  directory also has ``task.json`` (host, process, start, status, wall time) and
  ``task.log`` (the library's log messages during the task).

cpp_standalone builds
---------------------
Every spiking task with ``--target cpp_standalone`` compiles its own project,
under ``OUTPUT/<model>/seed<seed>/build/<host>/`` (the task sets
``BRIAN_DENDRITE_BUILD_CACHE`` there while it runs). A build takes tens of
seconds, negligible against a training run, and private builds avoid sharing a
project directory between processes and machines: the project is compiled with
``-march=native``, so a binary built on one node of a cluster may not run on
another, and a task resumed on another host gets a fresh build. (Processes can
share a build: :class:`~brian_dendrite.simulation.network.SpikingNetwork` writes its
results to a per-process directory, and ``brian-dendrite train`` uses the
shared cache.) A worker runs its tasks one after the other in the same
process; the Brian2 device is reset (``device.reinit()``) before and after each
task, because a standalone device can be built only once.

Exit status of :func:`run_sweep_from_args`: 0 if every task succeeded (trained
or skipped), 1 if any failed. Invalid arguments raise :class:`ValueError`.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import platform
import socket
import sys
import time
import traceback
import uuid
from pathlib import Path

__all__ = [
    "PAPER_TEST_ERRORS",
    "RESULT_COLUMNS",
    "add_sweep_arguments",
    "parse_models",
    "parse_seeds",
    "run_sweep",
    "run_sweep_from_args",
    "run_task",
    "task_directory",
]

logger = logging.getLogger("brian2.brian_dendrite.sweep")

#: The paper's MNIST test errors (%) after 60 epochs, where its text gives a number (MODEL.md section 3).
PAPER_TEST_ERRORS = {
    "no_hidden": 8.3,
    "one_hidden": 4.1,
    "two_hidden": 3.2,
    "sparse_feedback": 3.7,
    "symmetric_feedback": 3.6,
}

#: Sizes of the MNIST splits (load_mnist always returns all of a split).
MNIST_TRAIN_SIZE = 60000
MNIST_TEST_SIZE = 10000

#: Columns of results.csv, in order.
RESULT_COLUMNS = [
    "model", "seed", "kind", "target", "examples", "epochs", "test_images", "final_test_error",
    "paper_test_error", "ms_per_example", "train_seconds", "wall_seconds", "status", "host",
    "output", "error",
]

SUMMARY = "summary.json"
ERROR_FILE = "error.txt"
TASK_FILE = "task.json"
TASK_LOG = "task.log"


# --------------------------------------------------------------------------- arguments
def parse_models(text: str) -> list[str]:
    """``"a,b,c"`` -> ``["a", "b", "c"]`` (model names or ``.toml`` paths)."""
    models = [m.strip() for m in str(text).split(",") if m.strip()]
    if not models:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated model names or .toml files")
    return models


def parse_seeds(text: str) -> list[int]:
    """``"0,1,5-7"`` -> ``[0, 1, 5, 6, 7]`` (duplicates removed, order kept)."""
    seeds: list[int] = []
    try:
        for item in str(text).split(","):
            item = item.strip()
            if not item:
                continue
            if "-" in item:
                lo, hi = (int(x) for x in item.split("-", 1))
                if hi < lo:
                    raise ValueError
                seeds.extend(range(lo, hi + 1))
            else:
                seeds.append(int(item))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected comma-separated non-negative integers or ranges such as 0-4") from None
    if not seeds or any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: expected at least one non-negative integer seed")
    return list(dict.fromkeys(seeds))


def add_sweep_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of ``brian-dendrite sweep`` to *parser* (an argparse (sub)parser)."""
    parser.add_argument("--models", type=parse_models, required=True,
                        help="comma-separated model names (see 'brian-dendrite models') and/or .toml files")
    parser.add_argument("--seeds", type=parse_seeds, default=[0], help="comma-separated seeds or ranges, e.g. 0,1 or "
                        "0-4 (default 0)")
    parser.add_argument("--kind", choices=["spiking", "rate"], default="spiking",
                        help="the spiking network (default) or its rate abstraction (numpy)")
    parser.add_argument("--target", choices=["cython", "numpy", "cpp_standalone"], default="cython",
                        help="code generation target of spiking tasks (default cython; ignored for --kind rate)")
    parser.add_argument("--examples", type=int, default=None, help="training examples per task "
                        "(default: --epochs epochs)")
    parser.add_argument("--epochs", type=float, default=1.0, help="epochs of 60,000 examples per task (default 1)")
    parser.add_argument("--test-examples", type=int, default=10000, help="test images (default 10000)")
    parser.add_argument("--test-every", type=int, default=None, metavar="N",
                        help="test every N examples (default: only at the end)")
    parser.add_argument("--initial-test", action="store_true", help="test before training (paper)")
    parser.add_argument("--chunk-size", type=int, default=1000,
                        help="spiking tasks: examples per Brian2 run() and checkpoint (default 1000)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder with the MNIST files, visible to every worker "
                             "(default: $BRIAN_DENDRITE_DATA, else download/cache)")
    parser.add_argument("--output", type=Path, default=Path("sweep"),
                        help="sweep directory: OUTPUT/<model>/seed<seed>/ per task, OUTPUT/results.csv and "
                             "results.json (default ./sweep)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="worker processes of the local cluster (default: the number of cores)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="connect to an existing Dask scheduler (e.g. tcp://host:8786, from dask-jobqueue) "
                             "instead of starting a local cluster")
    return parser


def run_sweep_from_args(args: argparse.Namespace) -> int:
    """Run ``brian-dendrite sweep`` from parsed arguments; 0 if every task succeeded, else 1."""
    rows = run_sweep(
        args.models, args.seeds, kind=args.kind, target=args.target, examples=args.examples,
        epochs=args.epochs, test_examples=args.test_examples, test_every=args.test_every,
        initial_test=getattr(args, "initial_test", False), chunk_size=getattr(args, "chunk_size", 1000),
        data_dir=args.data_dir, output=args.output, workers=args.workers, scheduler=args.scheduler,
    )
    print(format_table(rows))
    out = Path(args.output)
    print(f"results: {out / 'results.csv'} and {out / 'results.json'}")
    return 0 if all(r["status"] in ("done", "skipped") for r in rows) else 1


# --------------------------------------------------------------------------- grid
def model_label(model: str) -> str:
    """Directory and table name of a model argument: the name itself, or a file's stem."""
    path = Path(model)
    if path.suffix == ".toml" or path.exists():
        return path.stem
    return model


def task_directory(output: str | Path, label: str, seed: int) -> Path:
    """``OUTPUT/<model>/seed<seed>``."""
    return Path(output) / label / f"seed{int(seed)}"


def _training_examples(examples: int | None, epochs: float) -> int:
    n = int(examples) if examples is not None else int(round(float(epochs) * MNIST_TRAIN_SIZE))
    if n < 1:
        raise ValueError(f"--examples/--epochs give {n} training examples per task; expected at least 1")
    return n


def _build_specs(models, seeds, *, kind, target, n_examples, test_examples, test_every, initial_test,
                 chunk_size, data_dir, output) -> list[dict]:
    if kind not in ("spiking", "rate"):
        raise ValueError(f"kind = {kind!r}: expected 'spiking' or 'rate'")
    if kind == "spiking" and target not in ("cython", "numpy", "cpp_standalone"):
        raise ValueError(f"target = {target!r}: expected 'cython', 'numpy' or 'cpp_standalone'")
    if test_examples < 1:
        raise ValueError(f"--test-examples = {test_examples}: expected at least 1")
    if test_every is not None and test_every < 1:
        raise ValueError(f"--test-every = {test_every}: expected at least 1")
    if chunk_size < 1:
        raise ValueError(f"--chunk-size = {chunk_size}: expected at least 1")
    models, seeds = list(models), [int(s) for s in seeds]
    if not models or not seeds:
        raise ValueError("a sweep needs at least one model and one seed")
    labels: dict[str, str] = {}
    specs = []
    for model in models:
        label = model_label(model)
        if label in labels and labels[label] != model:
            raise ValueError(f"models {labels[label]!r} and {model!r} would share the output directory "
                             f"{label!r}: rename one of the files")
        if label in labels:
            continue  # the same model twice
        labels[label] = model
        path = Path(model)
        model_text = None
        if path.suffix == ".toml" or path.exists():
            # read here and sent as text: remote workers need not see the file
            if not path.is_file():
                raise FileNotFoundError(f"model file {path} does not exist")
            model_text = path.read_text(encoding="utf-8")
            model = str(path.resolve())
        for seed in seeds:
            specs.append({
                "model": model, "model_text": model_text, "label": label, "seed": seed, "kind": kind,
                "target": target if kind == "spiking" else "numpy", "examples": n_examples,
                "test_examples": int(test_examples), "test_every": test_every,
                "initial_test": bool(initial_test), "chunk_size": int(chunk_size),
                "data_dir": None if data_dir is None else str(Path(data_dir).expanduser().resolve()),
                "output": str(task_directory(output, label, seed)),
            })
    return specs


def _row(spec: dict, status: str, summary: dict | None = None, wall_seconds=None, host=None,
         error: str = "") -> dict:
    row = {c: None for c in RESULT_COLUMNS}
    row.update({
        "model": spec["label"], "seed": spec["seed"], "kind": spec["kind"], "target": spec["target"],
        "examples": spec["examples"], "epochs": spec["examples"] / MNIST_TRAIN_SIZE,
        "test_images": min(spec["test_examples"], MNIST_TEST_SIZE),
        "paper_test_error": PAPER_TEST_ERRORS.get(spec["label"]), "status": status, "host": host,
        "output": spec["output"], "wall_seconds": wall_seconds, "error": error,
    })
    if summary is not None:
        history = summary.get("test_history") or []
        row.update({
            "target": summary.get("target", row["target"]),
            "examples": summary.get("examples_trained", row["examples"]),
            "epochs": summary.get("epochs_completed", row["epochs"]),
            "test_images": history[-1].get("test_images") if history else None,
            "final_test_error": summary.get("final_test_error"),
            "ms_per_example": summary.get("ms_per_example"),
            "train_seconds": summary.get("train_seconds"),
        })
        if row["paper_test_error"] is None:
            row["paper_test_error"] = PAPER_TEST_ERRORS.get(summary.get("model"))
    return row


# --------------------------------------------------------------------------- the task
def _load_params(spec: dict):
    from ..model import ModelParameters, load_model

    if spec.get("model_text") is not None:
        return ModelParameters.from_toml(spec["model_text"], source=spec["model"])
    return load_model(spec["model"])


def _same_parameters(saved, params) -> bool:
    """Whether a summary's parameters are ``params``.

    Parameter fields added to the package after the summary was written are taken
    at their defaults (new fields default to the behaviour of the code before
    them), so adding a field does not make every finished run look foreign.
    """
    from ..model import ModelParameters, ParameterError

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
    wanted = {
        "kind": spec["kind"], "seed": spec["seed"], "examples_trained": spec["examples"],
        "test images": min(spec["test_examples"], MNIST_TEST_SIZE),
    }
    found = {
        "kind": summary.get("kind"), "seed": summary.get("seed"),
        "examples_trained": summary.get("examples_trained"),
        "test images": history[-1].get("test_images") if history else None,
    }
    for key, value in wanted.items():
        if found[key] != value:
            return f"{key} is {found[key]!r}, the sweep asks for {value!r}"
    if summary.get("final_test_error") is None:
        return "it has no final test error"
    if not _same_parameters(summary.get("parameters"), params):
        return "it was written for other model parameters"
    return None


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _finished_row(spec: dict, params) -> tuple[dict | None, str | None]:
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
    return _row(spec, "skipped", summary, wall_seconds=previous.get("wall_seconds"),
                host=previous.get("host")), None


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
    old_cache = os.environ.get("BRIAN_DENDRITE_BUILD_CACHE")
    status_info = {"status": "running", "host": host, "pid": os.getpid(), "started": t_start,
                   "model": spec["label"], "seed": spec["seed"], "kind": spec["kind"],
                   "target": spec["target"], "examples": spec["examples"]}
    try:
        _undo_dask_malloc_settings()
        out.mkdir(parents=True, exist_ok=True)
        from ..provenance import write_json_atomic

        params = _load_params(spec)
        summary_path = out / SUMMARY
        skipped, reason = _finished_row(spec, params)
        if skipped is not None:
            return skipped
        write_json_atomic(out / TASK_FILE, status_info)
        handler = logging.FileHandler(out / TASK_LOG, encoding="utf-8")
        handler.setLevel(logging.INFO)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger("brian2.brian_dendrite").addHandler(handler)
        if reason is not None:
            logger.info(f"{summary_path} exists but {reason}: training again")
        logger.info(f"task {spec['label']} seed {spec['seed']} ({spec['kind']}, {spec['examples']} examples) "
                    f"on {host}, process {os.getpid()}")

        from ..datasets import load_mnist

        train_set = load_mnist("train", data_dir=spec["data_dir"])
        test_set = load_mnist("test", data_dir=spec["data_dir"])
        n = spec["examples"]
        if spec["kind"] == "rate":
            from ..training import train_rate

            summary = train_rate(params, train_set, test_set, out, n, seed=spec["seed"],
                                 test_examples=spec["test_examples"], test_every=spec["test_every"],
                                 initial_test=spec["initial_test"])
        else:
            from ..training import Trainer

            _reset_brian2_device()
            if spec["target"] == "cpp_standalone":
                os.environ["BRIAN_DENDRITE_BUILD_CACHE"] = str(out / "build" / host)
            trainer = Trainer(params, train_set, test_set, out, seed=spec["seed"], chunk_size=spec["chunk_size"],
                              test_examples=spec["test_examples"], test_every=spec["test_every"],
                              target=spec["target"])
            if trainer.resume() and trainer.progress["examples"] > n:
                raise ValueError(f"the checkpoint in {out} is after {trainer.progress['examples']} examples, more "
                                 f"than the {n} asked for: use another --output or more examples")
            summary = trainer.train(n, initial_test=spec["initial_test"])
            if summary["test_history"][-1]["test_images"] != trainer.test_examples:
                # resumed at the end with another --test-examples: the last test is the old one
                trainer.test()
                trainer.save_checkpoint()
                summary = trainer.write_summary()
            del trainer
        (out / ERROR_FILE).unlink(missing_ok=True)
        wall = time.time() - t_start
        status_info.update(status="done", finished=time.time(), wall_seconds=wall)
        write_json_atomic(out / TASK_FILE, status_info)
        logger.info(f"task {spec['label']} seed {spec['seed']} done in {wall:.0f} s: "
                    f"test error {summary['final_test_error']:.2f} %")
        return _row(spec, "done", summary, wall_seconds=wall, host=host)
    except Exception as err:  # a failed task is reported, never fatal for the sweep
        wall = time.time() - t_start
        text = traceback.format_exc()
        message = _one_line(err)
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / ERROR_FILE).write_text(
                f"model {spec['label']} seed {spec['seed']} failed on {host} (process {os.getpid()}) "
                f"after {wall:.1f} s\n\n{text}", encoding="utf-8")
            status_info.update(status="failed", finished=time.time(), wall_seconds=wall, error=message)
            (out / TASK_FILE).write_text(json.dumps(status_info, indent=2), encoding="utf-8")
        except OSError:
            pass
        logger.error(f"task {spec['label']} seed {spec['seed']} failed: {message}")
        return _row(spec, "failed", wall_seconds=wall, host=host, error=message)
    finally:
        if spec["kind"] == "spiking":
            try:
                _reset_brian2_device()
            except Exception:  # pragma: no cover - best effort
                pass
        if old_cache is None:
            os.environ.pop("BRIAN_DENDRITE_BUILD_CACHE", None)
        else:
            os.environ["BRIAN_DENDRITE_BUILD_CACHE"] = old_cache
        if handler is not None:
            logging.getLogger("brian2.brian_dendrite").removeHandler(handler)
            handler.close()
        import gc

        gc.collect()


def _one_line(err: BaseException) -> str:
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return text if len(text) <= 300 else text[:297] + "..."


# --------------------------------------------------------------------------- the sweep
def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _write_results(output: Path, rows: list[dict], meta: dict) -> None:
    from ..provenance import write_json_atomic

    write_json_atomic(output / "results.json", {"sweep": meta, "results": rows})
    tmp = output / ".results.csv.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=RESULT_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in RESULT_COLUMNS})
    os.replace(tmp, output / "results.csv")


def run_sweep(models, seeds, *, kind: str = "spiking", target: str = "cython", examples: int | None = None,
              epochs: float = 1.0, test_examples: int = 10000, test_every: int | None = None,
              initial_test: bool = False, chunk_size: int = 1000, data_dir=None, output="sweep",
              workers: int | None = None, scheduler: str | None = None, echo=print) -> list[dict]:
    """Train every (model, seed) of the grid as a Dask task; return the table rows.

    Parameters mirror the command line (see :func:`add_sweep_arguments`).
    ``echo`` receives one progress line per finished task (``None``: silent).
    The rows are in grid order (models, then seeds) and are also written to
    ``output/results.csv`` and ``output/results.json``.
    """
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ValueError("brian-dendrite sweep needs Dask distributed: pip install 'brian_dendrite[sweep]' "
                         "(or 'dask[distributed]')") from None
    n_examples = _training_examples(examples, epochs)
    if scheduler is not None and workers is not None:
        raise ValueError("--workers sets the size of the local cluster; with --scheduler the existing cluster "
                         "decides how many workers there are")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers = {workers}: expected at least 1")
    output = Path(output).expanduser().resolve()
    output.mkdir(parents=True, exist_ok=True)
    specs = _build_specs(models, seeds, kind=kind, target=target, n_examples=n_examples,
                         test_examples=test_examples, test_every=test_every, initial_test=initial_test,
                         chunk_size=chunk_size, data_dir=data_dir, output=output)
    if data_dir is not None and scheduler is None and not Path(data_dir).expanduser().is_dir():
        raise FileNotFoundError(f"--data-dir {data_dir} is not a folder")
    n_workers = workers if workers is not None else _default_workers()
    meta = {"models": list(models), "seeds": [int(s) for s in seeds], "kind": kind,
            "target": target if kind == "spiking" else "numpy", "examples": n_examples,
            "test_examples": test_examples, "test_every": test_every, "initial_test": initial_test,
            "chunk_size": chunk_size, "data_dir": specs[0]["data_dir"], "output": str(output),
            "scheduler": scheduler or f"LocalCluster({n_workers} single-threaded worker processes)",
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": socket.gethostname(),
            "python": platform.python_version(), "command": " ".join(sys.argv)}
    rows = [_row(s, "pending") for s in specs]
    say = echo or (lambda *a, **k: None)
    # finished tasks are recognised here already (the workers check again): a sweep whose
    # tasks are all done starts no cluster
    todo = []
    for i, spec in enumerate(specs):
        try:
            row, _ = _finished_row(spec, _load_params(spec))
        except Exception:  # an invalid model: its task reports the error
            row = None
        if row is None:
            todo.append(i)
        else:
            rows[i] = row
    _write_results(output, rows, meta)
    skipped = len(specs) - len(todo)
    if skipped:
        say(f"sweep: {skipped} of {len(specs)} tasks already done in {output}: skipped")
    if not todo:
        meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        meta["wall_seconds"] = 0.0
        _write_results(output, rows, meta)
        return rows
    if scheduler is None and data_dir is None:
        # fetch MNIST into the cache once here, not concurrently in every worker
        from ..datasets import load_mnist

        load_mnist("train")
        load_mnist("test")

    t0 = time.time()
    cluster = None
    try:
        if scheduler is None:
            n_workers = min(n_workers, len(todo))  # no idle workers
            meta["scheduler"] = f"LocalCluster({n_workers} single-threaded worker processes)"
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0")  # any free port: sweeps may run side by side
            client = Client(cluster)
        else:
            client = Client(scheduler)
        with client:
            say(f"sweep: {len(todo)} tasks to run ({len(set(s['label'] for s in specs))} models x "
                f"{len(set(s['seed'] for s in specs))} seeds, {kind}, {n_examples} examples each) on "
                f"{meta['scheduler']}; output {output}")
            run_id = uuid.uuid4().hex[:8]
            futures = {}
            for i in todo:
                spec = specs[i]
                fut = client.submit(run_task, spec, key=f"brian-dendrite-{spec['label']}-seed{spec['seed']}-{run_id}",
                                    pure=False)
                futures[fut] = i
            for done, fut in enumerate(as_completed(futures), start=skipped + 1):
                i = futures[fut]
                spec = specs[i]
                try:
                    row = fut.result()
                except BaseException as err:  # the worker died or the task could not be run at all
                    if isinstance(err, KeyboardInterrupt):
                        raise
                    row = _client_side_failure(spec, err)
                rows[i] = row
                _write_results(output, rows, meta)
                say(_progress_line(done, len(specs), row))
    finally:
        if cluster is not None:
            cluster.close()
        meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        meta["wall_seconds"] = time.time() - t0
        _write_results(output, rows, meta)
    return rows


def _client_side_failure(spec: dict, err: BaseException) -> dict:
    message = _one_line(err)
    out = Path(spec["output"])
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / ERROR_FILE).write_text(
            f"model {spec['label']} seed {spec['seed']}: the task did not return (reported by the client)\n\n"
            + "".join(traceback.format_exception(type(err), err, err.__traceback__)), encoding="utf-8")
    except OSError:
        pass
    return _row(spec, "failed", error=message)


# --------------------------------------------------------------------------- display
def _fmt(value, spec: str = "", none: str = "-") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return none
    return format(value, spec) if spec else str(value)


def _fmt_duration(seconds) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _progress_line(done: int, total: int, row: dict) -> str:
    head = f"[{done}/{total}] {row['model']} seed {row['seed']}: {row['status']}"
    if row["status"] == "failed":
        return f"{head}: {row['error']}"
    paper = "" if row["paper_test_error"] is None else f" (paper {row['paper_test_error']} %)"
    return (f"{head}, test error {_fmt(row['final_test_error'], '.2f')} %{paper}, "
            f"{_fmt(row['ms_per_example'], '.3f')} ms/example, wall {_fmt_duration(row['wall_seconds'])}")


def format_table(rows: list[dict]) -> str:
    """The rows as a fixed-width text table."""
    header = ["model", "seed", "kind", "target", "examples", "epochs", "error %", "paper %", "ms/example",
              "wall", "status"]
    lines = []
    for r in rows:
        lines.append([
            str(r["model"]), str(r["seed"]), str(r["kind"]), str(r["target"]), _fmt(r["examples"]),
            _fmt(r["epochs"], ".4g"), _fmt(r["final_test_error"], ".2f"), _fmt(r["paper_test_error"]),
            _fmt(r["ms_per_example"], ".3f"), _fmt_duration(r["wall_seconds"]), str(r["status"]),
        ])
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    left = {0, 2, 3, 10}

    def render(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    out = [render(header), "  ".join("-" * w for w in widths)]
    out.extend(render(line) for line in lines)
    failed = [r for r in rows if r["status"] == "failed"]
    for r in failed:
        out.append(f"failed: {r['model']} seed {r['seed']}: {r['error']} (see {Path(r['output']) / ERROR_FILE})")
    return "\n".join(out)

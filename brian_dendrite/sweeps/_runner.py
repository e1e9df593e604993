"""A sweep: the grid of tasks, the Dask client that runs them, and the table kept up to date."""

from __future__ import annotations

import os
import platform
import socket
import sys
import time
import traceback
import uuid
from pathlib import Path

from .._progress import NullBar, progress_bar, write_above
from ..datasets import load_mnist
from ._table import ERROR_FILE, MNIST_TRAIN_SIZE, one_line, progress_line, task_row, write_results
from ._tasks import finished_row, load_params, run_task


def run_sweep(models, seeds, *, kind: str = "spiking", target: str = "cython", examples: int | None = None,
              epochs: float = 1.0, test_examples: int = 10000, test_every: int | None = None,
              initial_test: bool = False, chunk_size: int = 1000, data_dir=None, output="sweep",
              workers: int | None = None, scheduler: str | None = None, echo=print,
              progress: bool = True, order: str = "seeds") -> list[dict]:
    """Train every (model, seed) of the grid as a Dask task; return the table rows.

    Parameters mirror the command line (see :func:`add_sweep_arguments`).
    ``echo`` receives one progress line per finished task (``None``: silent);
    ``progress`` shows a progress bar of the tasks with an ETA on stderr.
    ``order`` is the order in which the tasks start: ``"seeds"`` (default) runs
    every model with the first seed before any model's second seed, so that a
    seed study that is stopped early has the same number of seeds for every
    condition; ``"models"`` runs all seeds of the first model first (see
    :func:`submission_order`). It changes no task's result.
    The rows are in grid order (models, then seeds) and are also written to
    ``output/results.csv`` and ``output/results.json``.
    """
    distributed = _import_distributed()
    n_examples = _training_examples(examples, epochs)
    if order not in ORDERS:
        raise ValueError(f"order = {order!r}: expected one of {', '.join(ORDERS)}")
    if scheduler is not None and workers is not None:
        raise ValueError("--workers sets the size of the local cluster; with --scheduler the existing cluster "
                         "decides how many workers there are")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers = {workers}: expected at least 1")
    output = Path(output).expanduser().resolve()
    specs = build_specs(models, seeds, kind=kind, target=target, n_examples=n_examples,
                        test_examples=test_examples, test_every=test_every, initial_test=initial_test,
                        chunk_size=chunk_size, data_dir=data_dir, output=output)
    if data_dir is not None and scheduler is None and not Path(data_dir).expanduser().is_dir():
        raise FileNotFoundError(f"--data-dir {data_dir} is not a folder")
    try:  # only now, when every option has been checked
        output.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"--output {output} cannot be created: {err}") from None
    n_workers = workers if workers is not None else _default_workers()
    meta = {"models": list(models), "seeds": [int(s) for s in seeds], "kind": kind,
            "target": target if kind == "spiking" else "numpy", "examples": n_examples,
            "test_examples": test_examples, "test_every": test_every, "initial_test": initial_test,
            "chunk_size": chunk_size, "data_dir": specs[0]["data_dir"], "output": str(output),
            "scheduler": scheduler or f"LocalCluster({n_workers} single-threaded worker processes)",
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": socket.gethostname(),
            "python": platform.python_version(), "command": " ".join(sys.argv), "order": order}
    rows = [task_row(s, "pending") for s in specs]
    say = echo or (lambda *a, **k: None)
    # finished tasks are recognised here already (the workers check again): a sweep whose
    # tasks are all done starts no cluster
    todo = _unfinished(specs, rows)
    write_results(output, rows, meta)
    skipped = len(specs) - len(todo)
    if skipped:
        say(f"sweep: {skipped} of {len(specs)} tasks already done in {output}: skipped")
    if not todo:
        meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        meta["wall_seconds"] = 0.0
        write_results(output, rows, meta)
        return rows
    if scheduler is None and data_dir is None:
        # fetch MNIST into the cache once here, not concurrently in every worker
        load_mnist("train")
        load_mnist("test")
    t0 = time.time()
    try:
        _run_on_dask(distributed, specs, submission_order(specs, todo, order), rows, meta, output,
                     scheduler=scheduler, n_workers=n_workers, say=say, progress=progress)
    finally:
        meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        meta["wall_seconds"] = time.time() - t0
        write_results(output, rows, meta)
    return rows


def _import_distributed():
    """The module ``distributed``, or a ValueError saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise ValueError("brian-dendrite sweep needs Dask distributed: pip install 'brian_dendrite[sweep]' "
                         "(or 'dask[distributed]')") from None
    return distributed


def _run_on_dask(distributed, specs: list[dict], todo: list[int], rows: list[dict], meta: dict, output: Path, *,
                 scheduler: str | None, n_workers: int, say, progress: bool = False) -> None:
    """Run the tasks ``todo`` (indices into ``specs``) on Dask; fill ``rows`` and rewrite the table as they finish."""
    cluster = None
    bar = NullBar()
    try:
        if scheduler is None:
            n_workers = min(n_workers, len(todo))  # no idle workers
            meta["scheduler"] = f"LocalCluster({n_workers} single-threaded worker processes)"
            cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                               dashboard_address=":0")  # any free port: sweeps may run side by side
            client = distributed.Client(cluster)
        else:
            client = distributed.Client(scheduler)
        with client:
            say(f"sweep: {len(todo)} tasks to run ({len(set(s['label'] for s in specs))} models x "
                f"{len(set(s['seed'] for s in specs))} seeds, {meta['kind']}, {meta['examples']} examples each) on "
                f"{meta['scheduler']}; output {output}")
            run_id = uuid.uuid4().hex[:8]
            futures = {}
            for rank, i in enumerate(todo):  # in this order: a higher Dask priority starts first
                spec = specs[i]
                fut = client.submit(run_task, spec, key=f"brian-dendrite-{spec['label']}-seed{spec['seed']}-{run_id}",
                                    pure=False, priority=len(todo) - rank)
                futures[fut] = i
            skipped = len(specs) - len(todo)
            bar = progress_bar(len(specs), "sweep", "task", enabled=progress, initial=skipped)
            for done, fut in enumerate(distributed.as_completed(futures), start=skipped + 1):
                i = futures[fut]
                try:
                    row = fut.result()
                except BaseException as err:  # the worker died or the task could not be run at all
                    if isinstance(err, KeyboardInterrupt):
                        raise
                    row = _client_side_failure(specs[i], err)
                rows[i] = row
                write_results(output, rows, meta)
                write_above(bar, progress_line(done, len(specs), row), say)
                bar.update(1)
    finally:
        bar.close()
        if cluster is not None:
            cluster.close()


ORDERS = ("seeds", "models")


def submission_order(specs: list[dict], todo: list[int], order: str = "seeds") -> list[int]:
    """The tasks ``todo`` (indices into ``specs``, which are in grid order) in the order they should start.

    ``"models"``: grid order (all seeds of the first model, then the next model).
    ``"seeds"``: the first seed of every model, then the second seed of every
    model, ... (models in grid order within a seed; seeds in the order given).
    """
    if order == "models":
        return list(todo)
    if order != "seeds":
        raise ValueError(f"order = {order!r}: expected one of {', '.join(ORDERS)}")
    seed_rank: dict[int, int] = {}
    for spec in specs:
        seed_rank.setdefault(spec["seed"], len(seed_rank))
    return sorted(todo, key=lambda i: (seed_rank[specs[i]["seed"]], i))


def _unfinished(specs: list[dict], rows: list[dict]) -> list[int]:
    """Indices of the tasks still to run; the rows of the others become their ``skipped`` rows."""
    todo = []
    for i, spec in enumerate(specs):
        try:
            row, _ = finished_row(spec, load_params(spec))
        except Exception:  # an invalid model: its task reports the error
            row = None
        if row is None:
            todo.append(i)
        else:
            rows[i] = row
    return todo


def _client_side_failure(spec: dict, err: BaseException) -> dict:
    message = one_line(err)
    out = Path(spec["output"])
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / ERROR_FILE).write_text(
            f"model {spec['label']} seed {spec['seed']}: the task did not return (reported by the client)\n\n"
            + "".join(traceback.format_exception(type(err), err, err.__traceback__)), encoding="utf-8")
    except OSError:
        pass
    return task_row(spec, "failed", error=message)


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------- the grid
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


def build_specs(models, seeds, *, kind, target, n_examples, test_examples, test_every, initial_test,
                chunk_size, data_dir, output) -> list[dict]:
    """The task specs of the grid, models then seeds (see :mod:`._tasks`); a ValueError for invalid arguments."""
    _check_task_options(kind, target, test_examples, test_every, chunk_size)
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


def _check_task_options(kind, target, test_examples, test_every, chunk_size) -> None:
    if kind not in ("spiking", "rate"):
        raise ValueError(f"kind = {kind!r}: expected 'spiking' or 'rate'")
    if kind == "spiking" and target not in ("cython", "numpy", "cpp_standalone"):
        raise ValueError(f"target = {target!r}: expected 'cython', 'numpy' or 'cpp_standalone'")
    if test_examples < 0:
        raise ValueError(f"--test-examples = {test_examples}: expected 0 or more (0: the tasks are not tested)")
    if test_every is not None and test_every < 0:
        raise ValueError(f"--test-every = {test_every}: expected 0 or more (0: a test only at the end)")
    if chunk_size < 1:
        raise ValueError(f"--chunk-size = {chunk_size}: expected at least 1")

"""The results table of a sweep: one row per task, written as CSV and JSON, shown as text."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from ..paper import TEST_ERRORS
from ..provenance import write_json_atomic, write_text_atomic

#: Sizes of the MNIST splits (load_mnist always returns all of a split).
MNIST_TRAIN_SIZE = 60000
MNIST_TEST_SIZE = 10000

#: Columns of results.csv, in order.
RESULT_COLUMNS = [
    "model", "seed", "kind", "target", "examples", "epochs", "test_images", "final_test_error",
    "paper_test_error", "ms_per_example", "train_seconds", "wall_seconds", "status", "host",
    "output", "error",
]

#: The traceback of a failed task, in its directory.
ERROR_FILE = "error.txt"


def task_row(spec: dict, status: str, summary: dict | None = None, wall_seconds=None, host=None,
             error: str = "") -> dict:
    """The table row of a task (see :data:`RESULT_COLUMNS`), with its numbers from ``summary`` if given."""
    row = {c: None for c in RESULT_COLUMNS}
    row.update({
        "model": spec["label"], "seed": spec["seed"], "kind": spec["kind"], "target": spec["target"],
        "examples": spec["examples"], "epochs": spec["examples"] / MNIST_TRAIN_SIZE,
        "test_images": min(spec["test_examples"], MNIST_TEST_SIZE),
        "paper_test_error": TEST_ERRORS.get(spec["label"]), "status": status, "host": host,
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
            row["paper_test_error"] = TEST_ERRORS.get(summary.get("model"))
    return row


def one_line(err: BaseException) -> str:
    """An exception as one line of at most 300 characters, for the table."""
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return text if len(text) <= 300 else text[:297] + "..."


def write_results(output: Path, rows: list[dict], meta: dict) -> None:
    """``output/results.json`` (the sweep's ``meta`` and the rows) and ``output/results.csv``, atomically."""
    write_json_atomic(output / "results.json", {"sweep": meta, "results": rows})
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=RESULT_COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in RESULT_COLUMNS})
    write_text_atomic(output / "results.csv", text.getvalue())


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


def progress_line(done: int, total: int, row: dict) -> str:
    """One line on a finished task: ``[done/total] model seed s: status, ...``."""
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

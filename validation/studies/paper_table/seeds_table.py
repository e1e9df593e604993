"""The paper's table over seeds: means, 95 % confidence intervals and the paper's orderings.

Two steps, both from the repository root:

1. ``collect``: copy the ``summary.json`` of every run under the given sweep directories
   (``<sweep>/<model>/seed<seed>/summary.json``) into the committed folder
   ``validation/studies/paper_table/summaries/<kind>/<model>/seed<seed>.json``, so that the
   table can be regenerated without the run folders::

       python validation/studies/paper_table/seeds_table.py collect runs/sweep_rate_seed1 ...

2. ``table``: read the committed summaries and write ``seeds_table.md``,
   ``seeds_table.json`` and ``learning_curves_seeds_<kind>.png`` into ``--out``::

       python validation/studies/paper_table/seeds_table.py table --kind rate

Statistics (stated in the table it writes): per condition, the mean test error over
seeds with a two-sided 95 % confidence interval from Student's t distribution
(``mean +- t_{0.975, n-1} * sd / sqrt(n)``, sd with ``n - 1``); per ordering that the
paper states, the paired difference ``A - B`` over the seeds both conditions have (the
same seed gives both conditions the same data order) with its t interval. An ordering
counts as *reproduced* when the interval lies on the paper's side of zero, *reversed*
when it lies on the other side, and *not resolved* when it contains zero. The paper's
"very little difference" (g_A = 0.05 against 0) counts as reproduced when the interval
contains zero and lies within +-:data:`EQUIVALENCE_MARGIN` percentage points.

Only the run summaries are read; the paper's numbers come from :mod:`brian_dendrite.paper`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
from scipy import stats

from brian_dendrite.paper import REPORTED, TEST_ERRORS
from brian_dendrite.provenance import write_json_atomic

HERE = Path(__file__).resolve().parent
SUMMARIES = HERE / "summaries"

#: Percentage points within which a paired difference counts as "very little difference".
EQUIVALENCE_MARGIN = 0.25

#: The orderings the paper states: (A, relation, B, the paper's words, epoch).
#: relation ``<``: A has the lower test error; ``~``: very little difference. ``epoch`` is
#: the epoch the paper compares at (60, the end of training, unless the paper says otherwise).
ORDERINGS = (
    ("two_hidden", "<", "one_hidden", "two hidden layers 3.2 % vs one 4.1 % (Fig. 6B)", 60),
    ("one_hidden", "<", "no_hidden", "one hidden layer 4.1 % vs none 8.3 % (Fig. 6B)", 60),
    ("sparse_feedback", "<", "one_hidden", "sparse feedback (x5) 3.7 % vs regular 4.1 % (Fig. 8B)", 60),
    ("one_hidden", "<", "sparse_feedback_unamplified", "sparse feedback without amplification worse than "
     "regular, 20 epochs (Fig. 8, suppl. 1)", 20),
    ("symmetric_feedback", "<", "one_hidden", "symmetric feedback 3.6 % vs random 4.1 % (Fig. 8D)", 60),
    ("one_hidden", "<", "noisy_symmetric_feedback", "noisy symmetric slightly worse than random (Fig. 8D)", 60),
    ("symmetric_feedback", "<", "noisy_symmetric_feedback", "implied by the two above: symmetric better than "
     "noisy symmetric (Fig. 8D)", 60),
    ("two_hidden_apical_0_05", "~", "two_hidden", "g_A = 0.05: very little difference from g_A = 0 (Fig. 9B)", 60),
    ("two_hidden", "<", "two_hidden_apical_0_6", "g_A = 0.6 significantly impaired (Fig. 9B)", 60),
)


def summary_path(root: Path, kind: str, model: str, seed: int) -> Path:
    return root / kind / model / f"seed{seed}.json"


def run_directories(directory: Path) -> list[Path]:
    """The run folders in ``directory``: itself if it is one (a ``train --output`` folder), else a sweep's."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such sweep directory or run folder")
    if (directory / "summary.json").is_file() or (directory / "checkpoint.npz").is_file():
        return [directory]
    return sorted(p for p in directory.glob("*/seed*") if p.is_dir())


def partial_summary(run: Path) -> dict | None:
    """A summary of the unfinished run in ``run`` from its ``checkpoint.npz`` (None if it has none).

    The tests made so far (``test_history``), the examples trained, the code history and
    ``"status": "in progress"``; no final test error. Only the checkpoint's JSON header is read.
    """
    path = Path(run) / "checkpoint.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
    except (OSError, ValueError, KeyError, EOFError) as err:
        raise ValueError(f"{path}: unreadable checkpoint ({type(err).__name__}: {err})") from None
    import tomllib

    name = tomllib.loads(meta["params"]).get("name")
    progress = meta.get("progress") or {}
    examples = progress.get("examples", meta.get("examples"))
    chunks = progress.get("chunk_ms_per_example") or []
    return {"model": name, "kind": meta.get("kind", "spiking"), "target": meta.get("target"),
            "seed": meta["seed"], "status": "in progress", "examples_trained": examples,
            "epochs_completed": None if examples is None else examples / 60000,
            "final_test_error": None, "test_history": meta.get("history") or [],
            "ms_per_example_median_chunk": float(np.median(chunks[1:])) if len(chunks) > 1 else None,
            "code_history": meta.get("code_history") or [],
            "source": "checkpoint.npz of an unfinished run (seeds_table.py collect --partial)"}


def _replaces(new: dict, target: Path) -> bool:
    """Whether ``new`` may replace the summary in ``target``: a partial summary never replaces a longer run."""
    if new.get("status") != "in progress" or not target.exists():
        return True
    old = json.loads(target.read_text())
    return old.get("status") == "in progress" or (old.get("examples_trained") or 0) < (new["examples_trained"] or 0)


def collect(directories, into: Path = SUMMARIES, commit: str | None = None, partial: bool = False) -> list[Path]:
    """Copy every run's summary.json under ``directories`` into ``into``; returns the files written.

    ``directories``: sweep directories (``<model>/seed<k>/`` inside) or run folders.
    ``commit``: the git commit of the source the runs were made from, recorded where the run
    could not record one itself (runs made from an exported copy of the tree, outside git);
    such entries get ``"git_commit_source": "seeds_table.py collect --commit"``.
    ``partial``: also unfinished runs, from their checkpoints (:func:`partial_summary`); such a
    summary is replaced when the run is collected again, and replaces no longer run.
    """
    written = []
    for directory in directories:
        for run in run_directories(directory):
            path = run / "summary.json"
            if path.is_file():
                summary = json.loads(path.read_text())
            elif partial:
                summary = partial_summary(run)
                if summary is None:
                    continue
            else:
                continue
            missing = [k for k in ("model", "kind", "seed", "test_history") if k not in summary]
            if missing:
                raise ValueError(f"{path}: not a run summary (no {', '.join(missing)})")
            for entry in summary.get("code_history") or []:
                if commit and not entry.get("git_commit"):
                    entry["git_commit"] = commit
                    entry["git_commit_source"] = "seeds_table.py collect --commit"
            target = summary_path(into, summary["kind"], summary["model"], int(summary["seed"]))
            if not _replaces(summary, target):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(target, summary)
            written.append(target)
    return written


def from_runs_json(path: Path, into: Path = SUMMARIES, kind: str = "rate") -> list[Path]:
    """Summaries of the runs recorded in ``paper_table_runs.json`` (whose run folders were not kept).

    Each gets what the table needs (model, kind, seed, the per-epoch test errors, the commit and
    versions the run recorded) and ``"source"`` naming the file it was rebuilt from. An existing
    summary of the same run (a full summary.json) is never replaced.
    """
    written = []
    for run in json.loads(Path(path).read_text()):
        if run["kind"] != kind:
            continue
        target = summary_path(into, run["kind"], run["model"], int(run["seed"]))
        if target.exists():
            continue
        history = [{"examples": int(round(epoch * 60000)), "test_error": error, "test_images": images}
                   for epoch, error, images in run["history"]]
        summary = {"model": run["model"], "kind": run["kind"], "target": run.get("target"), "seed": run["seed"],
                   "examples_trained": run["examples"], "final_test_error": run["final"],
                   "test_history": history, "ms_per_example": run.get("ms_per_example"),
                   "code_history": [{"from_examples": 0, **(run.get("versions") or {})}],
                   "source": f"rebuilt from {Path(path).name} (run folder {run['path']} not kept)"}
        target.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(target, summary)
        written.append(target)
    return written


def load(root: Path = SUMMARIES, kind: str = "rate") -> dict[str, dict[int, dict]]:
    """model -> seed -> summary, from the committed folder."""
    runs: dict[str, dict[int, dict]] = {}
    for path in sorted((Path(root) / kind).glob("*/seed*.json")):
        summary = json.loads(path.read_text())
        runs.setdefault(summary["model"], {})[int(summary["seed"])] = summary
    return runs


def error_at(summary: dict, epoch: float) -> float | None:
    """Test error (%) after ``epoch`` epochs (of 60,000 examples), None if the run was not tested then."""
    for entry in summary.get("test_history", []):
        if abs(entry["examples"] / 60000 - epoch) < 1e-9:
            return float(entry["test_error"])
    return None


def interval(values) -> dict:
    """Mean, sd and the two-sided 95 % t interval of ``values`` (the interval is None for n < 2)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return {"n": n, "mean": mean, "sd": None, "low": None, "high": None}
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "low": mean - half, "high": mean + half}


def verdict(relation: str, ci: dict) -> str:
    """'reproduced', 'reversed', 'not resolved' or 'too few seeds' for a paired difference A - B."""
    if ci["low"] is None:
        return "too few seeds"
    if relation == "~":
        if ci["low"] <= 0 <= ci["high"] and -EQUIVALENCE_MARGIN <= ci["low"] and ci["high"] <= EQUIVALENCE_MARGIN:
            return "reproduced"
        return "not resolved" if ci["low"] <= 0 <= ci["high"] else "different"
    if ci["high"] < 0:
        return "reproduced"
    if ci["low"] > 0:
        return "reversed"
    return "not resolved"


def conditions(runs, epoch: float = 60) -> list[dict]:
    rows = []
    for model in sorted(runs):
        finals = {seed: error_at(s, epoch) for seed, s in sorted(runs[model].items())}
        values = [v for v in finals.values() if v is not None]
        late = [np.mean([e for e in (error_at(s, k) for k in range(51, 61)) if e is not None])
                for s in runs[model].values() if error_at(s, 60) is not None]
        rows.append({"model": model, "paper": TEST_ERRORS.get(model),
                     "paper_text": REPORTED[model].statement if model in REPORTED else "(not in the paper)",
                     "seeds": [seed for seed, v in finals.items() if v is not None], "errors": values,
                     "final": interval(values), "epochs_51_60": interval(late),
                     "incomplete_seeds": [seed for seed, v in finals.items() if v is None]})
    return rows


def orderings(runs) -> list[dict]:
    rows = []
    for a, relation, b, words, epoch in ORDERINGS:
        common = sorted(set(runs.get(a, {})) & set(runs.get(b, {})))
        pairs = [(seed, error_at(runs[a][seed], epoch), error_at(runs[b][seed], epoch)) for seed in common]
        pairs = [(seed, x, y) for seed, x, y in pairs if x is not None and y is not None]
        ci = interval([x - y for _, x, y in pairs])
        rows.append({"a": a, "relation": relation, "b": b, "paper": words, "epoch": epoch,
                     "seeds": [p[0] for p in pairs], "difference": ci, "verdict": verdict(relation, ci)})
    return rows


def _fmt(ci: dict, digits: int = 2) -> str:
    if ci["n"] == 0:
        return "-"
    if ci["low"] is None:
        return f"{ci['mean']:.{digits}f} (n = 1)"
    return f"{ci['mean']:.{digits}f} [{ci['low']:.{digits}f}, {ci['high']:.{digits}f}]"


def markdown(kind: str, rows: list[dict], pairs: list[dict]) -> str:
    lines = [f"# The paper's table over seeds ({kind})", "",
             "Written by `python validation/studies/paper_table/seeds_table.py table --kind "
             f"{kind}` from the committed run summaries in `summaries/{kind}/`. Test error (%) on the "
             "10,000 MNIST test images after 60 epochs: mean over seeds and two-sided 95 % t interval "
             "[low, high]; \"epochs 51-60\" averages each run's last ten tested epochs first.", "",
             "| condition | paper | seeds | final: mean [95 % CI] | sd | epochs 51-60: mean [95 % CI] | per seed |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        paper = f"{r['paper']:.1f}" if r["paper"] is not None else r["paper_text"]
        sd = f"{r['final']['sd']:.2f}" if r["final"]["sd"] is not None else "-"
        per_seed = ", ".join(f"{e:.2f}" for e in r["errors"])
        extra = f" (incomplete: seeds {r['incomplete_seeds']})" if r["incomplete_seeds"] else ""
        lines.append(f"| {r['model']} | {paper} | {len(r['seeds'])}{extra} | {_fmt(r['final'])} | {sd} | "
                     f"{_fmt(r['epochs_51_60'])} | {per_seed} |")
    lines += ["", "## The paper's orderings", "",
              "Paired difference A - B (percentage points) over the seeds both conditions have, at the epoch "
              "the paper compares; `<`: the paper says A is better (lower error), `~`: very little difference "
              f"(reproduced when the interval contains 0 and lies within +-{EQUIVALENCE_MARGIN}).", "",
              "| A | | B | the paper | epoch | seeds | A - B: mean [95 % CI] | verdict |",
              "|---|---|---|---|---|---|---|---|"]
    for p in pairs:
        lines.append(f"| {p['a']} | {p['relation']} | {p['b']} | {p['paper']} | {p['epoch']} | "
                     f"{len(p['seeds'])} | {_fmt(p['difference'])} | {p['verdict']} |")
    return "\n".join(lines) + "\n"


def figure(runs, kind: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for model in sorted(runs):
        curves = [[error_at(s, k) for k in range(1, 61)] for s in runs[model].values()]
        curves = np.array([c for c in curves if None not in c], dtype=float)
        if len(curves) == 0:
            continue
        mean = curves.mean(axis=0)
        line, = ax.plot(np.arange(1, 61), mean, label=f"{model} (n = {len(curves)})")
        if len(curves) > 1:
            half = stats.t.ppf(0.975, len(curves) - 1) * curves.std(axis=0, ddof=1) / np.sqrt(len(curves))
            ax.fill_between(np.arange(1, 61), mean - half, mean + half, color=line.get_color(), alpha=0.2)
        if model in TEST_ERRORS:
            ax.plot([60], [TEST_ERRORS[model]], "*", color=line.get_color(), markersize=12)
    ax.set(xlabel="epoch", ylabel="test error (%)", yscale="log",
           title=f"{kind}: mean over seeds, 95 % CI (band); stars: the paper at epoch 60")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("collect", help="copy run summaries into the committed folder")
    p.add_argument("directories", nargs="+", type=Path)
    p.add_argument("--into", type=Path, default=SUMMARIES)
    p.add_argument("--commit", default=None, help="git commit of the source, where a run recorded none")
    p.add_argument("--partial", action="store_true",
                   help="also unfinished runs, from their checkpoints (status 'in progress')")
    p = sub.add_parser("from-runs-json", help="summaries of the runs in paper_table_runs.json (seed 0)")
    p.add_argument("path", type=Path, nargs="?", default=HERE / "paper_table_runs.json")
    p.add_argument("--kind", choices=["rate", "spiking"], default="rate")
    p.add_argument("--into", type=Path, default=SUMMARIES)
    p = sub.add_parser("table", help="write the table, its JSON and the figure")
    p.add_argument("--kind", choices=["rate", "spiking"], default="rate")
    p.add_argument("--summaries", type=Path, default=SUMMARIES)
    p.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    if args.command == "collect":
        written = collect(args.directories, args.into, args.commit, args.partial)
        print(f"{len(written)} summaries copied into {os.path.relpath(args.into)}")
        return 0
    if args.command == "from-runs-json":
        written = from_runs_json(args.path, args.into, args.kind)
        print(f"{len(written)} summaries rebuilt into {os.path.relpath(args.into)}")
        return 0
    runs = load(args.summaries, args.kind)
    if not runs:
        print(f"no {args.kind} summaries under {args.summaries}", file=sys.stderr)
        return 2
    rows, pairs = conditions(runs), orderings(runs)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "seeds_table.md").write_text(markdown(args.kind, rows, pairs))
    write_json_atomic(args.out / "seeds_table.json", {"kind": args.kind, "conditions": rows, "orderings": pairs,
                                                      "equivalence_margin": EQUIVALENCE_MARGIN})
    figure(runs, args.kind, args.out / f"learning_curves_seeds_{args.kind}.png")
    print(f"wrote seeds_table.md, seeds_table.json, learning_curves_seeds_{args.kind}.png into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

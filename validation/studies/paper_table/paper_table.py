"""Collect sweep results into the paper's MNIST table and learning-curve figures.

Reads the ``summary.json`` of every task under the given sweep directories
(``<sweep>/<model>/seed<seed>/summary.json``, written by ``brian-dendrite sweep``
or ``brian-dendrite train``), and writes

* ``<out>/paper_table_runs.md``: one row per run with the paper's number, our
  final error, the error at every tested epoch, examples, ms per example, seed
  and the git commit and versions recorded by the run;
* ``<out>/learning_curves_<kind>.png``: test error against epochs, one line per
  run, the paper's 60-epoch numbers as markers.

Every number comes from the summaries; the paper's numbers (docs/specification.rst,
section 3) come from :mod:`brian_dendrite.paper`.

    python validation/studies/paper_table/paper_table.py runs/sweep_rate runs/sweep_spiking \
        --out validation/studies/paper_table

A run (model, kind, target, seed) that appears in several directories is taken from the
last one given: list continued or rerun sweeps after the ones they replace. Run
directories are recorded relative to the directory the script is run in, never as
absolute paths.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from brian_dendrite.paper import STATEMENTS, TEST_ERRORS

#: Test error (%) reported by the paper after 60 epochs, by model name (:data:`brian_dendrite.paper.TEST_ERRORS`).
PAPER = dict(TEST_ERRORS)

#: What the paper says where it gives no number (:data:`brian_dendrite.paper.STATEMENTS`), and this
#: project's alternatives, which the paper does not have.
PAPER_TEXT = {
    **STATEMENTS,
    "one_hidden_truncated_kernel": "(our alternative: published code's kernel)",
    "two_hidden_truncated_kernel": "(our alternative: published code's kernel)",
    "one_hidden_truncated_kernel_gain": "(our alternative: code's kernel x 1/0.5104)",
    "two_hidden_truncated_kernel_gain": "(our alternative: code's kernel x 1/0.5104)",
    "one_hidden_long_phases": "(our alternative: 100-ms phases)",
}


#: Epochs shown in the table (all are in the JSON and the figures).
SHOWN_EPOCHS = (1, 2, 5, 10, 20, 40, 60)


def _commits(summary) -> str:
    """The commit(s) that trained the run: ``abc1234`` or ``abc1234 (0-), def5678 (from 300000)``."""
    history = summary.get("code_history")
    if not history:
        return ((summary.get("versions") or {}).get("git_commit") or "?")[:7]
    if len(history) == 1:
        return (history[0].get("git_commit") or "?")[:7]
    return ", ".join(f"{(h.get('git_commit') or 'unrecorded')[:7]} (from {h['from_examples']})" for h in history)


def recorded_path(path) -> str:
    """``path`` as the table records it: relative to the current directory, never absolute."""
    try:
        return Path(os.path.relpath(path)).as_posix()
    except ValueError:  # another drive (Windows): no relative path exists
        return Path(path).name


def collect(directories) -> list[dict]:
    """Every run's summary; a run (model, kind, target, seed) found again in a later directory
    replaces the earlier one (e.g. a run continued to more epochs, or rerun with new code),
    and the replaced path is kept under ``supersedes``."""
    runs = []
    for d in directories:
        for path in sorted(Path(d).glob("*/seed*/summary.json")):
            s = json.loads(path.read_text())
            hist = s.get("test_history", [])
            runs.append({
                "path": recorded_path(path.parent),
                "model": s["model"],
                "kind": s.get("kind", "spiking"),
                "target": s.get("target"),
                "seed": s.get("seed"),
                "examples": s.get("examples_trained"),
                "epochs": s.get("epochs_completed"),
                "final": s.get("final_test_error"),
                "history": [(h["examples"] / 60000, h["test_error"], h.get("test_images")) for h in hist],
                "ms_per_example": s.get("ms_per_example_median_chunk") or s.get("ms_per_example"),
                "train_hours": (s.get("train_seconds") or 0) / 3600,
                "commit": _commits(s),
                "versions": s.get("versions"),
            })
    kept: dict = {}
    for r in runs:
        key = (r["model"], r["kind"], r["target"], r["seed"])
        if key in kept:
            r["supersedes"] = kept[key].get("supersedes", []) + [kept[key]["path"]]
        kept[key] = r
    return list(kept.values())


def _paper(model):
    if model in PAPER:
        return f"{PAPER[model]} %"
    return PAPER_TEXT.get(model, "-")


def table(runs) -> str:
    lines = [
        "| run | kind (target) | paper, 60 epochs | ours: final | epochs | error at epoch (%) | ms/example | "
        "commit |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(runs, key=lambda r: (r["kind"], r["model"])):
        shown = [h for k, h in enumerate(r["history"])
                 if h[0] in SHOWN_EPOCHS or k == len(r["history"]) - 1]
        by_epoch = ", ".join(f"{e:g}: {err:.2f}" for e, err, _ in shown)
        final = f"**{r['final']:.2f} %**" if r["final"] is not None else "-"
        ms = f"{r['ms_per_example']:.2f}" if r["ms_per_example"] else "-"
        lines.append(f"| `{r['model']}` seed {r['seed']} | {r['kind']} ({r['target']}) | {_paper(r['model'])} | "
                     f"{final} | {r['epochs']} | {by_epoch} | {ms} | {r['commit']} |")
    return "\n".join(lines) + "\n"


def figure(runs, kind: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sel = [r for r in runs if r["kind"] == kind and r["history"]]
    if not sel:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    rate_runs = {r["model"]: r for r in runs if r["kind"] == "rate"}
    last_epoch = max(h[0] for r in sel for h in r["history"])
    for r in sorted(sel, key=lambda r: r["model"]):
        e = [h[0] for h in r["history"]]
        err = [h[1] for h in r["history"]]
        line, = ax.plot(e, err, marker=".", label=r["model"])
        twin = rate_runs.get(r["model"]) if kind != "rate" else None
        if twin is not None:  # the rate abstraction of the same model, over the same epochs
            pts = [h for h in twin["history"] if h[0] <= last_epoch]
            ax.plot([h[0] for h in pts], [h[1] for h in pts], linestyle="--", color=line.get_color(),
                    label=f"{r['model']} (rate model)")
        if r["model"] in PAPER:
            ax.plot([60], [PAPER[r["model"]]], marker="*", markersize=11, color=line.get_color(),
                    linestyle="none")
    ax.set_xlabel("epoch (60,000 examples)")
    ax.set_ylabel("test error on 10,000 images (%)")
    ax.set_yscale("log")
    from matplotlib.ticker import FormatStrFormatter, LogLocator

    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 3.0, 5.0)))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(FormatStrFormatter(""))
    ax.set_title(f"{kind}: learning curves (stars: the paper's 60-epoch numbers"
                 + ("; dashed: rate model)" if kind != "rate" else ")"), fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweeps", nargs="+", help="sweep (or run) directories")
    parser.add_argument("--out", default="validation/studies/paper_table",
                        help="output folder (default validation/studies/paper_table, from the repository root)")
    args = parser.parse_args(argv)
    runs = collect(args.sweeps)
    if not runs:
        print(f"no summary.json under {args.sweeps}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "paper_table_runs.md").write_text(
        "<!-- written by validation/studies/paper_table/paper_table.py from the runs' summary.json files -->\n" + table(runs))
    for kind in sorted({r["kind"] for r in runs}):
        figure(runs, kind, out / f"learning_curves_{kind}.png")
    with open(out / "paper_table_runs.json", "w") as f:
        json.dump(runs, f, indent=1)
    print(table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())

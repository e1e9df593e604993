"""Per-epoch test error of the spiking runs beside the rate abstraction's, from the committed summaries.

Reads ``summaries/spiking/<model>/seed<k>.json`` (finished runs, runs rebuilt from
``paper_table_runs.json``, and unfinished runs collected from their checkpoints with
``seeds_table.py collect --partial``) and ``summaries/rate/...`` and writes

* ``spiking_vs_rate.md``: per spiking run its status, epochs tested and the test error at
  epochs 1, 2, 5, 10, 20, 30, 40, 50, 60 beside the rate model's mean over its seeds
  (same model file) at the same epochs;
* ``learning_curves_spiking_vs_rate.png``: the same as curves (spiking: solid, one line per
  run, dotted while it runs; rate: dashed, mean over seeds with its 95 % t band), one panel
  per model.

From the repository root::

    python validation/studies/paper_table/spiking_vs_rate.py
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
from scipy import stats

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("seeds_table", HERE / "seeds_table.py")
seeds_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(seeds_table)

#: The epochs shown in the table.
EPOCHS = (1, 2, 5, 10, 20, 30, 40, 50, 60)


def curve(summary: dict) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, test errors) of a run's tests."""
    hist = summary.get("test_history") or []
    return (np.array([h["examples"] / 60000 for h in hist], dtype=float),
            np.array([h["test_error"] for h in hist], dtype=float))


def rate_mean(rate_runs: dict, epoch: float) -> tuple[float | None, int]:
    values = [seeds_table.error_at(s, epoch) for s in rate_runs.values()]
    values = [v for v in values if v is not None]
    return (float(np.mean(values)) if values else None), len(values)


def status(summary: dict) -> str:
    if summary.get("status") == "in progress":
        return f"in progress ({summary['examples_trained'] / 60000:.2f} epochs trained)"
    epochs = f"{summary['examples_trained'] / 60000:g} epochs"
    if "source" in summary:
        return f"finished at {epochs} (rebuilt from paper_table_runs.json)"
    return f"finished at {epochs}"


def markdown(spiking: dict, rate: dict) -> str:
    head = " | ".join(str(e) for e in EPOCHS)
    lines = ["# Spiking runs beside the rate abstraction", "",
             "Written by `python validation/studies/paper_table/spiking_vs_rate.py` from the committed "
             "summaries (`summaries/spiking/`, `summaries/rate/`). Test error (%) on the MNIST test images "
             "after each epoch; for every spiking run (one row) the rate model of the same model file below "
             "it, as the mean over its seeds (n in brackets). `-`: not tested at that epoch (yet).", "",
             f"| model | seed | status | {head} |", "|---|---|---|" + "---|" * len(EPOCHS)]
    for model in sorted(spiking):
        for seed, s in sorted(spiking[model].items()):
            cells = []
            for e in EPOCHS:
                v = seeds_table.error_at(s, e)
                cells.append("-" if v is None else f"{v:.2f}")
            lines.append(f"| {model} | {seed} | {status(s)} | " + " | ".join(cells) + " |")
        cells = []
        for e in EPOCHS:
            v, n = rate_mean(rate.get(model, {}), e)
            cells.append("-" if v is None else f"{v:.2f} ({n})")
        lines.append(f"| {model} (rate) | mean | {len(rate.get(model, {}))} seeds | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(spiking: dict, rate: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted(spiking)
    cols = min(3, len(models))
    rows = -(-len(models) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False, sharey=True)
    for ax, model in zip(axes.flat, models, strict=False):
        for seed, s in sorted(spiking[model].items()):
            x, y = curve(s)
            style = ":" if s.get("status") == "in progress" else "-"
            ax.plot(x, y, style, marker=".", label=f"spiking seed {seed}" + (" (running)" if style == ":" else ""))
        runs = [[seeds_table.error_at(s, k) for k in range(1, 61)] for s in rate.get(model, {}).values()]
        runs = np.array([r for r in runs if None not in r], dtype=float)
        if len(runs):
            mean = runs.mean(axis=0)
            ax.plot(np.arange(1, 61), mean, "k--", label=f"rate, mean of {len(runs)}")
            if len(runs) > 1:
                half = stats.t.ppf(0.975, len(runs) - 1) * runs.std(axis=0, ddof=1) / np.sqrt(len(runs))
                # with 2 seeds the t band is wide (t = 12.7); below the axis it is cut off
                ax.fill_between(np.arange(1, 61), np.maximum(mean - half, 0.5), mean + half, color="k", alpha=0.15)
        ax.set(title=model, xlabel="epoch", yscale="log", xlim=(0, 61), ylim=(1, 15))
        ax.legend(fontsize=7)
    for ax in axes.flat[len(models):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("test error (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--summaries", type=Path, default=seeds_table.SUMMARIES)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    spiking = seeds_table.load(args.summaries, "spiking")
    if not spiking:
        print(f"no spiking summaries under {args.summaries}", file=sys.stderr)
        return 2
    rate = seeds_table.load(args.summaries, "rate")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "spiking_vs_rate.md").write_text(markdown(spiking, rate))
    figure(spiking, rate, args.out / "learning_curves_spiking_vs_rate.png")
    print(f"wrote spiking_vs_rate.md and learning_curves_spiking_vs_rate.png into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

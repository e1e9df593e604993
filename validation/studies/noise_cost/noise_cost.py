"""What spike noise costs the spiking network's learning, separated from the protocol.

Three networks learn from the same initial weights, the same examples in the same order
(seed 0):

* the **rate model** (``brian-dendrite sweep --kind rate``): steady states, no spikes, no phases;
* the **mean-field twin** of the spiking protocol (:func:`brian_dendrite.training.train_mean_field`):
  the spiking network's phases, phase lengths, kernels and windows, every spike replaced by its
  probability;
* the **spiking network** (``brian-dendrite sweep --kind spiking``).

All weights are tested the same way, with the rate model (noise-free). Then
``mean-field - rate`` is what the protocol costs (kernel sampling, settling, the previous
example's residue), ``spiking - mean-field`` what spike noise costs during training (with the
nonlinearity acting on it), and the spiking run's own test error minus the rate model's test
of its weights what noise costs at test time.

Two steps, because the twin takes hours::

    python validation/studies/noise_cost/noise_cost.py train --model one_hidden_truncated_kernel_gain \\
        --epochs 5 --data-dir path/to/mnist --out runs/noise_cost/one_hidden_truncated_kernel_gain
    python validation/studies/noise_cost/noise_cost.py report \\
        --twin one_hidden_truncated_kernel_gain=runs/noise_cost/one_hidden_truncated_kernel_gain \\
        --rate one_hidden_truncated_kernel_gain=runs/sweep_rate/one_hidden_truncated_kernel_gain/seed0 \\
        --spiking one_hidden_truncated_kernel_gain=runs/sweep_spiking/one_hidden_truncated_kernel_gain/seed0 \\
        --data-dir path/to/mnist --out validation/studies/noise_cost

``report`` reads the runs' ``summary.json`` histories, tests every weights file of a spiking
run directory (``weights.npz`` and ``checkpoint.npz``, with the example count each holds) with
the rate model, and writes ``noise_cost.json`` and ``noise_cost.md``. The run directories are
recorded relative to the directory the report is made in (never as absolute paths).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from brian_dendrite.datasets import load_mnist
from brian_dendrite.model import Weights, load_model
from brian_dendrite.provenance import versions, write_json_atomic
from brian_dendrite.rate import RateNetwork
from brian_dendrite.training import train_mean_field


def recorded_path(path) -> str:
    """``path`` as the report records it: relative to the current directory, never absolute."""
    try:
        return Path(os.path.relpath(path)).as_posix()
    except ValueError:  # another drive (Windows): no relative path exists
        return Path(path).name


def _pairs(items, flag):
    out = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"{flag} {item!r}: expected MODEL=PATH")
        model, path = item.split("=", 1)
        out.setdefault(model, []).append(Path(path))
    return out


def _history(path: Path) -> dict:
    """Test errors by example count from a run's summary (spiking/rate) or the twin's summary, and from
    the run's checkpoint where it got further (a run continued after its summary was written)."""
    out = None
    for name in ("summary.json", "mean_field_summary.json"):
        f = path / name
        if f.exists():
            s = json.loads(f.read_text())
            out = {int(h["examples"]): float(h["test_error"]) for h in s["test_history"]}
            break
    if out is None:
        raise SystemExit(f"{path}: no summary.json or mean_field_summary.json")
    for name in ("checkpoint.npz", "mean_field_checkpoint.npz"):
        if (path / name).exists():
            with np.load(path / name) as d:
                meta = json.loads(str(d["meta"]))
            for h in meta.get("history", []):
                out.setdefault(int(h["examples"]), float(h["test_error"]))
    return out


def _spiking_weights(path: Path) -> list[tuple[int, Path]]:
    """(examples trained, file) for the weights files of a spiking run directory."""
    out = []
    summary = json.loads((path / "summary.json").read_text())
    if (path / "weights.npz").exists():
        out.append((int(summary["examples_trained"]), path / "weights.npz"))
    if (path / "checkpoint.npz").exists():
        with np.load(path / "checkpoint.npz") as d:
            meta = json.loads(str(d["meta"]))
        n = int(meta["progress"]["examples"])
        if n not in {e for e, _ in out}:
            out.append((n, path / "checkpoint.npz"))
    return sorted(out)


def cmd_train(args) -> int:
    params = load_model(args.model)
    train = load_mnist("train", args.data_dir)
    test = load_mnist("test", args.data_dir)
    n = int(round(args.epochs * len(train.labels)))
    t0 = time.time()
    s = train_mean_field(params, train, test, args.out, n, seed=args.seed, chunk_size=args.chunk_size,
                         test_examples=args.test_examples)
    print(f"{args.model}: {s['examples_trained']} examples, rate-model test error {s['final_test_error']:.2f} %, "
          f"{s['ms_per_example']:.2f} ms per example, {time.time() - t0:.0f} s")
    return 0


def cmd_report(args) -> int:
    twins, rates, spikings = _pairs(args.twin, "--twin"), _pairs(args.rate, "--rate"), _pairs(args.spiking, "--spiking")
    test = load_mnist("test", args.data_dir)
    images, labels = test.images[: args.test_examples], test.labels[: args.test_examples]
    report = {"versions": versions(), "test_images": len(labels), "models": {}}
    for model in sorted(set(twins) | set(spikings)):
        params = load_model(model)
        entry = {"rate": {}, "twin": {}, "spiking": {}, "spiking_weights_rate_test": {}, "sources": {}}
        for key, paths in (("rate", rates.get(model, [])), ("twin", twins.get(model, [])),
                           ("spiking", spikings.get(model, []))):
            for p in paths:
                entry[key].update(_history(p))
                entry["sources"].setdefault(key, []).append(recorded_path(p))
        for p in spikings.get(model, []):
            for n, f in _spiking_weights(p):
                w = Weights.load(f, params)
                entry["spiking_weights_rate_test"][n] = float(RateNetwork(params, w).test_error(images, labels))
        report["models"][model] = entry
    out = Path(args.out)
    write_json_atomic(out / "noise_cost.json", report)
    (out / "noise_cost.md").write_text(render(report))
    print(render(report))
    return 0


def _fmt(x):
    return "-" if x is None else f"{x:.2f}"


def render(report: dict) -> str:
    lines = ["# Spike noise against the protocol: what each costs (validation/studies/noise_cost/noise_cost.py)", "",
             f"Seed 0; test errors in % on the first {report['test_images']} MNIST test images; report written by "
             f"commit {(report['versions'].get('git_commit') or '?')[:7]}. Every column but the spiking run's own "
             "test uses the rate model's (noise-free) test. Same initial weights, examples and order in every "
             "column; the twin also has the spiking run's phase lengths. Differences: protocol = twin - rate; "
             "noise in training = spiking weights (rate test) - twin; noise in the test = spiking own test - "
             "spiking weights (rate test).", ""]
    for model, e in report["models"].items():
        rate = {int(k): v for k, v in e["rate"].items()}
        twin = {int(k): v for k, v in e["twin"].items()}
        spk = {int(k): v for k, v in e["spiking"].items()}
        swr = {int(k): v for k, v in e["spiking_weights_rate_test"].items()}
        points = sorted(set(twin) | set(swr))
        lines += [f"## {model}", "",
                  "| examples | rate model | mean-field twin (protocol, no spikes) | spiking weights, rate test "
                  "| spiking, own test | protocol | noise in training | noise in the test |",
                  "|---|---|---|---|---|---|---|---|"]

        def diff(a, b):
            return None if a is None or b is None else a - b

        for n in sorted(set(points) | set(spk)):
            r, t, w, s = rate.get(n), twin.get(n), swr.get(n), spk.get(n)
            lines.append(f"| {n} | {_fmt(r)} | {_fmt(t)} | {_fmt(w)} | {_fmt(s)} | {_fmt(diff(t, r))} | "
                         f"{_fmt(diff(w, t))} | {_fmt(diff(s, w))} |")
        sources = "; ".join(f"{k}: {', '.join(v)}" for k, v in e["sources"].items())
        lines += ["", f"Sources (relative to the directory the report was made in): {sources}", ""]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train the mean-field twin (resumes from OUT's checkpoint)")
    t.add_argument("--model", required=True)
    t.add_argument("--epochs", type=float, default=5)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--chunk-size", type=int, default=1000, help="as the spiking run's (default 1000)")
    t.add_argument("--test-examples", type=int, default=10000)
    t.add_argument("--data-dir", default=None)
    t.add_argument("--out", required=True)
    r = sub.add_parser("report", help="gather the runs into noise_cost.json / .md")
    r.add_argument("--twin", action="append", default=[], metavar="MODEL=DIR")
    r.add_argument("--rate", action="append", default=[], metavar="MODEL=DIR")
    r.add_argument("--spiking", action="append", default=[], metavar="MODEL=DIR")
    r.add_argument("--test-examples", type=int, default=10000)
    r.add_argument("--data-dir", default=None)
    r.add_argument("--out", default="validation/studies/noise_cost",
                   help="output folder (default validation/studies/noise_cost, from the repository root)")
    args = ap.parse_args(argv)
    return cmd_train(args) if args.command == "train" else cmd_report(args)


if __name__ == "__main__":
    sys.exit(main())

"""How much of each example's update is the previous example's residue.

For each model and each set of weights, runs :func:`brian_dendrite.validation.settling_fidelity`
(noise-free mean-field twin of the spiking protocol, state carried over, phases of
L ms) and writes ``<out>/settling.json`` and ``<out>/settling.md``.

Weights: the initial weights of seed 0, and the weights of the model's own rate network
after ``--epochs`` epochs of training from them (seed 0, the same deterministic
training as ``brian-dendrite train --kind rate``), so every number is reproducible from
the repository; ``--weights MODEL:LABEL=PATH`` adds saved weights for one model (e.g. a spiking
run's ``checkpoint.npz``).

    python validation/studies/settling/settling.py --data-dir path/to/mnist --out validation/studies/settling

See README.md beside this script for the committed run's exact command.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from brian2 import ms

from brian_dendrite.datasets import load_mnist
from brian_dendrite.model import Weights, initial_weights, load_model
from brian_dendrite.provenance import versions, write_json_atomic
from brian_dendrite.rate import RateNetwork
from brian_dendrite.validation import settling_fidelity

MODELS = ("one_hidden", "one_hidden_truncated_kernel", "one_hidden_truncated_kernel_gain", "two_hidden",
          "two_hidden_truncated_kernel", "two_hidden_truncated_kernel_gain")


def trained_rate_network(params, train, epochs: int, seed: int = 0):
    """The rate network after ``epochs`` shuffled epochs from the seed's initial weights."""
    rng = np.random.default_rng(seed)
    net = RateNetwork(params, initial_weights(params, rng), rng=rng)
    for _ in range(epochs):
        net.train(train.images, train.labels, shuffle=True)
    return net


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--epochs", type=int, default=5, help="rate-model epochs for the trained weights")
    ap.add_argument("--phases", default="50,60,70,85,100,150,300", help="phase lengths in ms")
    ap.add_argument("--streams", type=int, default=25)
    ap.add_argument("--examples", type=int, default=12)
    ap.add_argument("--weights", action="append", default=[], metavar="MODEL:LABEL=PATH")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default="validation/studies/settling",
                    help="output folder (default validation/studies/settling, from the repository root)")
    ap.add_argument("--append", action="store_true",
                    help="keep the runs of other models already in OUT/settling.json (same phases and sampling)")
    ap.add_argument("--render", action="store_true", help="only rewrite OUT/settling.md from OUT/settling.json")
    args = ap.parse_args(argv)
    if args.render:
        report = json.loads((Path(args.out) / "settling.json").read_text(encoding="utf-8"))
        Path(args.out, "settling.md").write_text(markdown(report), encoding="utf-8")
        return 0
    Path(args.out).mkdir(parents=True, exist_ok=True)
    train = load_mnist("train", args.data_dir)
    test = load_mnist("test", args.data_dir)
    phases = [int(x) for x in args.phases.split(",")]
    extra = []
    for item in args.weights:
        target, _, path = item.partition("=")
        model, _, label = target.rpartition(":")
        if not path or not model:
            ap.error(f"--weights {item!r}: expected MODEL:LABEL=PATH")
        extra.append((model, label, path))
    report = {"versions": versions(), "phases_ms": phases, "streams": args.streams, "examples": args.examples,
              "rate_epochs": args.epochs, "runs": []}
    models = args.models.split(",")
    previous = Path(args.out) / "settling.json"
    if args.append and previous.exists():
        old = json.loads(previous.read_text(encoding="utf-8"))
        same = {k: old.get(k) == report[k] for k in ("phases_ms", "streams", "examples", "rate_epochs")}
        if not all(same.values()):
            ap.error(f"--append: {previous} was made with other settings ({', '.join(k for k, v in same.items() if not v)})")
        kept = [r for r in old["runs"] if r["model"] not in models]
        for r in kept:
            r.setdefault("versions", old["versions"])
        report["runs"] = kept
    for model in models:
        params = load_model(model)
        steps = [int(round(L / float(params.cell.dt / ms))) for L in phases]
        sets = [("initial", initial_weights(params, np.random.default_rng(0)), None)]
        t0 = time.time()
        net = trained_rate_network(params, train, args.epochs)
        err = net.test_error(test.images, test.labels)
        sets.append((f"rate, {args.epochs} epochs", net.weights, err))
        for _, label, path in (e for e in extra if e[0] == model):
            w = Weights.load(path, params)
            sets.append((label, w, RateNetwork(params, w).test_error(test.images, test.labels)))
        print(f"{model}: rate training {time.time() - t0:.0f} s, test error {err:.2f} %", flush=True)
        for label, w, err in sets:
            t0 = time.time()
            res = settling_fidelity(params, w, train.images, train.labels, steps, streams=args.streams,
                                    examples=args.examples)
            report["runs"].append({"model": model, "weights": label, "rate_model_test_error": err, **res,
                                   "seconds": time.time() - t0, "versions": report["versions"]})
            for L, st in zip(phases, steps, strict=True):
                r = res["by_length"][st]
                print(f"  {label:>18s} {L:4d} ms: " + "  ".join(
                    f"{k} cos {v['summed_cosine']:+.3f} x{v['summed_norm_ratio']:.2f}" for k, v in r["updates"].items()),
                    flush=True)
            write_json_atomic(Path(args.out) / "settling.json", report)
    Path(args.out, "settling.md").write_text(markdown(report), encoding="utf-8")
    return 0


def markdown(report: dict) -> str:
    phases = report["phases_ms"]
    lines = [
        "<!-- written by validation/studies/settling/settling.py -->",
        "Cosine between the summed weight change of "
        f"{report['runs'][0]['examples_scored'] if report['runs'] else 0} training examples in the noise-free "
        "spiking protocol (mean-field twin, state carried over, forward and target phases of L ms, windows the "
        "last 20 ms) and the rate model's summed change for the same examples at the same weights (1: the "
        "protocol gives the rate model's update; 0: unrelated; negative: opposed), and in brackets the ratio of "
        "the two sums' norms. Per weight layer, "
        "`W_0` first. Code: " + ", ".join(sorted({str((r.get("versions") or report["versions"]).get("git_commit"))[:12]
                                                  for r in report["runs"]})) + ".",
        "",
        "| model | weights (rate-model test error) | " + " | ".join(f"{L} ms" for L in phases) + " |",
        "|---|---|" + "---|" * len(phases),
    ]
    for run in report["runs"]:
        cells = []
        for st in run["phase_steps"]:
            r = run["by_length"][str(st)] if str(st) in run["by_length"] else run["by_length"][st]
            cells.append(" / ".join(f"{v['summed_cosine']:+.2f} (x{v['summed_norm_ratio']:.1f})"
                                    for v in r["updates"].values()))
        err = run["rate_model_test_error"]
        lines.append(f"| `{run['model']}` | {run['weights']}" + (f" ({err:.2f} %)" if err is not None else "")
                     + " | " + " | ".join(cells) + " |")
    lines += ["", "Residue in the window means (rms difference from the rate model's steady state over the rms "
              "of the steady-state value), for every phase length:", "",
              "| model | weights | quantity | " + " | ".join(f"{L} ms" for L in phases) + " |",
              "|---|---|---|" + "---|" * len(phases)]
    for run in report["runs"]:
        by = {str(k): v for k, v in run["by_length"].items()}
        names = list(by[str(run["phase_steps"][0])]["residual"])
        for name in names:
            lines.append(f"| `{run['model']}` | {run['weights']} | {name} | "
                         + " | ".join(f"{by[str(st)]['residual'][name]:.3f}" for st in run["phase_steps"]) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

"""``brian-dendrite sweep`` on the command line: its options and the call they make."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..training import add_training_arguments
from ._runner import ORDERS, run_sweep
from ._table import format_table


def add_sweep_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of ``brian-dendrite sweep`` to *parser* (an argparse (sub)parser).

    Those of the training runs (:func:`brian_dendrite.training.add_training_arguments`
    for a grid: ``--models``, ``--seeds``, ``--kind``, ...) and those of the cluster,
    ``--workers`` and ``--scheduler``.
    """
    add_training_arguments(parser, grid=True)
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="worker processes of the local cluster (default: the number of cores)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="connect to an existing Dask scheduler (e.g. tcp://host:8786, from dask-jobqueue) "
                             "instead of starting a local cluster")
    parser.add_argument("--order", choices=ORDERS, default="seeds",
                        help="the order in which tasks start: 'seeds' (default): every model with the first seed, "
                             "then every model with the next seed, so that a study stopped early has as many seeds "
                             "of every condition; 'models': all seeds of one model, then the next model")
    return parser


def run_sweep_from_args(args: argparse.Namespace) -> int:
    """Run ``brian-dendrite sweep`` from parsed arguments; 0 if every task succeeded, else 1."""
    rows = run_sweep(
        args.models, args.seeds, kind=args.kind, target=args.target, examples=args.examples,
        epochs=args.epochs, test_examples=args.test_examples, test_every=args.test_every,
        initial_test=getattr(args, "initial_test", False), chunk_size=getattr(args, "chunk_size", 1000),
        data_dir=args.data_dir, output=args.output, workers=args.workers, scheduler=args.scheduler,
        echo=None if getattr(args, "quiet", False) else print, progress=not getattr(args, "quiet", False),
        order=getattr(args, "order", "seeds"),
    )
    print(format_table(rows))
    out = Path(args.output)
    print(f"results: {out / 'results.csv'} and {out / 'results.json'}")
    return 0 if all(r["status"] in ("done", "skipped") for r in rows) else 1

"""The command-line options of a training run, shared by ``brian-dendrite train`` and ``sweep``.

:func:`add_training_arguments` adds them to an :mod:`argparse` (sub)parser,
either for one run (``train``: ``--model``, ``--seed``, resume, recording and a
progress bar) or for a grid of runs (``sweep``: ``--models`` and ``--seeds``
lists, help texts that speak of tasks). The options that both commands have keep
their names, defaults and meaning in both; the order is each command's own, so
that its ``--help`` lists them as it always has.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_training_arguments", "parse_models", "parse_seeds"]


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


def add_training_arguments(parser: argparse.ArgumentParser, *, grid: bool = False) -> argparse.ArgumentParser:
    """Add the options of a training run to *parser* (an argparse (sub)parser) and return it.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    grid : bool
        False (default): the options of ``brian-dendrite train``, one run:
        ``--model``, ``--seed``, ``--output`` (default ``./run``), ``--resume``,
        ``--record`` and ``--no-progress`` (an alias of ``--quiet``). True: those of ``brian-dendrite sweep``,
        a grid of runs (models x seeds), each one task: ``--models`` and
        ``--seeds`` (comma-separated lists, see :func:`parse_models` and
        :func:`parse_seeds`) and ``--output`` for the sweep directory (default
        ``./sweep``). The options of the cluster (``--workers``, ``--scheduler``)
        are added by :func:`brian_dendrite.sweeps.add_sweep_arguments`.

    Both get ``--kind``, ``--target``, ``--examples``, ``--epochs``,
    ``--test-examples``, ``--test-every``, ``--initial-test``, ``--chunk-size``,
    ``--data-dir`` and ``--quiet`` (no progress on stderr), with the same defaults.
    """
    options = _options(grid)
    for flag in _SWEEP_OPTIONS if grid else _TRAIN_OPTIONS:
        parser.add_argument(flag, **options[flag])
    return parser


#: The options of ``brian-dendrite train`` and of ``sweep``, in the order of their ``--help``.
_TRAIN_OPTIONS = ("--model", "--examples", "--epochs", "--test-examples", "--test-every", "--initial-test",
                  "--seed", "--target", "--chunk-size", "--data-dir", "--output", "--resume", "--kind",
                  "--record", "--quiet", "--no-progress")
_SWEEP_OPTIONS = ("--models", "--seeds", "--kind", "--target", "--examples", "--epochs", "--test-examples",
                  "--test-every", "--initial-test", "--chunk-size", "--data-dir", "--output", "--quiet")


def _options(grid: bool) -> dict[str, dict]:
    """Every option of a training run: flag -> keywords of ``add_argument``; ``grid`` picks sweep's texts."""
    task = " per task" if grid else ""
    return {
        "--model": {"default": "one_hidden", "help": "model name (see 'brian-dendrite models') or .toml path"},
        "--models": {"type": parse_models, "required": True,
                     "help": "comma-separated model names (see 'brian-dendrite models') and/or .toml files"},
        "--seed": {"type": int, "default": 0},
        "--seeds": {"type": parse_seeds, "default": [0],
                    "help": "comma-separated seeds or ranges, e.g. 0,1 or 0-4 (default 0)"},
        "--kind": {"choices": ["spiking", "rate"], "default": "spiking",
                   "help": "the spiking network (default) or its rate abstraction (numpy)"},
        "--target": {"choices": ["cython", "numpy", "cpp_standalone"], "default": "cython",
                     "help": ("code generation target of spiking tasks (default cython; ignored for --kind rate)"
                              if grid else
                              "cython or numpy (Brian2 runtime), or cpp_standalone (compiled once, re-run per chunk)")},
        "--examples": {"type": int, "default": None, "help": f"training examples{task} (default: --epochs epochs)"},
        "--epochs": {"type": float, "default": 1.0, "help": f"epochs of 60,000 examples{task} (default 1)"},
        "--test-examples": {"type": int, "default": 10000, "help": "test images (default 10000; 0: no test)"},
        "--test-every": {"type": int, "default": None, "metavar": "N",
                         "help": "test every N examples" + (" (default: only at the end)" if grid else "")},
        "--initial-test": {"action": "store_true", "help": "test before training (paper)"},
        "--chunk-size": {"type": int, "default": 1000,
                         "help": ("spiking tasks: examples per Brian2 run() and checkpoint (default 1000)" if grid
                                  else "examples per Brian2 run() and checkpoint")},
        "--data-dir": {"type": Path, "default": None,
                       "help": "folder with the MNIST files" + (", visible to every worker" if grid else "")
                               + " (default: $BRIAN_DENDRITE_DATA, else download/cache)"},
        "--output": ({"type": Path, "default": Path("sweep"),
                      "help": "sweep directory: OUTPUT/<model>/seed<seed>/ per task, OUTPUT/results.csv and "
                              "results.json (default ./sweep)"} if grid else
                     {"type": Path, "default": Path("run"), "help": "output directory (default ./run)"}),
        "--resume": {"action": "store_true", "help": "continue from the checkpoint in --output"},
        "--record": {"type": int, "default": 0, "metavar": "N",
                     "help": "after training, record N more training examples (spikes, plateaus, potentials of "
                             "10 neurons per layer) to OUTPUT/recording.npz, for 'export' and 'plot'"},
        "--quiet": {"action": "store_true",
                    "help": ("no progress bar on stderr and no line per finished task" if grid else
                             "no progress bar on stderr")},
        "--no-progress": {"action": "store_true", "dest": "quiet", "help": "the same as --quiet"},
    }

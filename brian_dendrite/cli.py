"""The ``brian-dendrite`` command line: a thin layer over the library.

Exit codes: 0 success, 1 a check failed, 2 bad usage or bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


def _float_list(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated numbers") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brian-dendrite",
        description="Segregated-dendrite deep learning (Guerguiev, Lillicrap & Richards 2017) in Brian2.",
    )
    parser.add_argument("--version", action="store_true", help="print the package and Brian2 versions")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("models", help="list the named parameter sets, or print one as TOML")
    p.add_argument("name", nargs="?", help="a model name or .toml path")

    p = sub.add_parser("cell", help="simulate a small population of pyramidal or output neurons and plot it")
    p.add_argument("--kind", choices=["pyramidal", "output"], default="pyramidal")
    p.add_argument("--basal", type=_float_list, default=[0.0, 1.0, 2.0],
                   help="basal potential (bias) of each neuron, comma-separated (default 0,1,2)")
    p.add_argument("--apical", type=_float_list, default=None, help="apical bias per neuron (pyramidal)")
    p.add_argument("--apical-drive", type=float, default=40.0, metavar="HZ",
                   help="rate of 30 Poisson feedback sources onto each apical dendrite (0: none)")
    p.add_argument("--label", type=int, default=None, help="output neurons: the class taught in target phases")
    p.add_argument("--phase", type=float, default=60.0, metavar="MS", help="length of each phase (ms)")
    p.add_argument("--model", default=None, help="model name or .toml for the cell parameters")
    p.add_argument("--target", choices=["numpy", "cython"], default="numpy", help="code generation target")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", type=Path, default=Path("cell.png"), help="figure file (default cell.png)")
    return parser


def _cmd_models(args) -> int:
    from .parameters import available_models, load_model

    if args.name is None:
        for name in available_models():
            print(f"{name}: {load_model(name).description}")
        return 0
    print(load_model(args.name).to_toml(), end="")
    return 0


def _cmd_cell(args) -> int:
    import brian2
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from brian2 import Hz, ms

    from .parameters import CellParameters, ProtocolParameters, load_model
    from .plotting import plot_compartments
    from .population import CellPopulation, PoissonDrive

    brian2.prefs.codegen.target = args.target
    if args.model:
        params = load_model(args.model)
        cell, protocol = params.cell, params.protocol
    else:
        cell, protocol = CellParameters(), ProtocolParameters()
    n = len(args.basal)
    kwargs = {}
    if args.kind == "pyramidal":
        if args.apical is not None:
            kwargs["apical_bias"] = args.apical if len(args.apical) > 1 else args.apical[0]
        if args.apical_drive > 0:
            rng = np.random.default_rng(args.seed)
            kwargs["apical_drive"] = PoissonDrive(np.full(30, args.apical_drive) * Hz, rng.normal(0, 1, (30, n)))
    else:
        kwargs["label"] = args.label
    phases = [("forward", args.phase * ms), ("target", args.phase * ms)]
    pop = CellPopulation(args.kind, n, cell=cell, protocol=protocol, phases=phases, basal_bias=args.basal,
                         seed=args.seed, **kwargs)
    pop.run()
    axes = plot_compartments(pop)
    axes[0].figure.savefig(args.output, dpi=120, bbox_inches="tight")
    summary = {"figure": str(args.output), "spikes_per_neuron": np.bincount(pop.spikes.i[:], minlength=n).tolist()}
    if args.kind == "pyramidal":
        summary["alpha_f"] = pop.alpha_f.round(4).tolist()
        summary["alpha_t"] = pop.alpha_t.round(4).tolist()
    print(json.dumps(summary))
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        import brian2

        from . import __version__

        print(f"brian_dendrite {__version__} (Brian2 {brian2.__version__})")
        return 0
    if args.command is None:
        parser.print_help()
        return 0
    from .parameters import ParameterError

    handlers = {"models": _cmd_models, "cell": _cmd_cell}
    try:
        return handlers[args.command](args)
    except (ParameterError, ValueError, FileNotFoundError) as err:
        print(f"brian-dendrite {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

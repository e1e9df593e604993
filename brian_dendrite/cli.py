"""The ``brian-dendrite`` command line: a thin layer over the library.

Exit codes: 0 success, 1 a check failed, 2 bad usage or bad input, 3 a file could not
be written or read (a full disk, no permission: the message names the file; files
written before are left intact), 141 the reader of the output went away (``| head``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

from ._brian2_import import quiet_console

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
        epilog="'brian-dendrite COMMAND --help' describes a command. Documentation (user guide, examples, "
               "API and command reference): the Sphinx site in docs/ of the source repository; build it with "
               "'pip install .[docs]' and 'python -m sphinx -b html docs docs/_build/html', then open "
               "docs/_build/html/index.html.",
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
    p = sub.add_parser("train", help="train a network on MNIST and test it")
    from .training import add_training_arguments

    add_training_arguments(p)

    p = sub.add_parser("export", help="export a recording (OUTPUT/recording.npz of 'train --record') to NWB or SONATA")
    p.add_argument("recording", type=Path, help="a recording.npz, or a run directory holding one")
    p.add_argument("--format", choices=["nwb", "sonata"], default="nwb",
                   help="nwb (default): spikes, potentials, plateaus and phases; sonata: the spikes as a SONATA "
                        "spike file (HDF5, times in ms) for BMTK, NEST and libsonata")
    p.add_argument("--output", type=Path, default=None,
                   help="output file (default: beside the recording, RECORDING.nwb or RECORDING_spikes.h5)")
    p.add_argument("--sorting", choices=["by_id", "by_time", "none"], default="by_id",
                   help="sonata: order of the spikes of each population (default by_id: node id, then time)")
    p.add_argument("--inspect", action="store_true", help="nwb: run nwbinspector on the file and print its findings")
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")

    p = sub.add_parser("plot", help="figures of a run directory: learning curve, raster, potentials, weights")
    p.add_argument("run", type=Path, help="a run directory (summary.json, weights.npz, recording.npz)")
    p.add_argument("--output", type=Path, default=None, help="figure directory (default RUN/figures)")

    p = sub.add_parser("validate", help="compare the spiking network with the rate abstraction")
    from .validation import add_validation_arguments

    add_validation_arguments(p)

    p = sub.add_parser("sweep", help="a grid of model files x seeds as independent tasks on Dask")
    from .sweeps import add_sweep_arguments

    add_sweep_arguments(p)

    p = sub.add_parser("crosscheck", help="run the same cells and learning rule in NEURON and Brian2 and compare")
    from .nrn import add_crosscheck_arguments

    add_crosscheck_arguments(p)

    p = sub.add_parser("test", help="test saved weights on the MNIST test set")
    p.add_argument("weights", type=Path, help="a weights.npz or checkpoint.npz file")
    p.add_argument("--model", default=None, help="model name or .toml (default: the run's summary.json)")
    p.add_argument("--test-examples", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target", choices=["cython", "numpy", "cpp_standalone"], default="cython")
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    return parser


def _check_train_options(args) -> None:
    """ValueError naming the first option of 'train' that no run can have (before anything is loaded or written)."""
    for flag, value, least in (("--test-examples", args.test_examples, 0), ("--test-every", args.test_every, 0),
                               ("--chunk-size", args.chunk_size, 1), ("--record", args.record, 0)):
        if value is not None and value < least:
            raise ValueError(f"{flag} = {value}: expected {least} or more"
                             + (" (0: no test)" if flag == "--test-examples" else ""))
    if (args.examples if args.examples is not None else args.epochs) <= 0:
        given = f"--examples {args.examples}" if args.examples is not None else f"--epochs {args.epochs:g}"
        raise ValueError(f"{given} gives no training examples; expected at least 1")
    if args.kind == "rate" and args.record:
        raise ValueError(f"--record = {args.record}: recordings are of the spiking network; "
                         "not available with --kind rate")
    if args.test_examples == 0 and (args.test_every or args.initial_test):
        print("brian-dendrite train: --test-examples 0: the run is not tested (--test-every and --initial-test "
              "test nothing)", file=sys.stderr)


def _cmd_train(args) -> int:
    from .datasets import load_mnist
    from .model import load_model
    from .training import Trainer

    _check_train_options(args)
    params = load_model(args.model)
    train_set = load_mnist("train", data_dir=args.data_dir)
    test_set = load_mnist("test", data_dir=args.data_dir)
    n = args.examples if args.examples is not None else int(round(args.epochs * len(train_set.labels)))
    if n < 1:
        raise ValueError(f"--examples/--epochs give {n} training examples; expected at least 1")
    if args.record > len(train_set.labels):
        raise ValueError(f"--record = {args.record}: more than the {len(train_set.labels)} training examples")
    if args.kind == "rate":
        from .training import CHECKPOINT, train_rate

        checkpoint = args.output / CHECKPOINT
        if checkpoint.exists() and not args.resume:
            raise ValueError(f"{checkpoint} exists: pass --resume to continue it, or choose another --output")
        if args.resume and not checkpoint.exists():
            print(f"brian-dendrite train: no checkpoint in {args.output}, starting from the beginning",
                  file=sys.stderr)

        summary = train_rate(params, train_set, test_set, args.output, n, seed=args.seed,
                             test_examples=args.test_examples, test_every=args.test_every,
                             initial_test=args.initial_test, progress=not args.quiet)
        print(json.dumps({k: summary[k] for k in ("model", "kind", "examples_trained", "final_test_error",
                                                  "ms_per_example")}))
        print(f"summary: {args.output / 'summary.json'}")
        return 0
    trainer = Trainer(params, train_set, test_set, args.output, seed=args.seed, chunk_size=args.chunk_size,
                      test_examples=args.test_examples, test_every=args.test_every, target=args.target)
    if args.resume:
        if not trainer.resume():
            print(f"brian-dendrite train: no checkpoint in {args.output}, starting from the beginning",
                  file=sys.stderr)
        elif trainer.progress["examples"] > n:
            raise ValueError(f"checkpoint {trainer.checkpoint_path} is after {trainer.progress['examples']} examples; "
                             f"this run asks for {n}: it cannot train fewer")
    elif trainer.checkpoint_path.exists():
        raise ValueError(f"{trainer.checkpoint_path} exists: pass --resume to continue it, or choose another --output")
    from ._progress import progress_bar

    with progress_bar(n, "training", "example", enabled=not args.quiet,
                      initial=min(trainer.progress["examples"], n)) as bar:
        summary = trainer.train(n, progress_bar=bar, initial_test=args.initial_test)
    if args.record:
        net = trainer.network
        idx = np.random.default_rng(args.seed).choice(len(train_set.labels), size=args.record, replace=False)
        neurons = {g.name: list(range(min(10, len(g)))) for g in net.layers[1:]}
        for start in range(0, args.record, net.chunk_size):
            sel = idx[start : start + net.chunk_size]
            rec = net.record(train_set.images[sel], train_set.labels[sel], potentials=neurons, stimulus=sel,
                             key=(0x4EC, start))
            rec.save(args.output / ("recording.npz" if start == 0 else f"recording_{start}.npz"))
        print(f"recording: {args.output / 'recording.npz'}")
    print(json.dumps({k: summary[k] for k in ("model", "examples_trained", "final_test_error", "ms_per_example")}))
    print(f"summary: {args.output / 'summary.json'}")
    return 0


def _load_recording(path: Path):
    """``(recording, its file)`` for 'export': a recording.npz, or a run directory holding one."""
    from .simulation import RunRecording

    src = path / "recording.npz" if path.is_dir() else path
    if not src.is_file():
        where = f"run directory {path} has no recording.npz" if path.is_dir() else f"recording file {src} does not exist"
        raise FileNotFoundError(f"{where} (write one with 'brian-dendrite train --record N')")
    try:
        return RunRecording.load(src), src
    except (KeyError, TypeError, IndexError, EOFError, zipfile.BadZipFile) as err:  # truncated, or other contents
        raise ValueError(f"{src} is not a readable brian_dendrite recording ({type(err).__name__}: {err})") from None


def _export_output(args, src: Path) -> Path:
    """The file 'export' writes: --output, else beside the recording; checked before any work."""
    out = args.output or (src.with_suffix(".nwb") if args.format == "nwb" else src.with_name(f"{src.stem}_spikes.h5"))
    if out.is_dir():
        raise ValueError(f"--output {out} is a folder; expected a file name")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"--output {out}: folder {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise ValueError(f"--output {out}: folder {out.parent} is not writable")
    return out


def _os_error_in(err: BaseException) -> OSError | None:
    """The first OSError in the chain of ``err`` (itself, its cause, its context, ...), or None."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _cmd_export(args) -> int:
    from ._progress import progress_bar
    from .io import to_nwb, to_sonata

    if args.inspect and args.format != "nwb":
        raise ValueError(f"--inspect runs nwbinspector on NWB files; it does not apply to --format {args.format}")
    if args.output is not None:
        _export_output(args, args.output)  # an unusable output is refused before the recording is read
    with progress_bar(2, f"{args.format.upper()} export", "step", enabled=not args.quiet) as bar:
        bar.set_postfix_str("reading the recording")
        rec, src = _load_recording(args.recording)
        out = _export_output(args, src)
        bar.update(1)
        bar.set_postfix_str(f"writing {out.name}")
        try:
            if args.format == "sonata":
                to_sonata(rec, out, sorting=args.sorting, progress=False)
            else:
                to_nwb(rec, out)
        except Exception as err:
            cause = _os_error_in(err)  # hdmf wraps the OSError of h5py in a plain Exception
            if cause is None:
                raise
            raise OSError(f"could not write {out} ({type(cause).__name__}: {cause}); "
                          "an existing file of that name is unchanged") from err  # exit status 3
        bar.update(1)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {float(rec.duration):.3f} s simulated)")
    if args.inspect:
        from nwbinspector import inspect_nwbfile

        messages = list(inspect_nwbfile(nwbfile_path=str(out)))
        for m in messages:
            print(f"{m.importance.name}: {m.check_function_name}: {m.message}")
        if any(m.importance.name in ("CRITICAL", "ERROR") for m in messages):
            return 1
    return 0


def _cmd_plot(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .model import Weights
    from .plotting import (
        plot_learning_curve,
        plot_potentials,
        plot_raster,
        plot_receptive_fields,
        plot_weight_histograms,
    )

    run = args.run
    if not run.is_dir():
        raise ValueError(f"{run} is not a run directory")
    # every file is read first: an unreadable one is named before anything is written
    summary = weights = rec = None
    if (run / "summary.json").exists():
        try:
            summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
        except ValueError as err:
            raise ValueError(f"{run / 'summary.json'} is not a readable run summary: {err}") from None
    if (run / "weights.npz").exists():
        weights = Weights.load(run / "weights.npz")
    if (run / "recording.npz").exists():
        rec, _ = _load_recording(run / "recording.npz")
    if summary is None and weights is None and rec is None:
        raise ValueError(f"{run} has no summary.json, weights.npz or recording.npz to plot")
    out = args.output or run / "figures"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"figure directory {out} cannot be created: {err}") from None
    written = []

    def save(ax, name):
        fig = (ax[0] if isinstance(ax, list | tuple | np.ndarray) else ax).figure
        fig.savefig(out / name, dpi=120, bbox_inches="tight")
        plt.close(fig)
        written.append(str(out / name))

    if summary is not None:
        save(plot_learning_curve(summary), "learning_curve.png")
    if weights is not None:
        if len(weights.W) > 1:
            save(plot_receptive_fields(weights.W[0]), "receptive_fields.png")
        save(plot_weight_histograms(weights), "weight_histograms.png")
    if rec is not None:
        save(plot_raster(rec), "raster.png")
        for layer in rec.potentials:
            save(plot_potentials(rec, layer), f"potentials_{layer}.png")
    print("\n".join(written))
    return 0


def _cmd_validate(args) -> int:
    from .validation import run_validation_from_args

    if args.data_dir is not None and not args.data_dir.is_dir():  # before the report folder is made
        raise FileNotFoundError(f"--data-dir {args.data_dir} is not a folder")

    return run_validation_from_args(args)


def _cmd_crosscheck(args) -> int:
    from .nrn import run_crosscheck_from_args

    return run_crosscheck_from_args(args)


def _cmd_sweep(args) -> int:
    from .sweeps import run_sweep_from_args

    return run_sweep_from_args(args)


def _test_model(args):
    """``(params, where they came from)`` for 'test': ``--model``, else the summary.json beside the weights."""
    from .model import ModelParameters, load_model

    if args.model:
        return load_model(args.model), f"--model {args.model}"
    summary = args.weights.parent / "summary.json"
    if not summary.is_file():
        raise ValueError(f"no --model given and no {summary} beside weights file {args.weights} to take it from")
    try:
        parameters = json.loads(summary.read_text(encoding="utf-8"))["parameters"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{summary} is not a readable run summary with the model's parameters "
                         f"({type(err).__name__}: {err}); pass --model") from None
    return ModelParameters.from_dict(parameters, source=str(summary)), str(summary)


def _cmd_test(args) -> int:
    import brian2

    from .datasets import load_mnist
    from .model import Weights
    from .simulation import SpikingNetwork

    if args.test_examples < 1:
        raise ValueError(f"--test-examples = {args.test_examples}: expected 1 or more")
    weights = Weights.load(args.weights)  # the file first: it exists and holds weights
    params, origin = _test_model(args)
    try:
        weights.check_shapes(params.network.layer_sizes)
    except ValueError as err:
        raise ValueError(f"weights file {args.weights} does not fit model {params.name!r} ({origin}): {err}") from None
    test_set = load_mnist("test", data_dir=args.data_dir)
    n = min(args.test_examples, len(test_set.labels))
    if args.target == "cpp_standalone":
        from .simulation import build_directory

        net = SpikingNetwork(params, weights=weights, seed=args.seed, device="cpp_standalone",
                             build_dir=build_directory(params, 1000))
    else:
        brian2.prefs.codegen.target = args.target
        net = SpikingNetwork(params, weights=weights, seed=args.seed, test_chunk_size=min(1000, n))
    from ._progress import BrianProgress, progress_bar

    with progress_bar(n, "testing", "image", enabled=not args.quiet) as bar:
        chunk = net.test_chunk_size
        report = BrianProgress(bar, [min(chunk, n - start) for start in range(0, n, chunk)])
        result = net.test(test_set.images[:n], test_set.labels[:n], report=report)
        report.finish()
    print(json.dumps({"test_error": result.error, "test_images": n, "readout": result.readout}))
    return 0


def _cmd_models(args) -> int:
    from .model import available_models, load_model

    if args.name is None:
        for name in available_models():
            print(f"{name}: {load_model(name).description}")
        return 0
    print(load_model(args.name).to_toml(), end="")
    return 0


def _check_cell_options(args) -> None:
    """ValueError naming the first option of 'cell' that cannot work (before anything is simulated)."""
    n = len(args.basal)
    if n == 0:
        raise ValueError("--basal: expected at least one number (one neuron per value)")
    if args.phase <= 0:
        raise ValueError(f"--phase = {args.phase:g}: expected a positive length in ms")
    if args.apical_drive < 0:
        raise ValueError(f"--apical-drive = {args.apical_drive:g}: expected 0 (none) or a positive rate in Hz")
    if args.apical is not None and len(args.apical) not in (1, n):
        raise ValueError(f"--apical has {len(args.apical)} values for {n} neurons (--basal): expected 1 or {n}")
    folder = args.output.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"--output {args.output}: folder {folder} does not exist")


def _cmd_cell(args) -> int:
    import brian2
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from brian2 import Hz, ms

    from .model import CellParameters, ProtocolParameters, load_model
    from .plotting import plot_compartments
    from .simulation import CellPopulation, PoissonDrive

    _check_cell_options(args)
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
    from .model import ParameterError

    handlers = {"models": _cmd_models, "cell": _cmd_cell, "train": _cmd_train, "test": _cmd_test,
                "export": _cmd_export, "plot": _cmd_plot, "validate": _cmd_validate, "sweep": _cmd_sweep,
                "crosscheck": _cmd_crosscheck}
    restore_console = quiet_console() if getattr(args, "quiet", False) else None
    try:
        status = handlers[args.command](args)
        sys.stdout.flush()  # here, so that a closed pipe is noticed in the try
        return status
    except (ParameterError, ValueError, FileNotFoundError, NotImplementedError) as err:
        print(f"brian-dendrite {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return _broken_pipe()
    except OSError as err:  # a full disk, no permission: not the user's input, and no traceback
        print(f"brian-dendrite {args.command}: error: {err}", file=sys.stderr)
        return 3
    finally:
        if restore_console is not None:
            restore_console()


def _broken_pipe() -> int:
    """The reader of stdout went away (``brian-dendrite models | head``): exit quietly with 128 + SIGPIPE."""
    import os

    try:  # the interpreter flushes stdout again at exit: let that go nowhere
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - stdout is not a real file
        pass
    return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

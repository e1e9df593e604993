"""Running the suite: the tiers, :func:`run_validation`, the report and the command line.

A tier (:class:`TierConfig`, :data:`TIERS`) fixes the sizes of every check.
:func:`run_validation` loads MNIST, draws the initial weights, pretrains the rate
model (the "trained" weights of checks 1 and 5), builds one spiking network and runs
the requested checks on it in a fixed order - rates, plateaus and updates (which
share their simulations), learning, spike statistics - each as one step that fills
its part of the report. The report (``report_<tier>.json``) holds every value next to
its tolerance and an explanation, the configuration, the versions and the run times;
``figures/`` holds one figure per check.

The command line, the same for ``brian-dendrite validate`` and
``python -m brian_dendrite.validation``::

    brian-dendrite validate [--tier fast|full] [--output DIR] [--data-dir DIR] [--seed N]
                            [--target cython|numpy] [--checks rates,plateaus,...] [--quiet]

exits with 0 if every check passed, 1 if one failed and 2 for bad input (an unknown
tier or check, missing MNIST files).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .._progress import progress_bar
from ..model import effective_kernel_masses, initial_weights, load_model
from ..provenance import versions, write_json_atomic
from ..rate import RateNetwork
from ._common import _pearson
from .learning import _late_mean, learning_agreement, measure_learning
from .plateaus import _analytic_plateau_sd, _plateau_check
from .plots import (
    plot_learning_curves,
    plot_plateau_scatter,
    plot_rate_scatter,
    plot_spike_statistics,
    plot_update_cosines,
)
from .rates import measure_rates, rate_agreement
from .spike_trains import measure_spike_statistics, spike_statistics
from .updates import _diagnostic_mode, _mean_field_examples, _update_check, measure_examples

__all__ = ["TIERS", "TierConfig", "add_validation_arguments", "main", "run_validation", "run_validation_from_args"]

#: The checks in the order they run.
_CHECKS = ("rates", "plateaus", "updates", "learning", "spike_statistics")


@dataclass(frozen=True)
class TierConfig:
    """Sizes of one validation tier (all counts are examples or images)."""

    name: str
    model: str = "one_hidden"
    #: Rate-model training examples that produce the "trained" weights of checks 1 and 5.
    pretrain_examples: int = 2000
    #: Check 1: test images, and hidden neurons whose V_soma is recorded.
    rate_images: int = 50
    rate_recorded_hidden: int = 100
    #: Checks 2 and 3: examples, spiking repeats per example, weight sets, diagnostic modes.
    update_examples: int = 10
    update_repeats: int = 3
    update_weights: tuple = ("initial",)
    update_diagnostics: tuple = ("carryover", "reset")
    #: Check 4: training examples, evaluation interval and images (rate readout), spiking-test images,
    #: rate-model orders and spiking runs.
    learn_examples: int = 2000
    learn_eval_every: int = 250
    learn_eval_images: int = 1000
    learn_test_images: int = 300
    learn_orders: int = 8
    learn_spiking_runs: int = 1
    #: Examples of the (noise-free) mean-field twin trained with the spiking protocol (diagnostic).
    learn_mean_field_examples: int = 2000
    #: Check 5: test phases of one repeated image.
    stat_repeats: int = 20
    stat_bootstrap: int = 200
    #: Network chunk sizes (fixed: they set the compiled code's array shapes).
    chunk_size: int = 500
    test_chunk_size: int = 500


#: The tiers by name: ``'fast'`` (CI: under 5 min on 2 cores including compilation) and
#: ``'full'`` (about an hour).
TIERS = {
    "fast": TierConfig("fast"),
    "full": TierConfig(
        "full",
        rate_images=400,
        rate_recorded_hidden=100,
        update_examples=40,
        update_repeats=4,
        update_weights=("initial", "trained"),
        learn_examples=60000,
        learn_eval_every=2000,
        learn_eval_images=5000,
        learn_test_images=2000,
        learn_orders=8,
        learn_spiking_runs=2,
        learn_mean_field_examples=20000,
        stat_repeats=80,
        chunk_size=1000,
        test_chunk_size=1000,
    ),
}


# --------------------------------------------------------------------------------------------------
# Running a tier
# --------------------------------------------------------------------------------------------------


def _versions() -> dict:
    import elephant
    import neo

    return {**versions(), "elephant": elephant.__version__, "neo": neo.__version__}


def _save(fig_axes, path: Path) -> str:
    import matplotlib.pyplot as plt

    ax = np.ravel(np.asarray(fig_axes, dtype=object))[0] if isinstance(fig_axes, list | tuple | np.ndarray) else fig_axes
    fig = ax.figure
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


@dataclass
class _Timer:
    times: dict = field(default_factory=dict)

    def __call__(self, name, start):
        self.times[name] = round(time.perf_counter() - start, 1)


@dataclass
class _Context:
    """What the check steps of :func:`run_validation` share; each step adds to ``report``, ``figs`` and ``timer``."""

    cfg: TierConfig
    seed: int
    params: object
    train: object
    test: object
    W0: object
    W_trained: object
    net: object
    report: dict
    timer: _Timer
    figs: dict = field(default_factory=dict)


def run_validation(tier: str = "fast", output_dir=None, data_dir=None, seed: int = 0, target: str = "cython",
                   checks=None, progress: bool = True) -> tuple[dict, bool]:
    """Run one validation tier; write ``report_<tier>.json`` and ``figures/`` into ``output_dir``.

    Parameters
    ----------
    tier : {'fast', 'full'}
        ``'fast'`` (CI: under 5 min on 2 cores including compilation) or ``'full'``
        (about an hour): see :data:`TIERS`. Default ``'fast'``.
    output_dir : str or Path, optional
        Where the report and figures go (created); None (default): nothing is written.
    data_dir : str or Path, optional
        The MNIST folder (see :func:`brian_dendrite.datasets.load_mnist`).
    seed : int
        Seeds the weights, the orders and the spikes (default 0).
    target : {'cython', 'numpy'}
        Brian2 code-generation target (default ``'cython'``); the previous target is
        restored on return.
    checks : iterable of str, optional
        Subset of ``('rates', 'plateaus', 'updates', 'learning', 'spike_statistics')``;
        default all. ``'plateaus'`` and ``'updates'`` share their simulations.
    progress : bool
        Show a progress bar on stderr, one step per stage (preparation, each
        check, the figures); its ETA is rough, as the stages differ in length.

    Returns
    -------
    (dict, bool)
        The report and whether every check that was run passed.

    Raises
    ------
    ValueError
        For an unknown tier, check name or target (the valid ones are listed).
    FileNotFoundError
        If the MNIST files are not found (and cannot be downloaded).
    """
    import brian2
    import matplotlib

    checks = _checked_arguments(tier, target, checks)
    cfg = TIERS[tier]
    out_dir = None
    if output_dir is not None:
        out_dir = Path(output_dir)
        (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    matplotlib.use("Agg")
    old_target = brian2.prefs.codegen.target
    brian2.prefs.codegen.target = target
    timer = _Timer()
    t_start = time.perf_counter()
    try:
        steps = _steps(checks)
        with progress_bar(len(steps) + 1 + (out_dir is not None), f"validate {tier}", "step",
                          enabled=progress) as bar:
            bar.set_postfix_str("data, pretraining, network")
            ctx = _prepare(cfg, tier, seed, target, data_dir, timer)
            bar.update(1)
            for name, step in steps:
                bar.set_postfix_str(name)
                step(ctx)
                bar.update(1)
            report = ctx.report
            report["passed"] = bool(all(c["passed"] for c in report["checks"].values()))
            report["seconds"] = dict(timer.times, total=round(time.perf_counter() - t_start, 1))
            if out_dir is not None:
                bar.set_postfix_str("figures and report")
                for name, (fn, args) in ctx.figs.items():
                    report["figures"][name] = "figures/" + _save(fn(*args), out_dir / "figures" / f"{name}.png")
                write_json_atomic(out_dir / f"report_{tier}.json", report)
                bar.update(1)
        return report, report["passed"]
    finally:
        brian2.prefs.codegen.target = old_target


def _steps(checks: tuple) -> list:
    """``(name, step)`` of the checks to run, in their fixed order; each step takes the :class:`_Context`."""
    return [(name, step) for name, step, wanted in (
        ("rates", _check_rates, "rates" in checks),
        ("plateaus and updates", lambda ctx: _check_single_examples(ctx, checks),
         "plateaus" in checks or "updates" in checks),
        ("learning", _check_learning, "learning" in checks),
        ("spike statistics", _check_spike_statistics, "spike_statistics" in checks)) if wanted]


def _checked_arguments(tier: str, target: str, checks) -> tuple:
    """The checks to run, after validating the tier, the check names and the target."""
    if tier not in TIERS:
        raise ValueError(f"tier = {tier!r}: expected one of {', '.join(sorted(TIERS))}")
    checks = tuple(_CHECKS if checks is None else checks)
    unknown = sorted(set(checks) - set(_CHECKS))
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; valid checks are {', '.join(_CHECKS)}")
    if target not in ("cython", "numpy"):
        raise ValueError(f"target = {target!r}: expected 'cython' or 'numpy'")
    return checks


def _prepare(cfg: TierConfig, tier: str, seed: int, target: str, data_dir, timer: _Timer) -> _Context:
    """Load the data, draw and pretrain the weights, build the spiking network and start the report."""
    from ..datasets import load_mnist
    from ..simulation import SpikingNetwork

    params = load_model(cfg.model)
    train = load_mnist("train", data_dir)
    test = load_mnist("test", data_dir)
    W0 = initial_weights(params, np.random.default_rng(np.random.SeedSequence([seed, 0xD1])))
    t0 = time.perf_counter()
    pre = RateNetwork(params, W0.copy())
    pre_idx = np.random.default_rng(np.random.SeedSequence([seed, 0x9E])).permutation(len(train.labels))
    pre_idx = pre_idx[: cfg.pretrain_examples]
    pre.train(train.images[pre_idx], train.labels[pre_idx])
    W_trained = pre.weights
    pretrain_error = pre.test_error(test.images[:1000], test.labels[:1000])
    timer("pretrain_rate_model", t0)
    t0 = time.perf_counter()
    net = SpikingNetwork(params, weights=W0, seed=seed, chunk_size=cfg.chunk_size,
                         test_chunk_size=cfg.test_chunk_size)
    timer("build_network", t0)
    report = {
        "tier": tier,
        "seed": seed,
        "target": target,
        "model": params.name,
        "layer_sizes": list(params.network.layer_sizes),
        "config": asdict(cfg),
        "versions": _versions(),
        "kernel_masses": effective_kernel_masses(params.cell),
        "pretrained_weights": {"rate_examples": cfg.pretrain_examples,
                               "rate_model_test_error_first_1000": pretrain_error},
        "checks": {},
        "figures": {},
    }
    return _Context(cfg=cfg, seed=seed, params=params, train=train, test=test, W0=W0, W_trained=W_trained,
                    net=net, report=report, timer=timer)


def _check_rates(ctx: _Context) -> None:
    """Check 1 on the pretrained weights: rates of every layer in test phases."""
    t0 = time.perf_counter()
    cfg, params, test = ctx.cfg, ctx.params, ctx.test
    ctx.net.set_weights(ctx.W_trained)
    rate = RateNetwork(params, ctx.W_trained)
    n = cfg.rate_images
    rates = measure_rates(ctx.net, rate, test.images[:n], test.labels[:n], cfg.rate_recorded_hidden,
                          key=(ctx.seed, 1))
    layers = {}
    for k, name in enumerate(rates["layers"]):
        layers[name] = rate_agreement(rates["measured"][k], rates["predicted"][k], rates["corrected"][k],
                                      rates["noise_sd"][k], layer=name, seed=ctx.seed)
        mfp = rates["mean_field"][k]
        pred = rates["predicted"][k]
        layers[name]["relative_bias_kernel_and_settling"] = float(
            (mfp.sum() - pred.sum()) / pred.sum()) if pred.sum() > 0 else None
        layers[name]["relative_bias_jensen"] = float(
            (rates["corrected"][k].sum() - mfp.sum()) / pred.sum()) if pred.sum() > 0 else None
    ctx.report["checks"]["rates"] = {
        "weights": f"rate model trained on {cfg.pretrain_examples} examples",
        "images": n,
        "window_steps": rates["n_window_steps"],
        "layers": layers,
        "jensen_from_recorded_V": rates["jensen"],
        "passed": all(v["passed"] for v in layers.values()),
    }
    ctx.figs["rates"] = (plot_rate_scatter, (rates,))
    ctx.timer("check_rates", t0)


def _check_single_examples(ctx: _Context, checks: tuple) -> None:
    """Checks 2 and 3, which share their simulations: plateaus and weight updates of single examples."""
    t0 = time.perf_counter()
    cfg, seed, train = ctx.cfg, ctx.seed, ctx.train
    idx = np.arange(cfg.update_examples) + 100  # examples 100..: the first ones are the pretraining's
    order = np.random.default_rng(np.random.SeedSequence([seed, 0x3A])).permutation(len(train.labels))
    ex_idx = order[idx]
    prev_idx = order[idx - 1]
    images, labels = train.images[ex_idx], train.labels[ex_idx]
    previous = (train.images[prev_idx], train.labels[prev_idx])
    plateau_results, update_results = {}, {}
    for wname in cfg.update_weights:
        plateau_results[wname], update_results[wname] = _examples_for_weights(ctx, wname, images, labels,
                                                                              previous)
    for name, results in (("plateaus", plateau_results), ("updates", update_results)):
        if name in checks:
            ctx.report["checks"][name] = {
                "protocol": "warm-up with the same example, then repeats from that state",
                "examples": cfg.update_examples, "repeats": cfg.update_repeats,
                "weights": results,
                "passed": all(v["passed"] for v in results.values()),
            }
    ctx.timer("check_plateaus_updates", t0)


def _examples_for_weights(ctx: _Context, wname: str, images, labels, previous) -> tuple[dict, dict]:
    """Checks 2 and 3 for one weight set (``'initial'`` or ``'trained'``), with the diagnostic modes."""
    cfg, params, seed = ctx.cfg, ctx.params, ctx.seed
    W = ctx.W0 if wname == "initial" else ctx.W_trained
    rate = RateNetwork(params, W)
    qs = [rate.example_quantities(images[e], labels[e]) for e in range(len(labels))]
    dW_rate = [[d[0] for d in rate.update_deltas(images[e], labels[e])] for e in range(len(labels))]
    runs = measure_examples(ctx.net, params, W, images, labels, cfg.update_repeats, "warmup",
                            key=seed * 100 + (1 if wname == "initial" else 2))
    mf = _mean_field_examples(params, W, images, labels, runs, "warmup", noise=True)
    mf0 = _mean_field_examples(params, W, images, labels, runs, "warmup", noise=False)
    # analytic apical noise: Poisson output spikes only, and the full propagation
    analytic = _analytic_plateau_sd(params, W, images, qs)
    per_layer, shown = _plateau_check(runs, qs, mf, analytic)
    if wname == cfg.update_weights[0]:
        ctx.figs["plateaus"] = (plot_plateau_scatter, shown)
    plateaus = {"layers": per_layer, "passed": all(v["passed"] for v in per_layer.values())}
    upd = _update_check(runs, mf, mf0, qs, dW_rate, rate, images, labels, cfg.update_repeats)
    diag = {}
    for mode in cfg.update_diagnostics:
        d_runs = measure_examples(ctx.net, params, W, images, labels, 1, mode, previous=previous,
                                  key=seed * 100 + 50 + (1 if wname == "initial" else 2))
        mf_d = _mean_field_examples(params, W, images, labels, d_runs, mode, noise=False, previous=previous)
        diag[mode] = _diagnostic_mode(d_runs, mf_d, dW_rate, qs)
    upd["diagnostic_modes"] = diag
    upd["alpha_f_pearson_r_warmup"] = _pearson(runs["alpha_f"][0],
                                               np.broadcast_to([q["alpha_f"][0] for q in qs],
                                                               runs["alpha_f"][0].shape))
    if wname == cfg.update_weights[0]:
        ctx.figs["updates"] = (plot_update_cosines, (upd,))
    return plateaus, upd


def _check_learning(ctx: _Context) -> None:
    """Check 4: both models trained from the initial weights on the same examples."""
    t0 = time.perf_counter()
    cfg = ctx.cfg
    learn = measure_learning(ctx.net, ctx.params, ctx.W0, ctx.train, ctx.test, cfg, ctx.seed)
    res = learning_agreement(learn["spiking_curves"], learn["rate_curve"], learn["rate_order_curves"],
                             late_from=cfg.learn_examples // 2, discordant=learn["discordant"],
                             n_test=learn["n_eval"])
    res["rate_order_curves"] = [[[int(a), float(b)] for a, b in c] for c in learn["rate_order_curves"]]
    res["mean_field_curve"] = [[int(a), float(b)] for a, b in learn["mean_field_curve"]]
    res["area_under_curve_mean_error"] = {
        "spiking": float(np.mean([e for _, e in learn["spiking_curves"][0][1:]])),
        "rate": float(np.mean([e for _, e in learn["rate_curve"][1:]])),
        "rate_orders": [float(np.mean([e for _, e in c[1:]])) for c in learn["rate_order_curves"]],
    }
    if learn["mean_field_curve"][-1][0] >= cfg.learn_examples // 2:
        res["late_mean_mean_field"] = _late_mean(learn["mean_field_curve"], cfg.learn_examples // 2)
    res["examples"] = cfg.learn_examples
    res["eval_images"] = cfg.learn_eval_images
    res["spiking_readout"] = dict(learn["readout"], test_images=learn["n_test"])
    res["seconds"] = {"rate": learn["rate_seconds"], "spiking": learn["spiking_seconds"],
                      "mean_field": learn["mean_field_seconds"]}
    ctx.report["checks"]["learning"] = res
    ctx.figs["learning"] = (plot_learning_curves, (res,))
    ctx.timer("check_learning", t0)


def _check_spike_statistics(ctx: _Context) -> None:
    """Check 5 on the pretrained weights: one test image repeated."""
    t0 = time.perf_counter()
    cfg = ctx.cfg
    ctx.net.set_weights(ctx.W_trained)
    k = 0
    groups = measure_spike_statistics(ctx.net, ctx.test.images[k], ctx.test.labels[k], cfg.stat_repeats,
                                      cfg.stat_bootstrap, ctx.seed, key=(ctx.seed, 5))
    res = spike_statistics(groups)
    res["image"] = "test image 0, repeated"
    res["repeats"] = cfg.stat_repeats
    ctx.report["checks"]["spike_statistics"] = res
    ctx.figs["spike_statistics"] = (plot_spike_statistics, (groups,))
    ctx.timer("check_spike_statistics", t0)


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def _summary_lines(report: dict) -> list[str]:
    """The report in a few lines: every check's verdict and its main values against their tolerances."""
    lines = [f"validation tier {report['tier']} (seed {report['seed']}, {report['target']}): "
             f"{'PASSED' if report['passed'] else 'FAILED'} in {report['seconds']['total']} s"]
    for name, check in report["checks"].items():
        lines.append(f"  {name}: {'pass' if check['passed'] else 'FAIL'}")
        if name == "rates":
            for lay, v in check["layers"].items():
                lines.append(f"    {lay}: r = {v['pearson_r']:.4f} (min {v['tolerance']['pearson_r_min']:.4f}), "
                             f"median rel. error = {v['median_relative_error']:.3f} "
                             f"(max {v['tolerance']['median_relative_error_max']:.3f}), "
                             f"mean z = {v['mean_z']:+.3f}, sd z = {v['sd_z']:.3f}")
        elif name == "plateaus":
            for w, res in check["weights"].items():
                for lay, v in res["layers"].items():
                    for ph, e in v["phases"].items():
                        lines.append(f"    {w} {lay} {ph}: r = {e['pearson_r']:.3f}, MAD = "
                                     f"{e['mean_abs_difference']:.4f}, MSD/noise var = "
                                     f"{e['msd_over_noise_variance']:.2f} (max {e['tolerance']['msd_over_noise_variance_max']})")
        elif name == "updates":
            for w, res in check["weights"].items():
                for lay, v in res["layers"].items():
                    lines.append(f"    {w} {lay}: cos mean {v['cosine_mean']:.3f} min {v['cosine_min']:.3f} "
                                 f"(ceiling {v['noise_ceiling_mean']:.3f}, min allowed "
                                 f"{v['tolerance']['cosine_mean_min']:.3f}), scale {v['projection_scale_mean']:.2f}")
        elif name == "learning":
            lines.append(f"    mean error from {check['late_from_examples']} examples: spiking "
                         f"{check['late_mean_spiking']:.2f} %, rate {check['late_mean_rate']:.2f} %, "
                         f"|diff| {abs(check['difference']):.2f} (max {check['tolerance']['abs_difference_max']:.2f})")
        elif name == "spike_statistics":
            for g, v in check["groups"].items():
                for stat in ("cv", "fano", "count_given_rate"):
                    if stat in v:
                        s = v[stat]
                        lines.append(f"    {g} {stat}: mean z {s['mean_z']:+.3f}, sd z {s['sd_z']:.3f}, n {s['n']}")
    return lines


def add_validation_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of the validation command line to ``parser`` (and return it).

    Used by ``brian-dendrite validate`` and ``python -m brian_dendrite.validation``,
    so that both have the same options and defaults.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        A parser or subparser.

    Returns
    -------
    argparse.ArgumentParser
        ``parser``, for chaining.
    """
    parser.add_argument("--tier", choices=sorted(TIERS), default="fast",
                        help="fast (CI, minutes) or full (about an hour) (default fast)")
    parser.add_argument("--output", type=Path, default=Path("validation-report"),
                        help="directory for report_<tier>.json and figures/ (default ./validation-report)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder with the MNIST files (default: $BRIAN_DENDRITE_DATA, else download/cache)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the weights, example orders and spikes (default 0)")
    parser.add_argument("--target", choices=["cython", "numpy"], default="cython",
                        help="Brian2 code-generation target (default cython)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--checks", default=None,
                        help="comma-separated subset of " + ",".join(_CHECKS) + " (default all)")
    return parser


def run_validation_from_args(args: argparse.Namespace) -> int:
    """Run :func:`run_validation` with parsed options; print the summary; return the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        Options added by :func:`add_validation_arguments`.

    Returns
    -------
    int
        0 if every check passed, 1 if a check failed, 2 for bad input (an unknown
        tier or check, missing MNIST files: printed as ``error: ...`` on stderr).
    """
    checks = None if args.checks is None else [c.strip() for c in args.checks.split(",") if c.strip()]
    try:
        quiet = {"progress": False} if getattr(args, "quiet", False) else {}
        report, passed = run_validation(args.tier, args.output, args.data_dir, args.seed, args.target, checks, **quiet)
    except (ValueError, FileNotFoundError) as err:  # bad usage or input (e.g. no MNIST files)
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("\n".join(_summary_lines(report)))
    print(f"report: {args.output / f'report_{args.tier}.json'}")
    return 0 if passed else 1


def main(argv=None) -> int:
    """``python -m brian_dendrite.validation [--tier fast|full] [--output DIR] ...``: the exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        As :func:`run_validation_from_args`.
    """
    parser = argparse.ArgumentParser(prog="brian-dendrite validate",
                                     description="Validate the spiking network against the rate model.")
    add_validation_arguments(parser)
    return run_validation_from_args(parser.parse_args(argv))

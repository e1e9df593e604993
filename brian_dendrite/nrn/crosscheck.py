"""The cross-simulator check: the same cells and learning rule in NEURON and Brian2.

The checks, each run in both simulators from the same parameter objects:

1. **Cells** (:func:`cell_crosscheck`): a small population of pyramidal or output
   neurons driven by identical deterministic input spike trains (numpy Bernoulli
   trains, fed to Brian2 through ``SpikeGeneratorGroup`` s and to NEURON through
   forced input cells). The Brian2 cells spike stochastically; the NEURON cells
   replay those spikes, so the two runs are the same deterministic computation and
   the compartment potentials (``V_soma``, ``V_basal``, ``V_apical``), the own PSP
   ``s_out`` and the plateau potentials are compared step by step.
2. **Learning** (:func:`learning_crosscheck`): a small network (784-20-10 by
   default) is trained on K MNIST images in Brian2
   (:class:`~brian_dendrite.simulation.SpikingNetwork`, runtime numpy target) and in
   NEURON from the same initial weights, the same phase schedule and the same spike
   trains of every layer (recorded in Brian2, replayed in NEURON); the weight and
   bias changes are compared.
   The same for the variants of :func:`learning_variants`: two hidden layers,
   symmetric and noisy-symmetric feedback, stochastic plateau times (what Brian2
   drew at random is replayed, :mod:`brian_dendrite.nrn._netcheck`).
3. **Test phase** (:func:`test_crosscheck`): the trained network tests MNIST images
   in both simulators (250-ms phases, state zeroed after each), spikes replayed;
   the output potentials, the window-mean readouts and the predicted classes are
   compared.
4. **NEURON alone** (:func:`applied_update_check`): a freely spiking NEURON network
   (its own Bernoulli spikes, the input cells' too) learns one example; its weight
   change must equal ``delta_post * s_mean_f_pre`` computed in numpy from the
   window averages the NEURON cells hold.

Tolerances (Rallpack style, :data:`TOLERANCES`): relative RMS error below 0.1 % and
maximum error below 0.5 % (the thresholds of Brian2's own Rallpack tests), errors
relative to the RMS and the maximum modulus of the Brian2 trace. Both simulators
compute the same affine map per step (docs/neuron.rst), so the observed errors are
round-off, about 1e-12 relative; the test suite therefore also asserts
:data:`STRICT`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from brian2 import ms

from ..model import (
    CellParameters,
    ModelParameters,
    NetworkParameters,
    PhaseSchedule,
    ProtocolParameters,
    initial_weights,
)
from ._compare import STRICT, TOLERANCES, trace_errors
from ._compare import passes as _passes
from ._netcheck import free_running_comparison, learning_crosscheck, test_crosscheck
from ._network import NrnNetwork, bernoulli_input_steps, check_nrn_supported
from ._reference import brian2_population, input_trains, neuron_population, plateau_offsets

__all__ = ["TOLERANCES", "STRICT", "trace_errors", "cell_crosscheck", "learning_crosscheck", "benchmark",
           "add_crosscheck_arguments", "run_crosscheck_from_args", "format_report",
           "applied_update_check", "run_crosscheck", "crosscheck_schedule", "default_learning_params", "test_crosscheck",
           "learning_variants", "small_model", "free_running_comparison"]


def crosscheck_schedule(protocol: ProtocolParameters, dt, n_examples: int = 2) -> PhaseSchedule:
    """Forward and target phases of unequal lengths (60/55, 52/57 ms, ...), labels 1, 2, ..."""
    phases = []
    for k in range(n_examples):
        phases += [("forward", (60 - 8 * (k % 2)) * ms, k, k + 1), ("target", (55 + 2 * (k % 2)) * ms, k, k + 1)]
    return PhaseSchedule.from_phases(phases, protocol, dt=dt)


def cell_crosscheck(cell: CellParameters, protocol: ProtocolParameters, kind: str = "pyramidal", n: int = 3,
                    seed: int = 0, n_examples: int = 2, keep_traces: bool = False, exact_step: bool = True) -> dict:
    """Run *n* cells of *kind* in both simulators with identical input and compare them.

    ``exact_step=False`` runs NEURON's plain backward Euler instead of the step-factor
    form (see :class:`~brian_dendrite.nrn.NrnModel`), to show what the check detects.

    Returns
    -------
    dict
        ``errors`` (variable -> :func:`trace_errors`), ``plateaus`` (max absolute
        differences of ``alpha`` and of the window-mean apical potential, pyramidal
        only), ``spikes_replayed`` (NEURON reproduced every Brian2 spike step),
        ``n_spikes``, ``seconds`` per simulator and ``passed`` (:data:`TOLERANCES`);
        with ``keep_traces`` also the traces themselves (``traces``).
    """
    schedule = crosscheck_schedule(protocol, cell.dt, n_examples)
    drive = input_trains(kind, n, schedule.n_steps, seed)
    t0 = time.perf_counter()
    ref = brian2_population(cell, protocol, schedule, drive, seed=seed)
    t1 = time.perf_counter()
    offsets = plateau_offsets(ref, schedule) if protocol.stochastic_plateau and kind == "pyramidal" else None
    test = neuron_population(cell, protocol, schedule, drive, spike_steps=ref.spike_steps, seed=seed,
                             exact_step=exact_step, plateau_offsets=offsets)
    t2 = time.perf_counter()
    errors = {v: trace_errors(ref.traces[v], test.traces[v]) for v in ref.traces}
    out = {"kind": kind, "n_cells": n, "n_steps": schedule.n_steps, "errors": errors,
           "spikes_replayed": all(np.array_equal(a, b) for a, b in zip(ref.spike_steps, test.spike_steps, strict=True)),
           "n_spikes": int(sum(len(s) for s in ref.spike_steps)),
           "seconds": {"brian2": t1 - t0, "neuron": t2 - t1}}
    if kind == "pyramidal":
        a = ref.plateaus[np.lexsort((ref.plateaus[:, 1], ref.plateaus[:, 0]))]
        b = test.plateaus[np.lexsort((test.plateaus[:, 1], test.plateaus[:, 0]))]
        if a.shape != b.shape or not np.array_equal(a[:, :2], b[:, :2]):
            out["plateaus"] = {"same_events": False}
        else:
            out["plateaus"] = {"same_events": True, "n": len(a), "alpha_max_abs": float(np.max(np.abs(a[:, 2] - b[:, 2]))),
                               "A_mean_max_abs": float(np.max(np.abs(a[:, 3] - b[:, 3])))}
    plateau_ok = out.get("plateaus", {"same_events": True, "alpha_max_abs": 0.0})
    out["passed"] = bool(all(_passes(e, TOLERANCES) for e in errors.values()) and out["spikes_replayed"]
                         and plateau_ok["same_events"] and plateau_ok["alpha_max_abs"] < TOLERANCES["rel_max"])
    if keep_traces:
        out["traces"] = {"brian2": ref.traces, "neuron": test.traces}
    return out


def default_learning_params(n_hidden=20, **network) -> ModelParameters:
    """The paper's model with hidden layer(s) of *n_hidden* neurons (an int: 784-n_hidden-10 with the
    one-hidden-layer learning rates 0.21; a tuple of two: the two-hidden-layer rates 0.23, 0.23, 0.12);
    further keywords go to :class:`~brian_dendrite.model.NetworkParameters` (e.g. ``feedback``)."""
    hidden = (int(n_hidden),) if np.ndim(n_hidden) == 0 else tuple(int(n) for n in n_hidden)
    rates = {0: (0.19,), 1: (0.21, 0.21), 2: (0.23, 0.23, 0.12)}.get(len(hidden), (0.21,) * (len(hidden) + 1))
    name = "crosscheck_784_" + "_".join(map(str, hidden)) + "_10" + "".join(f"_{v}" for v in network.values())
    return ModelParameters(name=name.replace(" ", ""),
                           network=NetworkParameters(hidden=hidden, learning_rates=rates, **network))


def applied_update_check(params: ModelParameters, image: np.ndarray, label: int, seed: int = 0) -> dict:
    """One example in a freely spiking NEURON network (the input cells too: they spike at
    ``phi_max * pixel`` inside NEURON); compare its update with numpy.

    The expected change of ``W[m]`` is ``outer(delta_post, s_mean_f_pre)`` over the
    presynaptic neurons with ``s_mean_f > skip_psp_below`` and that of ``b[m]`` is
    ``delta_post``, from the values the NEURON cells hold after the example.
    Returns the largest relative deviation per layer, the spike counts and the
    NEURON timings (build, run, per example).
    """
    net = params.network
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xA1]))
    w0 = initial_weights(params, np.random.default_rng(np.random.SeedSequence([seed, 0xD1])))
    schedule = PhaseSchedule.training([int(label)], params.protocol, params.cell.dt, rng)
    t0 = time.perf_counter()
    nrn = NrnNetwork(params, w0, schedule, None, seed=seed, images=np.asarray(image, dtype=float)[None, :])
    t1 = time.perf_counter()
    nrn.run()
    t2 = time.perf_counter()
    w1 = nrn.get_weights()
    order = ["input", *nrn.names]
    deviations = []
    for m in range(len(w0.W)):
        delta = nrn.cell_values(order[m + 1], "delta")
        s_pre = nrn.cell_values(order[m], "s_mean_f")
        s_pre = np.where(s_pre > net.skip_psp_below, s_pre, 0.0)
        expected_W, expected_b = np.outer(delta, s_pre), delta
        dev_W = np.max(np.abs((w1.W[m] - w0.W[m]) - expected_W)) / max(np.max(np.abs(expected_W)), 1e-300)
        dev_b = np.max(np.abs((w1.b[m] - w0.b[m]) - expected_b)) / max(np.max(np.abs(expected_b)), 1e-300)
        deviations.append({"W": float(dev_W), "b": float(dev_b)})
    spikes = {name: int(nrn.spike_counts(name).sum()) for name in nrn.names}
    spikes["input"] = int(nrn.spike_counts("input").sum())
    return {"deviations": deviations, "spikes": spikes, "n_steps": int(schedule.n_steps),
            "seconds": {"neuron_build": t1 - t0, "neuron_run": t2 - t1}}


def small_model(params: ModelParameters, n_hidden: int) -> ModelParameters:
    """*params* with every hidden layer of *n_hidden* neurons (feedback, protocol and cell kept)."""
    net = params.network
    return params.replace(name=f"{params.name}_small", network=net.replace(hidden=(int(n_hidden),) * len(net.hidden)))


def learning_variants(n_hidden: int, cell: CellParameters, model: ModelParameters | None = None) -> dict:
    """The networks of the learning check: name -> ModelParameters (784-n-10 and its feedback and
    plateau variants, 784-n-n-10, and *model* with hidden layers of *n_hidden* neurons)."""
    base = default_learning_params(n_hidden).replace(cell=cell)
    full = base.replace(cell=cell.replace(kernel="full"))  # symmetric feedback needs the full kernel
    out = {"two_hidden": default_learning_params((n_hidden, n_hidden)).replace(cell=cell),
           "symmetric": full.replace(network=full.network.replace(feedback="symmetric")),
           "noisy_symmetric": full.replace(network=full.network.replace(feedback="noisy_symmetric")),
           "stochastic_plateau": base.replace(protocol=base.protocol.replace(stochastic_plateau=True))}
    if model is not None:
        out[f"model {model.name}"] = small_model(model, n_hidden)
    return out


def run_crosscheck(output: Path, cell: CellParameters | None = None, n_examples: int = 3, n_hidden: int = 20,
                   seed: int = 0, data_dir=None, figure: bool = True, n_test: int = 2,
                   model: ModelParameters | None = None) -> dict:  # long: the report of the CLI command
    """All checks (cells with both kernels, learning of 784-n-10 and of the variants of
    :func:`learning_variants`, the test phase of the trained 784-n-10 on *n_test* MNIST test
    images, NEURON alone); writes ``report.json``, ``report.txt`` and (``figure``)
    ``crosscheck.png`` into *output*; returns the report."""
    from ..datasets import load_mnist

    if int(n_examples) < 1 or int(n_test) < 1:
        raise ValueError(f"n_examples = {n_examples}, n_test = {n_test}: expected at least 1")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    cell = cell or CellParameters()
    protocol = ProtocolParameters()
    report = {"seed": seed, "tolerances": TOLERANCES, "cells": [], "learning": None, "neuron_alone": None}
    kept = None
    for kernel in ("full", "truncated"):
        c = cell.replace(kernel=kernel)
        for kind in ("pyramidal", "output"):
            res = cell_crosscheck(c, protocol, kind, seed=seed, keep_traces=kernel == "full" and kind == "pyramidal")
            res["kernel"] = kernel
            if "traces" in res:
                kept = res.pop("traces")
            report["cells"].append(res)
    plain = cell_crosscheck(cell, protocol, "pyramidal", seed=seed, exact_step=False)
    report["plain_backward_euler"] = {"errors": plain["errors"], "passed": plain["passed"]}
    data = load_mnist("train", data_dir=data_dir)
    params = default_learning_params(n_hidden).replace(cell=cell)
    learn = learning_crosscheck(params, data.images[:n_examples], data.labels[:n_examples], seed=seed,
                                keep_weights=True)
    weights = learn.pop("weights")
    report["learning"] = learn
    report["variants"] = {}
    for name, p in learning_variants(n_hidden, cell, model).items():
        res = learning_crosscheck(p, data.images[:n_examples], data.labels[:n_examples], seed=seed)
        report["variants"][name] = res
    test = load_mnist("test", data_dir=data_dir)
    report["test"] = test_crosscheck(params, weights["brian2"], test.images[:n_test], test.labels[:n_test], seed=seed)
    report["neuron_alone"] = applied_update_check(params, data.images[0], int(data.labels[0]), seed=seed)
    report["passed"] = bool(all(r["passed"] for r in report["cells"]) and learn["passed"]
                            and all(r["passed"] for r in report["variants"].values()) and report["test"]["passed"]
                            and all(d["W"] < 1e-9 and d["b"] < 1e-9 for d in report["neuron_alone"]["deviations"]))
    (output / "report.json").write_text(json.dumps(report, indent=2))
    (output / "report.txt").write_text(format_report(report))
    if figure:
        _figure(output / "crosscheck.png", kept, weights)
    return report


def format_report(report: dict) -> str:
    """The report as text (one line per compared quantity)."""
    tol = report["tolerances"]
    lines = [f"NEURON vs Brian2 cross-check (seed {report['seed']}); tolerances: relative RMS < {tol['rel_rms']:.1%}, "
             f"relative max < {tol['rel_max']:.1%}"]
    for r in report["cells"]:
        lines.append(f"cells: {r['n_cells']} {r['kind']}, kernel {r['kernel']}, {r['n_steps']} steps, "
                     f"{r['n_spikes']} spikes replayed exactly: {r['spikes_replayed']}  -> {'PASS' if r['passed'] else 'FAIL'}")
        for v, e in r["errors"].items():
            lines.append(f"    {v:9s} rel RMS {e['rel_rms']:.2e}  rel max {e['rel_max']:.2e}")
        if "plateaus" in r and r["plateaus"].get("same_events"):
            p = r["plateaus"]
            lines.append(f"    plateaus  {p['n']} events, max |alpha diff| {p['alpha_max_abs']:.2e}, "
                         f"max |A_mean diff| {p['A_mean_max_abs']:.2e}")
    if report.get("plain_backward_euler"):
        e = report["plain_backward_euler"]["errors"]["V_soma"]
        lines.append(f"for comparison, NEURON's plain backward Euler (no step factor), pyramidal V_soma: rel RMS "
                     f"{e['rel_rms']:.2e}, rel max {e['rel_max']:.2e} (not part of the verdict)")
    ln = report["learning"]
    lines.append(f"learning: {'-'.join(map(str, ln['layer_sizes']))}, {ln['n_examples']} MNIST examples, "
                 f"{ln['n_steps']} steps, spikes of every layer replayed  -> {'PASS' if ln['passed'] else 'FAIL'}")
    for m, lay in enumerate(ln["layers"]):
        lines.append(f"    W_{m}: dW rel RMS {lay['dW']['rel_rms']:.2e} rel max {lay['dW']['rel_max']:.2e} "
                     f"(max |dW| {lay['max_abs_dW_brian2']:.3g}); db rel max {lay['db']['rel_max']:.2e}")
    s = ln["seconds"]
    lines.append(f"    seconds: Brian2 {s['brian2']:.1f} (numpy target, incl. build), NEURON build {s['neuron_build']:.1f}, "
                 f"run {s['neuron_run']:.1f}")
    for name, v in report.get("variants", {}).items():
        worst = max(max(lay[k]["rel_max"] for k in ("dW", "db")) for lay in v["layers"])
        if "dY" in v:
            worst = max(worst, v["dY"]["rel_max"])
        lines.append(f"learning, {name}: {'-'.join(map(str, v['layer_sizes']))}, feedback {v['feedback']}, "
                     f"stochastic plateaus {v['stochastic_plateau']}, {v['n_examples']} examples: largest rel max "
                     f"of dW, db{', dY' if 'dY' in v else ''} {worst:.2e}  -> {'PASS' if v['passed'] else 'FAIL'}")
    t = report.get("test")
    if t:
        lines.append(f"test phase: {'-'.join(map(str, t['layer_sizes']))} (weights after the learning check), "
                     f"{t['n_images']} MNIST test images x {t['n_steps'] // t['n_images']} steps, spikes of every "
                     f"layer replayed  -> {'PASS' if t['passed'] else 'FAIL'}")
        lines.append(f"    output V_soma rel RMS {t['V_soma']['rel_rms']:.2e} rel max {t['V_soma']['rel_max']:.2e}; "
                     f"V_mean rel max {t['V_mean']['rel_max']:.2e}; rate_mean rel max {t['rate_mean']['rel_max']:.2e}; "
                     f"predictions Brian2 {t['predictions']['brian2']}, NEURON {t['predictions']['neuron']}")
    na = report["neuron_alone"]
    devs = ", ".join(f"W_{m} {d['W']:.1e} / b {d['b']:.1e}" for m, d in enumerate(na["deviations"]))
    lines.append(f"NEURON alone (own Bernoulli spikes of every layer, 1 example): update vs numpy, max rel deviation {devs}; "
                 f"spikes {na['spikes']}")
    lines.append(f"overall: {'PASS' if report['passed'] else 'FAIL'}")
    return "\n".join(lines) + "\n"


def _figure(path: Path, traces, weights) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    if traces is not None:
        t = np.arange(traces["brian2"]["V_soma"].shape[1])
        for ax, var in ((axes[0, 0], "V_soma"), (axes[0, 1], "V_apical")):
            ax.plot(t, traces["brian2"][var][0], lw=2.5, color="0.7", label="Brian2")
            ax.plot(t, traces["neuron"][var][0], lw=0.8, color="C3", label="NEURON")
            ax.set(xlabel="time step (ms)", ylabel=var, title=f"pyramidal neuron 0: {var}")
            ax.legend(frameon=False)
        diff = traces["neuron"]["V_soma"] - traces["brian2"]["V_soma"]
        axes[1, 0].plot(t, diff.T, lw=0.8)
        axes[1, 0].set(xlabel="time step (ms)", ylabel="NEURON - Brian2", title="V_soma difference (3 neurons)")
    if weights is not None:
        for m, color in zip(range(len(weights["before"].W)), ("C0", "C1"), strict=False):
            db = (weights["brian2"].W[m] - weights["before"].W[m]).ravel()
            dn = (weights["neuron"].W[m] - weights["before"].W[m]).ravel()
            axes[1, 1].plot(db, dn, ".", ms=2, color=color, label=f"W_{m}")
        axes[1, 1].set(xlabel="dW Brian2", ylabel="dW NEURON", title="weight changes after K examples")
        axes[1, 1].legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def benchmark(n_cells: int = 100, duration_ms: float = 1000.0, n_hidden: int = 20, n_examples: int = 3,
              seed: int = 0, data_dir=None) -> dict:  # long: two timed NEURON runs
    """Speed of the NEURON backend: a freely spiking cell population and the learning network.

    * population: *n_cells* pyramidal neurons, 20 basal sources at 40 Hz and 10 apical
      sources at 30 Hz connected to all of them, 50-ms forward/target phases, for
      *duration_ms*; reported as wall-clock ms per simulated second;
    * network: 784-*n_hidden*-10 on *n_examples* MNIST training images, own spikes,
      learning on; reported as ms per example (and the build time).
    """
    from ..datasets import load_mnist
    from ._cells import NrnModel

    cell, protocol = CellParameters(), ProtocolParameters()
    n_pairs = max(1, int(round(duration_ms / 100.0)))
    schedule = PhaseSchedule.from_phases(
        [p for k in range(n_pairs) for p in (("forward", 50 * ms, k, 0), ("target", 50 * ms, k, 0))], protocol,
        dt=cell.dt)
    drive = input_trains("pyramidal", n_cells, schedule.n_steps, seed)
    t0 = time.perf_counter()
    model = NrnModel(cell, protocol, schedule, seed=seed)
    cells = [model.add_cell("pyramidal", basal_bias=drive.basal_bias[k], apical_bias=drive.apical_bias[k])
             for k in range(n_cells)]
    for steps, weights, site in ((drive.basal_steps, drive.basal_weights, "dend_b"),
                                 (drive.apical_steps, drive.apical_weights, "dend_a")):
        for j, s in enumerate(steps):
            src = model.add_source(s)
            for k, c in enumerate(cells):
                model.connect_fixed(src, getattr(c, site), weights[j, k])
    t1 = time.perf_counter()
    c1 = time.process_time()
    model.run()
    t2 = time.perf_counter()
    cpu_population = time.process_time() - c1
    simulated_s = schedule.n_steps * float(cell.dt / ms) / 1000.0
    population = {"n_cells": n_cells, "simulated_s": simulated_s, "build_s": t1 - t0,
                  "ms_per_simulated_s": (t2 - t1) * 1000.0 / simulated_s,
                  "cpu_ms_per_simulated_s": cpu_population * 1000.0 / simulated_s,
                  "spikes": int(sum(c.cell.nspikes for c in cells))}
    data = load_mnist("train", data_dir=data_dir)
    params = default_learning_params(n_hidden)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xB0]))
    labels = data.labels[:n_examples]
    sched = PhaseSchedule.training(labels, params.protocol, params.cell.dt, rng)
    inputs = bernoulli_input_steps(data.images[:n_examples], sched, float(params.cell.phi_max * params.cell.dt), rng)
    w0 = initial_weights(params, np.random.default_rng(np.random.SeedSequence([seed, 0xD1])))
    t3 = time.perf_counter()
    net = NrnNetwork(params, w0, sched, inputs, seed=seed)
    t4 = time.perf_counter()
    c4 = time.process_time()
    net.run()
    t5 = time.perf_counter()
    cpu_network = time.process_time() - c4
    network = {"layer_sizes": list(params.network.layer_sizes), "n_examples": int(n_examples),
               "n_synapses": int(sum(len(s) * len(s[0]) for s in net.synapses)), "build_s": t4 - t3,
               "ms_per_example": (t5 - t4) * 1000.0 / n_examples,
               "cpu_ms_per_example": cpu_network * 1000.0 / n_examples}
    return {"population": population, "network": network}


def add_crosscheck_arguments(parser) -> None:
    """Options of ``brian-dendrite crosscheck``."""
    parser.add_argument("--output", type=Path, default=Path("crosscheck"),
                        help="directory for report.json, report.txt and crosscheck.png (default ./crosscheck)")
    parser.add_argument("--examples", type=int, default=3, help="MNIST examples of the learning check (K, default 3)")
    parser.add_argument("--hidden", type=int, default=20, help="hidden neurons of the learning check (default 20)")
    parser.add_argument("--model", default=None,
                        help="model name or .toml: its cell parameters are used throughout, and the model itself "
                             "(hidden layers of --hidden neurons) is added to the learning check")
    parser.add_argument("--test-examples", type=int, default=2,
                        help="MNIST test images of the test-phase check (default 2)")
    parser.add_argument("--data-dir", default=None, help="MNIST folder (default: BRIAN_DENDRITE_DATA or the cache)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-figure", action="store_true", help="do not draw crosscheck.png")
    parser.add_argument("--benchmark", action="store_true",
                        help="also time the NEURON backend (population ms per simulated s, network ms per example)")


def run_crosscheck_from_args(args) -> int:
    """``brian-dendrite crosscheck``: 0 all checks passed, 1 a check failed, 2 bad input or no NEURON."""
    from ..model import load_model
    from ._mechanisms import MechanismCompileError, require_neuron

    if args.examples < 1 or args.hidden < 1 or args.test_examples < 1:
        raise ValueError(f"--examples ({args.examples}), --hidden ({args.hidden}) and --test-examples "
                         f"({args.test_examples}) must be at least 1")
    model = load_model(args.model) if args.model else None
    cell = model.cell if model else None
    try:
        require_neuron()  # before any Brian2 run: a missing NEURON is reported at once
        if model is not None:
            check_nrn_supported(model)  # a clear refusal before any simulation
        report = run_crosscheck(args.output, cell=cell, n_examples=args.examples, n_hidden=args.hidden,
                                seed=args.seed, data_dir=args.data_dir, figure=not args.no_figure,
                                n_test=args.test_examples, model=model)
        if args.benchmark:
            report["benchmark"] = benchmark(n_hidden=args.hidden, seed=args.seed, data_dir=args.data_dir)
            (args.output / "report.json").write_text(json.dumps(report, indent=2))
    except (ImportError, NotImplementedError) as err:
        print(f"brian-dendrite crosscheck: error: {err}", file=sys.stderr)
        return 2
    except MechanismCompileError as err:
        print(f"brian-dendrite crosscheck: error: {err}", file=sys.stderr)
        return 1
    print(format_report(report), end="")
    if args.benchmark:
        b = report["benchmark"]
        print(f"benchmark: population of {b['population']['n_cells']} pyramidal cells "
              f"{b['population']['ms_per_simulated_s']:.0f} ms per simulated s (CPU {b['population']['cpu_ms_per_simulated_s']:.0f}; "
              f"build {b['population']['build_s']:.1f} s); "
              f"network {'-'.join(map(str, b['network']['layer_sizes']))} {b['network']['ms_per_example']:.0f} ms "
              f"per example (CPU {b['network']['cpu_ms_per_example']:.0f}; build {b['network']['build_s']:.1f} s, {b['network']['n_synapses']} synapses)")
    print(f"report: {args.output / 'report.txt'}")
    return 0 if report["passed"] else 1

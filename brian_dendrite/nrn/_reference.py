"""The Brian2 side of the cross-simulator check (internal).

A small population of pyramidal or output neurons built from the model's own
Brian2 groups and synapses (:mod:`brian_dendrite.model`), driven by
deterministic input spike trains through ``SpikeGeneratorGroup`` s, with the
monitors the comparison needs. The NEURON side (:func:`neuron_population`) is
built from the same parameter objects and replays the Brian2 cells' own spikes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import brian2
import numpy as np
from brian2 import EventMonitor, Network, SpikeGeneratorGroup, SpikeMonitor, StateMonitor, ms

from ..model import (
    FORWARD,
    TARGET,
    CellParameters,
    PhaseSchedule,
    ProtocolParameters,
    kernel_synapses,
    output_group,
    own_trace_truncation,
    pyramidal_group,
)
from ._cells import NrnModel

__all__ = ["PopulationInput", "PopulationRun", "input_trains", "brian2_population", "neuron_population",
           "plateau_offsets"]


@dataclass
class PopulationInput:
    """Deterministic drive of a population: spike steps of every source and the weights.

    ``basal_steps`` / ``apical_steps``: one int array of spike steps per source;
    ``basal_weights`` / ``apical_weights``: (n_sources, n_neurons).
    """

    kind: str
    n: int
    basal_bias: np.ndarray
    apical_bias: np.ndarray
    basal_steps: list
    basal_weights: np.ndarray
    apical_steps: list = field(default_factory=list)
    apical_weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))


@dataclass
class PopulationRun:
    """Traces (n_neurons, n_steps): ``V_soma``, ``V_basal``, ``V_apical``, ``s_out``; the spike steps of
    every neuron; plateaus as (step, neuron, alpha, A_mean) rows; the final window means."""

    traces: dict
    spike_steps: list
    plateaus: np.ndarray
    means: dict


def input_trains(kind: str, n: int, n_steps: int, seed: int, n_basal: int = 20, n_apical: int = 10,
                 basal_rate: float = 40.0, apical_rate: float = 30.0) -> PopulationInput:
    """Deterministic Bernoulli input trains (numpy, from *seed*) and random weights for a population."""
    if kind not in ("pyramidal", "output"):
        raise ValueError(f"kind = {kind!r}: expected 'pyramidal' or 'output'")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xCC]))

    def trains(k, rate):
        return [np.flatnonzero(rng.random(n_steps) < rate * 1e-3) for _ in range(k)]

    basal = trains(n_basal, basal_rate)
    wb = rng.normal(0.25, 0.5, size=(n_basal, n))
    bias_b = np.linspace(-1.0, 1.0, n)
    if kind == "pyramidal":
        apical = trains(n_apical, apical_rate)
        wa = rng.normal(0.0, 1.0, size=(n_apical, n))
        bias_a = np.linspace(0.5, -0.5, n)
    else:
        apical, wa, bias_a = [], np.zeros((0, n)), np.zeros(n)
    return PopulationInput(kind, n, bias_b, bias_a, basal, wb, apical, wa)


def _generator(steps, dt, name):
    idx = np.concatenate([np.full(len(s), k) for k, s in enumerate(steps)]).astype(int)
    times = np.concatenate([np.asarray(s, dtype=float) for s in steps]) * dt
    return SpikeGeneratorGroup(len(steps), idx, times, dt=dt, name=name)


def brian2_population(cell: CellParameters, protocol: ProtocolParameters, schedule: PhaseSchedule,
                      drive: PopulationInput, seed: int = 0) -> PopulationRun:  # long: builds, runs and reads one network
    """Run the population in Brian2 (runtime device, numpy target) and read what the check compares."""
    saved_target = brian2.prefs.codegen.target
    brian2.prefs.codegen.target = "numpy"
    try:
        brian2.seed(seed)
        arrays = schedule.timed_arrays()
        n = drive.n
        if drive.kind == "pyramidal":
            group = pyramidal_group(n, cell, protocol, arrays, name="xc_pyramidal")
            group.c_apical = drive.apical_bias
            variables = ["V_soma", "V_basal", "V_apical", "s_out"]
        else:
            group = output_group(n, cell, arrays, teaching="schedule", name="xc_output")
            variables = ["V_soma", "V_basal", "s_out"]
        group.b_basal = drive.basal_bias
        objects = [group]
        for site, steps, weights in (("basal", drive.basal_steps, drive.basal_weights),
                                     ("apical", drive.apical_steps, drive.apical_weights)):
            if not len(steps):
                continue
            src = _generator(steps, cell.dt, f"xc_{site}_sources")
            syn = kernel_synapses(src, group, site, cell, name=f"xc_{site}_syn")
            syn.connect()
            syn.w[:] = np.ascontiguousarray(weights).ravel()  # presynaptic-major, as connect() orders them
            objects += [src, syn]
        trunc = own_trace_truncation(group, cell)
        if trunc is not None:
            objects.append(trunc)
        state = StateMonitor(group, variables, record=True, when="before_thresholds", order=10)
        spikes = SpikeMonitor(group)
        mons = [state, spikes]
        plateaus = None
        if drive.kind == "pyramidal":
            plateaus = EventMonitor(group, "plateau", variables=["alpha_f", "alpha_t", "A_mean_f", "A_mean_t", "phase"],
                                    when="after_synapses")
            mons.append(plateaus)
        net = Network(*objects, *mons)
        net.run(schedule.n_steps * cell.dt)
        dt = float(cell.dt / ms)
        traces = {v: np.asarray(getattr(state, v)) for v in variables}
        steps = np.rint(np.asarray(spikes.t / ms) / dt).astype(int)
        idx = np.asarray(spikes.i)
        spike_steps = [steps[idx == k] for k in range(n)]
        rows = np.zeros((0, 4))
        if plateaus is not None:
            ph = np.asarray(plateaus.phase)
            alpha = np.where(ph == 0, plateaus.alpha_f, plateaus.alpha_t)
            amean = np.where(ph == 0, plateaus.A_mean_f, plateaus.A_mean_t)
            rows = np.column_stack([np.rint(np.asarray(plateaus.t / ms) / dt), np.asarray(plateaus.i), alpha, amean])
        means = {v: np.asarray(getattr(group, v)[:]) for v in ("V_mean_f", "s_mean_f", "rate_mean_t")}
        return PopulationRun(traces, spike_steps, rows, means)
    finally:
        brian2.prefs.codegen.target = saved_target


def plateau_offsets(run: PopulationRun, schedule: PhaseSchedule) -> np.ndarray:
    """(n_phases, n) plateau offsets (steps) of every forward and target phase, from a run's plateau
    events: the offset is ``steps_left`` at the plateau (one plateau per neuron and phase)."""
    table = schedule.phase_table
    starts = table[np.isin(table[:, 2], (FORWARD, TARGET)), 0]
    steps = run.plateaus[:, 0].astype(int)
    n = len(run.spike_steps)
    out = np.full((len(starts), n), -1, dtype=int)
    out[np.searchsorted(starts, steps, side="right") - 1, run.plateaus[:, 1].astype(int)] = \
        np.asarray(schedule.steps_left)[steps]
    if np.any(out < 0):
        raise RuntimeError("a neuron had no plateau in some forward or target phase")
    return out


def neuron_population(cell: CellParameters, protocol: ProtocolParameters, schedule: PhaseSchedule,
                      drive: PopulationInput, spike_steps=None, seed: int = 0,
                      exact_step: bool = True, plateau_offsets=None) -> PopulationRun:  # long: builds, runs, reads
    """Run the same population in NEURON; ``spike_steps`` (one array per neuron) replays given spikes,
    ``None`` lets the cells spike on their own (Bernoulli, Random123); ``exact_step`` see
    :class:`~brian_dendrite.nrn.NrnModel`; ``plateau_offsets`` ((n_phases, n) steps, stochastic
    plateau times) replays the offset of every forward and target phase (see :func:`plateau_offsets`)."""
    model = NrnModel(cell, protocol, schedule, seed=seed, exact_step=exact_step, draw_offsets=plateau_offsets is None)
    first = np.zeros(drive.n, dtype=int) if plateau_offsets is None else np.asarray(plateau_offsets)[0]
    cells = [model.add_cell(drive.kind, basal_bias=drive.basal_bias[k], apical_bias=drive.apical_bias[k],
                            class_index=k, plateau_offset=first[k]) for k in range(drive.n)]
    if plateau_offsets is not None:
        table = schedule.phase_table
        starts = table[np.isin(table[:, 2], (FORWARD, TARGET)), 0]
        for k, c in enumerate(cells):
            model.play(c.cell._ref_offset, starts, np.asarray(plateau_offsets)[:, k])
    basal = [model.add_source(steps) for steps in drive.basal_steps]
    apical = [model.add_source(steps) for steps in drive.apical_steps]
    recs = []
    for k, c in enumerate(cells):
        if spike_steps is not None:
            model.force_spikes(c, spike_steps[k])
        for j, src in enumerate(basal):
            model.connect_fixed(src, c.dend_b, drive.basal_weights[j, k])
        for j, src in enumerate(apical):
            model.connect_fixed(src, c.dend_a, drive.apical_weights[j, k])
        r = {"v": model.record(c.soma(0.5)._ref_v), "bL": model.record(c.dend_b._ref_xL),
             "bs": model.record(c.dend_b._ref_xs), "yL": model.record(c.cell._ref_yL),
             "ys": model.record(c.cell._ref_ys), "af": model.record(c.cell._ref_alpha_f),
             "at": model.record(c.cell._ref_alpha_t), "Af": model.record(c.cell._ref_A_mean_f),
             "At": model.record(c.cell._ref_A_mean_t), "ns": model.record(c.cell._ref_nspikes),
             "np": model.record(c.cell._ref_nplateaus)}
        if c.dend_a is not None:
            r["aL"], r["as"] = model.record(c.dend_a._ref_xL), model.record(c.dend_a._ref_xs)
        recs.append(r)
    model.run()
    s = model.scale
    # index k + 1 of a recording is the value after step k (Brian2's StateMonitor index k)
    n = schedule.n_steps
    traces = {"V_soma": np.array([np.asarray(r["v"])[1:n + 1] for r in recs]),
              "V_basal": np.array([b + s * (np.asarray(r["bL"]) - np.asarray(r["bs"]))[1:n + 1]
                                   for r, b in zip(recs, drive.basal_bias, strict=True)]),
              "s_out": np.array([s * (np.asarray(r["yL"]) - np.asarray(r["ys"]))[1:n + 1] for r in recs])}
    if drive.kind == "pyramidal":
        traces["V_apical"] = np.array([b + s * (np.asarray(r["aL"]) - np.asarray(r["as"]))[1:n + 1]
                                       for r, b in zip(recs, drive.apical_bias, strict=True)])
    spikes = [np.flatnonzero(np.diff(np.asarray(r["ns"]))) - 1 for r in recs]
    rows = []
    if drive.kind == "pyramidal":
        for k, r in enumerate(recs):
            # the bookkeeping of step p (a plateau: nplateaus grows) is recorded at index p + 2
            for p in np.flatnonzero(np.diff(np.asarray(r["np"]))) - 1:
                key = ("af", "Af") if schedule.phase[p] == FORWARD else ("at", "At")
                rows.append((p, k, np.asarray(r[key[0]])[p + 2], np.asarray(r[key[1]])[p + 2]))
    means = {v: np.array([getattr(c.cell, v) for c in cells]) for v in ("V_mean_f", "s_mean_f", "rate_mean_t")}
    return PopulationRun(traces, spikes, np.array(rows).reshape(-1, 4), means)

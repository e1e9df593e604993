"""The segregated-dendrite neurons as NEURON sections and mechanisms (internal).

:class:`NrnModel` owns every NEURON object of one simulation: the phase clock
(``BDClock``), the cells, their connections and the recordings. Time in NEURON is
in ms; potentials are the model's dimensionless potentials read as mV; conductances
per unit capacitance (``1/ms``) are written on a 1 uF/cm2 membrane.

Timing within a step of length ``dt`` (Brian2 step ``n`` = NEURON step from
``n dt`` to ``(n + 1) dt``, see docs/neuron.rst):

* ``n dt``: schedule values of step ``n`` (``Vector.play`` events); spikes of step
  ``n - 1`` (delivered earlier in the queue, see below) are in the traces;
* the step: somatic currents from the traces at its start, backward Euler with the
  step factor of bdpyr/bdout; the traces decay (``cnexp``, exact);
* ``(n + 0.7) dt``: replayed (forced) spikes of step ``n`` reach their BDCell;
* ``(n + 0.75) dt``: every BDCell does the bookkeeping of step ``n`` and may spike;
  spike NetCons have a delay of ``0.25 dt`` (arrival ``(n + 1) dt``), kernel-cutoff
  NetCons ``cutoff + 0.25 dt``;
* ``(n + 0.8) dt``: the clock's learning trigger (end of a target phase), which
  reaches the synapses at ``(n + 0.95) dt``: the weights change before the spikes
  of step ``n`` are delivered, as in Brian2 (found by the cross-check: the other
  order gives relative weight differences of 1e-3 after three examples).
"""

from __future__ import annotations

import math

import numpy as np
from brian2 import ms

from ..model import CellParameters, PhaseSchedule, ProtocolParameters, cell_floats
from ._mechanisms import load_mechanisms

__all__ = ["NrnModel", "NrnCell", "SPIKE_DELAY", "FORCED_OFFSET"]

#: NetCon delay of a spike, in units of dt (bookkeeping at n + 0.75, arrival at n + 1).
SPIKE_DELAY = 0.25
#: Replayed spikes of step n arrive at their cell at (n + FORCED_OFFSET) dt.
FORCED_OFFSET = 0.7
_LEARN_DELAY = 0.15
_KIND = {"input": 0, "pyramidal": 1, "output": 2}


class NrnCell:
    """One neuron: sections (``soma``, ``basal``, ``apical``; inputs have none), the
    dendrites' ``BDDend`` point processes, the soma mechanism and the ``BDCell``."""

    def __init__(self, kind, name, soma=None, basal=None, apical=None, dend_b=None, dend_a=None, mech=None, cell=None):
        self.kind, self.name = kind, name
        self.soma, self.basal, self.apical = soma, basal, apical
        self.dend_b, self.dend_a, self.mech, self.cell = dend_b, dend_a, mech, cell


class NrnModel:
    """A NEURON simulation of segregated-dendrite neurons driven by a phase schedule.

    Parameters
    ----------
    cell : CellParameters
    protocol : ProtocolParameters
    schedule : PhaseSchedule
        Played into the clock step by step (``n_steps`` steps are simulated).
    seed : int
        Seeds the cells' Random123 streams (Bernoulli spiking when not forced).
    exact_step : bool
        Scale the somatic conductances by the step factor that makes NEURON's backward
        Euler reproduce the model's integrator (default); ``False`` is NEURON's plain
        backward Euler of the same equations (for comparison only).
    test_reset : bool
        Zero every cell's potentials and traces after the last step of each test phase
        (as the Brian2 network does; default False, as the plugin groups).
    draw_offsets : bool
        With ``protocol.stochastic_plateau``: pyramidal cells draw a new plateau offset
        at every phase end (Random123, default); ``False`` keeps the offsets given to
        :meth:`add_cell` or played by :meth:`play` (replay of Brian2's draws).
    """

    def __init__(self, cell: CellParameters, protocol: ProtocolParameters, schedule: PhaseSchedule, seed: int = 0,
                 exact_step: bool = True, test_reset: bool = False, draw_offsets: bool = True):
        if float(schedule.dt / ms) != float(cell.dt / ms):
            raise ValueError(f"schedule dt = {schedule.dt} differs from cell.dt = {cell.dt}")
        self.h = h = load_mechanisms()
        self.cellp, self.protocol, self.schedule, self.seed = cell, protocol, schedule, int(seed)
        self.exact_step = bool(exact_step)
        self.test_reset, self.draw_offsets = bool(test_reset), bool(draw_offsets)
        self.c = c = cell_floats(cell)
        self.dt = c["dt"]
        self.scale = c["gain"] / (c["tau_L"] - c["tau_s"])
        totals = (c["g_L"] + c["g_B"] + c["g_A"], c["g_L"] + c["g_D"], c["g_L"] + c["g_D"] + c["g_teach"])
        if cell.method == "euler" and any(abs(a * self.dt - 1) < 1e-12 for a in totals):
            # forward Euler's factor 1 - a dt is 0 there: no backward-Euler step reproduces it
            raise ValueError(f"cell.method = 'euler' with a total somatic conductance of exactly 1/dt "
                             f"(dt = {cell.dt}) has no backward-Euler equivalent in the NEURON backend")
        cut = cell.kernel_cutoff / ms
        self.truncated = cell.kernel == "truncated"
        self.cutoff = float(cut)
        self.dLc = math.exp(-self.cutoff / c["tau_L"]) if self.truncated else 0.0
        self.dsc = math.exp(-self.cutoff / c["tau_s"]) if self.truncated else 0.0
        self.cells: list[NrnCell] = []
        self._keep: list = []  # NetCons, Vectors and sections that must stay alive
        self._forced: list = []  # (NetCon, event times)
        self.clock = h.BDClock()
        self.clock.tick = self.dt
        n = schedule.n_steps
        self.n_steps = n
        # one idle step after the schedule: run() simulates it so that the bookkeeping of the
        # last step (at (n - 0.25) dt) is complete and recorded; idle steps never end a phase
        idle = {"phase": -1.0, "steps_left": float(2**30), "window_steps": 1.0, "label": 0.0}
        for var, values in (("phase", schedule.phase), ("steps_left", schedule.steps_left),
                            ("window_steps", schedule.window_steps), ("label", schedule.label)):
            vec = h.Vector(np.append(np.asarray(values[:n], dtype=float), idle[var]))
            vec.play(getattr(self.clock, f"_ref_{var}"), self.dt)
            self._keep.append(vec)
        self._input_section = None

    # ---------------------------------------------------------------- cells
    def _dendrite(self, section, bias):
        d = self.h.BDDend(section(0.5))
        d.tauL, d.taus, d.scale, d.dLc, d.dsc, d.bias = (self.c["tau_L"], self.c["tau_s"], self.scale,
                                                           self.dLc, self.dsc, float(bias))
        return d

    def _section(self, name):
        sec = self.h.Section(name=name)
        sec.L = sec.diam = 10.0
        sec.cm = 1.0
        sec.nseg = 1
        return sec

    def _bdcell(self, seg, kind, gid, forced, learning_scale=0.0):
        h, clock = self.h, self.clock
        bc = h.BDCell(seg)
        bc.kind, bc.forced, bc.tick = _KIND[kind], int(forced), self.dt
        bc.phi_max = self.c["p_max"] / self.dt
        bc.scale, bc.tauL, bc.taus = self.scale, self.c["tau_L"], self.c["tau_s"]
        bc.offset = 0
        bc.learning_scale = float(learning_scale)
        if self.truncated:
            bc.cut_delay, bc.dLc, bc.dsc = self.cutoff + SPIKE_DELAY * self.dt, self.dLc, self.dsc
        bc.ran.set_ids(self.seed & 0x7FFFFFFF, gid, 17)
        bc.ran_off.set_ids(self.seed & 0x7FFFFFFF, gid, 18)
        bc.test_reset = int(self.test_reset)
        if kind == "pyramidal" and self.protocol.stochastic_plateau:
            bc.offset_max = int(round(float(self.protocol.plateau_offset_max / self.cellp.dt)))
            if self.draw_offsets:
                bc.offset_sd = float(self.protocol.plateau_offset_sd / self.cellp.dt)
        for ptr, var in (("phase", "phase"), ("steps_left", "steps_left"), ("window_steps", "window_steps")):
            h.setpointer(getattr(clock, f"_ref_{var}"), ptr, bc)
        return bc

    def add_cell(self, kind: str, basal_bias=0.0, apical_bias=0.0, forced=False, learning_scale=0.0,
                 class_index=0, teach="schedule", g_E=0.0, g_I=0.0, plateau_offset=0) -> NrnCell:
        """One ``'pyramidal'``, ``'output'`` or ``'input'`` neuron (see the module docstring);
        ``plateau_offset``: the pyramidal cell's first plateau offset in steps."""
        if kind not in _KIND:
            raise ValueError(f"kind = {kind!r}: expected one of {sorted(_KIND)}")
        h, c = self.h, self.c
        gid = len(self.cells)
        name = f"{kind}{gid}"
        if kind == "input":
            if self._input_section is None:
                self._input_section = self._section("inputs")
            bc = self._bdcell(self._input_section(0.5), kind, gid, forced=True)
            for ptr in ("vsoma", "xbL", "xbs", "bb", "xaL", "xas", "ba"):
                h.setpointer(self.clock._ref_label, ptr, bc)
            cellobj = NrnCell(kind, name, cell=bc)
            self.cells.append(cellobj)
            return cellobj
        soma = self._section(f"{name}_soma")
        basal = self._section(f"{name}_basal")
        dend_b = self._dendrite(basal, basal_bias)
        apical = dend_a = None
        if kind == "pyramidal":
            apical = self._section(f"{name}_apical")
            dend_a = self._dendrite(apical, apical_bias)
            soma.insert("bdpyr")
            mech = soma(0.5).bdpyr
            mech.gL, mech.gB, mech.gA = c["g_L"], c["g_B"], c["g_A"]
        else:
            soma.insert("bdout")
            mech = soma(0.5).bdout
            mech.gL, mech.gD, mech.gteach = c["g_L"], c["g_D"], c["g_teach"]
            mech.EE, mech.EI = float(self.cellp.E_E), float(self.cellp.E_I)
            mech.cls = int(class_index)
            if teach == "schedule":
                mech.teach_schedule = 1
            else:
                mech.teach_schedule, mech.gE, mech.gI = 0, float(g_E), float(g_I)
            h.setpointer(self.clock._ref_phase, "sphase", mech)
            h.setpointer(self.clock._ref_label, "slabel", mech)
        mech.tick, mech.scale = self.dt, self.scale
        mech.fwd_euler = int(self.cellp.method == "euler")
        mech.exact = int(self.exact_step)
        bc = self._bdcell(soma(0.5), kind, gid, forced, learning_scale)
        bc.offset = int(plateau_offset)
        h.setpointer(soma(0.5)._ref_v, "vsoma", bc)
        sites = (("b", dend_b), ("a", dend_a if dend_a is not None else dend_b))
        for s, d in sites:
            for target in (mech, bc):
                if target is mech and s == "a" and kind == "output":
                    continue
                h.setpointer(d._ref_xL, f"x{s}L", target)
                h.setpointer(d._ref_xs, f"x{s}s", target)
                h.setpointer(d._ref_bias, f"b{s}", target)
        cellobj = NrnCell(kind, name, soma, basal, apical, dend_b, dend_a, mech, bc)
        self.cells.append(cellobj)
        return cellobj

    # ---------------------------------------------------------------- inputs and connections
    def force_spikes(self, cellobj: NrnCell, steps) -> None:
        """Replay spikes: the cell spikes exactly in the given steps (its ``forced`` flag is set).

        The events come from ``NetCon.event`` on a source-less NetCon; they only set the
        cell's ``pending`` flag (such events did not carry the NetCon's second weight
        slot in NEURON 9.0.2, so they are never used for weighted input).
        """
        cellobj.cell.forced = 1
        nc = self.h.NetCon(None, cellobj.cell)
        self._forced.append((nc, (np.asarray(steps, dtype=float) + FORCED_OFFSET) * self.dt))

    def add_source(self, steps) -> NrnCell:
        """A presynaptic source that spikes exactly in the given steps (a forced input cell)."""
        src = self.add_cell("input")
        self.force_spikes(src, steps)
        return src

    def add_bernoulli_source(self, steps, rates) -> NrnCell:
        """An input cell that spikes on its own (Bernoulli per step through the survival function,
        Random123, as every freely spiking ``BDCell``) at ``rates[k]`` (spikes per ms) from step
        ``steps[k]`` on (set at ``(steps[k] + 0.5) dt``, before that step's spike test)."""
        src = self.add_cell("input")
        src.cell.forced = 0
        self.play(src.cell._ref_rate, steps, rates)
        return src

    def connect_fixed(self, pre: NrnCell, dendrite, weight: float) -> None:
        """A fixed-weight connection (feedback ``Y``) from a cell's spikes onto a ``BDDend``."""
        for kind, delay in self._pathways():
            nc = self.h.NetCon(pre.cell, dendrite)
            nc.delay, nc.weight[0], nc.weight[1] = delay, float(weight), kind
            self._keep.append(nc)

    def connect_plastic(self, pre: NrnCell, post: NrnCell, weight: float, skip: float, symmetric: bool = False,
                        noise: float = 0.0, noise_sd: float = 0.0, stream: int = 0):
        """A plastic basal synapse (``BDSyn``) from *pre* to *post*, updated at every learning trigger.

        ``symmetric``: *post*'s spikes also travel back through the synapse to *pre*'s
        apical dendrite with weight ``w + noise`` (``Y = W^T``); ``noise_sd > 0`` redraws
        the noise at every learning trigger (Random123 stream ``stream``).
        """
        h = self.h
        syn = h.BDSyn(post.basal(0.5))
        syn.w, syn.dLc, syn.dsc, syn.skip = float(weight), self.dLc, self.dsc, float(skip)
        if symmetric:
            syn.ynoise, syn.noise_sd = float(noise), float(noise_sd)
            syn.ran.set_ids(self.seed & 0x7FFFFFFF, int(stream), 19)
            h.setpointer(pre.dend_a._ref_xL, "axL", syn)
            h.setpointer(pre.dend_a._ref_xs, "axs", syn)
            back = h.NetCon(post.cell, syn)
            back.delay, back.weight[0] = SPIKE_DELAY * self.dt, 3
            self._keep.append(back)
        h.setpointer(post.dend_b._ref_xL, "xL", syn)
        h.setpointer(post.dend_b._ref_xs, "xs", syn)
        h.setpointer(pre.cell._ref_s_mean_f, "smean", syn)
        h.setpointer(post.cell._ref_delta, "delta", syn)
        for kind, delay in self._pathways():
            nc = h.NetCon(pre.cell, syn)
            nc.delay, nc.weight[0] = delay, kind
            self._keep.append(nc)
        learn = h.NetCon(self.clock, syn)
        learn.delay, learn.weight[0] = _LEARN_DELAY * self.dt, 2
        self._keep.append(learn)
        return syn

    def _pathways(self):
        paths = [(0, SPIKE_DELAY * self.dt)]
        if self.truncated:
            paths.append((1, self.cutoff + SPIKE_DELAY * self.dt))
        return paths

    # ---------------------------------------------------------------- running
    def play(self, ref, steps, values, fraction: float = 0.5) -> None:
        """Set the variable *ref* to ``values[k]`` at ``(steps[k] + fraction) dt`` (a replay from Python)."""
        vec = self.h.Vector(np.asarray(values, dtype=float))
        tvec = self.h.Vector((np.asarray(steps, dtype=float) + fraction) * self.dt)
        vec.play(ref, tvec)
        self._keep += [vec, tvec]

    def record(self, ref) -> object:
        """A Vector recording *ref* at every step (index ``k + 1``: after Brian2 step ``k``)."""
        vec = self.h.Vector()
        vec.record(ref)
        self._keep.append(vec)
        return vec

    def run(self) -> None:
        """Simulate the schedule's ``n_steps`` steps and one idle step, fixed-step backward Euler.

        Recordings then hold ``n_steps + 2`` values: index ``k + 1`` is the state after step
        ``k`` and the bookkeeping of step ``k`` (window means, plateaus, spikes) shows at
        index ``k + 2``.
        """
        h = self.h
        h.cvode_active(0)
        h.secondorder = 0
        h.dt = self.dt
        h.steps_per_ms = 1.0 / self.dt
        h.finitialize(0.0)
        for nc, times in self._forced:
            for t in times:
                nc.event(float(t))
        h.continuerun((self.n_steps + 1) * self.dt)

    def spike_counts(self) -> np.ndarray:
        return np.array([c.cell.nspikes for c in self.cells])

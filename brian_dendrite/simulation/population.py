"""A small population of pyramidal or output neurons simulated on its own.

For a user studying the cell rather than the network: constant dendritic biases,
optional Poisson drive onto the basal or apical dendrite, teaching conductances,
a schedule of phases (which decides when plateaus happen) and recording of the
compartment potentials, spikes and plateau events, in one explicit
``brian2.Network``.

Examples
--------
>>> from brian2 import ms, prefs
>>> prefs.codegen.target = "numpy"
>>> pop = CellPopulation("pyramidal", 3, basal_bias=[0.0, 1.0, 2.0], apical_bias=0.5)
>>> pop.run()
>>> pop.alpha_f.round(3)
array([0.622, 0.622, 0.622])
"""

from __future__ import annotations

from dataclasses import dataclass

import brian2
import numpy as np
from brian2 import EventMonitor, Hz, Network, PoissonGroup, SpikeMonitor, StateMonitor, ms
from brian2.units.fundamentalunits import Quantity

from ..model import (
    CellParameters,
    PhaseSchedule,
    ProtocolParameters,
    kernel_synapses,
    output_group,
    own_trace_truncation,
    pyramidal_group,
)

__all__ = ["PoissonDrive", "CellPopulation"]


@dataclass(frozen=True)
class PoissonDrive:
    """Poisson sources onto a dendrite: ``rates`` (n_sources, Hz) and ``weights`` (n_sources, n_neurons)."""

    rates: Quantity
    weights: np.ndarray

    def check(self, n_neurons: int, what: str) -> None:
        rates = np.asarray(self.rates)
        if not isinstance(self.rates, Quantity) or self.rates.dim is not Hz.dim:
            raise ValueError(f"{what}.rates = {self.rates!r}: expected rates in Hz")
        if rates.ndim != 1 or np.any(~np.isfinite(rates)) or np.any(rates < 0):
            raise ValueError(f"{what}.rates: expected a 1-D array of finite, non-negative rates")
        weights = np.asarray(self.weights, dtype=float)
        if weights.shape != (len(rates), n_neurons):
            raise ValueError(
                f"{what}.weights has shape {weights.shape}, expected (n_sources, n_neurons) = "
                f"({len(rates)}, {n_neurons})"
            )
        if not np.all(np.isfinite(weights)):
            raise ValueError(f"{what}.weights contains NaN or infinite values")


def _per_neuron(value, n, what):
    arr = np.asarray(value, dtype=float)
    if isinstance(value, Quantity) and not value.is_dimensionless:
        raise ValueError(f"{what} = {value!r}: potentials are dimensionless")
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"{what} has shape {arr.shape}, expected a scalar or ({n},)")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} contains NaN or infinite values")
    return arr


class CellPopulation:
    """A population of *n* neurons of one kind, with its own network.

    Parameters
    ----------
    kind : {'pyramidal', 'output'}
        Hidden-layer pyramidal neuron (basal, apical, soma) or output neuron
        (basal, soma, teaching conductances).
    n : int
        Number of neurons.
    cell, protocol : CellParameters, ProtocolParameters, optional
        Defaults are the paper's values.
    phases : list of (str, Quantity), optional
        ``(kind, length)`` with kind ``'forward'``, ``'target'``, ``'test'`` or
        ``'idle'``. Default: a 100 ms forward then a 100 ms target phase.
        Plateaus happen near the end of forward and target phases.
    basal_bias, apical_bias : float or array
        Constant dendritic potentials ``b_basal`` and ``c_apical`` (dimensionless).
    label : int, optional
        For ``kind='output'``: the class whose neuron is excited in target phases
        (the others are inhibited), as in the network. Without a label the
        teaching conductances are the constants ``g_E`` and ``g_I``.
    g_E, g_I : Quantity, optional
        Constant teaching conductances (``1/ms``) when no label is given.
    basal_drive, apical_drive : PoissonDrive, optional
    record : bool or sequence of int
        Which neurons' potentials to record (``True``: all).
    seed : int, optional
        Seeds Brian2's random numbers (runtime targets).
    """

    def __init__(
        self,
        kind: str,
        n: int,
        cell: CellParameters | None = None,
        protocol: ProtocolParameters | None = None,
        phases=None,
        basal_bias=0.0,
        apical_bias=0.0,
        label: int | None = None,
        g_E: Quantity = 0 / ms,
        g_I: Quantity = 0 / ms,
        basal_drive: PoissonDrive | None = None,
        apical_drive: PoissonDrive | None = None,
        record=True,
        seed: int | None = None,
    ):
        if kind not in ("pyramidal", "output"):
            raise ValueError(f"kind = {kind!r}: expected 'pyramidal' or 'output'")
        if not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n = {n!r}: expected a positive integer")
        self.kind = kind
        self.n = int(n)
        self.cell = cell or CellParameters()
        self.protocol = protocol or ProtocolParameters()
        if phases is None:
            phases = [("forward", 100 * ms), ("target", 100 * ms)]
        lab = 0 if label is None else int(label)
        if label is not None and not 0 <= lab < n:
            raise ValueError(f"label = {label}: expected a neuron index in [0, {n})")
        self.schedule = PhaseSchedule.from_phases(
            [(p[0], p[1], 0, lab) for p in phases], self.protocol, dt=self.cell.dt
        )
        if seed is not None:
            brian2.seed(seed)
        arrays = self.schedule.timed_arrays()
        objects = []
        if kind == "pyramidal":
            group = pyramidal_group(n, self.cell, self.protocol, arrays, name="pyramidal*")
            group.c_apical = _per_neuron(apical_bias, n, "apical_bias")
            variables = ["V_soma", "V_basal", "V_apical"]
        else:
            if apical_drive is not None or np.any(np.asarray(apical_bias) != 0):
                raise ValueError("output neurons have no apical compartment (apical_bias, apical_drive)")
            group = output_group(n, self.cell, arrays, teaching="schedule" if label is not None else "parameters", name="output*")
            if label is None:
                for nm, val in (("g_E", g_E), ("g_I", g_I)):
                    if not isinstance(val, Quantity) or val.dim is not (1 / ms).dim:
                        raise ValueError(f"{nm} = {val!r}: expected a conductance per capacitance in 1/ms")
                group.g_E = g_E
                group.g_I = g_I
            variables = ["V_soma", "V_basal"]
        group.b_basal = _per_neuron(basal_bias, n, "basal_bias")
        objects.append(group)
        for site, drive in (("basal", basal_drive), ("apical", apical_drive)):
            if drive is None:
                continue
            drive.check(n, f"{site}_drive")
            source = PoissonGroup(len(drive.rates), drive.rates, dt=self.cell.dt, name=f"{group.name}_{site}_sources")
            syn = kernel_synapses(source, group, site, self.cell, name=f"{group.name}_{site}_drive")
            syn.connect()
            syn.w[:] = np.asarray(drive.weights, dtype=float).ravel()
            objects += [source, syn]
        trunc = own_trace_truncation(group, self.cell)
        if trunc is not None:
            objects.append(trunc)
        self.group = group
        self.state = StateMonitor(group, variables + ["s_out"], record=record, when="before_thresholds", order=10,
                                  name=f"{group.name}_state")  # after the step's rate (accumulation, order 0)
        self.spikes = SpikeMonitor(group, name=f"{group.name}_spikes")
        self.phase_ends = EventMonitor(group, "phase_end", record=False, name=f"{group.name}_phase_ends")
        monitors = [self.state, self.spikes]
        if kind == "pyramidal":
            self.plateaus = EventMonitor(
                group, "plateau", variables=["alpha_f", "alpha_t", "A_mean_f", "A_mean_t"], when="after_synapses", name=f"{group.name}_plateaus"
            )
            monitors.append(self.plateaus)
        else:
            self.plateaus = None
        self.network = Network(*objects, *monitors)

    def run(self, report=None) -> None:
        """Simulate the whole schedule in one ``run()``."""
        self.network.run(self.schedule.duration, report=report)

    @property
    def alpha_f(self) -> np.ndarray:
        """Forward-phase plateau potential of every neuron (the last one)."""
        self._need("alpha_f")
        return np.asarray(self.group.alpha_f[:])

    @property
    def alpha_t(self) -> np.ndarray:
        """Target-phase plateau potential of every neuron (the last one)."""
        self._need("alpha_t")
        return np.asarray(self.group.alpha_t[:])

    def _need(self, var):
        if self.kind != "pyramidal":
            raise AttributeError(f"{var}: output neurons have no apical plateau")

"""What a run recorded: spikes per layer, compartment potentials, plateaus, phases.

:class:`RunRecording` is the declarative data model that export (NWB, neo),
analysis (elephant) and plotting read. Times are Brian2 quantities (seconds);
potentials are dimensionless (the model's abstract units). It is produced by
:meth:`brian_dendrite.simulation.network.SpikingNetwork.record` (and by
:class:`~brian_dendrite.simulation.population.CellPopulation` runs) and saved as one
``.npz`` file, written atomically.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from brian2 import second
from brian2.units.fundamentalunits import Quantity

from ..model import PHASE_NAMES as _PHASE_NAMES
from ..provenance import save_npz_atomic

__all__ = ["SpikeTrains", "Potentials", "PlateauEvents", "RunRecording"]


@dataclass
class SpikeTrains:
    """All spikes of one layer: ``times`` (Quantity, s) and neuron ``indices``."""

    times: Quantity
    indices: np.ndarray
    n_neurons: int

    def trains(self) -> list[Quantity]:
        """One array of spike times per neuron."""
        order = np.argsort(self.indices, kind="stable")
        idx = self.indices[order]
        t = np.asarray(self.times / second)[order]
        bounds = np.searchsorted(idx, np.arange(self.n_neurons + 1))
        return [t[bounds[k] : bounds[k + 1]] * second for k in range(self.n_neurons)]


@dataclass
class Potentials:
    """A recorded compartment potential: ``values`` (n_recorded, n_times), dimensionless."""

    times: Quantity
    neurons: np.ndarray
    values: np.ndarray


@dataclass
class PlateauEvents:
    """Plateau potentials of a hidden layer: time, neuron, ``alpha`` and the phase (0 forward, 1 target)."""

    times: Quantity
    indices: np.ndarray
    alpha: np.ndarray
    phase: np.ndarray


@dataclass
class RunRecording:
    """Everything recorded during one stretch of simulation.

    Attributes
    ----------
    dt : Quantity
        Simulation time step (the spike-time resolution).
    duration : Quantity
    layer_sizes : dict[str, int]
        Layer name (``input``, ``hidden_0``, ..., ``output``) -> number of neurons.
    spikes : dict[str, SpikeTrains]
    potentials : dict[str, dict[str, Potentials]]
        Layer -> variable (``V_soma``, ``V_basal``, ``V_apical``) -> recording.
    plateaus : dict[str, PlateauEvents]
    phases : ndarray
        One row per phase: start (s), stop (s), phase code (0 forward, 1 target,
        2 test), example index within the run, label.
    stimulus : ndarray
        Dataset index of every example of the run (``-1`` if unknown).
    metadata : dict
        Provenance: model parameters (TOML text), seed, target, versions, description.
    """

    dt: Quantity
    duration: Quantity
    layer_sizes: dict
    spikes: dict = field(default_factory=dict)
    potentials: dict = field(default_factory=dict)
    plateaus: dict = field(default_factory=dict)
    phases: np.ndarray = field(default_factory=lambda: np.zeros((0, 5)))
    stimulus: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    metadata: dict = field(default_factory=dict)

    #: Phase code -> name (the codes of :mod:`brian_dendrite.model.schedule`).
    PHASE_NAMES = dict(_PHASE_NAMES)

    def save(self, path) -> Path:
        """Write to ``path`` (``.npz``) atomically: a failure leaves no file under that name."""
        path = Path(path)
        arrays = {
            "dt": np.array(float(self.dt / second)),
            "duration": np.array(float(self.duration / second)),
            "phases": np.asarray(self.phases, dtype=float),
            "stimulus": np.asarray(self.stimulus, dtype=np.int64),
            "meta": np.array(json.dumps({"layer_sizes": self.layer_sizes, "metadata": self.metadata})),
        }
        for layer, st in self.spikes.items():
            arrays[f"spikes/{layer}/times"] = np.asarray(st.times / second)
            arrays[f"spikes/{layer}/indices"] = np.asarray(st.indices, dtype=np.int64)
        for layer, variables in self.potentials.items():
            for var, pot in variables.items():
                arrays[f"potentials/{layer}/{var}/times"] = np.asarray(pot.times / second)
                arrays[f"potentials/{layer}/{var}/neurons"] = np.asarray(pot.neurons, dtype=np.int64)
                arrays[f"potentials/{layer}/{var}/values"] = np.asarray(pot.values)
        for layer, ev in self.plateaus.items():
            arrays[f"plateaus/{layer}/times"] = np.asarray(ev.times / second)
            arrays[f"plateaus/{layer}/indices"] = np.asarray(ev.indices, dtype=np.int64)
            arrays[f"plateaus/{layer}/alpha"] = np.asarray(ev.alpha)
            arrays[f"plateaus/{layer}/phase"] = np.asarray(ev.phase, dtype=np.int64)
        return save_npz_atomic(path, arrays)

    @classmethod
    def load(cls, path) -> RunRecording:
        """Read a recording written by :meth:`save` (clear error for a corrupt file)."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            meta = json.loads(str(arrays["meta"]))
            rec = cls(
                dt=float(arrays["dt"]) * second,
                duration=float(arrays["duration"]) * second,
                layer_sizes=meta["layer_sizes"],
                phases=arrays["phases"],
                stimulus=arrays["stimulus"],
                metadata=meta["metadata"],
            )
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(f"{path} is not a readable brian_dendrite recording: {err!r}") from None
        for key in arrays:
            parts = key.split("/")
            if parts[0] == "spikes" and parts[2] == "times":
                layer = parts[1]
                rec.spikes[layer] = SpikeTrains(arrays[key] * second, arrays[f"spikes/{layer}/indices"],
                                                int(rec.layer_sizes[layer]))
            elif parts[0] == "potentials" and parts[3] == "times":
                layer, var = parts[1], parts[2]
                base = f"potentials/{layer}/{var}"
                rec.potentials.setdefault(layer, {})[var] = Potentials(
                    arrays[key] * second, arrays[f"{base}/neurons"], arrays[f"{base}/values"])
            elif parts[0] == "plateaus" and parts[2] == "times":
                layer = parts[1]
                base = f"plateaus/{layer}"
                rec.plateaus[layer] = PlateauEvents(arrays[key] * second, arrays[f"{base}/indices"],
                                                    arrays[f"{base}/alpha"], arrays[f"{base}/phase"])
        return rec

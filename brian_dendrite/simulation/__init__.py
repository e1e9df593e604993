"""The simulation: the spiking network in Brian2, small cell populations, and recordings.

:class:`SpikingNetwork` builds the whole network (input, hidden layers, output,
feedback, the learning rule) as one explicit ``brian2.Network`` and runs training
chunks and tests as single ``run()`` calls, on the runtime targets or a
cpp_standalone binary compiled once. :class:`CellPopulation` runs a few neurons on
their own. What a run records is a :class:`RunRecording`.
"""

from .network import SpikingNetwork, TestResult
from .population import CellPopulation, PoissonDrive
from .recording import PlateauEvents, Potentials, RunRecording, SpikeTrains

__all__ = ["CellPopulation", "PlateauEvents", "PoissonDrive", "Potentials", "RunRecording", "SpikeTrains",
           "SpikingNetwork", "TestResult"]

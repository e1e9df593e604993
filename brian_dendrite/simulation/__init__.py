"""The simulation: the spiking network in Brian2, small cell populations, and what runs record.

Import from here (``from brian_dendrite.simulation import SpikingNetwork``).

The network (:mod:`~brian_dendrite.simulation.network`)
    :class:`SpikingNetwork` builds the whole network (input, hidden layers, output,
    feedback, the learning rule) as one explicit ``brian2.Network`` and runs every
    training chunk and every test block as a single ``run()``:
    :meth:`~SpikingNetwork.train_chunk`, :meth:`~SpikingNetwork.test` (a
    :class:`TestResult`), :meth:`~SpikingNetwork.record` (a :class:`RunRecording`);
    weights and state are read and written with
    :meth:`~SpikingNetwork.get_weights`, :meth:`~SpikingNetwork.set_weights`,
    :meth:`~SpikingNetwork.get_state`, :meth:`~SpikingNetwork.set_state`,
    :meth:`~SpikingNetwork.reset_state` and
    :meth:`~SpikingNetwork.redraw_spike_generators`.
Devices
    ``device='runtime'`` runs on Brian2's numpy or Cython target
    (``brian2.prefs.codegen.target``); ``device='cpp_standalone'`` compiles the
    network once and re-runs the binary per chunk. A standalone build is cached in
    :func:`build_directory` (keyed by the parameters, the chunk size and the
    versions); :func:`standalone_capacity` is the fixed number of steps of its runs.
    On that device the all-to-all pathways use dense-row delivery (a technical
    setting, ``SpikingNetwork(..., dense_pathways=False)`` for Brian2's generic code).
Cell populations (:mod:`~brian_dendrite.simulation.population`)
    :class:`CellPopulation` runs a few pyramidal or output neurons on their own,
    with constant biases, optional :class:`PoissonDrive` onto a dendrite and a
    schedule of phases.
Recordings (:mod:`~brian_dendrite.simulation.recording`)
    :class:`RunRecording` holds what a run recorded (:class:`SpikeTrains` per
    layer, :class:`Potentials` of chosen neurons, :class:`PlateauEvents`, the
    phases) and is saved to and loaded from one ``.npz`` file.

Internal modules: ``_build`` (the Brian2 objects of the network and its initial
state), ``_runtime`` and ``_standalone`` (the two devices behind one interface),
``_dense`` (dense-row delivery: Brian2 templates for all-to-all pathways on cpp_standalone).
Of the rest of the package this subpackage imports only :mod:`brian_dendrite.model`,
:mod:`brian_dendrite.provenance` and the package's ``__version__``.
"""

from ._standalone import build_directory, standalone_capacity
from .network import SpikingNetwork, TestResult
from .population import CellPopulation, PoissonDrive
from .recording import PlateauEvents, Potentials, RunRecording, SpikeTrains

__all__ = ["CellPopulation", "PlateauEvents", "PoissonDrive", "Potentials", "RunRecording", "SpikeTrains",
           "SpikingNetwork", "TestResult", "build_directory", "standalone_capacity"]

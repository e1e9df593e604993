"""brian_dendrite: segregated-dendrite deep learning as a Brian2 simulation.

Implements the model of Guerguiev, Lillicrap & Richards (2017), "Towards deep
learning with segregated dendrites", eLife 6:e22901, with compartmental
pyramidal neurons, apical plateau potentials as Brian2 custom events and the
local learning rule as synaptic event code.

The model is specified in ``docs/specification.rst`` of the source repository;
docstrings cite its sections as "specification 1.9" or "specification section 5,
item 3". How the package is laid out and how data flows through it is described in
``docs/architecture.rst``. Each subpackage exports its public API:

* :mod:`brian_dendrite.cells`: the public plugin API for your own Brian2 network
  (:func:`pyramidal_neurons`, :func:`output_neurons`, :func:`input_neurons`,
  :func:`dendritic_synapses`, :func:`learning_rule`, :func:`steady_state`,
  :func:`rate_model`), exported here too;
* :mod:`brian_dendrite.model`: parameters, equations, neuron groups, synapses, the
  learning rule, the phase schedule, the PSP kernel, initial weights;
* :mod:`brian_dendrite.simulation`: the spiking network in Brian2 (runtime or
  cpp_standalone), small cell populations, recordings;
* :mod:`brian_dendrite.rate`: the rate abstraction;
* :mod:`brian_dendrite.training`: training runs with checkpoints and resume;
* :mod:`brian_dendrite.validation`: the spiking network against the rate abstraction;
* :mod:`brian_dendrite.io`: neo and NWB;
* :mod:`brian_dendrite.sweeps`: independent runs on Dask;
* :mod:`brian_dendrite.datasets`, :mod:`brian_dendrite.analysis`,
  :mod:`brian_dendrite.plotting`, :mod:`brian_dendrite.paper`,
  :mod:`brian_dendrite.provenance`.
"""

from ._brian2_import import import_brian2

import_brian2()  # before anything that imports Brian2: without pylab, matplotlib, pytest (see the module)

from .cells import (  # noqa: E402
    SITES,
    dendritic_synapses,
    input_neurons,
    learning_rule,
    output_neurons,
    phase_schedule,
    pyramidal_neurons,
    rate_model,
    steady_state,
)
from .model import (  # noqa: E402
    CellParameters,
    ModelParameters,
    NetworkParameters,
    ParameterError,
    ProtocolParameters,
    available_models,
    load_model,
)

__version__ = "0.1.0"

__all__ = [
    "CellParameters",
    "ModelParameters",
    "NetworkParameters",
    "ParameterError",
    "ProtocolParameters",
    "available_models",
    "load_model",
    # the plugin API (brian_dendrite.cells)
    "SITES",
    "dendritic_synapses",
    "input_neurons",
    "learning_rule",
    "output_neurons",
    "phase_schedule",
    "pyramidal_neurons",
    "rate_model",
    "steady_state",
    "__version__",
]

"""brian_dendrite: segregated-dendrite deep learning as a Brian2 simulation.

Implements the model of Guerguiev, Lillicrap & Richards (2017), "Towards deep
learning with segregated dendrites", eLife 6:e22901, with compartmental
pyramidal neurons, apical plateau potentials as Brian2 custom events and the
local learning rule as synaptic event code.
"""

from .model.parameters import (
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
    "__version__",
]

"""The model: parameters, units, equations, neurons, synapses, plasticity, schedule, initialization.

Everything here describes the segregated-dendrite model itself, independent of how
it is run: the parameter objects with their units and defaults, the compartments'
equations, the Brian2 groups built from them, the learning rule as synaptic event
code, the phase schedule, the PSP kernel as the simulation samples it, and the
initial weights.
"""

from .initialization import Weights, initial_weights, sparse_mask, symmetric_feedback, weight_statistics
from .kernels import effective_kernel_masses, psp_kernels, soma_kernel, window_variance_factor
from .neurons import PSP_UNIT, cell_namespace, input_group, output_group, pyramidal_group
from .parameters import (
    CellParameters,
    ModelParameters,
    NetworkParameters,
    ParameterError,
    ProtocolParameters,
    available_models,
    load_model,
    model_directory,
)
from .plasticity import learning_scales
from .schedule import FORWARD, IDLE, PHASE_NAMES, TARGET, TEST, PhaseSchedule, draw_phase_lengths
from .synapses import kernel_synapses, own_trace_truncation

__all__ = [
    "CellParameters", "ModelParameters", "NetworkParameters", "ParameterError", "ProtocolParameters",
    "available_models", "load_model", "model_directory",
    "Weights", "initial_weights", "sparse_mask", "symmetric_feedback", "weight_statistics",
    "effective_kernel_masses", "psp_kernels", "soma_kernel", "window_variance_factor",
    "PSP_UNIT", "cell_namespace", "input_group", "output_group", "pyramidal_group",
    "learning_scales", "kernel_synapses", "own_trace_truncation",
    "FORWARD", "TARGET", "TEST", "IDLE", "PHASE_NAMES", "PhaseSchedule", "draw_phase_lengths",
]

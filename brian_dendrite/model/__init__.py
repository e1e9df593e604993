"""The segregated-dendrite model itself, independent of how it is run.

Everything a simulation needs to know about the model of Guerguiev, Lillicrap &
Richards (2017): its parameters, the compartments' equations, the Brian2 groups and
synapses built from them, the learning rule as event code, the phase schedule, the
PSP kernel as the simulation samples it, and the weights. Import from here
(``from brian_dendrite.model import load_model``); the modules below are the
reference of each part.

Parameters (:mod:`~brian_dendrite.model.parameters`, :mod:`~brian_dendrite.model.units`)
    :class:`ModelParameters` groups the immutable, unit-checked
    :class:`CellParameters`, :class:`NetworkParameters` and
    :class:`ProtocolParameters` (the paper's defaults; ``replace(...)`` for
    variants; an invalid value raises :class:`ParameterError` naming the field).
    Named parameter sets are TOML files: :func:`load_model`,
    :func:`available_models`, :func:`model_directory`. Quantities in text:
    :func:`parse_quantity`, :func:`format_quantity`, :func:`dimension_name`.
Equations (:mod:`~brian_dendrite.model.equations`)
    The compartments written once with canonical names and composed with ``+``:
    :func:`pyramidal_equations`, :func:`output_equations`, :func:`input_equations`,
    the kernel traces (:func:`trace_equations`, :func:`own_trace_equations`), the
    Bernoulli spike generator (:func:`spike_generator_equations`), the schedule
    (:func:`schedule_equations`), the window averages
    (:func:`accumulator_equations`) and the teaching conductances
    (:data:`TEACHING_PARAMETERS`, :func:`teaching_from_schedule`).
Neurons and synapses (:mod:`~brian_dendrite.model.neurons`, :mod:`~brian_dendrite.model.synapses`)
    :func:`pyramidal_group`, :func:`output_group`, :func:`input_group` (each with its
    own namespace, :func:`cell_namespace`, and the ``spike``, ``phase_end`` and
    ``plateau`` events; PSPs in :data:`PSP_UNIT`); :func:`kernel_synapses`
    (event-driven delivery, :func:`deliver_code`) and :func:`own_trace_truncation`
    for the truncated kernel.
Learning rule (:mod:`~brian_dendrite.model.plasticity`)
    The event conditions :data:`LEARN_CONDITION` and :data:`LEARN_PRE_CONDITION`,
    the postsynaptic code :data:`HIDDEN_DELTA` and :data:`OUTPUT_DELTA`, the
    synaptic update :data:`WEIGHT_UPDATE` and the per-layer factors
    :func:`learning_scales`.
Phase schedule (:mod:`~brian_dendrite.model.schedule`)
    The phase codes :data:`FORWARD`, :data:`TARGET`, :data:`TEST`, :data:`IDLE`
    (:data:`PHASE_NAMES`), the per-step :class:`PhaseSchedule` packed into
    ``TimedArray`` s, and the random phase lengths :func:`draw_phase_lengths`.
PSP kernel (:mod:`~brian_dendrite.model.kernels`)
    The kernel sampled as the simulation integrates it: :func:`psp_kernels`,
    :func:`soma_kernel`, :func:`effective_kernel_masses`,
    :func:`window_variance_factor` (over :data:`KERNEL_STEPS` steps).
Weights (:mod:`~brian_dendrite.model.initialization`)
    :class:`Weights` (``W``, ``b``, ``Y``, ``c``; saved and loaded as ``.npz``),
    :func:`initial_weights` (the published schemes), :func:`symmetric_feedback`,
    :func:`sparse_mask`, :func:`weight_statistics`, :data:`UNIFORM_SD_FACTOR`.

Nothing here imports from the other parts of the package (the simulation, training
and analysis build on this, not the other way round).
"""

from .equations import (
    TEACHING_PARAMETERS,
    accumulator_equations,
    input_equations,
    output_equations,
    own_trace_equations,
    pyramidal_equations,
    schedule_equations,
    spike_generator_equations,
    teaching_from_schedule,
    trace_equations,
)
from .initialization import (
    UNIFORM_SD_FACTOR,
    Weights,
    initial_weights,
    sparse_mask,
    symmetric_feedback,
    weight_statistics,
)
from .kernels import (
    KERNEL_STEPS,
    cell_floats,
    effective_kernel_masses,
    psp_kernels,
    soma_kernel,
    window_variance_factor,
)
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
from .plasticity import (
    HIDDEN_DELTA,
    LEARN_CONDITION,
    LEARN_PRE_CONDITION,
    OUTPUT_DELTA,
    WEIGHT_UPDATE,
    learning_scales,
)
from .schedule import FORWARD, IDLE, PHASE_NAMES, TARGET, TEST, PhaseSchedule, draw_phase_lengths
from .synapses import deliver_code, kernel_synapses, own_trace_truncation
from .units import dimension_name, format_quantity, parse_quantity

__all__ = [
    # parameters and units
    "CellParameters", "ModelParameters", "NetworkParameters", "ParameterError", "ProtocolParameters",
    "available_models", "load_model", "model_directory",
    "dimension_name", "format_quantity", "parse_quantity",
    # equations
    "TEACHING_PARAMETERS", "accumulator_equations", "input_equations", "output_equations", "own_trace_equations",
    "pyramidal_equations", "schedule_equations", "spike_generator_equations", "teaching_from_schedule",
    "trace_equations",
    # neurons and synapses
    "PSP_UNIT", "cell_namespace", "input_group", "output_group", "pyramidal_group",
    "deliver_code", "kernel_synapses", "own_trace_truncation",
    # learning rule
    "HIDDEN_DELTA", "LEARN_CONDITION", "LEARN_PRE_CONDITION", "OUTPUT_DELTA", "WEIGHT_UPDATE", "learning_scales",
    # phase schedule
    "FORWARD", "TARGET", "TEST", "IDLE", "PHASE_NAMES", "PhaseSchedule", "draw_phase_lengths",
    # PSP kernel
    "KERNEL_STEPS", "cell_floats", "effective_kernel_masses", "psp_kernels", "soma_kernel", "window_variance_factor",
    # weights
    "UNIFORM_SD_FACTOR", "Weights", "initial_weights", "sparse_mask", "symmetric_feedback", "weight_statistics",
]

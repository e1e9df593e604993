"""NEURON backend: the same cells and learning rule in the NEURON simulator.

The subpackage is called ``nrn`` so that it never shadows NEURON's own ``neuron``
package; ``import neuron`` inside it is the real NEURON (an optional dependency:
``pip install "brian_dendrite[neuron]"``). Nothing here imports NEURON until a
NEURON model is built, so ``import brian_dendrite.nrn`` works without it;
building a model without NEURON raises an ``ImportError`` naming the extra.

Parts (see docs/neuron.rst):

* ``mod/*.mod``: the NMODL mechanisms (``BDDend`` dendrite, ``bdpyr`` / ``bdout``
  somata with the one-way coupling, ``BDCell`` spiking and bookkeeping, ``BDSyn``
  plastic synapse, ``BDClock`` phase schedule), compiled on first use by
  :func:`load_mechanisms` into a cache directory;
* :class:`NrnModel` (cells, connections, recordings) and :class:`NrnNetwork`
  (the learning network) build NEURON models from the package's parameter objects;
* :mod:`brian_dendrite.nrn.crosscheck`: the NEURON-versus-Brian2 check behind
  ``brian-dendrite crosscheck``.
"""

from ._cells import NrnCell, NrnModel
from ._mechanisms import (
    NEURON_EXTRA_HINT,
    MechanismCompileError,
    load_mechanisms,
    mod_sources,
    require_neuron,
)
from ._network import (
    NrnNetwork,
    bernoulli_input_steps,
    check_nrn_supported,
    initial_feedback_noise,
    initial_plateau_offsets,
)
from ._reference import PopulationInput, PopulationRun, brian2_population, input_trains, neuron_population
from .crosscheck import (
    STRICT,
    TOLERANCES,
    add_crosscheck_arguments,
    applied_update_check,
    benchmark,
    cell_crosscheck,
    learning_crosscheck,
    run_crosscheck,
    run_crosscheck_from_args,
    test_crosscheck,
    trace_errors,
)

__all__ = [
    "NEURON_EXTRA_HINT", "MechanismCompileError", "load_mechanisms", "mod_sources", "require_neuron",
    "NrnCell", "NrnModel", "NrnNetwork", "bernoulli_input_steps", "check_nrn_supported", "initial_feedback_noise",
    "initial_plateau_offsets",
    "PopulationInput", "PopulationRun", "brian2_population", "input_trains", "neuron_population",
    "STRICT", "TOLERANCES", "add_crosscheck_arguments", "applied_update_check", "benchmark", "cell_crosscheck",
    "learning_crosscheck", "run_crosscheck", "run_crosscheck_from_args", "test_crosscheck", "trace_errors",
]

"""The segregated-dendrite neuron as a Brian2 plugin: groups, synapses and the learning rule for your own network.

Everything here returns ordinary Brian2 objects (``NeuronGroup``, ``Synapses``)
that you add to your own ``Network`` (or run with Brian2's ``run``), built from a
:class:`~brian_dendrite.model.CellParameters` (default: the paper's) and keyword
options. Nothing needs MNIST or the training schedule of
:mod:`brian_dendrite.simulation`. The same functions are exported from the
top-level package (``from brian_dendrite import pyramidal_neurons``); this API
is stable: names and signatures change only with a deprecation period.

Neuron groups
    :func:`pyramidal_neurons` (basal, apical and somatic compartments),
    :func:`output_neurons` (basal and somatic compartments with teaching
    conductances), :func:`input_neurons` (Poisson-like inputs that keep the traces
    the learning rule needs). Their variables and units are tabulated in each
    function's Notes.
Phases
    Without ``phases`` the neurons only integrate and spike. With ``phases``, a list
    such as ``[('forward', 100*ms), ('target', 100*ms, label)]`` (or a
    ``TimedArray`` of phase codes, or a :class:`~brian_dendrite.model.PhaseSchedule`),
    every group averages its potentials over the end of each phase, pyramidal neurons
    built with ``plateau=True`` emit ``plateau`` events and compute ``alpha_f``,
    ``alpha_t``, and the learning rule fires at the end of every target phase.
    Groups that interact must be built with the same phases.
    :func:`phase_schedule` shows the per-step schedule the groups will read.
Synapses
    :func:`dendritic_synapses` onto the ``'basal'``, ``'apical'`` or ``'soma'``
    site (:data:`SITES`), through the double-exponential PSP kernel, from any Brian2
    group that spikes (a ``PoissonGroup`` too).
Learning rule
    :func:`learning_rule`: plastic basal synapses whose weights, and the target's
    bias, follow the paper's local rule at the end of every target phase
    (specification 1.8-1.10).
Rate abstraction
    :func:`steady_state`: the mean somatic potential and rate of a cell with
    constant dendritic potentials; :func:`rate_model`: the whole network in the rate
    abstraction, a :class:`~brian_dendrite.rate.RateNetwork`.

Units: potentials, weights and PSPs are dimensionless (the paper's abstract
units), conductances are per unit capacitance (``1/ms``), rates in Hz; the learning
rule's presynaptic averages are in spikes/ms (specification section 5, item 1).

Errors: each factory checks its arguments where they are given and raises
``TypeError`` or ``ValueError`` (:class:`~brian_dendrite.model.ParameterError` for
parameter values) with a message that names the argument; an unknown name lists the
valid ones.

Examples
--------
A pyramidal population driven by Poisson inputs onto its basal dendrites, with
feedback from a second population onto its apical dendrites::

    from brian2 import Hz, ms, PoissonGroup, SpikeMonitor, run
    from brian_dendrite import pyramidal_neurons, dendritic_synapses

    inputs = PoissonGroup(50, rates=20 * Hz)
    phases = [("forward", 100 * ms), ("target", 100 * ms)]
    hidden = pyramidal_neurons(20, phases=phases, plateau=True)
    top = pyramidal_neurons(5, phases=phases)
    basal = dendritic_synapses(inputs, hidden, "basal", weights=0.5)
    up = dendritic_synapses(hidden, top, "basal", weights=0.3)
    feedback = dendritic_synapses(top, hidden, "apical", weights=1.0)
    spikes = SpikeMonitor(hidden)
    run(200 * ms)

The scripts in ``examples/`` of the source repository build such networks and plot them.
"""

from ._neurons import input_neurons, output_neurons, pyramidal_neurons
from ._phases import phase_schedule
from ._rate import rate_model, steady_state
from ._synapses import SITES, dendritic_synapses, learning_rule

__all__ = [
    "SITES",
    "dendritic_synapses",
    "input_neurons",
    "learning_rule",
    "output_neurons",
    "phase_schedule",
    "pyramidal_neurons",
    "rate_model",
    "steady_state",
]

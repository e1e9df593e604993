"""The Brian2 objects of the spiking network, and the state it starts from (internal).

:func:`build_network` makes, in this order (the order of the calls is the order of
the generated standalone code, so it is kept fixed):

1. the layers (:func:`_layers`): the input group, one pyramidal group per hidden
   layer (``hidden_0``, ``hidden_1``, ...) and the output group, all reading the
   phase schedule's ``TimedArray`` s;
2. the learning rule's postsynaptic side and the test reset (:func:`_attach_learning`):
   on the ``learn`` event (end of a target phase) every hidden and output neuron
   computes its local error ``delta`` and updates its bias; on ``test_reset`` (end
   of a test phase) every layer zeroes its dynamic state;
3. the feedforward synapses ``W_0``, ``W_1``, ... (:func:`_forward_synapses`) with
   the weight-update pathway driven by the presynaptic ``learn_pre`` event, and,
   for symmetric feedback, the path back through the same weights;
4. the feedback synapses ``Y_0``, ``Y_1``, ... from the output layer to every hidden
   layer's apical dendrite (fixed weights, specification 1.5), unless the feedback is
   symmetric;
5. the truncation of every layer's own trace (truncated kernel only) and the monitor
   of the output layer's test readout;
6. the all-to-all ``connect()`` of the forward and feedback synapses, in the order
   they were made (on cpp_standalone deferred until the project is generated, and
   skipped when a cached build is reused: :mod:`brian_dendrite.simulation._warm`).

:func:`initial_state` draws, in numpy and from the network's seed, what a network
starts from on every device alike: the spike generators' first uniform numbers, the
stochastic plateau offsets and the noise of noisy-symmetric feedback.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from brian2 import Clock, Equations, EventMonitor, Network, NeuronGroup, Synapses, TimedArray

from ..model import (
    HIDDEN_DELTA,
    LEARN_CONDITION,
    LEARN_PRE_CONDITION,
    OUTPUT_DELTA,
    TEST,
    WEIGHT_UPDATE,
    ModelParameters,
    Weights,
    input_group,
    kernel_synapses,
    learning_scales,
    output_group,
    own_trace_truncation,
    pyramidal_group,
)

__all__ = ["SYMMETRIC_FEEDBACK", "TEST_RESET_VARS", "NetworkObjects", "InitialState", "check_supported",
           "build_network", "initial_state", "flat_weights", "weight_matrix", "feedback_matrices"]

#: Feedback through the output synapses themselves (``Y = W^T``) rather than through ``Y_m`` synapses.
SYMMETRIC_FEEDBACK = ("symmetric", "noisy_symmetric")

#: Zeroed in every layer at the end of a test phase (after its spikes were handled) and before every test.
TEST_RESET_VARS = ("V_soma", "x_basal_L", "x_basal_s", "x_apical_L", "x_apical_s", "y_L", "y_s")
_TEST_RESET_CONDITION = f"phase == {TEST} and steps_left == 0"


@dataclass
class NetworkObjects:
    """The Brian2 objects of one network.

    Attributes
    ----------
    input, output : NeuronGroup
    hidden : list of NeuronGroup
        Bottom to top.
    forward_synapses : list of Synapses
        ``W_m`` from layer ``m`` to layer ``m + 1`` (all-to-all, presynaptic-major order).
    feedback_synapses : list of Synapses
        ``Y_m`` from the output layer to hidden layer ``m`` (none for symmetric feedback).
    readout : EventMonitor
        The output layer's window means at every phase end (the test readout).
    network : Network
        All of the above and the truncation synapses.
    schedule_arrays : dict
        The ``sched_*`` ``TimedArray`` s the groups were built with.
    images : TimedArray
        The image array the input group was built with.
    unconnected : list of Synapses
        The all-to-all synapses whose ``connect()`` was deferred (``build_network(...,
        connect=False)``); :meth:`connect` makes them.
    """

    input: NeuronGroup
    hidden: list
    output: NeuronGroup
    forward_synapses: list
    feedback_synapses: list
    readout: EventMonitor
    network: Network
    schedule_arrays: dict
    images: TimedArray
    unconnected: list = field(default_factory=list)

    def connect(self) -> None:
        """Connect the synapses whose ``connect()`` was deferred (all-to-all), in the order they were made."""
        while self.unconnected:
            self.unconnected.pop(0).connect()

    @property
    def layers(self) -> list:
        """Input, hidden layers (bottom to top), output."""
        return [self.input, *self.hidden, self.output]


def check_supported(params: ModelParameters) -> None:
    """Raise ``NotImplementedError`` for the parameter combinations the spiking network cannot build."""
    net = params.network
    if net.feedback in SYMMETRIC_FEEDBACK and (len(net.hidden) != 1 or params.cell.kernel != "full"):
        raise NotImplementedError(
            f"feedback = {net.feedback!r} with {len(net.hidden)} hidden layers or a truncated kernel is not "
            "implemented in the spiking network yet (Y = W^T through the output synapses works for one "
            "hidden layer with the full kernel)"
        )
    if not net.feedback_spiking:
        raise NotImplementedError("feedback_spiking = false (rate feedback) is not implemented in the spiking network yet")


def build_network(params: ModelParameters, schedule_arrays: dict, images: TimedArray,
                  connect: bool = True) -> NetworkObjects:
    """All Brian2 objects of the network for *params*, in one ``brian2.Network``.

    Parameters
    ----------
    params : ModelParameters
    schedule_arrays : dict
        The ``sched_*`` ``TimedArray`` s (see :meth:`~brian_dendrite.model.PhaseSchedule.timed_arrays`);
        runs swap same-shaped arrays into the groups' namespaces.
    images : TimedArray
        2-D ``(example, pixel)`` array read by the input group.
    connect : bool
        Connect the forward and feedback synapses (all-to-all) now; if false, they are
        listed in ``unconnected`` (the cpp_standalone device generates the code of a
        ``connect()`` at once, which a warm start with a cached build does not need).
    """
    # one clock for every object: the per-step scheduling of the network (Brian2 finds the
    # clocks due in every step) is then one clock's work instead of one per group and synapse
    clock = Clock(dt=params.cell.dt, name="network_clock*")
    inp, hidden, out = _layers(params, schedule_arrays, images, clock)
    layers = [inp, *hidden, out]
    _attach_learning(params, layers)
    forward = _forward_synapses(params, layers, clock)
    feedback = [] if params.network.feedback in SYMMETRIC_FEEDBACK else _feedback_synapses(params, out, hidden, clock)
    objects = [*layers, *forward, *feedback]
    for group in layers:
        trunc = own_trace_truncation(group, params.cell, clock)
        if trunc is not None:
            objects.append(trunc)
    readout = EventMonitor(out, "phase_end", variables=["V_mean_test", "rate_mean_test", "phase"],
                           when="after_synapses", name="readout")
    objects.append(readout)
    network = Network(*objects, name="segregated_dendrite_network")
    objects = NetworkObjects(inp, hidden, out, forward, feedback, readout, network, schedule_arrays, images,
                             unconnected=[*forward, *feedback])
    if connect:
        objects.connect()
    return objects


def _layers(params: ModelParameters, schedule_arrays: dict, images: TimedArray, clock=None):
    """The input, hidden and output groups, with the events of the learning rule and the test reset."""
    net, cell = params.network, params.cell
    learn_event = {"learn": LEARN_CONDITION, "test_reset": _TEST_RESET_CONDITION}
    # presynaptic side of the update: neurons with a PSP average above skip_psp_below
    pre_events = {"learn_pre": LEARN_PRE_CONDITION, "test_reset": _TEST_RESET_CONDITION}
    skip = {"skip_psp_below": float(net.skip_psp_below)}
    delta_eqs = Equations("delta : 1")
    inp = input_group(net.n_input, cell, schedule_arrays, images, name="input", extra_events=pre_events, clock=clock)
    inp.namespace.update(skip)
    hidden = [
        pyramidal_group(n, cell, params.protocol, schedule_arrays, name=f"hidden_{m}", extra_equations=delta_eqs,
                        extra_events={**learn_event, **pre_events}, extra_namespace=skip, clock=clock)
        for m, n in enumerate(net.hidden)
    ]
    out = output_group(net.n_output, cell, schedule_arrays, name="output", extra_equations=delta_eqs,
                       extra_events=learn_event, clock=clock)
    return inp, hidden, out


def _attach_learning(params: ModelParameters, layers: list) -> None:
    """The postsynaptic side of the learning rule (errors and biases) and the reset after a test phase."""
    output = layers[-1]
    for group, scale in zip(layers[1:], learning_scales(params), strict=True):
        group.namespace["learning_scale"] = scale
        group.run_on_event("learn", HIDDEN_DELTA if group is not output else OUTPUT_DELTA,
                           when="before_synapses", order=2)
    for group in layers:
        reset = "\n".join(f"{v} = 0" for v in TEST_RESET_VARS if v in group.variables)
        group.run_on_event("test_reset", reset, when="after_resets")


def _forward_synapses(params: ModelParameters, layers: list, clock=None) -> list:
    """``W_m`` (layer ``m`` -> ``m + 1``, basal) with the weight update; symmetric feedback on the top one."""
    net, cell = params.network, params.cell
    symmetric = net.feedback in SYMMETRIC_FEEDBACK
    noisy = net.feedback == "noisy_symmetric"
    n_hidden = len(layers) - 2
    synapses = []
    for m, (pre, post) in enumerate(zip(layers[:-1], layers[1:], strict=True)):
        top = post is layers[-1] and n_hidden == 1
        # Y = W^T: output spikes travel back through the same synapses to the apical traces;
        # noisy: Y = W^T + N(0, sd), the noise redrawn at every weight update (specification 1.13).
        on_post, model, learn, trigger = None, "w : 1", WEIGHT_UPDATE, "learn_pre"
        if symmetric and top:
            y = "(w + y_noise)" if noisy else "w"
            on_post = f"x_apical_L_pre += {y}\nx_apical_s_pre += {y}"
            if noisy:
                model = "w : 1\ny_noise : 1"
                learn = WEIGHT_UPDATE + "\ny_noise = symmetric_noise * randn()"
                trigger = "learn"  # every synapse redraws its noise, whatever its presynaptic PSP
        syn = kernel_synapses(pre, post, "basal", cell, model=model, extra_pathways={"learn": learn},
                              extra_events={"learn": trigger}, on_post=on_post, name=f"W_{m}",
                              namespace={"symmetric_noise": net.symmetric_noise} if noisy else None, clock=clock)
        synapses.append(syn)
    return synapses


def _feedback_synapses(params: ModelParameters, output: NeuronGroup, hidden: list, clock=None) -> list:
    """``Y_m``: output -> apical dendrite of hidden layer ``m`` (fixed weights)."""
    synapses = []
    for m, hid in enumerate(hidden):
        synapses.append(kernel_synapses(output, hid, "apical", params.cell, name=f"Y_{m}", clock=clock))
    return synapses


def flat_weights(matrix) -> np.ndarray:
    """(n_post, n_pre) matrix -> synaptic ``w`` in presynaptic-major order (the order of ``connect()``)."""
    return np.ascontiguousarray(np.asarray(matrix, dtype=float).T).ravel()


def weight_matrix(syn: Synapses) -> np.ndarray:
    """Synaptic ``w`` (presynaptic-major) -> a (n_post, n_pre) matrix (a copy)."""
    return np.asarray(syn.w[:]).reshape(len(syn.source), len(syn.target)).T.copy()


def feedback_matrices(params: ModelParameters, weights: Weights) -> list:
    """The Y matrices that have their own synapses (none for symmetric feedback: it uses W)."""
    return [] if params.network.feedback in SYMMETRIC_FEEDBACK else weights.Y


@dataclass
class InitialState:
    """What a network starts from, drawn in numpy so that every device starts alike.

    Attributes
    ----------
    spike_u : dict
        Layer name -> the spike generators' first uniform draws, in (0, 1].
    plateau_offset : dict
        Hidden layer name -> per-neuron plateau offsets in steps (``stochastic_plateau`` only).
    feedback_noise : ndarray or None
        Noise of noisy-symmetric feedback, one value per top synapse (presynaptic-major).
    """

    spike_u: dict = field(default_factory=dict)
    plateau_offset: dict = field(default_factory=dict)
    feedback_noise: np.ndarray | None = None


def initial_state(params: ModelParameters, seed: int, objects: NetworkObjects) -> InitialState:
    """The state a network with this *seed* starts from (each part from its own seed sequence)."""
    net, cell, protocol = params.network, params.cell, params.protocol
    state = InitialState()
    if net.feedback == "noisy_symmetric":
        top = objects.forward_synapses[-1]
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x4E]))
        state.feedback_noise = net.symmetric_noise * rng.standard_normal(len(top.source) * len(top.target))
    if protocol.stochastic_plateau:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x0F]))
        sd = float(protocol.plateau_offset_sd / cell.dt)
        top = int(round(float(protocol.plateau_offset_max / cell.dt)))
        for hid in objects.hidden:
            offsets = np.minimum(np.abs(np.trunc(sd * rng.standard_normal(len(hid)))), top)
            state.plateau_offset[hid.name] = offsets.astype(np.int32)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5B]))
    state.spike_u = {g.name: 1.0 - rng.random(len(g)) for g in objects.layers}
    return state

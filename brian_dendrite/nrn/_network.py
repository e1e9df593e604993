"""The learning network in NEURON (internal).

Input cells (forced ``BDCell`` s replaying given spike trains), hidden pyramidal
layers and the output layer, one plastic ``BDSyn`` per feedforward connection
(updated by the clock's learning trigger: NMODL event code), fixed broadcast
feedback NetCons from every output cell to every hidden apical ``BDDend``.
"""

from __future__ import annotations

import numpy as np

from ..model import FORWARD, ModelParameters, PhaseSchedule, Weights, learning_scales
from ._cells import NrnModel

__all__ = ["NrnNetwork", "bernoulli_input_steps"]


def bernoulli_input_steps(images: np.ndarray, schedule: PhaseSchedule, p_max: float,
                          rng: np.random.Generator) -> list:
    """Spike steps of every input neuron: Bernoulli with probability ``p_max * pixel`` per step.

    The pixel is the current example's (``schedule.example``); idle steps are silent.
    The same process as the Brian2 input group's (specification 1.1, section 5 item 5),
    drawn in numpy so that both simulators can be given the same trains.
    """
    n = schedule.n_steps
    ex = np.asarray(schedule.example[:n])
    active = np.asarray(schedule.phase[:n]) >= FORWARD
    prob = p_max * np.asarray(images, dtype=float)[ex] * active[:, None]
    fired = rng.random(prob.shape) < prob
    return [np.flatnonzero(fired[:, j]) for j in range(fired.shape[1])]


class NrnNetwork:
    """A segregated-dendrite network as NEURON cells, trained on one schedule.

    Parameters
    ----------
    params : ModelParameters
    weights : Weights
        Initial weights (``W``, ``b``, ``Y``, ``c``).
    schedule : PhaseSchedule
        Training schedule (forward and target phase per example).
    input_steps : list of ndarray
        Spike steps of every input neuron (e.g. :func:`bernoulli_input_steps`).
    forced : dict, optional
        Layer name (``'hidden_0'``, ..., ``'output'``) -> one array of spike steps per
        neuron: those cells replay the given spikes instead of drawing their own.
    seed : int
        Seeds the Random123 streams of the freely spiking cells.

    Raises
    ------
    NotImplementedError
        For symmetric feedback, rate feedback or stochastic plateau times.
    """

    def __init__(self, params: ModelParameters, weights: Weights, schedule: PhaseSchedule, input_steps,
                 forced: dict | None = None, seed: int = 0):  # long: builds the whole network
        net = params.network
        if net.feedback in ("symmetric", "noisy_symmetric") or not net.feedback_spiking:
            raise NotImplementedError(f"feedback = {net.feedback!r} (spiking: {net.feedback_spiking}) is not "
                                      "implemented in the NEURON backend (random or sparse spiking feedback is)")
        if tuple(weights.layer_sizes) != tuple(net.layer_sizes):
            raise ValueError(f"weights have layer sizes {tuple(weights.layer_sizes)}, the model has {net.layer_sizes}")
        if len(input_steps) != net.n_input:
            raise ValueError(f"input_steps has {len(input_steps)} trains, expected n_input = {net.n_input}")
        forced = dict(forced or {})
        self.params = params
        self.model = model = NrnModel(params.cell, params.protocol, schedule, seed=seed)
        scales = learning_scales(params)
        self.names = [f"hidden_{m}" for m in range(len(net.hidden))] + ["output"]
        unknown = sorted(set(forced) - set(self.names))
        if unknown:
            raise ValueError(f"forced: unknown layer(s) {unknown}; layers are {self.names}")
        self.layers = {"input": [model.add_source(s) for s in input_steps]}
        for m, name in enumerate(self.names):
            kind = "output" if name == "output" else "pyramidal"
            apical = weights.c[m] if kind == "pyramidal" else np.zeros(net.n_output)
            cells = [model.add_cell(kind, basal_bias=weights.b[m][k], apical_bias=apical[k], learning_scale=scales[m],
                                    class_index=k) for k in range(len(weights.b[m]))]
            if name in forced:
                if len(forced[name]) != len(cells):
                    raise ValueError(f"forced[{name!r}] has {len(forced[name])} trains, the layer {len(cells)} neurons")
                for c, steps in zip(cells, forced[name], strict=True):
                    model.force_spikes(c, steps)
            self.layers[name] = cells
        order = ["input", *self.names]
        skip = float(net.skip_psp_below)
        self.synapses = []
        for m, (pre_name, post_name) in enumerate(zip(order[:-1], order[1:], strict=True)):
            W = np.asarray(weights.W[m])
            syns = [[model.connect_plastic(pre, post, W[k, j], skip) for j, pre in enumerate(self.layers[pre_name])]
                    for k, post in enumerate(self.layers[post_name])]
            self.synapses.append(syns)
        for m, name in enumerate(self.names[:-1]):
            Y = np.asarray(weights.Y[m])
            for k, post in enumerate(self.layers[name]):
                for j, pre in enumerate(self.layers["output"]):
                    if Y[k, j] != 0:
                        model.connect_fixed(pre, post.dend_a, Y[k, j])
        self._template = weights.copy()

    def run(self) -> None:
        """Simulate the schedule (learning at the end of every target phase)."""
        self.model.run()

    def get_weights(self) -> Weights:
        """The current forward weights and basal biases (``Y`` and ``c`` as given)."""
        w = self._template.copy()
        w.W = [np.array([[s.w for s in row] for row in syns]) for syns in self.synapses]
        w.b = [np.array([c.dend_b.bias for c in self.layers[name]]) for name in self.names]
        return w

    def cell_values(self, layer: str, variable: str) -> np.ndarray:
        """A ``BDCell`` variable (``V_mean_f``, ``s_mean_f``, ``alpha_f``, ``delta``, ...) of every neuron of a layer."""
        return np.array([getattr(c.cell, variable) for c in self.layers[layer]])

    def spike_counts(self, layer: str) -> np.ndarray:
        return self.cell_values(layer, "nspikes")

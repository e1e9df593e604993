"""The learning network in NEURON (internal).

Input cells (forced ``BDCell`` s replaying given spike trains), hidden pyramidal
layers and the output layer, one plastic ``BDSyn`` per feedforward connection
(updated by the clock's learning trigger: NMODL event code), fixed broadcast
feedback NetCons from every output cell to every hidden apical ``BDDend`` (random
or sparse ``Y``), or, for symmetric feedback, the output spikes sent back through
the output synapses themselves (``Y = W^T``, plus noise for noisy-symmetric).
Test phases (state zeroed after each image, window-mean readout) and stochastic
plateau times run as in the Brian2 network (:mod:`brian_dendrite.simulation._build`).
"""

from __future__ import annotations

import numpy as np

from ..model import FORWARD, TARGET, TEST, ModelParameters, PhaseSchedule, Weights, learning_scales
from ._cells import NrnModel

__all__ = ["NrnNetwork", "bernoulli_input_steps", "check_nrn_supported", "initial_plateau_offsets",
           "initial_feedback_noise"]

#: Feedback through the output synapses themselves (as ``simulation._build.SYMMETRIC_FEEDBACK``).
SYMMETRIC = ("symmetric", "noisy_symmetric")


def check_nrn_supported(params: ModelParameters) -> None:
    """Raise ``NotImplementedError`` naming why for what the NEURON network cannot build.

    The same combinations as the Brian2 spiking network refuses
    (:func:`brian_dendrite.simulation._build.check_supported`): symmetric feedback
    needs one hidden layer and the full kernel; rate feedback exists only in the
    rate model.
    """
    net = params.network
    if net.feedback in SYMMETRIC and (len(net.hidden) != 1 or params.cell.kernel != "full"):
        raise NotImplementedError(
            f"feedback = {net.feedback!r} with {len(net.hidden)} hidden layer(s) and kernel = "
            f"{params.cell.kernel!r}: the NEURON backend, like the Brian2 spiking network, implements "
            "Y = W^T through the output synapses for one hidden layer with the full kernel only")
    if not net.feedback_spiking:
        raise NotImplementedError(
            "feedback_spiking = false (rate feedback, A = Y phi_out): neither the NEURON backend nor the Brian2 "
            "spiking network implements it; only the rate model does (brian-dendrite train --kind rate)")


def initial_plateau_offsets(params: ModelParameters, seed: int) -> dict:
    """The first plateau offsets (steps) per hidden layer, drawn as the Brian2 network draws them
    (numpy, seed sequence ``[seed, 0x0F]``; ``stochastic_plateau`` only, else zeros)."""
    cell, protocol = params.cell, params.protocol
    names = [f"hidden_{m}" for m in range(len(params.network.hidden))]
    if not protocol.stochastic_plateau:
        return {name: np.zeros(n, dtype=int) for name, n in zip(names, params.network.hidden, strict=True)}
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x0F]))
    sd = float(protocol.plateau_offset_sd / cell.dt)
    top = int(round(float(protocol.plateau_offset_max / cell.dt)))
    return {name: np.minimum(np.abs(np.trunc(sd * rng.standard_normal(n))), top).astype(int)
            for name, n in zip(names, params.network.hidden, strict=True)}


def initial_feedback_noise(params: ModelParameters, seed: int) -> np.ndarray:
    """The first noise of noisy-symmetric feedback, (n_hidden, n_output), as the Brian2 network
    draws it (numpy, seed sequence ``[seed, 0x4E]``); zeros for other feedback."""
    net = params.network
    n_pre = net.hidden[-1] if net.hidden else net.n_input
    if net.feedback != "noisy_symmetric":
        return np.zeros((n_pre, net.n_output))
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x4E]))
    return (net.symmetric_noise * rng.standard_normal(n_pre * net.n_output)).reshape(n_pre, net.n_output)


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
    input_steps : list of ndarray or None
        Spike steps of every input neuron (e.g. :func:`bernoulli_input_steps`), replayed;
        ``None``: the input cells spike on their own inside NEURON at ``phi_max * pixel``
        of the current example of *images* (Bernoulli per step, Random123).
    forced : dict, optional
        Layer name (``'hidden_0'``, ..., ``'output'``) -> one array of spike steps per
        neuron: those cells replay the given spikes instead of drawing their own.
    seed : int
        Seeds the Random123 streams of the freely spiking cells (spikes, plateau offsets,
        feedback noise) and the numpy draws of the first offsets and noise.
    plateau_offsets : dict, optional
        ``stochastic_plateau`` replay: hidden layer name -> (n_phases, n_neurons) plateau
        offsets (steps) of every forward and target phase of the schedule, in order
        (e.g. read from a Brian2 run); the cells then draw none themselves.
    feedback_noise : ndarray, optional
        Noisy-symmetric feedback: (n_hidden, n_output) first noise, or
        (1 + n_updates, n_hidden, n_output): the first noise and the noise after every
        learning trigger (a replay; NEURON draws none). Default: the first noise as the
        Brian2 network draws it (:func:`initial_feedback_noise`), then NEURON's own draws.

    Raises
    ------
    NotImplementedError
        Where the Brian2 spiking network raises it too (:func:`check_nrn_supported`).
    """

    def __init__(self, params: ModelParameters, weights: Weights, schedule: PhaseSchedule, input_steps,
                 forced: dict | None = None, seed: int = 0, plateau_offsets: dict | None = None,
                 feedback_noise=None, images=None):  # long: builds the whole network
        net = params.network
        check_nrn_supported(params)
        if tuple(weights.layer_sizes) != tuple(net.layer_sizes):
            raise ValueError(f"weights have layer sizes {tuple(weights.layer_sizes)}, the model has {net.layer_sizes}")
        if input_steps is None:
            if images is None or np.ndim(images) != 2 or np.shape(images)[1] != net.n_input:
                raise ValueError(f"input_steps = None needs images of shape (n_examples, {net.n_input})")
        elif len(input_steps) != net.n_input:
            raise ValueError(f"input_steps has {len(input_steps)} trains, expected n_input = {net.n_input}")
        forced = dict(forced or {})
        self.params, self.schedule = params, schedule
        self.model = model = NrnModel(params.cell, params.protocol, schedule, seed=seed, test_reset=True,
                                      draw_offsets=plateau_offsets is None)
        scales = learning_scales(params)
        self.names = [f"hidden_{m}" for m in range(len(net.hidden))] + ["output"]
        unknown = sorted(set(forced) - set(self.names))
        if unknown:
            raise ValueError(f"forced: unknown layer(s) {unknown}; layers are {self.names}")
        first = initial_plateau_offsets(params, seed)
        if plateau_offsets is not None:
            first = {name: np.asarray(plateau_offsets[name])[0] for name in first}
        self.layers = {"input": self._inputs(input_steps, images)}
        for m, name in enumerate(self.names):
            kind = "output" if name == "output" else "pyramidal"
            apical = weights.c[m] if kind == "pyramidal" else np.zeros(net.n_output)
            offsets = first.get(name, np.zeros(len(weights.b[m]), dtype=int))
            cells = [model.add_cell(kind, basal_bias=weights.b[m][k], apical_bias=apical[k], learning_scale=scales[m],
                                    class_index=k, plateau_offset=offsets[k]) for k in range(len(weights.b[m]))]
            if name in forced:
                if len(forced[name]) != len(cells):
                    raise ValueError(f"forced[{name!r}] has {len(forced[name])} trains, the layer {len(cells)} neurons")
                for c, steps in zip(cells, forced[name], strict=True):
                    model.force_spikes(c, steps)
            self.layers[name] = cells
        if plateau_offsets is not None:
            self._play_offsets(plateau_offsets)
        self.symmetric = net.feedback in SYMMETRIC
        self.synapses = self._forward(weights, seed, feedback_noise)
        for m, name in enumerate([] if self.symmetric else self.names[:-1]):  # symmetric: through W, above
            Y = np.asarray(weights.Y[m])
            for k, post in enumerate(self.layers[name]):
                for j, pre in enumerate(self.layers["output"]):
                    if Y[k, j] != 0:
                        model.connect_fixed(pre, post.dend_a, Y[k, j])
        self._template = weights.copy()
        table = schedule.phase_table
        self._test_rows = table[table[:, 2] == TEST]
        self._readouts = None
        if len(self._test_rows):
            self._readouts = [(model.record(c.cell._ref_V_mean_test), model.record(c.cell._ref_rate_mean_test))
                              for c in self.layers["output"]]

    def _inputs(self, input_steps, images) -> list:
        """Replayed input cells, or (``input_steps`` None) cells spiking at ``phi_max * pixel``."""
        model = self.model
        if input_steps is not None:
            return [model.add_source(s) for s in input_steps]
        table = self.schedule.phase_table
        active = table[:, 2] >= FORWARD
        steps = np.append(table[:, 0], self.schedule.n_steps)  # silent from the end of the schedule
        pixels = np.asarray(images, dtype=float)[table[:, 3]] * active[:, None]
        rates = model.c["p_max"] / model.dt * np.vstack([pixels, np.zeros(pixels.shape[1])])
        return [model.add_bernoulli_source(steps, rates[:, j]) for j in range(rates.shape[1])]

    def _learning_steps(self) -> np.ndarray:
        table = self.schedule.phase_table
        rows = table[table[:, 2] == TARGET]
        return rows[:, 0] + rows[:, 1] - 1

    def _play_offsets(self, plateau_offsets: dict) -> None:
        """Replayed plateau offsets: the value of phase k is set at ``(start_k + 0.5) dt``."""
        table = self.schedule.phase_table
        starts = table[np.isin(table[:, 2], (FORWARD, TARGET)), 0]
        for name in self.names[:-1]:
            offsets = np.asarray(plateau_offsets[name])
            if offsets.shape != (len(starts), len(self.layers[name])):
                raise ValueError(f"plateau_offsets[{name!r}] has shape {offsets.shape}, expected "
                                 f"({len(starts)} forward/target phases, {len(self.layers[name])} neurons)")
            for k, c in enumerate(self.layers[name]):
                self.model.play(c.cell._ref_offset, starts, offsets[:, k])

    def _forward(self, weights: Weights, seed: int, feedback_noise) -> list:
        """The plastic synapses ``W_m``; for symmetric feedback the top ones also carry the feedback."""
        net, model = self.params.network, self.model
        order = ["input", *self.names]
        skip = float(net.skip_psp_below)
        noisy = net.feedback == "noisy_symmetric"
        noise = initial_feedback_noise(self.params, seed) if feedback_noise is None else np.asarray(feedback_noise)
        replay = noise.ndim == 3 and len(noise) > 1
        first = noise[0] if noise.ndim == 3 else noise
        draw_sd = float(net.symmetric_noise) if noisy and not replay else 0.0
        synapses = []
        for m, (pre_name, post_name) in enumerate(zip(order[:-1], order[1:], strict=True)):
            W = np.asarray(weights.W[m])
            top = self.symmetric and post_name == "output"
            # noisy symmetric: every top synapse learns and redraws at each trigger, whatever s_mean_f_pre
            top_skip = -np.inf if (top and noisy) else skip
            syns = [[model.connect_plastic(pre, post, W[k, j], top_skip, symmetric=top, noise=first[j, k] if top else 0.0,
                                           noise_sd=draw_sd, stream=j * len(self.layers[post_name]) + k)
                     for j, pre in enumerate(self.layers[pre_name])]
                    for k, post in enumerate(self.layers[post_name])]
            synapses.append(syns)
        if self.symmetric and noisy and replay:
            steps = self._learning_steps()
            if noise.shape[0] != len(steps) + 1 or noise.shape[1:] != first.shape:
                raise ValueError(f"feedback_noise has shape {noise.shape}, expected ({len(steps) + 1}, "
                                 f"{first.shape[0]}, {first.shape[1]}) for {len(steps)} learning triggers")
            for k, row in enumerate(synapses[-1]):
                for j, syn in enumerate(row):
                    model.play(syn._ref_ynoise, steps, noise[1:, j, k], fraction=0.97)
        return synapses

    def run(self) -> None:
        """Simulate the schedule (learning at the end of every target phase)."""
        self.model.run()

    def get_weights(self) -> Weights:
        """The current forward weights and basal biases (``Y`` and ``c`` as given; symmetric
        feedback: ``Y = W_out^T`` plus the current noise)."""
        w = self._template.copy()
        w.W = [np.array([[s.w for s in row] for row in syns]) for syns in self.synapses]
        w.b = [np.array([c.dend_b.bias for c in self.layers[name]]) for name in self.names]
        if self.symmetric:
            w.Y = [w.W[-1].T + self.feedback_noise()]
        return w

    def feedback_noise(self) -> np.ndarray:
        """The current noise of symmetric feedback, (n_hidden, n_output) (zeros unless noisy)."""
        return np.array([[s.ynoise for s in row] for row in self.synapses[-1]]).T

    def test_readout(self) -> tuple[np.ndarray, np.ndarray]:
        """``V_mean`` and ``rate_mean`` (n_test_phases, n_output) of the output layer at the end of
        every test phase (the window means the Brian2 readout monitor records)."""
        if self._readouts is None:
            raise ValueError("the schedule has no test phase")
        ends = self._test_rows[:, 0] + self._test_rows[:, 1] - 1
        # the bookkeeping of step e shows at recording index e + 2
        V = np.array([np.asarray(v)[ends + 2] for v, _ in self._readouts]).T
        R = np.array([np.asarray(r)[ends + 2] for _, r in self._readouts]).T
        return V, R

    def cell_values(self, layer: str, variable: str) -> np.ndarray:
        """A ``BDCell`` variable (``V_mean_f``, ``s_mean_f``, ``alpha_f``, ``delta``, ...) of every neuron of a layer."""
        return np.array([getattr(c.cell, variable) for c in self.layers[layer]])

    def spike_counts(self, layer: str) -> np.ndarray:
        return self.cell_values(layer, "nspikes")

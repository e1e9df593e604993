"""The spiking network: input -> hidden layer(s) -> output, broadcast feedback, learning.

One explicit ``brian2.Network`` holds the layers, the feedforward synapses (with
the learning pathway), the feedback synapses from the output layer to every
hidden layer's apical dendrite (fixed weights ``Y``, MODEL.md 1.5) and the
monitors of the phase-end readouts. A stretch of training (many examples, both
phases, the weight updates) or a whole test pass is ONE ``run()``: the images
of the stretch and its phase schedule are swapped into the groups' namespaces
as ``TimedArray`` s of fixed shape, so the generated code is reused between
stretches (BRIAN2-NOTES.md, item 1).

Decisions (MODEL.md section 5) that differ from the published code and are not
parameters yet:

* a spike emitted in step ``t`` reaches the next layer's traces in step ``t`` and
  its potential from step ``t + 1`` (the published code adds ``kappa(1)`` in the same
  step), one step of delay per layer, feedforward and feedback alike (item 6);
* spikes are Bernoulli per step (item 5);
* before every test image all state is zeroed (item 7); with the truncated
  kernel a pending truncation of the previous image can perturb the first
  ``kernel_cutoff`` of a test phase, which lies in the settling period.
"""

from __future__ import annotations

import logging

import brian2
import numpy as np
from brian2 import Equations, EventMonitor, Network, SpikeMonitor, StateMonitor, TimedArray, ms, second

from .initialization import Weights, initial_weights
from .neurons import input_group, output_group, pyramidal_group
from .parameters import ModelParameters
from .plasticity import HIDDEN_DELTA, LEARN_CONDITION, OUTPUT_DELTA, WEIGHT_UPDATE, learning_scales
from .recording import PlateauEvents, Potentials, RunRecording, SpikeTrains
from .schedule import TEST, PhaseSchedule
from .synapses import kernel_synapses, own_trace_truncation

__all__ = ["SpikingNetwork", "TestResult"]

logger = logging.getLogger("brian2.brian_dendrite.network")

#: Zero every state variable of a layer at the end of a test phase (after its spikes were handled).
_TEST_RESET_VARS = ("V_soma", "x_basal_L", "x_basal_s", "x_apical_L", "x_apical_s", "y_L", "y_s")
_TEST_RESET_CONDITION = "phase == 2 and steps_left == 0"

#: Idle padding per example in a training chunk's schedule: room for the Wald extras of
#: both phases without changing array shapes (the sum over a chunk is far below it).
_PAD_PER_EXAMPLE = 50 * ms


class TestResult:
    """Per-example readouts of a test pass.

    Attributes
    ----------
    V_mean, rate_mean : ndarray (n_examples, n_output)
        Window-mean somatic potential and rate (fraction of phi_max) of the output layer.
    predictions : ndarray (n_examples,)
    labels : ndarray or None
    """

    def __init__(self, V_mean, rate_mean, readout, labels=None):
        self.V_mean = V_mean
        self.rate_mean = rate_mean
        self.readout = readout
        score = V_mean if readout == "voltage" else rate_mean
        self.predictions = np.argmax(score, axis=1)
        self.labels = None if labels is None else np.asarray(labels)

    @property
    def error(self) -> float:
        """Percentage of misclassified examples."""
        if self.labels is None:
            raise ValueError("no labels were given to the test")
        return float(100.0 * np.mean(self.predictions != self.labels))


def _reset_code(group) -> str:
    return "\n".join(f"{v} = 0" for v in _TEST_RESET_VARS if v in group.variables)


class SpikingNetwork:
    """The segregated-dendrite network as one Brian2 ``Network``.

    Parameters
    ----------
    params : ModelParameters
    weights : Weights, optional
        Initial weights; drawn with :func:`initial_weights` from *seed* if omitted.
    seed : int
        Seeds the weight initialisation, the phase lengths and Brian2's random numbers.
    chunk_size : int
        Examples per training ``run()``; fixes the shapes of the chunk's arrays.
    test_chunk_size : int
        Images per test ``run()``.

    Notes
    -----
    Runs on the current Brian2 device and code-generation target
    (``brian2.prefs.codegen.target``: 'cython' or 'numpy').
    """

    def __init__(
        self,
        params: ModelParameters,
        weights: Weights | None = None,
        seed: int = 0,
        chunk_size: int = 1000,
        test_chunk_size: int = 1000,
    ):
        net = params.network
        if net.feedback in ("symmetric", "noisy_symmetric") and len(net.hidden) > 1:
            raise NotImplementedError(
                f"feedback = {net.feedback!r} with {len(net.hidden)} hidden layers is not implemented in the "
                "spiking network yet (Y = W^T through the output synapses works for one hidden layer)"
            )
        if net.feedback == "noisy_symmetric":
            raise NotImplementedError("feedback = 'noisy_symmetric' is not implemented in the spiking network yet")
        if not net.feedback_spiking:
            raise NotImplementedError("feedback_spiking = false (rate feedback) is not implemented in the spiking network yet")
        if int(chunk_size) < 1 or int(test_chunk_size) < 1:
            raise ValueError("chunk_size and test_chunk_size must be positive")
        self.params = params
        self.seed = int(seed)
        self.chunk_size = int(chunk_size)
        self.test_chunk_size = int(test_chunk_size)
        cell, protocol = params.cell, params.protocol
        if weights is None:
            weights = initial_weights(params, np.random.default_rng(np.random.SeedSequence([self.seed, 0xD1])))
        self._check_weights(weights)
        n_in = net.n_input
        self._dt = cell.dt
        # Fixed-shape placeholders; replaced before every run.
        self._train_capacity = int(round(float(self.chunk_size * (2 * protocol.phase_min + _PAD_PER_EXAMPLE) / cell.dt)))
        self._arrays = PhaseSchedule.from_phases([("idle", 1, 0, 0)], protocol, dt=cell.dt).timed_arrays()
        images = TimedArray(np.zeros((1, n_in)), dt=1 * ms, name="images")
        learn_event = {"learn": LEARN_CONDITION, "test_reset": _TEST_RESET_CONDITION}
        delta_eqs = Equations("delta : 1")
        self.input = input_group(n_in, cell, self._arrays, images, name="input", extra_events=learn_event)
        self.hidden = [
            pyramidal_group(n, cell, protocol, self._arrays, name=f"hidden_{m}", extra_equations=delta_eqs,
                            extra_events=learn_event)
            for m, n in enumerate(net.hidden)
        ]
        self.output = output_group(net.n_output, cell, self._arrays, name="output", extra_equations=delta_eqs,
                                   extra_events=learn_event)
        self.layers = [self.input, *self.hidden, self.output]
        scales = learning_scales(params)
        for group, scale in zip(self.layers[1:], scales, strict=True):
            group.namespace["learning_scale"] = scale
            group.run_on_event("learn", HIDDEN_DELTA if group is not self.output else OUTPUT_DELTA,
                               when="before_synapses", order=2)
        for group in self.layers:
            group.run_on_event("test_reset", _reset_code(group), when="after_resets")
        objects = list(self.layers)
        self.forward_synapses = []
        symmetric = net.feedback == "symmetric"
        for m, (pre, post) in enumerate(zip(self.layers[:-1], self.layers[1:], strict=True)):
            extra = {"learn": WEIGHT_UPDATE}
            events = {"learn": "learn"}
            top = m == len(self.layers) - 2 and len(self.hidden) == 1
            if symmetric and top:
                # Y = W^T: output spikes travel back through the same synapses.
                extra["feedback"] = "x_apical_L_pre += w\nx_apical_s_pre += w"
            syn = kernel_synapses(pre, post, "basal", cell, extra_pathways=extra, extra_events=events,
                                  name=f"W_{m}")
            if symmetric and top:
                syn.feedback.event = "spike"
                syn._pathways_by_name = None
            syn.connect()
            self.forward_synapses.append(syn)
            objects.append(syn)
        if symmetric:
            self._make_symmetric_feedback_pathway()
        self.feedback_synapses = []
        if not symmetric:
            for m, hid in enumerate(self.hidden):
                fb = kernel_synapses(self.output, hid, "apical", cell, name=f"Y_{m}")
                fb.connect()
                self.feedback_synapses.append(fb)
                objects.append(fb)
        for group in self.layers:
            trunc = own_trace_truncation(group, cell)
            if trunc is not None:
                objects.append(trunc)
        self._readout = EventMonitor(self.output, "phase_end", variables=["V_mean_test", "rate_mean_test", "phase"],
                                     when="after_synapses", name="readout")
        objects.append(self._readout)
        self.net = Network(*objects, name="segregated_dendrite_network")
        self._check_connectivity_order()
        self.set_weights(weights)
        self.examples_trained = 0

    # ------------------------------------------------------------------ weights
    def _check_weights(self, weights: Weights) -> None:
        sizes = self.params.network.layer_sizes
        if tuple(weights.layer_sizes) != tuple(sizes):
            raise ValueError(f"weights have layer sizes {tuple(weights.layer_sizes)}, the model has {tuple(sizes)}")

    def _make_symmetric_feedback_pathway(self):  # pragma: no cover - placeholder guard
        raise NotImplementedError("feedback = 'symmetric' is not implemented in the spiking network yet")

    def _check_connectivity_order(self) -> None:
        """``w`` is stored in presynaptic-major order for all-to-all connect(); rely on it, but verify."""
        for syn in self.forward_synapses + self.feedback_synapses:
            n_post = len(syn.target)
            i, j = np.asarray(syn.i[:]), np.asarray(syn.j[:])
            k = np.arange(len(i))
            if not (np.array_equal(i, k // n_post) and np.array_equal(j, k % n_post)):
                raise RuntimeError(f"unexpected synapse order in {syn.name}")

    def set_weights(self, weights: Weights) -> None:
        """Write ``W``, ``b``, ``Y`` and ``c`` into the simulation."""
        self._check_weights(weights)
        for syn, W in zip(self.forward_synapses, weights.W, strict=True):
            syn.w[:] = np.ascontiguousarray(np.asarray(W, dtype=float).T).ravel()
        for group, b in zip(self.layers[1:], weights.b, strict=True):
            group.b_basal[:] = np.asarray(b, dtype=float)
        for fb, Y in zip(self.feedback_synapses, weights.Y, strict=True):
            # Y^m is (n_hidden_m, n_output); synapses go output -> hidden (presynaptic-major).
            fb.w[:] = np.ascontiguousarray(np.asarray(Y, dtype=float).T).ravel()
        for hid, c in zip(self.hidden, weights.c, strict=True):
            hid.c_apical[:] = np.asarray(c, dtype=float)
        self._weights_template = weights

    def get_weights(self) -> Weights:
        """The current weights as a :class:`Weights` (copies)."""
        w = self._weights_template.copy()
        w.W = [
            np.asarray(syn.w[:]).reshape(len(syn.source), len(syn.target)).T.copy() for syn in self.forward_synapses
        ]
        w.b = [np.asarray(g.b_basal[:]).copy() for g in self.layers[1:]]
        return w

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict:
        """All non-weight state variables (potentials, traces, window sums), for checkpoints."""
        state = {}
        for group in self.layers:
            for name, value in group.get_states(units=False, read_only_variables=False).items():
                if name in ("b_basal", "c_apical", "class_index"):
                    continue
                state[f"{group.name}.{name}"] = np.asarray(value).copy()
        return state

    def set_state(self, state: dict) -> None:
        for group in self.layers:
            values = {k.split(".", 1)[1]: v for k, v in state.items() if k.split(".", 1)[0] == group.name}
            if values:
                group.set_states(values, units=False)

    # ------------------------------------------------------------------ running
    def _install(self, schedule: PhaseSchedule, images: np.ndarray) -> None:
        arrays = schedule.timed_arrays()
        image_array = TimedArray(images, dt=1 * ms, name="images")
        for group in self.layers:
            group.namespace.update(arrays)
        self.input.namespace["images"] = image_array

    def _seed(self, *keys) -> None:
        seq = np.random.SeedSequence([self.seed, *keys])
        brian2.seed(int(seq.generate_state(1)[0]))

    def train_chunk(self, images: np.ndarray, labels: np.ndarray, key: tuple = (), report=None) -> None:
        """Train on up to ``chunk_size`` examples in one ``run()`` (state carried over).

        ``key`` (e.g. ``(epoch, chunk)``) seeds the phase lengths and the spikes so
        that a chunk is reproducible on its own (resume).
        """
        n = len(labels)
        if n > self.chunk_size:
            raise ValueError(f"{n} examples exceed chunk_size = {self.chunk_size}")
        padded = np.zeros((self.chunk_size, self.params.network.n_input))
        padded[:n] = images
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x5C, *key]))
        schedule = PhaseSchedule.training(labels, self.params.protocol, self._dt, rng, capacity=self._train_capacity)
        self._install(schedule, padded)
        self._seed(0x7A, *key)
        self.net.t_ = 0.0
        self.net.run(schedule.duration, report=report, namespace={})
        self.examples_trained += n
        self.last_schedule = schedule

    def test(self, images: np.ndarray, labels=None, key: tuple = (), report=None) -> TestResult:
        """Test every image (state zeroed before each; no learning); one ``run()`` per test chunk.

        The training state (potentials, traces) is saved before and restored after.
        """
        saved = self.get_state()
        n_out = self.params.network.n_output
        V, R = [], []
        for start in range(0, len(images), self.test_chunk_size):
            block = images[start : start + self.test_chunk_size]
            n = len(block)
            padded = np.zeros((self.test_chunk_size, self.params.network.n_input))
            padded[:n] = block
            schedule = PhaseSchedule.test(n, self.params.protocol, self._dt)
            # fixed capacity so that chunks of any size reuse the generated code
            schedule = PhaseSchedule._from_table(
                schedule.phase_table, self.params.protocol, self._dt,
                capacity=self.test_chunk_size * int(round(float(self.params.protocol.test_duration / self._dt))),
            )
            self._install(schedule, padded)
            for group in self.layers:
                group.set_states({v: np.zeros(len(group)) for v in _TEST_RESET_VARS if v in group.variables},
                                 units=False)
            self._seed(0x7E, *key, start)
            self._readout.active = True
            n_before = len(self._readout.t)
            self.net.t_ = 0.0
            self.net.run(schedule.duration, report=report, namespace={})
            self.last_schedule = schedule
            phase = np.asarray(self._readout.phase[n_before:])
            v = np.asarray(self._readout.V_mean_test[n_before:])[phase == TEST].reshape(n, n_out)
            r = np.asarray(self._readout.rate_mean_test[n_before:])[phase == TEST].reshape(n, n_out)
            V.append(v)
            R.append(r)
        self._readout.active = False
        self.set_state(saved)
        return TestResult(np.concatenate(V), np.concatenate(R), self.params.protocol.readout, labels)

    # ------------------------------------------------------------------ recording
    def record(self, images, labels, mode: str = "train", potentials: dict | None = None,
               variables=("V_soma", "V_basal", "V_apical"), key: tuple = (), stimulus=None) -> RunRecording:
        """Run one stretch (``'train'``: learning on; ``'test'``: no learning) with monitors.

        Monitors exist only during this call, so unrecorded runs pay nothing.

        Parameters
        ----------
        images, labels : ndarray
            At most ``chunk_size`` (train) or ``test_chunk_size`` (test) examples.
        potentials : dict, optional
            Layer name (``'hidden_0'``, ``'output'``) -> neuron indices whose
            compartment potentials are recorded; spikes of all layers and the
            plateaus of all hidden layers are always recorded.
        stimulus : array, optional
            Dataset index of every example (provenance in the recording).
        """
        if mode not in ("train", "test"):
            raise ValueError(f"mode = {mode!r}: expected 'train' or 'test'")
        limit = self.chunk_size if mode == "train" else self.test_chunk_size
        if len(labels) > limit:
            raise ValueError(f"{len(labels)} examples exceed the {mode} chunk size {limit}")
        by_name = {g.name: g for g in self.layers}
        potentials = dict(potentials or {})
        unknown = sorted(set(potentials) - set(by_name))
        if unknown:
            raise ValueError(f"unknown layer(s) {unknown}; layers are {sorted(by_name)}")
        monitors = {}
        for g in self.layers:
            monitors[("spikes", g.name)] = SpikeMonitor(g, name=f"record_spikes_{g.name}")
        for g in self.hidden:
            monitors[("plateaus", g.name)] = EventMonitor(g, "plateau", variables=["alpha_f", "alpha_t", "phase"],
                                                          when="after_synapses", name=f"record_plateaus_{g.name}")
        for layer, neurons in potentials.items():
            g = by_name[layer]
            neurons = np.asarray(neurons, dtype=int)
            if neurons.size and (neurons.min() < 0 or neurons.max() >= len(g)):
                raise ValueError(f"{layer}: neuron indices must lie in [0, {len(g)})")
            present = [v for v in variables if v in g.variables]
            monitors[("state", layer)] = StateMonitor(g, present, record=neurons, when="before_thresholds",
                                                      name=f"record_state_{layer}")
        self.net.add(*monitors.values())
        try:
            if mode == "train":
                self.train_chunk(images, labels, key=key)
            else:
                self.test(images, labels, key=key)
        finally:
            self.net.remove(*monitors.values())
        schedule = self.last_schedule
        rec = RunRecording(dt=self._dt, duration=schedule.duration,
                           layer_sizes={g.name: len(g) for g in self.layers})
        for (kind, layer), mon in monitors.items():
            if kind == "spikes":
                rec.spikes[layer] = SpikeTrains(mon.t[:], np.asarray(mon.i[:]), len(by_name[layer]))
            elif kind == "plateaus":
                phase = np.asarray(mon.phase[:])
                alpha = np.where(phase == 0, mon.alpha_f[:], mon.alpha_t[:])
                rec.plateaus[layer] = PlateauEvents(mon.t[:], np.asarray(mon.i[:]), alpha, phase)
            else:
                rec.potentials[layer] = {v: Potentials(mon.t[:], np.asarray(mon.record), np.asarray(getattr(mon, v)))
                                         for v in mon.record_variables}
        table = schedule.phase_table
        dt_s = float(self._dt / second)
        rec.phases = np.column_stack([table[:, 0] * dt_s, (table[:, 0] + table[:, 1]) * dt_s, table[:, 2:5]])
        rec.stimulus = np.full(len(labels), -1, dtype=np.int64) if stimulus is None else np.asarray(stimulus)
        rec.metadata = {"model": self.params.to_toml(), "seed": self.seed, "mode": mode, "key": list(key),
                        "target": brian2.prefs.codegen.target, "examples_trained_before": self.examples_trained}
        return rec

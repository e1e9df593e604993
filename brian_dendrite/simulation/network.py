"""The spiking network: input -> hidden layer(s) -> output, broadcast feedback, learning.

One explicit ``brian2.Network`` holds the layers, the feedforward synapses (with
the learning pathway), the feedback synapses from the output layer to every
hidden layer's apical dendrite (fixed weights ``Y``, specification 1.5) and the
monitors of the phase-end readouts (built by :mod:`brian_dendrite.simulation._build`). A stretch of
training (many examples, both phases, the weight updates) or a whole test pass is
ONE ``run()``: the images of the stretch and its phase schedule are swapped into
the groups' namespaces as ``TimedArray`` s of fixed shape, so the generated code is
reused between stretches (BRIAN2-NOTES.md, item 1).

Two devices, each behind an adapter with the same methods (write and read the
weights and the state, run one schedule):

* ``device='runtime'`` (numpy or Cython, ``brian2.prefs.codegen.target``;
  :mod:`brian_dendrite.simulation._runtime`):
  every chunk or test block is one ``Network.run()``; its ``TimedArray`` s are
  swapped into the namespaces (fixed shapes, so the generated code is cached).
* ``device='cpp_standalone'`` (:mod:`brian_dendrite.simulation._standalone`): the project is generated and
  compiled once (``make -j2``) for a fixed run of ``standalone_capacity(chunk_size)``
  steps (a later process with the same network reuses the compiled build without
  generating it, :mod:`brian_dendrite.simulation._warm`); every chunk (and every test block of as many 250-ms images as fit) is one
  run of that binary with ``run_args``: weights, all state variables, the images and
  the schedule. The binary seeds its random generators from the environment
  variable ``BRIAN_DENDRITE_SEED`` (code inserted in ``main``), so each run is
  reproducible. The all-to-all pathways (spike delivery, weight updates) are built
  with dense-row delivery (:mod:`brian_dendrite.simulation._dense`: bit-identical to
  Brian2's generic synapse code, about 1.7x less CPU time per training example;
  ``dense_pathways=False`` switches it off); the rate loops call glibc's SIMD ``exp``
  (other last bits; ``vector_exp=False`` for scalar ``exp``). A chunk ends with idle
  padding (silent input, no learning, the
  neurons relax towards their biases) for the steps its random phase lengths did
  not use: about 1.5 % of the run with 1,000 examples per chunk. This padding is
  the one difference between the devices' dynamics; state is carried over
  through it.

Decisions (specification section 5) that differ from the published code and are not
parameters yet:

* a spike emitted in step ``t`` reaches the next layer's traces in step ``t``, its
  dendritic potentials from step ``t + 1`` and its soma from step ``t + 2`` (the
  published code adds ``kappa(1)`` to the soma's input in the same step): two
  steps of delay per layer, feedforward and feedback alike (item 6);
* spikes are Bernoulli per step (item 5);
* before every test image all state is zeroed (item 7); with the truncated
  kernel a pending truncation of the previous image can perturb the first
  ``kernel_cutoff`` of a test phase, which lies in the settling period.
"""

from __future__ import annotations

from contextlib import nullcontext

import brian2
import numpy as np
from brian2 import EventMonitor, SpikeMonitor, StateMonitor, TimedArray, ms, second

from ..model import FORWARD, TEST, ModelParameters, PhaseSchedule, Weights, initial_weights
from ._build import SYMMETRIC_FEEDBACK, TEST_RESET_VARS, build_network, check_supported, initial_state
from ._dense import use_dense_pathways, use_step_code
from ._runtime import RuntimeAdapter
from ._standalone import StandaloneAdapter, deferred_assignments, standalone_capacity, use_standalone_device
from .recording import PlateauEvents, Potentials, RunRecording, SpikeTrains

__all__ = ["SpikingNetwork", "TestResult"]

#: Variables that belong to the weights (saved with them), not to the dynamic state.
_WEIGHT_LIKE = ("b_basal", "c_apical", "class_index")

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
    device : {'runtime', 'cpp_standalone'}
        Runtime code generation (target from ``brian2.prefs.codegen.target``) or a
        standalone binary compiled once and re-run per chunk.
    build_dir : path, optional
        Standalone project directory. If it holds a finished build of the same project
        (same fingerprint: the package's source, Brian2 and its preferences, the
        generated objects), the binary is reused as it is; otherwise Brian2 generates
        the project and ``make`` recompiles what changed. Without it, a temporary
        directory is built.
    profile : bool
        Time every code object (Brian2 ``profile=True``); the sums over all runs are
        in :attr:`profile_seconds`. Changes the generated code, so builds with and
        without profiling are different builds.
    dense_pathways : bool
        Technical setting of the cpp_standalone device, not a model parameter: deliver
        the events of the all-to-all pathways (spikes into the traces, the weight
        updates) by rows of contiguous synapses instead of through Brian2's spike
        queue and generic synapse loop (:mod:`~brian_dendrite.simulation._dense`);
        bit-identical results; with it, the neurons' per-step loops are built with
        vectorisable and guarded templates (:func:`~brian_dendrite.simulation._dense.use_step_code`).
        ``False`` builds Brian2's generic code. Ignored by the runtime device.
    vector_exp : bool
        Technical setting of the cpp_standalone device with ``dense_pathways``: the
        rate loops of the pyramidal and output groups (``<group>_rate``, whose one
        libm call is ``exp``) are vectorised with glibc's SIMD ``exp`` (libmvec), about
        3 ns less per neuron and step (profile of 784-500-10). A last-bits change: some
        rates differ from scalar ``exp`` by a few ulp (up to 4 in a micro-benchmark,
        up to 2 in the slow test), and so, slightly, everything
        downstream (no other libm call and no other loop; see
        :mod:`~brian_dendrite.simulation._dense`). ``False`` calls glibc's scalar
        ``exp``, bit-identical to Brian2's generic code (``dense_pathways=False``,
        which ignores this setting) and to builds made before this option existed.
        Ignored by the runtime device.

    Attributes
    ----------
    input, output : NeuronGroup
    hidden : list of NeuronGroup
        The layers, bottom to top (``layers``: all of them, input first).
    forward_synapses, feedback_synapses : list of Synapses
        ``W_m`` (layer ``m`` -> ``m + 1``) and ``Y_m`` (output -> hidden layer ``m``;
        none for symmetric feedback).
    net : brian2.Network
        Holds every object; monitors added to it are recorded in the next runs.
    examples_trained : int
    last_schedule : PhaseSchedule or None
        The schedule of the last run.
    profile_seconds : dict
        Seconds per code object summed over the runs (``profile=True`` only).
    build_seconds : float
        Time to generate and compile the standalone project, or to check that the
        cached build in ``build_dir`` is the same project (cpp_standalone only).
    build_reused : bool
        Whether the cached build in ``build_dir`` was reused without generating the
        project (same fingerprint, :mod:`~brian_dendrite.simulation._warm`).
    vector_exp : bool
        Whether the rate loops were built with the SIMD ``exp`` (cpp_standalone with
        ``dense_pathways`` and ``vector_exp``).
    timings : dict
        Seconds of the last run of the standalone binary: ``binary_s``,
        ``binary_cpu_s`` and ``collect_s`` (cpp_standalone only, after a run).

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
        device: str = "runtime",
        build_dir=None,
        profile: bool = False,
        dense_pathways: bool = True,
        vector_exp: bool = True,
    ):
        if device not in ("runtime", "cpp_standalone"):
            raise ValueError(f"device = {device!r}: expected 'runtime' or 'cpp_standalone'")
        check_supported(params)
        if int(chunk_size) < 1 or int(test_chunk_size) < 1:
            raise ValueError("chunk_size and test_chunk_size must be positive")
        self.params = params
        self.profile = bool(profile)
        #: Seconds spent per code object, summed over the runs so far (``profile=True`` only).
        self.profile_seconds: dict[str, float] = {}
        self.seed = int(seed)
        self.chunk_size = int(chunk_size)
        self.test_chunk_size = int(test_chunk_size)
        if weights is None:
            weights = initial_weights(params, np.random.default_rng(np.random.SeedSequence([self.seed, 0xD1])))
        self._check_weights(weights)
        self._dt = params.cell.dt
        self.device = device
        self.standalone = device == "cpp_standalone"
        if self.standalone:
            use_standalone_device(build_dir)  # before any Brian2 object is made
        self._set_capacities()
        # standalone: the string assignments' code is generated only if the project is (not for a reused build)
        with deferred_assignments() if self.standalone else nullcontext() as deferred:
            self._build_objects()
        #: Names of the pathways built with dense-row delivery (cpp_standalone only).
        self.dense_pathways = []
        if self.standalone and dense_pathways:
            for syn in [*self.forward_synapses, *self.feedback_synapses]:
                self.dense_pathways += use_dense_pathways(syn)
            use_step_code(self.layers, vector_exp=vector_exp)  # the neurons' per-step loops (same switch)
        #: Whether the rate loops call the SIMD exp (libmvec); entered into the build's fingerprint.
        self.vector_exp = bool(self.standalone and dense_pathways and vector_exp)
        self.examples_trained = 0
        self.last_schedule = None
        if self.standalone:
            self._adapter = StandaloneAdapter(self._objects, params, self._run_capacity, self._image_rows, self.profile,
                                              deferred.assignments, options=(f"vector_exp={self.vector_exp}",))
        else:
            self._adapter = RuntimeAdapter(self._objects, params, self.profile)
        self._adapter.initialize(initial_state(params, self.seed, self._objects))
        self.set_weights(weights)
        #: Whether the standalone project was reused from ``build_dir`` without being generated.
        self.build_reused = False
        if self.standalone:
            self.build_seconds = self._adapter.build(build_dir)
            self.build_reused = self._adapter.reused_build

    def _set_capacities(self) -> None:
        """Steps per training run, steps per run of the build and rows of the image array.

        Runtime: a training chunk's arrays have room for the longest phases; a test
        block is ``test_chunk_size`` images. Standalone: every run has the build's
        steps, and a test block is as many images as fit in them.
        """
        protocol = self.params.protocol
        if self.standalone:
            self._train_capacity = standalone_capacity(self.chunk_size, protocol, self._dt)
            test_steps = int(round(float(protocol.test_duration / self._dt)))
            self.test_chunk_size = max(1, self._train_capacity // test_steps)
            self._run_capacity = self._train_capacity
            self._image_rows = max(self.chunk_size, self.test_chunk_size)
        else:
            steps = self.chunk_size * (2 * protocol.phase_min + _PAD_PER_EXAMPLE) / self._dt
            self._train_capacity = int(round(float(steps)))
            self._run_capacity = 1
            self._image_rows = 1

    def _build_objects(self) -> None:
        """Make the Brian2 objects (:func:`~brian_dendrite.simulation._build.build_network`) and name the parts."""
        # Runtime: placeholders replaced before every run. Standalone: the arrays of the
        # build, whose values are passed to every run of the binary (run_args).
        arrays = PhaseSchedule.from_phases([("idle", self._run_capacity, 0, 0)], self.params.protocol,
                                           dt=self._dt).timed_arrays()
        images = TimedArray(np.zeros((self._image_rows, self.params.network.n_input)), dt=1 * ms, name="images")
        # standalone: connect() only if the project is generated (not for a reused build)
        self._objects = objects = build_network(self.params, arrays, images, connect=not self.standalone)
        self.input, self.hidden, self.output = objects.input, objects.hidden, objects.output
        self.layers = objects.layers
        self.forward_synapses = objects.forward_synapses
        self.feedback_synapses = objects.feedback_synapses
        self._readout = objects.readout
        self.net = objects.network

    # ------------------------------------------------------------------ weights
    def _check_weights(self, weights: Weights) -> None:
        sizes = self.params.network.layer_sizes
        if tuple(weights.layer_sizes) != tuple(sizes):
            raise ValueError(f"weights have layer sizes {tuple(weights.layer_sizes)}, the model has {tuple(sizes)}")
        weights.check_finite()

    def set_weights(self, weights: Weights) -> None:
        """Write ``W``, ``b``, ``Y`` and ``c`` into the simulation."""
        self._check_weights(weights)
        self._weights_template = weights.copy()
        self._adapter.write_weights(weights)

    def get_weights(self) -> Weights:
        """The current weights as a :class:`Weights` (copies)."""
        w = self._weights_template.copy()
        w.W, w.b = self._adapter.read_weights()
        return self._symmetric(w)

    def _symmetric(self, w: Weights) -> Weights:
        """Y of symmetric feedback is W_out^T (noisy: plus the current noise, see ``feedback_noise``)."""
        if self.params.network.feedback in SYMMETRIC_FEEDBACK:
            w.Y = [w.W[-1].T.copy() + self.feedback_noise()]
        return w

    def feedback_noise(self) -> np.ndarray:
        """The current noise of noisy-symmetric feedback, (n_hidden, n_output); zeros otherwise."""
        top = self.forward_synapses[-1]
        shape = (len(top.source), len(top.target))
        if self.params.network.feedback != "noisy_symmetric":
            return np.zeros(shape)
        return self._adapter.feedback_noise(shape)

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict:
        """All non-weight state variables (potentials, traces, window sums), for checkpoints."""
        return {k: v for k, v in self._adapter.read_state().items() if k.split(".", 1)[1] not in _WEIGHT_LIKE}

    def set_state(self, state: dict) -> None:
        """Restore what :meth:`get_state` returned.

        The spike generators' ``spike_u`` must lie in (0, 1] (a neuron with 0 would
        never spike again): to start from a zero state use :meth:`reset_state`.
        """
        for k, v in state.items():
            if k.endswith(".spike_u"):
                u = np.asarray(v, dtype=float)
                if u.size and not (np.all(u > 0) and np.all(u <= 1)):
                    raise ValueError(
                        f"state variable {k!r}: the spike generator's uniform draws must lie in (0, 1] (found "
                        f"values in [{np.nanmin(u):.3g}, {np.nanmax(u):.3g}]); a zero silences the neuron for good. "
                        "Use reset_state() to zero the state, or redraw_spike_generators()")
        self._adapter.write_state(state)

    def redraw_spike_generators(self, key: tuple = ()) -> None:
        """New uniform draws for every neuron's spike generator (``spike_survival = 1``).

        The Bernoulli process is memoryless, so this leaves the distribution of all
        future spikes unchanged; it makes runs that start from one saved state
        independent (without it they share each neuron's next spike threshold).
        ``key`` (ints) seeds the draws together with the network's seed.
        """
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x5B, 1, *key]))
        state = {}
        for g in self.layers:
            state[f"{g.name}.spike_u"] = 1.0 - rng.random(len(g))
            state[f"{g.name}.spike_survival"] = np.ones(len(g))
        self.set_state(state)

    def reset_state(self, key: tuple = ()) -> None:
        """Zero the dynamic state (potentials, traces, window sums, held averages).

        The spike generators restart with fresh draws (:meth:`redraw_spike_generators`)
        and stochastic plateau offsets keep their values; weights and biases are untouched.
        """
        keep = ("plateau_offset", "spike_u", "spike_survival")
        self.set_state({k: np.zeros_like(v) for k, v in self.get_state().items() if k.split(".", 1)[1] not in keep})
        self.redraw_spike_generators(key)

    # ------------------------------------------------------------------ running
    def _seed_value(self, *keys) -> int:
        return int(np.random.SeedSequence([self.seed, *keys]).generate_state(1)[0])

    def _execute(self, schedule: PhaseSchedule, images: np.ndarray, seed: int, report=None) -> None:
        """Run one schedule: one ``run()`` (runtime) or one run of the compiled binary (standalone)."""
        for name, seconds in self._adapter.run(schedule, images, seed, report).items():
            self.profile_seconds[name] = self.profile_seconds.get(name, 0.0) + seconds
        if self.standalone:
            self.timings = self._adapter.timings

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
        if self.standalone and schedule.n_steps > self._train_capacity:
            raise RuntimeError(  # pragma: no cover - probability below 1e-20 by construction
                f"the phase lengths of this chunk need {schedule.n_steps} steps, more than the "
                f"{self._train_capacity} of the standalone build")
        if self.standalone:
            schedule = schedule.padded(self._run_capacity)
        self._execute(schedule, padded, self._seed_value(0x7A, *key), report)
        self.examples_trained += n
        self.last_schedule = schedule

    def test(self, images: np.ndarray, labels=None, key: tuple = (), report=None) -> TestResult:
        """Test every image (state zeroed before each; no learning); one ``run()`` per test chunk.

        The training state (potentials, traces) is saved before and restored after.

        Raises
        ------
        ValueError
            If ``images`` holds no image (nothing to test).
        """
        if len(images) == 0:
            raise ValueError("SpikingNetwork.test: images is empty (0 test images); nothing to test")
        saved = self.get_state()
        protocol = self.params.protocol
        n_out = self.params.network.n_output
        test_steps = int(round(float(protocol.test_duration / self._dt)))
        capacity = self._run_capacity if self.standalone else self.test_chunk_size * test_steps
        V, R = [], []
        if not self.standalone:
            self._readout.active = True
        try:
            for start in range(0, len(images), self.test_chunk_size):
                block = images[start : start + self.test_chunk_size]
                n = len(block)
                # fixed capacity so that chunks of any size reuse the generated code
                schedule = PhaseSchedule.test(n, protocol, self._dt).padded(capacity)
                zeros = {f"{g.name}.{v}": np.zeros(len(g)) for g in self.layers for v in TEST_RESET_VARS
                         if v in g.variables}
                self.set_state(zeros)
                n_before = 0 if self.standalone else len(self._readout.t)
                self._execute(schedule, block, self._seed_value(0x7E, *key, start), report)
                self.last_schedule = schedule
                phase = np.asarray(self._readout.phase[n_before:])
                sel = phase == TEST
                V.append(np.asarray(self._readout.V_mean_test[n_before:])[sel].reshape(n, n_out))
                R.append(np.asarray(self._readout.rate_mean_test[n_before:])[sel].reshape(n, n_out))
        finally:
            if not self.standalone:
                self._readout.active = False
            self.set_state(saved)
        return TestResult(np.concatenate(V), np.concatenate(R), protocol.readout, labels)

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
                                                      order=10, name=f"record_state_{layer}")
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
                alpha = np.where(phase == FORWARD, mon.alpha_f[:], mon.alpha_t[:])
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

"""The spiking network: input -> hidden layer(s) -> output, broadcast feedback, learning.

One explicit ``brian2.Network`` holds the layers, the feedforward synapses (with
the learning pathway), the feedback synapses from the output layer to every
hidden layer's apical dendrite (fixed weights ``Y``, MODEL.md 1.5) and the
monitors of the phase-end readouts. A stretch of training (many examples, both
phases, the weight updates) or a whole test pass is ONE ``run()``: the images
of the stretch and its phase schedule are swapped into the groups' namespaces
as ``TimedArray`` s of fixed shape, so the generated code is reused between
stretches (BRIAN2-NOTES.md, item 1).

Two devices:

* ``device='runtime'`` (numpy or Cython, ``brian2.prefs.codegen.target``): every
  chunk or test block is one ``Network.run()``; its ``TimedArray`` s are swapped
  into the namespaces (fixed shapes, so the generated code is cached).
* ``device='cpp_standalone'``: the project is generated and compiled once
  (``make -j2``) for a fixed run of ``standalone_capacity(chunk_size)`` steps; every
  chunk (and every test block of as many 250-ms images as fit) is one run of that
  binary with ``run_args``: weights, all state variables, the images and the
  schedule. The binary seeds its random generators from the environment
  variable ``BRIAN_DENDRITE_SEED`` (code inserted in ``main``), so each run is
  reproducible. A chunk ends with idle padding (silent input, no learning, the
  neurons relax towards their biases) for the steps its random phase lengths did
  not use: about 1.5 % of the run with 1,000 examples per chunk. This padding is
  the one difference between the devices' dynamics; state is carried over
  through it.

Decisions (MODEL.md section 5) that differ from the published code and are not
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

import logging
import time

import brian2
import numpy as np
from brian2 import Equations, EventMonitor, Network, SpikeMonitor, StateMonitor, TimedArray, ms, second
from brian2.units.fundamentalunits import DIMENSIONLESS, Quantity

from ..model import (
    TEST,
    ModelParameters,
    PhaseSchedule,
    Weights,
    draw_phase_lengths,
    initial_weights,
    input_group,
    kernel_synapses,
    output_group,
    own_trace_truncation,
    pyramidal_group,
)
from ..model.plasticity import (
    HIDDEN_DELTA,
    LEARN_CONDITION,
    LEARN_PRE_CONDITION,
    OUTPUT_DELTA,
    WEIGHT_UPDATE,
    learning_scales,
)
from .recording import PlateauEvents, Potentials, RunRecording, SpikeTrains

__all__ = ["SpikingNetwork", "TestResult"]

logger = logging.getLogger("brian2.brian_dendrite.network")

#: Zero every state variable of a layer at the end of a test phase (after its spikes were handled).
_TEST_RESET_VARS = ("V_soma", "x_basal_L", "x_basal_s", "x_apical_L", "x_apical_s", "y_L", "y_s")
_TEST_RESET_CONDITION = "phase == 2 and steps_left == 0"

_SYMMETRIC = ("symmetric", "noisy_symmetric")

#: Variables that belong to the weights (saved with them), not to the dynamic state.
_WEIGHT_LIKE = ("b_basal", "c_apical", "class_index")

#: The standalone binary reads the seed of its random number generators from this
#: environment variable, so that each run of the one compiled binary is reproducible.
_SEED_VARIABLE = "BRIAN_DENDRITE_SEED"
_SEED_FROM_ENVIRONMENT = f"""
{{
    const char* _bd_seed = getenv("{_SEED_VARIABLE}");
    if (_bd_seed != NULL) {{
        const unsigned long _bd_s = strtoul(_bd_seed, NULL, 10);
        for (size_t _i = 0; _i < brian::_random_generators.size(); _i++)
            brian::_random_generators[_i].seed(_bd_s + _i);
    }}
}}
"""


def standalone_capacity(chunk_size: int, protocol, dt) -> int:
    """Steps of a standalone chunk: the expected phase lengths plus 12 standard deviations.

    The phase-length extras are drawn per chunk; the binary runs a fixed number of
    steps, so a chunk ends with idle padding (silent input, no learning). The mean
    and sd of one floored Wald extra come from 10^6 draws with a fixed seed; the
    margin makes an overflow astronomically unlikely (and it is checked).
    """
    rng = np.random.default_rng(12345)
    sample = draw_phase_lengths(10**6, protocol, dt, rng)
    n = 2 * chunk_size
    return int(np.ceil(n * sample.mean() + 12 * np.sqrt(n) * sample.std() + 2))


def _use_standalone_device(build_dir) -> None:
    """Switch Brian2 to cpp_standalone (build on demand, ``make -j2``; BRIAN2-NOTES.md item 6)."""
    from brian2 import get_device, prefs, set_device

    prefs.devices.cpp_standalone.extra_make_args_unix = ["-j2"]
    if get_device().__class__.__name__ != "CPPStandaloneDevice":
        kwargs = {"build_on_run": False}
        if build_dir is not None:
            kwargs["directory"] = str(build_dir)
        set_device("cpp_standalone", **kwargs)
    elif get_device().has_been_run:
        raise RuntimeError("the cpp_standalone device has already been built in this process; "
                           "use one SpikingNetwork per process (or call brian2.device.reinit())")


def _state_names(group) -> list[str]:
    """Writable per-neuron variables of a group (what ``get_states`` returns at runtime)."""
    from brian2.core.variables import ArrayVariable

    return sorted(k for k, v in group.variables.items()
                  if isinstance(v, ArrayVariable) and not v.read_only and not v.scalar and not k.startswith("_")
                  and v.owner.name == group.name)


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
    device : {'runtime', 'cpp_standalone'}
        Runtime code generation (target from ``brian2.prefs.codegen.target``) or a
        standalone binary compiled once and re-run per chunk.
    build_dir : path, optional
        Standalone project directory (reused if it holds a build of the same code).
    profile : bool
        Time every code object (Brian2 ``profile=True``); the sums over all runs are
        in :attr:`profile_seconds`. Changes the generated code, so builds with and
        without profiling are different builds.

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
    ):
        net = params.network
        if device not in ("runtime", "cpp_standalone"):
            raise ValueError(f"device = {device!r}: expected 'runtime' or 'cpp_standalone'")
        if net.feedback in _SYMMETRIC and (len(net.hidden) != 1 or params.cell.kernel != "full"):
            raise NotImplementedError(
                f"feedback = {net.feedback!r} with {len(net.hidden)} hidden layers or a truncated kernel is not "
                "implemented in the spiking network yet (Y = W^T through the output synapses works for one "
                "hidden layer with the full kernel)"
            )
        if not net.feedback_spiking:
            raise NotImplementedError("feedback_spiking = false (rate feedback) is not implemented in the spiking network yet")
        if int(chunk_size) < 1 or int(test_chunk_size) < 1:
            raise ValueError("chunk_size and test_chunk_size must be positive")
        self.params = params
        self.profile = bool(profile)
        #: Seconds spent per code object, summed over the runs so far (``profile=True`` only).
        self.profile_seconds: dict[str, float] = {}
        self.seed = int(seed)
        self.chunk_size = int(chunk_size)
        self.test_chunk_size = int(test_chunk_size)
        cell, protocol = params.cell, params.protocol
        if weights is None:
            weights = initial_weights(params, np.random.default_rng(np.random.SeedSequence([self.seed, 0xD1])))
        self._check_weights(weights)
        n_in = net.n_input
        self._dt = cell.dt
        self.device = device
        self.standalone = device == "cpp_standalone"
        if self.standalone:
            _use_standalone_device(build_dir)
            self._train_capacity = standalone_capacity(self.chunk_size, protocol, cell.dt)
            test_steps = int(round(float(protocol.test_duration / cell.dt)))
            self.test_chunk_size = max(1, self._train_capacity // test_steps)
            self._run_capacity = self._train_capacity
            rows = max(self.chunk_size, self.test_chunk_size)
        else:
            self._train_capacity = int(round(float(self.chunk_size * (2 * protocol.phase_min + _PAD_PER_EXAMPLE) / cell.dt)))
            self._run_capacity = 1
            rows = 1
        self._image_rows = rows
        # Runtime: placeholders replaced before every run. Standalone: the arrays of the
        # build, whose values are passed to every run of the binary (run_args).
        self._arrays = PhaseSchedule.from_phases([("idle", self._run_capacity, 0, 0)], protocol,
                                                 dt=cell.dt).timed_arrays()
        images = TimedArray(np.zeros((rows, n_in)), dt=1 * ms, name="images")
        self._images = images
        learn_event = {"learn": LEARN_CONDITION, "test_reset": _TEST_RESET_CONDITION}
        # presynaptic side of the update: neurons with a PSP average above skip_psp_below
        pre_events = {"learn_pre": LEARN_PRE_CONDITION, "test_reset": _TEST_RESET_CONDITION}
        skip = {"skip_psp_below": float(net.skip_psp_below)}
        delta_eqs = Equations("delta : 1")
        self.input = input_group(n_in, cell, self._arrays, images, name="input", extra_events=pre_events)
        self.input.namespace.update(skip)
        self.hidden = [
            pyramidal_group(n, cell, protocol, self._arrays, name=f"hidden_{m}", extra_equations=delta_eqs,
                            extra_events={**learn_event, **pre_events}, extra_namespace=skip)
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
        symmetric = net.feedback in _SYMMETRIC
        noisy = net.feedback == "noisy_symmetric"
        for m, (pre, post) in enumerate(zip(self.layers[:-1], self.layers[1:], strict=True)):
            top = post is self.output and len(self.hidden) == 1
            # Y = W^T: output spikes travel back through the same synapses to the apical traces;
            # noisy: Y = W^T + N(0, sd), the noise redrawn at every weight update (MODEL.md 1.13).
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
                                  namespace={"symmetric_noise": net.symmetric_noise} if noisy else None)
            syn.connect()
            self.forward_synapses.append(syn)
            objects.append(syn)
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
        if noisy:
            top = self.forward_synapses[-1]
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x4E]))
            self._mirror_noise = net.symmetric_noise * rng.standard_normal(len(top.source) * len(top.target))
            if not self.standalone:
                top.y_noise[:] = self._mirror_noise
        offsets = {}
        if protocol.stochastic_plateau:
            # numpy draws (not Brian2 code) so that runtime and standalone start alike
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x0F]))
            sd = float(protocol.plateau_offset_sd / cell.dt)
            top = int(round(float(protocol.plateau_offset_max / cell.dt)))
            for hid in self.hidden:
                offsets[hid.name] = np.minimum(np.abs(np.trunc(sd * rng.standard_normal(len(hid)))), top).astype(np.int32)
        self.examples_trained = 0
        self.last_schedule = None
        # the spike generators' first uniform draws (numpy, so that runtime and standalone start alike)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x5B]))
        spike_u = {g.name: 1.0 - rng.random(len(g)) for g in self.layers}
        if self.standalone:
            self._state_names = {g.name: _state_names(g) for g in self.layers}
            self._mirror_state = {f"{g.name}.{v}": np.zeros(len(g), dtype=g.variables[v].dtype)
                                  for g in self.layers for v in self._state_names[g.name]}
            self._mirror_state["output.class_index"] = np.arange(len(self.output), dtype=np.int32)
            for name, off in offsets.items():
                self._mirror_state[f"{name}.plateau_offset"] = off
            for g in self.layers:
                self._mirror_state[f"{g.name}.spike_u"] = spike_u[g.name]
                self._mirror_state[f"{g.name}.spike_survival"][:] = 1.0
                if f"{g.name}.rate" in self._mirror_state:  # sigma(V = 0), until the first step
                    self._mirror_state[f"{g.name}.rate"][:] = float(cell.phi_max) / 2
            self._mirror_weights = None
            self.set_weights(weights)
            self._build(build_dir)
        else:
            for name, off in offsets.items():
                self.hidden[[h.name for h in self.hidden].index(name)].plateau_offset = off
            for g in self.layers:
                g.spike_u = spike_u[g.name]
            self._check_connectivity_order()
            self.set_weights(weights)

    # ------------------------------------------------------------------ weights
    def _check_weights(self, weights: Weights) -> None:
        sizes = self.params.network.layer_sizes
        if tuple(weights.layer_sizes) != tuple(sizes):
            raise ValueError(f"weights have layer sizes {tuple(weights.layer_sizes)}, the model has {tuple(sizes)}")
        weights.check_finite()

    def _check_connectivity_order(self) -> None:
        """``w`` is stored in presynaptic-major order for all-to-all connect(); rely on it, but verify."""
        for syn in self.forward_synapses + self.feedback_synapses:
            n_post = len(syn.target)
            i, j = np.asarray(syn.i[:]), np.asarray(syn.j[:])
            k = np.arange(len(i))
            if not (np.array_equal(i, k // n_post) and np.array_equal(j, k % n_post)):
                raise RuntimeError(f"unexpected synapse order in {syn.name}")

    @staticmethod
    def _flat(matrix) -> np.ndarray:
        """(n_post, n_pre) matrix -> synaptic ``w`` in presynaptic-major order."""
        return np.ascontiguousarray(np.asarray(matrix, dtype=float).T).ravel()

    def set_weights(self, weights: Weights) -> None:
        """Write ``W``, ``b``, ``Y`` and ``c`` into the simulation."""
        self._check_weights(weights)
        self._weights_template = weights.copy()
        if self.standalone:
            self._mirror_weights = weights.copy()
            for group, b in zip(self.layers[1:], weights.b, strict=True):
                self._mirror_state[f"{group.name}.b_basal"] = np.asarray(b, dtype=float).copy()
            for hid, c in zip(self.hidden, weights.c, strict=True):
                self._mirror_state[f"{hid.name}.c_apical"] = np.asarray(c, dtype=float).copy()
            return
        for syn, W in zip(self.forward_synapses, weights.W, strict=True):
            syn.w[:] = self._flat(W)
        for group, b in zip(self.layers[1:], weights.b, strict=True):
            group.b_basal[:] = np.asarray(b, dtype=float)
        for fb, Y in zip(self.feedback_synapses, self._feedback_matrices(weights), strict=True):
            # Y^m is (n_hidden_m, n_output); synapses go output -> hidden.
            fb.w[:] = self._flat(Y)
        for hid, c in zip(self.hidden, weights.c, strict=True):
            hid.c_apical[:] = np.asarray(c, dtype=float)

    def get_weights(self) -> Weights:
        """The current weights as a :class:`Weights` (copies)."""
        if self.standalone:
            w = self._mirror_weights.copy()
            w.b = [self._mirror_state[f"{g.name}.b_basal"].copy() for g in self.layers[1:]]
            return self._symmetric(w)
        w = self._weights_template.copy()
        w.W = [
            np.asarray(syn.w[:]).reshape(len(syn.source), len(syn.target)).T.copy() for syn in self.forward_synapses
        ]
        w.b = [np.asarray(g.b_basal[:]).copy() for g in self.layers[1:]]
        return self._symmetric(w)

    def _feedback_matrices(self, weights: Weights) -> list:
        """The Y matrices that have their own synapses (none for symmetric feedback: it uses W)."""
        return [] if self.params.network.feedback in _SYMMETRIC else weights.Y

    def _symmetric(self, w: Weights) -> Weights:
        """Y of symmetric feedback is W_out^T (noisy: plus the current noise, see ``feedback_noise``)."""
        if self.params.network.feedback in _SYMMETRIC:
            w.Y = [w.W[-1].T.copy() + self.feedback_noise()]
        return w

    def feedback_noise(self) -> np.ndarray:
        """The current noise of noisy-symmetric feedback, (n_hidden, n_output); zeros otherwise."""
        top = self.forward_synapses[-1]
        shape = (len(top.source), len(top.target))
        if self.params.network.feedback != "noisy_symmetric":
            return np.zeros(shape)
        if self.standalone:
            return self._mirror_noise.reshape(shape).copy()
        return np.asarray(top.y_noise[:]).reshape(shape).copy()

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict:
        """All non-weight state variables (potentials, traces, window sums), for checkpoints."""
        if self.standalone:
            return {k: v.copy() for k, v in self._mirror_state.items()
                    if k.split(".", 1)[1] not in _WEIGHT_LIKE}
        state = {}
        for group in self.layers:
            for name, value in group.get_states(units=False, read_only_variables=False).items():
                if name in _WEIGHT_LIKE:
                    continue
                state[f"{group.name}.{name}"] = np.asarray(value).copy()
        return state

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
        if self.standalone:
            for k, v in state.items():
                if k not in self._mirror_state:
                    raise ValueError(f"unknown state variable {k!r}")
                self._mirror_state[k] = np.asarray(v, dtype=self._mirror_state[k].dtype).copy()
            return
        for group in self.layers:
            values = {k.split(".", 1)[1]: v for k, v in state.items() if k.split(".", 1)[0] == group.name}
            if values:
                group.set_states(values, units=False)

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

    def _build(self, build_dir) -> None:
        """Generate and compile the standalone project once (one run of ``_run_capacity`` steps)."""
        from brian2 import device
        from brian2.utils.filelock import FileLock

        device.insert_code("main", _SEED_FROM_ENVIRONMENT)
        self.net.run(self._run_capacity * self._dt, namespace={}, profile=self.profile)
        directory = device.project_dir if build_dir is None else str(build_dir)
        lock = FileLock(str(directory).rstrip("/") + ".lock") if directory else None
        t0 = time.perf_counter()
        try:
            if lock is not None:
                lock.acquire()
            device.build(run=False, directory=directory)
        except Exception as err:
            raise RuntimeError(
                f"building the cpp_standalone project in {directory} failed: {err}. The compiler output is "
                f"in that directory (make output above); run 'make' there to see it again") from err
        finally:
            if lock is not None:
                lock.release()
        self.build_seconds = time.perf_counter() - t0
        logger.info(f"standalone build in {directory}: {self.build_seconds:.1f} s")

    def _execute(self, schedule: PhaseSchedule, images: np.ndarray, seed: int, report=None) -> None:
        """Run one schedule: one ``run()`` (runtime) or one run of the compiled binary (standalone)."""
        if not self.standalone:
            arrays = schedule.timed_arrays()
            for group in self.layers:
                group.namespace.update(arrays)
            self.input.namespace["images"] = TimedArray(images, dt=1 * ms, name="images")
            brian2.seed(seed)
            self.net.t_ = 0.0
            self.net.run(schedule.duration, report=report, namespace={}, profile=self.profile)
            if self.profile:
                for name, seconds in self.net.profiling_info:
                    self.profile_seconds[name] = self.profile_seconds.get(name, 0.0) + float(seconds)
            return
        import os

        from brian2 import device

        if schedule.capacity != self._run_capacity:
            raise RuntimeError(
                f"schedule of {schedule.capacity} steps for a standalone build of {self._run_capacity}")
        run_args = {self._arrays[name]: values for name, values in (
            ("sched_phase", schedule.phase), ("sched_steps_left", schedule.steps_left),
            ("sched_window_steps", schedule.window_steps), ("sched_example", schedule.example),
            ("sched_label", schedule.label))}
        padded = np.zeros((self._image_rows, images.shape[1]))
        padded[: len(images)] = images
        run_args[self._images] = padded
        for syn, W in zip(self.forward_synapses, self._mirror_weights.W, strict=True):
            run_args[syn.w] = self._flat(W)
        for fb, Y in zip(self.feedback_synapses, self._feedback_matrices(self._mirror_weights), strict=True):
            run_args[fb.w] = self._flat(Y)
        if self.params.network.feedback == "noisy_symmetric":
            run_args[self.forward_synapses[-1].y_noise] = self._mirror_noise
        for group in self.layers:
            for name in self._state_names[group.name]:
                value = self._mirror_state[f"{group.name}.{name}"]
                dim = group.variables[name].dim
                run_args[getattr(group, name)] = value if dim is DIMENSIONLESS else Quantity(value, dim=dim)
        os.environ[_SEED_VARIABLE] = str(seed % 2**32)
        import resource

        t_prepare = time.perf_counter()
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        # per-process results, so that processes can share one build (sweeps)
        device.run(run_args=run_args, with_output=False, results_directory=f"results_{os.getpid()}")
        t_run = time.perf_counter()
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        for m, syn in enumerate(self.forward_synapses):
            self._mirror_weights.W[m] = np.asarray(syn.w[:]).reshape(len(syn.source), len(syn.target)).T.copy()
        if self.params.network.feedback == "noisy_symmetric":
            self._mirror_noise = np.asarray(self.forward_synapses[-1].y_noise[:]).copy()
        for group in self.layers:
            for name in self._state_names[group.name]:
                self._mirror_state[f"{group.name}.{name}"] = np.asarray(getattr(group, name)[:]).copy()  # unitless
        if self.profile:
            self._add_standalone_profile(os.path.join(device.project_dir, f"results_{os.getpid()}", "profiling_info.txt"))
        # the run's input files are not needed any more (one set per chunk would fill the disk)
        device.delete(code=False, data=False, run_args=True, directory=False)
        t_done = time.perf_counter()
        # CPU time of the binary: less sensitive than wall time to other jobs on a shared machine
        cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
        self.timings = {"binary_s": t_run - t_prepare, "binary_cpu_s": cpu, "collect_s": t_done - t_run}
        logger.debug(f"standalone run: binary {t_run - t_prepare:.3f} s, reading results {t_done - t_run:.3f} s")

    def _add_standalone_profile(self, path) -> None:
        with open(path) as f:
            for line in f:
                fields = line.split()
                if len(fields) == 2:
                    name, value = fields
                    self.profile_seconds[name] = self.profile_seconds.get(name, 0.0) + float(value)

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
        """
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
                zeros = {f"{g.name}.{v}": np.zeros(len(g)) for g in self.layers for v in _TEST_RESET_VARS
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

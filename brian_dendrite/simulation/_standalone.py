"""The cpp_standalone device: one build, one binary run per chunk (internal).

The project is generated and compiled once (``make -j2``) for a fixed run of
:func:`standalone_capacity` steps. Every training chunk and every test block is one
run of that binary with ``run_args`` (Brian2 >= 2.6, BRIAN2-NOTES.md item 5): the
weights, all state variables, the images and the schedule are written into the
run's input files, so nothing is recompiled between runs.

Between runs the device cannot read or write the simulation's variables, so
:class:`StandaloneAdapter` keeps *mirrors* of them in numpy: the forward weights,
the noise of noisy-symmetric feedback and every per-neuron state variable. They are
passed to every run and read back from its results.

The binary seeds its random generators from the environment variable
``BRIAN_DENDRITE_SEED`` (code inserted in ``main``), so each run is reproducible;
results go to a directory per process, so that processes can share one build
(sweeps). :func:`build_directory` is the cache directory of a build, keyed by what
determines the generated code. A process whose network has the fingerprint of the
finished build in its directory reuses the binary without generating the project
(:mod:`brian_dendrite.simulation._warm`); the forward and feedback synapses are then
never connected in Python (their ``connect()`` is code of the binary).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np
from brian2.core.variables import ArrayVariable
from brian2.units.fundamentalunits import DIMENSIONLESS, Quantity

from ..model import ModelParameters, Weights, draw_phase_lengths
from ._build import InitialState, NetworkObjects, feedback_matrices, flat_weights, weight_matrix
from ._dense import exact_contraction
from ._warm import attach, fingerprint, package_digest, read_stamp, remove_stamp, write_stamp

__all__ = ["SEED_VARIABLE", "StandaloneAdapter", "build_directory", "deferred_assignments", "standalone_capacity",
           "use_standalone_device"]

logger = logging.getLogger("brian2.brian_dendrite.network")

#: The standalone binary reads the seed of its random number generators from this
#: environment variable, so that each run of the one compiled binary is reproducible.
SEED_VARIABLE = "BRIAN_DENDRITE_SEED"
_SEED_FROM_ENVIRONMENT = f"""
{{
    const char* _bd_seed = getenv("{SEED_VARIABLE}");
    if (_bd_seed != NULL) {{
        const unsigned long _bd_s = strtoul(_bd_seed, NULL, 10);
        for (size_t _i = 0; _i < brian::_random_generators.size(); _i++)
            brian::_random_generators[_i].seed(_bd_s + _i);
    }}
}}
"""

#: The schedule's arrays in the order of :class:`~brian_dendrite.model.PhaseSchedule`'s fields.
_SCHEDULE_FIELDS = ("phase", "steps_left", "window_steps", "example", "label")


def build_directory(params: ModelParameters, chunk_size: int, dense_pathways: bool = True,
                    profile: bool = False, vector_exp: bool = True) -> Path:
    """Cache directory of a cpp_standalone build, keyed by what determines the generated code.

    The key hashes the parameters (they are compiled in as constants), the chunk
    size (it fixes array shapes and the run length), the versions of Brian2,
    brian_dendrite and Python, whether the build uses Brian2's generic
    synapse code (``dense_pathways=False``, see
    :class:`~brian_dendrite.simulation.SpikingNetwork`) and whether it is profiled
    (``profile=True``: other generated code, so its own directory; otherwise a
    profiled and an unprofiled network would rebuild each other's project) and whether
    a dense build's rate loops call scalar ``exp`` (``vector_exp=False``). Under
    ``$BRIAN_DENDRITE_BUILD_CACHE`` if set, else ``$XDG_CACHE_HOME/brian_dendrite/builds``
    (``~/.cache/...``).
    """
    import hashlib

    import brian2

    from .. import __version__

    key = [params.to_toml(), int(chunk_size), brian2.__version__, __version__, platform.python_version()]
    if not dense_pathways:  # the default build keeps the key it had before dense pathways existed
        key.append("generic-pathways")
    if profile:  # likewise: the unprofiled build keeps its key
        key.append("profile")
    if dense_pathways and not vector_exp:  # likewise
        key.append("scalar-exp")
    key = json.dumps(key)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = _cache_root() / f"{params.name}-{digest}"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _cache_root() -> Path:
    """``$BRIAN_DENDRITE_BUILD_CACHE`` if set, else ``$XDG_CACHE_HOME/brian_dendrite/builds`` (``~/.cache/...``)."""
    root = os.environ.get("BRIAN_DENDRITE_BUILD_CACHE")
    if not root:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "brian_dendrite" / "builds"
    return Path(root)


#: The moments of the phase lengths (:func:`standalone_capacity`), per protocol, in the build cache root.
_MOMENTS_FILE = "phase_length_moments.json"
_MOMENTS_KEPT = 32


def standalone_capacity(chunk_size: int, protocol, dt) -> int:
    """Steps of a standalone chunk: the expected phase lengths plus 12 standard deviations.

    The phase-length extras are drawn per chunk; the binary runs a fixed number of
    steps, so a chunk ends with idle padding (silent input, no learning). The mean
    and sd of one floored Wald extra come from 10^6 draws with a fixed seed; the
    margin makes an overflow astronomically unlikely (and it is checked).
    """
    mean, std = _phase_length_moments(protocol, dt)
    n = 2 * chunk_size
    return int(np.ceil(n * mean + 12 * np.sqrt(n) * std + 2))


def _phase_length_moments(protocol, dt) -> tuple[float, float]:
    """Mean and sd of 10^6 phase lengths drawn with seed 12345 (60 ms of CPU; kept in the build cache root).

    The file keeps them exactly (``float.hex``) under a key of the protocol, ``dt``,
    numpy's version and the package's source (:func:`~brian_dendrite.simulation._warm.package_digest`);
    a missing, unreadable or unwritable file only means that they are drawn again.
    """
    import hashlib

    key = hashlib.sha256(json.dumps([repr(protocol), repr(dt), np.__version__, package_digest()]).encode()).hexdigest()
    path = _cache_root() / _MOMENTS_FILE
    try:
        with open(path) as f:
            mean, std = (float.fromhex(x) for x in json.load(f)[key])
        return mean, std
    except (OSError, ValueError, KeyError, TypeError):
        pass
    sample = draw_phase_lengths(10**6, protocol, dt, np.random.default_rng(12345))
    mean, std = float(sample.mean()), float(sample.std())
    try:
        try:
            with open(path) as f:
                table = dict(json.load(f))
        except (OSError, ValueError, TypeError):
            table = {}
        table.pop(key, None)
        table[key] = [mean.hex(), std.hex()]
        table = dict(list(table.items())[-_MOMENTS_KEPT:])  # the newest (one per source version of the package)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(table, indent=0) + "\n")
        os.replace(tmp, path)
    except OSError:
        pass
    return mean, std


def use_standalone_device(build_dir) -> None:
    """Switch Brian2 to cpp_standalone (build on demand, ``make -j2``; BRIAN2-NOTES.md item 6).

    Raises
    ------
    RuntimeError
        If the device has already been built in this process (one standalone network per process).
    """
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


#: Defer the string assignments made while the objects are constructed (see :func:`deferred_assignments`).
DEFER_ASSIGNMENTS = True

#: The methods of Brian2's ``VariableView`` that generate code for a string assignment (device overrides).
_ASSIGNMENT_OVERRIDES = ("variableview_set_with_expression_conditional", "variableview_set_with_expression")


class DeferredAssignment:
    """One string assignment of a state variable (``group.var = "1 - rand()"``), made later."""

    def __init__(self, override: str, args: tuple, kwds: dict):
        self.override, self.args, self.kwds = override, args, kwds

    @property
    def variable(self) -> str:
        """``'group.variable'``."""
        view = self.args[0]
        return f"{view.group.name}.{view.name}"

    def describe(self) -> str:
        """What the fingerprint hashes: the method, the variable, the condition or index and the code."""
        return "|".join([self.override, self.variable, *(repr(a) for a in self.args[1:]),
                         repr(self.kwds.get("check_units", True))])

    def apply(self) -> None:
        """Make the assignment (Brian2 generates its code object and queues it in ``main``)."""
        from brian2.core.variables import VariableView

        method = {"variableview_set_with_expression_conditional": VariableView.set_with_expression_conditional,
                  "variableview_set_with_expression": VariableView.set_with_expression}[self.override]
        method.original_function(*self.args, **self.kwds)


class deferred_assignments:  # noqa: N801 - used as a context manager, like a function
    """While constructing standalone objects: record string assignments of variables instead of generating code.

    ``group.spike_u = "1 - rand()"`` and the like make Brian2 generate a code object
    at once (parsing, code generation: about 40 % of the construction of the network).
    On cpp_standalone every per-neuron state variable is passed to every run of the
    binary (``run_args``), so what such an assignment writes in the binary's
    initialisation is overwritten before the first step; its random numbers come
    before the generators are reseeded (:data:`SEED_VARIABLE`). The assignment is
    needed only when the project is generated: :class:`StandaloneAdapter` makes the
    recorded ones in :meth:`~StandaloneAdapter.build` before generating it (and those
    of variables that it does not pass to the runs at once), and a reused build never
    makes them. The list (:attr:`assignments`) is entered into the fingerprint.

    Works through Brian2's device overrides (``device_override`` looks the method up on
    the current device): the methods are set on the device instance inside the block
    and removed after it. Nothing is recorded unless :data:`DEFER_ASSIGNMENTS`.
    """

    def __init__(self):
        self.assignments: list[DeferredAssignment] = []
        self._device = None

    def __enter__(self) -> deferred_assignments:
        from brian2 import get_device

        if not DEFER_ASSIGNMENTS:
            return self
        device = get_device()
        if any(name in vars(device) for name in _ASSIGNMENT_OVERRIDES):
            return self  # already deferring (nested): the outer block records
        self._device = device

        def recorder(override):
            def record(*args, **kwds):
                self.assignments.append(DeferredAssignment(override, args, kwds))

            return record

        for name in _ASSIGNMENT_OVERRIDES:
            setattr(device, name, recorder(name))
        return self

    def __exit__(self, *exc) -> None:
        if self._device is not None:
            for name in _ASSIGNMENT_OVERRIDES:
                vars(self._device).pop(name, None)
            self._device = None


def _mark_as_run(network) -> None:
    """Mark *network*'s objects as part of it, as ``Network.run`` would have done.

    A reused build never calls ``Network.run`` in this process; without the mark,
    Brian2 warns at exit that each object "was never included in a network".
    """
    for obj in network.objects:
        for o in (obj, *obj.contained_objects):
            if getattr(o, "_network", None) is None:
                o._network = network.id


class _NamedOrder(set):
    """A set of Brian2 objects that iterates in the order of their names."""

    def __iter__(self):
        return iter(sorted(set.__iter__(self), key=lambda obj: obj.name))


def _fix_clock_order(device) -> None:
    """Write the clocks into ``main.cpp`` and ``objects.cpp`` in name order.

    Brian2 iterates over sets of clocks, whose order depends on object addresses,
    so the generated files differ from process to process and ``make`` recompiles
    them on every build, even a cached one. The order has no effect on the
    simulation (the network's clocks are a set in C++ as well).
    """
    device.clocks = _NamedOrder(device.clocks)
    owner = {device.get_array_name(clock.variables[v]): clock.name for clock in device.clocks for v in ("timestep", "t")}
    queue = device.main_queue
    k = 0
    while k < len(queue):  # the clocks' start values: sort each contiguous block by clock name (stable)
        end = k
        while end < len(queue) and queue[end][0].startswith("set_by") and queue[end][1][0] in owner:
            end += 1
        if end > k:
            queue[k:end] = sorted(queue[k:end], key=lambda item: owner[item[1][0]])
        k = max(end, k + 1)
    for func, args in queue:
        if func == "run_network":
            lines = args[1]
            idle = iter(sorted(line for line in lines if line.endswith(", NULL);")))
            lines[:] = [next(idle) if line.endswith(", NULL);") else line for line in lines]


def _state_names(group) -> list[str]:
    """Writable per-neuron variables of a group (what ``get_states`` returns at runtime)."""
    return sorted(k for k, v in group.variables.items()
                  if isinstance(v, ArrayVariable) and not v.read_only and not v.scalar and not k.startswith("_")
                  and v.owner.name == group.name)


class StandaloneAdapter:
    """Weights, state and runs of a network on the cpp_standalone device.

    The counterpart of :class:`~brian_dendrite.simulation._runtime.RuntimeAdapter`,
    with the same methods; the values live in numpy mirrors between runs.

    Parameters
    ----------
    objects : NetworkObjects
        Built on the cpp_standalone device (see :func:`use_standalone_device`).
    params : ModelParameters
    run_capacity : int
        Steps of every run of the binary.
    image_rows : int
        Rows of the image array of the build (training chunk or test block).
    profile : bool
        Build with Brian2's profiling (per code object times in every run's results).
    options : tuple of str
        Build options that change the generated code but not the objects the
        fingerprint describes (``vector_exp``): entered into the fingerprint.
    """

    def __init__(self, objects: NetworkObjects, params: ModelParameters, run_capacity: int, image_rows: int,
                 profile: bool, deferred: list[DeferredAssignment] = (), options: tuple = ()):
        self._objects = objects
        self._params = params
        self._run_capacity = run_capacity
        self._image_rows = image_rows
        self._profile = profile
        self._options = tuple(options)
        self._state_names = {g.name: _state_names(g) for g in objects.layers}
        self._state = {f"{g.name}.{v}": np.zeros(len(g), dtype=g.variables[v].dtype)
                       for g in objects.layers for v in self._state_names[g.name]}
        # string assignments recorded at construction (deferred_assignments): made in build() if the project
        # is generated; those of a variable that no run is passed must be made now
        self._deferred = [a for a in deferred if a.variable in self._state]
        for assignment in deferred:
            if assignment.variable not in self._state:
                assignment.apply()
        self._weights: Weights | None = None
        self._noise: np.ndarray | None = None
        #: Whether :meth:`build` reused a cached build without generating the project.
        self.reused_build = False
        # the build directory and the fingerprint of the binary this process built or reused
        self._build = None
        #: Seconds of the last run: the binary (wall, CPU) and reading its results.
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ set-up
    def initialize(self, initial: InitialState) -> None:
        """Start the mirrors from *initial* (what the runtime groups hold after construction).

        The weights are written afterwards, with :meth:`write_weights`.
        """
        objects, cell = self._objects, self._params.cell
        self._noise = initial.feedback_noise
        self._state[f"{objects.output.name}.class_index"] = np.arange(len(objects.output), dtype=np.int32)
        for name, offsets in initial.plateau_offset.items():
            self._state[f"{name}.plateau_offset"] = offsets
        for g in objects.layers:
            self._state[f"{g.name}.spike_u"] = initial.spike_u[g.name]
            self._state[f"{g.name}.spike_survival"][:] = 1.0
            if f"{g.name}.rate" in self._state:  # sigma(V = 0), until the first step
                self._state[f"{g.name}.rate"][:] = float(cell.phi_max) / 2

    def build(self, build_dir) -> float:
        """Generate and compile the project once (one run of ``run_capacity`` steps); returns the seconds.

        With a *build_dir* that holds a finished build of the same project (its stamp
        matches :func:`~brian_dendrite.simulation._warm.fingerprint`), the project is
        neither generated nor compiled: the device is attached to it
        (:attr:`reused_build` is then true). Otherwise the deferred ``connect()`` s are
        made, Brian2 generates the project and ``make`` compiles what changed, and a
        new stamp is written.
        """
        from brian2 import device, get_device
        from brian2.utils.filelock import FileLock

        t0 = time.perf_counter()
        directory = None if build_dir is None else str(build_dir)
        if directory:
            Path(directory).parent.mkdir(parents=True, exist_ok=True)  # the lock file lies beside it
        lock = FileLock(directory.rstrip("/") + ".lock") if directory else None
        digest = None
        if directory is not None:
            digest = fingerprint(self._objects.network, self._run_capacity, self._profile,
                                 [a.describe() for a in self._deferred], self._options)
            with lock:
                if read_stamp(directory) == digest:
                    attach(directory)
                    self.reused_build = True
                    self._build = (directory, digest)
                    _mark_as_run(self._objects.network)
                    seconds = time.perf_counter() - t0
                    logger.info(f"standalone build in {directory} reused (same fingerprint): {seconds:.2f} s")
                    return seconds
        for assignment in self._deferred:  # in the order made, before the connect()s and the seed
            assignment.apply()
        self._deferred = []
        self._objects.connect()
        device.insert_code("main", _SEED_FROM_ENVIRONMENT)
        self._objects.network.run(self._run_capacity * self._params.cell.dt, namespace={}, profile=self._profile)
        directory = device.project_dir if directory is None else directory
        try:
            if lock is not None:
                lock.acquire()
                remove_stamp(directory)
            _fix_clock_order(get_device())  # the device itself, not the brian2.device proxy
            with exact_contraction():  # no fused multiply-adds: vector and scalar loops give the same bits
                device.build(run=False, directory=directory)
            if digest is not None:
                write_stamp(directory, digest)
                self._build = (directory, digest)
        except Exception as err:
            raise RuntimeError(
                f"building the cpp_standalone project in {directory} failed: {err}. The compiler output is "
                f"in that directory (make output above); run 'make' there to see it again") from err
        finally:
            if lock is not None:
                lock.release()
        seconds = time.perf_counter() - t0
        logger.info(f"standalone build in {directory}: {seconds:.1f} s")
        return seconds

    # ------------------------------------------------------------------ weights and state
    def write_weights(self, weights: Weights) -> None:
        """Mirror ``W``, ``Y`` and the biases ``b`` and ``c`` (passed to the next run)."""
        objects = self._objects
        self._weights = weights.copy()
        for group, b in zip(objects.layers[1:], weights.b, strict=True):
            self._state[f"{group.name}.b_basal"] = np.asarray(b, dtype=float).copy()
        for hid, c in zip(objects.hidden, weights.c, strict=True):
            self._state[f"{hid.name}.c_apical"] = np.asarray(c, dtype=float).copy()

    def read_weights(self) -> tuple[list, list]:
        """The current forward weights ``W`` and biases ``b`` (copies)."""
        W = [w.copy() for w in self._weights.W]
        b = [self._state[f"{g.name}.b_basal"].copy() for g in self._objects.layers[1:]]
        return W, b

    def feedback_noise(self, shape: tuple) -> np.ndarray:
        """The current noise of noisy-symmetric feedback as a (n_pre, n_post) array."""
        return self._noise.reshape(shape).copy()

    def read_state(self) -> dict:
        """Every mirrored per-neuron variable, ``'layer.variable' -> array`` (copies)."""
        return {k: v.copy() for k, v in self._state.items()}

    def write_state(self, state: dict) -> None:
        """Overwrite mirrored variables; an unknown name is an error."""
        for k, v in state.items():
            if k not in self._state:
                raise ValueError(f"unknown state variable {k!r}")
            self._state[k] = np.asarray(v, dtype=self._state[k].dtype).copy()

    # ------------------------------------------------------------------ running
    def run(self, schedule, images: np.ndarray, seed: int, report=None) -> dict[str, float]:
        """One run of the binary on *schedule* (``run_capacity`` steps) from the mirrors, which it updates.

        ``report`` is not used (the binary reports nothing). Returns the seconds per
        code object of this run (empty without profiling).
        """
        import resource  # Unix only, like the standalone build itself

        from brian2 import device

        if schedule.capacity != self._run_capacity:
            raise RuntimeError(
                f"schedule of {schedule.capacity} steps for a standalone build of {self._run_capacity}")
        self._check_build()
        run_args = self._run_args(schedule, images)
        os.environ[SEED_VARIABLE] = str(seed % 2**32)
        results = f"results_{os.getpid()}"  # per process, so that processes can share one build (sweeps)
        t_prepare = time.perf_counter()
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        device.run(run_args=run_args, with_output=False, results_directory=results)
        t_run = time.perf_counter()
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._read_results()
        profile = {}
        if self._profile:
            profile = _read_profile(os.path.join(device.project_dir, results, "profiling_info.txt"))
        # the run's input files are not needed any more (one set per chunk would fill the disk)
        device.delete(code=False, data=False, run_args=True, directory=False)
        t_done = time.perf_counter()
        # CPU time of the binary: less sensitive than wall time to other jobs on a shared machine
        cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
        self.timings = {"binary_s": t_run - t_prepare, "binary_cpu_s": cpu, "collect_s": t_done - t_run}
        logger.debug(f"standalone run: binary {t_run - t_prepare:.3f} s, reading results {t_done - t_run:.3f} s")
        return profile

    def _check_build(self) -> None:
        """A RuntimeError if another process has rebuilt (or is rebuilding) the build directory since.

        Processes with the same network share a build directory; one whose network
        differs in what the directory's key does not cover (e.g. another version of
        the package's source) rebuilds it. Running that binary with this process's
        files would be wrong, so the stamp is checked before every run.
        """
        if self._build is None:
            return
        directory, digest = self._build
        if read_stamp(directory) != digest:
            raise RuntimeError(
                f"the standalone build in {directory} was rebuilt by another process (its stamp no longer "
                "matches this process's network, e.g. another version of brian_dendrite's source uses the "
                "same directory): this process cannot run it. Nothing computed is lost: restart (train "
                "--resume continues from the last checkpoint); give concurrent runs of different code their "
                "own BRIAN_DENDRITE_BUILD_CACHE")

    def _run_args(self, schedule, images: np.ndarray) -> dict:
        """The values of one run: schedule, images, weights and every state variable."""
        objects = self._objects
        run_args = {objects.schedule_arrays[f"sched_{name}"]: getattr(schedule, name) for name in _SCHEDULE_FIELDS}
        padded = np.zeros((self._image_rows, images.shape[1]))
        padded[: len(images)] = images
        run_args[objects.images] = padded
        for syn, W in zip(objects.forward_synapses, self._weights.W, strict=True):
            run_args[syn.w] = flat_weights(W)
        for fb, Y in zip(objects.feedback_synapses, feedback_matrices(self._params, self._weights), strict=True):
            run_args[fb.w] = flat_weights(Y)
        if self._noise is not None:
            run_args[objects.forward_synapses[-1].y_noise] = self._noise
        for group in objects.layers:
            for name in self._state_names[group.name]:
                value = self._state[f"{group.name}.{name}"]
                dim = group.variables[name].dim
                run_args[getattr(group, name)] = value if dim is DIMENSIONLESS else Quantity(value, dim=dim)
        return run_args

    def _read_results(self) -> None:
        """Update the mirrors from the results of the last run."""
        objects = self._objects
        for m, syn in enumerate(objects.forward_synapses):
            self._weights.W[m] = weight_matrix(syn)
        if self._noise is not None:
            self._noise = np.asarray(objects.forward_synapses[-1].y_noise[:]).copy()
        for group in objects.layers:
            for name in self._state_names[group.name]:
                self._state[f"{group.name}.{name}"] = np.asarray(getattr(group, name)[:]).copy()  # unitless


def _read_profile(path) -> dict[str, float]:
    """Seconds per code object from a run's ``profiling_info.txt``."""
    seconds: dict[str, float] = {}
    with open(path) as f:
        for line in f:
            fields = line.split()
            if len(fields) == 2:
                name, value = fields
                seconds[name] = seconds.get(name, 0.0) + float(value)
    return seconds

"""Warm start of a cached cpp_standalone build: reuse the compiled binary without regenerating it (internal).

A standalone network is made in three stages: the Brian2 objects (Python), the
project (Brian2 runs the network "symbolically": ``before_run`` of every object,
code generation of every code object, writing the sources and ``make``), and the
runs of the binary. When the build directory already holds a compiled project of
the same network, the second stage produces the files that are already there, and
``make`` finds nothing to do except for ``main.cpp``, which Brian2 writes with its
clocks in an order that changes from process to process (a ``set`` of objects), so
that it is recompiled and ``make.deps`` regenerated (the preprocessor over every
source file) on every warm start.

This module skips the second stage when it can prove it unnecessary. After a
successful build, a stamp file in the build directory records a *fingerprint* of
everything the project is generated from; a later process with the same
fingerprint attaches the device to the existing project (:func:`attach`) instead
of generating and compiling it. The fingerprint (:func:`fingerprint`) hashes

* the source of the ``brian_dendrite`` package (every ``.py`` file: the model's
  equations and templates live there; a source change makes one full warm
  start, which writes a new stamp),
* Brian2's version and all its preferences (compiler flags, code generation),
  the Python version, the machine and the compiler environment variables,
* the steps of the run and whether profiling is on,
* the device's arrays (names, types, sizes), its static arrays (their values),
  its queue of initialisation actions (values and code of the code objects made
  while constructing the objects) and the scheduling (``when``, ``order``,
  ``dt``) and code-object classes (dense or generic delivery) of every object.

* the string assignments of state variables deferred to the build (below).

The binary's interface, its command-line arguments and the result files it
writes, is named after the device's arrays, so a process whose objects would be
generated differently cannot match. Two kinds of Brian2 work are left out of the
construction and made only when the project is built
(:class:`~brian_dendrite.simulation._standalone.StandaloneAdapter`): the synapses'
``connect()`` and the string assignments of state variables such as
``group.spike_u = "1 - rand()"``
(:class:`~brian_dendrite.simulation._standalone.deferred_assignments`); Brian2
generates the code of both at once, and neither changes what a run computes.

What a warm start costs besides (2026-12-03, CPU seconds on a loaded 2-core
machine): importing Brian2 1.1-1.6 (0.6-0.7 more with pylab, matplotlib and
pytest, which :mod:`brian_dendrite._brian2_import` now keeps out), the package
0.15, constructing the objects 0.15, this module's fingerprint 0.006; the
moments of the phase lengths behind the run length are kept in the build cache
root (:func:`~brian_dendrite.simulation.standalone_capacity`, 0.065 s otherwise).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

__all__ = ["STAMP_NAME", "attach", "fingerprint", "package_digest", "read_stamp", "remove_stamp", "write_stamp"]

#: The stamp file of a finished build, in the build directory.
STAMP_NAME = "brian_dendrite_build.json"

#: Environment variables that change the compiler's output.
_COMPILER_ENVIRONMENT = ("CC", "CXX", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS")


@functools.cache
def package_digest() -> str:
    """SHA-256 over the ``brian_dendrite`` package's Python files (relative paths and contents; once per process)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()


def _describe(value) -> str:
    """A stable description of one argument of the device's initialisation queue."""
    if isinstance(value, str | int | float | bool | type(None)):
        return repr(value)
    if isinstance(value, np.ndarray):
        return f"array:{value.dtype.str}:{value.shape}:{hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()}"
    code = getattr(value, "code", None)
    if code is not None:  # a code object: its name and generated code (its files in name order)
        h = hashlib.sha256()
        for name in sorted(code) if hasattr(code, "__iter__") and not isinstance(code, str) else ():
            h.update(f"{name}\0{code[name]}\0".encode())
        if isinstance(code, str):
            h.update(code.encode())
        return f"{type(value).__name__}:{value.name}:{h.hexdigest()}"
    return f"{type(value).__name__}:{getattr(value, 'name', repr(value))}"


def fingerprint(network, run_steps: int, profile: bool, deferred=(), options=()) -> str:
    """The fingerprint of the standalone project that *network* would generate (hex digest).

    Call it after every object is made and before the network is run (built).
    *deferred* describes the string assignments that are made only when the project
    is generated (:class:`~brian_dendrite.simulation._standalone.deferred_assignments`);
    *options* the build options that change the generated code without changing the
    objects described below (``"vector_exp=True"``: the dense template's SIMD ``exp``).
    """
    import brian2
    from brian2 import device, prefs

    h = hashlib.sha256()

    def add(*parts):
        for part in parts:
            h.update(str(part).encode())
            h.update(b"\0")

    add(brian2.__version__, sys.version, platform.machine(), prefs.as_file, package_digest())
    add(*(f"{k}={os.environ.get(k)}" for k in _COMPILER_ENVIRONMENT))
    add(int(run_steps), bool(profile))
    add("deferred", *deferred)
    add("options", *options)
    for var, name in sorted(device.arrays.items(), key=lambda kv: kv[1]):
        add(name, np.dtype(var.dtype).str, var.size, bool(getattr(var, "dynamic", False)))
    for name, values in sorted(device.static_arrays.items()):
        add(name, _describe(np.asarray(values)))
    for func, args in device.main_queue:
        add(func, *(_describe(a) for a in (args if isinstance(args, tuple) else (args,))))
    for name, codeobj in sorted(device.code_objects.items()):
        add(name, _describe(codeobj))
    for obj in sorted(network.objects, key=lambda o: o.name):
        add(obj.name, type(obj).__name__, obj.when, obj.order, float(obj.clock.dt_), obj.active)
        for pathway in getattr(obj, "_pathways", ()):
            cls = getattr(pathway.codeobj_class, "__name__", None)
            kwds = sorted((k, repr(v)) for k, v in (pathway.template_kwds or {}).items())
            add(pathway.name, pathway.prepost, cls, kwds)
    return h.hexdigest()


def read_stamp(directory) -> str | None:
    """The fingerprint of the finished build in *directory*, or ``None`` (no stamp, no binary, unreadable)."""
    directory = Path(directory)
    try:
        with open(directory / STAMP_NAME) as f:
            stamp = json.load(f)
    except (OSError, ValueError):
        return None
    if not (directory / "main").is_file():
        return None
    return stamp.get("fingerprint") if isinstance(stamp, dict) else None


def write_stamp(directory, digest: str) -> None:
    """Record that *directory* holds the finished build of *digest* (atomically)."""
    directory = Path(directory)
    tmp = directory / f"{STAMP_NAME}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"fingerprint": digest}) + "\n")
    os.replace(tmp, directory / STAMP_NAME)


def remove_stamp(directory) -> None:
    """Forget the build of *directory* (before it is rewritten)."""
    try:
        os.remove(Path(directory) / STAMP_NAME)
    except FileNotFoundError:
        pass


def attach(directory) -> None:
    """Point the cpp_standalone device at the finished project in *directory* without generating it.

    Every array is then read from the results of the binary's runs: the values the
    device knows from construction are forgotten, as Brian2 forgets those of the
    variables its code objects write when it generates them.
    """
    from brian2 import get_device

    device = get_device()  # the device itself: attributes set on brian2.device (a proxy) would not reach it
    device.project_dir = str(directory)
    for var in list(device.array_cache):
        device.array_cache[var] = None

"""Import NEURON and compile and load the package's NMODL mechanisms (internal).

The MOD files of ``brian_dendrite/nrn/mod`` are compiled with NEURON's
``nrnivmodl`` into a build directory outside the source tree: a subdirectory of
the user's cache (``$XDG_CACHE_HOME/brian_dendrite/nrnmech`` or
``~/.cache/brian_dendrite/nrnmech``; ``BRIAN_DENDRITE_NRN_CACHE`` overrides it)
named by the NEURON version and a hash of the MOD sources, so an edited MOD file
or a new NEURON gets a fresh build and an unchanged one is compiled once. The
library is then loaded into the running NEURON with ``neuron.load_mechanisms``
(once per process).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

__all__ = ["NEURON_EXTRA_HINT", "MechanismCompileError", "require_neuron", "mod_sources", "build_directory",
           "load_mechanisms"]

#: What to install when NEURON is missing (the extra of setup.cfg).
NEURON_EXTRA_HINT = 'pip install "brian_dendrite[neuron]"  (or pip install "neuron>=9.0")'

_LOADED: dict = {}


class MechanismCompileError(RuntimeError):
    """``nrnivmodl`` failed on the package's MOD files; the message holds its output."""


def require_neuron():
    """Import and return the ``neuron`` module, or raise an ImportError naming the extra.

    Raises
    ------
    ImportError
        If the NEURON simulator (the ``neuron`` package) is not installed.
    """
    try:
        import neuron
    except ImportError as err:
        raise ImportError(
            "the NEURON backend of brian_dendrite needs the NEURON simulator (the 'neuron' package, "
            f"version 9 or later), which is not installed: {NEURON_EXTRA_HINT}. Original error: {err}"
        ) from None
    return neuron


def mod_sources() -> dict[str, bytes]:
    """The package's MOD files, name -> contents."""
    folder = resources.files("brian_dendrite.nrn").joinpath("mod")
    return {f.name: f.read_bytes() for f in sorted(folder.iterdir(), key=lambda f: f.name) if f.name.endswith(".mod")}


def build_directory(sources: dict[str, bytes], version: str) -> Path:
    """The cache directory for a build of *sources* with NEURON *version*."""
    digest = hashlib.sha256(version.encode())
    for name, text in sources.items():
        digest.update(name.encode() + b"\0" + text + b"\0")
    root = os.environ.get("BRIAN_DENDRITE_NRN_CACHE")
    if root:
        base = Path(root)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "brian_dendrite" / "nrnmech"
    return base / f"nrn{version}-{digest.hexdigest()[:16]}"


def _library(folder: Path) -> Path | None:
    found = sorted(folder.glob("*/libnrnmech.so")) + sorted(folder.glob("*/.libs/libnrnmech.so"))
    return found[0] if found else None


def _compile(sources: dict[str, bytes], target: Path) -> None:
    """Run ``nrnivmodl`` in a fresh temporary directory, then move the build to *target*."""
    nrnivmodl = shutil.which("nrnivmodl") or str(Path(sys.executable).with_name("nrnivmodl"))
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="build-", dir=target.parent))
    try:
        for name, text in sources.items():
            (work / name).write_bytes(text)
        try:
            proc = subprocess.run([nrnivmodl], cwd=work, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise MechanismCompileError(f"could not run nrnivmodl ({nrnivmodl}) in {work}: {err}") from None
        if proc.returncode != 0 or _library(work) is None:
            raise MechanismCompileError(
                f"nrnivmodl failed (exit status {proc.returncode}) compiling the MOD files "
                f"{sorted(sources)} in {work}; compiler output:\n{proc.stdout}\n{proc.stderr}"
            )
        try:
            work.rename(target)
        except OSError:  # another process finished the same build first
            if _library(target) is None:
                raise
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def load_mechanisms(sources: dict[str, bytes] | None = None):
    """Compile (if needed) and load the MOD files; return the ``neuron.h`` object.

    Parameters
    ----------
    sources : dict, optional
        MOD file name -> contents; default: the package's own (:func:`mod_sources`).

    Raises
    ------
    ImportError
        NEURON is not installed (the message names the extra to install).
    MechanismCompileError
        ``nrnivmodl`` failed; the message contains the compiler output.
    """
    neuron = require_neuron()
    from neuron import h

    sources = mod_sources() if sources is None else sources
    folder = build_directory(sources, neuron.__version__)
    key = str(folder)
    if key in _LOADED:
        return h
    if _library(folder) is None:
        _compile(sources, folder)
    if not hasattr(h, "BDCell"):  # else already loaded in this process (NEURON cannot unload a library)
        if not neuron.load_mechanisms(str(folder), warn_if_already_loaded=False):
            raise MechanismCompileError(f"neuron.load_mechanisms could not load the build in {folder}")
    _LOADED[key] = True
    h.load_file("stdrun.hoc")
    return h

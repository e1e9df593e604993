"""Provenance of results: software versions, the source commit, and atomic file writes.

Every file that a run leaves behind (checkpoints, summaries, reports) records the
versions of the software that made it (:func:`versions`) and is written atomically:
a temporary file in the destination directory, flushed to disk, then
``os.replace``. A crash or an exception never leaves a partial file under the final
name, and an existing file there stays intact until the new one is complete. A
failed write (a full disk, no permission) raises an :class:`OSError` whose message
names the file and says that the previous one is unchanged.

The git commit of the source tree is looked up the first time :func:`versions` is
called in a process, not at import, and then kept for the life of the process: a
long-lived process (a Dask worker) keeps running the code it imported even after
the checkout moves on, so the commit it reports is the one it saw when it first
needed it. A tree with uncommitted changes to the package gets ``-dirty`` appended;
outside a git checkout (an installed package) no commit is reported.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["json_default", "save_npz_atomic", "source_commit", "versions", "write_json_atomic", "write_text_atomic"]


@functools.cache
def source_commit() -> str | None:
    """The git commit of the package's source tree (None outside git); looked up once per process."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=here)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], capture_output=True, text=True,
                               timeout=5, cwd=here)
        return rev.stdout.strip() + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict:
    """Versions of the software a run uses (``git_commit``: see :func:`source_commit`)."""
    import brian2

    from . import __version__

    out = {"brian_dendrite": __version__, "brian2": brian2.__version__, "numpy": np.__version__,
           "python": platform.python_version()}
    commit = source_commit()
    if commit is not None:
        out["git_commit"] = commit
    return out


def json_default(obj):
    """``json.dump`` hook for numpy scalars and arrays."""
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def _replace_atomically(path: Path, write, mode: str, suffix: str) -> Path:
    """Write a temporary file beside ``path`` with ``write(fh)``, flush it to disk, rename it to ``path``."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=suffix)
    except OSError as err:
        raise _write_error(path, err) from err
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise _write_error(path, err) from err
        raise
    return path


def _write_error(path: Path, err: OSError) -> OSError:
    """``err`` as an OSError of the same class and errno whose message names ``path`` and keeps it intact."""
    reason = err.strerror or str(err)
    previous = "the previous file is unchanged" if path.exists() else "no file was written"
    return type(err)(err.errno, f"could not write {path} ({reason}); {previous}")


def write_json_atomic(path, data) -> Path:
    """Write ``data`` as indented JSON (numpy scalars and arrays allowed) with a final newline, atomically."""

    def write(fh):
        json.dump(data, fh, indent=2, default=json_default)
        fh.write("\n")

    return _replace_atomically(path, write, "w", ".tmp")


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically: the previous file stays in place until the new one is complete."""
    return _replace_atomically(path, lambda fh: fh.write(text), "w", ".tmp")


def save_npz_atomic(path, arrays: dict) -> Path:
    """Write ``arrays`` to the ``.npz`` file ``path`` atomically."""
    return _replace_atomically(path, lambda fh: np.savez(fh, **arrays), "wb", ".tmp.npz")

"""Atomic file writes: a temporary file in the destination directory, then ``os.replace``.

A crash or an exception never leaves a partial file under the final name, and
an existing file there stays intact until the new one is complete.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["save_npz_atomic"]


def save_npz_atomic(path, arrays: dict) -> Path:
    """Write ``arrays`` to the ``.npz`` file ``path`` atomically (flushed to disk first)."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp.npz")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

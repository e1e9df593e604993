"""Small helpers shared by the checks: correlation, cosine similarity, zeroing a network's state."""

from __future__ import annotations

import numpy as np


def _pearson(a, b) -> float:
    """Pearson correlation of two arrays (flattened); NaN for fewer than 3 values or a constant array."""
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.size < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _cos(a, b) -> float:
    """Cosine similarity of two arrays (flattened); NaN if either is zero."""
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return float("nan")
    return float(a @ b / (na * nb))


def _reset_state(net) -> None:
    """Zero the spiking network's state (potentials, traces), keeping its spike generators running."""
    net.reset_state()

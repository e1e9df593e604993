"""The steady state of one layer, as the rate network and its fixed-point solver exchange it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LayerState"]


@dataclass
class LayerState:
    """Steady state of one (hidden or output) layer for a batch or a single example.

    Attributes
    ----------
    B : ndarray
        Basal (hidden) or dendritic (output) potential.
    C : ndarray
        Somatic potential.
    rate : ndarray
        Firing rate ``phi*sigma(C)`` in spikes/ms.
    A : ndarray or None
        Apical potential (hidden layers only).
    """

    B: np.ndarray
    C: np.ndarray
    rate: np.ndarray
    A: np.ndarray | None = None

"""The logistic nonlinearity of the somata and of the plateau potentials (specification 1.3, 1.7)."""

from __future__ import annotations

import numpy as np

try:  # a single, overflow-free ufunc
    from scipy.special import expit as logistic
except ImportError:  # pragma: no cover - scipy is normally installed with the dependencies

    def logistic(x):
        return np.exp(-np.logaddexp(0.0, -x))


__all__ = ["logistic", "sigma", "sigma_prime"]


def sigma(x):
    """Logistic function ``1/(1 + exp(-x))`` (overflow-free)."""
    return logistic(x)


def sigma_prime(x):
    """Derivative of the logistic function, ``sigma(x)(1 - sigma(x))``."""
    s = logistic(x)
    return s * (1.0 - s)

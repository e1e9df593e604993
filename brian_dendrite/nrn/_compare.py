"""Tolerances and error measures of the cross-simulator check (internal)."""

from __future__ import annotations

import numpy as np

__all__ = ["TOLERANCES", "STRICT", "trace_errors", "passes"]

#: Rallpack-style tolerances of the report (Brian2's Rallpack tests: RMS < 0.1 %, max < 0.5 %).
TOLERANCES = {"rel_rms": 1e-3, "rel_max": 5e-3}
#: What the test suite asserts: the two simulators compute the same map, only round-off differs.
STRICT = {"rel_rms": 1e-9, "rel_max": 1e-9}


def trace_errors(reference: np.ndarray, test: np.ndarray) -> dict:
    """Relative RMS and maximum error of *test* against *reference* (any shape, same shape).

    ``rel_rms = rms(test - reference) / rms(reference)``,
    ``rel_max = max|test - reference| / max|reference|``.
    """
    reference, test = np.asarray(reference, dtype=float), np.asarray(test, dtype=float)
    if reference.shape != test.shape:
        raise ValueError(f"shapes differ: reference {reference.shape}, test {test.shape}")
    diff = test - reference
    rms_ref = float(np.sqrt(np.mean(reference**2))) or 1.0
    max_ref = float(np.max(np.abs(reference))) or 1.0
    return {"rel_rms": float(np.sqrt(np.mean(diff**2)) / rms_ref), "rel_max": float(np.max(np.abs(diff)) / max_ref),
            "max_abs": float(np.max(np.abs(diff)))}


def passes(errors: dict, tol: dict) -> bool:
    return errors["rel_rms"] < tol["rel_rms"] and errors["rel_max"] < tol["rel_max"]

"""The PSP kernel as the simulation samples it, and the responses it produces.

The double-exponential kernel (specification section 1.2) is integrated by
Brian2 in steps of ``dt``; what the basal and apical potentials, the soma and the
learning rule actually receive from one spike is the kernel *sampled* at the step,
possibly truncated (section 5, item 3). These functions give those sampled
kernels, their masses (the mean PSP per unit rate, which the rate abstraction uses
as its PSP scale), the somatic response through the simulation's integrator, and
the variance of a window mean of kernel-filtered noise. They are pure functions of
the cell parameters.
"""

from __future__ import annotations

import math

import numpy as np
from brian2 import ms

__all__ = ["KERNEL_STEPS", "cell_floats", "effective_kernel_masses", "psp_kernels", "soma_kernel", "window_variance_factor"]

#: Kernel length in steps for the noise calculations: exp(-300/10) ~ 1e-13.
KERNEL_STEPS = 300


def cell_floats(cell) -> dict:
    """The cell's constants as plain floats in the simulation's units (ms, 1/ms, spikes per step).

    ``cut`` is the kernel truncation in steps (None for the full kernel); ``p_max`` the
    maximal spike probability per step. For the numpy computations of the theory
    (kernels, noise, the mean-field twin).
    """
    dt = float(cell.dt / ms)
    return {
        "dt": dt,
        "tau_L": float(cell.tau_L / ms),
        "tau_s": float(cell.tau_s / ms),
        "g_L": float(cell.g_L * ms),
        "g_B": float(cell.g_B * ms),
        "g_A": float(cell.g_A * ms),
        "g_D": float(cell.g_D * ms),
        "g_teach": float(cell.g_teach * ms),
        "p_max": float(cell.phi_max * cell.dt),
        "cut": None if cell.kernel == "full" else int(round(float(cell.kernel_cutoff / cell.dt))),
        "gain": float(cell.kernel_gain),
    }


def psp_kernels(cell, n_steps: int = KERNEL_STEPS) -> dict:
    """The PSP of one spike (unit weight) as the simulation samples it, step by step.

    Brian2 updates the somatic potential with the traces' values at the *start* of a
    step (before they decay), while the basal/apical potentials and the neuron's own
    PSP ``s_out`` are read after the update. A spike delivered in step ``k`` therefore
    reaches the soma as ``kappa(0), kappa(dt), ...`` from step ``k+1`` and the other
    readers as ``kappa(dt), kappa(2 dt), ...``; with the truncated kernel both stop
    when the delayed truncation pathway removes the spike ``kernel_cutoff`` later.

    Returns
    -------
    dict
        ``"soma"`` and ``"trace"``: arrays indexed by the steps since the spike
        (index 0: the spike's own step, always 0), in PSP units (spikes/ms per spike).
    """
    c = cell_floats(cell)
    m = np.arange(n_steps, dtype=float)
    scale = c["gain"] / (c["tau_L"] - c["tau_s"])  # psp_unit = gain * 1 ms over tau_L - tau_s (ms)

    def kappa(steps):
        t = steps * c["dt"]
        return np.where(steps >= 0, (np.exp(-t / c["tau_L"]) - np.exp(-t / c["tau_s"])) * scale, 0.0)

    soma = np.where(m >= 1, kappa(m - 1), 0.0)
    trace = np.where(m >= 1, kappa(m), 0.0)
    if c["cut"] is not None:
        soma[m - 1 >= c["cut"]] = 0.0
        trace[m > c["cut"]] = 0.0
    return {"soma": soma, "trace": trace}


def effective_kernel_masses(cell) -> dict:
    """Mean PSP per unit presynaptic rate: continuous, and as the soma and the traces see it.

    ``psp_scale`` of the rate model is the continuous integral
    (``cell.kernel_mass``: 1 for the full kernel, 0.490 for the 10-ms truncation).
    The simulation samples the kernel at the time step (:func:`psp_kernels`): the
    soma receives ``sum kappa(0..)`` and the basal potential, the apical potential and
    the learning rule's presynaptic average ``s_mean_f`` receive ``sum kappa(1..)``.
    Full kernel, dt = 1 ms: 0.9972 for both. Truncated: soma 0.4630, traces 0.5104.
    """
    k = psp_kernels(cell)
    dt = float(cell.dt / ms)
    return {
        "continuous": float(cell.kernel_mass),
        "soma": float(k["soma"].sum() * dt),
        "trace": float(k["trace"].sum() * dt),
    }


def soma_kernel(cell, kind: str, n_steps: int = KERNEL_STEPS) -> np.ndarray:
    """Somatic potential response to one presynaptic spike of unit weight, per step.

    ``kind``: ``'hidden'`` (``g_B``, leak ``g_L + g_B + g_A``), ``'output'`` (forward
    and test phases, ``g_D``) or ``'output_target'`` (teaching conductance on). The
    recursion is the simulation's integrator (``cell.method``) applied to the
    soma-sampled kernel of :func:`psp_kernels`.
    """
    c = cell_floats(cell)
    if kind == "hidden":
        gain, a = c["g_B"], c["g_L"] + c["g_B"] + c["g_A"]
    elif kind == "output":
        gain, a = c["g_D"], c["g_L"] + c["g_D"]
    elif kind == "output_target":
        gain, a = c["g_D"], c["g_L"] + c["g_D"] + c["g_teach"]
    else:
        raise ValueError(f"kind = {kind!r}: expected 'hidden', 'output' or 'output_target'")
    u = psp_kernels(cell, n_steps)["soma"]
    if cell.method == "euler":
        keep, inject = 1.0 - a * c["dt"], gain * c["dt"]
    else:
        keep = math.exp(-a * c["dt"])
        inject = gain / a * (1.0 - keep)
    g = np.zeros(n_steps)
    v = 0.0
    for m in range(1, n_steps):
        v = keep * v + inject * u[m]
        g[m] = v
    return g


def window_variance_factor(kernel: np.ndarray, n_window: int) -> float:
    """Variance of a ``n_window``-step mean of ``kernel``-filtered unit-variance white noise.

    For independent per-step sources ``xi_k`` (variance 1) and a response
    ``X_n = sum_k kernel[n-k] xi_k``, returns ``Var(mean_{n<T} X_n)``
    ``= sum_k (sum_n kernel[n-k]/T)^2``; ``n_window = 1`` gives the instantaneous
    variance ``sum kernel**2``.
    """
    if n_window < 1:
        raise ValueError(f"n_window = {n_window}: must be >= 1")
    conv = np.convolve(np.ones(n_window) / n_window, kernel)
    return float(np.sum(conv**2))

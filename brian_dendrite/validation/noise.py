"""Noise theory: how much the spiking network must scatter around its rate abstraction.

Every spike of the network is a Bernoulli draw per time step with probability
``p = p_max sigma(V)`` (``p_max = phi_max dt``). The rate abstraction keeps only the
mean ``p``; the checks need to know how far a spiking measurement may stray from it
through that noise alone. This module gives the answer, analytically:

* :func:`stationary_noise` - the variance of every somatic and apical potential in
  the steady state of one example, from the Bernoulli variance ``p(1-p)`` of every
  layer's spikes propagated through the weights, the PSP kernels
  (:func:`~brian_dendrite.model.soma_kernel`, the apical trace kernel) and the
  slopes of the intermediate layers' rates (first order), instantaneous or averaged
  over a window of ``n_window`` steps (:func:`~brian_dendrite.model.window_variance_factor`).
* :func:`bernoulli_isi_cv` and :func:`bernoulli_fano` - the exact interval and count
  statistics of a Bernoulli spike train at constant ``p``: ISI CV ``sqrt(1 - p)``
  and Fano factor ``1 - p`` (a Poisson process has 1 for both).
* ``_expected_sigma`` - ``E[sigma(V)]`` for a Gaussian ``V`` by Gauss-Hermite
  quadrature: the mean rate of a neuron whose potential fluctuates, which differs
  from ``sigma(E[V])`` (effect (b) of :mod:`brian_dendrite.validation`).

Constants
---------
NOISE_VARIANCE_MARGIN
    1.5: the measured scatter may exceed the predicted (check 1, rates) or the
    repeat-measured (check 2, plateaus) noise variance by at most 50 %.
"""

from __future__ import annotations

import numpy as np

from ..model import KERNEL_STEPS as _KERNEL_STEPS
from ..model import ModelParameters, Weights, cell_floats, psp_kernels, soma_kernel, window_variance_factor
from ..rate import sigma

__all__ = ["NOISE_VARIANCE_MARGIN", "bernoulli_fano", "bernoulli_isi_cv", "stationary_noise"]

#: Gauss-Hermite (probabilists') nodes for E[sigma(V)] with Gaussian V.
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(24)
_GH_W = _GH_W / _GH_W.sum()

#: Noise-variance margin shared by checks 1 and 2: the measured scatter may exceed the
#: predicted (check 1) or repeat-measured (check 2) noise variance by at most 50 %.
NOISE_VARIANCE_MARGIN = 1.5


def _expected_sigma(mu, var):
    """E[sigma(V)] for V ~ N(mu, var), elementwise (Gauss-Hermite)."""
    mu = np.asarray(mu, dtype=float)
    sd = np.sqrt(np.maximum(np.asarray(var, dtype=float), 0.0))
    return np.sum(sigma(mu[..., None] + sd[..., None] * _GH_X) * _GH_W, axis=-1)


def stationary_noise(params: ModelParameters, weights: Weights, example: dict, phase: str = "forward",
                     n_window: int = 1) -> dict:
    """Variances of the potentials of one example's steady state, from Bernoulli spiking.

    Every layer's spikes are independent Bernoulli draws with variance ``p(1-p)``
    per step around the rate model's probabilities ``p``; their effect on a potential
    downstream is followed through the weights, the kernels of every layer
    (:func:`~brian_dendrite.model.soma_kernel`, the apical trace kernel) and the slopes
    ``d p/d V = p_max sigma'(C)`` of the intermediate layers (first order), so that
    rate fluctuations inherited from upstream noise (doubly stochastic spiking and
    the correlations it creates) are included. The loop through the apical
    conductance (``g_A > 0``) is ignored.

    Parameters
    ----------
    params : ModelParameters
        The model (cell constants, kernel).
    weights : Weights
        The weights the example was computed with.
    example : dict
        Output of :meth:`RateNetwork.example_quantities` (or a dict with ``s_in`` and
        per-layer ``C_f`` / ``C_t`` and ``rates_f`` / ``rates_t``); with ``pixels``
        the input probabilities are taken from the pixels.
    phase : {'forward', 'target'}
        Forward (and test) phase or target phase (teaching conductance on).
    n_window : int
        Length of the averaging window in steps (default 1: instantaneous variance).

    Returns
    -------
    dict
        ``"V"``: per non-input layer, the variance of the (window-averaged) somatic
        potential; ``"A"``: per hidden layer, that of the apical potential;
        ``"V_inst"`` and ``"A_inst"`` the instantaneous variances.

    Raises
    ------
    ValueError
        For a ``phase`` other than ``'forward'`` or ``'target'``.
    """
    cell = params.cell
    c = cell_floats(cell)
    suffix = "f" if phase == "forward" else "t"
    if phase not in ("forward", "target"):
        raise ValueError(f"phase = {phase!r}: expected 'forward' or 'target'")
    n_layers = len(weights.W)
    n_hidden = n_layers - 1
    rate_unit = c["dt"]  # rates in spikes/ms -> probability per step
    p_in = np.asarray(example["s_in"], dtype=float)
    # s_in = psp_scale * phi * pixel: recover the input probability from the pixels if given
    if "pixels" in example:
        p_in = c["p_max"] * np.asarray(example["pixels"], dtype=float)
    else:
        scale = float(example.get("psp_scale", cell.kernel_mass))
        p_in = p_in * rate_unit / scale if scale > 0 else p_in * 0
    probs = [p_in] + [np.asarray(r, dtype=float) * rate_unit for r in example[f"rates_{suffix}"]]
    Cs = [np.asarray(v, dtype=float) for v in example[f"C_{suffix}"]]
    slopes = [c["p_max"] * sigma(C) * (1 - sigma(C)) for C in Cs]
    kinds = ["hidden"] * n_hidden + ["output" if phase == "forward" else "output_target"]
    kernels = [soma_kernel(cell, k) for k in kinds]
    trace = psp_kernels(cell)["trace"]
    src_var = [p * (1 - p) for p in probs]

    def total(paths, n_win):
        out = 0.0
        for src, M, K in paths:
            out = out + (M**2) @ src_var[src] * window_variance_factor(K, n_win)
        return out

    paths_prev = None
    V_win, V_inst, layer_paths = [], [], []
    for lay in range(n_layers):
        W = np.asarray(weights.W[lay], dtype=float)
        K = kernels[lay]
        paths = [(lay, W, K)]
        if paths_prev is not None:
            d = slopes[lay - 1]
            for src, M, Kp in paths_prev:
                paths.append((src, W @ (d[:, None] * M), np.convolve(K, Kp)[:_KERNEL_STEPS * 2]))
        V_win.append(total(paths, n_window))
        V_inst.append(total(paths, 1))
        layer_paths.append(paths)
        paths_prev = paths
    A_win, A_inst = [], []
    d_out = slopes[-1]
    for h in range(n_hidden):
        Y = np.asarray(weights.Y[h], dtype=float)
        paths = [(n_layers, Y, trace)]
        for src, M, Kp in layer_paths[-1]:
            paths.append((src, Y @ (d_out[:, None] * M), np.convolve(trace, Kp)[:_KERNEL_STEPS * 2]))
        A_win.append(total(paths, n_window))
        A_inst.append(total(paths, 1))
    return {"V": V_win, "V_inst": V_inst, "A": A_win, "A_inst": A_inst}


def bernoulli_isi_cv(p) -> np.ndarray:
    """Exact ISI CV of a Bernoulli process with probability ``p`` per step: ``sqrt(1 - p)``.

    Intervals are geometric on {1, 2, ...} steps: mean ``1/p``, variance
    ``(1-p)/p**2``. A Poisson process has CV 1; the one-spike-per-step grid makes the
    Bernoulli process more regular (CV 0.894 at 200 Hz and dt = 1 ms).

    Parameters
    ----------
    p : array_like
        Spike probability per time step, in [0, 1].

    Returns
    -------
    numpy.ndarray
        The coefficient of variation of the inter-spike intervals.

    Examples
    --------
    >>> float(bernoulli_isi_cv(0.2))  # 200 Hz at dt = 1 ms
    0.894427190999916
    """
    return np.sqrt(1.0 - np.asarray(p, dtype=float))


def bernoulli_fano(p) -> np.ndarray:
    """Fano factor of the count of a Bernoulli process over any window: ``1 - p`` (binomial).

    Parameters
    ----------
    p : array_like
        Spike probability per time step, in [0, 1].

    Returns
    -------
    numpy.ndarray
        Variance over mean of the spike count in a window of any length.

    Examples
    --------
    >>> float(bernoulli_fano(0.05))
    0.95
    """
    return 1.0 - np.asarray(p, dtype=float)

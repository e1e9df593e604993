"""The rate abstraction of the same cells: steady states, and the rate network."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from brian2 import ms

from ..model import CellParameters, ModelParameters, Weights
from ._checks import check_choice, check_dimensionless, check_quantity, resolve_parameters

if TYPE_CHECKING:  # imported when used: the spiking network's processes need not import the rate model
    from ..rate import RateNetwork

__all__ = ["steady_state", "rate_model"]


def steady_state(
    basal,
    apical=0.0,
    params: CellParameters | ModelParameters | None = None,
    *,
    kind: str = "pyramidal",
    g_E=0 / ms,
    g_I=0 / ms,
):
    """Steady-state somatic potential and rate of a neuron whose dendrites are held constant.

    The rate abstraction of :func:`pyramidal_neurons` and :func:`output_neurons`
    (specification section 4, Lemma 1): with the dendritic potentials constant, the
    soma relaxes to the weighted mean of its inputs and fires at
    ``phi_max * sigma(V_soma)`` on average::

        pyramidal: V_soma = (g_B V_basal + g_A V_apical) / (g_L + g_B + g_A)
        output:    V_soma = (g_D V_basal + g_E E_E + g_I E_I) / (g_L + g_D + g_E + g_I)

    Parameters
    ----------
    basal : float or array
        Basal potential ``V_basal`` (dimensionless).
    apical : float or array
        Apical potential ``V_apical`` (pyramidal only; default 0).
    params : CellParameters or ModelParameters, optional
        Default: the paper's.
    kind : {'pyramidal', 'output'}
    g_E, g_I : Quantity
        Teaching conductances in 1/ms (output only; default 0).

    Returns
    -------
    V_soma : ndarray
        Dimensionless, with the broadcast shape of the inputs.
    rate : Quantity
        In Hz.

    Raises
    ------
    ValueError
        Unknown ``kind``, units on a potential, conductances not in 1/ms, NaN, or
        ``apical`` given for an output neuron.

    Examples
    --------
    >>> V, rate = steady_state(0.0)
    >>> float(V), float(rate)  # rate in Hz
    (0.0, 100.0)
    """
    kind = check_choice(kind, ("pyramidal", "output"), "kind")
    cell, _, _ = resolve_parameters(params)
    B = check_dimensionless(basal, "basal", shape=np.shape(basal))
    A = check_dimensionless(apical, "apical", shape=np.shape(apical))
    if kind == "pyramidal":
        g_L, g_B, g_A = (float(g * ms) for g in (cell.g_L, cell.g_B, cell.g_A))
        V = (g_B * B + g_A * A) / (g_L + g_B + g_A)
    else:
        if np.any(A != 0):
            raise ValueError("apical: output neurons have no apical dendrite")
        gE = float(check_quantity(g_E, 1 / ms, "g_E", nonnegative=True) * ms)
        gI = float(check_quantity(g_I, 1 / ms, "g_I", nonnegative=True) * ms)
        g_L, g_D = float(cell.g_L * ms), float(cell.g_D * ms)
        V = (g_D * B + gE * cell.E_E + gI * cell.E_I) / (g_L + g_D + gE + gI)
    return V, cell.phi_max / (1 + np.exp(-V))


def rate_model(params: ModelParameters | None = None, weights: Weights | None = None, **options) -> RateNetwork:
    """The rate network of the same parameters (:class:`brian_dendrite.rate.RateNetwork`).

    Parameters
    ----------
    params : ModelParameters, optional
        Default: ``ModelParameters()``, the paper's one-hidden-layer network.
    weights : Weights, optional
        Initial weights (default: drawn with ``rng``, see :class:`~brian_dendrite.rate.RateNetwork`).
    **options
        ``rng``, ``psp_scale``, ``drive_scale``, ``tol``, ``max_iter``: passed on.

    Returns
    -------
    RateNetwork

    Raises
    ------
    TypeError
        ``params`` not a ModelParameters, ``weights`` not a Weights, or an unknown option.
    """
    if params is None:
        params = ModelParameters()
    if not isinstance(params, ModelParameters):
        raise TypeError(f"params: expected ModelParameters (the rate network needs the layer sizes), "
                        f"got {type(params).__name__}")
    if weights is not None and not isinstance(weights, Weights):
        raise TypeError(f"weights: expected brian_dendrite.model.Weights, got {type(weights).__name__}")
    unknown = set(options) - {"rng", "psp_scale", "drive_scale", "tol", "max_iter"}
    if unknown:
        raise TypeError(f"rate_model: unknown option(s) {sorted(unknown)}; valid: rng, psp_scale, drive_scale, "
                        "tol, max_iter")
    from ..rate import RateNetwork

    return RateNetwork(params, weights=weights, **options)


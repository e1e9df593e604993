"""Factories of the synapses: kernel synapses onto a site, and the plastic basal synapses of the rule."""

from __future__ import annotations

import numbers

import numpy as np
from brian2 import NeuronGroup, Synapses

from ..model import (
    HIDDEN_DELTA,
    OUTPUT_DELTA,
    WEIGHT_UPDATE,
    CellParameters,
    ModelParameters,
    kernel_synapses,
)
from ._checks import (
    cell_of,
    check_choice,
    check_clock,
    check_dimensionless,
    check_source,
    check_target,
    check_weights,
    resolve_parameters,
)

__all__ = ["SITES", "dendritic_synapses", "learning_rule"]

#: The sites a synapse can target.
SITES = ("basal", "apical", "soma")

#: Namespace key holding a target's learning scale (set once, by the first learning_rule onto it).
_SCALE = "learning_scale"


def _connect(syn: Synapses, connect) -> bool:
    """Connect as asked; True when the result is all-to-all."""
    if connect is True:
        syn.connect()
        return True
    if connect is False or connect is None:
        return False
    if isinstance(connect, str):
        syn.connect(condition=connect)
        return False
    if isinstance(connect, dict):
        unknown = set(connect) - {"condition", "i", "j", "p", "n", "skip_if_invalid"}
        if unknown:
            raise ValueError(f"connect: unknown keys {sorted(unknown)}; Synapses.connect takes condition, i, j, p, n")
        syn.connect(**connect)
        return False
    raise TypeError(f"connect = {connect!r}: expected True, False, a condition string or a dict of "
                    "Synapses.connect arguments")


def _assign_weights(syn: Synapses, weights, all_to_all: bool, connected: bool) -> None:
    value = check_weights(weights, len(syn.source), len(syn.target), all_to_all)
    if value is None:
        return
    if not connected:
        raise ValueError("weights: cannot be set with connect=False (connect the synapses, then set w)")
    if np.ndim(value) == 1 and len(value) != len(syn):
        raise ValueError(f"weights has shape ({len(value)},), expected one value per synapse: ({len(syn)},)")
    syn.w[:] = value


def _check_name(name):
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name = {name!r}: expected a string")


def dendritic_synapses(
    source,
    target: NeuronGroup,
    site: str = "basal",
    weights=None,
    params: CellParameters | ModelParameters | None = None,
    *,
    connect=True,
    name: str | None = None,
) -> Synapses:
    """Kernel synapses from *source* onto the ``site`` of *target* (specification 1.2).

    A presynaptic spike adds the weight ``w`` to two traces of the target's
    site; their difference is the spike train filtered by the double-exponential
    kernel ``kappa(t) = (exp(-t/tau_L) - exp(-t/tau_s)) / (tau_L - tau_s)``, so
    ``psp_<site> = sum_j w_j s_j``. Event-driven: the work is proportional to the
    number of spikes.

    Parameters
    ----------
    source : SpikeSource
        Any Brian2 group that emits spikes (``NeuronGroup``, ``PoissonGroup``,
        ``SpikeGeneratorGroup``, the groups of this module).
    target : NeuronGroup
        Built by :func:`pyramidal_neurons` or :func:`output_neurons`.
    site : {'basal', 'apical', 'soma'}
        Output neurons have no apical site; ``'soma'`` needs a target built with
        ``somatic_input=True``.
    weights : float, array or None
        Dimensionless weights: a scalar; one value per synapse (in the order
        of ``connect``); or, with ``connect=True``, an ``(len(target), len(source))``
        matrix (the paper's ``W[post, pre]``). Default None: ``w = 0``.
    params : CellParameters or ModelParameters, optional
        The kernel (``kernel``, ``kernel_cutoff``) and ``dt``; default: those the
        target was built with.
    connect : bool, str or dict
        True (default): all-to-all; a string: a connection condition; a dict: the
        arguments of ``Synapses.connect``; False: not connected.
    name : str, optional
        Brian2 name; default ``<source>_to_<target>_<site>``.

    Returns
    -------
    Synapses
        Variable ``w`` (dimensionless). Not added to any network.

    Raises
    ------
    TypeError, ValueError
        An unknown ``site`` (the valid ones are listed), a ``target`` without
        that site, ``weights`` with units, NaN or the wrong shape (the expected
        shape is given), a wrong ``connect``.
    """
    check_source(source, "source")
    site = check_choice(site, SITES, "site")
    check_target(target, site, "target")
    _check_name(name)
    cell = cell_of(target, params)
    check_clock(source, cell)
    syn = kernel_synapses(source, target, site, cell, name=name)
    all_to_all = _connect(syn, connect)
    _assign_weights(syn, weights, all_to_all, connect is not False and connect is not None)
    return syn


def _attach_postsynaptic(target: NeuronGroup, scale: float) -> None:
    """The error and bias update on the target's ``learn`` event, attached once per target."""
    if _SCALE in target.namespace:
        if target.namespace[_SCALE] != scale:
            raise ValueError(
                f"learning_rate: target {target.name!r} already learns with scale {target.namespace[_SCALE]:.6g} "
                f"(learning_rate * error_scale * k) from another learning_rule; one rate per target layer"
            )
        return
    code = HIDDEN_DELTA if "c_apical" in target.variables else OUTPUT_DELTA
    target.namespace[_SCALE] = scale
    target.run_on_event("learn", code, when="before_synapses", order=2)


def learning_rule(
    source: NeuronGroup,
    target: NeuronGroup,
    weights=None,
    learning_rate: float = 0.21,
    params: CellParameters | ModelParameters | None = None,
    *,
    error_scale: float | None = None,
    connect=True,
    name: str | None = None,
) -> Synapses:
    """Plastic basal synapses from *source* to *target* with the paper's local learning rule.

    The synapses deliver spikes to the basal dendrite like
    :func:`dendritic_synapses`, and at the end of every target phase (the
    ``learn`` event) update their weights and the target's bias
    (specification 1.8-1.10, normalised form with rates in spikes/ms)::

        output target:    delta = eta * error_scale * k_D * (rate_mean_t - sigma(V_mean_f)) * sigma'(V_mean_f)
        pyramidal target: delta = eta * error_scale * k_B * (alpha_t - alpha_f) * sigma'(V_mean_f)
        w += delta_post * s_mean_f_pre;   b_basal += delta

    Parameters
    ----------
    source : NeuronGroup
        Built by :func:`input_neurons`, :func:`pyramidal_neurons` or
        :func:`output_neurons` with ``phases``: it supplies the forward-window
        mean PSP ``s_mean_f`` and the ``learn_pre`` event.
    target : NeuronGroup
        Built by :func:`output_neurons` or :func:`pyramidal_neurons` (with
        ``plateau=True``) with the same phases.
    weights, connect, name
        As for :func:`dendritic_synapses`.
    learning_rate : float
        The paper's ``eta`` for this target layer (dimensionless, >= 0; default
        0.21, the paper's one-hidden-layer network). Every learning rule onto the same
        target must use the same rate (it also scales the target's bias update).
    params : CellParameters or ModelParameters, optional
        Gives ``k_B``/``k_D`` (and ``error_scale`` from a ModelParameters);
        default: those the target was built with.
    error_scale : float, optional
        The 20 of ``P_hidden = 20/phi_max`` (default: ``NetworkParameters.error_scale``).

    Returns
    -------
    Synapses
        Variable ``w``; pathways ``pre`` (spike delivery) and ``learn`` (the update).
        The target's ``learn`` event code (``delta``, ``b_basal``) is attached to the
        target group itself.

    Raises
    ------
    TypeError, ValueError
        As for :func:`dendritic_synapses`; a ``source`` or ``target`` that lacks
        the rule's variables or events (built without phases, or a pyramidal target
        without plateaus), a negative or NaN ``learning_rate``, or a rate that
        differs from one already attached to the target.

    Notes
    -----
    The update runs in the time step of the ``learn`` event, in the ``synapses``
    slot after the target computed ``delta`` (``before_synapses``). The target's
    part is an object contained in the target group: call :func:`learning_rule`
    before adding the target to a ``Network`` (Brian2 collects a group's contained
    objects when the group is added).
    """
    check_source(source, "source")
    check_target(target, "basal", "target")
    _check_name(name)
    if "learn_pre" not in getattr(source, "events", {}) or "s_mean_f" not in source.variables:
        raise ValueError(f"source {getattr(source, 'name', source)!r} has no 'learn_pre' event or 's_mean_f': build "
                         "it with input_neurons, pyramidal_neurons or output_neurons and phases=...")
    if "learn" not in target.events or "delta" not in target.variables:
        raise ValueError(f"target {target.name!r} has no 'learn' event or 'delta': build it with "
                         "pyramidal_neurons or output_neurons and phases=...")
    pyramidal = "c_apical" in target.variables
    if pyramidal and "plateau" not in target.events:
        raise ValueError(f"target {target.name!r} has no plateaus: build it with plateau=True (the hidden-layer "
                         "error is alpha_t - alpha_f)")
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real):
        raise TypeError(f"learning_rate = {learning_rate!r}: expected a non-negative number")
    eta = float(check_dimensionless(learning_rate, "learning_rate"))
    if eta < 0:
        raise ValueError(f"learning_rate = {learning_rate}: expected a non-negative number")
    cell = cell_of(target, params)
    check_clock(source, cell)
    if error_scale is None:
        _, _, net = resolve_parameters(params)
        error_scale = net.error_scale
    scale_factor = float(check_dimensionless(error_scale, "error_scale"))
    k = cell.k_B if pyramidal else cell.k_D
    _attach_postsynaptic(target, eta * scale_factor * k)
    syn = kernel_synapses(source, target, "basal", cell, extra_pathways={"learn": WEIGHT_UPDATE},
                          extra_events={"learn": "learn_pre"}, name=name)
    all_to_all = _connect(syn, connect)
    _assign_weights(syn, weights, all_to_all, connect is not False and connect is not None)
    return syn

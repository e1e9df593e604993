"""Factories of the neuron groups: pyramidal, output and rate-driven input neurons."""

from __future__ import annotations

import numpy as np
from brian2 import Equations, Hz, NeuronGroup

from ..model import (
    LEARN_CONDITION,
    LEARN_PRE_CONDITION,
    CellParameters,
    ModelParameters,
    ProtocolParameters,
    input_group,
    output_group,
    pyramidal_group,
)
from ._checks import CELL_ATTRIBUTE, check_choice, check_count, check_flag, check_quantity, resolve_parameters
from ._phases import phase_arrays

__all__ = ["pyramidal_neurons", "output_neurons", "input_neurons"]

#: Both teaching modes of :func:`output_neurons`.
TEACHING = ("parameters", "phases")


def _learning_events(phases, presynaptic_only: bool = False) -> dict:
    """The learning rule's events (none without phases: they could never fire)."""
    if phases is None:
        return {}
    events = {"learn_pre": LEARN_PRE_CONDITION}
    if not presynaptic_only:
        events["learn"] = LEARN_CONDITION
    return events


def _finish(group: NeuronGroup, cell: CellParameters) -> NeuronGroup:
    # The presynaptic side of the rule is exact (every update applied, see learning_rule).
    group.namespace.setdefault("skip_psp_below", 0.0)
    setattr(group, CELL_ATTRIBUTE, cell)
    return group


def pyramidal_neurons(
    N: int,
    params: CellParameters | ModelParameters | None = None,
    *,
    phases=None,
    plateau: bool = False,
    somatic_input: bool = False,
    protocol: ProtocolParameters | None = None,
    method: str | None = None,
    name: str = "pyramidal*",
) -> NeuronGroup:
    """A population of segregated-dendrite pyramidal neurons (specification 1.3, 1.7).

    Each neuron has a basal dendrite, an apical dendrite and a soma that emits
    spikes stochastically at ``rate = phi_max * sigma(V_soma)``. The dendrites
    are driven by :func:`dendritic_synapses` (or :func:`learning_rule` for plastic
    basal input); ``b_basal`` and ``c_apical`` are constant biases the user may set.

    Parameters
    ----------
    N : int
        Number of neurons (positive).
    params : CellParameters or ModelParameters, optional
        The cell parameters (a ModelParameters also supplies the protocol).
        Default: the paper's, ``CellParameters()``.
    phases : list of (str, Quantity[, int]), TimedArray, PhaseSchedule or dict, optional
        The phases the neurons go through (see :func:`phase_schedule`): e.g.
        ``[('forward', 100*ms), ('target', 100*ms)]``. Default None: no phases, the
        neurons only integrate and spike (no ``phase_end``, ``plateau`` or learning events).
    plateau : bool
        Compute the apical plateau potentials ``alpha_f``, ``alpha_t`` near the end of
        every forward and target phase and define the ``plateau`` event (needs
        ``phases``). Default False.
    somatic_input : bool
        Also accept synapses onto the soma (site ``'soma'`` of :func:`dendritic_synapses`).
        Default False.
    protocol : ProtocolParameters, optional
        Averaging windows and plateau timing (default: that of ``params`` or the paper's).
    method : {'exponential_euler', 'euler'}, optional
        Overrides ``params.method``.
    name : str
        Brian2 name of the group (``*`` makes it unique).

    Returns
    -------
    NeuronGroup
        Not added to any network: add it to yours (or use Brian2's ``run``).

    Raises
    ------
    TypeError, ValueError
        A non-integer or non-positive ``N``, wrong ``params``, ``phases``,
        ``method``, or ``plateau=True`` without phases; the message names the argument.

    Notes
    -----
    Potentials, weights and PSPs are dimensionless (specification section 5, item 1);
    conductances are per unit capacitance.

    =================== ========== =====================================================
    Variable            Unit       Meaning
    =================== ========== =====================================================
    ``V_soma``          1          somatic potential
    ``V_basal``         1          basal potential, ``psp_basal + b_basal``
    ``V_apical``        1          apical potential, ``psp_apical + c_apical``
    ``b_basal``         1          basal bias (learnt by :func:`learning_rule`)
    ``c_apical``        1          apical bias
    ``psp_basal``       1          weighted kernel-filtered input, ``sum_j w_j s_j``
    ``psp_apical``      1          the same for the apical dendrite
    ``psp_soma``        1          the same for the soma (``somatic_input=True`` only)
    ``rate``            Hz         ``phi_max * sigma(V_soma)``, the spike probability per dt
    ``s_out``           1          own spike train filtered by the kernel (spikes/ms)
    ``phase``           integer    current phase code (0 forward, 1 target, 2 test, -1 none)
    ``steps_left``      integer    steps until the end of the phase
    ``V_mean_f``        1          mean ``V_soma`` over the last forward window
    ``s_mean_f``        1          mean ``s_out`` over the last forward window
    ``rate_mean_t``     1          mean ``rate / phi_max`` over the last target window
    ``alpha_f``         1          forward plateau ``sigma(mean V_apical)`` (``plateau=True``)
    ``alpha_t``         1          target plateau (``plateau=True``)
    ``t_plateau``       second     time of the last plateau
    ``delta``           1          local error of the last learning step (with phases)
    =================== ========== =====================================================

    Events: ``spike``; with phases also ``phase_end`` (last step of a phase),
    ``learn`` and ``learn_pre`` (last step of a target phase, used by
    :func:`learning_rule`) and, with ``plateau=True``, ``plateau``.

    The soma follows ``dV_soma/dt = -g_L V_soma + g_B (V_basal - V_soma) + g_A (V_apical - V_soma)``
    (with ``somatic_input``, ``-g_L (V_soma - psp_soma)`` replaces the leak).

    Examples
    --------
    >>> from brian2 import ms, prefs
    >>> prefs.codegen.target = "numpy"
    >>> group = pyramidal_neurons(5, phases=[("forward", 60 * ms), ("target", 60 * ms)], plateau=True)
    >>> sorted(e for e in group.events)
    ['learn', 'learn_pre', 'phase_end', 'plateau', 'spike']
    """
    n = check_count(N, "N")
    cell, prot, _ = resolve_parameters(params, protocol, method)
    plateau = check_flag(plateau, "plateau")
    somatic_input = check_flag(somatic_input, "somatic_input")
    if plateau and phases is None:
        raise ValueError("plateau=True needs phases: plateaus happen near the end of forward and target phases")
    arrays = phase_arrays(phases, cell, prot)
    group = pyramidal_group(n, cell, prot, arrays, name=name, extra_equations=Equations("delta : 1"),
                            extra_events=_learning_events(phases), plateau=plateau, somatic_input=somatic_input)
    return _finish(group, cell)


def output_neurons(
    N: int,
    params: CellParameters | ModelParameters | None = None,
    *,
    phases=None,
    teaching: str = "parameters",
    somatic_input: bool = False,
    protocol: ProtocolParameters | None = None,
    method: str | None = None,
    name: str = "output*",
) -> NeuronGroup:
    """A population of output neurons: basal dendrite, soma and teaching conductances (specification 1.4).

    Parameters
    ----------
    N : int
        Number of neurons (positive).
    params, phases, somatic_input, protocol, method, name
        As for :func:`pyramidal_neurons`.
    teaching : {'parameters', 'phases'}
        ``'parameters'`` (default): the teaching conductances ``g_E`` and ``g_I``
        (1/ms, initially 0) are per-neuron parameters the user sets.
        ``'phases'``: in every target phase, the neuron whose index equals the phase's
        label gets ``g_E = g_teach`` and every other neuron ``g_I = g_teach`` (as in the
        paper); needs ``phases`` with labels, e.g. ``('target', 100*ms, 3)``.

    Returns
    -------
    NeuronGroup

    Raises
    ------
    TypeError, ValueError
        As for :func:`pyramidal_neurons`; an unknown ``teaching``, or a label
        outside ``[0, N)``.

    Notes
    -----
    The variables of :func:`pyramidal_neurons` without the apical ones
    (``V_apical``, ``c_apical``, ``alpha_*``), and:

    ========== ========== ===========================================================
    Variable   Unit       Meaning
    ========== ========== ===========================================================
    ``g_E``    1/second   excitatory teaching conductance (reversal ``E_E``)
    ``g_I``    1/second   inhibitory teaching conductance (reversal ``E_I``)
    ========== ========== ===========================================================

    ``dV_soma/dt = -g_L V_soma + g_D (V_basal - V_soma) + g_E (E_E - V_soma) + g_I (E_I - V_soma)``.
    Events: ``spike``; with phases ``phase_end``, ``learn`` and ``learn_pre``.
    """
    n = check_count(N, "N")
    cell, prot, _ = resolve_parameters(params, protocol, method)
    teaching = check_choice(teaching, TEACHING, "teaching")
    somatic_input = check_flag(somatic_input, "somatic_input")
    arrays = phase_arrays(phases, cell, prot)
    if teaching == "phases":
        if phases is None:
            raise ValueError("teaching='phases' needs phases with labels, e.g. ('target', 100*ms, 3)")
        labels = np.asarray(arrays["sched_label"].values)
        if labels.max() >= n:
            raise ValueError(f"phases: label {int(labels.max())} has no output neuron (teaching='phases', N = {n})")
    group = output_group(n, cell, arrays, teaching="schedule" if teaching == "phases" else "parameters",
                         name=name, extra_equations=Equations("delta : 1"), extra_events=_learning_events(phases),
                         somatic_input=somatic_input)
    return _finish(group, cell)


def input_neurons(
    N: int,
    rates,
    params: CellParameters | ModelParameters | None = None,
    *,
    phases=None,
    protocol: ProtocolParameters | None = None,
    name: str = "input*",
) -> NeuronGroup:
    """Poisson-like input neurons that keep the traces the learning rule needs (specification 1.1).

    Like a ``PoissonGroup`` (one Bernoulli draw per step with probability
    ``rate * dt``), but each neuron also filters its spikes with the PSP kernel
    (``s_out``) and averages it over the forward window (``s_mean_f``), which makes it a
    valid presynaptic group for :func:`learning_rule`. For plain drive a
    ``PoissonGroup`` is enough.

    Parameters
    ----------
    N : int
        Number of neurons (positive).
    rates : Quantity
        Firing rates in Hz, a scalar or one per neuron; at most ``1/dt``. The
        variable ``rate`` can be changed later (e.g. between runs).
    params, phases, protocol, name
        As for :func:`pyramidal_neurons`.

    Returns
    -------
    NeuronGroup
        Variables ``rate`` (Hz), ``s_out``, ``s_mean_f`` (1); events ``spike`` and,
        with phases, ``phase_end`` and ``learn_pre``.

    Raises
    ------
    TypeError, ValueError
        A wrong ``N``, ``rates`` not in Hz, of the wrong shape, negative, NaN or above ``1/dt``.
    """
    n = check_count(N, "N")
    cell, prot, _ = resolve_parameters(params, protocol)
    rates = check_quantity(rates, Hz, "rates", shape_n=n, nonnegative=True)
    if np.any(np.asarray(rates * cell.dt) > 1):
        raise ValueError(f"rates: at most one spike per step dt = {cell.dt}, i.e. {1 / cell.dt} (got max "
                         f"{np.max(rates)})")
    arrays = phase_arrays(phases, cell, prot)
    group = input_group(n, cell, arrays, None, name=name, extra_events=_learning_events(phases, True))
    group.rate = rates
    return _finish(group, cell)

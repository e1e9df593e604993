"""Event-driven synapses onto a dendritic site, with the PSP kernel.

A presynaptic spike adds the weight ``w`` to the postsynaptic traces
``x_<site>_L`` and ``x_<site>_s`` (see :mod:`brian_dendrite.model.equations`): the work
is proportional to the number of spikes, not to the number of synapses per step
(BRIAN2-NOTES.md, item 2: a summed variable is about 7x slower).

With ``cell.kernel == 'truncated'`` a second pathway, delayed by
``kernel_cutoff``, removes exactly what the spike still contributes at that time,
so the kernel is ``kappa(t)`` for ``0 <= t <= cutoff`` and zero afterwards. Sampled
at dt = 1 ms, the dendritic potentials (``V_basal``, ``V_apical``) and the learning
rule's presynaptic average see ``kappa(1..10)`` (sum 0.510, as in the published
code, specification section 5, item 3); the soma, integrated from the traces' values
at the start of each step, sees ``kappa(0..9)`` (sum 0.463). A spike emitted in
step ``t`` reaches the dendritic potentials in step ``t + 1`` and the soma in
step ``t + 2`` (the published code: ``kappa(1)`` in the same step). The neuron's own trace (``s_out``, the learning rule's
presynaptic PSP) is truncated likewise by :func:`own_trace_truncation`.
"""

from __future__ import annotations

import numpy as np
from brian2 import NeuronGroup, Synapses

from .parameters import CellParameters

__all__ = ["kernel_synapses", "own_trace_truncation", "deliver_code"]


def deliver_code(site: str, weight: str = "w") -> str:
    """Abstract code adding ``weight`` to the two traces of ``site`` (postsynaptic)."""
    return f"x_{site}_L_post += {weight}\nx_{site}_s_post += {weight}"


def _truncate_code(site: str, weight: str = "w") -> str:
    return f"x_{site}_L_post -= {weight} * decay_L_cut\nx_{site}_s_post -= {weight} * decay_s_cut"


def truncation_namespace(cell: CellParameters) -> dict:
    """Decay of a trace over the kernel cutoff (what a spike still contributes then)."""
    return {
        "decay_L_cut": float(np.exp(-float(cell.kernel_cutoff / cell.tau_L))),
        "decay_s_cut": float(np.exp(-float(cell.kernel_cutoff / cell.tau_s))),
    }


def kernel_synapses(
    source: NeuronGroup,
    target: NeuronGroup,
    site: str,
    cell: CellParameters,
    model: str = "w : 1",
    extra_pathways: dict | None = None,
    extra_events: dict | None = None,
    on_post: str | None = None,
    name: str | None = None,
    namespace: dict | None = None,
    clock=None,
) -> Synapses:
    """Synapses from *source* onto the ``site`` dendrite of *target*.

    Parameters
    ----------
    site : {'basal', 'apical', 'soma'}
        ``'soma'`` needs a target built with ``somatic_input=True``.
    model : str
        Synaptic model; must define the weight ``w``.
    extra_pathways, extra_events : dict, optional
        Further ``on_pre`` pathways and the events that trigger them (the
        learning rule, see :mod:`brian_dendrite.model.plasticity`).
    on_post : str, optional
        Code run on postsynaptic spikes (symmetric feedback through the same weights).
    clock : brian2.Clock, optional
        Run on this clock (of step ``cell.dt``) instead of a clock of its own.

    Returns
    -------
    Synapses
        Not yet connected.
    """
    if site not in ("basal", "apical", "soma"):
        raise ValueError(f"site = {site!r}: expected 'basal', 'apical' or 'soma'")
    on_pre = {"pre": deliver_code(site)}
    on_event = {"pre": "spike"}
    ns = dict(namespace or {})
    delays = {}
    if cell.kernel == "truncated":
        on_pre["truncate"] = _truncate_code(site)
        on_event["truncate"] = "spike"
        ns.update(truncation_namespace(cell))
        delays["truncate"] = cell.kernel_cutoff
    if extra_pathways:
        on_pre.update(extra_pathways)
        on_event.update(extra_events or {})
    syn = Synapses(
        source,
        target,
        model=model,
        on_pre=on_pre,
        on_post=on_post,
        on_event=on_event,
        namespace=ns,
        delay=delays or None,
        name=name or f"{source.name}_to_{target.name}_{site}",
        **({"dt": cell.dt} if clock is None else {"clock": clock}),
    )
    return syn


def own_trace_truncation(group: NeuronGroup, cell: CellParameters, clock=None) -> Synapses | None:
    """Truncate a group's own spike-train trace ``s_out`` after ``kernel_cutoff``.

    Returns ``None`` for the full kernel; otherwise a one-to-one delayed synapse
    object that must be added to the network (on ``clock`` if given).
    """
    if cell.kernel != "truncated":
        return None
    syn = Synapses(
        group,
        group,
        on_pre="y_L_post -= decay_L_cut\ny_s_post -= decay_s_cut",
        namespace=truncation_namespace(cell),
        delay=cell.kernel_cutoff,
        name=f"{group.name}_own_truncation",
        **({"dt": cell.dt} if clock is None else {"clock": clock}),
    )
    syn.connect(j="i")
    return syn

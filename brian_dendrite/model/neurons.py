"""Neuron groups: pyramidal (hidden), output and input neurons, with their events.

Every group carries its own ``namespace`` (cell parameters and the schedule's
``TimedArray`` s), so it never depends on the caller's variables, and these
Brian2 events:

``spike``
    stochastic spiking at ``rate = phi_max * sigma(V_soma)`` (Bernoulli per step,
    probability ``rate * dt``; specification section 5, item 5: the published code draws
    Poisson counts, with the same mean and slightly higher variance). The draw is
    made by inversion of the survival function, one uniform number per spike
    instead of one per step (see
    :func:`~brian_dendrite.model.equations.spike_generator_equations`).
``phase_end``
    the last step of every phase; the window means of the phase are stored
    (``V_mean_f``, ``s_mean_f``, ``rate_mean_t``, ``V_mean_test``, ``rate_mean_test``).
``plateau`` (pyramidal only)
    the apical plateau potential: on the step ``plateau_offset`` steps before the
    end of a forward or target phase, ``alpha = sigma(mean V_apical over the
    window ending there)`` is computed and held in ``alpha_f`` or ``alpha_t``
    (specification 1.7). With ``stochastic_plateau`` every neuron draws its own offset
    per phase (specification 1.13: ``min(|int(N(0, sd))|, max)`` steps).

Scheduling within a time step: state update (``groups``), rate, then window sums
(``before_thresholds``), event detection (``thresholds``), plateau and phase-end
bookkeeping (``before_synapses``), synaptic propagation and learning
(``synapses``).
"""

from __future__ import annotations

import numpy as np
from brian2 import NeuronGroup, ms

from .equations import (
    TEACHING_PARAMETERS,
    accumulator_equations,
    input_equations,
    output_equations,
    pyramidal_equations,
    schedule_equations,
    teaching_from_schedule,
)
from .parameters import CellParameters, ProtocolParameters
from .schedule import FORWARD, TARGET, TEST

__all__ = [
    "cell_namespace",
    "pyramidal_group",
    "output_group",
    "input_group",
    "PSP_UNIT",
]

#: The rate unit of the PSPs seen by dendrites and the learning rule (spikes/ms).
PSP_UNIT = 1 * ms

_SPIKE_RESET = "y_L += 1\ny_s += 1\nspike_u = 1 - rand()\nspike_survival = 1"

#: Spike when the survival probability since the last spike falls below its uniform draw.
_SPIKE_THRESHOLD = "spike_survival < spike_u"

#: Every step, before the threshold: the rate from the updated potential, and the survival.
_RATE = """
rate = phi_max / (1 + exp(-V_soma))
spike_survival *= 1 - rate * dt
"""

_SURVIVAL_INPUT = """
spike_survival *= 1 - rate * dt
"""

#: Every step, after :data:`_RATE` (its own loop, see :func:`_attach_bookkeeping`): the window sums.
_ACCUMULATE = """
restart = int(steps_left == window_steps - 1)
V_sum = in_window * (V_sum * (1 - restart) + V_soma) + (1 - in_window) * V_sum
s_sum = in_window * (s_sum * (1 - restart) + s_out) + (1 - in_window) * s_sum
rate_sum = in_window * (rate_sum * (1 - restart) + rate / phi_max) + (1 - in_window) * rate_sum
"""

_ACCUMULATE_INPUT = """
restart = int(steps_left == window_steps - 1)
s_sum = in_window * (s_sum * (1 - restart) + s_out) + (1 - in_window) * s_sum
"""

_ACCUMULATE_APICAL = """
restart_A = int(steps_left == plateau_offset + window_steps - 1)
A_sum = in_plateau_window * (A_sum * (1 - restart_A) + V_apical) + (1 - in_plateau_window) * A_sum
"""

_PHASE_END = f"""
is_f = int(phase == {FORWARD})
is_t = int(phase == {TARGET})
is_test = int(phase == {TEST})
V_mean_f = is_f * V_sum / window_steps + (1 - is_f) * V_mean_f
s_mean_f = is_f * s_sum / window_steps + (1 - is_f) * s_mean_f
rate_mean_t = is_t * rate_sum / window_steps + (1 - is_t) * rate_mean_t
V_mean_test = is_test * V_sum / window_steps + (1 - is_test) * V_mean_test
rate_mean_test = is_test * rate_sum / window_steps + (1 - is_test) * rate_mean_test
"""

_PHASE_END_INPUT = f"""
is_f = int(phase == {FORWARD})
s_mean_f = is_f * s_sum / window_steps + (1 - is_f) * s_mean_f
"""

_PLATEAU = f"""
A_mean = A_sum / window_steps
alpha = 1 / (1 + exp(-A_mean))
is_f = int(phase == {FORWARD})
is_t = int(phase == {TARGET})
alpha_f = is_f * alpha + (1 - is_f) * alpha_f
alpha_t = is_t * alpha + (1 - is_t) * alpha_t
A_mean_f = is_f * A_mean + (1 - is_f) * A_mean_f
A_mean_t = is_t * A_mean + (1 - is_t) * A_mean_t
t_plateau = t
"""

#: A new plateau offset per neuron for the next phase (specification 1.13).
_DRAW_OFFSET = "plateau_offset = int(clip(abs(int(offset_sd_steps * randn())), 0, offset_max_steps))\n"


def cell_namespace(cell: CellParameters) -> dict:
    """Namespace entries of the cell parameters used by the equations."""
    dt = cell.dt
    if cell.method == "euler":
        # Forward Euler decays a trace by (1 - dt/tau) per step; this tau makes that exp(-dt/tau).
        tau_L_step = dt / (1 - np.exp(-float(dt / cell.tau_L)))
        tau_s_step = dt / (1 - np.exp(-float(dt / cell.tau_s)))
    else:
        tau_L_step, tau_s_step = cell.tau_L, cell.tau_s
    return {
        "phi_max": cell.phi_max,
        "tau_L": cell.tau_L,
        "tau_s": cell.tau_s,
        "tau_L_step": tau_L_step,
        "tau_s_step": tau_s_step,
        "psp_unit": PSP_UNIT * cell.kernel_gain,
        "g_L": cell.g_L,
        "g_B": cell.g_B,
        "g_A": cell.g_A,
        "g_D": cell.g_D,
        "g_teach": cell.g_teach,
        "E_E": cell.E_E,
        "E_I": cell.E_I,
    }


def _namespace(cell, schedule_arrays, extra=None):
    ns = cell_namespace(cell)
    ns.update(schedule_arrays)
    if extra:
        ns.update(extra)
    return ns


def _extend(eqs, extra):
    return eqs if extra is None else eqs + extra


def _events(plateau: bool) -> dict:
    events = {"phase_end": "steps_left == 0"}
    if plateau:
        events["plateau"] = f"(phase == {FORWARD} or phase == {TARGET}) and steps_left == plateau_offset"
    return events


def _timing(cell: CellParameters, clock) -> dict:
    """``clock=`` (one clock shared by the network's objects) if given, else ``dt=cell.dt``."""
    return {"dt": cell.dt} if clock is None else {"clock": clock}


def _attach_bookkeeping(group: NeuronGroup, rate: str, accumulate: str, phase_end: str) -> None:
    """The per-step rate and survival (``<name>_rate``), then the window sums (``<name>_accumulate``).

    Two loops, in this order: the rate's ``exp`` (a call into libm) stays in a loop of its
    own, so that the window sums form a loop without calls, which the compiler can vectorise
    (cpp_standalone, :func:`~brian_dendrite.simulation._dense.use_step_code`). The same
    operations as in one loop, on every target.
    """
    group.spike_u = "1 - rand()"
    group.spike_survival = 1
    group.run_regularly(rate, when="before_thresholds", order=0, name=f"{group.name}_rate")
    group.run_regularly(accumulate, when="before_thresholds", order=1, name=f"{group.name}_accumulate")
    group.run_on_event("phase_end", phase_end, when="before_synapses", order=1)


def pyramidal_group(
    n: int,
    cell: CellParameters,
    protocol: ProtocolParameters,
    schedule_arrays: dict,
    name: str = "hidden*",
    extra_namespace: dict | None = None,
    extra_equations=None,
    extra_events: dict | None = None,
    plateau: bool = True,
    somatic_input: bool = False,
    clock=None,
) -> NeuronGroup:
    """A population of hidden-layer pyramidal neurons (specification 1.3, 1.7).

    Parameters
    ----------
    n : int
        Number of neurons.
    cell : CellParameters
    protocol : ProtocolParameters
        Gives the plateau-time rule (``stochastic_plateau``).
    schedule_arrays : dict
        The ``sched_*`` TimedArrays of a :class:`~brian_dendrite.model.schedule.PhaseSchedule`.
    name : str
        Brian2 name of the group.
    plateau : bool
        Define the ``plateau`` event and compute ``alpha_f``, ``alpha_t`` (default True;
        False leaves them 0 and saves the apical window sums).
    somatic_input : bool
        Accept synapses onto the soma (see
        :func:`~brian_dendrite.model.equations.pyramidal_equations`; default False).
    clock : brian2.Clock, optional
        Run on this clock (of step ``cell.dt``) instead of a clock of its own: a network
        whose objects share one clock has less per-step scheduling work.

    Returns
    -------
    NeuronGroup
        With events ``spike``, ``plateau`` and ``phase_end``; ``b_basal`` and
        ``c_apical`` are the basal bias and the (optional) apical bias.
    """
    eqs = _extend(pyramidal_equations(somatic_input) + schedule_equations() + accumulator_equations("pyramidal"),
                  extra_equations)
    extra = dict(extra_namespace or {})
    extra["offset_sd_steps"] = float(protocol.plateau_offset_sd / cell.dt)
    extra["offset_max_steps"] = int(round(float(protocol.plateau_offset_max / cell.dt)))
    events = {**_events(plateau=plateau), **(extra_events or {})}
    group = NeuronGroup(
        n,
        eqs,
        threshold=_SPIKE_THRESHOLD,
        reset=_SPIKE_RESET,
        events=events,
        method=cell.method,
        namespace=_namespace(cell, schedule_arrays, extra),
        name=name,
        **_timing(cell, clock),
    )
    phase_end = _PHASE_END
    if protocol.stochastic_plateau and plateau:
        # Drawn on the last step of a phase (after its plateau), valid for the next phase.
        phase_end += _DRAW_OFFSET
        group.plateau_offset = _DRAW_OFFSET.split(" = ", 1)[1].strip()
    group.rate = "phi_max / (1 + exp(-V_soma))"
    if not plateau:
        _attach_bookkeeping(group, _RATE, _ACCUMULATE, phase_end)
        return group
    _attach_bookkeeping(group, _RATE, _ACCUMULATE + _ACCUMULATE_APICAL, phase_end)
    group.run_on_event("plateau", _PLATEAU, when="before_synapses", order=0)
    return group


def output_group(
    n: int,
    cell: CellParameters,
    schedule_arrays: dict,
    teaching: str = "schedule",
    name: str = "output*",
    extra_namespace: dict | None = None,
    extra_equations=None,
    extra_events: dict | None = None,
    somatic_input: bool = False,
    clock=None,
) -> NeuronGroup:
    """A population of output neurons with teaching conductances (specification 1.4).

    Parameters
    ----------
    teaching : {'schedule', 'parameters'}
        ``'schedule'``: in the target phase neuron ``class_index == label`` gets
        ``g_E = g_teach``, the others ``g_I = g_teach`` (the network's case);
        ``'parameters'``: ``g_E`` and ``g_I`` are parameters set by the user.
    somatic_input : bool
        Accept synapses onto the soma (default False).
    clock : brian2.Clock, optional
        As for :func:`pyramidal_group`.
    """
    if teaching == "schedule":
        teach = teaching_from_schedule()
    elif teaching == "parameters":
        teach = TEACHING_PARAMETERS
    else:
        raise ValueError(f"teaching = {teaching!r}: expected 'schedule' or 'parameters'")
    eqs = _extend(output_equations(somatic_input) + teach + schedule_equations() + accumulator_equations("output"), extra_equations)
    group = NeuronGroup(
        n,
        eqs,
        threshold=_SPIKE_THRESHOLD,
        reset=_SPIKE_RESET,
        events={**_events(plateau=False), **(extra_events or {})},
        method=cell.method,
        namespace=_namespace(cell, schedule_arrays, extra_namespace),
        name=name,
        **_timing(cell, clock),
    )
    if teaching == "schedule":
        group.class_index = np.arange(n) % max(n, 1)
    group.rate = "phi_max / (1 + exp(-V_soma))"
    _attach_bookkeeping(group, _RATE, _ACCUMULATE, _PHASE_END)
    return group


def input_group(
    n: int,
    cell: CellParameters,
    schedule_arrays: dict,
    images,
    name: str = "input*",
    extra_equations=None,
    extra_events: dict | None = None,
    clock=None,
) -> NeuronGroup:
    """Poisson input neurons at ``phi_max * pixel`` (specification 1.1).

    ``images`` is a 2-D ``TimedArray`` indexed by ``(example * ms, i)`` with
    pixel values in [0, 1]; ``None`` makes ``rate`` (Hz) a parameter set by the
    user instead. ``clock`` as for :func:`pyramidal_group`.
    """
    eqs = _extend(input_equations(rate_parameter=images is None) + schedule_equations() + accumulator_equations("input"), extra_equations)
    group = NeuronGroup(
        n,
        eqs,
        threshold=_SPIKE_THRESHOLD,
        reset=_SPIKE_RESET,
        events={**_events(plateau=False), **(extra_events or {})},
        method=cell.method,
        namespace=_namespace(cell, schedule_arrays, None if images is None else {"images": images}),
        name=name,
        **_timing(cell, clock),
    )
    _attach_bookkeeping(group, _SURVIVAL_INPUT, _ACCUMULATE_INPUT, _PHASE_END_INPUT)
    return group

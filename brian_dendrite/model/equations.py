"""Brian2 equations of the compartments (specification sections 1.2-1.4).

The equations are written once, with canonical names, and composed with ``+``
(never patched as strings). Potentials and weights are dimensionless,
conductances are per unit capacitance (``1/ms``), see
:mod:`brian_dendrite.model.parameters`.

Synaptic input is event-driven: a presynaptic spike adds the synaptic weight to
two postsynaptic traces ``x_<site>_L`` and ``x_<site>_s`` that decay with
``tau_L`` and ``tau_s``; their difference divided by ``tau_L - tau_s`` is the
weighted sum of the presynaptic spike trains filtered by the double-exponential
kernel (specification Eq. 11-12)::

    kappa(t) = (exp(-t/tau_L) - exp(-t/tau_s)) / (tau_L - tau_s),  t >= 0

which integrates to 1. Every neuron also filters its *own* spike train with the
same kernel (``y_L``, ``y_s``): that is the presynaptic PSP ``s_j`` of the
learning rule, a per-neuron quantity because the kernel has no per-synapse part.

The dendritic potentials are expressed with the PSP unit spikes/ms (``psp_unit =
1 ms``), so that weights have the meaning they have in the paper (specification
section 5, item 1).

Integration: the traces always decay exactly. ``method='exponential_euler'``
integrates the somatic potentials exactly for dendritic input held constant over
a time step; ``method='euler'`` is forward Euler as in the published code (its
traces use step-corrected time constants ``dt/(1 - exp(-dt/tau))`` so that they
still decay exactly).
"""

from __future__ import annotations

from brian2 import Equations

from .schedule import FORWARD, TARGET

__all__ = [
    "trace_equations",
    "own_trace_equations",
    "pyramidal_equations",
    "output_equations",
    "input_equations",
    "schedule_equations",
    "accumulator_equations",
    "TEACHING_PARAMETERS",
    "teaching_from_schedule",
    "spike_generator_equations",
]

#: Two traces per dendritic site; ``psp_<site>`` is sum_j w_j s_j (dimensionless).
_TRACES = """
dx_SITE_L/dt = -x_SITE_L/tau_L_step : 1
dx_SITE_s/dt = -x_SITE_s/tau_s_step : 1
psp_SITE = (x_SITE_L - x_SITE_s) * psp_unit / (tau_L - tau_s) : 1
"""


def trace_equations(site: str) -> Equations:
    """Kernel-filtered synaptic input at a site (``basal``, ``apical`` or ``soma``)."""
    return Equations(
        _TRACES,
        x_SITE_L=f"x_{site}_L",
        x_SITE_s=f"x_{site}_s",
        psp_SITE=f"psp_{site}",
    )


def own_trace_equations() -> Equations:
    """The neuron's own spike train filtered by the kernel (spikes/ms, dimensionless).

    ``s_out`` is the presynaptic PSP ``s_j`` that downstream weights see and that
    the learning rule averages (specification Eq. 11-12).
    """
    return Equations(
        """
        dy_L/dt = -y_L/tau_L_step : 1
        dy_s/dt = -y_s/tau_s_step : 1
        s_out = (y_L - y_s) * psp_unit / (tau_L - tau_s) : 1
        """
    )


def spike_generator_equations() -> Equations:
    """State of the Bernoulli spike generator (specification section 5, item 5).

    A neuron spikes in a time step with probability ``p = rate * dt``, independently
    of its past given ``rate``. Instead of one uniform number per neuron and step,
    the generator draws one per spike: ``spike_u`` is uniform in (0, 1],
    ``spike_survival`` the product of ``1 - p`` over the steps since the last spike,
    and the neuron spikes in the first step in which ``spike_survival < spike_u``
    (then both are renewed). Given no spike so far, ``spike_u`` is uniform on
    ``(0, S_prev]``, so the spike probability of the step is
    ``(S_prev - S_prev (1 - p)) / S_prev = p``: exactly the Bernoulli process, for
    any sequence of rates, at the cost of a multiplication per step.
    """
    return Equations(
        """
        spike_u : 1
        spike_survival : 1
        """
    )


#: Kernel-filtered synaptic input onto the soma itself: it shifts the leak's reversal
#: potential, ``-g_L (V_soma - psp_soma)`` (not part of the paper's model; used by
#: :mod:`brian_dendrite.cells` for somatic synapses).
_SOMA_LEAK = {False: "-g_L*V_soma", True: "-g_L*(V_soma - psp_soma)"}


def _somatic(soma: Equations, somatic_input: bool) -> Equations:
    return soma + trace_equations("soma") if somatic_input else soma


def pyramidal_equations(somatic_input: bool = False) -> Equations:
    """Hidden-layer neuron: basal, apical and somatic compartments (specification 1.3).

    ``C_m dV_soma/dt = -g_L V_soma + g_B (V_basal - V_soma) + g_A (V_apical - V_soma)``
    with ``C_m = 1``; rate ``phi_max * sigma(V_soma)``, stored once per step (after
    the state update, before the spike threshold) by the group's accumulation
    code, so that sigma is evaluated once per neuron and step.

    Parameters
    ----------
    somatic_input : bool
        Also accept kernel-filtered synaptic input onto the soma (traces
        ``x_soma_L``, ``x_soma_s``, ``psp_soma``), entering as
        ``-g_L (V_soma - psp_soma)`` in place of the leak ``-g_L V_soma``.
        Default False: the paper's neuron, unchanged.
    """
    leak = _SOMA_LEAK[bool(somatic_input)]
    soma = Equations(
        f"""
        dV_soma/dt = {leak} + g_B*(V_basal - V_soma) + g_A*(V_apical - V_soma) : 1
        V_basal = psp_basal + b_basal : 1
        V_apical = psp_apical + c_apical : 1
        b_basal : 1
        c_apical : 1
        rate : Hz
        """
    )
    dendrites = trace_equations("basal") + trace_equations("apical")
    return _somatic(soma, somatic_input) + dendrites + own_trace_equations() + spike_generator_equations()


def output_equations(somatic_input: bool = False) -> Equations:
    """Output neuron: basal dendrite and soma with teaching conductances (specification 1.4).

    ``C_m dV_soma/dt = -g_L V_soma + g_D (V_basal - V_soma) + g_E (E_E - V_soma) + g_I (E_I - V_soma)``
    (the published code's form: the teaching conductances enter unscaled, specification
    section 5, item 2; the paper-literal form is ``g_teach = g_L``). ``g_E`` and
    ``g_I`` are defined by adding either :data:`TEACHING_PARAMETERS` (set by the
    user) or :func:`teaching_from_schedule` (switched by the phase schedule).
    ``somatic_input`` as for :func:`pyramidal_equations`.
    """
    leak = _SOMA_LEAK[bool(somatic_input)]
    soma = Equations(
        f"""
        dV_soma/dt = {leak} + g_D*(V_basal - V_soma) + g_E*(E_E - V_soma) + g_I*(E_I - V_soma) : 1
        V_basal = psp_basal + b_basal : 1
        b_basal : 1
        rate : Hz
        """
    )
    return _somatic(soma, somatic_input) + trace_equations("basal") + own_trace_equations() + spike_generator_equations()


#: Teaching conductances as plain parameters (for studying the cell alone).
TEACHING_PARAMETERS = Equations(
    """
    g_E : 1/second
    g_I : 1/second
    """
)


def teaching_from_schedule() -> Equations:
    """Teaching conductances driven by the schedule: in the target phase the
    neuron of the example's label gets ``g_E = g_teach``, all others ``g_I = g_teach``."""
    return Equations(
        f"""
        g_E = g_teach * int(phase == {TARGET}) * int(label == class_index) : 1/second
        g_I = g_teach * int(phase == {TARGET}) * int(label != class_index) : 1/second
        class_index : integer (constant)
        """
    )


def input_equations(rate_parameter: bool = False) -> Equations:
    """Input (pixel) neuron: Poisson at ``phi_max * pixel`` (specification 1.1).

    ``pixel`` (in [0, 1]) is read from the image of the current example; the
    input is silent in idle padding (``phase == IDLE``). With ``rate_parameter``
    the rate is instead a per-neuron parameter ``rate`` (Hz) set by the user, not
    gated by the phase.
    """
    if rate_parameter:
        return Equations("rate : Hz") + own_trace_equations() + spike_generator_equations()
    # IDLE is the only code below FORWARD: "phase >= FORWARD" is "not idle"
    return (
        Equations(
            f"""
            pixel = images(example * ms, i) : 1
            rate = phi_max * pixel * int(phase >= {FORWARD}) : Hz
            """
        )
        + own_trace_equations()
        + spike_generator_equations()
    )


def schedule_equations() -> Equations:
    """Per-step schedule values, read once per step and group (shared).

    ``phase`` is a phase code of :mod:`~brian_dendrite.model.schedule` (``FORWARD``,
    ``TARGET``, ``TEST`` or ``IDLE``); ``steps_left`` counts the steps until the end
    of the phase (0 on its last step); ``window_steps`` is the length of the phase's
    averaging window; ``example`` and ``label`` identify the current example.
    """
    return Equations(
        """
        phase = int(sched_phase(t)) : integer (shared, constant over dt)
        steps_left = int(sched_steps_left(t)) : integer (shared, constant over dt)
        window_steps = int(sched_window_steps(t)) : integer (shared, constant over dt)
        example = int(sched_example(t)) : integer (shared, constant over dt)
        label = int(sched_label(t)) : integer (shared, constant over dt)
        in_window = int(steps_left < window_steps) : integer (shared)
        """
    )


def accumulator_equations(kind: str) -> Equations:
    """Window sums and the values held at phase ends and plateaus.

    ``*_sum`` accumulate over the current phase's averaging window; at the phase
    end their means are stored in ``V_mean_f`` (forward soma), ``s_mean_f``
    (forward own PSP, spikes/ms), ``rate_mean_t`` (target-phase rate, as a
    fraction of ``phi_max``) and, for the test phase, ``V_mean_test`` and
    ``rate_mean_test``. Pyramidal neurons also hold their plateau potentials
    ``alpha_f`` and ``alpha_t`` (sigma of the window-mean apical potential, specification
    1.7) and the time of their last plateau. Input neurons only need ``s_mean_f``.

    Parameters
    ----------
    kind : {'input', 'output', 'pyramidal'}
    """
    if kind not in ("input", "output", "pyramidal"):
        raise ValueError(f"kind = {kind!r}: expected 'input', 'output' or 'pyramidal'")
    eqs = Equations(
        """
        s_sum : 1
        s_mean_f : 1
        """
    )
    if kind == "input":
        return eqs
    eqs += Equations(
        """
        V_sum : 1
        rate_sum : 1
        V_mean_f : 1
        rate_mean_t : 1
        V_mean_test : 1
        rate_mean_test : 1
        """
    )
    if kind == "pyramidal":
        eqs += Equations(
            """
            plateau_offset : integer
            A_sum : 1
            alpha_f : 1
            alpha_t : 1
            A_mean_f : 1
            A_mean_t : 1
            t_plateau : second
            in_plateau_window = int(steps_left >= plateau_offset and steps_left < plateau_offset + window_steps) : integer
            """
        )
    return eqs

"""The local learning rule as Brian2 event code (specification 1.8-1.10).

At the end of every target phase a ``learn`` event fires in every layer (a
shared condition, ``phase == TARGET and steps_left == 0``). In that time step:

1. ``before_synapses``, postsynaptic side: every hidden and output neuron turns
   the window averages it has kept into its local error ``delta`` and updates
   its bias (:data:`HIDDEN_DELTA`, :data:`OUTPUT_DELTA`);
2. ``synapses``: the presynaptic neurons' ``learn_pre`` event drives a synaptic
   pathway ``w += delta_post * s_mean_f_pre`` (:data:`WEIGHT_UPDATE`), so the
   update walks the synapses in their storage (presynaptic) order
   (BRIAN2-NOTES.md, item 4). ``learn_pre`` is the ``learn`` condition restricted
   to presynaptic neurons with ``s_mean_f > skip_psp_below``
   (:data:`LEARN_PRE_CONDITION`, ``NetworkParameters.skip_psp_below``): an input
   pixel that has been dark for a few examples has a PSP average of order
   ``exp(-200 ms / tau_L)`` and its 500 updates of that size are skipped, which
   removes about 2/3 of the update work on MNIST (0 = every update, exactly).

In normalised form (rates in spikes/ms, ``P_hidden = 20/phi_max``,
``P_final = 20/phi_max**2``)::

    output:  delta = eta * 20 * k_D * (rate_mean_t - sigma(V_mean_f)) * sigma'(V_mean_f)
    hidden:  delta = eta * 20 * k_B * (alpha_t - alpha_f) * sigma'(V_mean_f)
    W += delta s_mean_f^T,  b += delta

where ``rate_mean_t`` is the target-window average of ``sigma(V)`` (the average
of the rate divided by ``phi_max``, specification 1.8 and section 5, item 14) and
``s_mean_f`` the forward-window average of the presynaptic PSP (spikes/ms).
The factor ``eta * 20 * k`` is the namespace constant ``learning_scale``.
"""

from __future__ import annotations

from .parameters import ModelParameters
from .schedule import TARGET

__all__ = ["HIDDEN_DELTA", "OUTPUT_DELTA", "WEIGHT_UPDATE", "LEARN_CONDITION", "LEARN_PRE_CONDITION",
           "learning_scales"]

#: The ``learn`` event of every layer: the last time step of each target phase.
LEARN_CONDITION = f"phase == {TARGET} and steps_left == 0"

#: The presynaptic trigger of the weight update (``skip_psp_below`` in the group's namespace).
LEARN_PRE_CONDITION = LEARN_CONDITION + " and s_mean_f > skip_psp_below"

#: Event code of a hidden neuron at ``learn``: its local error ``delta`` and bias update.
HIDDEN_DELTA = """
sig_f = 1 / (1 + exp(-V_mean_f))
delta = learning_scale * (alpha_t - alpha_f) * sig_f * (1 - sig_f)
b_basal += delta
"""

#: Event code of an output neuron at ``learn``: its local error ``delta`` and bias update.
OUTPUT_DELTA = """
sig_f = 1 / (1 + exp(-V_mean_f))
delta = learning_scale * (rate_mean_t - sig_f) * sig_f * (1 - sig_f)
b_basal += delta
"""

#: Synaptic code of the weight update, run on the presynaptic ``learn_pre`` event.
WEIGHT_UPDATE = "w += delta_post * s_mean_f_pre"


def learning_scales(params: ModelParameters) -> list[float]:
    """``eta * error_scale * k`` per layer (hidden layers with k_B, the output with k_D)."""
    net, cell = params.network, params.cell
    ks = [cell.k_B] * len(net.hidden) + [cell.k_D]
    return [float(eta * net.error_scale * k) for eta, k in zip(net.learning_rates, ks, strict=True)]

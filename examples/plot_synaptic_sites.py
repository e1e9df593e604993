"""
Synapses onto the basal, apical and somatic sites
=================================================

:func:`brian_dendrite.dendritic_synapses` connects any spiking Brian2 group to
one site of a pyramidal neuron. A presynaptic spike of weight ``w`` adds
``w * kappa(t)`` to the site's PSP, with the double-exponential kernel
``kappa(t) = (exp(-t/tau_L) - exp(-t/tau_s)) / (tau_L - tau_s)`` (``tau_s = 3 ms``,
``tau_L = 10 ms``). The basal potential drives the soma through ``g_B``; the
apical potential reaches it only through ``g_A`` (zero in the paper's main
model); somatic synapses (``somatic_input=True``) shift the leak's reversal
potential.
"""

# %%
# One spike onto each site
# ------------------------
# Three pyramidal neurons with a small apical conductance; the same presynaptic
# spike train (a ``SpikeGeneratorGroup`` at the cells' 1 ms step) reaches neuron 0
# on its basal dendrite, neuron 1 on its apical dendrite and neuron 2 on its soma.
import matplotlib.pyplot as plt
import numpy as np
from brian2 import Network, SpikeGeneratorGroup, StateMonitor, ms, prefs

from brian_dendrite import CellParameters, dendritic_synapses, pyramidal_neurons

prefs.codegen.target = "numpy"

cell = CellParameters(g_A=0.05 / ms)
cells = pyramidal_neurons(3, cell, somatic_input=True)
spike = SpikeGeneratorGroup(1, [0, 0, 0], [10, 12, 14] * ms, dt=cell.dt)
synapses = [
    dendritic_synapses(spike, cells, site, weights=20.0, connect={"j": str(k)})
    for k, site in enumerate(("basal", "apical", "soma"))
]
record = StateMonitor(cells, ["psp_basal", "psp_apical", "psp_soma", "V_soma"], record=True)
Network(cells, spike, *synapses, record).run(80 * ms)

# %%
# Plot
# ----
# Top: the PSP at the site that received the spikes. Bottom: the somatic
# potential of each neuron; the rate is ``phi_max * sigma(V_soma)``.
fig, axes = plt.subplots(2, 1, figsize=(6, 5), sharex=True)
for k, site in enumerate(("basal", "apical", "soma")):
    axes[0].plot(record.t / ms, getattr(record, f"psp_{site}")[k], label=f"psp_{site} (neuron {k})")
    axes[1].plot(record.t / ms, record.V_soma[k], label=f"V_soma, input on the {site} site")
axes[0].set(ylabel="PSP")
axes[1].set(xlabel="time (ms)", ylabel="V_soma")
for ax in axes:
    ax.legend(fontsize="small")
fig.tight_layout()

peaks = record.V_soma.max(axis=1)
print("peak V_soma for basal, apical, somatic input:", np.round(peaks, 3))

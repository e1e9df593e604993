"""
Spiking cells and their rate abstraction
========================================

The rate abstraction replaces a neuron by the steady state of its compartments:
with constant dendritic potentials the soma relaxes to

``V_soma = (g_B V_basal + g_A V_apical) / (g_L + g_B + g_A)``

and fires at ``phi_max * sigma(V_soma)`` on average (the paper's Lemma 1).
:func:`brian_dendrite.steady_state` computes it; here a spiking population built
by :func:`brian_dendrite.pyramidal_neurons` is compared with it over a range of
basal potentials, with and without apical input.
"""

# %%
# The spiking neurons
# -------------------
# Constant biases set the dendritic potentials (``b_basal``, ``c_apical``); without
# phases the neurons only integrate and spike. A small apical conductance
# ``g_A`` lets the apical potential reach the soma.
import matplotlib.pyplot as plt
import numpy as np
from brian2 import Network, SpikeMonitor, ms, prefs, second, seed

from brian_dendrite import CellParameters, pyramidal_neurons, steady_state

prefs.codegen.target = "numpy"
seed(3)

cell = CellParameters(g_A=0.05 / ms)
basal = np.repeat(np.linspace(-4, 4, 9), 2)
apical = np.tile([0.0, 4.0], 9)
group = pyramidal_neurons(len(basal), cell)
group.b_basal = basal
group.c_apical = apical
spikes = SpikeMonitor(group)
net = Network(group, spikes)
net.run(100 * ms)  # settle (10 membrane time constants of the soma)
spikes_before = np.bincount(spikes.i, minlength=len(basal))
duration = 2 * second
net.run(duration)
counts = np.bincount(spikes.i, minlength=len(basal)) - spikes_before
measured = counts / float(duration / second)

# %%
# Compare with the steady state
# -----------------------------
# The rate of a Bernoulli process over 2 s has a standard error of
# ``sqrt(rate / 2 s)``; the error bars show it.
curve = np.linspace(-4, 4, 200)
fig, ax = plt.subplots(figsize=(6, 4))
for A, color in ((0.0, "C0"), (4.0, "C1")):
    _, rate = steady_state(curve, A, cell)
    ax.plot(curve, rate, color=color, label=f"rate abstraction, V_apical = {A:g}")
    sel = apical == A
    ax.errorbar(basal[sel], measured[sel], yerr=np.sqrt(measured[sel] / 2), fmt="o", color=color,
                label=f"spiking, V_apical = {A:g}")
ax.set(xlabel="basal potential V_basal", ylabel="rate (Hz)")
ax.legend()
fig.tight_layout()

_, predicted = steady_state(basal, apical, cell)
print("largest deviation from the rate abstraction: "
      f"{np.max(np.abs(measured - np.asarray(predicted))):.1f} Hz")

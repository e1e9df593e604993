"""
A pyramidal population with feedback
====================================

A population of segregated-dendrite pyramidal neurons in a network built with
plain Brian2: Poisson inputs drive the basal dendrites, the population drives a
second population, and that population feeds back onto the apical dendrites.
Near the end of every forward and target phase each pyramidal neuron computes
its plateau potential ``alpha = sigma(mean V_apical)``, available as the
``plateau`` event.

Nothing here needs MNIST or the package's training schedule: the phases are the
user's own.
"""

# %%
# Build the network
# -----------------
# The factories return ordinary ``NeuronGroup`` and ``Synapses`` objects. All
# groups run at the cell's time step (1 ms), so the Poisson inputs are built with
# ``dt=1*ms``. The phases are a list of ``(kind, duration)``.
import matplotlib.pyplot as plt
import numpy as np
from brian2 import EventMonitor, Hz, Network, PoissonGroup, SpikeMonitor, StateMonitor, ms, prefs, seed

from brian_dendrite import dendritic_synapses, pyramidal_neurons

prefs.codegen.target = "numpy"  # no compilation: the example runs in a few seconds
seed(1)
rng = np.random.default_rng(1)

phases = [("forward", 100 * ms), ("target", 100 * ms)]
inputs = PoissonGroup(40, rates=np.linspace(5, 80, 40) * Hz, dt=1 * ms)
hidden = pyramidal_neurons(20, phases=phases, plateau=True)
top = pyramidal_neurons(5, phases=phases)
hidden.b_basal = -1.0
top.b_basal = -3.0

basal = dendritic_synapses(inputs, hidden, "basal", weights=rng.normal(0.1, 0.5, (20, 40)))
up = dendritic_synapses(hidden, top, "basal", weights=rng.normal(0.3, 0.5, (5, 20)))
feedback = dendritic_synapses(top, hidden, "apical", weights=rng.normal(0, 2, (20, 5)))

# %%
# In the target phase the top population is pushed up (its basal bias ``b_basal``,
# switched by the user between the two ``run`` calls, goes from -3 to 3): the apical
# potentials of the hidden neurons follow, and so do their target-phase plateaus.
spikes = SpikeMonitor(hidden)
top_spikes = SpikeMonitor(top)
apical = StateMonitor(hidden, "V_apical", record=[0, 1, 2])
plateaus = EventMonitor(hidden, "plateau", variables=["alpha_f", "alpha_t"], when="after_synapses")
net = Network(inputs, hidden, top, basal, up, feedback, spikes, top_spikes, apical, plateaus)
net.run(100 * ms)
top.b_basal = 3.0
net.run(100 * ms)

# %%
# Plot
# ----
# Spikes of both populations, the apical potentials of three hidden neurons and the
# plateau potentials at the end of each phase.
fig, axes = plt.subplots(3, 1, figsize=(7, 8), sharex=False)
axes[0].plot(spikes.t / ms, spikes.i, "|", color="C0", label="hidden")
axes[0].plot(top_spikes.t / ms, top_spikes.i + 22, "|", color="C3", label="top")
axes[0].axvline(100, color="0.5", ls=":")
axes[0].set(ylabel="neuron", title="spikes (forward phase, then target phase)")
axes[0].legend(loc="upper left")
for k in range(3):
    axes[1].plot(apical.t / ms, apical.V_apical[k], label=f"neuron {k}")
axes[1].set(xlabel="time (ms)", ylabel="V_apical")
axes[1].legend(loc="upper left")
forward = plateaus.t < 100 * ms
alpha_f = plateaus.alpha_f[forward]
alpha_t = plateaus.alpha_t[~forward]
axes[2].plot(alpha_f, alpha_t, "o")
axes[2].plot([0, 1], [0, 1], color="0.5", ls=":")
axes[2].set(xlabel="forward plateau alpha_f", ylabel="target plateau alpha_t", xlim=(0, 1), ylim=(0, 1))
fig.tight_layout()

print(f"{spikes.num_spikes} hidden spikes, {top_spikes.num_spikes} top spikes, "
      f"mean alpha_t - alpha_f = {np.mean(alpha_t - alpha_f):.3f}")

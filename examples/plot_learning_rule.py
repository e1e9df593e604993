"""
The local learning rule in a custom network
===========================================

:func:`brian_dendrite.learning_rule` returns plastic basal synapses that follow
the paper's rule at the end of every target phase: an output neuron's error is
its target-phase rate minus its forward-phase rate, a hidden neuron's error is
the difference of its apical plateaus ``alpha_t - alpha_f`` (specification
1.8-1.10). Here a small network (20 inputs, 10 pyramidal neurons, 2 output
neurons with feedback onto the pyramidal neurons' apical dendrites) learns to
tell two input patterns apart, one example at a time.
"""

# %%
# Groups and synapses
# -------------------
# Every group is built with the same phases: for each example a forward phase
# and a target phase, labelled with the example's class. ``input_neurons`` are
# Poisson inputs that also keep the PSP averages the rule needs; the output
# neurons are taught by the phases' labels (``teaching='phases'``).
import matplotlib.pyplot as plt
import numpy as np
from brian2 import EventMonitor, Hz, Network, ms, prefs, seed

from brian_dendrite import dendritic_synapses, input_neurons, learning_rule, output_neurons, pyramidal_neurons

prefs.codegen.target = "numpy"
seed(5)
rng = np.random.default_rng(5)

n_examples = 12
labels = np.arange(n_examples) % 2
tests = [("test", 60 * ms, 0), ("test", 60 * ms, 1)]  # one test phase per pattern
phases = list(tests)
for cls in labels:
    phases += [("forward", 40 * ms, int(cls)), ("target", 40 * ms, int(cls))]
phases += tests
patterns = np.zeros((2, 40))
patterns[0, :20] = 150
patterns[1, 20:] = 150

inputs = input_neurons(40, patterns[0] * Hz, phases=phases)
hidden = pyramidal_neurons(300, phases=phases, plateau=True)
output = output_neurons(2, phases=phases, teaching="phases")
W0 = learning_rule(inputs, hidden, weights=rng.normal(0, 3, (300, 40)), learning_rate=0.2)
W1 = learning_rule(hidden, output, weights=rng.normal(0, 0.05, (2, 300)), learning_rate=0.2)
Y = dendritic_synapses(output, hidden, "apical", weights=rng.normal(0, 1, (300, 2)))
hidden.b_basal = 0.0

# %%
# Test, train, test
# -----------------
# One ``run`` per phase or example, with the input pattern it needs. At the end
# of each test phase (the ``phase_end`` event) the output neurons' mean somatic
# potential over the test window is ``V_mean_test``; test phases neither teach
# nor learn.
ends = EventMonitor(output, "phase_end", variables=["V_mean_test", "phase"], when="after_synapses")
net = Network(inputs, hidden, output, W0, W1, Y, ends)
W1_start = np.asarray(W1.w[:]).copy()


def present_both_patterns():
    for cls in (0, 1):
        inputs.rate = patterns[cls] * Hz
        net.run(60 * ms)


present_both_patterns()
for cls in labels:
    inputs.rate = patterns[cls] * Hz
    net.run(80 * ms)
present_both_patterns()

# %%
# What the output neurons learnt
# ------------------------------
# The selectivity of output neuron ``c``: its test potential for pattern ``c``
# minus that for the other pattern, before and after training (the biases, which
# follow the last example's label, cancel in this difference).
tested = ends.phase == 2
V = ends.V_mean_test[tested].reshape(2, 2, 2)  # (before/after, pattern, neuron)
selectivity = np.array([[V[k, c, c] - V[k, 1 - c, c] for c in (0, 1)] for k in (0, 1)])
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
x = np.arange(2)
axes[0].bar(x - 0.2, selectivity[0], width=0.4, label="before training")
axes[0].bar(x + 0.2, selectivity[1], width=0.4, label="after training")
axes[0].axhline(0, color="0.5", lw=0.8)
axes[0].set(xticks=x, xticklabels=["output 0", "output 1"], ylabel="selectivity of V_soma")
axes[0].legend()
change = (np.asarray(W1.w[:]) - W1_start).reshape(300, 2).T
image = axes[1].imshow(change, cmap="RdBu_r", vmin=-np.abs(change).max(), vmax=np.abs(change).max(),
                       aspect="auto", interpolation="nearest")
axes[1].set(xlabel="pyramidal neuron", ylabel="output neuron", yticks=[0, 1], title="change of the weights W1")
fig.colorbar(image, ax=axes[1])
fig.tight_layout()

print(f"selectivity of the output neurons before training {np.round(selectivity[0], 3)}, "
      f"after {np.round(selectivity[1], 3)}")

"""Validation: the spiking network against its rate abstraction, with stated tolerances (specification section 4).

The spiking network (:class:`~brian_dendrite.simulation.SpikingNetwork`) and the rate
network (:class:`~brian_dendrite.rate.RateNetwork`) implement the same model: the rate
network is the Lemma-1 limit of the spiking one (mean rates, exact steady states, no
Poisson noise). This package measures how closely they agree, check by check, with
tolerances derived from the noise the spiking network must have, and writes a JSON
report with figures.

What the suite checks
---------------------
1. **Rates** (:mod:`~brian_dendrite.validation.rates`: :func:`measure_rates`,
   :func:`rate_agreement`) - firing rates of every layer in test phases (spike
   counts over the averaging window) against the rate model's ``phi_max sigma(C)``.
2. **Plateaus** (:mod:`~brian_dendrite.validation.plateaus`: :func:`plateau_agreement`)
   - plateau potentials ``alpha_f``, ``alpha_t`` of the hidden layers after single
   training examples against :meth:`RateNetwork.example_quantities`.
3. **Weight updates** (:mod:`~brian_dendrite.validation.updates`:
   :func:`measure_examples`, :func:`update_agreement`) - the weight change of one
   training example (difference of :meth:`SpikingNetwork.get_weights` before and
   after) against :meth:`RateNetwork.update_deltas`, as cosine similarities.
4. **Learning** (:mod:`~brian_dendrite.validation.learning`: :func:`measure_learning`,
   :func:`learning_agreement`) - test-error curves of both models trained from the
   same initial weights on the same example order.
5. **Spike statistics** (:mod:`~brian_dendrite.validation.spike_trains`:
   :func:`measure_spike_statistics`, :func:`spike_statistics`) - ISI CV, Fano factor
   and spike counts of neurons at constant drive against the exact expectation of
   the Bernoulli spike generator (:func:`bernoulli_isi_cv`, :func:`bernoulli_fano`).

Each agreement function is pure (arrays in, a result ``dict`` out) so that it can be
tested with deliberately mismatched inputs; the ``measure_*`` functions run the
simulations that produce its inputs; :func:`run_validation`
(:mod:`~brian_dendrite.validation.runner`) runs a whole tier (:data:`TIERS`) and
:mod:`~brian_dendrite.validation.plots` draws one figure per check. Beside the
checks, :func:`settling_fidelity` (:mod:`~brian_dendrite.validation.settling`)
measures how far the training protocol's averaging windows are from the steady state.

The three known differences between the models
----------------------------------------------
(a) **Kernel sampling and settling.** The rate model assumes that a presynaptic
    rate ``r`` gives a mean PSP ``psp_scale*r``. In the simulation the kernel is
    sampled once per step: with the full kernel the soma receives
    ``sum_m kappa(m dt) dt = 0.9972`` per spike (not 1); with the truncated kernel
    it receives ``kappa(0..9)``, sum 0.463, while the recorded basal potential and
    the learning rule's presynaptic average see ``kappa(1..10)``, sum 0.510
    (:func:`brian_dendrite.model.effective_kernel_masses`). Averaging windows also
    start before the cascade of kernels (one per layer, mean delay
    ``tau_L + tau_s = 13 ms`` each) has settled. :class:`MeanFieldNetwork`
    (:mod:`~brian_dendrite.validation.mean_field`) reproduces both exactly: it is the
    spiking network's own discrete-time update with every spike replaced by its
    probability.
(b) **E[sigma(V)] versus sigma(E[V]).** Poisson input makes the somatic potential
    fluctuate (sd about 0.3 in the hidden layer and 1 in the output layer for the
    paper's network), and a neuron fires at ``phi_max*E[sigma(V)]``, not
    ``phi_max*sigma(E[V])``. :func:`stationary_noise`
    (:mod:`~brian_dendrite.validation.noise`) computes the variance of every
    potential by propagating the Bernoulli variance of every layer's spikes through
    the weights, kernels and rate slopes (first order); the mean-field network
    optionally averages ``sigma`` over that Gaussian.
(c) **Finite windows.** A count over ``T`` steps at spike probability ``p`` has
    variance ``p(1-p)T`` plus the variance of the fluctuating rate itself;
    :func:`stationary_noise` gives both.

How the tolerances are derived
------------------------------
No tolerance is a free number: each is what the spiking network's own noise allows,
predicted or measured, and stated in the report next to the value it bounds.

* Rates: the correlation and median relative error the rate model would reach if
  the spiking rates were the corrected prediction (effects (a) and (b) included)
  plus count noise with :data:`NOISE_VARIANCE_MARGIN` (1.5) times the predicted
  variance (simulated, fixed seed); residual standard scores with ``|mean| <= 0.1 +
  3/sqrt(n)`` and sd within the same variance margin.
* Plateaus: mean squared spiking-rate difference at most :data:`NOISE_VARIANCE_MARGIN`
  times the repeat-to-repeat noise variance, measured by running every example
  several times from the same state with different spike seeds.
* Updates: mean cosine at least the noise ceiling (cosine between two spiking runs,
  square-rooted) minus ``max(0.05, 3 standard errors)``; projection scale in
  [0.8, 1.25].
* Learning: late mean errors within 3 sd of the difference of two independent
  training trajectories (rate-model orders, spiking runs) and the paired test-set sd.
* Spike statistics: standard scores against a parametric Bernoulli bootstrap, with
  mean and sd within 4-sigma bounds for ``n`` independent scores.

The tolerances and their justification are also in ``validation/README.md``.

How to run it
-------------
From the command line (the two forms are the same command, with the same options
and defaults)::

    brian-dendrite validate --tier fast --output validation-report --data-dir /path/to/mnist
    python -m brian_dendrite.validation --tier full --checks rates,spike_statistics

Exit status 0 if every check passed, 1 if one failed, 2 for bad input. From Python::

    from brian_dendrite.validation import run_validation
    report, passed = run_validation("fast", output_dir, data_dir, seed=0)

``output_dir=None`` runs the checks without writing anything.
"""

from .learning import learning_agreement, measure_learning
from .mean_field import MeanFieldNetwork
from .noise import NOISE_VARIANCE_MARGIN, bernoulli_fano, bernoulli_isi_cv, stationary_noise
from .plateaus import plateau_agreement
from .plots import (
    plot_learning_curves,
    plot_plateau_scatter,
    plot_rate_scatter,
    plot_spike_statistics,
    plot_update_cosines,
)
from .rates import measure_rates, rate_agreement
from .runner import TIERS, TierConfig, add_validation_arguments, run_validation, run_validation_from_args
from .settling import settling_fidelity
from .spike_trains import measure_spike_statistics, spike_statistics
from .updates import measure_examples, update_agreement

__all__ = [
    # running the suite
    "TIERS", "TierConfig", "run_validation", "add_validation_arguments", "run_validation_from_args",
    # noise theory and the mean-field twin
    "NOISE_VARIANCE_MARGIN", "stationary_noise", "bernoulli_isi_cv", "bernoulli_fano", "MeanFieldNetwork",
    # the checks: measurements and agreement
    "measure_rates", "rate_agreement", "plateau_agreement", "measure_examples", "update_agreement",
    "measure_learning", "learning_agreement", "measure_spike_statistics", "spike_statistics",
    "settling_fidelity",
    # figures
    "plot_rate_scatter", "plot_plateau_scatter", "plot_update_cosines", "plot_learning_curves",
    "plot_spike_statistics",
]

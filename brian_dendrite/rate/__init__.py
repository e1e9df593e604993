"""The rate abstraction: the same network with spikes replaced by rates at their steady states.

What it computes
----------------
:class:`RateNetwork` is a deterministic numpy network ("nonspiking mode",
specification section 4) built from the same parameter objects
(:class:`~brian_dendrite.model.ModelParameters`) and weights
(:class:`~brian_dendrite.model.Weights`) as the spiking network
(:class:`~brian_dendrite.simulation.SpikingNetwork`). Each phase of an example
(forward, target) is replaced by the exact steady state of the compartmental
equations driven by mean rates, and the learning rule is applied to those steady
states, one example at a time. It serves as a fast reference for the spiking
simulation and for quick experiments.

How it maps to the spiking model
--------------------------------
It is the Lemma-1 limit of the spiking model: no Poisson noise, no settling
transient, no window averaging. Every spike train is replaced by its rate and
every kernel-filtered spike train by its mean, the rate times the kernel's mass
(the PSP scales below); the phase averages of the spiking network (``alpha^f``,
``alpha^t``, the presynaptic averages of the rule) become the steady-state values
themselves.

Units: rates in spikes/ms (``phi = cell.phi_max`` in spikes/ms, 0.2 by default),
potentials and weights dimensionless, conductances in 1/ms taken as plain floats
(specification section 5, item 1). Brian2 units are stripped once, when the network
is built.

PSP scales
----------
The presynaptic "PSP" of every layer is ``s = psp_scale * r``, where
``psp_scale`` is the mean of the kernel-filtered spike train per unit rate:
``cell.kernel_mass`` (1) for the full kernel. The somatic drive of the next layer
is ``W (drive_scale * r)``, with ``drive_scale = psp_scale`` for the full kernel.
For the truncated kernel (a discrete-time construction of the published code)
the defaults are the sums the spiking network's time steps see: the dendrites,
the apical potential and the rule's presynaptic average ``kappa(1..10) = 0.510``,
the soma (integrated from the traces at the start of each step)
``kappa(0..9) = 0.463`` (:func:`brian_dendrite.model.effective_kernel_masses`).
The published nonspiking mode uses 1, the published spiking code 0.510 for both.
The apical dendrites see the output rates through ``fb_scale = psp_scale`` for
spiking feedback (the output spikes are kernel-filtered) and 1 for rate feedback
(``network.feedback_spiking = False``, Fig. 7A red: ``A = Y phi^1`` without kernel).
:class:`RateNetwork` takes ``psp_scale`` and ``drive_scale`` as arguments to
override the defaults.

Equations (specification 1.1-1.9 at steady state)
-------------------------------------------------
Input (1.1, 1.2)
    ``r_in = phi * pixel``.
Hidden layer ``h`` (1.3)
    ``B = W s_pre + b``; the somatic steady state of
    ``dC/dt = -g_L C + g_B (B - C) + g_A (A - C)`` is
    ``C = (g_B B + g_A A)/(g_L + g_B + g_A) = k_B B + g_A/(g_L+g_B+g_A) A``;
    ``rate = phi sigma(C)``. (The published nonspiking mode drops the apical
    term; it is exact here and vanishes for the default ``g_A = 0``.)
Apical (1.3, 1.13)
    ``A^h = Y^h (fb_scale * r_out) + c^h`` with the output rates of the same
    phase.
Output (1.4)
    forward ``C = k_D B``; target
    ``C = (g_D B + g_teach E)/(g_L + g_D + g_teach)`` with ``E = E_E`` for the
    label's neuron and ``E_I`` for the others.
Plateaus (1.7)
    ``alpha_f = sigma(A_f)``, ``alpha_t = sigma(A_t)``.

With ``g_A > 0`` the hidden somata depend on ``A``, which depends on the output,
which depends on the hidden layers: each phase is then solved as a fixed point
in the output rates, ``r = F(r)``, by fixed-point iteration started from the
network without feedback (``A = c``), damped against oscillation and finished
by Newton steps with the analytic Jacobian when it is slow. It stops when no
apical potential changes by more than ``tol = 1e-10`` between iterations and
raises :class:`ConvergenceError` after ``max_iter`` iterations (default 10,000;
the method is described in :mod:`brian_dendrite.rate._fixed_point`). For the
paper's parameters the loop gain is small and two or three iterations suffice;
near a saddle-node of the loop (largest loop-gain eigenvalue close to 1, no root
nearby, Newton steps cannot land) the relaxation passes slowly and may need
thousands.

Learning rule (1.9, normalised form)
------------------------------------
Per example, online, with ``eta = network.learning_rates[l]`` and
``scale = network.error_scale`` (20)::

    output: delta = eta * scale * k_D * (sigma(C_t) - sigma(C_f)) * sigma'(C_f)
    hidden: delta = eta * scale * k_B * (alpha_t - alpha_f) * sigma'(C_f)
    W += outer(delta, s_pre_f);  b += delta

``sigma(C_t)`` is the target-phase mean output rate divided by ``phi``;
``s_pre_f`` is the forward-phase presynaptic PSP in spikes/ms. This equals the
paper's un-normalised rule with ``P_hidden = scale/phi`` and
``P_final = scale/phi**2``. ``k_B`` includes ``g_A``. After every update,
symmetric feedback is recomputed (with fresh noise for ``noisy_symmetric``).

Without apical conductance, :meth:`RateNetwork.train` runs the tight loop of
:mod:`brian_dendrite.rate._online` (preallocated buffers, the input PSPs of a
block of examples at once, the rank-1 updates as one in-place BLAS call); it
computes the same floating-point operations in the same order as
``train_example``, so both give the same weights bit for bit. Where a C compiler
is available, the elementwise steps of that loop and the first layer's update run
as small C kernels compiled once into the user's cache (:mod:`brian_dendrite.rate._native`,
checked against numpy bit for bit before use; ``BRIAN_DENDRITE_RATE_NATIVE=0``
turns them off). Predictions and test errors without apical conductance are one
in-place sweep per block of images (:mod:`brian_dendrite.rate._inference`, the
same bits as :meth:`RateNetwork.forward`).

Contents
--------
:class:`RateNetwork`
    The network: ``forward``, ``predict``, ``test_error``, ``train``,
    ``train_example``, ``update_deltas``, ``example_quantities``, ``weights``.
:class:`LayerState`
    The steady state of one layer (``B``, ``C``, ``rate``, ``A``).
:class:`ConvergenceError`
    Raised when the fixed point of a phase is not found.
:func:`sigma`, :func:`sigma_prime`
    The logistic function and its derivative.

Examples
--------
A network of the paper's single-hidden-layer model, trained for one epoch and
tested (``images`` of shape ``(n, 784)`` in [0, 1], integer ``labels``)::

    import numpy as np
    from brian_dendrite.model import load_model
    from brian_dendrite.rate import RateNetwork

    net = RateNetwork(load_model("one_hidden"), rng=np.random.default_rng(1))
    history = net.train(images, labels, shuffle=True, test_set=(test_images, test_labels))
    error = net.test_error(test_images, test_labels)

:class:`RateNetwork` has an example that runs as a doctest. (A package's
``__init__`` holds no doctest: brian2's pytest hook cannot collect one.)
"""

from ._fixed_point import ConvergenceError
from ._logistic import sigma, sigma_prime
from ._state import LayerState
from .network import RateNetwork

__all__ = ["ConvergenceError", "LayerState", "RateNetwork", "sigma", "sigma_prime"]

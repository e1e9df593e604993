"""Figures of the validation report, one per check.

Every function takes the measurement (or the check's result) it shows, draws into
``axes`` (new ones if None), passes ``**kwds`` to the main matplotlib call and returns
the Axes, as in brian2tools. :func:`~brian_dendrite.validation.run_validation` saves
them as ``figures/<check>.png`` beside the report.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_learning_curves", "plot_plateau_scatter", "plot_rate_scatter", "plot_spike_statistics",
           "plot_update_cosines"]


def plot_rate_scatter(rates: dict, axes=None, **kwds):
    """Measured against predicted rates per layer: every (image, neuron) pair, and per-neuron means.

    Top row: one point per image and neuron (count noise dominates); bottom row:
    per-neuron means over the images, where the noise averages out and systematic
    effects would show.

    Parameters
    ----------
    rates : dict
        The output of :func:`measure_rates`.
    axes : 2 x n_layers array of Axes, optional
        Where to draw (default: a new figure).
    **kwds
        Passed to the scatter of the measured rates.

    Returns
    -------
    array of matplotlib.axes.Axes
        The Axes (2 x n_layers).
    """
    import matplotlib.pyplot as plt

    layers = rates["layers"]
    if axes is None:
        _, axes = plt.subplots(2, len(layers), figsize=(4 * len(layers), 7.5), squeeze=False)
    style = {"s": 3, "alpha": 0.3, "lw": 0}
    style.update(kwds)
    for col, (name, m, p, cr) in enumerate(zip(layers, rates["measured"], rates["predicted"], rates["corrected"],
                                               strict=True)):
        for row, (mm, pp, cc) in enumerate(((m, p, cr), (m.mean(axis=0), p.mean(axis=0), cr.mean(axis=0)))):
            ax = axes[row][col]
            ax.scatter(pp.ravel(), mm.ravel(), color="tab:blue", label="spiking vs rate model", **style)
            ax.scatter(pp.ravel(), cc.ravel(), color="tab:orange", s=2, alpha=0.6, lw=0,
                       label="corrected prediction (a)+(b)")
            top = max(float(np.max(pp)), float(np.max(mm)), 1.0)
            ax.plot([0, top], [0, top], "k--", lw=0.8)
            ax.set_title(f"{name}: " + ("every image and neuron" if row == 0 else "per-neuron mean over images"),
                         fontsize=9)
            ax.set_xlabel("rate model phi_max*sigma(C) (Hz)")
        axes[0][0].set_ylabel("spiking rate in test window (Hz)")
        axes[1][0].set_ylabel("mean spiking rate (Hz)")
    axes[0][0].legend(loc="upper left", fontsize=7, markerscale=4)
    return axes


def plot_plateau_scatter(alpha_spiking: dict, alpha_rate: dict, axes=None, **kwds):
    """Spiking against rate plateaus (alpha_f, alpha_t, alpha_t - alpha_f).

    Parameters
    ----------
    alpha_spiking : dict of array (n_repeats, n_examples, n_neurons)
        ``{"f": alpha_f, "t": alpha_t}`` of the spiking network.
    alpha_rate : dict of array (n_examples, n_neurons)
        The rate model's plateaus.
    axes : sequence of 3 Axes, optional
        Where to draw (default: a new figure).
    **kwds
        Passed to the scatter.

    Returns
    -------
    list of matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(12, 4), squeeze=False)
        axes = list(axes[0])
    style = {"s": 2, "alpha": 0.3, "lw": 0}
    style.update(kwds)
    spk = dict(alpha_spiking, **{"t-f": alpha_spiking["t"] - alpha_spiking["f"]})
    rat = dict(alpha_rate, **{"t-f": alpha_rate["t"] - alpha_rate["f"]})
    for ax, key, title in zip(axes, ("f", "t", "t-f"), ("alpha_f", "alpha_t", "alpha_t - alpha_f"), strict=True):
        s, r = np.asarray(spk[key]), np.asarray(rat[key])
        ax.scatter(np.broadcast_to(r, s.shape).ravel(), s.ravel(), **style)
        lo, hi = float(min(r.min(), s.min())), float(max(r.max(), s.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_title(title)
        ax.set_xlabel("rate model")
    axes[0].set_ylabel("spiking network (every repeat)")
    return axes


def plot_update_cosines(updates: dict, axes=None, **kwds):
    """Per-example cosine of spiking and rate weight changes with the noise ceiling.

    Parameters
    ----------
    updates : dict
        The result of :func:`update_agreement`.
    axes : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).
    **kwds
        Passed to the plot of the cosines.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 1, figsize=(6, 4))
    for k, (name, lay) in enumerate(updates["layers"].items()):
        x = np.arange(len(lay["cosine_per_example"]))
        colour = f"C{k}"
        axes.plot(x, lay["cosine_per_example"], "o", color=colour, label=f"{name}: cos(spiking, rate)", **kwds)
        axes.plot(x, lay["noise_ceiling_per_example"], "_", ms=12, color=colour, label=f"{name}: noise ceiling")
    axes.set_xlabel("example")
    axes.set_ylabel("cosine similarity of dW")
    axes.set_ylim(min(0.0, axes.get_ylim()[0]), 1.02)
    axes.legend(fontsize=7)
    return axes


def plot_learning_curves(learning: dict, axes=None, **kwds):
    """Test error (rate readout) against examples for both models.

    Parameters
    ----------
    learning : dict
        The result of :func:`learning_agreement` (with ``rate_order_curves`` and
        ``mean_field_curve`` added, as in the report).
    axes : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).
    **kwds
        Passed to the plots of the rate and spiking curves.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 1, figsize=(7, 4))
    for k, curve in enumerate(learning.get("rate_order_curves", [])):
        c = np.asarray(curve, dtype=float)
        axes.plot(c[:, 0], c[:, 1], "-", color="0.75", lw=0.8, label="rate model, other orders" if k == 0 else None)
    r = np.asarray(learning["rate_curve"], dtype=float)
    axes.plot(r[:, 0], r[:, 1], "o-", ms=3, color="tab:blue", label="rate model", **kwds)
    for k, curve in enumerate(learning["spiking_curves"]):
        c = np.asarray(curve, dtype=float)
        axes.plot(c[:, 0], c[:, 1], "s-", ms=3, color=f"C{1 + k}",
                  label="spiking network" + (f" (run {k})" if k else ""), **kwds)
    if "mean_field_curve" in learning:
        c = np.asarray(learning["mean_field_curve"], dtype=float)
        axes.plot(c[:, 0], c[:, 1], "--", color="k", lw=1, label="mean-field twin (spiking protocol, no noise)")
    late = learning["late_from_examples"]
    axes.axvspan(late, r[-1, 0], color="tab:green", alpha=0.07, label="compared stretch")
    axes.set_xlabel("training examples")
    axes.set_ylabel("test error (%), rate-model readout")
    axes.legend(fontsize=7)
    return axes


def plot_spike_statistics(groups: dict, axes=None, **kwds):
    """Measured against expected ISI CV and Fano factor per neuron.

    Parameters
    ----------
    groups : dict
        The output of :func:`measure_spike_statistics`.
    axes : sequence of 2 Axes, optional
        Where to draw (default: a new figure).
    **kwds
        Passed to the error bars.

    Returns
    -------
    list of matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 4), squeeze=False)
        axes = list(axes[0])
    for k, (name, g) in enumerate(groups.items()):
        for ax, stat in zip(axes, ("cv", "fano"), strict=True):
            ax.errorbar(g[f"{stat}_expected"], g[stat], yerr=g[f"{stat}_sd"], fmt="o", ms=2, lw=0.5,
                        color=f"C{k}", label=name, **kwds)
    for ax, stat in zip(axes, ("ISI CV", "Fano factor"), strict=True):
        lo, hi = ax.get_xlim()
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
        ax.set_xlabel(f"expected {stat} (Bernoulli bootstrap)")
        ax.set_ylabel(f"measured {stat}")
        ax.legend(fontsize=7)
    return axes

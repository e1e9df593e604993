"""matplotlib figures.

Every function takes ``axes=None`` (a new figure is made when omitted), passes
``**kwds`` to matplotlib and returns the Axes it drew on, like brian2tools.
"""

from __future__ import annotations

import numpy as np
from brian2 import ms

__all__ = ["plot_compartments"]

_COLOURS = {"V_soma": "k", "V_basal": "tab:blue", "V_apical": "tab:red"}
_PHASE_SHADES = {"forward": "0.95", "target": "#fde9d9", "test": "#e5f0fa"}


def _axes(axes, n=1):
    import matplotlib.pyplot as plt

    if axes is not None:
        return axes
    _, created = plt.subplots(n, 1, sharex=True, squeeze=False, figsize=(7, 2.2 * n))
    return list(created[:, 0])


def plot_compartments(population, neurons=None, axes=None, **kwds):
    """Potentials of the compartments over time, with phases shaded and plateaus marked.

    Parameters
    ----------
    population : CellPopulation
        A population that has been run.
    neurons : sequence of int, optional
        Which recorded neurons to draw (default: all recorded, at most 4).
    axes : sequence of matplotlib Axes, optional
        One Axes per neuron.
    **kwds
        Passed to ``Axes.plot``.

    Returns
    -------
    list of Axes
    """
    state = population.state
    recorded = np.asarray(state.record)
    if neurons is None:
        neurons = list(range(min(len(recorded), 4)))
    axes = _axes(axes, len(neurons))
    if len(axes) != len(neurons):
        raise ValueError(f"got {len(axes)} axes for {len(neurons)} neurons")
    t = state.t / ms
    variables = [v for v in ("V_basal", "V_apical", "V_soma") if v in state.record_variables]
    for ax, k in zip(axes, neurons, strict=True):
        for start, stop, kind, _, _ in population.schedule.phase_intervals():
            if kind in _PHASE_SHADES:
                ax.axvspan(float(start / ms), float(stop / ms), color=_PHASE_SHADES[kind], lw=0)
        for var in variables:
            ax.plot(t, getattr(state, var)[k], color=_COLOURS[var], label=var, **kwds)
        plateaus = population.plateaus
        if plateaus is not None:
            sel = plateaus.i[:] == recorded[k]
            ev_t = plateaus.t[sel] / ms
            a_mean = np.where(np.isin(np.round(ev_t), _phase_ends(population, "target")),
                              plateaus.A_mean_t[sel], plateaus.A_mean_f[sel])
            ax.plot(ev_t, a_mean, "v", color="tab:red", ms=8, label="plateau (window-mean V_apical)")
            for x, y, af, at, tt in zip(ev_t, a_mean, plateaus.alpha_f[sel], plateaus.alpha_t[sel], ev_t, strict=True):
                alpha = at if np.round(tt) in _phase_ends(population, "target") else af
                ax.annotate(f"α={alpha:.2f}", (x, y), textcoords="offset points", xytext=(3, 6), fontsize=8)
        ax.set_ylabel(f"neuron {recorded[k]}\npotential")
    axes[0].legend(loc="upper left", fontsize=8, ncol=2)
    axes[-1].set_xlabel("time (ms)")
    return axes


def _phase_ends(population, kind):
    """Plateau times can precede the phase end by a stochastic offset: all times of the phases."""
    times = []
    for start, stop, k, _, _ in population.schedule.phase_intervals(kind):
        times.extend(np.arange(round(float(start / ms)), round(float(stop / ms))))
    return np.array(times)

"""matplotlib figures.

Every function takes ``axes=None`` (a new figure is made when omitted), passes
``**kwds`` to matplotlib and returns the Axes it drew on, like brian2tools.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
from brian2 import ms, second

from .simulation import RunRecording

__all__ = [
    "plot_compartments",
    "plot_raster",
    "plot_potentials",
    "plot_learning_curve",
    "plot_receptive_fields",
    "plot_weight_histograms",
]

logger = logging.getLogger("brian2.brian_dendrite.plotting")

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
    for start, stop, _kind, _, _ in population.schedule.phase_intervals(kind):
        times.extend(np.arange(round(float(start / ms)), round(float(stop / ms))))
    return np.array(times)


# --------------------------------------------------------------------------------------------------
# Recordings (RunRecording), learning curves and weights
# --------------------------------------------------------------------------------------------------


def _axes_for(axes, n: int, what: str):
    """The Axes to draw ``n`` panels on: the given ones (checked) or a new column of subplots."""
    if axes is None:
        return _axes(None, n)
    seq = [axes] if hasattr(axes, "plot") else list(axes)
    if len(seq) != n:
        raise ValueError(f"got {len(seq)} axes for {n} {what}")
    return seq


def _shade_phases(ax, phases, labels: bool = False) -> None:
    """Shade the forward/target/test phases of a recording (``phases`` rows: start s, stop s, code, ...)."""
    seen = set()
    for start, stop, code, *_ in np.asarray(phases, dtype=float).reshape(-1, 5):
        kind = RunRecording.PHASE_NAMES.get(int(code))
        if kind in _PHASE_SHADES:
            label = kind if labels and kind not in seen else None
            seen.add(kind)
            ax.axvspan(start * 1e3, stop * 1e3, color=_PHASE_SHADES[kind], lw=0, zorder=0, label=label)


def plot_raster(recording, layers=None, axes=None, **kwds):
    """Spike raster of a recording, one panel per layer, with the phases shaded.

    Parameters
    ----------
    recording : RunRecording
    layers : sequence of str, optional
        Layers to draw, top panel first (default: every layer with recorded
        spikes, in network order: input, hidden, output).
    axes : Axes or sequence of Axes, optional
        One Axes per layer.
    **kwds
        Passed to ``Axes.plot`` (defaults: black ``'|'`` markers, no line).

    Returns
    -------
    list of Axes (or the single Axes given)
        Each holds one ``Line2D`` with one point per spike (x: time in ms,
        y: neuron index); forward, target and test phases are shaded (labelled
        in the first panel's legend).

    Raises
    ------
    KeyError
        For a layer without recorded spikes; the message lists those recorded.
    """
    if layers is None:
        layers = [layer for layer in recording.layer_sizes if layer in recording.spikes]
    layers = list(layers)
    missing = [layer for layer in layers if layer not in recording.spikes]
    if missing:
        raise KeyError(f"no spikes recorded for {missing}; recorded layers are {sorted(recording.spikes)}")
    panels = _axes_for(axes, len(layers), "layers")
    style = {"linestyle": "none", "marker": "|", "color": "k", "markersize": 3, **kwds}
    for k, (ax, layer) in enumerate(zip(panels, layers, strict=True)):
        st = recording.spikes[layer]
        _shade_phases(ax, recording.phases, labels=(k == 0))
        ax.plot(np.asarray(st.times / ms), np.asarray(st.indices), **style)
        ax.set_ylim(-0.5, st.n_neurons - 0.5)
        ax.set_xlim(0, float(recording.duration / ms))
        ax.set_ylabel(f"{layer}\nneuron")
    if recording.phases is not None and len(recording.phases):
        panels[0].legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, ncol=3, frameon=False)
    panels[-1].set_xlabel("time (ms)")
    return axes if axes is not None else panels


_PLATEAU_STYLE = {"linestyle": "none", "marker": "v", "color": "tab:red", "markersize": 7}


def plot_potentials(recording, layer, neurons=None, variables=None, axes=None, **kwds):
    """Recorded compartment potentials of one layer, one panel per neuron, plateaus marked.

    Parameters
    ----------
    recording : RunRecording
    layer : str
        A layer with recorded potentials (``'hidden_0'``, ``'output'``, ...).
    neurons : sequence of int, optional
        Neuron indices (within the layer) to draw; they must have been
        recorded. Default: all recorded, at most 4.
    variables : sequence of str, optional
        Default: every recorded one of ``V_basal``, ``V_apical``, ``V_soma``.
    axes : Axes or sequence of Axes, optional
        One Axes per neuron.
    **kwds
        Passed to ``Axes.plot`` for the traces.

    Returns
    -------
    list of Axes (or the single Axes given)
        Each holds one line per variable and, if the neuron had plateaus, one
        line of ``'v'`` markers at the plateau times (on the apical trace when
        recorded), annotated with the plateau value alpha.

    Raises
    ------
    KeyError
        For a layer or variable that was not recorded (the message lists those that were).
    ValueError
        For a neuron that was not recorded.
    """
    if layer not in recording.potentials:
        raise KeyError(f"no potentials recorded for layer {layer!r}; recorded: {sorted(recording.potentials)}")
    recorded = recording.potentials[layer]
    if variables is None:
        variables = [v for v in ("V_basal", "V_apical", "V_soma") if v in recorded]
    unknown = [v for v in variables if v not in recorded]
    if unknown:
        raise KeyError(f"variables {unknown} not recorded for {layer}; recorded: {sorted(recorded)}")
    first = recorded[variables[0]]
    ids = list(np.asarray(first.neurons))
    if neurons is None:
        neurons = ids[:4]
    absent = [k for k in neurons if k not in ids]
    if absent:
        raise ValueError(f"neurons {absent} of {layer} were not recorded; recorded neurons are {ids}")
    panels = _axes_for(axes, len(neurons), "neurons")
    events = recording.plateaus.get(layer)
    for ax, k in zip(panels, neurons, strict=True):
        row = ids.index(k)
        _shade_phases(ax, recording.phases)
        for var in variables:
            pot = recorded[var]
            ax.plot(np.asarray(pot.times / ms), np.asarray(pot.values)[row], color=_COLOURS.get(var),
                    label=var, **kwds)
        if events is not None:
            sel = np.asarray(events.indices) == k
            if np.any(sel):
                ref = recorded.get("V_apical", first)
                t_ref = np.asarray(ref.times / second)
                t_ev = np.asarray(events.times / second)[sel]
                pos = np.clip(np.searchsorted(t_ref, t_ev), 0, len(t_ref) - 1) if len(t_ref) else []
                y = np.asarray(ref.values)[row][pos] if len(t_ref) else np.zeros(len(t_ev))
                ax.plot(t_ev * 1e3, y, label="plateau", **_PLATEAU_STYLE)
                for x, yy, a in zip(t_ev * 1e3, y, np.asarray(events.alpha)[sel], strict=True):
                    ax.annotate(f"α={a:.2f}", (x, yy), textcoords="offset points", xytext=(3, 6), fontsize=7)
        ax.set_ylabel(f"{layer}[{k}]\npotential (a.u.)")
    panels[0].legend(loc="upper left", fontsize=8, ncol=4)
    panels[-1].set_xlabel("time (ms)")
    return axes if axes is not None else panels


def plot_learning_curve(summary_or_history, axes=None, **kwds):
    """Test error against the number of training examples.

    Parameters
    ----------
    summary_or_history : dict, list of dict, str or Path
        A training summary (the ``summary.json`` dict written by
        :class:`~brian_dendrite.training.Trainer`, whose ``test_history`` is
        used and whose ``model`` labels the line), its ``test_history`` list
        (entries with ``examples`` and ``test_error`` in %), or the path of a
        ``summary.json``.
    axes : Axes, optional
    **kwds
        Passed to ``Axes.plot`` (default marker ``'o'``; ``label`` overrides the model name).

    Returns
    -------
    Axes
        With one line: x = examples trained, y = test error (%).

    Raises
    ------
    ValueError
        If the history is empty or an entry lacks ``examples`` or ``test_error``.
    """
    data = summary_or_history
    if isinstance(data, str | Path):
        data = json.loads(Path(data).read_text())
    label = None
    if isinstance(data, dict):
        if "test_history" not in data:
            raise ValueError(f"summary has no 'test_history'; keys are {sorted(data)}")
        label = data.get("model")
        data = data["test_history"]
    history = list(data)
    if not history:
        raise ValueError("the test history is empty: nothing to plot")
    try:
        examples = np.array([float(e["examples"]) for e in history])
        errors = np.array([float(e["test_error"]) for e in history])
    except (KeyError, TypeError) as err:
        raise ValueError(f"every history entry needs 'examples' and 'test_error': {err!r}") from None
    ax = axes if axes is not None else _axes(None, 1)[0]
    ax.plot(examples, errors, **{"marker": "o", "label": label, **kwds})
    ax.set_xlabel("examples trained")
    ax.set_ylabel("test error (%)")
    if label is not None or "label" in kwds:
        ax.legend(fontsize=8)
    return ax


def plot_receptive_fields(W0, n: int = 16, axes=None, image_shape=None, **kwds):
    """Input weights of hidden units drawn as images ("receptive fields").

    Parameters
    ----------
    W0 : ndarray of shape (n_hidden, n_input), or Weights
        Forward weights of the first layer (``Weights.W[0]``; a
        :class:`~brian_dendrite.model.Weights` is accepted).
    n : int
        Number of hidden units to draw (the first ``n``; at most ``n_hidden``). Default 16.
    axes : sequence of Axes, optional
        At least ``n`` Axes (the first ``n`` are used). Default: a new square-ish grid.
    image_shape : tuple of int, optional
        Default: square images (28 x 28 for MNIST).
    **kwds
        Passed to ``Axes.imshow`` (default: ``cmap='RdBu_r'`` with colour
        limits symmetric about 0 and shared by all panels).

    Returns
    -------
    list of Axes
        The given axes, or the ``n`` new ones, each with one image.

    Raises
    ------
    ValueError
        If ``n < 1``, the input size is not a square without ``image_shape``,
        or too few axes are given.
    """
    W0 = getattr(W0, "W", [W0])[0] if not isinstance(W0, np.ndarray) else W0
    W0 = np.asarray(W0, dtype=float)
    if W0.ndim != 2:
        raise ValueError(f"W0 must have shape (n_hidden, n_input), got {W0.shape}")
    if n < 1:
        raise ValueError(f"n = {n} must be at least 1")
    n = min(n, W0.shape[0])
    if image_shape is None:
        side = math.isqrt(W0.shape[1])
        if side * side != W0.shape[1]:
            raise ValueError(f"{W0.shape[1]} inputs are not a square image; give image_shape")
        image_shape = (side, side)
    if int(np.prod(image_shape)) != W0.shape[1]:
        raise ValueError(f"image_shape {tuple(image_shape)} does not hold {W0.shape[1]} inputs")
    if axes is None:
        import matplotlib.pyplot as plt

        cols = math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
        fig, grid = plt.subplots(rows, cols, squeeze=False, figsize=(1.6 * cols, 1.6 * rows))
        flat = list(grid.ravel())
        for ax in flat[n:]:
            ax.set_axis_off()
        panels = flat[:n]
    else:
        panels = list(axes)
        if len(panels) < n:
            raise ValueError(f"got {len(panels)} axes for {n} receptive fields")
    limit = float(np.max(np.abs(W0[:n]))) or 1.0
    style = {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit, "interpolation": "nearest", **kwds}
    for k, ax in enumerate(panels[:n]):
        ax.imshow(W0[k].reshape(image_shape), **style)
        ax.set_title(f"unit {k}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    return axes if axes is not None else panels


def plot_weight_histograms(weights, axes=None, bins: int = 50, **kwds):
    """Distributions of the weights of every layer.

    Parameters
    ----------
    weights : Weights
        Panel ``l`` shows the forward weights ``W[l]`` and, for a hidden layer,
        its feedback weights ``Y[l]`` as normalised histograms, and the biases
        ``b[l]`` as a rug of ticks along the x axis (biases are few and often
        all equal at initialisation, where a histogram would be one spike).
    axes : sequence of Axes, optional
        One Axes per weight layer (``len(weights.W)``).
    bins : int
        Number of bins of each histogram. Default 50.
    **kwds
        Passed to ``Axes.hist`` (defaults ``histtype='step'``, ``density=True``).

    Returns
    -------
    list of Axes
        Panel ``l`` holds one histogram patch per weight array (2 for hidden
        layers: W, Y; 1 for the output layer: W) and one ``Line2D`` with one
        tick per bias.
    """
    n_layers = len(weights.W)
    n_hidden = len(weights.Y)
    panels = _axes_for(axes, n_layers, "weight layers")
    style = {"histtype": "step", "density": True, **kwds}
    for w, ax in enumerate(panels):
        post = f"hidden_{w}" if w < n_hidden else "output"
        ax.hist(np.ravel(weights.W[w]), bins=bins, label=f"W[{w}] forward", **style)
        if w < n_hidden:
            ax.hist(np.ravel(weights.Y[w]), bins=bins, label=f"Y[{w}] feedback", **style)
        biases = np.ravel(weights.b[w])
        ax.plot(biases, np.zeros_like(biases), linestyle="none", marker="|", markersize=10, color="k",
                transform=ax.get_xaxis_transform(), label=f"b[{w}] biases", clip_on=False)
        ax.set_title(f"{post}: W[{w}] {weights.W[w].shape[0]}×{weights.W[w].shape[1]}", fontsize=9)
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
    panels[-1].set_xlabel("weight")
    return axes if axes is not None else panels

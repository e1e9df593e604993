"""Spike-train statistics of recorded runs, built on elephant.

The functions take spike trains in either form the package produces:

* a list of :class:`neo.SpikeTrain` (from :func:`brian_dendrite.io.to_neo`,
  :func:`~brian_dendrite.io.read_nwb_spiketrains` or :func:`layer_spiketrains`);
* one layer's :class:`~brian_dendrite.simulation.SpikeTrains` of a
  :class:`~brian_dendrite.simulation.RunRecording`, together with an explicit
  ``t_stop`` (a layer's spikes do not know when the observation ended).

Times given to these functions (``t_start``, ``t_stop``, ``bin_size``,
``sampling_period``, ``sigma``, ``windows``) may be Brian2 quantities or
``quantities`` (neo/elephant) quantities; a bare number is refused, because
seconds and milliseconds are both in use. Results are ``quantities``
quantities where they have a unit (rates in Hz) and plain float arrays where
they are dimensionless (CV, Fano factor, correlation), as in elephant.

Conventions
-----------
* **Rates** (:func:`firing_rates`) count the spikes in the closed interval
  ``[t_start, t_stop]`` and divide by ``t_stop - t_start``
  (:func:`elephant.statistics.mean_firing_rate`).
* **Spike counts** (:func:`spike_counts`) use half-open windows
  ``[start, stop)``, so that adjacent windows (e.g. the phases of a run) never
  count a spike twice; with ``bin_size`` they are elephant's
  :class:`~elephant.conversion.BinnedSpikeTrain` counts.
* **Variances** are population variances (``ddof = 0``), as in elephant's
  :func:`~elephant.statistics.fanofactor` and :func:`~elephant.statistics.cv`
  (``scipy.stats.variation``).
* **Undefined statistics are NaN**, never 0: the CV of a train with fewer than
  3 spikes (fewer than 2 intervals), the Fano factor of a neuron that never
  fired in any window, the correlation of a neuron whose counts are the same
  in every bin.

Examples
--------
>>> import neo, quantities as pq
>>> from brian_dendrite.analysis import firing_rates, isi_cv
>>> trains = [neo.SpikeTrain([0.1, 0.2, 0.3, 0.4], t_stop=1.0, units="s")]
>>> firing_rates(trains)
array([4.]) * Hz
>>> float(isi_cv(trains)[0]) < 1e-12
True
"""

from __future__ import annotations

import logging

import numpy as np
from brian2 import second
from brian2.units.fundamentalunits import DimensionMismatchError, Quantity, have_same_dimensions

from .io import spiketrains_to_neo
from .simulation import RunRecording, SpikeTrains

__all__ = [
    "layer_spiketrains",
    "as_spiketrains",
    "firing_rates",
    "instantaneous_rate",
    "isi_cv",
    "spike_counts",
    "fano_factor",
    "spike_count_correlation",
]

logger = logging.getLogger("brian2.brian_dendrite.analysis")


def _pq_time(value, name: str, allow_none: bool = True):
    """A Brian2 or ``quantities`` time as a ``quantities`` quantity in seconds."""
    import quantities as pq

    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{name} is required")
    if isinstance(value, Quantity):  # Brian2
        if not have_same_dimensions(value, second):
            raise DimensionMismatchError(f"{name} = {value!r} is not a time")
        return np.asarray(value, dtype=float) * pq.s
    if isinstance(value, pq.Quantity):
        try:
            return value.rescale(pq.s)
        except ValueError:
            raise DimensionMismatchError(f"{name} = {value!r} is not a time") from None
    raise TypeError(f"{name} = {value!r} must be a time quantity (e.g. 10*ms from brian2 or "
                    "10*pq.ms from quantities), not a bare number")


def layer_spiketrains(recording: RunRecording, layer: str) -> list:
    """The spike trains of one layer of a recording as neo objects.

    Parameters
    ----------
    recording : RunRecording
    layer : str
        ``'input'``, ``'hidden_<h>'`` or ``'output'``.

    Returns
    -------
    list of neo.SpikeTrain
        One per neuron, ``t_start = 0``, ``t_stop = recording.duration``.

    Raises
    ------
    KeyError
        If the layer has no recorded spikes; the message lists the layers that have.
    """
    if layer not in recording.spikes:
        raise KeyError(f"no spikes recorded for layer {layer!r}; recorded layers are {sorted(recording.spikes)}")
    return spiketrains_to_neo(recording.spikes[layer], recording.duration, dt=recording.dt, layer=layer)


def as_spiketrains(spiketrains, t_stop=None) -> list:
    """Spike trains as a list of :class:`neo.SpikeTrain`.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain, neo.SpikeTrain or SpikeTrains
    t_stop : Quantity, optional
        End of the observation; required for :class:`SpikeTrains`, ignored otherwise.

    Returns
    -------
    list of neo.SpikeTrain

    Raises
    ------
    ValueError
        If ``t_stop`` is missing for :class:`SpikeTrains`.
    TypeError
        For any other input type.
    """
    import neo

    if isinstance(spiketrains, SpikeTrains):
        if t_stop is None:
            raise ValueError("t_stop is required with a layer's SpikeTrains (e.g. t_stop=recording.duration)")
        stop = _pq_time(t_stop, "t_stop")
        return spiketrains_to_neo(spiketrains, float(stop.magnitude) * second)
    if isinstance(spiketrains, neo.SpikeTrain):
        return [spiketrains]
    trains = list(spiketrains)
    bad = [type(st).__name__ for st in trains if not isinstance(st, neo.SpikeTrain)]
    if bad:
        raise TypeError(f"spiketrains must be neo.SpikeTrain objects or a SpikeTrains; got {sorted(set(bad))}")
    return trains


def firing_rates(spiketrains, t_start=None, t_stop=None):
    """Mean firing rate of every neuron.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain or SpikeTrains
    t_start, t_stop : Quantity, optional
        The interval (closed, ``[t_start, t_stop]``). Default: each train's own
        ``t_start`` and ``t_stop``. ``t_stop`` is required for :class:`SpikeTrains`.

    Returns
    -------
    quantities.Quantity
        Rates in Hz, one per train (0 Hz for a train without spikes).

    Raises
    ------
    ValueError
        If ``t_stop <= t_start``.
    """
    import quantities as pq
    from elephant.statistics import mean_firing_rate

    trains = as_spiketrains(spiketrains, t_stop)
    start, stop = _pq_time(t_start, "t_start"), _pq_time(t_stop, "t_stop")
    if start is not None and stop is not None and stop <= start:
        raise ValueError(f"t_stop = {stop} must exceed t_start = {start}")
    rates = np.zeros(len(trains))
    for k, st in enumerate(trains):
        # elephant refuses an empty train once t_start/t_stop are given; its rate is 0.
        if len(st):
            rates[k] = float(mean_firing_rate(st, t_start=start, t_stop=stop).rescale(pq.Hz).magnitude)
    return rates * pq.Hz


def instantaneous_rate(spiketrains, sampling_period, kernel=None, sigma=None, t_start=None, t_stop=None):
    """Kernel estimate of each neuron's firing rate over time.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain or SpikeTrains
    sampling_period : Quantity
        Time step of the estimate (and of the kernel).
    kernel : elephant.kernels.Kernel, optional
        An explicit elephant kernel. Either ``kernel`` or ``sigma`` is required;
        elephant's ``'auto'`` bandwidth is deliberately not offered, because a
        data-dependent width makes rates of different runs incomparable.
    sigma : Quantity, optional
        Standard deviation of a :class:`elephant.kernels.GaussianKernel`.
    t_start, t_stop : Quantity, optional
        Default: the trains' own. ``t_stop`` is required for :class:`SpikeTrains`.

    Returns
    -------
    neo.AnalogSignal
        Rates in Hz, shape ``(n_times, n_trains)``.

    Raises
    ------
    ValueError
        If neither or both of ``kernel`` and ``sigma`` are given.
    TypeError
        If ``kernel`` is not an elephant kernel.
    """
    import quantities as pq
    from elephant import kernels
    from elephant.statistics import instantaneous_rate as elephant_rate

    if (kernel is None) == (sigma is None):
        raise ValueError("give exactly one of kernel (an elephant kernel) and sigma (the width of a "
                         f"Gaussian kernel); got kernel={kernel!r}, sigma={sigma!r}")
    if kernel is None:
        kernel = kernels.GaussianKernel(sigma=_pq_time(sigma, "sigma"))
    elif not isinstance(kernel, kernels.Kernel):
        raise TypeError(f"kernel = {kernel!r} must be an elephant.kernels.Kernel instance")
    trains = as_spiketrains(spiketrains, t_stop)
    rate = elephant_rate(trains, _pq_time(sampling_period, "sampling_period", allow_none=False), kernel=kernel,
                         t_start=_pq_time(t_start, "t_start"), t_stop=_pq_time(t_stop, "t_stop"))
    return rate.rescale(pq.Hz)


def isi_cv(spiketrains) -> np.ndarray:
    """Coefficient of variation of the inter-spike intervals of every neuron.

    :math:`CV = \\sigma_{ISI} / \\mu_{ISI}` with the population standard
    deviation (``ddof = 0``), computed with :func:`elephant.statistics.isi` and
    :func:`elephant.statistics.cv`. A regular train has CV 0, a Poisson train CV 1.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain or SpikeTrains

    Returns
    -------
    ndarray of float
        One CV per train; **NaN for trains with fewer than 3 spikes**, whose one
        interval (or none) has no meaningful spread.
    """
    from elephant.statistics import cv, isi

    trains = as_spiketrains(spiketrains, t_stop=_max_time(spiketrains))
    out = np.full(len(trains), np.nan)
    for k, st in enumerate(trains):
        if len(st) >= 3:
            out[k] = float(cv(np.asarray(isi(st).magnitude)))
    return out


def _max_time(spiketrains):
    """For SpikeTrains, any t_stop covering the spikes (the CV does not depend on it)."""
    if isinstance(spiketrains, SpikeTrains):
        times = np.asarray(spiketrains.times, dtype=float)
        return (float(times.max()) if times.size else 0.0) * second
    return None


def spike_counts(spiketrains, bin_size=None, windows=None, t_start=None, t_stop=None) -> np.ndarray:
    """Spike counts of every neuron in regular bins or in given windows.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain or SpikeTrains
    bin_size : Quantity, optional
        Regular bins from ``t_start`` to ``t_stop`` (elephant's
        :class:`~elephant.conversion.BinnedSpikeTrain`; a trailing partial bin
        is dropped).
    windows : Quantity of shape (n_windows, 2), optional
        ``[start, stop)`` of each window, e.g. the phases of a run:
        ``recording.phases[:, :2] * second``.
    t_start, t_stop : Quantity, optional
        Range of the bins (default: the trains' own); ``t_stop`` is required
        for :class:`SpikeTrains`.

    Returns
    -------
    ndarray of int, shape (n_trains, n_windows)

    Raises
    ------
    ValueError
        If neither or both of ``bin_size`` and ``windows`` are given, or windows
        are malformed.
    """
    from elephant.conversion import BinnedSpikeTrain

    if (bin_size is None) == (windows is None):
        raise ValueError("give exactly one of bin_size and windows")
    trains = as_spiketrains(spiketrains, t_stop)
    if bin_size is not None:
        binned = BinnedSpikeTrain(trains, bin_size=_pq_time(bin_size, "bin_size"),
                                  t_start=_pq_time(t_start, "t_start"), t_stop=_pq_time(t_stop, "t_stop"))
        return binned.to_array().astype(np.int64)
    win = _pq_time(windows, "windows").magnitude
    if win.ndim != 2 or win.shape[1] != 2 or np.any(win[:, 1] < win[:, 0]):
        raise ValueError(f"windows must have shape (n_windows, 2) with stop >= start; got shape {win.shape}")
    counts = np.empty((len(trains), len(win)), dtype=np.int64)
    for k, st in enumerate(trains):
        t = np.sort(st.rescale("s").magnitude)
        counts[k] = np.searchsorted(t, win[:, 1], side="left") - np.searchsorted(t, win[:, 0], side="left")
    return counts


def fano_factor(counts, axis: int = -1) -> np.ndarray:
    """Fano factor of spike counts over windows: variance / mean.

    The same definition as :func:`elephant.statistics.fanofactor` (population
    variance, ``ddof = 0``), applied along ``axis`` of a count array such as
    the output of :func:`spike_counts`. A Poisson process has Fano factor 1.

    Parameters
    ----------
    counts : array_like
        Spike counts, e.g. ``(n_neurons, n_windows)``.
    axis : int
        The axis of the windows (default: the last).

    Returns
    -------
    ndarray of float
        One value per neuron; **NaN where the mean count is 0** (no spike in any window).

    Raises
    ------
    ValueError
        If a count is negative or there are no windows.
    """
    counts = np.asarray(counts, dtype=float)
    if counts.shape[axis] == 0:
        raise ValueError("fano_factor needs at least one window")
    if np.any(counts < 0):
        raise ValueError("spike counts cannot be negative")
    mean = counts.mean(axis=axis)
    var = counts.var(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mean > 0, var / np.where(mean > 0, mean, 1.0), np.nan)


def spike_count_correlation(spiketrains, bin_size, t_start=None, t_stop=None, binary: bool = False) -> np.ndarray:
    """Pearson correlation of the binned spike counts of every pair of neurons.

    Uses :func:`elephant.spike_train_correlation.correlation_coefficient` on a
    :class:`~elephant.conversion.BinnedSpikeTrain`.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain or SpikeTrains
    bin_size : Quantity
        Width of the counting bins.
    t_start, t_stop : Quantity, optional
        Default: the trains' own; ``t_stop`` is required for :class:`SpikeTrains`.
    binary : bool
        Count at most one spike per bin (elephant's ``binary``).

    Returns
    -------
    ndarray of float, shape (n_trains, n_trains)
        Symmetric, 1 on the diagonal; **NaN in the rows and columns of neurons
        whose count is the same in every bin** (e.g. silent neurons).
    """
    from elephant.conversion import BinnedSpikeTrain
    from elephant.spike_train_correlation import correlation_coefficient

    trains = as_spiketrains(spiketrains, t_stop)
    binned = BinnedSpikeTrain(trains, bin_size=_pq_time(bin_size, "bin_size", allow_none=False),
                              t_start=_pq_time(t_start, "t_start"), t_stop=_pq_time(t_stop, "t_stop"))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.atleast_2d(np.asarray(correlation_coefficient(binned, binary=binary), dtype=float))

"""neo objects from recordings, and neo spike trains from NWB files.

:func:`spiketrains_to_neo` and :func:`to_neo` build in-memory neo objects for
elephant and other neo-based tools; :func:`read_nwb_spiketrains` reads the spike
trains of an NWB file (written by :func:`brian_dendrite.io.to_nwb` or any other
tool) through neo's :class:`neo.io.NWBIO`. The conventions are on the reference
page, :mod:`brian_dendrite.io`.
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

import numpy as np

from ..simulation import RunRecording, SpikeTrains
from ._common import check_layers, model_info, phase_name, seconds, stimulus_of

__all__ = ["read_nwb_spiketrains", "spiketrains_to_neo", "to_neo"]

logger = logging.getLogger("brian2.brian_dendrite.io")


def spiketrains_to_neo(spikes: SpikeTrains, t_stop, t_start=None, dt=None, layer: str | None = None) -> list:
    """One :class:`neo.SpikeTrain` per neuron of a layer's :class:`SpikeTrains`.

    Parameters
    ----------
    spikes : SpikeTrains
        Spike times (Brian2 quantity) and neuron indices of one layer.
    t_stop : Quantity
        End of the observation (Brian2 time), e.g. ``recording.duration``.
    t_start : Quantity, optional
        Start of the observation (Brian2 time); default 0 s.
    dt : Quantity, optional
        Time step; sets ``sampling_rate = 1/dt`` of the trains.
    layer : str, optional
        Stored as the ``layer`` annotation and used in the train names.

    Returns
    -------
    list of neo.SpikeTrain
        In neuron order, units s, with annotations ``layer`` and ``neuron``.

    Raises
    ------
    brian2.DimensionMismatchError
        If a time is not a Brian2 time quantity.
    ValueError
        If a spike lies outside ``[t_start, t_stop]`` (neo's check).
    """
    import neo
    import quantities as pq

    stop = seconds(t_stop, "t_stop")
    start = 0.0 if t_start is None else seconds(t_start, "t_start")
    extra = {} if dt is None else {"sampling_rate": (1.0 / seconds(dt, "dt")) * pq.Hz}
    times = seconds(spikes.times, "spikes.times")
    order = np.lexsort((times, spikes.indices))
    t_sorted, i_sorted = times[order], np.asarray(spikes.indices)[order]
    bounds = np.searchsorted(i_sorted, np.arange(spikes.n_neurons + 1))
    prefix = f"{layer}" if layer is not None else "neuron"
    return [
        neo.SpikeTrain(t_sorted[bounds[k] : bounds[k + 1]], units="s", t_start=start, t_stop=stop,
                       name=f"{prefix}[{k}]", layer=layer if layer is not None else "", neuron=k, **extra)
        for k in range(spikes.n_neurons)
    ]


def to_neo(recording: RunRecording):
    """The recording as a :class:`neo.Block` with one :class:`neo.Segment`.

    Parameters
    ----------
    recording : RunRecording

    Returns
    -------
    neo.Block
        ``segments[0]`` holds

        * ``spiketrains``: one per neuron per layer (layer order, then neuron
          order), units s, ``t_start = 0``, ``t_stop = duration``,
          ``sampling_rate = 1/dt``, annotations ``layer`` and ``neuron``;
        * ``analogsignals``: one per (layer, variable), dimensionless, shape
          ``(n_times, n_recorded)``, ``sampling_period = dt``, array annotation
          ``neuron`` (index within the layer), annotations ``layer``, ``variable``;
        * ``events``: one per hidden layer with plateaus, named
          ``"<layer> plateaus"``, labels ``"<layer>[<neuron>]"``, array
          annotations ``neuron``, ``alpha`` and ``phase`` (0 forward, 1 target);
        * ``epochs``: one named ``"phases"``, labels ``"forward"``, ``"target"``
          or ``"test"``, array annotations ``example``, ``label`` and ``stimulus``
          (dataset index, ``-1`` if unknown).

        The block's annotations carry the seed, mode and target and
        ``model_toml`` (the parameters).

    Raises
    ------
    ValueError
        For spikes of an unknown layer or an unknown phase code.
    """
    import neo
    import quantities as pq

    check_layers(recording)
    name, description = model_info(recording)
    dt = seconds(recording.dt, "recording.dt")
    duration = seconds(recording.duration, "recording.duration")
    meta = recording.metadata
    block = neo.Block(name=f"brian_dendrite {name}", description=description,
                      model_toml=str(meta.get("model", "")), seed=str(meta.get("seed", "")),
                      mode=str(meta.get("mode", "")), target=str(meta.get("target", "")))
    segment = neo.Segment(name="run")
    block.segments.append(segment)
    for layer in recording.layer_sizes:
        if layer in recording.spikes:
            segment.spiketrains.extend(
                spiketrains_to_neo(recording.spikes[layer], recording.duration, dt=recording.dt, layer=layer))
    for layer, variables in recording.potentials.items():
        for var, pot in variables.items():
            times = seconds(pot.times, f"potentials[{layer!r}][{var!r}].times")
            signal = neo.AnalogSignal(np.asarray(pot.values).T, units=pq.dimensionless,
                                      sampling_period=dt * pq.s,
                                      t_start=(float(times[0]) if times.size else 0.0) * pq.s,
                                      name=f"{layer}.{var}", layer=layer, variable=var,
                                      array_annotations={"neuron": np.asarray(pot.neurons, dtype=np.int64)})
            segment.analogsignals.append(signal)
    for layer, ev in recording.plateaus.items():
        idx = np.asarray(ev.indices, dtype=np.int64)
        segment.events.append(neo.Event(
            seconds(ev.times, f"plateaus[{layer!r}].times") * pq.s,
            labels=np.array([f"{layer}[{i}]" for i in idx], dtype="U"),
            name=f"{layer} plateaus", layer=layer,
            array_annotations={"neuron": idx, "alpha": np.asarray(ev.alpha, dtype=float),
                               "phase": np.asarray(ev.phase, dtype=np.int64)}))
    phases = np.asarray(recording.phases, dtype=float).reshape(-1, 5)
    example = phases[:, 3].astype(np.int64)
    segment.epochs.append(neo.Epoch(
        times=phases[:, 0] * pq.s, durations=(phases[:, 1] - phases[:, 0]) * pq.s,
        labels=np.array([phase_name(c) for c in phases[:, 2]], dtype="U"), name="phases",
        array_annotations={"example": example, "label": phases[:, 4].astype(np.int64),
                           "stimulus": stimulus_of(recording, example)}))
    block.check_relationships()
    logger.debug(f"neo block with {len(segment.spiketrains)} spike trains, "
                 f"{len(segment.analogsignals)} signals, duration {duration} s")
    return block


def read_nwb_spiketrains(path) -> list:
    """Spike trains of an NWB file, read through neo's :class:`neo.io.NWBIO`.

    Parameters
    ----------
    path : str or Path
        An NWB file (written by :func:`to_nwb` or any other tool with a
        ``units`` table that has ``obs_intervals``).

    Returns
    -------
    list of neo.SpikeTrain
        In the order of the ``units`` table, units s, ``t_start``/``t_stop``
        from ``obs_intervals``. For files written by :func:`to_nwb` every train
        is annotated with ``layer`` and ``neuron`` (from the ``layer`` and
        ``neuron_index`` columns, read with pynwb) and named
        ``"<layer>[<neuron>]"``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no NWB file at {path}")
    io = _neo_nwbio()(str(path), mode="r")
    neo_logger = logging.getLogger("Neo")  # the logger of neo.io.nwbio
    neo_logger.addFilter(_drop_arbitrary_unit_warning)
    try:
        # Not lazy: neo 0.14.6's NWBIO cannot append its lazy proxies to a Segment. The
        # potentials in acquisition are therefore read too (as dimensionless AnalogSignals).
        blocks = io.read_all_blocks(lazy=False)
        trains = [train for block in blocks for seg in block.segments for train in seg.spiketrains]
    finally:
        neo_logger.removeFilter(_drop_arbitrary_unit_warning)
        io.close()
    layers, neurons = _unit_columns(path)
    if layers is not None and len(layers) == len(trains):
        for train, layer, neuron in zip(trains, layers, neurons, strict=True):
            train.annotate(layer=str(layer), neuron=int(neuron))
            train.name = f"{layer}[{neuron}]"
    return trains


def _drop_arbitrary_unit_warning(record: logging.LogRecord) -> bool:
    """neo warns that it reads our ``a.u.`` potentials as dimensionless, which is what they are."""
    return "'a.u.'" not in record.getMessage()


def _neo_nwbio():
    """neo's NWBIO, tolerant of string-array file metadata.

    neo 0.14.6 copies ``keywords`` and ``experimenter`` into the Block's
    annotations as hdmf ``StrDataset`` objects, which neo's own annotation
    check rejects, so it cannot read any file that has them. :func:`to_nwb`
    writes neither by default; this subclass turns them into lists of str so
    that files from other tools (or with ``keywords=`` given) read as well.
    """
    from neo.io import NWBIO

    class _NWBIO(NWBIO):
        def _get_segment(self, block_name, segment_name):
            self.global_block_metadata = {key: _plain_annotation(value)
                                          for key, value in self.global_block_metadata.items()}
            return super()._get_segment(block_name, segment_name)

    return _NWBIO


def _plain_annotation(value):
    if isinstance(value, str | bytes | int | float | datetime.datetime | datetime.date | dict) or value is None:
        return value
    try:
        return [v.decode() if isinstance(v, bytes) else str(v) for v in value]
    except TypeError:
        return str(value)


def _unit_columns(path: Path):
    import pynwb

    with pynwb.NWBHDF5IO(str(path), mode="r") as io:
        units = io.read().units
        if units is None or "layer" not in units.colnames or "neuron_index" not in units.colnames:
            return None, None
        return list(units["layer"][:]), np.asarray(units["neuron_index"][:])

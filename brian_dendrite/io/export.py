"""Export a :class:`~brian_dendrite.simulation.recording.RunRecording` to neo and to NWB.

:func:`to_neo` builds an in-memory :class:`neo.Block` for elephant and other
neo-based tools; :func:`to_nwb` writes a Neurodata Without Borders file with
pynwb; :func:`read_nwb_spiketrains` reads the spikes back through neo's
:class:`neo.io.NWBIO` (the round-trip path that the tests check).

Units are stripped here, at the boundary to neo (``quantities``) and NWB (SI
floats in seconds); everything upstream keeps Brian2 quantities.

Layout of the NWB file
----------------------
``units``
    One row per neuron of every layer, in layer order (``input``,
    ``hidden_0``, ..., ``output``) and neuron order. Columns ``spike_times``
    (s, ascending), ``obs_intervals`` (``[[0, duration]]``), ``layer`` (layer
    name) and ``neuron_index`` (index within the layer). The table's
    ``resolution`` is the simulation time step in seconds: spike times are
    multiples of it.
``acquisition/<layer>_<variable>``
    A :class:`pynwb.base.TimeSeries` per recorded compartment potential
    (``V_soma``, ``V_basal``, ``V_apical``), data of shape
    ``(n_times, n_recorded_neurons)``, regularly sampled (``starting_time``,
    ``rate``). The model's potentials are dimensionless, so ``unit`` is
    ``"a.u."`` (arbitrary units) with ``conversion = 1``; the description lists
    which neuron of the layer each column is. For a simulation the simulated
    state *is* the acquired data, hence ``acquisition`` rather than
    ``processing``.
``processing/compartments/plateaus``
    A :class:`hdmf.common.DynamicTable` with one row per plateau potential:
    ``time`` (s), ``hidden_layer`` (``h`` of ``hidden_<h>``), ``neuron``,
    ``alpha`` (the plateau value, :math:`\\alpha^f` or :math:`\\alpha^t` of the
    paper) and ``phase`` (0 forward, 1 target). This table has
    ``n_hidden x n_phases`` rows, more than there are spikes in a hidden
    layer, so it is all numbers (small integer types, gzip): string columns
    cost about 50 bytes per row in HDF5's variable-length heap and would
    dominate the file.
``trials``
    One row per phase of the schedule: ``start_time``, ``stop_time``, ``phase``
    (``"forward"``, ``"target"`` or ``"test"``), ``phase_code`` (0, 1, 2),
    ``example`` (index of the example within the run), ``label`` (its class)
    and ``stimulus`` (its index in the dataset, ``-1`` if unknown).
``epochs``
    The same phases as epochs tagged with the phase name, so that tools which
    read only epochs (neo's ``NWBIO``) see the schedule too.

Provenance
----------
``notes`` holds the model parameters as TOML (exactly
``recording.metadata['model']``, loadable with
:func:`brian_dendrite.model.parameters` tooling); ``data_collection`` holds a JSON
object with the seed, run mode, code-generation target, chunk key, examples
trained, the recording's own metadata that is not the TOML and the package
versions at export time; ``source_script`` names this exporter and its
version. ``related_publications`` cites the paper. ``keywords`` are left out
on purpose (nwbinspector suggests them): neo 0.14.6's ``NWBIO`` cannot read a
file that has them.

Subject convention for simulated data
-------------------------------------
NWB requires a :class:`pynwb.file.Subject` (nwbinspector reports a missing one
as CRITICAL, as it does a missing ``subject_id``, ``sex`` or ``age``). A
simulated network has none of these, so the exporter writes, unless the caller
passes its own ``subject``:

* ``subject_id = "simulated-<model name>-seed<seed>"`` (e.g.
  ``simulated-one_hidden-seed1``): the model and seed identify the simulated
  "animal" uniquely, and two runs of the same network share it.
* ``species`` left unset: no organism was recorded, and a Latin binomial would
  be false. nwbinspector reports this as a ``BEST_PRACTICE_VIOLATION``
  ("Subject species is missing"), which is the honest outcome.
* ``sex = "U"`` (unknown, the NWB code closest to "not applicable").
* ``age = "P0D/"``: the ISO 8601 open range "zero days or older", NWB's way of
  saying the age is not known; a network has no age in days.
* ``description`` says the subject is an in-silico network and names the model.

Memory behaviour
----------------
Spike times are not copied into Python lists. The ``units`` table's
``spike_times`` column is written from an iterator that sorts one layer at a
time by neuron (``numpy.lexsort``) and hands that array to HDF5, so the extra
memory is at most one layer's spikes (8 bytes per spike for the times plus 8
for the sort order) on top of the recording itself; the per-neuron index is
computed beforehand with ``numpy.bincount``. Potentials are written from
(transposed views of) the recording's arrays; h5py may make one contiguous
copy of a potential while writing it. Plateaus and phases are small. All
large datasets are gzip-compressed (potentials and plateaus with the shuffle
filter, which helps floating-point traces but not sorted spike times).

Examples
--------
>>> from brian_dendrite.io.export import to_nwb, read_nwb_spiketrains  # doctest: +SKIP
>>> path = to_nwb(recording, "run.nwb")                                # doctest: +SKIP
>>> trains = read_nwb_spiketrains(path)                                # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import tempfile
import tomllib
import uuid
from pathlib import Path

import numpy as np
from brian2 import second
from brian2.units.fundamentalunits import DimensionMismatchError, Quantity, have_same_dimensions

from ..simulation import RunRecording, SpikeTrains

__all__ = ["to_neo", "to_nwb", "read_nwb_spiketrains", "spiketrains_to_neo", "simulated_subject"]

logger = logging.getLogger("brian2.brian_dendrite.export")

#: Guerguiev, Lillicrap & Richards (2017), eLife 6:e22901.
PAPER_DOI = "doi:10.7554/eLife.22901"

_PHASE_NAMES = RunRecording.PHASE_NAMES


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _seconds(value, name: str) -> np.ndarray | float:
    """A Brian2 time (Quantity in seconds) as float(s) in seconds, without copying arrays."""
    if not isinstance(value, Quantity) or not have_same_dimensions(value, second):
        raise DimensionMismatchError(f"{name} must be a Brian2 time quantity, got {value!r}")
    arr = np.asarray(value, dtype=float)
    return float(arr) if arr.ndim == 0 else arr


def _model_info(recording: RunRecording) -> tuple[str, str]:
    """Name and description of the model from the parameter TOML of the recording (if any)."""
    text = recording.metadata.get("model")
    if not text:
        return "unknown", ""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"recording.metadata['model'] is not valid TOML: {err}") from None
    return str(data.get("name", "unknown")), str(data.get("description", ""))


def _phase_name(code) -> str:
    code = int(code)
    if code not in _PHASE_NAMES:
        raise ValueError(f"unknown phase code {code}; known codes are {sorted(_PHASE_NAMES)}")
    return _PHASE_NAMES[code]


def _check_layers(recording: RunRecording) -> None:
    missing = sorted(set(recording.spikes) - set(recording.layer_sizes))
    if missing:
        raise ValueError(f"spikes recorded for layer(s) {missing} that are not in layer_sizes "
                         f"{sorted(recording.layer_sizes)}")


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

    stop = _seconds(t_stop, "t_stop")
    start = 0.0 if t_start is None else _seconds(t_start, "t_start")
    extra = {} if dt is None else {"sampling_rate": (1.0 / _seconds(dt, "dt")) * pq.Hz}
    times = _seconds(spikes.times, "spikes.times")
    order = np.lexsort((times, spikes.indices))
    t_sorted, i_sorted = times[order], np.asarray(spikes.indices)[order]
    bounds = np.searchsorted(i_sorted, np.arange(spikes.n_neurons + 1))
    prefix = f"{layer}" if layer is not None else "neuron"
    return [
        neo.SpikeTrain(t_sorted[bounds[k] : bounds[k + 1]], units="s", t_start=start, t_stop=stop,
                       name=f"{prefix}[{k}]", layer=layer if layer is not None else "", neuron=k, **extra)
        for k in range(spikes.n_neurons)
    ]


# --------------------------------------------------------------------------------------------------
# neo
# --------------------------------------------------------------------------------------------------


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

    _check_layers(recording)
    name, description = _model_info(recording)
    dt = _seconds(recording.dt, "recording.dt")
    duration = _seconds(recording.duration, "recording.duration")
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
            times = _seconds(pot.times, f"potentials[{layer!r}][{var!r}].times")
            signal = neo.AnalogSignal(np.asarray(pot.values).T, units=pq.dimensionless,
                                      sampling_period=dt * pq.s,
                                      t_start=(float(times[0]) if times.size else 0.0) * pq.s,
                                      name=f"{layer}.{var}", layer=layer, variable=var,
                                      array_annotations={"neuron": np.asarray(pot.neurons, dtype=np.int64)})
            segment.analogsignals.append(signal)
    for layer, ev in recording.plateaus.items():
        idx = np.asarray(ev.indices, dtype=np.int64)
        segment.events.append(neo.Event(
            _seconds(ev.times, f"plateaus[{layer!r}].times") * pq.s,
            labels=np.array([f"{layer}[{i}]" for i in idx], dtype="U"),
            name=f"{layer} plateaus", layer=layer,
            array_annotations={"neuron": idx, "alpha": np.asarray(ev.alpha, dtype=float),
                               "phase": np.asarray(ev.phase, dtype=np.int64)}))
    phases = np.asarray(recording.phases, dtype=float).reshape(-1, 5)
    example = phases[:, 3].astype(np.int64)
    segment.epochs.append(neo.Epoch(
        times=phases[:, 0] * pq.s, durations=(phases[:, 1] - phases[:, 0]) * pq.s,
        labels=np.array([_phase_name(c) for c in phases[:, 2]], dtype="U"), name="phases",
        array_annotations={"example": example, "label": phases[:, 4].astype(np.int64),
                           "stimulus": _stimulus_of(recording, example)}))
    block.check_relationships()
    logger.debug(f"neo block with {len(segment.spiketrains)} spike trains, "
                 f"{len(segment.analogsignals)} signals, duration {duration} s")
    return block


def _stimulus_of(recording: RunRecording, example: np.ndarray) -> np.ndarray:
    """Dataset index of each phase's example (-1 where unknown)."""
    stimulus = np.asarray(recording.stimulus, dtype=np.int64)
    out = np.full(len(example), -1, dtype=np.int64)
    known = (example >= 0) & (example < len(stimulus))
    out[known] = stimulus[example[known]]
    return out


# --------------------------------------------------------------------------------------------------
# NWB
# --------------------------------------------------------------------------------------------------


def simulated_subject(recording: RunRecording):
    """The :class:`pynwb.file.Subject` of the module's convention for simulated data.

    See the module docstring ("Subject convention for simulated data").
    """
    from pynwb.file import Subject

    name, description = _model_info(recording)
    seed = recording.metadata.get("seed", "unknown")
    text = (f"In-silico network, not an organism: brian_dendrite model '{name}'"
            + (f" ({description})" if description else "")
            + f", seed {seed}. species is deliberately unset, sex 'U' and age 'P0D/' mean "
              "'not applicable' (brian_dendrite.io.export convention).")
    return Subject(subject_id=f"simulated-{name}-seed{seed}".replace("/", "_"), sex="U", age="P0D/",
                   description=text)


def _spike_times_iterator(recording: RunRecording, layers: list[str], total: int):
    """Spike times of all units, sorted by (layer, neuron, time), produced one layer at a time."""
    from hdmf.data_utils import AbstractDataChunkIterator, DataChunk

    class _LayerByLayer(AbstractDataChunkIterator):
        def __init__(self):
            self._layers = iter(layers)
            self._offset = 0

        def __iter__(self):
            return self

        def __next__(self):
            for layer in self._layers:
                st = recording.spikes.get(layer)
                if st is None or len(st.indices) == 0:
                    continue
                times = _seconds(st.times, f"spikes[{layer!r}].times")
                order = np.lexsort((times, st.indices))
                chunk = times[order]
                del order
                selection = np.s_[self._offset : self._offset + len(chunk)]
                self._offset += len(chunk)
                return DataChunk(data=chunk, selection=selection)
            raise StopIteration

        def recommended_chunk_shape(self):
            return None

        def recommended_data_shape(self):
            return (total,)

        @property
        def dtype(self):
            return np.dtype(np.float64)

        @property
        def maxshape(self):
            return (total,)

    return _LayerByLayer()


def _units_table(recording: RunRecording, dt: float, duration: float):
    from hdmf.backends.hdf5 import H5DataIO
    from hdmf.common import VectorData, VectorIndex
    from pynwb.misc import Units

    layers = list(recording.layer_sizes)
    counts = []
    for layer in layers:
        n = int(recording.layer_sizes[layer])
        st = recording.spikes.get(layer)
        if st is None:
            counts.append(np.zeros(n, dtype=np.int64))
            continue
        idx = np.asarray(st.indices)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(f"spikes[{layer!r}] has neuron indices outside [0, {n})")
        counts.append(np.bincount(idx, minlength=n))
    counts = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
    n_units, total = len(counts), int(counts.sum())
    index_dtype = np.uint32 if total < 2**32 else np.uint64
    if total:
        # No shuffle filter here: on sorted spike times it makes gzip 2.5x worse (measured).
        data = H5DataIO(_spike_times_iterator(recording, layers, total), compression="gzip",
                        chunks=(min(total, 65536),))
    else:
        data = np.zeros(0, dtype=np.float64)
    spike_times = VectorData(name="spike_times", description="the spike times for each unit in seconds",
                             data=data)
    spike_times_index = VectorIndex(name="spike_times_index", target=spike_times,
                                    data=np.cumsum(counts).astype(index_dtype))
    obs_intervals = VectorData(name="obs_intervals", description="the observation intervals for each unit",
                               data=np.tile([0.0, duration], (n_units, 1)))
    obs_intervals_index = VectorIndex(name="obs_intervals_index", target=obs_intervals,
                                      data=np.arange(1, n_units + 1, dtype=np.uint32))
    layer_col = VectorData(name="layer", description="name of the layer (input, hidden_<h>, output)",
                           data=[layer for layer in layers for _ in range(int(recording.layer_sizes[layer]))])
    neuron_col = VectorData(name="neuron_index", description="index of the neuron within its layer",
                            data=np.concatenate([np.arange(int(recording.layer_sizes[layer]), dtype=np.int64)
                                                 for layer in layers]) if layers else np.zeros(0, np.int64))
    return Units(
        name="units", id=np.arange(n_units),
        # The index precedes its target: hdmf 6.2's DynamicTable drops an iterator-backed column
        # from its length check before it meets the index and then reports the target as missing.
        columns=[spike_times_index, spike_times, obs_intervals, obs_intervals_index, layer_col, neuron_col],
        resolution=dt,
        description=("Simulated neurons of every layer (rows in layer order, then neuron order); spike "
                     "times in seconds from the start of the run, multiples of the time step "
                     "(resolution)."),
    ), total


def _phase_tables(recording: RunRecording):
    from hdmf.common import VectorData, VectorIndex
    from pynwb.epoch import TimeIntervals

    phases = np.asarray(recording.phases, dtype=float).reshape(-1, 5)
    n = len(phases)
    names = [_phase_name(c) for c in phases[:, 2]]
    example = phases[:, 3].astype(np.int64)
    label = phases[:, 4].astype(np.int64)
    stimulus = _stimulus_of(recording, example)

    def times():
        return [VectorData(name="start_time", description="start of the phase (s)", data=phases[:, 0]),
                VectorData(name="stop_time", description="end of the phase (s)", data=phases[:, 1])]

    trials = TimeIntervals(
        name="trials", id=np.arange(n),
        description=("One row per phase of the schedule: forward (input only), target (output "
                     "teaching signal on) or test (no learning)."),
        columns=[*times(),
                 VectorData(name="phase", description="phase name: forward, target or test", data=names),
                 VectorData(name="phase_code", description="phase code: 0 forward, 1 target, 2 test",
                            data=phases[:, 2].astype(np.int8)),
                 VectorData(name="example", description="index of the example within the run", data=example),
                 VectorData(name="label", description="class label of the example", data=label),
                 VectorData(name="stimulus", description="index of the example in its dataset (-1: unknown)",
                            data=stimulus)])
    tags = VectorData(name="tags", description="phase name", data=names)
    epochs = TimeIntervals(
        name="epochs", id=np.arange(n),
        description="The phases of the schedule as epochs tagged with the phase name (same rows as trials).",
        columns=[*times(), tags,
                 VectorIndex(name="tags_index", target=tags, data=np.arange(1, n + 1, dtype=np.uint32)),
                 VectorData(name="example", description="index of the example within the run", data=example)])
    return trials, epochs


def _potential_series(recording: RunRecording, dt: float):
    from hdmf.backends.hdf5 import H5DataIO
    from pynwb import TimeSeries

    series = []
    for layer, variables in recording.potentials.items():
        for var, pot in variables.items():
            times = _seconds(pot.times, f"potentials[{layer!r}][{var!r}].times")
            values = np.asarray(pot.values)
            neurons = np.asarray(pot.neurons, dtype=np.int64)
            if values.shape != (len(neurons), len(times)):
                raise ValueError(f"potentials[{layer!r}][{var!r}].values has shape {values.shape}, expected "
                                 f"(n_neurons, n_times) = {(len(neurons), len(times))}")
            regular = len(times) < 2 or np.allclose(np.diff(times), dt, rtol=1e-9, atol=1e-12)
            timing = {"starting_time": float(times[0]) if len(times) else 0.0, "rate": 1.0 / dt} \
                if regular else {"timestamps": times}
            series.append(TimeSeries(
                name=f"{layer}_{var}", data=H5DataIO(values.T, compression="gzip", shuffle=True), unit="a.u.",
                description=(f"{var} of layer {layer}: the model's dimensionless compartment potential "
                             "(arbitrary units, a.u.). Columns are neurons "
                             f"{', '.join(str(k) for k in neurons)} of the layer (neuron_index in units)."),
                **timing))
    return series


def _plateau_table(recording: RunRecording):
    from hdmf.backends.hdf5 import H5DataIO
    from hdmf.common import DynamicTable, ElementIdentifiers, VectorData

    parts = [(layer, ev) for layer, ev in recording.plateaus.items() if len(ev.indices)]
    if not parts:
        return None
    for layer, _ in parts:
        if not layer.startswith("hidden_") or not layer[7:].isdigit():
            raise ValueError(f"plateaus recorded for {layer!r}; only hidden layers (hidden_<h>) have plateaus")
    phase = np.concatenate([np.asarray(ev.phase) for _, ev in parts])
    unknown = sorted(set(np.unique(phase).tolist()) - {0, 1})
    if unknown:
        raise ValueError(f"plateau phase codes {unknown}; expected 0 (forward) or 1 (target)")

    def packed(values, dtype):
        # This table grows with n_hidden x n_phases: small numeric types, gzip, no strings.
        return H5DataIO(np.asarray(values, dtype=dtype), compression="gzip", shuffle=True)

    n = sum(len(ev.indices) for _, ev in parts)
    return DynamicTable(
        name="plateaus", id=ElementIdentifiers(name="id", data=packed(np.arange(n), np.int64)),
        description=("Plateau potentials of the hidden layers' apical compartments, one row per neuron "
                     "and phase end (Guerguiev et al. 2017, eq. 5)."),
        columns=[
            VectorData(name="time", description="time of the plateau (s)",
                       data=packed(np.concatenate([_seconds(ev.times, f"plateaus[{layer!r}].times")
                                                   for layer, ev in parts]), np.float64)),
            VectorData(name="hidden_layer", description="h of the hidden layer hidden_<h> (units.layer)",
                       data=packed(np.concatenate([np.full(len(ev.indices), int(layer[7:]))
                                                   for layer, ev in parts]), np.uint8)),
            VectorData(name="neuron", description="index of the neuron within its layer (units.neuron_index)",
                       data=packed(np.concatenate([np.asarray(ev.indices) for _, ev in parts]), np.uint32)),
            VectorData(name="alpha", description="plateau value alpha (dimensionless; alpha^f in the forward "
                       "phase, alpha^t in the target phase)",
                       data=packed(np.concatenate([np.asarray(ev.alpha) for _, ev in parts]), np.float64)),
            VectorData(name="phase", description="phase the plateau ends: 0 forward, 1 target "
                       "(as trials.phase_code)", data=packed(phase, np.int8)),
        ])


def _provenance(recording: RunRecording) -> str:
    from ..provenance import versions

    meta = {k: v for k, v in recording.metadata.items() if k != "model"}
    exporter = versions()
    for module in ("pynwb", "hdmf", "neo", "h5py"):
        try:
            exporter[module] = __import__(module).__version__
        except ImportError:  # pragma: no cover - pynwb needs hdmf and h5py
            pass
    return json.dumps({"recording_metadata": meta, "exporter_versions": exporter,
                       "dt_s": _seconds(recording.dt, "recording.dt"),
                       "duration_s": _seconds(recording.duration, "recording.duration"),
                       "layer_sizes": recording.layer_sizes}, indent=1, sort_keys=True, default=str)


def to_nwb(recording: RunRecording, path, session_description: str | None = None,
           identifier: str | None = None, session_start_time: datetime.datetime | None = None,
           subject=None, **nwbfile_kwargs) -> Path:
    """Write the recording to an NWB file, atomically.

    The file layout, the provenance fields, the subject convention for
    simulated data and the memory behaviour are described in the module
    docstring.

    Parameters
    ----------
    recording : RunRecording
    path : str or Path
        Destination (conventionally ``*.nwb``). The file is written under a
        temporary name in the same directory and moved into place with
        :func:`os.replace`: a failed export leaves no file under ``path`` and
        no temporary file (an existing file at ``path`` is left untouched).
    session_description : str, optional
        Default: a sentence naming the model, mode and number of examples.
    identifier : str, optional
        Globally unique identifier of the file. Default: a new UUID4.
    session_start_time : datetime, optional
        Time-zone aware start of the "session". A simulation has no wall-clock
        session, so the default is the export time (UTC); all times in the file
        are relative to it.
    subject : pynwb.file.Subject, optional
        Default: :func:`simulated_subject` (the module's convention).
    **nwbfile_kwargs
        Further :class:`pynwb.NWBFile` fields (``experimenter``, ``lab``,
        ``institution``, ``keywords``, ...); these override the exporter's
        defaults (``notes``, ``related_publications``, ...). ``keywords`` and
        ``experimenter`` are not written by default because neo 0.14.6's
        ``NWBIO`` fails on files that have them (:func:`read_nwb_spiketrains`
        copes; plain ``neo.io.NWBIO`` does not).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        If ``session_start_time`` is naive, for an unknown phase code, spikes of
        an unknown layer or inconsistent potential shapes.
    """
    import pynwb

    path = Path(path)
    if session_start_time is None:
        session_start_time = datetime.datetime.now(datetime.UTC)
    elif session_start_time.tzinfo is None:
        raise ValueError(f"session_start_time = {session_start_time!r} must be time-zone aware "
                         "(e.g. datetime.datetime(..., tzinfo=datetime.UTC))")
    _check_layers(recording)
    name, description = _model_info(recording)
    dt = _seconds(recording.dt, "recording.dt")
    duration = _seconds(recording.duration, "recording.duration")
    meta = recording.metadata
    n_examples = len(np.unique(np.asarray(recording.phases).reshape(-1, 5)[:, 3]))
    if session_description is None:
        session_description = (f"Brian2 simulation of the segregated-dendrite network '{name}' "
                               f"(Guerguiev, Lillicrap & Richards 2017): {meta.get('mode', 'run')} run of "
                               f"{n_examples} example(s), {duration:g} s simulated.")
    from .. import __version__

    fields = {
        "experiment_description": description or f"brian_dendrite model {name}",
        "related_publications": [PAPER_DOI],
        "source_script": f"brian_dendrite {__version__}: brian_dendrite.io.export.to_nwb",
        "source_script_file_name": "brian_dendrite/export.py",
        "notes": str(meta.get("model", "")) or "model parameters not recorded",
        "data_collection": _provenance(recording),
        "stimulus_notes": ("MNIST images presented as Poisson input rates; trials.stimulus is the image's "
                           "index in its dataset split."),
    }
    fields.update(nwbfile_kwargs)
    units, n_spikes = _units_table(recording, dt, duration)
    trials, epochs = _phase_tables(recording)
    nwbfile = pynwb.NWBFile(
        session_description=session_description,
        identifier=identifier or str(uuid.uuid4()),
        session_start_time=session_start_time,
        subject=subject if subject is not None else simulated_subject(recording),
        units=units, trials=trials if len(trials) else None, epochs=epochs if len(epochs) else None,
        **fields,
    )
    for series in _potential_series(recording, dt):
        nwbfile.add_acquisition(series)
    plateaus = _plateau_table(recording)
    if plateaus is not None:
        module = nwbfile.create_processing_module(
            "compartments", "Events of the model's dendritic compartments (plateau potentials).")
        module.add(plateaus)

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp.nwb")
    os.close(fd)
    try:
        with pynwb.NWBHDF5IO(tmp, mode="w") as io:
            io.write(nwbfile)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    logger.info(f"wrote {path}: {len(units)} units, {n_spikes} spikes, {duration:g} s simulated")
    return path


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

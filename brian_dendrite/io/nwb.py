"""NWB files from recordings: :func:`to_nwb`, and :func:`simulated_subject`, the subject of a simulation.

The layout of the file, its provenance fields, the subject convention for
simulated data and the memory behaviour of the writer are on the reference
page, :mod:`brian_dendrite.io`.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import tempfile
import uuid
from pathlib import Path

import numpy as np

from ..paper import DOI
from ..provenance import versions
from ..simulation import RunRecording
from ._common import check_layers, model_info, phase_name, seconds, stimulus_of

__all__ = ["PAPER_DOI", "simulated_subject", "to_nwb"]

logger = logging.getLogger("brian2.brian_dendrite.io")

#: Guerguiev, Lillicrap & Richards (2017), eLife 6:e22901, as NWB's ``related_publications`` wants it.
PAPER_DOI = f"doi:{DOI}"


def simulated_subject(recording: RunRecording):
    """The :class:`pynwb.file.Subject` of the convention for simulated data.

    See "Subject convention for simulated data" in :mod:`brian_dendrite.io`.
    """
    from pynwb.file import Subject

    name, description = model_info(recording)
    seed = recording.metadata.get("seed", "unknown")
    text = (f"In-silico network, not an organism: brian_dendrite model '{name}'"
            + (f" ({description})" if description else "")
            + f", seed {seed}. species is deliberately unset, sex 'U' and age 'P0D/' mean "
              "'not applicable' (brian_dendrite.io convention).")
    return Subject(subject_id=f"simulated-{name}-seed{seed}".replace("/", "_"), sex="U", age="P0D/",
                   description=text)


def to_nwb(recording: RunRecording, path, session_description: str | None = None,
           identifier: str | None = None, session_start_time: datetime.datetime | None = None,
           subject=None, **nwbfile_kwargs) -> Path:
    """Write the recording to an NWB file, atomically.

    The file layout, the provenance fields, the subject convention for
    simulated data and the memory behaviour are described on the
    reference page, :mod:`brian_dendrite.io`.

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
        Default: :func:`simulated_subject` (the convention for simulated data).
    **nwbfile_kwargs
        Further :class:`pynwb.NWBFile` fields (``experimenter``, ``lab``,
        ``institution``, ``keywords``, ...); these override the exporter's
        defaults (``notes``, ``related_publications``, ...). ``keywords`` and
        ``experimenter`` are not written by default because neo 0.14.6's
        ``NWBIO`` fails on files that have them (:func:`~brian_dendrite.io.read_nwb_spiketrains`
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
    session_start_time = _session_start(session_start_time)
    check_layers(recording)
    name, description = model_info(recording)
    dt = seconds(recording.dt, "recording.dt")
    duration = seconds(recording.duration, "recording.duration")
    if session_description is None:
        session_description = _default_session_description(recording, name, duration)
    fields = _file_fields(recording, name, description)
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
    _add_compartments(nwbfile, recording, dt)
    _write_atomically(nwbfile, path)
    logger.info(f"wrote {path}: {len(units)} units, {n_spikes} spikes, {duration:g} s simulated")
    return path


def _session_start(session_start_time: datetime.datetime | None) -> datetime.datetime:
    """The session's start: the given time-zone aware time, or now (UTC) for a simulation."""
    if session_start_time is None:
        return datetime.datetime.now(datetime.UTC)
    if session_start_time.tzinfo is None:
        raise ValueError(f"session_start_time = {session_start_time!r} must be time-zone aware "
                         "(e.g. datetime.datetime(..., tzinfo=datetime.UTC))")
    return session_start_time


def _default_session_description(recording: RunRecording, name: str, duration: float) -> str:
    """A sentence naming the model, the run mode and the number of examples."""
    n_examples = len(np.unique(np.asarray(recording.phases).reshape(-1, 5)[:, 3]))
    return (f"Brian2 simulation of the segregated-dendrite network '{name}' "
            f"(Guerguiev, Lillicrap & Richards 2017): {recording.metadata.get('mode', 'run')} run of "
            f"{n_examples} example(s), {duration:g} s simulated.")


def _file_fields(recording: RunRecording, name: str, description: str) -> dict:
    """The exporter's default NWBFile fields: the experiment, the paper and the provenance."""
    from .. import __version__

    return {
        "experiment_description": description or f"brian_dendrite model {name}",
        "related_publications": [PAPER_DOI],
        "source_script": f"brian_dendrite {__version__}: brian_dendrite.io.to_nwb",
        "source_script_file_name": "brian_dendrite/io/nwb.py",
        "notes": str(recording.metadata.get("model", "")) or "model parameters not recorded",
        "data_collection": _provenance(recording),
        "stimulus_notes": ("MNIST images presented as Poisson input rates; trials.stimulus is the image's "
                           "index in its dataset split."),
    }


def _add_compartments(nwbfile, recording: RunRecording, dt: float) -> None:
    """The compartment potentials (acquisition) and the plateau potentials (processing) of the recording."""
    for series in _potential_series(recording, dt):
        nwbfile.add_acquisition(series)
    plateaus = _plateau_table(recording)
    if plateaus is not None:
        module = nwbfile.create_processing_module(
            "compartments", "Events of the model's dendritic compartments (plateau potentials).")
        module.add(plateaus)


def _write_atomically(nwbfile, path: Path) -> None:
    """Write under a temporary name beside ``path``, then rename: a failed write leaves no file."""
    import pynwb

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp.nwb")
    os.close(fd)
    try:
        with pynwb.NWBHDF5IO(tmp, mode="w") as io:
            io.write(nwbfile)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
                times = seconds(st.times, f"spikes[{layer!r}].times")
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
    names = [phase_name(c) for c in phases[:, 2]]
    example = phases[:, 3].astype(np.int64)
    label = phases[:, 4].astype(np.int64)
    stimulus = stimulus_of(recording, example)

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
            times = seconds(pot.times, f"potentials[{layer!r}][{var!r}].times")
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
                       data=packed(np.concatenate([seconds(ev.times, f"plateaus[{layer!r}].times")
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
    meta = {k: v for k, v in recording.metadata.items() if k != "model"}
    exporter = versions()
    for module in ("pynwb", "hdmf", "neo", "h5py"):
        try:
            exporter[module] = __import__(module).__version__
        except ImportError:  # pragma: no cover - pynwb needs hdmf and h5py
            pass
    return json.dumps({"recording_metadata": meta, "exporter_versions": exporter,
                       "dt_s": seconds(recording.dt, "recording.dt"),
                       "duration_s": seconds(recording.duration, "recording.duration"),
                       "layer_sizes": recording.layer_sizes}, indent=1, sort_keys=True, default=str)

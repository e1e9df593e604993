"""SONATA spike files from recordings: :func:`to_sonata`, and :func:`read_sonata_spikes` to read them back.

The SONATA data format (Allen Institute and Blue Brain Project) stores the
spikes of a simulation in an HDF5 file that BMTK, NEST's SONATA tools and
libsonata read. The layout written here (the spike-file section of the SONATA
developer guide):

``/spikes/<population>`` (group), one per layer of the recording
    Named after the layer: ``input``, ``hidden_0``, ..., ``output``, in layer
    order; a layer without spikes still has its (empty) group. Attributes:
    ``sorting`` (HDF5 enum ``none`` = 0, ``by_id`` = 1, ``by_time`` = 2, base
    type uint8, as the specification and libsonata define it), ``n_nodes`` (the
    layer's size: the node ids are ``0 .. n_nodes - 1``, so silent neurons are
    known too) and ``description``.
``/spikes/<population>/timestamps`` (float64, one per spike), attribute ``units = "ms"``
    Spike times in milliseconds from the start of the recorded run: the
    recording's float64 seconds multiplied by 1000.0 (one rounding, below one
    unit in the last place).
``/spikes/<population>/node_ids`` (uint64, one per spike)
    The index of the spiking neuron within its layer (0-based), the ``neuron_index``
    of the NWB export.

The datasets are contiguous and not compressed (16 bytes per spike): libsonata's
wheels cannot read gzip-compressed datasets.

The root group's attributes record the provenance: ``source`` (this exporter
and the package version), ``model`` (the parameter TOML of the recording, if
any), ``seed``, ``dt_ms`` and ``duration_ms``. The file is written under a
temporary name in the destination folder and moved into place with
:func:`os.replace`, so an existing file is replaced only by a complete one.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..simulation import RunRecording
from ._common import check_layers, seconds

__all__ = ["SORTING", "SonataPopulation", "read_sonata_spikes", "to_sonata"]

logger = logging.getLogger("brian2.brian_dendrite.io")

#: The values of the ``sorting`` attribute, by their code in the HDF5 enum.
SORTING = {"none": 0, "by_id": 1, "by_time": 2}


class SonataPopulation(NamedTuple):
    """The spikes of one population of a SONATA spike file (see :func:`read_sonata_spikes`)."""

    #: Node id of every spike (uint64).
    node_ids: np.ndarray
    #: Time of every spike (float64, in ``units``).
    timestamps: np.ndarray
    #: ``"none"``, ``"by_id"`` or ``"by_time"`` (``"none"`` if the file does not say).
    sorting: str
    #: Units of the timestamps (``"ms"`` in files of :func:`to_sonata`).
    units: str
    #: Number of nodes (the ``n_nodes`` attribute), or None if the file does not say.
    n_nodes: int | None


def _sorting_type():
    import h5py

    return h5py.enum_dtype(SORTING, basetype=np.uint8)


def to_sonata(recording: RunRecording, path, sorting: str = "by_id", progress: bool = True) -> Path:
    """Write the spikes of the recording to a SONATA spike file (HDF5), atomically.

    The layout is described in :mod:`brian_dendrite.io.sonata` and on the
    user page ``docs/sonata.rst``.

    Parameters
    ----------
    recording : RunRecording
    path : str or Path
        Destination (conventionally ``*.h5``) in an existing folder. The file is
        written under a temporary name in the same folder and moved into place
        with :func:`os.replace`: a failed export leaves no temporary file and an
        existing file at ``path`` untouched.
    sorting : {'by_id', 'by_time', 'none'}
        Order of the spikes of each population: ``'by_id'`` (default; by node id,
        then time), ``'by_time'`` (by time, then node id) or ``'none'`` (the
        recording's order). Stored as the ``sorting`` attribute.
    progress : bool
        Show a progress bar (populations written) on stderr.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        For an unknown ``sorting``, a ``path`` that is a folder, spikes of a layer
        that ``recording.layer_sizes`` does not have, or neuron indices outside a layer.
    FileNotFoundError
        If the folder of ``path`` does not exist.
    OSError
        If writing fails (the folder is not writable, the disk is full, ...).
    """
    import h5py

    from .._progress import progress_bar

    if sorting not in SORTING:
        raise ValueError(f"sorting = {sorting!r}: expected one of {', '.join(SORTING)}")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"SONATA output {path} is a folder; expected a file name such as {path / 'spikes.h5'}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {path.parent} of the SONATA output {path} does not exist")
    check_layers(recording)
    layers = list(recording.layer_sizes)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp.h5")
    os.close(fd)
    n_spikes = 0
    try:
        with progress_bar(len(layers), "SONATA export", "population", enabled=progress) as bar:
            with h5py.File(tmp, "w") as f:
                _provenance(f, recording)
                root = f.create_group("spikes")
                for layer in layers:
                    bar.set_postfix_str(layer)
                    n_spikes += _write_population(root, recording, layer, sorting)
                    bar.update(1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    logger.info(f"wrote {path}: {len(layers)} populations, {n_spikes} spikes ({sorting})")
    return path


def _write_population(root, recording: RunRecording, layer: str, sorting: str) -> int:
    """Write ``/spikes/<layer>`` (one layer's spikes, sorted as asked); the number of spikes."""
    n = int(recording.layer_sizes[layer])
    st = recording.spikes.get(layer)
    if st is None:
        times, ids = np.zeros(0), np.zeros(0, dtype=np.int64)
    else:
        times = seconds(st.times, f"spikes[{layer!r}].times")
        ids = np.asarray(st.indices)
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        raise ValueError(f"spikes[{layer!r}] has neuron indices outside [0, {n})")
    if sorting == "by_id":
        order = np.lexsort((times, ids))
    elif sorting == "by_time":
        order = np.lexsort((ids, times))
    else:
        order = slice(None)
    group = root.create_group(layer)
    group.attrs.create("sorting", SORTING[sorting], dtype=_sorting_type())
    group.attrs["n_nodes"] = np.uint64(n)
    group.attrs["description"] = (f"layer {layer} of the brian_dendrite network: node_id is the neuron's index "
                                  f"in the layer (0 .. {n - 1})")
    # Not compressed: the libsonata wheels (0.2.2) read no gzip-compressed dataset ("required filter
    # 'deflate' is not registered"), and a spike file is 16 bytes per spike.
    stamps = group.create_dataset("timestamps", data=np.asarray(times, dtype=np.float64)[order] * 1000.0,
                                  dtype=np.float64)
    stamps.attrs["units"] = "ms"
    group.create_dataset("node_ids", data=ids[order].astype(np.uint64), dtype=np.uint64)
    return len(ids)


def _provenance(f, recording: RunRecording) -> None:
    from .. import __version__

    f.attrs["source"] = f"brian_dendrite {__version__}: brian_dendrite.io.to_sonata"
    f.attrs["model"] = str(recording.metadata.get("model", "")) or "model parameters not recorded"
    f.attrs["seed"] = json.dumps(recording.metadata.get("seed"), default=str)
    f.attrs["dt_ms"] = seconds(recording.dt, "recording.dt") * 1000.0
    f.attrs["duration_ms"] = seconds(recording.duration, "recording.duration") * 1000.0


def read_sonata_spikes(path) -> dict[str, SonataPopulation]:
    """The populations of a SONATA spike file: name -> :class:`SonataPopulation`, in file order.

    Reads any file with the SONATA spike layout (``/spikes/<population>/timestamps``
    and ``node_ids``), not only those of :func:`to_sonata`.

    Raises
    ------
    ValueError
        If ``path`` is not an HDF5 file with a ``/spikes`` group of populations
        that each have ``timestamps`` and ``node_ids`` of one length.
    FileNotFoundError
        If ``path`` does not exist.
    """
    import h5py

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"SONATA file {path} does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path} is not a readable HDF5 (SONATA) file: {err}") from None
    with f:
        spikes = f.get("spikes")
        if not isinstance(spikes, h5py.Group):
            raise ValueError(f"{path} has no /spikes group: not a SONATA spike file")
        out = {}
        for name, group in spikes.items():
            if not isinstance(group, h5py.Group) or "timestamps" not in group or "node_ids" not in group:
                raise ValueError(f"{path}: /spikes/{name} is not a population group with timestamps and node_ids")
            stamps, ids = group["timestamps"], group["node_ids"]
            if stamps.shape != ids.shape:
                raise ValueError(f"{path}: /spikes/{name} has {stamps.shape} timestamps but {ids.shape} node_ids")
            codes = {v: k for k, v in SORTING.items()}
            sorting = group.attrs.get("sorting")
            sorting = sorting.decode() if isinstance(sorting, bytes) else sorting
            sorting = codes.get(int(sorting), "none") if isinstance(sorting, int | np.integer) else (sorting or "none")
            units = stamps.attrs.get("units", "ms")
            n_nodes = group.attrs.get("n_nodes")
            out[name] = SonataPopulation(np.asarray(ids[()], dtype=np.uint64), np.asarray(stamps[()], dtype=np.float64),
                                         str(sorting), units.decode() if isinstance(units, bytes) else str(units),
                                         None if n_nodes is None else int(n_nodes))
    return out

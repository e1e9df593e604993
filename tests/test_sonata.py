"""SONATA spike export (issue 15) and its answers to bad input (issue 17).

Round trips: a real recording of the spiking network is written with
:func:`brian_dendrite.io.to_sonata` (and with ``brian-dendrite export --format
sonata``) and read back with plain h5py, with the package's reader and, where it
is installed, with libsonata; every spike train must equal the recording's
exactly (times: the recording's float64 seconds times 1000.0). Bad input exits
with 2 and a message naming the file; a failed write leaves the previous file.
"""

from __future__ import annotations

import os
from pathlib import Path

import brian2
import h5py
import numpy as np
import pytest
from brian2 import ms, second
from conftest import mnist_dir

from brian_dendrite.cli import main
from brian_dendrite.datasets import load_mnist
from brian_dendrite.io import read_sonata_spikes, to_sonata
from brian_dendrite.model import load_model
from brian_dendrite.simulation import RunRecording, SpikeTrains, SpikingNetwork

STIMULUS = np.array([21, 22, 23])


@pytest.fixture(scope="module")
def recording():
    """A real 784-20-10 training recording of 3 examples (numpy target, a few seconds)."""
    old = brian2.prefs.codegen.target
    brian2.prefs.codegen.target = "numpy"
    try:
        params = load_model("one_hidden")
        params = params.replace(network=params.network.replace(hidden=(20,)))
        train = load_mnist("train", data_dir=mnist_dir())
        net = SpikingNetwork(params, seed=5, chunk_size=3, test_chunk_size=1)
        rec = net.record(train.images[STIMULUS], train.labels[STIMULUS], potentials={"hidden_0": [0]},
                         stimulus=STIMULUS)
    finally:
        brian2.prefs.codegen.target = old
    assert all(len(rec.spikes[layer].times) for layer in ("input", "hidden_0", "output"))
    return rec


@pytest.fixture(scope="module")
def recording_file(recording, tmp_path_factory):
    return recording.save(tmp_path_factory.mktemp("run") / "recording.npz")


def _expected(recording, layer, sorting="by_id"):
    """(node_ids, timestamps in ms) of a layer in the documented order."""
    st = recording.spikes[layer]
    times = np.asarray(st.times / second, dtype=np.float64)
    ids = np.asarray(st.indices)
    order = {"by_id": np.lexsort((times, ids)), "by_time": np.lexsort((ids, times)),
             "none": np.arange(len(ids))}[sorting]
    return ids[order].astype(np.uint64), times[order] * 1000.0


def _check_h5py(path, recording, sorting="by_id"):
    """The file read with plain h5py: the SONATA layout, and every spike of the recording."""
    enum = {"none": 0, "by_id": 1, "by_time": 2}
    with h5py.File(path, "r") as f:
        assert list(f["spikes"]) == sorted(recording.layer_sizes)  # h5py lists groups by name
        for layer, n in recording.layer_sizes.items():
            group = f["spikes"][layer]
            assert h5py.check_enum_dtype(group.attrs.get_id("sorting").dtype) == enum
            assert int(group.attrs["sorting"]) == enum[sorting]
            assert int(group.attrs["n_nodes"]) == n
            assert group["timestamps"].dtype == np.float64 and group["node_ids"].dtype == np.uint64
            assert group["timestamps"].attrs["units"] == "ms"
            ids, stamps = _expected(recording, layer, sorting)
            np.testing.assert_array_equal(group["node_ids"][()], ids)
            np.testing.assert_array_equal(group["timestamps"][()], stamps)  # exact
            # and the same instants as Brian2's own conversion to ms, to the last bit or so
            np.testing.assert_allclose(np.sort(group["timestamps"][()]),
                                       np.sort(np.asarray(recording.spikes[layer].times / ms)), rtol=1e-15)
        assert f.attrs["model"] == recording.metadata["model"]
        assert f.attrs["dt_ms"] == pytest.approx(float(recording.dt / ms), rel=1e-12)


@pytest.mark.parametrize("sorting", ["by_id", "by_time", "none"])
def test_to_sonata_roundtrip_h5py(recording, tmp_path, sorting):
    path = to_sonata(recording, tmp_path / "spikes.h5", sorting=sorting, progress=False)
    assert path == tmp_path / "spikes.h5"
    _check_h5py(path, recording, sorting)
    ids, stamps = _expected(recording, "hidden_0", sorting)
    if sorting == "by_id":
        assert np.all(np.diff(ids.astype(np.int64)) >= 0)
    elif sorting == "by_time":
        assert np.all(np.diff(stamps) >= 0)
    assert [p.name for p in tmp_path.iterdir()] == ["spikes.h5"]  # no temporary file left


def test_read_sonata_spikes_gives_the_spike_trains(recording, tmp_path):
    pops = read_sonata_spikes(to_sonata(recording, tmp_path / "spikes.h5", progress=False))
    assert list(pops) == sorted(recording.layer_sizes)
    for layer, n in recording.layer_sizes.items():
        pop = pops[layer]
        assert pop.sorting == "by_id" and pop.units == "ms" and pop.n_nodes == n
        for k, train in enumerate(recording.spikes[layer].trains()):
            np.testing.assert_array_equal(pop.timestamps[pop.node_ids == k], np.asarray(train / second) * 1000.0)


def test_libsonata_reads_the_file(recording, tmp_path):
    libsonata = pytest.importorskip("libsonata")
    path = to_sonata(recording, tmp_path / "spikes.h5", progress=False)
    reader = libsonata.SpikeReader(str(path))
    assert sorted(reader.get_population_names()) == sorted(recording.layer_sizes)
    for layer in recording.layer_sizes:
        pop = reader[layer]
        assert pop.sorting == "by_id"
        data = pop.get_dict()
        ids, stamps = _expected(recording, layer)
        np.testing.assert_array_equal(data["node_ids"], ids)
        np.testing.assert_array_equal(data["timestamps"], stamps)
        # one neuron's train through libsonata's selection
        k = int(ids[0])
        got = np.array([t for _, t in pop.get(node_ids=[k])])
        np.testing.assert_array_equal(np.sort(got), stamps[ids == k])


def test_silent_layer_and_unsorted_spikes(tmp_path):
    """A silent layer keeps its empty population; unsorted input is sorted as asked."""
    rec = RunRecording(dt=0.1 * ms, duration=0.1 * second, layer_sizes={"input": 3, "output": 2},
                       spikes={"input": SpikeTrains(np.array([0.03, 0.01, 0.02, 0.01]) * second,
                                                    np.array([2, 0, 0, 1]), 3)})
    path = to_sonata(rec, tmp_path / "s.h5", progress=False)
    pops = read_sonata_spikes(path)
    np.testing.assert_array_equal(pops["input"].node_ids, [0, 0, 1, 2])
    np.testing.assert_array_equal(pops["input"].timestamps, np.array([0.01, 0.02, 0.01, 0.03]) * 1000.0)
    assert len(pops["output"].node_ids) == 0 and pops["output"].n_nodes == 2
    by_time = read_sonata_spikes(to_sonata(rec, tmp_path / "t.h5", sorting="by_time", progress=False))["input"]
    np.testing.assert_array_equal(by_time.node_ids, [0, 1, 0, 2])  # ties at 10 ms by node id
    assert by_time.sorting == "by_time"


def test_to_sonata_refuses_bad_arguments(recording, tmp_path):
    with pytest.raises(ValueError, match="sorting = 'by_name'"):
        to_sonata(recording, tmp_path / "x.h5", sorting="by_name")
    with pytest.raises(ValueError, match="is a folder"):
        to_sonata(recording, tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        to_sonata(recording, tmp_path / "no" / "x.h5", progress=False)
    bad = RunRecording(dt=0.1 * ms, duration=0.1 * second, layer_sizes={"input": 2},
                       spikes={"input": SpikeTrains(np.array([0.01]) * second, np.array([5]), 2)})
    with pytest.raises(ValueError, match=r"outside \[0, 2\)"):
        to_sonata(bad, tmp_path / "x.h5", progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["dataset", "replace"])
def test_failed_write_keeps_the_previous_file(recording, tmp_path, monkeypatch, where):
    """A write error mid-export (a dataset, or the final rename) leaves the good file and no temporary one."""
    path = to_sonata(recording, tmp_path / "spikes.h5", progress=False)
    good = path.read_bytes()
    if where == "dataset":
        original = h5py.Group.create_dataset
        calls = []

        def create_dataset(self, name, *args, **kwargs):
            calls.append(name)
            if len(calls) == 3:  # the second population's timestamps: the file is half written
                raise OSError(28, "No space left on device")
            return original(self, name, *args, **kwargs)

        monkeypatch.setattr(h5py.Group, "create_dataset", create_dataset)
    else:
        def replace(src, dst):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="No space left"):
        to_sonata(recording, path, sorting="by_time", progress=False)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["spikes.h5"]


# ------------------------------------------------------------------ the command line
def test_cli_export_sonata(recording, recording_file, capsys):
    out = recording_file.with_name("recording_spikes.h5")
    assert main(["export", str(recording_file.parent), "--format", "sonata", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert f"wrote {out}" in captured.out
    _check_h5py(out, recording)
    other = recording_file.parent / "by_time.h5"
    assert main(["export", str(recording_file), "--format", "sonata", "--sorting", "by_time",
                 "--output", str(other), "--quiet"]) == 0
    _check_h5py(other, recording, "by_time")


def test_cli_export_shows_progress_unless_quiet(recording_file, tmp_path, capsys):
    assert main(["export", str(recording_file), "--format", "sonata", "--output", str(tmp_path / "a.h5")]) == 0
    err = capsys.readouterr().err
    assert "SONATA export" in err and "2/2" in err
    assert main(["export", str(recording_file), "--format", "sonata", "--output", str(tmp_path / "b.h5"),
                 "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def _bad_recording(kind, directory: Path):
    if kind == "missing":
        return directory / "recording.npz", "does not exist"
    if kind == "empty_run_dir":
        (directory / "run").mkdir()
        return directory / "run", "has no recording.npz"
    path = directory / "recording.npz"
    if kind == "text":
        path.write_text("not a recording\n")
    elif kind == "truncated":
        RunRecording(dt=0.1 * ms, duration=0.1 * second, layer_sizes={"input": 1}).save(path)
        path.write_bytes(path.read_bytes()[:100])
    else:  # an npz, but not a recording
        np.savez(path, meta=np.array('{"layer_sizes": {}, "metadata": {}}'))
    return path, "is not a readable brian_dendrite recording"


@pytest.mark.parametrize("fmt", ["nwb", "sonata"])
@pytest.mark.parametrize("kind", ["missing", "empty_run_dir", "text", "truncated", "other_npz"])
def test_cli_export_names_a_bad_recording(kind, fmt, tmp_path, capsys):
    path, problem = _bad_recording(kind, tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert main(["export", str(path), "--format", fmt, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "brian-dendrite export: error:" in err and str(path) in err and problem in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written


def test_cli_export_refuses_unknown_format(recording_file, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(recording_file), "--format", "csv"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'csv'" in capsys.readouterr().err


def test_cli_export_refuses_an_unusable_output(recording_file, tmp_path, monkeypatch, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    cases = [(tmp_path, "is a folder"), (a_file / "x.h5", "does not exist"),
             (tmp_path / "no" / "x.h5", "does not exist")]
    for output, problem in cases:
        assert main(["export", str(recording_file), "--format", "sonata", "--output", str(output), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert f"--output {output}" in err and problem in err
    # a folder without write permission (root may write anywhere, so the check itself is faked)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert main(["export", str(recording_file), "--format", "sonata", "--output", str(tmp_path / "x.h5"),
                 "--quiet"]) == 2
    assert "is not writable" in capsys.readouterr().err
    assert main(["export", str(recording_file), "--format", "sonata", "--inspect"]) == 2
    assert "--inspect runs nwbinspector on NWB files" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


@pytest.mark.parametrize("fmt", ["nwb", "sonata"])
def test_cli_write_error_keeps_the_previous_file(fmt, recording_file, tmp_path, monkeypatch, capsys):
    """A write error in the middle of an export: exit 3, the message names the file, the old file stays."""
    out = tmp_path / f"run.{'nwb' if fmt == 'nwb' else 'h5'}"
    assert main(["export", str(recording_file), "--format", fmt, "--output", str(out), "--quiet"]) == 0
    good = out.read_bytes()
    original = h5py.Group.create_dataset

    def create_dataset(self, name, *args, **kwargs):
        if name in ("timestamps", "spike_times"):
            raise OSError(28, "No space left on device")
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", create_dataset)
    capsys.readouterr()
    assert main(["export", str(recording_file), "--format", fmt, "--output", str(out), "--quiet"]) == 3
    err = capsys.readouterr().err
    assert f"could not write {out}" in err and "No space left on device" in err and "unchanged" in err
    assert out.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_read_sonata_spikes_of_other_writers(tmp_path):
    """A file as BMTK writes it (sorting as a string, no n_nodes) is read; a file without /spikes is refused."""
    path = tmp_path / "bmtk.h5"
    with h5py.File(path, "w") as f:
        group = f.create_group("spikes/v1")
        group.attrs["sorting"] = "by_time"
        group.create_dataset("timestamps", data=np.array([1.5, 2.5]))
        group.create_dataset("node_ids", data=np.array([7, 3], dtype=np.uint64))
    pop = read_sonata_spikes(path)["v1"]
    assert (pop.sorting, pop.units, pop.n_nodes) == ("by_time", "ms", None)
    np.testing.assert_array_equal(pop.node_ids, [7, 3])
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_group("report")
    with pytest.raises(ValueError, match="no /spikes group"):
        read_sonata_spikes(other)
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="not a readable HDF5"):
        read_sonata_spikes(tmp_path / "text.h5")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_sonata_spikes(tmp_path / "missing.h5")

"""Export to NWB and neo, and the elephant-based analysis.

The NWB tests are round trips in the pynwb/neo manner: write a real recording,
validate it with nwbinspector, read it back with pynwb and with neo's NWBIO,
compare with the recording. The analysis tests use synthetic spike trains whose
statistics are known by hand (or, for Poisson trains, within a stated bound).
"""

from __future__ import annotations

import datetime
import json
import tomllib

import brian2
import elephant.statistics
import neo
import numpy as np
import pynwb
import pytest
import quantities as pq
from brian2 import ms, second
from conftest import mnist_dir

from brian_dendrite import analysis
from brian_dendrite.datasets import load_mnist
from brian_dendrite.io import read_nwb_spiketrains, to_neo, to_nwb
from brian_dendrite.model import load_model
from brian_dendrite.simulation import SpikeTrains, SpikingNetwork

N_HIDDEN = 20
N_EXAMPLES = 4
#: Dataset indices of the recorded examples: not 0..n-1, so that a lost mapping shows.
STIMULUS = np.array([10, 11, 12, 13])
POTENTIALS = {"hidden_0": [0, 3], "output": [1]}
START = datetime.datetime(2017, 12, 5, 9, 0, tzinfo=datetime.UTC)


@pytest.fixture(scope="module")
def recording():
    """A real 784-20-10 training recording of 4 examples (numpy target, a few seconds)."""
    old = brian2.prefs.codegen.target
    brian2.prefs.codegen.target = "numpy"
    try:
        params = load_model("one_hidden")
        params = params.replace(network=params.network.replace(hidden=(N_HIDDEN,)))
        train = load_mnist("train", data_dir=mnist_dir())
        idx = STIMULUS
        net = SpikingNetwork(params, seed=3, chunk_size=N_EXAMPLES, test_chunk_size=2)
        rec = net.record(train.images[idx], train.labels[idx], potentials=POTENTIALS, stimulus=STIMULUS)
    finally:
        brian2.prefs.codegen.target = old
    # The fixture is only useful if every kind of data is present.
    assert all(len(rec.spikes[layer].times) for layer in ("input", "hidden_0", "output"))
    assert len(rec.plateaus["hidden_0"].times)
    return rec


@pytest.fixture(scope="module")
def nwb_path(recording, tmp_path_factory):
    return to_nwb(recording, tmp_path_factory.mktemp("nwb") / "run.nwb", session_start_time=START,
                  identifier="test-run")


def _trains_s(recording, layer):
    return [np.asarray(t / second) for t in recording.spikes[layer].trains()]


# --------------------------------------------------------------------------------------------------
# NWB
# --------------------------------------------------------------------------------------------------


def test_nwbinspector_finds_no_critical_or_error(nwb_path):
    from nwbinspector import inspect_nwbfile

    messages = list(inspect_nwbfile(nwbfile_path=str(nwb_path)))
    text = "\n".join(f"{m.importance.name} {m.check_function_name} {m.location}: {m.message}" for m in messages)
    bad = [m for m in messages if m.importance.name in ("CRITICAL", "ERROR")]
    assert not bad, f"nwbinspector reported:\n{text}"
    # The documented subject convention leaves species unset on purpose.
    assert any(m.check_function_name == "check_subject_species_exists" for m in messages), text


def test_nwb_roundtrip_pynwb(recording, nwb_path):
    dt = float(recording.dt / second)
    duration = float(recording.duration / second)
    with pynwb.NWBHDF5IO(str(nwb_path), mode="r") as io:
        f = io.read()
        units = f.units
        assert units.resolution == dt
        assert len(units) == sum(recording.layer_sizes.values())
        layers = list(units["layer"][:])
        neurons = np.asarray(units["neuron_index"][:])
        row = 0
        for layer, n in recording.layer_sizes.items():
            expected = _trains_s(recording, layer)
            assert layers[row : row + n] == [layer] * n
            np.testing.assert_array_equal(neurons[row : row + n], np.arange(n))
            for k in range(n):
                got = np.asarray(units.get_unit_spike_times(row + k))
                assert got.dtype == np.float64
                # Exact: the exporter only reorders the recorded float64 values.
                np.testing.assert_array_equal(got, expected[k], err_msg=f"{layer}[{k}]")
                np.testing.assert_array_equal(units.get_unit_obs_intervals(row + k), [[0.0, duration]])
            row += n

        for layer, variables in recording.potentials.items():
            for var, pot in variables.items():
                ts = f.acquisition[f"{layer}_{var}"]
                assert ts.unit == "a.u."
                assert ts.rate == pytest.approx(1 / dt, rel=1e-12)
                assert ts.starting_time == float(pot.times[0] / second)
                np.testing.assert_array_equal(ts.data[:], np.asarray(pot.values).T)

        plateaus = f.processing["compartments"]["plateaus"].to_dataframe()
        ev = recording.plateaus["hidden_0"]
        np.testing.assert_array_equal(plateaus["time"], np.asarray(ev.times / second))
        np.testing.assert_array_equal(plateaus["neuron"], ev.indices)
        np.testing.assert_array_equal(plateaus["alpha"], ev.alpha)
        np.testing.assert_array_equal(plateaus["phase"], ev.phase)
        np.testing.assert_array_equal(plateaus["hidden_layer"], 0)

        trials = f.trials.to_dataframe()
        np.testing.assert_array_equal(trials["start_time"], recording.phases[:, 0])
        np.testing.assert_array_equal(trials["stop_time"], recording.phases[:, 1])
        assert list(trials["phase"]) == ["forward", "target"] * N_EXAMPLES
        np.testing.assert_array_equal(trials["phase_code"], recording.phases[:, 2])
        np.testing.assert_array_equal(trials["example"], recording.phases[:, 3].astype(int))
        np.testing.assert_array_equal(trials["label"], recording.phases[:, 4].astype(int))
        np.testing.assert_array_equal(trials["stimulus"], STIMULUS[recording.phases[:, 3].astype(int)])
        assert [list(t) for t in f.epochs["tags"][:]] == [["forward"], ["target"]] * N_EXAMPLES

        # Provenance and the simulated-subject convention.
        model = tomllib.loads(f.notes)
        assert f.notes == recording.metadata["model"]
        assert f.subject.subject_id == f"simulated-{model['name']}-seed3"
        assert f.subject.species is None and f.subject.sex == "U"
        provenance = json.loads(f.data_collection)
        assert provenance["recording_metadata"]["seed"] == 3
        assert "brian2" in provenance["exporter_versions"]
        assert f.session_start_time == START and f.identifier == "test-run"


def test_nwb_roundtrip_neo(recording, nwb_path):
    duration = float(recording.duration / second)
    trains = read_nwb_spiketrains(nwb_path)
    expected = [(layer, k, t) for layer in recording.layer_sizes
                for k, t in enumerate(_trains_s(recording, layer))]
    assert len(trains) == len(expected)
    for train, (layer, k, times) in zip(trains, expected, strict=True):
        assert train.units == pq.s
        assert train.annotations["layer"] == layer and train.annotations["neuron"] == k
        np.testing.assert_array_equal(train.magnitude, times)
        assert float(train.t_start) == 0.0 and float(train.t_stop) == duration
        # elephant on the read trains: spike count / duration.
        assert float(elephant.statistics.mean_firing_rate(train).rescale(pq.Hz)) == pytest.approx(
            len(times) / duration, rel=1e-12)

    # Plain neo (no workaround) reads the exporter's files too.
    io = neo.io.NWBIO(str(nwb_path), mode="r")
    try:
        block = io.read_block()
    finally:
        io.close()
    plain = block.segments[0].spiketrains
    assert [len(t) for t in plain] == [len(t) for _, _, t in expected]


def test_nwb_extra_metadata_still_readable(recording, tmp_path):
    """keywords/experimenter break neo 0.14.6's NWBIO; read_nwb_spiketrains copes."""
    path = to_nwb(recording, tmp_path / "kw.nwb", session_start_time=START, keywords=["simulation", "Brian2"],
                  experimenter=["Doe, Jane"])
    trains = read_nwb_spiketrains(path)
    assert sum(len(t) for t in trains) == sum(len(st.times) for st in recording.spikes.values())


def test_failed_export_leaves_no_file(recording, tmp_path, monkeypatch):
    original = pynwb.NWBHDF5IO.write

    def write_then_fail(self, *args, **kwargs):
        original(self, *args, **kwargs)  # the temporary file is complete ...
        raise RuntimeError("disk full")  # ... and the export still fails

    monkeypatch.setattr(pynwb.NWBHDF5IO, "write", write_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        to_nwb(recording, tmp_path / "run.nwb", session_start_time=START)
    assert list(tmp_path.iterdir()) == []

    # An existing file under the final name is left untouched.
    previous = tmp_path / "previous.nwb"
    previous.write_bytes(b"old contents")
    with pytest.raises(RuntimeError):
        to_nwb(recording, previous, session_start_time=START)
    assert previous.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["previous.nwb"]


def test_to_nwb_rejects_naive_start_time(recording, tmp_path):
    with pytest.raises(ValueError, match="session_start_time"):
        to_nwb(recording, tmp_path / "x.nwb", session_start_time=datetime.datetime(2017, 12, 5))
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------------
# neo
# --------------------------------------------------------------------------------------------------


def test_to_neo(recording):
    block = to_neo(recording)
    assert len(block.segments) == 1
    seg = block.segments[0]
    duration = float(recording.duration / second)
    assert len(seg.spiketrains) == sum(recording.layer_sizes.values())
    by_layer = {}
    for train in seg.spiketrains:
        by_layer.setdefault(train.annotations["layer"], []).append(train)
        assert train.units == pq.s
        assert float(train.t_start) == 0.0 and float(train.t_stop) == duration
        assert float(train.sampling_rate.rescale(pq.Hz)) == pytest.approx(1 / float(recording.dt / second))
    for layer, trains in by_layer.items():
        counts = np.bincount(recording.spikes[layer].indices, minlength=recording.layer_sizes[layer])
        np.testing.assert_array_equal([len(t) for t in trains], counts)
        assert [t.annotations["neuron"] for t in trains] == list(range(recording.layer_sizes[layer]))

    signals = {s.name: s for s in seg.analogsignals}
    assert set(signals) == {f"{layer}.{var}" for layer, v in recording.potentials.items() for var in v}
    sig = signals["hidden_0.V_apical"]
    pot = recording.potentials["hidden_0"]["V_apical"]
    assert sig.units == pq.dimensionless
    assert float(sig.sampling_period.rescale(pq.s)) == float(recording.dt / second)
    np.testing.assert_array_equal(sig.array_annotations["neuron"], POTENTIALS["hidden_0"])
    np.testing.assert_array_equal(sig.magnitude, np.asarray(pot.values).T)

    (event,) = seg.events
    np.testing.assert_array_equal(event.array_annotations["alpha"], recording.plateaus["hidden_0"].alpha)
    (epoch,) = seg.epochs
    assert list(epoch.labels) == ["forward", "target"] * N_EXAMPLES
    np.testing.assert_array_equal(epoch.array_annotations["stimulus"],
                                  STIMULUS[recording.phases[:, 3].astype(int)])


# --------------------------------------------------------------------------------------------------
# analysis (synthetic spike trains)
# --------------------------------------------------------------------------------------------------


def _train(times, t_stop=1.0):
    return neo.SpikeTrain(np.asarray(times, dtype=float), t_stop=t_stop, units="s")


def _poisson(rate_hz, duration_s, rng):
    n = rng.poisson(rate_hz * duration_s)
    return _train(np.sort(rng.uniform(0, duration_s, n)), duration_s)


def test_firing_rates_by_hand():
    trains = [_train([0.1, 0.2, 0.3, 0.4]), _train([])]
    np.testing.assert_array_equal(analysis.firing_rates(trains).rescale(pq.Hz).magnitude, [4.0, 0.0])
    # Brian2 or quantities limits; the interval is closed: 0.2, 0.3 in [0.15, 0.35] s.
    rates = analysis.firing_rates(trains, t_start=150 * ms, t_stop=0.35 * pq.s)
    np.testing.assert_allclose(rates.magnitude, [10.0, 0.0], rtol=1e-12)
    # A layer's SpikeTrains with an explicit t_stop.
    layer = SpikeTrains(np.array([0.1, 0.2, 0.5]) * second, np.array([1, 1, 0]), 3)
    np.testing.assert_allclose(analysis.firing_rates(layer, t_stop=2 * second).magnitude, [0.5, 1.0, 0.0])
    with pytest.raises(ValueError, match="t_stop"):
        analysis.firing_rates(layer)
    with pytest.raises(TypeError, match="bare number"):
        analysis.firing_rates(trains, t_stop=1.0)


def test_isi_cv_by_hand_and_poisson():
    regular = _train(np.arange(1, 100) * 0.01)
    cv = analysis.isi_cv([regular, _train([0.0, 0.1, 0.4]), _train([0.2, 0.3]), _train([])])
    assert cv[0] < 1e-12  # equal intervals up to float rounding of the times
    assert cv[1] == pytest.approx(0.5, rel=1e-12)  # intervals 0.1, 0.3: std 0.1 / mean 0.2
    assert np.isnan(cv[2]) and np.isnan(cv[3])  # fewer than 3 spikes
    # Poisson, ~2000 intervals: the CV estimate has a standard error of about 1/sqrt(2000) = 0.022;
    # the bound 0.1 is > 4 standard errors. Fixed seed so the test is deterministic.
    rng = np.random.default_rng(20171205)
    assert abs(analysis.isi_cv([_poisson(20.0, 100.0, rng)])[0] - 1.0) < 0.1


def test_spike_counts_and_fano_factor_by_hand():
    trains = [_train([0.05, 0.15, 0.25]), _train([]), _train([0.0, 0.1, 0.11, 0.2, 0.21, 0.29])]
    windows = np.array([[0.0, 0.1], [0.1, 0.2], [0.2, 0.3]]) * second
    counts = analysis.spike_counts(trains, windows=windows)
    np.testing.assert_array_equal(counts, [[1, 1, 1], [0, 0, 0], [1, 2, 3]])  # half-open windows
    ff = analysis.fano_factor(counts)
    assert ff[0] == 0.0 and np.isnan(ff[1])
    assert ff[2] == pytest.approx((2 / 3) / 2, rel=1e-12)
    # Same definition as elephant's fanofactor (counts of one neuron's windows as "trials").
    third = [trains[2].time_slice(a * pq.s, b * pq.s - 1e-12 * pq.s) for a, b in windows / second]
    assert ff[2] == pytest.approx(elephant.statistics.fanofactor(third), rel=1e-12)
    np.testing.assert_array_equal(analysis.spike_counts(trains, bin_size=100 * ms, t_stop=0.3 * second),
                                  counts)
    # Poisson counts have Fano factor 1: 500 windows, standard error ~ sqrt(2/499) = 0.063; bound 0.3.
    rng = np.random.default_rng(7)
    poisson_counts = analysis.spike_counts([_poisson(50.0, 50.0, rng)], bin_size=100 * ms)
    assert abs(analysis.fano_factor(poisson_counts)[0] - 1.0) < 0.3


def test_spike_count_correlation_by_hand():
    even = _train(np.arange(0, 10, 2) * 0.01 + 0.005, t_stop=0.1)  # one spike in bins 0, 2, 4, 6, 8
    odd = _train(np.arange(1, 10, 2) * 0.01 + 0.005, t_stop=0.1)
    silent = _train([], t_stop=0.1)
    corr = analysis.spike_count_correlation([even, even.copy(), odd, silent], bin_size=10 * ms)
    assert corr.shape == (4, 4)
    assert corr[0, 1] == pytest.approx(1.0)
    assert corr[0, 2] == pytest.approx(-1.0)
    assert np.all(np.isnan(corr[3, :])) and np.all(np.isnan(corr[:, 3]))


def test_instantaneous_rate_explicit_kernel():
    from elephant.kernels import GaussianKernel

    regular = _train(np.arange(0.005, 10, 0.01), t_stop=10.0)  # 100 Hz
    rate = analysis.instantaneous_rate([regular], 1 * ms, sigma=50 * ms)
    assert rate.units == pq.Hz and rate.shape == (10000, 1)
    # Away from the borders a Gaussian of 5 ISIs smooths a regular train to its rate; elephant bins
    # the spikes at the 1 ms sampling period, and float rounding moves the odd spike to the next bin,
    # which shifts the estimate locally by up to ~0.6 %: tolerance 1 %.
    middle = rate.magnitude[2000:8000, 0]
    np.testing.assert_allclose(middle, 100.0, rtol=1e-2)
    assert abs(middle.mean() - 100.0) < 0.1
    same = analysis.instantaneous_rate([regular], 1 * ms, kernel=GaussianKernel(50 * pq.ms))
    np.testing.assert_array_equal(same.magnitude, rate.magnitude)
    with pytest.raises(ValueError, match="exactly one"):
        analysis.instantaneous_rate([regular], 1 * ms)
    with pytest.raises(TypeError, match="elephant"):
        analysis.instantaneous_rate([regular], 1 * ms, kernel="auto")


def test_analysis_on_a_recording(recording):
    """The analysis accepts a recorded layer directly and agrees with the neo path."""
    layer = recording.spikes["hidden_0"]
    direct = analysis.firing_rates(layer, t_stop=recording.duration)
    via_neo = analysis.firing_rates(analysis.layer_spiketrains(recording, "hidden_0"))
    np.testing.assert_allclose(direct.magnitude, via_neo.magnitude, rtol=1e-12)
    counts = np.bincount(layer.indices, minlength=N_HIDDEN)
    np.testing.assert_allclose(direct.magnitude, counts / float(recording.duration / second), rtol=1e-12)
    phases = analysis.spike_counts(layer, windows=recording.phases[:, :2] * second, t_stop=recording.duration)
    assert phases.shape == (N_HIDDEN, 2 * N_EXAMPLES)
    assert phases.sum() == len(layer.indices)  # the phases tile the run


def test_nwb_synthetic_edge_cases(tmp_path):
    """A silent layer, unsorted spike times, no potentials or plateaus, no model metadata."""
    from brian_dendrite.simulation import RunRecording

    rec = RunRecording(dt=1 * ms, duration=0.1 * second, layer_sizes={"input": 3, "output": 2},
                       spikes={"input": SpikeTrains(np.array([0.01, 0.03, 0.02]) * second, np.array([2, 0, 0]), 3),
                               "output": SpikeTrains(np.zeros(0) * second, np.zeros(0, dtype=int), 2)},
                       phases=np.array([[0.0, 0.05, 0, 0, 7], [0.05, 0.1, 1, 0, 7]]), stimulus=np.array([42]))
    path = to_nwb(rec, tmp_path / "edge.nwb", session_start_time=START)
    with pynwb.NWBHDF5IO(str(path), mode="r") as io:
        f = io.read()
        got = [list(f.units.get_unit_spike_times(k)) for k in range(5)]
        assert got == [[0.02, 0.03], [], [0.01], [], []]  # NWB wants each unit's times ascending
        assert list(f.units["layer"][:]) == ["input"] * 3 + ["output"] * 2
        assert list(f.trials["stimulus"][:]) == [42, 42]
        assert f.subject.subject_id == "simulated-unknown-seedunknown"
        assert "compartments" not in f.processing and len(f.acquisition) == 0
    assert [len(t) for t in read_nwb_spiketrains(path)] == [2, 0, 1, 0, 0]
    with pytest.raises(ValueError, match="phase code"):
        bad = RunRecording(dt=1 * ms, duration=0.1 * second, layer_sizes={"input": 1},
                           phases=np.array([[0.0, 0.1, 5, 0, 0]]))
        to_nwb(bad, tmp_path / "bad.nwb", session_start_time=START)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edge.nwb"]


def test_recording_load_names_a_corrupt_or_incomplete_file(tmp_path):
    import zipfile

    from brian_dendrite.simulation import RunRecording

    truncated = tmp_path / "truncated.npz"
    np.savez(truncated, a=np.arange(1000))
    truncated.write_bytes(truncated.read_bytes()[:200])
    not_zip = tmp_path / "text.npz"
    not_zip.write_text("not a recording")
    incomplete = tmp_path / "incomplete.npz"  # a zip with a meta entry but no dt
    np.savez(incomplete, meta=np.array('{"layer_sizes": {}, "metadata": {}}'))
    for path in (truncated, not_zip, incomplete):
        with pytest.raises(ValueError, match=f"{path.name} is not a readable brian_dendrite recording"):
            RunRecording.load(path)
    assert zipfile.is_zipfile(incomplete)

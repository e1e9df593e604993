"""Figures: what is drawn (lines, points, images, labels), not only that a figure exists."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import brian2  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from brian2 import ms  # noqa: E402
from conftest import mnist_dir  # noqa: E402

from brian_dendrite.datasets import load_mnist  # noqa: E402
from brian_dendrite.model import initial_weights, load_model  # noqa: E402
from brian_dendrite.plotting import (  # noqa: E402
    plot_compartments,
    plot_learning_curve,
    plot_potentials,
    plot_raster,
    plot_receptive_fields,
    plot_weight_histograms,
)
from brian_dendrite.simulation import SpikingNetwork  # noqa: E402

N_HIDDEN = 12


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def params():
    p = load_model("one_hidden")
    return p.replace(network=p.network.replace(hidden=(N_HIDDEN,)))


@pytest.fixture(scope="module")
def recording(params):
    """A real 3-example training recording (numpy target)."""
    old = brian2.prefs.codegen.target
    brian2.prefs.codegen.target = "numpy"
    try:
        train = load_mnist("train", data_dir=mnist_dir())
        net = SpikingNetwork(params, seed=5, chunk_size=3, test_chunk_size=2)
        return net.record(train.images[:3], train.labels[:3], potentials={"hidden_0": [1, 4], "output": [2]},
                          stimulus=np.arange(3))
    finally:
        brian2.prefs.codegen.target = old


def test_raster_draws_one_point_per_spike(recording):
    axes = plot_raster(recording)
    layers = list(recording.layer_sizes)
    assert len(axes) == len(layers)
    n_phases = len(recording.phases)
    for ax, layer in zip(axes, layers, strict=True):
        (line,) = ax.get_lines()
        st = recording.spikes[layer]
        assert len(line.get_xdata()) == len(st.times) > 0
        np.testing.assert_allclose(line.get_xdata(), np.asarray(st.times / ms))
        np.testing.assert_array_equal(line.get_ydata(), st.indices)
        assert len(ax.patches) == n_phases  # one shaded span per phase
        assert layer in ax.get_ylabel()
    assert axes[-1].get_xlabel() == "time (ms)"
    assert {t.get_text() for t in axes[0].get_legend().get_texts()} == {"forward", "target"}


def test_raster_uses_given_axes_and_kwds(recording):
    fig, given = plt.subplots(2, 1)
    given = list(given)
    returned = plot_raster(recording, layers=["output", "hidden_0"], axes=given, color="tab:green")
    assert returned is given
    assert given[0].get_lines()[0].get_color() == "tab:green"
    assert len(given[0].get_lines()[0].get_xdata()) == len(recording.spikes["output"].times)
    _, single = plt.subplots()
    assert plot_raster(recording, layers=["output"], axes=single) is single
    with pytest.raises(ValueError, match="axes"):
        plot_raster(recording, axes=given)  # three layers, two axes
    with pytest.raises(KeyError, match="recorded layers"):
        plot_raster(recording, layers=["hidden_7"])


def test_potentials_traces_and_plateau_markers(recording):
    axes = plot_potentials(recording, "hidden_0")
    assert len(axes) == 2
    events = recording.plateaus["hidden_0"]
    for ax, neuron in zip(axes, [1, 4], strict=True):
        lines = ax.get_lines()
        labels = [line.get_label() for line in lines]
        assert labels == ["V_basal", "V_apical", "V_soma", "plateau"]
        n_plateaus = int(np.sum(events.indices == neuron))
        assert len(lines[3].get_xdata()) == n_plateaus == len(recording.phases)  # one per phase end
        trace = recording.potentials["hidden_0"]["V_apical"]
        np.testing.assert_array_equal(lines[1].get_ydata(), trace.values[[1, 4].index(neuron)])
        assert f"hidden_0[{neuron}]" in ax.get_ylabel()
        assert len(ax.texts) == n_plateaus  # one alpha annotation per plateau
    (ax,) = plot_potentials(recording, "output")
    assert [line.get_label() for line in ax.get_lines()] == ["V_basal", "V_soma"]  # no plateaus
    _, given = plt.subplots()
    assert plot_potentials(recording, "hidden_0", neurons=[4], variables=["V_soma"], axes=given) is given
    assert len(given.get_lines()) == 2
    with pytest.raises(ValueError, match="not recorded"):
        plot_potentials(recording, "hidden_0", neurons=[0])
    with pytest.raises(KeyError, match="recorded"):
        plot_potentials(recording, "input")


def test_learning_curve_from_summary_history_or_file(tmp_path):
    summary = {"model": "one_hidden",
               "test_history": [{"examples": 0, "test_error": 90.0}, {"examples": 500, "test_error": 41.5},
                                {"examples": 1000, "test_error": 22.0}]}
    ax = plot_learning_curve(summary)
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), [0, 500, 1000])
    np.testing.assert_array_equal(line.get_ydata(), [90.0, 41.5, 22.0])
    assert line.get_label() == "one_hidden"
    assert ax.get_xlabel() == "examples trained" and ax.get_ylabel() == "test error (%)"

    path = tmp_path / "summary.json"
    path.write_text(json.dumps(summary))
    _, given = plt.subplots()
    assert plot_learning_curve(path, axes=given) is given
    assert plot_learning_curve(summary["test_history"], axes=given, label="again") is given
    assert [line.get_label() for line in given.get_lines()] == ["one_hidden", "again"]
    with pytest.raises(ValueError, match="empty"):
        plot_learning_curve({"test_history": []})


def test_receptive_fields_images(params):
    weights = initial_weights(params, np.random.default_rng(0))
    W0 = weights.W[0]
    axes = plot_receptive_fields(W0, n=6)
    assert len(axes) == 6
    limit = np.abs(W0[:6]).max()
    for k, ax in enumerate(axes):
        (image,) = ax.get_images()
        np.testing.assert_array_equal(image.get_array(), W0[k].reshape(28, 28))
        assert image.get_clim() == (-limit, limit)
    # Weights are accepted and n is capped at the number of hidden units.
    assert len(plot_receptive_fields(weights, n=100)) == N_HIDDEN
    _, grid = plt.subplots(2, 2)
    given = list(grid.ravel())
    assert plot_receptive_fields(W0, n=4, axes=given, cmap="gray") is given
    assert given[3].get_images()[0].get_cmap().name == "gray"
    with pytest.raises(ValueError, match="square"):
        plot_receptive_fields(W0[:, :700])


def test_weight_histograms_per_layer(params):
    weights = initial_weights(params, np.random.default_rng(1))
    axes = plot_weight_histograms(weights, bins=20)
    assert len(axes) == 2
    hidden, output = axes
    assert len(hidden.patches) == 2 and len(output.patches) == 1  # W and Y; W only
    (rug,) = hidden.get_lines()
    assert len(rug.get_xdata()) == N_HIDDEN  # one tick per bias
    assert len(output.get_lines()[0].get_xdata()) == 10
    assert "hidden_0" in hidden.get_title() and "output" in output.get_title()
    assert output.get_xlabel() == "weight"
    _, given = plt.subplots(2, 1)
    given = list(given)
    assert plot_weight_histograms(weights, axes=given) is given
    with pytest.raises(ValueError, match="axes"):
        plot_weight_histograms(weights, axes=given[:1])


def test_plot_compartments_still_works():
    from brian2 import Hz

    from brian_dendrite.simulation import CellPopulation, PoissonDrive

    old = brian2.prefs.codegen.target
    brian2.prefs.codegen.target = "numpy"
    try:
        params = load_model("one_hidden")
        rng = np.random.default_rng(0)
        pop = CellPopulation("pyramidal", 2, cell=params.cell, protocol=params.protocol,
                             phases=[("forward", 60 * ms), ("target", 60 * ms)], basal_bias=[0.5, 1.0], seed=0,
                             apical_drive=PoissonDrive(np.full(30, 20.0) * Hz, rng.normal(0, 1, (30, 2))))
        pop.run()
    finally:
        brian2.prefs.codegen.target = old
    axes = plot_compartments(pop)
    assert len(axes) == 2
    assert {"V_basal", "V_apical", "V_soma"} <= {line.get_label() for line in axes[0].get_lines()}

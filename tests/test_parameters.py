"""Parameter objects, model files and their errors."""

from __future__ import annotations

import pytest
from brian2 import Hz, ms, mV, nS

from brian_dendrite import (
    CellParameters,
    ModelParameters,
    NetworkParameters,
    ParameterError,
    ProtocolParameters,
    available_models,
    load_model,
)
from brian_dendrite.model import parse_quantity


def test_paper_defaults():
    cell = CellParameters()
    assert cell.phi_max == 200 * Hz
    assert cell.g_L == 0.1 / ms and cell.g_B == 0.6 / ms and cell.g_A == 0 / ms
    assert cell.k_B == pytest.approx(0.6 / 0.7)
    assert cell.replace(g_A=0.05 / ms).k_B == pytest.approx(0.8)
    assert cell.replace(g_A=0.6 / ms).k_B == pytest.approx(0.6 / 1.3)
    assert cell.k_D == pytest.approx(0.857142857)
    # specification 1.2: sum of kappa(1..10) is 0.510; the continuous integral to 10 ms is 0.4897
    assert cell.replace(kernel="truncated").kernel_mass == pytest.approx(0.48974, abs=1e-5)
    assert NetworkParameters().layer_sizes == (784, 500, 10)


def test_frozen_and_replace():
    cell = CellParameters()
    with pytest.raises(AttributeError):
        cell.g_B = 1 / ms
    other = cell.replace(g_A=0.05 / ms)
    assert other.g_A == 0.05 / ms and cell.g_A == 0 / ms


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("g_B", 0.6 * nS, "CellParameters.g_B .*wrong unit.*got m\\^-2 kg\\^-1 s\\^3 A\\^2"),
        ("g_B", -0.6 / ms, "CellParameters.g_B .*must be >= 0"),
        ("g_L", 0 / ms, "CellParameters.g_L .*must be > 0"),
        ("tau_s", 3 * mV, "CellParameters.tau_s .*wrong unit.*expected dimension s"),
        ("E_E", 8 * mV, "CellParameters.E_E .*expected a plain number"),
        ("g_A", 0.05, "CellParameters.g_A = 0.05: wrong unit, expected dimension s\\^-1 .*got 1 \\(dimensionless\\)"),
        ("kernel", "gaussian", "unknown choice, expected one of 'full', 'truncated'"),
        ("tau_s", 20 * ms, "tau_s .* must be shorter than tau_L"),
        ("phi_max", float("nan") * Hz, "must be finite"),
    ],
)
def test_cell_errors_name_field_value_and_expectation(field, value, message):
    with pytest.raises(ParameterError, match=message):
        CellParameters().replace(**{field: value})


def test_unknown_names_are_listed():
    with pytest.raises(ParameterError, match="unknown parameter\\(s\\) g_X; valid names are E_E, E_I"):
        CellParameters().replace(g_X=1 / ms)
    with pytest.raises(TypeError):
        CellParameters(g_X=1 / ms)


def test_network_and_protocol_checks():
    with pytest.raises(ParameterError, match="expected 3 rates"):
        NetworkParameters(hidden=(500, 100), learning_rates=(0.2, 0.2))
    with pytest.raises(ParameterError, match="hidden .*every entry must be >= 1"):
        NetworkParameters(hidden=(0,), learning_rates=(0.1, 0.1))
    with pytest.raises(ParameterError, match="learning_rates .*every entry must be >= 0"):
        NetworkParameters(learning_rates=(-0.1, 0.1))
    with pytest.raises(ParameterError, match="test_window .* exceeds test_duration"):
        ProtocolParameters(test_window=300 * ms)
    with pytest.raises(ParameterError, match="window_length .* exceeds phase_min"):
        ProtocolParameters(window_length=60 * ms)


def test_quantity_parser():
    assert parse_quantity("10 ms") == 10 * ms
    assert parse_quantity("0.6 / ms") == 0.6 / ms
    assert parse_quantity("200*Hz") == 200 * Hz
    for bad in ("10 parsecs", "__import__('os')", "1 ms +", ""):
        with pytest.raises(ValueError):
            parse_quantity(bad)


def test_named_models_load():
    names = available_models()
    assert {"no_hidden", "one_hidden", "two_hidden"} <= set(names)
    two = load_model("two_hidden")
    assert two.network.hidden == (500, 100)
    assert two.network.learning_rates == (0.23, 0.23, 0.12)
    assert load_model("no_hidden").network.layer_sizes == (784, 10)
    sparse = load_model("one_hidden", network={"feedback": "sparse"})
    assert sparse.network.feedback == "sparse"


def test_toml_round_trip(tmp_path):
    params = load_model("two_hidden", cell={"g_A": 0.05 / ms, "kernel": "truncated"})
    path = tmp_path / "m.toml"
    path.write_text(params.to_toml())
    again = load_model(path)
    assert again == params


@pytest.mark.parametrize(
    "text, message",
    [
        ('[cell]\ng_Q = "1 / ms"\n', "unknown key\\(s\\) 'g_Q' for CellParameters; valid keys are"),
        ('[cell]\ng_B = "0.6 nS"\n', "bad.toml: CellParameters.g_B .*wrong unit"),
        ('[cell]\ntau_L = "10 parsecs"\n', "unknown unit 'parsecs'"),
        ('[network]\nhidden = "500"\n', "hidden .*expected a list of numbers"),
        ("[cell\ng_B = 1", "not a valid TOML model file"),
        ('[synapses]\nw = 1\n', "unknown key\\(s\\) 'synapses' for ModelParameters"),
        ('[protocol]\nwindow = "middle"\n', "unknown choice, expected one of 'last', 'settle'"),
    ],
)
def test_malformed_model_files(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ParameterError, match=message):
        load_model(path)


def test_unknown_model_name_lists_available():
    with pytest.raises(ParameterError, match="unknown model 'three_hidden'; available models: .*one_hidden"):
        load_model("three_hidden")


def test_model_parameters_rejects_wrong_group():
    with pytest.raises(ParameterError, match="expected a CellParameters"):
        ModelParameters(cell=NetworkParameters())

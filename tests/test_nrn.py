"""The NEURON backend (brian_dendrite.nrn) and its cross-check against Brian2.

Tests that need NEURON skip where it is not installed (``pytest.importorskip``);
CI installs the extra (``pip install ".[neuron]"``) so that they run there. The
first of them compiles the MOD files (tens of seconds, once per cache directory).

Tolerances: both simulators compute the same affine update per step (docs/neuron.rst),
so they agree up to round-off. NEURON's backward Euler obtains the somatic
conductance from a finite difference of the current over 1e-3 mV, which costs
about 1e-13 relative in the potential; ``STRICT`` (1e-9 relative) leaves four
orders of magnitude above that and is still six below the Rallpack thresholds of
the report (RMS 0.1 %, max 0.5 %).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from brian2 import ms
from conftest import mnist_dir

from brian_dendrite.model import (
    CellParameters,
    PhaseSchedule,
    ProtocolParameters,
    soma_kernel,
)
from brian_dendrite.nrn import (
    NEURON_EXTRA_HINT,
    STRICT,
    MechanismCompileError,
    applied_update_check,
    cell_crosscheck,
    learning_crosscheck,
    load_mechanisms,
    require_neuron,
    trace_errors,
)
from brian_dendrite.nrn.crosscheck import default_learning_params


@pytest.fixture(scope="module")
def nrn():
    pytest.importorskip("neuron")
    return load_mechanisms()


def _ok(errors):
    return all(e["rel_rms"] < STRICT["rel_rms"] and e["rel_max"] < STRICT["rel_max"] for e in errors.values())


# ---------------------------------------------------------------- bad input (no NEURON needed)
def test_missing_neuron_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "neuron", None)  # makes "import neuron" raise ImportError
    with pytest.raises(ImportError) as info:
        require_neuron()
    assert "brian_dendrite[neuron]" in str(info.value)
    assert NEURON_EXTRA_HINT in str(info.value)
    with pytest.raises(ImportError, match=r"brian_dendrite\[neuron\]"):
        load_mechanisms()


def test_crosscheck_cli_without_neuron_exit_2(monkeypatch, tmp_path, capsys):
    from brian_dendrite.cli import main

    monkeypatch.setitem(sys.modules, "neuron", None)
    assert main(["crosscheck", "--output", str(tmp_path), "--no-figure"]) == 2
    assert "brian_dendrite[neuron]" in capsys.readouterr().err
    assert not (tmp_path / "report.json").exists()


@pytest.mark.parametrize("option", ["--examples", "--test-examples", "--hidden"])
def test_crosscheck_cli_bad_input_exit_2(capsys, option):
    from brian_dendrite.cli import main

    assert main(["crosscheck", option, "0"]) == 2
    assert option in capsys.readouterr().err


def test_crosscheck_cli_refuses_unsupported_model(tmp_path, capsys):
    """A model the NEURON backend (and the Brian2 spiking network) cannot build: exit 2 with the reason."""
    pytest.importorskip("neuron")
    from brian_dendrite.cli import main

    model = tmp_path / "rate_feedback.toml"
    model.write_text('name = "rate_feedback"\n\n[network]\nhidden = [500]\nlearning_rates = [0.21, 0.21]\n'
                     "feedback_spiking = false\n")
    assert main(["crosscheck", "--model", str(model), "--output", str(tmp_path / "out"), "--no-figure"]) == 2
    assert "rate model" in capsys.readouterr().err
    assert not (tmp_path / "out" / "report.json").exists()


def test_trace_errors():
    ref = np.array([1.0, -2.0, 3.0])
    e = trace_errors(ref, ref + np.array([0.0, 0.0, 0.03]))
    assert e["rel_max"] == pytest.approx(0.01)
    assert e["rel_rms"] == pytest.approx(np.sqrt(0.03**2 / 3) / np.sqrt(14 / 3))
    with pytest.raises(ValueError, match="shapes differ"):
        trace_errors(ref, ref[:2])


# ---------------------------------------------------------------- compilation
def test_compile_error_names_compiler_output(monkeypatch, tmp_path):
    pytest.importorskip("neuron")
    monkeypatch.setenv("BRIAN_DENDRITE_NRN_CACHE", str(tmp_path))
    bad = {"broken.mod": b"NEURON {\n    SUFFIX broken\n    RANGE x\n}\nBREAKPOINT {\n    x = = 1\n}\n"}
    with pytest.raises(MechanismCompileError) as info:
        load_mechanisms(bad)
    msg = str(info.value)
    assert "nrnivmodl failed" in msg and "compiler output" in msg and "broken.mod" in msg
    assert not any(tmp_path.glob("nrn*/*/libnrnmech.so"))  # no half build left in the cache


# ---------------------------------------------------------------- cells
@pytest.mark.parametrize("kernel", ["full", "truncated"])
@pytest.mark.parametrize("method", ["exponential_euler", "euler"])
def test_single_spike_matches_sampled_kernel(nrn, kernel, method):
    """The soma's response to one spike is the model's sampled kernel through its integrator."""
    from brian_dendrite.nrn import NrnModel

    cell = CellParameters(kernel=kernel, method=method)
    protocol = ProtocolParameters()
    schedule = PhaseSchedule.from_phases([("forward", 80 * ms, 0, 0)], protocol, dt=cell.dt)
    model = NrnModel(cell, protocol, schedule)
    c = model.add_cell("pyramidal")
    model.connect_fixed(model.add_source([5]), c.dend_b, 1.0)
    v = model.record(c.soma(0.5)._ref_v)
    model.run()
    v = np.asarray(v)[1:81]  # index k + 1: after step k
    m = np.arange(80) - 5
    expected = np.where(m >= 0, soma_kernel(cell, "hidden")[np.clip(m, 0, None)], 0.0)
    np.testing.assert_allclose(v, expected, rtol=0, atol=1e-12 * np.max(np.abs(expected)))
    assert np.max(np.abs(expected)) > 0.01


@pytest.mark.parametrize("kind", ["pyramidal", "output"])
@pytest.mark.parametrize("kernel", ["full", "truncated"])
def test_cell_crosscheck(kind, kernel, nrn):
    cell = CellParameters(kernel=kernel, g_A=0.05 / ms)  # g_A > 0: the apical coupling is exercised too
    res = cell_crosscheck(cell, ProtocolParameters(), kind, n=3, seed=1)
    assert res["spikes_replayed"] and res["n_spikes"] > 10
    assert _ok(res["errors"]), res["errors"]
    expected = {"V_soma", "V_basal", "s_out"} | ({"V_apical"} if kind == "pyramidal" else set())
    assert set(res["errors"]) == expected
    if kind == "pyramidal":
        p = res["plateaus"]
        assert p["same_events"] and p["n"] == 12
        assert p["alpha_max_abs"] < 1e-12 and p["A_mean_max_abs"] < 1e-12
    assert res["passed"]


def test_plain_backward_euler_fails_the_check(nrn):
    """Without the step factor NEURON integrates the same equations differently: the check must notice."""
    res = cell_crosscheck(CellParameters(), ProtocolParameters(), "pyramidal", n=2, seed=1, exact_step=False)
    assert res["errors"]["V_soma"]["rel_max"] > 0.005
    assert not res["passed"]
    assert _ok({k: v for k, v in res["errors"].items() if k != "V_soma"})  # dendrites and s_out still agree


def test_cell_crosscheck_other_time_step(nrn):
    """The event placement (fractions of dt) and the step factor hold for dt != 1 ms too."""
    res = cell_crosscheck(CellParameters(dt=0.5 * ms, kernel="truncated"), ProtocolParameters(), "pyramidal", n=2,
                          seed=3)
    assert res["n_steps"] == 448 and res["spikes_replayed"]
    assert _ok(res["errors"]) and res["plateaus"]["alpha_max_abs"] < 1e-12 and res["passed"]


def test_stochastic_plateau_cell_crosscheck(nrn):
    """Stochastic plateau times: Brian2's offsets (read from its plateau events) replayed in NEURON."""
    protocol = ProtocolParameters(stochastic_plateau=True)
    res = cell_crosscheck(CellParameters(), protocol, "pyramidal", n=4, seed=6, n_examples=3)
    p = res["plateaus"]
    assert p["same_events"] and p["n"] == 24 and p["alpha_max_abs"] < 1e-12
    assert _ok(res["errors"]) and res["passed"]


def test_euler_method_crosscheck(nrn):
    """Forward Euler (the published code's integrator) through the backward-Euler step factor."""
    res = cell_crosscheck(CellParameters(method="euler"), ProtocolParameters(), "output", n=2, seed=2)
    assert _ok(res["errors"]) and res["passed"]


def test_bernoulli_spiking_rate(nrn):
    """Freely spiking NEURON cells fire at phi_max * sigma(V) per step (Bernoulli)."""
    from brian_dendrite.nrn import NrnModel

    cell, protocol = CellParameters(), ProtocolParameters()
    schedule = PhaseSchedule.from_phases([("forward", 1100 * ms, 0, 0)], protocol, dt=cell.dt)
    model = NrnModel(cell, protocol, schedule, seed=7)
    cells = [model.add_cell("pyramidal", basal_bias=1.0) for _ in range(20)]
    counts0 = [model.record(c.cell._ref_nspikes) for c in cells]
    model.run()
    # after 100 ms of settling V_soma = k_B * 1.0 (exactly, to 1e-30)
    p = float(cell.phi_max * cell.dt) / (1 + np.exp(-cell.k_B))
    n_trials = 20 * 1000
    spikes = sum(np.asarray(r)[-1] - np.asarray(r)[101] for r in counts0)
    sd = np.sqrt(n_trials * p * (1 - p))
    # 4.5 sd: a false failure has probability below 1e-5 (normal approximation, ~2800 expected spikes)
    assert abs(spikes - n_trials * p) < 4.5 * sd
    per_cell = [np.asarray(r)[-1] for r in counts0]
    assert len(set(per_cell)) > 5  # the cells draw independent streams


# ---------------------------------------------------------------- learning
def _mnist(k):
    from brian_dendrite.datasets import load_mnist

    data = load_mnist("train", data_dir=mnist_dir(), download=False)
    return data.images[:k], data.labels[:k]


def test_learning_crosscheck_small_network(nrn):
    """784-5-10, 2 MNIST examples: NEURON's weight and bias updates equal Brian2's."""
    images, labels = _mnist(2)
    res = learning_crosscheck(default_learning_params(5), images, labels, seed=4)
    assert res["n_examples"] == 2
    for lay in res["layers"]:
        assert lay["max_abs_dW_brian2"] > 1e-3  # something was learned
        assert _ok({"dW": lay["dW"], "db": lay["db"]}), lay
    assert res["passed"]


def test_applied_update_matches_numpy(nrn):
    """A freely spiking NEURON network applies delta_post * s_mean_f_pre (rtol 1e-9, as the Brian2 test)."""
    images, labels = _mnist(1)
    res = applied_update_check(default_learning_params(5), images[0], int(labels[0]), seed=5)
    assert res["spikes"]["input"] > 100 and res["spikes"]["hidden_0"] > 0 and res["spikes"]["output"] > 0
    for d in res["deviations"]:
        assert d["W"] < 1e-9 and d["b"] < 1e-9


@pytest.mark.slow
def test_crosscheck_command(tmp_path, capsys):
    pytest.importorskip("neuron")
    from brian_dendrite.cli import main

    status = main(["crosscheck", "--output", str(tmp_path), "--examples", "2", "--hidden", "5",
                   "--data-dir", str(mnist_dir())])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "overall: PASS" in out
    assert (tmp_path / "report.json").is_file() and (tmp_path / "crosscheck.png").is_file()

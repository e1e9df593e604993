"""The gallery scripts in examples/ run, draw a figure and show what they claim.

Each ``examples/plot_*.py`` is run with ``runpy`` in a temporary working directory
under the Agg backend, its figures are saved, and the variables it leaves behind
are checked. The examples fix their seeds and the numpy target, so the checked
numbers are reproducible; the bounds below still leave room for a different
random stream (another Brian2 version), not for a wrong model.
"""

from __future__ import annotations

import os
import runpy
import time
from pathlib import Path

import brian2
import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("plot_*.py"))

#: The gallery's budget per example (CPU seconds, so that a loaded machine does not fail it).
CPU_BUDGET = 30.0


def _check_pyramidal_population(ns):
    assert ns["spikes"].num_spikes > 0 and ns["top_spikes"].num_spikes > 0
    # one plateau per neuron near the end of each phase (offset 0: on the last step)
    assert sorted(set(np.asarray(ns["plateaus"].t / brian2.ms))) == [99.0, 199.0]
    assert len(ns["plateaus"].t) == 2 * len(ns["hidden"])
    assert np.all((ns["alpha_f"] > 0) & (ns["alpha_f"] < 1))
    # the feedback changed the apical potentials between the phases
    assert np.max(np.abs(ns["alpha_t"] - ns["alpha_f"])) > 0.05


def _check_rate_abstraction(ns):
    measured, predicted = ns["measured"], np.asarray(ns["predicted"])
    # Bernoulli spike counts over 2 s: standard error sqrt(rate / 2 s); 4 SE (plus 2 Hz for the
    # 1-ms discretisation) bounds each of the 18 neurons with a false-alarm rate below 1e-3.
    assert np.all(np.abs(measured - predicted) < 4 * np.sqrt(predicted / 2) + 2)
    assert measured[-1] > 5 * measured[0]


def _check_learning_rule(ns):
    before, after = ns["selectivity"]
    # both output neurons become selective for their own pattern (0.32 with the example's seeds)
    assert np.all(after > 0.15), after
    assert np.all(after > before + 0.1), (before, after)


def _check_synaptic_sites(ns):
    basal, apical, soma = ns["peaks"]
    # g_B = 0.6/ms, g_L = 0.1/ms, g_A = 0.05/ms: basal input reaches the soma most, apical least
    assert basal > soma > apical > 0


CHECKS = {
    "plot_pyramidal_population": _check_pyramidal_population,
    "plot_rate_abstraction": _check_rate_abstraction,
    "plot_learning_rule": _check_learning_rule,
    "plot_synaptic_sites": _check_synaptic_sites,
}


def test_every_example_is_checked():
    assert SCRIPTS, f"no examples in {EXAMPLES}"
    assert {p.stem for p in SCRIPTS} == set(CHECKS)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_gallery_format(script):
    """sphinx-gallery: a module docstring with an RST title first, then ``# %%`` cells."""
    text = script.read_text()
    assert text.startswith('"""\n'), "the module docstring must come first"
    lines = text.split("\n")
    title, underline = lines[1], lines[2]
    assert title.strip() and set(underline) == {"="} and len(underline) >= len(title)
    assert text.count("\n# %%\n") >= 2
    assert "load_mnist" not in text or "BRIAN_DENDRITE_DATA" in text, "MNIST comes from BRIAN_DENDRITE_DATA"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_example_runs_and_draws(script, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    old_target = brian2.prefs.codegen.target
    plt.close("all")
    start = time.process_time()
    try:
        ns = runpy.run_path(str(script), run_name="__main__")
        cpu = time.process_time() - start
        figures = [plt.figure(n) for n in plt.get_fignums()]
        assert figures, f"{script.name} drew no figure"
        for k, fig in enumerate(figures):
            assert any(ax.has_data() for ax in fig.axes), f"{script.name}: figure {k} is empty"
            out = tmp_path / f"{script.stem}_{k}.png"
            fig.savefig(out)
            assert out.stat().st_size > 5000
    finally:
        plt.close("all")
        brian2.prefs.codegen.target = old_target
    CHECKS[script.stem](ns)
    assert cpu < CPU_BUDGET, f"{script.name} took {cpu:.1f} s of CPU (budget {CPU_BUDGET} s)"
    assert not [p for p in os.listdir(tmp_path) if not p.endswith(".png")], "the example left files behind"

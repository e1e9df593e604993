"""The code shown in README.rst runs as shown."""

from __future__ import annotations

import re

from conftest import REPO


def _literal_block_after(heading: str) -> str:
    text = (REPO / "README.rst").read_text()
    section = text.split(heading + "\n" + "-" * len(heading), 1)[1]
    block = re.search(r"::\n\n((?:    .*\n|\n)+)", section).group(1)
    return "\n".join(line[4:] for line in block.splitlines())


def test_the_plugin_example_of_the_readme_runs():
    from brian2 import prefs

    code = _literal_block_after("Using the cells in your own Brian2 network")
    assert "pyramidal_neurons" in code and "Network(" in code
    old = prefs.codegen.target
    prefs.codegen.target = "numpy"
    try:
        namespace: dict = {}
        exec(compile(code, "README.rst", "exec"), namespace)
    finally:
        prefs.codegen.target = old
    pyr = namespace["pyr"]
    # the population ran for the two phases: the clock is at 100 ms and the potentials are finite
    assert abs(float(pyr.t / namespace["ms"]) - 100.0) < 1e-9
    import numpy as np

    assert np.all(np.isfinite(pyr.V_soma[:]))

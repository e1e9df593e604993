"""The neurons under cpp_standalone (slow: a C++ build per test).

Each case runs in a fresh interpreter, because Brian2's device is global
state; the script prints JSON that the test checks against the same analytic
expectations as ``test_neurons.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.standalone]

SCRIPT = textwrap.dedent(
    """
    import json, sys, tempfile
    import numpy as np
    import brian2
    from brian2 import ms, set_device, device, prefs
    prefs.devices.cpp_standalone.extra_make_args_unix = ["-j2"]
    set_device("cpp_standalone", directory=tempfile.mkdtemp(), build_on_run=True)
    from brian_dendrite.parameters import CellParameters
    from brian_dendrite.population import CellPopulation
    cell = CellParameters(g_A=0.05 / ms)
    pop = CellPopulation("pyramidal", 3, cell=cell, basal_bias=[-2.0, 0.5, 3.0], apical_bias=[1.0, -1.0, 0.0],
                         phases=[("forward", 100 * ms), ("target", 100 * ms)])
    out = CellPopulation("output", 2, basal_bias=[1.0, -1.0], label=0, phases=[("target", 100 * ms)])
    pop.network.add(out.network.objects)
    pop.run()
    print(json.dumps({"V": pop.group.V_soma[:].tolist(), "alpha_f": pop.alpha_f.tolist(),
                      "alpha_t": pop.alpha_t.tolist(), "V_out": out.group.V_soma[:].tolist()}))
    """
)


def test_neurons_under_cpp_standalone(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    basal, apical = np.array([-2.0, 0.5, 3.0]), np.array([1.0, -1.0, 0.0])
    v_inf = (0.6 * basal + 0.05 * apical) / 0.75
    np.testing.assert_allclose(result["V"], v_inf, atol=1e-9)
    np.testing.assert_allclose(result["alpha_f"], 1 / (1 + np.exp(-apical)), atol=1e-9)
    np.testing.assert_allclose(result["alpha_t"], 1 / (1 + np.exp(-apical)), atol=1e-9)
    np.testing.assert_allclose(result["V_out"], [(0.6 + 8) / 1.7, (-0.6 - 8) / 1.7], atol=1e-9)

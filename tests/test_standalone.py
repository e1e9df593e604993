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
    from brian_dendrite.model import CellParameters
    from brian_dendrite.simulation import CellPopulation
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


NETWORK_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from brian_dendrite.datasets import load_mnist
    from brian_dendrite.simulation import SpikingNetwork
    from brian_dendrite.model import load_model
    build, data = sys.argv[1], sys.argv[2]
    p = load_model("one_hidden")
    p = p.replace(network=p.network.replace(hidden=(30,)))
    tr = load_mnist("train", data_dir=data)
    net = SpikingNetwork(p, seed=4, chunk_size=1, device="cpp_standalone", build_dir=build)
    net.train_chunk(tr.images[:1], tr.labels[:1], key=(0, 0))
    before = net.get_weights()
    net.train_chunk(tr.images[1:2], tr.labels[1:2], key=(0, 1))
    after = net.get_weights()
    st = net.get_state()
    out = {"dW": [(a - b).tolist() for a, b in zip(after.W, before.W)],
           "db": [(a - b).tolist() for a, b in zip(after.b, before.b)],
           "state": {k: v.tolist() for k, v in st.items()
                     if k.split(".")[1] in ("V_mean_f", "s_mean_f", "alpha_f", "alpha_t", "rate_mean_t")}}
    # another process rebuilds the directory for other code (simulated: its stamp): no further run
    from brian_dendrite.simulation._warm import write_stamp
    write_stamp(build, "f" * 64)
    try:
        net.train_chunk(tr.images[2:3], tr.labels[2:3], key=(0, 2))
        out["stale"] = None
    except RuntimeError as err:
        out["stale"] = str(err)
    out["unchanged"] = all(np.array_equal(a, b) for a, b in zip(net.get_weights().W, after.W))
    print(json.dumps(out))
    """
)


def test_learning_rule_under_cpp_standalone(tmp_path):
    """The update applied by the compiled binary equals specification 1.9 computed from its own window means."""
    from conftest import mnist_dir

    proc = subprocess.run([sys.executable, "-c", NETWORK_SCRIPT, str(tmp_path / "build"), str(mnist_dir())],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    st = {k: np.array(v) for k, v in r["state"].items()}

    def sig(x):
        return 1 / (1 + np.exp(-x))

    k = 0.6 / 0.7
    scale_h, scale_o = 0.21 * 20 * k, 0.21 * 20 * k
    s_f = sig(st["hidden_0.V_mean_f"])
    delta_h = scale_h * (st["hidden_0.alpha_t"] - st["hidden_0.alpha_f"]) * s_f * (1 - s_f)
    o_f = sig(st["output.V_mean_f"])
    delta_o = scale_o * (st["output.rate_mean_t"] - o_f) * o_f * (1 - o_f)
    np.testing.assert_allclose(r["db"][0], delta_h, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(r["db"][1], delta_o, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(r["dW"][0], np.outer(delta_h, st["input.s_mean_f"]), rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(r["dW"][1], np.outer(delta_o, st["hidden_0.s_mean_f"]), rtol=1e-9, atol=1e-13)
    assert np.abs(r["dW"][0]).max() > 0
    # a build directory rebuilt by another process is not run, with a clear error, and nothing is lost
    assert r["stale"] is not None and "rebuilt by another process" in r["stale"] and "--resume" in r["stale"]
    assert r["unchanged"]


RESUME_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from brian_dendrite.datasets import load_mnist
    from brian_dendrite.model import load_model
    from brian_dendrite.training import Trainer
    out, data, n, resume = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    p = load_model("one_hidden")
    p = p.replace(network=p.network.replace(hidden=(30,)))
    tr, te = load_mnist("train", data_dir=data), load_mnist("test", data_dir=data)

    class Sub:
        images, labels = te.images[:20], te.labels[:20]

    t = Trainer(p, tr, Sub, out, seed=5, chunk_size=50, test_examples=20, target="cpp_standalone")
    if resume:
        assert t.resume()
    t.train(n)
    """
)


def test_resume_under_cpp_standalone(tmp_path, monkeypatch):
    from conftest import mnist_dir

    from brian_dendrite.model import Weights

    monkeypatch.setenv("BRIAN_DENDRITE_BUILD_CACHE", str(tmp_path / "cache"))

    def run(out, n, resume):
        proc = subprocess.run([sys.executable, "-c", RESUME_SCRIPT, str(out), str(mnist_dir()), str(n), resume],
                              capture_output=True, text=True, timeout=900, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]

    run(tmp_path / "full", 150, "0")
    run(tmp_path / "split", 100, "0")
    run(tmp_path / "split", 150, "1")
    a = Weights.load(tmp_path / "full" / "weights.npz")
    b = Weights.load(tmp_path / "split" / "weights.npz")
    for x, y in zip(a.W + a.b, b.W + b.b, strict=True):
        np.testing.assert_array_equal(x, y)


DENSE_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from brian_dendrite.datasets import load_mnist
    from brian_dendrite.simulation import SpikingNetwork
    from brian_dendrite.model import load_model
    model, build, data, dense, out, vector_exp = sys.argv[1:7]
    p = load_model(model)
    p = p.replace(network=p.network.replace(hidden=(30, 20)[: len(p.network.hidden)]))
    tr, te = load_mnist("train", data_dir=data), load_mnist("test", data_dir=data)
    net = SpikingNetwork(p, seed=6, chunk_size=3, device="cpp_standalone", build_dir=build,
                         dense_pathways=dense == "1", vector_exp=vector_exp == "1")
    assert bool(net.dense_pathways) == (dense == "1"), net.dense_pathways
    assert net.vector_exp == (dense == "1" and vector_exp == "1")
    for k in range(2):
        net.train_chunk(tr.images[3 * k : 3 * k + 3], tr.labels[3 * k : 3 * k + 3], key=(0, k))
    res = net.test(te.images[:4], te.labels[:4])
    w = net.get_weights()
    arrays = {f"W{m}": x for m, x in enumerate(w.W)}
    arrays.update({f"b{m}": x for m, x in enumerate(w.b)})
    arrays.update({f"Y{m}": x for m, x in enumerate(w.Y)})
    arrays.update(net.get_state())
    arrays["V_mean"] = res.V_mean
    np.savez(out, **arrays)
    print(" ".join(net.dense_pathways))
    """
)


#: (model, dense, vector_exp) -> (results, dense pathway names, build directory): builds shared by the tests below.
_DENSE_RUNS: dict = {}


def _dense_run(tmp_path_factory, model: str, dense: str, vector_exp: str):
    from conftest import mnist_dir

    key = (model, dense, vector_exp)
    if key not in _DENSE_RUNS:
        where = tmp_path_factory.mktemp(f"{model}-dense{dense}-vexp{vector_exp}")
        out = where / "out.npz"
        proc = subprocess.run([sys.executable, "-c", DENSE_SCRIPT, model, str(where / "build"), str(mnist_dir()),
                               dense, str(out), vector_exp], capture_output=True, text=True, timeout=900,
                              cwd=where)
        assert proc.returncode == 0, proc.stderr[-3000:]
        _DENSE_RUNS[key] = (dict(np.load(out)), proc.stdout.strip().splitlines()[-1] if dense == "1" else "",
                            where / "build")
    return _DENSE_RUNS[key]


@pytest.mark.parametrize("model", ["two_hidden_truncated_kernel", "noisy_symmetric_feedback"])
def test_dense_pathways_bit_identical(tmp_path_factory, model):
    """Dense-row delivery and per-step code (with scalar exp) and Brian2's generic code give the same bits.

    Stochastic training with one seed: the random streams do not depend on how synaptic events are
    delivered. The models cover a delayed pathway and a neuron's own truncation (kept generic), a
    postsynaptic pathway (symmetric feedback, kept generic) and random numbers drawn in a dense pathway.
    ``vector_exp=False``: the rate loops call glibc's scalar exp, as Brian2's generic code does.
    """
    a, names, _ = _dense_run(tmp_path_factory, model, "1", "0")
    b, _, _ = _dense_run(tmp_path_factory, model, "0", "0")
    assert "W_0_pre" in names.split() and "W_0_learn" in names.split()
    assert "truncate" not in names and "post" not in names
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _rate_objects(build) -> dict:
    """Undefined symbols of the compiled rate loops of *build*: code object name -> set of symbols."""
    import shutil

    if shutil.which("nm") is None:
        pytest.skip("nm (binutils) is not installed")
    found = {}
    for obj in sorted((build / "code_objects").glob("*_rate_codeobject*.o")):
        proc = subprocess.run(["nm", "-u", str(obj)], capture_output=True, text=True, check=True)
        found[obj.name.split("_codeobject")[0]] = {line.split()[-1] for line in proc.stdout.splitlines() if line.strip()}
    return found


def _ulps(x, y):
    """Distance in units in the last place of *y*."""
    return np.abs(np.asarray(x) - np.asarray(y)) / np.spacing(np.abs(np.asarray(y)))


def test_vector_exp_changes_only_last_bits(tmp_path_factory):
    """``vector_exp=True`` (the default): the rate loops call libmvec's exp, the rest is unchanged.

    The object files: the pyramidal and output rate loops call a SIMD ``_ZGV..._exp`` with the switch and
    the scalar ``exp`` without it. The results: the rates lie within 4 ulp of glibc's scalar
    ``phi_max / (1 + exp(-V_soma))`` of the same potential (exactly on it with scalar exp), and the weights,
    the state and the test readouts of a short training run are those of the scalar build up to last bits
    (rtol 1e-11: the spikes, drawn by comparing the survival with a uniform draw, are the same).
    """
    import math

    from brian_dendrite.model import load_model

    model = "two_hidden_truncated_kernel"
    vec, _, vec_build = _dense_run(tmp_path_factory, model, "1", "1")
    sca, _, sca_build = _dense_run(tmp_path_factory, model, "1", "0")
    vec_syms, sca_syms = _rate_objects(vec_build), _rate_objects(sca_build)
    assert sorted(vec_syms) == sorted(sca_syms) == ["hidden_0_rate", "hidden_1_rate", "input_rate", "output_rate"]
    for name in ("hidden_0_rate", "hidden_1_rate", "output_rate"):
        assert any(s.startswith("_ZGV") and s.endswith("_exp") for s in vec_syms[name]), (name, vec_syms[name])
        assert "exp" in sca_syms[name] and not any(s.startswith("_ZGV") for s in sca_syms[name]), sca_syms[name]
    assert not any("exp" in s for s in vec_syms["input_rate"] | sca_syms["input_rate"])
    # the rates of the last step against scalar exp of the same potentials
    phi_max = float(load_model(model).cell.phi_max)
    groups = sorted(k.split(".")[0] for k in vec if k.endswith(".rate") and not k.startswith("input"))
    assert groups == ["hidden_0", "hidden_1", "output"]
    for run, max_ulp in ((sca, 0), (vec, 4)):
        for g in groups:
            scalar = np.array([phi_max / (1 + math.exp(-v)) for v in run[f"{g}.V_soma"]])
            assert _ulps(run[f"{g}.rate"], scalar).max() <= max_ulp, (g, _ulps(run[f"{g}.rate"], scalar))
    # everything else: the same up to the last bits
    assert sorted(vec) == sorted(sca)
    for key in vec:
        x, y = vec[key], sca[key]
        np.testing.assert_allclose(x, y, rtol=1e-11, atol=1e-11 * max(1.0, float(np.abs(y).max(initial=0))),
                                   err_msg=key)
    assert any(not np.array_equal(vec[key], sca[key]) for key in vec)  # the switch changes some bits

"""Warm start of a cached cpp_standalone build (brian_dendrite.simulation._warm).

A process whose network has the fingerprint of the finished build in its build
directory reuses the binary without generating the project; the results must be
the bits of a process that built it. The fingerprint must be the same in every
process for the same network and differ for another network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from brian_dendrite.simulation._warm import STAMP_NAME, read_stamp, remove_stamp, write_stamp


def test_stamp_round_trip(tmp_path):
    assert read_stamp(tmp_path) is None  # no stamp
    write_stamp(tmp_path, "abc")
    assert read_stamp(tmp_path) is None  # a stamp but no binary
    (tmp_path / "main").write_text("")
    assert read_stamp(tmp_path) == "abc"
    (tmp_path / STAMP_NAME).write_text("{not json")
    assert read_stamp(tmp_path) is None
    write_stamp(tmp_path, "def")
    remove_stamp(tmp_path)
    remove_stamp(tmp_path)  # removing twice is fine
    assert read_stamp(tmp_path) is None


def test_clock_order_is_by_name():
    from brian_dendrite.simulation._standalone import _NamedOrder

    class Named:
        def __init__(self, name):
            self.name = name

    objs = [Named(n) for n in ("output_clock", "W_0_clock", "input_clock", "hidden_0_clock")]
    assert [o.name for o in _NamedOrder(objs)] == ["W_0_clock", "hidden_0_clock", "input_clock", "output_clock"]


FINGERPRINT_SCRIPT = textwrap.dedent(
    """
    import sys
    from brian_dendrite.model import load_model
    from brian_dendrite.simulation import SpikingNetwork, _standalone
    hidden, chunk = int(sys.argv[1]), int(sys.argv[2])

    def stop(network, run_steps, profile, deferred, options, _real=_standalone.fingerprint):
        print(len(deferred))  # string assignments deferred to the build (spike_u, rate, plateau_offset)
        print(_real(network, run_steps, profile, deferred, options))
        raise SystemExit(0)

    _standalone.fingerprint = stop  # constructs the objects, prints the fingerprint, builds nothing
    p = load_model("one_hidden")
    p = p.replace(network=p.network.replace(hidden=(hidden,)))
    SpikingNetwork(p, seed=1, chunk_size=chunk, device="cpp_standalone", build_dir=sys.argv[3])
    """
)


@pytest.mark.standalone
def test_fingerprint_is_reproducible_and_specific(tmp_path):
    def digest(hidden, chunk):
        proc = subprocess.run([sys.executable, "-c", FINGERPRINT_SCRIPT, str(hidden), str(chunk), str(tmp_path)],
                              capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        deferred, digest = proc.stdout.strip().splitlines()[-2:]
        assert int(deferred) >= 3  # at least spike_u of every layer
        return digest

    a, b = digest(20, 3), digest(20, 3)
    assert len(a) == 64 and a == b
    assert digest(21, 3) != a
    assert digest(20, 4) != a


WARM_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from brian_dendrite.datasets import load_mnist
    from brian_dendrite.model import load_model
    from brian_dendrite.simulation import SpikingNetwork
    from brian_dendrite.simulation import _standalone
    build, data, out = sys.argv[1:4]
    _standalone.DEFER_ASSIGNMENTS = "no-defer" not in sys.argv[4:]
    p = load_model("one_hidden")
    p = p.replace(network=p.network.replace(hidden=(30,)))
    tr, te = load_mnist("train", data_dir=data), load_mnist("test", data_dir=data)
    net = SpikingNetwork(p, seed=8, chunk_size=3, device="cpp_standalone", build_dir=build)
    for k in range(2):
        net.train_chunk(tr.images[3 * k : 3 * k + 3], tr.labels[3 * k : 3 * k + 3], key=(0, k))
    res = net.test(te.images[:3], te.labels[:3])
    w = net.get_weights()
    arrays = {f"W{m}": x for m, x in enumerate(w.W)}
    arrays.update({f"b{m}": x for m, x in enumerate(w.b)})
    arrays.update(net.get_state())
    arrays["V_mean"] = res.V_mean
    np.savez(out, **arrays)
    print(json.dumps({"reused": net.build_reused}))
    """
)


@pytest.mark.slow
@pytest.mark.standalone
def test_reused_build_gives_the_same_bits(tmp_path):
    """Built, reused (same fingerprint), rebuilt (stamp of another fingerprint) and built without deferred
    assignments (``_standalone.DEFER_ASSIGNMENTS = False``, the construction of before): identical results."""
    from conftest import mnist_dir

    build = tmp_path / "build"

    def run(name, *extra):
        out = tmp_path / f"{name}.npz"
        proc = subprocess.run([sys.executable, "-c", WARM_SCRIPT, str(build), str(mnist_dir()), str(out), *extra],
                              capture_output=True, text=True, timeout=1800, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        return info["reused"], np.load(out)

    reused, first = run("first")
    assert not reused
    reused, second = run("second")
    assert reused
    write_stamp(build, "0" * 64)  # a build of another network: must not be reused
    reused, third = run("third")
    assert not reused
    stamp = read_stamp(build)
    assert stamp not in (None, "0" * 64)  # the rebuild wrote its own stamp
    reused, fourth = run("fourth", "no-defer")  # assignments made at construction: another fingerprint
    assert not reused
    assert read_stamp(build) not in (None, stamp)
    for other in (second, third, fourth):
        assert sorted(other.files) == sorted(first.files)
        for key in first.files:
            np.testing.assert_array_equal(other[key], first[key], err_msg=key)


def test_build_directory_keys_profile(tmp_path, monkeypatch):
    """A profiled build has its own cache directory (it generates other code), as a generic-pathway one."""
    from brian_dendrite.model import load_model
    from brian_dendrite.simulation import build_directory

    monkeypatch.setenv("BRIAN_DENDRITE_BUILD_CACHE", str(tmp_path))
    p = load_model("one_hidden")
    plain = build_directory(p, 10)
    assert plain.parent == tmp_path and plain.name.startswith(f"{p.name}-")
    assert build_directory(p, 10, profile=False) == plain  # the unprofiled key is unchanged
    profiled = build_directory(p, 10, profile=True)
    generic = build_directory(p, 10, dense_pathways=False)
    both = build_directory(p, 10, dense_pathways=False, profile=True)
    assert len({plain, profiled, generic, both}) == 4
    assert build_directory(p, 10, profile=True) == profiled


IMPORT_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import brian_dendrite.training
    from brian_dendrite.model import load_model
    from brian_dendrite.simulation import SpikingNetwork
    loaded = [m for m in ("pylab", "matplotlib", "pytest", "neo", "elephant", "pynwb", "dask") if m in sys.modules]
    import brian2
    assert sys.modules.get("matplotlib", 0) is not None  # not hidden any more
    import matplotlib
    print(json.dumps({"loaded": loaded, "brian2_plot": hasattr(brian2, "plot"), "mpl": matplotlib.__version__}))
    """
)


def test_training_path_imports_no_plotting_or_test_modules(tmp_path):
    """Brian2 is imported without pylab/matplotlib/pytest (brian_dendrite._brian2_import); they import later."""
    proc = subprocess.run([sys.executable, "-c", IMPORT_SCRIPT], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env={**os.environ, "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["loaded"] == []
    assert not out["brian2_plot"]  # Brian2's own fallback without pylab: numpy names only


def test_phase_length_moments_are_kept_exactly(tmp_path, monkeypatch):
    """standalone_capacity reads the moments of the phase lengths from the build cache root: the same capacity."""
    import brian_dendrite.simulation._standalone as sa
    from brian_dendrite.model import draw_phase_lengths, load_model

    monkeypatch.setenv("BRIAN_DENDRITE_BUILD_CACHE", str(tmp_path))
    p = load_model("one_hidden")
    protocol, dt = p.protocol, p.cell.dt
    sample = draw_phase_lengths(10**6, protocol, dt, np.random.default_rng(12345))
    expected = {n: int(np.ceil(2 * n * sample.mean() + 12 * np.sqrt(2 * n) * sample.std() + 2)) for n in (3, 1000)}
    assert {n: sa.standalone_capacity(n, protocol, dt) for n in expected} == expected
    assert (tmp_path / sa._MOMENTS_FILE).is_file()

    def no_draws(*args):
        raise AssertionError("drew the phase lengths again")

    monkeypatch.setattr(sa, "draw_phase_lengths", no_draws)
    assert {n: sa.standalone_capacity(n, protocol, dt) for n in expected} == expected  # from the file
    (tmp_path / sa._MOMENTS_FILE).write_text("{not json")
    monkeypatch.setattr(sa, "draw_phase_lengths", draw_phase_lengths)
    assert sa.standalone_capacity(1000, protocol, dt) == expected[1000]  # drawn again, the file rewritten
    assert sa._phase_length_moments(protocol, dt) == (float(sample.mean()), float(sample.std()))

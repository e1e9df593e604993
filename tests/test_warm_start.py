"""Warm start of a cached cpp_standalone build (brian_dendrite.simulation._warm).

A process whose network has the fingerprint of the finished build in its build
directory reuses the binary without generating the project; the results must be
the bits of a process that built it. The fingerprint must be the same in every
process for the same network and differ for another network.
"""

from __future__ import annotations

import json
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

    def stop(network, run_steps, profile, _real=_standalone.fingerprint):
        print(_real(network, run_steps, profile))
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
        return proc.stdout.strip().splitlines()[-1]

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
    build, data, out = sys.argv[1:4]
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
    """Built, reused (same fingerprint) and rebuilt (stamp of another fingerprint): identical results."""
    from conftest import mnist_dir

    build = tmp_path / "build"

    def run(name):
        out = tmp_path / f"{name}.npz"
        proc = subprocess.run([sys.executable, "-c", WARM_SCRIPT, str(build), str(mnist_dir()), str(out)],
                              capture_output=True, text=True, timeout=900, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])["reused"], np.load(out)

    reused, first = run("first")
    assert not reused
    reused, second = run("second")
    assert reused
    write_stamp(build, "0" * 64)  # a build of another network: must not be reused
    reused, third = run("third")
    assert not reused
    assert read_stamp(build) not in (None, "0" * 64)  # the rebuild wrote its own stamp
    for other in (second, third):
        assert sorted(other.files) == sorted(first.files)
        for key in first.files:
            np.testing.assert_array_equal(other[key], first[key], err_msg=key)

"""The per-step code templates of the cpp_standalone device (brian_dendrite/simulation/_dense.py).

Fast checks of the templates and of what they assume; that the generated code gives the same
bits as Brian2's templates is tested by tests/test_standalone.py::test_dense_pathways_bit_identical
(slow: it builds the binaries).
"""

import pytest

from brian_dendrite.model import LEARN_CONDITION, LEARN_PRE_CONDITION, TARGET
from brian_dendrite.simulation import _dense


def test_plateau_guard_is_the_shared_part_of_its_condition():
    from brian_dendrite.model import FORWARD
    from brian_dendrite.model.neurons import _events

    assert _dense.EVENT_GUARDS["plateau"] == f"phase == {FORWARD} || phase == {TARGET}"
    assert _events(plateau=True)["plateau"] == (f"(phase == {FORWARD} or phase == {TARGET}) "
                                                "and steps_left == plateau_offset")


def test_learn_pre_guard_is_the_shared_part_of_its_condition():
    guard = _dense.EVENT_GUARDS["learn_pre"]
    assert guard == f"phase == {TARGET} && steps_left == 0"
    assert LEARN_CONDITION == f"phase == {TARGET} and steps_left == 0"
    assert LEARN_PRE_CONDITION.startswith(LEARN_CONDITION + " and ")


def test_templates_are_changed_only_where_intended():
    step = _dense.StepCodeObject.templater
    loop = _dense.NetworkLoopCodeObject.templater
    base = _dense.CPPStandaloneCodeObject.templater
    source = _dense._template_source
    step_sources = {name: step.env.loader.get_source(step.env, name)[0]
                    for name in ("stateupdate.cpp", "threshold.cpp", "network.cpp", "reset.cpp")}
    assert step_sources["reset.cpp"] == source("reset.cpp")
    # stateupdate: only the pragma before the loop, nothing else
    assert step_sources["stateupdate.cpp"] != source("stateupdate.cpp")
    assert step_sources["stateupdate.cpp"].count(_dense._IVDEP) == 1
    assert step_sources["stateupdate.cpp"].count(_dense._SIMD_HEADERS) == 1
    unmarked = step_sources["stateupdate.cpp"].replace(_dense._IVDEP, "").replace(_dense._SIMD_HEADERS, "")
    assert unmarked == source("stateupdate.cpp")
    assert "if ({{event_guard}})" in step_sources["threshold.cpp"]
    # the network loop: Brian2's template reads the clock in the loop and after it; ours only after it
    net = loop.env.loader.get_source(loop.env, "network.cpp")[0]
    assert net == step_sources["network.cpp"]
    assert source("network.cpp").count("elapsed_realtime = (double)(current - start)") == 1
    assert net.count("elapsed_realtime = (double)(current - start)") == 2  # guarded in-loop copy + after
    assert "{% if maximum_run_time is none %}" in net
    # every other template is Brian2's
    assert loop.env.loader.get_source(loop.env, "stateupdate.cpp")[0] == source("stateupdate.cpp")
    assert base.env.loader.get_source(base.env, "threshold.cpp")[0] == source("threshold.cpp")


def test_network_template_renders_without_the_per_step_clock():
    loop = _dense.NetworkLoopCodeObject.templater
    code = str(loop.network(None, None, maximum_run_time=None))
    body = code[code.index("while(clock && clock->running()"):code.index("_last_run_time = elapsed_realtime;")]
    loop_part = body[:body.index("Network::_globally_running = false;")]
    # inside the loop the clock is read only for report_func (which the binary does not use)
    assert loop_part.count("std::clock()") == 1 and "if (report_func)" in loop_part
    assert "current = std::clock();" in body[body.index("Network::_globally_running = false;"):]


def _render_stateupdate(vector_code, headers=False, **kwds):
    """The main code of a state updater's file (with *headers*: the file up to the support code)."""
    from brian2.core.variables import Constant

    out = _dense.StepCodeObject.templater.stateupdate(
        "", vector_code, variables={"N": Constant("N", 10)}, codeobj_name="probe", owner=None, profiled=False,
        pointers_lines="", hashdefine_lines="", support_code_lines="", user_headers=[], **kwds)
    main = out.cpp_file
    return main[:main.index("SUPPORT CODE")] if headers else main[main.index("MAIN CODE"):]


def test_vector_loops_get_ivdep_unless_they_call_libm():
    pragma_loop = "#pragma GCC ivdep\n    for(int _idx=0; _idx<_N; _idx++)"
    sums = "s[_idx] = in_window * (s[_idx] + v[_idx]) + (1 - in_window) * s[_idx];"
    assert pragma_loop in _render_stateupdate(sums, vector_loop=True)
    assert "ivdep" not in _render_stateupdate(sums)  # only the marked code objects
    # a loop with exp would call glibc's SIMD exp (libmvec, other last bits) if vectorised: never marked
    rate = "rate = 1.0f*phi_max/(1.0 + exp(- V_soma));"
    assert "ivdep" not in _render_stateupdate(rate, vector_loop=True)
    assert _dense.libm_call(rate) and _dense.libm_call({"a": "y = _brian_pow(x, 2);"})
    assert not _dense.libm_call("const int64_t r = int_(steps_left == (window_steps - 1)); y = fabs(x) + sqrt(z);")
    assert not _dense.libm_call("expected = x * exponent;")


def test_vector_exp_allows_exp_and_nothing_else():
    """``vector_libm=("exp",)`` (the rate loops with vector_exp=True): a loop whose only libm call is exp gets
    the pragma; any other libm call (also exp's relatives exprel, expm1, exp2) keeps the loop scalar."""
    pragma_loop = "#pragma GCC ivdep\n    for(int _idx=0; _idx<_N; _idx++)"
    assert _dense.VECTOR_EXP_FUNCTIONS == ("exp",) and _dense.VECTOR_EXP_LOOPS == ("_rate",)
    exp_only = ("const double rate = 1.0f*phi_max/(1.0 + exp(- V_soma));\n"
                "spike_survival *= 1 - rate * dt;")
    # glibc declares exp's SIMD variant only under __FAST_MATH__, which -fno-finite-math-only (Brian2) leaves
    # undefined: the file declares it itself, for the marked loops that may call it
    declaration = _dense.SIMD_DECLARATIONS["exp"]
    assert "__simd__" in declaration and declaration.startswith('extern "C" double exp(double)')
    code = _render_stateupdate(exp_only, vector_loop=True, vector_libm=("exp",))
    assert pragma_loop in code and "exp may be libm's SIMD variant (vector_exp=True)" in code
    assert declaration in _render_stateupdate(exp_only, headers=True, vector_loop=True, vector_libm=("exp",))
    for kwds in ({"vector_loop": True, "vector_libm": ()}, {"vector_libm": ("exp",)}, {}):  # exp=False, unmarked
        assert "ivdep" not in _render_stateupdate(exp_only, **kwds), kwds
        assert "__simd__" not in _render_stateupdate(exp_only, headers=True, **kwds), kwds
    for other in ("log(V_soma)", "_brian_exprel(V_soma)", "expm1(V_soma)", "exp2(V_soma)", "_brian_pow(V_soma, 2)",
                  "tanh(V_soma)"):
        mixed = exp_only + f"\ny = {other};"
        assert _dense.libm_call(mixed, _dense.VECTOR_EXP_FUNCTIONS), other
        assert "ivdep" not in _render_stateupdate(mixed, vector_loop=True, vector_libm=("exp",)), other
        assert "__simd__" not in _render_stateupdate(mixed, headers=True, vector_loop=True, vector_libm=("exp",))
    # a marked loop without libm keeps its pragma and says so, and declares nothing
    sums = "s[_idx] = in_window * (s[_idx] + v[_idx]) + (1 - in_window) * s[_idx];"
    code = _render_stateupdate(sums, vector_loop=True, vector_libm=("exp",))
    assert pragma_loop in code and "the loop calls no libm function" in code
    assert "__simd__" not in _render_stateupdate(sums, headers=True, vector_loop=True, vector_libm=("exp",))
    assert _dense.libm_functions({"a": exp_only, "b": "y = sin(x) + exp(z);"}) == {"exp", "sin"}
    assert _dense.libm_call(exp_only) and not _dense.libm_call(exp_only, ("exp",))
    assert _dense.libm_call({"a": exp_only, "b": "y = sin(x);"}, ("exp",))


def test_vector_exp_reaches_only_the_rate_loops():
    """vector_loop_kwds: exp is allowed in ``<group>_rate`` with vector_exp=True, never in the other loops."""
    exp = {"vector_loop": True, "vector_libm": ("exp",)}
    scalar = {"vector_loop": True, "vector_libm": ()}
    for name in ("hidden_0_rate", "output_rate", "input_rate"):
        assert _dense.vector_loop_kwds(name, True) == exp
        assert _dense.vector_loop_kwds(name, False) == scalar
    for name in ("hidden_0_accumulate", "hidden_0_stateupdater", "output_stateupdater"):
        assert _dense.vector_loop_kwds(name, True) == scalar
        assert _dense.vector_loop_kwds(name, False) == scalar
    with pytest.raises(ValueError):
        _dense.vector_loop_kwds("hidden_0_thresholder", True)


def test_build_directory_keys_scalar_exp(tmp_path, monkeypatch):
    """A dense build with scalar exp has its own cache directory; the default (vector exp) key is unchanged."""
    from brian_dendrite.model import load_model
    from brian_dendrite.simulation import build_directory

    monkeypatch.setenv("BRIAN_DENDRITE_BUILD_CACHE", str(tmp_path))
    p = load_model("one_hidden")
    plain = build_directory(p, 10)
    assert build_directory(p, 10, vector_exp=True) == plain
    scalar = build_directory(p, 10, vector_exp=False)
    assert scalar != plain and scalar.parent == tmp_path
    # the generic build ignores vector_exp (Brian2's code: scalar exp)
    assert build_directory(p, 10, dense_pathways=False, vector_exp=False) == build_directory(p, 10, dense_pathways=False)


def test_vector_loops_are_the_rates_sums_and_state_updaters():
    """``input_rate`` (image lookup and survival, no libm) is vectorised; a pyramidal ``<group>_rate`` (exp) is not."""
    import numpy as np
    from brian2 import Network, TimedArray, ms

    from brian_dendrite.model import (
        CellParameters,
        PhaseSchedule,
        ProtocolParameters,
        input_group,
        pyramidal_group,
    )
    from brian_dendrite.model.equations import input_equations

    assert _dense.VECTOR_LOOPS == ("_rate", "_accumulate", "_stateupdater")
    cell, protocol = CellParameters(), ProtocolParameters()
    arrays = PhaseSchedule.from_phases([("idle", 5 * ms, 0, 0)], protocol, dt=cell.dt).timed_arrays()
    images = TimedArray(np.zeros((2, 4)), dt=1 * ms)
    inp = input_group(4, cell, arrays, images, name="probe_input")
    hid = pyramidal_group(3, cell, protocol, arrays, name="probe_hidden2")
    net = Network(inp, hid)
    for obj in (inp, hid, *inp.contained_objects, *hid.contained_objects):  # never run: no "unused" warning
        obj._network = net.id
    inp_rate = {o.name: o for o in inp.contained_objects}["probe_input_rate"]
    hid_rate = {o.name: o for o in hid.contained_objects}["probe_hidden2_rate"]
    assert inp_rate.name.endswith(_dense.VECTOR_LOOPS) and hid_rate.name.endswith(_dense.VECTOR_LOOPS)
    # the input's rate and its subexpressions (pixel, rate) call no libm function; the pyramidal rate calls exp
    assert not _dense.libm_call(inp_rate.abstract_code + str(input_equations()))
    assert _dense.libm_call(hid_rate.abstract_code)
    # with vector_exp=True the pyramidal rate loop's one libm call, exp, is allowed
    assert not _dense.libm_call(hid_rate.abstract_code, _dense.VECTOR_EXP_FUNCTIONS)
    assert hid_rate.name.endswith(_dense.VECTOR_EXP_LOOPS)


def test_rate_and_window_sums_are_separate_loops():
    """The rate's exp in ``<group>_rate`` (order 0), the window sums in ``<group>_accumulate`` (order 1)."""
    from brian2 import Network, ms

    from brian_dendrite.model import CellParameters, PhaseSchedule, ProtocolParameters, pyramidal_group

    cell, protocol = CellParameters(), ProtocolParameters()
    arrays = PhaseSchedule.from_phases([("idle", 5 * ms, 0, 0)], protocol, dt=cell.dt).timed_arrays()
    group = pyramidal_group(3, cell, protocol, arrays, name="probe_hidden")
    net = Network(group)
    for obj in (group, *group.contained_objects):  # never run: no "never included in a network" warning
        obj._network = net.id
    runners = {o.name: o for o in group.contained_objects if o.name.endswith(("_rate", "_accumulate"))}
    rate, acc = runners["probe_hidden_rate"], runners["probe_hidden_accumulate"]
    assert (rate.when, rate.order, acc.when, acc.order) == ("before_thresholds", 0, "before_thresholds", 1)
    assert "exp(" in rate.abstract_code and "spike_survival" in rate.abstract_code
    assert not _dense.libm_call(acc.abstract_code)
    for name in ("V_sum", "s_sum", "rate_sum", "A_sum"):
        assert f"{name} = " in acc.abstract_code and f"{name} = " not in rate.abstract_code


def test_exact_contraction_flag_only_inside_the_build():
    """-ffp-contract=off is appended once, after -ffast-math, and Brian2's pref is restored afterwards."""
    from brian2 import prefs

    before = list(prefs.codegen.cpp.extra_compile_args_gcc)
    assert "-ffp-contract=off" not in before
    with _dense.exact_contraction():
        with _dense.exact_contraction():
            args = list(prefs.codegen.cpp.extra_compile_args_gcc)
        assert args.count("-ffp-contract=off") == 1
        assert args.index("-ffp-contract=off") > args.index("-ffast-math")  # the later flag wins
        assert "-ffp-contract=off" in prefs.codegen.cpp.extra_compile_args_gcc
    assert list(prefs.codegen.cpp.extra_compile_args_gcc) == before
    try:
        with _dense.exact_contraction():
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert list(prefs.codegen.cpp.extra_compile_args_gcc) == before


FINGERPRINT_SCRIPT = """
import sys
from brian_dendrite.model import load_model
from brian_dendrite.simulation import SpikingNetwork, _standalone

def stop(network, run_steps, profile, deferred, options, _real=_standalone.fingerprint):
    assert options == ("vector_exp=" + str(sys.argv[1] == "1"),), options
    print(_real(network, run_steps, profile, deferred, options))
    raise SystemExit(0)

_standalone.fingerprint = stop  # constructs the objects, prints the fingerprint, builds nothing
p = load_model("one_hidden")
p = p.replace(network=p.network.replace(hidden=(20,)))
SpikingNetwork(p, seed=1, chunk_size=3, device="cpp_standalone", build_dir=sys.argv[2],
               vector_exp=sys.argv[1] == "1")
"""


def test_vector_exp_is_in_the_fingerprint(tmp_path):
    """A build with vector exp is not reused by a process that asks for scalar exp (and vice versa)."""
    import subprocess
    import sys

    def digest(vector_exp):
        proc = subprocess.run([sys.executable, "-c", FINGERPRINT_SCRIPT, vector_exp, str(tmp_path)],
                              capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout.strip().splitlines()[-1]

    on, off = digest("1"), digest("0")
    assert len(on) == 64 and len(off) == 64 and on != off

"""The per-step code templates of the cpp_standalone device (brian_dendrite/simulation/_dense.py).

Fast checks of the templates and of what they assume; that the generated code gives the same
bits as Brian2's templates is tested by tests/test_standalone.py::test_dense_pathways_bit_identical
(slow: it builds the binaries).
"""

from brian_dendrite.model import LEARN_CONDITION, LEARN_PRE_CONDITION, TARGET
from brian_dendrite.simulation import _dense


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
                    for name in ("stateupdate.cpp", "threshold.cpp", "network.cpp")}
    assert step_sources["stateupdate.cpp"] == source("stateupdate.cpp")
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

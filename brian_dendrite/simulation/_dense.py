"""Dense-row delivery of all-to-all synaptic pathways on the cpp_standalone device (internal).

Brian2's generic synaptic code serves any connectivity: every spike is pushed
into a spike queue as the list of its synapses, and the pathway's code reads, per
synaptic event, a synapse index from that list and a postsynaptic index from the
``_synaptic_post`` array, then scatters into the postsynaptic variables. The
network's feedforward and feedback synapses are all-to-all with zero delay and
stored in presynaptic-major order (``connect()``), so a presynaptic event of neuron
``i`` touches exactly the synapses ``i * n_post + j`` for ``j = 0 .. n_post - 1``,
in that order, and the postsynaptic neurons ``j``. This module replaces, for such
pathways only, the two Brian2 templates involved:

* ``synapses`` (the pathway's code): the events are read directly from the
  source's event space (the same array, in the same order, the push code would
  have queued them from) and, per event, the pathway's generated code runs over a
  contiguous row with ``_postsynaptic_idx = j`` and ``_idx = row + j``, so that the
  compiler vectorises it (the generated pointers are ``__restrict``); the next
  event's row of weights ``w`` is prefetched (``__builtin_prefetch``) meanwhile;
* ``synapses_push_spikes``: no queue work any more.

The pathway's ``before_run`` code checks, once per run of the binary, that the
connectivity is dense and the delays zero (the binary stops with an error otherwise).

The code inside the loop is Brian2's code generation for the pathway, with one
change (:class:`_DenseGenerator`): the two synaptic index arrays are not read
because the loop defines the indices. Every synaptic variable and every
postsynaptic trace receives the same additions in the same order as with the
generic loop, so the results are bit-identical (tests/test_standalone.py).

It is a technical setting, not part of the model: ``SpikingNetwork(...,
dense_pathways=False)`` uses Brian2's generic templates everywhere. The runtime
targets (numpy, Cython) always use the generic code.

More overrides of Brian2's cpp_standalone templates serve the per-step code
(:func:`use_step_code`; ``dense_pathways=False`` switches them off as well). None
changes an operation of the model's code, only the loops around it:

* ``threshold`` of an event whose condition holds only in steps picked by shared
  variables (``learn_pre``: the last step of a target phase; ``plateau``: forward
  and target phases, never in the test phase): the loop over the
  neurons is skipped unless a guard on those shared variables holds (the guard is the
  shared part of the condition, so the events are the same).
* ``stateupdate`` of the window sums (``<group>_accumulate``, see
  :func:`~brian_dendrite.model.neurons._attach_bookkeeping`), of the rates
  (``<group>_rate``) and of the state updaters (:data:`VECTOR_LOOPS`):
  ``#pragma GCC ivdep`` before the loop. Brian2's
  ``__restrict`` pointers are local variables, which gcc does not trust: with more
  than a few arrays it does not vectorise ("no vectype"), so these loops stayed
  scalar. The arrays are distinct variables of one group, so the pragma is true, and
  gcc vectorises them. The input group's ``input_rate`` (the image lookup and the
  survival product, no libm) is vectorised. A loop that calls a libm function
  (:func:`libm_call`) gets the pragma only under the one rule below (and, with it, a
  declaration of the SIMD ``exp``); otherwise it stays a scalar loop calling libm's
  scalar function.
* ``network.cpp``: Brian2 reads the process CPU clock (``std::clock()``, a system
  call of about 0.75 us here) after every time step, only to report the run's
  duration at its end (or to stop at ``maximum_run_time``, not used here): it is
  read once after the loop instead.

A vectorised loop gives the same bits as a scalar one only if the compiler does not
contract products and sums into fused multiply-adds differently in the two (it does,
under Brian2's ``-ffast-math -march=native``): every standalone build, dense or
generic, is compiled with ``-ffp-contract=off`` (:func:`exact_contraction`), so
that each product and each sum is rounded on its own in both.

The rule for libm (the bit policy of the neurons' loops): glibc has SIMD variants of
its functions (libmvec, e.g. ``_ZGVeN8v_exp``), whose results differ from the scalar
functions' in the last bits (some of the pyramidal rates
``phi_max / (1 + exp(-V_soma))``, by a few ulp: at most 4 in a micro-benchmark of
500 neurons, at most 2 in ``test_vector_exp_changes_only_last_bits``). ``<math.h>`` declares them (the
``simd`` attribute, which lets gcc call them from a vectorised loop) only under
``__FAST_MATH__``, which gcc defines only with all of ``-ffast-math``: Brian2's
``-fno-finite-math-only`` leaves it undefined, so under Brian2's flags gcc cannot
vectorise a loop that calls libm at all, pragma or not. So:

* ``vector_exp=True`` (:func:`use_step_code`, ``SpikingNetwork(..., vector_exp=True)``,
  the default): the rate loops (names ending in :data:`VECTOR_EXP_LOOPS`, ``_rate``) of
  the pyramidal and output groups, whose only libm call is ``exp``
  (:data:`VECTOR_EXP_FUNCTIONS`), get the pragma, and their file declares ``exp``'s
  SIMD variant as glibc does under ``__FAST_MATH__`` (:data:`SIMD_DECLARATIONS`):
  gcc vectorises them with libmvec's ``exp`` (8 lanes, then 4, then the scalar ``exp``
  for the last neurons of a group: which neuron gets which depends only on the group's
  size, so runs stay reproducible). A last-bits change of the rates (and, through
  them, of everything downstream) against scalar ``exp``, for about 3 ns less per
  neuron and step (profile of 784-500-10: ``hidden_0_rate`` 0.33 -> 0.15 ms CPU per
  training example).
  Any other libm function, or ``exp`` in any other loop, keeps the loop scalar,
  without the pragma and without a declaration (were the flags ever to define
  ``__FAST_MATH__``, glibc's own declarations would not reach them either).
* ``vector_exp=False``: no loop that calls libm gets the pragma or a declaration, so
  every ``exp`` is glibc's scalar ``exp``: the same compiled loops, and the same bits,
  as before the switch existed, and the same bits as Brian2's generic templates
  (tested by tests/test_standalone.py::test_dense_pathways_bit_identical).

A generic build (``dense_pathways=False``) is Brian2's plain code, whose rate loops
call scalar ``exp``; ``vector_exp`` applies to dense builds only.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

from brian2 import Synapses
from brian2.codegen.generators.cpp_generator import CPPCodeGenerator
from brian2.codegen.templates import Templater
from brian2.devices.cpp_standalone.codeobject import CPPStandaloneCodeObject
from jinja2 import ChoiceLoader, DictLoader

__all__ = ["dense_pathways", "use_dense_pathways", "exact_contraction", "use_step_code", "libm_call", "libm_functions"]

#: The synaptic index arrays whose reads the dense loop replaces by its own indices.
_LOOP_INDICES = ("_presynaptic_idx", "_postsynaptic_idx")

_DENSE_SYNAPSES = r"""
{# USES_VARIABLES { _synaptic_pre, _synaptic_post } #}
{% extends 'common_synapses.cpp' %}
{% block before_code %}
    // brian_dendrite dense-row delivery (simulation/_dense.py). The pathway's code below assumes
    // all-to-all synapses in presynaptic-major order and zero delays: checked once per run.
    {
        const size_t _dense_n_source = {{dense_n_source}};
        const size_t _dense_n_target = {{dense_n_target}};
        bool _dense_ok = {{_dynamic__synaptic_pre}}.size() == _dense_n_source * _dense_n_target
                         && {{_dynamic__synaptic_post}}.size() == _dense_n_source * _dense_n_target;
        for (size_t _s = 0; _dense_ok && _s < {{_dynamic__synaptic_pre}}.size(); _s++)
            _dense_ok = ((size_t){{_synaptic_pre}}[_s] == _s / _dense_n_target)
                        && ((size_t){{_synaptic_post}}[_s] == _s % _dense_n_target);
        for (size_t _s = 0; _dense_ok && _s < {{dense_delays}}.size(); _s++)
            _dense_ok = ({{dense_delays}}[_s] == 0);
        if (!_dense_ok)
        {
            std::cerr << "brian_dendrite: the dense pathway {{codeobj_name}} needs all-to-all synapses in "
                      << "presynaptic-major order and zero delays (build with dense_pathways=False)" << std::endl;
            exit(3);
        }
    }
{% endblock %}
{% block maincode %}
    // Event i touches synapses i * n_post + j, j = 0 .. n_post - 1: read the events from the
    // source's event space (in the order the spike queue would have delivered them), one row each.
    const size_t _vectorisation_idx = -1;
    {{scalar_code|autoindent}}

    const int32_t* const _dense_events = {{dense_eventspace}};
    const int32_t _dense_n_events = _dense_events[{{dense_n_source}}];
    for (int32_t _dense_k = 0; _dense_k < _dense_n_events; _dense_k++)
    {
        const int32_t _presynaptic_idx = _dense_events[_dense_k];
        const size_t _dense_row = (size_t)_presynaptic_idx * {{dense_n_target}};
        {% if dense_prefetch %}
        #if defined(__GNUC__)
        if (_dense_k + 1 < _dense_n_events)  // fetch the next event's row while this one is added
        {
            const char* const _dense_next = (const char*)({{dense_prefetch}} + (size_t)_dense_events[_dense_k + 1] * {{dense_n_target}});
            for (size_t _dense_b = 0; _dense_b < {{dense_n_target}} * sizeof(*{{dense_prefetch}}); _dense_b += 64)
                __builtin_prefetch(_dense_next + _dense_b);
        }
        #endif
        {% endif %}
        for (int32_t _postsynaptic_idx = 0; _postsynaptic_idx < {{dense_n_target}}; _postsynaptic_idx++)
        {
            const size_t _idx = _dense_row + _postsynaptic_idx;
            const size_t _vectorisation_idx = _idx;
            {{vector_code|autoindent}}
        }
    }
{% endblock %}
"""

#: The pathway's push code: nothing to queue (the pathway reads the event space itself).
_DENSE_PUSH = r"""
{% extends 'common_group.cpp' %}
{% block maincode %}
    // brian_dendrite dense-row delivery: no spike queue for {{owner.name}}
{% endblock %}
"""


class _DenseGenerator(CPPCodeGenerator):
    """Brian2's C++ generator without the reads of the synaptic index arrays (the loop defines them)."""

    def translate_to_read_arrays(self, read, write, indices):
        for name in _LOOP_INDICES:
            target = {"_presynaptic_idx": "_synaptic_pre", "_postsynaptic_idx": "_synaptic_post"}[name]
            if name in indices and self.variables[name].name != target:
                raise ValueError(f"dense pathway: {name} does not refer to {target}")
        kept = {name for name in indices if name not in _LOOP_INDICES}
        return super().translate_to_read_arrays(read, write, kept)


def _dense_templater() -> Templater:
    """Brian2's cpp_standalone templates with ``synapses`` and ``synapses_push_spikes`` replaced."""
    base = CPPStandaloneCodeObject.templater
    templater = Templater("brian2.devices.cpp_standalone", ".cpp", env_globals=dict(base.env_globals))
    overrides = DictLoader({"synapses.cpp": _DENSE_SYNAPSES, "synapses_push_spikes.cpp": _DENSE_PUSH})
    templater.env.loader = ChoiceLoader([overrides, templater.env.loader])
    return templater


class DenseCodeObject(CPPStandaloneCodeObject):
    """The code objects of one dense pathway (its code and its push code)."""

    templater = _dense_templater()
    generator_class = _DenseGenerator


def dense_pathways(syn: Synapses) -> list:
    """The pathways of *syn* that can use dense-row delivery.

    Presynaptic pathways between whole groups (not subgroups) whose delay was not
    set (a pathway created with ``delay=`` has a scalar delay and keeps the spike
    queue; the others have per-synapse delays that are zero unless assigned, which
    the binary checks). *syn* must have been connected all-to-all with ``connect()``
    (the caller's responsibility; the binary checks it as well).
    """
    def whole(group):
        return getattr(group, "start", 0) == 0 and getattr(group, "stop", len(group)) == len(group)

    if not (whole(syn.source) and whole(syn.target)):
        return []
    return [p for p in syn._pathways if p.prepost == "pre" and not p.variables["delay"].scalar]


def use_dense_pathways(syn: Synapses) -> list[str]:
    """Switch the dense-capable pathways of *syn* to :class:`DenseCodeObject`; returns their names.

    Only for the cpp_standalone device, before the network is run (built).
    """
    from brian2.devices.device import get_device

    device = get_device()
    if device.__class__.__name__ != "CPPStandaloneDevice":
        raise RuntimeError("dense pathways are a cpp_standalone feature")
    names = []
    for pathway in dense_pathways(syn):
        eventspace = pathway.source.variables[pathway.eventspace_name]
        pathway.codeobj_class = DenseCodeObject
        pathway.template_kwds = {
            **(pathway.template_kwds or {}),
            "dense_eventspace": device.get_array_name(eventspace),
            "dense_n_source": len(pathway.source),
            "dense_n_target": len(pathway.target),
            "dense_delays": device.get_array_name(pathway.variables["delay"], access_data=False),
            # the weights' rows are read in the order of the events: prefetch the next one
            "dense_prefetch": device.get_array_name(pathway.variables["w"]) if "w" in pathway.variables else None,
        }
        names.append(pathway.name)
    return names


# ----------------------------------------------------------------------------- per-step code

def _template_source(name: str) -> str:
    base = CPPStandaloneCodeObject.templater
    return base.env.loader.get_source(base.env, name)[0]


def _replace_once(text: str, old: str, new: str, what: str) -> str:
    if text.count(old) != 1:
        raise RuntimeError(f"brian_dendrite: unexpected Brian2 template {what} (this Brian2 version is not supported)")
    return text.replace(old, new)


#: The pragma before a state updater's loop: for the loops marked ``vector_loop`` whose code calls no libm
#: function except those of ``vector_libm`` (:func:`use_step_code`, ``vector_exp``).
_IVDEP = ("    {% if vector_loop is defined and vector_loop and not _bd_libm_call(vector_code, vector_libm|default(())) %}\n"
          "    {% if vector_libm is defined and vector_libm and _bd_libm_call(vector_code) %}\n"
          "    // brian_dendrite: the arrays are distinct variables; {{ vector_libm|join(', ') }} may be libm's SIMD "
          "variant (vector_exp=True)\n"
          "    {% else %}\n"
          "    // brian_dendrite: the arrays are distinct variables, the loop calls no libm function\n"
          "    {% endif %}\n"
          "    #pragma GCC ivdep\n    {% endif %}\n")

#: The SIMD declaration of each libm function that :data:`VECTOR_EXP_FUNCTIONS` may allow, as glibc's
#: ``<math.h>`` makes it under ``__FAST_MATH__`` (which Brian2's ``-fno-finite-math-only`` leaves undefined).
#: Only for gcc with glibc on x86_64 (libmvec's variants); elsewhere the loop calls the scalar function.
SIMD_DECLARATIONS = {"exp": 'extern "C" double exp(double) noexcept __attribute__((__simd__("notinbranch")));'}

#: File-scope declarations of a marked loop's allowed libm functions (``vector_libm``) that the loop calls.
_SIMD_HEADERS = ("{% block extra_headers %}\n"
                 "{% if vector_loop is defined and vector_loop and vector_libm is defined and vector_libm "
                 "and not _bd_libm_call(vector_code, vector_libm) %}\n"
                 "{% for _bd_f in vector_libm if _bd_f in _bd_libm_functions(vector_code) %}\n"
                 "// brian_dendrite (vector_exp=True): glibc's SIMD {{ _bd_f }} (libmvec) in the vectorised loop\n"
                 "#if defined(__x86_64__) && defined(__GLIBC__) && defined(__GNUC__) && !defined(__clang__)\n"
                 "{{ _bd_simd_declarations[_bd_f] }}\n"
                 "#endif\n"
                 "{% endfor %}\n"
                 "{% endif %}\n"
                 "{% endblock %}\n")


def _step_templater(network_only: bool = False) -> Templater:
    """Brian2's cpp_standalone templates with ``threshold`` and ``network`` changed (see above)."""
    loop = "    long _count = 0;\n    for(size_t _idx=0; _idx<N; _idx++)\n"
    threshold = _replace_once(
        _template_source("threshold.cpp"), loop,
        "    long _count = 0;\n    {% if event_guard %}// brian_dendrite: no event unless {{event_guard}}\n"
        "    if ({{event_guard}})\n    {% endif %}for(size_t _idx=0; _idx<N; _idx++)\n", "threshold.cpp")
    per_step = ("        {% if openmp_pragma('with_openmp') %}\n        elapsed_realtime = omp_get_wtime() - start;\n"
                "        {% else %}\n        current = std::clock();\n        elapsed_realtime = (double)(current - start)/"
                "({{ openmp_pragma('get_num_threads') }} * CLOCKS_PER_SEC);\n        {% endif %}\n")
    network = _template_source("network.cpp")
    network = _replace_once(network, per_step, "        {% if maximum_run_time is not none %}\n" + per_step
                            + "        {% endif %}\n", "network.cpp")
    network = _replace_once(network, "    _last_run_time = elapsed_realtime;",
                            "    {% if maximum_run_time is none %}\n    // brian_dendrite: the clock is read once, after the loop\n"
                            + per_step + "    {% endif %}\n    _last_run_time = elapsed_realtime;", "network.cpp")
    loop = "    {{openmp_pragma('parallel-static')}}\n    for(int _idx=0; _idx<_N; _idx++)\n"
    stateupdate = _replace_once(
        _template_source("stateupdate.cpp"), loop,
        "    {{openmp_pragma('parallel-static')}}\n" + _IVDEP + "    for(int _idx=0; _idx<_N; _idx++)\n", "stateupdate.cpp")
    stateupdate = _replace_once(stateupdate, "{% extends 'common_group.cpp' %}\n",
                                "{% extends 'common_group.cpp' %}\n" + _SIMD_HEADERS, "stateupdate.cpp")
    templates = {"threshold.cpp": threshold, "network.cpp": network, "stateupdate.cpp": stateupdate}
    if network_only:
        templates = {"network.cpp": network}
    base = CPPStandaloneCodeObject.templater
    templater = Templater("brian2.devices.cpp_standalone", ".cpp", env_globals=dict(base.env_globals))
    templater.env.loader = ChoiceLoader([DictLoader(templates), templater.env.loader])
    templater.env.globals["_bd_libm_call"] = libm_call
    templater.env.globals["_bd_libm_functions"] = libm_functions
    templater.env.globals["_bd_simd_declarations"] = SIMD_DECLARATIONS
    return templater


#: libm functions that glibc declares with SIMD variants under __FAST_MATH__ (or that Brian2 maps onto them).
_LIBM_FUNCTIONS = ("exp", "exp2", "expm1", "exprel", "_brian_exprel", "log", "log2", "log10", "log1p", "pow",
                   "_brian_pow", "sin", "cos", "tan", "sinh", "cosh", "tanh", "asin", "acos", "atan", "atan2", "asinh",
                   "acosh", "atanh", "arcsin", "arccos", "arctan", "cbrt", "erf", "erfc", "hypot", "sincos")
_LIBM_CALL = re.compile(r"\b(" + "|".join(_LIBM_FUNCTIONS) + r")\s*\(")


def libm_functions(code) -> set[str]:
    """The libm functions that the generated *code* (a string, or a dict of blocks) calls."""
    if isinstance(code, dict):
        code = "\n".join(str(c) for c in code.values())
    return {m.group(1) for m in _LIBM_CALL.finditer(str(code))}


def libm_call(code, allowed=()) -> bool:
    """Whether the generated *code* (a string, or a dict of blocks) calls a libm function not in *allowed*.

    A loop for which this holds is never marked for vectorisation: vectorised, it would
    call glibc's SIMD variant (libmvec, if declared), whose results differ from the
    scalar function's in the last bits. *allowed* is empty, or :data:`VECTOR_EXP_FUNCTIONS` for the loops
    of :data:`VECTOR_EXP_LOOPS` with ``vector_exp=True`` (:func:`use_step_code`).
    """
    return bool(libm_functions(code) - set(allowed))


class StepCodeObject(CPPStandaloneCodeObject):
    """The guarded thresholders and the vectorised loops of :func:`use_step_code`."""

    templater = _step_templater()


class NetworkLoopCodeObject(CPPStandaloneCodeObject):
    """Brian2's code objects, with the ``network.cpp`` of :func:`use_step_code` (the device's default class)."""

    templater = _step_templater(network_only=True)


#: Event -> C++ guard on the shared variables (read by the condition's scalar code) without which it never fires.
EVENT_GUARDS = {"learn_pre": "phase == 1 && steps_left == 0",
                # the plateau of a forward or target phase: no loop in the test phase and in idle steps
                "plateau": "phase == 0 || phase == 1"}

#: Name suffixes of the groups' per-step code objects whose loop is marked for vectorisation (unless it calls libm).
VECTOR_LOOPS = ("_rate", "_accumulate", "_stateupdater")

#: Name suffixes of the code objects (among :data:`VECTOR_LOOPS`) whose loop may call libm's SIMD
#: :data:`VECTOR_EXP_FUNCTIONS` with ``vector_exp=True``: the groups' rate loops.
VECTOR_EXP_LOOPS = ("_rate",)

#: The only libm functions that the loops of :data:`VECTOR_EXP_LOOPS` may call and still be vectorised.
VECTOR_EXP_FUNCTIONS = ("exp",)

#: Appended to Brian2's compiler flags of every standalone build (see the module's docstring).
EXACT_CONTRACTION = "-ffp-contract=off"


def vector_loop_kwds(name: str, vector_exp: bool) -> dict:
    """The template keywords of the loop of the code object *name* (one of :data:`VECTOR_LOOPS`).

    ``vector_loop`` (the pragma, unless the loop calls libm) and ``vector_libm``, the
    libm functions the loop may call and still get the pragma: :data:`VECTOR_EXP_FUNCTIONS`
    for the loops of :data:`VECTOR_EXP_LOOPS` with *vector_exp*, none otherwise.
    """
    if not name.endswith(VECTOR_LOOPS):
        raise ValueError(f"{name} is not one of the vectorised loops {VECTOR_LOOPS}")
    allowed = VECTOR_EXP_FUNCTIONS if vector_exp and name.endswith(VECTOR_EXP_LOOPS) else ()
    return {"vector_loop": True, "vector_libm": allowed}


@contextmanager
def exact_contraction():
    """Compile without contraction into fused multiply-adds inside this block (the project's build).

    Appends :data:`EXACT_CONTRACTION` to ``prefs.codegen.cpp.extra_compile_args_gcc``
    (after Brian2's ``-ffast-math``, so it wins) for dense and generic builds alike, and
    restores the pref when the block ends: Brian2 reads the pref when it writes the
    standalone makefile (``device.build``), and a runtime (Cython) network made later in
    the same process compiles with Brian2's own flags, as in a fresh process.
    """
    from brian2 import prefs

    before = prefs.codegen.cpp.extra_compile_args_gcc
    args = list(before)
    if EXACT_CONTRACTION not in args:
        prefs.codegen.cpp.extra_compile_args_gcc = args + [EXACT_CONTRACTION]
    try:
        yield
    finally:
        prefs.codegen.cpp.extra_compile_args_gcc = before


def use_step_code(groups, guards: dict | None = None, vector_exp: bool = True) -> None:
    """Build the per-step code of *groups* (and the network's loop) with :class:`StepCodeObject`.

    Only for the cpp_standalone device, before the network is run (built).

    Parameters
    ----------
    groups : iterable of NeuronGroup
    guards : dict, optional
        Event -> guard (default :data:`EVENT_GUARDS`): the thresholders of these events
        get the guard, which must be the shared part of the event's condition.
    vector_exp : bool
        The loops of the code objects named ``*<suffix>`` for a suffix in
        :data:`VECTOR_LOOPS` get ``#pragma GCC ivdep`` unless they call libm
        (:func:`libm_call`); with *vector_exp*, those named ``*<suffix>`` for a suffix
        in :data:`VECTOR_EXP_LOOPS` get it also if their only libm calls are to
        :data:`VECTOR_EXP_FUNCTIONS` (``exp``: libmvec, other last bits; see the
        module's docstring).
    """
    from brian2.devices.device import get_device
    from brian2.groups.group import CodeRunner

    device = get_device()
    if device.__class__.__name__ != "CPPStandaloneDevice":
        raise RuntimeError("the per-step code templates are a cpp_standalone feature")
    guards = EVENT_GUARDS if guards is None else guards
    # network.cpp comes from the device's default code object class
    device.code_object_class = lambda codeobj_class=None, fallback_pref=None: codeobj_class or NetworkLoopCodeObject
    for group in groups:
        for obj in group.contained_objects:
            if not isinstance(obj, CodeRunner):
                continue
            if obj.template == "threshold" and obj.event in guards:
                obj.codeobj_class = StepCodeObject
                obj.template_kwds = {**(obj.template_kwds or {}), "event_guard": guards[obj.event]}
            elif obj.template == "stateupdate" and obj.name.endswith(VECTOR_LOOPS):
                obj.codeobj_class = StepCodeObject
                obj.template_kwds = {**(obj.template_kwds or {}), **vector_loop_kwds(obj.name, vector_exp)}

"""Network-level checks of the NEURON backend against the Brian2 network (internal).

Both take a Brian2 :class:`~brian_dendrite.simulation.SpikingNetwork` (runtime numpy
target) as the reference and replay in NEURON everything the Brian2 run drew at
random, so that the two runs are the same deterministic computation:

* the spike trains of every layer (input, hidden, output), recorded in Brian2;
* ``stochastic_plateau``: every hidden neuron's plateau offset of every forward and
  target phase (read from the recorded plateau events: the offset is ``steps_left``
  at the plateau);
* ``noisy_symmetric`` feedback: the first noise and the noise drawn at every
  learning trigger (a ``StateMonitor`` of ``y_noise`` on the top synapses).

:func:`learning_crosscheck` compares the weight and bias changes after K training
examples (and, with ``trajectory``, the biases after every example);
:func:`test_crosscheck` compares the test phase: the output layer's somatic
potential step by step, the window-mean readouts and the predicted classes.
"""

from __future__ import annotations

import time

import brian2
import numpy as np
from brian2 import SpikeMonitor, StateMonitor, ms

from ..model import FORWARD, TARGET, ModelParameters, Weights
from ._compare import TOLERANCES, passes, trace_errors
from ._network import NrnNetwork

__all__ = ["learning_crosscheck", "test_crosscheck", "spike_steps", "plateau_offsets_of", "free_running_comparison"]


def spike_steps(spike_trains, dt_ms: float) -> list:
    """Recorded spikes (:class:`~brian_dendrite.simulation.recording.SpikeTrains` or a
    ``SpikeMonitor``) -> one int array of spike steps per neuron."""
    if isinstance(spike_trains, SpikeMonitor):
        times, indices, n = spike_trains.t[:], spike_trains.i[:], len(spike_trains.source)
    else:
        times, indices, n = spike_trains.times, spike_trains.indices, spike_trains.n_neurons
    steps = np.rint(np.asarray(times / ms) / dt_ms).astype(int)
    idx = np.asarray(indices)
    return [steps[idx == k] for k in range(n)]


def plateau_offsets_of(plateaus, schedule, n_neurons: int) -> np.ndarray:
    """(n_phases, n_neurons) plateau offsets of every forward/target phase from recorded plateau events."""
    dt_ms = float(schedule.dt / ms)
    table = schedule.phase_table
    starts = table[np.isin(table[:, 2], (FORWARD, TARGET)), 0]
    steps = np.rint(np.asarray(plateaus.times / ms) / dt_ms).astype(int)
    phase_index = np.searchsorted(starts, steps, side="right") - 1
    offsets = np.full((len(starts), n_neurons), -1, dtype=int)
    offsets[phase_index, np.asarray(plateaus.indices)] = np.asarray(schedule.steps_left)[steps]
    if np.any(offsets < 0):
        raise RuntimeError("a hidden neuron had no plateau in some forward or target phase")
    return offsets


def _numpy_target():
    saved = brian2.prefs.codegen.target
    brian2.prefs.codegen.target = "numpy"
    return saved


def learning_crosscheck(params: ModelParameters, images: np.ndarray, labels: np.ndarray, seed: int = 0,
                        keep_weights: bool = False, trajectory: bool = False) -> dict:  # long: both simulators
    """Train on *images* in Brian2 and, replaying every layer's spikes, in NEURON; compare the updates.

    Returns
    -------
    dict
        Per weight layer the :func:`trace_errors` of the weight changes ``dW`` and
        bias changes ``db`` (NEURON against Brian2), for symmetric feedback also of
        the final ``Y`` (``dY``), the number of examples, the timings and ``passed``
        (:data:`TOLERANCES`). With ``trajectory``: ``bias_drift``, per example the
        largest relative difference of the accumulated bias changes of all layers.
    """
    from ..simulation import SpikingNetwork

    images, labels = np.asarray(images, dtype=float), np.asarray(labels)
    if len(images) == 0 or len(images) != len(labels):
        raise ValueError(f"images ({len(images)}) and labels ({len(labels)}) must be non-empty and of equal length")
    noisy = params.network.feedback == "noisy_symmetric"
    saved = _numpy_target()
    try:
        t0 = time.perf_counter()
        net = SpikingNetwork(params, seed=seed, chunk_size=len(labels))
        w0 = net.get_weights()
        noise0 = net.feedback_noise()
        extra = {}
        if noisy:
            extra["noise"] = StateMonitor(net.forward_synapses[-1], "y_noise", record=True, when="end",
                                          name="xc_noise")
        if trajectory:
            for g in net.layers[1:]:
                extra[g.name] = StateMonitor(g, "b_basal", record=True, when="end", name=f"xc_bias_{g.name}")
        net.net.add(*extra.values())
        try:
            rec = net.record(images, labels, "train")
        finally:
            net.net.remove(*extra.values())
        w1 = net.get_weights()
        t1 = time.perf_counter()
    finally:
        brian2.prefs.codegen.target = saved
    schedule = net.last_schedule
    dt_ms = float(params.cell.dt / ms)
    table = schedule.phase_table
    learn_steps = (table[:, 0] + table[:, 1] - 1)[table[:, 2] == TARGET]
    forced = {name: spike_steps(rec.spikes[name], dt_ms) for name in rec.spikes if name != "input"}
    offsets = None
    if params.protocol.stochastic_plateau:
        offsets = {name: plateau_offsets_of(rec.plateaus[name], schedule, n)
                   for name, n in zip(rec.plateaus, params.network.hidden, strict=True)}
    noise = noise0
    if noisy:
        shape = noise0.shape
        after = [np.asarray(extra["noise"].y_noise[:, e]).reshape(shape) for e in learn_steps]
        noise = np.stack([noise0, *after])
    nrn = NrnNetwork(params, w0, schedule, spike_steps(rec.spikes["input"], dt_ms), forced=forced, seed=seed,
                     plateau_offsets=offsets, feedback_noise=noise)
    bias_recs = [nrn.model.record(c.dend_b._ref_bias) for name in nrn.names for c in nrn.layers[name]] \
        if trajectory else None
    t2 = time.perf_counter()
    nrn.run()
    t3 = time.perf_counter()
    wn = nrn.get_weights()
    layers = []
    for m in range(len(w0.W)):
        layers.append({"dW": trace_errors(w1.W[m] - w0.W[m], wn.W[m] - w0.W[m]),
                       "db": trace_errors(w1.b[m] - w0.b[m], wn.b[m] - w0.b[m]),
                       "max_abs_dW_brian2": float(np.max(np.abs(w1.W[m] - w0.W[m])))})
    checked = [lay[k] for lay in layers for k in ("dW", "db")]
    out = {"model": params.name, "layer_sizes": list(params.network.layer_sizes), "n_examples": len(labels),
           "feedback": params.network.feedback, "stochastic_plateau": bool(params.protocol.stochastic_plateau),
           "n_steps": int(schedule.n_steps), "layers": layers,
           "seconds": {"brian2": t1 - t0, "neuron_build": t2 - t1, "neuron_run": t3 - t2}}
    if nrn.symmetric:
        out["dY"] = trace_errors(w1.Y[0] - w0.Y[0], wn.Y[0] - w0.Y[0])
        checked.append(out["dY"])
    if trajectory:
        b2 = np.concatenate([np.asarray(extra[name].b_basal) for name in nrn.names])[:, learn_steps]
        bn = np.array([np.asarray(r) for r in bias_recs])[:, learn_steps + 2]
        b0 = np.concatenate(w0.b)[:, None]
        out["bias_drift"] = [trace_errors(b2[:, k] - b0[:, 0], bn[:, k] - b0[:, 0])["rel_max"]
                             for k in range(len(learn_steps))]
    out["passed"] = bool(all(passes(e, TOLERANCES) for e in checked))
    if keep_weights:
        out["weights"] = {"before": w0, "brian2": w1, "neuron": wn}
    return out


def test_crosscheck(params: ModelParameters, weights: Weights, images: np.ndarray, labels=None,
                    seed: int = 0) -> dict:  # long: runs, replays and compares both simulators
    """Test *images* in Brian2 (:meth:`SpikingNetwork.test <brian_dendrite.simulation.SpikingNetwork.test>`:
    one ``test_duration`` phase per image, state zeroed before each, no learning) and, replaying
    every layer's spikes, in NEURON; compare the output layer.

    Returns
    -------
    dict
        ``V_soma`` (:func:`trace_errors` of the output layer's somatic potential, every
        step), ``V_mean`` and ``rate_mean`` (the window-mean readouts, one per image
        and output neuron), ``same_predictions``, the predictions of both, the test
        error of both (with *labels*), timings and ``passed`` (:data:`TOLERANCES`
        and identical predictions).
    """
    from ..simulation import SpikingNetwork

    images = np.asarray(images, dtype=float)
    if len(images) == 0:
        raise ValueError("test_crosscheck: images is empty")
    saved = _numpy_target()
    try:
        t0 = time.perf_counter()
        net = SpikingNetwork(params, weights=weights, seed=seed, chunk_size=1, test_chunk_size=len(images))
        mons = {g.name: SpikeMonitor(g, name=f"xc_test_spikes_{g.name}") for g in net.layers}
        state = StateMonitor(net.output, "V_soma", record=True, when="before_thresholds", order=10,
                             name="xc_test_vsoma")
        net.net.add(*mons.values(), state)
        try:
            res = net.test(images, labels)
        finally:
            net.net.remove(*mons.values(), state)
        t1 = time.perf_counter()
    finally:
        brian2.prefs.codegen.target = saved
    schedule = net.last_schedule
    dt_ms = float(params.cell.dt / ms)
    steps = {name: spike_steps(mon, dt_ms) for name, mon in mons.items()}
    forced = {name: s for name, s in steps.items() if name != "input"}
    nrn = NrnNetwork(params, weights, schedule, steps["input"], forced=forced, seed=seed,
                     feedback_noise=net.feedback_noise())
    vrec = [nrn.model.record(c.soma(0.5)._ref_v) for c in nrn.layers["output"]]
    t2 = time.perf_counter()
    nrn.run()
    t3 = time.perf_counter()
    V, R = nrn.test_readout()
    n = schedule.n_steps
    v_nrn = np.array([np.asarray(r)[1:n + 1] for r in vrec])
    v_b2 = np.asarray(state.V_soma)[:, :n]
    score = V if params.protocol.readout == "voltage" else R
    pred = np.argmax(score, axis=1)
    out = {"model": params.name, "layer_sizes": list(params.network.layer_sizes), "n_images": len(images),
           "n_steps": int(n), "readout": params.protocol.readout,
           "V_soma": trace_errors(v_b2, v_nrn), "V_mean": trace_errors(res.V_mean, V),
           "rate_mean": trace_errors(res.rate_mean, R),
           "predictions": {"brian2": res.predictions.tolist(), "neuron": pred.tolist()},
           "same_predictions": bool(np.array_equal(res.predictions, pred)),
           "spikes": {name: int(sum(len(s) for s in st)) for name, st in steps.items()},
           "seconds": {"brian2": t1 - t0, "neuron_build": t2 - t1, "neuron_run": t3 - t2}}
    if labels is not None:
        labels = np.asarray(labels)
        out["error"] = {"brian2": res.error, "neuron": float(100.0 * np.mean(pred != labels))}
    out["passed"] = bool(out["same_predictions"] and all(passes(out[k], TOLERANCES)
                                                         for k in ("V_soma", "V_mean", "rate_mean")))
    return out


test_crosscheck.__test__ = False  # a library function, not a test (pytest collects names starting with "test")


def free_running_comparison(params: ModelParameters, images: np.ndarray, labels: np.ndarray, seed: int = 0,
                            neuron_seeds=(1, 2)) -> dict:  # long: one Brian2 and several NEURON runs
    """What drifts when the simulators draw their own spikes: a statistical comparison.

    Brian2 trains on *images* (its own spikes); NEURON trains from the same initial
    weights and schedule, on the same input spike trains (Brian2's, replayed), with
    hidden and output cells spiking on their own, once per seed of *neuron_seeds*.
    Returns, per weight layer, the correlation of the weight changes of Brian2 with
    each NEURON run and of the NEURON runs with each other (the spread that the
    spike noise alone causes), and the norm of every run's change relative to
    Brian2's. If the backends agree in distribution, Brian2-NEURON correlations are
    as high as NEURON-NEURON ones.
    """
    from ..simulation import SpikingNetwork

    saved = _numpy_target()
    try:
        net = SpikingNetwork(params, seed=seed, chunk_size=len(labels))
        w0 = net.get_weights()
        rec = net.record(np.asarray(images, dtype=float), np.asarray(labels), "train")
        w1 = net.get_weights()
    finally:
        brian2.prefs.codegen.target = saved
    dt_ms = float(params.cell.dt / ms)
    inputs = spike_steps(rec.spikes["input"], dt_ms)
    runs = []
    for s in neuron_seeds:
        nrn = NrnNetwork(params, w0, net.last_schedule, inputs, seed=int(s))
        nrn.run()
        runs.append(nrn.get_weights())
    layers = []
    for m in range(len(w0.W)):
        d2 = (w1.W[m] - w0.W[m]).ravel()
        dn = [(w.W[m] - w0.W[m]).ravel() for w in runs]
        layers.append({
            "corr_brian2_neuron": [float(np.corrcoef(d2, d)[0, 1]) for d in dn],
            "corr_neuron_neuron": [float(np.corrcoef(dn[a], dn[b])[0, 1])
                                   for a in range(len(dn)) for b in range(a + 1, len(dn))],
            "norm_ratio": [float(np.linalg.norm(d) / np.linalg.norm(d2)) for d in dn]})
    spikes = {name: int(len(rec.spikes[name].indices)) for name in rec.spikes}
    return {"model": params.name, "n_examples": len(labels), "layers": layers, "brian2_spikes": spikes}

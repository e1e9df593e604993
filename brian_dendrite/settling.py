"""Settling of the training protocol: how far the averaging windows are from the steady state.

The learning rule (MODEL.md 1.9) compares window means of the forward and the
target phase. The rate abstraction evaluates it at the steady state of each phase;
the spiking network at the end of phases of about 50 ms, with the state carried
over from the previous example (MODEL.md 1.6, section 5 items 7 and 8). Whatever
has not settled by the window is a residue of the previous phase, and it enters the
update of every example.

How deep the residue is depends on the kernel (MODEL.md section 5, item 3). Each
layer of the feedforward path, and the feedback path to the apical dendrites,
passes its input through one PSP kernel. The full double exponential is the density
of a sum of two exponential delays (means ``tau_L`` and ``tau_s``), so ``k`` kernels
in series leave a residue ``P(T_1 + ... + T_k > t)``: the output's basal potential is
two kernels deep (about 20 % left 30 ms after a switch), the apical potential three
(about 40 %). The published code's kernel is cut after 10 ms, so three kernels in
series have fully settled after 30 ms; that is the settling time the paper's
protocol assumes.

The residue has a fixed size set by how different consecutive examples are, while
the learning signal (target minus forward) shrinks as the network learns. At
initial weights the residue is negligible; once the error is small it dominates the
update. :func:`settling_fidelity` measures that with the noise-free mean-field twin
(:class:`~brian_dendrite.validation.MeanFieldNetwork`: the spiking network's update
with spikes replaced by their probabilities), so the result is about the protocol
and the kernel alone, not spike noise.

``python validation/settling.py`` runs it for the paper's and the alternative
kernels and phase lengths and writes ``validation/settling.md``.
"""

from __future__ import annotations

import numpy as np

from .initialization import Weights
from .parameters import ModelParameters
from .rate import RateNetwork
from .validation import MeanFieldNetwork, _cos

__all__ = ["settling_fidelity", "train_mean_field"]


def _rms(x) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def settling_fidelity(params: ModelParameters, weights: Weights, images, labels, phase_lengths=(50, 70, 100, 300),
                      streams: int = 25, examples: int = 12, skip: int = 2, seed: int = 0) -> dict:
    """Per-example updates of the spiking protocol (noise-free) against the rate model's.

    ``streams`` independent sequences of ``examples`` consecutive training examples,
    drawn from ``images``/``labels`` with ``seed``, run through the mean-field twin
    with forward and target phases of ``L`` steps each (the window is the protocol's;
    no random extra length) and the state carried over from one example to the next,
    as in training. The weights are held fixed. The first ``skip`` examples of each
    stream start from a zero state and are not scored.

    Parameters
    ----------
    params : ModelParameters
    weights : Weights
    images : array (n, n_input)
    labels : array (n,)
    phase_lengths : sequence of int
        Phase lengths in time steps.
    streams, examples, skip, seed : int

    Returns
    -------
    dict
        ``"phase_steps"``, ``"examples_scored"``, and per phase length a dict with,
        per weight layer ``W_k``: ``"cosine_mean"`` (mean over examples of the cosine
        between the twin's and the rate model's dW), ``"summed_cosine"`` (cosine of
        the dW summed over all scored examples, which is what learning integrates)
        and ``"summed_norm_ratio"`` (norm of the twin's summed dW over the rate
        model's); and ``"residual"``: per window quantity (output ``V_f``, per hidden
        layer ``alpha_f``, ``alpha_t`` and ``alpha_t - alpha_f``), the rms difference
        from the rate model's steady state divided by the rms of the rate model's
        own value across examples and neurons (0: settled).

    Raises
    ------
    ValueError
        For a phase length shorter than the averaging window, or ``skip >= examples``.
    """
    images = np.asarray(images, dtype=float)
    labels = np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"settling_fidelity: {len(images)} images but {len(labels)} labels")
    window = int(round(float(params.protocol.window_length / params.cell.dt)))
    lengths = [int(L) for L in phase_lengths]
    if any(L < window for L in lengths):
        raise ValueError(f"settling_fidelity: phase lengths {lengths} must be at least the window ({window} steps)")
    if not 0 <= skip < examples:
        raise ValueError(f"settling_fidelity: skip = {skip} must be in [0, examples = {examples})")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(images), size=(streams, examples))
    rate = RateNetwork(params, weights)
    n_layers = len(weights.W)
    n_hidden = n_layers - 1
    ref_dW, ref_q = {}, {}
    for s in range(streams):
        for e in range(skip, examples):
            i = idx[s, e]
            ref_dW[s, e] = [dW for dW, _ in rate.update_deltas(images[i], labels[i])]
            ref_q[s, e] = rate.example_quantities(images[i], labels[i])

    def ref_quantity(name, layer):
        if name == "V_f":
            return np.array([ref_q[k]["C_f"][layer] for k in sorted(ref_q)])
        if name == "alpha_d":
            return np.array([ref_q[k]["alpha_t"][layer] - ref_q[k]["alpha_f"][layer] for k in sorted(ref_q)])
        return np.array([ref_q[k][name][layer] for k in sorted(ref_q)])

    quantities = [("V_f", n_layers - 1, "output V_f")]
    for h in range(n_hidden):
        quantities += [("alpha_f", h, f"hidden_{h} alpha_f"), ("alpha_t", h, f"hidden_{h} alpha_t"),
                       ("alpha_d", h, f"hidden_{h} alpha_t - alpha_f")]
    results = {}
    for L in lengths:
        mf = MeanFieldNetwork(params, weights, batch=streams)
        cos = [[] for _ in range(n_layers)]
        tot = [[0.0, 0.0] for _ in range(n_layers)]
        got = {name: {} for _, _, name in quantities}
        for e in range(examples):
            im, lab = images[idx[:, e]], labels[idx[:, e]]
            f = mf.run_phase("forward", L, im, window=window)
            t = mf.run_phase("target", L, im, lab, window=window)
            if e < skip:
                continue
            upd = mf.example_update(f, t)
            for lay, (dW, _) in enumerate(upd):
                for s in range(streams):
                    r = ref_dW[s, e][lay]
                    cos[lay].append(_cos(dW[s], r))
                    tot[lay][0] = tot[lay][0] + dW[s]
                    tot[lay][1] = tot[lay][1] + r
            for s in range(streams):
                for key, layer, name in quantities:
                    if key == "V_f":
                        v = f["V_mean"][layer][s]
                    elif key == "alpha_f":
                        v = f["alpha"][layer][s]
                    elif key == "alpha_t":
                        v = t["alpha"][layer][s]
                    else:
                        v = t["alpha"][layer][s] - f["alpha"][layer][s]
                    got[name][s, e] = v
        updates = {}
        for lay in range(n_layers):
            a, b = tot[lay]
            nb = float(np.linalg.norm(b))
            updates[f"W_{lay}"] = {
                "cosine_mean": float(np.mean(cos[lay])),
                "summed_cosine": _cos(a, b),
                "summed_norm_ratio": float(np.linalg.norm(a) / nb) if nb > 0 else float("nan"),
            }
        residual = {}
        for key, layer, name in quantities:
            ref = ref_quantity(key, layer)
            mine = np.array([got[name][k] for k in sorted(ref_q)])
            scale = _rms(ref)
            residual[name] = _rms(mine - ref) / scale if scale > 0 else float("nan")
        results[L] = {"updates": updates, "residual": residual}
    return {"phase_steps": lengths, "window_steps": window, "examples_scored": streams * (examples - skip),
            "seed": seed, "by_length": results}


# --------------------------------------------------------------------------------------------------
# Training without spikes: the spiking protocol's learning, noise-free
# --------------------------------------------------------------------------------------------------

_MF_CHECKPOINT = "mean_field_checkpoint.npz"


def _mf_state_arrays(state: dict) -> dict:
    """Flatten a :class:`MeanFieldNetwork` state into named arrays (for ``.npz``)."""
    out = {"state/step": np.array(state["step"])}
    for k, v in enumerate(state["V"]):
        out[f"state/V/{k}"] = v
    for name in ("X", "XA", "y"):
        for k, (a, b) in enumerate(state[name]):
            out[f"state/{name}/{k}/L"] = a
            out[f"state/{name}/{k}/s"] = b
    for n, (due, (name, k), inc) in enumerate(state["pending"]):
        out[f"pending/{n}/{due}/{name}/{k}"] = inc
    return out


def _mf_state_from_arrays(arrays, template: dict) -> dict:
    """Inverse of :func:`_mf_state_arrays`, shaped like ``template`` (a freshly reset state)."""
    state = {"step": int(arrays["state/step"]), "pending": []}
    state["V"] = [np.array(arrays[f"state/V/{k}"]) for k in range(len(template["V"]))]
    for name in ("X", "XA", "y"):
        state[name] = [[np.array(arrays[f"state/{name}/{k}/L"]), np.array(arrays[f"state/{name}/{k}/s"])]
                       for k in range(len(template[name]))]
    pend = []
    for key in arrays:
        if key.startswith("pending/"):
            _, n, due, name, k = key.split("/")
            pend.append((int(n), (int(due), (name, int(k)), np.array(arrays[key]))))
    state["pending"] = [item for _, item in sorted(pend, key=lambda t: t[0])]
    return state


def train_mean_field(params: ModelParameters, train_set, test_set, output_dir, n_examples: int, seed: int = 0,
                     chunk_size: int = 1000, test_every: int | None = None, test_examples: int = 10000,
                     checkpoint_every: int = 10000, report=None) -> dict:
    """Train the noise-free mean-field twin exactly as :class:`~brian_dendrite.training.Trainer` trains the spiking network.

    Same initial weights (``SeedSequence([seed, 0xD1])``), same example order
    (``SeedSequence([seed, 0xE0, epoch])``), and the same phase lengths (drawn per chunk
    of ``chunk_size`` examples from ``SeedSequence([seed, 0x5C, epoch, chunk])``, as
    :meth:`SpikingNetwork.train_chunk` draws them), with the state carried over from
    example to example. Every spike is replaced by its probability
    (:class:`~brian_dendrite.validation.MeanFieldNetwork`), so the only differences from
    the spiking run are the spike noise and the nonlinearity of the spike probability
    acting on it. Against :func:`~brian_dendrite.training.train_rate` (same weights and
    order, steady states instead of phases), the difference is the protocol: kernel
    sampling, settling and the residue of the previous example.

    Test errors (every ``test_every`` examples, default once per epoch, and at the end)
    are the *rate model's* on the current weights: the noise-free test, so that the
    number measures the weights that training reached. History, weights and the
    network state are written to ``mean_field_checkpoint.npz`` in
    ``output_dir`` atomically after every test and every ``checkpoint_every`` examples;
    a later call resumes from it exactly.

    ``report``, if given, is called with the number of examples after every chunk
    (e.g. a progress bar's ``update``). Returns a summary dict (also written to
    ``mean_field_summary.json``; the final weights to ``mean_field_weights.npz``).
    """
    import json
    import time
    from pathlib import Path

    from .atomic import save_npz_atomic
    from .initialization import initial_weights
    from .schedule import draw_phase_lengths
    from .training import _json_default, check_output_dir, training_arrays, versions, write_json_atomic

    net_p, protocol = params.network, params.protocol
    unsupported = []
    if net_p.feedback in ("symmetric", "noisy_symmetric"):
        unsupported.append(f"network.feedback = {net_p.feedback!r} (the twin keeps Y fixed)")
    if not net_p.feedback_spiking:
        unsupported.append("network.feedback_spiking = false")
    if protocol.stochastic_plateau:
        unsupported.append("protocol.stochastic_plateau = true")
    if unsupported:
        raise NotImplementedError(f"train_mean_field does not model {', '.join(unsupported)} "
                                  f"(model {params.name!r})")
    output_dir = check_output_dir(Path(output_dir))
    images, labels, t_images, t_labels = training_arrays(params, train_set, test_set, test_examples)
    n_test = len(t_labels)
    if chunk_size < 1 or n_examples < 0:
        raise ValueError(f"chunk_size = {chunk_size} and n_examples = {n_examples}: need chunk_size >= 1, n_examples >= 0")
    n_train = len(labels)
    test_every = int(test_every or n_train)
    path = output_dir / _MF_CHECKPOINT
    progress = {"epoch": 0, "offset": 0, "examples": 0, "train_seconds": 0.0}
    history: list[dict] = []
    run_versions = versions()
    if path.exists():
        with np.load(path) as d:
            arrays = {k: d[k] for k in d.files}
        meta = json.loads(str(arrays.pop("meta")))
        saved = ModelParameters.from_toml(meta["params"], source=f"{path} (meta)")
        if saved != params or meta["seed"] != seed or meta["chunk_size"] != chunk_size or meta["test_every"] != test_every:
            raise ValueError(f"checkpoint {path} was written for another run ({saved.name}, seed {meta['seed']}, "
                             f"chunk size {meta['chunk_size']}, test every {meta['test_every']}); "
                             "use another output directory or the same settings")
        if meta["progress"]["examples"] > n_examples:
            raise ValueError(f"checkpoint {path} has {meta['progress']['examples']} examples; cannot train fewer "
                             f"({n_examples})")
        weights = Weights.from_arrays({k[len("weights/"):]: v for k, v in arrays.items() if k.startswith("weights/")},
                                      params, source=str(path))
        net = MeanFieldNetwork(params, weights)
        net.set_state(_mf_state_from_arrays(arrays, net.state))
        progress, history = meta["progress"], meta["history"]
    else:
        weights = initial_weights(params, np.random.default_rng(np.random.SeedSequence([seed, 0xD1])))
        net = MeanFieldNetwork(params, weights)

    def checkpoint():
        arrays = {f"weights/{k}": v for k, v in net.weights.to_arrays().items()}
        arrays.update(_mf_state_arrays(net.state))
        meta = {"kind": "mean_field", "progress": progress, "history": history, "seed": seed,
                "chunk_size": chunk_size, "test_every": test_every, "params": params.to_toml(),
                "versions": run_versions}
        arrays["meta"] = np.array(json.dumps(meta, default=_json_default))
        save_npz_atomic(path, arrays)

    def test():
        t0 = time.perf_counter()
        err = RateNetwork(params, net.weights).test_error(t_images, t_labels)
        history.append({"examples": progress["examples"], "test_error": float(err), "test_images": n_test,
                        "test_seconds": time.perf_counter() - t0})

    next_test = (progress["examples"] // test_every + 1) * test_every
    last_checkpoint = progress["examples"]
    while progress["examples"] < n_examples:
        epoch, offset = progress["epoch"], progress["offset"]
        order = np.random.default_rng(np.random.SeedSequence([seed, 0xE0, epoch])).permutation(n_train)
        # chunks and their phase-length draws exactly as Trainer.train cuts them
        take = min(chunk_size, n_train - offset, n_examples - progress["examples"])
        idx = order[offset : offset + take]
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5C, epoch, offset // chunk_size]))
        lengths = draw_phase_lengths(2 * take, params.protocol, params.cell.dt, rng).reshape(take, 2)
        t0 = time.perf_counter()
        net.train(images[idx], labels[idx], lengths)
        progress["train_seconds"] += time.perf_counter() - t0
        progress["examples"] += take
        offset += take
        if offset >= n_train:
            epoch, offset = epoch + 1, 0
        progress["epoch"], progress["offset"] = epoch, offset
        if report is not None:
            report(take)
        tested = progress["examples"] >= next_test
        if tested:
            test()
            next_test += test_every
        if tested or progress["examples"] - last_checkpoint >= checkpoint_every:
            checkpoint()
            last_checkpoint = progress["examples"]
    # the end: a last test (unless one was just made) and the checkpoint that records it
    if not history or history[-1]["examples"] != progress["examples"]:
        test()
        checkpoint()
    summary = {"model": params.name, "kind": "mean_field", "seed": seed, "chunk_size": chunk_size,
               "examples_trained": progress["examples"], "epochs_completed": progress["examples"] / n_train,
               "train_seconds": progress["train_seconds"],
               "ms_per_example": 1000 * progress["train_seconds"] / max(progress["examples"], 1),
               "test_history": history, "final_test_error": history[-1]["test_error"],
               "test": "rate model on the current weights", "versions": run_versions}
    write_json_atomic(output_dir / "mean_field_summary.json", summary)
    net.weights.save(output_dir / "mean_field_weights.npz")
    return summary

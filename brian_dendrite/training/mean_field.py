"""Training without spikes: the spiking protocol's learning, noise-free.

:func:`train_mean_field` trains the mean-field twin of the spiking network
(:class:`~brian_dendrite.validation.MeanFieldNetwork`: every spike replaced by
its probability) with the spiking trainer's weights, example order and phase
lengths, so that a comparison with the spiking run isolates the spike noise and a
comparison with the rate model isolates the protocol (kernel sampling, settling,
the residue of the previous example).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .._progress import progress_bar
from ..model import ModelParameters, Weights, draw_phase_lengths
from ..provenance import versions, write_json_atomic
from ..rate import RateNetwork
from ..validation import MeanFieldNetwork
from ._common import (
    check_output_dir,
    check_test_options,
    example_order,
    final_test_error,
    save_checkpoint,
    seeded_initial_weights,
    training_arrays,
)

__all__ = ["train_mean_field"]

_MF_CHECKPOINT = "mean_field_checkpoint.npz"
_MF_SUMMARY = "mean_field_summary.json"
_MF_WEIGHTS = "mean_field_weights.npz"

# Seed of the phase lengths, mixed with (seed, epoch, chunk): the one SpikingNetwork.train_chunk uses.
_PHASE_LENGTHS = 0x5C


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
                     checkpoint_every: int = 10000, report=None, progress: bool = True) -> dict:
    """Train the noise-free mean-field twin exactly as :class:`~brian_dendrite.training.trainer.Trainer` trains the spiking network.

    Same initial weights (``SeedSequence([seed, 0xD1])``), same example order
    (``SeedSequence([seed, 0xE0, epoch])``), and the same phase lengths (drawn per chunk
    of ``chunk_size`` examples from ``SeedSequence([seed, 0x5C, epoch, chunk])``, as
    :meth:`SpikingNetwork.train_chunk` draws them), with the state carried over from
    example to example. Every spike is replaced by its probability
    (:class:`~brian_dendrite.validation.MeanFieldNetwork`), so the only differences from
    the spiking run are the spike noise and the nonlinearity of the spike probability
    acting on it. Against :func:`~brian_dendrite.training.rate_training.train_rate` (same weights and
    order, steady states instead of phases), the difference is the protocol: kernel
    sampling, settling and the residue of the previous example.

    Test errors (every ``test_every`` examples, default once per epoch, and at the end)
    are the *rate model's* on the current weights: the noise-free test, so that the
    number measures the weights that training reached. History, weights and the
    network state are written to ``mean_field_checkpoint.npz`` in
    ``output_dir`` atomically after every test and every ``checkpoint_every`` examples;
    a later call resumes from it exactly.

    ``report``, if given, is called with the number of examples after every chunk
    (e.g. a progress bar's ``update``); without it, ``progress`` shows a progress bar
    with an ETA on stderr (examples trained). Returns a summary dict (also written to
    ``mean_field_summary.json``; the final weights to ``mean_field_weights.npz``).
    With ``test_examples = 0`` nothing is tested (empty ``test_history``,
    ``final_test_error`` None); the checkpoints are written all the same.
    """
    _check_supported(params)
    check_test_options(test_examples, test_every)
    if chunk_size < 1 or n_examples < 0:
        raise ValueError(f"chunk_size = {chunk_size} and n_examples = {n_examples}: need chunk_size >= 1, n_examples >= 0")
    output_dir = check_output_dir(Path(output_dir))
    images, labels, t_images, t_labels = training_arrays(params, train_set, test_set, test_examples)
    test_every = int(test_every or len(labels))
    run = _MeanFieldRun(params, seed, chunk_size, test_every, output_dir / _MF_CHECKPOINT, t_images, t_labels)
    run.start(n_examples)
    state = run.progress
    next_test = (state["examples"] // test_every + 1) * test_every
    last_checkpoint = state["examples"]
    with progress_bar(n_examples, "mean-field training", "example", enabled=progress and report is None,
                      initial=min(state["examples"], n_examples)) as bar:
        report = bar.update if report is None else report
        while state["examples"] < n_examples:
            take = run.train_chunk(images, labels, n_examples)
            report(take)
            tested = state["examples"] >= next_test
            if tested:
                run.test()
                next_test += test_every
            if tested or state["examples"] - last_checkpoint >= checkpoint_every:
                run.save_checkpoint()
                last_checkpoint = state["examples"]
        # the end: a last test (unless one was just made) and the checkpoint that records it
        if not run.history or run.history[-1]["examples"] != state["examples"]:
            run.test()
            run.save_checkpoint()
    summary = run.summary(len(labels))
    write_json_atomic(output_dir / _MF_SUMMARY, summary)
    run.net.weights.save(output_dir / _MF_WEIGHTS)
    return summary


def _check_supported(params: ModelParameters) -> None:
    """NotImplementedError naming every setting of ``params`` that the mean-field twin does not model."""
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


class _MeanFieldRun:
    """One run of :func:`train_mean_field`: the twin, the progress, the test history and the checkpoint."""

    def __init__(self, params: ModelParameters, seed: int, chunk_size: int, test_every: int, path: Path,
                 test_images: np.ndarray, test_labels: np.ndarray):
        self.params, self.seed, self.chunk_size, self.test_every, self.path = (params, seed, chunk_size,
                                                                               test_every, path)
        self.test_images, self.test_labels = test_images, test_labels
        self.progress = {"epoch": 0, "offset": 0, "examples": 0, "train_seconds": 0.0}
        self.history: list[dict] = []
        self.versions = versions()
        self.net: MeanFieldNetwork | None = None

    def start(self, n_examples: int) -> None:
        """Resume from the checkpoint if there is one, else start from the seed's initial weights."""
        if self.path.exists():
            self._resume(n_examples)
        else:
            self.net = MeanFieldNetwork(self.params, seeded_initial_weights(self.params, self.seed))

    def _resume(self, n_examples: int) -> None:
        path, params = self.path, self.params
        with np.load(path) as d:
            arrays = {k: d[k] for k in d.files}
        meta = json.loads(str(arrays.pop("meta")))
        saved = ModelParameters.from_toml(meta["params"], source=f"{path} (meta)")
        if (saved != params or meta["seed"] != self.seed or meta["chunk_size"] != self.chunk_size
                or meta["test_every"] != self.test_every):
            raise ValueError(f"checkpoint {path} was written for another run ({saved.name}, seed {meta['seed']}, "
                             f"chunk size {meta['chunk_size']}, test every {meta['test_every']}); "
                             "use another output directory or the same settings")
        if meta["progress"]["examples"] > n_examples:
            raise ValueError(f"checkpoint {path} has {meta['progress']['examples']} examples; cannot train fewer "
                             f"({n_examples})")
        weights = Weights.from_arrays({k[len("weights/"):]: v for k, v in arrays.items() if k.startswith("weights/")},
                                      params, source=str(path))
        self.net = MeanFieldNetwork(params, weights)
        self.net.set_state(_mf_state_from_arrays(arrays, self.net.state))
        self.progress, self.history = meta["progress"], meta["history"]

    def train_chunk(self, images: np.ndarray, labels: np.ndarray, n_examples: int) -> int:
        """Train on the next chunk, cut and with phase lengths drawn exactly as ``Trainer.train`` does; its size."""
        progress, chunk_size, n_train = self.progress, self.chunk_size, len(labels)
        epoch, offset = progress["epoch"], progress["offset"]
        order = example_order(self.seed, epoch, n_train)
        take = min(chunk_size, n_train - offset, n_examples - progress["examples"])
        idx = order[offset : offset + take]
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, _PHASE_LENGTHS, epoch, offset // chunk_size]))
        lengths = draw_phase_lengths(2 * take, self.params.protocol, self.params.cell.dt, rng).reshape(take, 2)
        t0 = time.perf_counter()
        self.net.train(images[idx], labels[idx], lengths)
        progress["train_seconds"] += time.perf_counter() - t0
        progress["examples"] += take
        offset += take
        if offset >= n_train:
            epoch, offset = epoch + 1, 0
        progress["epoch"], progress["offset"] = epoch, offset
        return take

    def test(self) -> None:
        """The rate model's test error on the current weights, appended to the history (none without test images)."""
        if len(self.test_labels) == 0:
            return
        t0 = time.perf_counter()
        err = RateNetwork(self.params, self.net.weights).test_error(self.test_images, self.test_labels)
        self.history.append({"examples": self.progress["examples"], "test_error": float(err),
                             "test_images": len(self.test_labels), "test_seconds": time.perf_counter() - t0})

    def save_checkpoint(self) -> None:
        meta = {"kind": "mean_field", "progress": self.progress, "history": self.history, "seed": self.seed,
                "chunk_size": self.chunk_size, "test_every": self.test_every, "params": self.params.to_toml(),
                "versions": self.versions}
        save_checkpoint(self.path, self.net.weights, meta, _mf_state_arrays(self.net.state))

    def summary(self, n_train: int) -> dict:
        progress, history = self.progress, self.history
        return {"model": self.params.name, "kind": "mean_field", "seed": self.seed, "chunk_size": self.chunk_size,
                "examples_trained": progress["examples"], "epochs_completed": progress["examples"] / n_train,
                "train_seconds": progress["train_seconds"],
                "ms_per_example": 1000 * progress["train_seconds"] / max(progress["examples"], 1),
                "test_history": history, "final_test_error": final_test_error(history, progress["examples"]),
                "test": "rate model on the current weights", "versions": self.versions}

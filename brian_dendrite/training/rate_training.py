"""Training the rate abstraction like the spiking network: same weights, order, checkpoints and summary.

:func:`train_rate` trains :class:`~brian_dendrite.rate.RateNetwork` (the
network's steady states instead of its phases) on the spiking trainer's initial
weights and example order, so that a user can compare the two on one
configuration. It tests after every ``test_every`` examples and at the end of
every epoch, and writes ``checkpoint.npz`` after every test, from which a later
call resumes exactly.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from .._progress import progress_bar
from ..model import ModelParameters
from ..provenance import versions, write_json_atomic
from ..rate import RateNetwork
from ._common import (
    CHECKPOINT,
    FINAL_WEIGHTS,
    SUMMARY,
    check_output_dir,
    check_test_options,
    example_order,
    final_test_error,
    read_checkpoint,
    resumed_code_history,
    save_checkpoint,
    save_weights,
    seeded_initial_weights,
    training_arrays,
)

__all__ = ["train_rate"]

logger = logging.getLogger("brian2.brian_dendrite.training")

# Seed of the network's own random numbers (the redrawn noise of noisy_symmetric feedback), mixed
# with the run's seed; like the streams of ._common it fixes every result of every run.
_NETWORK_NOISE = 0xD2

#: Examples between two updates of the progress bar.
_REPORT_EVERY = 500


def train_rate(params: ModelParameters, train_set, test_set, output_dir, n_examples: int, seed: int = 0,
               test_examples: int = 10000, test_every: int | None = None, initial_test: bool = False,
               progress: bool = True) -> dict:
    """Train the rate abstraction like :class:`~brian_dendrite.training.Trainer` trains the spiking network.

    Same initial weights (``SeedSequence([seed, 0xD1])``), same example order
    (``SeedSequence([seed, 0xE0, epoch])`` per epoch), same summary format, so a
    user can compare the two on one configuration. The network's own random
    numbers (the redrawn noise of ``noisy_symmetric`` feedback) come from
    ``SeedSequence([seed, 0xD2])``.

    After every test point (every ``test_every`` examples, at the end of every
    epoch and at the end) the weights, the random-number state and the history are
    written to ``checkpoint.npz`` in ``output_dir``, atomically; a later call with the
    same parameters, seed and ``test_every`` resumes from it (and trains on up to
    ``n_examples``) and gives the same result as an uninterrupted run.

    With ``test_examples = 0`` nothing is tested (the summary's ``test_history`` is
    empty and its ``final_test_error`` None); the checkpoints are written at the
    test points all the same.

    ``progress`` shows a progress bar with an ETA on stderr (examples trained);
    it is updated every 500 examples through the callback of ``RateNetwork.train``,
    which trains bit for bit the same.
    """
    check_test_options(test_examples, test_every)
    test_every = int(test_every) if test_every else None  # 0 and None: no periodic tests, one checkpoint meaning
    output_dir = check_output_dir(output_dir)
    images, labels, t_images, t_labels = training_arrays(params, train_set, test_set, test_examples)
    run = _RateRun(params, seed, test_every, output_dir / CHECKPOINT, t_images, t_labels)
    run.start(n_examples)
    with progress_bar(n_examples, "rate training", "example", enabled=progress,
                      initial=min(run.done, n_examples)) as bar:
        if initial_test and run.done == 0:
            run.test()
        while run.done < n_examples:
            run.train_epoch(images, labels, n_examples, report=bar.update if progress else None)
        if not run.history or run.history[-1]["examples"] != run.done:
            run.test()
    save_weights(output_dir / FINAL_WEIGHTS, run.net.weights)
    summary = run.summary(len(labels))
    write_json_atomic(output_dir / SUMMARY, summary)
    return summary


def _train_reporting(net: RateNetwork, images: np.ndarray, labels: np.ndarray, report) -> None:
    """``net.train(images, labels)``, calling ``report(k)`` every :data:`_REPORT_EVERY` examples (and at the end).

    The callback of :meth:`RateNetwork.train` (with nothing to test) is the hook: training in
    the same order, bit for bit the same.
    """
    if report is None:
        net.train(images, labels)
        return
    done = 0

    def callback(_net, n, _error):
        nonlocal done
        report(n - done)
        done = n

    net.train(images, labels, callback=callback, test_every=min(_REPORT_EVERY, len(labels)))


class _RateRun:
    """One run of :func:`train_rate`: the network, its random numbers, the progress and the test history.

    ``done`` counts the examples trained, ``epoch`` and ``offset`` say where in
    the epoch's example order training goes on, ``secs`` is the training time.
    """

    def __init__(self, params: ModelParameters, seed: int, test_every: int | None, path: Path,
                 test_images: np.ndarray, test_labels: np.ndarray):
        self.params, self.seed, self.test_every, self.path = params, seed, test_every, path
        self.test_images, self.test_labels = test_images, test_labels
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, _NETWORK_NOISE]))
        self.versions = versions()
        self.code_history = [{"from_examples": 0, **self.versions}]
        self.history: list[dict] = []
        self.done, self.epoch, self.offset, self.secs = 0, 0, 0, 0.0
        self.net: RateNetwork | None = None

    def start(self, n_examples: int) -> None:
        """Resume from the checkpoint if there is one, else start from the seed's initial weights."""
        if self.path.exists():
            weights = self._resume(n_examples)
        else:
            weights = seeded_initial_weights(self.params, self.seed)
        self.net = RateNetwork(self.params, weights, rng=self.rng)
        self.net.examples_seen = self.done

    def _resume(self, n_examples: int):
        path, seed, test_every = self.path, self.seed, self.test_every
        meta, weights, _ = read_checkpoint(path)
        saved = ModelParameters.from_toml(meta["params"], source=f"{path} (meta)")
        if saved != self.params or meta.get("kind") != "rate":
            raise ValueError(f"checkpoint {path} was written for another run ({meta.get('kind', 'spiking')} "
                             f"training of {saved.name}); use another output directory or the same model")
        if meta["seed"] != seed or (meta["test_every"] or None) != test_every or meta["examples"] > n_examples:
            raise ValueError(f"checkpoint {path} has seed {meta['seed']}, test_every {meta['test_every']} and "
                             f"{meta['examples']} examples; this run asks for seed {seed}, test_every {test_every} "
                             f"and {n_examples} examples: the first two must match and it cannot train fewer")
        self.rng.bit_generator.state = meta["rng_state"]
        self.done, self.epoch, self.offset, self.secs = (meta["examples"], meta["epoch"], meta["offset"],
                                                         meta["train_seconds"])
        self.history = meta["history"]
        self.code_history = resumed_code_history(meta, self.versions, self.done)
        logger.info(f"resumed rate training from {path} after {self.done} examples")
        return weights

    def train_epoch(self, images: np.ndarray, labels: np.ndarray, n_examples: int, report=None) -> None:
        """Train on to the end of the epoch or to ``n_examples``, testing and checkpointing at every test point.

        ``report(k)``, if given, is called for every ``k`` examples trained (a progress bar's ``update``).
        """
        order = example_order(self.seed, self.epoch, len(labels))
        take = order[: min(len(order), self.offset + n_examples - self.done)]
        step = self.test_every or len(take)
        while self.offset < len(take):
            idx = take[self.offset : self.offset + step]
            t0 = time.perf_counter()
            _train_reporting(self.net, images[idx], labels[idx], report)
            self.secs += time.perf_counter() - t0
            self.done += len(idx)
            self.offset += len(idx)
            if self.offset >= len(order):
                self.epoch, self.offset = self.epoch + 1, 0
            self.test()
            self.save_checkpoint()
            if self.offset == 0:
                break

    def test(self) -> None:
        """Test the current weights and append the result to the history (nothing without test images).

        An entry has ``"newton_fallbacks"`` when test images took Newton's root because their
        relaxation did not settle (:func:`brian_dendrite.rate._fixed_point.newton_root`).
        """
        if len(self.test_labels) == 0:
            return
        t0, fallbacks = time.perf_counter(), self.net.newton_fallbacks
        err = self.net.test_error(self.test_images, self.test_labels)
        entry = {"examples": self.done, "test_error": float(err), "test_images": len(self.test_labels),
                 "test_seconds": time.perf_counter() - t0}
        if self.net.newton_fallbacks > fallbacks:  # images whose relaxation did not settle (g_A > 0; rare)
            entry["newton_fallbacks"] = self.net.newton_fallbacks - fallbacks
        self.history.append(entry)

    def save_checkpoint(self) -> None:
        meta = {"kind": "rate", "examples": self.done, "epoch": self.epoch, "offset": self.offset,
                "train_seconds": self.secs, "history": self.history, "seed": self.seed,
                "test_every": self.test_every, "params": self.params.to_toml(),
                "rng_state": self.rng.bit_generator.state, "code_history": self.code_history}
        save_checkpoint(self.path, self.net.weights, meta)

    def summary(self, n_train: int) -> dict:
        """The run's summary, in the format of :meth:`Trainer.write_summary`."""
        done, secs = self.done, self.secs
        return {
            "model": self.params.name, "kind": "rate", "target": "numpy", "seed": self.seed, "chunk_size": None,
            "examples_trained": done, "epochs_completed": done / n_train, "train_seconds": secs,
            "ms_per_example": 1000 * secs / done if done else None, "ms_per_example_median_chunk": None,
            "test_history": self.history, "final_test_error": final_test_error(self.history, done),
            "parameters": self.params.to_dict(), "versions": self.versions, "code_history": self.code_history,
        }

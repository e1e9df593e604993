"""Training runs: chunks, periodic tests, atomic checkpoints, resume and a summary.

A run trains the spiking network online on MNIST (specification 1.12): every epoch
the training set is reshuffled (a permutation seeded by ``(seed, epoch)``), and
the examples are presented in chunks of ``chunk_size``, each chunk one Brian2
``run()``. After every chunk the weights *and* the network state (potentials,
traces, window means) are written to ``checkpoint.npz`` atomically (temporary
file + ``os.replace``); a resumed run continues from the last completed chunk.
Every chunk's random numbers (phase lengths, spikes) are seeded by
``(seed, epoch, chunk)``, so an interrupted and resumed run reproduces an
uninterrupted one on the same target.

The output directory receives ``checkpoint.npz``, ``weights.npz`` (final) and
``summary.json`` (test errors over training, throughput, parameters, seed,
versions).

The file names and what the three training loops share are in :mod:`._common`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from .._progress import BrianProgress
from ..datasets import validate_dataset
from ..model import ModelParameters
from ..provenance import versions, write_json_atomic
from ..simulation import SpikingNetwork, build_directory
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
)

__all__ = ["Trainer"]

logger = logging.getLogger("brian2.brian_dendrite.training")


class Trainer:
    """Train (and test) a :class:`SpikingNetwork` with checkpoints.

    Parameters
    ----------
    params : ModelParameters
    train_set, test_set : MNIST-like
        Objects with ``images`` (n, 784) in [0, 1] and ``labels`` (n,).
    output_dir : Path
    seed : int
    chunk_size : int
        Examples per ``run()`` and per checkpoint.
    test_examples : int
        Test images used by periodic and final tests (the first ones of the test set);
        0: the run is not tested (its summary has an empty ``test_history`` and
        ``final_test_error`` None).
    test_every : int or None
        Examples between periodic tests (rounded up to whole chunks).
    """

    def __init__(self, params: ModelParameters, train_set, test_set, output_dir, seed: int = 0,
                 chunk_size: int = 1000, test_examples: int = 10000, test_every: int | None = None,
                 target: str = "cython"):
        check_test_options(test_examples, test_every)
        self.params = params
        self.train_images, self.train_labels = validate_dataset(train_set.images, train_set.labels,
                                                                n_input=params.network.n_input,
                                                                n_classes=params.network.n_output)
        self.test_images, self.test_labels = validate_dataset(test_set.images, test_set.labels,
                                                              n_input=params.network.n_input,
                                                              n_classes=params.network.n_output)
        self.output_dir = check_output_dir(output_dir)
        self.seed = int(seed)
        self.chunk_size = int(chunk_size)
        self.test_examples = min(int(test_examples), len(self.test_labels))
        self.test_every = test_every
        self.target = target
        self.history: list[dict] = []
        # provenance of the code that runs (taken now: the checkout may change during a long run)
        self.versions = versions()
        #: The code that trained each stretch: versions with the example count from which they ran
        #: (one entry unless the run was resumed by other code).
        self.code_history: list[dict] = [{"from_examples": 0, **self.versions}]
        self.progress = {"epoch": 0, "offset": 0, "examples": 0, "train_seconds": 0.0, "chunk_ms_per_example": []}
        if target not in ("numpy", "cython", "cpp_standalone"):
            raise ValueError(f"target = {target!r}: expected 'numpy', 'cython' or 'cpp_standalone'")
        if target == "cpp_standalone":
            self.network = SpikingNetwork(params, seed=self.seed, chunk_size=self.chunk_size, device="cpp_standalone",
                                          build_dir=build_directory(params, self.chunk_size))
        else:
            import brian2

            brian2.prefs.codegen.target = target
            self.network = SpikingNetwork(params, seed=self.seed, chunk_size=self.chunk_size,
                                          test_chunk_size=min(1000, max(self.test_examples, 1)))

    # ---------------------------------------------------------------- checkpoints
    @property
    def checkpoint_path(self) -> Path:
        return self.output_dir / CHECKPOINT

    def save_checkpoint(self) -> None:
        """Write the weights, the network state and the progress to :attr:`checkpoint_path` atomically."""
        weights = self.network.get_weights()
        state = {f"state/{k}": v for k, v in self.network.get_state().items()}
        meta = {"progress": self.progress, "history": self.history, "seed": self.seed,
                "chunk_size": self.chunk_size, "params": self.params.to_toml(), "target": self.target,
                "code_history": self.code_history}
        save_checkpoint(self.checkpoint_path, weights, meta, state)

    def resume(self) -> bool:
        """Load the last checkpoint of the output directory; False if there is none."""
        path = self.checkpoint_path
        if not path.exists():
            return False
        meta, weights, state = read_checkpoint(path)
        if meta.get("kind", "spiking") != "spiking":
            raise ValueError(f"checkpoint {path} is from {meta['kind']} training, not the spiking network; "
                             "use another output directory")
        saved = ModelParameters.from_toml(meta["params"], source=f"{path} (meta)")
        if saved != self.params:
            raise ValueError(f"checkpoint {path} was written for other parameters ({saved.name}); "
                             "use another output directory or the same model")
        if meta["seed"] != self.seed or meta["chunk_size"] != self.chunk_size:
            raise ValueError(f"checkpoint {path} has seed {meta['seed']} and chunk size {meta['chunk_size']}; "
                             f"this run asks for {self.seed} and {self.chunk_size}: they must match to resume")
        self.network.set_weights(weights)
        self.network.set_state(state)
        self.progress = meta["progress"]
        self.history = meta["history"]
        self.code_history = resumed_code_history(meta, self.versions, self.progress["examples"])
        logger.info(f"resumed from {path} after {self.progress['examples']} examples")
        return True

    # ---------------------------------------------------------------- running
    def _order(self, epoch: int) -> np.ndarray:
        return example_order(self.seed, epoch, len(self.train_labels))

    def test(self) -> float:
        """Test the current weights on the first :attr:`test_examples` test images; the error in %."""
        n = self.test_examples
        if n == 0:
            raise ValueError("this Trainer has no test images (test_examples = 0)")
        t0 = time.perf_counter()
        result = self.network.test(self.test_images[:n], self.test_labels[:n],
                                   key=(self.progress["examples"],))
        seconds = time.perf_counter() - t0
        entry = {"examples": self.progress["examples"], "test_error": result.error, "test_images": n,
                 "test_seconds": seconds}
        self.history.append(entry)
        logger.info(f"test error after {entry['examples']} examples: {result.error:.2f} % ({n} images)")
        return result.error

    def train(self, n_examples: int, progress_bar=None, initial_test: bool = False) -> dict:
        """Train until ``n_examples`` examples in total have been presented (counting resumed ones).

        ``progress_bar`` (a tqdm bar, or anything with ``update``) is advanced by the
        examples of each chunk while the chunk runs (Brian2's ``report``, every 10 s).
        """
        testing = self.test_examples > 0
        if testing and initial_test and self.progress["examples"] == 0 and not self.history:
            self.test()
        n_train = len(self.train_labels)
        next_test = None
        if testing and self.test_every:
            done = self.progress["examples"]
            next_test = (done // self.test_every + 1) * self.test_every
        while self.progress["examples"] < n_examples:
            epoch, offset = self.progress["epoch"], self.progress["offset"]
            order = self._order(epoch)
            count = min(self.chunk_size, n_train - offset, n_examples - self.progress["examples"])
            idx = order[offset : offset + count]
            report = None if progress_bar is None else BrianProgress(progress_bar, [count])
            t0 = time.perf_counter()
            self.network.train_chunk(self.train_images[idx], self.train_labels[idx],
                                     key=(epoch, offset // self.chunk_size), report=report)
            seconds = time.perf_counter() - t0
            self.progress["train_seconds"] += seconds
            self.progress["chunk_ms_per_example"].append(1000 * seconds / count)
            self.progress["examples"] += count
            offset += count
            if offset >= n_train:
                epoch, offset = epoch + 1, 0
            self.progress["epoch"], self.progress["offset"] = epoch, offset
            if report is not None:
                report.finish()
            if next_test is not None and self.progress["examples"] >= next_test and self.progress["examples"] < n_examples:
                self.test()
                next_test += self.test_every
            self.save_checkpoint()
        if testing and (not self.history or self.history[-1]["examples"] != self.progress["examples"]):
            self.test()
            self.save_checkpoint()
        save_weights(self.output_dir / FINAL_WEIGHTS, self.network.get_weights())
        return self.write_summary()

    def write_summary(self) -> dict:
        ex = self.progress["examples"]
        secs = self.progress["train_seconds"]
        summary = {
            "model": self.params.name,
            "kind": "spiking",
            "target": self.target,
            "seed": self.seed,
            "chunk_size": self.chunk_size,
            "examples_trained": ex,
            "epochs_completed": ex / len(self.train_labels),
            "train_seconds": secs,
            "ms_per_example": 1000 * secs / ex if ex else None,
            # the first chunk of a process includes code generation and compilation
            "ms_per_example_median_chunk": (float(np.median(self.progress["chunk_ms_per_example"][1:]))
                                            if len(self.progress["chunk_ms_per_example"]) > 1 else None),
            "test_history": self.history,
            "final_test_error": final_test_error(self.history, ex),
            "parameters": self.params.to_dict(),
            "versions": self.versions,
            "code_history": self.code_history,
        }
        write_json_atomic(self.output_dir / SUMMARY, summary)
        return summary

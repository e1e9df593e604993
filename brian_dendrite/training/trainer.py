"""Training runs: chunks, periodic tests, atomic checkpoints, resume and a summary.

A run trains the spiking network online on MNIST (MODEL.md 1.12): every epoch
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
"""

from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from ..model import ModelParameters, Weights
from ..provenance import json_default, save_npz_atomic, versions, write_json_atomic
from ..simulation import SpikingNetwork

__all__ = ["Trainer", "train_rate"]

logger = logging.getLogger("brian2.brian_dendrite.training")

CHECKPOINT = "checkpoint.npz"
SUMMARY = "summary.json"
FINAL_WEIGHTS = "weights.npz"


def build_directory(params: ModelParameters, chunk_size: int) -> Path:
    """Cache directory of a cpp_standalone build, keyed by what determines the generated code.

    The key hashes the parameters (they are compiled in as constants), the chunk
    size (it fixes array shapes and the run length) and the versions of Brian2,
    brian_dendrite and Python. Under ``$BRIAN_DENDRITE_BUILD_CACHE`` if set, else
    ``$XDG_CACHE_HOME/brian_dendrite/builds`` (``~/.cache/...``).
    """
    import hashlib

    import brian2

    from .. import __version__

    key = json.dumps([params.to_toml(), int(chunk_size), brian2.__version__, __version__, platform.python_version()])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    root = os.environ.get("BRIAN_DENDRITE_BUILD_CACHE")
    if not root:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "brian_dendrite" / "builds"
    path = Path(root) / f"{params.name}-{digest}"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def check_output_dir(path: Path) -> Path:
    """Create *path* if needed and check that files can be written there."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as err:
        raise ValueError(f"output directory {path} is not writable: {err}") from None
    return path


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
        Test images used by periodic and final tests (the first ones of the test set).
    test_every : int or None
        Examples between periodic tests (rounded up to whole chunks).
    """

    def __init__(self, params: ModelParameters, train_set, test_set, output_dir, seed: int = 0,
                 chunk_size: int = 1000, test_examples: int = 10000, test_every: int | None = None,
                 target: str = "cython"):
        from ..datasets import validate_dataset

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
        arrays = {f"weights/{k}": v for k, v in self.network.get_weights().to_arrays().items()}
        arrays.update({f"state/{k}": v for k, v in self.network.get_state().items()})
        meta = {"progress": self.progress, "history": self.history, "seed": self.seed,
                "chunk_size": self.chunk_size, "params": self.params.to_toml(), "target": self.target,
                "code_history": self.code_history}
        arrays["meta"] = np.array(json.dumps(meta, default=json_default))
        save_npz_atomic(self.checkpoint_path, arrays)

    def resume(self) -> bool:
        """Load the last checkpoint of the output directory; False if there is none."""
        path = self.checkpoint_path
        if not path.exists():
            return False
        meta, weights, state = _read_checkpoint(path)
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
        self.code_history = _resumed_code_history(meta, self.versions, self.progress["examples"])
        logger.info(f"resumed from {path} after {self.progress['examples']} examples")
        return True

    # ---------------------------------------------------------------- running
    def _order(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0xE0, epoch]))
        return rng.permutation(len(self.train_labels))

    def test(self) -> float:
        n = self.test_examples
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
        """Train until ``n_examples`` examples in total have been presented (counting resumed ones)."""
        if initial_test and self.progress["examples"] == 0 and not self.history:
            self.test()
        n_train = len(self.train_labels)
        next_test = None
        if self.test_every:
            done = self.progress["examples"]
            next_test = (done // self.test_every + 1) * self.test_every
        while self.progress["examples"] < n_examples:
            epoch, offset = self.progress["epoch"], self.progress["offset"]
            order = self._order(epoch)
            count = min(self.chunk_size, n_train - offset, n_examples - self.progress["examples"])
            idx = order[offset : offset + count]
            t0 = time.perf_counter()
            self.network.train_chunk(self.train_images[idx], self.train_labels[idx],
                                     key=(epoch, offset // self.chunk_size))
            seconds = time.perf_counter() - t0
            self.progress["train_seconds"] += seconds
            self.progress["chunk_ms_per_example"].append(1000 * seconds / count)
            self.progress["examples"] += count
            offset += count
            if offset >= n_train:
                epoch, offset = epoch + 1, 0
            self.progress["epoch"], self.progress["offset"] = epoch, offset
            if progress_bar is not None:
                progress_bar.update(count)
            if next_test is not None and self.progress["examples"] >= next_test and self.progress["examples"] < n_examples:
                self.test()
                next_test += self.test_every
            self.save_checkpoint()
        if not self.history or self.history[-1]["examples"] != self.progress["examples"]:
            self.test()
            self.save_checkpoint()
        self.network.get_weights().save(self.output_dir / FINAL_WEIGHTS)
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
            "final_test_error": self.history[-1]["test_error"] if self.history else None,
            "parameters": self.params.to_dict(),
            "versions": self.versions,
            "code_history": self.code_history,
        }
        write_json_atomic(self.output_dir / SUMMARY, summary)
        return summary


def _resumed_code_history(meta: dict, current: dict, examples: int) -> list[dict]:
    """A checkpoint's ``code_history``, extended by ``current`` if other code resumes it."""
    previous = meta.get("code_history") or [
        {"from_examples": 0, "git_commit": None, "note": "checkpoint written before code provenance was kept"}]
    history = list(previous)
    last = {k: v for k, v in previous[-1].items() if k != "from_examples"}
    if last != current:
        history.append({"from_examples": examples, **current})
    return history


def _read_checkpoint(path: Path) -> tuple[dict, Weights, dict]:
    """``(meta, weights, state arrays)`` of a checkpoint, or a ValueError naming the file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            weights = Weights.from_arrays({k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("weights/")})
            state = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("state/")}
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"checkpoint {path} is unreadable or corrupt: {err}") from None
    return meta, weights, state


def training_arrays(params: ModelParameters, train_set, test_set, test_examples: int):
    """Validated ``(images, labels, test_images, test_labels)``; the test set cut to ``test_examples``."""
    from ..datasets import validate_dataset

    net = params.network
    images, labels = validate_dataset(train_set.images, train_set.labels, n_input=net.n_input,
                                      n_classes=net.n_output)
    t_images, t_labels = validate_dataset(test_set.images, test_set.labels, n_input=net.n_input,
                                          n_classes=net.n_output)
    n_test = min(int(test_examples), len(t_labels))
    return images, labels, t_images[:n_test], t_labels[:n_test]


def train_rate(params: ModelParameters, train_set, test_set, output_dir, n_examples: int, seed: int = 0,
               test_examples: int = 10000, test_every: int | None = None, initial_test: bool = False) -> dict:
    """Train the rate abstraction like :class:`Trainer` trains the spiking network.

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
    """
    from ..model import initial_weights
    from ..rate import RateNetwork

    output_dir = check_output_dir(output_dir)
    images, labels, t_images, t_labels = training_arrays(params, train_set, test_set, test_examples)
    n_test = len(t_labels)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xD2]))
    started_versions = versions()
    code_history = [{"from_examples": 0, **started_versions}]
    history = []
    done, epoch, offset, secs = 0, 0, 0, 0.0
    path = output_dir / CHECKPOINT
    if path.exists():
        meta, weights, _ = _read_checkpoint(path)
        saved = ModelParameters.from_toml(meta["params"], source=f"{path} (meta)")
        if saved != params or meta.get("kind") != "rate":
            raise ValueError(f"checkpoint {path} was written for another run ({meta.get('kind', 'spiking')} "
                             f"training of {saved.name}); use another output directory or the same model")
        if meta["seed"] != seed or meta["test_every"] != test_every or meta["examples"] > n_examples:
            raise ValueError(f"checkpoint {path} has seed {meta['seed']}, test_every {meta['test_every']} and "
                             f"{meta['examples']} examples; this run asks for seed {seed}, test_every {test_every} "
                             f"and {n_examples} examples: the first two must match and it cannot train fewer")
        rng.bit_generator.state = meta["rng_state"]
        done, epoch, offset, secs = meta["examples"], meta["epoch"], meta["offset"], meta["train_seconds"]
        history = meta["history"]
        code_history = _resumed_code_history(meta, started_versions, done)
        logger.info(f"resumed rate training from {path} after {done} examples")
    else:
        weights = initial_weights(params, np.random.default_rng(np.random.SeedSequence([seed, 0xD1])))
    net = RateNetwork(params, weights, rng=rng)
    net.examples_seen = done

    def test(done):
        t0 = time.perf_counter()
        err = net.test_error(t_images, t_labels)
        history.append({"examples": done, "test_error": float(err), "test_images": n_test,
                        "test_seconds": time.perf_counter() - t0})

    def checkpoint():
        arrays = {f"weights/{k}": v for k, v in net.weights.to_arrays().items()}
        meta = {"kind": "rate", "examples": done, "epoch": epoch, "offset": offset, "train_seconds": secs,
                "history": history, "seed": seed, "test_every": test_every, "params": params.to_toml(),
                "rng_state": rng.bit_generator.state, "code_history": code_history}
        arrays["meta"] = np.array(json.dumps(meta, default=json_default))
        save_npz_atomic(path, arrays)

    if initial_test and done == 0:
        test(0)
    while done < n_examples:
        order = np.random.default_rng(np.random.SeedSequence([seed, 0xE0, epoch])).permutation(len(labels))
        take = order[: min(len(order), offset + n_examples - done)]
        step = test_every or len(take)
        while offset < len(take):
            idx = take[offset : offset + step]
            t0 = time.perf_counter()
            net.train(images[idx], labels[idx])
            secs += time.perf_counter() - t0
            done += len(idx)
            offset += len(idx)
            if offset >= len(order):
                epoch, offset = epoch + 1, 0
            test(done)
            checkpoint()
            if offset == 0:
                break
    if not history or history[-1]["examples"] != done:
        test(done)
    net.weights.save(output_dir / FINAL_WEIGHTS)
    summary = {
        "model": params.name, "kind": "rate", "target": "numpy", "seed": seed, "chunk_size": None,
        "examples_trained": done, "epochs_completed": done / len(labels), "train_seconds": secs,
        "ms_per_example": 1000 * secs / done if done else None, "ms_per_example_median_chunk": None,
        "test_history": history, "final_test_error": history[-1]["test_error"],
        "parameters": params.to_dict(), "versions": started_versions, "code_history": code_history,
    }
    write_json_atomic(output_dir / SUMMARY, summary)
    return summary

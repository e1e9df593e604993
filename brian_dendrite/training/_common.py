"""What the training loops share: the files of a run directory, checkpoints, data and seeds.

The spiking :class:`~brian_dendrite.training.trainer.Trainer`,
:func:`~brian_dendrite.training.rate_training.train_rate` and
:func:`~brian_dendrite.training.mean_field.train_mean_field` train on the same
example order from the same initial weights (specification 1.12), so that their runs
can be compared on one configuration; the random streams that make this so are
drawn here, once.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..datasets import validate_dataset
from ..model import ModelParameters, Weights, initial_weights
from ..provenance import json_default, save_npz_atomic

#: Checkpoint of the spiking and the rate training (weights, state and progress; ``meta`` as JSON).
CHECKPOINT = "checkpoint.npz"
#: Summary of a finished run: test errors over training, throughput, parameters, seed, versions.
SUMMARY = "summary.json"
#: The final weights of a run.
FINAL_WEIGHTS = "weights.npz"

# Seeds of the random streams, mixed with the run's seed by SeedSequence. Changing one changes every
# result of every run, so they are constants of the file formats as much as of the code.
_INITIAL_WEIGHTS = 0xD1
_EXAMPLE_ORDER = 0xE0


def check_output_dir(path) -> Path:
    """Create *path* if needed and check that files can be written there.

    Temporary files that an interrupted write of a run file left behind (a process
    killed while it wrote ``.checkpoint.npz.*.tmp.npz``; the file under the final
    name is the previous, complete one) are removed.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as err:
        raise ValueError(f"output directory {path} is not writable: {err}") from None
    for name in (CHECKPOINT, SUMMARY, FINAL_WEIGHTS, "mean_field_checkpoint.npz"):
        for stale in path.glob(f".{name}.*.tmp*"):
            stale.unlink(missing_ok=True)
    return path


def check_test_options(test_examples: int, test_every: int | None) -> None:
    """ValueError unless ``test_examples >= 0`` (0: the run is not tested) and ``test_every`` is None or >= 0."""
    if int(test_examples) < 0:
        raise ValueError(f"test_examples = {test_examples}: expected 0 or more (0: no tests)")
    if test_every is not None and int(test_every) < 0:
        raise ValueError(f"test_every = {test_every}: expected 0 or more (0 or None: a test only at the end)")


def final_test_error(history: list[dict], examples: int) -> float | None:
    """The test error of the final weights: the last test's if it was made after ``examples`` examples, else None."""
    if history and history[-1]["examples"] == examples:
        return history[-1]["test_error"]
    return None


def training_arrays(params: ModelParameters, train_set, test_set, test_examples: int):
    """Validated ``(images, labels, test_images, test_labels)``; the test set cut to ``test_examples``.

    ``test_examples = 0`` gives empty test arrays (a run without tests).
    """
    check_test_options(test_examples, None)
    net = params.network
    images, labels = validate_dataset(train_set.images, train_set.labels, n_input=net.n_input,
                                      n_classes=net.n_output)
    t_images, t_labels = validate_dataset(test_set.images, test_set.labels, n_input=net.n_input,
                                          n_classes=net.n_output)
    n_test = min(int(test_examples), len(t_labels))
    return images, labels, t_images[:n_test], t_labels[:n_test]


def example_order(seed: int, epoch: int, n_train: int) -> np.ndarray:
    """The order of the training examples in ``epoch``: a permutation seeded by ``(seed, epoch)``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, _EXAMPLE_ORDER, epoch]))
    return rng.permutation(n_train)


def seeded_initial_weights(params: ModelParameters, seed: int) -> Weights:
    """The initial weights of a run with ``seed`` (specification 1.11), the same for every kind of training."""
    return initial_weights(params, np.random.default_rng(np.random.SeedSequence([seed, _INITIAL_WEIGHTS])))


def save_checkpoint(path: Path, weights: Weights, meta: dict, arrays: dict | None = None) -> None:
    """Write ``weights``, further named ``arrays`` and ``meta`` (as JSON) to ``path`` atomically."""
    out = {f"weights/{k}": v for k, v in weights.to_arrays().items()}
    out.update(arrays or {})
    out["meta"] = np.array(json.dumps(meta, default=json_default))
    save_npz_atomic(path, out)


def save_weights(path: Path, weights: Weights) -> None:
    """Write the final ``weights`` to ``path`` atomically (the layout of :meth:`Weights.save`).

    A failed write raises an OSError naming ``path``; a previous file there is left intact.
    """
    save_npz_atomic(path, weights.to_arrays())


def read_checkpoint(path: Path) -> tuple[dict, Weights, dict]:
    """``(meta, weights, state arrays)`` of a checkpoint, or a ValueError naming the file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            weights = Weights.from_arrays({k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("weights/")})
            state = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("state/")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"checkpoint {path} is unreadable or corrupt ({type(err).__name__}: {err}); "
                         "move it away to start again") from None
    return meta, weights, state


def resumed_code_history(meta: dict, current: dict, examples: int) -> list[dict]:
    """A checkpoint's ``code_history``, extended by ``current`` if other code resumes it."""
    previous = meta.get("code_history") or [
        {"from_examples": 0, "git_commit": None, "note": "checkpoint written before code provenance was kept"}]
    history = list(previous)
    last = {k: v for k, v in previous[-1].items() if k != "from_examples"}
    if last != current:
        history.append({"from_examples": examples, **current})
    return history

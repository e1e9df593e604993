"""Training runs on MNIST: the spiking network, its rate abstraction and its mean-field twin.

One training loop per kind of network, each with checkpoints from which an
interrupted run resumes to the same result as an uninterrupted one:

* :class:`Trainer` trains the spiking
  :class:`~brian_dendrite.simulation.SpikingNetwork` online (specification 1.12), in
  chunks of one Brian2 ``run()`` each, testing every ``test_every`` examples.
* :func:`train_rate` trains the rate abstraction
  (:class:`~brian_dendrite.rate.RateNetwork`, steady states instead of phases).
* :func:`train_mean_field` trains the noise-free mean-field twin of the spiking
  protocol (:class:`~brian_dendrite.validation.MeanFieldNetwork`, every spike
  replaced by its probability).

All three start from the same initial weights (``SeedSequence([seed, 0xD1])``)
and present the examples in the same order (a permutation per epoch from
``SeedSequence([seed, 0xE0, epoch])``), so their runs on one configuration can be
compared: spiking against mean-field isolates the spike noise, mean-field against
rate isolates the protocol.

Files of a run directory
------------------------
``checkpoint.npz`` (:data:`CHECKPOINT`; ``mean_field_checkpoint.npz`` for the
twin) holds the weights, the state and the progress, written atomically after
every chunk or test; ``weights.npz`` (:data:`FINAL_WEIGHTS`) the final weights;
``summary.json`` (:data:`SUMMARY`) the test errors over training, the throughput,
the parameters, the seed and the versions of the code that ran (with
``code_history`` when other code resumed the run).

Command-line options
--------------------
:func:`add_training_arguments` adds the options of a training run to an
argparse parser: those of ``brian-dendrite train`` (one run) or of
``brian-dendrite sweep`` (a grid of models x seeds, see :mod:`brian_dendrite.sweeps`).
"""

from ._common import CHECKPOINT, FINAL_WEIGHTS, SUMMARY
from .mean_field import train_mean_field
from .options import add_training_arguments, parse_models, parse_seeds
from .rate_training import train_rate
from .trainer import Trainer

__all__ = [
    "CHECKPOINT", "FINAL_WEIGHTS", "SUMMARY",
    "Trainer", "train_mean_field", "train_rate",
    "add_training_arguments", "parse_models", "parse_seeds",
]

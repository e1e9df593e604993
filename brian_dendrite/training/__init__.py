"""Training runs: the spiking network, its rate abstraction and its mean-field twin, with checkpoints."""

from .mean_field import train_mean_field
from .trainer import Trainer, train_rate

__all__ = ["Trainer", "train_mean_field", "train_rate"]

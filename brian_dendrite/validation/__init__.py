"""Validation: the spiking network against its rate abstraction, with stated tolerances."""

from .core import (
    TIERS,
    MeanFieldNetwork,
    TierConfig,
    bernoulli_fano,
    bernoulli_isi_cv,
    learning_agreement,
    measure_examples,
    measure_learning,
    measure_rates,
    measure_spike_statistics,
    plateau_agreement,
    rate_agreement,
    run_validation,
    spike_statistics,
    stationary_noise,
    update_agreement,
)
from .settling import settling_fidelity

__all__ = [
    "TIERS", "MeanFieldNetwork", "TierConfig", "bernoulli_fano", "bernoulli_isi_cv", "learning_agreement",
    "measure_examples", "measure_learning", "measure_rates", "measure_spike_statistics", "plateau_agreement",
    "rate_agreement", "run_validation", "settling_fidelity", "spike_statistics", "stationary_noise",
    "update_agreement",
]

"""The rate abstraction: the same network with spikes replaced by rates at their steady states."""

from .network import ConvergenceError, LayerState, RateNetwork, sigma, sigma_prime

__all__ = ["ConvergenceError", "LayerState", "RateNetwork", "sigma", "sigma_prime"]

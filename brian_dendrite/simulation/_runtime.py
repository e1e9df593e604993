"""The runtime devices (numpy or Cython): weights, state and runs read and written in place (internal).

Every chunk or test block is one ``Network.run()``; its schedule and images are
swapped into the groups' namespaces as ``TimedArray`` s of the same shapes, so the
generated code is cached between runs (BRIAN2-NOTES.md item 1). The target is
``brian2.prefs.codegen.target``.
"""

from __future__ import annotations

import brian2
import numpy as np
from brian2 import TimedArray, ms

from ..model import ModelParameters, Weights
from ._build import InitialState, NetworkObjects, feedback_matrices, flat_weights, weight_matrix

__all__ = ["RuntimeAdapter"]


class RuntimeAdapter:
    """Weights, state and runs of a network on a runtime device.

    The counterpart of :class:`~brian_dendrite.simulation._standalone.StandaloneAdapter`,
    with the same methods; here they read and write the Brian2 variables directly.

    Parameters
    ----------
    objects : NetworkObjects
    params : ModelParameters
    profile : bool
        Time every code object of every run (Brian2 ``profile=True``).
    """

    def __init__(self, objects: NetworkObjects, params: ModelParameters, profile: bool):
        self._objects = objects
        self._params = params
        self._profile = profile

    def initialize(self, initial: InitialState) -> None:
        """Write *initial* into the groups; check the synapse order that weight matrices rely on."""
        objects = self._objects
        if initial.feedback_noise is not None:
            objects.forward_synapses[-1].y_noise[:] = initial.feedback_noise
        for hid in objects.hidden:
            if hid.name in initial.plateau_offset:
                hid.plateau_offset = initial.plateau_offset[hid.name]
        for g in objects.layers:
            g.spike_u = initial.spike_u[g.name]
        self._check_connectivity_order()

    def _check_connectivity_order(self) -> None:
        """``w`` is stored in presynaptic-major order for all-to-all connect(); rely on it, but verify."""
        for syn in self._objects.forward_synapses + self._objects.feedback_synapses:
            n_post = len(syn.target)
            i, j = np.asarray(syn.i[:]), np.asarray(syn.j[:])
            k = np.arange(len(i))
            if not (np.array_equal(i, k // n_post) and np.array_equal(j, k % n_post)):
                raise RuntimeError(f"unexpected synapse order in {syn.name}")

    # ------------------------------------------------------------------ weights and state
    def write_weights(self, weights: Weights) -> None:
        """Write ``W``, ``b``, ``Y`` and ``c`` into the synapses and groups."""
        objects = self._objects
        for syn, W in zip(objects.forward_synapses, weights.W, strict=True):
            syn.w[:] = flat_weights(W)
        for group, b in zip(objects.layers[1:], weights.b, strict=True):
            group.b_basal[:] = np.asarray(b, dtype=float)
        for fb, Y in zip(objects.feedback_synapses, feedback_matrices(self._params, weights), strict=True):
            # Y^m is (n_hidden_m, n_output); synapses go output -> hidden.
            fb.w[:] = flat_weights(Y)
        for hid, c in zip(objects.hidden, weights.c, strict=True):
            hid.c_apical[:] = np.asarray(c, dtype=float)

    def read_weights(self) -> tuple[list, list]:
        """The current forward weights ``W`` and biases ``b`` (copies)."""
        W = [weight_matrix(syn) for syn in self._objects.forward_synapses]
        b = [np.asarray(g.b_basal[:]).copy() for g in self._objects.layers[1:]]
        return W, b

    def feedback_noise(self, shape: tuple) -> np.ndarray:
        """The current noise of noisy-symmetric feedback as a (n_pre, n_post) array."""
        return np.asarray(self._objects.forward_synapses[-1].y_noise[:]).reshape(shape).copy()

    def read_state(self) -> dict:
        """Every writable per-neuron variable, ``'layer.variable' -> array`` (copies)."""
        state = {}
        for group in self._objects.layers:
            for name, value in group.get_states(units=False, read_only_variables=False).items():
                state[f"{group.name}.{name}"] = np.asarray(value).copy()
        return state

    def write_state(self, state: dict) -> None:
        """Set the variables named ``'layer.variable'``."""
        for group in self._objects.layers:
            values = {k.split(".", 1)[1]: v for k, v in state.items() if k.split(".", 1)[0] == group.name}
            if values:
                group.set_states(values, units=False)

    # ------------------------------------------------------------------ running
    def run(self, schedule, images: np.ndarray, seed: int, report=None) -> dict[str, float]:
        """One ``Network.run()`` of *schedule* on *images*, Brian2's random numbers seeded with *seed*.

        Returns the seconds per code object of this run (empty without profiling).
        """
        objects = self._objects
        arrays = schedule.timed_arrays()
        for group in objects.layers:
            group.namespace.update(arrays)
        objects.input.namespace["images"] = TimedArray(images, dt=1 * ms, name="images")
        brian2.seed(seed)
        objects.network.t_ = 0.0
        objects.network.run(schedule.duration, report=report, namespace={}, profile=self._profile)
        if not self._profile:
            return {}
        return {name: float(seconds) for name, seconds in objects.network.profiling_info}

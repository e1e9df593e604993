"""Weight initialisation and feedback weights (specification sections 1.5, 1.11 and 1.13).

The forward weights ``W``, biases ``b``, broadcast feedback weights ``Y`` and the
optional feedback biases ``c`` of a network are held in a :class:`Weights`
object, shared by the rate-based model (:mod:`brian_dendrite.rate.network`) and the
spiking network. Layers are ordered bottom to top: ``W[0]`` maps the input to
the first hidden layer, ``W[-1]`` the top hidden layer (or the input, without
hidden layers) to the output layer. ``W[l]`` has shape ``(n_post, n_pre)`` so
that the basal potential is ``B = W @ s + b``. ``Y[h]`` (shape
``(n_hidden_h, n_output)``) carries the output layer's activity to the apical
compartment of hidden layer ``h`` (broadcast feedback, specification 1.5).

Units: rates are in spikes/ms (``phi_max = 0.2``), potentials and weights are
dimensionless (specification section 5, item 1).

Initialisation schemes (``NetworkParameters.init``)
---------------------------------------------------
``"paper"`` (the code cited by the paper, 23f2c66; the default)
    ``W = W_avg + 3.465 W_sd (U[0,1) - 0.5)`` (sd ``W_sd``),
    ``b = b_avg + 3.465 b_sd (U - 0.5)``; the broadcast feedback is built top
    down, ``Y^{top} = I`` conceptually and ``Y^{h} = R^{h} @ Y^{h+1}`` with
    ``R^{h} = 3.465 W_sd(N) (U - 0.5)`` of shape ``(n_h, n_{h+1})`` and ``N``
    the fan-in of the layer above ``h`` (``n_h``). With one hidden layer ``Y``
    is therefore zero-mean uniform with the spread of the output weights; with
    two, ``Y^0 = R(500x100, sd 0.632) @ Y^1`` is a product of random matrices.
``"head"`` (later code, d60ca5e onward)
    ``W = W_avg + 3.465 W_sd U(-1, 1)`` (sd ``2 W_sd``; the factor 3.465 was
    calibrated for ``U(-0.5, 0.5)``), biases likewise, and independent,
    nonzero-mean ``Y^h = W_avg(N) + 3.465 W_sd(N) U(-1, 1)`` with ``N`` the
    fan-in of the layer above ``h``.

Random-number order (documented so that a construction can be reproduced from a
seed): the weight layers are visited from the top (output) down; for each layer
``l`` the generator draws ``W[l]`` (``rng.random((n_post, n_pre))``), then
``b[l]`` (``rng.random(n_post)``), then, if there is a hidden layer ``h = l-1``
below, its feedback matrix (``rng.random((n_h, n_{h+1}))`` for "paper",
``rng.random((n_h, n_output))`` for "head") and, with ``feedback_bias``, the
bias vector (``rng.random(n_output)``). After all layers: the sparse masks
(hidden layers bottom to top) or the symmetric-feedback noise.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from brian2 import ms

from .parameters import ModelParameters, NetworkParameters

__all__ = [
    "Weights",
    "weight_statistics",
    "initial_weights",
    "symmetric_feedback",
    "sparse_mask",
    "UNIFORM_SD_FACTOR",
]

#: The published code's uniform spread factor, ~2*sqrt(3): ``3.465*(U[0,1) - 0.5)`` has sd ~1.
UNIFORM_SD_FACTOR = 3.465

#: The slope of ``phi = phi_max*sigma(V)`` at 0 with ``phi_max = 0.2`` spikes/ms (specification 1.11).
_NU_PAPER = 0.05

_FORMAT_VERSION = 1


# --------------------------------------------------------------------------------------------------
# The container
# --------------------------------------------------------------------------------------------------


@dataclass
class Weights:
    """All plastic and fixed weights of a network.

    Attributes
    ----------
    W : list of ndarray
        Forward weights, one per weight layer bottom to top, ``W[l]`` of shape
        ``(n_post, n_pre)``.
    b : list of ndarray
        Biases of the basal (hidden) or dendritic (output) potential, ``(n_post,)``.
    Y : list of ndarray
        Broadcast feedback weights, one per hidden layer, ``(n_hidden_h, n_output)``.
    c : list of ndarray
        Feedback (apical) biases per hidden layer, ``(n_hidden_h,)``; zeros unless
        ``NetworkParameters.feedback_bias`` (specification section 5, item 10).
    Y_mask : list of (ndarray of bool or None)
        For sparse feedback, the mask of the surviving feedback weights of each
        hidden layer (same shape as ``Y[h]``); ``None`` otherwise.
    """

    W: list[np.ndarray]
    b: list[np.ndarray]
    Y: list[np.ndarray] = field(default_factory=list)
    c: list[np.ndarray] = field(default_factory=list)
    Y_mask: list[np.ndarray | None] = field(default_factory=list)

    def __post_init__(self):
        self.W = [np.asarray(w, dtype=float) for w in self.W]
        self.b = [np.asarray(v, dtype=float) for v in self.b]
        self.Y = [np.asarray(y, dtype=float) for y in self.Y]
        n_hidden = max(len(self.W) - 1, 0)
        if not self.c:
            self.c = [np.zeros(y.shape[0]) for y in self.Y]
        else:
            self.c = [np.asarray(v, dtype=float) for v in self.c]
        if not self.Y_mask:
            self.Y_mask = [None] * len(self.Y)
        else:
            self.Y_mask = [None if m is None else np.asarray(m, dtype=bool) for m in self.Y_mask]
        if len(self.W) == 0:
            raise ValueError("Weights: at least one weight layer is needed")
        for name, seq, expected in (
            ("b", self.b, len(self.W)),
            ("Y", self.Y, n_hidden),
            ("c", self.c, n_hidden),
            ("Y_mask", self.Y_mask, n_hidden),
        ):
            if len(seq) != expected:
                raise ValueError(
                    f"Weights: {len(self.W)} weight layers ({n_hidden} hidden layers) need "
                    f"{expected} arrays in {name}, got {len(seq)}"
                )
        self.check_shapes()

    # ------------------------------------------------------------------
    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """All layer sizes, input first, output last."""
        return (int(self.W[0].shape[1]), *(int(w.shape[0]) for w in self.W))

    def expected_shapes(self, layer_sizes=None) -> dict[str, tuple[int, ...]]:
        """Array name (``"W[0]"``, ``"Y_mask[1]"`` ...) -> shape for the given (default: own) layer sizes."""
        sizes = tuple(self.layer_sizes if layer_sizes is None else layer_sizes)
        shapes = _shapes_for(sizes)
        shapes.update({f"Y_mask[{h}]": (sizes[h + 1], sizes[-1]) for h in range(len(sizes) - 2)})
        return shapes

    def _arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for lay, (w, v) in enumerate(zip(self.W, self.b, strict=True)):
            out[f"W[{lay}]"] = w
            out[f"b[{lay}]"] = v
        for h, (y, v, m) in enumerate(zip(self.Y, self.c, self.Y_mask, strict=True)):
            out[f"Y[{h}]"] = y
            out[f"c[{h}]"] = v
            if m is not None:
                out[f"Y_mask[{h}]"] = m
        return out

    def check_shapes(self, layer_sizes=None) -> None:
        """Raise ValueError if an array does not have the shape implied by ``layer_sizes``.

        Without ``layer_sizes`` the sizes implied by ``W`` are used (internal
        consistency). The message names the array and both shapes.
        """
        sizes = self.layer_sizes if layer_sizes is None else tuple(int(n) for n in layer_sizes)
        if len(sizes) != len(self.W) + 1:
            raise ValueError(
                f"Weights have {len(self.W)} weight layers (layer sizes {self.layer_sizes}) but the "
                f"parameters describe {len(sizes) - 1} (layer sizes {sizes})"
            )
        expected = self.expected_shapes(sizes)
        for name, arr in self._arrays().items():
            if arr.shape != expected[name]:
                raise ValueError(
                    f"Weights: {name} has shape {arr.shape}, expected {expected[name]} "
                    f"for layer sizes {sizes}"
                )

    def check_finite(self) -> None:
        """Raise ValueError naming the first array that contains NaN or infinity."""
        for name, arr in self._arrays().items():
            if arr.dtype != bool and not np.all(np.isfinite(arr)):
                bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
                raise ValueError(f"Weights: {name} contains {bad} non-finite values (NaN or inf)")

    def copy(self) -> Weights:
        """A deep copy."""
        return Weights(
            W=[w.copy() for w in self.W],
            b=[v.copy() for v in self.b],
            Y=[y.copy() for y in self.Y],
            c=[v.copy() for v in self.c],
            Y_mask=[None if m is None else m.copy() for m in self.Y_mask],
        )

    # ------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat ``name -> array`` mapping (the ``.npz`` layout, see :meth:`from_arrays`).

        Keys: ``format_version``, ``layer_sizes``, ``W_<l>``, ``b_<l>`` per weight
        layer, ``Y_<h>``, ``c_<h>`` per hidden layer and ``Y_mask_<h>`` for the
        hidden layers that have a sparse-feedback mask.
        """
        arrays: dict[str, np.ndarray] = {
            "format_version": np.array(_FORMAT_VERSION),
            "layer_sizes": np.array(self.layer_sizes, dtype=np.int64),
        }
        # "W[0]" (the names used in messages) -> "W_0" (the file keys)
        arrays.update({name.replace("[", "_").rstrip("]"): arr for name, arr in self._arrays().items()})
        return arrays

    @classmethod
    def from_arrays(
        cls,
        arrays,
        params: ModelParameters | NetworkParameters | None = None,
        source: str = "weights",
    ) -> Weights:
        """Rebuild weights from a :meth:`to_arrays` mapping (or an open ``.npz``).

        Parameters
        ----------
        arrays : mapping of str to array
        params : ModelParameters or NetworkParameters, optional
            If given, every array's shape is checked against ``network.layer_sizes``.
        source : str
            Named in error messages (e.g. the file).

        Raises
        ------
        ValueError
            Missing arrays, shapes that do not match ``params`` (the message names
            the array and both shapes) or each other, non-finite values.
        """
        if "layer_sizes" not in arrays:
            raise ValueError(f"{source}: no 'layer_sizes' entry, not a brian_dendrite weights file")
        sizes = tuple(int(n) for n in np.asarray(arrays["layer_sizes"]).ravel())
        n_layers = len(sizes) - 1
        if n_layers < 1:
            raise ValueError(f"{source}: invalid layer sizes {sizes}")
        try:
            W = [np.asarray(arrays[f"W_{lay}"]) for lay in range(n_layers)]
            b = [np.asarray(arrays[f"b_{lay}"]) for lay in range(n_layers)]
            Y = [np.asarray(arrays[f"Y_{h}"]) for h in range(n_layers - 1)]
            c = [np.asarray(arrays[f"c_{h}"]) for h in range(n_layers - 1)]
        except KeyError as err:
            raise ValueError(f"{source}: missing array {err.args[0]!r}") from None
        masks = [
            np.asarray(arrays[f"Y_mask_{h}"]) if f"Y_mask_{h}" in arrays else None
            for h in range(n_layers - 1)
        ]
        if params is not None:
            network = params.network if isinstance(params, ModelParameters) else params
            expected = tuple(network.layer_sizes)
            if len(expected) != len(sizes):
                raise ValueError(
                    f"{source} holds a network with layer sizes {sizes}, the parameters describe {expected}"
                )
            probe = {f"W[{lay}]": W[lay] for lay in range(n_layers)}
            probe.update({f"b[{lay}]": b[lay] for lay in range(n_layers)})
            probe.update({f"Y[{h}]": Y[h] for h in range(n_layers - 1)})
            probe.update({f"c[{h}]": c[h] for h in range(n_layers - 1)})
            shapes = _shapes_for(expected)
            for name, arr in probe.items():
                if arr.shape != shapes[name]:
                    raise ValueError(
                        f"{source}: {name} has shape {arr.shape}, expected {shapes[name]} "
                        f"for network.layer_sizes = {expected}"
                    )
        try:
            weights = cls(W=W, b=b, Y=Y, c=c, Y_mask=masks)
            weights.check_finite()
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None
        return weights

    def save(self, path) -> Path:
        """Write the weights to an ``.npz`` file, atomically.

        The archive (layout: :meth:`to_arrays`) is first written to a temporary
        file in the destination directory, flushed to disk and then renamed over
        ``path`` with :func:`os.replace`, so a crash never leaves a truncated file
        under ``path``. ``path`` is used exactly as given (no ``.npz`` is appended).

        Returns
        -------
        Path
            The path written.
        """
        path = Path(path)
        directory = path.parent if str(path.parent) else Path(".")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **self.to_arrays())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return path

    @classmethod
    def load(cls, path, params: ModelParameters | NetworkParameters | None = None) -> Weights:
        """Read weights written by :meth:`save`.

        Training checkpoints whose entries carry a ``weights/`` prefix (the
        layout of :meth:`to_arrays` under that prefix) are accepted too.

        Parameters
        ----------
        path : str or Path
        params : ModelParameters or NetworkParameters, optional
            If given, every array's shape is checked against
            ``network.layer_sizes``.

        Raises
        ------
        ValueError
            Missing or unreadable file, missing arrays, shapes that do not match
            ``params`` (the message names the array and both shapes), or
            non-finite values.
        """
        path = Path(path)
        if path.is_dir():
            raise ValueError(f"weights file {path} is a directory, not a .npz file")
        if not path.is_file():
            raise ValueError(f"weights file {path} does not exist")
        if not os.access(path, os.R_OK):
            raise ValueError(f"weights file {path} is not readable (permission denied)")
        if not zipfile.is_zipfile(path):
            # np.load would try it as a .npy or a pickle, and its message would speak of those
            raise ValueError(f"weights file {path} is not a .npz archive (not a zip file)")
        try:
            with np.load(path, allow_pickle=False) as data:
                if "layer_sizes" not in data.files and "weights/layer_sizes" in data.files:
                    arrays = {k[len("weights/") :]: data[k] for k in data.files if k.startswith("weights/")}
                else:
                    arrays = {key: data[key] for key in data.files}
        except Exception as err:  # zipfile.BadZipFile, OSError, ValueError, EOFError ...
            raise ValueError(f"weights file {path} is not a readable .npz weights archive: {err}") from None
        return cls.from_arrays(arrays, params, source=f"weights file {path}")


def _shapes_for(sizes) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for lay in range(len(sizes) - 1):
        shapes[f"W[{lay}]"] = (sizes[lay + 1], sizes[lay])
        shapes[f"b[{lay}]"] = (sizes[lay + 1],)
    for h in range(len(sizes) - 2):
        shapes[f"Y[{h}]"] = (sizes[h + 1], sizes[-1])
        shapes[f"c[{h}]"] = (sizes[h + 1],)
    return shapes


# --------------------------------------------------------------------------------------------------
# Statistics and initialisation
# --------------------------------------------------------------------------------------------------


def weight_statistics(n_fan_in: int, network: NetworkParameters | None = None, nu: float | None = None):
    """Mean and spread of the initial weights of a layer with fan-in ``n_fan_in`` (specification 1.11).

    The published code's "weight optimisation": with presynaptic rates
    approximated as ``nu * V_pre`` (i.i.d. ``V_pre`` of mean ``V_avg``, sd
    ``V_sd``), choose the weight mean and spread that give dendritic potentials
    of mean ``V_avg`` and sd ``V_sd``::

        W_avg = (V_avg - b_avg) / (nu N V_avg)
        W_sm  = [V_sm + nu^2 (N - N^2) W_avg^2 V_avg^2 - 2 N nu b_avg V_avg W_avg - b_avg^2] / (N nu^2 V_sm)
        W_sd  = sqrt(W_sm - W_avg^2),      V_sm = V_sd^2 + V_avg^2

    Parameters
    ----------
    n_fan_in : int
        Number of presynaptic neurons ``N``.
    network : NetworkParameters, optional
        Supplies ``V_avg = init_V_mean``, ``V_sd = init_V_sd`` and
        ``b_avg = init_bias_mean`` (defaults: the paper's 3, 3, 0.8).
    nu : float, optional
        Slope of the rate function at 0 in spikes/ms, ``phi_max/4``; default
        0.05 (``phi_max = 0.2`` spikes/ms). :func:`initial_weights` passes
        ``cell.phi_max/4``.

    Returns
    -------
    (float, float)
        ``(W_avg, W_sd)``. Reproduces the specification table: N = 784 -> (0.018707,
        0.504903); 500 -> (0.029333, 0.632115); 100 -> (0.146667, 1.410406).

    Raises
    ------
    ValueError
        If ``n_fan_in < 1`` or the statistics give a negative variance (possible
        for unusual ``init_*`` values).
    """
    if network is None:
        network = NetworkParameters()
    if nu is None:
        nu = _NU_PAPER
    n = int(n_fan_in)
    if n < 1:
        raise ValueError(f"weight_statistics: fan-in must be >= 1, got {n_fan_in}")
    V_avg, V_sd, b_avg = float(network.init_V_mean), float(network.init_V_sd), float(network.init_bias_mean)
    if V_avg == 0:
        raise ValueError("weight_statistics: init_V_mean = 0 makes W_avg undefined")
    V_sm = V_sd**2 + V_avg**2
    W_avg = (V_avg - b_avg) / (nu * n * V_avg)
    W_sm = (
        V_sm + nu**2 * (n - n**2) * W_avg**2 * V_avg**2 - 2 * n * nu * b_avg * V_avg * W_avg - b_avg**2
    ) / (n * nu**2 * V_sm)
    var = W_sm - W_avg**2
    if var < 0:
        raise ValueError(
            f"weight_statistics: negative weight variance {var:.3g} for fan-in {n} with "
            f"init_V_mean={V_avg}, init_V_sd={V_sd}, init_bias_mean={b_avg}"
        )
    return float(W_avg), float(np.sqrt(var))


def _nu(params: ModelParameters) -> float:
    return float(params.cell.phi_max * ms) / 4.0


def sparse_mask(shape, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of survivors with exactly ``round(fraction*size)`` entries silenced.

    The silenced entries are a uniformly random subset (without replacement) of
    the matrix, as "zero a random 80 % of each Y" (specification 1.13) reads; the
    number is exact rather than binomial.
    """
    size = int(np.prod(shape))
    n_off = int(round(float(fraction) * size))
    mask = np.ones(size, dtype=bool)
    if n_off:
        mask[rng.choice(size, size=n_off, replace=False)] = False
    return mask.reshape(shape)


def symmetric_feedback(
    W: list[np.ndarray],
    network: NetworkParameters,
    rng: np.random.Generator | None = None,
    mask: list[np.ndarray | None] | None = None,
) -> list[np.ndarray]:
    """Symmetric broadcast feedback recomputed from the current forward weights (specification 1.13).

    ``Y^{top} = W[-1].T`` and, for deeper hidden layers, ``Y^h = W[h+1].T @ Y^{h+1}``
    (the product is taken over the noise-free matrices).

    With ``network.feedback == "noisy_symmetric"`` independent Gaussian noise of
    sd ``network.symmetric_noise`` (the code's sd, the paper's "variance") is
    added to every entry of every ``Y^h`` after the product; it is drawn from
    ``rng``, which is then required. The published code redraws it at every
    example: call this function after every update with the same generator.

    If ``mask`` is given (sparse feedback), the result is multiplied by each
    hidden layer's survivor mask and by ``network.sparse_gain`` after the
    noise, as the code re-applies the mask and gain after every recompute
    (specification section 5, item 15).

    Returns
    -------
    list of ndarray
        One ``(n_hidden_h, n_output)`` matrix per hidden layer (empty without hidden layers).
    """
    n_hidden = len(W) - 1
    Y: list[np.ndarray] = [None] * n_hidden  # type: ignore[list-item]
    upper = None
    for h in range(n_hidden - 1, -1, -1):
        upper = W[h + 1].T.copy() if upper is None else W[h + 1].T @ upper
        Y[h] = upper
    if network.feedback == "noisy_symmetric" and network.symmetric_noise > 0:
        if rng is None:
            raise ValueError("symmetric_feedback: feedback='noisy_symmetric' needs a random generator (rng)")
        Y = [y + rng.normal(0.0, network.symmetric_noise, size=y.shape) for y in Y]
    if mask is not None:
        if len(mask) != n_hidden:
            raise ValueError(f"symmetric_feedback: {len(mask)} masks given for {n_hidden} hidden layers")
        Y = [y if m is None else y * m * network.sparse_gain for y, m in zip(Y, mask, strict=True)]
    return Y


def initial_weights(params: ModelParameters, rng: np.random.Generator) -> Weights:
    """Initial weights of the network described by ``params`` (specification 1.11, 1.13).

    Parameters
    ----------
    params : ModelParameters
    rng : numpy.random.Generator
        All random numbers are drawn from it, in the order given in the module docstring.

    Returns
    -------
    Weights

    Notes
    -----
    Decisions:

    * ``network.init == "paper"``: uniform ``U[0,1) - 0.5`` scaled by 3.465
      (sd ``W_sd``); ``Y`` built top down as a product of random matrices (see
      the module docstring). ``"head"``: ``U(-1, 1)`` scaled by 3.465 (sd
      ``2 W_sd``) for ``W``, ``b`` and independent nonzero-mean ``Y``.
    * ``nu = phi_max/4`` in spikes/ms (0.05 for the paper's 200 Hz).
    * ``feedback_bias``: ``c^h = Y^h @ v`` with
      ``v = 3.465 W_sd(N) (U(n_output) - 0.5)`` and ``N`` the fan-in of the layer
      above ``h`` (the layer whose statistics built ``Y^h``); ``c`` is computed
      from the random ``Y`` before the sparse mask or symmetric replacement. The
      paper's equations have no feedback bias (specification section 5, item 10).
    * The random ``Y`` is always drawn, whatever ``network.feedback``, so that a
      seed gives the same forward weights under every feedback condition.
    * ``feedback == "sparse"``: each ``Y^h`` loses exactly
      ``round(sparse_fraction * size)`` random entries; survivors are multiplied
      by ``sparse_gain``; the survivor mask is stored in ``Y_mask``.
    * ``feedback in ("symmetric", "noisy_symmetric")``: ``Y`` is replaced by
      :func:`symmetric_feedback` of the initial ``W`` (noise drawn from ``rng``).
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"initial_weights: rng must be a numpy.random.Generator, got {type(rng).__name__}")
    network = params.network
    sizes = network.layer_sizes
    n_layers = len(sizes) - 1
    n_out = sizes[-1]
    nu = _nu(params)
    head = network.init == "head"
    b_avg, b_sd = float(network.init_bias_mean), float(network.init_bias_sd)
    k = UNIFORM_SD_FACTOR

    def centred(shape):
        # paper: U[0,1) - 0.5; head: U(-1, 1) (drawn as 2*U[0,1) - 1)
        u = rng.random(shape)
        return 2.0 * u - 1.0 if head else u - 0.5

    W: list[np.ndarray] = [None] * n_layers  # type: ignore[list-item]
    b: list[np.ndarray] = [None] * n_layers  # type: ignore[list-item]
    Y: list[np.ndarray] = [None] * (n_layers - 1)  # type: ignore[list-item]
    c: list[np.ndarray] = [np.zeros(n) for n in sizes[1:-1]]
    Y_above = None  # Y of the layer above, the identity for the output layer
    for lay in range(n_layers - 1, -1, -1):
        n_pre, n_post = sizes[lay], sizes[lay + 1]
        W_avg, W_sd = weight_statistics(n_pre, network, nu)
        W[lay] = W_avg + k * W_sd * centred((n_post, n_pre))
        b[lay] = b_avg + k * b_sd * centred((n_post,))
        if lay == 0:
            continue
        h = lay - 1  # the hidden layer below (its size is n_pre)
        if head:
            Y[h] = W_avg + k * W_sd * centred((n_pre, n_out))
        else:
            R = k * W_sd * (rng.random((n_pre, n_post)) - 0.5)
            Y[h] = R if Y_above is None else R @ Y_above
            Y_above = Y[h]
        if network.feedback_bias:
            c[h] = Y[h] @ (k * W_sd * (rng.random(n_out) - 0.5))

    masks: list[np.ndarray | None] = [None] * (n_layers - 1)
    if network.feedback == "sparse":
        for h in range(n_layers - 1):
            masks[h] = sparse_mask(Y[h].shape, network.sparse_fraction, rng)
            Y[h] = Y[h] * masks[h] * network.sparse_gain
    elif network.feedback in ("symmetric", "noisy_symmetric"):
        Y = symmetric_feedback(W, network, rng=rng)
    return Weights(W=W, b=b, Y=Y, c=c, Y_mask=masks)

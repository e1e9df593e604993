"""Validation of the images and labels given to the rate network's public methods.

The errors name the argument and the accepted values, and are raised before any
state of the network changes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_images", "check_labels"]


def check_images(images, n_in: int, single: bool) -> np.ndarray:
    """Pixel values in [0, 1] as an array of shape ``(n_in,)`` (``single``) or ``(n, n_in)``.

    Raises
    ------
    ValueError
        For non-numeric values, a wrong number of pixels, an empty batch, NaN or
        infinite values, or values outside [0, 1].
    """
    arr = np.asarray(images)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"images must be numeric pixel values in [0, 1], got dtype {arr.dtype}")
    if single:
        if arr.size != n_in:
            raise ValueError(
                f"image has shape {arr.shape} ({arr.size} pixels); expected {n_in} pixels "
                f"(network.n_input)"
            )
        arr = arr.reshape(n_in)
    else:
        if arr.ndim < 2 or int(np.prod(arr.shape[1:])) != n_in:
            raise ValueError(
                f"images have shape {arr.shape}; expected (n_images, {n_in}) or (n_images, ...) "
                f"with {n_in} pixels per image (for a single image use images[None])"
            )
        if arr.shape[0] == 0:
            raise ValueError("images: empty batch (0 images)")
        arr = arr.reshape(arr.shape[0], n_in)
    if arr.dtype == bool:
        arr = arr.astype(float)
    if np.issubdtype(arr.dtype, np.floating):
        finite = np.isfinite(arr)
        if not finite.all():
            bad = arr.size - int(np.count_nonzero(finite))
            raise ValueError(f"images contain {bad} NaN or infinite pixel values")
    lo, hi = arr.min(), arr.max()
    if lo < 0 or hi > 1:
        raise ValueError(
            f"pixel values must lie in [0, 1] (rate = phi_max*pixel); got range [{lo}, {hi}] "
            "(MNIST bytes must be divided by 255)"
        )
    return arr


def check_labels(labels, n: int | None, n_out: int) -> np.ndarray:
    """Class labels in ``[0, n_out)`` as ``intp``: one per image (``n``) or a single label (``n`` None).

    Raises
    ------
    ValueError
        For non-integer labels, a wrong shape or labels outside ``[0, n_out)``.
    """
    lab = np.asarray(labels)
    if lab.dtype == bool or not np.issubdtype(lab.dtype, np.number):
        raise ValueError(f"labels must be integers, got dtype {lab.dtype}")
    if n is None:
        if lab.ndim != 0:
            raise ValueError(f"label must be a single integer, got shape {lab.shape}")
    elif lab.shape != (n,):
        raise ValueError(f"labels have shape {lab.shape}; expected ({n},), one per image")
    if not np.issubdtype(lab.dtype, np.integer):
        if not np.all(np.isfinite(lab)) or np.any(lab != np.round(lab)):
            raise ValueError("labels must be integers (got non-integer or NaN values)")
    if lab.size and (lab.min() < 0 or lab.max() >= n_out):
        raise ValueError(
            f"labels must lie in [0, {n_out - 1}] (network.n_output = {n_out}); got range "
            f"[{lab.min()}, {lab.max()}]"
        )
    return lab.astype(np.intp)

"""The MNIST handwritten-digit database: locate, download, verify and parse it.

MNIST (LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning applied
to document recognition", Proc. IEEE 86(11):2278-2324; LeCun, Cortes & Burges,
"The MNIST database of handwritten digits") holds 60,000 training and 10,000
test images of 28x28 grey-level pixels with their digit labels, stored as four
IDX files. Guerguiev, Lillicrap & Richards (2017) train and test on it with the
pixels scaled to [0, 1] and fed as 784 input rates.

:func:`load_mnist` returns one split as an :class:`MNIST` record. The folder
holding the four files is, in this order:

1. the ``data_dir`` argument;
2. the folder named by the environment variable ``BRIAN_DENDRITE_DATA``;
3. the user cache folder ``$XDG_CACHE_HOME/brian_dendrite/mnist`` (by default
   ``~/.cache/brian_dendrite/mnist``).

The files may be gzip-compressed (``*.gz``, as distributed) or uncompressed.
Missing files are downloaded from public mirrors (only into the cache folder
unless asked otherwise), written atomically, and every file is checked against
the SHA-256 of its uncompressed content, the stable identity of the data.

:func:`validate_dataset` checks user-supplied image/label arrays with the same
conventions and explains what is wrong with them.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "MNIST",
    "MIRRORS",
    "SHA256",
    "DATA_ENV_VAR",
    "default_data_dir",
    "load_mnist",
    "validate_dataset",
]

logger = logging.getLogger("brian2.brian_dendrite.datasets")

#: Environment variable naming a folder that holds the four MNIST files.
DATA_ENV_VAR = "BRIAN_DENDRITE_DATA"

#: Public mirrors of the gzip-compressed files, tried in this order.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

#: Seconds to wait for a mirror before giving up on it.
DOWNLOAD_TIMEOUT = 30.0

#: SHA-256 of the uncompressed IDX files (the .gz bytes depend on the compressor).
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

# (images file, labels file) of each split, without the .gz suffix.
_SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_IMAGE_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
_LABEL_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
_ROWS = _COLS = 28
_N_CLASSES = 10
_GZIP_MAGIC = b"\x1f\x8b"

_HOW_TO_POINT = (
    f"To use a local copy, pass data_dir=... (--data-dir on the command line) or set the "
    f"{DATA_ENV_VAR} environment variable to a folder holding the four MNIST files "
    f"({', '.join(name + '[.gz]' for name in SHA256)})."
)


@dataclass(frozen=True, eq=False)
class MNIST:
    """One split of MNIST.

    Attributes
    ----------
    images : numpy.ndarray
        Shape ``(n, 784)``, float64, pixel intensities divided by 255 (so in
        [0, 1]), each row a 28x28 image in row-major order. Read-only.
    labels : numpy.ndarray
        Shape ``(n,)``, int64, digit classes 0..9. Read-only.
    split : str
        ``"train"`` (60,000 samples) or ``"test"`` (10,000 samples).
    source : pathlib.Path
        The folder the files were read from.
    """

    images: np.ndarray
    labels: np.ndarray
    split: str
    source: Path

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        return f"MNIST(split={self.split!r}, n={len(self)}, source={str(self.source)!r})"


def _cache_dir() -> Path:
    """The per-user cache folder for MNIST, following the XDG base-directory spec."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The spec says relative paths in XDG_* variables are invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "brian_dendrite" / "mnist"


def default_data_dir() -> Path:
    """Folder searched for MNIST when no ``data_dir`` is given.

    Returns
    -------
    pathlib.Path
        The folder named by the ``BRIAN_DENDRITE_DATA`` environment variable if it
        is set and non-empty, otherwise the cache folder
        ``$XDG_CACHE_HOME/brian_dendrite/mnist`` (``~/.cache/brian_dendrite/mnist``
        when ``XDG_CACHE_HOME`` is unset). The folder need not exist.
    """
    env = os.environ.get(DATA_ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    return _cache_dir()


def _resolve_dir(data_dir: str | Path | None) -> tuple[Path, str, bool]:
    """The folder to use, a description of where it came from, and whether it was user-chosen."""
    if data_dir is not None:
        return Path(data_dir).expanduser(), "the data_dir argument", True
    env = os.environ.get(DATA_ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser(), f"the {DATA_ENV_VAR} environment variable", True
    return _cache_dir(), "the default cache folder", False


def _find(directory: Path, name: str) -> Path | None:
    """The uncompressed file if present, else the .gz file, else None."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _decompress(raw: bytes, path: Path | str) -> bytes:
    """The IDX content of a file's bytes, gunzipped if they are gzip data."""
    if raw[:2] != _GZIP_MAGIC:
        if str(path).endswith(".gz") and raw[:2] != b"\x00\x00":
            raise ValueError(f"{path} is not a gzip file (it starts with bytes {raw[:4].hex()}).")
        # An IDX file saved under a .gz name (e.g. decompressed by a browser) is accepted.
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(
            f"{path} is a corrupt or truncated gzip file ({type(exc).__name__}: {exc}). "
            "Delete it and download it again, or replace it with a good copy."
        ) from exc


def _read_idx(path: Path) -> bytes:
    """The uncompressed content of an IDX file (gzip-compressed or not)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise OSError(f"cannot read MNIST file {path}: {exc}") from exc
    return _decompress(raw, path)


def _parse_idx(data: bytes, path: Path, magic: int, ndim: int) -> np.ndarray:
    """Check an IDX header and return the uint8 array it describes (a view of ``data``)."""
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path} is truncated: {len(data)} bytes, fewer than the {header}-byte IDX header.")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        kind = {_IMAGE_MAGIC: "images", _LABEL_MAGIC: "labels"}.get(magic, "IDX")
        raise ValueError(
            f"{path} has magic number {found} (0x{found:08x}); an MNIST {kind} file has "
            f"{magic} (0x{magic:08x}). Is it the right file, or corrupt?"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise ValueError(
            f"{path} is {what}: its header declares dimensions {dims}, i.e. {expected} bytes "
            f"of uncompressed content, but it has {len(data)} bytes."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _check_sha256(data: bytes, path: Path | str, name: str) -> None:
    """Compare the SHA-256 of the uncompressed content with the published value."""
    expected = SHA256[name]
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ValueError(
            f"{path} failed checksum verification: SHA-256 of its uncompressed content is "
            f"{actual}, expected {expected} for {name}. The file is corrupt or not the original "
            "MNIST file; delete or replace it (or pass verify=False to skip the check)."
        )


def _download(name: str, directory: Path) -> tuple[Path | None, list[str]]:
    """Fetch ``name``.gz from the mirrors into ``directory``; return (path or None, failures).

    The data go to a temporary file in ``directory``, are verified, and only then
    renamed to the final name, so an interrupted or bad download never leaves a
    file under that name.
    """
    failures = []
    final = directory / f"{name}.gz"
    for mirror in MIRRORS:
        url = f"{mirror}{name}.gz"
        tmp_name = None
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "brian_dendrite"})
            logger.info("Downloading %s", url)
            with tempfile.NamedTemporaryFile(
                dir=directory, prefix=f".{name}.", suffix=".part", delete=False
            ) as tmp:
                tmp_name = tmp.name
                with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as response:
                    while chunk := response.read(1 << 20):
                        tmp.write(chunk)
                tmp.flush()
                os.fsync(tmp.fileno())
            content = _decompress(Path(tmp_name).read_bytes(), url)
            _check_sha256(content, url, name)
            os.replace(tmp_name, final)
            tmp_name = None
            logger.info("Saved %s", final)
            return final, failures
        except (OSError, ValueError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) if isinstance(exc, urllib.error.URLError) else None
            failures.append(f"{url}: {reason if reason is not None else exc}")
        finally:
            if tmp_name is not None:
                try:
                    os.unlink(tmp_name)
                except OSError:
                    pass
    return None, failures


def load_mnist(
    split: str = "train",
    data_dir: str | Path | None = None,
    download: bool | None = None,
    verify: bool = True,
) -> MNIST:
    """Load one split of MNIST as float pixels in [0, 1] and integer labels.

    Parameters
    ----------
    split : {"train", "test"}
        The 60,000 training or the 10,000 test samples.
    data_dir : str or pathlib.Path, optional
        Folder holding the MNIST files, each gzip-compressed (``*.gz``) or not; if
        both forms are present the uncompressed one is read. Default:
        :func:`default_data_dir` (the ``BRIAN_DENDRITE_DATA`` environment variable,
        else the user cache folder).
    download : bool, optional
        Whether missing files may be downloaded (into the folder above) from
        :data:`MIRRORS`. ``None`` (default) allows it only for the cache folder,
        i.e. when neither ``data_dir`` nor ``BRIAN_DENDRITE_DATA`` is given.
        Downloaded files are always checked against :data:`SHA256` before being
        renamed into place.
    verify : bool
        Check the SHA-256 of each file's uncompressed content against
        :data:`SHA256`.

    Returns
    -------
    MNIST
        ``images`` (n, 784) float64 in [0, 1], ``labels`` (n,) int64, both read-only.

    Raises
    ------
    ValueError
        Unknown ``split``; a file that is not valid gzip, has a wrong IDX magic
        number, wrong image size, a size not matching its header, labels outside
        0..9, image and label counts that differ, or (``verify=True``) a wrong
        checksum. The message names the file.
    FileNotFoundError
        Files are missing and could not be downloaded (downloads disabled, or
        every mirror failed); the message lists the files, the folder searched,
        the download errors and how to point at a local copy.
    OSError
        A file exists but cannot be read.
    """
    if split not in _SPLITS:
        raise ValueError(f"unknown MNIST split {split!r}; valid choices are {sorted(_SPLITS)}.")
    directory, origin, user_chosen = _resolve_dir(data_dir)
    paths = _locate(split, directory, origin, not user_chosen if download is None else download, download)
    return _read_split(split, paths, directory, verify)


def _locate(split: str, directory: Path, origin: str, download: bool, download_requested: bool | None) -> dict:
    """The files of ``split`` in ``directory`` (name -> path), downloading missing ones if ``download``.

    ``download_requested`` is the caller's ``download`` argument (None: not given), for the message of the
    FileNotFoundError raised when files are missing and could not be downloaded.
    """
    paths = {name: _find(directory, name) for name in _SPLITS[split]}
    missing = [name for name, path in paths.items() if path is None]
    if not missing:
        return paths
    failures: list[str] = []
    if download:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            failures.append(f"cannot create {directory}: {exc}")
        else:
            for name in missing:
                path, errors = _download(name, directory)
                failures.extend(errors)
                paths[name] = path
        missing = [name for name, path in paths.items() if path is None]
    if missing:
        listed = ", ".join(f"{name}[.gz]" for name in missing)
        message = f"MNIST {split} file(s) missing: {listed}; looked in {directory} (from {origin})."
        if download:
            message += " Download failed: " + "; ".join(failures) + "."
        elif download_requested is None:
            message += (
                " Nothing was downloaded: automatic download only fills the cache folder "
                f"({_cache_dir()}); pass download=True to download into {directory}."
            )
        else:
            message += " Downloading was disabled (download=False)."
        raise FileNotFoundError(f"{message} {_HOW_TO_POINT}")
    return paths


def _read_split(split: str, paths: dict, directory: Path, verify: bool) -> MNIST:
    """Parse and check the two files of ``split`` (:func:`load_mnist`'s Raises) into an :class:`MNIST`."""
    images_name, labels_name = _SPLITS[split]
    images_path, labels_path = paths[images_name], paths[labels_name]
    images_data = _read_idx(images_path)
    labels_data = _read_idx(labels_path)
    raw_images = _parse_idx(images_data, images_path, _IMAGE_MAGIC, 3)
    raw_labels = _parse_idx(labels_data, labels_path, _LABEL_MAGIC, 1)
    if raw_images.shape[1:] != (_ROWS, _COLS):
        raise ValueError(
            f"{images_path} holds images of {raw_images.shape[1]}x{raw_images.shape[2]} pixels; "
            f"MNIST images are {_ROWS}x{_COLS}."
        )
    if raw_images.shape[0] != raw_labels.shape[0]:
        raise ValueError(
            f"{images_path} holds {raw_images.shape[0]} images but {labels_path} holds "
            f"{raw_labels.shape[0]} labels; the files do not belong together."
        )
    if verify:
        _check_sha256(images_data, images_path, images_name)
        _check_sha256(labels_data, labels_path, labels_name)
    bad = np.flatnonzero(raw_labels >= _N_CLASSES)
    if bad.size:
        raise ValueError(
            f"{labels_path} has {bad.size} label(s) outside 0..{_N_CLASSES - 1}; "
            f"the first is labels[{bad[0]}] = {raw_labels[bad[0]]}."
        )

    images = raw_images.reshape(raw_images.shape[0], _ROWS * _COLS).astype(np.float64)
    images /= 255.0
    labels = raw_labels.astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    logger.info("Loaded MNIST %s split: %d samples from %s", split, labels.shape[0], directory)
    return MNIST(images=images, labels=labels, split=split, source=directory)


def validate_dataset(
    images, labels, n_input: int = 784, n_classes: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Check image/label arrays supplied for training or testing.

    Parameters
    ----------
    images : array_like
        Shape ``(n, n_input)``, real values in [0, 1] (e.g. pixels / 255).
    labels : array_like
        Shape ``(n,)``, integer classes in ``0 .. n_classes - 1``; a float array is
        accepted if every value is a whole number.
    n_input : int
        Number of input units (values per image).
    n_classes : int
        Number of classes (output units).

    Returns
    -------
    images : numpy.ndarray
        The images as float64.
    labels : numpy.ndarray
        The labels as int64.

    Raises
    ------
    ValueError
        Wrong image shape, non-numeric images, NaN or infinite pixels, pixels
        outside [0, 1], labels that are not integers or not one-dimensional,
        labels out of range, an empty data set, or image and label counts that
        differ. The message says what was expected and where the first bad value is.
    """
    if isinstance(n_input, bool) or not (isinstance(n_input, int | np.integer) and n_input > 0):
        raise ValueError(f"n_input must be a positive integer; got {n_input!r}.")
    if isinstance(n_classes, bool) or not (isinstance(n_classes, int | np.integer) and n_classes > 0):
        raise ValueError(f"n_classes must be a positive integer; got {n_classes!r}.")

    images = np.asarray(images)
    labels = np.asarray(labels)
    _check_shapes(images, labels, n_input, n_classes)
    images = images.astype(np.float64, copy=False)
    _check_pixels(images)
    _check_labels(labels, n_classes)
    return images, labels.astype(np.int64, copy=False)


def _check_shapes(images: np.ndarray, labels: np.ndarray, n_input: int, n_classes: int) -> None:
    """:func:`validate_dataset`'s checks of the image type and of the shapes of images and labels."""
    if images.dtype.kind not in "biuf":
        raise ValueError(f"images must be a real numeric array; got dtype {images.dtype}.")
    if images.ndim != 2 or images.shape[1] != n_input:
        message = f"images must have shape (n, {n_input}); got shape {images.shape}."
        if images.ndim >= 2 and int(np.prod(images.shape[1:])) == n_input:
            message += " Flatten each image first: images.reshape(len(images), -1)."
        raise ValueError(message)
    if labels.ndim != 1:
        message = f"labels must be one-dimensional, shape (n,); got shape {labels.shape}."
        if labels.ndim == 2 and labels.shape[1] == n_classes:
            message += " For one-hot labels use labels.argmax(axis=1)."
        raise ValueError(message)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"images and labels differ in length: {images.shape[0]} images but {labels.shape[0]} labels."
        )
    if images.shape[0] == 0:
        raise ValueError("the data set is empty (0 images).")


def _check_pixels(images: np.ndarray) -> None:
    """:func:`validate_dataset`'s checks of the pixel values (float64 images): finite, in [0, 1]."""
    if not np.isfinite(images).all():
        nan = np.isnan(images)
        inf = np.isinf(images)
        first = tuple(int(i) for i in np.argwhere(nan | inf)[0])
        raise ValueError(
            f"images contain {int(nan.sum())} NaN and {int(inf.sum())} infinite value(s); "
            f"the first is images[{first[0]}, {first[1]}] = {images[first]}."
        )
    lo, hi = float(images.min()), float(images.max())
    if lo < 0.0 or hi > 1.0:
        outside = (images < 0.0) | (images > 1.0)
        first = tuple(int(i) for i in np.argwhere(outside)[0])
        message = (
            f"images must lie in [0, 1]; {int(outside.sum())} value(s) are outside (range "
            f"{lo:g} to {hi:g}), the first is images[{first[0]}, {first[1]}] = {images[first]:g}."
        )
        if lo >= 0.0 and hi <= 255.0:
            message += " Raw 8-bit pixels must be divided by 255."
        raise ValueError(message)


def _check_labels(labels: np.ndarray, n_classes: int) -> None:
    """:func:`validate_dataset`'s checks of the label values: whole numbers in ``0 .. n_classes - 1``."""
    if labels.dtype.kind == "f":
        whole = np.isfinite(labels) & (labels == np.round(labels))
        if not whole.all():
            first = int(np.flatnonzero(~whole)[0])
            raise ValueError(
                f"labels must be integers; {int((~whole).sum())} value(s) are not, "
                f"the first is labels[{first}] = {labels[first]}."
            )
    elif labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers; got dtype {labels.dtype}.")
    out = (labels < 0) | (labels >= n_classes)
    if out.any():
        first = int(np.flatnonzero(out)[0])
        raise ValueError(
            f"labels must lie in 0..{n_classes - 1}; {int(out.sum())} value(s) are outside, "
            f"the first is labels[{first}] = {labels[first]}."
        )

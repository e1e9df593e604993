"""Tests of the MNIST loader and of validate_dataset, on the real MNIST files.

The files are read from ``BRIAN_DENDRITE_DATA`` if set, else from
``../shared/data/mnist`` next to the project root. No test touches the network:
downloads are exercised with a fake ``urllib.request.urlopen``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from brian_dendrite import datasets
from brian_dendrite.datasets import MNIST, SHA256, default_data_dir, load_mnist, validate_dataset

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _real_dir() -> Path:
    env = os.environ.get("BRIAN_DENDRITE_DATA", "").strip()
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.fixture(scope="module")
def mnist_dir() -> Path:
    directory = _real_dir()
    missing = [n for n in SHA256 if not (directory / n).is_file() and not (directory / f"{n}.gz").is_file()]
    if missing:
        pytest.fail(f"MNIST files {missing} not found in {directory}; set BRIAN_DENDRITE_DATA")
    return directory


@pytest.fixture(scope="module")
def train(mnist_dir) -> MNIST:
    return load_mnist("train", data_dir=mnist_dir)


@pytest.fixture(scope="module")
def test_split(mnist_dir) -> MNIST:
    return load_mnist("test", data_dir=mnist_dir)


@pytest.fixture(scope="module")
def raw_test(mnist_dir) -> dict[str, bytes]:
    """Uncompressed bytes of the two test-split files."""
    return {name: datasets._read_idx(datasets._find(mnist_dir, name)) for name in TEST_FILES}


@pytest.fixture
def isolated_env(monkeypatch, tmp_path):
    """No BRIAN_DENDRITE_DATA, a private cache folder; returns that cache folder."""
    monkeypatch.delenv("BRIAN_DENDRITE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "brian_dendrite" / "mnist"


def _no_network(*args, **kwargs):
    raise AssertionError("urlopen must not be called")


def _write_test_split(directory: Path, raw: dict[str, bytes], compress: bool = True, **override) -> Path:
    """Write the test split into ``directory``; ``override`` maps a file key to replacement bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    for key, name in zip(("images", "labels"), TEST_FILES, strict=True):
        data = override.get(key, raw[name])
        if compress:
            (directory / f"{name}.gz").write_bytes(gzip.compress(data, compresslevel=1))
        else:
            (directory / name).write_bytes(data)
    return directory


# --- the real data -------------------------------------------------------------------------------


def test_train_split(train, mnist_dir):
    assert isinstance(train, MNIST)
    assert train.split == "train" and train.source == mnist_dir and len(train) == 60000
    assert train.images.shape == (60000, 784) and train.images.dtype == np.float64
    assert train.labels.shape == (60000,) and train.labels.dtype == np.int64
    assert train.images.min() == 0.0 and train.images.max() == 1.0
    assert np.bincount(train.labels, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(train.labels)[1] == 6742
    assert train.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert abs(train.images.mean() - 0.1307) < 1e-4
    assert abs(train.images.std() - 0.3081) < 1e-4
    # Pixels are exactly k/255 for integer k.
    k = train.images[:100] * 255.0
    np.testing.assert_array_equal(k, np.round(k))


def test_test_split(test_split):
    assert test_split.split == "test"
    assert test_split.images.shape == (10000, 784) and test_split.images.dtype == np.float64
    assert test_split.labels.dtype == np.int64
    assert 0.0 <= test_split.images.min() and test_split.images.max() <= 1.0
    counts = np.bincount(test_split.labels, minlength=10)
    assert counts.sum() == 10000 and counts[1] == 1135
    assert counts.tolist() == TEST_COUNTS
    assert test_split.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_arrays_are_read_only(test_split):
    with pytest.raises(ValueError):
        test_split.images[0, 0] = 0.5
    with pytest.raises(ValueError):
        test_split.labels[0] = 3
    assert "test" in repr(test_split) and "10000" in repr(test_split)


def test_real_data_passes_validate_dataset(test_split):
    images, labels = validate_dataset(test_split.images, test_split.labels)
    assert images.shape == (10000, 784) and labels.dtype == np.int64


def test_unknown_split():
    with pytest.raises(ValueError, match=r"'validation'.*'test'.*'train'"):
        load_mnist("validation")


# --- where the files are looked for --------------------------------------------------------------


def test_env_var_resolution(monkeypatch, tmp_path, raw_test, test_split):
    folder = _write_test_split(tmp_path / "env", raw_test)
    monkeypatch.setenv("BRIAN_DENDRITE_DATA", str(folder))
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    assert default_data_dir() == folder
    data = load_mnist("test")
    assert data.source == folder
    np.testing.assert_array_equal(data.images, test_split.images)
    np.testing.assert_array_equal(data.labels, test_split.labels)


def test_explicit_dir_overrides_env(monkeypatch, tmp_path, raw_test):
    monkeypatch.setenv("BRIAN_DENDRITE_DATA", str(tmp_path / "does-not-exist"))
    folder = _write_test_split(tmp_path / "explicit", raw_test)
    assert load_mnist("test", data_dir=str(folder)).source == folder


def test_cache_dir_default(monkeypatch, tmp_path):
    monkeypatch.delenv("BRIAN_DENDRITE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_data_dir() == tmp_path / "xdg" / "brian_dendrite" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home" / ".cache" / "brian_dendrite" / "mnist"
    monkeypatch.setenv("BRIAN_DENDRITE_DATA", "")  # empty means unset
    assert default_data_dir() == tmp_path / "home" / ".cache" / "brian_dendrite" / "mnist"


def test_cache_dir_used_without_download(isolated_env, raw_test, monkeypatch):
    _write_test_split(isolated_env, raw_test)
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    assert load_mnist("test").source == isolated_env


def test_uncompressed_files(tmp_path, raw_test, test_split):
    folder = _write_test_split(tmp_path, raw_test, compress=False)
    assert not list(folder.glob("*.gz"))
    data = load_mnist("test", data_dir=folder)
    np.testing.assert_array_equal(data.images, test_split.images)
    np.testing.assert_array_equal(data.labels, test_split.labels)


def test_mixed_compression(tmp_path, raw_test, test_split):
    (tmp_path / TEST_FILES[0]).write_bytes(raw_test[TEST_FILES[0]])
    (tmp_path / f"{TEST_FILES[1]}.gz").write_bytes(gzip.compress(raw_test[TEST_FILES[1]]))
    np.testing.assert_array_equal(load_mnist("test", data_dir=tmp_path).labels, test_split.labels)


# --- damaged files -------------------------------------------------------------------------------


def test_truncated_gzip(tmp_path, raw_test):
    _write_test_split(tmp_path, raw_test)
    gz = tmp_path / f"{TEST_FILES[0]}.gz"
    gz.write_bytes(gz.read_bytes()[: gz.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz is a corrupt or truncated gzip"):
        load_mnist("test", data_dir=tmp_path)


def test_gz_name_without_gzip_content(tmp_path, raw_test):
    _write_test_split(tmp_path, raw_test)
    (tmp_path / f"{TEST_FILES[1]}.gz").write_bytes(b"<html>not found</html>")
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte\.gz is not a gzip file"):
        load_mnist("test", data_dir=tmp_path)


def test_bad_magic(tmp_path, raw_test):
    labels = bytearray(raw_test[TEST_FILES[1]])
    labels[3] = 0x03  # 2049 -> 2051, an images magic in the labels file
    _write_test_split(tmp_path, raw_test, labels=bytes(labels))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte\.gz has magic number 2051.*2049"):
        load_mnist("test", data_dir=tmp_path)


def test_truncated_body(tmp_path, raw_test):
    images = raw_test[TEST_FILES[0]]
    _write_test_split(tmp_path, raw_test, compress=False, images=images[:-100])
    expected, actual = len(images), len(images) - 100
    with pytest.raises(
        ValueError, match=rf"t10k-images-idx3-ubyte is truncated.*{expected} bytes.*{actual} bytes"
    ):
        load_mnist("test", data_dir=tmp_path)


def test_wrong_image_size(tmp_path, raw_test):
    images = bytearray(raw_test[TEST_FILES[0]])
    images[8:16] = (14).to_bytes(4, "big") + (56).to_bytes(4, "big")  # same byte count, 14x56
    _write_test_split(tmp_path, raw_test, images=bytes(images))
    with pytest.raises(ValueError, match=r"14x56 pixels; MNIST images are 28x28"):
        load_mnist("test", data_dir=tmp_path, verify=False)


def test_count_mismatch(tmp_path, raw_test):
    labels = bytearray(raw_test[TEST_FILES[1]][:-1])
    labels[4:8] = (9999).to_bytes(4, "big")
    _write_test_split(tmp_path, raw_test, labels=bytes(labels))
    with pytest.raises(ValueError, match=r"10000 images but .* 9999 labels"):
        load_mnist("test", data_dir=tmp_path, verify=False)


def test_label_out_of_range(tmp_path, raw_test):
    labels = bytearray(raw_test[TEST_FILES[1]])
    labels[8 + 42] = 10
    _write_test_split(tmp_path, raw_test, labels=bytes(labels))
    with pytest.raises(ValueError, match=r"outside 0\.\.9; the first is labels\[42\] = 10"):
        load_mnist("test", data_dir=tmp_path, verify=False)


def test_checksum_mismatch(tmp_path, raw_test):
    images = bytearray(raw_test[TEST_FILES[0]])
    images[16 + 5 * 784 + 300] ^= 0xFF
    _write_test_split(tmp_path, raw_test, images=bytes(images))
    actual = hashlib.sha256(bytes(images)).hexdigest()
    expected = SHA256[TEST_FILES[0]]
    with pytest.raises(ValueError) as info:
        load_mnist("test", data_dir=tmp_path)
    message = str(info.value)
    assert "t10k-images-idx3-ubyte.gz" in message and actual in message and expected in message
    # verify=False loads the modified file as it is.
    data = load_mnist("test", data_dir=tmp_path, verify=False)
    assert data.images[5, 300] * 255 == images[16 + 5 * 784 + 300]


def test_missing_file_no_download(tmp_path, raw_test, monkeypatch):
    _write_test_split(tmp_path, raw_test)
    (tmp_path / f"{TEST_FILES[1]}.gz").unlink()
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    with pytest.raises(FileNotFoundError) as info:
        load_mnist("test", data_dir=tmp_path, download=False)
    message = str(info.value)
    for text in (
        "t10k-labels-idx1-ubyte",
        str(tmp_path),
        "download=False",
        "BRIAN_DENDRITE_DATA",
        "--data-dir",
    ):
        assert text in message
    assert "t10k-images" not in message.split(";")[0]  # only the missing file is listed as missing
    # With an explicit folder, download=None does not download either.
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_mnist("test", data_dir=tmp_path)


def test_env_dir_missing_no_download(monkeypatch, tmp_path):
    monkeypatch.setenv("BRIAN_DENDRITE_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    with pytest.raises(FileNotFoundError, match=r"BRIAN_DENDRITE_DATA environment variable"):
        load_mnist("train")


# --- downloading (no network: urlopen is faked) --------------------------------------------------


class _FakeMirrors:
    """Stand-in for urlopen: serves ``payload[name]`` from the mirrors listed in ``serving``."""

    def __init__(self, payload: dict[str, bytes], serving=(), fail_midway=False):
        self.payload, self.serving, self.fail_midway = payload, serving, fail_midway
        self.calls: list[tuple[str, float]] = []

    def __call__(self, request, timeout=None):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        self.calls.append((url, timeout))
        mirror, name = url.rsplit("/", 1)
        if mirror + "/" not in self.serving:
            raise urllib.error.URLError(f"no route to {mirror}")
        body = self.payload[name.removesuffix(".gz")]
        if self.fail_midway:
            return _Dropping(body)
        return io.BytesIO(body)


class _Dropping(io.BytesIO):
    def read(self, size=-1):
        if self.tell() > 0:
            raise ConnectionResetError("connection reset by peer")
        return super().read(1000)


def _gz_payload(raw: dict[str, bytes]) -> dict[str, bytes]:
    return {name: gzip.compress(data, compresslevel=1) for name, data in raw.items()}


def test_download_network_failure(isolated_env, monkeypatch):
    fake = _FakeMirrors({})
    monkeypatch.setattr(urllib.request, "urlopen", fake)
    with pytest.raises(FileNotFoundError) as info:
        load_mnist("test")
    message = str(info.value)
    for text in (
        *TEST_FILES,
        str(isolated_env),
        "Download failed",
        "no route to",
        "BRIAN_DENDRITE_DATA",
        "--data-dir",
    ):
        assert text in message
    for mirror in datasets.MIRRORS:
        assert f"{mirror}{TEST_FILES[0]}.gz" in message
    assert [url for url, _ in fake.calls] == [f"{m}{n}.gz" for n in TEST_FILES for m in datasets.MIRRORS]
    assert all(timeout is not None and 0 < timeout < 600 for _, timeout in fake.calls)
    assert list(isolated_env.iterdir()) == []  # nothing left behind


def test_download_falls_back_writes_and_verifies(isolated_env, monkeypatch, raw_test, test_split):
    fake = _FakeMirrors(_gz_payload(raw_test), serving=datasets.MIRRORS[1:])
    monkeypatch.setattr(urllib.request, "urlopen", fake)
    data = load_mnist("test")
    assert data.source == isolated_env
    np.testing.assert_array_equal(data.images, test_split.images)
    np.testing.assert_array_equal(data.labels, test_split.labels)
    assert [url for url, _ in fake.calls] == [f"{m}{n}.gz" for n in TEST_FILES for m in datasets.MIRRORS[:2]]
    assert sorted(p.name for p in isolated_env.iterdir()) == sorted(f"{n}.gz" for n in TEST_FILES)
    # Cached: a second load does not touch the network.
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    np.testing.assert_array_equal(load_mnist("test").labels, test_split.labels)


def test_download_only_missing_file(isolated_env, monkeypatch, raw_test):
    _write_test_split(isolated_env, raw_test)
    (isolated_env / f"{TEST_FILES[0]}.gz").unlink()
    fake = _FakeMirrors(_gz_payload(raw_test), serving=datasets.MIRRORS)
    monkeypatch.setattr(urllib.request, "urlopen", fake)
    assert len(load_mnist("test")) == 10000
    assert [url for url, _ in fake.calls] == [f"{datasets.MIRRORS[0]}{TEST_FILES[0]}.gz"]


def test_download_bad_content_is_not_kept(isolated_env, monkeypatch, raw_test):
    labels = bytearray(raw_test[TEST_FILES[1]])
    labels[100] = (labels[100] + 1) % 10
    payload = _gz_payload({**raw_test, TEST_FILES[1]: bytes(labels)})
    monkeypatch.setattr(urllib.request, "urlopen", _FakeMirrors(payload, serving=datasets.MIRRORS))
    with pytest.raises(FileNotFoundError, match=r"t10k-labels-idx1-ubyte\[\.gz\].*checksum"):
        load_mnist("test")
    # The good file was kept, the bad one was never written under its final name, no temp files.
    assert sorted(p.name for p in isolated_env.iterdir()) == [f"{TEST_FILES[0]}.gz"]


def test_interrupted_download_leaves_no_partial_file(isolated_env, monkeypatch, raw_test):
    fake = _FakeMirrors(_gz_payload(raw_test), serving=datasets.MIRRORS, fail_midway=True)
    monkeypatch.setattr(urllib.request, "urlopen", fake)
    with pytest.raises(OSError, match="connection reset by peer"):
        load_mnist("test")
    assert list(isolated_env.iterdir()) == []


def test_explicit_download_into_given_dir(tmp_path, monkeypatch, raw_test):
    monkeypatch.setattr(
        urllib.request, "urlopen", _FakeMirrors(_gz_payload(raw_test), serving=datasets.MIRRORS)
    )
    target = tmp_path / "new" / "folder"
    assert load_mnist("test", data_dir=target, download=True).source == target
    assert sorted(p.name for p in target.iterdir()) == sorted(f"{n}.gz" for n in TEST_FILES)


# --- validate_dataset ----------------------------------------------------------------------------


def _good(n=5):
    rng = np.random.default_rng(0)
    return rng.random((n, 784)), np.arange(n) % 10


def test_validate_accepts_good_data():
    images, labels = _good()
    out_images, out_labels = validate_dataset(images, labels.astype(np.uint8))
    assert out_images.dtype == np.float64 and out_labels.dtype == np.int64
    _, float_labels = validate_dataset(images, labels.astype(float))
    np.testing.assert_array_equal(float_labels, labels)
    validate_dataset(np.zeros((2, 4)), [0, 2], n_input=4, n_classes=3)


def _with(index, value, images=None):
    images = _good()[0] if images is None else images
    images[index] = value
    return images


@pytest.mark.parametrize(
    ("images", "labels", "pattern"),
    [
        (np.zeros((5, 783)), np.zeros(5, int), r"shape \(n, 784\); got shape \(5, 783\)"),
        (np.zeros((5, 28, 28)), np.zeros(5, int), r"got shape \(5, 28, 28\).*reshape"),
        (np.zeros(784), np.zeros(1, int), r"shape \(n, 784\); got shape \(784,\)"),
        (np.array([["a"] * 784]), np.zeros(1, int), r"real numeric array"),
        (_with((2, 10), np.nan), np.zeros(5, int), r"1 NaN and 0 infinite.*images\[2, 10\]"),
        (
            _with((3, 7), np.inf, _with((1, 0), np.nan)),
            np.zeros(5, int),
            r"1 NaN and 1 infinite.*images\[1, 0\]",
        ),
        (_with((4, 1), 1.5), np.zeros(5, int), r"\[0, 1\]; 1 value\(s\) are outside.*images\[4, 1\] = 1\.5"),
        (_with((0, 3), -0.1), np.zeros(5, int), r"images\[0, 3\] = -0\.1"),
        (np.full((2, 784), 255.0), np.zeros(2, int), r"divided by 255"),
        (_good()[0], np.array([0, 1, 2.5, 3, 4]), r"labels must be integers.*labels\[2\] = 2\.5"),
        (_good()[0], np.array(["0", "1", "2", "3", "4"]), r"labels must be integers; got dtype"),
        (_good()[0], np.array([0, 1, 10, 3, 4]), r"0\.\.9; 1 value\(s\).*labels\[2\] = 10"),
        (_good()[0], np.array([0, -1, 2, 3, 4]), r"labels\[1\] = -1"),
        (_good()[0], np.eye(10)[:5], r"one-dimensional.*argmax"),
        (_good()[0], np.zeros(4, int), r"5 images but 4 labels"),
        (np.zeros((0, 784)), np.zeros(0, int), r"empty"),
    ],
)
def test_validate_errors(images, labels, pattern):
    with pytest.raises(ValueError, match=pattern):
        validate_dataset(images, labels)


def test_validate_bad_sizes():
    with pytest.raises(ValueError, match="n_input"):
        validate_dataset(*_good(), n_input=0)
    with pytest.raises(ValueError, match="n_classes"):
        validate_dataset(*_good(), n_classes=2.5)
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.1"):
        validate_dataset(*_good(), n_classes=2)


def test_no_print_and_logger_name():
    source = Path(datasets.__file__).read_text()
    assert "print(" not in source
    assert datasets.logger.name == "brian2.brian_dendrite.datasets"


def test_shutil_copy_of_real_files_loads(tmp_path, mnist_dir):
    """Copies of the shipped files (whatever their compression) load unchanged."""
    for name in TEST_FILES:
        shutil.copy(datasets._find(mnist_dir, name), tmp_path)
    assert len(load_mnist("test", data_dir=tmp_path)) == 10000

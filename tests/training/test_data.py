"""Data sets: digits split, IDX reader, MNIST folders and the spec strings of load_dataset."""

from __future__ import annotations

import gzip
import os
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from training.data import DataError, Dataset, load_dataset, load_digits_dataset, load_mnist, read_idx

_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
          np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}


def idx_bytes(a: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, _CODES[a.dtype], a.ndim) + struct.pack(f">{a.ndim}I", *a.shape)
    return header + a.astype(a.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, a: np.ndarray) -> Path:
    data = idx_bytes(a)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def write_mnist(folder: Path, part: str, n: int, gz: bool = True, seed: int = 0, side: int = 28):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, side, side), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    ext = ".gz" if gz else ""
    write_idx(folder / f"{part}-images-idx3-ubyte{ext}", images)
    write_idx(folder / f"{part}-labels-idx1-ubyte{ext}", labels)
    return images, labels


def _path_in(path) -> str:
    return re.escape(str(path))


# ---- digits -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    return load_digits_dataset()


def test_digits_shapes_dtypes_and_range(digits):
    assert digits.name == "digits"
    assert digits.x_train.shape == (1257, 1, 8, 8) and digits.x_test.shape == (540, 1, 8, 8)
    assert digits.x_train.dtype == torch.float32 and digits.y_train.dtype == torch.int64
    for x in (digits.x_train, digits.x_test):
        assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert digits.input_shape == (1, 8, 8) and digits.n_classes == 10
    assert "digits" in digits.describe() and "1257" in digits.describe()


def test_digits_split_is_deterministic_per_seed(digits):
    again = load_digits_dataset(seed=0)
    assert torch.equal(again.x_train, digits.x_train) and torch.equal(again.y_test, digits.y_test)
    assert again.fingerprint() == digits.fingerprint()
    other = load_digits_dataset(seed=1)
    assert not torch.equal(other.y_train, digits.y_train)
    assert other.fingerprint() != digits.fingerprint()


def test_digits_split_is_stratified(digits):
    n_train = torch.bincount(digits.y_train, minlength=10)
    n_test = torch.bincount(digits.y_test, minlength=10)
    share = n_test.double() / (n_train + n_test).double()
    assert torch.all((share - 0.3).abs() < 0.01), share


def test_digits_test_fraction_validated():
    with pytest.raises(DataError, match="test_fraction"):
        load_digits_dataset(test_fraction=1.0)


def test_fingerprint_sees_values_and_name(digits):
    x = digits.x_test.clone()
    x[0, 0, 0, 0] += 0.5
    changed = Dataset("digits", digits.x_train, digits.y_train, x, digits.y_test)
    renamed = Dataset("other", digits.x_train, digits.y_train, digits.x_test, digits.y_test)
    assert len({digits.fingerprint(), changed.fingerprint(), renamed.fingerprint()}) == 3


def test_dataset_validates_dtypes_and_lengths():
    x, y = torch.zeros(4, 1, 2, 2), torch.zeros(4, dtype=torch.int64)
    with pytest.raises(DataError, match="x_train"):
        Dataset("d", x.double(), y, x, y)
    with pytest.raises(DataError, match="y_test"):
        Dataset("d", x, y, x, y[:3])


# ---- IDX reader ---------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("array", [
    np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
    np.array([3, 1, 4, 1, 5, 9], dtype=np.uint8),
    np.arange(-6, 6, dtype=np.int32).reshape(3, 4),
    np.linspace(-1, 1, 5, dtype=np.float32),
])
def test_read_idx_round_trip(tmp_path, suffix, array):
    out = read_idx(write_idx(tmp_path / f"a.idx{suffix}", array))
    assert out.shape == array.shape and out.dtype == array.dtype
    np.testing.assert_array_equal(out, array)
    out[...] = 0  # writable, in native byte order


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found.*" + _path_in(tmp_path / "nope")):
        read_idx(tmp_path / "nope")


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx_bad_magic(tmp_path, suffix):
    data = bytearray(idx_bytes(np.zeros((2, 2), np.uint8)))
    data[0] = 1
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(gzip.compress(bytes(data)) if suffix else bytes(data))
    with pytest.raises(DataError, match=_path_in(path) + ".*magic"):
        read_idx(path)


def test_read_idx_bad_type_code(tmp_path):
    data = bytearray(idx_bytes(np.zeros(3, np.uint8)))
    data[2] = 0x07
    path = tmp_path / "badtype"
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="magic"):
        read_idx(path)


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("cut", [1, 3, 10, 50])
def test_read_idx_truncated(tmp_path, suffix, cut):
    data = idx_bytes(np.ones((2, 5, 5), np.uint8))[:-cut]
    path = tmp_path / f"short{suffix}"
    path.write_bytes(gzip.compress(data) if suffix else data)
    with pytest.raises(DataError, match=_path_in(path) + ".*truncated"):
        read_idx(path)


def test_read_idx_trailing_bytes(tmp_path):
    path = tmp_path / "long"
    path.write_bytes(idx_bytes(np.ones(4, np.uint8)) + b"\0")
    with pytest.raises(DataError, match="longer"):
        read_idx(path)


def test_read_idx_broken_gzip(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=_path_in(path)):
        read_idx(path)
    path.write_bytes(gzip.compress(idx_bytes(np.ones(100, np.uint8)))[:-12])
    with pytest.raises(DataError, match=_path_in(path)):
        read_idx(path)


# ---- MNIST folders ------------------------------------------------------------------------

def test_load_mnist_t10k_only_splits_first_80_percent(tmp_path):
    images, labels = write_mnist(tmp_path, "t10k", 10)
    data = load_mnist(tmp_path)
    assert data.name == "mnist"
    assert data.x_train.shape == (8, 1, 28, 28) and data.x_test.shape == (2, 1, 28, 28)
    np.testing.assert_allclose(data.x_train[:, 0].numpy() * 255, images[:8], atol=1e-4)
    np.testing.assert_allclose(data.x_test[:, 0].numpy() * 255, images[8:], atol=1e-4)
    assert data.y_train.tolist() == labels[:8].tolist() and data.y_test.tolist() == labels[8:].tolist()
    assert data.x_train.dtype == torch.float32 and 0 <= float(data.x_train.min()) <= float(data.x_train.max()) <= 1


def test_load_mnist_floor_split_for_other_sizes(tmp_path):
    write_mnist(tmp_path, "t10k", 13, gz=False)
    data = load_mnist(tmp_path)
    assert (len(data.x_train), len(data.x_test)) == (10, 3)


def test_load_mnist_train_and_test_files(tmp_path):
    write_mnist(tmp_path, "train", 12, seed=1)
    write_mnist(tmp_path, "t10k", 5, gz=False, seed=2)
    data = load_mnist(tmp_path, name="fashion")
    assert data.name == "fashion"
    assert len(data.x_train) == 12 and len(data.x_test) == 5


def test_load_mnist_missing_folder_and_files(tmp_path):
    with pytest.raises(DataError, match=_path_in(tmp_path / "none")):
        load_mnist(tmp_path / "none")
    write_mnist(tmp_path, "train", 4)
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte"):
        load_mnist(tmp_path)


def test_load_mnist_mismatched_labels(tmp_path):
    write_mnist(tmp_path, "t10k", 10)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(9, np.uint8))
    with pytest.raises(DataError, match="labels"):
        load_mnist(tmp_path)


def test_load_dataset_specs(tmp_path):
    write_mnist(tmp_path, "t10k", 10, side=8)
    assert load_dataset("digits").name == "digits"
    assert load_dataset(f"mnist:{tmp_path}").name == "mnist"
    assert load_dataset(f"fashion:{tmp_path}").name == "fashion"
    bare = load_dataset(tmp_path)
    assert bare.input_shape == (1, 8, 8) and len(bare.x_train) == 8
    with pytest.raises(DataError, match="'digits'.*mnist:PATH.*fashion:PATH"):
        load_dataset("cifar")
    with pytest.raises(DataError, match=_path_in(tmp_path / "gone")):
        load_dataset(f"mnist:{tmp_path / 'gone'}")


def _real_mnist() -> Path:
    env = os.environ.get("EFAT_MNIST")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


def test_real_mnist_t10k_split():
    folder = _real_mnist()
    if not folder.is_dir():
        pytest.skip(f"no MNIST files at {folder} (set EFAT_MNIST)")
    data = load_dataset(f"mnist:{folder}")
    assert data.x_train.shape == (8000, 1, 28, 28) and data.x_test.shape == (2000, 1, 28, 28)
    assert int(data.y_train.min()) == 0 and int(data.y_train.max()) == 9 and data.n_classes == 10
    assert 0.0 <= float(data.x_test.min()) and float(data.x_test.max()) <= 1.0

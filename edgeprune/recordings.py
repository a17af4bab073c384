"""Real sensor recordings shipped inside the ``aeon`` wheel, as Datasets (docs/tasks.md).

Sequence classification uses each archive's own train/test files, read with aeon's own ``.ts``
reader from the files bundled in the wheel (never aeon's download path):

- ``japanese-vowels``: speech, 12 LPC cepstral coefficients per frame, 7-29 frames, 9 speakers;
- ``basic-motions``: 6-axis wrist IMU (accelerometer + gyroscope), 100 steps, 4 activities;
- ``pickup-gesture``: Wii remote Z acceleration, 29-361 steps, 10 gestures.

Streaming tasks have an output at every step and are built from whole real recordings:

- ``motion-stream``: BasicMotions recordings concatenated in a seeded order into longer streams,
  a class label per step, so the transitions between activities are part of the task. Train
  streams use only train recordings and test streams only test recordings;
- ``daphnet-predict`` / ``daphnet-denoise``: the 9 body-worn accelerometer channels of Daphnet
  S06R02E0 (64 Hz). Per-step regression: the next sample, or the clean signal under seeded
  Gaussian noise. The first 80% of the record is the training part, the later 20% the test part.

Values are the sensors' raw units; the Dataset's ``feature_mean`` / ``feature_std`` (training
split only) are there for a normalize stage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .data import Dataset, build, pad_sequences
from .errors import DatasetError

# name -> the archive's problem name (its folder and file stem inside aeon/datasets/data)
TS_PROBLEMS = {
    "japanese-vowels": "JapaneseVowels",
    "basic-motions": "BasicMotions",
    "pickup-gesture": "PickupGestureWiimoteZ",
}
DAPHNET_FILE = ("Daphnet_S06R02E0", "S06R02E0.csv")
STREAM_SEED = 0  # fixed like every other split: the test set must not depend on the training seed
STREAM_RECORDINGS = 4  # recordings per motion stream: 4 x 100 steps
STREAM_TRAIN_PASSES = 5  # each train recording appears in 5 streams, each time in other company
DAPHNET_WINDOW = 128  # steps per sequence: 2 s at 64 Hz
DAPHNET_TEST_FRACTION = 0.2
DAPHNET_NOISE = 0.5  # denoising noise std per channel, x its training std: input SNR 6 dB on the training part


def _aeon_data_dir(name: str) -> Path:
    try:
        import aeon
    except ImportError:
        raise DatasetError(
            f"{name}: needs the 'aeon' package, whose wheel ships the recordings: pip install 'edgeprune[tasks]'"
        ) from None
    return Path(aeon.__file__).parent / "datasets" / "data"


def _bundled(name: str, *parts: str) -> Path:
    path = _aeon_data_dir(name).joinpath(*parts)
    if not path.exists():
        raise DatasetError(
            f"{name}: {'/'.join(parts)} is not in the installed aeon wheel (edgeprune reads it from aeon 1.6)"
        )
    return path


def _read_ts(name: str, split: str) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """One split of a bundled .ts problem: sequences [T_i, F], their label strings, the class list."""
    problem = TS_PROBLEMS[name]
    path = _bundled(name, problem, f"{problem}_{split}.ts")
    from aeon.datasets import load_from_ts_file

    X, y, meta = load_from_ts_file(str(path), return_meta_data=True)
    return [np.asarray(x, np.float64).T for x in X], np.asarray(y), list(meta["class_values"])


def load_ts_problem(name: str) -> Dataset:
    """A classification archive with its own train/test split; variable lengths are padded."""
    seqs_train, labels_train, classes = _read_ts(name, "TRAIN")
    seqs_test, labels_test, _ = _read_ts(name, "TEST")
    steps = max(len(s) for s in seqs_train + seqs_test)  # one padded length for both splits
    X_train, len_train = pad_sequences(f"{name} TRAIN", seqs_train, steps)
    X_test, len_test = pad_sequences(f"{name} TEST", seqs_test, steps)
    index = {c: i for i, c in enumerate(classes)}  # the file header's class order
    try:
        y_train = np.array([index[c] for c in labels_train], np.int64)
        y_test = np.array([index[c] for c in labels_test], np.int64)
    except KeyError as e:
        raise DatasetError(f"{name}: label {e} is not among the file's classes {classes}") from None
    return build(
        name, X_train, y_train, X_test, y_test, train_lengths=len_train, test_lengths=len_test, num_classes=len(classes)
    )


def _streams(X: np.ndarray, y: np.ndarray, per_stream: int, passes: int, rng: np.random.Generator):
    """Concatenate whole recordings [N, T, F] into streams [N * passes / per_stream, per_stream * T, F]."""
    order = np.concatenate([rng.permutation(len(X)) for _ in range(passes)])
    groups = order[: len(order) // per_stream * per_stream].reshape(-1, per_stream)
    streams = X[groups].reshape(len(groups), -1, X.shape[2])  # recordings back to back in time
    labels = np.repeat(y[groups], X.shape[1], axis=1)  # each step carries its recording's class
    return streams, labels


def load_motion_stream(
    seed: int = STREAM_SEED, per_stream: int = STREAM_RECORDINGS, train_passes: int = STREAM_TRAIN_PASSES
) -> Dataset:
    motions = load_ts_problem("basic-motions")
    train_rng, test_rng = (np.random.default_rng([seed, k]) for k in (0, 1))
    X_train, y_train = _streams(motions.X_train, motions.y_train, per_stream, train_passes, train_rng)
    # one pass for the test streams: every test recording is scored exactly once
    X_test, y_test = _streams(motions.X_test, motions.y_test, per_stream, 1, test_rng)
    return build("motion-stream", X_train, y_train, X_test, y_test, labels="step", num_classes=motions.num_classes)


def read_daphnet() -> np.ndarray:
    """The Daphnet S06R02E0 record, [7040, 9] raw accelerometer values (ankle, thigh, trunk x 3 axes)."""
    path = _bundled("daphnet", *DAPHNET_FILE)
    from aeon.datasets import load_from_timeeval_csv_file

    X, _ = load_from_timeeval_csv_file(path)  # its anomaly column is all zero in this excerpt
    return np.asarray(X, np.float64)


def _windows(signal: np.ndarray, window: int, stride: int, horizon: int):
    """Inputs signal[t : t+W] and targets signal[t+h : t+W+h] for every start t on the stride."""
    starts = np.arange(0, len(signal) - window - horizon + 1, stride)
    if len(starts) == 0:
        raise DatasetError(
            f"daphnet: a part of {len(signal)} samples is shorter than one window of {window} + {horizon}"
        )
    index = starts[:, None] + np.arange(window)[None, :]
    return signal[index], signal[index + horizon]


def _daphnet_parts(window: int, horizon: int, test_fraction: float):
    signal = read_daphnet()
    cut = round(len(signal) * (1.0 - test_fraction))
    # training windows overlap by half for more examples; test windows tile the later part once
    train = _windows(signal[:cut], window, window // 2, horizon)
    test = _windows(signal[cut:], window, window, horizon)
    return train, test


def load_daphnet_predict(
    window: int = DAPHNET_WINDOW, horizon: int = 1, test_fraction: float = DAPHNET_TEST_FRACTION
) -> Dataset:
    (X_train, y_train), (X_test, y_test) = _daphnet_parts(window, horizon, test_fraction)
    return build("daphnet-predict", X_train, y_train, X_test, y_test, task="regress", labels="step")


def load_daphnet_denoise(
    window: int = DAPHNET_WINDOW,
    noise: float = DAPHNET_NOISE,
    test_fraction: float = DAPHNET_TEST_FRACTION,
    seed: int = STREAM_SEED,
) -> Dataset:
    (clean_train, _), (clean_test, _) = _daphnet_parts(window, 0, test_fraction)
    sigma = noise * clean_train.reshape(-1, clean_train.shape[2]).std(axis=0)  # per channel, train part only
    train_rng, test_rng = (np.random.default_rng([seed, k]) for k in (0, 1))
    noisy_train = clean_train + train_rng.normal(size=clean_train.shape) * sigma
    noisy_test = clean_test + test_rng.normal(size=clean_test.shape) * sigma
    return build("daphnet-denoise", noisy_train, clean_train, noisy_test, clean_test, task="regress", labels="step")


LOADERS = {
    "japanese-vowels": lambda: load_ts_problem("japanese-vowels"),
    "basic-motions": lambda: load_ts_problem("basic-motions"),
    "pickup-gesture": lambda: load_ts_problem("pickup-gesture"),
    "motion-stream": load_motion_stream,
    "daphnet-predict": load_daphnet_predict,
    "daphnet-denoise": load_daphnet_denoise,
}

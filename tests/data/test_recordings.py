"""Real recordings read from aeon's wheel: shapes, the archives' own splits, lengths, streams.

References are independent of edgeprune's loaders: aeon's per-problem loaders (another code path
in aeon) and pandas reading the Daphnet csv directly.
"""

import socket
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeprune import data, recordings
from edgeprune.errors import DatasetError

from . import load_any

aeon = pytest.importorskip("aeon", reason="the recordings ship in aeon's wheel: pip install 'edgeprune[tasks]'")


def test_every_recording_name_has_a_loader():
    assert set(recordings.LOADERS) == set(data.RECORDINGS)


def test_missing_aeon_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "aeon", None)  # import aeon -> ImportError
    with pytest.raises(DatasetError, match=r"japanese-vowels: needs the 'aeon' package.*edgeprune\[tasks\]"):
        data.load("japanese-vowels", layouts=data.ANY_LAYOUT, variable_length=True)


def test_default_load_refuses_what_last_step_classifiers_cannot_consume():
    assert data.load("basic-motions").X_train.shape == (40, 100, 6)  # fixed length, one class each
    with pytest.raises(DatasetError, match="japanese-vowels: sequences of 7-29 steps"):
        data.load("japanese-vowels")
    with pytest.raises(DatasetError, match="motion-stream: the data has class labels per step"):
        data.load("motion-stream")
    with pytest.raises(DatasetError, match="daphnet-predict: the data has regression targets per step"):
        data.load("daphnet-predict")


def test_loading_never_touches_the_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access while loading a bundled recording")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    for name in data.RECORDINGS:
        assert len(load_any(name).X_train)


def _check_against_sequences(X, lengths, reference):
    """Each padded row holds its reference sequence (aeon's [C, T_i]) and zeros after it."""
    assert len(X) == len(reference)
    for x, n, r in zip(X, lengths, reference):
        assert n == r.shape[-1]
        np.testing.assert_allclose(x[:n], np.asarray(r, np.float64).T, rtol=1e-6)
        assert not x[n:].any()


def test_japanese_vowels_variable_length_with_the_archive_split():
    from aeon.datasets import load_japanese_vowels

    ds = load_any("japanese-vowels")
    ref_train, ref_y_train = load_japanese_vowels(split="train")
    ref_test, ref_y_test = load_japanese_vowels(split="test")
    assert (len(ds.X_train), len(ds.X_test), ds.features, ds.num_classes) == (270, 370, 12, 9)
    assert ds.steps == 29 and ds.variable_length
    all_lengths = np.concatenate([ds.train_lengths, ds.test_lengths])
    assert (all_lengths.min(), all_lengths.max()) == (7, 29)
    _check_against_sequences(ds.X_train, ds.train_lengths, ref_train)
    _check_against_sequences(ds.X_test, ds.test_lengths, ref_test)
    # labels '1'..'9' -> 0..8; 30 utterances per speaker in the training file
    np.testing.assert_array_equal(ds.y_train, ref_y_train.astype(int) - 1)
    np.testing.assert_array_equal(ds.y_test, ref_y_test.astype(int) - 1)
    assert (np.bincount(ds.y_train) == 30).all()
    rows = np.concatenate([np.asarray(r, np.float64).T for r in ref_train])  # training split only
    np.testing.assert_allclose(ds.feature_mean, rows.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ds.feature_std, rows.std(axis=0), rtol=1e-5)


def test_pickup_gesture_is_univariate_variable_length():
    from aeon.datasets import load_pickup_gesture_wiimoteZ

    ds = load_any("pickup-gesture")
    ref_train, ref_y = load_pickup_gesture_wiimoteZ(split="train")
    assert (len(ds.X_train), len(ds.X_test), ds.features, ds.num_classes) == (50, 50, 1, 10)
    assert ds.variable_length and ds.steps == max(ds.train_lengths.max(), ds.test_lengths.max())
    _check_against_sequences(ds.X_train, ds.train_lengths, ref_train)
    np.testing.assert_array_equal(ds.y_train, ref_y.astype(int) - 1)


def test_basic_motions_raw_imu_values():
    from aeon.datasets import load_basic_motions

    ds = load_any("basic-motions")
    ref_X, ref_y = load_basic_motions(split="test")
    assert ds.X_train.shape == (40, 100, 6) and ds.X_test.shape == (40, 100, 6) and not ds.variable_length
    np.testing.assert_allclose(ds.X_test, ref_X.transpose(0, 2, 1), rtol=1e-6)  # raw, not scaled
    assert np.abs(ds.X_train).max() > 1.0
    classes = ["standing", "running", "walking", "badminton"]  # the file header's order
    assert [classes[i] for i in ds.y_test] == [str(c).lower() for c in ref_y]


def _recording_index(block, recordings_X):
    hits = [i for i, r in enumerate(recordings_X) if np.array_equal(block, r)]
    assert len(hits) == 1, "each 100-step block must be exactly one whole recording"
    return hits[0]


def test_motion_stream_is_whole_recordings_back_to_back():
    motions, ds = load_any("basic-motions"), load_any("motion-stream")
    assert (ds.task, ds.labels, ds.num_classes) == ("classify", "step", 4)
    assert ds.X_train.shape == (50, 400, 6) and ds.y_train.shape == (50, 400) and ds.X_test.shape == (10, 400, 6)
    for X, y, source, source_y, uses in (
        (ds.X_train, ds.y_train, motions.X_train, motions.y_train, 5),
        (ds.X_test, ds.y_test, motions.X_test, motions.y_test, 1),
    ):
        seen = []
        for stream, labels in zip(X, y):
            for k in range(4):
                i = _recording_index(stream[100 * k : 100 * (k + 1)], source)
                assert (labels[100 * k : 100 * (k + 1)] == source_y[i]).all()
                seen.append(i)
        assert np.bincount(seen, minlength=40).tolist() == [uses] * 40  # train and test never mix
    transitions = (np.diff(ds.y_test, axis=1) != 0).sum()
    assert 0 < transitions <= 30  # at most 3 boundaries per stream, most of them changes of activity


def test_motion_stream_order_is_seeded():
    a, b = recordings.load_motion_stream(), load_any("motion-stream")
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    other = recordings.load_motion_stream(seed=1)
    assert not np.array_equal(other.y_train, a.y_train)


def _daphnet_csv():
    import pandas as pd

    path = Path(aeon.__file__).parent / "datasets" / "data" / "Daphnet_S06R02E0" / "S06R02E0.csv"
    frame = pd.read_csv(path)
    return frame.drop(columns=["timestamp", "is_anomaly"]).to_numpy(np.float64)


def test_daphnet_predict_targets_are_the_next_sample_and_test_is_later():
    signal = _daphnet_csv()
    assert signal.shape == (7040, 9)
    ds = load_any("daphnet-predict")
    assert (ds.task, ds.labels, ds.outputs, ds.num_classes) == ("regress", "step", 9, 0)
    assert ds.X_train.shape[1:] == (128, 9) and ds.y_train.dtype == np.float32
    np.testing.assert_array_equal(ds.y_train[:, :-1], ds.X_train[:, 1:])  # next sample, inside each window
    cut = round(7040 * 0.8)
    for window, target in zip(ds.X_test, ds.y_test):
        start = next(s for s in range(cut, 7040 - 128) if np.array_equal(window, signal[s : s + 128]))
        np.testing.assert_array_equal(target, signal[start + 1 : start + 129])
    first_test = np.flatnonzero((signal == ds.X_test[0, 0]).all(axis=1))
    assert cut in first_test
    # no training window (inputs or targets) reaches into the held-out later part
    last_train = ds.y_train[-1, -1]
    assert np.flatnonzero((signal == last_train).all(axis=1)).min() < cut
    np.testing.assert_allclose(ds.X_train[0], signal[:128])
    np.testing.assert_allclose(ds.X_train[1], signal[64:192])  # half-overlapping training windows
    assert ds.X_test.shape[0] == (7040 - cut - 1) // 128
    assert np.abs(ds.X_train).max() > 1000  # raw accelerometer units


def test_daphnet_denoise_targets_are_the_clean_signal():
    clean = load_any("daphnet-predict")
    ds = load_any("daphnet-denoise")
    signal = _daphnet_csv()
    np.testing.assert_allclose(ds.y_train[0], signal[:128])
    noise = (ds.X_train - ds.y_train).reshape(-1, 9)
    train_std = ds.y_train.reshape(-1, 9).std(axis=0)
    np.testing.assert_allclose(noise.std(axis=0) / train_std, 0.5, rtol=0.05)
    assert abs(noise.mean()) < 0.05 * train_std.mean()
    assert ds.X_train.shape[1:] == clean.X_train.shape[1:]
    again = load_any("daphnet-denoise")
    np.testing.assert_array_equal(again.X_test, ds.X_test)  # seeded noise: same bytes every load

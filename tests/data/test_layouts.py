"""Dataset layouts, padding, statistics and the user .npz formats (no aeon needed)."""

import re

import numpy as np
import pytest

from edgeprune import data
from edgeprune.errors import DatasetError

from . import load_any


def _ragged(rng, lengths, features=3, offset=5.0):
    return [rng.normal(offset, 2.0, (n, features)) for n in lengths]


def test_pad_sequences_keeps_content_and_zero_pads():
    rng = np.random.default_rng(0)
    seqs = _ragged(rng, [4, 1, 6])
    X, lengths = data.pad_sequences("t", seqs)
    assert X.shape == (3, 6, 3) and X.dtype == np.float32 and list(lengths) == [4, 1, 6]
    for x, s, n in zip(X, seqs, lengths):
        np.testing.assert_allclose(x[:n], s, rtol=1e-6)
        assert not x[n:].any()
    X8, _ = data.pad_sequences("t", seqs, steps=8)
    assert X8.shape == (3, 8, 3) and not X8[:, 6:].any()


@pytest.mark.parametrize(
    "seqs, message",
    [
        ([np.zeros((3, 2)), np.zeros((0, 2))], "sequence 1 is empty"),
        ([np.zeros((3, 2)), np.zeros((3, 4))], "sequence 1 has 4 features, sequence 0 has 2"),
        ([np.zeros((3, 2)), np.full((2, 2), np.nan)], "sequence 1 has a NaN"),
        ([np.zeros(3)], r"must be \[T, F\]"),
        ([], "no sequences"),
    ],
)
def test_pad_sequences_refuses(seqs, message):
    with pytest.raises(DatasetError, match=message):
        data.pad_sequences("t", seqs)


def test_statistics_are_over_true_steps_only():
    rng = np.random.default_rng(1)
    seqs = _ragged(rng, [5, 2, 7, 3])
    X, lengths = data.pad_sequences("t", seqs)
    mean, std = data.step_statistics(X, lengths)
    rows = np.concatenate(seqs)  # reference: the unpadded steps, stacked
    np.testing.assert_allclose(mean, rows.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(std, rows.std(axis=0), rtol=1e-5)
    padded_mean = X.reshape(-1, 3).mean(axis=0)  # what forgetting the lengths would give
    assert not np.allclose(mean, padded_mean, rtol=1e-2)
    _, constant_std = data.step_statistics(np.ones((2, 3, 1), np.float32), np.array([3, 1]))
    assert constant_std[0] == 1.0  # a constant feature must not divide by zero later


def test_image_datasets_keep_their_layout():
    ds = data.load("digits")
    assert (ds.task, ds.labels, ds.outputs) == ("classify", "sequence", 10)
    assert (ds.train_lengths == 8).all() and (ds.test_lengths == 8).all() and not ds.variable_length
    np.testing.assert_allclose(ds.feature_mean, ds.X_train.reshape(-1, 8).mean(axis=0), rtol=1e-5)
    assert ds.target_mean is None


def _save(tmp_path, **arrays):
    path = tmp_path / "rec.npz"
    np.savez(path, **arrays)
    return str(path)


def test_npz_per_step_labels_with_lengths(tmp_path):
    rng = np.random.default_rng(2)
    N, T = 30, 9
    lengths = rng.integers(2, T + 1, N)
    X = rng.normal(100.0, 10.0, (N, T, 4))
    y = rng.integers(0, 3, (N, T))
    for i, n in enumerate(lengths):  # padding as users often write it: NaN inputs, junk labels
        X[i, n:] = np.nan
        y[i, n:] = 7
    ds = load_any(_save(tmp_path, X=X, y=y, lengths=lengths))
    assert (ds.task, ds.labels, ds.num_classes) == ("classify", "step", 3)
    assert len(ds.X_train) == 24 and len(ds.X_test) == 6 and ds.y_train.shape == (24, T)
    lens = np.concatenate([ds.train_lengths, ds.test_lengths])
    assert sorted(lens) == sorted(lengths)
    for X_s, y_s, l_s in ((ds.X_train, ds.y_train, ds.train_lengths), (ds.X_test, ds.y_test, ds.test_lengths)):
        for x, lab, n in zip(X_s, y_s, l_s):
            i = next(j for j in range(N) if lengths[j] == n and np.allclose(X[j, :n], x[:n], rtol=1e-6))
            np.testing.assert_array_equal(lab[:n], y[i, :n])
            assert (lab[n:] == data.PAD_LABEL).all() and not x[n:].any()
    # raw values: only the original [N] layout is squeezed into [0, 1]
    assert ds.X_train.max() > 50
    true_rows = np.concatenate([x[:n] for x, n in zip(ds.X_train, ds.train_lengths)])
    np.testing.assert_allclose(ds.feature_mean, true_rows.mean(axis=0), rtol=1e-5)
    again = load_any(_save(tmp_path, X=X, y=y, lengths=lengths))
    np.testing.assert_array_equal(again.X_test, ds.X_test)  # fixed split


def test_npz_regression_targets(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(0, 5, (20, 6, 2))
    per_step = np.cumsum(X, axis=1)  # a target that needs memory: the running sum
    ds = load_any(_save(tmp_path, X=X, y=per_step, X_test=X[:4], y_test=per_step[:4]))
    assert (ds.task, ds.labels, ds.num_classes, ds.outputs) == ("regress", "step", 0, 2)
    assert ds.y_train.dtype == np.float32 and ds.y_train.shape == (20, 6, 2)
    np.testing.assert_allclose(ds.X_train, X, rtol=1e-6)  # not rescaled
    np.testing.assert_allclose(ds.target_mean, per_step.reshape(-1, 2).mean(axis=0), rtol=1e-5)
    last = load_any(_save(tmp_path, X=X, y=per_step[:, -1]))
    assert (last.task, last.labels, last.outputs) == ("regress", "sequence", 2) and last.y_train.shape == (16, 2)


def test_npz_original_layout_with_lengths_scales_over_true_steps(tmp_path):
    X = np.full((10, 5, 1), 1e6)  # huge padding values that must not enter the range
    lengths = np.array([2, 5] * 5)
    for i, n in enumerate(lengths):
        X[i, :n, 0] = np.linspace(10, 20, n)
    ds = load_any(_save(tmp_path, X=X, y=np.arange(10) % 2, lengths=lengths))
    rows = np.concatenate([x[:n] for x, n in zip(ds.X_train, ds.train_lengths)])
    assert rows.min() == 0.0 and rows.max() == 1.0


def test_require_names_both_layouts(tmp_path):
    ds = load_any(_save(tmp_path, X=np.zeros((10, 4, 2)), y=np.zeros((10, 4), int)))
    ds.require("classify", "step")
    with pytest.raises(DatasetError, match="class labels per step but the model gives class labels per sequence"):
        ds.require("classify", "sequence")
    with pytest.raises(DatasetError, match="regression targets per step"):
        ds.require("regress", "step")


def test_default_load_takes_only_what_last_step_classifiers_consume(tmp_path):
    X = np.random.default_rng(4).random((10, 6, 2))
    cases = [
        (
            {"X": X, "y": np.zeros((10, 6), int)},
            "the data has class labels per step; this command takes class labels per sequence",
        ),
        (
            {"X": X, "y": np.zeros((10, 6, 2))},
            "the data has regression targets per step; this command takes class labels",
        ),
        ({"X": X, "y": np.zeros((10, 2))}, "the data has regression targets per sequence"),
        (
            {"X": X, "y": np.arange(10) % 2, "lengths": np.array([3, 6] * 5)},
            "sequences of 3-6 steps; this command needs sequences of one length",
        ),
    ]
    for arrays, message in cases:
        path = _save(tmp_path, **arrays)
        with pytest.raises(DatasetError, match=message):
            data.load(path)
        assert load_any(path).name == "rec"  # accepted by code that asks for it
    full = data.load(_save(tmp_path, X=X, y=np.arange(10) % 2, lengths=np.full(10, 6)))
    assert not full.variable_length  # lengths that cover every step change nothing
    steps = data.load(_save(tmp_path, X=X, y=np.zeros((10, 6), int)), layouts=frozenset({("classify", "step")}))
    assert steps.labels == "step"


def _bad(tmp_path, **arrays):
    with pytest.raises(DatasetError) as info:
        load_any(_save(tmp_path, **arrays))
    message = str(info.value)
    assert "\n" not in message and "rec.npz" in message
    return message


X4 = np.zeros((4, 6, 3))


@pytest.mark.parametrize(
    "arrays, expected",
    [
        ({"X": np.zeros((0, 6, 3)), "y": np.zeros(0, int)}, "X is empty"),
        ({"X": np.zeros((4, 0, 3)), "y": np.zeros(4, int)}, "X is empty"),
        (
            {"X": X4, "y": np.zeros(4, int), "lengths": np.array([6, 0, 6, 6])},
            r"sequence 1 of X is empty \(lengths\[1\] = 0\)",
        ),
        (
            {"X": X4, "y": np.zeros(4, int), "lengths": np.array([6, 7, 6, 6])},
            r"lengths\[1\] = 7 exceeds the 6 steps of X",
        ),
        (
            {"X": X4, "y": np.zeros(4, int), "lengths": np.array([6, 6, 6])},
            r"lengths must be integers \[N\] with N = 4",
        ),
        ({"X": X4, "y": np.zeros(4, int), "lengths": np.full(4, 6.0)}, "lengths must be integers"),
        (
            {"X": np.where(np.arange(6)[None, :, None] == 2, np.nan, X4), "y": np.zeros(4, int)},
            "NaN or inf at sequence 0, step 2, feature 0 .*give their true lengths as 'lengths'",
        ),
        (
            {
                "X": np.where(np.arange(6)[None, :, None] == 2, np.nan, X4),
                "y": np.zeros(4, int),
                "lengths": np.full(4, 4),
            },
            "NaN or inf at sequence 0, step 2",
        ),
        ({"X": X4, "y": np.zeros(5, int)}, r"y must be \[N\] with N = 4 .*got shape \[5\]"),
        ({"X": X4, "y": np.zeros((3, 6), int)}, r"y must be \[N, ...\] with N = 4"),
        ({"X": X4, "y": np.zeros((4, 5), int)}, "y has 5 steps per sequence but X has 6"),
        ({"X": X4, "y": -np.ones((4, 6), int)}, "non-negative integer class labels"),
        ({"X": X4, "y": np.zeros((4, 6, 2, 1))}, r"float targets \[N, C\] or \[N, T, C\]"),
        ({"X": X4, "y": np.zeros((4, 5, 2))}, "y has 5 steps per sequence but X has 6"),
        ({"X": X4, "y": np.full((4, 2), np.nan)}, "y must be finite numbers"),
        ({"X": X4, "y": np.zeros(4)}, r"integer class labels \[N\] \(regression targets are float"),
        (
            {"X": X4, "y": np.zeros(4, int), "X_test": X4, "y_test": np.zeros((4, 6), int)},
            "y_test is classify/step but y is classify/sequence",
        ),
        ({"X": X4, "y": np.zeros(4, int), "lengths_test": np.full(4, 6)}, "lengths_test given without X_test"),
        (
            {"X": X4, "y": np.zeros((4, 6, 2)), "X_test": X4, "y_test": np.zeros((4, 6, 3))},
            "y_test has 3 targets per entry, y has 2",
        ),
        (
            {
                "X": X4,
                "y": np.zeros(4, int),
                "X_test": np.zeros((2, 6, 3)),
                "y_test": np.zeros(2, int),
                "lengths_test": np.array([3, 0]),
            },
            r"sequence 1 of X_test is empty \(lengths_test\[1\] = 0\)",
        ),
    ],
)
def test_bad_npz_is_one_line_naming_the_problem(tmp_path, arrays, expected):
    message = _bad(tmp_path, **arrays)
    assert re.search(expected, message), message


def test_ragged_npz_is_named(tmp_path):
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.zeros((3, 2)), np.zeros((5, 2))
    assert "'X' is an object array, not numbers: ragged sequences (pad them" in _bad(
        tmp_path, X=ragged, y=np.zeros(2, int)
    )


def test_npy_named_npz_is_refused(tmp_path):
    np.save(tmp_path / "rec.npy", np.zeros((2, 3, 1)))
    (tmp_path / "rec.npy").rename(tmp_path / "rec.npz")
    with pytest.raises(DatasetError, match="not a .npz archive"):
        load_any(str(tmp_path / "rec.npz"))


def test_padded_labels_may_be_anything(tmp_path):
    y = np.zeros((4, 6), int)
    y[:, 3:] = -5  # padding: not checked, replaced by PAD_LABEL
    ds = load_any(_save(tmp_path, X=X4, y=y, lengths=np.full(4, 3), X_test=X4, y_test=y, lengths_test=np.full(4, 3)))
    assert (ds.y_train[:, 3:] == data.PAD_LABEL).all() and (ds.y_train[:, :3] == 0).all()


def test_data_layer_needs_no_torch(tmp_path):
    """The lead's IR v2 consumes these arrays from torch-free code (normalize stage, verification)."""
    import subprocess
    import sys
    from pathlib import Path

    path = _save(tmp_path, X=np.zeros((10, 4, 2)), y=np.zeros((10, 4), int), lengths=np.full(10, 3))
    code = (
        "import sys, edgeprune.data as d, edgeprune.user_data, edgeprune.recordings; "
        f"ds = d.load({path!r}, layouts=d.ANY_LAYOUT, variable_length=True); ds.feature_mean; "
        "print('torch' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_recording_missing_from_the_wheel_is_named(tmp_path, monkeypatch):
    from edgeprune import recordings

    monkeypatch.setattr(recordings, "_aeon_data_dir", lambda name: tmp_path)  # an aeon without the files
    with pytest.raises(
        DatasetError, match=r"daphnet: Daphnet_S06R02E0/S06R02E0.csv is not in the installed aeon wheel"
    ):
        load_any("daphnet-predict")
    with pytest.raises(DatasetError, match="JapaneseVowels/JapaneseVowels_TRAIN.ts is not in the installed aeon"):
        load_any("japanese-vowels")

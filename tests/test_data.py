import gzip
import warnings

import numpy as np
import pytest

from edgeprune import data
from edgeprune.errors import DatasetError


def test_digits_shape_range_and_fixed_split():
    a, b = data.load("digits"), data.load("digits")
    assert a.X_train.shape[1:] == (8, 8) and a.num_classes == 10
    assert len(a.X_train) + len(a.X_test) == 1797
    assert a.X_train.dtype == np.float32 and 0.0 <= a.X_train.min() and a.X_train.max() <= 1.0
    assert a.X_train.max() == 1.0  # scaled by 16, not left in 0..16
    np.testing.assert_array_equal(a.X_test, b.X_test)  # deterministic split
    # stratified: every class in the test split
    assert set(np.unique(a.y_test)) == set(range(10))


def test_mnist5k_rows_are_image_rows():
    ds = data.load("mnist5k")
    assert ds.X_train.shape[1:] == (28, 28) and len(ds.X_train) == 4000 and len(ds.X_test) == 1000
    assert ds.X_train.max() <= 1.0 and ds.X_train.max() > 0.9


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_reads_idx_from_data_dir(tmp_path):
    rng = np.random.default_rng(0)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (20, 28, 28)))
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(20) % 10)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.full((5, 28, 28), 255))
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(5))
    ds = data.load("fashion-mnist", tmp_path)
    assert ds.X_train.shape == (20, 28, 28) and ds.X_test.shape == (5, 28, 28)
    assert np.all(ds.X_test == 1.0) and list(ds.y_test) == [0, 1, 2, 3, 4]


def test_fashion_mnist_missing_says_how_to_install(tmp_path):
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        data.load("fashion-mnist", tmp_path)


def test_truncated_idx_is_refused(tmp_path):
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((2, 28, 28)))
    raw = gzip.open(tmp_path / "train-images-idx3-ubyte.gz").read()[:-10]
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(raw)
    for stem in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        _write_idx(tmp_path / f"{stem}.gz", np.zeros((2,) if "labels" in stem else (2, 28, 28)))
    with pytest.raises(DatasetError, match="truncated"):
        data.load("fashion-mnist", tmp_path)


def test_user_npz_is_scaled_and_split(tmp_path):
    X = np.random.default_rng(0).normal(5, 3, (50, 6, 3))
    y = np.arange(50) % 5
    np.savez(tmp_path / "mine.npz", X=X, y=y)
    ds = data.load(str(tmp_path / "mine.npz"))
    assert ds.X_train.shape[1:] == (6, 3) and len(ds.X_train) == 40 and ds.num_classes == 5
    assert ds.X_train.min() >= 0.0 and ds.X_train.max() <= 1.0


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"X": np.zeros((4, 3))}, "missing array 'y'"),
        ({"X": np.zeros((4, 3)), "y": np.zeros(4, int)}, r"must be \[N, T, F\]"),
        ({"X": np.zeros((4, 2, 3)), "y": np.zeros(5, int)}, "must be"),
        ({"X": np.full((4, 2, 3), np.nan), "y": np.zeros(4, int)}, "finite"),
        ({"X": np.zeros((4, 2, 3)), "y": np.zeros(4)}, "integer class labels"),
    ],
)
def test_bad_user_npz(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DatasetError, match=message):
        data.load(str(tmp_path / "bad.npz"))


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"X": np.zeros((0, 2, 3)), "y": np.zeros(0, int)}, r"X is empty, shape \[0, 2, 3\]"),
        ({"X": np.zeros((4, 0, 3)), "y": np.zeros(4, int)}, r"X is empty, shape \[4, 0, 3\]"),
        (
            {"X": np.zeros((4, 2, 3), np.complex64), "y": np.zeros(4, int)},
            r"X must be finite numbers, got dtype complex64",
        ),
        ({"X": np.zeros((4, 2, 3), bool), "y": np.zeros(4, int)}, r"X must be finite numbers, got dtype bool"),
        ({"X": np.zeros((4, 2, 3)), "y": np.full(4, 2**40)}, r"class labels in \[0, 1048576\)"),
        (
            {
                "X": np.zeros((4, 2, 3)),
                "y": np.zeros(4, int),
                "X_test": np.zeros((0, 2, 3)),
                "y_test": np.zeros(0, int),
            },
            r"X_test is empty, shape \[0, 2, 3\]",
        ),
        (
            {"X": np.array([{"a": 1}] * 4, dtype=object), "y": np.zeros(4, int)},
            r"Python objects \(never loaded: a pickle can run code\)",
        ),
    ],
)
def test_damaged_user_npz_is_one_line(tmp_path, arrays, message):
    """Before: empty sets crashed inside scikit-learn or gave NaN accuracy (and NaN metadata), complex X printed a
    ComplexWarning, a label of 2**40 made np.bincount try to allocate 8 TiB."""
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DatasetError, match=message):
        data.load(str(tmp_path / "bad.npz"))


def test_foreign_or_truncated_npz_is_one_line(tmp_path):
    np.savez(tmp_path / "good.npz", X=np.zeros((40, 2, 3)), y=np.arange(40) % 2)
    (tmp_path / "cut.npz").write_bytes((tmp_path / "good.npz").read_bytes()[:300])
    np.save(tmp_path / "single.npy", np.zeros(3))
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    (tmp_path / "dir.npz").mkdir()
    for name, message in (
        ("cut.npz", r"not a readable .npz file \(damaged or another format\)"),
        ("single.npz", "a single .npy array"),
        ("dir.npz", "is a directory"),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy's leaked-handle ResourceWarning used to follow the error
            with pytest.raises(DatasetError, match=message):
                data.load(str(tmp_path / name))


def test_unknown_dataset_lists_choices():
    with pytest.raises(DatasetError, match="digits, mnist5k, fashion-mnist"):
        data.load("cifar")


def test_debian_fashion_mnist_when_installed():
    if not (data.FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("dataset-fashion-mnist not installed (apt-get install dataset-fashion-mnist; CI installs it)")
    ds = data.load("fashion-mnist")
    assert ds.X_train.shape == (60000, 28, 28) and ds.X_test.shape == (10000, 28, 28)
    assert ds.num_classes == 10 and ds.X_train.max() == 1.0

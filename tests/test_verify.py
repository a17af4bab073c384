import numpy as np
import pytest

from edgeprune.verify import Tolerance, compare


def test_passes_within_tolerance():
    ref = np.array([[0.0, 1.0], [2.0, 0.0]])
    r = compare("a", "rt", ref + 5e-5, ref)
    assert r.passed and r.max_abs_error == pytest.approx(5e-5) and r.argmax_agreement == 1.0


def test_fails_on_large_error():
    ref = np.array([[0.0, 1.0]])
    assert not compare("a", "rt", ref + 1e-3, ref).passed


def test_flipped_predictions_fail_a_loose_error_bound():
    """Quantized artifacts get a loose error bound; the agreement bound is what holds them."""
    ref = np.array([[0.0, 1.0], [1.0, 0.0]])
    got = np.array([[1.0, 0.0], [1.0, 0.0]])
    r = compare("a", "rt", got, ref, Tolerance(max_abs=10.0, min_agreement=0.99))
    assert not r.passed and r.argmax_agreement == 0.5
    assert compare("a", "rt", got, ref, Tolerance(max_abs=10.0, min_agreement=0.5)).passed


def test_near_tie_flip_within_the_error_bound_passes_with_enough_samples():
    ref = np.vstack([[[0.5, 0.50001]], np.tile([[0.0, 1.0]], (199, 1))])
    got = ref.copy()
    got[0] = [0.50001, 0.5]
    r = compare("a", "rt", got, ref)
    assert r.passed and r.argmax_agreement == 0.995


def test_nan_or_wrong_shape_fails():
    ref = np.zeros((2, 3))
    assert not compare("a", "rt", np.full((2, 3), np.nan), ref).passed
    assert not compare("a", "rt", np.zeros((2, 2)), ref).passed

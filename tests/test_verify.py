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


def test_regression_bound_scales_with_the_outputs_magnitude():
    """Outputs in the data's units (accelerometer counts ~4000): fp32 rounding of such values is ~5e-4,
    so the 1e-4 bound is relative beyond magnitude 1; small outputs keep the absolute bound."""
    rng = np.random.default_rng(0)
    ref = rng.uniform(-4000, 4000, (3, 5, 2))
    rounded = ref.astype(np.float32).astype(np.float64)  # what an exact fp32 computation gives
    r = compare("a", "rt", rounded, ref, task="regress")
    assert r.passed and r.max_abs_error > 1e-4 and r.scale == pytest.approx(np.max(np.abs(ref)))
    assert not compare("a", "rt", ref + 1.0, ref, task="regress").passed  # 1 count in 4000 is too much
    small = rng.uniform(-0.5, 0.5, (3, 2))
    assert not compare("a", "rt", small + 2e-4, small, task="regress").passed
    assert compare("a", "rt", small + 5e-5, small, task="regress").passed


def _int8_like(n: int, flips: list[int], margin: float, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """n two-class outputs, clear margins except the ``flips``, whose top two are ``margin`` apart and come
    out swapped; every other output off by ``noise`` (an int8 artifact's rounding)."""
    ref = np.tile([[0.0, 4.0]], (n, 1))
    got = ref + np.where(np.arange(2) == 0, noise, -noise)
    for i in flips:
        ref[i] = [0.0, margin]
        got[i] = [margin / 2 + 0.01, margin / 2 - 0.01]
    return got, ref


def test_a_near_tie_flip_at_the_artifacts_error_level_passes_a_quantized_artifact():
    """One flip on 64 samples is 98.4% agreement: it passes when the reference's top two logits there are
    within twice the error the artifact shows on the outputs that agree."""
    tolerance = Tolerance(max_abs=0.5, min_agreement=0.99)
    got, ref = _int8_like(64, [5], margin=0.3, noise=0.2)
    r = compare("a", "rt", got, ref, tolerance)
    assert r.argmax_agreement == pytest.approx(63 / 64)
    assert r.passed and r.flips_within_error == 1
    assert "every disagreement within the error bound: 1" in r.describe()


def test_a_flip_beyond_the_artifacts_error_level_or_too_many_flips_still_fail():
    tolerance = Tolerance(max_abs=0.5, min_agreement=0.99)
    # the same flip where the artifact is otherwise exact to 0.01: a margin of 0.3 is not a near tie for it
    got, ref = _int8_like(64, [5], margin=0.3, noise=0.01)
    r = compare("a", "rt", got, ref, tolerance)
    assert not r.passed and r.flips_within_error == 0
    # every flip a near tie, but 5 of 64 (92%): below the floor
    got, ref = _int8_like(64, [1, 2, 3, 4, 5], margin=0.3, noise=0.2)
    r = compare("a", "rt", got, ref, tolerance)
    assert not r.passed and r.flips_within_error == 5 and r.argmax_agreement == pytest.approx(59 / 64)
    # agreement above min_agreement: as before, the flip count is not needed
    got, ref = _int8_like(200, [5], margin=0.3, noise=0.01)
    assert compare("a", "rt", got, ref, tolerance).passed

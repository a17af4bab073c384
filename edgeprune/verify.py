"""The verification gate: run an artifact on real samples and compare it with the source model.

An artifact passes when its largest logit error is within tolerance and enough of its
predictions agree with the reference's. For fp32 the error bound is the real check (a prediction
can only flip where the reference's top two logits are within twice the error); the agreement
bound is what quantized artifacts are held to.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from . import metrics
from .backends.base import Runner


@dataclass(frozen=True)
class Tolerance:
    max_abs: float = 1e-4  # largest output error; fp32 artifacts
    min_agreement: float = 0.99  # fraction of outputs whose argmax must agree (classification)
    # below min_agreement, a quantized artifact still passes when every disagreement is a near tie at its
    # own error level (the reference's top two logits there within twice the largest error of the outputs
    # that agree) and the agreement stays above this floor: on 64 samples one borderline flip is 98.4%
    min_agreement_explained: float = 0.95
    max_rel: float | None = None  # regression: largest error relative to the reference's range


FP32 = Tolerance()


@dataclass
class VerificationResult:
    artifact: str
    runtime: str
    samples: int
    max_abs_error: float
    argmax_agreement: float  # NaN for regression
    passed: bool
    tolerance: Tolerance
    mode: str = "sequence"  # how it was driven: whole sequences, or step by step
    task: str = "classify"
    max_rel_error: float = 0.0  # error / range of the reference outputs
    scale: float = 1.0  # regression: max_abs applies per unit of max(1, max|reference|) (see compare)
    flips_within_error: int = 0  # disagreements, when each is a near tie at the artifact's error level

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tolerance"] = {k: v for k, v in asdict(self.tolerance).items() if v is not None}
        if self.task != "classify":
            d["argmax_agreement"] = None
        return d

    def describe(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        if self.task == "classify":
            check = f"argmax agreement {self.argmax_agreement:.2%}"
            if self.flips_within_error and self.argmax_agreement < self.tolerance.min_agreement:
                check += f" (every disagreement within the error bound: {self.flips_within_error})"
        else:
            check = f"relative error {self.max_rel_error:.2e}"
        return (
            f"{self.artifact} [{self.runtime}, {self.mode}]: max|err| {self.max_abs_error:.2e} "
            f"(tol {self.tolerance.max_abs:.0e}{f' x {self.scale:.3g}' if self.scale != 1.0 else ''}), {check} "
            f"on {self.samples} samples: {verdict}"
        )


def compare(
    artifact: str,
    runtime: str,
    outputs: np.ndarray,
    reference: np.ndarray,
    tolerance: Tolerance = FP32,
    mode: str = "sequence",
    task: str = "classify",
) -> VerificationResult:
    """Outputs [N, C] or [N, T, C] against the reference's: max-abs error, plus argmax agreement of every
    output (classify) or the error relative to the reference's range (regress)."""
    outputs = np.asarray(outputs, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    nan = float("nan")
    if outputs.shape != reference.shape or not np.all(np.isfinite(outputs)):
        return VerificationResult(
            artifact,
            runtime,
            len(reference),
            float("inf"),
            0.0 if task == "classify" else nan,
            False,
            tolerance,
            mode,
            task,
            float("inf"),
        )
    err = float(np.max(np.abs(outputs - reference))) if outputs.size else 0.0
    span = float(np.ptp(reference)) if reference.size else 0.0
    rel = err / span if span > 0 else (0.0 if err == 0 else float("inf"))
    flips = 0
    if task == "classify":
        agreement = metrics.agreement(outputs, reference)
        scale = 1.0
        if agreement >= tolerance.min_agreement:
            passed = err <= tolerance.max_abs
        else:
            explained, flips = _flips_within_error(outputs, reference)
            flips = flips if explained else 0
            passed = err <= tolerance.max_abs and explained and agreement >= tolerance.min_agreement_explained
    else:
        # Regression outputs carry the data's units (accelerometer counts in the thousands), where fp32
        # rounding alone exceeds an absolute 1e-4: the bound is absolute for outputs of magnitude up to 1
        # and relative to the largest reference output beyond (as a logit's bound would be).
        agreement = nan
        scale = max(1.0, float(np.max(np.abs(reference)))) if reference.size else 1.0
        passed = err <= tolerance.max_abs * scale and (tolerance.max_rel is None or rel <= tolerance.max_rel)
    return VerificationResult(
        artifact, runtime, len(reference), err, agreement, bool(passed), tolerance, mode, task, rel, scale, flips
    )


def _flips_within_error(outputs: np.ndarray, reference: np.ndarray) -> tuple[bool, int]:
    """Whether every output whose argmax disagrees is a near tie at the artifact's own error level: the
    reference's top two logits there within twice the largest error of the outputs that agree (at the flip
    itself the error is always at least half the margin, so it cannot be the yardstick). A wild error on
    one sample is not explained by small errors elsewhere. Also returns how many disagree."""
    out = outputs.reshape(-1, outputs.shape[-1])
    ref = reference.reshape(-1, reference.shape[-1])
    flipped = out.argmax(axis=1) != ref.argmax(axis=1)
    if not flipped.any():
        return True, 0
    if flipped.all():
        return False, int(flipped.sum())
    level = float(np.max(np.abs(out[~flipped] - ref[~flipped])))
    top2 = np.sort(ref[flipped], axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    return bool(np.all(margin <= 2 * level)), int(flipped.sum())


def verify_runner(
    artifact: str,
    runtime: str,
    runner: Runner,
    X: np.ndarray,
    reference: np.ndarray,
    tolerance: Tolerance = FP32,
    streaming: bool = False,
    task: str = "classify",
) -> VerificationResult:
    """Run ``runner`` on ``X`` (whole sequences, or one step per call) and compare with ``reference``,
    whose shape says whether outputs are per sequence [N, C] or per step [N, T, C]."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    every = np.asarray(reference).ndim == 3
    outputs = runner.stream(X, every) if streaming else runner.run(X)
    return compare(artifact, runtime, outputs, reference, tolerance, "step" if streaming else "sequence", task)

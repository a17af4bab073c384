"""The verification gate: run an artifact on real samples and compare it with the source model.

An artifact passes when its largest logit error is within tolerance and enough of its
predictions agree with the reference's. For fp32 the error bound is the real check (a prediction
can only flip where the reference's top two logits are within twice the error); the agreement
bound is what quantized artifacts are held to.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .backends.base import Runner


@dataclass(frozen=True)
class Tolerance:
    max_abs: float = 1e-4  # largest logit error; fp32 artifacts
    min_agreement: float = 0.99  # fraction of samples whose argmax must agree


FP32 = Tolerance()


@dataclass
class VerificationResult:
    artifact: str
    runtime: str
    samples: int
    max_abs_error: float
    argmax_agreement: float
    passed: bool
    tolerance: Tolerance
    mode: str = "sequence"  # how it was driven: whole sequences, or step by step

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tolerance"] = asdict(self.tolerance)
        return d

    def describe(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        return (
            f"{self.artifact} [{self.runtime}, {self.mode}]: max|err| {self.max_abs_error:.2e} "
            f"(tol {self.tolerance.max_abs:.0e}), argmax agreement {self.argmax_agreement:.2%} "
            f"on {self.samples} samples: {verdict}"
        )


def compare(artifact: str, runtime: str, logits: np.ndarray, reference: np.ndarray,
            tolerance: Tolerance = FP32, mode: str = "sequence") -> VerificationResult:
    logits = np.asarray(logits, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if logits.shape != reference.shape or not np.all(np.isfinite(logits)):
        return VerificationResult(artifact, runtime, len(reference), float("inf"), 0.0, False, tolerance, mode)
    err = float(np.max(np.abs(logits - reference))) if logits.size else 0.0
    agreement = float(np.mean(logits.argmax(axis=1) == reference.argmax(axis=1))) if len(reference) else 1.0
    passed = err <= tolerance.max_abs and agreement >= tolerance.min_agreement
    return VerificationResult(artifact, runtime, len(reference), err, agreement, bool(passed), tolerance, mode)


def run_streaming(runner: Runner, X: np.ndarray) -> np.ndarray:
    """Drive a runner one step at a time over whole sequences; logits after the last step."""
    runner.reset(len(X))
    logits = None
    for t in range(X.shape[1]):
        logits = runner.step(np.ascontiguousarray(X[:, t]))
    return np.asarray(logits)


def verify_runner(artifact: str, runtime: str, runner: Runner, X: np.ndarray, reference: np.ndarray,
                  tolerance: Tolerance = FP32, streaming: bool = False) -> VerificationResult:
    X = np.ascontiguousarray(X, dtype=np.float32)
    logits = run_streaming(runner, X) if streaming else runner.run(X)
    return compare(artifact, runtime, logits, reference, tolerance, "step" if streaming else "sequence")

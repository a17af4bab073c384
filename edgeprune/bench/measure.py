"""Measuring one Runner in-process: streaming and whole-sequence latency, accuracy.

Both latency modes use batch 1 (one stream, as on a device). Step latency cycles through the
time steps of real test sequences and resets the state at each sequence boundary outside the
timed region; sequence latency runs one whole test sequence per call.
"""

from __future__ import annotations

import numpy as np

from ..backends.base import Runner
from .stats import Budget, sample_calls, summarize

WALL_CLOCK = "time.perf_counter_ns around each Python call"


def step_latency(runner: Runner, X: np.ndarray, budget: Budget) -> dict:
    K, T = X.shape[0], X.shape[1]
    steps = [np.ascontiguousarray(X[k, t][None], dtype=np.float32) for k in range(K) for t in range(T)]

    def between(i: int) -> None:
        if i % T == 0:
            runner.reset(1)

    def call(i: int) -> None:
        runner.step(steps[i % len(steps)])

    measured = sample_calls(call, budget, between=between)
    return summarize(measured.samples, "ns", clock=WALL_CLOCK, stopped_by=measured.stopped_by, warmup=measured.warmup)


def sequence_latency(runner: Runner, X: np.ndarray, budget: Budget) -> dict:
    seqs = [np.ascontiguousarray(X[k:k + 1], dtype=np.float32) for k in range(X.shape[0])]

    def call(i: int) -> None:
        runner.run(seqs[i % len(seqs)])

    measured = sample_calls(call, budget)
    return summarize(measured.samples, "ns", clock=WALL_CLOCK, stopped_by=measured.stopped_by, warmup=measured.warmup)


LATENCY = {"step": step_latency, "sequence": sequence_latency}


def logits_of(runner: Runner, X: np.ndarray, mode: str, batch: int = 256) -> np.ndarray:
    """Logits of every sequence in ``X``, driven whole-sequence or one step per call."""
    out = []
    for start in range(0, len(X), batch):
        chunk = np.ascontiguousarray(X[start:start + batch], dtype=np.float32)
        out.append(np.asarray(runner.stream(chunk) if mode == "step" else runner.run(chunk), dtype=np.float32))
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def accuracy_record(logits: np.ndarray, y: np.ndarray, mode: str, reference: np.ndarray | None = None,
                    reference_name: str | None = None) -> dict:
    """Accuracy against the labels; agreement and largest logit gap against a reference runtime."""
    pred = logits.argmax(axis=1)
    record = {"accuracy": float(np.mean(pred == y)) if len(y) else None, "samples": int(len(y)), "mode": mode}
    if reference is not None and reference.shape == logits.shape:
        record["reference"] = reference_name
        record["max_abs_vs_reference"] = float(np.max(np.abs(logits.astype(np.float64) - reference))) if logits.size else 0.0
        record["agreement_vs_reference"] = float(np.mean(pred == reference.argmax(axis=1))) if len(y) else None
    return record

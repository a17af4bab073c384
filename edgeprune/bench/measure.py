"""Measuring one Runner in-process: streaming and whole-sequence latency, the model's outputs, and
their score on the test split.

Both latency modes use batch 1 (one stream, as on a device). Step latency cycles through the
true time steps of real test sequences and resets the state at each sequence boundary outside the
timed region; sequence latency runs one whole test sequence (cut to its true length) per call.

Outputs keep the model's layout: [N, C] for output ``last`` (each sequence's output at its own
last true step), [N, T, C] for output ``every``. The step axis is ``edgeprune.metrics``'s
(``last_steps``, ``by_length``, ``valid_steps``) and the streaming loop is ``Runner.stream``.
"""

from __future__ import annotations

import numpy as np

from .. import metrics
from ..backends.base import Runner
from .stats import Budget, sample_calls, summarize

WALL_CLOCK = "time.perf_counter_ns around each Python call"


def _lengths(X: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    return np.full(len(X), X.shape[1], np.int64) if lengths is None else np.asarray(lengths, np.int64)


def step_latency(runner: Runner, X: np.ndarray, budget: Budget, lengths: np.ndarray | None = None) -> dict:
    steps, starts = [], set()
    for k, length in enumerate(_lengths(X, lengths)):
        starts.add(len(steps))
        steps += [np.ascontiguousarray(X[k, t][None], dtype=np.float32) for t in range(int(length))]

    def between(i: int) -> None:
        if i % len(steps) in starts:
            runner.reset(1)

    def call(i: int) -> None:
        runner.step(steps[i % len(steps)])

    measured = sample_calls(call, budget, between=between)
    return summarize(measured.samples, "ns", clock=WALL_CLOCK, stopped_by=measured.stopped_by, warmup=measured.warmup)


def sequence_latency(runner: Runner, X: np.ndarray, budget: Budget, lengths: np.ndarray | None = None) -> dict:
    seqs = [np.ascontiguousarray(X[k : k + 1, : int(n)], dtype=np.float32) for k, n in enumerate(_lengths(X, lengths))]

    def call(i: int) -> None:
        runner.run(seqs[i % len(seqs)])

    measured = sample_calls(call, budget)
    return summarize(measured.samples, "ns", clock=WALL_CLOCK, stopped_by=measured.stopped_by, warmup=measured.warmup)


LATENCY = {"step": step_latency, "sequence": sequence_latency}


def outputs_of(
    runner: Runner, X: np.ndarray, mode: str, every: bool, lengths: np.ndarray | None = None, batch: int = 256
) -> np.ndarray:
    """The model's outputs for every sequence in ``X``, driven whole-sequence (``run``) or one step per
    call (``Runner.stream``): [N, T, C] for a model with output ``every``, else [N, C] at each
    sequence's own last true step."""
    out = []
    for start in range(0, len(X), batch):
        chunk = np.ascontiguousarray(X[start : start + batch], dtype=np.float32)
        part_lengths = None if lengths is None else np.asarray(lengths[start : start + batch])
        if mode == "step":
            seq = np.asarray(runner.stream(chunk, every=True))  # every step's outputs: the last true one is picked
            part = seq if every else metrics.last_steps(seq, part_lengths)
        elif every:
            part = np.asarray(runner.run(chunk))
        else:
            part = metrics.by_length(runner.run, chunk, part_lengths)
        out.append(np.asarray(part, dtype=np.float32))
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def reference_outputs(reference, X: np.ndarray, every: bool, lengths: np.ndarray | None = None) -> np.ndarray:
    """The reference model's outputs in the same layout as ``outputs_of``."""
    return np.asarray(reference(X) if every else metrics.by_length(reference, X, lengths), dtype=np.float64)


def accuracy_record(
    outputs: np.ndarray,
    y: np.ndarray,
    mode: str,
    task: str = "classify",
    lengths: np.ndarray | None = None,
    reference: np.ndarray | None = None,
    reference_name: str | None = None,
) -> dict:
    """The task's metric (``metrics.score``: accuracy and macro-F1, or MSE and SNR; per sequence or per
    true step) against the labels, and agreement / largest output gap against a reference runtime.
    ``accuracy`` is null for a regression model (its metric is ``mse``)."""
    outputs = np.asarray(outputs)
    record: dict = {
        "accuracy": None,
        "samples": int(len(y)),
        "mode": mode,
        "task": task,
        "metric": "accuracy" if task == "classify" else "mse",
    }
    if len(y):
        record.update(metrics.score(outputs, y, task, lengths))
    if reference is not None and reference.shape == outputs.shape:
        record["reference"] = reference_name
        record["max_abs_vs_reference"] = metrics.max_abs(outputs, reference, lengths)
        record["agreement_vs_reference"] = (
            metrics.agreement(outputs, reference, lengths) if task == "classify" and len(y) else None
        )
    return record


def metric_value(record: dict | None) -> float | None:
    """The headline figure of an accuracy record: accuracy (classify) or MSE (regress)."""
    if not record:
        return None
    return record.get(record.get("metric", "accuracy"))

"""Task metrics, torch-free: one place for how outputs are scored against labels or a reference.

Classification outputs are logits (or probabilities) [N, C] per sequence or [N, T, C] per step;
labels are [N] or [N, T]. Regression outputs and targets are float [N, C] or [N, T, C]. Per-step
scores count only the steps within each sequence's length.
"""

from __future__ import annotations

import numpy as np


def valid_steps(shape: tuple[int, int], lengths: np.ndarray | None) -> np.ndarray:
    """Boolean [N, T]: the steps inside each sequence."""
    n, steps = shape
    if lengths is None:
        return np.ones((n, steps), bool)
    return np.arange(steps)[None, :] < np.asarray(lengths)[:, None]


def last_steps(outputs: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """[N, T, C] outputs of every step -> [N, C]: each sequence's output at its own last true step
    (a causal model's outputs there do not depend on the padding after it)."""
    if lengths is None:
        return outputs[:, -1]
    return outputs[np.arange(len(outputs)), np.asarray(lengths, np.int64) - 1]


def by_length(run, X: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """``run`` (whole sequences -> one output per sequence [N, C]) on each sequence cut to its true
    length: one call per distinct length, so every sequence ends where it really ends."""
    if lengths is None or len(X) == 0 or bool(np.all(np.asarray(lengths) == X.shape[1])):
        return np.asarray(run(X))
    lengths = np.asarray(lengths, np.int64)
    out = None
    for length in np.unique(lengths):
        pick = np.flatnonzero(lengths == length)
        part = np.asarray(run(np.ascontiguousarray(X[pick, :length])))
        if out is None:
            out = np.empty((len(X),) + part.shape[1:], part.dtype)
        out[pick] = part
    return out


def _flatten(outputs: np.ndarray, labels: np.ndarray, lengths: np.ndarray | None, per_step: bool):
    if not per_step:
        return outputs, labels
    keep = valid_steps(outputs.shape[:2], lengths)
    return outputs[keep], labels[keep]


def macro_f1(pred: np.ndarray, labels: np.ndarray, classes: int) -> float:
    """Unweighted mean of per-class F1 over the classes that occur in labels or predictions."""
    scores = []
    for c in range(classes):
        tp = np.sum((pred == c) & (labels == c))
        fp = np.sum((pred == c) & (labels != c))
        fn = np.sum((pred != c) & (labels == c))
        if tp + fp + fn:
            scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else float("nan")


def score(outputs: np.ndarray, labels: np.ndarray, task: str, lengths: np.ndarray | None = None) -> dict:
    """``classify``: accuracy and macro-F1 (per sequence or per valid step); ``regress``: MSE and SNR (dB)."""
    outputs = np.asarray(outputs, np.float64)
    per_step = outputs.ndim == 3
    out, lab = _flatten(outputs, np.asarray(labels), lengths, per_step)
    if task == "classify":
        pred = out.argmax(axis=-1)
        return {
            "accuracy": float(np.mean(pred == lab)) if len(lab) else float("nan"),
            "macro_f1": macro_f1(pred, lab, out.shape[-1]),
            "per_step": per_step,
        }
    lab = lab.astype(np.float64)
    mse = float(np.mean((out - lab) ** 2)) if lab.size else float("nan")
    power = float(np.mean(lab**2)) if lab.size else float("nan")
    snr = 10 * np.log10(power / mse) if mse > 0 and power > 0 else float("inf")
    return {"mse": mse, "snr_db": float(snr), "per_step": per_step}


def describe(m: dict) -> str:
    if not m:
        return "no test data"
    where = " per step" if m.get("per_step") else ""
    if "accuracy" in m:
        return f"test accuracy{where} {m['accuracy']:.2%} (macro-F1 {m['macro_f1']:.3f})"
    return f"test MSE{where} {m['mse']:.4g} (SNR {m['snr_db']:.1f} dB)"


def _valid(outputs: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """The outputs that count: every row of [N, C]; the true steps of [N, T, C], flattened to [M, C]."""
    return outputs[valid_steps(outputs.shape[:2], lengths)] if outputs.ndim == 3 else outputs


def agreement(outputs: np.ndarray, reference: np.ndarray, lengths: np.ndarray | None = None) -> float:
    """Fraction of outputs (sequences, or every true step of every sequence) whose argmax agrees."""
    outputs, reference = _valid(np.asarray(outputs), lengths), _valid(np.asarray(reference), lengths)
    if reference.size == 0:
        return 1.0
    return float(np.mean(outputs.argmax(axis=-1) == reference.argmax(axis=-1)))


def max_abs(outputs: np.ndarray, reference: np.ndarray, lengths: np.ndarray | None = None) -> float:
    """Largest absolute difference over the outputs that count (padded steps excluded)."""
    a = _valid(np.asarray(outputs, np.float64), lengths)
    b = _valid(np.asarray(reference, np.float64), lengths)
    return float(np.max(np.abs(a - b))) if a.size else 0.0

"""Training and (masked) fine-tuning with Adam.

Masks live in the model, so the same loop trains dense models and fine-tunes pruned ones: the
forward pass uses ``weight * mask`` and pruned entries receive zero gradient.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .data import Dataset
from .errors import DatasetError, EdgepruneError, ModelError
from .models import CELL_GATES, ModelConfig, SequenceClassifier

MAX_DEFAULT_THREADS = 4
# Below this many parameters the matrices are too small for intra-op threads to pay: measured on
# the 2-core CI machine at load 13, LSTM-64 on digits trained 3 epochs in 5.2 s on 1 thread and
# 45.7 s on 2 (OpenMP workers waiting for busy cores).
PARAMETERS_PER_THREAD = 1_000_000
# weights + gradients + Adam's two moments + masks, in float32
TRAINING_BYTES_PER_PARAMETER = 4 * 5


@dataclass
class TrainResult:
    epochs: int
    seconds: float
    test_accuracy: float
    history: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "epochs": self.epochs,
            "seconds": round(self.seconds, 3),
            "test_accuracy": self.test_accuracy,
            "history": self.history,
        }


def parameter_count(config: ModelConfig) -> int:
    """Parameters of the model ``config`` describes, computed without building it."""
    total = 0
    for l, hidden in enumerate(config.hidden_sizes):
        columns = config.layer_input_size(l) + hidden + config.layer_feedback_size(l) + 2  # + both biases
        total += CELL_GATES[config.cell] * hidden * columns
    return total + (config.hidden_sizes[-1] + 1) * config.num_classes


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def check_model_fits(config: ModelConfig) -> int:
    """Refuse, before allocating anything, a model whose training state exceeds this machine's memory."""
    parameters = parameter_count(config)
    needed, have = parameters * TRAINING_BYTES_PER_PARAMETER, _memory_bytes()
    if have and needed > have:
        raise ModelError(f"{config.describe()} has {parameters:,} parameters: training it needs about "
                         f"{_human(needed)}, this machine has {_human(have)} of memory")
    return parameters


def check_learning_rate(lr: float, flag: str = "--lr") -> float:
    if not (math.isfinite(lr) and lr > 0):
        raise EdgepruneError(f"{flag} must be a finite number > 0, got {lr}")
    return lr


def check_data_matches(config: ModelConfig, dataset: Dataset) -> None:
    """A dataset can train or evaluate a model only if features and classes agree exactly.

    Fewer classes than the model's head would train silently and report a meaningless accuracy;
    more would index past the head.
    """
    if dataset.features != config.input_size:
        raise DatasetError(f"{dataset.name} has {dataset.features} features per step, the model takes "
                           f"{config.input_size}")
    if dataset.num_classes != config.num_classes:
        raise DatasetError(f"{dataset.name} has {dataset.num_classes} classes (labels 0..{dataset.num_classes - 1}), "
                           f"the model has {config.num_classes}")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_threads(parameters: int) -> int:
    """This machine's cores, capped at 4, and at 1 thread per million parameters."""
    return max(1, min(usable_cores(), MAX_DEFAULT_THREADS, 1 + parameters // PARAMETERS_PER_THREAD))


def use_threads(threads: int | None, parameters: int) -> int:
    """Set torch's intra-op threads (call before training); ``None`` picks ``default_threads``.

    The float sums of training depend on how work is split, so the same seed gives the same bytes
    only with the same thread count (it is recorded in the checkpoint's metadata).
    """
    if threads is not None and threads < 1:
        raise EdgepruneError(f"--threads must be >= 1, got {threads}")
    n = default_threads(parameters) if threads is None else threads
    torch.set_num_threads(n)
    return n


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


@torch.no_grad()
def predict_logits(model: nn.Module, X: np.ndarray, batch_size: int = 1024, all_steps: bool = False) -> np.ndarray:
    model.eval()
    outs = [
        model(torch.from_numpy(np.ascontiguousarray(X[i : i + batch_size], dtype=np.float32)), all_steps=all_steps)
        for i in range(0, len(X), batch_size)
    ]
    return torch.cat(outs).numpy() if outs else np.zeros((0,), np.float32)


def accuracy(model: nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    if len(X) == 0:
        return float("nan")
    return float((predict_logits(model, X).argmax(axis=1) == y).mean())


def train(
    model: SequenceClassifier,
    dataset: Dataset,
    *,
    epochs: int,
    lr: float = 1e-2,
    batch_size: int = 32,
    seed: int = 0,
    clip_norm: float = 5.0,
    progress: bool = True,
    description: str = "train",
    max_train_samples: int | None = None,
) -> TrainResult:
    """Adam on cross-entropy; returns the test accuracy after the last epoch."""
    if epochs < 0:
        raise EdgepruneError(f"epochs must be >= 0, got {epochs}")
    if batch_size < 1:
        raise EdgepruneError(f"batch size must be >= 1, got {batch_size}")
    check_learning_rate(lr, "learning rate")
    check_data_matches(model.config, dataset)
    if max_train_samples is not None and max_train_samples < 1:
        raise EdgepruneError(f"--max-train-samples must be >= 1, got {max_train_samples}")
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    X, y = dataset.X_train, dataset.y_train
    if max_train_samples is not None and max_train_samples < len(X):
        pick = np.sort(rng.permutation(len(X))[:max_train_samples])
        X, y = X[pick], y[pick]
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    history: list[dict] = []
    start = time.perf_counter()
    batches = (len(X) + batch_size - 1) // batch_size
    with _progress(progress, description, epochs * batches) as bar:
        for epoch in range(epochs):
            model.train()
            order = torch.from_numpy(rng.permutation(len(X)))
            total_loss = correct = 0.0
            for b in range(batches):
                idx = order[b * batch_size : (b + 1) * batch_size]
                xb, yb = Xt[idx], yt[idx]
                optimiser.zero_grad(set_to_none=True)
                logits = model(xb)
                loss = loss_fn(logits, yb)
                if not torch.isfinite(loss):
                    raise EdgepruneError(f"training diverged in epoch {epoch + 1} (loss {loss.item()}); "
                                         "try a smaller --lr")
                loss.backward()
                if clip_norm:
                    nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
                optimiser.step()
                total_loss += loss.item() * len(idx)
                correct += float((logits.argmax(1) == yb).sum())
                bar.advance(loss=total_loss / min(len(X), (b + 1) * batch_size), epoch=epoch + 1)
            entry = {"epoch": epoch + 1, "loss": total_loss / len(X), "train_accuracy": correct / len(X)}
            history.append(entry)
            bar.epoch_done(entry)
    test_acc = accuracy(model, dataset.X_test, dataset.y_test)
    return TrainResult(epochs, time.perf_counter() - start, test_acc, history)


class _progress:
    """A rich progress bar showing loss and accuracy, or nothing when disabled."""

    def __init__(self, enabled: bool, description: str, total: int):
        self.enabled, self.description, self.total = enabled, description, total
        self._bar = self._task = None
        self._acc = float("nan")

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("epoch {task.fields[epoch]} loss {task.fields[loss]:.4f} acc {task.fields[acc]:.3f}"),
                TimeRemainingColumn(),
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=self.total, loss=float("nan"), acc=self._acc, epoch=0)
        return self

    def advance(self, **fields):
        if self._bar is not None:
            self._bar.update(self._task, advance=1, **fields)

    def epoch_done(self, entry: dict):
        if self._bar is not None:
            self._bar.update(self._task, acc=entry["train_accuracy"])

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)
        return False

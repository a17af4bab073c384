"""Training and (masked) fine-tuning with Adam.

Masks live in the model, so the same loop trains dense models and fine-tunes pruned ones: the
forward pass uses ``weight * mask`` and pruned entries receive zero gradient.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .data import Dataset
from .models import SequenceClassifier


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
        raise ValueError("epochs must be >= 0")
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

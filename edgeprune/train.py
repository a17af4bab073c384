"""Training and (masked) fine-tuning with Adam.

Masks live in the model, so the same loop trains dense models and fine-tunes pruned ones: the
forward pass uses ``weight * mask`` and pruned entries receive zero gradient.
"""

from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from . import metrics
from .data import Dataset
from .errors import DatasetError, EdgepruneError, ModelError
from .models import SequenceClassifier
from .modelspec import CELL_GATES, ModelSpec

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
    test_accuracy: float  # NaN for regression
    history: list[dict] = field(default_factory=list)
    test_metrics: dict = field(default_factory=dict)  # metrics.score on the test split

    def to_dict(self) -> dict:
        return {
            "epochs": self.epochs,
            "seconds": round(self.seconds, 3),
            "test_accuracy": self.test_accuracy,
            "history": self.history,
            "test_metrics": self.test_metrics,
        }

    def describe(self) -> str:
        return metrics.describe(self.test_metrics)


def parameter_count(spec: ModelSpec) -> int:
    """Parameters of the model ``spec`` describes, computed without building it (plain integers, so a
    spec claiming 10**12 units costs nothing)."""
    total = 0
    for i, s in enumerate(spec.stages):
        width = spec.stage_input_size(i)
        if s.kind == "dense":
            total += s.size * (width + s.bias)
        elif s.kind == "conv":
            total += s.size * (s.kernel * width + s.bias)
        elif s.recurrent:
            feedback = spec.stages[i + 1].size if s.feedback else 0
            total += CELL_GATES[s.kind] * s.size * (width + s.size + feedback + 2 * s.bias)
        elif s.kind in ("layernorm", "normalize"):
            total += 2 * width
    return total


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


def check_model_fits(config: ModelSpec) -> int:
    """Refuse, before allocating anything, a model whose training state exceeds this machine's memory."""
    parameters = parameter_count(config)
    needed, have = parameters * TRAINING_BYTES_PER_PARAMETER, _memory_bytes()
    if have and needed > have:
        raise ModelError(
            f"{config.describe()} has {parameters:,} parameters: training it needs about "
            f"{_human(needed)}, this machine has {_human(have)} of memory"
        )
    return parameters


def check_learning_rate(lr: float, flag: str = "--lr") -> float:
    if not (math.isfinite(lr) and lr > 0):
        raise EdgepruneError(f"{flag} must be a finite number > 0, got {lr}")
    return lr


def check_data_matches(config: ModelSpec, dataset: Dataset) -> None:
    """A dataset can train or evaluate a model only if its layout, features and classes (or targets)
    agree exactly.

    Fewer classes than the model's head would train silently and report a meaningless accuracy;
    more would index past the head.
    """
    dataset.require(config.task, "step" if config.output == "every" else "sequence")
    if dataset.features != config.input_size:
        raise DatasetError(
            f"{dataset.name} has {dataset.features} features per step, the model takes {config.input_size}"
        )
    if dataset.outputs != config.output_size:
        what = (
            f"{dataset.num_classes} classes (labels 0..{dataset.num_classes - 1})"
            if dataset.task == "classify"
            else f"{dataset.outputs} regression targets"
        )
        unit = "classes" if config.task == "classify" else "outputs"
        raise DatasetError(f"{dataset.name} has {what}, the model has {config.output_size} {unit}")


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
def predict_logits(
    model: nn.Module,
    X: np.ndarray,
    batch_size: int = 1024,
    all_steps: bool | None = None,
    lengths: np.ndarray | None = None,
) -> np.ndarray:
    """The model's outputs for ``X`` [N, T, F]: [N, C] (output ``last``, each sequence's own last step
    when ``lengths`` is given) or [N, T, C] (output ``every``, or ``all_steps``)."""
    model.eval()
    outs = []
    for i in range(0, len(X), batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(X[i : i + batch_size], dtype=np.float32))
        lb = None if lengths is None else torch.from_numpy(np.asarray(lengths[i : i + batch_size], np.int64))
        outs.append(model(xb, all_steps=all_steps, lengths=lb))
    return torch.cat(outs).numpy() if outs else np.zeros((0,), np.float32)


def fit_normalize(model: nn.Module, dataset: Dataset) -> None:
    """Fit a leading ``normalize`` stage to standardise the training split: per feature,
    ``scale = 1 / std`` and ``shift = -mean / std`` (the dataset's statistics over true steps)."""
    from .models import Normalize

    first = model.layers[0] if len(model.layers) else None
    if not isinstance(first, Normalize):
        return
    mean = dataset.feature_mean.astype(np.float64)
    std = dataset.feature_std.astype(np.float64)
    with torch.no_grad():
        first.scale.copy_(torch.from_numpy((1.0 / std).astype(np.float32)))
        first.shift.copy_(torch.from_numpy((-mean / std).astype(np.float32)))


def evaluate(model: nn.Module, X: np.ndarray, y: np.ndarray, lengths: np.ndarray | None = None) -> dict:
    """Test metrics of ``model`` on (X, y): see ``metrics.score``."""
    if len(X) == 0:
        return {}
    return metrics.score(predict_logits(model, X, lengths=lengths), y, model.config.task, lengths)


def accuracy(model: nn.Module, X: np.ndarray, y: np.ndarray, lengths: np.ndarray | None = None) -> float:
    """Accuracy of a classifier (per sequence, or per step for output ``every``); NaN for regression."""
    return float(evaluate(model, X, y, lengths).get("accuracy", float("nan")))


def _valid_steps(out: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Boolean [N, T] of the steps inside each sequence (``metrics.valid_steps``, the one step-axis rule)."""
    return torch.from_numpy(metrics.valid_steps(tuple(out.shape[:2]), None if lengths is None else lengths.numpy()))


def _target_scaling(model: nn.Module, dataset: Dataset) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean, std) of the training targets when a regressor ends in a linear dense head, else None.

    Recordings keep their raw units (accelerometer counts in the thousands): a head that must emit
    them needs weights and biases of that size, which Adam's steps of ``lr`` never reach (daphnet
    stayed at the training mean's SNR). Training therefore runs on standardised targets with the
    scale folded out of the head, and folded back in afterwards: the saved model still outputs raw
    units, and the fold is a per-row scaling, so a head mask stays exact."""
    head = getattr(model, "head", None)
    if model.config.task != "regress" or not isinstance(head, nn.Linear) or head.bias is None:
        return None
    if getattr(head, "activation", "none") != "none":  # a squashing head: its units are its own
        return None
    mean, std = dataset.target_mean, dataset.target_std
    if mean is None or std is None or not np.all(np.isfinite(std)) or not np.all(std > 0):
        return None
    return mean.astype(np.float32), std.astype(np.float32)


@contextmanager
def _head_in_target_units(model: nn.Module, scaling):
    """Fold ``y' = (y - mean) / std`` into the head while training, and undo it after (errors included)."""
    if scaling is None:
        yield
        return
    head = model.head
    mean = torch.from_numpy(scaling[0]).to(head.weight.dtype)
    std = torch.from_numpy(scaling[1]).to(head.weight.dtype)
    with torch.no_grad():
        head.weight.div_(std[:, None])
        if head.bias is not None:
            head.bias.sub_(mean).div_(std)
    try:
        yield
    finally:
        with torch.no_grad():
            head.weight.mul_(std[:, None])
            if head.bias is not None:
                head.bias.mul_(std).add_(mean)


def _loss(model: nn.Module, out: torch.Tensor, y: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy (classify) or mean squared error (regress), over valid steps only."""
    if out.dim() == 3:
        valid = _valid_steps(out, lengths)
        out, y = out[valid], y[valid]
    if model.config.task == "classify":
        return nn.functional.cross_entropy(out, y)
    return nn.functional.mse_loss(out, y)


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
    """Adam on cross-entropy (classify) or MSE (regress); returns the test metrics after the last epoch."""
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
    X, y, lengths = dataset.X_train, dataset.y_train, dataset.train_lengths
    if max_train_samples is not None and max_train_samples < len(X):
        pick = np.sort(rng.permutation(len(X))[:max_train_samples])
        X, y = X[pick], y[pick]
        lengths = None if lengths is None else lengths[pick]
    scaling = _target_scaling(model, dataset)
    if scaling is not None:  # regression: learn in standardised target units (see _target_scaling)
        y = ((y - scaling[0]) / scaling[1]).astype(np.float32)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    Lt = None if lengths is None else torch.from_numpy(np.asarray(lengths, np.int64))
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    classify = model.config.task == "classify"
    history: list[dict] = []
    start = time.perf_counter()
    batches = (len(X) + batch_size - 1) // batch_size
    with _progress(progress, description, epochs * batches) as bar, _head_in_target_units(model, scaling):
        for epoch in range(epochs):
            model.train()
            order = torch.from_numpy(rng.permutation(len(X)))
            total_loss = correct = counted = 0.0
            for b in range(batches):
                idx = order[b * batch_size : (b + 1) * batch_size]
                xb, yb = Xt[idx], yt[idx]
                lb = None if Lt is None else Lt[idx]
                optimiser.zero_grad(set_to_none=True)
                out = model(xb, lengths=lb)
                loss = _loss(model, out, yb, lb)
                if not torch.isfinite(loss):
                    raise EdgepruneError(
                        f"training diverged in epoch {epoch + 1} (loss {loss.item()}); try a smaller --lr"
                    )
                loss.backward()
                if clip_norm:
                    nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
                optimiser.step()
                total_loss += loss.item() * len(idx)
                if classify:
                    hits = out.argmax(-1) == yb
                    if hits.dim() == 2 and lb is not None:
                        valid = _valid_steps(out, lb)
                        hits, n = hits[valid], int(valid.sum())
                    else:
                        n = hits.numel()
                    correct += float(hits.sum())
                    counted += n
                bar.advance(loss=total_loss / min(len(X), (b + 1) * batch_size), epoch=epoch + 1)
            entry = {"epoch": epoch + 1, "loss": total_loss / len(X)}
            if classify:
                entry["train_accuracy"] = correct / max(counted, 1)
            history.append(entry)
            bar.epoch_done(entry)
    test = evaluate(model, dataset.X_test, dataset.y_test, dataset.test_lengths)
    return TrainResult(epochs, time.perf_counter() - start, float(test.get("accuracy", float("nan"))), history, test)


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
            self._task = self._bar.add_task(
                self.description, total=self.total, loss=float("nan"), acc=self._acc, epoch=0
            )
        return self

    def advance(self, **fields):
        if self._bar is not None:
            self._bar.update(self._task, advance=1, **fields)

    def epoch_done(self, entry: dict):
        if self._bar is not None:
            self._bar.update(self._task, acc=entry.get("train_accuracy", float("nan")))

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)
        return False

"""IR v2 shapes for the bench and sweep tests: small per-step and regression datasets written as
.npz (variable lengths, padded with zeros), and zoo models trained on them for one epoch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeprune import checkpoint, data, metrics
from edgeprune.train import predict_logits, seed_everything, train

from .. import zoo

STEPS = 10


def _split(rng, n: int, features: int) -> tuple[np.ndarray, np.ndarray]:
    X = rng.normal(0, 1, (n, STEPS, features)).astype(np.float32)
    lengths = rng.integers(4, STEPS + 1, n).astype(np.int64)
    lengths[: n // 3] = STEPS  # some full-length sequences (what benchmark programs embed)
    X[~metrics.valid_steps((n, STEPS), lengths)] = 0.0
    return X, lengths


def labelling_npz(path: Path, seed: int = 0) -> Path:
    """Class labels per step (6 classes) that depend on the current and previous inputs."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("", 48), ("_test", 24)):
        X, lengths = _split(rng, n, zoo.ZOO["labelling"][1])
        driver = X[..., 0] + 0.5 * np.concatenate([np.zeros((n, 1), np.float32), X[:, :-1, 1]], axis=1)
        y = np.digitize(driver, [-1.2, -0.5, 0.0, 0.5, 1.2]).astype(np.int64)
        arrays.update({f"X{split}": X, f"y{split}": y, f"lengths{split}": lengths})
    np.savez(path, **arrays)
    return path


def denoise_npz(path: Path, seed: int = 0) -> Path:
    """Float targets per step in (0, 1), the smoothed sigmoid of the noisy inputs."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("", 48), ("_test", 24)):
        X, lengths = _split(rng, n, zoo.ZOO["denoiser"][1])
        y = (1 / (1 + np.exp(-np.cumsum(X, axis=1) / 3))).astype(np.float32)
        arrays.update({f"X{split}": X, f"y{split}": y, f"lengths{split}": lengths})
    np.savez(path, **arrays)
    return path


def varlen_classes_npz(path: Path, features: int, classes: int = 5, seed: int = 0) -> Path:
    """One class label per sequence of variable length: the class of the mean of feature 0 over its true steps."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("", 48), ("_test", 24)):
        X, lengths = _split(rng, n, features)
        mean = X[..., 0].sum(axis=1) / lengths
        arrays.update(
            {
                f"X{split}": X,
                f"y{split}": np.digitize(mean, np.linspace(-0.6, 0.6, classes - 1)),
                f"lengths{split}": lengths,
            }
        )
    np.savez(path, **arrays)
    return path


def sequence_npz(path: Path, features: int, classes: int = 3, seed: int = 0) -> Path:
    """One class label per sequence: data a per-step model must be refused on."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 1, (30, STEPS, features)).astype(np.float32)
    np.savez(path, X=X, y=rng.integers(0, classes, 30).astype(np.int64))
    return path


def trained_checkpoint(name: str, npz: Path, out: Path, sparsity: float = 0.0) -> Path:
    """The zoo model ``name`` trained one epoch on ``npz`` (masks at ``sparsity``), saved with its dataset."""
    ds = data.load(str(npz), layouts=data.ANY_LAYOUT, variable_length=True)
    seed_everything(0)
    model = zoo.build(name, sparsity=sparsity)
    result = train(model, ds, epochs=1, lr=1e-2, batch_size=16, progress=False)
    checkpoint.save(
        model,
        out,
        {
            "dataset": str(npz),
            "sequence_length": ds.steps,
            "training": {"epochs": 1, "lr": 1e-2},
            "test_metrics": result.test_metrics,
        },
    )
    return out


def torch_scores(ckpt: Path, limit: int | None = None) -> dict:
    """The independent reference: the checkpoint's torch model on its test split, scored by metrics.score."""
    model, meta = checkpoint.load_with_meta(ckpt)
    ds = data.load(meta["dataset"], layouts=data.ANY_LAYOUT, variable_length=True)
    X, y, lengths = ds.X_test[:limit], ds.y_test[:limit], ds.test_lengths[:limit]
    outputs = predict_logits(model, X, lengths=lengths)
    return metrics.score(outputs, y, model.config.task, lengths)

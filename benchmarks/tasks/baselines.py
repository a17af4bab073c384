"""Model-free reference figures for every real-recording task (docs/tasks.md).

A trained recurrent model has to beat these before its accuracy means anything:

- classification: the majority class, and 1-nearest-neighbour on each sequence's per-feature
  mean and std over its true steps (no temporal model at all);
- motion-stream (a label per step): the majority class, and 1-NN on the current step's raw
  sample alone (no memory);
- daphnet-predict: persistence (the next sample is the current one), the training mean, and a
  causal linear filter (least squares on the last 8 input samples of every channel);
- daphnet-denoise: the noisy input itself, the training mean, and the same causal linear filter.

The linear filter sees only past and present inputs, as a streaming recurrent model does; at a
window's first steps its missing history repeats the window's first sample.

Regression SNR is 10 log10( sum (y - mu)^2 / sum (y - y_hat)^2 ) with mu the training split's
per-channel target mean, so the accelerometers' gravity offset does not inflate it.

    python benchmarks/tasks/baselines.py
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import markdown_table, write_results

from edgeprune import data


def _load(name):
    return data.load(name, layouts=data.ANY_LAYOUT, variable_length=True)


def _valid(lengths, steps):
    return np.arange(steps)[None, :] < lengths[:, None]


def _summary(X, lengths):
    """Per-sequence mean and std of each feature over its true steps: [N, 2F]."""
    mask = _valid(lengths, X.shape[1])[:, :, None]
    n = lengths[:, None].astype(np.float64)
    mean = (X * mask).sum(axis=1) / n
    std = np.sqrt((((X - mean[:, None, :]) * mask) ** 2).sum(axis=1) / n)
    return np.concatenate([mean, std], axis=1)


def _scores(y_true, y_pred) -> dict:
    from sklearn.metrics import f1_score

    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }


def classify(ds) -> list[dict]:
    from sklearn.neighbors import KNeighborsClassifier

    majority = np.bincount(ds.y_train).argmax()
    rows = [{"baseline": "majority class", **_scores(ds.y_test, np.full_like(ds.y_test, majority))}]

    def scale(X):
        return (X - ds.feature_mean) / ds.feature_std

    knn = KNeighborsClassifier(1).fit(_summary(scale(ds.X_train), ds.train_lengths), ds.y_train)
    pred = knn.predict(_summary(scale(ds.X_test), ds.test_lengths))
    rows.append({"baseline": "1-NN on per-sequence mean/std", **_scores(ds.y_test, pred)})
    return rows


def per_step(ds) -> list[dict]:
    from sklearn.neighbors import KNeighborsClassifier

    train = _valid(ds.train_lengths, ds.steps)
    test = _valid(ds.test_lengths, ds.X_test.shape[1])
    y_true = ds.y_test[test]
    majority = np.bincount(ds.y_train[train]).argmax()
    rows = [{"baseline": "majority class", **_scores(y_true, np.full_like(y_true, majority))}]

    def scale(X):
        return (X - ds.feature_mean) / ds.feature_std

    knn = KNeighborsClassifier(1).fit(scale(ds.X_train[train]), ds.y_train[train])
    rows.append(
        {"baseline": "1-NN on the current sample (no memory)", **_scores(y_true, knn.predict(scale(ds.X_test[test])))}
    )
    return rows


def _regression_scores(ds, y_hat) -> dict:
    err = ((ds.y_test - y_hat) ** 2).astype(np.float64)
    centred = ((ds.y_test - ds.target_mean) ** 2).astype(np.float64)
    return {"mse": float(err.mean()), "snr_db": float(10 * np.log10(centred.sum() / err.sum()))}


def _history(X, k):
    """[N, T, k*F]: inputs x[t-k+1 .. t] at every step, the first sample repeated before the start."""
    padded = np.concatenate([np.repeat(X[:, :1], k - 1, axis=1), X], axis=1)
    return np.concatenate([padded[:, i : i + X.shape[1]] for i in range(k)], axis=2)


def _linear_filter(ds, k=8):
    from sklearn.linear_model import LinearRegression

    H = _history(ds.X_train, k).reshape(-1, k * ds.features)
    fit = LinearRegression().fit(H, ds.y_train.reshape(-1, ds.outputs))
    return fit.predict(_history(ds.X_test, k).reshape(-1, k * ds.features)).reshape(ds.y_test.shape)


def regress(ds, identity_name: str, identity) -> list[dict]:
    mean = np.broadcast_to(ds.target_mean, ds.y_test.shape)
    return [
        {"baseline": identity_name, **_regression_scores(ds, identity)},
        {"baseline": "training mean", **_regression_scores(ds, mean)},
        {"baseline": "causal linear filter, 8 samples", **_regression_scores(ds, _linear_filter(ds))},
    ]


def aeon_version() -> str:
    return version("aeon")


def main() -> None:
    results = {}
    for name in ("japanese-vowels", "basic-motions", "pickup-gesture"):
        results[name] = classify(_load(name))
    results["motion-stream"] = per_step(_load("motion-stream"))
    predict = _load("daphnet-predict")
    results["daphnet-predict"] = regress(predict, "persistence (x[t+1] = x[t])", predict.X_test)
    denoise = _load("daphnet-denoise")
    results["daphnet-denoise"] = regress(denoise, "noisy input unchanged", denoise.X_test)

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    parts = [
        (
            f"Model-free references on each task's test split; no timings, so the load average "
            f"({load}) does not affect them. aeon {aeon_version()} supplies the recordings.\n"
        )
    ]
    for name, rows in results.items():
        ds_line = _load(name).describe()
        if "mse" in rows[0]:
            table = markdown_table(
                ["baseline", "MSE", "SNR (dB)"],
                [[r["baseline"], f"{r['mse']:.0f}", f"{r['snr_db']:.2f}"] for r in rows],
            )
        else:
            table = markdown_table(
                ["baseline", "accuracy", "macro-F1"],
                [[r["baseline"], f"{r['accuracy']:.1%}", f"{r['macro_f1']:.3f}"] for r in rows],
            )
        parts.append(f"### {name}\n\n{ds_line}\n\n{table}\n")
    _, md = write_results("task_baselines", {"results": results}, "\n".join(parts))
    print(md.read_text())


if __name__ == "__main__":
    main()

"""Sweeps over IR v2 models: a per-step labelling model and a regression denoiser, pruned, compiled for
ir and onnx; each cell records the task's metric, checked against metrics.score on the torch model
that the same pruning gives, and the report labels it (accuracy, or MSE with the lowest on the front)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeprune import checkpoint, data, metrics
from edgeprune.prune import prune_model
from edgeprune.sweep import report
from edgeprune.sweep.run import run_sweep
from edgeprune.sweep.schema import validate
from edgeprune.sweep.spec import SweepSpec
from edgeprune.train import predict_logits

from ..bench.v2models import denoise_npz, labelling_npz, trained_checkpoint

SAMPLES = 16


def pruned_scores(ckpt, method: str, sparsity: float, seed: int) -> dict:
    """The reference: the same pruning done here, the torch model's outputs scored by metrics.score."""
    model, meta = checkpoint.load_with_meta(ckpt)
    ds = data.load(meta["dataset"], layouts=data.ANY_LAYOUT, variable_length=True)
    pruned = prune_model(model, method, sparsity, seed=seed, dataset=ds).model
    X, y, lengths = ds.X_test[:SAMPLES], ds.y_test[:SAMPLES], ds.test_lengths[:SAMPLES]
    return metrics.score(predict_logits(pruned, X, lengths=lengths), y, pruned.config.task, lengths)


def sweep(ckpt, run_dir):
    spec = SweepSpec(
        str(ckpt),
        methods=["magnitude"],
        sparsities=[0.3, 0.9],
        seeds=[0],
        finetune_epochs=0,
        targets=["ir", "onnx"],
        accuracy_samples=SAMPLES,
    )
    outcome = run_sweep(spec, run_dir, cluster="serial")
    assert not outcome.failed, outcome.failed
    for record in outcome.records.values():
        validate(record)
    return outcome


def check_cells(outcome, ckpt, metric: str) -> None:
    for record in outcome.records.values():
        expected = pruned_scores(ckpt, record["method"], record["sparsity"], record["seed"])
        assert record["model"]["labels"] == "step"
        targets = {r["target"] for r in record["runtimes"]}
        assert {"ir", "onnx"} <= targets and any(r["kind"] == "torch" for r in record["runtimes"])
        for r in record["runtimes"]:
            for mode, acc in r["accuracy"].items():
                assert acc["metric"] == metric and acc["per_step"] and acc["samples"] == SAMPLES
                if metric == "accuracy":
                    assert acc["accuracy"] == pytest.approx(expected["accuracy"], abs=1 / (SAMPLES * 4)), (
                        r["id"],
                        mode,
                    )
                else:
                    assert acc["accuracy"] is None
                    assert acc["mse"] == pytest.approx(expected["mse"], rel=1e-4), (r["id"], mode)


def test_sweep_of_a_per_step_labelling_model(tmp_path):
    ckpt = trained_checkpoint("labelling", labelling_npz(tmp_path / "labels.npz"), tmp_path / "labelling.pt")
    outcome = sweep(ckpt, tmp_path / "run")
    check_cells(outcome, ckpt, "accuracy")
    text = (tmp_path / "run" / "report" / "report.md").read_text()
    assert "accuracy per step" in text and "MSE" not in text
    assert (tmp_path / "run" / "report" / "accuracy_vs_sparsity.png").stat().st_size > 0


def test_sweep_of_a_regression_model_reports_mse(tmp_path):
    ckpt = trained_checkpoint("denoiser", denoise_npz(tmp_path / "noisy.npz"), tmp_path / "denoiser.pt")
    outcome = sweep(ckpt, tmp_path / "run")
    check_cells(outcome, ckpt, "mse")
    out = tmp_path / "run" / "report"
    text = (out / "report.md").read_text()
    assert "| MSE per step |" in text and "accuracy" not in text.lower()
    assert (out / "mse_vs_sparsity.png").stat().st_size > 0 and not (out / "accuracy_vs_sparsity.png").exists()
    points = [p for p in report.sweep_points(outcome.report) if p["score"] is not None]
    assert {p["metric"] for p in points} == {"mse"} and len(points) == 2
    for _name, key, _label, front in report.pareto_sets(outcome.report):
        if key == "storage_bytes":  # cheaper points on the front must have strictly higher error
            costs = [p["storage_bytes"] for p in front]
            errors = [p["score"] for p in front]
            assert costs == sorted(costs) and errors == sorted(errors, reverse=True)
            assert len(set(errors)) == len(errors)
            best = min(points, key=lambda p: p["score"])
            assert front[-1]["score"] == best["score"]
    assert np.isfinite([p["score"] for p in points]).all()

"""bench on IR v2 models: per-step labelling and regression, variable lengths, every stage kind in the
torch baseline, the task's metric against metrics.score on the torch model's outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgeprune import backends, checkpoint, frontend
from edgeprune.bench import BenchError, bench
from edgeprune.bench.devices import parse
from edgeprune.bench.memory import ir_storage, torch_storage
from edgeprune.bench.report import markdown
from edgeprune.bench.schema import validate
from edgeprune.bench.torch_runtime import TorchDenseRunner

from .. import zoo
from .conftest import quick_settings
from .v2models import (
    denoise_npz,
    labelling_npz,
    sequence_npz,
    torch_scores,
    trained_checkpoint,
    varlen_classes_npz,
)


@pytest.fixture(scope="session")
def labelling(tmp_path_factory):
    d = tmp_path_factory.mktemp("v2-labelling")
    return trained_checkpoint("labelling", labelling_npz(d / "labels.npz"), d / "labelling.pt", sparsity=0.85)


@pytest.fixture(scope="session")
def denoiser(tmp_path_factory):
    d = tmp_path_factory.mktemp("v2-denoiser")
    return trained_checkpoint("denoiser", denoise_npz(d / "noisy.npz"), d / "denoiser.pt", sparsity=0.85)


def by_id(doc):
    return {r["id"]: r for r in doc["runtimes"]}


@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_torch_baseline_streams_every_zoo_shape_like_the_model(name, tmp_path):
    """The baseline's own step loop (conv windows, pool accumulators, feedback, ...) against the model's
    whole-sequence forward, every step."""
    model = zoo.build(name, sparsity=0.5)
    path = checkpoint.save(model, tmp_path / "m.pt", {})
    X = zoo.inputs(name)
    with torch.no_grad():
        expected = model(torch.from_numpy(X), all_steps=True).numpy()
    runner = TorchDenseRunner(str(path))
    np.testing.assert_allclose(runner.stream(X, every=True), expected, atol=2e-5)
    np.testing.assert_allclose(
        runner.run(X), expected if model.config.output == "every" else expected[:, -1], atol=2e-5
    )


@pytest.mark.parametrize(
    "name, state_floats",
    [
        ("conv", (3 - 1) * 2 * 6 + 24),  # conv k3 d2 over 6 inputs keeps 4 past inputs; GRU h
        ("meanpool", 24 + 24 + 1),  # GRU h; pool sum + step count
        ("lstm-feedback", 24 * 2 + 16 * 2),  # h and c of both LSTMs
    ],
)
def test_memory_counts_every_stage(name, state_floats):
    model = zoo.build(name, sparsity=0.5)
    lowered = frontend.lower(model)
    dense = torch_storage(model)
    assert dense["state_bytes"] == ir_storage(lowered)["state_bytes"] == 4 * state_floats
    matrices = sum(p.numel() for p in model.parameters() if p.dim() == 2)
    vectors = sum(t.numel() for t in [*model.parameters(), *model.buffers()] if t.dim() == 1)  # masks are 2-D
    assert dense["weight_bytes"] == 4 * matrices and dense["bias_bytes"] == 4 * vectors
    stored = ir_storage(lowered)
    assert stored["stored_values"] == lowered.nnz(include_head=True) < dense["stored_values"] == matrices


def _check_metrics(doc, ckpt, samples, metric):
    expected = torch_scores(ckpt, samples)
    runtimes = by_id(doc)
    assert {"torch", "ir"} <= set(runtimes)
    assert any(r["target"] == "onnx" for r in runtimes.values())
    for rid, r in runtimes.items():
        assert r["status"] == "ok", r["error"]
        assert set(r["accuracy"]) == set(r["modes"]) & {"step", "sequence"}
        for mode, acc in r["accuracy"].items():
            assert acc["metric"] == metric and acc["per_step"] and acc["samples"] == samples
            if metric == "accuracy":
                # fp32 runtimes may flip an argmax only where torch's top two outputs tie within 1e-5
                assert acc["accuracy"] == pytest.approx(expected["accuracy"], abs=1 / (samples * 4)), (rid, mode)
                assert acc["macro_f1"] == pytest.approx(expected["macro_f1"], abs=0.02), (rid, mode)
                assert acc["agreement_vs_reference"] >= 0.99
            else:
                assert acc["accuracy"] is None and acc["agreement_vs_reference"] is None
                assert acc["mse"] == pytest.approx(expected["mse"], rel=1e-4), (rid, mode)
                assert acc["snr_db"] == pytest.approx(expected["snr_db"], abs=1e-3)
            assert acc["max_abs_vs_reference"] < 1e-4


def test_per_step_labelling_model(labelling, tmp_path):
    doc = bench(
        str(labelling),
        parse("local"),
        quick_settings(accuracy_samples=20),
        runtimes=["torch", "ir", "onnx*"],
        json_path=str(tmp_path / "r.json"),
    )
    validate(doc)
    assert doc["complete"] and doc["data"]["task"] == "classify" and doc["data"]["labels"] == "step"
    assert doc["data"]["min_length"] < doc["data"]["steps"]  # true lengths kept, not padded ones
    _check_metrics(doc, labelling, 20, "accuracy")
    text = markdown(doc)
    assert "| accuracy |" in text and "per step" in text


def test_regression_model_records_mse(denoiser, tmp_path):
    doc = bench(
        str(denoiser),
        parse("local"),
        quick_settings(accuracy_samples=24, isolate=True),
        runtimes=["torch", "ir", "onnx*"],
    )
    validate(doc)
    assert doc["complete"] and doc["data"]["metric"] == "mse"
    _check_metrics(doc, denoiser, 24, "mse")
    text = markdown(doc)
    assert "| MSE |" in text and "| accuracy |" not in text and "MSE 0." in text


def test_a_target_that_declines_is_skipped_with_its_reason(labelling, monkeypatch):
    onnx = backends.get("onnx")
    monkeypatch.setattr(onnx, "declines", lambda model: "target onnx does not support per-step outputs (test)")
    doc = bench(str(labelling), parse("local"), quick_settings(accuracy_samples=8), runtimes=["torch", "ir", "onnx"])
    assert set(by_id(doc)) == {"torch", "ir"}
    assert {"id": "onnx", "reason": "target onnx does not support per-step outputs (test)"} in [
        {k: s[k] for k in ("id", "reason")} for s in doc["skipped"]
    ]
    with pytest.raises(BenchError, match=r"^nothing to benchmark \(onnx: target onnx does not support per-step"):
        bench(str(labelling), parse("local"), quick_settings(), runtimes=["onnx"])


def test_real_targets_either_run_or_say_why(labelling):
    """Whatever the C and TFLite backends support today: measured, or skipped with their own reason."""
    wanted = [t for t in ("c", "tflite") if backends.get(t).unavailable() is None]
    if not wanted:
        pytest.skip("neither the C toolchain nor LiteRT is installed")
    lowered = frontend.lower(checkpoint.load(labelling))
    doc = bench(
        str(labelling),
        parse("local"),
        quick_settings(accuracy_samples=8, native=False),
        runtimes=["ir", *wanted],
        variants={t: [{}] for t in ["ir", *wanted]},
    )
    for t in wanted:
        reason = backends.get(t).declines(lowered)
        rows = [r for r in doc["runtimes"] if r["target"] == t]
        if reason:
            assert not rows and any(s["id"] == t and s["reason"] == reason for s in doc["skipped"])
            assert "\n" not in reason
        else:  # measured like any runtime: the task's metric per step, close to the reference
            assert rows and all(r["status"] == "ok" for r in rows)
            for acc in (a for r in rows for a in r["accuracy"].values()):
                assert acc["metric"] == "accuracy" and acc["per_step"] and acc["samples"] == 8
                assert acc["agreement_vs_reference"] >= 0.95


def test_a_model_that_does_not_fit_the_data_is_refused_in_one_line(labelling, denoiser, tmp_path):
    per_sequence = sequence_npz(tmp_path / "seq.npz", features=zoo.ZOO["labelling"][1])
    with pytest.raises(BenchError) as e:
        bench(str(labelling), parse("local"), quick_settings(), runtimes=["ir"], data=str(per_sequence))
    assert "the data has class labels per sequence but the model" in str(e.value)
    assert "gives class labels per step" in str(e.value) and "\n" not in str(e.value)
    noisy = tmp_path / "noisy.npz"
    denoise_npz(noisy)
    with pytest.raises(BenchError, match="has 9 features but the model .* takes 5"):
        bench(str(labelling), parse("local"), quick_settings(), runtimes=["ir"], data=str(noisy))
    few = tmp_path / "few.npz"
    labelling_npz(few)
    arrays = dict(np.load(few))
    arrays["y"], arrays["y_test"] = (
        arrays["y"][..., None].repeat(6, -1).astype(np.float32),
        arrays["y_test"][..., None].repeat(6, -1).astype(np.float32),
    )
    np.savez(few, **arrays)
    with pytest.raises(BenchError, match="regression targets per step but the model"):
        bench(str(labelling), parse("local"), quick_settings(), runtimes=["ir"], data=str(few))


def test_per_sequence_model_on_variable_lengths_reads_each_sequence_at_its_own_end(tmp_path):
    """Output ``last`` on padded sequences: every runtime's output at the true last step (one ``run`` per
    length, or the streamed output after that step), as torch gives with ``lengths``."""
    npz = varlen_classes_npz(tmp_path / "v.npz", zoo.ZOO["meanpool"][1])
    ckpt = trained_checkpoint("meanpool", npz, tmp_path / "m.pt", sparsity=0.85)
    doc = bench(str(ckpt), parse("local"), quick_settings(accuracy_samples=24), runtimes=["torch", "ir", "onnx*"])
    assert doc["data"]["labels"] == "sequence" and doc["data"]["min_length"] < doc["data"]["steps"]
    expected = torch_scores(ckpt, 24)
    for r in doc["runtimes"]:
        for mode, acc in r["accuracy"].items():
            assert not acc["per_step"] and acc["max_abs_vs_reference"] < 1e-5, (r["id"], mode)
            assert acc["accuracy"] == pytest.approx(expected["accuracy"]), (r["id"], mode)
            assert acc["macro_f1"] == pytest.approx(expected["macro_f1"]), (r["id"], mode)


def test_a_compile_output_of_a_regression_model(denoiser, tmp_path):
    """bench of what ``edgeprune compile`` wrote: its checkpoint is the torch baseline; without it, the IR's
    numpy executor is the reference."""
    from edgeprune.cli import main

    out = tmp_path / "out"
    assert main(["compile", str(denoiser), "--target", "ir,onnx", "-o", str(out), "--verify-samples", "8"]) == 0
    expected = torch_scores(denoiser, 24)
    doc = bench(str(out), parse("local"), quick_settings(accuracy_samples=24))
    validate(doc)
    assert {"torch", "ir"} <= set(by_id(doc))
    for r in doc["runtimes"]:
        for acc in r["accuracy"].values():
            assert acc["metric"] == "mse" and acc["mse"] == pytest.approx(expected["mse"], rel=1e-4)
            assert acc["reference"] == "torch"


def test_a_native_program_of_a_per_step_model_is_checked_not_scored(labelling):
    """The C benchmark program prints the outputs after the last step only: bench compares them with the
    reference's at that step (the run stays complete) and does not call them the per-step metric."""
    if backends.get("c").unavailable() or backends.get("c").declines(frontend.lower(checkpoint.load(labelling))):
        pytest.skip("the C target cannot build this model here")
    doc = bench(
        str(labelling),
        parse("local"),
        quick_settings(accuracy_samples=8, device_samples=6),
        runtimes=["c"],
        variants={"c": [{}]},
    )
    validate(doc)
    native = by_id(doc)["c (native)"]
    assert doc["complete"] and native["status"] == "ok" and native["latency"]["step"]["n"] > 0
    for acc in native["accuracy"].values():
        assert acc["accuracy"] is None and not acc["per_step"] and acc["samples"] == 6 and "last step" in acc["note"]
        assert acc["max_abs_vs_reference"] < 1e-4 and acc["agreement_vs_reference"] == 1.0

import json

import numpy as np
import pytest

from edgeprune import data, ir
from edgeprune.bench import BenchError, bench
from edgeprune.bench.devices import parse
from edgeprune.bench.memory import ir_storage
from edgeprune.bench.schema import validate

from .conftest import quick_settings


def by_id(doc):
    return {r["id"]: r for r in doc["runtimes"]}


def test_artifact_dir_with_torch_baseline(ir_artifacts, tmp_path):
    out = tmp_path / "r.json"
    doc = bench(str(ir_artifacts), parse("local"), quick_settings(), json_path=str(out))
    validate(doc)
    assert json.loads(out.read_text()) == json.loads(json.dumps(doc))  # what is returned is what is saved
    assert doc["complete"] and set(by_id(doc)) == {"torch", "ir"}  # compile.json names the checkpoint: torch joins
    ds = data.load("digits")
    model = ir.load(ir_artifacts)
    expected = float(np.mean(ir.ReferenceExecutor(model).run(ds.X_test[:64]).argmax(1) == ds.y_test[:64]))
    for r in doc["runtimes"]:
        assert r["status"] == "ok" and r["threads"] == 1
        assert set(r["latency"]) == {"sequence", "step"}
        for stat in r["latency"].values():
            assert stat["unit"] == "ns" and stat["n"] == len(stat["samples"]) >= 20
            assert [stat["p50"], stat["p90"], stat["p99"]] == list(np.percentile(stat["samples"], [50, 90, 99]))
            assert stat["p50"] <= stat["p90"] <= stat["p99"]
        for _mode, acc in r["accuracy"].items():
            assert acc["samples"] == 64 and acc["accuracy"] == pytest.approx(expected)
            assert acc["reference"] == "torch" and acc["max_abs_vs_reference"] < 1e-5
    mem = by_id(doc)["ir"]["memory"]
    assert {k: mem[k] for k in ("weight_bytes", "index_bytes", "state_bytes")} == {
        k: ir_storage(model)[k] for k in ("weight_bytes", "index_bytes", "state_bytes")
    }
    assert mem["nnz"] == model.nnz(include_head=True)
    assert mem["storage_bytes"] == mem["weight_bytes"] + mem["index_bytes"]
    assert mem["bytes_per_nonzero"] == pytest.approx(mem["storage_bytes"] / mem["nnz"])
    assert mem["artifact_bytes"] == sum(
        p.stat().st_size for p in (ir_artifacts / "model.json", ir_artifacts / "weights.npz")
    )
    torch_mem = by_id(doc)["torch"]["memory"]
    assert torch_mem["index_bytes"] == 0 and torch_mem["weight_bytes"] > mem["weight_bytes"]  # dense stores every zero


def test_checkpoint_is_compiled_then_measured_in_isolated_workers(pruned_checkpoint, tmp_path):
    settings = quick_settings(isolate=True, accuracy_samples=16, latency_sequences=2)
    doc = bench(str(pruned_checkpoint), parse("local"), settings, runtimes=["torch", "ir"])
    validate(doc)
    assert doc["source"]["kind"] == "checkpoint" and [r["id"] for r in doc["runtimes"]] == ["torch", "ir"]
    assert doc["source"]["method"] == "magnitude" and doc["source"]["sparsity"] == pytest.approx(0.8, abs=0.01)
    for r in doc["runtimes"]:
        mem = r["memory"]
        assert mem["peak_rss_bytes"] >= mem["baseline_rss_bytes"] > 10e6  # a real interpreter's RSS
        assert r["os_threads"] >= 1
    # the numpy runtime never imports torch: its process stays far below torch's
    assert by_id(doc)["ir"]["memory"]["peak_rss_bytes"] < by_id(doc)["torch"]["memory"]["peak_rss_bytes"]


def test_identical_artifacts_are_measured_once(ir_artifacts, tmp_path):
    import shutil

    for sub in ("a", "b"):
        shutil.copytree(ir_artifacts, tmp_path / sub)
    doc = bench(str(tmp_path), parse("local"), quick_settings(), runtimes=["ir*"])
    assert [r["id"] for r in doc["runtimes"]] == ["ir"]
    assert doc["skipped"] == [{"id": "ir#2", "reason": "same files as ir"}]


def test_unknown_runtime_pattern_is_one_clear_error(ir_artifacts):
    with pytest.raises(Exception, match="'onnx-fast' matches no runtime"):
        bench(str(ir_artifacts), parse("local"), quick_settings(), runtimes=["onnx-fast"])


def test_a_failing_runtime_is_recorded_and_the_others_kept(ir_artifacts, tmp_path):
    broken = tmp_path / "broken"
    import shutil

    shutil.copytree(ir_artifacts, broken)
    (broken / "weights.npz").write_bytes(b"not a zip")  # the ir runner cannot load it
    out = tmp_path / "r.json"
    with pytest.raises(BenchError, match="^ir failed: ") as info:
        bench(str(broken), parse("local"), quick_settings(), json_path=str(out))
    saved = json.loads(out.read_text())
    validate(saved)
    assert saved["complete"] is False
    assert by_id(saved)["torch"]["status"] == "ok" and by_id(saved)["ir"]["status"] == "failed"
    assert info.value.doc["runtimes"][0]["latency"]["step"]["n"] >= 20

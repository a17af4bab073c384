"""The foreign corpus (tests/corpus.py): every ONNX model another framework wrote compiles to every target
and matches the ORIGINAL framework's saved outputs (torch, onnxruntime for hand-built graphs, Keras), each
model in its own test; and ``edgeprune compile model.onnx --target all -o out`` needs no other flag."""

import json

import pytest

pytest.importorskip("onnxruntime")

from edgeprune import backends  # noqa: E402

from .. import corpus  # noqa: E402

FILES = corpus.onnx_files()


def _targets():
    return [t for t in corpus.TARGETS if not backends.get(t).unavailable()]


@pytest.mark.parametrize("name", sorted(FILES))
def test_corpus_model_matches_its_original_framework_on_every_target(name, tmp_path):
    path, _ = FILES[name]
    report = corpus.compile_onnx_against_original(path, tmp_path / "out", _targets())
    assert {"ir", "onnx", "c"} <= {r.artifact.split("/")[0] for r in report.results}
    for r in report.results:
        assert r.passed and r.max_abs_error <= 1e-5, r.describe()


@pytest.mark.parametrize("name", ["dynamo_conv_lstm_meanpool", "dynamo_gru_every_dynamic", "keras_lstm_every"])
def test_cli_compiles_a_foreign_file_with_no_other_flag(name, run_cli, tmp_path):
    path, _ = FILES[name]
    result = run_cli("compile", path, "--target", "all", "-o", tmp_path / "out")
    assert result.code == 0, result.err
    doc = json.loads((tmp_path / "out" / "compile.json").read_text())
    assert "random sequences" in doc["verification_data"] and all(r["passed"] for r in doc["verification"])
    assert {r["artifact"].split("/")[0] for r in doc["verification"]} == set(_targets())

"""The .tflite files run again in tflite-runtime (numpy < 2: its own venv, reached through a worker
process; ``EDGEPRUNE_TFLITE_RUNTIME_PYTHON`` names its Python, CI creates it in .ci/run), compared with
torch; without it, compile.json says in one line why the check was skipped."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("flatbuffers", reason="the tflite target needs flatbuffers (pip install edgeprune[tflite])")
pytest.importorskip("ai_edge_litert.interpreter", reason="the tflite target needs ai-edge-litert")

from edgeprune import compiler, frontend, prune  # noqa: E402
from edgeprune.backends import tflite as T  # noqa: E402
from edgeprune.backends.tflite import runtime_worker  # noqa: E402

from ..conftest import make_model  # noqa: E402

VERSION, SKIPPED = runtime_worker.probe()
needs_worker = pytest.mark.skipif(VERSION is None, reason=SKIPPED or "")


def _compile(tmp_path, inputs, cell, output_every=False, resolver="xnnpack"):
    model = prune.prune_model(make_model(cell, (12, 9)), "magnitude", 0.9).model  # sparse FCs (op version 8)
    steps = inputs.shape[1]

    def reference(X):
        with torch.no_grad():
            return model(torch.from_numpy(X), all_steps=output_every).numpy()

    irm = frontend.lower(model, {"sequence_length": steps})
    if output_every:
        irm.output = "every"
    src = compiler.Source("mem", irm, reference, "torch")
    return compiler.compile_source(
        src, ["tflite"], tmp_path / "out", X_verify=inputs, options={"litert_resolver": resolver, "micro": "off"}
    )


@needs_worker
@pytest.mark.parametrize("resolver", ["xnnpack", "builtin_ref"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_tflite_files_match_torch_in_tflite_runtime(tmp_path, inputs, cell, resolver):
    report = _compile(tmp_path, inputs, cell, resolver=resolver)
    assert report.passed
    theirs = {(r.artifact, r.mode): r for r in report.results if r.runtime.startswith("tflite-runtime")}
    assert set(theirs) == {(T.STEP_FILE, "step"), (T.SEQUENCE_FILE, "sequence")}
    for r in theirs.values():
        assert f"tflite-runtime {VERSION} ({resolver}; subprocess)" == r.runtime
        assert r.max_abs_error <= 1e-5 and r.argmax_agreement == 1.0, r.describe()


@needs_worker
def test_every_step_output_streams_in_tflite_runtime(tmp_path, inputs):
    report = _compile(tmp_path, inputs, "rnn", output_every=True)
    runs = [r for r in report.results if r.runtime.startswith("tflite-runtime")]
    assert len(runs) == 2 and all(r.passed and r.max_abs_error <= 1e-5 for r in runs)


def test_without_tflite_runtime_compile_json_says_why(tmp_path, inputs, monkeypatch):
    monkeypatch.setenv(runtime_worker.ENV, str(tmp_path / "no-such-python"))
    report = _compile(tmp_path, inputs, "gru")
    assert report.passed and not any(r.runtime.startswith("tflite-runtime") for r in report.results)
    doc = json.loads((tmp_path / "out" / "compile.json").read_text())
    notes = [a["info"]["tflite_runtime"] for a in doc["artifacts"]]
    assert len(notes) == 2 and all(n == notes[0] for n in notes)
    assert notes[0].startswith("tflite-runtime not run: ") and "no-such-python cannot be run" in notes[0]
    assert "\n" not in notes[0]
    monkeypatch.delenv(runtime_worker.ENV)
    assert runtime_worker.probe() == (
        None,
        f"tflite-runtime not run: set {runtime_worker.ENV} to a Python with tflite-runtime and numpy<2",
    )


@needs_worker
def test_the_worker_computes_what_litert_computes(tmp_path, inputs):
    report = _compile(tmp_path, inputs, "gru")
    path = tmp_path / "out" / T.SEQUENCE_FILE
    runner = runtime_worker.TFLiteRuntimeRunner(path)
    np.testing.assert_allclose(runner.run(inputs), T.LiteRTRunner(path).run(inputs), rtol=0, atol=1e-6)
    assert report.passed


@needs_worker
def test_int8_files_are_not_verified_in_tflite_runtime_which_computes_them_wrongly(tmp_path, inputs):
    """Measured: tflite-runtime 2.14 runs the int8 files (per-channel weights) but is ~100x off LiteRT; the
    gate says so in compile.json instead of failing every int8 compile (or passing a wrong file)."""
    model = prune.prune_model(make_model("gru", (12, 9)), "magnitude", 0.5).model
    irm = frontend.lower(model, {"sequence_length": inputs.shape[1]})
    with torch.no_grad():
        expected = model(torch.from_numpy(inputs)).numpy()
    src = compiler.Source("mem", irm, lambda X: expected, "torch")
    report = compiler.compile_source(
        src, ["tflite"], tmp_path / "out", X_verify=inputs, options={"dtype": "int8", "micro": "off"}
    )
    assert report.passed and not any(r.runtime.startswith("tflite-runtime") for r in report.results)
    doc = json.loads((tmp_path / "out" / "compile.json").read_text())
    assert all(a["info"]["tflite_runtime"] == T.INT8_IN_TFLITE_RUNTIME for a in doc["artifacts"])
    path = tmp_path / "out" / T.SEQUENCE_FILE
    litert = np.abs(T.LiteRTRunner(path).run(inputs) - expected).max()
    theirs = np.abs(runtime_worker.TFLiteRuntimeRunner(path).run(inputs) - expected).max()
    assert litert < 0.05 and theirs > 10 * litert  # if a tflite-runtime release fixes it, verify int8 there

"""Every zoo shape through ``compile`` for every target: verified against torch, or declined in one line."""

import numpy as np
import pytest

from edgeprune import backends, frontend
from edgeprune.compiler import Source, compile_source
from edgeprune.errors import BackendError
from edgeprune.train import predict_logits

from . import zoo

STEPS = 7


def _source(name):
    model = zoo.build(name, sparsity=0.85)
    graph = frontend.lower(model, {"sequence_length": STEPS})  # TFLite's sequence model is unrolled over it
    return Source(name, graph, lambda X: predict_logits(model, X), "torch")


@pytest.mark.parametrize("name", sorted(zoo.ZOO))
@pytest.mark.parametrize("target", ["ir", "onnx", "c", "tflite"])
def test_zoo_compiles_exactly_or_is_declined(name, target, tmp_path):
    backend = backends.get(target)
    if backend.unavailable():
        pytest.skip(backend.unavailable())
    source = _source(name)
    X = zoo.inputs(name, n=6, steps=STEPS)
    reason = backend.declines(source.model)
    if reason:
        assert "\n" not in reason and target in reason
        with pytest.raises(BackendError, match="does not support"):
            compile_source(source, [target], tmp_path / "out", X_verify=X)
        assert not (tmp_path / "out").exists()
        return
    report = compile_source(source, [target], tmp_path / "out", X_verify=X)
    assert report.passed and report.results
    for r in report.results:
        assert r.max_abs_error <= 1e-4, r.describe()
        if source.model.task == "classify":
            assert r.argmax_agreement >= 0.99, r.describe()
    every = source.model.output == "every"
    assert {r.mode for r in report.results} >= ({"step"} if target != "ir" else {"sequence", "step"})
    assert np.asarray(source.reference(X)).ndim == (3 if every else 2)


@pytest.mark.parametrize("name", ["kws", "denoiser"])
def test_ir_and_onnx_cover_every_stage(name):
    source = _source(name)
    assert backends.get("ir").declines(source.model) is None
    assert backends.get("onnx").declines(source.model) is None

import json

import pytest

from edgeprune import backends, compiler, frontend, ir, prune
from edgeprune.backends.base import Artifact, Backend, Runner
from edgeprune.errors import VerificationError

from .conftest import make_model


class _OffByOne(Runner):
    def __init__(self, model):
        self.executor = ir.ReferenceExecutor(model)

    def run(self, X):
        return self.executor.run(X) + 1e-2  # plausible but wrong


class _BrokenBackend(Backend):
    name = "broken"

    def emit(self, model, out_dir, options):
        ir.save(model, out_dir)
        return [Artifact("model.json", self.name, "numpy", files=["model.json", "weights.npz"])]

    def runner(self, artifact, out_dir, options):
        return _OffByOne(ir.load(out_dir))


def _source(model):
    lowered = frontend.lower(model, {"dataset": "digits"})
    import torch

    def reference(X):
        with torch.no_grad():
            return model(torch.from_numpy(X)).numpy()

    return compiler.Source("mem", lowered, reference, "torch")


def test_compile_writes_verified_artifacts_and_a_report(tmp_path, inputs):
    model = prune.prune_model(make_model("lstm", (12,)), "magnitude", 0.5).model
    report = compiler.compile_source(_source(model), ["ir"], tmp_path / "out", X_verify=inputs)
    assert report.passed and [r.mode for r in report.results] == ["sequence", "step"]
    doc = json.loads((tmp_path / "out" / "compile.json").read_text())
    assert doc["verification"][0]["passed"] and doc["artifacts"][0]["bytes"] > 0
    assert (
        ir.load(tmp_path / "out").nnz()
        == model.masks()["layers.0.weight_ih"].sum() + model.masks()["layers.0.weight_hh"].sum()
    )


def test_failed_verification_leaves_nothing(tmp_path, monkeypatch, inputs):
    real_get = backends.get
    monkeypatch.setattr(backends, "get", lambda n: _BrokenBackend() if n == "broken" else real_get(n))
    with pytest.raises(VerificationError, match="verification failed, nothing written"):
        compiler.compile_source(_source(make_model()), ["broken"], tmp_path / "out", X_verify=inputs)
    assert list(tmp_path.iterdir()) == []


def test_failed_verification_keeps_the_previous_output(tmp_path, monkeypatch, inputs):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("previous")
    real_get = backends.get
    monkeypatch.setattr(backends, "get", lambda n: _BrokenBackend() if n == "broken" else real_get(n))
    with pytest.raises(VerificationError):
        compiler.compile_source(_source(make_model()), ["broken"], tmp_path / "out", X_verify=inputs)
    assert (tmp_path / "out" / "keep.txt").read_text() == "previous"


def test_option_for_no_chosen_target_is_refused(tmp_path, inputs):
    from edgeprune.errors import EdgepruneError

    with pytest.raises(EdgepruneError, match="does not apply to target ir"):
        compiler.compile_source(
            _source(make_model()), ["ir"], tmp_path / "o", options={"dtype": "int8"}, X_verify=inputs
        )


def test_random_verification_inputs_need_no_dataset():
    src = _source(make_model())
    X, described = compiler.verification_inputs(src, "random", 8)
    assert X.shape == (8, 16, 5) and "random" in described


def test_a_model_without_dataset_verifies_on_random_inputs_of_its_shape():
    src = _source(make_model())
    src.model.meta.pop("dataset", None)
    src.model.meta.pop("sequence_length", None)
    X, described = compiler.verification_inputs(src, "auto", 5, seq_len=7)
    assert X.shape == (5, 7, src.model.input_size) and "records no dataset" in described
    assert src.model.meta["sequence_length"] == 7  # what TFLite's sequence model is unrolled over


def test_seq_len_is_checked():
    from edgeprune.errors import EdgepruneError

    src = _source(make_model())
    with pytest.raises(EdgepruneError, match="--seq-len must be >= 1"):
        compiler.verification_inputs(src, "random", 5, seq_len=0)

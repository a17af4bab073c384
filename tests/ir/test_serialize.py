import json

import numpy as np
import pytest

from edgeprune import frontend, ir, prune
from edgeprune.errors import IRError

from ..conftest import make_model


@pytest.fixture
def model():
    return frontend.lower(
        prune.prune_model(make_model("lstm", (12, 9), True), "magnitude", 0.8).model, {"dataset": "digits"}
    )


def test_round_trip_is_exact(tmp_path, model, inputs):
    ir.save(model, tmp_path)
    back = ir.load(tmp_path)
    assert back.meta["dataset"] == "digits"
    for a, b in zip(model.layers, back.layers):
        np.testing.assert_array_equal(a.weight.data, b.weight.data)
        np.testing.assert_array_equal(a.weight.indices, b.weight.indices)
    np.testing.assert_array_equal(ir.ReferenceExecutor(model).run(inputs), ir.ReferenceExecutor(back).run(inputs))


def test_same_model_same_bytes(model):
    assert ir.dump(model) == ir.dump(model)


def test_load_accepts_the_json_path(tmp_path, model):
    ir.save(model, tmp_path)
    assert ir.load(tmp_path / "model.json").nnz() == model.nnz()


def test_tampered_weights_are_refused(tmp_path, model):
    ir.save(model, tmp_path)
    with np.load(tmp_path / "weights.npz") as f:
        arrays = dict(f)
    arrays["layers.1.weight.indices"][0] = 10_000
    np.savez(tmp_path / "weights.npz", **arrays)
    with pytest.raises(IRError, match="out of range"):
        ir.load(tmp_path)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / "model.json").write_text("{"), "not valid JSON"),
        (lambda d: (d / "model.json").write_text('{"format": "other"}'), "not an edgeprune IR"),
        (lambda d: (d / "weights.npz").write_bytes(b"junk"), "cannot read weights"),
        (lambda d: (d / "model.json").unlink(), "no model.json"),
    ],
)
def test_damaged_ir_directory(tmp_path, model, damage, message):
    ir.save(model, tmp_path)
    damage(tmp_path)
    with pytest.raises(IRError, match=message):
        ir.load(tmp_path)


def test_missing_array_is_named(tmp_path, model):
    ir.save(model, tmp_path)
    with np.load(tmp_path / "weights.npz") as f:
        arrays = {k: v for k, v in f.items() if k != "head.bias"}
    np.savez(tmp_path / "weights.npz", **arrays)
    with pytest.raises(IRError, match="missing array 'head.bias'"):
        ir.load(tmp_path)


def test_json_describes_the_format(tmp_path, model):
    ir.save(model, tmp_path)
    doc = json.loads((tmp_path / "model.json").read_text())
    assert doc["format"] == "edgeprune.ir" and doc["version"] == 2
    assert doc["stages"][0]["weight_nnz"] == model.layers[0].weight.nnz and doc["stages"][-1]["name"] == "head"

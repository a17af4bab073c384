"""Fuzzing every loader of user files (issue 18, item 7): a mutated input loads as a valid model or is
refused in one ``EdgepruneError`` line; never another exception, a hang or a file written.

Each test runs ``mutations.examples(N)`` examples (derandomized, so CI is reproducible); the long
run is benchmarks/hardening/fuzz.py (EDGEPRUNE_FUZZ_EXAMPLES, random seeds).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from edgeprune import checkpoint, data
from edgeprune.compiler import load_source
from edgeprune.models import SequenceClassifier

from .mutations import (
    array_mutation,
    byte_mutation,
    check_load,
    examples,
    fresh_dir,
    json_mutation,
    npz_mutation,
    write,
)

LONG = "EDGEPRUNE_FUZZ_EXAMPLES" in os.environ
FUZZ = settings(
    deadline=None,
    database=None,
    derandomize=not LONG,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """Where examples write their mutated files (one directory per test, emptied per example)."""
    return tmp_path_factory.mktemp("fuzz")


def _valid_source(src) -> None:
    """What compile does next: the IR validates and the reference runs on the IR's input shape."""
    src.model.validate()
    X = np.random.default_rng(1).random((2, 7, src.model.input_size), dtype=np.float32)
    with np.errstate(all="ignore"):
        logits = src.reference(X)
    assert logits.shape == (2, src.model.num_classes)


def _valid_checkpoint(result) -> None:
    model, meta = result
    assert isinstance(model, SequenceClassifier) and isinstance(meta, dict)
    assert all(bool(torch.isfinite(p).all()) for p in model.state_dict().values())
    json.dumps(meta, allow_nan=False)
    with torch.no_grad():
        assert model(torch.zeros(2, 3, model.config.input_size)).shape == (2, model.config.num_classes)


def _valid_dataset(ds) -> None:
    for X, y in ((ds.X_train, ds.y_train), (ds.X_test, ds.y_test)):
        assert X.ndim == 3 and min(X.shape) >= 1 and X.dtype == np.float32 and len(y) == len(X)
        assert np.isfinite(X).all() and X.min() >= 0 and X.max() <= 1
        assert y.dtype == np.int64 and y.min() >= 0 and y.max() < ds.num_classes


# -- checkpoints ---------------------------------------------------------------------------------------
@settings(FUZZ, max_examples=examples(60))
@given(st.data())
def test_checkpoint_bytes(seeds, work, data_):
    raw = seeds["ckpt"].read_bytes()
    d = fresh_dir(work, "ckpt-bytes")
    path = write(d / "m.pt", data_.draw(byte_mutation(raw)))
    check_load("checkpoint", lambda: checkpoint.load_with_meta(path), d, _valid_checkpoint)


@settings(FUZZ, max_examples=examples(60))
@given(st.data())
def test_checkpoint_payload(seeds, work, data_):
    """Structured damage a byte flip rarely reaches: wrong tensors, configs and metadata, re-signed or not."""
    payload = torch.load(seeds["ckpt"], weights_only=True)
    part = data_.draw(st.sampled_from(["state", "masks", "config", "meta"]))
    if part in ("state", "masks"):
        name = data_.draw(st.sampled_from(sorted(payload[part])))
        mutated = data_.draw(array_mutation(payload[part][name].numpy()))
        assume(mutated.dtype.kind in "fiub")  # torch has no string or complex-from-numpy-U tensors
        payload[part][name] = torch.from_numpy(np.ascontiguousarray(mutated))
    else:
        payload[part] = json.loads(data_.draw(json_mutation(payload[part])))
    if data_.draw(st.booleans()):  # re-signed: only the structural checks stand between it and a model
        try:
            payload["sha256"] = checkpoint.payload_digest(payload)
        except (TypeError, ValueError, RuntimeError, KeyError):
            pass
    d = fresh_dir(work, "ckpt-payload")
    torch.save(payload, d / "m.pt")
    check_load("checkpoint", lambda: checkpoint.load_with_meta(d / "m.pt"), d, _valid_checkpoint)


# -- IR directories --------------------------------------------------------------------------------------
def _ir_copy(seeds, work: Path, name: str) -> Path:
    d = fresh_dir(work, name)
    for f in ("model.json", "weights.npz"):
        (d / f).write_bytes((seeds["ir"] / f).read_bytes())
    return d


@settings(FUZZ, max_examples=examples(60))
@given(st.data())
def test_ir_model_json(seeds, work, data_):
    d = _ir_copy(seeds, work, "ir-json")
    doc = json.loads((d / "model.json").read_text())
    mutated = data_.draw(
        st.one_of(
            json_mutation(doc),
            byte_mutation((d / "model.json").read_bytes()).map(lambda b: b.decode("utf-8", "replace")),
        )
    )
    write(d / "model.json", mutated)
    check_load("IR", lambda: load_source(d), d, _valid_source)


@settings(FUZZ, max_examples=examples(60))
@given(st.data())
def test_ir_weights_npz(seeds, work, data_):
    d = _ir_copy(seeds, work, "ir-npz")
    with np.load(d / "weights.npz") as f:
        arrays = {k: f[k] for k in f.files}
    raw = (d / "weights.npz").read_bytes()
    write(d / "weights.npz", data_.draw(st.one_of(npz_mutation(arrays), byte_mutation(raw))))
    check_load("IR", lambda: load_source(d), d, _valid_source)


# -- ONNX files ------------------------------------------------------------------------------------------
@settings(FUZZ, max_examples=examples(40))
@given(st.data())
def test_onnx_file(seeds, work, data_):
    if seeds["onnx"] is None:
        pytest.skip("needs the onnx extra (onnx, onnxruntime)")
    import onnx
    from onnx import numpy_helper

    raw = seeds["onnx"].read_bytes()
    if data_.draw(st.booleans()):
        mutated = data_.draw(byte_mutation(raw))
    else:  # structured: one initializer's values, dtype or shape; or a node attribute
        proto = onnx.load_from_string(raw)
        inits = list(proto.graph.initializer)
        i = data_.draw(st.integers(0, len(inits) - 1))
        a = numpy_helper.to_array(inits[i])
        if data_.draw(st.booleans()):
            b = data_.draw(array_mutation(a))
            assume(b.dtype.kind in "fiub")
            new = numpy_helper.from_array(np.ascontiguousarray(b), inits[i].name)
        else:
            new = onnx.TensorProto()
            new.CopyFrom(inits[i])
            new.dims[:] = [data_.draw(st.sampled_from([0, 1, 3, 2**31, 2**40])) for _ in range(len(new.dims) or 1)]
        inits[i].CopyFrom(new)
        nodes = [n for n in proto.graph.node if n.attribute]
        if nodes and data_.draw(st.booleans()):
            attr = data_.draw(st.sampled_from([a for n in nodes for a in n.attribute]))
            if attr.type == onnx.AttributeProto.INT:
                attr.i = data_.draw(st.sampled_from([0, -1, 2**40, 7]))
        mutated = proto.SerializeToString()
    d = fresh_dir(work, "onnx")
    path = write(d / "model.onnx", mutated)
    check_load("ONNX", lambda: load_source(path), d, _valid_source)


# -- .npz datasets ---------------------------------------------------------------------------------------
@settings(FUZZ, max_examples=examples(60))
@given(st.data())
def test_npz_dataset(seeds, work, data_):
    arrays = seeds["data"]
    d = fresh_dir(work, "npz")
    good = write(d / "seed.npz", b"")
    np.savez(good, **arrays)
    raw = good.read_bytes()
    good.unlink()
    path = write(d / "data.npz", data_.draw(st.one_of(npz_mutation(arrays), byte_mutation(raw))))
    check_load("dataset", lambda: data.load(str(path)), d, _valid_dataset)


def test_the_seeds_themselves_load(seeds, work):
    """The unmutated inputs load: a fuzz run that refuses everything would prove nothing."""
    d = seeds["ckpt"].parent
    assert check_load("seed", lambda: checkpoint.load_with_meta(seeds["ckpt"]), d, _valid_checkpoint) == "loaded"
    assert check_load("seed", lambda: load_source(seeds["ir"]), d, _valid_source) == "loaded"
    if seeds["onnx"] is not None:
        assert check_load("seed", lambda: load_source(seeds["onnx"]), d, _valid_source) == "loaded"
    np.savez(work / "seed-data.npz", **seeds["data"])
    assert check_load("seed", lambda: data.load(str(work / "seed-data.npz")), work, _valid_dataset) == "loaded"
    (work / "seed-data.npz").unlink()

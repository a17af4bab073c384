"""Inputs the fuzz suite found (each an internal error before its fix), kept as plain tests."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

from edgeprune import checkpoint, data
from edgeprune.compiler import load_source
from edgeprune.errors import EdgepruneError


def _ir_with(seeds, tmp_path, edit):
    d = tmp_path / "ir"
    d.mkdir()
    for f in ("model.json", "weights.npz"):
        (d / f).write_bytes((seeds["ir"] / f).read_bytes())
    edit(d)
    return d


@pytest.mark.parametrize("shape", ["[Infinity, 6]", '""', "[6]"])
def test_ir_head_shape_that_is_not_two_integers(seeds, tmp_path, shape):
    """Was OverflowError (Infinity) and IndexError inside validate ("")."""

    def edit(d):
        doc = (d / "model.json").read_text()
        start = doc.index('"weight_shape"', doc.index('"head"'))
        end = doc.index("]", start) + 1
        (d / "model.json").write_text(doc[:start] + f'"weight_shape": {shape}' + doc[end:])

    with pytest.raises(EdgepruneError, match="weight_shape|malformed"):
        load_source(_ir_with(seeds, tmp_path, edit))


def test_ir_weights_with_a_damaged_deflate_stream(seeds, tmp_path):
    """Was zlib.error from inside np.load (not one of the exceptions caught)."""
    raw = (seeds["ir"] / "weights.npz").read_bytes()
    with zipfile.ZipFile(seeds["ir"] / "weights.npz") as zf:
        info = zf.getinfo("head.bias.npy")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for offset in (0, 6, 7, 9):  # flips that zlib reports as an invalid stream (others fail the CRC)
        damaged = bytearray(raw)
        damaged[start + offset] ^= 0xFF

        def edit(d, damaged=bytes(damaged)):
            (d / "weights.npz").write_bytes(damaged)

        (tmp_path / str(offset)).mkdir()
        with pytest.raises(EdgepruneError, match="cannot read weights"):
            load_source(_ir_with(seeds, tmp_path / str(offset), edit))


def test_a_config_too_large_for_torchs_size_arithmetic(seeds, tmp_path):
    """Was RuntimeError 'Storage size calculation overflowed' while checking shapes on the meta device."""
    payload = torch.load(seeds["ckpt"], weights_only=True)
    payload["config"]["stages"][0]["size"] = 4 * 10**12
    payload["config"]["stages"][1]["size"] = 10**12
    payload["sha256"] = checkpoint.payload_digest(payload)
    torch.save(payload, tmp_path / "m.pt")
    with pytest.raises(EdgepruneError, match="config needs .* weights, the file holds"):
        checkpoint.load(tmp_path / "m.pt")


def test_test_split_values_beyond_the_training_range_are_clipped(seeds, tmp_path):
    """Was a silent acceptance: X in [0, 1] skipped the scaling, and X_test kept a value of 3.4e38."""
    arrays = dict(seeds["data"])
    arrays["X_test"] = arrays["X_test"].copy()
    arrays["X_test"][0, 0, 0] = 3.4e38
    np.savez(tmp_path / "d.npz", **arrays)
    ds = data.load(str(tmp_path / "d.npz"))
    assert ds.X_test.max() == 1.0 and ds.X_test.min() >= 0.0
    np.testing.assert_array_equal(ds.X_test.reshape(-1)[1:], arrays["X_test"].reshape(-1)[1:])


def test_onnx_file_its_own_runtime_cannot_run(seeds, tmp_path):
    """Was onnxruntime's Fail / onnx.reference's TypeError from the import's check against the file."""
    if seeds["onnx"] is None:
        pytest.skip("needs the onnx extra (onnx, onnxruntime)")
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(seeds["onnx"]))
    axes = {n.input[1] for n in proto.graph.node if n.op_type == "Squeeze" and len(n.input) > 1}
    damaged = 0
    for init in proto.graph.initializer:
        if init.name in axes:  # Squeeze axes as float16: ONNX's checker accepts it, no runtime can run it
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))
            damaged += 1
    assert damaged
    onnx.save(proto, tmp_path / "m.onnx")
    with pytest.raises(EdgepruneError, match="cannot run the file|not a readable|invalid ONNX"):
        load_source(tmp_path / "m.onnx")


@pytest.mark.parametrize(
    "stage",
    [
        None,
        [1],
        {"kind": "lstm", "size": "6"},
        {"kind": "lstm", "size": True},
        {"kind": "lstm", "size": 6, "colour": "red"},
    ],
)
def test_a_damaged_stage_in_a_checkpoint_config_is_one_line(seeds, tmp_path, stage):
    """Was AttributeError: a stage of the chain that is not a table (found by the long fuzz run)."""
    payload = torch.load(seeds["ckpt"], weights_only=True)
    payload["config"]["stages"][0] = stage
    payload["sha256"] = checkpoint.payload_digest(payload)
    torch.save(payload, tmp_path / "m.pt")
    with pytest.raises(EdgepruneError, match="invalid model config"):
        checkpoint.load(tmp_path / "m.pt")

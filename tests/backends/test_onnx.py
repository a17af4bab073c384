"""The onnx target: both files match torch in onnxruntime, pass onnx.checker, keep the mask when stored sparse."""

import json

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install 'edgeprune[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'edgeprune[onnx]')")

from edgeprune import compiler, frontend, ir, prune  # noqa: E402
from edgeprune.backends import get  # noqa: E402
from edgeprune.backends.onnx import SEQUENCE_FILE, STEP_FILE, build_models, state_names  # noqa: E402
from edgeprune.errors import BackendError  # noqa: E402

from ..conftest import CONFIG_CASES, make_model  # noqa: E402

BACKEND = get("onnx")
DEFAULTS = {"opset": 17, "sparse_weights": "off"}


def _torch_logits(model, X):
    with torch.no_grad():
        return model(torch.from_numpy(X)).numpy()


def _all_ops(graph) -> set[str]:
    ops = set()
    for node in graph.node:
        ops.add(node.op_type)
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                ops |= _all_ops(a.g)
    return ops


def _pruned(cell, hidden, feedback, sparsity):
    model = make_model(cell, hidden, feedback)
    return prune.prune_model(model, "magnitude", sparsity, include_head=True).model if sparsity else model


@pytest.mark.parametrize("sparsity", [None, 0.9])
@pytest.mark.parametrize("cell,hidden,feedback", CONFIG_CASES)
def test_both_files_match_torch_in_onnxruntime(tmp_path, inputs, cell, hidden, feedback, sparsity):
    model = _pruned(cell, hidden, feedback, sparsity)
    expected = _torch_logits(model, inputs)
    artifacts = BACKEND.emit(frontend.lower(model), tmp_path, DEFAULTS)
    assert [a.name for a in artifacts] == [SEQUENCE_FILE, STEP_FILE]
    for a in artifacts:
        onnx.checker.check_model(onnx.load(str(tmp_path / a.name)), full_check=True)
    sequence, step = artifacts
    with BACKEND.runner(sequence, tmp_path, DEFAULTS) as runner:
        assert np.max(np.abs(runner.run(inputs) - expected)) <= 1e-5
    with BACKEND.runner(step, tmp_path, DEFAULTS) as runner:
        assert np.max(np.abs(runner.stream(inputs) - expected)) <= 1e-5
    graph = onnx.load(str(tmp_path / SEQUENCE_FILE)).graph
    assert ("Scan" in {n.op_type for n in graph.node}) == feedback  # feedback: one joint recurrence in a Scan
    assert {"LSTM", "GRU", "RNN"} & _all_ops(graph) == {cell.upper()}  # the standard recurrent op of the cell


def test_step_file_interface_is_plain_states_in_and_out(tmp_path, inputs):
    """A streaming app drives model_step.onnx by hand: zero states in, *_next fed back."""
    model = _pruned("lstm", (12, 9), True, 0.5)
    low = frontend.lower(model)
    BACKEND.emit(low, tmp_path, DEFAULTS)
    sess = ort.InferenceSession(str(tmp_path / STEP_FILE), providers=["CPUExecutionProvider"])
    names = state_names(low)
    assert names == ["h_0", "c_0", "h_1", "c_1"]
    assert [i.name for i in sess.get_inputs()] == ["x_t"] + names
    assert [o.name for o in sess.get_outputs()] == ["logits"] + [n + "_next" for n in names]
    assert [i.shape for i in sess.get_inputs()] == [
        ["batch", 5],
        ["batch", 12],
        ["batch", 12],
        ["batch", 9],
        ["batch", 9],
    ]
    reference = ir.ReferenceExecutor(low)
    ref_state = reference.init_state(len(inputs))
    feeds = {n: np.zeros((len(inputs), 12 if n.endswith("0") else 9), np.float32) for n in names}
    for t in range(inputs.shape[1]):
        logits, *new = sess.run(None, {"x_t": inputs[:, t], **feeds})
        feeds = dict(zip(names, new))
        ref_logits, ref_state = reference.step(inputs[:, t], ref_state)
        assert np.max(np.abs(logits - ref_logits)) <= 1e-5
        assert np.max(np.abs(feeds["c_1"] - ref_state[1][1])) <= 1e-5
    doc = onnx.load(str(tmp_path / STEP_FILE)).doc_string
    assert "h_0_next" in doc and "zero states" in doc


def test_batch_and_sequence_length_are_dynamic(tmp_path):
    model = _pruned("gru", (12, 9), False, 0.9)
    [sequence, _] = BACKEND.emit(frontend.lower(model), tmp_path, DEFAULTS)
    with BACKEND.runner(sequence, tmp_path, DEFAULTS) as runner:
        for n, t in ((1, 1), (3, 20), (17, 4)):
            X = np.random.default_rng(n).random((n, t, 5), dtype=np.float32)
            assert np.max(np.abs(runner.run(X) - _torch_logits(model, X))) <= 1e-5


@pytest.mark.parametrize("cell,hidden,feedback", [("lstm", (12, 9), False), ("gru", (12, 9), True)])
def test_sparse_storage_keeps_exactly_the_mask_and_shrinks_the_file(tmp_path, inputs, cell, hidden, feedback):
    model = _pruned(cell, hidden, feedback, 0.9)
    with torch.no_grad():  # a surviving weight that is exactly zero must still be stored
        mask = model.masks()["layers.0.weight_hh"]
        r, c = map(int, mask.nonzero()[0])
        model.layers[0].weight_hh[r, c] = 0.0
    low = frontend.lower(model)
    expected = _torch_logits(model, inputs)
    sizes = {}
    for mode in ("off", "constant", "initializer"):
        out = tmp_path / mode
        out.mkdir()
        artifacts = BACKEND.emit(low, out, {**DEFAULTS, "sparse_weights": mode})
        sizes[mode] = (out / SEQUENCE_FILE).stat().st_size
        proto = onnx.load(str(out / SEQUENCE_FILE))
        stored = artifacts[0].info["stored_sparse"]
        if mode == "off":
            assert not stored
            continue
        # every recurrent weight is <1/3 dense, so stored sparse; the head (unpruned rows) too at 90%
        assert {f"layers.{l}.{k}" for l in range(2) for k in "WR"} <= set(stored)
        sparse = (
            [s for s in proto.graph.sparse_initializer]
            if mode == "initializer"
            else [
                a.sparse_tensor
                for n in proto.graph.node
                if n.op_type == "Constant"
                for a in n.attribute
                if a.name == "sparse_value"
            ]
        )
        total = sum(s.values.dims[0] for s in sparse if s.values.name.startswith("layers."))
        assert total == low.nnz()  # exactly the mask's entries, the stored zero included
        assert artifacts[0].info["checker"] == ("full" if mode == "constant" else "basic")
        for a in artifacts:
            with BACKEND.runner(a, out, DEFAULTS) as runner:
                got = runner.run(inputs) if a.name == SEQUENCE_FILE else runner.stream(inputs)
                assert np.max(np.abs(got - expected)) <= 1e-5
    # 12 bytes per stored entry instead of 4 per entry: ~0.3x the weight bytes at 90% (plus fixed overhead)
    assert sizes["initializer"] < 0.6 * sizes["off"] and sizes["constant"] < 0.6 * sizes["off"]


def test_sparse_initializer_full_check_limitation_is_still_there(tmp_path):
    """Canary: if onnx's full check starts accepting sparse_initializer inputs, run it for them too."""
    model = frontend.lower(_pruned("rnn", (12,), False, 0.9))
    proto, stored = build_models(model, 17, "initializer")[SEQUENCE_FILE]
    assert stored and proto.graph.sparse_initializer
    onnx.checker.check_model(proto)
    with pytest.raises(onnx.shape_inference.InferenceError, match="sparse_tensor"):
        onnx.checker.check_model(proto, full_check=True)


def test_dense_weights_are_never_stored_sparse(tmp_path):
    artifacts = BACKEND.emit(
        frontend.lower(make_model("lstm", (12,))), tmp_path, {**DEFAULTS, "sparse_weights": "constant"}
    )
    assert all(not a.info["stored_sparse"] for a in artifacts)


def test_same_model_same_bytes(tmp_path):
    low = frontend.lower(_pruned("lstm", (12, 9), True, 0.9))
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        BACKEND.emit(low, tmp_path / name, {**DEFAULTS, "sparse_weights": "constant"})
    for f in (SEQUENCE_FILE, STEP_FILE):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def test_opset_range(tmp_path, inputs):
    model = _pruned("gru", (12,), False, 0.5)
    top = onnx.defs.onnx_opset_version()
    proto, _ = build_models(frontend.lower(model), top)[SEQUENCE_FILE]
    assert proto.opset_import[0].version == top
    with pytest.raises(BackendError, match=r"--opset 13: supported range is 17\.\."):
        build_models(frontend.lower(model), 13)
    proto, _ = build_models(frontend.lower(model), 17)[SEQUENCE_FILE]
    assert proto.ir_version == 8  # the oldest IR version for opset 17: older runtimes load it


def test_runner_is_pinned_to_one_thread(tmp_path):
    [sequence, step] = BACKEND.emit(frontend.lower(make_model("rnn", (12,))), tmp_path, DEFAULTS)
    for a in (sequence, step):
        with BACKEND.runner(a, tmp_path, DEFAULTS) as runner:
            assert runner.session.get_session_options().intra_op_num_threads == 1


def test_compile_verifies_both_files_in_both_modes(tmp_path, inputs):
    model = _pruned("lstm", (12, 9), True, 0.9)
    source = compiler.Source(
        "mem", frontend.lower(model, {"dataset": "digits"}), lambda X: _torch_logits(model, X), "torch"
    )
    report = compiler.compile_source(
        source, ["onnx"], tmp_path / "out", X_verify=inputs, options={"sparse_weights": "constant"}
    )
    assert [(r.artifact, r.mode) for r in report.results] == [(SEQUENCE_FILE, "sequence"), (STEP_FILE, "step")]
    assert all(r.passed and r.max_abs_error <= 1e-5 for r in report.results)
    doc = json.loads((tmp_path / "out" / "compile.json").read_text())
    assert {a["name"] for a in doc["artifacts"]} == {SEQUENCE_FILE, STEP_FILE}
    assert all(a["bytes"] == (tmp_path / "out" / a["name"]).stat().st_size for a in doc["artifacts"])

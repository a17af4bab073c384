"""ONNX import: real torch exports, hand-built graphs with attributes torch never writes, our own files
(round trip), and one-line refusals for everything outside the supported set."""

import re
import warnings

import numpy as np
import pytest
import torch
from torch import nn

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install 'edgeprune[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'edgeprune[onnx]')")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgeprune import checkpoint, frontend, ir, prune  # noqa: E402
from edgeprune.backends import get  # noqa: E402
from edgeprune.frontend.onnx import OnnxImportError, import_onnx, load_classifier  # noqa: E402

from ..conftest import CONFIG_CASES, make_model  # noqa: E402

F, H, C = 5, 6, 3


def _ort(path, X, name="x"):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {name: X})[0]


def _ir_logits(imported, X):
    return ir.ReferenceExecutor(imported.model).run(X)


# -- real exporter output ---------------------------------------------------------------------------
class _TorchClassifier(nn.Module):
    """The usual user code: a recurrent module and a Linear on the last step (or on h_n[-1])."""

    def __init__(self, rnn, use_h_n):
        super().__init__()
        self.rnn, self.fc, self.use_h_n = rnn, nn.Linear(rnn.hidden_size, C), use_h_n

    def forward(self, x):
        out, state = self.rnn(x)
        if self.use_h_n:
            h_n = state[0] if isinstance(state, tuple) else state
            return self.fc(h_n[-1])
        return self.fc(out[:, -1] if self.rnn.batch_first else out[-1])


def _export(module, example, path, dynamic=True):
    axes = {0: "batch", 1: "time"} if module.rnn.batch_first else {0: "time", 1: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            module.eval(),
            (example,),
            str(path),
            dynamo=False,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": axes} if dynamic else None,
        )


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize(
    "layers,batch_first,use_h_n",
    [(1, True, False), (2, False, True)],
    ids=["1layer-batchfirst-out[:,-1]", "2layers-timemajor-h_n[-1]"],
)
def test_torch_exports_import_exactly(tmp_path, kind, layers, batch_first, use_h_n):
    torch.manual_seed(0)
    module = _TorchClassifier(getattr(nn, kind)(F, H, num_layers=layers, batch_first=batch_first), use_h_n)
    X = np.random.default_rng(0).standard_normal((4, 9, F)).astype(np.float32)
    _export(module, torch.randn(2, 7, F) if batch_first else torch.randn(7, 2, F), tmp_path / "m.onnx")
    imported = import_onnx(tmp_path / "m.onnx")
    with torch.no_grad():
        expected = module(torch.from_numpy(X if batch_first else X.transpose(1, 0, 2).copy())).numpy()
    assert np.max(np.abs(_ir_logits(imported, X) - expected)) <= 1e-5
    assert [l.cell for l in imported.model.layers] == [kind.lower()] * layers
    assert imported.input_axes == (
        {"batch": 0, "time": 1, "features": 2} if batch_first else {"time": 0, "batch": 1, "features": 2}
    )
    assert np.max(np.abs(imported.logits(X) - expected)) <= 1e-5  # the source runs on [N, T, F] either way


def test_export_with_fixed_shapes_runs_in_chunks_of_its_batch(tmp_path):
    torch.manual_seed(0)
    module = _TorchClassifier(nn.GRU(F, H, batch_first=True), False)
    _export(module, torch.randn(2, 7, F), tmp_path / "m.onnx", dynamic=False)
    imported = import_onnx(tmp_path / "m.onnx")
    assert imported.fixed == {"batch": 2, "time": 7} and imported.model.meta["sequence_length"] == 7
    X = np.random.default_rng(0).standard_normal((5, 7, F)).astype(np.float32)  # 5 = two batches of 2 + a padded one
    with torch.no_grad():
        expected = module(torch.from_numpy(X)).numpy()
    assert np.max(np.abs(imported.logits(X) - expected)) <= 1e-5
    with pytest.raises(OnnxImportError, match="fixed sequence length of 7"):
        imported.logits(X[:, :4])


# -- hand-built graphs (what tf2onnx/Keras and others write) ----------------------------------------------
def _weights(op, rng, hidden=H, inputs=F):
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    W = rng.standard_normal((1, gates * hidden, inputs)).astype(np.float32) * 0.5
    R = rng.standard_normal((1, gates * hidden, hidden)).astype(np.float32) * 0.5
    B = rng.standard_normal((1, 2 * gates * hidden)).astype(np.float32) * 0.5
    return W, R, B


def _graph(
    op="LSTM",
    layout=0,
    attrs=None,
    head="matmul",
    opset=17,
    extra_nodes=(),
    inputs_override=None,
    initial="expand",
    output_step="Y_h",
    seed=0,
    x_type=TensorProto.FLOAT,
):
    """x [batch, time, F] -> (Transpose) -> op -> last step -> head -> y [batch, C]."""
    rng = np.random.default_rng(seed)
    W, R, B = _weights(op, rng)
    inits = [numpy_helper.from_array(a, n) for a, n in ((W, "W"), (R, "R"), (B, "B"))]
    nodes = []
    x = "x"
    if layout == 0:
        nodes.append(helper.make_node("Transpose", ["x"], ["x_tm"], perm=[1, 0, 2]))
        x = "x_tm"
    h0 = ""
    if (
        isinstance(initial, str) and initial == "expand"
    ):  # zeros [1, batch, H] built from the run-time batch size, tf2onnx style
        inits += [
            numpy_helper.from_array(np.array([0], np.int64), "i0"),
            numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
            numpy_helper.from_array(np.array([1], np.int64), "one"),
            numpy_helper.from_array(np.array([H], np.int64), "hs"),
        ]
        nodes += [
            helper.make_node("Shape", ["x"], ["xs"]),
            helper.make_node("Gather", ["xs", "i0"], ["n"], axis=0),
            helper.make_node("Concat", ["one", "n", "hs"] if layout == 0 else ["n", "one", "hs"], ["shp"], axis=0),
            helper.make_node("Expand", ["zero", "shp"], ["h0"]),
        ]
        h0 = "h0"
    elif isinstance(initial, np.ndarray):
        inits.append(numpy_helper.from_array(initial, "h0"))
        h0 = "h0"
    rec_inputs = inputs_override or ["x_in", "W", "R", "B", "", h0]
    rec_inputs = [x if i == "x_in" else i for i in rec_inputs]
    layout_attr = {"layout": layout} if opset >= 14 else {}  # layout exists since opset 14
    nodes.append(helper.make_node(op, rec_inputs, ["Y", "Y_h"], hidden_size=H, **layout_attr, **(attrs or {})))
    squeeze_axes = numpy_helper.from_array(np.array([0 if layout == 0 else 1], np.int64), "sq")
    if output_step == "Y_h":
        if opset >= 13:
            inits.append(squeeze_axes)
            nodes.append(helper.make_node("Squeeze", ["Y_h", "sq"], ["h"]))
        else:
            nodes.append(helper.make_node("Squeeze", ["Y_h"], ["h"], axes=[0 if layout == 0 else 1]))
    else:  # every step: [T, 1, N, H] -> [T, N, H] and then the time selection given
        inits.append(numpy_helper.from_array(np.array([1], np.int64), "sq1"))
        nodes.append(helper.make_node("Squeeze", ["Y", "sq1"], ["Y3"]))
        nodes += output_step  # must produce "h"
    Wd = rng.standard_normal((H, C)).astype(np.float32)
    bd = rng.standard_normal(C).astype(np.float32)
    if head == "matmul":  # Keras Dense: MatMul + Add
        inits += [numpy_helper.from_array(Wd, "Wd"), numpy_helper.from_array(bd, "bd")]
        nodes += [helper.make_node("MatMul", ["h", "Wd"], ["hw"]), helper.make_node("Add", ["hw", "bd"], ["y"])]
    else:  # torch Linear: Gemm with transB
        inits += [numpy_helper.from_array(Wd.T.copy(), "Wd"), numpy_helper.from_array(bd, "bd")]
        nodes.append(helper.make_node("Gemm", ["h", "Wd", "bd"], ["y"], transB=1, alpha=1.0, beta=1.0))
    nodes += list(extra_nodes)
    out = extra_nodes[-1].output[0] if extra_nodes else "y"
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", x_type, ["batch", "time", F])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", C])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = helper.find_min_ir_version_for(model.opset_import)
    return model


def _save(model, path):
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(
    "op, attrs",
    [
        ("GRU", {}),  # linear_before_reset=0, ONNX's default
        ("LSTM", {"clip": 3.0}),
        ("LSTM", {"input_forget": 1}),
        ("RNN", {"activations": ["LeakyRelu"]}),
    ],
)
def test_cell_variants_once_refused_import_and_match_onnxruntime(tmp_path, op, attrs):
    path = _save(_graph(op, attrs=attrs), tmp_path / "m.onnx")
    imported = import_onnx(path)
    assert not imported.model.layers[0].default_cell
    X = np.random.default_rng(3).standard_normal((4, 6, F)).astype(np.float32)
    assert np.max(np.abs(_ir_logits(imported, X) - _ort(path, X))) <= 1e-5


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("head", ["matmul", "gemm"])
def test_hand_built_graphs_match_onnxruntime(tmp_path, op, head):
    attrs = {
        "activations": {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}[op],
        "direction": "forward",
    }  # the defaults, spelled out as some exporters do
    if op == "GRU":
        attrs["linear_before_reset"] = 1
    path = _save(_graph(op, attrs=attrs, head=head), tmp_path / "m.onnx")
    imported = import_onnx(path)
    X = np.random.default_rng(3).standard_normal((4, 6, F)).astype(np.float32)
    assert np.max(np.abs(_ir_logits(imported, X) - _ort(path, X))) <= 1e-5


def test_old_opset_attribute_forms(tmp_path):
    path = _save(_graph("LSTM", opset=11), tmp_path / "m.onnx")  # Squeeze axes as an attribute
    X = np.random.default_rng(3).standard_normal((2, 5, F)).astype(np.float32)
    assert np.max(np.abs(_ir_logits(import_onnx(path), X) - _ort(path, X))) <= 1e-5


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_layout_1_runs_in_onnx_reference_and_equals_layout_0(tmp_path, op):
    """onnxruntime's CPU kernels refuse layout=1; the importer still reads it and checks it with onnx.reference."""
    attrs = {"linear_before_reset": 1} if op == "GRU" else {}
    batch_major = _save(_graph(op, layout=1, attrs=attrs), tmp_path / "l1.onnx")
    time_major = _save(_graph(op, layout=0, attrs=attrs), tmp_path / "l0.onnx")  # same seed: same weights
    imported = import_onnx(batch_major)
    assert imported.runtime == "onnx.reference"
    X = np.random.default_rng(3).standard_normal((3, 5, F)).astype(np.float32)
    assert np.max(np.abs(_ir_logits(imported, X) - _ort(time_major, X))) <= 1e-5


def test_last_step_selected_by_slice_or_gather(tmp_path):
    X = np.random.default_rng(3).standard_normal((3, 5, F)).astype(np.float32)
    const = [
        numpy_helper.from_array(np.array(v, np.int64), n)
        for v, n in (([-1], "s"), ([2**63 - 1], "e"), ([0], "a0"), (-1, "last"))
    ]
    slice_last = [helper.make_node("Constant", [], [c.name], value=c) for c in const] + [
        helper.make_node("Slice", ["Y3", "s", "e", "a0"], ["Y_last"]),  # [-1:] keeps the axis
        helper.make_node("Squeeze", ["Y_last", "a0"], ["h"]),
    ]
    gather_last = [
        helper.make_node("Constant", [], ["last"], value=const[3]),
        helper.make_node("Gather", ["Y3", "last"], ["h"], axis=0),
    ]
    for name, steps in (("slice", slice_last), ("gather", gather_last)):
        path = _save(_graph("GRU", attrs={"linear_before_reset": 1}, output_step=steps), tmp_path / f"{name}.onnx")
        assert np.max(np.abs(_ir_logits(import_onnx(path), X) - _ort(path, X))) <= 1e-5


REFUSALS = {
    "negative-clip": (dict(attrs={"clip": -3.0}), "clip=-3.0 must be a positive number"),
    "reverse": (dict(attrs={"direction": "reverse"}), "direction=reverse"),
    "affine-without-alpha": (dict(op="RNN", attrs={"activations": ["Affine"]}), "Affine needs its activation_alpha"),
    "unknown-activation": (dict(op="RNN", attrs={"activations": ["Gelu"]}), "activation 'Gelu' is not one of"),
    "sequence_lens": (dict(inputs_override=["x_in", "W", "R", "B", "lens"]), "sequence_lens"),
    "nonzero-initial_h": (dict(initial=np.ones((1, 1, H), np.float32)), "initial_h must be zero"),
    "elu": (
        dict(extra_nodes=(helper.make_node("Elu", ["y"], ["p"], name="act"),)),
        "unsupported op(s) on the path to the output: Elu 'act'",
    ),
    "elu-then-selu": (
        dict(
            extra_nodes=(
                helper.make_node("Elu", ["y"], ["r"], name="e1"),
                helper.make_node("Relu", ["r"], ["r2"], name="fine"),
                helper.make_node("Selu", ["r2"], ["p"], name="s1"),
            )
        ),
        "output: Elu 'e1', Selu 's1'",
    ),
    "custom-domain": (
        dict(extra_nodes=(helper.make_node("Gelu", ["y"], ["p"], domain="com.microsoft"),)),
        "com.microsoft::Gelu",
    ),
    "int64-input": (dict(x_type=TensorProto.INT64), "only float32 inputs"),
    "middle-step": (
        dict(
            output_step=[
                helper.make_node("Constant", [], ["mid"], value=numpy_helper.from_array(np.array(2, np.int64))),
                helper.make_node("Gather", ["Y3", "mid"], ["h"], axis=0),
            ]
        ),
        "only the last step",
    ),
    "first-step": (
        dict(
            output_step=[
                helper.make_node("Constant", [], ["first"], value=numpy_helper.from_array(np.array(0, np.int64))),
                helper.make_node("Gather", ["Y3", "first"], ["h"], axis=0),
            ]
        ),
        "only the last step",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_unsupported_graphs_are_refused_by_name(tmp_path, case):
    kwargs, message = REFUSALS[case]
    model = _graph(**kwargs)
    if case == "custom-domain":
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    if case == "sequence_lens":
        model.graph.initializer.append(numpy_helper.from_array(np.array([5], np.int32), "lens"))
    path = _save(model, tmp_path / "m.onnx")
    with pytest.raises(OnnxImportError, match=re.escape(message)) as err:
        import_onnx(path)
    assert "\n" not in str(err.value) and str(err.value).startswith("m.onnx:")


def test_corrupt_and_missing_files(tmp_path):
    (tmp_path / "garbage.onnx").write_bytes(b"\x08\x07not a protobuf \xff\xff")
    with pytest.raises(OnnxImportError, match="not a readable ONNX model"):
        import_onnx(tmp_path / "garbage.onnx")
    with pytest.raises(OnnxImportError, match="no such file"):
        import_onnx(tmp_path / "missing.onnx")


def test_step_file_has_state_inputs_and_is_refused(tmp_path):
    low = frontend.lower(make_model("gru", (12,)))
    get("onnx").emit(low, tmp_path, {"opset": 17, "sparse_weights": "off"})
    with pytest.raises(OnnxImportError, match="expected one input .* found 2: x_t, h_0"):
        import_onnx(tmp_path / "model_step.onnx")


# -- our own files: round trip ------------------------------------------------------------------------------
@pytest.mark.parametrize("sparsity,storage", [(None, "off"), (0.9, "constant"), (0.9, "initializer")])
@pytest.mark.parametrize("cell,hidden,feedback", CONFIG_CASES)
def test_round_trip_ir_onnx_ir(tmp_path, inputs, cell, hidden, feedback, sparsity, storage):
    model = make_model(cell, hidden, feedback)
    if sparsity:
        model = prune.prune_model(model, "magnitude", sparsity, include_head=True).model
    low = frontend.lower(model, {"dataset": "digits", "sequence_length": 8})
    get("onnx").emit(low, tmp_path, {"opset": 17, "sparse_weights": storage})
    back = import_onnx(tmp_path / "model.onnx").model
    np.testing.assert_allclose(
        ir.ReferenceExecutor(back).run(inputs), ir.ReferenceExecutor(low).run(inputs), rtol=0, atol=1e-6
    )
    assert [(l.cell, l.input_size, l.hidden_size, l.feedback_size) for l in back.layers] == [
        (l.cell, l.input_size, l.hidden_size, l.feedback_size) for l in low.layers
    ]
    for name, m in low.matrices().items():  # the stored pattern (the mask) survives, not just the values
        got = back.matrices()[name]
        np.testing.assert_array_equal(got.indptr, m.indptr, err_msg=name)
        np.testing.assert_array_equal(got.indices, m.indices, err_msg=name)
        np.testing.assert_allclose(got.data, m.data, rtol=0, atol=1e-7, err_msg=name)
    assert back.meta["dataset"] == "digits" and back.meta["source"] == "onnx"


def test_stored_zero_survives_a_sparse_round_trip(tmp_path):
    model = prune.prune_model(make_model("lstm", (12,)), "magnitude", 0.9).model
    with torch.no_grad():
        r, c = map(int, model.masks()["layers.0.weight_hh"].nonzero()[0])
        model.layers[0].weight_hh[r, c] = 0.0
    low = frontend.lower(model)
    get("onnx").emit(low, tmp_path, {"opset": 17, "sparse_weights": "initializer"})
    assert import_onnx(tmp_path / "model.onnx").model.nnz() == low.nnz()


# -- prune from ONNX ---------------------------------------------------------------------------------------
def test_load_classifier_adopts_weights_and_masks(tmp_path, inputs):
    model = prune.prune_model(make_model("gru", (12, 9), True), "magnitude", 0.8).model
    get("onnx").emit(frontend.lower(model), tmp_path, {"opset": 17, "sparse_weights": "constant"})
    adopted, meta = load_classifier(tmp_path / "model.onnx")
    with torch.no_grad():
        x = torch.from_numpy(inputs)
        assert torch.max(torch.abs(adopted(x) - model(x))) <= 1e-5
    assert meta["source"] == "onnx"
    for name, mask in model.masks().items():
        assert torch.equal(adopted.masks()[name], mask), name


def test_cli_compile_and_prune_an_onnx_file(run_cli, tmp_path):
    torch.manual_seed(0)
    module = _TorchClassifier(nn.LSTM(F, H, num_layers=2, batch_first=True), False)
    _export(module, torch.randn(2, 7, F), tmp_path / "user.onnx")
    r = run_cli(
        "compile",
        tmp_path / "user.onnx",
        "--target",
        "ir,onnx",
        "-o",
        tmp_path / "c",
        "--verify-data",
        "random",
        "--verify-samples",
        "16",
    )
    assert r.code == 0, r.err
    assert "onnxruntime running user.onnx" in r.out and "onnx/model_step.onnx" in r.out
    r = run_cli("prune", tmp_path / "user.onnx", "--method", "magnitude", "--sparsity", "0.75", "-o", tmp_path / "p.pt")
    assert r.code == 0, r.err
    pruned, meta = checkpoint.load_with_meta(tmp_path / "p.pt")
    assert meta["source"] == "onnx" and abs(meta["pruning"]["sparsity"] - 0.75) < 0.01
    assert pruned.config.cell == "lstm" and pruned.config.hidden_sizes == (H, H)


@pytest.mark.parametrize("command", ["compile", "prune"])
def test_cli_refuses_bad_onnx_in_one_line_and_writes_nothing(run_cli, tmp_path, command):
    (tmp_path / "bad.onnx").write_bytes(b"\x00garbage")
    _save(_graph("GRU"), tmp_path / "lbr0.onnx")  # linear_before_reset=0: compiles, but torch has no such GRU
    _save(_graph("GRU", attrs={"direction": "reverse"}), tmp_path / "reverse.onnx")
    unsupported = (
        ("lbr0.onnx", "linear_before_reset=0") if command == "prune" else ("reverse.onnx", "direction=reverse")
    )
    for src, message in (("bad.onnx", "not a readable ONNX model"), unsupported):
        out = tmp_path / ("o" if command == "compile" else "o.pt")
        args = (
            ["-o", out, "--verify-data", "random"]
            if command == "compile"
            else ["--method", "magnitude", "--sparsity", "0.5", "-o", out]
        )
        r = run_cli(command, tmp_path / src, *args)
        assert r.code != 0 and len(r.err_lines) == 1 and message in r.err, r.err
        assert not out.exists()


# -- optional inputs, constant states, and what used to be refused (issue 14 item 1, issue 19) --------------
def _compiles(path, X):
    """compile to ir + onnx, each artifact verified against onnxruntime running the original file."""
    from edgeprune.compiler import compile_source, load_source

    report = compile_source(load_source(path), ["ir", "onnx"], path.parent / f"{path.stem}-out", X_verify=X)
    assert report.passed and len(report.results) >= 3
    assert all(r.max_abs_error <= 1e-5 for r in report.results), [r.describe() for r in report.results]


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_omitted_bias_and_constant_zero_states(tmp_path, op):
    """B omitted is no bias (not a shape error); initial_h/initial_c given as constant zeros are accepted."""
    attrs = {"linear_before_reset": 1} if op == "GRU" else {}
    zeros = np.zeros((1, 1, H), np.float32)
    inputs = ["x_in", "W", "R", "", "", "h0"] + (["h0"] if op == "LSTM" else [])
    path = _save(_graph(op, attrs=attrs, initial=zeros, inputs_override=inputs), tmp_path / "m.onnx")
    imported = import_onnx(path)
    assert imported.model.layers[0].bias is None
    assert imported.fixed == {"batch": 1}  # a constant [1, 1, H] state pins the batch: the file runs one by one
    X = np.random.default_rng(3).standard_normal((4, 6, F)).astype(np.float32)
    assert np.max(np.abs(_ir_logits(imported, X) - imported.logits(X))) <= 1e-5
    X = X[:1]
    assert np.max(np.abs(_ir_logits(imported, X) - _ort(path, X))) <= 1e-5
    _compiles(path, X)


def test_relu_rnn_softmax_head_and_every_step_output(tmp_path):
    X = np.random.default_rng(3).standard_normal((3, 5, F)).astype(np.float32)
    relu = _save(
        _graph("RNN", attrs={"activations": ["Relu"]}, extra_nodes=(helper.make_node("Softmax", ["y"], ["p"]),)),
        tmp_path / "relu.onnx",
    )
    imported = import_onnx(relu)
    assert imported.model.layers[0].activation == "relu" and imported.model.head.activation == "softmax"
    assert np.max(np.abs(_ir_logits(imported, X) - _ort(relu, X))) <= 1e-6
    _compiles(relu, X)
    every = _save(
        _graph("GRU", attrs={"linear_before_reset": 1}, output_step=[helper.make_node("Identity", ["Y3"], ["h"])]),
        tmp_path / "every.onnx",
    )
    # the head runs on [time, batch, H]: the declared [batch, C] output shape is wrong, so drop it
    model = onnx.load(str(every))
    model.graph.output[0].CopyFrom(helper.make_tensor_value_info("y", TensorProto.FLOAT, ["time", "batch", C]))
    _save(model, every)
    imported = import_onnx(every)
    assert imported.model.output == "every" and imported.output_labels == ("T", "N", "C")
    expected = _ort(every, X).transpose(1, 0, 2)
    assert np.max(np.abs(_ir_logits(imported, X) - expected)) <= 1e-5
    assert np.max(np.abs(imported.logits(X) - expected)) == 0
    _compiles(every, X)


def test_dynamo_unrolled_rnn_reading_a_middle_step_is_refused(tmp_path):
    """torch's dynamo exporter unrolls nn.RNN over the example's steps; a head on step 2 of 7 is refused."""
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)

    class Middle(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.fc = nn.RNN(F, H, batch_first=True), nn.Linear(H, C)

        def forward(self, x):
            return self.fc(self.rnn(x)[0][:, 2])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Middle().eval(), (torch.randn(2, 7, F),), str(tmp_path / "m.onnx"))
    with pytest.raises(OnnxImportError, match="time step 2; only the last step") as err:
        import_onnx(tmp_path / "m.onnx")
    assert "\n" not in str(err.value)

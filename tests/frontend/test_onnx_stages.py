"""ONNX import onto IR v2 stages: torch modules exported by both torch exporters (the default dynamo one
and the TorchScript one) and hand-built graphs, each imported, compared with torch AND with onnxruntime
running the original file, then compiled to the ir and onnx targets (each verified in its runtime)."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as Fn
from torch import nn

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install 'edgeprune[onnx]')")
pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'edgeprune[onnx]')")
pytest.importorskip("onnxscript", reason="torch.onnx.export's default (dynamo) path needs onnxscript")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgeprune import ir  # noqa: E402
from edgeprune.compiler import compile_source, load_source  # noqa: E402
from edgeprune.frontend.onnx import OnnxImportError, import_onnx  # noqa: E402

F, H, C, N, T = 5, 6, 3, 2, 7


def _rnn(kind, **kw):
    return getattr(nn, kind)(kw.pop("inputs", F), H, batch_first=True, **kw)


class Last(nn.Module):
    """recurrent op -> Linear on the last step (the usual classifier)."""

    def __init__(self, kind, **kw):
        super().__init__()
        self.rnn, self.fc = _rnn(kind, **kw), nn.Linear(H, C)

    def forward(self, x):
        return self.fc(self.rnn(x)[0][:, -1])


class ConvFront(nn.Module):
    """causal Conv1d (left pad (k-1)*d) -> ReLU -> recurrent op -> Linear."""

    def __init__(self, kind):
        super().__init__()
        self.conv = nn.Conv1d(F, 4, 3, dilation=2)
        self.rnn, self.fc = _rnn(kind, inputs=4), nn.Linear(H, C)

    def forward(self, x):
        z = Fn.pad(x.transpose(1, 2), (4, 0))
        z = torch.relu(self.conv(z)).transpose(1, 2)
        return self.fc(self.rnn(z)[0][:, -1])


class EveryStep(nn.Module):
    """recurrent op -> Linear -> Tanh on every step (output every)."""

    def __init__(self, kind):
        super().__init__()
        self.rnn, self.fc = _rnn(kind), nn.Linear(H, C)

    def forward(self, x):
        return torch.tanh(self.fc(self.rnn(x)[0]))


class Deep(nn.Module):
    """normalize -> Linear+ReLU -> LSTM -> LayerNorm -> mean over time -> Linear -> Softmax."""

    def __init__(self, kind, pool="mean"):
        super().__init__()
        self.pool = pool
        self.register_buffer("mu", torch.randn(F))
        self.register_buffer("sigma", torch.rand(F) + 0.5)
        self.front, self.rnn, self.norm, self.fc = (
            nn.Linear(F, 8),
            _rnn(kind, inputs=8),
            nn.LayerNorm(H),
            nn.Linear(H, C),
        )

    def forward(self, x):
        z = torch.relu(self.front((x - self.mu) / self.sigma))
        z = self.norm(self.rnn(z)[0])
        z = z.mean(dim=1) if self.pool == "mean" else z.amax(dim=1)
        return torch.softmax(self.fc(z), dim=-1)


class Normalized(nn.Module):
    """(x - mu) / sigma -> recurrent op -> Linear."""

    def __init__(self, kind):
        super().__init__()
        self.register_buffer("mu", torch.randn(F))
        self.register_buffer("sigma", torch.rand(F) + 0.5)
        self.rnn, self.fc = _rnn(kind), nn.Linear(H, C)

    def forward(self, x):
        return self.fc(self.rnn((x - self.mu) / self.sigma)[0][:, -1])


class State(nn.Module):
    """the model's output IS the recurrent op's final state h_n (a chain ending at the recurrent stage)."""

    def __init__(self, kind):
        super().__init__()
        self.rnn = _rnn(kind, bias=False)

    def forward(self, x):
        state = self.rnn(x)[1]
        return (state[0] if isinstance(state, tuple) else state)[0]


def _export(module, path, mode):
    torch.manual_seed(1)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if mode == "dynamo":  # exactly what a user writes: the default exporter, static shapes from the example
            torch.onnx.export(module.eval(), (torch.randn(N, T, F),), str(path), verbose=False)
        elif mode == "dynamo-dynamic":  # the default exporter with run-time batch and time (Shape/Concat/Reshape)
            dims = {"x": {0: torch.export.Dim("batch"), 1: torch.export.Dim("time")}}
            torch.onnx.export(
                module.eval(), (torch.randn(N, T, F),), str(path), verbose=False, input_names=["x"], dynamic_shapes=dims
            )
        else:
            torch.onnx.export(
                module.eval(),
                (torch.randn(N, T, F),),
                str(path),
                dynamo=False,
                input_names=["x"],
                dynamic_axes={"x": {0: "batch", 1: "time"}},
            )
    return path


def _compiles(path, X, expected):
    """Import, compare with the expected outputs (torch) and with the original file, and compile to ir+onnx."""
    imported = import_onnx(path)
    got = ir.ReferenceExecutor(imported.model).run(X)
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) <= 1e-5
    assert np.max(np.abs(imported.logits(X) - expected)) <= 1e-5  # the original file in onnxruntime
    source = load_source(path)
    report = compile_source(source, ["ir", "onnx"], path.parent / "out", X_verify=X)
    assert report.passed and len(report.results) >= 3
    assert all(r.max_abs_error <= 1e-4 for r in report.results), [r.describe() for r in report.results]
    return imported


def _torch(module, X):
    with torch.no_grad():
        return module(torch.from_numpy(X)).numpy()


MODULES = {
    "lstm": (lambda: Last("LSTM"), ["recurrent", "dense"]),
    "gru": (lambda: Last("GRU"), ["recurrent", "dense"]),
    "rnn": (lambda: Last("RNN"), ["recurrent", "dense"]),  # dynamo unrolls nn.RNN over T: read back as one stage
    "rnn-relu-2layers": (lambda: Last("RNN", nonlinearity="relu", num_layers=2), ["recurrent", "recurrent", "dense"]),
    "lstm-nobias": (lambda: Last("LSTM", bias=False), ["recurrent", "dense"]),
    "gru-nobias": (lambda: Last("GRU", bias=False), ["recurrent", "dense"]),
    "conv-gru": (lambda: ConvFront("GRU"), ["conv1d", "recurrent", "dense"]),
    "every-lstm": (lambda: EveryStep("LSTM"), ["recurrent", "dense"]),
    # the input scaling folds into the first Linear (one dense stage computing both)
    "deep-lstm": (lambda: Deep("LSTM"), ["dense", "recurrent", "layernorm", "pool", "dense"]),
    "deep-gru-max": (lambda: Deep("GRU", "max"), ["dense", "recurrent", "layernorm", "pool", "dense"]),
    "norm-lstm": (lambda: Normalized("LSTM"), ["normalize", "recurrent", "dense"]),
    "state-lstm": (lambda: State("LSTM"), ["recurrent"]),
    "state-gru": (lambda: State("GRU"), ["recurrent"]),
    "every-rnn": (lambda: EveryStep("RNN"), ["recurrent", "dense"]),
}


@pytest.mark.parametrize("mode", ["dynamo", "dynamo-dynamic", "torchscript"])
@pytest.mark.parametrize("name", list(MODULES))
def test_torch_module_exports_compile_exactly(tmp_path, name, mode):
    make, kinds = MODULES[name]
    torch.manual_seed(0)
    module = make().eval()
    path = _export(module, tmp_path / "m.onnx", mode)
    time_dim = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[1]
    # (after other exports in the same process torch.export may fix a "dynamic" time too: see the
    # fresh-process test below for the run-time shape arithmetic)
    assert time_dim.HasField("dim_value") or mode != "dynamo"
    steps = T if time_dim.HasField("dim_value") else T + 2  # a fixed-shape file runs only its own T
    X = np.random.default_rng(0).standard_normal((4, steps, F)).astype(np.float32)
    imported = _compiles(path, X, _torch(module, X))
    assert [s.kind for s in imported.model.stages] == kinds
    assert imported.model.output == ("every" if name.startswith("every") else "last")
    if name == "rnn-relu-2layers":
        assert [s.activation for s in imported.model.stages[:2]] == ["relu", "relu"]


def test_decomposed_layer_norm_of_older_exporters(tmp_path):
    """opset 14 has no LayerNormalization: torch writes ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add."""
    torch.manual_seed(0)
    module = Deep("LSTM").eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.randn(N, T, F),),
            str(tmp_path / "m.onnx"),
            dynamo=False,
            opset_version=14,
            input_names=["x"],
            dynamic_axes={"x": {0: "batch", 1: "time"}},
        )
    ops = {n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node}
    assert "LayerNormalization" not in ops and {"ReduceMean", "Pow", "Sqrt", "Div"} <= ops
    X = np.random.default_rng(0).standard_normal((4, T, F)).astype(np.float32)
    imported = _compiles(tmp_path / "m.onnx", X, _torch(module, X))
    assert [s.kind for s in imported.model.stages] == ["dense", "recurrent", "layernorm", "pool", "dense"]


def test_non_causal_conv_is_refused_in_one_line(tmp_path):
    """torch's Conv1d(padding=1) sees the future: refused, naming the pads a causal conv needs."""
    module = nn.Sequential(nn.Conv1d(F, 4, 3, padding=1)).eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(N, F, T),), str(tmp_path / "m.onnx"), dynamo=False, input_names=["x"])
    with pytest.raises(OnnxImportError, match=r"left pad 1 and right pad 1 \(a causal conv pads \(k-1\)\*d = 2") as err:
        import_onnx(tmp_path / "m.onnx")
    assert "\n" not in str(err.value)


def test_hand_built_scaling_conv_and_every_step_head_match_onnxruntime(tmp_path):
    """x [batch, time, F] * s + b -> Transpose -> Conv(pads [2, 0]) -> Relu -> Transpose -> MatMul+Add per step."""
    rng = np.random.default_rng(0)
    inits = {
        "s": rng.random(F).astype(np.float32) + 0.5,
        "b": rng.standard_normal(F).astype(np.float32),
        "Wc": rng.standard_normal((4, F, 3)).astype(np.float32),
        "bc": rng.standard_normal(4).astype(np.float32),
        "Wd": rng.standard_normal((4, C)).astype(np.float32),
        "bd": rng.standard_normal(C).astype(np.float32),
    }
    nodes = [
        helper.make_node("Mul", ["x", "s"], ["xs"]),
        helper.make_node("Add", ["xs", "b"], ["xn"]),
        helper.make_node("Transpose", ["xn"], ["xt"], perm=[0, 2, 1]),
        helper.make_node("Conv", ["xt", "Wc", "bc"], ["c"], pads=[2, 0], kernel_shape=[3]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Transpose", ["r"], ["rt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["rt", "Wd"], ["m"]),
        helper.make_node("Add", ["m", "bd"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time", F])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "time", C])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "m.onnx"))
    X = rng.standard_normal((3, 9, F)).astype(np.float32)
    import onnxruntime as ort

    expected = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": X})[0]
    imported = _compiles(tmp_path / "m.onnx", X, expected)
    assert [s.kind for s in imported.model.stages] == ["normalize", "conv1d", "dense"]
    assert imported.model.output == "every" and imported.model.stages[1].activation == "relu"


class LastBySlice(nn.Module):
    """out[:, T-1:T] (a one-step slice at the fixed last index) -> ReLU -> Linear."""

    def __init__(self):
        super().__init__()
        self.rnn, self.fc = _rnn("GRU"), nn.Linear(H, C)

    def forward(self, x):
        return self.fc(torch.relu(self.rnn(x)[0][:, T - 1 : T]))[:, 0]


def test_last_step_by_its_fixed_index_then_activation(tmp_path):
    torch.manual_seed(0)
    module = LastBySlice().eval()
    path = _export(module, tmp_path / "m.onnx", "dynamo")
    X = np.random.default_rng(0).standard_normal((4, T, F)).astype(np.float32)
    imported = _compiles(path, X, _torch(module, X))
    assert [s.kind for s in imported.model.stages] == ["recurrent", "dense", "dense"]


EXPORT_DYNAMIC = """
import sys, warnings, torch
from torch import nn
warnings.simplefilter("ignore")
torch.manual_seed(0)
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn, self.fc = nn.{kind}(5, 6, batch_first=True), nn.Linear(6, 3)
    def forward(self, x):
        return self.fc(self.rnn(x)[0])
m = M().eval()
torch.save(m.state_dict(), sys.argv[2])
dims = {{"x": {{0: torch.export.Dim("batch"), 1: torch.export.Dim("time")}}}}
torch.onnx.export(m, (torch.randn(2, 7, 5),), sys.argv[1], input_names=["x"], dynamic_shapes=dims)
"""


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_dynamo_dynamic_shapes_fold_the_run_time_reshape(tmp_path, kind):
    """In a fresh process torch.export keeps batch and time dynamic: the file reshapes Y with a shape computed
    by Shape -> Slice -> Mul -> Concat; the importer folds it and the model runs any length."""
    import subprocess
    import sys

    path, weights = tmp_path / "m.onnx", tmp_path / "w.pt"
    subprocess.run(
        [sys.executable, "-c", EXPORT_DYNAMIC.format(kind=kind), str(path), str(weights)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    graph = onnx.load(str(path)).graph
    assert not graph.input[0].type.tensor_type.shape.dim[1].HasField("dim_value")
    assert {"Shape", "Concat", "Reshape"} <= {n.op_type for n in graph.node}
    module = EveryStep(kind)
    module.load_state_dict(torch.load(weights))
    X = np.random.default_rng(0).standard_normal((3, T + 4, F)).astype(np.float32)
    with torch.no_grad():
        expected = module.fc(module.rnn(torch.from_numpy(X))[0]).numpy()
    imported = _compiles(path, X, expected)
    assert imported.fixed == {} and imported.model.output == "every"

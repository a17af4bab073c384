"""Import an ONNX recurrent classifier into the IR.

Supported: a chain of forward ``LSTM``/``GRU``/``RNN`` ops (``layout`` 0 or 1, default
activations, no ``clip``, zero initial states, GRU with ``linear_before_reset=1``) and a linear
head (``Gemm``, ``MatMul``, ``Add``/``Sub`` of constants) on the last time step, with the glue
that exporters put around them (torch.onnx, tf2onnx/Keras): ``Transpose``, ``Squeeze``,
``Unsqueeze``, ``Reshape``, ``Flatten``, ``Slice``/``Gather`` of the last step or of a stacked
``Y_h``, ``Concat`` of final states, ``Identity``/``Dropout``/``Cast``, shape arithmetic and
``ConstantOfShape``/``Expand`` for the zero initial states, and anything computed from constants
alone (folded with ``onnx.reference``). Top-down feedback is read from the form our exporter
writes: one ``Scan`` over time whose body runs every layer for one step, the next layer's previous
state joining a layer's input as extra columns (``Concat``).

The graph is read by abstract interpretation: every value is a constant, a shape computation, a
zero tensor, or a data tensor whose axes are labelled (batch ``N``, time ``T``, features ``C``,
singleton ``S``, stacked states ``K``) and whose content is known (the input, every step or the
last step of layer k, possibly under an affine map). Whatever falls outside is refused in one line
naming the op or attribute. The result is checked against onnxruntime running the source file
(onnx.reference where onnxruntime cannot run it, e.g. ``layout=1``).

A sparse initializer (or a ``Constant`` with ``sparse_value``) keeps its stored pattern as the
IR's pattern, so a pruned model keeps its mask; dense weights keep their nonzeros.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .. import ir
from ..errors import EdgepruneError


class OnnxImportError(EdgepruneError):
    pass


RECURRENT = {"LSTM": "lstm", "GRU": "gru", "RNN": "rnn"}
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
DEFAULT_ACTIVATIONS = {"lstm": ["Sigmoid", "Tanh", "Tanh"], "gru": ["Sigmoid", "Tanh"], "rnn": ["Tanh"]}
KNOWN_ATTRIBUTES = {"activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size",
                    "layout", "input_forget", "linear_before_reset"}
# IR gate block j comes from ONNX gate block ORDER[j] (ONNX LSTM i,o,f,c; GRU z,r,h; see ir.model)
LSTM_IR_FROM_ONNX = (0, 2, 3, 1)
GRU_RZ_FROM_ONNX = (1, 0)
LAST = -1
BIG = 2**31 - 1  # an ``ends`` at or beyond this means "to the end" (exporters write INT64_MAX or INT32_MAX)
# Ops that keep an all-zero tensor all zero whatever their other (shape) inputs
ZERO_PRESERVING = {"Identity", "Squeeze", "Unsqueeze", "Reshape", "Transpose", "Slice", "Gather", "Expand", "Cast",
                   "Tile", "Flatten", "Dropout"}


# -- abstract values ------------------------------------------------------------------------------
@dataclass
class Const:
    value: np.ndarray
    pattern: np.ndarray | None = None  # the stored entries, when the file held it as a sparse tensor


@dataclass
class ShapeVal:
    """Computed from a run-time shape (batch size, sequence length): fit only to shape a zero tensor."""


@dataclass
class Zeros:
    """An all-zero tensor of a run-time shape (the initial states exporters build)."""


@dataclass
class Refused:
    """A value that may not be used (e.g. the LSTM cell state Y_c); any consumer fails with ``reason``."""

    reason: str


@dataclass
class Unknown:
    """Output of an op the importer cannot interpret (already reported)."""


@dataclass(frozen=True)
class Content:
    # "input"; "seq" (every step of a layer's h) or "last" (its final h). Inside a Scan body (one step):
    # "new" (layer's h at t), "cell" (its c at t), "prev" (loop variable ``var`` at t-1), "cols"
    # (``parts`` concatenated along the features).
    source: str
    layer: int = -1
    affine: tuple | None = None  # (W [out, in], b [out], pattern of W or None) applied to the features
    var: int = -1
    parts: tuple = ()


@dataclass
class Data:
    labels: tuple[str, ...]  # N batch, T time, C features, S singleton, K stacked states, x0..x2 raw input axes
    content: Content | tuple[Content, ...]  # a tuple along the K axis


@dataclass
class _Layer:
    cell: str
    input_size: int
    hidden_size: int
    weight: ir.CSR  # over [x | h | feedback]
    bias: np.ndarray
    feedback_size: int = 0


@dataclass
class OnnxModel:
    """An imported ONNX model: its IR and how to run the source file on [N, T, F] data."""

    model: ir.Model
    path: Path
    input_name: str
    output_name: str
    input_axes: dict  # positions of "batch", "time", "features" in the graph input
    fixed: dict = field(default_factory=dict)  # static "batch"/"time" sizes of the graph input, if any
    runtime: str = "onnxruntime"
    _run = None

    def logits(self, X: np.ndarray) -> np.ndarray:
        """Run the source file on ``X`` [N, T, F] (float32) -> [N, C]."""
        X = np.asarray(X, dtype=np.float32)
        if "time" in self.fixed and X.shape[1] != self.fixed["time"]:
            raise OnnxImportError(f"{self.path.name} has a fixed sequence length of {self.fixed['time']}, "
                                  f"the data has {X.shape[1]} steps")
        order = sorted(self.input_axes, key=self.input_axes.get)  # our axis names in the file's order
        perm = [{"batch": 0, "time": 1, "features": 2}[a] for a in order]
        step = self.fixed.get("batch") or 1024
        out = []
        for i in range(0, len(X), step):
            chunk = X[i : i + step]
            pad = step - len(chunk) if "batch" in self.fixed else 0
            if pad:
                chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], np.float32)])
            y = self._runner()(np.ascontiguousarray(chunk.transpose(perm)))
            out.append(np.asarray(y)[: len(chunk) - pad])
        classes = self.model.num_classes
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, classes), np.float32)

    def _runner(self):
        if self._run is None:
            self._run, self.runtime = _source_runner(self.path, self.input_name, self.output_name)
        return self._run


# -- reading the file -------------------------------------------------------------------------------
def load_proto(path: str | os.PathLike):
    import onnx

    path = Path(path)
    if not path.exists():
        raise OnnxImportError(f"{path}: no such file")
    if path.is_dir():
        raise OnnxImportError(f"{path}: is a directory, not an ONNX file")
    try:
        proto = onnx.load(str(path))
    except Exception as e:  # protobuf DecodeError, missing external data, ...
        raise OnnxImportError(f"{path}: not a readable ONNX model ({_first_line(e)})") from None
    if not proto.graph.node and not proto.graph.input:
        raise OnnxImportError(f"{path}: not a readable ONNX model (empty graph)")
    try:
        onnx.checker.check_model(proto)
    except Exception as e:
        raise OnnxImportError(f"{path}: invalid ONNX model ({_first_line(e)})") from None
    return proto


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:200]


def import_onnx(path: str | os.PathLike, check: bool = True) -> OnnxModel:
    """Read ``path`` into the IR; with ``check``, compare it with the source run in onnxruntime."""
    path = Path(path)
    proto = load_proto(path)
    imported = _Importer(proto, path.name).run()
    imported.path = path
    if check:
        check_against_source(imported)
    return imported


def load_classifier(path: str | os.PathLike):
    """An ONNX model as a (masked) ``SequenceClassifier`` and its metadata, for ``prune``."""
    from .torch_lifting import lift

    imported = import_onnx(path)
    try:
        model = lift(imported.model)
    except EdgepruneError as e:
        raise OnnxImportError(f"{Path(path).name}: {e}") from None
    return model, dict(imported.model.meta)


def check_against_source(imported: OnnxModel, samples: int = 4) -> float:
    """Largest logit difference between the IR and the source file on random sequences (raises if wrong)."""
    steps = imported.fixed.get("time") or 5
    X = np.random.default_rng(0).standard_normal((samples, steps, imported.model.input_size)).astype(np.float32)
    try:
        expected = imported.logits(X)
    except OnnxImportError:
        raise
    except Exception as e:  # noqa: BLE001 - a damaged file the importer read but its runtime cannot run
        raise OnnxImportError(f"{imported.path.name}: {imported.runtime} cannot run the file "
                              f"({_first_line(e)})") from None
    got = ir.ReferenceExecutor(imported.model).run(X)
    scale = max(1.0, float(np.max(np.abs(expected))))
    err = float(np.max(np.abs(got - expected)))
    if not err <= 1e-4 * scale:
        raise OnnxImportError(f"{imported.path.name}: the imported model disagrees with {imported.runtime} running "
                              f"the file (max |err| {err:.2e}); this graph uses something the importer misreads")
    return err


def _source_runner(path: Path, input_name: str, output_name: str):
    """onnxruntime for the source file; onnx.reference where onnxruntime cannot run it (layout=1)."""
    try:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = 1, 1, 4
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return (lambda X: sess.run([output_name], {input_name: X})[0]), "onnxruntime"
    except Exception as ort_error:  # e.g. "Batchwise recurrent operations (layout == 1) are not supported"
        from onnx.reference import ReferenceEvaluator

        try:
            ref = ReferenceEvaluator(str(path))
        except Exception as e:
            raise OnnxImportError(f"{path.name}: neither onnxruntime ({_first_line(ort_error)}) nor onnx.reference "
                                  f"({_first_line(e)}) can run it") from None
        return (lambda X: ref.run([output_name], {input_name: X})[0]), "onnx.reference"


# -- the interpreter ------------------------------------------------------------------------------
class _Importer:
    def __init__(self, proto, file_name: str):
        self.proto, self.file = proto, file_name
        self.graph = proto.graph
        self.values: dict[str, object] = {}
        self.layers: list[_Layer] = []
        self.unsupported: dict[str, list[str]] = {}  # op type -> node names
        self.input_axes: dict | None = None
        self.scan: dict | None = None  # while reading a Scan body: its loop variables and how layers bind them
        self.opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)

    # errors
    def fail(self, node, message: str):
        where = f"{node.op_type} '{node.name}'" if node is not None and node.name else (node.op_type if node else "")
        raise OnnxImportError(f"{self.file}: {where + ': ' if where else ''}{message}")

    def run(self) -> OnnxModel:
        from onnx import numpy_helper

        g = self.graph
        for t in g.initializer:
            try:
                self.values[t.name] = Const(numpy_helper.to_array(t))
            except Exception:  # noqa: BLE001 - onnx raises ValueError/TypeError/... for data not matching dims
                raise OnnxImportError(f"{self.file}: initializer '{t.name}' is damaged (its data does not match "
                                      "its type and shape)") from None
        for s in g.sparse_initializer:
            self.values[s.values.name] = _sparse_const(s)
        data_inputs = [i for i in g.input if i.name not in self.values]
        if len(data_inputs) != 1:
            names = ", ".join(i.name for i in data_inputs) or "none"
            raise OnnxImportError(f"{self.file}: expected one input (the sequences [batch, time, features]), "
                                  f"found {len(data_inputs)}: {names}")
        if len(g.output) != 1:
            raise OnnxImportError(f"{self.file}: expected one output (the logits), found {len(g.output)}: "
                                  f"{', '.join(o.name for o in g.output)}")
        inp, out = data_inputs[0], g.output[0]
        dims = self._check_input(inp)
        self.values[inp.name] = Data(("x0", "x1", "x2"), Content("input"))
        needed = self._needed_nodes(g.node, [out.name])
        for k, node in enumerate(g.node):
            if k in needed:
                self._node(node)
        if self.unsupported:
            listed = ", ".join(f"{op} ({', '.join(sorted(set(n))[:3])})" if any(n) else op
                               for op, n in sorted(self.unsupported.items()))
            raise OnnxImportError(f"{self.file}: unsupported op(s) on the path to the output: {listed}")
        model = self._model(out.name)
        fixed = {}
        for axis in ("batch", "time"):
            d = dims[self.input_axes[axis]]
            if isinstance(d, int):
                fixed[axis] = d
        f_dim = dims[self.input_axes["features"]]
        if isinstance(f_dim, int) and f_dim != model.input_size:
            raise OnnxImportError(f"{self.file}: input has {f_dim} features but the first layer reads {model.input_size}")
        if "time" in fixed:
            model.meta.setdefault("sequence_length", fixed["time"])
        return OnnxModel(model, Path(self.file), inp.name, out.name, dict(self.input_axes), fixed)

    def _check_input(self, value_info) -> list:
        from onnx import TensorProto

        t = value_info.type.tensor_type
        if not value_info.type.HasField("tensor_type") or t.elem_type != TensorProto.FLOAT:
            kind = TensorProto.DataType.Name(t.elem_type) if value_info.type.HasField("tensor_type") else "not a tensor"
            raise OnnxImportError(f"{self.file}: input '{value_info.name}' is {kind}; only float32 inputs are supported")
        if not t.HasField("shape") or len(t.shape.dim) != 3:
            rank = len(t.shape.dim) if t.HasField("shape") else "unknown"
            raise OnnxImportError(f"{self.file}: input '{value_info.name}' has rank {rank}; expected 3 "
                                  "(batch, time, features in some order)")
        return [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]

    @staticmethod
    def _needed_nodes(nodes, outputs: list[str]) -> set[int]:
        """Indices of the nodes the outputs depend on (dead branches are never judged)."""
        producer = {o: k for k, n in enumerate(nodes) for o in n.output if o}
        needed, todo = set(), list(outputs)
        while todo:
            k = producer.get(todo.pop())
            if k is None or k in needed:
                continue
            needed.add(k)
            todo.extend(_reads(nodes[k]))
        return needed

    # one node
    def _node(self, node) -> None:
        op = node.op_type
        ins = [self.values.get(name) if name else None for name in node.input]
        missing = [name for name, v in zip(node.input, ins) if name and v is None]
        if missing:  # an outer-scope or undefined name: the checker should have caught it
            self.fail(node, f"input '{missing[0]}' is not defined")
        if node.domain not in ("", "ai.onnx"):
            return self._unsupported(node, f"{node.domain}::{op}")
        if any(isinstance(v, Unknown) for v in ins):  # downstream of a refused op: name this one too if refused
            if op not in RECURRENT and op != "Constant" and not hasattr(self, f"_op_{op}") and op not in ("Shape", "Size"):
                return self._unsupported(node, op)
            return self._set(node, [Unknown()] * len(node.output))
        refused = next((v for v in ins if isinstance(v, Refused)), None)
        if refused is not None:
            self.fail(node, refused.reason)
        present = [v for v in ins if v is not None]
        if op == "Constant":
            return self._set(node, [_constant(node)])
        if op in RECURRENT:
            return self._recurrent(node, ins)
        if all(isinstance(v, Const) for v in present):
            return self._set(node, self._fold(node, ins))
        if op in ("Shape", "Size"):
            return self._set(node, [ShapeVal()])
        if all(isinstance(v, (Const, ShapeVal)) for v in present):
            if op == "ConstantOfShape":
                return self._set(node, [Zeros() if _fill_value(node) == 0 else ShapeVal()])
            if op in ZERO_PRESERVING and isinstance(ins[0], Const) and not ins[0].value.any():
                return self._set(node, [Zeros()])  # e.g. Expand(0, [1, batch, H])
            return self._set(node, [ShapeVal()] * len(node.output))
        data = [v for v in present if isinstance(v, Data)]
        if not data:  # zeros (and shapes) being reshaped or broadcast
            return self._zeros(node, ins)
        handler = getattr(self, f"_op_{op}", None)
        if handler is None:
            return self._unsupported(node, op)
        result = handler(node, ins)
        self._set(node, result if isinstance(result, list) else [result])

    def _set(self, node, values: list) -> None:
        for name, v in zip(node.output, values):
            if name:
                self.values[name] = v
        for name in node.output[len(values):]:
            if name:
                self.values[name] = Unknown()

    def _unsupported(self, node, what: str) -> None:
        self.unsupported.setdefault(what, []).append(node.name)
        self._set(node, [Unknown()] * len(node.output))

    def _fold(self, node, ins) -> list:
        """Evaluate a node whose inputs are all constants."""
        from onnx import helper, numpy_helper
        from onnx.reference import ReferenceEvaluator

        names = [f"in{k}" if i else "" for k, i in enumerate(node.input)]
        folded = helper.make_node(node.op_type, names, [f"out{k}" for k in range(len(node.output))],
                                  domain=node.domain)
        folded.attribute.extend(node.attribute)
        inits = [numpy_helper.from_array(np.asarray(v.value), n) for n, v in zip(names, ins) if n]
        graph = helper.make_graph([folded], "fold", [], [helper.make_empty_tensor_value_info(o) for o in folded.output],
                                  inits)
        model = helper.make_model(graph, opset_imports=self.proto.opset_import)
        try:
            results = ReferenceEvaluator(model).run(None, {})
        except Exception as e:
            self.fail(node, f"cannot evaluate this constant expression ({_first_line(e)})")
        return [Const(np.asarray(r)) for r in results]

    def _zeros(self, node, ins) -> None:
        op, first = node.op_type, ins[0]
        if op in ZERO_PRESERVING and (isinstance(first, Zeros) or (isinstance(first, Const) and not first.value.any())):
            return self._set(node, [Zeros()])
        if op == "Concat" and all(isinstance(v, Zeros) or (isinstance(v, Const) and not v.value.any())
                                  for v in ins if v is not None):
            return self._set(node, [Zeros()])
        return self._unsupported(node, op)

    # -- recurrent ops ------------------------------------------------------------------------------
    def _recurrent(self, node, ins) -> None:
        from onnx import helper

        cell = RECURRENT[node.op_type]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}
        if "activations" in attrs:
            attrs["activations"] = [a.decode() if isinstance(a, bytes) else a for a in attrs["activations"]]
        problems = [f"attribute {k} is not part of {node.op_type}" for k in attrs if k not in KNOWN_ATTRIBUTES]
        if attrs.get("direction", "forward") != "forward":
            problems.append(f"direction={attrs['direction']} (only forward: streaming runs one direction)")
        acts = attrs.get("activations")
        if acts is not None and [a.lower() for a in acts] != [a.lower() for a in DEFAULT_ACTIVATIONS[cell]]:
            problems.append(f"activations={acts} (only the defaults {DEFAULT_ACTIVATIONS[cell]})")
        if "clip" in attrs:
            problems.append(f"clip={attrs['clip']} (cell clipping)")
        if attrs.get("input_forget", 0):
            problems.append("input_forget=1 (coupled input-forget gate)")
        if cell == "gru" and attrs.get("linear_before_reset", 0) != 1:
            problems.append("linear_before_reset=0 (the reset gate applied before the recurrent matmul cannot be "
                            "expressed in the IR, whose GRU is torch's linear_before_reset=1)")
        layout = attrs.get("layout", 0)
        if layout not in (0, 1):
            problems.append(f"layout={layout}")
        if problems:
            self.fail(node, "unsupported " + "; ".join(problems))
        X, W, R = ins[0], ins[1], ins[2]
        B = ins[3] if len(ins) > 3 else None
        seq_lens = ins[4] if len(ins) > 4 else None
        init_h = ins[5] if len(ins) > 5 else None
        init_c = ins[6] if len(ins) > 6 and cell == "lstm" else None
        peephole = ins[7] if len(ins) > 7 and cell == "lstm" else None
        if seq_lens is not None:
            self.fail(node, "sequence_lens is not supported (every sequence must run its full length)")
        if peephole is not None and not (isinstance(peephole, Const) and not peephole.value.any()):
            self.fail(node, "peephole weights P are not supported")
        for name, v in (("W", W), ("R", R), ("B", B)):
            if v is not None and not isinstance(v, Const):
                self.fail(node, f"{name} must be a constant (an initializer)")
        if self.scan is not None:
            return self._recurrent_step(node, cell, attrs, layout, X, W, R, B, init_h, init_c)
        for name, v in (("initial_h", init_h), ("initial_c", init_c)):
            if v is not None and not _is_zero(v):
                self.fail(node, f"{name} must be zero (a state given as input or a nonzero constant is not supported)")
        k = len(self.layers)
        if not isinstance(X, Data) or not isinstance(X.content, Content) or X.content.affine is not None:
            self.fail(node, "its input X is not the model input or the previous recurrent layer's sequence")
        expected = "input" if k == 0 else "seq"
        if X.content.source != expected or (k and X.content.layer != k - 1) or len(X.labels) != 3:
            self.fail(node, "recurrent ops must form one chain: input -> layer 0 -> layer 1 -> ... -> head")
        time_pos, batch_pos = (0, 1) if layout == 0 else (1, 0)
        if k == 0:
            labels = X.labels
            if not all(l.startswith("x") for l in labels):
                self.fail(node, f"unexpected input layout {labels}")
            self.input_axes = {"time": int(labels[time_pos][1]), "batch": int(labels[batch_pos][1]),
                               "features": int(labels[2][1])}
        elif X.labels != (("T", "N", "C") if layout == 0 else ("N", "T", "C")):
            self.fail(node, f"input X has axes {X.labels}, expected {'[time, batch, features]' if layout == 0 else '[batch, time, features]'}")
        layer = self._layer_weights(node, cell, W, R, B, attrs.get("hidden_size"))
        if k and layer.input_size != self.layers[-1].hidden_size:
            self.fail(node, f"reads {layer.input_size} features but the previous layer gives {self.layers[-1].hidden_size}")
        self.layers.append(layer)
        seq = ("T", "S", "N", "C") if layout == 0 else ("N", "T", "S", "C")
        last = ("S", "N", "C") if layout == 0 else ("N", "S", "C")
        outs = [Data(seq, Content("seq", k)), Data(last, Content("last", k))]
        if cell == "lstm":
            outs.append(Refused("reads the LSTM cell state Y_c; only the hidden state can feed the head"))
        self._set(node, outs)

    def _recurrent_step(self, node, cell, attrs, layout, X, W, R, B, init_h, init_c) -> None:
        """A recurrent op inside a Scan body: one time step, states carried by the Scan's loop variables."""
        k = len(self.layers)
        time_pos = 0 if layout == 0 else 1
        if not isinstance(X, Data) or not isinstance(X.content, Content) or len(X.labels) != 3 \
                or X.labels[time_pos] != "S" or "C" != X.labels[2]:
            self.fail(node, "inside a Scan, X must be one time step [1, batch, features]")
        parts = X.content.parts if X.content.source == "cols" else (X.content,)
        main = [p for p in parts if p.source in ("input", "new")]
        feedback = [p for p in parts if p.source == "prev"]
        if len(main) != 1 or len(feedback) > 1 or len(main) + len(feedback) != len(parts):
            self.fail(node, "X must be the layer's input, optionally with one state of the previous step (feedback)")
        if main[0].source != ("input" if k == 0 else "new") or (k and main[0].layer != k - 1):
            self.fail(node, "recurrent ops must form one chain: input -> layer 0 -> layer 1 -> ... -> head")
        state_labels = ("S", "N", "C") if layout == 0 else ("N", "S", "C")
        for name, v, kind in (("initial_h", init_h, "h"), ("initial_c", init_c, "c")):
            if name == "initial_c" and cell != "lstm":
                continue
            if not isinstance(v, Data) or not isinstance(v.content, Content) or v.content.source != "prev" \
                    or v.labels != state_labels:
                self.fail(node, f"inside a Scan, {name} must be a loop variable (else the state restarts every step)")
            if v.content.var in self.scan["bind"]:
                self.fail(node, f"Scan loop variable {v.content.var} is the state of two layers")
            self.scan["bind"][v.content.var] = (k, kind)
        fb_size = self.scan["sizes"][feedback[0].var] if feedback else 0
        width = W.value.shape[-1] if W.value.ndim == 3 else 0
        if fb_size is None or fb_size >= width:
            self.fail(node, "cannot tell the feedback columns of W apart (give the Scan's state inputs static sizes)")
        columns, start = {}, 0
        for p in parts:
            size = fb_size if p.source == "prev" else width - fb_size
            columns[p.source == "prev"] = np.arange(start, start + size)
            start += size
        layer = self._layer_weights(node, cell, W, R, B, attrs.get("hidden_size"), columns[False], columns.get(True))
        if k and layer.input_size != self.layers[-1].hidden_size:
            self.fail(node, f"reads {layer.input_size} features but the previous layer gives {self.layers[-1].hidden_size}")
        self.layers.append(layer)
        self.scan["feedback"][k] = feedback[0].var if feedback else None
        seq = ("S", "S", "N", "C") if layout == 0 else ("N", "S", "S", "C")
        outs = [Data(seq, Content("new", k)), Data(state_labels, Content("new", k))]
        if cell == "lstm":
            outs.append(Data(state_labels, Content("cell", k)))
        self._set(node, outs)

    def _op_Scan(self, node, ins):
        from onnx import helper, numpy_helper

        a = {at.name: helper.get_attribute_value(at) for at in node.attribute}
        body, n_scan = a["body"], int(a["num_scan_inputs"])
        n_state = len(ins) - n_scan
        if n_scan != 1 or self.scan is not None or self.layers:
            self.fail(node, "only one Scan over the model input, holding every recurrent layer, is supported")
        if any(a.get("scan_input_directions", [0])):
            self.fail(node, "reverse scanning is not supported")
        x = ins[n_state]
        if not isinstance(x, Data) or x.content != Content("input") or any(not isinstance(v, (Zeros, Const)) or
                                                                           not _is_zero(v) for v in ins[:n_state]):
            self.fail(node, "the Scan must run over the model input from zero states")
        axis = int(a.get("scan_input_axes", [0])[0]) % 3
        rest = [int(l[1]) for i, l in enumerate(x.labels) if i != axis]
        self.input_axes = {"time": int(x.labels[axis][1]), "batch": rest[0], "features": rest[1]}
        outer = self.values
        self.values = dict(outer)
        for t in body.initializer:
            self.values[t.name] = Const(numpy_helper.to_array(t))
        sizes = {}
        for j, vi in enumerate(body.input[:n_state]):
            dims = vi.type.tensor_type.shape.dim
            labels = ("N", "C") if len(dims) == 2 else ("S", "N", "C")
            sizes[j] = dims[-1].dim_value if len(dims) and dims[-1].HasField("dim_value") else None
            self.values[vi.name] = Data(labels, Content("prev", var=j))
        self.values[body.input[n_state].name] = Data(("N", "C"), Content("input"))
        self.scan = {"bind": {}, "feedback": {}, "sizes": sizes}
        state_outputs = [o.name for o in body.output[:n_state]]
        needed = self._needed_nodes(body.node, state_outputs)
        for k, inner in enumerate(body.node):
            if k in needed:
                self._node(inner)
        results = [self.values.get(name) for name in state_outputs]
        scan, self.scan, self.values = self.scan, None, outer
        if self.unsupported:
            return [Unknown()] * len(node.output)
        bind = scan["bind"]
        for j, v in enumerate(results):
            kind = "h" if isinstance(v, Data) and v.content.source == "new" else "c"
            if not isinstance(v, Data) or v.content.source not in ("new", "cell") or v.labels[-1] != "C" \
                    or bind.get(j) != (v.content.layer, kind):
                self.fail(node, f"Scan state {j} does not carry one layer's state from step to step")
        for k, j in scan["feedback"].items():
            if j is None:
                continue
            if bind.get(j) != (k + 1, "h"):
                self.fail(node, f"the feedback into layer {k} must be layer {k + 1}'s state from the previous step")
            self.layers[k].feedback_size = self.layers[k + 1].hidden_size  # its W columns were split already
        finals = []
        for j in range(n_state):
            k, kind = bind[j]
            labels = results[j].labels
            finals.append(Data(labels, Content("last", k)) if kind == "h" else
                          Refused("reads the LSTM cell state; only the hidden state can feed the head"))
        return finals + [Refused("per-step Scan outputs are not supported")] * (len(node.output) - n_state)

    def _layer_weights(self, node, cell, W: Const, R: Const, B: Const | None, hidden,
                       input_cols: np.ndarray | None = None, feedback_cols: np.ndarray | None = None) -> _Layer:
        G = GATES[cell]
        w, r = W.value, R.value
        if w.ndim != 3 or r.ndim != 3 or w.shape[0] != 1 or r.shape[0] != 1:
            self.fail(node, f"W {list(w.shape)} and R {list(r.shape)} must be [1, gates*H, ...] (one direction)")
        H = r.shape[2]
        if hidden is not None and hidden != H:
            self.fail(node, f"hidden_size={hidden} but R has {H} columns")
        if w.shape[1] != G * H or r.shape[1] != G * H:
            self.fail(node, f"W {list(w.shape)} and R {list(r.shape)} must have {G}*hidden_size = {G * H} rows")
        if w.dtype != np.float32 or r.dtype != np.float32:
            self.fail(node, f"weights are {w.dtype}; only float32 is supported")
        b = np.zeros(2 * G * H, np.float32) if B is None else B.value
        if b.shape != (1, 2 * G * H):
            self.fail(node, f"B has shape {list(b.shape)}, expected [1, {2 * G * H}]")
        w, r, b = w[0], r[0], b.reshape(-1).astype(np.float32)
        wk = W.pattern[0] if W.pattern is not None else w != 0
        rk = R.pattern[0] if R.pattern is not None else r != 0
        x_cols = np.arange(w.shape[1]) if input_cols is None else input_cols
        f_cols = np.arange(0) if feedback_cols is None else feedback_cols
        wx, wxk, wf, wfk = w[:, x_cols], wk[:, x_cols], w[:, f_cols], wk[:, f_cols]
        wb, rb = b[: G * H], b[G * H :]
        I, F = len(x_cols), len(f_cols)

        def block(m, q):
            return m[q * H : (q + 1) * H]

        def row(q, x=True, h=True):
            """IR rows over [x | h | feedback] from ONNX gate block q (input side: x and feedback)."""
            vals = [block(wx, q) if x else np.zeros((H, I), np.float32), block(r, q) if h else np.zeros((H, H), np.float32),
                    block(wf, q) if x else np.zeros((H, F), np.float32)]
            keep = [block(wxk, q) if x else np.zeros((H, I), bool), block(rk, q) if h else np.zeros((H, H), bool),
                    block(wfk, q) if x else np.zeros((H, F), bool)]
            return np.hstack(vals), np.hstack(keep)

        if cell == "lstm":
            rows = [(*row(q), block(wb, q) + block(rb, q)) for q in LSTM_IR_FROM_ONNX]
        elif cell == "gru":  # r, z read everything; the candidate's input and state halves stay apart
            rows = [(*row(q), block(wb, q) + block(rb, q)) for q in GRU_RZ_FROM_ONNX]
            rows += [(*row(2, h=False), block(wb, 2)), (*row(2, x=False), block(rb, 2))]
        else:
            rows = [(*row(0), wb + rb)]
        values = np.vstack([v for v, _, _ in rows])
        keep = np.vstack([kp for _, kp, _ in rows])
        bias = np.concatenate([bb for _, _, bb in rows]).astype(np.float32)
        return _Layer(cell, I, H, ir.CSR.from_dense(values, keep), bias)

    # -- glue on data tensors ----------------------------------------------------------------------
    def _size(self, content: Content) -> int | None:
        """Static size of the feature axis C for ``content``."""
        if content.affine is not None:
            return content.affine[0].shape[0]
        if content.source == "input":
            return None
        return self.layers[content.layer].hidden_size

    def _axes(self, node, ins, rank: int, attr_name="axes", input_index=1) -> list[int] | None:
        from onnx import helper

        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attr_name in attrs:
            axes = list(attrs[attr_name])
        elif len(ins) > input_index and ins[input_index] is not None:
            if not isinstance(ins[input_index], Const):
                self.fail(node, f"{attr_name} must be constant")
            axes = [int(a) for a in np.asarray(ins[input_index].value).reshape(-1)]
        else:
            return None
        return [a + rank if a < 0 else a for a in axes]

    def _op_Identity(self, node, ins):
        return ins[0]

    def _op_Dropout(self, node, ins):
        return [ins[0], Unknown()]  # inference: the data passes through; the mask output is not used

    def _op_Cast(self, node, ins):
        from onnx import TensorProto, helper

        to = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "to"), None)
        if to != TensorProto.FLOAT:
            self.fail(node, f"casts the data to {TensorProto.DataType.Name(to) if to is not None else '?'} "
                            "(only float32 data is supported)")
        return ins[0]

    def _op_Transpose(self, node, ins):
        from onnx import helper

        x = ins[0]
        perm = next((list(helper.get_attribute_value(a)) for a in node.attribute if a.name == "perm"),
                    list(range(len(x.labels)))[::-1])
        return Data(tuple(x.labels[p] for p in perm), x.content)

    def _op_Squeeze(self, node, ins):
        x = ins[0]
        axes = self._axes(node, ins, len(x.labels))
        if axes is None:
            axes = [i for i, l in enumerate(x.labels) if l == "S"]
        for a in axes:
            if a >= len(x.labels) or x.labels[a] != "S":
                self.fail(node, f"squeezes axis {a} ({x.labels[a] if a < len(x.labels) else 'out of range'}), "
                                "which is not a singleton axis")
        return Data(tuple(l for i, l in enumerate(x.labels) if i not in axes), x.content)

    def _op_Unsqueeze(self, node, ins):
        x = ins[0]
        raw = self._axes(node, ins, 0)  # rank 0: negative axes stay negative
        if not raw:
            self.fail(node, "has no axes")
        rank = len(x.labels) + len(raw)
        axes = [a + rank if a < 0 else a for a in raw]
        labels = list(x.labels)
        for a in sorted(axes):
            labels.insert(a, "S")
        return Data(tuple(labels), x.content)

    def _op_Flatten(self, node, ins):
        from onnx import helper

        x = ins[0]
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 1)
        axis = axis + len(x.labels) if axis < 0 else axis
        left = [l for l in x.labels[:axis] if l != "S"]
        right = [l for l in x.labels[axis:] if l != "S"]
        if len(left) > 1 or len(right) > 1 or "K" in left + right:
            self.fail(node, f"merges axes {x.labels} (only singleton axes may be flattened away)")
        return Data((left[0] if left else "S", right[0] if right else "S"), x.content)

    def _op_Reshape(self, node, ins):
        x, shape = ins[0], ins[1]
        if not isinstance(shape, Const):
            self.fail(node, "reshapes the data to a shape computed at run time (only constant shapes)")
        dims = [int(d) for d in shape.value.reshape(-1)]
        real = [(i, l) for i, l in enumerate(x.labels) if l != "S"]
        out, k = [], 0
        content = x.content
        for i, d in enumerate(dims):
            if d == 1:
                out.append("S")
                continue
            if k >= len(real):
                self.fail(node, f"reshape {x.labels} -> {dims} merges or splits axes")
            pos, label = real[k]
            size = self._label_size(x, label)
            if d == 0 and i != pos:
                self.fail(node, f"reshape {x.labels} -> {dims} moves an axis")
            if d > 1 and size != d:
                self.fail(node, f"reshape {x.labels} -> {dims} merges or splits axes")
            out.append(label)
            k += 1
        if k != len(real):
            self.fail(node, f"reshape {x.labels} -> {dims} merges or splits axes")
        return Data(tuple(out), content)

    def _label_size(self, x: Data, label: str) -> int | None:
        if label == "K":
            return len(x.content)
        if label == "C" and isinstance(x.content, Content):
            return self._size(x.content)
        return None

    def _op_Slice(self, node, ins):
        from onnx import helper

        x = ins[0]
        rank = len(x.labels)
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if "starts" in attrs:  # opset < 10
            starts, ends = list(attrs["starts"]), list(attrs["ends"])
            axes = list(attrs.get("axes", range(len(starts))))
            steps = [1] * len(starts)
        else:
            vals = []
            for v in ins[1:5]:
                if v is not None and not isinstance(v, Const):
                    self.fail(node, "slices with bounds computed at run time")
                vals.append(None if v is None else [int(a) for a in v.value.reshape(-1)])
            vals += [None] * (4 - len(vals))
            starts, ends, axes, steps = vals
            axes = axes if axes is not None else list(range(len(starts)))
            steps = steps if steps is not None else [1] * len(starts)
        labels, content = list(x.labels), x.content
        for a, s, e, st in zip(axes, starts, ends, steps):
            a = a + rank if a < 0 else a
            label = labels[a]
            full = s == 0 and e >= BIG and st == 1
            if label == "K":
                picked = tuple(content[slice(s, min(e, len(content)), st)])
                if not picked:
                    self.fail(node, "selects no state")
                labels[a], content = ("S", picked[0]) if len(picked) == 1 else ("K", picked)
            elif label == "T" and not full:
                if not (s == LAST and e >= BIG and st == 1) or content.source != "seq":
                    self.fail(node, f"slices time steps [{s}:{e}:{st}]; only the last step ([-1:]) can be selected")
                labels[a], content = "S", replace(content, source="last")
            elif label == "S":
                if not (s in (0, LAST) and (e >= 1 or e == BIG) and st == 1):
                    self.fail(node, f"slice [{s}:{e}:{st}] of a singleton axis selects nothing")
            elif not full:
                self.fail(node, f"slices the {_axis_name(label)} axis [{s}:{e}:{st}] (only the last time step or "
                                "one of the stacked states can be selected)")
        return Data(tuple(labels), content)

    def _op_Gather(self, node, ins):
        from onnx import helper

        x, idx = ins[0], ins[1]
        if not isinstance(idx, Const):
            self.fail(node, "gathers with indices computed at run time")
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)
        axis = axis + len(x.labels) if axis < 0 else axis
        index = np.asarray(idx.value)
        if index.size != 1:
            self.fail(node, f"gathers {index.size} entries; only a single index is supported")
        i = int(index.reshape(-1)[0])
        label, content = x.labels[axis], x.content
        if label == "K":
            if not -len(content) <= i < len(content):
                self.fail(node, f"index {i} out of range for {len(content)} stacked states")
            content = content[i]
        elif label == "T":
            if i != LAST or content.source != "seq":
                self.fail(node, f"gathers time step {i}; only the last step (-1) can be selected")
            content = replace(content, source="last")
        elif label == "S":
            if i not in (0, LAST):
                self.fail(node, f"index {i} out of range for a singleton axis")
        else:
            self.fail(node, f"gathers along the {_axis_name(label)} axis")
        labels = list(x.labels)
        if index.ndim == 0:
            del labels[axis]
        else:
            labels[axis] = "S"
        return Data(tuple(labels), content)

    def _op_Concat(self, node, ins):
        from onnx import helper

        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)
        parts = [v for v in ins if v is not None]
        if not all(isinstance(v, Data) for v in parts):
            self.fail(node, "concatenates data with constants")
        rank = len(parts[0].labels)
        axis = axis + rank if axis < 0 else axis
        stacked: list[Content] = []
        for v in parts:
            other = tuple(l for i, l in enumerate(v.labels) if i != axis)
            if len(v.labels) != rank or other != tuple(l for i, l in enumerate(parts[0].labels) if i != axis):
                self.fail(node, "concatenates tensors with different layouts")
            if v.labels[axis] == "S":
                stacked.append(v.content)
            elif v.labels[axis] == "K":
                stacked.extend(v.content)
            elif v.labels[axis] == "C" and all(p.labels[axis] == "C" for p in parts) and self.scan is not None:
                return self._columns(node, parts)
            else:
                self.fail(node, f"concatenates along the {_axis_name(v.labels[axis])} axis (only final states can "
                                "be stacked)")
        labels = list(parts[0].labels)
        labels[axis] = "K"
        return Data(tuple(labels), tuple(stacked))

    def _columns(self, node, parts: list[Data]) -> Data:
        """Inputs concatenated along the features inside a Scan body: a layer's input plus feedback."""
        flat: list[Content] = []
        for v in parts:
            if not isinstance(v.content, Content) or v.content.affine is not None:
                self.fail(node, "concatenates features of something other than a layer input and a state")
            flat.extend(v.content.parts if v.content.source == "cols" else [v.content])
        return Data(parts[0].labels, Content("cols", parts=tuple(flat)))

    # -- the head -------------------------------------------------------------------------------------
    def _affine_input(self, node, x: Data) -> Content:
        if not isinstance(x.content, Content):
            self.fail(node, "applies a linear map to stacked states")
        if x.content.source == "input":
            self.fail(node, "a linear layer before the first recurrent op is not supported")
        if x.content.source not in ("seq", "last"):
            self.fail(node, "a linear map inside the recurrence is not supported (only a head on the last step)")
        return x.content

    def _compose(self, content: Content, M: np.ndarray, pattern: np.ndarray | None, bias=None) -> Content:
        """``content`` followed by ``y = M x (+ bias)``."""
        M = M.astype(np.float64)
        if content.affine is None:
            W, b, pat = M, np.zeros(M.shape[0]), pattern
        else:
            W0, b0, _ = content.affine
            W, b, pat = M @ W0, M @ b0, None
        if bias is not None:
            b = b + bias
        return replace(content, affine=(W, b, pat))

    def _op_MatMul(self, node, ins):
        x, m = ins
        if not isinstance(x, Data) or not isinstance(m, Const):
            self.fail(node, "only data @ constant matrix is supported")
        content = self._affine_input(node, x)
        M = m.value
        if M.ndim != 2 or x.labels[-1] != "C" or M.shape[0] != self._size(content):
            self.fail(node, f"multiplies {x.labels} by a {list(M.shape)} matrix; expected [..., features] @ "
                            f"[{self._size(content)}, out]")
        pattern = m.pattern.T if m.pattern is not None else None
        return Data(x.labels, self._compose(content, M.T, pattern))

    def _op_Gemm(self, node, ins):
        from onnx import helper

        a = {at.name: helper.get_attribute_value(at) for at in node.attribute}
        x, m = ins[0], ins[1]
        c = ins[2] if len(ins) > 2 else None
        if not isinstance(x, Data) or not isinstance(m, Const) or (c is not None and not isinstance(c, Const)):
            self.fail(node, "only Gemm(data, constant B, constant C) is supported")
        content = self._affine_input(node, x)
        expected = ("C", "N") if a.get("transA", 0) else ("N", "C")
        if x.labels != expected:
            self.fail(node, f"A has axes {x.labels}, expected {expected}")
        M = m.value if a.get("transB", 0) else m.value.T  # -> [out, in]
        pattern = None if m.pattern is None else (m.pattern if a.get("transB", 0) else m.pattern.T)
        if M.ndim != 2 or M.shape[1] != self._size(content):
            self.fail(node, f"B has shape {list(m.value.shape)}, which does not fit {self._size(content)} features")
        alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
        bias = None
        if c is not None:
            cv = np.asarray(c.value, np.float64)
            if cv.size not in (1, M.shape[0]) or (cv.ndim == 2 and cv.shape[0] != 1):
                self.fail(node, f"C has shape {list(cv.shape)}; expected [{M.shape[0]}] or [1, {M.shape[0]}]")
            bias = beta * np.broadcast_to(cv.reshape(-1), (M.shape[0],))
        content = self._compose(content, alpha * M, pattern if alpha == 1.0 else None, bias)
        return Data(("N", "C"), content)

    def _op_Add(self, node, ins, sign: float = 1.0):
        x, c = ins
        if isinstance(x, Const) and isinstance(c, Data) and sign > 0:
            x, c = c, x
        if not isinstance(x, Data) or not isinstance(c, Const):
            self.fail(node, "only data + constant (a bias) is supported")
        content = self._affine_input(node, x)
        size = self._size(content)
        cv = np.asarray(c.value, np.float64)
        if cv.ndim > len(x.labels) or x.labels[-1] != "C":
            self.fail(node, f"adds a {list(cv.shape)} constant to {x.labels}")
        for d, label in zip(cv.shape[::-1], x.labels[::-1]):
            if d != 1 and not (label == "C" and d == size):
                self.fail(node, f"adds a {list(cv.shape)} constant that varies along the {_axis_name(label)} axis")
        bias = sign * np.broadcast_to(cv.reshape(-1), (size,))
        W, b, pattern = content.affine if content.affine is not None else (np.eye(size), np.zeros(size), None)
        return Data(x.labels, replace(content, affine=(W, b + bias, pattern)))

    def _op_Sub(self, node, ins):
        if not isinstance(ins[0], Data):
            self.fail(node, "only data - constant is supported")
        return self._op_Add(node, ins, sign=-1.0)

    # -- the result ------------------------------------------------------------------------------------
    def _model(self, output: str) -> ir.Model:
        out = self.values.get(output)
        if isinstance(out, Zeros) or isinstance(out, (Const, ShapeVal)):
            raise OnnxImportError(f"{self.file}: the output '{output}' does not depend on the input")
        if not isinstance(out, Data) or not self.layers:
            raise OnnxImportError(f"{self.file}: no LSTM/GRU/RNN op feeds the output '{output}'")
        content = out.content
        if not isinstance(content, Content):
            raise OnnxImportError(f"{self.file}: the output '{output}' is several stacked states, not logits")
        if content.source == "seq":
            raise OnnxImportError(f"{self.file}: the output '{output}' has every time step; only classifiers on the "
                                  "last step are supported")
        if content.source != "last" or content.layer != len(self.layers) - 1:
            raise OnnxImportError(f"{self.file}: the output reads layer {content.layer}, not the top recurrent layer")
        if out.labels != ("N", "C"):
            raise OnnxImportError(f"{self.file}: the output '{output}' has axes {_describe(out.labels)}, expected "
                                  "[batch, classes]")
        H = self.layers[-1].hidden_size
        if content.affine is None:
            W, b, pattern = np.eye(H), np.zeros(H), None
        else:
            W, b, pattern = content.affine
        W = W.astype(np.float32)
        head = ir.Head(ir.CSR.from_dense(W, pattern if pattern is not None else W != 0), b.astype(np.float32))
        layers = [ir.Layer(l.cell, l.input_size, l.hidden_size, l.feedback_size, l.weight, l.bias) for l in self.layers]
        meta = self._meta()
        try:
            return ir.Model(layers[0].input_size, layers, head, meta).validate()
        except EdgepruneError as e:
            raise OnnxImportError(f"{self.file}: {e}") from None

    def _meta(self) -> dict:
        props = {p.key: p.value for p in self.proto.metadata_props}
        meta = {}
        if "edgeprune.meta" in props:  # written by our own exporter: keeps the dataset and sequence length
            try:
                meta = dict(json.loads(props["edgeprune.meta"]))
            except (ValueError, TypeError):
                meta = {}
        meta["onnx"] = {"file": self.file, "producer": f"{self.proto.producer_name} {self.proto.producer_version}".strip(),
                        "opset": self.opset}
        meta["source"] = "onnx"
        return meta


def _is_zero(v) -> bool:
    return isinstance(v, Zeros) or (isinstance(v, Const) and not np.asarray(v.value).any())


def _reads(node) -> list[str]:
    """Every name ``node`` reads, including outer-scope names its subgraphs (Scan/Loop/If bodies) use."""
    from onnx import AttributeProto

    names = [i for i in node.input if i]
    for a in node.attribute:
        graphs = [a.g] if a.type == AttributeProto.GRAPH else list(a.graphs)
        for g in graphs:
            inner = {o for n in g.node for o in n.output} | {i.name for i in g.input} | {t.name for t in g.initializer}
            names += [name for n in g.node for name in _reads(n) if name not in inner]
    return names


def _axis_name(label: str) -> str:
    return {"N": "batch", "T": "time", "C": "feature", "S": "singleton", "K": "stacked-state"}.get(label, "input")


def _describe(labels) -> str:
    return "[" + ", ".join(_axis_name(l) for l in labels) + "]"


def _sparse_const(s) -> Const:
    from onnx import numpy_helper

    values = numpy_helper.to_array(s.values)
    indices = numpy_helper.to_array(s.indices).astype(np.int64)
    dims = tuple(int(d) for d in s.dims)
    dense = np.zeros(dims, values.dtype)
    pattern = np.zeros(dims, bool)
    flat = indices if indices.ndim == 1 else np.ravel_multi_index(tuple(indices.T), dims)
    dense.reshape(-1)[flat] = values
    pattern.reshape(-1)[flat] = True
    return Const(dense, pattern)


def _constant(node) -> Const:
    from onnx import helper, numpy_helper

    a = node.attribute[0]
    if a.name == "sparse_value":
        return _sparse_const(a.sparse_tensor)
    if a.name == "value":
        return Const(numpy_helper.to_array(a.t))
    v = helper.get_attribute_value(a)
    dtype = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64,
             "value_ints": np.int64}.get(a.name)
    if dtype is None:
        raise OnnxImportError(f"Constant '{node.name}': {a.name} constants are not supported")
    return Const(np.asarray(v, dtype))


def _fill_value(node) -> float:
    from onnx import numpy_helper

    for a in node.attribute:
        if a.name == "value":
            return float(numpy_helper.to_array(a.t).reshape(-1)[0])
    return 0.0

"""The interpreter: walks the graph's nodes (only those the output depends on), folds constants,
tracks zeros and shapes, hands each op to its handler and turns the final value into the IR."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ... import ir
from ...errors import EdgepruneError, first_line
from .layers import StageOps
from .ops import DataOps
from .recurrent import RECURRENT, LengthsInput, RecurrentOps
from .source import OnnxModel
from .unrolled import UnrolledOps
from .values import (
    Const,
    Content,
    Data,
    Dims,
    ImportedLayer,
    LayerNormPart,
    OnnxImportError,
    Refused,
    ShapeVal,
    Unknown,
    Zeros,
    constant_value,
    describe_axes,
    fill_value,
    initializer_const,
    sparse_const,
)

# Ops that keep an all-zero tensor all zero whatever their other (shape) inputs
ZERO_PRESERVING = {
    "Identity",
    "Squeeze",
    "Unsqueeze",
    "Reshape",
    "Transpose",
    "Slice",
    "Gather",
    "Expand",
    "Cast",
    "Tile",
    "Flatten",
    "Dropout",
    "MatMul",
    "Mul",
}
# Ops read on shapes and constants (no handler on data needed): never named as unsupported on their own
SHAPE_OPS = ZERO_PRESERVING | {
    "Shape",
    "Size",
    "ConstantOfShape",
    "Concat",
    "Constant",
    "Range",
    "Equal",
    "Where",
    "Add",
    "Sub",
    "Mul",
    "Div",
}
DIMS_OPS = {"Identity", "Cast", "Squeeze", "Unsqueeze", "Reshape", "Concat", "Gather", "Slice", "Mul"}
AXIS_NAMES = {"N": "batch", "T": "time", "C": "features"}


class Importer(RecurrentOps, UnrolledOps, StageOps, DataOps):
    """Reads one ONNX graph into IR layers and a head (see the package docstring)."""

    def __init__(self, proto, file_name: str):
        self.proto, self.file = proto, file_name
        self.graph = proto.graph
        self.values: dict[str, object] = {}
        self.layers: list[ImportedLayer] = []  # the recurrent layers of a Scan (feedback models)
        self.recurrent_ops = 0
        self.fixed_batch: int | None = None  # set by a constant initial state
        self.unrolled: list[dict] = []  # the records of recurrences written out step by step (unrolled.py)
        self.unsupported: list[tuple[str, str]] = []  # (op type, node name), in graph order
        self.meaning: dict[str, str] = {}  # raw input axis label ("x0".."x2") -> "N" | "T" | "C", as ops reveal it
        self.dims: dict[str, int | None] = {}  # static sizes of the input's axes, by raw label then by meaning
        self.scan: dict | None = None  # while reading a Scan body: its loop variables and how layers bind them
        self.opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)

    # errors
    def fail(self, node, message: str):
        where = f"{node.op_type} '{node.name}'" if node is not None and node.name else (node.op_type if node else "")
        raise OnnxImportError(f"{self.file}: {where + ': ' if where else ''}{message}")

    def run(self) -> OnnxModel:

        g = self.graph
        for t in g.initializer:
            self.values[t.name] = initializer_const(t, self.file)
        for s in g.sparse_initializer:
            self.values[s.values.name] = sparse_const(s)
        lengths = self._lengths_input(g)
        data_inputs = [i for i in g.input if i.name not in self.values and i.name != lengths]
        if len(data_inputs) != 1:
            names = ", ".join(i.name for i in data_inputs) or "none"
            raise OnnxImportError(
                f"{self.file}: expected one input (the sequences [batch, time, features]), "
                f"found {len(data_inputs)}: {names}"
            )
        if len(g.output) != 1:
            raise OnnxImportError(
                f"{self.file}: expected one output (the logits), found {len(g.output)}: "
                f"{', '.join(o.name for o in g.output)}"
            )
        inp, out = data_inputs[0], g.output[0]
        dims = self._check_input(inp)
        self.dims = {f"x{i}": d for i, d in enumerate(dims)}
        self.values[inp.name] = Data(("x0", "x1", "x2"), Content("input"))
        if lengths is not None:
            self.values[lengths] = LengthsInput(
                f"reads the sequence lengths '{lengths}'; only a recurrent op's sequence_lens may read them"
            )
        needed = self._needed_nodes(g.node, [out.name])
        for k, node in enumerate(g.node):
            if k in needed:
                self._node(node)
        if self.unsupported:
            listed = ", ".join(f"{op} '{name}'" if name else op for op, name in self.unsupported)
            why = ""
            if any(op == "Loop" for op, _ in self.unsupported):  # say why, and what to do instead
                why = (
                    " (a Loop is read only as the recurrence tf2onnx writes for a Keras SimpleRNN or GRU: step t "
                    "gathered from the sequence, constant kernel, recurrent kernel and bias, the state as the one "
                    "scan output; see docs/import.md)"
                )
            raise OnnxImportError(f"{self.file}: unsupported op(s) on the path to the output: {listed}{why}")
        self._default_axes()
        model, output_labels = self._model(out.name)
        axes = {AXIS_NAMES[self.meaning[f"x{i}"]]: i for i in range(3)}
        fixed = {
            AXIS_NAMES[m]: self.dims[f"x{i}"]
            for i, m in ((i, self.meaning[f"x{i}"]) for i in range(3))
            if m != "C" and isinstance(self.dims[f"x{i}"], int)
        }
        if self.fixed_batch is not None:
            if fixed.get("batch", self.fixed_batch) != self.fixed_batch:
                raise OnnxImportError(
                    f"{self.file}: the input's batch is {fixed['batch']} but a constant initial "
                    f"state's is {self.fixed_batch}"
                )
            fixed["batch"] = self.fixed_batch
        f_dim = dims[axes["features"]]
        if isinstance(f_dim, int) and f_dim != model.input_size:
            raise OnnxImportError(
                f"{self.file}: input has {f_dim} features but the first layer reads {model.input_size}"
            )
        if "time" in fixed:
            model.meta.setdefault("sequence_length", fixed["time"])
        if lengths is not None:
            model.meta["sequence_lens"] = "per-sample lengths: the data's lengths (verify/evaluate)"
        return OnnxModel(
            model, Path(self.file), inp.name, out.name, axes, fixed, output_labels=output_labels, lengths_name=lengths
        )

    def _lengths_input(self, g) -> str | None:
        """A graph input that is only ever a recurrent op's sequence_lens (int32 [batch]): the per-sample lengths,
        which edgeprune takes from the data (a streaming model runs each sequence; its output at a sample's own
        last step is ONNX's Y_h). None if there is none."""
        from onnx import TensorProto

        for vi in g.input:
            if vi.name in self.values or vi.type.tensor_type.elem_type != TensorProto.INT32:
                continue
            uses = [(n.op_type, list(n.input).index(vi.name)) for n in g.node if vi.name in n.input]
            if uses and all(op in RECURRENT and k == 4 for op, k in uses):
                return vi.name
        return None

    # -- the input's axes: each op that reads an axis of the raw input says what it is -------------------------
    def _bind(self, node, label: str, meaning: str) -> None:
        if not label.startswith("x"):
            if label != meaning:
                self.fail(node, f"reads the {AXIS_NAMES.get(label, label)} axis as {AXIS_NAMES[meaning]}")
            return
        known = self.meaning.get(label)
        other = next((l for l, m in self.meaning.items() if m == meaning and l != label), None)
        if (known is not None and known != meaning) or other is not None:
            self.fail(
                node,
                f"reads input axis {label[1]} as {AXIS_NAMES[meaning]}, but another op reads it as "
                f"{AXIS_NAMES[known or self.meaning[other]]}",
            )
        self.meaning[label] = meaning

    def _norm(self, v):
        """``v`` with the raw input axis labels replaced by what they are known to be."""
        if isinstance(v, Data) and any(l.startswith("x") and l in self.meaning for l in v.labels):
            return Data(tuple(self.meaning.get(l, l) for l in v.labels), v.content)
        return v

    def _static(self, label: str) -> int | None:
        """Static size of the batch or time axis (fixed by the exporter), else None."""
        raw = next((l for l, m in self.meaning.items() if m == label), label)
        return self.dims.get(raw)

    def _default_axes(self) -> None:
        """Axes no op has told apart are read as [batch, time, features] in the order left."""
        free = [m for m in ("N", "T", "C") if m not in self.meaning.values()]
        for label in ("x0", "x1", "x2"):
            if label not in self.meaning:
                self.meaning[label] = free.pop(0)

    def _check_input(self, value_info) -> list:
        from onnx import TensorProto

        t = value_info.type.tensor_type
        if not value_info.type.HasField("tensor_type") or t.elem_type != TensorProto.FLOAT:
            kind = TensorProto.DataType.Name(t.elem_type) if value_info.type.HasField("tensor_type") else "not a tensor"
            raise OnnxImportError(
                f"{self.file}: input '{value_info.name}' is {kind}; only float32 inputs are supported"
            )
        if not t.HasField("shape") or len(t.shape.dim) != 3:
            rank = len(t.shape.dim) if t.HasField("shape") else "unknown"
            raise OnnxImportError(
                f"{self.file}: input '{value_info.name}' has rank {rank}; expected 3 "
                "(batch, time, features in some order)"
            )
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
        ins = [self._norm(self.values.get(name)) if name else None for name in node.input]
        missing = [name for name, v in zip(node.input, ins, strict=False) if name and v is None]
        if missing:  # an outer-scope or undefined name: the checker should have caught it
            self.fail(node, f"input '{missing[0]}' is not defined")
        if node.domain not in ("", "ai.onnx"):
            return self._unsupported(node, f"{node.domain}::{op}")
        if any(isinstance(v, Unknown) for v in ins):  # downstream of a refused op: name this one too if refused
            if not self._known(op):
                return self._unsupported(node, op)
            return self._set(node, [Unknown()] * len(node.output))
        refused = next(
            (
                v
                for k, v in enumerate(ins)
                if isinstance(v, Refused) and not (op in RECURRENT and k == 4 and isinstance(v, LengthsInput))
            ),
            None,
        )
        if refused is not None:
            self.fail(node, refused.reason)
        present = [v for v in ins if v is not None]
        if op == "Constant":
            return self._set(node, [constant_value(node)])
        if op in RECURRENT:
            return self._recurrent(node, ins)
        if any(isinstance(v, LayerNormPart) for v in present):
            return self._set(node, [self._layernorm_part(node, ins)])
        if all(isinstance(v, Const) for v in present):
            return self._set(node, self._fold(node, ins))
        if op == "Shape" and isinstance(ins[0], Data):
            return self._set(node, [self._shape_of(node, ins[0])])
        if op in ("Shape", "Size"):
            return self._set(node, [ShapeVal()])
        if (
            op in DIMS_OPS
            and (isinstance(ins[0], Dims) or op in ("Concat", "Mul"))
            and any(isinstance(v, Dims) for v in present)
            and all(isinstance(v, (Const, Dims)) for v in present)
        ):
            return self._set(node, [self._dims_op(node, ins)])
        if all(isinstance(v, (Const, ShapeVal)) for v in present):
            if op == "ConstantOfShape":
                return self._set(node, [Zeros() if fill_value(node) == 0 else ShapeVal()])
            if op in ZERO_PRESERVING and isinstance(ins[0], Const) and not ins[0].value.any():
                return self._set(node, [Zeros(self._zeros_rank(node, ins))])  # e.g. Expand(0, [1, batch, H])
            return self._set(node, [ShapeVal()] * len(node.output))
        data = [v for v in present if isinstance(v, Data)]
        if not data:  # zeros (and shapes) being reshaped or broadcast
            return self._zeros(node, ins)
        handler = getattr(self, f"_op_{op}", None)
        if handler is None:
            return self._unsupported(node, op)
        padded = next((v for v in data if isinstance(v.content, Content) and v.content.pad), None)
        if padded is not None and op not in ("Conv", "Identity", "Cast"):
            self.fail(node, "reads a sequence padded on the left of time; only a Conv may read it (the causal pad)")
        result = handler(node, ins)
        self._set(node, result if isinstance(result, list) else [result])

    # -- shapes known entry by entry (Shape -> Slice/Gather -> Mul -> Concat -> Reshape, as dynamo writes) --
    def _shape_of(self, node, x: Data) -> ShapeVal:
        from onnx import helper

        entries = []
        for label in x.labels:
            if label == "S":
                entries.append(1)
            elif label == "K":
                entries.append(len(x.content))
            elif label == "C":
                size = self._size(x.content) if isinstance(x.content, Content) else None
                if size is None:
                    return ShapeVal()
                entries.append(size)
            else:
                entries.append(label)
        a = {at.name: helper.get_attribute_value(at) for at in node.attribute}
        start, end = a.get("start", 0), a.get("end", len(entries))
        return Dims(tuple(entries[start:end]))

    def _dims_op(self, node, ins) -> ShapeVal:
        """Shape arithmetic on known entries; anything else becomes an opaque run-time shape."""
        op, first = node.op_type, ins[0]
        vals = [
            None
            if v is None
            else (list(v.entries) if isinstance(v, Dims) else [int(e) for e in np.asarray(v.value).reshape(-1)])
            for v in ins
        ]
        try:
            if op in ("Identity", "Cast", "Squeeze", "Unsqueeze", "Reshape") and isinstance(first, Dims):
                scalar = op == "Squeeze" or (op == "Reshape" and not vals[1])
                return Dims(tuple(vals[0]), scalar and len(vals[0]) == 1)
            if op == "Concat":
                return Dims(tuple(e for v in vals if v is not None for e in v))
            if op == "Gather" and isinstance(first, Dims) and isinstance(ins[1], Const):
                index = np.asarray(ins[1].value)
                picked = tuple(vals[0][int(i)] for i in index.reshape(-1))
                return Dims(picked, index.ndim == 0)
            if (
                op == "Slice"
                and isinstance(first, Dims)
                and all(isinstance(v, Const) for v in ins[1:] if v is not None)
            ):
                start, end = vals[1][0], vals[2][0]
                step = vals[4][0] if len(vals) > 4 and vals[4] is not None else 1
                return Dims(tuple(vals[0][start:end:step]))
            if op == "Mul" and all(len(v) == 1 for v in vals if v is not None):
                a, b = vals[0][0], vals[1][0]
                if isinstance(a, int) and isinstance(b, int):
                    return Dims((a * b,), all(isinstance(v, Dims) and v.scalar for v in ins))
                if a == 1 or b == 1:
                    return Dims((b if a == 1 else a,), all(isinstance(v, Dims) and v.scalar for v in ins))
        except (IndexError, TypeError, ValueError):
            pass
        return ShapeVal()

    def _zeros_rank(self, node, ins) -> int | None:
        """The rank of an all-zero result, where the op and its inputs tell it."""
        from onnx import helper

        op, first = node.op_type, ins[0]
        rank = (
            first.rank
            if isinstance(first, Zeros)
            else np.asarray(first.value).ndim
            if isinstance(first, Const)
            else None
        )
        if op == "Expand" and len(ins) > 1:
            shape = ins[1]
            n = (
                len(shape.entries)
                if isinstance(shape, Dims)
                else shape.value.size
                if isinstance(shape, Const)
                else None
            )
            return None if n is None or rank is None else max(n, rank)
        if rank is None or op in ("Reshape", "Flatten", "Tile", "Gather"):
            return None
        axes = next((list(helper.get_attribute_value(a)) for a in node.attribute if a.name == "axes"), None)
        if axes is None and len(ins) > 1 and isinstance(ins[1], Const) and op in ("Squeeze", "Unsqueeze"):
            axes = list(np.asarray(ins[1].value).reshape(-1))
        if op == "Squeeze":
            return None if axes is None else rank - len(axes)
        if op == "Unsqueeze":
            return None if axes is None else rank + len(axes)
        return rank  # Identity, Slice, Cast, Dropout, Transpose, MatMul by a matrix, Mul

    def _known(self, op: str) -> bool:
        return op in RECURRENT or op in SHAPE_OPS or hasattr(self, f"_op_{op}")

    def _set(self, node, values: list) -> None:
        for name, v in zip(node.output, values, strict=False):
            if name:
                self.values[name] = v
        for name in node.output[len(values) :]:
            if name:
                self.values[name] = Unknown()

    def _unsupported(self, node, what: str) -> None:
        self.unsupported.append((what, node.name))
        self._set(node, [Unknown()] * len(node.output))

    def _fold(self, node, ins) -> list:
        """Evaluate a node whose inputs are all constants."""
        from onnx import helper, numpy_helper
        from onnx.reference import ReferenceEvaluator

        names = [f"in{k}" if i else "" for k, i in enumerate(node.input)]
        folded = helper.make_node(node.op_type, names, [f"out{k}" for k in range(len(node.output))], domain=node.domain)
        folded.attribute.extend(node.attribute)
        inits = [numpy_helper.from_array(np.asarray(v.value), n) for n, v in zip(names, ins, strict=False) if n]
        graph = helper.make_graph(
            [folded], "fold", [], [helper.make_empty_tensor_value_info(o) for o in folded.output], inits
        )
        model = helper.make_model(graph, opset_imports=self.proto.opset_import)
        try:
            results = ReferenceEvaluator(model).run(None, {})
        except Exception as e:
            self.fail(node, f"cannot evaluate this constant expression ({first_line(e)})")
        return [Const(np.asarray(r)) for r in results]

    def _zeros(self, node, ins) -> None:
        op, first = node.op_type, ins[0]
        if op in ZERO_PRESERVING and (isinstance(first, Zeros) or (isinstance(first, Const) and not first.value.any())):
            return self._set(node, [Zeros(self._zeros_rank(node, ins))])
        if op == "Concat" and all(
            isinstance(v, Zeros) or (isinstance(v, Const) and not v.value.any()) for v in ins if v is not None
        ):
            return self._set(node, [Zeros()])
        if (
            op == "Add"
            and isinstance(first, Zeros)
            and first.rank is not None
            and len(ins) == 2
            and isinstance(ins[1], Const)
            and ins[1].value.ndim <= first.rank
        ):
            # 0 @ W_hh + b_hh of an unrolled recurrence's first step: b_hh, at the rank of the zeros
            value = np.asarray(ins[1].value)
            return self._set(node, [Const(value.reshape((1,) * (first.rank - value.ndim) + value.shape))])
        return self._unsupported(node, op)

    # -- the result ------------------------------------------------------------------------------------
    def _model(self, output: str) -> tuple[ir.Model, tuple]:
        out = self._norm(self.values.get(output))
        if isinstance(out, (Zeros, Const, ShapeVal)):
            raise OnnxImportError(f"{self.file}: the output '{output}' does not depend on the input")
        if isinstance(out, LayerNormPart):
            raise OnnxImportError(f"{self.file}: the output '{output}' is an unfinished layer norm ({out.kind})")
        if not isinstance(out, Data):
            raise OnnxImportError(f"{self.file}: the output '{output}' is not computed from the input step by step")
        content = self._settle(None, out.content)
        if not isinstance(content, Content):
            raise OnnxImportError(f"{self.file}: the output '{output}' is several stacked states, not one output")
        if content.source not in ("input", "seq", "last"):
            raise OnnxImportError(f"{self.file}: the output '{output}' is not a whole-sequence output")
        every = content.source in ("input", "seq")
        labels = tuple(l for l in out.labels if l != "S")
        wanted = {"N", "T", "C"} if every else {"N", "C"}
        for label in labels:
            if label.startswith("x"):
                self.meaning.setdefault(label, "N")  # unreachable in practice: _default_axes bound them all
        if set(labels) != wanted or len(labels) != len(wanted):
            raise OnnxImportError(
                f"{self.file}: the output '{output}' has axes {describe_axes(out.labels)}, expected "
                f"{'[batch, time, features]' if every else '[batch, features]'} (in any order)"
            )
        stages = list(self._materialize(None, content))
        if not stages:
            raise OnnxImportError(f"{self.file}: the output '{output}' is the input itself")
        input_size = stages[0].input_size
        meta = self._meta()
        try:
            model = ir.Model(input_size, stages, output="every" if every else "last", meta=meta).validate()
        except EdgepruneError as e:
            raise OnnxImportError(f"{self.file}: {e}") from None
        return model, out.labels

    def _meta(self) -> dict:
        props = {p.key: p.value for p in self.proto.metadata_props}
        meta = {}
        if "edgeprune.meta" in props:  # written by our own exporter: keeps the dataset and sequence length
            try:
                meta = dict(json.loads(props["edgeprune.meta"]))
            except (ValueError, TypeError):
                meta = {}
        meta["onnx"] = {
            "file": self.file,
            "producer": f"{self.proto.producer_name} {self.proto.producer_version}".strip(),
            "opset": self.opset,
        }
        meta["source"] = "onnx"
        return meta


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

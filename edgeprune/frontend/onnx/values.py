"""The importer's abstract values: what each tensor of the graph is known to be (a constant, a shape
computation, zeros, or data with labelled axes and known content), and readers of ONNX constants."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import ir
from ...errors import EdgepruneError


class OnnxImportError(EdgepruneError):
    pass


@dataclass
class Const:
    value: np.ndarray
    pattern: np.ndarray | None = None  # the stored entries, when the file held it as a sparse tensor


@dataclass
class ShapeVal:
    """Computed from a run-time shape (batch size, sequence length): fit only to shape a zero tensor."""


@dataclass
class Dims(ShapeVal):
    """A run-time shape whose entries are known: ints, or an axis label (``N``, ``T``, or a raw input axis
    ``x0``..``x2``) standing for that axis' run-time size. ``scalar``: a 0-d entry (``Gather`` of one index)."""

    entries: tuple = ()
    scalar: bool = False


@dataclass
class Zeros:
    """An all-zero tensor of a run-time shape (the initial states exporters build)."""

    rank: int | None = None  # when known (Expand to a shape of known length, then Slice/Squeeze/...)


@dataclass
class Refused:
    """A value that may not be used (e.g. the LSTM cell state Y_c); any consumer fails with ``reason``."""

    reason: str


@dataclass
class Unknown:
    """Output of an op the importer cannot interpret (already reported)."""


@dataclass(frozen=True, eq=False)
class Content:
    # "input"; "seq" (every step of ``stages`` applied to the input) or "last" (their value at the last
    # step). Inside a Scan body (one step): "new" (layer's h at t), "cell" (its c at t), "prev" (loop
    # variable ``var`` at t-1), "cols" (``parts`` concatenated along the features).
    source: str
    layer: int = -1
    affine: tuple | None = None  # pending (W [out, in], b [out], pattern of W or None) on the features
    var: int = -1
    parts: tuple = ()
    stages: tuple = ()  # the IR stages (in order) this per-step value has gone through
    diag: tuple | None = None  # pending elementwise (scale [C], shift [C]); never together with affine
    pad: int = 0  # zeros padded on the left of the time axis, waiting for a Conv


@dataclass
class LayerNormPart:
    """A piece of a layer norm written out as ReduceMean/Sub/Pow/Sqrt/Div over the features of ``base``:
    ``mean`` E[x], ``centered`` x-E[x], ``square`` (x-E[x])^2, ``var``, ``var+eps``, ``std``, ``rstd``."""

    kind: str
    base: Data
    eps: float = 0.0


@dataclass
class Data:
    labels: tuple[str, ...]  # N batch, T time, C features, S singleton, K stacked states, x0..x2 raw input axes
    content: Content | tuple[Content, ...]  # a tuple along the K axis


@dataclass
class ImportedLayer:
    cell: str
    input_size: int
    hidden_size: int
    weight: ir.CSR  # over [x | h | feedback]
    bias: np.ndarray | None  # None: the op has no B
    feedback_size: int = 0
    activation: str = "tanh"  # rnn: tanh or relu
    variant: dict | None = None  # ir.Recurrent's variant fields (activations, clip, peephole, ...)

    def stage(self) -> ir.Recurrent:
        return ir.Recurrent(
            self.cell,
            self.input_size,
            self.hidden_size,
            self.feedback_size,
            self.weight,
            self.bias,
            self.activation,
            **(self.variant or {}),
        )


def is_zero(v) -> bool:
    return isinstance(v, Zeros) or (isinstance(v, Const) and not np.asarray(v.value).any())


def axis_name(label: str) -> str:
    return {"N": "batch", "T": "time", "C": "feature", "S": "singleton", "K": "stacked-state"}.get(label, "input")


def describe_axes(labels) -> str:
    return "[" + ", ".join(axis_name(l) for l in labels) + "]"


def sparse_const(s) -> Const:
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


def constant_value(node) -> Const:
    from onnx import helper, numpy_helper

    a = node.attribute[0]
    if a.name == "sparse_value":
        return sparse_const(a.sparse_tensor)
    if a.name == "value":
        return Const(numpy_helper.to_array(a.t))
    v = helper.get_attribute_value(a)
    dtype = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64, "value_ints": np.int64}.get(
        a.name
    )
    if dtype is None:
        raise OnnxImportError(f"Constant '{node.name}': {a.name} constants are not supported")
    return Const(np.asarray(v, dtype))


def fill_value(node) -> float:
    from onnx import numpy_helper

    for a in node.attribute:
        if a.name == "value":
            return float(numpy_helper.to_array(a.t).reshape(-1)[0])
    return 0.0


def initializer_const(tensor, file) -> Const:
    """An initializer's value; one whose data does not match its dims (a damaged file) is one line."""
    from onnx import numpy_helper

    try:
        return Const(numpy_helper.to_array(tensor))
    except Exception:  # noqa: BLE001 - onnx raises ValueError/TypeError/... for data not matching dims
        raise OnnxImportError(
            f"{file}: initializer '{tensor.name}' is damaged (its data does not match its type and shape)"
        ) from None

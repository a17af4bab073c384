"""The ``tflite`` target: LiteRT / TensorFlow Lite flatbuffers written straight from the IR.

No TensorFlow: the files are built with ``flatbuffers`` and the LiteRT schema module
(``ai_edge_litert.schema_py_generated``, object API). Three files, each run in its own runtime by the
verification gate (see docs/tflite.md for what each is for and what was measured):

* ``model_step.tflite`` - one time step per invoke, every layer's state an explicit input and output
  (streaming). Each layer is one ``FULLY_CONNECTED`` over ``z = [x ; h ; feedback]`` with the IR's
  fused gate matrix, followed by LOGISTIC/TANH/MUL/ADD/SUB (there is no builtin GRU op, and the
  builtin LSTM/RNN ops ignore sparsity). Sparse matrices are stored as TFLite sparse tensors (CSR,
  or 1x4 blocks when the pattern is exactly 1x4-blocked; the buffer holds only the stored entries)
  and their FC is written as op version 8 - the one version the XNNPACK delegate declines, so the
  builtin sparse kernel runs it (a sparse FC of any other version is taken by XNNPACK, which reads
  the nonzero array as a dense matrix and silently computes garbage).
* ``model.tflite`` - whole sequence, unrolled over a fixed number of steps (the IR's
  ``sequence_length``), last step's logits. Same cell and weights (each weight is stored once).
* ``model_dense.tflite`` - for TensorFlow Lite Micro, which ignores sparsity (a sparse file runs and
  returns garbage): dense fp32 weights, batch 1, ``UNIDIRECTIONAL_SEQUENCE_LSTM`` for LSTM models
  without feedback, the FC-built cell otherwise.

Every file has dynamic batch except the micro one, and carries an ``edgeprune`` metadata entry
(JSON: kind, steps, inputs/outputs, per-matrix weight encodings) that the runners read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

import numpy as np

from .. import ir
from ..errors import BackendError
from ..fileio import dumps_json, write_bytes_atomic
from ..options import Option
from .base import Artifact, Backend, Runner

STEP_FILE, SEQUENCE_FILE, MICRO_FILE = "model_step.tflite", "model.tflite", "model_dense.tflite"
METADATA_NAME = "edgeprune"
FORMAT = "edgeprune.tflite"

SPARSE_FC_VERSION = 8  # XNNPACK declines exactly this version; see the module docstring
DENSE_FC_VERSION = 1
HYBRID_FC_VERSION = 9  # float input, int8 weights, asymmetric input quantization

RESOLVERS = {  # option value -> ai_edge_litert / tflite_runtime OpResolverType member
    "xnnpack": "AUTO",  # the default: builtin kernels + the XNNPACK delegate
    "builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES",  # optimized builtin kernels, no delegate
    "builtin_ref": "BUILTIN_REF",  # reference kernels
}
RUNTIME_MODULES = {"ai-edge-litert": "ai_edge_litert.interpreter", "tflite-runtime": "tflite_runtime.interpreter"}

# Int8 sparse weights exist in LiteRT only as 1x16 blocks (the hybrid kernel's "ledger" stores each
# row's block count and block column in one byte each).
INT8_BLOCK = 16
_LEDGER_LIMIT = 255

# ``auto`` stores a matrix sparse only when that at least halves its bytes: below that the sparse
# kernels are several times slower than dense ones (benchmarks/results/tflite_latency.md) for a small
# saving. It also keeps the structural zeros of the IR's GRU layout (25%) from turning a dense GRU
# into a sparse one.
AUTO_SPARSE_MAX_BYTES = 0.5

# Int8 weights (float activations): the logits move by the weight rounding and the per-step dynamic
# quantization of each FC's input, so the gate holds these files to their predictions; the error
# bound only catches garbage (the silent wrong-kernel traps are off by 10-1000s).
INT8_TOLERANCE = {"max_abs": 1.0, "min_agreement": 0.97}


# --------------------------------------------------------------------------------------------------
# The schema module and the flatbuffer writer
# --------------------------------------------------------------------------------------------------

def _schema():
    """The generated TFLite schema (object API); LiteRT's copy, else TFLite Micro's."""
    for name in ("ai_edge_litert.schema_py_generated", "tflite_micro.tensorflow.lite.micro.python.schema_py_generated"):
        try:
            return import_module(name)
        except ImportError:
            continue
    raise BackendError("the tflite target needs the LiteRT schema module: pip install ai-edge-litert flatbuffers")


def _aligned_buffer(S, payload: bytes | None):
    """A BufferT whose data starts on a 16-byte boundary (kernels may read weights with SIMD loads)."""

    class AlignedBufferT(S.BufferT):
        def Pack(self, builder):
            data = None
            if self.data is not None:
                builder.StartVector(1, len(self.data), 16)
                builder.head -= len(self.data)
                builder.Bytes[builder.head : builder.head + len(self.data)] = self.data
                builder.vectorNumElems = len(self.data)
                data = builder.EndVector()
            S.BufferStart(builder)
            if data is not None:
                S.BufferAddData(builder, data)
            return S.BufferEnd(builder)

    buffer = AlignedBufferT()
    buffer.data = payload
    return buffer


_TENSOR_TYPES = {np.dtype(np.float32): "FLOAT32", np.dtype(np.int32): "INT32", np.dtype(np.int8): "INT8"}


class _Graph:
    """One subgraph under construction, with the model's buffers and operator codes.

    Activations are [batch, ...]; with ``dynamic_batch`` their shape signature has -1 in front, so
    runtimes that resize inputs (LiteRT) accept any batch.
    """

    def __init__(self, dynamic_batch: bool):
        self.S = _schema()
        self.dynamic_batch = dynamic_batch
        self.buffers = [_aligned_buffer(self.S, None)]  # buffer 0: the empty buffer, by convention
        self.tensors: list = []
        self.shapes: list[list[int]] = []
        self.operators: list = []
        self.opcodes: list = []
        self._opcode_index: dict[tuple[int, int], int] = {}
        self._names: set[str] = set()

    def _unique(self, name: str) -> str:
        if name not in self._names:
            self._names.add(name)
            return name
        k = 1
        while f"{name}_{k}" in self._names:
            k += 1
        self._names.add(f"{name}_{k}")
        return f"{name}_{k}"

    def tensor(self, name: str, shape, dtype=np.float32, *, data: np.ndarray | None = None, batched: bool = False,
               sparsity=None, quantization=None, variable: bool = False) -> int:
        S = self.S
        t = S.TensorT()
        t.name = self._unique(name)
        t.shape = [int(d) for d in shape]
        t.type = getattr(S.TensorType, _TENSOR_TYPES[np.dtype(dtype)])
        if batched and self.dynamic_batch:
            t.shapeSignature = [-1] + t.shape[1:]
        if data is not None:
            raw = np.ascontiguousarray(data).astype(np.dtype(dtype).newbyteorder("<"), copy=False).tobytes()
            self.buffers.append(_aligned_buffer(S, raw))
            t.buffer = len(self.buffers) - 1
        t.sparsity, t.quantization, t.isVariable = sparsity, quantization, variable
        self.tensors.append(t)
        self.shapes.append(list(t.shape))
        return len(self.tensors) - 1

    def const(self, name: str, array) -> int:
        array = np.asarray(array)
        return self.tensor(name, array.shape, array.dtype, data=array)

    def activation(self, name: str, shape) -> int:
        return self.tensor(name, shape, batched=True)

    def op(self, code: str, inputs, outputs, options=None, version: int = 1) -> None:
        S = self.S
        builtin = getattr(S.BuiltinOperator, code)
        key = (builtin, version)
        if key not in self._opcode_index:
            oc = S.OperatorCodeT()
            oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = builtin, min(builtin, 127), version
            self._opcode_index[key] = len(self.opcodes)
            self.opcodes.append(oc)
        o = S.OperatorT()
        o.opcodeIndex = self._opcode_index[key]
        o.inputs, o.outputs = [int(i) for i in inputs], [int(i) for i in outputs]
        if options is not None:
            o.builtinOptionsType = getattr(S.BuiltinOptions, type(options).__name__[:-1])  # FooOptionsT -> FooOptions
            o.builtinOptions = options
        self.operators.append(o)

    def finish(self, inputs: dict[str, int], outputs: dict[str, int], metadata: dict, description: str) -> bytes:
        import flatbuffers

        S = self.S
        for name, index in {**inputs, **outputs}.items():  # runtimes list I/O by tensor name
            self.tensors[index].name = name
        sub = S.SubGraphT()
        sub.tensors, sub.operators, sub.name = self.tensors, self.operators, "main"
        sub.inputs, sub.outputs = list(inputs.values()), list(outputs.values())
        model = S.ModelT()
        model.version, model.description = 3, description
        model.operatorCodes, model.subgraphs = self.opcodes, [sub]
        meta = S.MetadataT()
        meta.name = METADATA_NAME
        self.buffers.append(_aligned_buffer(S, dumps_json(metadata).encode()))
        meta.buffer = len(self.buffers) - 1
        model.metadata, model.buffers = [meta], self.buffers
        sig = S.SignatureDefT()
        sig.signatureKey, sig.subgraphIndex = "serving_default", 0
        sig.inputs = [self._tensor_map(n, i) for n, i in inputs.items()]
        sig.outputs = [self._tensor_map(n, i) for n, i in outputs.items()]
        model.signatureDefs = [sig]
        builder = flatbuffers.Builder(1 << 16)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())

    def _tensor_map(self, name: str, index: int):
        m = self.S.TensorMapT()
        m.name, m.tensorIndex = name, index
        return m


def read_metadata(data: bytes) -> dict:
    """The ``edgeprune`` metadata of a file written by this backend ({} for foreign files)."""
    S = _schema()
    model = S.Model.GetRootAs(data, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == METADATA_NAME.encode():
            raw = model.Buffers(entry.Buffer()).DataAsNumpy()
            return json.loads(bytes(raw).decode())
    return {}


def sparse_tensors(data: bytes) -> list[str]:
    """Names of the tensors stored sparse in a .tflite file."""
    S = _schema()
    model = S.Model.GetRootAs(data, 0)
    found = []
    for s in range(model.SubgraphsLength()):
        sub = model.Subgraphs(s)
        for t in range(sub.TensorsLength()):
            tensor = sub.Tensors(t)
            if tensor.Sparsity() is not None:
                found.append(tensor.Name().decode())
    return found


def summarize(data: bytes) -> dict:
    """What a .tflite file holds: op counts by ``NAME/vVERSION``, and every constant tensor with its
    stored bytes and, if sparse, its format (``csr`` or ``block1xK``) and index vector types."""
    S = _schema()
    names = {v: k for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_")}
    index_types = {v: k for k, v in vars(S.SparseIndexVector).items() if not k.startswith("_")}
    tensor_types = {v: k for k, v in vars(S.TensorType).items() if not k.startswith("_")}
    model = S.Model.GetRootAs(data, 0)
    sub = model.Subgraphs(0)
    ops: dict[str, int] = {}
    for i in range(sub.OperatorsLength()):
        code = model.OperatorCodes(sub.Operators(i).OpcodeIndex())
        key = f"{names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]}/v{code.Version()}"
        ops[key] = ops.get(key, 0) + 1
    constants = {}
    for i in range(sub.TensorsLength()):
        t = sub.Tensors(i)
        size = model.Buffers(t.Buffer()).DataLength() if t.Buffer() else 0
        if not size:
            continue
        entry = {"type": tensor_types[t.Type()], "shape": t.ShapeAsNumpy().tolist(), "bytes": size}
        sparsity = t.Sparsity()
        if sparsity is not None:
            dims = [sparsity.DimMetadata(k) for k in range(sparsity.DimMetadataLength())]
            entry["format"] = "csr" if len(dims) == 2 else f"block1x{dims[2].DenseSize()}"
            entry["index_types"] = [index_types[dims[1].ArraySegmentsType()], index_types[dims[1].ArrayIndicesType()]]
        constants[t.Name().decode()] = entry
    return {"ops": dict(sorted(ops.items())), "constants": constants, "bytes": len(data)}


def check_micro_compatible(data: bytes, what: str) -> None:
    """Refuse a file with sparse weights for TFLite Micro (it ignores sparsity and computes garbage)."""
    sparse = sparse_tensors(data)
    if sparse:
        raise BackendError(f"{what} stores sparse weights ({sparse[0]}{', ...' if len(sparse) > 1 else ''}); "
                           f"TFLite Micro ignores sparsity and would compute garbage: use {MICRO_FILE}")


# --------------------------------------------------------------------------------------------------
# Weights: how each matrix is stored
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Layout:
    """The FC's input columns: the parts of z = [x ; h ; feedback], each padded to ``align`` columns.

    Block encodings need each part to start on a block boundary; the graph pads the parts with PAD
    ops (zeros), which the weights never read.
    """

    widths: tuple[int, ...]
    align: int = 1

    @property
    def padded(self) -> tuple[int, ...]:
        return tuple(-(-w // self.align) * self.align for w in self.widths)

    @property
    def cols(self) -> int:
        return sum(self.padded)

    def remap(self, columns: np.ndarray) -> np.ndarray:
        logical = np.cumsum((0,) + self.widths)
        padded = np.cumsum((0,) + self.padded)
        part = np.searchsorted(logical[1:], columns, side="right")
        return (columns - logical[part] + padded[part]).astype(np.int64)


def _narrowest(values: np.ndarray) -> np.dtype:
    top = int(values.max()) if values.size else 0
    return np.dtype(np.uint8) if top <= 0xFF else np.dtype(np.uint16) if top <= 0xFFFF else np.dtype(np.int32)


@dataclass
class _Weight:
    """One FC weight as it goes into the file."""

    name: str
    rows: int
    layout: _Layout
    dtype: str  # "f32" | "int8"
    encoding: str  # "dense" | "csr" | "block1x4" | "block1x16"
    values: np.ndarray  # the buffer: dense [rows, cols], or the stored entries / blocks (flat)
    nnz: int  # entries of the mask
    segments: np.ndarray | None = None  # per row: start of its stored entries (blocks), like indptr
    indices: np.ndarray | None = None  # column (block column) of each stored entry (block)
    scales: np.ndarray | None = None  # int8: per-row (output channel) scale
    densify: bool = False  # sparse storage, densified once at load by a DENSIFY op
    note: str = ""

    @property
    def sparse(self) -> bool:
        return self.encoding != "dense"

    @property
    def block(self) -> int:
        return {"csr": 1, "block1x4": 4, "block1x16": 16}.get(self.encoding, 1)

    @property
    def fc_version(self) -> int:
        if self.sparse and not self.densify:
            return SPARSE_FC_VERSION
        return HYBRID_FC_VERSION if self.dtype == "int8" else DENSE_FC_VERSION

    def stored_bytes(self) -> int:
        n = self.values.nbytes
        if self.sparse:
            n += self.segments.size * _narrowest(self.segments).itemsize
            n += self.indices.size * _narrowest(self.indices).itemsize
        return n

    def info(self) -> dict:
        d = {"encoding": self.encoding, "dtype": self.dtype, "shape": [self.rows, self.layout.cols], "nnz": self.nnz,
             "stored_values": int(self.values.size), "bytes": self.stored_bytes(), "fc_version": self.fc_version}
        if self.sparse:
            d["index_types"] = [_narrowest(self.segments).name, _narrowest(self.indices).name]
            d["fill"] = round(self.nnz / self.values.size, 4) if self.values.size else 1.0
        if self.densify:
            d["densify"] = True
        if self.layout.align > 1 and self.layout.padded != self.layout.widths:
            d["padded_columns"] = list(self.layout.padded)
        if self.note:
            d["note"] = self.note
        return d


def _blocked(m: ir.CSR, layout: _Layout, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Row-wise 1 x ``width`` blocks of ``m`` in ``layout``: (segments, block columns, block rows, values)."""
    rows = m.shape[0]
    row_of = np.repeat(np.arange(rows), np.diff(m.indptr))
    cols = layout.remap(m.indices)
    n_block_cols = layout.cols // width
    keys = row_of * n_block_cols + cols // width
    unique, slot = np.unique(keys, return_inverse=True)  # sorted: by row, then block column
    values = np.zeros((unique.size, width), np.float32)
    values[slot, cols % width] = m.data
    block_rows = unique // n_block_cols
    segments = np.zeros(rows + 1, np.int64)
    np.cumsum(np.bincount(block_rows, minlength=rows), out=segments[1:])
    return segments, unique % n_block_cols, block_rows, values


def _worth_it(sparse: _Weight, dense: _Weight) -> bool:
    return sparse.stored_bytes() <= AUTO_SPARSE_MAX_BYTES * dense.stored_bytes()


def _quantize_rows(values: np.ndarray, scales: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values / scales), -127, 127).astype(np.int8)


def encode_weight(name: str, m: ir.CSR, parts: tuple[int, ...], dtype: str = "f32", mode: str = "auto") -> _Weight:
    """Choose how matrix ``m`` (columns = ``parts`` concatenated) is stored.

    ``mode``: ``auto`` stores it sparse where that takes at most half the bytes of dense, ``sparse`` always,
    ``densify`` sparse storage expanded once at load (dense kernel, XNNPACK), ``dense`` never.
    fp32 sparse is 1x4 blocks when every stored block is full, CSR otherwise; int8 sparse is 1x16
    blocks (the only int8 sparse format LiteRT has), zero-filled where the mask is not block-shaped.
    """
    rows, _ = m.shape
    plain = _Layout(tuple(parts))
    dense_values = m.to_dense()
    if dtype == "int8":
        if mode == "densify":
            raise BackendError("--tflite-weights densify is for --dtype f32 (int8 weights are dense or 1x16 blocks)")
        top = np.zeros(rows, np.float32)
        np.maximum.at(top, np.repeat(np.arange(rows), np.diff(m.indptr)), np.abs(m.data))
        scales = np.where(top > 0, top / 127.0, 1.0).astype(np.float32)
        dense = _Weight(name, rows, plain, "int8", "dense", _quantize_rows(dense_values, scales[:, None]), m.nnz,
                        scales=scales)
        if mode == "dense" or m.nnz == 0:
            return dense
        layout = _Layout(tuple(parts), INT8_BLOCK)
        segments, block_cols, block_rows, values = _blocked(m, layout, INT8_BLOCK)
        if layout.cols // INT8_BLOCK > _LEDGER_LIMIT + 1 or np.diff(segments).max(initial=0) > _LEDGER_LIMIT:
            dense.note = "int8 sparse kernel limited to 4096 columns / 255 blocks per row: stored dense"
            return dense
        sparse = _Weight(name, rows, layout, "int8", "block1x16",
                         _quantize_rows(values, scales[block_rows][:, None]).ravel(), m.nnz, segments, block_cols,
                         scales=scales)
        return sparse if mode == "sparse" or _worth_it(sparse, dense) else dense
    dense = _Weight(name, rows, plain, "f32", "dense", dense_values.astype(np.float32), m.nnz)
    if mode == "dense" or m.nnz == 0:
        return dense
    layout4 = _Layout(tuple(parts), 4)
    segments, block_cols, block_rows, values = _blocked(m, layout4, 4)
    if values.size == m.nnz:  # every stored 1x4 block is full: the 1x4 kernel
        sparse = _Weight(name, rows, layout4, "f32", "block1x4", values.ravel(), m.nnz, segments, block_cols)
    else:
        sparse = _Weight(name, rows, plain, "f32", "csr", m.data.astype(np.float32), m.nnz,
                         m.indptr.astype(np.int64), m.indices.astype(np.int64))
    smaller = sparse.stored_bytes() < dense.stored_bytes()
    if (mode == "auto" and not _worth_it(sparse, dense)) or (mode == "densify" and not smaller):
        return dense
    sparse.densify = mode == "densify"
    return sparse


# --------------------------------------------------------------------------------------------------
# Graphs: the cell, the step model, the unrolled sequence model, the micro model
# --------------------------------------------------------------------------------------------------

@dataclass
class _Prepared:
    """A layer's matrix and bias in the row order the graph uses, with its stored weight."""

    weight: _Weight
    bias: np.ndarray


def _emitted_rows(layer: ir.Layer) -> np.ndarray:
    """Row order of the emitted matrix: the cell table's ``tflite_rows`` (LSTM [i, f, o, g], so one
    LOGISTIC covers i, f, o)."""
    spec = ir.cell_spec(layer.cell)
    return ir.cells.block_rows(ir.cells.block_order(spec.ir_rows, spec.tflite_rows), layer.hidden_size)


def prepare(model: ir.Model, dtype: str, mode: str) -> tuple[list[_Prepared], _Prepared]:
    layers = []
    for l, layer in enumerate(model.layers):
        order = _emitted_rows(layer)
        m = ir.CSR.from_scipy(layer.weight.to_scipy()[order])
        parts = tuple(p for p in (layer.input_size, layer.hidden_size, layer.feedback_size) if p)
        layers.append(_Prepared(encode_weight(f"layers.{l}.weight", m, parts, dtype, mode), layer.bias[order]))
    head = _Prepared(encode_weight("head.weight", model.head.weight, (model.head.weight.shape[1],), dtype, mode),
                     model.head.bias)
    return layers, head


class _Writer:
    """Emits the ops of a model into a ``_Graph``; weights are created once and shared by every step."""

    def __init__(self, graph: _Graph):
        self.g = graph
        self.S = graph.S
        self._weights: dict[str, tuple[int, int]] = {}
        self._consts: dict[tuple, int] = {}

    # ---- small helpers ----
    def _int_const(self, name: str, values) -> int:
        key = (name, tuple(np.ravel(values).tolist()), np.shape(values))
        if key not in self._consts:
            self._consts[key] = self.g.const(name, np.asarray(values, np.int32))
        return self._consts[key]

    def _same(self, name: str, like: int) -> int:
        return self.g.activation(name, self.g.shapes[like])

    def unary(self, code: str, x: int, name: str) -> int:
        out = self._same(name, x)
        self.g.op(code, [x], [out])
        return out

    def binary(self, code: str, a: int, b: int, name: str) -> int:
        out = self._same(name, a)
        options = {"ADD": self.S.AddOptionsT, "MUL": self.S.MulOptionsT, "SUB": self.S.SubOptionsT}[code]()
        self.g.op(code, [a, b], [out], options)
        return out

    def split(self, x: int, sizes: list[int], name: str) -> list[int]:
        """Split the last axis of a [batch, n] tensor."""
        batch = self.g.shapes[x][0]
        outs = [self.g.activation(f"{name}{k}", [batch, s]) for k, s in enumerate(sizes)]
        axis = self._int_const("axis1", np.int32(1))
        if len(set(sizes)) == 1:
            opts = self.S.SplitOptionsT()
            opts.numSplits = len(sizes)
            self.g.op("SPLIT", [axis, x], outs, opts)
        else:
            opts = self.S.SplitVOptionsT()
            opts.numSplits = len(sizes)
            self.g.op("SPLIT_V", [x, self._int_const("split_sizes", sizes), axis], outs, opts)
        return outs

    def concat(self, parts: list[int], name: str) -> int:
        if len(parts) == 1:
            return parts[0]
        batch = self.g.shapes[parts[0]][0]
        out = self.g.activation(name, [batch, sum(self.g.shapes[p][1] for p in parts)])
        opts = self.S.ConcatenationOptionsT()
        opts.axis = 1
        self.g.op("CONCATENATION", parts, [out], opts)
        return out

    def pad(self, x: int, right: int, name: str) -> int:
        """Zeros appended on the right of a [batch, n] tensor."""
        if right == 0:
            return x
        batch, n = self.g.shapes[x]
        out = self.g.activation(name, [batch, n + right])
        self.g.op("PAD", [x, self._int_const("pad", [[0, 0], [0, right]])], [out], self.S.PadOptionsT())
        return out

    # ---- weights and the fully connected layer ----
    def _filter(self, w: _Weight) -> int:
        S, g = self.S, self.g
        shape = [w.rows, w.layout.cols]
        np_type = np.int8 if w.dtype == "int8" else np.float32
        quant = None
        if w.scales is not None:
            quant = S.QuantizationParametersT()
            quant.scale = [float(s) for s in w.scales]
            quant.zeroPoint = [0] * w.rows
            quant.quantizedDimension = 0
        if not w.sparse:
            return g.tensor(w.name, shape, np_type, data=w.values, quantization=quant)
        sparsity = S.SparsityParametersT()
        dims = [self._dim_dense(w.rows), self._dim_csr(w.segments, w.indices)]
        if w.block > 1:
            dims.append(self._dim_dense(w.block))
            sparsity.traversalOrder, sparsity.blockMap = [0, 1, 2], [1]
        else:
            sparsity.traversalOrder = [0, 1]
        sparsity.dimMetadata = dims
        stored = g.tensor(w.name + ("/sparse" if w.densify else ""), shape, np_type, data=w.values,
                          sparsity=sparsity, quantization=quant)
        if not w.densify:
            return stored
        dense = g.tensor(w.name, shape, np_type)
        g.op("DENSIFY", [stored], [dense], self.S.DensifyOptionsT())
        return dense

    def _dim_dense(self, size: int):
        d = self.S.DimensionMetadataT()
        d.format, d.denseSize = self.S.DimensionType.DENSE, int(size)
        return d

    def _dim_csr(self, segments: np.ndarray, indices: np.ndarray):
        d = self.S.DimensionMetadataT()
        d.format = self.S.DimensionType.SPARSE_CSR
        d.arraySegmentsType, d.arraySegments = self._index_vector(segments)
        d.arrayIndicesType, d.arrayIndices = self._index_vector(indices)
        return d

    def _index_vector(self, values: np.ndarray):
        """The narrowest index vector that holds ``values`` (Uint8, Uint16 or Int32)."""
        S, dtype = self.S, _narrowest(values)
        kind = {"uint8": "Uint8Vector", "uint16": "Uint16Vector", "int32": "Int32Vector"}[dtype.name]
        vector = getattr(S, kind + "T")()
        vector.values = np.asarray(values).astype(dtype)
        return getattr(S.SparseIndexVector, kind), vector

    def fully_connected(self, x: int, prepared: _Prepared, name: str) -> int:
        """x [batch, n] -> [batch, rows]; ``x`` is padded to the weight's column layout if needed."""
        w = prepared.weight
        x = self.pad(x, w.layout.cols - self.g.shapes[x][1], f"{name}/in")
        # FC takes batch = x.size / cols, so a width mismatch would be silently "valid": refuse it here.
        assert self.g.shapes[x][1] == w.layout.cols, (name, self.g.shapes[x], w.layout.cols)
        if w.name not in self._weights:
            bias = self.g.const(w.name.replace("weight", "bias"), prepared.bias.astype(np.float32))
            self._weights[w.name] = (self._filter(w), bias)
        filt, bias = self._weights[w.name]
        out = self.g.activation(name, [self.g.shapes[x][0], w.rows])
        opts = self.S.FullyConnectedOptionsT()
        opts.asymmetricQuantizeInputs = w.dtype == "int8"
        self.g.op("FULLY_CONNECTED", [x, filt, bias], [out], opts, w.fc_version)
        return out

    # ---- one step of one layer ----
    def layer_step(self, layer: ir.Layer, prepared: _Prepared, x: int, state: tuple[int, ...] | None,
                   feedback: int | None, tag: str) -> tuple[int, ...]:
        """New state of ``layer``; ``state``/``feedback`` None mean zeros (the first step)."""
        H, layout = layer.hidden_size, prepared.weight.layout
        if state is None and feedback is None:  # z = [x ; 0 ; 0]: one PAD, no concatenation
            z = self.pad(x, layout.cols - layer.input_size, f"{tag}/z")
        else:
            pieces = [x, state[0]] + ([feedback] if layer.feedback_size else [])
            padded = [self.pad(t, full - width, f"{tag}/z{k}")
                      for k, (t, width, full) in enumerate(zip(pieces, layout.widths, layout.padded))]
            z = self.concat(padded, f"{tag}/z")
        pre = self.fully_connected(z, prepared, f"{tag}/pre")
        if layer.cell == "rnn":
            return (self.unary("TANH", pre, f"{tag}/h"),)
        if layer.cell == "lstm":  # rows [i, f, o, g]
            sig_in, g_in = self.split(pre, [3 * H, H], f"{tag}/gates")
            i, f, o = self.split(self.unary("LOGISTIC", sig_in, f"{tag}/sigmoid"), [H, H, H], f"{tag}/ifo")
            ig = self.binary("MUL", i, self.unary("TANH", g_in, f"{tag}/g"), f"{tag}/ig")
            c = ig if state is None else self.binary("ADD", self.binary("MUL", f, state[1], f"{tag}/fc"), ig,
                                                     f"{tag}/c")
            h = self.binary("MUL", o, self.unary("TANH", c, f"{tag}/tanh_c"), f"{tag}/h")
            return (h, c)
        # gru, rows [r, z, n_x, n_h]: n = tanh(n_x + r n_h); h = n + z (h_prev - n)
        rz_in, nx, nh = self.split(pre, [2 * H, H, H], f"{tag}/gates")
        r, zg = self.split(self.unary("LOGISTIC", rz_in, f"{tag}/sigmoid"), [H, H], f"{tag}/rz")
        n = self.unary("TANH", self.binary("ADD", nx, self.binary("MUL", r, nh, f"{tag}/rnh"), f"{tag}/n_in"),
                       f"{tag}/n")
        if state is None:
            h = self.binary("SUB", n, self.binary("MUL", zg, n, f"{tag}/zn"), f"{tag}/h")
        else:
            h = self.binary("ADD", n, self.binary("MUL", zg, self.binary("SUB", state[0], n, f"{tag}/hn"),
                                                  f"{tag}/zhn"), f"{tag}/h")
        return (h,)

    def all_layers_step(self, model: ir.Model, prepared: list[_Prepared], x: int, states, tag: str):
        """One step of every layer; ``states`` None = zeros. Feedback reads the next layer's old state."""
        new = []
        inp = x
        for l, layer in enumerate(model.layers):
            old = states[l] if states is not None else None
            fb = states[l + 1][0] if layer.feedback_size and states is not None else None
            s = self.layer_step(layer, prepared[l], inp, old, fb, f"{tag}l{l}")
            new.append(s)
            inp = s[0]
        return new


def _state_names(model: ir.Model) -> list[list[str]]:
    return [[f"{state}{l}" for state in ir.cell_spec(layer.cell).states] for l, layer in enumerate(model.layers)]


def _metadata(kind: str, model: ir.Model, steps: int | None, batch, inputs, outputs, weights, dtype: str) -> dict:
    return {"format": FORMAT, "version": 1, "kind": kind, "steps": steps, "batch": batch, "dtype": dtype,
            "cell": model.layers[0].cell if model.layers else None, "inputs": list(inputs), "outputs": list(outputs),
            "state": _state_names(model) if kind == "step" else [], "weights": weights}


def build_step_model(model: ir.Model, dtype: str = "f32", mode: str = "auto") -> bytes:
    """model_step.tflite: inputs x [N, F] and each layer's state; outputs logits and the new states."""
    prepared, head = prepare(model, dtype, mode)
    g = _Graph(dynamic_batch=True)
    w = _Writer(g)
    x = g.activation("x", [1, model.input_size])
    inputs, states = {"x": x}, []
    for names, layer in zip(_state_names(model), model.layers):
        layer_state = tuple(g.activation(n, [1, layer.hidden_size]) for n in names)
        inputs.update(zip(names, layer_state))
        states.append(layer_state)
    new = w.all_layers_step(model, prepared, x, states, "")
    logits = w.fully_connected(new[-1][0], head, "logits")
    outputs = {"logits": logits}
    for names, layer_state in zip(_state_names(model), new):
        outputs.update({f"{n}_next": t for n, t in zip(names, layer_state)})
    weights = {p.weight.name: p.weight.info() for p in prepared + [head]}
    meta = _metadata("step", model, None, "dynamic", inputs, outputs, weights, dtype)
    return g.finish(inputs, outputs, meta, f"edgeprune {model.describe()}: one step per invoke")


def _unpack_steps(w: _Writer, x: int, steps: int, features: int) -> list[int]:
    g = w.g
    batch = g.shapes[x][0]
    outs = [g.activation(f"x_t{t}", [batch, features]) for t in range(steps)]
    opts = w.S.UnpackOptionsT()
    opts.num, opts.axis = steps, 1
    g.op("UNPACK", [x], outs, opts)
    return outs


def build_sequence_model(model: ir.Model, steps: int, dtype: str = "f32", mode: str = "auto",
                         dynamic_batch: bool = True, kind: str = "sequence") -> bytes:
    """model.tflite: x [N, T, F] -> logits of the last step [N, C], unrolled over T steps."""
    prepared, head = prepare(model, dtype, mode)
    g = _Graph(dynamic_batch=dynamic_batch)
    w = _Writer(g)
    x = g.activation("x", [1, steps, model.input_size])
    states = None
    for t, x_t in enumerate(_unpack_steps(w, x, steps, model.input_size)):
        states = w.all_layers_step(model, prepared, x_t, states, f"t{t}/")
    logits = w.fully_connected(states[-1][0], head, "logits")
    weights = {p.weight.name: p.weight.info() for p in prepared + [head]}
    meta = _metadata(kind, model, steps, "dynamic" if dynamic_batch else 1, ["x"], ["logits"], weights, dtype)
    meta["cell_ops"] = "fully_connected"
    return g.finish({"x": x}, {"logits": logits}, meta,
                    f"edgeprune {model.describe()}: whole sequence of {steps} steps (unrolled)")


def build_linear_model(m: ir.CSR, dtype: str = "f32", mode: str = "auto", fc_version: int | None = None) -> bytes:
    """One FULLY_CONNECTED, y [N, rows] = x [N, cols] W^T, stored as ``mode`` picks: for measuring
    kernels. ``fc_version`` overrides the op version (e.g. to reproduce the XNNPACK trap)."""
    weight = encode_weight("weight", m, (m.shape[1],), dtype, mode)
    if fc_version is not None:
        weight = _VersionedWeight(**vars(weight), forced_version=fc_version)
    g = _Graph(dynamic_batch=True)
    w = _Writer(g)
    x = g.activation("x", [1, m.shape[1]])
    y = w.fully_connected(x, _Prepared(weight, np.zeros(m.shape[0], np.float32)), "y")
    meta = _metadata("linear", ir.Model(m.shape[1], [], ir.Head(m, np.zeros(m.shape[0], np.float32))), None,
                     "dynamic", ["x"], ["y"], {"weight": weight.info()}, dtype)
    return g.finish({"x": x}, {"y": y}, meta, "edgeprune: one fully connected layer")


@dataclass
class _VersionedWeight(_Weight):
    forced_version: int = DENSE_FC_VERSION

    @property
    def fc_version(self) -> int:
        return self.forced_version


def micro_uses_sequence_lstm(model: ir.Model) -> bool:
    """UNIDIRECTIONAL_SEQUENCE_LSTM fits LSTM layers without feedback (feedback crosses layers per step)."""
    return all(layer.cell == "lstm" for layer in model.layers) and not model.feedback


def build_micro_model(model: ir.Model, steps: int) -> bytes:
    """model_dense.tflite for TFLite Micro: dense fp32, batch 1, x [1, T, F] -> logits [1, C]."""
    if not micro_uses_sequence_lstm(model):
        return build_sequence_model(model, steps, "f32", "dense", dynamic_batch=False, kind="micro")
    S = _schema()
    g = _Graph(dynamic_batch=False)
    w = _Writer(g)
    x = g.activation("x", [1, steps, model.input_size])
    inp, weights = x, {}
    for l, layer in enumerate(model.layers):
        H, I = layer.hidden_size, layer.input_size
        dense = layer.weight.to_dense()
        cols = layer.column_slices()
        order = ir.cell_spec("lstm").torch_gates  # the op's gate inputs are i, f, c(=g), o: torch's order
        gates = [dense[layer.gate_rows(k)] for k in order]
        tensors = [inp]
        tensors += [g.const(f"layers.{l}.weight_x.{k}", m[:, cols["input"]]) for k, m in zip(order, gates)]
        tensors += [g.const(f"layers.{l}.weight_h.{k}", m[:, cols["state"]]) for k, m in zip(order, gates)]
        tensors += [-1, -1, -1]  # no peepholes
        tensors += [g.const(f"layers.{l}.bias.{k}", layer.bias[layer.gate_rows(k)]) for k in order]
        tensors += [-1, -1]  # no projection
        # The state lives in variable tensors: it persists across invokes until the interpreter resets them.
        tensors += [g.tensor(f"layers.{l}.h", [1, H], variable=True), g.tensor(f"layers.{l}.c", [1, H], variable=True)]
        tensors += [-1, -1, -1, -1]  # no layer normalisation
        out = g.activation(f"layers.{l}.out", [1, steps, H])
        opts = S.UnidirectionalSequenceLSTMOptionsT()
        opts.fusedActivationFunction, opts.timeMajor = S.ActivationFunctionType.TANH, False
        g.op("UNIDIRECTIONAL_SEQUENCE_LSTM", tensors, [out], opts)
        weights[f"layers.{l}.weight"] = {"encoding": "dense", "dtype": "f32", "nnz": layer.weight.nnz,
                                         "stored_values": 4 * H * (I + H), "op": "UNIDIRECTIONAL_SEQUENCE_LSTM"}
        inp = out
    H = model.layers[-1].hidden_size
    last = g.activation("last", [1, H])
    opts = S.StridedSliceOptionsT()
    opts.shrinkAxisMask = 2  # drop the time axis
    g.op("STRIDED_SLICE", [inp, w._int_const("begin", [0, steps - 1, 0]), w._int_const("end", [1, steps, H]),
                           w._int_const("strides", [1, 1, 1])], [last], opts)
    head = _Prepared(encode_weight("head.weight", model.head.weight, (H,), "f32", "dense"), model.head.bias)
    logits = w.fully_connected(last, head, "logits")
    weights["head.weight"] = head.weight.info()
    meta = _metadata("micro", model, steps, 1, ["x"], ["logits"], weights, "f32")
    meta["cell_ops"] = "unidirectional_sequence_lstm"
    return g.finish({"x": x}, {"logits": logits}, meta,
                    f"edgeprune {model.describe()}: TFLite Micro, dense, {steps} steps")


# --------------------------------------------------------------------------------------------------
# Runners
# --------------------------------------------------------------------------------------------------

def interpreter_module(runtime: str = "auto"):
    """(package name, interpreter module) for ``auto``, ``ai-edge-litert`` or ``tflite-runtime``."""
    names = list(RUNTIME_MODULES) if runtime == "auto" else [runtime]
    problems = []
    for name in names:
        try:
            return name, import_module(RUNTIME_MODULES[name])
        except Exception as e:  # tflite-runtime built for numpy 1 fails here under numpy 2
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            problems.append(f"{name} ({first})")
    raise BackendError(f"no usable LiteRT interpreter: {'; '.join(problems)}; pip install ai-edge-litert")


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def litert_label(runtime: str, resolver: str) -> str:
    """E.g. 'ai-edge-litert 2.3.0 (xnnpack)': the package that will run the files, and its kernels."""
    if runtime == "auto":
        runtime = next((n for n, m in RUNTIME_MODULES.items() if _importable(m)), "ai-edge-litert")
    return f"{runtime} {_package_version(runtime)} ({resolver})"


class LiteRTRunner(Runner):
    """Runs a file written by this backend in LiteRT (or tflite-runtime), one thread.

    A step file streams (``reset``/``step`` keep the state between calls; ``run`` steps through whole
    sequences); a sequence file runs whole sequences of its fixed length.
    """

    def __init__(self, path: str | Path, resolver: str = "xnnpack", runtime: str = "auto"):
        path = Path(path)
        data = path.read_bytes()
        self.name, self.meta = path.name, read_metadata(data)
        if self.meta.get("format") != FORMAT:
            raise BackendError(f"{path}: not a .tflite file written by edgeprune (no {METADATA_NAME} metadata)")
        self.package, api = interpreter_module(runtime)
        self.resolver = resolver
        self._data = data  # the interpreter reads the model from this buffer
        try:
            self.interpreter = api.Interpreter(model_content=data, num_threads=1,
                                               experimental_op_resolver_type=api.OpResolverType[RESOLVERS[resolver]])
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise BackendError(f"{path.name}: {self.package} cannot load it ({reason})") from None
        self.inputs = {d["name"]: d["index"] for d in self.interpreter.get_input_details()}
        self.outputs = {d["name"]: d["index"] for d in self.interpreter.get_output_details()}
        self.batch = 1
        self.state: dict[str, np.ndarray] = {}

    @property
    def runtime_label(self) -> str:
        return litert_label(self.package, self.resolver)

    def op_names(self) -> list[str]:
        """The interpreter's nodes by op name; XNNPACK partitions show up as DELEGATE (diagnostics)."""
        return [d["op_name"] for d in self.interpreter._get_ops_details()]  # no public API for this

    def delegated_weights(self) -> dict[str, bool]:
        """Per FULLY_CONNECTED weight: does a delegate (XNNPACK) run it, or the builtin kernel?

        A delegate node takes the constant weights of the nodes it replaced as inputs, so an FC is
        delegated iff its weight (or, behind a DENSIFY, the stored sparse weight) feeds a DELEGATE.
        """
        ops = self.interpreter._get_ops_details()
        delegate_inputs = {int(i) for d in ops if d["op_name"] == "DELEGATE" for i in d["inputs"]}
        producer = {int(o): d for d in ops if d["op_name"] != "DELEGATE" for o in d["outputs"]}
        names = {d["index"]: d["name"] for d in self.interpreter.get_tensor_details()}
        out = {}
        for d in ops:
            if d["op_name"] != "FULLY_CONNECTED":
                continue
            weight = int(d["inputs"][1])
            stored = [weight] + ([int(i) for i in producer[weight]["inputs"]]
                                 if weight in producer and producer[weight]["op_name"] == "DENSIFY" else [])
            out[names[stored[-1]]] = any(s in delegate_inputs for s in stored)
        return out

    def _resize(self, batch: int) -> None:
        if batch == self.batch:
            return
        if self.meta.get("batch") != "dynamic":
            raise BackendError(f"{self.name} has a fixed batch of {self.meta.get('batch')}, got {batch}")
        for d in self.interpreter.get_input_details():
            self.interpreter.resize_tensor_input(d["index"], [batch] + list(d["shape"][1:]))
        self.interpreter.allocate_tensors()
        self.batch = batch

    def run(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        if self.meta["kind"] not in ("step", "sequence", "micro"):
            raise BackendError(f"{self.name} is a {self.meta['kind']} model, not a sequence classifier")
        if self.meta["kind"] == "step":
            self.reset(len(X))
            logits = None
            for t in range(X.shape[1]):
                logits = self.step(X[:, t])
            return logits
        steps = self.meta["steps"]
        if X.ndim != 3 or X.shape[1] != steps:
            raise BackendError(f"{self.name} is unrolled over {steps} steps but got input of shape {list(X.shape)}; "
                               f"use {STEP_FILE} for other lengths or recompile with --tflite-steps")
        self._resize(len(X))
        self.interpreter.set_tensor(self.inputs["x"], X)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.outputs["logits"])

    def reset(self, batch: int = 1) -> None:
        if self.meta["kind"] != "step":
            raise NotImplementedError(f"{self.name} runs whole sequences; {STEP_FILE} streams")
        self._resize(batch)
        widths = {d["name"]: int(d["shape"][-1]) for d in self.interpreter.get_input_details()}
        self.state = {n: np.zeros((batch, widths[n]), np.float32) for names in self.meta["state"] for n in names}

    def step(self, x_t: np.ndarray) -> np.ndarray:
        x_t = np.ascontiguousarray(x_t, dtype=np.float32)
        if not self.state or len(x_t) != self.batch:
            self.reset(len(x_t))
        it = self.interpreter
        it.set_tensor(self.inputs["x"], x_t)
        for n, value in self.state.items():
            it.set_tensor(self.inputs[n], value)
        it.invoke()
        for n in self.state:
            self.state[n] = it.get_tensor(self.outputs[f"{n}_next"])
        return it.get_tensor(self.outputs["logits"])


class MicroRunner(Runner):
    """Runs ``model_dense.tflite`` in TFLite Micro, one sequence (batch 1) per invoke."""

    def __init__(self, path: str | Path):
        from tflite_micro.python.tflite_micro import runtime

        path = Path(path)
        data = path.read_bytes()
        check_micro_compatible(data, path.name)
        self.name, self.meta = path.name, read_metadata(data)
        # The arena holds activations and the LSTM state; weights stay in the flatbuffer.
        self.interpreter = runtime.Interpreter.from_bytes(data, arena_size=4 * len(data) + (1 << 20))

    def run(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        steps = self.meta.get("steps")
        if X.ndim != 3 or (steps and X.shape[1] != steps):
            raise BackendError(f"{self.name} is unrolled over {steps} steps but got input of shape {list(X.shape)}")
        out = []
        for sample in X:
            self.interpreter.reset()  # zero the LSTM state variables: each sequence starts fresh
            self.interpreter.set_input(sample[None], 0)
            self.interpreter.invoke()
            out.append(np.array(self.interpreter.get_output(0))[0])
        return np.stack(out) if out else np.zeros((0, 0), np.float32)


# --------------------------------------------------------------------------------------------------
# The backend
# --------------------------------------------------------------------------------------------------

def _importable(name: str) -> bool:
    try:
        import_module(name)
        return True
    except Exception:
        return False


class TFLiteBackend(Backend):
    name = "tflite"
    help = "LiteRT/TFLite flatbuffers: sparse FC step + unrolled sequence models, a dense TFLite Micro model"
    options = (
        Option("dtype", "f32", "weights of the LiteRT files: f32, or int8 (symmetric per-channel, float "
               "activations; sparse only as 1x16 blocks)", choices=("f32", "int8")),
        Option("tflite_weights", "auto", "auto = sparse where that halves the bytes, else dense; sparse; "
               "densify = sparse storage expanded once at load (dense kernels, XNNPACK); dense",
               choices=("auto", "sparse", "densify", "dense")),
        Option("micro", "dense", "model_dense.tflite for TFLite Micro: dense, or off (TFLite Micro ignores "
               "sparsity, so sparse is refused)", choices=("dense", "off", "sparse")),
        Option("tflite_steps", 0, "steps unrolled in model.tflite and model_dense.tflite "
               "(0 = the model's sequence_length)", type=int),
        Option("litert_resolver", "xnnpack", "LiteRT kernels the verification gate uses: xnnpack (the "
               "default), builtin (no delegate) or builtin_ref", choices=tuple(RESOLVERS)),
        Option("litert_runtime", "auto", "Python package running the LiteRT files",
               choices=("auto",) + tuple(RUNTIME_MODULES)),
    )

    def unavailable(self) -> str | None:
        if not _importable("flatbuffers"):
            return "needs flatbuffers (pip install flatbuffers ai-edge-litert)"
        if not (_importable("ai_edge_litert.interpreter") or _importable("tflite_runtime.interpreter")):
            return "needs a LiteRT interpreter (pip install ai-edge-litert)"
        return None

    def _steps(self, model: ir.Model, options: dict) -> int:
        steps = options.get("tflite_steps") or model.meta.get("sequence_length")
        if not steps:
            raise BackendError("model.tflite is unrolled over a fixed number of steps and the model records no "
                               "sequence_length: pass --tflite-steps N")
        if int(steps) < 1:
            raise BackendError(f"--tflite-steps must be >= 1, got {steps}")
        return int(steps)

    def emit(self, model: ir.Model, out_dir: Path, options: dict) -> list[Artifact]:
        dtype, mode = options.get("dtype", "f32"), options.get("tflite_weights", "auto")
        micro = options.get("micro", "dense")
        if micro == "sparse":
            raise BackendError("--micro sparse: TFLite Micro ignores sparse weights and computes garbage with them; "
                               "its file is always dense (--micro dense), sparse files are for LiteRT")
        steps = self._steps(model, options)
        runtime = litert_label(options.get("litert_runtime", "auto"), options.get("litert_resolver", "xnnpack"))
        tolerance = INT8_TOLERANCE if dtype == "int8" else None
        artifacts = []
        for name, data, modes in ((STEP_FILE, build_step_model(model, dtype, mode), ("step",)),
                                  (SEQUENCE_FILE, build_sequence_model(model, steps, dtype, mode), ("sequence",))):
            write_bytes_atomic(out_dir / name, data)
            meta = read_metadata(data)
            artifacts.append(Artifact(name, self.name, runtime, modes, [name],
                                      {"dtype": dtype, "weights": meta["weights"], "steps": meta["steps"],
                                       "batch": "dynamic", "sparse_tensors": len(sparse_tensors(data))},
                                      tolerance=tolerance))
        if micro == "dense":
            data = build_micro_model(model, steps)
            write_bytes_atomic(out_dir / MICRO_FILE, data)
            has_runtime = _importable("tflite_micro.python.tflite_micro.runtime")
            info = {"dtype": "f32", "steps": steps, "batch": 1, "weights": read_metadata(data)["weights"],
                    "cell_ops": read_metadata(data)["cell_ops"]}
            if not has_runtime:
                info["note"] = "tflite-micro is not installed: not run"
            artifacts.append(Artifact(MICRO_FILE, self.name, f"tflite-micro {_package_version('tflite-micro')}",
                                      ("sequence",), [MICRO_FILE], info, verify=has_runtime))
        return artifacts

    def runner(self, artifact: Artifact, out_dir: Path, options: dict) -> Runner:
        path = Path(out_dir) / artifact.name
        if artifact.name == MICRO_FILE:
            return MicroRunner(path)
        return LiteRTRunner(path, options.get("litert_resolver", "xnnpack"), options.get("litert_runtime", "auto"))


BACKEND = TFLiteBackend()

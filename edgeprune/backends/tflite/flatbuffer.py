"""The flatbuffer side of the ``tflite`` target: the LiteRT schema module, a graph writer (tensors,
buffers, operators, metadata) and readers of finished files (metadata, sparse tensors, summary)."""

from __future__ import annotations

import json
from importlib import import_module

import numpy as np

from ...errors import BackendError
from ...fileio import dumps_json

STEP_FILE, SEQUENCE_FILE, MICRO_FILE = "model_step.tflite", "model.tflite", "model_dense.tflite"
METADATA_NAME = "edgeprune"
FORMAT = "edgeprune.tflite"


def schema():
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


_TENSOR_TYPES = {
    np.dtype(np.float32): "FLOAT32",
    np.dtype(np.int32): "INT32",
    np.dtype(np.int8): "INT8",
    np.dtype(np.bool_): "BOOL",
}


class Graph:
    """One subgraph under construction, with the model's buffers and operator codes.

    Activations are [batch, ...]; with ``dynamic_batch`` their shape signature has -1 in front, so
    runtimes that resize inputs (LiteRT) accept any batch.
    """

    def __init__(self, dynamic_batch: bool):
        self.S = schema()
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

    def tensor(
        self,
        name: str,
        shape,
        dtype=np.float32,
        *,
        data: np.ndarray | None = None,
        batched: bool = False,
        sparsity=None,
        quantization=None,
        variable: bool = False,
    ) -> int:
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
    S = schema()
    model = S.Model.GetRootAs(data, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == METADATA_NAME.encode():
            raw = model.Buffers(entry.Buffer()).DataAsNumpy()
            return json.loads(bytes(raw).decode())
    return {}


def sparse_tensors(data: bytes) -> list[str]:
    """Names of the tensors stored sparse in a .tflite file."""
    S = schema()
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
    S = schema()
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
        raise BackendError(
            f"{what} stores sparse weights ({sparse[0]}{', ...' if len(sparse) > 1 else ''}); "
            f"TFLite Micro ignores sparsity and would compute garbage: use {MICRO_FILE}"
        )

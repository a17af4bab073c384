"""Import an ONNX sequence model into an IR v2 chain of stages (docs/import.md lists what maps to what).

Recurrent ops (``LSTM``/``GRU``/``RNN``, forward, ``layout`` 0 or 1, optional inputs omitted or zero)
become ``recurrent`` stages; ``Gemm``/``MatMul``/``Add`` dense stages; ``Relu``/``Tanh``/``Sigmoid``/
``Softmax`` their activations; a causally padded 1-D ``Conv`` a ``conv1d``; ``LayerNormalization`` (or
its written-out form) a ``layernorm``; ``ReduceMean``/``ReduceMax`` over time a ``pool``; scaling by
constants a ``normalize``. The output may be the last step or every step, and may be a recurrent op's
state itself. The glue exporters write around them (layout changes, last-step selection, shape
arithmetic on the run-time batch/time sizes, zero initial states, constant subgraphs) is folded;
torch dynamo's unrolled ``nn.RNN`` is read back as one stage; edgeprune's own ``Scan`` form of
feedback models round-trips.

The graph is read by abstract interpretation: every value is a constant, a shape computation, a
zero tensor, or a data tensor whose axes are labelled (batch ``N``, time ``T``, features ``C``,
singleton ``S``, stacked states ``K``) and whose content is known (the IR stages it went through,
plus a pending linear map). Whatever falls outside is refused in one line naming the op (with its
node) or attribute. The result is checked against the source file run in onnxruntime
(onnx.reference where onnxruntime cannot run it, e.g. ``layout=1``).

A sparse initializer (or a ``Constant`` with ``sparse_value``) keeps its stored pattern as the
IR's pattern, so a pruned model keeps its mask; dense weights keep their nonzeros.

One concern per module: ``values`` (the abstract values), ``interpreter`` (the walk over the graph,
shapes, the result), ``recurrent`` (LSTM/GRU/RNN and Scan), ``unrolled`` (a recurrence written out step
by step), ``layers`` (activations, conv, layer norm, pooling), ``ops`` (glue and linear maps),
``source`` (running the source file and checking the import against it), ``loops`` (a Keras recurrence
tf2onnx wrote as a ``Loop``, read as its RNN/GRU op first). The entry points are here.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...errors import EdgepruneError, first_line
from ...fileio import existing_file
from .interpreter import Importer
from .loops import read_recurrent_loops
from .source import OnnxModel, check_against_source
from .values import OnnxImportError

__all__ = ["OnnxImportError", "OnnxModel", "check_against_source", "import_onnx", "load_classifier", "load_proto"]


def load_proto(path: str | os.PathLike):
    import onnx

    path = existing_file(path, "an ONNX file", OnnxImportError)
    try:
        proto = onnx.load(str(path))
    except Exception as e:  # protobuf DecodeError, missing external data, ...
        raise OnnxImportError(f"{path}: not a readable ONNX model ({first_line(e)})") from None
    if not proto.graph.node and not proto.graph.input:
        raise OnnxImportError(f"{path}: not a readable ONNX model (empty graph)")
    try:
        onnx.checker.check_model(proto)
    except Exception as e:
        raise OnnxImportError(f"{path}: invalid ONNX model ({first_line(e)})") from None
    return proto


def import_onnx(path: str | os.PathLike, check: bool = True) -> OnnxModel:
    """Read ``path`` into the IR; with ``check``, compare it with the source run in onnxruntime."""
    path = Path(path)
    proto = read_recurrent_loops(load_proto(path))  # Keras SimpleRNN/GRU loops -> RNN/GRU ops (loops.py)
    imported = Importer(proto, path.name).run()
    imported.path = path
    if check:
        check_against_source(imported)
    return imported


def load_classifier(path: str | os.PathLike):
    """An ONNX model as a (masked) ``SequenceClassifier`` and its metadata, for ``prune``."""
    from ..torch_lifting import lift

    imported = import_onnx(path)
    try:
        model = lift(imported.model)
    except EdgepruneError as e:
        raise OnnxImportError(f"{Path(path).name}: {e}") from None
    return model, dict(imported.model.meta)

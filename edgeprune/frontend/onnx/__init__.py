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

The package, one concern per module: ``values`` (the abstract values), ``interpreter`` (the walk
over the graph and the result), ``recurrent`` (LSTM/GRU/RNN and Scan), ``ops`` (glue and head
ops), ``source`` (running the source file and checking the import against it). The entry points
are here.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...errors import EdgepruneError, first_line
from ...fileio import existing_file
from .interpreter import Importer
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
    proto = load_proto(path)
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

"""Lift an IR model back into a (masked) ``SequenceClassifier``: the inverse of ``torch_lowering``.

Used to prune models that arrive as IR or ONNX. The IR's stored pattern becomes the masks (a
weight matrix whose pattern is complete gets no mask). The IR's summed gate biases go to
``bias_ih`` with ``bias_hh`` zero, except the GRU candidate, whose two halves stay apart.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import ir
from ..errors import ModelError
from ..models import ModelConfig, SequenceClassifier


def _pattern(m: ir.CSR) -> np.ndarray:
    return ir.CSR(np.ones(m.nnz, np.float32), m.indices, m.indptr, m.shape).to_dense().astype(bool)


def lift(model: ir.Model) -> SequenceClassifier:
    model.validate()
    cells = {layer.cell for layer in model.layers}
    if len(cells) > 1:
        raise ModelError(f"layers mix {' and '.join(sorted(c.upper() for c in cells))}; a SequenceClassifier has "
                         "one cell type")
    with_feedback = [layer.feedback_size > 0 for layer in model.layers[:-1]]
    if any(with_feedback) and not all(with_feedback):
        raise ModelError("feedback into some layers only cannot be expressed as a SequenceClassifier")
    config = ModelConfig(model.layers[0].cell, model.input_size, tuple(l.hidden_size for l in model.layers),
                         model.num_classes, bool(with_feedback) and all(with_feedback))
    out = SequenceClassifier(config).eval()
    masks: dict[str, np.ndarray] = {}
    params: dict[str, np.ndarray] = {}
    for l, layer in enumerate(model.layers):
        values, keep = layer.weight.to_dense(), _pattern(layer.weight)
        cols = layer.column_slices()
        H = layer.hidden_size
        # torch's ih/fb side reads each gate's input-side IR block, its hh side the state-side one;
        # a gate split in the IR (GRU n) keeps its state-side bias in bias_hh (ir/cells.py).
        spec = ir.cell_spec(layer.cell)
        blocks = {side: [layer.gate_rows(spec.ir_rows[spec.ir_block(g, side)]) for g in spec.torch_gates]
                  for side in ir.cells.SIDES}
        parts = {"weight_ih": (blocks["input"], "input"), "weight_hh": (blocks["state"], "state"),
                 "weight_fb": (blocks["input"], "feedback")}
        bias_ih = np.concatenate([layer.bias[rows] for rows in blocks["input"]])
        bias_hh = np.concatenate([layer.bias[s] if s != i else np.zeros(H, np.float32)
                                  for i, s in zip(blocks["input"], blocks["state"])])
        for name, (row_blocks, col) in parts.items():
            if name == "weight_fb" and not layer.feedback_size:
                continue
            params[f"layers.{l}.{name}"] = np.vstack([values[rb, cols[col]] for rb in row_blocks])
            masks[f"layers.{l}.{name}"] = np.vstack([keep[rb, cols[col]] for rb in row_blocks])
        params[f"layers.{l}.bias_ih"], params[f"layers.{l}.bias_hh"] = bias_ih, bias_hh
    params["head.weight"], params["head.bias"] = model.head.weight.to_dense(), model.head.bias
    masks["head.weight"] = _pattern(model.head.weight)
    state = out.state_dict()
    with torch.no_grad():
        for name, value in params.items():
            state[name].copy_(torch.from_numpy(np.asarray(value, np.float32)))
    out.set_masks({k: torch.from_numpy(v) for k, v in masks.items() if not v.all()})
    return out

"""Lift an IR model back into a (masked) ``SequenceModel``: the inverse of ``torch_lowering``.

Used to prune models that arrive as IR or ONNX. The IR's stored pattern becomes the masks (a
weight matrix whose pattern is complete gets no mask). The IR's summed gate biases go to
``bias_ih`` with ``bias_hh`` zero, except the GRU candidate, whose two halves stay apart.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import ir
from ..errors import EdgepruneError
from ..models import SequenceModel
from ..modelspec import ModelSpec, StageSpec


def _pattern(m: ir.CSR) -> np.ndarray:
    return ir.CSR(np.ones(m.nnz, np.float32), m.indices, m.indptr, m.shape).to_dense().astype(bool)


def spec_of(model: ir.Model) -> ModelSpec:
    """The torch spec of an IR chain."""
    stages = []
    for _i, s in enumerate(model.stages):
        if isinstance(s, ir.Recurrent):
            act = s.activation if s.cell == "rnn" else "none"
            stages.append(StageSpec(s.cell, s.hidden_size, act, bias=s.bias is not None, feedback=s.feedback_size > 0))
        elif isinstance(s, ir.Dense):
            stages.append(StageSpec("dense", s.output_size, s.activation, bias=s.bias is not None))
        elif isinstance(s, ir.Conv1d):
            stages.append(StageSpec("conv", s.output_size, s.activation, s.kernel, s.dilation, s.bias is not None))
        elif isinstance(s, ir.LayerNorm):
            stages.append(StageSpec("layernorm", eps=float(s.eps)))
        elif isinstance(s, ir.Normalize):
            stages.append(StageSpec("normalize"))
        else:
            stages.append(StageSpec("pool", mode=s.mode))
    return ModelSpec(model.input_size, tuple(stages), model.output, model.task)


def _recurrent_params(name: str, layer: ir.Recurrent, params: dict, masks: dict) -> None:
    values, keep = layer.weight.to_dense(), _pattern(layer.weight)
    cols = layer.column_slices()
    H = layer.hidden_size
    # torch's ih/fb side reads each gate's input-side IR block, its hh side the state-side one;
    # a gate split in the IR (GRU n) keeps its state-side bias in bias_hh (ir/cells.py).
    spec = ir.cell_spec(layer.cell)
    blocks = {
        side: [layer.gate_rows(spec.ir_rows[spec.ir_block(g, side)]) for g in spec.torch_gates]
        for side in ir.cells.SIDES
    }
    parts = {
        "weight_ih": (blocks["input"], "input"),
        "weight_hh": (blocks["state"], "state"),
        "weight_fb": (blocks["input"], "feedback"),
    }
    if layer.bias is not None:
        params[f"{name}.bias_ih"] = np.concatenate([layer.bias[rows] for rows in blocks["input"]])
        params[f"{name}.bias_hh"] = np.concatenate(
            [layer.bias[s] if s != i else np.zeros(H, np.float32) for i, s in zip(blocks["input"], blocks["state"])]
        )
    for attr, (row_blocks, col) in parts.items():
        if attr == "weight_fb" and not layer.feedback_size:
            continue
        params[f"{name}.{attr}"] = np.vstack([values[rb, cols[col]] for rb in row_blocks])
        masks[f"{name}.{attr}"] = np.vstack([keep[rb, cols[col]] for rb in row_blocks])


def lift(model: ir.Model, weights_only: bool = False) -> SequenceModel:
    """``model`` as a (masked) torch model. ``weights_only``: a cell variant (ir.cells) becomes torch's cell
    with the same weights and masks: only for mask methods that read weights, never to run it."""
    model.validate()
    for name, s in model.named_stages():
        if isinstance(s, ir.Recurrent) and not s.default_cell and not weights_only:
            # torch's cells have none of the ONNX variants (e.g. its GRU is linear_before_reset=1)
            raise EdgepruneError(
                f"{name} is a {s.cell} cell with{s.describe_variant()}, which no torch module computes: "
                "it compiles (edgeprune compile) but cannot be trained or pruned through torch"
            )
    out = SequenceModel(spec_of(model)).eval()
    masks: dict[str, np.ndarray] = {}
    params: dict[str, np.ndarray] = {}
    for name, s in model.named_stages():
        if isinstance(s, ir.Recurrent):
            _recurrent_params(name, s, params, masks)
            continue
        if isinstance(s, (ir.Dense, ir.Conv1d)):
            params[f"{name}.weight"], masks[f"{name}.weight"] = s.weight.to_dense(), _pattern(s.weight)
            if s.bias is not None:
                params[f"{name}.bias"] = s.bias
        elif isinstance(s, ir.LayerNorm):
            params[f"{name}.weight"], params[f"{name}.bias"] = s.gamma, s.beta
        elif isinstance(s, ir.Normalize):
            params[f"{name}.scale"], params[f"{name}.shift"] = s.scale, s.shift
    state = out.state_dict()
    with torch.no_grad():
        for key, value in params.items():
            state[key].copy_(torch.from_numpy(np.asarray(value, np.float32)))
    out.set_masks({k: torch.from_numpy(v) for k, v in masks.items() if not v.all()})
    return out

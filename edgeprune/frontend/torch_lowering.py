"""Lower a (masked) ``SequenceModel`` to the IR, stage by stage.

The survivors of a mask are stored even if their value happens to be zero, so the IR's sparsity
pattern is exactly the mask; an unmasked weight is stored whole.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from .. import ir
from ..models import CausalConv1d, MaskedLinear, Normalize, Pool, RecurrentLayer, SequenceModel


def _pattern(module, attr: str, like: np.ndarray) -> np.ndarray:
    mask = module.get_mask(attr)
    return np.ones_like(like, bool) if mask is None else mask.detach().cpu().numpy().astype(bool)


def _np(t) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().numpy().astype(np.float32)


def _matrix(module, attr: str = "weight") -> ir.CSR:
    values = _np(module.effective(attr))
    return ir.CSR.from_dense(values, _pattern(module, attr, values))


def lower_recurrent(layer: RecurrentLayer) -> ir.Recurrent:
    """One fused gate matrix over [x | h | feedback] (docs/architecture.md)."""
    H, I, Fb = layer.hidden_size, layer.input_size, layer.feedback_size
    blocks = {"ih": _np(layer.effective("weight_ih")), "hh": _np(layer.effective("weight_hh"))}
    keeps = {"ih": _pattern(layer, "weight_ih", blocks["ih"]), "hh": _pattern(layer, "weight_hh", blocks["hh"])}
    if Fb:
        blocks["fb"] = _np(layer.effective("weight_fb"))
        keeps["fb"] = _pattern(layer, "weight_fb", blocks["fb"])
    widths = {"ih": I, "hh": H, "fb": Fb}

    def fused(rows: slice, parts=("ih", "hh", "fb")):
        """Rows of the gate blocks laid out over [x | h | fb]; parts not listed stay empty."""
        n = rows.stop - rows.start
        vals = [
            blocks[p][rows] if p in parts and p in blocks else np.zeros((n, widths[p]), np.float32)
            for p in ("ih", "hh", "fb")
        ]
        keep = [
            keeps[p][rows] if p in parts and p in keeps else np.zeros((n, widths[p]), bool) for p in ("ih", "hh", "fb")
        ]
        return np.hstack(vals), np.hstack(keep)

    b_ih, b_hh = _np(layer.bias_ih), _np(layer.bias_hh)
    # Each IR row block is one torch gate block read from both sides, or from one side only
    # (the GRU candidate's n_x / n_h): see ir/cells.py.
    spec = ir.cell_spec(layer.cell)
    sides = {None: ("ih", "hh", "fb"), "input": ("ih", "fb"), "state": ("hh",)}
    pieces, bias_blocks = [], []
    for row in spec.ir_rows:
        gate, side = spec.ir_row_source(row)
        q = spec.torch_gates.index(gate)
        rows = slice(q * H, (q + 1) * H)
        pieces.append(fused(rows, sides[side]))
        if b_ih is not None:
            bias_blocks.append({None: b_ih[rows] + b_hh[rows], "input": b_ih[rows], "state": b_hh[rows]}[side])
    bias = np.concatenate(bias_blocks) if bias_blocks else None
    weight = ir.CSR.from_dense(np.vstack([p[0] for p in pieces]), np.vstack([p[1] for p in pieces]))
    return ir.Recurrent(
        layer.cell, I, H, Fb, weight, None if bias is None else bias.astype(np.float32), layer.activation
    )


def lower_stage(stage: nn.Module):
    if isinstance(stage, RecurrentLayer):
        return lower_recurrent(stage)
    if isinstance(stage, MaskedLinear):
        return ir.Dense(_matrix(stage), _np(stage.bias), stage.activation)
    if isinstance(stage, CausalConv1d):
        return ir.Conv1d(
            stage.in_channels, stage.kernel, stage.dilation, _matrix(stage), _np(stage.bias), stage.activation
        )
    if isinstance(stage, nn.LayerNorm):
        return ir.LayerNorm(_np(stage.weight), _np(stage.bias), float(stage.eps))
    if isinstance(stage, Normalize):
        return ir.Normalize(_np(stage.scale), _np(stage.shift))
    if isinstance(stage, Pool):
        return ir.Pool(0, stage.mode)  # size filled in by ``lower`` from the chain
    raise TypeError(f"no lowering for {type(stage).__name__}")


def lower(model: SequenceModel, meta: dict | None = None) -> ir.Model:
    spec = model.config
    stages = []
    for i, module in enumerate(model.stages()):
        stage = lower_stage(module)
        if isinstance(stage, ir.Pool):
            stage.size = spec.stage_input_size(i)
        stages.append(stage)
    info = {"source": "torch", "model": spec.to_dict()}
    info.update(meta or {})
    return ir.Model(spec.input_size, stages, spec.output, spec.task, info).validate()

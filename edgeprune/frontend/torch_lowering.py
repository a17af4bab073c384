"""Lower a (masked) ``SequenceClassifier`` to the IR.

The survivors of a mask are stored even if their value happens to be zero, so the IR's sparsity
pattern is exactly the mask; an unmasked weight is stored whole.
"""

from __future__ import annotations

import numpy as np

from .. import ir
from ..models import SequenceClassifier


def _pattern(module, attr: str) -> np.ndarray | None:
    mask = module.get_mask(attr)
    return None if mask is None else mask.detach().cpu().numpy().astype(bool)


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def lower(model: SequenceClassifier, meta: dict | None = None) -> ir.Model:
    cfg = model.config
    layers = []
    for layer in model.layers:
        H, I, F = layer.hidden_size, layer.input_size, layer.feedback_size
        blocks = {"ih": _np(layer.effective("weight_ih")), "hh": _np(layer.effective("weight_hh"))}
        keeps = {"ih": _pattern(layer, "weight_ih"), "hh": _pattern(layer, "weight_hh")}
        if F:
            blocks["fb"] = _np(layer.effective("weight_fb"))
            keeps["fb"] = _pattern(layer, "weight_fb")
        keeps = {k: np.ones_like(blocks[k], dtype=bool) if v is None else v for k, v in keeps.items()}
        b_ih, b_hh = _np(layer.bias_ih), _np(layer.bias_hh)

        def fused(rows: slice, parts=("ih", "hh", "fb")):
            """Rows of the gate blocks laid out over [x | h | fb]; parts not listed stay empty."""
            widths = {"ih": I, "hh": H, "fb": F}
            n = rows.stop - rows.start
            vals = [blocks[p][rows] if p in parts and p in blocks else np.zeros((n, widths[p]), np.float32)
                    for p in ("ih", "hh", "fb")]
            keep = [keeps[p][rows] if p in parts and p in keeps else np.zeros((n, widths[p]), bool)
                    for p in ("ih", "hh", "fb")]
            return np.hstack(vals), np.hstack(keep)

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
            bias_blocks.append({None: b_ih[rows] + b_hh[rows], "input": b_ih[rows], "state": b_hh[rows]}[side])
        bias = np.concatenate(bias_blocks)
        values = np.vstack([p[0] for p in pieces])
        keep = np.vstack([p[1] for p in pieces])
        layers.append(ir.Layer(layer.cell, I, H, F, ir.CSR.from_dense(values, keep), bias.astype(np.float32)))
    head_keep = _pattern(model.head, "weight")
    head_w = _np(model.head.effective("weight"))
    head = ir.Head(
        ir.CSR.from_dense(head_w, np.ones_like(head_w, bool) if head_keep is None else head_keep),
        _np(model.head.bias),
    )
    info = {"source": "torch", "model": cfg.to_dict()}
    info.update(meta or {})
    return ir.Model(cfg.input_size, layers, head, info).validate()

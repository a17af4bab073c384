"""Magnitude pruning: keep the largest |w|, per weight matrix or across all of them."""

from __future__ import annotations

import numpy as np

from ..options import Option
from .registry import MaskResult, PruneContext, keep_count, register, top_k_mask


@register(
    "magnitude",
    help="keep the largest |w| (per matrix, or globally with --scope global)",
    options=(Option("scope", "layer", "magnitude: rank per weight matrix or across all", choices=("layer", "global")),),
)
def magnitude(ctx: PruneContext, sparsity: float) -> MaskResult:
    if ctx.options["scope"] == "layer":
        masks = {
            name: top_k_mask(np.abs(w.values), keep_count(w.values.size, sparsity)) for name, w in ctx.weights.items()
        }
        return MaskResult(masks, {"scope": "layer"})
    names = list(ctx.weights)
    flat = np.concatenate([np.abs(ctx.weights[n].values).ravel() for n in names])
    keep = top_k_mask(flat, keep_count(flat.size, sparsity))
    masks, offset = {}, 0
    for n in names:
        size = ctx.weights[n].values.size
        masks[n] = keep[offset : offset + size].reshape(ctx.weights[n].shape)
        offset += size
    return MaskResult(masks, {"scope": "global"}, scope="global")

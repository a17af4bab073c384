"""Random pruning: an exact count of uniformly chosen survivors per weight matrix."""

from __future__ import annotations

import numpy as np

from .registry import MaskResult, PruneContext, keep_count, register


@register("random", help="keep a uniformly random subset of each weight matrix")
def random_uniform(ctx: PruneContext, sparsity: float) -> MaskResult:
    masks = {}
    for name, w in ctx.weights.items():
        mask = np.zeros(w.values.size, dtype=bool)
        mask[ctx.rng.permutation(w.values.size)[: keep_count(w.values.size, sparsity)]] = True
        masks[name] = mask.reshape(w.shape)
    return MaskResult(masks)

"""Random row-regular pruning: every row of a matrix keeps the same number of random entries.

Row-regular masks are what ELL kernels want: no padding, one loop bound for every row.
"""

from __future__ import annotations

import numpy as np

from .registry import MaskResult, PruneContext, keep_count, register


@register("random-regular", help="every row keeps the same number of random entries")
def random_regular(ctx: PruneContext, sparsity: float) -> MaskResult:
    masks, degrees = {}, {}
    for name, w in ctx.weights.items():
        rows, cols = w.shape
        degree = keep_count(cols, sparsity)
        # argsort of uniform noise per row = an independent random permutation per row
        picks = np.argsort(ctx.rng.random((rows, cols)), axis=1)[:, :degree]
        mask = np.zeros((rows, cols), dtype=bool)
        np.put_along_axis(mask, picks, True, axis=1)
        masks[name] = mask
        degrees[name] = degree
    return MaskResult(masks, {"row_degree": degrees})

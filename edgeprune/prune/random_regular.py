"""Random row-regular pruning: every row of a matrix keeps (nearly) the same number of random entries.

Row-regular masks are what ELL kernels want: no padding, one loop bound for every row. By default
(``--row-degrees balanced``) each matrix keeps exactly the requested count and row degrees differ
by at most one (ELL pads at most one entry per row); ``--row-degrees equal`` gives every row the
same count, the sparsity rounded to a whole row degree.
"""

from __future__ import annotations

import numpy as np

from ..graphs.biregular import plan_degrees
from .expander import ROW_DEGREES_OPTION
from .registry import MaskResult, PruneContext, register


@register(
    "random-regular",
    help="every row keeps the same number of random entries (within one)",
    options=(ROW_DEGREES_OPTION,),
)
def random_regular(ctx: PruneContext, sparsity: float) -> MaskResult:
    masks, degrees, limits = {}, {}, {}
    for name, w in ctx.weights.items():
        rows, cols = w.shape
        plan = plan_degrees(1, rows, cols, sparsity, ctx.options["row_degrees"], [ctx.rng.permutation(rows)])
        degree = plan.row_degrees[0]
        # ranks of uniform noise per row = an independent random permutation per row
        ranks = np.argsort(np.argsort(ctx.rng.random((rows, cols)), axis=1), axis=1)
        masks[name] = ranks < degree[:, None]  # row r keeps the entries ranked below its degree
        degrees[name] = [int(degree.min()), int(degree.max())]
        if plan.limit:
            limits[name] = plan.limit
    return MaskResult(masks, {"row_degree": degrees}, limits=limits)

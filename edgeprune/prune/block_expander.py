"""Block expander: the expander construction on a grid of tiles (1x4, 4x1, 8x1, 4x4, 1x16).

Every block-row of every gate block keeps the same number of tiles, within one (exactly the same
with ``--row-degrees equal``), and every block-column as equal a number as possible, so the mask is
a (nearly) biregular graph of tiles: fixed-size blocks (TFLite's
1x4 encoding, SIMD row kernels for 4x1/8x1) *and* the same count per block-row (ELL-style
kernels, no padding). Tiles align at row 0 of each gate block and column 0 of each weight matrix;
a side that is not a multiple of the tile ends in a partial tile (zero-padding semantics). See
docs/expander.md for when the fused IR matrix keeps exact blocks.
"""

from __future__ import annotations

from ..options import Option
from .expander import OPTIONS as EXPANDER_OPTIONS
from .expander import build_masks
from .registry import MaskResult, PruneContext, register

BLOCKS = ("1x4", "4x1", "8x1", "4x4", "1x16")


def parse_block(text: str) -> tuple[int, int]:
    rows, cols = text.split("x")
    return int(rows), int(cols)


@register(
    "block-expander",
    help="edgeprune's own: biregular mask of tiles (tile counts per block-row within one), Ramanujan-checked at "
    "tile level",
    options=(Option("block", "1x4", "block-expander: tile shape rows x cols", choices=BLOCKS), *EXPANDER_OPTIONS),
)
def block_expander(ctx: PruneContext, sparsity: float) -> MaskResult:
    return build_masks(ctx, sparsity, parse_block(ctx.options["block"]))

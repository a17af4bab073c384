"""Expander (Ramanujan) pruning: a magnitude-aware biregular mask per gate block.

This one-shot construction is edgeprune's own, not the seed paper's method (the paper prunes
iteratively and stops at the Ramanujan bound: ``ramanujan-imp``). Each matrix keeps exactly the
requested count; every row of a gate block keeps ``d`` or ``d + 1`` weights (``--row-degrees
equal``: exactly ``round((1 − s) · cols)``), every column ``q`` or ``q + 1``;
the largest |w| are kept greedily under those capacities and the remaining degree deficits are
filled by a random configuration model. Each gate block's graph is checked against the Ramanujan
bound (Δr ≥ 0) and, if it fails, repaired a bounded number of rounds by re-randomising the edges
that carry the violating singular directions. ``--init`` draws a purely random
biregular mask and re-initialises the weights: sparse training from scratch (X-Net style), run as
``edgeprune prune ANY.pt --method expander --init --sparsity S --finetune-epochs N``.
See docs/expander.md.
"""

from __future__ import annotations

from ..errors import PruneError
from ..graphs.biregular import REPAIRS, ROW_DEGREES, biregular_mask
from ..graphs.spectral import expansion
from ..options import Option
from .registry import MaskResult, PruneContext, register

ROW_DEGREES_OPTION = Option(
    "row_degrees",
    "balanced",
    "balanced: row degrees differ by at most one so each matrix keeps exactly the "
    "requested count; equal: every row the same count (ELL without padding), the sparsity rounded to a whole "
    "row degree (refused unless --accept-reached when that misses the request)",
    choices=ROW_DEGREES,
)
OPTIONS = (
    Option("init", False, "random biregular mask + fresh weights, for sparse training from scratch", bool),
    Option("greedy_share", 1.0, "fraction of each gate block's edges chosen by |w| (the rest random)", float),
    Option("max_repairs", 8, "repair rounds for a gate block whose graph fails the Ramanujan bound", int),
    Option(
        "repair",
        "spectral",
        "re-randomise the edges carrying the violating singular directions (spectral), "
        "or bisect the share of magnitude edges (bisect)",
        choices=REPAIRS,
    ),
    ROW_DEGREES_OPTION,
)


def build_masks(ctx: PruneContext, sparsity: float, block: tuple[int, int]) -> MaskResult:
    """The expander construction for every weight in ``ctx`` at ``block`` granularity."""
    opts = ctx.options
    if not 0.0 <= opts["greedy_share"] <= 1.0:
        raise PruneError(f"--greedy-share must be in [0, 1], got {opts['greedy_share']}")
    if opts["max_repairs"] < 0:
        raise PruneError(f"--max-repairs must be >= 0, got {opts['max_repairs']}")
    masks, per_weight, limits = {}, {}, {}
    for name, w in ctx.weights.items():
        built = biregular_mask(
            w.values,
            sparsity,
            ctx.rng,
            gates=w.gates,
            cell=w.cell,
            block=block,
            magnitude_aware=not opts["init"],
            greedy_share=opts["greedy_share"],
            max_repairs=opts["max_repairs"],
            repair=opts["repair"],
            row_degrees=opts["row_degrees"],
        )
        masks[name] = built.mask
        if built.limit:
            limits[name] = built.limit
        whole = expansion(built.mask, cheeger=False)
        per_weight[name] = {
            "row_degree": list(built.row_degree),  # [min, max] tiles per block-row of the gate blocks
            "sparsity": float(1.0 - built.mask.mean()),
            "ramanujan_gap": built.ramanujan_gap,  # worst gate block (tile graph)
            "ramanujan": built.ramanujan,
            "whole_matrix_ramanujan_gap": whole.ramanujan_gap,  # element graph of all gates
            "gates": [g.to_dict() for g in built.gates],
        }
    failed = sorted(n for n, r in per_weight.items() if r["ramanujan"] is False)
    report = {"block": f"{block[0]}x{block[1]}", "init": opts["init"], "weights": per_weight, "not_ramanujan": failed}
    return MaskResult(masks, report, reinitialize=bool(opts["init"]), block=block, limits=limits)


@register(
    "expander",
    help="edgeprune's own one-shot construction (not the paper's method, which is "
    "ramanujan-imp): magnitude-aware biregular mask per gate block, checked against the Ramanujan bound",
    options=OPTIONS,
)
def expander(ctx: PruneContext, sparsity: float) -> MaskResult:
    return build_masks(ctx, sparsity, (1, 1))

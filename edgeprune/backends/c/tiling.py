"""One matrix's tiles: how it is cut, each tile's storage format, and the layout within a byte budget.

``planning`` calls ``plan_matrix`` for every weight matrix of a model and ``choose_within`` for the
whole model under ``--kernel auto``'s byte budget; this module knows nothing of stages or the arena.

* A matrix is cut into tiles: gate row blocks x column segments of z (input / state / feedback),
  each trimmed to the rows and columns it uses (a GRU's candidate blocks never store the columns
  they cannot read), and sparse tiles into chunks of at most 256 columns so that every index is
  one byte -- or, for sparse formats, coarser: merged over the gate blocks and (f32) over all of z
  (``_layouts``), which saves calls and per-row costs and stores no more.
* Each tile gets its own storage format (``formats``) and each matrix its layout: forced by
  ``--kernel``, the cheapest by the measured cost model (``costs``; ``fastest``, and ``auto`` within
  its byte budget: ``choose_within``), or the smallest.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ...errors import BackendError
from . import costs, formats

KERNELS = ("auto", "fastest", "dense", "csr", "ell", "bsr", "smallest")
# auto's default byte budget: this many times the bytes of the smallest layout (--kernel smallest)
BUDGET_FACTOR = 1.25
# Which storage formats each --kernel value may use for a tile (auto/smallest: all that apply).
FAMILIES = {
    "dense": ("dense",),
    "csr": ("csr",),
    "ell": ("ell", "sell"),
    "bsr": ("bsr8x1", "bsr8x1w", "bsr4x1", "bsr1x4"),
    "auto": formats.FORMATS,
    "fastest": formats.FORMATS,
    "smallest": formats.FORMATS,
}


@dataclass
class Tile:
    row: int  # first row in the matrix
    col: int  # first column in z
    rows: int
    cols: int
    segment: int  # index of the column segment (its own int8 activation scale)
    nnz: int
    encoded: formats.Encoded
    cost: float

    @property
    def format(self) -> str:
        return self.encoded.format

    def describe(self) -> dict:
        return {
            "row": self.row,
            "col": self.col,
            "rows": self.rows,
            "cols": self.cols,
            "format": self.format,
            "nnz": self.nnz,
            "stored": self.encoded.stored,
            "bytes": self.encoded.bytes,
            **({"first_writer": True} if self.encoded.sets else {}),  # sets its rows, bias included
        }


@dataclass
class MatrixPlan:
    name: str  # C identifier stem
    label: str  # IR name, e.g. layers.0.weight
    shape: tuple[int, int]
    nnz: int
    dtype: str
    tiles: list[Tile]
    segments: list[tuple[int, int]]  # column ranges of z with their own activation scale (int8)
    candidates: dict[str, dict]  # whole matrix in one format family: {"bytes", "cost"}
    unit: str
    options: list[dict[str, list[Tile]]] = field(default_factory=list, repr=False)  # per region: format -> tiles
    # every layout priced (_layouts: layout -> parts -> alternatives -> regions: format -> tiles), the chosen one
    layouts: dict[str, list[list[list[dict[str, list[Tile]]]]]] = field(default_factory=dict, repr=False)
    layout: str = "blocks"

    @property
    def format(self) -> str:
        """The formats used, e.g. 'sell', 'dense+ell', or 'empty' (no stored weight)."""
        used = list(dict.fromkeys(t.format for t in self.tiles))
        return "+".join(used) if used else "empty"

    @property
    def table_bytes(self) -> int:
        """Values, indices and format metadata of every tile."""
        return sum(t.encoded.bytes for t in self.tiles)

    @property
    def weight_bytes(self) -> int:
        """Tables plus the int8 row scales."""
        return self.table_bytes + (4 * self.shape[0] if self.dtype == "int8" and self.tiles else 0)

    @property
    def cost(self) -> float:
        return sum(t.cost for t in self.tiles)

    def describe(self) -> dict:
        return {
            "shape": list(self.shape),
            "nnz": self.nnz,
            "format": self.format,
            "layout": self.layout,  # "blocks": per gate block (or merged per segment), "cols"/"all": over all of z
            "dtype": self.dtype,
            "weight_bytes": self.weight_bytes,
            "bytes_per_nonzero": round(self.weight_bytes / self.nnz, 3) if self.nnz else None,
            "estimated_cost": round(self.cost, 1),
            "cost_unit": self.unit,
            "candidates": self.candidates,
            "tiles": [t.describe() for t in self.tiles],
        }


def _exact(tiles: list[Tile]) -> bool:
    """The tiles store exactly the mask's weights: no zero fill, no padding."""
    return all(t.encoded.stored == t.nnz for t in tiles)


def _trimmed(pattern: np.ndarray, align: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """(row0, row1, col0, col1) of the used part, aligned to the block grid of ``align``."""
    rows, cols = np.flatnonzero(pattern.any(axis=1)), np.flatnonzero(pattern.any(axis=0))
    if not rows.size:
        return None
    br, bc = align
    r0, c0 = rows[0] // br * br, cols[0] // bc * bc
    r1 = min(pattern.shape[0], -(-(rows[-1] + 1) // br) * br)
    c1 = -(-(cols[-1] + 1) // bc) * bc  # may pass the segment's end by < bc (1x4: zeros)
    return int(r0), int(r1), int(c0), int(c1)


def _options(fmt: str, values: np.ndarray, pattern: np.ndarray) -> list[tuple[int, formats.Encoded]] | None:
    """The tile in format ``fmt`` as (first column, encoding) per column chunk, or None if it does not apply."""
    rows, cols = pattern.shape
    if fmt == "dense":
        return [(0, formats.encode("dense", values, pattern))]
    if fmt in formats.WIDE:  # a whole tile past MAX_COLS columns, 16-bit indices
        if cols <= formats.MAX_COLS or cols > 0x10000:
            return None
        regular = formats.row_regular(pattern)  # ELL's rows all the same length; SELL's not
        if (fmt == "ell16" and not regular) or (fmt == "sell16" and (regular or rows > 0x10000)):
            return None
        if fmt in formats.F32_ONLY and values.dtype == np.int8:
            return None
        return [(0, formats.encode(fmt, values, pattern))]
    width = formats.MAX_COLS_1X4 if fmt == "bsr1x4" else formats.MAX_COLS
    out = []
    for c0 in range(0, cols, width):
        p = pattern[:, c0 : c0 + width]
        if not p.any():
            continue
        if fmt == "ell" and not formats.row_regular(p):
            return None
        if fmt == "sell" and (formats.row_regular(p) or rows > 0x10000):
            return None  # a regular chunk is ELL (no permutation); SELL needs 16-bit row numbers
        out.append((c0, formats.encode(fmt, values[:, c0 : c0 + width], p)))
    return out


@dataclass
class _Region:
    row: int
    col: int
    values: np.ndarray  # float32 or int8, [rows, cols] of the row range x column range
    pattern: np.ndarray
    sparse_only: bool = False  # a region of a merged layout: dense would store its zero blocks


def _layouts(row_blocks, segments, apart, dtype: str) -> dict[str, list[list[list[tuple]]]]:
    """The ways to cut a matrix into regions, each region then taking one format per column chunk:
    layout -> parts -> alternatives -> regions ((row0, row1), (col0, col1), sparse formats only).
    A layout's parts are chosen independently, each taking the cheapest of its alternatives.

    ``blocks``: per column segment (a part), either split by gate row block (any format, dense
    included: what every layout was before merging) or one region over all row blocks. Merged
    regions take sparse formats only: those store nothing for the zero parts, so a region spanning
    blocks costs no more bytes and saves kernel calls and the per-row cost of rows without a weight
    (a narrow input segment has many). f32 also: ``cols``, per gate block one region over all of z
    (a contiguous vector), and ``all``, one region over all blocks and all of z; both cut only into
    chunks of ``formats.MAX_COLS`` columns. int8 keeps the segments apart (each quantized with its
    own scale). Row blocks in ``apart`` read another input vector (a GRU's late rows: r * h) and
    keep their split regions everywhere."""
    spans: list[tuple[int, int]] = []  # runs of adjacent row blocks that may merge
    joined = False
    for b, (r0, r1) in enumerate(row_blocks):
        if b in apart:
            joined = False
            continue
        if joined and spans[-1][1] == r0:
            spans[-1] = (spans[-1][0], r1)
        else:
            spans.append((r0, r1))
        joined = True
    mine = [rr for b, rr in enumerate(row_blocks) if b not in apart]
    kept = [((rr, cc, False)) for b, rr in enumerate(row_blocks) if b in apart for cc in segments]
    parts = []
    for cc in segments:
        split = [(rr, cc, False) for rr in mine]
        alternatives = [split]
        if len(spans) < len(mine):
            alternatives.append([(rr, cc, True) for rr in spans])
        parts.append(alternatives)
    out = {"blocks": parts + ([[kept]] if kept else [])}
    if dtype == "f32" and len(segments) > 1:
        whole = (segments[0][0], segments[-1][1])
        out["cols"] = [[[(rr, whole, True) for rr in mine] + kept]]
        if len(spans) < len(mine):
            out["all"] = [[[(rr, whole, True) for rr in spans] + kept]]
    return out


def plan_matrix(
    name: str,
    label: str,
    values: np.ndarray,
    pattern: np.ndarray,
    row_blocks,
    segments,
    *,
    kernel: str = "auto",
    dtype: str = "f32",
    profile: str = "generic",
    dense_cold: bool = False,
    apart=(),
) -> MatrixPlan:
    """Tiles for one matrix ([rows, cols] values and stored pattern), each in its chosen format.

    Every layout of ``_layouts`` is priced; ``fastest``, ``smallest`` and the forced kernels take
    the best layout by their own measure here, ``auto`` chooses between them under its byte budget
    (``choose_within``). ``apart``: row blocks that must keep their own tiles."""
    unit = costs.UNITS[profile]
    stream = costs.STREAM_NS_PER_BYTE[profile] if dense_cold else 0.0
    block_rows = max(r1 - r0 for r0, r1 in row_blocks)

    def segment_of(col: int) -> int:
        return next(k for k, (c0, c1) in enumerate(segments) if c0 <= col < c1)

    def options_for(region: _Region, fmt: str):
        align = formats.BLOCK_SHAPES.get(fmt, (1, 1))
        bounds = _trimmed(region.pattern, align)
        r0, r1, c0, c1 = bounds
        seg_cols = region.pattern.shape[1]
        p = np.zeros((r1 - r0, c1 - c0), bool)
        v = np.zeros((r1 - r0, c1 - c0), region.values.dtype)
        inside = min(c1, seg_cols) - c0
        p[:, :inside] = region.pattern[r0:r1, c0 : c0 + inside]
        v[:, :inside] = region.values[r0:r1, c0 : c0 + inside]
        encs = _options(fmt, v, p)
        if encs is None:
            return None
        tiles = []
        for start, enc in encs:
            width = (
                p.shape[1] - start
                if fmt == "dense" or fmt in formats.WIDE
                else (formats.MAX_COLS_1X4 if fmt == "bsr1x4" else formats.MAX_COLS)
            )
            sub = p[:, start : start + width]
            spanned = sub.shape[0] / block_rows  # gate blocks the tile spans (merged layouts: more than one)
            cost = costs.tile_cost(profile, dtype, enc.format, enc.stored, enc.kernel_rows(sub.shape[0]), spanned)
            if enc.format == "dense":
                cost += stream * enc.bytes
            col = region.col + c0 + start
            tiles.append(
                Tile(region.row + r0, col, sub.shape[0], sub.shape[1], segment_of(col), int(sub.sum()), enc, cost)
            )
        return tiles

    encoded: dict[tuple, dict[str, list[Tile]] | None] = {}

    def region_options(cut) -> dict[str, list[Tile]] | None:
        (r0, r1), (c0, c1), sparse_only = cut
        if cut not in encoded:
            p = pattern[r0:r1, c0:c1]
            opts = None
            if p.any():
                region = _Region(r0, c0, values[r0:r1, c0:c1], p, sparse_only)
                opts = {}
                for fmt in formats.FORMATS:
                    if not (fmt == "dense" and sparse_only):
                        tiles = options_for(region, fmt)
                        if tiles is not None:
                            opts[fmt] = tiles
            encoded[cut] = opts
        return encoded[cut]

    layouts: dict[str, list[list[list[dict[str, list[Tile]]]]]] = {}
    for key, parts in _layouts(row_blocks, segments, set(apart), dtype).items():
        layouts[key] = [
            [[o for o in map(region_options, alternative) if o is not None] for alternative in part] for part in parts
        ]

    def pick(opts: dict[str, list[Tile]], allowed, key) -> list[Tile]:
        usable = {f: t for f, t in opts.items() if f in allowed}
        if not usable:  # e.g. --kernel ell on a tile too tall for SELL: CSR always applies
            usable = {"csr": opts["csr"]}
        best = min(usable.values(), key=key)
        if key is not total_cost:
            return best
        # A sparse format that multiplies stored zeros (8x1 blocks over a 4x1 mask, SELL padding)
        # only when it clearly beats the best one that stores exactly the mask: the estimates of
        # the two are within the fit's error there, and the zeros cost flash for sure.
        exact = [t for f, t in usable.items() if f != "dense" and _exact(t)]
        if exact and not _exact(best) and best is not usable.get("dense"):
            fitted = min(exact, key=total_cost)
            if total_cost(best) > costs.SPARSE_MARGIN * total_cost(fitted):
                return fitted
        return best

    def total_cost(tiles):
        return sum(t.cost for t in tiles)

    def total_bytes(tiles):
        return sum(t.encoded.bytes for t in tiles)

    def region_pick(opts, kind: str) -> list[Tile]:
        if kind == "smallest":
            return pick(opts, FAMILIES["smallest"], total_bytes)
        if kind in ("auto", "fastest"):
            best = pick(opts, formats.FORMATS, total_cost)
            dense = opts.get("dense")
            # sparse only where it clearly pays: the estimates are close near the crossover
            return best if dense is None or total_cost(best) <= costs.SPARSE_MARGIN * total_cost(dense) else dense
        return pick(opts, FAMILIES[kind], total_cost)

    def score(picks: list[list[Tile]], kind: str):
        flat = [t for tiles in picks for t in tiles]
        if kind == "smallest":
            return (total_bytes(flat), total_cost(flat))
        if kind in ("auto", "fastest"):
            return (sum(_ranked_cost(tiles) for tiles in picks), total_bytes(flat))
        return (total_cost(flat), total_bytes(flat))

    def best_layout(kind: str):
        """(score, layout, chosen alternative per part, tiles per region) by ``kind``'s measure."""
        best = None
        for key, parts in layouts.items():
            if kind == "dense" and key != "blocks":  # merged regions hold no dense
                continue
            total, chosen, picks = None, [], []
            for part in parts:
                alternatives = part if kind != "dense" else part[:1]
                scored = [
                    (score(p, kind), i, p)
                    for i, p in enumerate([[region_pick(o, kind) for o in alt] for alt in alternatives])
                ]
                sc, i, p = min(scored, key=lambda x: (x[0], x[1]))
                total = sc if total is None else tuple(a + b for a, b in zip(total, sc))
                chosen.append(i)
                picks += p
            total = total or (0, 0)
            if best is None or total < best[0]:
                best = (total, key, chosen, picks)
        return best

    family_totals: dict[str, dict] = {}
    for family in ("dense", "csr", "ell", "bsr"):
        tiles = [t for p in best_layout(family)[3] for t in p]
        family_totals[family] = {"bytes": total_bytes(tiles), "cost": round(total_cost(tiles), 1)}
    # auto: provisional, the byte budget chooses (choose_within)
    _, key, chosen, picks = best_layout(kernel)
    return MatrixPlan(
        name,
        label,
        tuple(pattern.shape),
        int(pattern.sum()),
        dtype,
        [t for p in picks for t in p],
        list(segments),
        family_totals,
        unit,
        [opts for part, i in zip(layouts[key], chosen) for opts in part[i]],
        layouts,
        key,
    )


def _ranked(opts: dict[str, list[Tile]]) -> list[tuple[str, list[Tile], float, int]]:
    """A region's options as (format, tiles, estimate auto ranks by, bytes), with fastest's margins:
    a sparse format must beat dense by the SPARSE_MARGIN (the estimates near a crossover are within
    the fit's error), and a zero-filling one (8x1 blocks over a finer mask, SELL padding) is an
    option only if it beats the best format storing exactly the mask by the same margin."""
    exact = [sum(t.cost for t in tiles) for f, tiles in opts.items() if f != "dense" and _exact(tiles)]
    out = []
    for fmt, tiles in opts.items():
        if (
            fmt != "dense"
            and exact
            and not _exact(tiles)
            and sum(t.cost for t in tiles) > costs.SPARSE_MARGIN * min(exact)
        ):
            continue
        out.append((fmt, tiles, _ranked_cost(tiles), _bytes(tiles)))
    return out


def _ranked_cost(tiles: list[Tile]) -> float:
    """What auto and fastest compare: the estimate, a sparse format's divided by SPARSE_MARGIN (it
    must beat dense by that margin: the estimates near a crossover are within the fit's error)."""
    cost = sum(t.cost for t in tiles)
    return cost if tiles and tiles[0].format == "dense" else cost / costs.SPARSE_MARGIN


def choose_within(
    matrices: list[MatrixPlan], budget: int | None, fixed_bytes: int, cache: int, spill: float
) -> tuple[int, int]:
    """Set every matrix's tiles to the fastest layout whose bytes (plus ``fixed_bytes``) fit ``budget``.

    ``budget=None``: the default, BUDGET_FACTOR x the smallest split layout of the regions where a
    sparse format is the fastest; where dense is (low sparsity, the head), dense is kept at its size
    -- it stores no index and no fill, and squeezing it into sparse formats would trade a little
    flash for several times the time. If the layout within that budget would still be estimated
    slower than dense (small matrices, where per-row and per-call costs dominate), the default takes
    the smallest layout that is not. An explicit budget holds every byte.

    A knapsack over the matrices, solved by its Lagrangian relaxation. Each matrix is a group of
    alternatives: its layouts (``MatrixPlan.layouts``: split by gate block and segment, or merged),
    each a set of regions that pick one format apiece. For a price per byte ``lam`` every region of
    a layout takes the format minimising ``estimate + lam * bytes``, and the matrix the layout whose
    sum of those is least; the bytes only fall as ``lam`` rises, so a sweep of prices gives the
    frontier of fast-vs-small layouts, and the fastest point of it within the budget wins. Time of
    a layout: the estimates plus, when all its bytes do not stay in the cache between steps,
    ``spill`` per byte (the weights then stream from the next level every step), so a large model
    prefers a layout that fits the cache over one that is faster per weight but spills. Returns
    (bytes, budget).
    """
    # per matrix: layout -> parts -> alternatives -> regions -> ranked options
    groups = [
        {k: [[[_ranked(opts) for opts in alt] for alt in part] for part in parts] for k, parts in m.layouts.items()}
        for m in matrices
    ]

    def timed(picks) -> tuple[float, int]:  # picks: per matrix (layout, alternative per part, option per region)
        chosen = [o for _, _, options in picks for o in options]
        size = fixed_bytes + sum(o[3] for o in chosen)
        return sum(o[2] for o in chosen) + (spill * size if size > cache else 0.0), size

    def dense_of(r):
        return next(o for o in r if o[0] == "dense")

    def split(g):  # the regions of the layout by gate block and segment, all of which can be dense
        return [r for part in g["blocks"] for r in part[0]]

    all_dense = timed([("blocks", None, [dense_of(r) for r in split(g)]) for g in groups])[0]
    default = budget is None
    if default:
        kept, smallest = 0, fixed_bytes
        for g in groups:
            for part in g["blocks"]:
                pinned = [min(r, key=lambda o: o[2])[0] == "dense" for r in part[0]]
                kept += sum(dense_of(r)[3] for r, pin in zip(part[0], pinned) if pin)
                smallest += sum(min(o[3] for o in r) for r, pin in zip(part[0], pinned) if not pin)
                part[0] = [[dense_of(r)] if pin else r for r, pin in zip(part[0], pinned)]
        budget = kept + int(BUDGET_FACTOR * smallest)

    def choose(g, key) -> tuple[str, list, list]:
        """The layout, alternative per part and option per region minimising ``key`` (then bytes)."""
        best = None
        for k, parts in g.items():
            total, alts, options = (0.0, 0), [], []
            for part in parts:
                scored = []
                for i, alt in enumerate(part):
                    picks = [min(r, key=key) for r in alt]
                    scored.append(((sum(key(o)[0] for o in picks), sum(o[3] for o in picks)), i, picks))
                sc, i, picks = min(scored, key=lambda x: (x[0], x[1]))
                total = (total[0] + sc[0], total[1] + sc[1])
                alts.append(i)
                options += picks
            if best is None or total < best[0]:
                best = (total, k, alts, options)
        return best[1], best[2], best[3]

    smallest_picks = [choose(g, lambda o: (o[3], o[2])) for g in groups]
    lowest = timed(smallest_picks)[1]
    if lowest > budget:
        raise BackendError(
            f"--flash-budget {budget:,} B: the smallest layout of the weights needs {lowest:,} B "
            "(tables, int8 scales and biases)"
        )
    frontier = []  # (estimate, bytes, picks) per price; the last price takes the smallest formats
    for lam in [0.0, *np.geomspace(1e-6, 1e4, 161)]:
        picks = [choose(g, lambda o, lam=lam: (o[2] + lam * o[3], o[3])) for g in groups]
        frontier.append((*timed(picks), picks))
    frontier.append((*timed(smallest_picks), smallest_picks))
    best = min((f for f in frontier if f[1] <= budget), key=lambda f: (f[0], f[1]))
    if default and best[0] > all_dense:
        faster = [f for f in frontier if f[0] <= all_dense]
        best = min(faster, key=lambda f: (f[1], f[0])) if faster else min(frontier, key=lambda f: f[0])
        budget = max(budget, best[1])
    _, size, picks = best
    for m, (key, alts, options) in zip(matrices, picks):
        m.layout = key
        m.options = [opts for part, i in zip(m.layouts[key], alts) for opts in part[i]]
        m.tiles = [t for o in options for t in o[1]]
    return size, budget


def _bytes(tiles: list[Tile]) -> int:
    return sum(t.encoded.bytes for t in tiles)


def first_writers(m: MatrixPlan) -> tuple[list[int], int] | None:
    """Tiles of an f32 matrix that together cover each of its rows exactly once, all SELL or all 8x1
    blocks (``formats.SETTERS``: the two keep their biases apart), to make their rows' first writers
    (``mark_first_writers``), and the bytes that adds (2 per row or block row without a weight): of
    all such sets (e.g. one per column chunk, whatever columns each tile was trimmed to), the one
    adding the fewest. None: no set."""
    if m.dtype != "f32":
        return None
    best = None
    for sell in (True, False):
        extra = {
            i: formats.first_writer(t.encoded, t.rows).bytes - t.encoded.bytes
            for i, t in enumerate(m.tiles)
            if t.format in formats.SETTERS and (t.format in formats.SELL) == sell and not t.encoded.sets
        }
        # exact cover of rows [0, rows) by tile row ranges, fewest added bytes: from the last row back
        cover: dict[int, tuple[int, list[int]]] = {m.shape[0]: (0, [])}
        for start in sorted({m.tiles[i].row for i in extra}, reverse=True):
            for i in extra:
                t = m.tiles[i]
                rest = cover.get(t.row + t.rows)
                if t.row == start and rest is not None and (start not in cover or rest[0] + extra[i] < cover[start][0]):
                    cover[start] = (rest[0] + extra[i], [i, *rest[1]])
        if 0 in cover and (best is None or cover[0][0] < best[1]):
            best = (cover[0][1], cover[0][0])
    return best


def mark_first_writers(m: MatrixPlan, members: list[int]) -> None:
    """Codegen runs these tiles first, as ``ep_<format>_set_f32``, and copies no bias (formats.first_writer)."""
    for i in members:
        t = m.tiles[i]
        m.tiles[i] = dataclasses.replace(t, encoded=formats.first_writer(t.encoded, t.rows))

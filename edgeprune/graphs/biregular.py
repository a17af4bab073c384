"""Biregular (expander) masks: magnitude-aware greedy + random configuration model (torch-free).

A mask for a matrix with ``gates`` row blocks is built per gate block on a grid of ``block``-shaped
tiles (``(1, 1)`` = element-wise). The matrix keeps exactly the requested number of tiles, split
over gate blocks and block-rows as equally as possible (``plan_degrees``: row degrees ``d`` or
``d + 1``; ``row_degrees="equal"`` keeps exactly ``d`` per row instead and rounds the count);
every block-column keeps ``q`` or ``q + 1`` tiles, the ``+1`` columns rotating across gates so the
whole matrix is as biregular as its degrees allow (column counts within 1).

Construction of one gate block, given row and column capacities:

1. *Greedy by magnitude*: visit tiles in decreasing score (RMS of |W| over the tile) among the
   ``CANDIDATE_FACTOR × edges`` best, keep a tile while its row and its column have capacity left,
   until ``greedy_share × edges`` tiles are kept. Done in vectorised rounds: a tile whose rank among
   the remaining candidates of its row and of its column is below both capacities is exactly a
   tile the sequential greedy keeps.
2. *Random completion*: the remaining degree deficits are paired by a random configuration
   (permutation) model; pairs landing on an edge are re-paired with released good pairs while that
   makes progress, and what is left is placed by degree-preserving swaps.
3. *Check*: Δr of the tile graph (``spectral.expansion``). If it is negative, repair, at most
   ``max_repairs`` rounds. ``spectral`` (default): re-randomise the edges carrying the singular
   directions above the bound — the largest entries of ``Σ_{σᵢ > bound, i ≥ 2} σᵢ uᵢ vᵢᵀ`` on the
   mask, just as many as bring those directions below the bound (see ``_repair_spectral``). ``bisect``:
   rebuild with a new random part, bisecting the share of magnitude edges between the largest share
   that passed and the smallest that failed.

Grid alignment: tiles start at row 0 of each gate block and column 0 of the matrix. When a side is
not a multiple of the tile, the last tile row/column is partial; it counts as one tile, i.e. the
matrix is treated as if zero-padded to a multiple of the tile (what a block kernel does).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .bipartite import gate_names, gate_slices
from .spectral import DENSE_SVD_MAX_DIM, expansion

CANDIDATE_FACTOR = 2  # the greedy looks at the 2×edges best tiles; deficits beyond go random
_SHUFFLE_ROUNDS = 60
_SWAP_ROUNDS = 2000
REPAIRS = ("spectral", "bisect")
_SVDS_DIRECTIONS = 12  # violating directions looked at in large matrices


ROW_DEGREES = ("balanced", "equal")


def degree_for(cols: int, sparsity: float) -> int:
    """Tiles per block-row when every row keeps the same count: ``round((1 − s) · cols)``, at least 1
    (0 would empty the matrix)."""
    return min(cols, max(1, int(round((1.0 - sparsity) * cols))))


def balanced(total: int, n: int, order: np.ndarray | None = None) -> np.ndarray:
    """``total`` split over ``n`` slots as equally as possible: ``total // n`` each, and one more for
    the first ``total % n`` slots of ``order`` (default: slot order)."""
    q, r = divmod(int(total), n)
    out = np.full(n, q, dtype=np.int64)
    out[(np.arange(n) if order is None else np.asarray(order))[:r]] += 1
    return out


@dataclass(frozen=True)
class DegreePlan:
    """How many tiles each gate block and each of its block-rows keeps."""

    gate_edges: np.ndarray  # [gates] tiles per gate block
    row_degrees: list[np.ndarray]  # per gate, [block-rows]
    limit: str  # why the plan misses the requested count ("" when it does not)


def plan_degrees(
    gates: int,
    n_brows: int,
    n_bcols: int,
    sparsity: float,
    row_degrees: str = "balanced",
    row_order: list[np.ndarray] | None = None,
) -> DegreePlan:
    """Tile counts for a ``gates × n_brows`` by ``n_bcols`` grid at ``sparsity``.

    ``balanced`` (default): the matrix keeps exactly ``round((1 − s) · tiles)`` tiles, split over the
    gate blocks and then over block-rows as equally as possible (row degrees differ by at most one;
    ``row_order[g]`` says which rows of gate g get the extra tile). Below one tile per block-row some
    rows keep none: the unit still has its other matrices' inputs, and the Ramanujan verdict of such
    a sparse graph is undefined anyway (average degree < 3). ``equal``: every block-row keeps
    ``degree_for(n_bcols, s)`` tiles (ELL without padding, at least one) — the count is then rounded
    to a whole row degree, and ``limit`` says so when that misses the requested count.
    """
    tiles = gates * n_brows * n_bcols
    want = int(round((1.0 - sparsity) * tiles))
    if row_degrees == "equal":
        d = degree_for(n_bcols, sparsity)
        edges = np.full(gates, n_brows * d, dtype=np.int64)
        rows = [np.full(n_brows, d, dtype=np.int64) for _ in range(gates)]
        got = int(edges.sum())
        limit = (
            ""
            if got == want
            else (f"--row-degrees equal keeps {d} of {n_bcols} in every row, which is {1 - got / tiles:.4f}")
        )
        return DegreePlan(edges, rows, limit)
    if row_degrees != "balanced":
        raise ValueError(f"row_degrees must be one of {ROW_DEGREES}")
    edges = balanced(want, gates)
    rows = [balanced(int(e), n_brows, None if row_order is None else row_order[g]) for g, e in enumerate(edges)]
    return DegreePlan(edges, rows, "")


def column_capacities(edges: np.ndarray, cols: int, order: np.ndarray) -> np.ndarray:
    """[gates, cols] column degrees: ``q`` or ``q+1`` per gate, the ``+1``s rotating along ``order``.

    Gate g has ``edges[g] = q·cols + r`` edges; it gives its ``r`` extra edges to the columns at
    positions ``offset … offset + r − 1`` (mod cols) of ``order``, the offset advancing by ``r``
    from gate to gate, so summed over gates every column gets ``⌊R/cols⌋`` or ``⌈R/cols⌉`` extras
    (R = all extras): the whole matrix is biregular as well, as far as the degrees allow.
    """
    gates = len(edges)
    caps = np.zeros((gates, cols), dtype=np.int64)
    offset = 0
    for g in range(gates):
        q, r = divmod(int(edges[g]), cols)
        caps[g] = q
        caps[g, order[(offset + np.arange(r)) % cols]] += 1
        offset += r
    return caps


def _group_rank(groups: np.ndarray, n: int) -> np.ndarray:
    """Rank of each element among the earlier elements of its group (its occurrence number)."""
    # 16-bit keys make numpy's stable sort a radix sort: linear instead of n log n
    keys = groups.astype(np.uint16) if n <= np.iinfo(np.uint16).max + 1 else groups
    idx = np.argsort(keys, kind="stable")
    counts = np.bincount(groups, minlength=n)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.empty_like(idx)
    rank[idx] = np.arange(groups.size) - starts[groups[idx]]
    return rank


def greedy_order(scores: np.ndarray, row_cap: np.ndarray, col_cap: np.ndarray) -> np.ndarray:
    """Flat indices the sequential greedy keeps, in the order it keeps them.

    The sequential greedy visits entries by decreasing score (ties: lower index first) and keeps
    one while its row and column have capacity left. With a budget ``b`` it keeps exactly the
    first ``b`` of this list, so one call serves every greedy share. Computed in vectorised rounds:
    a candidate whose occurrence number among the remaining candidates of its row and of its column
    is below both remaining capacities is kept by the sequential greedy too.
    """
    rows, cols = scores.shape
    flat = scores.ravel()
    k = min(flat.size, CANDIDATE_FACTOR * int(row_cap.sum()))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    if k < flat.size:  # the k best by (score, lower index): ties at the cut-off must follow the scan order
        kth = np.partition(flat, flat.size - k)[flat.size - k]
        above = np.flatnonzero(flat > kth)
        cand = np.concatenate([above, np.flatnonzero(flat == kth)[: k - above.size]])
    else:
        cand = np.arange(flat.size)
    cand = cand[np.lexsort((cand, -flat[cand]))]
    row_left, col_left = row_cap.astype(np.int64).copy(), col_cap.astype(np.int64).copy()
    kept = []
    while cand.size:
        r, c = np.divmod(cand, cols)
        ok = (_group_rank(r, rows) < row_left[r]) & (_group_rank(c, cols) < col_left[c])
        if not ok.any():
            break
        kept.append(cand[ok])
        row_left -= np.bincount(r[ok], minlength=rows)
        col_left -= np.bincount(c[ok], minlength=cols)
        cand = cand[~ok & (row_left[r] > 0) & (col_left[c] > 0)]
    kept = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
    return kept[np.lexsort((kept, -flat[kept]))]  # the order the sequential greedy keeps them


def complete_random(
    mask: np.ndarray, row_deficit: np.ndarray, col_deficit: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Add edges so rows/columns gain exactly their deficits: a random configuration model.

    Row and column stubs are paired by a random permutation and every pair landing on a free entry
    is kept. The rest are re-paired among themselves plus twice as many kept pairs (released
    again), while that makes progress; what is left is placed by degree-preserving swaps with
    existing edges, ``(i2, j2) -> (i, j2), (i2, j)``, a conflict-free batch at a time.
    """
    rows, cols = mask.shape
    out = mask.copy()
    r = np.repeat(np.arange(rows), row_deficit)
    c = np.repeat(np.arange(cols), col_deficit)
    if r.size != c.size:
        raise ValueError(f"row deficits ({r.size}) and column deficits ({c.size}) differ")
    if r.size == 0:
        return out
    c = rng.permutation(c)
    flat = out.ravel()
    placed = np.zeros(r.size, dtype=bool)

    def place(idx):
        """Keep the pairs of ``idx`` whose entry is free (one per entry); return the others."""
        k = r[idx] * cols + c[idx]
        free = ~flat[k]
        _, first = np.unique(k[free], return_index=True)
        keep = idx[free][first]
        flat[r[keep] * cols + c[keep]] = True
        placed[keep] = True
        return idx[~placed[idx]]

    pending = place(np.arange(r.size))
    best = pending.size
    for _ in range(_SHUFFLE_ROUNDS):
        if pending.size == 0:
            return out
        done = np.flatnonzero(placed)
        release = rng.choice(done, size=min(done.size, 2 * pending.size), replace=False)
        flat[r[release] * cols + c[release]] = False
        placed[release] = False
        idx = np.concatenate([pending, release])
        c[idx] = c[rng.permutation(idx)]
        pending = place(idx)
        if pending.size > 0.9 * best:  # stalled: deficits concentrated on a few nodes need swaps
            break
        best = min(best, pending.size)

    pi, pj = r[pending], c[pending]
    for _ in range(_SWAP_ROUNDS):
        if pi.size == 0:
            return out
        edges = np.flatnonzero(flat)
        e = edges[rng.integers(edges.size, size=pi.size)]
        i2, j2 = np.divmod(e, cols)
        a, b = pi * cols + j2, i2 * cols + pj  # the two new edges
        ok = (i2 != pi) & (j2 != pj) & ~flat[a] & ~flat[b]
        # a batch of swaps must touch pairwise distinct entries
        touched = np.concatenate([e[ok], a[ok], b[ok]])
        uniq, counts = np.unique(touched, return_counts=True)
        clash = np.isin(touched, uniq[counts > 1])
        n = int(ok.sum())
        ok_idx = np.flatnonzero(ok)[~(clash[:n] | clash[n : 2 * n] | clash[2 * n :])]
        flat[e[ok_idx]] = False
        flat[a[ok_idx]] = True
        flat[b[ok_idx]] = True
        left = np.ones(pi.size, dtype=bool)
        left[ok_idx] = False
        pi, pj = pi[left], pj[left]
    raise RuntimeError(f"cannot complete a biregular mask of shape {mask.shape}")  # no simple graph has these degrees


@dataclass
class GateReport:
    gate: str
    greedy_edges: int
    random_edges: int
    greedy_share: float
    attempts: int
    ramanujan_gap: float | None
    ramanujan: bool | None
    note: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class BiregularMask:
    mask: np.ndarray  # bool, the matrix's shape
    tile_masks: list[np.ndarray]  # per gate, [block-rows, block-cols]
    block: tuple[int, int]
    row_degree: tuple[int, int]  # (min, max) tiles per block-row over the gate blocks
    gates: list[GateReport] = field(default_factory=list)
    limit: str = ""  # why the mask misses the requested count ("" when it does not)

    @property
    def ramanujan_gap(self) -> float | None:
        gaps = [g.ramanujan_gap for g in self.gates if g.ramanujan_gap is not None]
        return min(gaps) if gaps else None

    @property
    def ramanujan(self) -> bool | None:
        verdicts = [g.ramanujan for g in self.gates]
        if any(v is False for v in verdicts):
            return False
        return True if verdicts and all(v is True for v in verdicts) else None


def tile_scores(values: np.ndarray, block: tuple[int, int]) -> np.ndarray:
    """RMS of |values| over each tile (partial edge tiles: over the entries they cover)."""
    br, bc = block
    if block == (1, 1):
        return np.abs(values)
    rows, cols = values.shape
    nr, nc = -(-rows // br), -(-cols // bc)
    padded = np.zeros((nr * br, nc * bc), dtype=np.float64)
    padded[:rows, :cols] = np.square(values, dtype=np.float64)
    counts = np.zeros_like(padded)
    counts[:rows, :cols] = 1.0
    sums = padded.reshape(nr, br, nc, bc).sum(axis=(1, 3))
    n = counts.reshape(nr, br, nc, bc).sum(axis=(1, 3))
    return np.sqrt(sums / n)


def expand_tiles(tiles: np.ndarray, block: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    br, bc = block
    return np.repeat(np.repeat(tiles, br, axis=0), bc, axis=1)[: shape[0], : shape[1]]


def biregular_mask(
    values: np.ndarray,
    sparsity: float,
    rng: np.random.Generator,
    *,
    gates: int = 1,
    cell: str | None = None,
    block: tuple[int, int] = (1, 1),
    magnitude_aware: bool = True,
    greedy_share: float = 1.0,
    max_repairs: int = 8,
    repair: str = "spectral",
    row_degrees: str = "balanced",
) -> BiregularMask:
    """A biregular mask of ``values`` [gates·units, cols] at ``sparsity`` (see the module doc and
    ``plan_degrees`` for ``row_degrees``)."""
    if repair not in REPAIRS:
        raise ValueError(f"repair must be one of {REPAIRS}")
    if not 0.0 <= greedy_share <= 1.0:
        raise ValueError("greedy_share must be in [0, 1]")
    if max_repairs < 0:
        raise ValueError("max_repairs must be >= 0")
    values = np.asarray(values)
    rows, cols = values.shape
    slices = gate_slices(rows, gates)
    units = rows // gates
    br, bc = block
    n_brows, n_bcols = -(-units // br), -(-cols // bc)
    share = greedy_share if magnitude_aware else 0.0

    scores = [tile_scores(values[s], block) for s in slices]
    if magnitude_aware:  # the most important input columns (and rows) get the extra edges first
        order = np.lexsort((np.arange(n_bcols), -np.sum(scores, axis=(0, 1))))
        row_order = [np.lexsort((np.arange(n_brows), -sc.sum(axis=1))) for sc in scores]
    else:
        order = rng.permutation(n_bcols)
        row_order = [rng.permutation(n_brows) for _ in slices]
    plan = plan_degrees(gates, n_brows, n_bcols, sparsity, row_degrees, row_order)
    caps = column_capacities(plan.gate_edges, n_bcols, order)

    mask = np.zeros((rows, cols), dtype=bool)
    tiles_out, reports = [], []
    for g, (gname, rs) in enumerate(zip(gate_names(cell, gates), slices)):
        row_cap = plan.row_degrees[g]
        order_kept = greedy_order(scores[g], row_cap, caps[g]) if share > 0 else np.zeros(0, dtype=np.int64)
        build = _repair_spectral if repair == "spectral" else _repair_bisect
        tiles, _, attempts, e = build(order_kept, row_cap, caps[g], share, max_repairs, rng)
        magnitude = np.zeros(tiles.size, dtype=bool)
        magnitude[order_kept[: int(round(share * int(row_cap.sum())))]] = True
        n_greedy = int((magnitude & tiles.ravel()).sum())
        tiles_out.append(tiles)
        mask[rs] = expand_tiles(tiles, block, (units, cols))
        # share = fraction of the final edges that the magnitude greedy chose (random draws may hit some)
        n_edges = int(tiles.sum())
        reports.append(
            GateReport(
                gname,
                n_greedy,
                n_edges - n_greedy,
                n_greedy / max(1, n_edges),
                attempts,
                e.ramanujan_gap,
                e.ramanujan,
                e.note,
            )
        )
    degrees = np.concatenate(plan.row_degrees)
    return BiregularMask(mask, tiles_out, (br, bc), (int(degrees.min()), int(degrees.max())), reports, plan.limit)


def _start(order_kept, row_cap, col_cap, share, rng):
    rows, cols = row_cap.size, col_cap.size
    greedy = np.zeros(rows * cols, dtype=bool)
    greedy[order_kept[: int(round(share * int(row_cap.sum())))]] = True
    greedy = greedy.reshape(rows, cols)
    return complete_random(greedy, row_cap - greedy.sum(axis=1), col_cap - greedy.sum(axis=0), rng)


def _violating_directions(tiles: np.ndarray, bound: float):
    """Non-trivial singular triplets of the mask above the Ramanujan bound: (u, σ, vᵀ)."""
    m = tiles.astype(np.float64)
    if min(m.shape) <= DENSE_SVD_MAX_DIM:
        u, s, vt = np.linalg.svd(m, full_matrices=False)
    else:
        from scipy.sparse.linalg import svds

        k = min(_SVDS_DIRECTIONS, min(m.shape) - 1)
        u, s, vt = svds(sp.csr_array(m), k=k, v0=np.random.default_rng(0).standard_normal(min(m.shape)))
        order = np.argsort(s)[::-1]
        u, s, vt = u[:, order], s[order], vt[order]
    keep = np.flatnonzero(s[1:] > bound) + 1
    return u[:, keep], s[keep], vt[keep]


def _repair_spectral(order_kept, row_cap, col_cap, share, max_repairs, rng):
    """Greedy + random; while the graph fails the bound, re-randomise the edges that carry the
    violating singular directions.

    For a violating direction l the mask's projection uₗᵀ M vₗ is σₗ; removing an edge (i, j) lowers
    it by uₗᵢ vₗⱼ, while random replacements add ~0. Edges are scored by
    c_ij = Σₗ σₗ uₗᵢ vₗⱼ and the highest-scoring ones are removed until the removed score reaches
    Σₗ σₗ (σₗ − τ·bound): just what brings every violating direction below τ·bound, without the
    over-correction of removing a fixed large fraction (the remainder would be anti-aligned with the
    structure, a structure again). τ starts at 0.95 and tightens each round (0.9, 0.8, 0.6, 0.2, 0).
    Returns the first passing build, else the build with the largest Δr.
    """
    rows, cols = row_cap.size, col_cap.size
    edges = int(row_cap.sum())
    tiles = _start(order_kept, row_cap, col_cap, share, rng)
    best = None
    attempts = 0
    for attempt in range(max_repairs + 1):
        attempts = attempt + 1
        e = expansion(tiles, cheeger=False)
        if best is None or _better(e, best[1]):
            best = (tiles, e)
        if e.ramanujan is not False or attempt == max_repairs:
            break
        u, sig, vt = _violating_directions(tiles, e.bound)
        tau = max(0.0, 1.0 - 0.05 * 2**attempt)
        need = float(np.sum(sig * (sig - tau * e.bound)))
        flat_idx = np.flatnonzero(tiles)
        i, j = np.divmod(flat_idx, cols)
        score = np.einsum("ek,k,ek->e", u[i], sig, vt.T[j])
        order = np.argsort(-score, kind="stable")
        remove = int(np.searchsorted(np.cumsum(score[order]), need)) + 1
        drop = flat_idx[order[: min(remove, edges)]]
        tiles = tiles.copy().ravel()
        tiles[drop] = False
        tiles = tiles.reshape(rows, cols)
        tiles = complete_random(tiles, row_cap - tiles.sum(axis=1), col_cap - tiles.sum(axis=0), rng)
    tiles, e = best
    return tiles, None, attempts, e


def _repair_bisect(order_kept, row_cap, col_cap, share, max_repairs, rng):
    """Rebuild with a new random part, bisecting the greedy share between the largest share that
    passed and the smallest that failed; keep the passing build with the largest share, or the
    build with the largest Δr."""
    edges = int(row_cap.sum())
    best = passing = None
    low, high, s = 0.0, share, share
    attempts = 0
    for attempt in range(max_repairs + 1):
        attempts = attempt + 1
        tiles = _start(order_kept, row_cap, col_cap, s, rng)
        e = expansion(tiles, cheeger=False)
        candidate = (tiles, s, e)
        if best is None or _better(e, best[2]):
            best = candidate
        if e.ramanujan is None:  # degree < 3: the bound says nothing, no rebuild can help
            break
        if e.ramanujan:
            passing, low = candidate, s
            if s == share:
                break
        else:
            high = s
        if share > 0.0:  # bisect; stop once the next share adds or drops no edge
            s = (low + high) / 2.0
            if int(round(s * edges)) in (int(round(low * edges)), int(round(high * edges))) and passing:
                break
        elif passing is not None:  # --init: a new random draw until one passes
            break
    tiles, s, e = passing or best
    return tiles, s, attempts, e


def _better(new, old) -> bool:
    if old.ramanujan_gap is None:
        return new.ramanujan_gap is not None
    return new.ramanujan_gap is not None and new.ramanujan_gap > old.ramanujan_gap


def gated_gap(mask: np.ndarray, gates: int, min_degree: int | None = None) -> tuple[float | None, bool | None, str]:
    """Worst Δr over the gate blocks of a mask, its verdict and (if undefined) why."""
    kwargs = {} if min_degree is None else {"min_degree": min_degree}
    results = [expansion(mask[s], cheeger=False, **kwargs) for s in gate_slices(mask.shape[0], gates)]
    gaps = [e.ramanujan_gap for e in results if e.ramanujan_gap is not None]
    gap = min(gaps) if gaps else None
    if any(e.ramanujan is False for e in results):
        return gap, False, ""
    notes = [e.note for e in results if e.ramanujan is None]
    return (gap, None, notes[0]) if notes else (gap, True, "")

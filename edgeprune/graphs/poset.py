"""Finite posets as bitsets: the reachability order of a DAG and the irreducibles of its
Dedekind–MacNeille completion.

Elements are ``0..n-1``. A set of elements is a row of ``ceil(n / 64)`` uint64 words, bit ``v`` in
word ``v // 64``. ``up[u]`` is ``{v : u <= v}`` and ``down[v]`` is ``{u : u <= v}`` (both reflexive).
Every pass below is a segmented OR/AND over the DAG's edges, so it costs O(edges * n / 64) word
operations and O(n^2 / 8) bytes — the lattice itself (possibly exponential) is never built.

numpy and scipy only (no torch): usable on any DAG, not only on networks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..errors import EdgepruneError

WORD_BITS = 64
# Rows gathered at once by the segmented reductions (bounds temporary memory to ~32 MiB).
_GATHER_WORDS = 1 << 22
# The closure takes the sparse-product route while the successors' up-sets hold fewer elements in
# total than this many times the words the bitset route would touch (measured: ~4).
_SPARSE_ROUTE_FACTOR = 4


class PosetError(EdgepruneError):
    pass


def words_for(n: int) -> int:
    return max(1, (n + WORD_BITS - 1) // WORD_BITS)


def pack_rows(matrix: np.ndarray) -> np.ndarray:
    """Boolean [rows, n] -> uint64 [rows, words_for(n)] bitsets."""
    matrix = np.asarray(matrix, dtype=bool)
    rows, n = matrix.shape
    packed = np.packbits(matrix, axis=1, bitorder="little")
    out = np.zeros((rows, words_for(n) * 8), dtype=np.uint8)
    out[:, : packed.shape[1]] = packed
    return out.view("<u8")


def unpack_rows(bits: np.ndarray, n: int) -> np.ndarray:
    """uint64 bitsets -> boolean [rows, n]."""
    bits = np.ascontiguousarray(bits, dtype="<u8")
    return np.unpackbits(bits.view(np.uint8), axis=1, count=n, bitorder="little").astype(bool)


def popcount(bits: np.ndarray) -> np.ndarray:
    """Set bits per row."""
    return np.bitwise_count(bits).sum(axis=-1, dtype=np.int64)


def _singletons(nodes: np.ndarray, words: int) -> np.ndarray:
    out = np.zeros((len(nodes), words), dtype=np.uint64)
    out[np.arange(len(nodes)), nodes // WORD_BITS] = np.uint64(1) << (nodes % WORD_BITS).astype(np.uint64)
    return out


def _segmented_reduce(
    graph: sp.csr_matrix,
    rows: np.ndarray,
    table: np.ndarray,
    op: np.ufunc,
    empty: np.ndarray,
    transform: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """For each node r in ``rows``: ``op``-reduce ``table[s]`` over its neighbours s in ``graph``.

    Nodes without neighbours get ``empty``. ``transform(gathered, neighbours)`` may edit the
    gathered rows first. Works in chunks so temporaries stay small.
    """
    words = table.shape[1]
    out = np.empty((len(rows), words), dtype=np.uint64)
    degrees = graph.indptr[rows + 1] - graph.indptr[rows]
    out[degrees == 0] = empty
    live = np.flatnonzero(degrees > 0)
    # Chunks of rows whose gathered neighbour rows stay within the memory bound (>= 1 row each).
    ends = np.cumsum(degrees[live])
    budget = max(1, _GATHER_WORDS // words)
    start = 0
    while start < len(live):
        base = ends[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, base + budget, side="right")))
        chunk = live[start:stop]
        sub = graph[rows[chunk]]
        gathered = table[sub.indices]
        if transform is not None:
            gathered = transform(gathered, sub.indices)
        out[chunk] = op.reduceat(gathered, sub.indptr[:-1], axis=0)
        start = stop
    return out


@dataclass(frozen=True)
class Poset:
    """The reachability order of a DAG: ``u <= v`` iff a directed path leads from u to v."""

    n: int
    edges: sp.csr_matrix  # bool [n, n]: the DAG u -> v it was built from
    up: np.ndarray  # uint64 [n, words]: {v : u <= v}
    down: np.ndarray  # uint64 [n, words]: {u : u <= v}
    level: np.ndarray  # int [n]: longest path from a minimal element (0 for minimal elements)

    @property
    def words(self) -> int:
        return self.up.shape[1]

    def leq(self, u: int, v: int) -> bool:
        return bool((int(self.up[u, v // WORD_BITS]) >> (v % WORD_BITS)) & 1)

    def up_set(self, u: int) -> np.ndarray:
        return np.flatnonzero(unpack_rows(self.up[u : u + 1], self.n)[0])

    def down_set(self, v: int) -> np.ndarray:
        return np.flatnonzero(unpack_rows(self.down[v : v + 1], self.n)[0])

    def order_matrix(self) -> np.ndarray:
        """Boolean [n, n] with ``[u, v] = u <= v`` (for small posets and tests)."""
        return unpack_rows(self.up, self.n)


def _as_edges(adjacency, n: int | None = None) -> sp.csr_matrix:
    if sp.issparse(adjacency):
        a = sp.csr_matrix(adjacency)
    else:
        a = sp.csr_matrix(np.asarray(adjacency))
    if a.shape[0] != a.shape[1]:
        raise PosetError(f"an adjacency matrix must be square, got {a.shape[0]}x{a.shape[1]}")
    a.eliminate_zeros()
    a = sp.csr_matrix((np.ones(a.nnz, dtype=bool), a.indices, a.indptr), shape=a.shape)
    a.sum_duplicates()
    a.sort_indices()
    if a.diagonal().any():
        raise PosetError("the graph has a self-loop: reachability would not be antisymmetric")
    return a


def topological_levels(edges: sp.csr_matrix) -> np.ndarray:
    """Longest-path level of every node (Kahn's algorithm one frontier at a time)."""
    n = edges.shape[0]
    indeg = np.bincount(edges.indices, minlength=n)
    level = np.full(n, -1, dtype=np.int64)
    frontier = np.flatnonzero(indeg == 0)
    depth = done = 0
    while frontier.size:
        level[frontier] = depth
        done += frontier.size
        successors = edges[frontier].indices
        np.subtract.at(indeg, successors, 1)
        touched = np.flatnonzero(np.bincount(successors, minlength=n))
        frontier = touched[indeg[touched] == 0]
        depth += 1
    if done != n:
        raise PosetError(f"the graph has a cycle through {n - done} nodes: reachability is not a partial order")
    return level


def _row_classes(graph: sp.csr_matrix, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group ``nodes`` by identical neighbour lists: (index into ``nodes`` of one node per class,
    class of every node). Elements with the same neighbours share every union/intersection over them."""
    indptr, indices = graph.indptr, graph.indices
    first: dict[bytes, int] = {}
    inverse = np.empty(len(nodes), dtype=np.int64)
    reps = []
    for i, r in enumerate(nodes):
        key = indices[indptr[r] : indptr[r + 1]].tobytes()
        k = first.setdefault(key, len(reps))
        if k == len(reps):
            reps.append(i)
        inverse[i] = k
    return np.asarray(reps, dtype=np.int64), inverse


def _union_of_successors(
    edges: sp.csr_matrix, nodes: np.ndarray, up: np.ndarray, sizes: np.ndarray, n: int
) -> np.ndarray:
    """OR of ``up[s]`` over each node's successors s, by the cheaper of two exact routes:
    bitset ORs along the edges (edges * words word operations) or, when the successors' up-sets
    are small, a sparse product of the edges with those sets (sum of their sizes)."""
    reps, inverse = _row_classes(edges, nodes)
    if len(reps) < len(nodes):
        return _union_of_successors(edges, nodes[reps], up, sizes, n)[inverse]
    sub = edges[nodes]
    words = up.shape[1]
    if sub.nnz == 0:
        return np.zeros((len(nodes), words), dtype=np.uint64)
    if int(sizes[sub.indices].sum()) > _SPARSE_ROUTE_FACTOR * sub.nnz * words:
        return _segmented_reduce(edges, nodes, up, np.bitwise_or, np.zeros(words, dtype=np.uint64))
    succ = np.flatnonzero(np.bincount(sub.indices, minlength=n))
    reach = sp.csr_matrix(unpack_rows(up[succ], n).astype(np.float32))
    hops = sp.csr_matrix(sub[:, succ], dtype=np.float32)
    out = np.zeros((len(nodes), words), dtype=np.uint64)
    step = max(1, (1 << 24) // max(n, 1))  # dense rows of the product, a chunk at a time
    for i in range(0, len(nodes), step):
        out[i : i + step] = pack_rows((hops[i : i + step] @ reach).toarray() > 0)
    return out


def reachability(adjacency) -> Poset:
    """The poset of a DAG given as a square adjacency (dense or scipy.sparse; nonzero = edge u -> v)."""
    edges = _as_edges(adjacency)
    n = edges.shape[0]
    words = words_for(n)
    level = topological_levels(edges)
    up = np.zeros((n, words), dtype=np.uint64)
    sizes = np.zeros(n, dtype=np.int64)  # |up[u]| of the rows filled so far
    # Successors sit on strictly higher levels: fill up-sets from the top level down.
    for depth in range(int(level.max(initial=-1)), -1, -1):
        nodes = np.flatnonzero(level == depth)
        if nodes.size == 0:
            continue
        up[nodes] = _singletons(nodes, words) | _union_of_successors(edges, nodes, up, sizes, n)
        sizes[nodes] = popcount(up[nodes])
    down = pack_rows(unpack_rows(up, n).T)
    return Poset(n, edges, up, down, level)


def _full_set(n: int) -> np.ndarray:
    return pack_rows(np.ones((1, n), dtype=bool))[0]


def _reducible_by_successors(edges: sp.csr_matrix, below: np.ndarray, n: int) -> np.ndarray:
    """Bool [n]: ``below[p]`` equals the intersection of ``below[s]`` over p's neighbours s in ``edges``.

    Elements with one neighbour never are (s itself is in ``below[s]``), nor are elements whose
    neighbour list another element shares (the intersection then holds both of them, and neither
    is below the other: that would need a path through a common neighbour, i.e. a cycle).
    Elements without neighbours compare with the empty intersection, the whole set. For the rest
    the intersection is built a block of neighbours at a time and an element is settled as soon
    as it reaches ``below[p]`` (it can only shrink to it): on sparse graphs most reducible
    elements settle after a few neighbours instead of all of them.
    """
    indptr, indices = edges.indptr, edges.indices
    degree = np.diff(indptr)
    reducible = np.zeros(n, dtype=bool)
    sinks = np.flatnonzero(degree == 0)
    reducible[sinks] = np.all(below[sinks] == _full_set(n), axis=1)
    nodes = np.flatnonzero(degree >= 2)
    reps, inverse = _row_classes(edges, nodes)
    nodes = nodes[reps[np.bincount(inverse, minlength=len(reps)) == 1]]  # classes of one element
    shared = np.repeat(_full_set(n)[None, :], len(nodes), axis=0)
    first, deg, own = indptr[nodes], degree[nodes], below[nodes]
    live, done, block = np.arange(len(nodes)), 0, 4
    while live.size:
        for j in range(done, done + block):
            take = live[deg[live] > j]
            if take.size == 0:
                break
            shared[take] &= below[indices[first[take] + j]]
        done += block
        at_floor = np.all(shared[live] == own[live], axis=1)
        live = live[~at_floor & (deg[live] > done)]
        block *= 2
    reducible[nodes] = np.all(shared == own, axis=1)
    return reducible


def meet_irreducible(poset: Poset) -> np.ndarray:
    """Bool [n]: p is meet-irreducible in the Dedekind–MacNeille completion of ``poset``.

    Exact criterion: ``p`` is meet-reducible iff ``↓p`` equals the intersection of ``↓q`` over all
    ``q > p`` (then ``p`` is the meet of the elements above it). That intersection equals the one
    over p's direct successors in the DAG (every ``q > p`` lies above one of them), so ANDs of
    down-set bitsets along the edges decide every element. A maximal element is irreducible
    unless it is the greatest element (the empty meet, the top, is not irreducible).
    """
    return ~_reducible_by_successors(poset.edges, poset.down, poset.n)


def join_irreducible(poset: Poset) -> np.ndarray:
    """Bool [n]: p is join-irreducible in the completion (the order dual of ``meet_irreducible``)."""
    return ~_reducible_by_successors(poset.edges.T.tocsr(), poset.up, poset.n)


def covers(poset: Poset) -> sp.csr_matrix:
    """The Hasse diagram: edges u -> v of the DAG with no w such that u < w < v."""
    n = poset.n
    nodes = np.arange(n)
    # Strictly above a successor s is up[s] without s; an edge u -> v is indirect iff v is there
    # for some successor of u.
    strict = poset.up & ~_singletons(nodes, poset.words)
    sizes = popcount(strict)
    above = _union_of_successors(poset.edges, nodes, strict, sizes, n)
    e = poset.edges.tocoo()
    indirect = (above[e.row, e.col // WORD_BITS] >> (e.col % WORD_BITS).astype(np.uint64)) & np.uint64(1)
    keep = indirect == 0
    return sp.csr_matrix((np.ones(int(keep.sum()), dtype=bool), (e.row[keep], e.col[keep])), shape=e.shape)


def figures(poset: Poset, meet_irr: np.ndarray | None = None, join_irr: np.ndarray | None = None) -> dict:
    """Size figures of the poset and of its completion's irreducibles (JSON-ready)."""
    meet_irr = meet_irreducible(poset) if meet_irr is None else meet_irr
    join_irr = join_irreducible(poset) if join_irr is None else join_irr
    relations = int(popcount(poset.up).sum()) - poset.n
    out_deg = np.diff(poset.edges.indptr)
    in_deg = np.bincount(poset.edges.indices, minlength=poset.n)
    return {
        "elements": poset.n,
        "edges": int(poset.edges.nnz),
        "covers": int(covers(poset).nnz),
        "relations": relations,  # comparable pairs u < v
        "comparability": relations / (poset.n * (poset.n - 1) / 2) if poset.n > 1 else 0.0,
        "height": int(poset.level.max(initial=-1)) + 1,  # elements in a longest chain
        "minimal": int((in_deg == 0).sum()),
        "maximal": int((out_deg == 0).sum()),
        "meet_irreducible": int(meet_irr.sum()),
        "join_irreducible": int(join_irr.sum()),
    }

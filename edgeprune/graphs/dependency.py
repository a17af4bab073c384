"""The one-step-unrolled dependency graph of a recurrent model, seen as a poset.

Nodes are units of the node groups of one unrolled step — ``x`` (inputs), ``h{l}@t-1`` (layer l's
previous state), ``h{l}@t`` (layer l now), ``y`` (head outputs) — and every weight matrix is a
set of unit-level edges ``u -> v`` with strength ``a(u, v) = sqrt(sum over gates of W_g[v, u]^2)``.
The graph is acyclic: previous states are sources, the head's outputs sinks.

From it (docs/lattice.md has each choice and which parts are our reading of the paper):

- adjacency values: *binary* (``A = 1`` iff ``a > tau``, tau a quantile of the strengths, per
  matrix or over all prunable matrices) or *continuous* (``A = a / max a``); one keep-threshold
  ``theta`` for both: an edge exists iff ``A > theta``;
- the reachability poset of that adjacency and the meet-irreducible units of its
  Dedekind–MacNeille completion (``edgeprune.graphs.poset``) — of the one-step-unrolled graph, or
  of the recurrent graph (``h@t-1`` and ``h@t`` one node) with its strongly connected components
  collapsed;
- unit centrality on the continuous adjacency (strength, PageRank, betweenness), in [0, 1];
- the connection score ``|W| * (1 + beta*[u or v meet-irreducible] + gamma*c(u)*c(v))`` and the
  natural-mode keep rule, with irreducibility asked of either endpoint, the source, or both.

numpy/scipy/networkx only (no torch): works on any matrices, e.g. weights of a user's model.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..errors import EdgepruneError
from . import poset as posets

ADJACENCIES = ("binary", "continuous")
GRAPHS = ("unrolled", "recurrent")  # the poset's graph: one unrolled step, or W_hh cycles collapsed
ENDPOINTS = ("either", "source", "both")  # where a connection needs a critical unit
CENTRALITIES = ("strength", "pagerank", "betweenness")
SCOPES = ("layer", "global")


class GraphError(EdgepruneError):
    pass


@dataclass(frozen=True)
class Connection:
    """A weight matrix as unit edges ``src -> dst``: ``gates`` row blocks of ``units`` rows."""

    name: str
    values: np.ndarray  # [gates * units, cols]; row r belongs to destination unit r % units
    gates: int
    src: str
    dst: str
    prunable: bool = True

    @classmethod
    def of(cls, info, prunable: bool = True) -> Connection:
        """From anything with ``name, values, gates, src, dst`` (e.g. ``prune.WeightInfo``)."""
        return cls(info.name, np.asarray(info.values), int(info.gates), info.src, info.dst, prunable)

    @property
    def units(self) -> int:
        return self.values.shape[0] // self.gates

    def unit_strength(self) -> np.ndarray:
        """``a[v, u] = sqrt(sum_g W_g[v, u]^2)``, float64 [units, cols]."""
        total = np.zeros((self.units, self.values.shape[1]))
        for block in np.asarray(self.values).reshape(self.gates, self.units, -1):
            total += np.square(block, dtype=np.float64)
        return np.sqrt(total)


def _group_key(name: str):
    """x first, then previous states, current states (by layer), the head, anything else."""
    m = re.fullmatch(r"h(\d+)@(t-1|t)", name)
    if name == "x":
        return (0, 0, name)
    if m:
        return (1 if m.group(2) == "t-1" else 2, int(m.group(1)), name)
    if name == "y":
        return (3, 0, name)
    return (4, 0, name)


@dataclass
class DependencyGraph:
    groups: dict[str, range]  # node group -> its node indices
    connections: list[Connection]
    strengths: list[np.ndarray]  # per connection, unit strengths [units(dst), cols(src)]

    @property
    def n(self) -> int:
        return sum(len(r) for r in self.groups.values())

    def node_names(self) -> list[str]:
        return [f"{g}[{i}]" for g, r in self.groups.items() for i in range(len(r))]

    def group_of(self, node: int) -> tuple[str, int]:
        for g, r in self.groups.items():
            if node in r:
                return g, node - r.start
        raise IndexError(node)

    def edge_matrix(self, present: list[np.ndarray], weights: list[np.ndarray] | None = None) -> sp.csr_matrix:
        """N x N sparse matrix of the edges ``present[k][v, u]`` of each connection (values: weights)."""
        rows, cols, vals = [], [], []
        for k, c in enumerate(self.connections):
            v_idx, u_idx = np.nonzero(present[k])
            rows.append(self.groups[c.src].start + u_idx)
            cols.append(self.groups[c.dst].start + v_idx)
            vals.append(np.ones(len(v_idx)) if weights is None else weights[k][v_idx, u_idx])
        n = self.n
        if not rows:
            return sp.csr_matrix((n, n))
        return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


def build(connections: Iterable[Connection]) -> DependencyGraph:
    """The dependency graph of ``connections``; group sizes are read off the matrix shapes."""
    connections = list(connections)
    if not connections:
        raise GraphError("no weight matrices to build a dependency graph from")
    sizes: dict[str, tuple[int, str]] = {}
    pairs: dict[tuple[str, str], str] = {}

    def claim(group: str, size: int, who: str):
        if group in sizes and sizes[group][0] != size:
            raise GraphError(
                f"node group '{group}' has {sizes[group][0]} units in {sizes[group][1]} but {size} in {who}"
            )
        sizes.setdefault(group, (size, who))

    for c in connections:
        if c.values.ndim != 2 or c.gates < 1 or c.values.shape[0] % c.gates:
            raise GraphError(f"{c.name}: shape {list(c.values.shape)} is not {c.gates} gate blocks of rows")
        if c.src == c.dst:
            raise GraphError(f"{c.name}: connects '{c.src}' to itself; unroll one step (src '@t-1', dst '@t')")
        if (c.src, c.dst) in pairs:
            raise GraphError(f"{c.name} and {pairs[c.src, c.dst]} both connect '{c.src}' to '{c.dst}'")
        pairs[c.src, c.dst] = c.name
        claim(c.src, c.values.shape[1], c.name)
        claim(c.dst, c.units, c.name)
    groups, start = {}, 0
    for g in sorted(sizes, key=_group_key):
        groups[g] = range(start, start + sizes[g][0])
        start += sizes[g][0]
    return DependencyGraph(groups, connections, [c.unit_strength() for c in connections])


def _check_fraction(name: str, value: float, upper_open: bool = True) -> float:
    ok = 0.0 <= value < 1.0 if upper_open else 0.0 <= value <= 1.0
    if not ok:
        raise GraphError(f"{name} must be in [0, 1{')' if upper_open else ']'}, got {value}")
    return float(value)


@dataclass
class Adjacency:
    kind: str
    present: list[np.ndarray]  # per connection, bool [units, cols]: the edge exists
    thresholds: dict[str, float]  # per prunable connection: strengths must exceed this
    normaliser: float  # max strength over the graph (continuous A = a / normaliser)
    theta: float = 0.5  # keep-threshold on the adjacency values


def adjacency(
    graph: DependencyGraph, kind: str = "binary", *, quantile: float = 0.5, scope: str = "layer", theta: float = 0.5
) -> Adjacency:
    """Which unit edges exist under the ``binary`` or ``continuous`` reading: ``A > theta``.

    The binary values are 0/1 (``a > tau``, tau the ``quantile`` of the strengths), so every
    ``theta`` in [0, 1) gives the same edges; the continuous values are ``a / max a`` and ``theta``
    cuts them (0: every nonzero connection, which makes a dense network's graph complete).
    Frozen (not prunable) connections, e.g. an unpruned head, keep every nonzero edge: they are not
    being decided, only needed for the order.
    """
    if kind not in ADJACENCIES:
        raise GraphError(f"adjacency must be one of {', '.join(ADJACENCIES)}, got '{kind}'")
    if scope not in SCOPES:
        raise GraphError(f"scope must be one of {', '.join(SCOPES)}, got '{scope}'")
    quantile = _check_fraction("quantile", quantile)
    theta = _check_fraction("theta", theta)
    normaliser = max((float(s.max(initial=0.0)) for s in graph.strengths), default=0.0)
    prunable = [k for k, c in enumerate(graph.connections) if c.prunable]
    thresholds: dict[str, float] = {}
    if kind == "binary":

        def tau(strengths: np.ndarray) -> float:  # quantile 0 keeps every nonzero edge
            return float(np.quantile(strengths, quantile)) if quantile > 0 and strengths.size else 0.0

        if scope == "global" and prunable:
            shared = tau(np.concatenate([graph.strengths[k].ravel() for k in prunable]))
            thresholds = {graph.connections[k].name: shared for k in prunable}
        else:
            thresholds = {graph.connections[k].name: tau(graph.strengths[k]) for k in prunable}
    else:  # A = a / max a > theta  <=>  a > theta * max a
        thresholds = {graph.connections[k].name: theta * normaliser for k in prunable}
    present = []
    for c, s in zip(graph.connections, graph.strengths):
        present.append(s > thresholds[c.name] if c.prunable else s > 0)
    return Adjacency(kind, present, thresholds, normaliser, theta)


def recurrent_condensation(graph: DependencyGraph, edges: sp.csr_matrix) -> tuple[np.ndarray, sp.csr_matrix]:
    """The recurrent graph — each ``h{l}@t-1`` unit merged into its ``h{l}@t`` unit, so ``W_hh`` and
    feedback close cycles — with its strongly connected components collapsed.

    Returns ``component[i]`` for every node of the unrolled graph and the condensation (a DAG on the
    components; an edge between two components iff some unit edge joins them).
    """
    from scipy.sparse.csgraph import connected_components

    n = graph.n
    merged = np.arange(n)
    for g, r in graph.groups.items():
        m = re.fullmatch(r"(h\d+)@t-1", g)
        if m and f"{m.group(1)}@t" in graph.groups:
            now = graph.groups[f"{m.group(1)}@t"]
            merged[r.start : r.stop] = np.arange(now.start, now.stop)
    coo = edges.tocoo()
    recurrent = sp.csr_matrix((np.ones(coo.nnz), (merged[coo.row], merged[coo.col])), shape=(n, n))
    _, labels = connected_components(recurrent, directed=True, connection="strong")
    # compact the labels of the nodes that still exist (merged-away t-1 units are not nodes)
    alive = np.unique(merged)
    _, compact = np.unique(labels[alive], return_inverse=True)
    label_of = np.zeros(n, dtype=np.int64)
    label_of[alive] = compact
    component = label_of[merged]
    k = int(compact.max(initial=-1)) + 1
    src, dst = component[coo.row], component[coo.col]
    between = src != dst
    condensed = sp.csr_matrix((np.ones(int(between.sum())), (src[between], dst[between])), shape=(k, k))
    condensed.data[:] = 1.0  # duplicates summed: back to 0/1
    return component, condensed


def centrality(
    graph: DependencyGraph, measure: str = "strength", *, seed: int = 0, betweenness_samples: int = 64
) -> np.ndarray:
    """Unit centrality on the continuous adjacency (every nonzero edge, weight ``a / max a``), in [0, 1].

    ``strength``: weighted in + out degree. ``pagerank``: PageRank along the edges (dependencies
    flow towards the outputs), as networkx defines it. ``betweenness``: networkx betweenness with distance
    ``1 / A`` (strong edges are short), estimated from ``betweenness_samples`` source nodes when
    the graph has more nodes (0 = exact).
    """
    if measure not in CENTRALITIES:
        raise GraphError(f"centrality must be one of {', '.join(CENTRALITIES)}, got '{measure}'")
    normaliser = max((float(s.max(initial=0.0)) for s in graph.strengths), default=0.0) or 1.0
    if measure == "strength":  # straight from the blocks: no N x N matrix needed
        values = np.zeros(graph.n)
        for c, s in zip(graph.connections, graph.strengths):
            src, dst = graph.groups[c.src], graph.groups[c.dst]
            values[src.start : src.stop] += s.sum(axis=0) / normaliser
            values[dst.start : dst.stop] += s.sum(axis=1) / normaliser
    else:
        present = [s > 0 for s in graph.strengths]
        A = graph.edge_matrix(present, [s / normaliser for s in graph.strengths])
        if measure == "pagerank":
            scores = dict(enumerate(pagerank(A)))
        else:
            import networkx as nx

            if betweenness_samples < 0:
                raise GraphError(f"betweenness samples must be >= 0, got {betweenness_samples}")
            D = A.copy()
            D.data = 1.0 / D.data
            G = nx.from_scipy_sparse_array(D, create_using=nx.DiGraph)
            k = betweenness_samples if 0 < betweenness_samples < graph.n else None
            scores = nx.betweenness_centrality(G, k=k, weight="weight", seed=seed)
        values = np.array([scores.get(i, 0.0) for i in range(graph.n)], dtype=np.float64)
    top = values.max(initial=0.0)
    return values / top if top > 0 else np.zeros(graph.n)


def pagerank(weights: sp.csr_matrix, alpha: float = 0.85, tol: float = 1e-6, max_iter: int = 100) -> np.ndarray:
    """PageRank of a weighted digraph with networkx's definition and stopping rule (uniform
    teleport, dangling mass spread uniformly, stop when the L1 change is below ``n * tol``),
    computed on the sparse matrix directly: converting a million-edge graph to networkx and back
    costs a minute, the power iteration milliseconds. tests/graphs checks it against networkx."""
    n = weights.shape[0]
    if n == 0:
        return np.zeros(0)
    out = np.asarray(weights.sum(axis=1)).ravel()
    dangling = out == 0
    step = sp.diags(np.divide(1.0, out, out=np.zeros(n), where=~dangling)) @ weights
    x = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        previous = x
        x = alpha * (step.T @ x) + (alpha * x[dangling].sum() + 1.0 - alpha) / n
        if np.abs(x - previous).sum() < n * tol:
            break
    return x


@dataclass
class Analysis:
    """Everything the lattice method derives from a dependency graph."""

    graph: DependencyGraph
    adjacency: Adjacency
    poset: posets.Poset  # of the unrolled graph, or of the condensation (graph_kind "recurrent")
    meet_irreducible: np.ndarray  # bool [n]: per unit of the unrolled graph
    centrality: np.ndarray  # float [n] in [0, 1]
    centrality_measure: str
    seconds: dict[str, float] = field(default_factory=dict)
    graph_kind: str = "unrolled"
    components: np.ndarray | None = None  # graph_kind "recurrent": each unit's strongly connected component

    def per_group(self, values: np.ndarray) -> dict[str, np.ndarray]:
        return {g: values[r.start : r.stop] for g, r in self.graph.groups.items()}


def analyze(
    graph: DependencyGraph,
    *,
    adjacency_kind: str = "binary",
    quantile: float = 0.5,
    scope: str = "layer",
    theta: float = 0.5,
    centrality_measure: str = "strength",
    seed: int = 0,
    betweenness_samples: int = 64,
    graph_kind: str = "unrolled",
) -> Analysis:
    """Adjacency, reachability poset, meet-irreducibles and centrality, each timed.

    ``graph_kind="recurrent"``: the poset is that of the recurrent graph with its strongly
    connected components collapsed (``recurrent_condensation``), and a unit is meet-irreducible
    iff its component is.
    """
    if graph_kind not in GRAPHS:
        raise GraphError(f"graph must be one of {', '.join(GRAPHS)}, got '{graph_kind}'")
    seconds = {}
    t = time.perf_counter()
    adj = adjacency(graph, adjacency_kind, quantile=quantile, scope=scope, theta=theta)
    edges = graph.edge_matrix(adj.present)
    components = None
    if graph_kind == "recurrent":
        components, edges = recurrent_condensation(graph, edges)
    seconds["adjacency"] = time.perf_counter() - t
    t = time.perf_counter()
    order = posets.reachability(edges)
    seconds["closure"] = time.perf_counter() - t
    t = time.perf_counter()
    irreducible = posets.meet_irreducible(order)
    if components is not None:
        irreducible = irreducible[components]
    seconds["irreducibles"] = time.perf_counter() - t
    t = time.perf_counter()
    c = centrality(graph, centrality_measure, seed=seed, betweenness_samples=betweenness_samples)
    seconds["centrality"] = time.perf_counter() - t
    return Analysis(graph, adj, order, irreducible, c, centrality_measure, seconds, graph_kind, components)


def endpoint_rule(at_source: np.ndarray, at_destination: np.ndarray, endpoints: str) -> np.ndarray:
    """Bool [dst units, src units]: the connection has a critical unit where ``endpoints`` asks."""
    if endpoints == "either":
        return at_destination[:, None] | at_source[None, :]
    if endpoints == "source":
        return np.broadcast_to(at_source[None, :], (at_destination.size, at_source.size))
    if endpoints == "both":
        return at_destination[:, None] & at_source[None, :]
    raise GraphError(f"endpoints must be one of {', '.join(ENDPOINTS)}, got '{endpoints}'")


def _unit_factors(analysis: Analysis, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    c = analysis.graph.connections[k]
    src, dst = analysis.graph.groups[c.src], analysis.graph.groups[c.dst]
    irr, cen = analysis.meet_irreducible, analysis.centrality
    return irr[src.start : src.stop], irr[dst.start : dst.stop], cen[src.start : src.stop], cen[dst.start : dst.stop]


def connection_scores(
    analysis: Analysis, *, beta: float = 1.0, gamma: float = 1.0, endpoints: str = "either"
) -> dict[str, np.ndarray]:
    """Per prunable weight entry ``W_g[v, u]``: ``|W| * (1 + beta*[u or v irreducible] + gamma*c(u)*c(v))``
    (float32, like the weights: with beta = gamma = 0 it orders exactly as magnitude does);
    ``endpoints`` = "source" / "both" asks irreducibility of u / of u and v instead."""
    if beta < 0 or gamma < 0:
        raise GraphError(f"beta and gamma must be >= 0, got beta={beta}, gamma={gamma}")
    scores = {}
    for k, c in enumerate(analysis.graph.connections):
        if not c.prunable:
            continue
        irr_u, irr_v, c_u, c_v = _unit_factors(analysis, k)
        factor = (1.0 + beta * endpoint_rule(irr_u, irr_v, endpoints) + gamma * (c_v[:, None] * c_u[None, :])).astype(
            np.float32
        )
        magnitude = np.abs(np.asarray(c.values, dtype=np.float32)).reshape(c.gates, c.units, -1)
        scores[c.name] = (magnitude * factor).reshape(c.values.shape)
    return scores


def central_units(analysis: Analysis, fraction: float) -> np.ndarray:
    """Bool [n]: the ``ceil(fraction * n)`` most central units (ties to the lower index)."""
    fraction = _check_fraction("central fraction", fraction, upper_open=False)
    k = int(np.ceil(fraction * analysis.graph.n))
    out = np.zeros(analysis.graph.n, dtype=bool)
    out[np.argsort(-analysis.centrality, kind="stable")[:k]] = True
    return out


def natural_masks(
    analysis: Analysis, *, central_fraction: float = 0.1, endpoints: str = "either"
) -> dict[str, np.ndarray]:
    """The paper's rule as we read it: keep an edge iff it is in the adjacency and touches a
    meet-irreducible or top-``central_fraction`` central unit (at the ``endpoints`` asked). All gate
    entries of a kept unit edge are kept, except entries that are exactly zero already."""
    critical = analysis.meet_irreducible | central_units(analysis, central_fraction)
    masks = {}
    for k, c in enumerate(analysis.graph.connections):
        if not c.prunable:
            continue
        src, dst = analysis.graph.groups[c.src], analysis.graph.groups[c.dst]
        touches = endpoint_rule(critical[src.start : src.stop], critical[dst.start : dst.stop], endpoints)
        keep = analysis.adjacency.present[k] & touches
        masks[c.name] = np.tile(keep, (c.gates, 1)) & (np.asarray(c.values) != 0)
    return masks


def group_summary(analysis: Analysis) -> dict[str, dict]:
    """Per node group: units, meet-irreducible count, centrality min/mean/max (JSON-ready)."""
    irr = analysis.per_group(analysis.meet_irreducible)
    cen = analysis.per_group(analysis.centrality)
    return {
        g: {
            "units": int(len(irr[g])),
            "meet_irreducible": int(irr[g].sum()),
            "centrality": {
                "min": float(cen[g].min(initial=0.0)),
                "mean": float(cen[g].mean()) if len(cen[g]) else 0.0,
                "max": float(cen[g].max(initial=0.0)),
            },
        }
        for g in analysis.graph.groups
    }


def connections_from(weights: Mapping[str, object], prunable: Iterable[str] | None = None) -> list[Connection]:
    """``Connection``s from a name -> WeightInfo-like mapping; names not in ``prunable`` are frozen."""
    keep = set(weights) if prunable is None else set(prunable)
    return [Connection.of(w, prunable=name in keep) for name, w in weights.items()]

"""The one-step dependency graph, its two adjacencies, irreducible units, centrality and scores."""

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from edgeprune.graphs import dependency as dep
from edgeprune.graphs import poset
from edgeprune.graphs.dependency import Connection, GraphError

# A 1-layer RNN (one gate) with 2 inputs, 2 units and 2 classes, small enough to order by hand.
#   nodes: x0 x1 (inputs), p0 p1 (h0@t-1), c0 c1 (h0@t), y0 y1 (head outputs)
W_IH = np.array([[0.9, 0.1], [0.8, 0.2]])  # rows c0 c1, columns x0 x1
W_HH = np.array([[0.7, 0.05], [0.03, 0.6]])  # rows c0 c1, columns p0 p1
W_HEAD = np.array([[1.0, 0.0], [0.5, 0.5]])  # rows y0 y1, columns c0 c1 (frozen: not pruned)


def small_network():
    return dep.build(
        [
            Connection("ih", W_IH, 1, "x", "h0@t"),
            Connection("hh", W_HH, 1, "h0@t-1", "h0@t"),
            Connection("head", W_HEAD, 1, "h0@t", "y", prunable=False),
        ]
    )


def named(analysis, values):
    names = analysis.graph.node_names()
    return {names[i] for i in np.flatnonzero(values)}


def test_hand_worked_network_binary():
    # Binary, median per matrix: ih keeps x0->c0 (0.9), x0->c1 (0.8); hh keeps p0->c0, p1->c1;
    # the frozen head keeps its nonzero edges c0->y0, c0->y1, c1->y1. x1 is isolated.
    # Down-sets: ↓c0 = {c0, x0, p0}, ↓c1 = {c1, x0, p1}, ↓y0 = {y0} ∪ ↓c0, ↓y1 = {y1} ∪ ↓c0 ∪ ↓c1.
    #   x0: ↓c0 ∩ ↓c1 = {x0} = ↓x0            -> reducible (x0 = c0 ∧ c1)
    #   c0: ↓y0 ∩ ↓y1 = ↓c0                    -> reducible (c0 = y0 ∧ y1)
    #   p0, p1, c1: a single successor, whose down-set is larger -> irreducible
    #   x1, y0, y1: maximal but not the greatest element            -> irreducible
    a = dep.analyze(small_network(), adjacency_kind="binary")
    assert named(a, a.meet_irreducible) == {"x[1]", "h0@t-1[0]", "h0@t-1[1]", "h0@t[1]", "y[0]", "y[1]"}
    assert np.array_equal(a.adjacency.present[0], [[True, False], [True, False]])
    assert a.adjacency.thresholds == {"ih": pytest.approx(0.5), "hh": pytest.approx(0.325)}
    # Natural mode (centrality switched off): x0->c0 joins two reducible units and goes.
    masks = dep.natural_masks(a, central_fraction=0.0)
    assert np.array_equal(masks["ih"], [[False, False], [True, False]])
    assert np.array_equal(masks["hh"], [[True, False], [False, True]])


def test_hand_worked_network_continuous():
    # Continuous: every nonzero connection is an edge, so every source feeds both c0 and c1:
    # ↓c0 ∩ ↓c1 = {x0, x1, p0, p1} is larger than any source's down-set -> all irreducible.
    # c0 still has successors y0, y1 with ↓y0 ∩ ↓y1 = ↓c0 -> the only reducible unit.
    a = dep.analyze(small_network(), adjacency_kind="continuous", theta=0.0)
    assert named(a, ~a.meet_irreducible) == {"h0@t[0]"}
    masks = dep.natural_masks(a, central_fraction=0.0)
    assert masks["ih"].all() and masks["hh"].all()
    # A cut on the normalised strength thins the graph (0.1, 0.05, 0.03 are below 0.15).
    cut = dep.analyze(small_network(), adjacency_kind="continuous", theta=0.15)
    assert np.array_equal(cut.adjacency.present[1], [[True, False], [False, True]])


def test_binary_and_continuous_rank_connections_differently():
    # With a large beta the irreducibility flag dominates: in the binary reading x0->c0 joins
    # two reducible units and loses to the weaker x1->c1; in the continuous reading every input
    # edge touches an irreducible unit, so the ranking is by magnitude.
    for kind, expected in (("binary", [[False, False], [True, True]]), ("continuous", [[True, False], [True, False]])):
        a = dep.analyze(small_network(), adjacency_kind=kind, theta=0.0)
        scores = dep.connection_scores(a, beta=10.0, gamma=0.0)
        keep = scores["ih"] >= np.sort(scores["ih"].ravel())[-2]
        assert np.array_equal(keep, expected), kind
    assert set(scores) == {"ih", "hh"}  # the frozen head is never scored


def test_strength_centrality_by_hand():
    # Normalised by the strongest connection (1.0): c0 has in 0.9+0.1+0.7+0.05 and out 1.0+0.5.
    a = dep.analyze(small_network(), adjacency_kind="binary")
    c = dict(zip(a.graph.node_names(), a.centrality))
    assert c["h0@t[0]"] == pytest.approx(1.0)
    assert c["h0@t[1]"] == pytest.approx((0.8 + 0.2 + 0.03 + 0.6 + 0.5) / 3.25)
    assert c["x[0]"] == pytest.approx(1.7 / 3.25)
    assert c["y[0]"] == pytest.approx(1.0 / 3.25)


def test_pagerank_and_betweenness_follow_networkx():
    graph = small_network()
    g = nx.DiGraph()
    g.add_nodes_from(graph.node_names())
    for conn in graph.connections:
        for v, u in zip(*np.nonzero(conn.values)):
            g.add_edge(
                f"{conn.src}[{u}]",
                f"{conn.dst}[{v}]",
                weight=abs(conn.values[v, u]),
                distance=1 / abs(conn.values[v, u]),
            )
    names = graph.node_names()
    pr = nx.pagerank(g, weight="weight")
    expected = np.array([pr[n] for n in names])
    assert np.allclose(dep.centrality(graph, "pagerank"), expected / expected.max(), atol=1e-6)
    bc = nx.betweenness_centrality(g, weight="distance")
    expected = np.array([bc[n] for n in names])
    assert np.allclose(dep.centrality(graph, "betweenness", betweenness_samples=0), expected / expected.max())


def test_pagerank_on_a_larger_graph_matches_networkx():
    rng = np.random.default_rng(1)
    a = np.triu(rng.random((120, 120)) < 0.05, k=1) * rng.random((120, 120))
    g = nx.from_numpy_array(a, create_using=nx.DiGraph)
    expected = nx.pagerank(g, weight="weight")
    assert np.allclose(dep.pagerank(sp.csr_matrix(a)), [expected[i] for i in range(120)], atol=1e-6)


def test_gate_strengths_and_groups_of_a_two_layer_feedback_model():
    rng = np.random.default_rng(0)
    conns = [
        Connection("l0.ih", rng.normal(size=(4 * 3, 5)), 4, "x", "h0@t"),
        Connection("l0.hh", rng.normal(size=(4 * 3, 3)), 4, "h0@t-1", "h0@t"),
        Connection("l0.fb", rng.normal(size=(4 * 3, 2)), 4, "h1@t-1", "h0@t"),
        Connection("l1.ih", rng.normal(size=(4 * 2, 3)), 4, "h0@t", "h1@t"),
        Connection("l1.hh", rng.normal(size=(4 * 2, 2)), 4, "h1@t-1", "h1@t"),
        Connection("head", rng.normal(size=(3, 2)), 1, "h1@t", "y", prunable=False),
    ]
    graph = dep.build(conns)
    assert list(graph.groups) == ["x", "h0@t-1", "h1@t-1", "h0@t", "h1@t", "y"]
    w = conns[0].values
    assert np.allclose(graph.strengths[0][1, 2], np.sqrt(sum(w[g * 3 + 1, 2] ** 2 for g in range(4))))
    a = dep.analyze(graph, adjacency_kind="continuous", theta=0.0)
    assert a.poset.leq(graph.groups["h1@t-1"][0], graph.groups["y"][0])  # feedback reaches the output
    assert poset.figures(a.poset)["height"] == 4  # x -> h0 -> h1 -> y
    scores = dep.connection_scores(a, beta=0.0, gamma=0.0)
    assert np.allclose(scores["l0.fb"], np.abs(conns[2].values))  # beta = gamma = 0: magnitude


def test_bad_graphs_are_refused():
    with pytest.raises(GraphError, match="'h0@t' has 2 units in ih but 3"):
        dep.build([Connection("ih", W_IH, 1, "x", "h0@t"), Connection("hh", np.ones((3, 3)), 1, "h0@t-1", "h0@t")])
    with pytest.raises(GraphError, match="to itself"):
        dep.build([Connection("hh", W_HH, 1, "h0", "h0")])
    with pytest.raises(GraphError, match="gate blocks"):
        dep.build([Connection("ih", np.ones((5, 2)), 4, "x", "h0@t")])
    with pytest.raises(GraphError, match="quantile must be in"):
        dep.analyze(small_network(), quantile=1.0)


def test_one_theta_for_both_adjacencies():
    # Binary values are 0/1: any theta in [0, 1) gives the same edges. Continuous values are
    # a / max a (max = 0.9 + ... : the strongest connection is W_HEAD's 1.0): theta cuts them.
    g = small_network()
    binary = [dep.adjacency(g, "binary", theta=t).present for t in (0.0, 0.3, 0.99)]
    assert all(np.array_equal(b[k], binary[0][k]) for b in binary for k in range(3))
    for theta in (0.0, 0.15, 0.5, 0.85):
        cont = dep.adjacency(g, "continuous", theta=theta)
        assert np.array_equal(cont.present[0], W_IH / 1.0 > theta)
        assert np.array_equal(cont.present[1], W_HH / 1.0 > theta)
        assert np.array_equal(cont.present[2], W_HEAD != 0)  # frozen: every nonzero edge
    with pytest.raises(GraphError, match="theta"):
        dep.adjacency(g, "continuous", theta=1.0)


def test_recurrent_condensation_matches_networkx():
    rng = np.random.default_rng(4)
    conns = [
        Connection("l0.ih", rng.normal(size=(3 * 5, 4)), 3, "x", "h0@t"),
        Connection("l0.hh", rng.normal(size=(3 * 5, 5)) * (rng.random((15, 5)) < 0.3), 3, "h0@t-1", "h0@t"),
        Connection("l1.ih", rng.normal(size=(3 * 4, 5)), 3, "h0@t", "h1@t"),
        Connection("l1.hh", rng.normal(size=(3 * 4, 4)) * (rng.random((12, 4)) < 0.3), 3, "h1@t-1", "h1@t"),
        Connection("l0.fb", rng.normal(size=(3 * 5, 4)) * (rng.random((15, 4)) < 0.2), 3, "h1@t-1", "h0@t"),
        Connection("head", rng.normal(size=(2, 4)), 1, "h1@t", "y", prunable=False),
    ]
    graph = dep.build(conns)
    a = dep.analyze(graph, adjacency_kind="binary", graph_kind="recurrent")
    # reference: networkx on the recurrent graph built from the names (h{l}@t-1[i] is h{l}@t[i])
    G = nx.DiGraph()
    names = [n.replace("@t-1", "@t") for n in graph.node_names()]
    G.add_nodes_from(set(names))
    for k, c in enumerate(graph.connections):
        v_idx, u_idx = np.nonzero(a.adjacency.present[k])
        for v, u in zip(v_idx, u_idx):
            G.add_edge(names[graph.groups[c.src].start + u], names[graph.groups[c.dst].start + v])
    C = nx.condensation(G)
    mapping = C.graph["mapping"]
    assert a.poset.n == C.number_of_nodes()
    # same partition into components, on every unit of the unrolled graph
    ours, theirs = {}, {}
    for i, n in enumerate(names):
        ours.setdefault(int(a.components[i]), set()).add(n)
        theirs.setdefault(mapping[n], set()).add(n)
    assert sorted(map(sorted, ours.values())) == sorted(map(sorted, theirs.values()))
    # the poset is the condensation's reachability; irreducibility is brute-forced from it
    reach = {c: nx.descendants(C, c) | {c} for c in C.nodes}
    down = {c: {d for d in C.nodes if c in reach[d]} for c in C.nodes}
    irr = {}
    for p in C.nodes:
        above = [q for q in C.nodes if q != p and q in reach[p]]
        meet = set(C.nodes) if not above else set.intersection(*(down[q] for q in above))
        greatest = len(reach[p]) == 1 and all(p in reach[q] for q in C.nodes)
        irr[p] = meet != down[p] and not greatest
    for i, n in enumerate(names):
        assert bool(a.meet_irreducible[i]) == irr[mapping[n]], n

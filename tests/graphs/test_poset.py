"""Reachability posets and the irreducibles of their Dedekind–MacNeille completion.

Expected irreducibles are worked out by hand for textbook lattices and checked against a brute
force completion (all cuts ``A^{ul}``) on random small DAGs.
"""

import itertools

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import shortest_path

from edgeprune.graphs import poset
from edgeprune.graphs.poset import PosetError


def make(n, edges):
    a = np.zeros((n, n), dtype=bool)
    for u, v in edges:
        a[u, v] = True
    return poset.reachability(a)


def irreducibles(p):
    return set(np.flatnonzero(poset.meet_irreducible(p))), set(np.flatnonzero(poset.join_irreducible(p)))


# --- hand-worked posets -------------------------------------------------------------------------


def test_chain():
    # 0 < 1 < 2 < 3: every element but the top has one upper cover (meet-irreducible), every
    # element but the bottom one lower cover (join-irreducible).
    p = make(4, [(0, 1), (1, 2), (2, 3)])
    assert irreducibles(p) == ({0, 1, 2}, {1, 2, 3})


def test_diamond_m3():
    # 0 < a, b, c < 1  (0=0, a=1, b=2, c=3, 1=4). 0 = a ∧ b and 1 = a ∨ b are reducible; the
    # atoms are both meet- and join-irreducible.
    p = make(5, [(0, 1), (0, 2), (0, 3), (1, 4), (2, 4), (3, 4)])
    assert irreducibles(p) == ({1, 2, 3}, {1, 2, 3})


def test_pentagon_n5():
    # 0 < a < b < 1 and 0 < c < 1  (0=0, a=1, b=2, c=3, 1=4). a's only upper cover is b, b's and
    # c's is 1; 0 = a ∧ c. Dually b's only lower cover is a; 1 = b ∨ c.
    p = make(5, [(0, 1), (1, 2), (2, 4), (0, 3), (3, 4)])
    assert irreducibles(p) == ({1, 2, 3}, {1, 2, 3})


def test_boolean_lattice_2_cubed():
    # Subsets of {0,1,2} by bitmask, ordered by inclusion (edges: add one element). The
    # meet-irreducibles are the coatoms (two-element sets), the join-irreducibles the atoms.
    edges = [(s, s | (1 << i)) for s in range(8) for i in range(3) if not s & (1 << i)]
    p = make(8, edges)
    assert irreducibles(p) == ({0b011, 0b101, 0b110}, {0b001, 0b010, 0b100})


def test_bowtie_is_completed_with_a_new_middle_element():
    # a, b < c, d (a=0, b=1, c=2, d=3) is not a lattice; its completion inserts m with
    # a, b < m < c, d. In it a and b have the single upper cover m, and c and d are maximal
    # without being the top: all four elements are meet-irreducible.
    p = make(4, [(0, 2), (0, 3), (1, 2), (1, 3)])
    assert irreducibles(p) == ({0, 1, 2, 3}, {0, 1, 2, 3})


def test_antichain_and_single_element():
    assert irreducibles(make(3, [])) == ({0, 1, 2}, {0, 1, 2})  # completion: 0 < a, b, c < 1
    assert irreducibles(make(1, [])) == (set(), set())  # the single element is top and bottom


# --- brute-force Dedekind–MacNeille completion ------------------------------------------------


def completion_irreducibles(leq: np.ndarray):
    """Reference: the completion as the set of cuts A^{ul}; an element p of P is meet-irreducible
    iff its cut ↓p has exactly one upper cover among the cuts (dually join-irreducible)."""
    n = len(leq)
    cuts = set()
    for r in range(n + 1):
        for subset in itertools.combinations(range(n), r):
            uppers = [v for v in range(n) if all(leq[a, v] for a in subset)]
            lowers = frozenset(u for u in range(n) if all(leq[u, v] for v in uppers))
            cuts.add(lowers)
    cuts = list(cuts)

    def covers_up(c):
        above = [d for d in cuts if c < d]
        return [d for d in above if not any(c < e < d for e in above)]

    def covers_down(c):
        below = [d for d in cuts if d < c]
        return [d for d in below if not any(d < e < c for e in below)]

    down = [frozenset(u for u in range(n) if leq[u, p]) for p in range(n)]
    meet = {p for p in range(n) if len(covers_up(down[p])) == 1}
    join = {p for p in range(n) if len(covers_down(down[p])) == 1}
    return meet, join


def random_dag(rng, n, density):
    a = np.triu(rng.random((n, n)) < density, k=1)
    perm = rng.permutation(n)  # hide the topological order
    return a[np.ix_(perm, perm)]


@pytest.mark.parametrize("seed", range(60))
def test_irreducibles_match_a_brute_force_completion(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 9))
    a = random_dag(rng, n, rng.uniform(0.1, 0.7))
    p = poset.reachability(a)
    assert irreducibles(p) == completion_irreducibles(p.order_matrix())


# --- closure, covers, figures ------------------------------------------------------------------


@pytest.mark.parametrize("n,density", [(70, 0.05), (300, 0.02), (130, 0.3)])
def test_closure_equals_scipy_reachability(n, density, monkeypatch):
    a = random_dag(np.random.default_rng(n), n, density)
    expected = np.isfinite(shortest_path(sp.csr_matrix(a), unweighted=True))
    assert np.array_equal(poset.reachability(a).order_matrix(), expected)
    irreducible = poset.meet_irreducible(poset.reachability(a))
    # Both closure routes (bitset ORs, sparse products) and single-node chunks agree.
    for factor, gather in ((0, 1 << 22), (10**9, 1 << 22), (0, 1)):
        monkeypatch.setattr(poset, "_SPARSE_ROUTE_FACTOR", factor)
        monkeypatch.setattr(poset, "_GATHER_WORDS", gather)
        again = poset.reachability(a)
        assert np.array_equal(again.order_matrix(), expected)
        assert np.array_equal(poset.meet_irreducible(again), irreducible)


def test_covers_and_figures_against_networkx():
    a = random_dag(np.random.default_rng(7), 60, 0.1)
    p = poset.reachability(a)
    g = nx.DiGraph((int(u), int(v)) for u, v in zip(*np.nonzero(a)))
    g.add_nodes_from(range(60))
    reduced = nx.transitive_reduction(g)
    assert set(zip(*poset.covers(p).nonzero())) == set(reduced.edges())
    f = poset.figures(p)
    assert f["relations"] == sum(len(nx.descendants(g, u)) for u in g)
    assert f["height"] == nx.dag_longest_path_length(g) + 1
    assert f["covers"] == reduced.number_of_edges()
    assert f["minimal"] == sum(1 for u in g if g.in_degree(u) == 0)


def test_cycles_and_self_loops_are_refused():
    with pytest.raises(PosetError, match="cycle through 3 nodes"):
        make(4, [(0, 1), (1, 2), (2, 3), (3, 1)])
    with pytest.raises(PosetError, match="self-loop"):
        make(2, [(0, 0)])
    with pytest.raises(PosetError, match="square"):
        poset.reachability(np.zeros((2, 3)))


def test_bitsets_round_trip():
    m = np.random.default_rng(0).random((5, 130)) < 0.5
    assert np.array_equal(poset.unpack_rows(poset.pack_rows(m), 130), m)
    assert list(poset.popcount(poset.pack_rows(m))) == list(m.sum(axis=1))

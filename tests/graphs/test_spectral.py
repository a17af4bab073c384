import math

import numpy as np
import pytest
import scipy.sparse as sp

from edgeprune.graphs import spectral
from edgeprune.graphs.spectral import expansion, top_singular_values


def adjacency_spectrum(biadjacency: np.ndarray) -> np.ndarray:
    """Eigenvalues of the full bipartite adjacency [[0, M^T], [M, 0]], descending (numpy eigh)."""
    rows, cols = biadjacency.shape
    a = np.zeros((rows + cols, rows + cols))
    a[:cols, cols:] = biadjacency.T
    a[cols:, :cols] = biadjacency
    return np.sort(np.linalg.eigvalsh(a))[::-1]


def reference_gap(mask: np.ndarray) -> tuple[float, float, float]:
    """σ₂ and Δr from the adjacency eigen-decomposition and degrees over non-isolated nodes."""
    lam = adjacency_spectrum(mask.astype(float))
    row_deg, col_deg = mask.sum(1), mask.sum(0)
    d_r, d_l = row_deg[row_deg > 0].mean(), col_deg[col_deg > 0].mean()
    return lam[0], lam[1], math.sqrt(d_l - 1) + math.sqrt(d_r - 1) - lam[1]


@pytest.mark.parametrize("shape,density", [((12, 9), 0.5), ((30, 17), 0.3), ((8, 40), 0.6), ((25, 25), 0.2)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigma2_and_gap_match_a_dense_eigendecomposition(shape, density, seed):
    rng = np.random.default_rng(seed)
    mask = rng.random(shape) < density
    l1, l2, gap = reference_gap(mask)
    e = expansion(mask, min_degree=1)
    assert e.sigma1 == pytest.approx(l1, abs=1e-9)
    assert e.sigma2 == pytest.approx(l2, abs=1e-9)
    assert e.spectral_gap == pytest.approx(l1 - l2, abs=1e-9)
    # the authors' code's Δs (ramanujan-on-pai delta_s): 2√(μ₀ − 1) − μ̂, from the eigenvalues
    assert e.spectral_gap_code == pytest.approx(2 * math.sqrt(l1 - 1) - l2, abs=1e-9)
    assert e.ramanujan_gap == pytest.approx(gap, abs=1e-9)
    assert e.ramanujan == (gap >= 0)


def test_weighted_measures_match_the_eigendecomposition_of_scaled_weights():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((20, 14)) * (rng.random((20, 14)) < 0.4)
    scaled = np.abs(w) / np.abs(w[w != 0]).mean()
    lam = adjacency_spectrum(scaled)
    e = expansion(w, weighted=True)
    assert (e.sigma1, e.sigma2) == pytest.approx((lam[0], lam[1]), abs=1e-9)
    assert e.edges == np.count_nonzero(w)  # degrees are the support's


def test_weighted_measures_are_scale_free_and_equal_binary_for_constant_weights():
    rng = np.random.default_rng(4)
    mask = rng.random((15, 11)) < 0.5
    w = rng.standard_normal((15, 11)) * mask
    a, b = expansion(w, weighted=True), expansion(7.5 * w, weighted=True)
    assert a.sigma2 == pytest.approx(b.sigma2) and a.ramanujan_gap == pytest.approx(b.ramanujan_gap)
    const = expansion(0.3 * mask, weighted=True)
    binary = expansion(mask)
    assert const.sigma2 == pytest.approx(binary.sigma2) and const.ramanujan_gap == pytest.approx(binary.ramanujan_gap)


def test_complete_bipartite_graph_is_ramanujan_with_sigma2_zero():
    e = expansion(np.ones((5, 7), dtype=bool))
    assert e.biregular and e.left_degree == 5 and e.right_degree == 7
    assert e.sigma1 == pytest.approx(math.sqrt(35))
    assert e.sigma2 == pytest.approx(0.0, abs=1e-9)
    assert e.ramanujan is True
    assert e.ramanujan_gap == pytest.approx(2 + math.sqrt(6))


FANO_LINES = [(0, 1, 2), (0, 3, 4), (0, 5, 6), (1, 3, 5), (1, 4, 6), (2, 3, 6), (2, 4, 5)]


def fano_incidence() -> np.ndarray:
    m = np.zeros((7, 7), dtype=bool)
    for line, points in enumerate(FANO_LINES):
        m[line, list(points)] = True
    return m


def test_fano_plane_incidence_graph_is_a_known_ramanujan_graph():
    # Points/lines of PG(2,2): 3-regular, M M^T = 2I + J, so the singular values are 3 and √2 (x6).
    m = fano_incidence()
    e = expansion(m)
    assert e.biregular and e.left_degree == e.right_degree == 3
    assert e.sigma1 == pytest.approx(3.0)
    assert e.sigma2 == pytest.approx(math.sqrt(2))
    assert e.bound == pytest.approx(2 * math.sqrt(2))
    assert e.ramanujan is True and e.ramanujan_gap == pytest.approx(math.sqrt(2))


def test_disconnected_graph_is_not_ramanujan():
    # Two disjoint K_{3,3}: σ₁ = σ₂ = 3 > √2 + √2.
    m = np.zeros((6, 6), dtype=bool)
    m[:3, :3] = m[3:, 3:] = True
    e = expansion(m)
    assert e.sigma2 == pytest.approx(3.0) and e.spectral_gap == pytest.approx(0.0, abs=1e-9)
    assert e.ramanujan is False and e.ramanujan_gap == pytest.approx(2 * math.sqrt(2) - 3)


def test_low_degree_makes_the_verdict_undefined():
    e = expansion(np.eye(6, dtype=bool))  # a perfect matching: degree 1
    assert e.ramanujan is None and e.ramanujan_gap is None and "< 3" in e.note
    assert e.sigma1 == pytest.approx(1.0) and e.sigma2 == pytest.approx(1.0)


def test_isolated_nodes_are_left_out_of_the_average_degrees():
    m = np.zeros((8, 10), dtype=bool)
    m[:4, :6] = True  # rows 4..7 and columns 6..9 isolated
    e = expansion(m)
    assert (e.isolated_right, e.isolated_left) == (4, 4)
    assert (e.right_degree, e.left_degree) == (6, 4)
    assert not e.biregular and e.right_degree_range == (0, 6)


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (1, 1), (1, 9), (9, 1)])
def test_degenerate_shapes(shape):
    e = expansion(np.ones(shape, dtype=bool))
    if 0 in shape:
        assert e.edges == 0 and e.sigma1 == 0 and e.ramanujan is None
    else:
        assert e.sigma1 == pytest.approx(math.sqrt(max(shape))) and e.sigma2 == 0.0


def test_empty_graph():
    e = expansion(np.zeros((4, 4)))
    assert e.edges == 0 and e.sigma1 == e.sigma2 == 0.0 and e.ramanujan is None and e.note == "no edges"


def test_the_sparse_solver_agrees_with_a_dense_svd_on_a_biregular_graph():
    # Above the dense threshold, svds (ARPACK) is used: its σ₁, σ₂ must equal numpy's. A biregular
    # graph is the hard case (constant top singular vector, σ₂ of high multiplicity).
    rows, cols, d = 480, 400, 5
    assert min(rows, cols) > spectral.DENSE_SVD_MAX_DIM
    rng = np.random.default_rng(0)
    stubs = rng.permutation(np.repeat(np.arange(cols), rows * d // cols))
    m = sp.csr_array((np.ones(rows * d), (np.repeat(np.arange(rows), d), stubs)), shape=(rows, cols))
    m.sum_duplicates()
    m.data[:] = 1.0
    dense = np.linalg.svd(m.toarray(), compute_uv=False)
    assert top_singular_values(m) == pytest.approx(dense[:2], rel=1e-7)
    assert top_singular_values(m.toarray()) == pytest.approx(dense[:2], rel=1e-7)
    assert expansion(m).sigma2 == pytest.approx(expansion(m.toarray()).sigma2, rel=1e-7)


def test_results_are_reproducible():
    rng = np.random.default_rng(5)
    m = sp.random_array((600, 500), density=0.02, random_state=1, format="csr")
    assert top_singular_values(m).tolist() == top_singular_values(m).tolist()
    assert np.all(np.diff(top_singular_values(rng.random((3, 4)), k=3)) <= 0)


def brute_force_conductance(mask: np.ndarray) -> float:
    """min over vertex sets S with vol(S) ≤ vol/2 of e(S, S̄) / vol(S), by enumeration."""
    rows, cols = mask.shape
    n = rows + cols
    a = np.zeros((n, n))
    a[:cols, cols:] = mask.T
    a[cols:, :cols] = mask
    deg = a.sum(1)
    best = np.inf
    for bits in range(1, 2**n - 1):
        s = np.array([(bits >> k) & 1 for k in range(n)], dtype=bool)
        vol = deg[s].sum()
        if 0 < vol <= deg.sum() / 2:
            best = min(best, a[s][:, ~s].sum() / vol)
    return best


@pytest.mark.parametrize("seed", range(4))
def test_cheeger_bounds_bracket_the_true_conductance(seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((5, 6)) < 0.5
    mask[np.arange(5), rng.integers(0, 6, 5)] = True  # no isolated row
    mask[rng.integers(0, 5, 6), np.arange(6)] = True  # no isolated column
    e = expansion(mask)
    # σ̃₂ is the second eigenvalue of the normalised adjacency D^-1/2 A D^-1/2
    a = np.zeros((11, 11))
    a[:6, 6:], a[6:, :6] = mask.T, mask
    d = 1 / np.sqrt(a.sum(1))
    lam = np.sort(np.linalg.eigvalsh(d[:, None] * a * d[None, :]))[::-1]
    assert e.normalized_sigma2 == pytest.approx(lam[1], abs=1e-9)
    low, high = e.conductance_bounds
    phi = brute_force_conductance(mask)
    assert low - 1e-12 <= phi <= high + 1e-12


def test_code_spectral_gap_is_undefined_below_mu0_one():
    e = expansion(np.eye(4, dtype=bool) * 1.0, min_degree=1)  # a perfect matching: μ₀ = 1
    assert e.spectral_gap_code == pytest.approx(-1.0)  # 2√0 − 1
    assert expansion(np.zeros((3, 3))).spectral_gap_code is None

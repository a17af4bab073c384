import numpy as np
import pytest

from edgeprune.graphs.biregular import (
    biregular_mask,
    column_capacities,
    complete_random,
    degree_for,
    gated_gap,
    greedy_order,
    tile_scores,
)
from edgeprune.graphs.spectral import expansion


def sequential_greedy(scores, row_cap, col_cap):
    """The plain greedy: visit by decreasing score (ties: lower flat index), keep while capacity."""
    rows, cols = scores.shape
    flat = scores.ravel()
    order = sorted(range(flat.size), key=lambda f: (-flat[f], f))
    row_left, col_left, kept = list(row_cap), list(col_cap), []
    for f in order:
        i, j = divmod(f, cols)
        if row_left[i] and col_left[j]:
            row_left[i] -= 1
            col_left[j] -= 1
            kept.append(f)
    return kept


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_greedy_equals_the_sequential_greedy(seed):
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(3, 30, size=2)
    d = int(rng.integers(1, cols + 1))
    order = rng.permutation(cols)
    caps = column_capacities(np.full(1, rows * d), cols, order)[0]
    scores = rng.integers(0, 6, size=(rows, cols)).astype(float)  # many ties
    scores *= rng.random(cols) < 0.7  # some columns unattractive
    full = sequential_greedy(scores, [d] * rows, caps)
    # the vectorised version only scans the CANDIDATE_FACTOR x edges best entries
    got = greedy_order(scores, np.full(rows, d), caps).tolist()
    assert got == full[: len(got)]
    k = min(scores.size, 2 * rows * d)
    ranked = sorted(range(scores.size), key=lambda f: (-scores.ravel()[f], f))[:k]
    assert got == sequential_greedy_restricted(scores, [d] * rows, caps, set(ranked))


def sequential_greedy_restricted(scores, row_cap, col_cap, allowed):
    rows, cols = scores.shape
    flat = scores.ravel()
    order = sorted(allowed, key=lambda f: (-flat[f], f))
    row_left, col_left, kept = list(row_cap), list(col_cap), []
    for f in order:
        i, j = divmod(f, cols)
        if row_left[i] and col_left[j]:
            row_left[i] -= 1
            col_left[j] -= 1
            kept.append(f)
    return kept


@pytest.mark.parametrize("rows,cols,degree,gates", [(12, 5, 2, 4), (128, 28, 3, 4), (9, 12, 7, 3), (10, 10, 10, 1)])
def test_column_capacities_are_balanced_per_gate_and_overall(rows, cols, degree, gates):
    caps = column_capacities(np.full(gates, rows * degree), cols, np.random.default_rng(0).permutation(cols))
    assert np.all(caps.sum(axis=1) == rows * degree)
    assert np.all(caps.max(axis=1) - caps.min(axis=1) <= 1)
    total = caps.sum(axis=0)
    assert total.max() - total.min() <= 1
    assert caps.max() <= rows


@pytest.mark.parametrize("seed", range(4))
def test_random_completion_meets_every_deficit_with_a_simple_graph(seed):
    rng = np.random.default_rng(seed)
    rows, cols, d = 40, 30, 9
    caps = column_capacities(np.full(1, rows * d), cols, rng.permutation(cols))[0]
    start = np.zeros((rows, cols), dtype=bool)
    kept = greedy_order(rng.random((rows, cols)), np.full(rows, d), caps)[: rows * d // 2]
    start.ravel()[kept] = True
    out = complete_random(start, d - start.sum(1), caps - start.sum(0), rng)
    assert np.all(out.sum(1) == d) and np.array_equal(out.sum(0), caps)


def test_random_completion_repairs_by_swaps_when_pairs_collide():
    # Row 0 lacks one edge and only column 0 lacks one, but (0, 0) exists: a swap is the only way.
    m = np.zeros((4, 4), dtype=bool)
    m[0, :3] = m[0, 0] = True
    m[1, 1:] = m[2, [0, 2, 3]] = m[3, [0, 1, 3]] = True
    m[0, 3] = False
    row_def = 3 - m.sum(1)
    col_def = 3 - m.sum(0)
    out = complete_random(m, row_def, col_def, np.random.default_rng(0))
    assert np.all(out.sum(1) == 3) and np.all(out.sum(0) == 3)


def test_tile_scores_use_rms_and_partial_tiles():
    v = np.arange(1.0, 11.0).reshape(2, 5)
    s = tile_scores(v, (1, 4))
    assert s.shape == (2, 2)
    assert s[0, 0] == pytest.approx(np.sqrt(np.mean(np.square([1, 2, 3, 4]))))
    assert s[1, 1] == pytest.approx(10.0)  # the partial tile holds one entry


@pytest.mark.parametrize("block", [(1, 1), (1, 4), (4, 1), (4, 4)])
@pytest.mark.parametrize("sparsity", [0.5, 0.8, 0.95])
def test_biregular_mask_is_biregular_at_tile_level(block, sparsity):
    rng = np.random.default_rng(1)
    values = rng.standard_normal((4 * 32, 44))
    b = biregular_mask(values, sparsity, rng, gates=4, cell="lstm", block=block, row_degrees="equal")
    br, bc = block
    n_bcols = -(-44 // bc)
    assert b.row_degree == (degree_for(n_bcols, sparsity),) * 2
    for g, tiles in enumerate(b.tile_masks):
        assert np.all(tiles.sum(1) == b.row_degree[0])
        assert tiles.sum(0).max() - tiles.sum(0).min() <= 1
        part = b.mask[g * 32 : (g + 1) * 32]
        expanded = np.repeat(np.repeat(tiles, br, 0), bc, 1)[:32, :44]
        assert np.array_equal(part, expanded)
    whole = np.sum(b.tile_masks, axis=0).sum(0)
    assert whole.max() - whole.min() <= 1
    for report, tiles in zip(b.gates, b.tile_masks):
        e = expansion(tiles)
        assert report.ramanujan == e.ramanujan
        assert report.greedy_edges + report.random_edges == tiles.sum()


def community_weights() -> np.ndarray:
    """Strong on two diagonal blocks: the greedy mask is two near-disconnected halves (σ₂ ≈ σ₁)."""
    rng = np.random.default_rng(0)
    values = rng.random((64, 64)) * 0.01
    values[:32, :32] += 1.0
    values[32:, 32:] += 1.0
    return values


def test_without_repair_a_community_structured_mask_fails_the_bound():
    b = biregular_mask(community_weights(), 0.8, np.random.default_rng(0), max_repairs=0)
    assert b.ramanujan is False and b.gates[0].attempts == 1 and b.gates[0].greedy_share > 0.95
    assert b.gates[0].ramanujan_gap == pytest.approx(expansion(b.mask).ramanujan_gap)


@pytest.mark.parametrize("repair", ["spectral", "bisect"])
def test_repair_fixes_a_community_structured_mask(repair):
    b = biregular_mask(
        community_weights(), 0.8, np.random.default_rng(0), max_repairs=8, repair=repair, row_degrees="equal"
    )
    g = b.gates[0]
    assert b.ramanujan is True and expansion(b.mask).ramanujan is True
    assert g.attempts > 1 and 0 < g.greedy_share < 1
    # the reported share is the fraction of the mask's edges that the magnitude greedy chose
    caps = column_capacities(np.full(1, 64 * 13), 64, np.arange(64))
    assert g.greedy_edges + g.random_edges == 64 * 13 and g.greedy_share == pytest.approx(g.greedy_edges / (64 * 13))
    assert caps.sum() == 64 * 13
    # a biregular mask still
    assert np.all(b.mask.sum(1) == 13) and b.mask.sum(0).max() - b.mask.sum(0).min() <= 1


def test_spectral_repair_keeps_more_magnitude_than_bisection():
    rng = np.random.default_rng(1)
    low_rank = rng.standard_normal((96, 4)) @ rng.standard_normal((4, 80)) + 0.5 * rng.standard_normal((96, 80))
    spectral = biregular_mask(low_rank, 0.85, np.random.default_rng(0), repair="spectral")
    bisect = biregular_mask(low_rank, 0.85, np.random.default_rng(0), repair="bisect")
    assert spectral.ramanujan is True and bisect.ramanujan is True

    def mass(m):
        return float(np.abs(low_rank)[m].sum())

    assert mass(spectral.mask) > mass(bisect.mask)


def test_init_mode_is_random_but_reproducible():
    values = np.ones((48, 20))
    a = biregular_mask(values, 0.7, np.random.default_rng(3), gates=4, magnitude_aware=False)
    b = biregular_mask(values, 0.7, np.random.default_rng(3), gates=4, magnitude_aware=False)
    c = biregular_mask(values, 0.7, np.random.default_rng(4), gates=4, magnitude_aware=False)
    assert np.array_equal(a.mask, b.mask) and not np.array_equal(a.mask, c.mask)
    assert all(g.greedy_edges == 0 for g in a.gates)


def test_gated_gap_reports_the_worst_gate():
    rng = np.random.default_rng(2)
    good = biregular_mask(rng.standard_normal((24, 24)), 0.5, rng).mask
    bad = np.zeros((12, 24), dtype=bool)
    bad[:6, :12] = bad[6:, 12:] = True  # two components: σ₂ = σ₁
    gap, verdict, _ = gated_gap(np.vstack([good[:12], bad]), 2)
    assert verdict is False and gap == pytest.approx(expansion(bad).ramanujan_gap)
    gap, verdict, note = gated_gap(np.eye(8, dtype=bool), 2)
    assert verdict is None and "< 3" in note

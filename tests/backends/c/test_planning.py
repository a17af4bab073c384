"""Planning the C model: tiles, formats per tile, the cost model, refusals (no compiler needed)."""

import re

import numpy as np
import pytest

from edgeprune import frontend, ir, prune
from edgeprune.backends.c import codegen, costs, planning
from edgeprune.errors import BackendError, IRError

from ...conftest import make_model


def _lowered(cell="lstm", hidden=(12,), feedback=False, sparsity=0.0, input_size=5, method="magnitude"):
    model = make_model(cell, hidden, feedback, input_size=input_size)
    if sparsity:
        model = prune.prune_model(model, method, sparsity).model
    return frontend.lower(model)


def _block_masked(H=64, input_size=32, shape=(8, 1), sparsity=0.9, seed=0):
    """An LSTM IR whose gate matrix keeps whole blocks (aligned to the gate blocks and segments)."""
    graph = _lowered("lstm", (H,), input_size=input_size)
    w = graph.layers[0].weight.to_dense()
    br, bc = shape
    grid = np.random.default_rng(seed).random((w.shape[0] // br, w.shape[1] // bc)) >= sparsity
    keep = np.kron(grid, np.ones(shape, bool))
    graph.layers[0].weight = ir.CSR.from_dense(w, keep)
    return graph


def _formats(plan, label="layers.0.weight"):
    m = next(m for m in plan.matrices() if m.label == label)
    return {t.format for t in m.tiles}


def test_tiles_cover_every_stored_weight_once_and_are_cut_by_gate_block_and_segment():
    graph = _lowered("gru", (12, 9), True, sparsity=0.5)
    for kernel in ("dense", "csr", "ell", "bsr"):
        plan = planning.plan(graph, kernel=kernel)
        for lp in plan.layers:
            m, H = lp.matrix, lp.layer.hidden_size
            bounds = [0, lp.layer.input_size, lp.layer.input_size + H, lp.layer.cols]
            assert sum(t.nnz for t in m.tiles) == m.nnz == lp.layer.weight.nnz
            for t in m.tiles:
                if t.format == "dense":  # sparse tiles may span blocks and segments (merged layouts)
                    assert t.row // H == (t.row + t.rows - 1) // H  # inside one gate block
                segment = next(k for k in range(3) if bounds[k] <= t.col < bounds[k + 1])
                assert t.segment == [k for k in range(3) if bounds[k] < bounds[k + 1]].index(segment)


def test_a_grus_candidate_blocks_never_store_the_columns_they_cannot_read():
    plan = planning.plan(_lowered("gru", (12, 9), True), kernel="dense")
    layer = plan.layers[0]
    H, I = 12, 5
    n_x = [(t.col, t.cols) for t in layer.matrix.tiles if t.row == 2 * H]
    n_h = [(t.col, t.cols) for t in layer.matrix.tiles if t.row == 3 * H]
    assert n_x == [(0, I), (I + H, 9)] and n_h == [(I, H)]  # input and feedback / state only
    assert layer.matrix.table_bytes == 4 * sum(t.rows * t.cols for t in layer.matrix.tiles)


def test_tiles_are_trimmed_to_the_rows_and_columns_they_use():
    model = _lowered()
    w = model.layers[0].weight.to_dense()
    w[:, 0] = 0  # input feature 0 unused
    w[:3] = 0  # first three rows empty
    model.layers[0].weight = ir.CSR.from_dense(w)
    tile = planning.plan(model, kernel="dense").layers[0].matrix.tiles[0]
    assert (tile.row, tile.col, tile.rows, tile.cols) == (3, 1, 9, 4)


def test_ell_for_row_regular_masks_and_sliced_ell_otherwise():
    # 8 inputs, 16 units: 0.75 keeps whole row degrees (2 and 4), so every row has the same count
    regular = planning.plan(_lowered(hidden=(16,), sparsity=0.75, method="random-regular", input_size=8), kernel="ell")
    assert _formats(regular) == {"ell"}
    assert all(t.encoded.stored == t.nnz for t in regular.layers[0].matrix.tiles)  # no padding at all
    irregular = planning.plan(_lowered(hidden=(16,), sparsity=0.75), kernel="ell")
    assert _formats(irregular) <= {"sell", "ell"} and "sell" in _formats(irregular)


@pytest.mark.parametrize("profile", list(costs.PROFILES))
@pytest.mark.parametrize("shape,fmt", [((8, 1), "bsr8x1"), ((4, 1), "bsr4x1"), ((1, 4), "bsr1x4")])
def test_exact_block_masks_get_their_block_kernel_with_no_zero_fill(shape, fmt, profile):
    plan = planning.plan(_block_masked(H=256, shape=shape), kernel="bsr", profile=profile)
    m = plan.layers[0].matrix
    H = plan.layers[0].layer.hidden_size
    exact = {fmt, "bsr8x1w"} if fmt == "bsr8x1" else {fmt}  # 8x1 over all of z: 16-bit block columns
    recurrent = [t for t in m.tiles if t.col + t.cols > plan.model.input_size]
    assert recurrent and {t.format for t in recurrent} <= exact  # the wide state tiles: the exact kernel
    for t in m.tiles:
        if t.format in exact:
            assert t.encoded.stored == t.nnz
        else:
            # zero fill (8x1 blocks over a narrow 4x1 / 1x4 input tile) only where the measured model
            # says it clearly beats the exact kernel on that very tile (per-row costs dominate there)
            exact_cost = costs.tile_cost(profile, "f32", fmt, t.nnz, t.rows)
            assert t.format == "bsr8x1" and t.rows % H == 0 and t.cost <= costs.SPARSE_MARGIN * exact_cost
    # 4 bytes a weight, one byte index per block (two for bsr8x1w), a 2-byte index per block row holding
    # a block, 4 bytes per run of equal block count: nothing else
    br, bc = shape
    for t in m.tiles:
        if t.format in exact:
            runs = t.encoded.params["nruns"]
            stored_rows = t.encoded.arrays["brows"].size
            index = 2 if t.format == "bsr8x1w" else 1
            assert stored_rows <= -(-t.rows // br)
            assert t.encoded.bytes == 4 * t.nnz + index * t.nnz // (br * bc) + 2 * stored_rows + 4 * runs
    if shape == (8, 1):
        assert _formats(plan) <= exact


def test_smallest_takes_the_fewest_bytes_per_tile():
    plan = planning.plan(_lowered(hidden=(16,), sparsity=0.9), kernel="smallest")
    for fmt in ("dense", "csr", "ell", "bsr"):
        assert (
            plan.layers[0].matrix.table_bytes
            <= planning.plan(_lowered(hidden=(16,), sparsity=0.9), kernel=fmt).layers[0].matrix.table_bytes
        )


@pytest.mark.parametrize("profile", list(costs.PROFILES))
@pytest.mark.parametrize("dtype", ["f32", "int8"])
def test_auto_is_never_estimated_slower_than_dense(profile, dtype):
    for sparsity in (0.0, 0.3, 0.6, 0.8, 0.9, 0.98):
        plan = planning.plan(_lowered("lstm", (64,), input_size=28, sparsity=sparsity), dtype=dtype, profile=profile)
        dense = planning.plan(
            _lowered("lstm", (64,), input_size=28, sparsity=sparsity), kernel="dense", dtype=dtype, profile=profile
        )
        for m, d in zip(plan.matrices(), dense.matrices()):
            assert m.cost <= d.cost + 1e-9
    assert _formats(planning.plan(_lowered("lstm", (64,), input_size=28), dtype=dtype, profile=profile)) == {"dense"}


def test_auto_takes_sparse_kernels_where_they_pay():
    plan = planning.plan(_lowered("lstm", (64,), input_size=28, sparsity=0.95), profile="x86-avx2")
    assert "dense" not in _formats(plan)
    blocks = planning.plan(_block_masked(shape=(8, 1), sparsity=0.8), profile="x86-avx2")
    assert _formats(blocks) == {"lstm8x1"}  # the LSTM's 8x1 blocks with its cell fused (test_fused_lstm.py)
    assert _formats(planning.plan(_block_masked(shape=(8, 1), sparsity=0.8), kernel="bsr")) == {"bsr8x1"}


def test_summary_names_every_matrix_and_its_format():
    plan = planning.plan(_lowered("lstm", (12, 9), True, sparsity=0.8), kernel="csr")
    lines = plan.summary()
    assert len(lines) == 3 and all(": csr f32," in line for line in lines)
    assert lines[0].startswith("layers.0.weight 48x26, ") and "B/nnz" in lines[0]


@pytest.mark.parametrize("prefix", ["", "9lives", "my-model", "int", "ep_model", "x" * 40])
def test_bad_prefixes_are_refused(prefix):
    with pytest.raises(BackendError, match="c-prefix"):
        planning.plan(_lowered(), prefix=prefix)


def test_bad_kernel_and_dtype_are_refused():
    with pytest.raises(BackendError, match="--kernel 'turbo'"):
        planning.plan(_lowered(), kernel="turbo")
    with pytest.raises(BackendError, match="--dtype 'int4'"):
        planning.plan(_lowered(), dtype="int4")


def test_invalid_ir_is_refused_in_one_line():
    graph = _lowered(sparsity=0.5)
    graph.layers[0].weight.data[0] = np.nan
    with pytest.raises(IRError, match="layer 0 weight: contains non-finite values"):
        planning.plan(graph)
    graph = _lowered(sparsity=0.5)
    graph.layers[0].weight.indices[-1] = 999
    with pytest.raises(IRError, match="column index 999 out of range"):
        planning.plan(graph)


# --- auto within a byte budget ----------------------------------------------------------------


def _stored_bytes(plan) -> int:
    """Bytes of every const table of the generated C (weights, indices, scales, biases...), read from
    the C text: independent of the plan's own byte accounting."""
    sizes = {"float": 4, "int8_t": 1, "uint8_t": 1, "uint16_t": 2, "int32_t": 4}
    text = codegen.generate(plan)[f"{plan.prefix}.c"]
    return sum(sizes[t] * int(n) for t, n in re.findall(r"static const (\w+) \w+\[(\d+)\]", text))


@pytest.fixture(scope="module")
def lstm128():
    return make_model("lstm", (128,), False, input_size=28)


@pytest.mark.parametrize("profile", list(costs.PROFILES))
@pytest.mark.parametrize("dtype", ["f32", "int8"])
@pytest.mark.parametrize("method,sparsity", [("magnitude", 0.9), ("magnitude", 0.97), ("expander", 0.9)])
def test_auto_holds_sparse_layouts_to_the_default_budget(lstm128, profile, dtype, method, sparsity):
    graph = frontend.lower(prune.prune_model(lstm128, method, sparsity, seed=0).model)
    auto = planning.plan(graph, dtype=dtype, profile=profile)
    smallest = planning.plan(graph, kernel="smallest", dtype=dtype, profile=profile)
    fastest = planning.plan(graph, kernel="fastest", dtype=dtype, profile=profile)
    dense = planning.plan(graph, kernel="dense", dtype=dtype, profile=profile)
    got = _stored_bytes(auto)
    # where a region is dense in auto it is the fastest there (kept at its size); the rest is held
    # to 1.25x the smallest layout of the same regions
    assert got == auto.weight_bytes()["total"] <= auto.budget
    kept_dense = sum(t.encoded.bytes for m in auto.matrices() for t in m.tiles if t.format == "dense")
    assert got <= planning.BUDGET_FACTOR * _stored_bytes(smallest) + kept_dense

    # never slower than the smallest layout, never faster than the unbounded one, and still faster than dense
    # (as auto ranks them: a sparse tile's estimate must beat dense by the margin)
    def ranked(plan):
        return sum(
            t.cost / (1 if t.format == "dense" else costs.SPARSE_MARGIN) for m in plan.matrices() for t in m.tiles
        )

    cost = ranked(auto)
    assert ranked(fastest) - 1e-6 <= cost <= ranked(smallest) + 1e-6
    assert cost <= ranked(dense)


def test_an_explicit_budget_is_held_and_buys_speed_as_it_grows(lstm128):
    # 80%: the fastest layout is dense (3.8x the smallest), so every budget between them matters
    graph = frontend.lower(prune.prune_model(lstm128, "magnitude", 0.8, seed=0).model)
    low = _stored_bytes(planning.plan(graph, kernel="smallest", profile="x86-avx2"))
    high = _stored_bytes(planning.plan(graph, kernel="fastest", profile="x86-avx2"))
    assert high > 1.3 * low  # the budget matters on this model
    costs_seen = []
    for budget in np.linspace(low, high, 6).astype(int):
        plan = planning.plan(graph, profile="x86-avx2", flash_budget=int(budget))
        assert _stored_bytes(plan) <= budget and plan.budget == budget
        costs_seen.append(sum(m.cost for m in plan.matrices()))
    assert all(b <= a + 1e-6 for a, b in zip(costs_seen, costs_seen[1:]))
    assert costs_seen[-1] < costs_seen[0]


def test_a_budget_nothing_fits_is_refused_in_one_line(lstm128):
    graph = frontend.lower(prune.prune_model(lstm128, "magnitude", 0.9, seed=0).model)
    low = _stored_bytes(planning.plan(graph, kernel="smallest"))
    needs = rf"^--flash-budget 1,000 B: the smallest layout of the weights needs {low:,} B"
    with pytest.raises(BackendError, match=needs):
        planning.plan(graph, flash_budget=1000)
    with pytest.raises(BackendError, match=r"^--flash-budget 1,000 B: --kernel dense stores [\d,]+ B of weights"):
        planning.plan(graph, kernel="dense", flash_budget=1000)
    with pytest.raises(BackendError, match="--flash-budget -5: expected a positive number of bytes"):
        planning.plan(graph, flash_budget=-5)


def test_fastest_is_the_cheapest_estimate_per_tile_whatever_the_bytes(lstm128):
    graph = frontend.lower(prune.prune_model(lstm128, "magnitude", 0.9, seed=0).model)
    fastest = planning.plan(graph, kernel="fastest", profile="x86-avx2")
    for m in fastest.matrices():
        for opts in m.options:  # per region: fastest's pick is within the margin of the cheapest option
            cheapest = min(sum(t.cost for t in tiles) for tiles in opts.values())
            picked = [t for t in m.tiles if any(t is u for tiles in opts.values() for u in tiles)]
            assert sum(t.cost for t in picked) * costs.SPARSE_MARGIN**2 <= cheapest + 1e-6


def test_auto_prices_cache_spills(lstm128):
    """A layout that does not fit the cache pays per byte: with a tiny cache auto picks fewer bytes."""
    graph = frontend.lower(prune.prune_model(lstm128, "magnitude", 0.8, seed=0).model)  # fastest: dense
    budget = _stored_bytes(planning.plan(graph, kernel="fastest", profile="x86-avx2"))
    roomy = planning.plan(graph, profile="x86-avx2", flash_budget=budget, cache_bytes=1 << 30)
    spilling = planning.plan(graph, profile="x86-avx2", flash_budget=budget, cache_bytes=1024)
    assert _stored_bytes(spilling) < _stored_bytes(roomy)

"""Tiles merged over gate blocks and column segments (tiling._layouts): chosen by the cost model where
it is cheaper, within the byte budget, never across rows that read another vector (a GRU's late rows),
and compiled builds compute what numpy does, clean under ASan/UBSan."""

import numpy as np
import pytest

from edgeprune import frontend, ir, prune
from edgeprune.backends.c import costs, planning, tiling
from edgeprune.passes import QuantizedExecutor, quantize

from ...conftest import make_model
from ..test_cell_variants import _chain
from .conftest import build, needs_cc, random_ir
from .test_stages import SANITIZE, _run_and_stream, _sanitizers_work

KERNELS = ("csr", "ell", "bsr", "auto", "fastest", "smallest")


def _ranked(tiles) -> float:
    """The estimate auto and fastest compare: sparse tiles must beat dense by the margin."""
    return sum(t.cost if t.format == "dense" else t.cost / costs.SPARSE_MARGIN for t in tiles)


def _spans_blocks(m, H) -> bool:
    return any(t.row // H != (t.row + t.rows - 1) // H for t in m.tiles)


@pytest.fixture(scope="module")
def lstm98():
    model = make_model("lstm", (128,), False, input_size=28)
    return frontend.lower(prune.prune_model(model, "magnitude", 0.98, seed=0).model)


def test_fastest_merges_where_the_cost_model_says_it_is_cheaper(lstm98):
    plan = planning.plan(lstm98, kernel="fastest", profile="x86-avx2")
    m, H = plan.layers[0].matrix, 128
    assert _spans_blocks(m, H)  # 98% sparse: the narrow input segment is one tile over all gate blocks
    # the split layout (per gate block and segment, each region its best option) is estimated slower
    split = [min(tiling._ranked(opts), key=lambda o: o[2]) for part in m.layouts["blocks"] for opts in part[0]]
    assert _ranked(m.tiles) < sum(o[2] for o in split)
    assert sum(t.nnz for t in m.tiles) == m.nnz
    assert all(t.format != "dense" for t in m.tiles if t.rows > H)  # dense stays per block


def test_merged_layouts_hold_an_explicit_budget(lstm98):
    low = planning.plan(lstm98, kernel="smallest", profile="x86-avx2").weight_bytes()["total"]
    for budget in (low, int(1.1 * low), 10 * low):
        plan = planning.plan(lstm98, profile="x86-avx2", flash_budget=budget)
        assert plan.weight_bytes()["total"] <= budget
        assert sum(t.nnz for m in plan.matrices() for t in m.tiles) == sum(m.nnz for m in plan.matrices())


def test_a_dense_kernel_never_merges_and_int8_never_crosses_a_segment(lstm98):
    dense = planning.plan(lstm98, kernel="dense", profile="x86-avx2").layers[0]
    assert dense.matrix.layout == "blocks" and not _spans_blocks(dense.matrix, 128)
    for kernel in ("csr", "fastest", "smallest"):
        lp = planning.plan(lstm98, kernel=kernel, dtype="int8", profile="x86-avx2").layers[0]
        bounds = [0, 28, 28 + 128]
        for t in lp.matrix.tiles:
            k = t.segment
            assert bounds[k] <= t.col and t.col + t.cols <= bounds[k + 1] + 3  # 1x4 blocks may pass by < 4


def test_a_grus_late_rows_keep_their_own_tiles():
    model = _chain(density=0.15)
    gru = model.stages[1]
    H = gru.hidden_size
    late = ir.cell_spec("gru").ir_rows.index("n_h")
    merged = False
    for kernel in KERNELS:
        plan = planning.plan(model, kernel=kernel, profile="x86-avx2")
        m = plan.stages[1].matrix
        for t in m.tiles:
            inside = t.row // H == late and (t.row + t.rows - 1) // H == late
            assert inside or (t.row + t.rows - 1) // H < late  # never both late rows and others
        merged |= _spans_blocks(m, H)
    assert merged  # the other rows did merge somewhere


@needs_cc
@pytest.mark.parametrize("kernel", KERNELS)
def test_merged_builds_compute_what_numpy_does_under_sanitizers(tmp_path, kernel):
    if not _sanitizers_work(tmp_path):
        pytest.skip("this compiler cannot build ASan/UBSan programs")
    X = np.random.default_rng(3).normal(0, 1.0, (3, 6, 5)).astype(np.float32)
    models = {
        "variants": _chain(density=0.15),  # LSTM fed back from a GRU with linear_before_reset=0
        "chain": random_ir(("lstm", "gru"), (24, 16), feedback=True, density=0.08, seed=2),
        "lstm": random_ir(("lstm",), (32,), feedback=False, density=0.05, seed=4),
    }
    spanned = 0
    for name, model in models.items():
        plan = planning.plan(model, kernel=kernel)
        spanned += sum(_spans_blocks(lp.matrix, lp.layer.hidden_size) for lp in plan.layers)
        artifact, options = build(model, tmp_path / name, c_cflags=SANITIZE, kernel=kernel)
        whole, streamed = _run_and_stream(artifact, tmp_path / name, options, X)
        ref = ir.ReferenceExecutor(model)
        assert np.max(np.abs(whole - ref.run(X))) <= 1e-5, name
        assert np.max(np.abs(streamed - ref.run(X, all_steps=True))) <= 1e-5, name
    if kernel not in ("csr", "smallest"):  # CSR costs nothing per call in the generic profile: no reason to merge
        assert spanned  # some matrix of these took a merged layout


@needs_cc
@pytest.mark.parametrize("kernel", ["csr", "auto"])
def test_int8_builds_merge_within_a_segment_and_compute_what_the_quantized_executor_does(tmp_path, kernel):
    if not _sanitizers_work(tmp_path):
        pytest.skip("this compiler cannot build ASan/UBSan programs")
    X = np.random.default_rng(4).normal(0, 1.0, (3, 6, 5)).astype(np.float32)
    spanned = 0
    for name, model in {
        "variants": _chain(density=0.15),
        "chain": random_ir(("lstm", "gru"), (24, 16), feedback=True, density=0.08, seed=2),
    }.items():
        plan = planning.plan(model, kernel=kernel, dtype="int8", profile="x86-avx2")
        spanned += sum(_spans_blocks(lp.matrix, lp.layer.hidden_size) for lp in plan.layers)
        artifact, options = build(model, tmp_path / name, c_cflags=SANITIZE, kernel=kernel, dtype="int8")
        whole, streamed = _run_and_stream(artifact, tmp_path / name, options, X)
        ref = QuantizedExecutor(quantize(model))
        assert np.max(np.abs(whole - ref.run(X))) <= 1e-4, name
        assert np.max(np.abs(streamed - ref.run(X, all_steps=True))) <= 1e-4, name
    assert spanned  # row blocks merged within a segment somewhere

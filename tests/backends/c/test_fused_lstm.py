"""An LSTM over 8x1 blocks as one ep_lstm8x1_f32 call, its cell fused (planning._fuse_lstm_blocks,
formats.lstm8x1): when the planner takes it, and builds that compute what the reference executor
does -- under ASan/UBSan, whole sequences and streamed, with and without bias, narrow and wide z,
a second layer reading the first's h."""

import dataclasses

import numpy as np
import pytest

from edgeprune import ir
from edgeprune.backends.c import planning

from .conftest import build, needs_cc
from .test_stages import SANITIZE, _run_and_stream, _sanitizers_work


def _block_lstm(hidden=48, inputs=16, density=0.4, bias=True, layers=1, seed=3):
    """LSTM layers with 8x1-block masks (block rows of 8 gate rows sharing columns), some empty."""
    rng = np.random.default_rng(seed)
    stages, size = [], inputs
    for _ in range(layers):
        rows, cols = 4 * hidden, size + hidden
        grid = rng.random((rows // 8, cols)) < density
        grid[3] = False  # a block row without a block
        weight = ir.CSR.from_dense(rng.normal(scale=0.3, size=(rows, cols)).astype(np.float32), np.repeat(grid, 8, 0))
        b = rng.normal(scale=0.2, size=rows).astype(np.float32) if bias else None
        stages.append(ir.Layer("lstm", size, hidden, 0, weight, b))
        size = hidden
    head = ir.Head(ir.CSR.from_dense(rng.normal(size=(5, hidden)).astype(np.float32)), np.zeros(5, np.float32))
    return ir.Model(inputs, [*stages, head]).validate()


def _fused(plan) -> list[str]:
    return [m.label for m in plan.matrices() if m.format == "lstm8x1"]


def test_the_planner_fuses_long_block_rows_on_avx2_only():
    model = _block_lstm()
    assert _fused(planning.plan(model, profile="x86-avx2")) == ["layers.0.weight"]
    assert _fused(planning.plan(model, kernel="fastest", profile="x86-avx2")) == ["layers.0.weight"]
    assert not _fused(planning.plan(model, kernel="bsr", profile="x86-avx2"))  # forced: its tile kernels
    assert not _fused(planning.plan(model, profile="generic"))  # measured on the AVX2 kernels only
    assert not _fused(planning.plan(model, profile="cortex-m4"))
    assert not _fused(planning.plan(model, profile="x86-avx2", activations="libm"))  # the fast cell is fused
    assert not _fused(planning.plan(model, profile="x86-avx2", dtype="int8"))
    assert not _fused(planning.plan(model, kernel="smallest", profile="x86-avx2"))
    # short block rows (98%-like: a few blocks each): the 8x1 kernels' runs are faster
    assert not _fused(planning.plan(_block_lstm(density=0.05), profile="x86-avx2"))
    # hidden not a multiple of 8: block rows would straddle the gates
    assert not _fused(planning.plan(_block_lstm(hidden=44), profile="x86-avx2"))


def test_the_fused_tile_stores_the_same_blocks_within_the_budget():
    model = _block_lstm()
    fused = planning.plan(model, profile="x86-avx2")
    (tile,) = fused.matrices()[0].tiles
    grid = np.zeros((4 * 48 // 8, 64), bool)
    w = model.stages[0].weight
    grid[np.repeat(np.arange(w.shape[0]), np.diff(w.indptr)) // 8, w.indices] = True
    assert tile.encoded.stored == 8 * grid.sum() and tile.nnz == w.nnz
    budget = fused.weight_bytes()["total"] - 1
    held = planning.plan(model, profile="x86-avx2", flash_budget=budget)
    assert not _fused(held) and held.weight_bytes()["total"] <= budget


@needs_cc
@pytest.mark.parametrize(
    "case",
    [
        dict(),
        dict(bias=False),
        dict(hidden=240, inputs=40, density=0.1),  # z past 256 columns
        dict(hidden=32, inputs=16, density=0.5, layers=2),  # the second layer reads the first's h
    ],
    ids=["narrow", "no-bias", "wide", "two-layers"],
)
def test_fused_builds_compute_what_the_reference_does_under_sanitizers(tmp_path, case):
    if not _sanitizers_work(tmp_path):
        pytest.skip("this compiler cannot build ASan/UBSan programs")
    model = _block_lstm(**case)
    artifact, options = build(model, tmp_path, c_cflags=SANITIZE)
    source = (tmp_path / "model.c").read_text()
    fused = [k for k, m in artifact.info["matrices"].items() if m["format"] == "lstm8x1"]
    assert source.count("ep_lstm8x1_f32(") == len(fused)
    if artifact.info["cost_profile"] == "x86-avx2":  # a host with AVX2: every layer fused
        assert len(fused) == case.get("layers", 1)
    X = np.random.default_rng(5).normal(0, 1.0, (3, 9, model.input_size)).astype(np.float32)
    whole, streamed = _run_and_stream(artifact, tmp_path, options, X)
    reference = ir.ReferenceExecutor(model)
    assert np.max(np.abs(whole - reference.run(X))) <= 1e-5
    assert np.max(np.abs(streamed - reference.run(X, all_steps=True))) <= 1e-5


def test_a_variant_cell_is_not_fused():
    model = _block_lstm()
    variant = dataclasses.replace(model.stages[0], clip=3.0)  # ONNX's cell clip: not torch's cell
    assert not variant.default_cell
    assert not _fused(
        planning.plan(ir.Model(model.input_size, [variant, model.stages[1]]).validate(), profile="x86-avx2")
    )

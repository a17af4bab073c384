"""SELL tiles as their rows' first writers (tiling.first_writers, ep_sell_set_f32 / ep_sell16_set_f32):
where SELL tiles cover every row of a matrix once, they set bias + W z and the bias copy goes; rows
without a weight get their bias alone. Checked against the reference executor under ASan/UBSan, with
and without biases, narrow (8-bit columns) and wide (z past 256 columns: 16-bit, one tile per gate
block over all of z), and the bytes they add against the budget."""

import dataclasses

import numpy as np
import pytest

from edgeprune import ir
from edgeprune.backends.c import formats, planning

from .conftest import build, needs_cc, random_ir
from .test_stages import SANITIZE, _run_and_stream, _sanitizers_work


def _sparse_lstm(bias: bool, wide: bool = False):
    """An LSTM whose gate rows often hold no weight at all (density 0.04 over 16 + 48 columns; wide:
    0.02 over 40 + 240, z past what a byte indexes)."""
    hidden, inputs, density = (240, 40, 0.02) if wide else (48, 16, 0.04)
    model = random_ir(("lstm",), (hidden,), feedback=False, density=density, input_size=inputs, classes=5, seed=7)
    if bias:
        return model
    layer = dataclasses.replace(model.stages[0], bias=None)
    return ir.Model(model.input_size, [layer, model.stages[1]]).validate()


def _block_lstm(bias: bool, wide: bool = False):
    """An LSTM with an 8x1-block mask (block rows of 8 gate rows sharing columns), block rows empty
    inside each gate block (not its first or last: a tile is trimmed to the rows it uses, and a set
    of first writers must cover all); wide: z past 256 columns (16-bit block columns)."""
    hidden, inputs = (240, 40) if wide else (48, 16)
    rng = np.random.default_rng(11)
    rows, cols = 4 * hidden, inputs + hidden
    grid = rng.random((rows // 8, cols)) < (0.03 if wide else 0.08)  # short rows: not fused (test_fused_lstm)
    per_gate = hidden // 8
    grid[:, 0] |= np.isin(np.arange(rows // 8) % per_gate, (0, per_gate - 1))
    grid[np.arange(rows // 8) % per_gate == 2] = False
    keep = np.repeat(grid, 8, axis=0)
    weight = ir.CSR.from_dense(rng.normal(scale=0.3, size=(rows, cols)).astype(np.float32), keep)
    b = rng.normal(scale=0.1, size=rows).astype(np.float32) if bias else None
    layer = ir.Layer("lstm", inputs, hidden, 0, weight, b)
    head = ir.Head(ir.CSR.from_dense(rng.normal(size=(5, hidden)).astype(np.float32)), np.zeros(5, np.float32))
    return ir.Model(inputs, [layer, head]).validate()


MODELS = {"sell": _sparse_lstm, "sell16": _sparse_lstm, "bsr8x1": _block_lstm, "bsr8x1w": _block_lstm}


def _model(fmt: str, bias: bool):
    return MODELS[fmt](bias, wide=fmt.endswith(("16", "w")))


def _setters(plan):
    """(matrix, tile) of the recurrent layer's first writers (the head may have its own)."""
    return [(m, t) for m in plan.matrices() for t in m.tiles if t.encoded.sets and m.label == "layers.0.weight"]


@pytest.mark.parametrize("fmt", list(MODELS))
def test_first_writers_cover_every_row_once_and_list_the_rows_without_a_weight(fmt):
    model = _model(fmt, bias=True)
    kernel = "ell" if fmt == "sell" else "bsr" if fmt.startswith("bsr") else "auto"
    plan = planning.plan(model, kernel=kernel, profile="x86-avx2")
    setters = _setters(plan)
    assert setters and {t.format for _, t in setters} == {fmt}
    m = setters[0][0]
    pattern = np.zeros(m.shape, bool)
    w = model.stages[0].weight
    pattern[np.repeat(np.arange(w.shape[0]), np.diff(w.indptr)), w.indices] = True
    covered = np.zeros(m.shape[0], int)
    empty = 0
    for _, t in setters:
        tile_rows = pattern[t.row : t.row + t.rows, t.col : t.col + t.cols]
        if fmt.startswith("sell"):  # perm: every row of the tile once, the walked ones first
            listed, walked = t.encoded.arrays["perm"], t.encoded.kernel_rows(t.rows)
            assert sorted(listed.tolist()) == list(range(t.rows))
            used = tile_rows.any(axis=1)
        else:  # brows: every block row once, those holding a block first
            listed, walked = t.encoded.arrays["brows"], int(t.encoded.arrays["runs"][1::2].sum())
            assert sorted(listed.tolist()) == list(range(-(-t.rows // 8)))
            used = np.zeros(-(-t.rows // 8) * 8, bool)
            used[: t.rows] = tile_rows.any(axis=1)
            used = used.reshape(-1, 8).any(axis=1)
        assert not used[listed[walked:]].any() and used[listed[:walked]].all()
        covered[t.row : t.row + t.rows] += 1
        empty += len(listed) - walked
    assert (covered == 1).all()
    assert empty  # the rows (block rows) set to their bias alone are exercised


def test_first_writers_respect_an_explicit_budget():
    model = _sparse_lstm(bias=True)
    free = planning.plan(model, kernel="ell", profile="x86-avx2")
    added = 2 * sum(t.rows - t.encoded.kernel_rows(t.rows) for _, t in _setters(free))
    assert added
    before = free.weight_bytes()["total"] - added  # what the same tiles take as adders
    held = planning.plan(model, kernel="ell", profile="x86-avx2", flash_budget=before)
    assert not _setters(held) and held.weight_bytes()["total"] == before


@needs_cc
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(
    "kernel,fmt", [("ell", "sell"), ("auto", "sell"), ("auto", "sell16"), ("bsr", "bsr8x1"), ("auto", "bsr8x1w")]
)
def test_first_writer_builds_compute_what_the_reference_does_under_sanitizers(tmp_path, bias, kernel, fmt):
    if not _sanitizers_work(tmp_path):
        pytest.skip("this compiler cannot build ASan/UBSan programs")
    model = _model(fmt, bias)
    artifact, options = build(model, tmp_path, c_cflags=SANITIZE, kernel=kernel)
    source = (tmp_path / "model.c").read_text()
    tiles = artifact.info["matrices"]["layers.0.weight"]["tiles"]  # compile.json says which set
    setters = [t for t in tiles if t.get("first_writer")]
    if setters:
        assert "ep_copy(s->pre" not in source
        for f in formats.SETTERS:
            assert source.count(f"ep_{f}_set_f32(s->pre") == sum(t["format"] == f for t in setters)
    elif kernel != "auto":
        pytest.fail(f"no first writer in a --kernel {kernel} build of a sparse LSTM")
    X = np.random.default_rng(5).normal(0, 1.0, (3, 7, model.input_size)).astype(np.float32)
    whole, streamed = _run_and_stream(artifact, tmp_path, options, X)
    reference = ir.ReferenceExecutor(model)
    assert np.max(np.abs(whole - reference.run(X))) <= 1e-5
    assert np.max(np.abs(streamed - reference.run(X, all_steps=True))) <= 1e-5

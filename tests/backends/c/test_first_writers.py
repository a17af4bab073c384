"""SELL tiles as their rows' first writers (tiling.first_writers, ep_sell_set_f32 / ep_sell16_set_f32):
where SELL tiles cover every row of a matrix once, they set bias + W z and the bias copy goes; rows
without a weight get their bias alone. Checked against the reference executor under ASan/UBSan, with
and without biases, narrow (8-bit columns) and wide (z past 256 columns: 16-bit, one tile per gate
block over all of z), and the bytes they add against the budget."""

import dataclasses

import numpy as np
import pytest

from edgeprune import ir
from edgeprune.backends.c import planning

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


def _setters(plan):
    return [(m, t) for m in plan.matrices() for t in m.tiles if t.encoded.sets]


@pytest.mark.parametrize("wide", [False, True], ids=["sell", "sell16"])
def test_first_writers_cover_every_row_once_and_list_the_rows_without_a_weight(wide):
    model = _sparse_lstm(bias=True, wide=wide)
    plan = planning.plan(model, kernel="auto" if wide else "ell", profile="x86-avx2")
    setters = _setters(plan)
    assert setters and {t.format for _, t in setters} == {"sell16" if wide else "sell"}
    m = setters[0][0]
    covered = np.zeros(m.shape[0], int)
    empty_rows = 0
    for _, t in setters:
        perm = t.encoded.arrays["perm"]
        assert sorted(perm.tolist()) == list(range(t.rows))  # every row of the tile, once
        walked = t.encoded.kernel_rows(t.rows)
        pattern = np.zeros(m.shape, bool)
        w = model.stages[0].weight
        pattern[np.repeat(np.arange(w.shape[0]), np.diff(w.indptr)), w.indices] = True
        tile_rows = pattern[t.row : t.row + t.rows, t.col : t.col + t.cols]
        assert not tile_rows[perm[walked:]].any() and tile_rows[perm[:walked]].any(axis=1).all()
        covered[t.row : t.row + t.rows] += 1
        empty_rows += t.rows - walked
    assert (covered == 1).all()
    assert empty_rows  # the rows set to their bias alone are exercised


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
@pytest.mark.parametrize("kernel,wide", [("ell", False), ("auto", False), ("auto", True)])
def test_first_writer_builds_compute_what_the_reference_does_under_sanitizers(tmp_path, bias, kernel, wide):
    if not _sanitizers_work(tmp_path):
        pytest.skip("this compiler cannot build ASan/UBSan programs")
    model = _sparse_lstm(bias, wide)
    artifact, options = build(model, tmp_path, c_cflags=SANITIZE, kernel=kernel)
    source = (tmp_path / "model.c").read_text()
    tiles = artifact.info["matrices"]["layers.0.weight"]["tiles"]  # compile.json says which set
    setters = [t for t in tiles if t.get("first_writer")]
    if setters:
        assert "ep_copy(s->pre" not in source
        for fmt in ("sell", "sell16"):
            assert source.count(f"ep_{fmt}_set_f32(") == sum(t["format"] == fmt for t in setters)
    elif kernel == "ell":
        pytest.fail("no first writer in an ELL/SELL build of a 96% sparse LSTM")
    X = np.random.default_rng(5).normal(0, 1.0, (3, 7, model.input_size)).astype(np.float32)
    whole, streamed = _run_and_stream(artifact, tmp_path, options, X)
    reference = ir.ReferenceExecutor(model)
    assert np.max(np.abs(whole - reference.run(X))) <= 1e-5
    assert np.max(np.abs(streamed - reference.run(X, all_steps=True))) <= 1e-5

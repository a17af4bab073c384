"""SELL tiles as their rows' first writers (tiling.first_writers, ep_sell_set_f32): where SELL tiles
cover every row of a matrix once, they set bias + W z and the bias copy goes; rows without a weight
get their bias alone. Checked against the reference executor under ASan/UBSan, with and without
biases, and the bytes they add against the budget."""

import dataclasses

import numpy as np
import pytest

from edgeprune import ir
from edgeprune.backends.c import planning

from .conftest import build, needs_cc, random_ir
from .test_stages import SANITIZE, _run_and_stream, _sanitizers_work


def _sparse_lstm(bias: bool):
    """An LSTM whose gate rows often hold no weight at all (density 0.04 over 16 + 48 columns)."""
    model = random_ir(("lstm",), (48,), feedback=False, density=0.04, input_size=16, classes=5, seed=7)
    if bias:
        return model
    layer = dataclasses.replace(model.stages[0], bias=None)
    return ir.Model(model.input_size, [layer, model.stages[1]]).validate()


def _setters(plan):
    return [(m, t) for m in plan.matrices() for t in m.tiles if t.encoded.sets]


def test_first_writers_cover_every_row_once_and_list_the_rows_without_a_weight():
    model = _sparse_lstm(bias=True)
    plan = planning.plan(model, kernel="ell", profile="x86-avx2")
    setters = _setters(plan)
    assert setters
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
@pytest.mark.parametrize("kernel", ["ell", "auto"])
def test_first_writer_builds_compute_what_the_reference_does_under_sanitizers(tmp_path, bias, kernel):
    if not _sanitizers_work(tmp_path):
        pytest.skip("this compiler cannot build ASan/UBSan programs")
    model = _sparse_lstm(bias)
    plan = planning.plan(model, kernel=kernel)
    artifact, options = build(model, tmp_path, c_cflags=SANITIZE, kernel=kernel)
    source = (tmp_path / "model.c").read_text()
    if _setters(plan):
        assert "ep_sell_set_f32(" in source and "ep_copy(s->pre" not in source
        tiles = artifact.info["matrices"]["layers.0.weight"]["tiles"]
        assert sum(t.get("first_writer", False) for t in tiles) == len(_setters(plan))  # compile.json says which
    elif kernel == "ell":
        pytest.fail("no first writer in an ELL/SELL build of a 96% sparse LSTM")
    X = np.random.default_rng(5).normal(0, 1.0, (3, 7, 16)).astype(np.float32)
    whole, streamed = _run_and_stream(artifact, tmp_path, options, X)
    reference = ir.ReferenceExecutor(model)
    assert np.max(np.abs(whole - reference.run(X))) <= 1e-5
    assert np.max(np.abs(streamed - reference.run(X, all_steps=True))) <= 1e-5

"""Planning and generation of C sources (no compiler needed)."""

import numpy as np
import pytest

from edgeprune import frontend, ir, prune
from edgeprune.backends.c import codegen
from edgeprune.errors import BackendError

from ...conftest import make_model


def _lowered(cell="lstm", hidden=(12,), feedback=False, sparsity=0.0, input_size=5, method="magnitude"):
    model = make_model(cell, hidden, feedback, input_size=input_size)
    if sparsity:
        model = prune.prune_model(model, method, sparsity).model
    return frontend.lower(model)


def test_smallest_takes_the_format_with_fewer_bytes_and_counts_them_exactly():
    dense = codegen.plan(_lowered())
    sparse = codegen.plan(_lowered(sparsity=0.9))
    assert dense.layers[0].matrix.format == "dense" and sparse.layers[0].matrix.format == "csr"
    m = sparse.layers[0].matrix
    rows, cols = m.shape
    assert m.index_bits == 8  # 5 + 12 columns
    assert m.bytes_by_format["csr"] == m.nnz * (4 + 1) + rows * 1
    assert m.bytes_by_format["dense"] == 4 * sum(t.rows * t.cols for t in m.tiles) < 4 * rows * cols
    full = dense.layers[0].matrix
    assert full.bytes_by_format["dense"] == 4 * full.shape[0] * full.shape[1]  # unpruned: one tile per block, whole
    assert sparse.head.format == "dense"  # the head is not pruned by default
    assert sparse.weight_bytes()["weights"] == m.weight_bytes + sparse.head.weight_bytes


@pytest.mark.parametrize("sparsity,host,m4", [(0.5, "dense", "dense"), (0.7, "dense", "csr"), (0.9, "csr", "csr")])
def test_fastest_follows_the_cost_model_of_the_target(sparsity, host, m4):
    graph = _lowered("lstm", (128,), input_size=28, sparsity=sparsity)
    assert codegen.plan(graph, fmt="smallest").layers[0].matrix.format == "csr"  # smaller from 50% on (u8 indices)
    assert codegen.plan(graph, fmt="fastest", arch="host").layers[0].matrix.format == host
    m = codegen.plan(graph, fmt="fastest", arch="cortex-m4").layers[0].matrix
    assert m.format == m4 and m.cost_by_format[m4] == min(m.cost_by_format.values())


@pytest.mark.parametrize("cols,bits", [(1, 8), (255, 8), (256, 16), (65535, 16), (65536, 32)])
def test_index_width_is_the_smallest_that_fits_columns_and_row_counts(cols, bits):
    assert codegen.index_bits(cols) == bits


def test_wide_inputs_get_16_bit_indices():
    plan = codegen.plan(_lowered(input_size=300, sparsity=0.9))
    assert plan.layers[0].matrix.index_bits == 16
    assert "static const uint16_t l0_cols" in codegen.generate(plan)["model.c"]


def test_dense_tiles_leave_out_blocks_a_gru_never_reads():
    plan = codegen.plan(_lowered("gru", (12, 9), True), fmt="dense")
    layer = plan.layers[0]
    H, I = 12, 5
    tiles = layer.matrix.tiles
    n_x = [t for t in tiles if t.row == 2 * H]
    n_h = [t for t in tiles if t.row == 3 * H]
    assert [(t.col, t.cols) for t in n_x] == [(0, I), (I + H, 9)]  # input and feedback, never state
    assert [(t.col, t.cols) for t in n_h] == [(I, H)]  # state only
    assert layer.matrix.bytes_by_format["dense"] == 4 * sum(t.rows * t.cols for t in tiles)


def test_tiles_are_trimmed_to_the_rows_and_columns_they_use():
    model = _lowered()
    w = model.layers[0].weight.to_dense()
    w[:, 0] = 0  # input feature 0 unused
    w[:3] = 0  # first three rows empty
    model.layers[0].weight = ir.CSR.from_dense(w)
    tile = codegen.plan(model, fmt="dense").layers[0].matrix.tiles[0]
    assert (tile.row, tile.col) == (3, 1)


def test_panel_layout_is_column_major_inside_8_row_panels():
    block = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
    out = codegen.panel_layout(block)
    assert out[:8].tolist() == block[:8, 0].tolist() and out[8:16].tolist() == block[:8, 1].tolist()
    assert out[24:].tolist() == block[8:].ravel().tolist()


def test_float_literals_round_trip_exactly():
    values = np.float32([0.1, -1.0, 1e-45, 3.4028235e38, 1e-5, 123456792.0, -0.0])
    literals = codegen._floats(values)
    assert all(l.endswith("f") and ("." in l or "e" in l) for l in literals)
    assert np.array_equal(np.float32([float(l[:-1]) for l in literals]), values)


def test_generation_is_deterministic_and_self_describing():
    plan = codegen.plan(_lowered("lstm", (12, 9), True, sparsity=0.8), prefix="kws")
    a, b = codegen.generate(plan), codegen.generate(plan)
    assert a == b
    assert sorted(a) == ["Makefile", "edgeprune_rt.c", "edgeprune_rt.h", "edgeprune_run.c", "kws.c", "kws.h"]
    assert "kws_step(kws_state_t *state, const float *x, float *logits)" in a["kws.h"]
    assert "@PREFIX" not in a["edgeprune_run.c"] and "kws_run(" in a["edgeprune_run.c"]
    assert "float arena[26]; /* [x 5 | h0 12 | h1 9] */" in a["kws.h"]


@pytest.mark.parametrize("prefix", ["", "9lives", "my-model", "int", "ep_model", "x" * 40])
def test_bad_prefixes_are_refused(prefix):
    with pytest.raises(BackendError, match="c-prefix"):
        codegen.plan(_lowered(), prefix=prefix)


def test_libm_activations_call_the_libm_cells():
    source = codegen.generate(codegen.plan(_lowered("gru"), activations="libm"))["model.c"]
    assert "ep_gru_libm(" in source

"""Emitting C from a plan: tables, calls, literals, templates (no compiler needed)."""

import re

import numpy as np

from edgeprune.backends.c import codegen, planning

from .test_planning import _lowered


def test_wide_segments_are_cut_into_256_column_chunks_with_byte_indices():
    plan = planning.plan(_lowered(input_size=300, sparsity=0.9), kernel="csr")
    tiles = [t for t in plan.layers[0].matrix.tiles if t.segment == 0]
    assert {t.cols for t in tiles} <= set(range(1, 257)) and len({t.col for t in tiles}) >= 2
    assert all(t.encoded.arrays["cols"].dtype == np.uint8 for t in plan.layers[0].matrix.tiles)
    source = codegen.generate(plan)["model.c"]
    assert "static const uint8_t l0_t0_cols" in source and "uint16_t l0_t0_cols" not in source


def test_int8_plans_store_bytes_and_row_scales():
    graph = _lowered(hidden=(16,), sparsity=0.8)
    f32, int8 = planning.plan(graph, kernel="csr"), planning.plan(graph, kernel="csr", dtype="int8")
    m = int8.layers[0].matrix
    assert m.weight_bytes == m.table_bytes + 4 * m.shape[0]
    values = [sum(t.encoded.arrays["values"].nbytes for t in p.layers[0].matrix.tiles) for p in (f32, int8)]
    assert values[0] - values[1] == 3 * m.nnz  # 4-byte floats -> 1-byte ints (the layouts may differ)
    assert int8.zq >= graph.layers[0].cols and int8.state_bytes == f32.state_bytes + -(-int8.zq // 4) * 4
    source = codegen.generate(int8)["model.c"]
    assert "ep_quantize(s->zq, a, 5)" in source and "ep_csr_i8(" in source and "l0_scales" in source


def test_float_literals_round_trip_exactly():
    values = np.float32([0.1, -1.0, 1e-45, 3.4028235e38, 1e-5, 123456792.0, -0.0])
    literals = codegen._floats(values)
    assert all(l.endswith("f") and ("." in l or "e" in l) for l in literals)
    assert np.array_equal(np.float32([float(l[:-1]) for l in literals]), values)


def test_generation_is_deterministic_and_self_describing():
    plan = planning.plan(_lowered("lstm", (12, 9), True, sparsity=0.8), prefix="kws")
    a, b = codegen.generate(plan), codegen.generate(plan)
    assert a == b
    assert sorted(a) == [
        "CMakeLists.txt",
        "Makefile",
        "edgeprune_rt.c",
        "edgeprune_rt.h",
        "edgeprune_run.c",
        "kws.c",
        "kws.h",
        "main.c",
    ]
    assert "kws_step(kws_state_t *state, const float *x, float *out)" in a["kws.h"]
    assert "@PREFIX" not in "".join(a.values()) and "kws_run(" in a["edgeprune_run.c"]
    assert "float arena[29]; /* [x 5 | h0 12 | h1 9] and 3 zeros */" in a["kws.h"]
    assert f"#define KWS_STATE_BYTES {plan.state_bytes}" in a["kws.h"]
    assert "add_library(kws STATIC kws.c edgeprune_rt.c)" in a["CMakeLists.txt"] and "libkws.a:" in a["Makefile"]


def test_libm_activations_call_the_libm_cells():
    source = codegen.generate(planning.plan(_lowered("gru"), activations="libm"))["model.c"]
    assert "ep_gru_libm(" in source


def test_every_template_is_filled_and_the_header_keeps_only_the_state_it_needs():
    for dtype, cell in (("f32", "gru"), ("int8", "lstm")):
        files = codegen.generate(planning.plan(_lowered(cell), prefix="kws", dtype=dtype))
        for name, text in files.items():
            assert not re.search(r"@[A-Z_]+@", text), name
        header = files["kws.h"]
        assert ("float cell[" in header) == (cell == "lstm")
        assert ("int8_t zq[" in header) == (dtype == "int8")
        assert "\n\n\n" not in header  # an unused member leaves no blank line behind
        assert "#define KWS_INPUT_SIZE 5\n" in header and "} kws_state_t;" in header


def test_fill_drops_only_lines_that_fill_to_nothing():
    assert codegen.fill("a\n@X@\n@Y@ b\n", {"X": "", "Y": ""}) == "a\n b\n"
    assert codegen.fill("@X@\n", {"X": "1"}) == "1\n"

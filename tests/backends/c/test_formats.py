"""Byte layouts of the storage formats (the kernels reading them are tested in tests/runtime)."""

import numpy as np
import pytest

from edgeprune.backends.c import formats


def test_dense_f32_panels_are_column_major_then_the_rest_row_major():
    block = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
    w = formats.dense_f32(block).arrays["w"]
    assert w[:8].tolist() == block[:8, 0].tolist() and w[8:16].tolist() == block[:8, 1].tolist()
    assert w[24:].tolist() == block[8:].ravel().tolist()


def test_int8_pairs_put_two_rows_and_two_columns_in_each_word():
    block = np.arange(8 * 3, dtype=np.int8).reshape(8, 3)  # odd columns: a zero column is added
    w = formats.dense_i8(block).arrays["w"]
    assert w.size == 8 * 4
    # first pair (columns 0, 1), rows 0 and 1: [r0c0 r1c0 r0c1 r1c1]
    assert w[:4].tolist() == [block[0, 0], block[1, 0], block[0, 1], block[1, 1]]
    assert w[16:20].tolist() == [block[0, 2], block[1, 2], 0, 0]


def test_sell_sorts_rows_by_count_and_pads_each_slice_to_its_longest_row():
    pattern = np.zeros((10, 20), bool)
    for r, n in enumerate([1, 5, 0, 3, 9, 2, 2, 7, 4, 1]):
        pattern[r, :n] = True
    values = pattern.astype(np.float32)
    enc = formats.sell(values, pattern)
    perm, widths = enc.arrays["perm"], enc.arrays["widths"]
    counts = pattern.sum(axis=1)
    assert list(counts[perm]) == sorted(counts, reverse=True)[:9]  # the empty row is left out
    assert enc.kernel_rows(10) == 9
    assert widths.tolist() == [9, 1]  # slice 0: rows with 9..1 entries; slice 1: the last row holding one
    assert enc.stored == 8 * 9 + 8 * 1 and enc.arrays["values"].sum() == pattern.sum()  # padding holds zeros


def test_ell_has_no_permutation_no_widths_and_no_padding_for_whole_slices():
    pattern = np.zeros((16, 40), bool)
    rng = np.random.default_rng(0)
    for r in range(16):
        pattern[r, rng.choice(40, 6, replace=False)] = True
    enc = formats.ell(rng.normal(size=(16, 40)).astype(np.float32), pattern)
    assert set(enc.arrays) == {"values", "cols"} and enc.params == {"width": 6}
    assert enc.stored == pattern.sum() and enc.bytes == 5 * pattern.sum()
    with pytest.raises(AssertionError):
        formats.ell(np.zeros((2, 3), np.float32), np.array([[1, 0, 0], [1, 1, 0]], bool))


def test_block_formats_store_one_index_per_block():
    rng = np.random.default_rng(1)
    grid = rng.random((4, 10)) < 0.3
    pattern = np.kron(grid, np.ones((8, 1), bool))
    enc = formats.bsr(pattern.astype(np.float32), pattern, "bsr8x1")
    counts = grid.sum(axis=1)
    # f32: non-empty block rows only, most blocks first, in runs of [count, block rows]
    order = [b for b in np.argsort(-counts, kind="stable") if counts[b]]
    assert enc.arrays["brows"].tolist() == order
    runs = enc.arrays["runs"].reshape(-1, 2)
    assert np.repeat(runs[:, 0], runs[:, 1]).tolist() == counts[order].tolist()
    assert len(set(runs[:, 0].tolist())) == len(runs) and enc.params == {"nruns": len(runs)}
    assert enc.arrays["cols"].tolist() == [c for b in order for c in np.flatnonzero(grid[b])]
    assert enc.stored == pattern.sum() and enc.arrays["cols"].size == grid.sum()
    empty = formats.bsr(np.zeros((9, 4), np.float32), np.zeros((9, 4), bool), "bsr8x1")
    assert empty.params == {"nruns": 0} and empty.bytes == 0
    int8 = formats.bsr(pattern.astype(np.int8), pattern, "bsr8x1")  # int8: a count per block row
    assert int8.arrays["blocks"].tolist() == (counts + counts % 2).tolist()
    one_by_four = formats.bsr(np.ones((3, 16), np.float32), np.ones((3, 16), bool), "bsr1x4")
    assert one_by_four.arrays["cols"].tolist() == [0, 1, 2, 3] * 3  # block columns, c / 4


def test_int8_column_blocks_are_padded_to_pairs():
    pattern = np.zeros((8, 5), bool)
    pattern[:, [0, 2, 4]] = True  # three 8x1 blocks -> four stored, the last all zeros
    enc = formats.bsr(np.ones((8, 5), np.int8), pattern, "bsr8x1")
    assert enc.arrays["blocks"].tolist() == [4] and enc.arrays["values"].size == 32
    assert enc.arrays["values"].sum() == 24

"""Storage formats of the C runtime: a tile of weights -> the arrays its kernel reads.

A tile is a block of a layer's fused gate matrix (some gate rows x a column range of z); each
encoder takes its values (float32, or int8 already quantized) and its stored pattern (the mask:
a stored weight may be 0) and returns the arrays in exactly the layout ``runtimes/c/edgeprune_rt.c``
reads (see the comments there and docs/c-backend.md). Tiles of the sparse formats are at most
``MAX_COLS`` columns wide, so every column index fits in a byte (wider matrices are split into
column chunks); ``ell16`` and ``sell16`` keep a wide tile (row-regular or not) whole with 16-bit
indices, ``bsr8x1w`` a wide 8x1-block tile with 16-bit block columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SLICE = 8  # EP_SLICE: rows per dense panel, ELL/SELL slice, 8x1 block
MAX_COLS = 256  # uint8 column indices
MAX_COLS_1X4 = 4 * 256  # uint8 block-column indices
FORMATS = ("dense", "csr", "ell", "ell16", "sell", "sell16", "bsr8x1", "bsr8x1w", "bsr4x1", "bsr1x4")
BLOCK_SHAPES = {"bsr8x1": (8, 1), "bsr8x1w": (8, 1), "bsr4x1": (4, 1), "bsr1x4": (1, 4)}
# f32 formats that keep a tile wider than MAX_COLS whole (16-bit column indices) instead of chunks
WIDE = ("ell16", "sell16", "bsr8x1w")
F32_ONLY = ("sell16", "bsr8x1w")  # no int8 kernel (an int8 tile never spans the input and state segments)
SELL = ("sell", "sell16")
# formats that can be their rows' first writers (first_writer): SELL with its biases in slot order,
# f32 8x1 blocks reading the rows' own
SETTERS = SELL + ("bsr8x1", "bsr8x1w")
CTYPES = {
    np.dtype(np.float32): "float",
    np.dtype(np.int8): "int8_t",
    np.dtype(np.uint8): "uint8_t",
    np.dtype(np.uint16): "uint16_t",
    np.dtype(np.uint32): "uint32_t",
}


@dataclass
class Encoded:
    format: str
    arrays: dict[str, np.ndarray]  # in kernel argument order
    params: dict[str, int] = field(default_factory=dict)  # scalar arguments after rows (ELL width)
    stored: int = 0  # weights stored, padding included (what the kernel multiplies)
    walked: int | None = None  # rows the kernel walks if fewer than the tile's (SELL: the rows holding a weight)
    sets: bool = False  # its rows' first writer (first_writer): y = bias + W z; perm / brows list all the rows

    @property
    def values_dtype(self) -> np.dtype:
        return self.arrays[next(iter(self.arrays))].dtype

    def kernel_rows(self, rows: int) -> int:
        """The ``rows`` argument of the kernel call for a tile of ``rows`` rows."""
        return rows if self.walked is None else self.walked

    @property
    def bytes(self) -> int:
        return int(sum(a.nbytes for a in self.arrays.values()))


def _row_lists(pattern: np.ndarray) -> list[np.ndarray]:
    return [np.flatnonzero(row) for row in pattern]


def dense_f32(values: np.ndarray) -> Encoded:
    """Panels of SLICE rows, column-major inside; the last rows % SLICE rows row-major."""
    rows, cols = values.shape
    full = rows // SLICE * SLICE
    panels = values[:full].reshape(-1, SLICE, cols).transpose(0, 2, 1)
    w = np.concatenate([panels.ravel(), values[full:].ravel()]).astype(np.float32)
    return Encoded("dense", {"w": w}, stored=rows * cols)


def dense_i8(values: np.ndarray) -> Encoded:
    """Panels of SLICE rows (zero-padded) over column pairs: rows 2k, 2k+1 as [r0c0 r1c0 r0c1 r1c1]."""
    rows, cols = values.shape
    padded = np.zeros((-(-rows // SLICE) * SLICE, cols + cols % 2), np.int8)
    padded[:rows, :cols] = values
    return Encoded("dense", {"w": _pairs(padded, SLICE)}, stored=padded.size)


def _pairs(block_columns: np.ndarray, height: int) -> np.ndarray:
    """[panels of `height` rows] x [column pairs] -> bytes in the int8 pair layout."""
    rows, cols = block_columns.shape
    # index: panel, pair, row pair k, then (row 2k col 0, row 2k+1 col 0, row 2k col 1, row 2k+1 col 1)
    t = block_columns.reshape(rows // height, height // 2, 2, cols // 2, 2)  # panel, k, row-in-pair, pair, col
    return np.ascontiguousarray(t.transpose(0, 3, 1, 4, 2)).ravel()


def csr(values: np.ndarray, pattern: np.ndarray) -> Encoded:
    rows, cols = values.shape
    assert cols <= MAX_COLS
    lists = _row_lists(pattern)
    idx = np.concatenate(lists + [np.zeros(0, np.int64)]).astype(np.uint8)
    vals = np.concatenate([values[r, c] for r, c in enumerate(lists)] + [np.zeros(0, values.dtype)])
    counts = np.array([len(c) for c in lists], np.uint16)
    return Encoded("csr", {"values": vals.astype(values.dtype), "cols": idx, "row_nnz": counts}, stored=idx.size)


def _sliced(values: np.ndarray, lists: list[np.ndarray], order: np.ndarray, widths: np.ndarray, index_type):
    """Slices of SLICE rows (in ``order``), column-major, each row padded to its slice's width."""
    vals, idx = [], []
    for s, width in enumerate(widths):
        v = np.zeros((int(width), SLICE), values.dtype)
        c = np.zeros((int(width), SLICE), index_type)
        for i, r in enumerate(order[s * SLICE : (s + 1) * SLICE]):
            cols = lists[r]
            v[: len(cols), i] = values[r, cols]
            c[: len(cols), i] = cols
            if 0 < len(cols) < width:  # padding reads a column the row reads anyway
                c[len(cols) :, i] = cols[-1]
        vals.append(v.ravel())
        idx.append(c.ravel())
    empty_v, empty_i = np.zeros(0, values.dtype), np.zeros(0, index_type)
    return np.concatenate(vals + [empty_v]), np.concatenate(idx + [empty_i])


def row_regular(pattern: np.ndarray) -> bool:
    counts = pattern.sum(axis=1)
    return bool(counts.size) and counts.min() == counts.max()


def ell(values: np.ndarray, pattern: np.ndarray) -> Encoded:
    """Every row the same count: no permutation, no per-slice widths, no padding (but the tail slice)."""
    rows, cols = values.shape
    assert row_regular(pattern)
    wide = cols > MAX_COLS
    assert cols <= 0x10000
    lists = _row_lists(pattern)
    width = len(lists[0])
    slices = -(-rows // SLICE)
    vals, idx = _sliced(values, lists, np.arange(rows), np.full(slices, width), np.uint16 if wide else np.uint8)
    return Encoded("ell16" if wide else "ell", {"values": vals, "cols": idx}, {"width": width}, stored=idx.size)


def sell(values: np.ndarray, pattern: np.ndarray) -> Encoded:
    """SELL-C-sigma with C = SLICE and sigma = all rows: rows sorted by count, slices padded to their longest.

    Rows without a weight sort last and are left out (the kernel walks only ``walked`` rows): a tile
    spanning several gate blocks or a narrow input segment has many, and each would cost a slice's
    share of the scatter for nothing."""
    rows, cols = values.shape
    wide = cols > MAX_COLS  # sell16: a whole wide tile, 16-bit column indices
    assert cols <= 0x10000 and rows <= 0x10000
    lists = _row_lists(pattern)
    counts = np.array([len(c) for c in lists])
    order = _by_count(counts)
    widths = np.array([counts[order[s : s + SLICE]].max() for s in range(0, order.size, SLICE)], np.uint16)
    vals, idx = _sliced(values, lists, order, widths, np.uint16 if wide else np.uint8)
    return Encoded(
        "sell16" if wide else "sell",
        {"values": vals, "cols": idx, "widths": widths, "perm": order.astype(np.uint16)},
        stored=idx.size,
        walked=int(order.size),
    )


def block_grid(pattern: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """[block rows, block cols] booleans: which blocks hold a stored weight (edges zero-padded)."""
    br, bc = shape
    rows, cols = pattern.shape
    padded = np.zeros((-(-rows // br) * br, -(-cols // bc) * bc), bool)
    padded[:rows, :cols] = pattern
    return padded.reshape(padded.shape[0] // br, br, padded.shape[1] // bc, bc).any(axis=(1, 3))


def bsr(values: np.ndarray, pattern: np.ndarray, fmt: str) -> Encoded:
    """Blocks holding any stored weight, zero-filled; int8 8x1/4x1 blocks go in pairs (an odd count padded)."""
    br, bc = BLOCK_SHAPES[fmt]
    rows, cols = values.shape
    wide = fmt == "bsr8x1w"  # 16-bit block columns: x and h of a recurrent matrix in one tile (f32)
    assert cols <= (0x10000 if wide else MAX_COLS_1X4 if fmt == "bsr1x4" else MAX_COLS)
    assert not (wide and values.dtype == np.int8)
    assert -(-rows // br) < 0x10000  # uint16 block-row indices and run lengths
    index_type = np.uint16 if wide else np.uint8
    grid = block_grid(pattern, (br, bc))
    padded = np.zeros((grid.shape[0] * br, grid.shape[1] * bc), values.dtype)
    padded[:rows, :cols] = np.where(pattern, values, 0)
    int8 = values.dtype == np.int8
    vals, idx, counts, stored = [], [], [], 0
    for b, row in enumerate(grid):
        picks = np.flatnonzero(row)
        if int8 and bc == 1 and len(picks) % 2:
            picks = np.append(picks, picks[-1])  # a zero block at a column the block-row reads anyway
            zero_last = True
        else:
            zero_last = False
        blocks = (
            np.stack([padded[b * br : (b + 1) * br, c * bc : (c + 1) * bc] for c in picks])
            if len(picks)
            else np.zeros((0, br, bc), values.dtype)
        )
        if zero_last:
            blocks[-1] = 0
        if int8 and bc == 1:  # [pairs of blocks] as the int8 pair layout over `br` rows
            vals.append(_pairs(blocks[:, :, 0].T.copy(), br) if len(picks) else np.zeros(0, np.int8))
        else:
            vals.append(blocks.reshape(len(picks), br * bc).ravel())
        idx.append(picks.astype(index_type))
        counts.append(len(picks))
        stored += len(picks) * br * bc
    if int8:  # one count per block row, empty ones included
        arrays = {
            "values": np.concatenate(vals + [np.zeros(0, values.dtype)]).astype(values.dtype),
            "cols": np.concatenate(idx + [np.zeros(0, np.uint8)]),
            "blocks": np.array(counts, np.uint16),
        }
        return Encoded(fmt, arrays, stored=stored)
    # f32: only block rows holding a block, sorted by count into runs of equal count (see _runs)
    order, runs = _runs(np.array(counts, np.int64))
    arrays = {
        "values": np.concatenate([vals[b] for b in order] + [np.zeros(0, values.dtype)]).astype(values.dtype),
        "cols": np.concatenate([idx[b] for b in order] + [np.zeros(0, index_type)]),
        "runs": runs,
        "brows": order.astype(np.uint16),
    }
    return Encoded(fmt, arrays, {"nruns": runs.size // 2}, stored=stored)


# An LSTM's whole gate matrix as one 8x1-block tile with the cell fused (ep_lstm8x1_f32); planned after
# the layout (planning._fuse_lstm_blocks), never a per-tile option
LSTM8X1 = "lstm8x1"


def lstm8x1(values: np.ndarray, pattern: np.ndarray, hidden: int) -> Encoded:
    """An LSTM gate matrix [4 * hidden, cols] (gates i, f, g, o) for ``ep_lstm8x1_f32``: block rows
    (SLICE rows x one column) in row order, each gate's one contiguous run that the kernel walks beside
    the other three's, their blocks holding a stored weight zero-filled as bsr8x1's; ``starts``: where
    each block row's blocks begin (4 bytes a block row, one more at the end: the kernel finds a row
    without the previous row's count), 16-bit columns. (Gate-interleaved rows, per-row counts and a
    gate's rows sorted by length measured within noise of this.)"""
    rows, cols = values.shape
    assert values.dtype == np.float32 and rows == 4 * hidden and hidden % SLICE == 0 and cols < 0x10000
    grid = block_grid(pattern, (SLICE, 1))
    filled = np.where(pattern, values, 0).astype(np.float32)
    groups = hidden // SLICE
    picks = [np.flatnonzero(grid[br]) for br in range(4 * groups)]  # block rows in row order: gate-major
    vals = [filled[br * SLICE : (br + 1) * SLICE, p].T.ravel() for br, p in enumerate(picks)]
    starts = np.concatenate([[0], np.cumsum([len(p) for p in picks])]).astype(np.uint32)
    arrays = {
        "values": np.concatenate(vals + [np.zeros(0, np.float32)]),
        "cols": np.concatenate(picks + [np.zeros(0, np.int64)]).astype(np.uint16),
        "starts": starts,
    }
    return Encoded(LSTM8X1, arrays, stored=SLICE * int(starts[-1]))


def first_writer(enc: Encoded, rows: int) -> Encoded:
    """A tile that *sets* its rows (``ep_<format>_set_f32``): run before every other tile of its rows,
    it stores sum + bias where a tile adds to y, so the matrix needs no bias copy first and a slice
    or block row reads no y. SELL: ``perm`` goes on past the walked rows to the rows without a weight
    (which it sets to their bias), and its biases are stored in slot order (codegen: the model's own
    values, one vector add a slice). f32 8x1 blocks: ``brows`` goes on past the walked block rows to
    those without a block, and the kernel reads the rows' own biases. 2 bytes per row (block row)
    listed."""
    assert enc.format in SETTERS and not enc.sets and enc.values_dtype == np.float32
    key, count = ("perm", rows) if enc.format in SELL else ("brows", -(-rows // SLICE))
    walked = enc.arrays[key]
    rest = np.setdiff1d(np.arange(count), walked)
    arrays = {**enc.arrays, key: np.concatenate([walked, rest]).astype(np.uint16)}
    return Encoded(enc.format, arrays, dict(enc.params), enc.stored, enc.walked, sets=True)


def _by_count(counts: np.ndarray) -> np.ndarray:
    """Indices of the nonzero ``counts``, largest first (ties in index order): the rows (SELL) or
    block rows (block runs) a kernel walks, in the order it walks them."""
    order = np.argsort(-counts, kind="stable")
    return order[: int(np.count_nonzero(counts))]


def _runs(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(block rows holding a block, most blocks first; runs as uint16 pairs [count, block rows]).

    A kernel that walks block rows in this order runs its inner loop with the same trip count for a
    whole run, so the loop exit is predicted, where a count that changes every block row (a few
    blocks each at 95-98% sparsity) mispredicts it on most of them; and it never visits an empty
    block row (a tile merged over several gate blocks has many). 2 bytes per stored block row plus
    4 per distinct count, instead of 2 per block row."""
    order = _by_count(counts)
    sizes, lengths = np.unique(counts[order], return_counts=True)
    runs = np.stack([sizes[::-1], lengths[::-1]], axis=1).ravel().astype(np.uint16)
    return order, runs


def encode(fmt: str, values: np.ndarray, pattern: np.ndarray) -> Encoded:
    int8 = values.dtype == np.int8
    if fmt == "dense":
        return dense_i8(values) if int8 else dense_f32(np.where(pattern, values, 0).astype(np.float32))
    if fmt == "csr":
        return csr(values, pattern)
    if fmt in ("ell", "ell16"):
        return ell(values, pattern)
    if fmt in SELL:
        return sell(values, pattern)
    return bsr(values, pattern, fmt)

"""How each matrix of a ``tflite`` file is stored: dense, sparse CSR, sparse 1x4 / 1x16 blocks, fp32 or
int8 (per-channel scales), and which FULLY_CONNECTED version runs it (docs/tflite.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import ir
from ...errors import BackendError

SPARSE_FC_VERSION = 8  # XNNPACK declines exactly this version; see the package docstring
DENSE_FC_VERSION = 1
HYBRID_FC_VERSION = 9  # float input, int8 weights, asymmetric input quantization

# Int8 sparse weights exist in LiteRT only as 1x16 blocks (the hybrid kernel's "ledger" stores each
# row's block count and block column in one byte each).
INT8_BLOCK = 16
_LEDGER_LIMIT = 255

# ``auto`` stores a matrix sparse only when that at least halves its bytes: below that the sparse
# kernels are several times slower than dense ones (benchmarks/results/tflite_latency.md) for a small
# saving. It also keeps the structural zeros of the IR's GRU layout (25%) from turning a dense GRU
# into a sparse one.
AUTO_SPARSE_MAX_BYTES = 0.5


@dataclass(frozen=True)
class _Layout:
    """The FC's input columns: the parts of z = [x ; h ; feedback], each padded to ``align`` columns.

    Block encodings need each part to start on a block boundary; the graph pads the parts with PAD
    ops (zeros), which the weights never read.
    """

    widths: tuple[int, ...]
    align: int = 1

    @property
    def padded(self) -> tuple[int, ...]:
        return tuple(-(-w // self.align) * self.align for w in self.widths)

    @property
    def cols(self) -> int:
        return sum(self.padded)

    def remap(self, columns: np.ndarray) -> np.ndarray:
        logical = np.cumsum((0,) + self.widths)
        padded = np.cumsum((0,) + self.padded)
        part = np.searchsorted(logical[1:], columns, side="right")
        return (columns - logical[part] + padded[part]).astype(np.int64)


def narrowest(values: np.ndarray) -> np.dtype:
    top = int(values.max()) if values.size else 0
    return np.dtype(np.uint8) if top <= 0xFF else np.dtype(np.uint16) if top <= 0xFFFF else np.dtype(np.int32)


@dataclass
class Weight:
    """One FC weight as it goes into the file."""

    name: str
    rows: int
    layout: _Layout
    dtype: str  # "f32" | "int8"
    encoding: str  # "dense" | "csr" | "block1x4" | "block1x16"
    values: np.ndarray  # the buffer: dense [rows, cols], or the stored entries / blocks (flat)
    nnz: int  # entries of the mask
    segments: np.ndarray | None = None  # per row: start of its stored entries (blocks), like indptr
    indices: np.ndarray | None = None  # column (block column) of each stored entry (block)
    scales: np.ndarray | None = None  # int8: per-row (output channel) scale
    densify: bool = False  # sparse storage, densified once at load by a DENSIFY op
    note: str = ""

    @property
    def sparse(self) -> bool:
        return self.encoding != "dense"

    @property
    def block(self) -> int:
        return {"csr": 1, "block1x4": 4, "block1x16": 16}.get(self.encoding, 1)

    @property
    def fc_version(self) -> int:
        if self.sparse and not self.densify:
            return SPARSE_FC_VERSION
        return HYBRID_FC_VERSION if self.dtype == "int8" else DENSE_FC_VERSION

    def stored_bytes(self) -> int:
        n = self.values.nbytes
        if self.sparse:
            n += self.segments.size * narrowest(self.segments).itemsize
            n += self.indices.size * narrowest(self.indices).itemsize
        return n

    def info(self) -> dict:
        d = {
            "encoding": self.encoding,
            "dtype": self.dtype,
            "shape": [self.rows, self.layout.cols],
            "nnz": self.nnz,
            "stored_values": int(self.values.size),
            "bytes": self.stored_bytes(),
            "fc_version": self.fc_version,
        }
        if self.sparse:
            d["index_types"] = [narrowest(self.segments).name, narrowest(self.indices).name]
            d["fill"] = round(self.nnz / self.values.size, 4) if self.values.size else 1.0
        if self.densify:
            d["densify"] = True
        if self.layout.align > 1 and self.layout.padded != self.layout.widths:
            d["padded_columns"] = list(self.layout.padded)
        if self.note:
            d["note"] = self.note
        return d


def _blocked(m: ir.CSR, layout: _Layout, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Row-wise 1 x ``width`` blocks of ``m`` in ``layout``: (segments, block columns, block rows, values)."""
    rows = m.shape[0]
    row_of = np.repeat(np.arange(rows), np.diff(m.indptr))
    cols = layout.remap(m.indices)
    n_block_cols = layout.cols // width
    keys = row_of * n_block_cols + cols // width
    unique, slot = np.unique(keys, return_inverse=True)  # sorted: by row, then block column
    values = np.zeros((unique.size, width), np.float32)
    values[slot, cols % width] = m.data
    block_rows = unique // n_block_cols
    segments = np.zeros(rows + 1, np.int64)
    np.cumsum(np.bincount(block_rows, minlength=rows), out=segments[1:])
    return segments, unique % n_block_cols, block_rows, values


def _worth_it(sparse: Weight, dense: Weight) -> bool:
    return sparse.stored_bytes() <= AUTO_SPARSE_MAX_BYTES * dense.stored_bytes()


def _quantize_rows(values: np.ndarray, scales: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values / scales), -127, 127).astype(np.int8)


def encode_weight(name: str, m: ir.CSR, parts: tuple[int, ...], dtype: str = "f32", mode: str = "auto") -> Weight:
    """Choose how matrix ``m`` (columns = ``parts`` concatenated) is stored.

    ``mode``: ``auto`` stores it sparse where that takes at most half the bytes of dense, ``sparse`` always,
    ``densify`` sparse storage expanded once at load (dense kernel, XNNPACK), ``dense`` never.
    fp32 sparse is 1x4 blocks when every stored block is full, CSR otherwise; int8 sparse is 1x16
    blocks (the only int8 sparse format LiteRT has), zero-filled where the mask is not block-shaped.
    """
    rows, _ = m.shape
    plain = _Layout(tuple(parts))
    dense_values = m.to_dense()
    if dtype == "int8":
        if mode == "densify":
            raise BackendError("--tflite-weights densify is for --dtype f32 (int8 weights are dense or 1x16 blocks)")
        top = np.zeros(rows, np.float32)
        np.maximum.at(top, np.repeat(np.arange(rows), np.diff(m.indptr)), np.abs(m.data))
        scales = np.where(top > 0, top / 127.0, 1.0).astype(np.float32)
        dense = Weight(
            name, rows, plain, "int8", "dense", _quantize_rows(dense_values, scales[:, None]), m.nnz, scales=scales
        )
        if mode == "dense" or m.nnz == 0:
            return dense
        layout = _Layout(tuple(parts), INT8_BLOCK)
        segments, block_cols, block_rows, values = _blocked(m, layout, INT8_BLOCK)
        if layout.cols // INT8_BLOCK > _LEDGER_LIMIT + 1 or np.diff(segments).max(initial=0) > _LEDGER_LIMIT:
            dense.note = "int8 sparse kernel limited to 4096 columns / 255 blocks per row: stored dense"
            return dense
        sparse = Weight(
            name,
            rows,
            layout,
            "int8",
            "block1x16",
            _quantize_rows(values, scales[block_rows][:, None]).ravel(),
            m.nnz,
            segments,
            block_cols,
            scales=scales,
        )
        return sparse if mode == "sparse" or _worth_it(sparse, dense) else dense
    dense = Weight(name, rows, plain, "f32", "dense", dense_values.astype(np.float32), m.nnz)
    if mode == "dense" or m.nnz == 0:
        return dense
    layout4 = _Layout(tuple(parts), 4)
    segments, block_cols, block_rows, values = _blocked(m, layout4, 4)
    if values.size == m.nnz:  # every stored 1x4 block is full: the 1x4 kernel
        sparse = Weight(name, rows, layout4, "f32", "block1x4", values.ravel(), m.nnz, segments, block_cols)
    else:
        sparse = Weight(
            name,
            rows,
            plain,
            "f32",
            "csr",
            m.data.astype(np.float32),
            m.nnz,
            m.indptr.astype(np.int64),
            m.indices.astype(np.int64),
        )
    smaller = sparse.stored_bytes() < dense.stored_bytes()
    if (mode == "auto" and not _worth_it(sparse, dense)) or (mode == "densify" and not smaller):
        return dense
    sparse.densify = mode == "densify"
    return sparse

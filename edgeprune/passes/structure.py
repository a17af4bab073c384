"""What a sparsity pattern allows: row regularity (ELL without padding) and block structure.

Backends use this to pick a kernel or an encoding (e.g. TFLite's 1x4 blocks only when every stored
block is full, ELL only when all rows have the same count).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir import CSR

BLOCK_SHAPES = ((1, 4), (4, 1), (8, 1), (4, 4), (1, 16))


@dataclass(frozen=True)
class BlockStats:
    shape: tuple[int, int]
    blocks: int  # blocks holding at least one stored entry
    fill: float  # stored entries / (blocks * block size); 1.0 = an exact block pattern
    aligned: bool  # the matrix dimensions are multiples of the block shape
    row_blocks_min: int  # blocks per block-row
    row_blocks_max: int

    @property
    def exact(self) -> bool:
        return self.aligned and self.fill == 1.0

    @property
    def regular(self) -> bool:
        return self.exact and self.row_blocks_min == self.row_blocks_max


@dataclass(frozen=True)
class MatrixStructure:
    rows: int
    cols: int
    nnz: int
    density: float
    row_degree_min: int
    row_degree_max: int
    blocks: dict[tuple[int, int], BlockStats] = field(default_factory=dict)

    @property
    def row_regular(self) -> bool:
        return self.rows > 0 and self.row_degree_min == self.row_degree_max

    def exact_blocks(self) -> list[tuple[int, int]]:
        return [s for s, b in self.blocks.items() if b.exact]


def block_stats(m: CSR, shape: tuple[int, int]) -> BlockStats:
    br, bc = shape
    rows, cols = m.shape
    row_of = np.repeat(np.arange(rows), np.diff(m.indptr))
    n_block_cols = -(-cols // bc)
    keys = (row_of // br) * n_block_cols + m.indices // bc
    unique = np.unique(keys)
    per_block_row = np.bincount(unique // n_block_cols, minlength=-(-rows // br)) if rows else np.zeros(0, int)
    return BlockStats(
        shape=shape,
        blocks=int(unique.size),
        fill=(m.nnz / (unique.size * br * bc)) if unique.size else 1.0,
        aligned=rows % br == 0 and cols % bc == 0,
        row_blocks_min=int(per_block_row.min()) if per_block_row.size else 0,
        row_blocks_max=int(per_block_row.max()) if per_block_row.size else 0,
    )


def analyze(m: CSR, block_shapes=BLOCK_SHAPES) -> MatrixStructure:
    degrees = m.row_degrees()
    return MatrixStructure(
        rows=m.shape[0],
        cols=m.shape[1],
        nnz=m.nnz,
        density=m.density,
        row_degree_min=int(degrees.min()) if degrees.size else 0,
        row_degree_max=int(degrees.max()) if degrees.size else 0,
        blocks={tuple(s): block_stats(m, tuple(s)) for s in block_shapes},
    )

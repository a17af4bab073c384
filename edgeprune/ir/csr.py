"""Compressed sparse rows: the one weight format of the IR.

A stored entry is a surviving connection: the pattern is exactly the mask, so a surviving weight
whose value happens to be 0 is still stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..errors import IRError


@dataclass
class CSR:
    """Compressed sparse rows: row ``r`` holds ``data[indptr[r]:indptr[r+1]]`` at ``indices[...]``."""

    data: np.ndarray  # float32 [nnz]
    indices: np.ndarray  # int32 [nnz], strictly increasing within a row
    indptr: np.ndarray  # int32 [rows + 1]
    shape: tuple[int, int]

    @classmethod
    def from_dense(cls, dense: np.ndarray, keep: np.ndarray | None = None) -> CSR:
        """Store the entries where ``keep`` is true (default: where ``dense`` is nonzero)."""
        dense = np.asarray(dense, dtype=np.float32)
        keep = dense != 0 if keep is None else np.asarray(keep, dtype=bool)
        rows, cols = np.nonzero(keep)  # row-major order: sorted by row, then column
        indptr = np.zeros(dense.shape[0] + 1, dtype=np.int32)
        np.cumsum(np.bincount(rows, minlength=dense.shape[0]), out=indptr[1:])
        return cls(dense[rows, cols].astype(np.float32), cols.astype(np.int32), indptr, tuple(dense.shape))

    @classmethod
    def from_scipy(cls, m) -> CSR:
        m = sp.csr_array(m)
        m.sum_duplicates()
        m.sort_indices()
        return cls(m.data.astype(np.float32), m.indices.astype(np.int32), m.indptr.astype(np.int32), tuple(m.shape))

    def to_scipy(self, dtype=np.float32) -> sp.csr_array:
        return sp.csr_array((self.data.astype(dtype), self.indices, self.indptr), shape=self.shape)

    def to_dense(self) -> np.ndarray:
        return self.to_scipy().toarray()

    @property
    def nnz(self) -> int:
        return int(self.data.size)

    @property
    def density(self) -> float:
        size = self.shape[0] * self.shape[1]
        return self.nnz / size if size else 0.0

    def row_degrees(self) -> np.ndarray:
        return np.diff(self.indptr)

    def validate(self, where: str) -> None:
        rows, cols = self.shape
        if self.indptr.shape != (rows + 1,):
            raise IRError(f"{where}: indptr has {self.indptr.size} entries, expected rows + 1 = {rows + 1}")
        if self.indices.shape != self.data.shape or self.data.ndim != 1:
            raise IRError(f"{where}: indices ({self.indices.size}) and data ({self.data.size}) differ in length")
        if rows and (self.indptr[0] != 0 or self.indptr[-1] != self.data.size):
            raise IRError(f"{where}: indptr must start at 0 and end at nnz = {self.data.size}")
        steps = np.diff(self.indptr.astype(np.int64))
        if np.any(steps < 0):
            raise IRError(f"{where}: indptr is not monotonic (row {int(np.argmax(steps < 0))})")
        if self.indices.size:
            bad = (self.indices < 0) | (self.indices >= cols)
            if np.any(bad):
                i = int(np.argmax(bad))
                raise IRError(f"{where}: column index {int(self.indices[i])} out of range [0, {cols})")
            row_of = np.repeat(np.arange(rows), steps)
            same_row = row_of[1:] == row_of[:-1]
            if np.any(same_row & (np.diff(self.indices.astype(np.int64)) <= 0)):
                raise IRError(f"{where}: column indices must be strictly increasing within each row")
        if not np.all(np.isfinite(self.data)):
            raise IRError(f"{where}: contains non-finite values (NaN or inf)")

"""The IR: a torch-free description of a (pruned) recurrent classifier.

Each layer is one fused gate matrix in CSR form over the concatenated vector
``z_t = [x_t ; h_{t-1} ; f_{t-1}]`` (layer input, own previous state, top-down feedback = the next
layer's previous state), so one sparse mat-vec gives every gate pre-activation:

* LSTM: rows ``[i; f; g; o]`` (torch order), bias ``b_ih + b_hh``.
* GRU: rows ``[r; z; n_x; n_h]``. ``r`` and ``z`` read all of ``z_t``; ``n_x`` reads only the
  input and feedback columns, ``n_h`` only the state columns, because the candidate is
  ``tanh(n_x + r * n_h)``. Bias ``[b_ir+b_hr; b_iz+b_hz; b_in; b_hn]``.
* RNN (tanh): rows ``[h]``, bias ``b_ih + b_hh``.

These row orders (and every other gate order) live in the cell table, ``ir.cells``.
The head is a (possibly sparse) linear map of the last layer's state. See docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..errors import IRError
from .cells import CELLS, cell_spec

# Views of the cell table for callers that index by cell name (the C backend): row blocks per cell.
IR_GATES = {name: spec.ir_gates for name, spec in CELLS.items()}
GATE_NAMES = {name: spec.ir_rows for name, spec in CELLS.items()}


@dataclass
class CSR:
    """Compressed sparse rows: row ``r`` holds ``data[indptr[r]:indptr[r+1]]`` at ``indices[...]``."""

    data: np.ndarray  # float32 [nnz]
    indices: np.ndarray  # int32 [nnz], strictly increasing within a row
    indptr: np.ndarray  # int32 [rows + 1]
    shape: tuple[int, int]

    @classmethod
    def from_dense(cls, dense: np.ndarray, keep: np.ndarray | None = None) -> "CSR":
        """Store the entries where ``keep`` is true (default: where ``dense`` is nonzero)."""
        dense = np.asarray(dense, dtype=np.float32)
        keep = dense != 0 if keep is None else np.asarray(keep, dtype=bool)
        rows, cols = np.nonzero(keep)  # row-major order: sorted by row, then column
        indptr = np.zeros(dense.shape[0] + 1, dtype=np.int32)
        np.cumsum(np.bincount(rows, minlength=dense.shape[0]), out=indptr[1:])
        return cls(dense[rows, cols].astype(np.float32), cols.astype(np.int32), indptr, tuple(dense.shape))

    @classmethod
    def from_scipy(cls, m) -> "CSR":
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


@dataclass
class Layer:
    cell: str
    input_size: int
    hidden_size: int
    feedback_size: int
    weight: CSR  # [cells.CELLS[cell].ir_gates * hidden_size, input_size + hidden_size + feedback_size]
    bias: np.ndarray  # float32 [rows]

    @property
    def rows(self) -> int:
        return cell_spec(self.cell).ir_gates * self.hidden_size

    @property
    def cols(self) -> int:
        return self.input_size + self.hidden_size + self.feedback_size

    def column_slices(self) -> dict[str, slice]:
        i, h = self.input_size, self.hidden_size
        return {"input": slice(0, i), "state": slice(i, i + h), "feedback": slice(i + h, self.cols)}

    def gate_rows(self, gate: str) -> slice:
        g = cell_spec(self.cell).ir_rows.index(gate)
        return slice(g * self.hidden_size, (g + 1) * self.hidden_size)


@dataclass
class Head:
    weight: CSR  # [classes, hidden of the last layer]
    bias: np.ndarray  # float32 [classes]


@dataclass
class Model:
    input_size: int
    layers: list[Layer]
    head: Head
    meta: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return self.head.weight.shape[0]

    @property
    def feedback(self) -> bool:
        return any(layer.feedback_size for layer in self.layers)

    def matrices(self) -> dict[str, CSR]:
        out = {f"layers.{l}.weight": layer.weight for l, layer in enumerate(self.layers)}
        out["head.weight"] = self.head.weight
        return out

    def nnz(self, include_head: bool = False) -> int:
        return sum(m.nnz for k, m in self.matrices().items() if include_head or k != "head.weight")

    def state_sizes(self) -> list[tuple[int, ...]]:
        """Per layer: one H per state of its cell ((H,), or (H, H) for LSTM's (h, c))."""
        return [tuple(l.hidden_size for _ in cell_spec(l.cell).states) for l in self.layers]

    def describe(self) -> str:
        cells = {l.cell for l in self.layers}
        sizes = "x".join(str(l.hidden_size) for l in self.layers)
        fb = " + feedback" if self.feedback else ""
        return f"{'/'.join(sorted(cells)).upper()} {sizes}{fb}, {self.input_size} inputs, {self.num_classes} classes"

    def validate(self) -> "Model":
        if not self.layers:
            raise IRError("model has no layers")
        if self.input_size < 1:
            raise IRError(f"input size must be positive, got {self.input_size}")
        expected_input = self.input_size
        for l, layer in enumerate(self.layers):
            where = f"layer {l}"
            if layer.cell not in CELLS:
                raise IRError(f"{where}: unknown cell '{layer.cell}' (expected one of {', '.join(CELLS)})")
            if layer.hidden_size < 1:
                raise IRError(f"{where}: hidden size must be positive")
            if layer.input_size != expected_input:
                raise IRError(f"{where}: input size {layer.input_size} but the previous stage gives {expected_input}")
            next_hidden = self.layers[l + 1].hidden_size if l + 1 < len(self.layers) else 0
            if layer.feedback_size not in (0, next_hidden) or (l + 1 == len(self.layers) and layer.feedback_size):
                raise IRError(f"{where}: feedback size {layer.feedback_size} must be 0 or the next layer's hidden size")
            if tuple(layer.weight.shape) != (layer.rows, layer.cols):
                raise IRError(f"{where}: weight shape {list(layer.weight.shape)}, expected {[layer.rows, layer.cols]}")
            layer.weight.validate(f"{where} weight")
            _check_vector(layer.bias, layer.rows, f"{where} bias")
            if layer.cell == "gru":
                _check_gru_blocks(layer, where)
            expected_input = layer.hidden_size
        head = self.head
        if head.weight.shape[1] != expected_input:
            raise IRError(f"head: weight has {head.weight.shape[1]} columns, last layer gives {expected_input}")
        head.weight.validate("head weight")
        _check_vector(head.bias, head.weight.shape[0], "head bias")
        return self


def _check_vector(v: np.ndarray, n: int, where: str) -> None:
    if v.shape != (n,):
        raise IRError(f"{where}: shape {list(v.shape)}, expected [{n}]")
    if not np.all(np.isfinite(v)):
        raise IRError(f"{where}: contains non-finite values (NaN or inf)")


def _check_gru_blocks(layer: Layer, where: str) -> None:
    cols = layer.column_slices()
    indptr, indices = layer.weight.indptr, layer.weight.indices
    for gate, forbidden in (("n_x", cols["state"]), ("n_h", None)):
        rows = layer.gate_rows(gate)
        seg = indices[indptr[rows.start] : indptr[rows.stop]]
        if forbidden is not None:
            bad = (seg >= forbidden.start) & (seg < forbidden.stop)
        else:  # n_h reads only the state columns
            bad = (seg < cols["state"].start) | (seg >= cols["state"].stop)
        if np.any(bad):
            raise IRError(f"{where}: GRU gate {gate} has weights in columns it must not read")

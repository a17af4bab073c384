"""The cell table: every fact about a recurrent cell's gates and states that more than one module needs.

One ``CellSpec`` per cell in ``CELLS``; the models, the IR, the ONNX exporter and importer, the
TFLite writer and the graph views all read their gate orders from here, so a gate order is written
once. Orders are tuples of block names; ``block_order`` turns two orders into the index map that
moves row blocks from one to the other, and ``block_rows`` into row indices.

Gate names are torch's throughout: LSTM ``i, f, g, o`` (ONNX and TFLite call ``g`` "c"), GRU
``r, z, n`` (ONNX calls ``n`` "h"), RNN ``h``. The IR keeps the GRU candidate's input and state
halves apart (rows ``n_x`` and ``n_h``, because the candidate is ``tanh(n_x + r * n_h)``); a row
named ``<gate>_x`` / ``<gate>_h`` is that gate read from the input (and feedback) columns / the
state columns only, see ``CellSpec.ir_block``.

To add a fact (the IR v2 options, say), add a field with a default and fill it in ``CELLS``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import IRError

SIDES = ("input", "state")  # the two halves of a recurrent layer's weights (torch weight_ih / weight_hh)
_SIDE_SUFFIX = {"input": "_x", "state": "_h"}


@dataclass(frozen=True)
class CellSpec:
    name: str  # "lstm", "gru", "rnn": the name in configs, checkpoints and the IR
    torch_gates: tuple[str, ...]  # row blocks of torch's weight_ih / weight_hh / bias, in torch's order
    ir_rows: tuple[str, ...]  # row blocks of the IR's fused gate matrix over [x ; h ; feedback]
    states: tuple[str, ...]  # state vectors carried between steps, each hidden_size long
    onnx_op: str  # the standard ONNX recurrent op
    onnx_gates: tuple[str, ...]  # row blocks of that op's W / R / B, in ONNX's order (torch names)
    onnx_activations: tuple[str, ...]  # the op's default ``activations`` (the only ones the IR computes)
    tflite_rows: tuple[str, ...]  # IR row blocks in the order the TFLite cell's FULLY_CONNECTED emits them

    @property
    def ir_gates(self) -> int:
        """Row blocks of the IR's fused matrix (rows = ir_gates * hidden_size)."""
        return len(self.ir_rows)

    @property
    def torch_gate_count(self) -> int:
        return len(self.torch_gates)

    def ir_block(self, gate: str, side: str) -> int:
        """Index of the IR row block holding torch gate ``gate`` as read from ``side`` ("input" or "state").

        Most gates are one IR block read from both sides; a gate whose halves stay apart has one
        block per side (GRU ``n`` -> ``n_x``, ``n_h``).
        """
        if gate in self.ir_rows:
            return self.ir_rows.index(gate)
        return self.ir_rows.index(gate + _SIDE_SUFFIX[side])

    def ir_row_source(self, row: str) -> tuple[str, str | None]:
        """The torch gate an IR row block comes from and the only side it reads (None = both)."""
        for side, suffix in _SIDE_SUFFIX.items():
            if row.endswith(suffix) and row[: -len(suffix)] in self.torch_gates:
                return row[: -len(suffix)], side
        return row, None


CELLS: dict[str, CellSpec] = {
    spec.name: spec
    for spec in (
        CellSpec(
            "lstm",
            torch_gates=("i", "f", "g", "o"),
            ir_rows=("i", "f", "g", "o"),
            states=("h", "c"),
            onnx_op="LSTM",
            onnx_gates=("i", "o", "f", "g"),
            onnx_activations=("Sigmoid", "Tanh", "Tanh"),
            # one LOGISTIC covers i, f, o; the candidate g is last
            tflite_rows=("i", "f", "o", "g"),
        ),
        CellSpec(
            "gru",
            torch_gates=("r", "z", "n"),
            ir_rows=("r", "z", "n_x", "n_h"),
            states=("h",),
            onnx_op="GRU",
            onnx_gates=("z", "r", "n"),
            onnx_activations=("Sigmoid", "Tanh"),
            tflite_rows=("r", "z", "n_x", "n_h"),
        ),
        CellSpec(
            "rnn",
            torch_gates=("h",),
            ir_rows=("h",),
            states=("h",),
            onnx_op="RNN",
            onnx_gates=("h",),
            onnx_activations=("Tanh",),
            tflite_rows=("h",),
        ),
    )
}
ONNX_OPS = {spec.onnx_op: spec for spec in CELLS.values()}


def cell_spec(name: str) -> CellSpec:
    """The spec of cell ``name``; an unknown name is an ``IRError`` listing the cells."""
    try:
        return CELLS[name]
    except (KeyError, TypeError):
        raise IRError(f"unknown cell '{name}' (expected one of {', '.join(CELLS)})") from None


def block_order(source: tuple[str, ...], target: tuple[str, ...]) -> tuple[int, ...]:
    """For each block of ``target``, its index in ``source`` (target block j = source block result[j])."""
    missing = [b for b in target if b not in source]
    if missing:
        raise IRError(f"gate block(s) {', '.join(missing)} not in the order {', '.join(source)}")
    return tuple(source.index(b) for b in target)


def block_rows(blocks, size: int) -> np.ndarray:
    """Row indices of the ``size``-row blocks ``blocks``, concatenated (e.g. to reorder a gate matrix)."""
    return np.concatenate([np.arange(b * size, (b + 1) * size) for b in blocks]).astype(np.intp)

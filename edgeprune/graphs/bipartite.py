"""Bipartite views of a recurrent layer's weight matrices (torch-free).

A recurrent layer has one matrix per source — ``weight_ih`` (x_t), ``weight_hh`` (h_{t-1}) and, with
top-down feedback, ``weight_fb`` (the next layer's h_{t-1}) — each with its gate blocks stacked
row-wise (torch order: LSTM i,f,g,o; GRU r,z,n). The views scored here:

* each whole matrix (all gates: the graph from one source to every gate pre-activation);
* each gate block of each matrix (the per-gate bipartite layer);
* the fused matrix ``[W_ih | W_hh | W_fb]`` per gate and whole: the time-unfolded layer whose left
  side is ``x_t ∪ h_{t-1} ∪ fb_{t-1}`` and right side ``h_t``. Its column order is the IR's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..ir.cells import CELLS


@dataclass(frozen=True)
class MatrixView:
    """One bipartite graph: ``mask`` is its support, ``values`` the weights (same shape)."""

    name: str  # e.g. "layers.0.weight_hh", "layers.0.weight_hh[f]", "layers.0.fused[i]"
    layer: int | None
    weight: str | None  # the weight it comes from; None for fused views
    gate: str | None  # gate name; None for whole matrices
    mask: np.ndarray  # bool [rows = outputs, cols = inputs]
    values: np.ndarray  # float [rows, cols]; zero outside the mask

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.mask.shape)


def gate_slices(rows: int, gates: int) -> list[slice]:
    """Row slices of the ``gates`` blocks of a matrix with ``rows`` rows."""
    if gates < 1 or rows % gates:
        raise ValueError(f"{rows} rows do not split into {gates} gate blocks")
    units = rows // gates
    return [slice(g * units, (g + 1) * units) for g in range(gates)]


def gate_names(cell: str | None, gates: int) -> tuple[str, ...]:
    names = CELLS[cell].torch_gates if cell in CELLS else ()
    return names if len(names) == gates else tuple(str(g) for g in range(gates))


def matrix_views(
    name: str,
    values: np.ndarray,
    mask: np.ndarray | None,
    *,
    gates: int = 1,
    cell: str | None = None,
    layer: int | None = None,
) -> list[MatrixView]:
    """The whole matrix, then its gate blocks (when there is more than one gate)."""
    mask = (values != 0) if mask is None else np.asarray(mask, dtype=bool)
    values = np.where(mask, values, 0.0)
    views = [MatrixView(name, layer, name, None, mask, values)]
    if gates > 1:
        for gname, rows in zip(gate_names(cell, gates), gate_slices(mask.shape[0], gates)):
            views.append(MatrixView(f"{name}[{gname}]", layer, name, gname, mask[rows], values[rows]))
    return views


def fused_views(
    layer: int, parts: list[tuple[np.ndarray, np.ndarray | None]], *, gates: int, cell: str | None
) -> list[MatrixView]:
    """The time-unfolded layer ``[W_ih | W_hh | W_fb]``: whole, then per gate (if several)."""
    masks = [(v != 0) if m is None else np.asarray(m, dtype=bool) for v, m in parts]
    mask = np.hstack(masks)
    values = np.where(mask, np.hstack([v for v, _ in parts]), 0.0)
    views = matrix_views(f"layers.{layer}.fused", values, mask, gates=gates, cell=cell, layer=layer)
    return [replace(v, weight=None) for v in views]

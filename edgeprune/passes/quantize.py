"""Symmetric int8 quantisation of the IR's matrices (per-row scales), and its numpy simulation.

Weights: ``q = round(w / s_r)`` with ``s_r = max_c |w_rc| / 127`` per row (output channel), zero
point 0, so a row's largest weight is exactly +-127 and the stored pattern is unchanged (a
stored weight may round to 0; it stays stored). Activations are quantized at run time, one
symmetric scale per column segment of ``z = [x ; h ; feedback]`` per step
(``s = max |z_seg| / 127``, rounding half away from zero), the products summed in int32 and the
sum scaled back: ``y_r = b_r + sum_seg s_r * s_seg * sum_c q_rc * q_c``. The segments keep a large
input range from costing the state its precision; ``h`` and the feedback lie in [-1, 1].

``QuantizedExecutor`` computes exactly that in numpy (float64 elsewhere), so a backend's int8
arithmetic can be checked bit-for-bit up to float rounding, separately from the quantisation
error itself (which the verification gate bounds against the float model).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import CSR, Model, Recurrent
from ..ir.reference import ReferenceExecutor

QMAX = 127
TINY = np.float32(1e-30)  # activation segments with max |z| below this quantize to zeros


@dataclass(frozen=True)
class QuantizedMatrix:
    """A CSR pattern with int8 values (in CSR order) and one float32 scale per row."""

    pattern: CSR  # the original matrix (indices, indptr, shape; data = the float weights)
    values: np.ndarray  # int8 [nnz]
    scales: np.ndarray  # float32 [rows]; 1.0 for rows without a nonzero weight

    def dequantized(self) -> CSR:
        rows = np.repeat(np.arange(self.pattern.shape[0]), np.diff(self.pattern.indptr))
        data = (self.values.astype(np.float32) * self.scales[rows]).astype(np.float32)
        return CSR(data, self.pattern.indices, self.pattern.indptr, self.pattern.shape)

    def dense_values(self) -> np.ndarray:
        """[rows, cols] int8 with the quantized values at the stored positions, 0 elsewhere."""
        out = np.zeros(self.pattern.shape, np.int8)
        rows = np.repeat(np.arange(self.pattern.shape[0]), np.diff(self.pattern.indptr))
        out[rows, self.pattern.indices] = self.values
        return out


def quantize_matrix(m: CSR) -> QuantizedMatrix:
    rows = m.shape[0]
    row_of = np.repeat(np.arange(rows), np.diff(m.indptr))
    top = np.zeros(rows, np.float32)
    np.maximum.at(top, row_of, np.abs(m.data))
    scales = np.where(top > 0, top / np.float32(QMAX), np.float32(1)).astype(np.float32)
    q = np.clip(np.rint(m.data / scales[row_of]), -QMAX, QMAX).astype(np.int8)
    return QuantizedMatrix(m, q, scales)


@dataclass(frozen=True)
class QuantizedModel:
    model: Model
    stages: tuple[QuantizedMatrix | None, ...]  # per stage: its int8 matrix, None for stages without one

    @property
    def layers(self) -> tuple[QuantizedMatrix | None, ...]:
        return self.stages[: len(self.model.layers)]

    @property
    def head(self) -> QuantizedMatrix | None:
        return self.stages[-1] if self.model.head is not None else None


def quantize(model: Model) -> QuantizedModel:
    """Per-row int8 weights for every stage's matrix; biases and vectors stay float32."""
    model.validate()
    return QuantizedModel(
        model, tuple(quantize_matrix(s.weight) if hasattr(s, "weight") else None for s in model.stages)
    )


def quantize_activations(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``x`` [N, n]: (int8 values, scale), as the C runtime's ep_quantize (float32 math)."""
    x = np.asarray(x, np.float32)
    top = np.abs(x).max(axis=1, initial=0).astype(np.float32)
    usable = top >= TINY  # below, 127 / top overflows float32: q = 0, s = 0
    safe = np.where(usable, top, np.float32(1))
    v = x * (np.float32(QMAX) / safe)[:, None]
    q = np.where(usable[:, None], np.trunc(v + np.copysign(np.float32(0.5), v)), 0).astype(np.int8)
    return q, np.where(usable, top / np.float32(QMAX), 0).astype(np.float32)


def segments(cols: int, bounds: list[int]) -> list[tuple[int, int]]:
    """Non-empty column ranges between the boundaries (e.g. [input, input + hidden])."""
    edges = [0] + [b for b in bounds if 0 < b < cols] + [cols]
    return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]


def activation_bounds(stage) -> list[int]:
    """Where a stage's matrix input splits into separately quantized segments: a recurrent stage's
    [x ; h ; feedback] (h and the feedback lie in [-1, 1], the input may not); one segment otherwise."""
    if isinstance(stage, Recurrent):
        return [stage.input_size, stage.input_size + stage.hidden_size]
    return []


class QuantizedExecutor(ReferenceExecutor):
    """The IR run as the int8 C kernels compute it: per-segment activation quantization, int32 sums."""

    def __init__(self, qmodel: QuantizedModel):
        super().__init__(qmodel.model)
        self.qmodel = qmodel
        self._q = [None if m is None else m.dense_values().astype(np.int64) for m in qmodel.stages]

    def _matvec(self, i: int, z: np.ndarray) -> np.ndarray:
        q, scales = self._q[i], self.qmodel.stages[i].scales
        out = np.zeros((z.shape[0], q.shape[0]))
        for a, b in segments(z.shape[1], activation_bounds(self.model.stages[i])):
            zq, s = quantize_activations(z[:, a:b])
            acc = zq.astype(np.int64) @ q[:, a:b].T  # exact integer sums
            out += acc * (scales.astype(np.float64)[None, :] * s.astype(np.float64)[:, None])
        return out

"""The golden model: numpy execution of the IR, streaming and whole-sequence.

Every backend is checked against this (and this against torch). It computes in float64 by
default so that its own rounding never hides a backend's error.
"""

from __future__ import annotations

import numpy as np

from .cells import Act, activate_numpy, cell_spec, cell_update, late_rows
from .model import Model
from .stages import Conv1d, Dense, LayerNorm, Normalize, Pool, Recurrent

State = list[tuple[np.ndarray, ...]]  # per stage: its state vectors, each [N, size]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


def activate(x: np.ndarray, activation: str) -> np.ndarray:
    if activation == "relu":
        return np.maximum(x, 0.0)
    if activation == "tanh":
        return np.tanh(x)
    if activation == "sigmoid":
        return _sigmoid(x)
    if activation == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    return x


class _NumpyOps:
    """``ir.cells.CellOps`` over numpy arrays (the reference's cell)."""

    def __init__(self, dtype, late):
        self.dtype, self.state_matvec = dtype, late

    def add(self, a, b):
        return a + b

    def sub(self, a, b):
        return a - b

    def mul(self, a, b):
        return a * b

    def one_minus(self, a):
        return 1.0 - a

    def clip(self, a, limit: float):
        return np.clip(a, -limit, limit)

    def act(self, a, act: Act):
        return activate_numpy(a, act)

    def vector(self, name: str, values: np.ndarray):
        return np.asarray(values, self.dtype)


class ReferenceExecutor:
    def __init__(self, model: Model, dtype=np.float64):
        model.validate()
        self.model, self.dtype = model, dtype
        # W.T so that a batch [N, cols] @ W.T -> [N, rows] stays a sparse-dense product
        self._weights_t = [s.weight.to_scipy(dtype).T.tocsr() if hasattr(s, "weight") else None for s in model.stages]
        self._biases = [self._bias(s) for s in model.stages]

    def _bias(self, stage):
        bias = getattr(stage, "bias", None)
        return None if bias is None else bias.astype(self.dtype)

    def init_state(self, batch: int = 1) -> State:
        return [tuple(np.zeros((batch, n), self.dtype) for n in sizes) for sizes in self.model.state_sizes()]

    def step(self, x_t: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """One time step for a batch: x_t [N, F] -> (output [N, C], new state)."""
        x = np.asarray(x_t, dtype=self.dtype)
        new_state: State = []
        for i, stage in enumerate(self.model.stages):
            x, st = self._stage_step(i, stage, x, state)
            new_state.append(st)
        return x, new_state

    def _affine(self, i: int, z: np.ndarray) -> np.ndarray:
        out = self._matvec(i, z)
        return out if self._biases[i] is None else out + self._biases[i]

    # The product, apart so that an executor of a quantized model can replace it.
    def _matvec(self, i: int, z: np.ndarray) -> np.ndarray:
        return np.asarray(z @ self._weights_t[i])

    def _stage_step(self, i: int, stage, x: np.ndarray, state: State):
        if isinstance(stage, Dense):
            return activate(self._affine(i, x), stage.activation), ()
        if isinstance(stage, Conv1d):
            if not stage.history:
                return activate(self._affine(i, x), stage.activation), ()
            (past,) = state[i]  # [N, history * C], oldest first
            window = np.hstack([past, x])  # [N, (history + 1) * C]: inputs t-history .. t
            C, d = stage.in_channels, stage.dilation
            taps = [window[:, (tap * d) * C : (tap * d + 1) * C] for tap in range(stage.kernel)]
            y = activate(self._affine(i, np.hstack(taps)), stage.activation)
            return y, (window[:, C:],)
        if isinstance(stage, Recurrent):
            return self._recurrent(i, stage, x, state)
        if isinstance(stage, LayerNorm):
            mean = x.mean(axis=-1, keepdims=True)
            var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
            return (x - mean) / np.sqrt(var + stage.eps) * stage.gamma + stage.beta, ()
        if isinstance(stage, Normalize):
            return x * stage.scale.astype(self.dtype) + stage.shift.astype(self.dtype), ()
        if isinstance(stage, Pool):
            acc, count = state[i]
            count = count + 1.0
            if stage.mode == "mean":
                acc = acc + x
                return acc / count, (acc, count)
            acc = np.where(count > 1.0, np.maximum(acc, x), x)
            return acc, (acc, count)
        raise TypeError(f"no reference for stage {type(stage).__name__}")

    def _recurrent(self, i: int, layer: Recurrent, x: np.ndarray, state: State):
        h = state[i][0]
        parts = [x, h]
        if layer.feedback_size:
            parts.append(state[i + 1][0])  # the next stage's state from t-1
        z = np.hstack(parts)
        pre_all = self._affine(i, z)
        H = layer.hidden_size
        rows = cell_spec(layer.cell).ir_rows
        pre = {name: pre_all[:, k * H : (k + 1) * H] for k, name in enumerate(rows)}

        def late(gated: np.ndarray) -> np.ndarray:
            # the late rows (GRU n_h, lbr=0) read only the state columns: the same product with h -> gated
            zz = z.copy()
            zz[:, layer.column_slices()["state"]] = gated
            k = rows.index(late_rows(layer)[0])
            return self._affine(i, zz)[:, k * H : (k + 1) * H]

        new = cell_update(layer, _NumpyOps(self.dtype, late), pre, state[i])
        return new[0], new

    def run(self, X: np.ndarray, all_steps: bool | None = None, lengths: np.ndarray | None = None) -> np.ndarray:
        """Whole sequences [N, T, F] -> the model's outputs: [N, C] (``last``) or [N, T, C] (``every``).

        ``all_steps`` overrides the model's output mode; ``lengths`` [N] picks each sequence's own
        last step for ``last`` (steps past a sequence's length never affect its earlier outputs).
        """
        X = np.asarray(X)
        every = self.model.output == "every" if all_steps is None else all_steps
        state = self.init_state(X.shape[0])
        outputs = []
        for t in range(X.shape[1]):
            y, state = self.step(X[:, t], state)
            outputs.append(y)
        if not outputs:
            return np.zeros((X.shape[0], 0, self.model.output_size) if every else (X.shape[0], self.model.output_size))
        seq = np.stack(outputs, axis=1)
        if every:
            return seq
        if lengths is None:
            return seq[:, -1]
        return seq[np.arange(len(seq)), np.asarray(lengths, np.int64) - 1]

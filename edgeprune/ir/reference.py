"""The golden model: numpy execution of the IR, streaming and whole-sequence.

Every backend is checked against this (and this against torch). It computes in float64 by
default so that its own rounding never hides a backend's error.
"""

from __future__ import annotations

import numpy as np

from .model import Model

State = list[tuple[np.ndarray, ...]]  # per layer: (h,) or (h, c), each [N, H]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


class ReferenceExecutor:
    def __init__(self, model: Model, dtype=np.float64):
        model.validate()
        self.model, self.dtype = model, dtype
        # W.T so that a batch [N, cols] @ W.T -> [N, rows] stays a sparse-dense product
        self._weights_t = [layer.weight.to_scipy(dtype).T.tocsr() for layer in model.layers]
        self._biases = [layer.bias.astype(dtype) for layer in model.layers]
        self._head_t = model.head.weight.to_scipy(dtype).T.tocsr()
        self._head_b = model.head.bias.astype(dtype)

    def init_state(self, batch: int = 1) -> State:
        return [tuple(np.zeros((batch, n), self.dtype) for n in sizes) for sizes in self.model.state_sizes()]

    def step(self, x_t: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """One time step for a batch: x_t [N, F] -> (logits [N, C], new state)."""
        inp = np.asarray(x_t, dtype=self.dtype)
        new_state: State = []
        for l, layer in enumerate(self.model.layers):
            h = state[l][0]
            parts = [inp, h]
            if layer.feedback_size:
                parts.append(state[l + 1][0])  # the next layer's state from t-1
            pre = self._layer_matvec(l, np.hstack(parts)) + self._biases[l]
            H = layer.hidden_size
            if layer.cell == "lstm":
                i, f, g, o = (pre[:, k * H : (k + 1) * H] for k in range(4))
                c = _sigmoid(f) * state[l][1] + _sigmoid(i) * np.tanh(g)
                layer_state = (_sigmoid(o) * np.tanh(c), c)
            elif layer.cell == "gru":
                r, z, nx, nh = (pre[:, k * H : (k + 1) * H] for k in range(4))
                r, z = _sigmoid(r), _sigmoid(z)
                n = np.tanh(nx + r * nh)
                layer_state = ((1.0 - z) * n + z * h,)
            else:
                layer_state = (np.tanh(pre),)
            new_state.append(layer_state)
            inp = layer_state[0]
        logits = self._head_matvec(inp) + self._head_b
        return logits, new_state

    # The two products, apart so that an executor of a quantized model can replace them.
    def _layer_matvec(self, l: int, z: np.ndarray) -> np.ndarray:
        return np.asarray(z @ self._weights_t[l])

    def _head_matvec(self, h: np.ndarray) -> np.ndarray:
        return np.asarray(h @ self._head_t)

    def run(self, X: np.ndarray, all_steps: bool = False) -> np.ndarray:
        """Whole sequences [N, T, F] -> logits of the last step [N, C] (or every step [N, T, C])."""
        X = np.asarray(X)
        state = self.init_state(X.shape[0])
        outputs = []
        logits = np.zeros((X.shape[0], self.model.num_classes), self.dtype)
        for t in range(X.shape[1]):
            logits, state = self.step(X[:, t], state)
            if all_steps:
                outputs.append(logits)
        return np.stack(outputs, axis=1) if all_steps else logits

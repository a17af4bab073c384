"""The baseline a user would run instead: the checkpoint in PyTorch, dense, one thread.

Masks are folded into plain dense weights once (a user deploying with torch would not multiply by
the mask on every call). Whole sequences go through the model's own forward (torch's fused
sequence kernels ``torch.lstm``/``gru``/``rnn_*``, ``conv1d``, ``cumsum`` for pooling; groups
linked by feedback step by step, as the model itself runs them). Streaming walks the chain one
step per call with each stage's own state, which is how a streaming torch deployment looks:
fused cell kernels (``torch.lstm_cell`` etc.) for recurrent stages, a window of the last inputs
for a causal convolution, a running sum or max for pooling; dense, layernorm and normalize
stages are per-step already.
"""

from __future__ import annotations

import numpy as np

from ..backends.base import Runner
from ..models import _act as activate  # the model's own activation functions


class TorchDenseRunner(Runner):
    def __init__(self, checkpoint_path: str):
        import torch

        from .. import checkpoint

        self.torch = torch
        model, _ = checkpoint.load_with_meta(checkpoint_path)
        weights = {k: v.contiguous() for k, v in model.effective_weights().items()}
        model.clear_masks()
        model.load_state_dict(weights, strict=False)
        model.eval()
        self.model = model
        self.config = model.config
        self.stages = model.stages()
        self.specs = model.config.stages
        self.fused_inputs = {}  # recurrent stage with feedback: [W_ih | W_fb], one matrix over [x ; h_next]
        for i, (stage, spec) in enumerate(zip(self.stages, self.specs)):
            if spec.recurrent and stage.weight_fb is not None:
                self.fused_inputs[i] = torch.cat([stage.weight_ih, stage.weight_fb], dim=1).detach()  # a constant
        self.state = None

    def run(self, X: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            return self.model(self.torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))).numpy()

    def initial_state(self, batch: int = 1) -> list[tuple]:
        """Every stage's state as a tuple of tensors (empty for a stage that has none): recurrent h (and c),
        a causal convolution's window of past inputs, a pool's running sum (or max) and step count — the
        sum starts at 0 and the max at -inf, so the first step leaves exactly that step's vector."""
        torch = self.torch
        state: list[tuple] = []
        for i, (stage, spec) in enumerate(zip(self.stages, self.specs)):
            if spec.recurrent:
                h = torch.zeros(batch, stage.hidden_size)
                state.append((h, torch.zeros_like(h)) if spec.kind == "lstm" else (h,))
            elif spec.kind == "conv":
                history = (stage.kernel - 1) * stage.dilation
                state.append((torch.zeros(batch, history, stage.in_channels),))
            elif spec.kind == "pool":
                start = -torch.inf if stage.mode == "max" else 0.0
                state.append((torch.full((batch, self.config.stage_input_size(i)), start), torch.zeros(batch, 1)))
            else:  # dense, layernorm, normalize: a function of this step alone
                state.append(())
        return state

    def reset(self, batch: int = 1) -> None:
        self.state = self.initial_state(batch)

    def step(self, x_t: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            if self.state is None:
                self.reset(len(x_t))
            y, self.state = self.step_fn(self.torch.from_numpy(np.ascontiguousarray(x_t, dtype=np.float32)), self.state)
            return y.numpy()

    def step_fn(self, x, state: list[tuple]) -> tuple:
        """One step of the whole chain, a pure function of the input and the state (so that it can also be
        captured by ``torch.export`` for the peer runtimes): returns the output and the new state."""
        torch = self.torch
        previous = [s[0] if self.specs[i].recurrent else None for i, s in enumerate(state)]  # feedback reads t-1
        new = list(state)
        for i, (stage, spec) in enumerate(zip(self.stages, self.specs)):
            if spec.recurrent:
                new[i] = self._recurrent(i, stage, spec, x, previous, state[i])
                x = new[i][0]
            elif spec.kind == "conv":
                window = torch.cat([state[i][0], x[:, None]], dim=1)  # oldest first
                new[i] = (window[:, 1:],)
                y = torch.nn.functional.conv1d(
                    window.transpose(1, 2), stage.torch_weight(), stage.bias, dilation=stage.dilation
                )  # exactly one output position
                x = activate(y[:, :, 0], stage.activation)
            elif spec.kind == "pool":
                acc, n = state[i]
                acc = torch.maximum(acc, x) if stage.mode == "max" else acc + x
                new[i] = (acc, n + 1)
                x = acc if stage.mode == "max" else acc / (n + 1)
            else:
                x = stage(x)
        return x, new

    def _recurrent(self, i, stage, spec, x, previous, state):
        torch = self.torch
        w_ih = stage.weight_ih
        if i in self.fused_inputs:
            x = torch.cat([x, previous[i + 1]], dim=1)
            w_ih = self.fused_inputs[i]
        args = (w_ih, stage.weight_hh, stage.bias_ih, stage.bias_hh)
        if spec.kind == "lstm":
            return torch.lstm_cell(x, state, *args)
        if spec.kind == "gru":
            return (torch.gru_cell(x, state[0], *args),)
        if stage.activation == "relu":
            return (torch.rnn_relu_cell(x, state[0], *args),)
        return (torch.rnn_tanh_cell(x, state[0], *args),)

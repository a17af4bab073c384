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
                self.fused_inputs[i] = torch.cat([stage.weight_ih, stage.weight_fb], dim=1)
        self.state = None

    def run(self, X: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            return self.model(self.torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))).numpy()

    def reset(self, batch: int = 1) -> None:
        torch = self.torch
        self.state = []
        for stage, spec in zip(self.stages, self.specs):
            if spec.recurrent:
                h = torch.zeros(batch, stage.hidden_size)
                self.state.append((h, torch.zeros_like(h)) if spec.kind == "lstm" else (h,))
            elif spec.kind == "conv":
                history = (stage.kernel - 1) * stage.dilation
                self.state.append(torch.zeros(batch, history, stage.in_channels))
            else:  # pool: running sum (or max) and step count, from the first step; others: no state
                self.state.append(None)

    def step(self, x_t: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            if self.state is None:
                self.reset(len(x_t))
            return self._step(self.torch.from_numpy(np.ascontiguousarray(x_t, dtype=np.float32))).numpy()

    def _step(self, x):
        torch = self.torch
        previous = [s[0] if isinstance(s, tuple) else None for s in self.state]  # feedback reads t-1
        for i, (stage, spec) in enumerate(zip(self.stages, self.specs)):
            if spec.recurrent:
                x = self._recurrent(i, stage, spec, x, previous)
            elif spec.kind == "conv":
                window = torch.cat([self.state[i], x[:, None]], dim=1)  # oldest first
                self.state[i] = window[:, 1:]
                y = torch.nn.functional.conv1d(
                    window.transpose(1, 2), stage.torch_weight(), stage.bias, dilation=stage.dilation
                )  # exactly one output position
                x = activate(y[:, :, 0], stage.activation)
            elif spec.kind == "pool":
                if self.state[i] is None:
                    self.state[i] = [x.clone(), 1]
                else:
                    acc, n = self.state[i]
                    self.state[i] = [torch.maximum(acc, x) if stage.mode == "max" else acc + x, n + 1]
                acc, n = self.state[i]
                x = acc if stage.mode == "max" else acc / n
            else:  # dense, layernorm, normalize: a function of this step alone
                x = stage(x)
        return x

    def _recurrent(self, i, stage, spec, x, previous):
        torch = self.torch
        w_ih = stage.weight_ih
        if i in self.fused_inputs:
            x = torch.cat([x, previous[i + 1]], dim=1)
            w_ih = self.fused_inputs[i]
        args = (w_ih, stage.weight_hh, stage.bias_ih, stage.bias_hh)
        if spec.kind == "lstm":
            self.state[i] = torch.lstm_cell(x, self.state[i], *args)
        elif spec.kind == "gru":
            self.state[i] = (torch.gru_cell(x, self.state[i][0], *args),)
        elif stage.activation == "relu":
            self.state[i] = (torch.rnn_relu_cell(x, self.state[i][0], *args),)
        else:
            self.state[i] = (torch.rnn_tanh_cell(x, self.state[i][0], *args),)
        return self.state[i][0]

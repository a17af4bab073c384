"""The baseline a user would run instead: the checkpoint in PyTorch, dense, one thread.

Masks are folded into plain dense weights once (a user deploying with torch would not multiply by
the mask on every call). Whole sequences go through torch's fused sequence kernels
(``torch.lstm``/``gru``/``rnn_tanh``); streaming uses torch's fused cell kernels
(``torch.lstm_cell`` etc.), one call per step, which is how a streaming torch deployment looks.
Models with top-down feedback have no fused sequence kernel and run step by step in both modes.
"""

from __future__ import annotations

import numpy as np

from ..backends.base import Runner


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
        self.layers = []
        for l, layer in enumerate(model.layers):
            self.layers.append({
                "cell": layer.cell,
                "w_ih": weights[f"layers.{l}.weight_ih"], "w_hh": weights[f"layers.{l}.weight_hh"],
                "b_ih": weights[f"layers.{l}.bias_ih"], "b_hh": weights[f"layers.{l}.bias_hh"],
                "w_fb": weights.get(f"layers.{l}.weight_fb"), "hidden": layer.hidden_size,
            })
            if self.layers[-1]["w_fb"] is not None:  # feedback joins the input side: one fused input matrix
                self.layers[-1]["w_in"] = torch.cat([self.layers[-1]["w_ih"], self.layers[-1]["w_fb"]], dim=1)
        self.head_w, self.head_b = weights["head.weight"], weights["head.bias"]
        self.state = None

    def run(self, X: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
            if self.config.feedback:
                self.reset(x.shape[0])
                logits = None
                for t in range(x.shape[1]):
                    logits = self._step(x[:, t])
                return logits.numpy()
            return self.model(x).numpy()

    def reset(self, batch: int = 1) -> None:
        torch = self.torch
        self.state = []
        for layer in self.layers:
            h = torch.zeros(batch, layer["hidden"])
            self.state.append((h, torch.zeros_like(h)) if layer["cell"] == "lstm" else (h,))

    def step(self, x_t: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            if self.state is None:
                self.reset(len(x_t))
            return self._step(self.torch.from_numpy(np.ascontiguousarray(x_t, dtype=np.float32))).numpy()

    def _step(self, inp):
        torch = self.torch
        previous = [s[0] for s in self.state]
        for l, layer in enumerate(self.layers):
            w_ih, b_ih = layer["w_ih"], layer["b_ih"]
            if layer["w_fb"] is not None:
                inp = torch.cat([inp, previous[l + 1]], dim=1)
                w_ih = layer["w_in"]
            if layer["cell"] == "lstm":
                self.state[l] = torch.lstm_cell(inp, self.state[l], w_ih, layer["w_hh"], b_ih, layer["b_hh"])
            elif layer["cell"] == "gru":
                self.state[l] = (torch.gru_cell(inp, self.state[l][0], w_ih, layer["w_hh"], b_ih, layer["b_hh"]),)
            else:
                self.state[l] = (torch.rnn_tanh_cell(inp, self.state[l][0], w_ih, layer["w_hh"], b_ih, layer["b_hh"]),)
            inp = self.state[l][0]
        return torch.nn.functional.linear(inp, self.head_w, self.head_b)

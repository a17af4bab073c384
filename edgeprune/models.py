"""Recurrent sequence classifiers with weight masks.

A ``SequenceClassifier`` stacks single-layer RNN/LSTM/GRU cells with torch's parameter names and
gate orders (LSTM i,f,g,o; GRU r,z,n), an optional top-down feedback path (layer l+1's state at
t-1 feeds layer l at t), and a linear head on the last step.

Masks are buffers next to the weights they mask. Every forward pass uses ``weight * mask``, so the
gradient of a pruned entry is exactly zero and masked fine-tuning keeps it at zero.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .errors import ModelError
from .ir.cells import CELLS as CELL_SPECS

# Gate blocks of torch's weight_ih / weight_hh per cell (from the cell table, ir/cells.py)
CELL_GATES = {name: spec.torch_gate_count for name, spec in CELL_SPECS.items()}
CELLS = tuple(CELL_GATES)


@dataclass(frozen=True)
class ModelConfig:
    cell: str
    input_size: int
    hidden_sizes: tuple[int, ...]
    num_classes: int
    feedback: bool = False

    def __post_init__(self):
        if self.cell not in CELL_GATES:
            raise ModelError(f"unknown cell '{self.cell}' (choose {', '.join(CELLS)})")
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ModelError("hidden sizes must be positive and at least one layer is needed")
        if self.input_size < 1 or self.num_classes < 1:
            raise ModelError("input size and number of classes must be positive")
        if self.feedback and len(self.hidden_sizes) < 2:
            raise ModelError("top-down feedback needs at least 2 layers")

    @property
    def num_layers(self) -> int:
        return len(self.hidden_sizes)

    def layer_input_size(self, layer: int) -> int:
        return self.input_size if layer == 0 else self.hidden_sizes[layer - 1]

    def layer_feedback_size(self, layer: int) -> int:
        return self.hidden_sizes[layer + 1] if self.feedback and layer + 1 < self.num_layers else 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden_sizes"] = list(self.hidden_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        try:
            return cls(
                cell=str(d["cell"]),
                input_size=int(d["input_size"]),
                hidden_sizes=tuple(d["hidden_sizes"]),
                num_classes=int(d["num_classes"]),
                feedback=bool(d.get("feedback", False)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"invalid model config: {e}") from None

    def describe(self) -> str:
        sizes = "x".join(str(h) for h in self.hidden_sizes)
        fb = " + top-down feedback" if self.feedback else ""
        return f"{self.cell.upper()} {sizes}{fb}, {self.input_size} inputs, {self.num_classes} classes"


class _Masked(nn.Module):
    """Mixin: ``effective(name)`` is the weight as the forward pass sees it (``weight * mask``)."""

    def effective(self, name: str) -> torch.Tensor:
        weight = getattr(self, name)
        mask = getattr(self, "mask_" + name, None)
        return weight if mask is None else weight * mask

    def set_mask(self, name: str, mask: torch.Tensor | None) -> None:
        weight = getattr(self, name)
        if mask is None:
            if hasattr(self, "mask_" + name):
                delattr(self, "mask_" + name)
            return
        if tuple(mask.shape) != tuple(weight.shape):
            raise ModelError(f"mask for {name} has shape {list(mask.shape)}, weight has {list(weight.shape)}")
        mask = mask.to(dtype=weight.dtype, device=weight.device)
        # Zero the stored weight too: the checkpoint and any consumer see the pruned values.
        with torch.no_grad():
            weight.mul_(mask)
        self.register_buffer("mask_" + name, mask, persistent=False)

    def get_mask(self, name: str) -> torch.Tensor | None:
        return getattr(self, "mask_" + name, None)


class RecurrentLayer(_Masked):
    """One RNN/LSTM/GRU layer with torch's parameter layout plus optional feedback weights."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, feedback_size: int = 0):
        super().__init__()
        gates = CELL_GATES[cell]
        self.cell, self.input_size, self.hidden_size, self.feedback_size = cell, input_size, hidden_size, feedback_size
        rows = gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(rows))
        self.bias_hh = nn.Parameter(torch.empty(rows))
        if feedback_size:
            self.weight_fb = nn.Parameter(torch.empty(rows, feedback_size))
        else:
            self.weight_fb = None
        bound = 1.0 / math.sqrt(hidden_size)  # torch's RNN initialisation
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def weight_names(self) -> list[str]:
        names = ["weight_ih", "weight_hh"]
        return names + (["weight_fb"] if self.weight_fb is not None else [])

    def zero_state(self, batch: int, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h = like.new_zeros(batch, self.hidden_size)
        return (h, h.clone()) if self.cell == "lstm" else (h,)

    def forward_sequence(self, x: torch.Tensor) -> torch.Tensor:
        """Whole sequence [N, T, I] -> [N, T, H] through torch's fused kernels (no feedback)."""
        params = [self.effective("weight_ih"), self.effective("weight_hh"), self.bias_ih, self.bias_hh]
        h0 = tuple(s.unsqueeze(0) for s in self.zero_state(x.shape[0], x))  # [layers=1, N, H]
        if self.cell == "lstm":
            out, _, _ = torch.lstm(x, h0, params, True, 1, 0.0, self.training, False, True)
        elif self.cell == "gru":
            out, _ = torch.gru(x, h0[0], params, True, 1, 0.0, self.training, False, True)
        else:
            out, _ = torch.rnn_tanh(x, h0[0], params, True, 1, 0.0, self.training, False, True)
        return out

    def step(self, x: torch.Tensor, state: tuple[torch.Tensor, ...], feedback: torch.Tensor | None = None):
        """One step of the cell, written out so feedback can join the input side."""
        gi = x @ self.effective("weight_ih").t() + self.bias_ih
        if feedback is not None:
            gi = gi + feedback @ self.effective("weight_fb").t()
        h = state[0]
        gh = h @ self.effective("weight_hh").t() + self.bias_hh
        if self.cell == "lstm":
            i, f, g, o = (gi + gh).chunk(4, dim=1)
            c = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
            return (torch.sigmoid(o) * torch.tanh(c), c)
        if self.cell == "gru":
            ir, iz, inn = gi.chunk(3, dim=1)
            hr, hz, hn = gh.chunk(3, dim=1)
            r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
            n = torch.tanh(inn + r * hn)
            return ((1 - z) * n + z * h,)
        return (torch.tanh(gi + gh),)


class MaskedLinear(_Masked, nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.effective("weight"), self.bias)


class SequenceClassifier(nn.Module):
    """Stacked recurrent layers + linear head on the last step. Input [N, T, F] -> logits [N, C]."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(
            RecurrentLayer(config.cell, config.layer_input_size(l), h, config.layer_feedback_size(l))
            for l, h in enumerate(config.hidden_sizes)
        )
        self.head = MaskedLinear(config.hidden_sizes[-1], config.num_classes)

    def forward(self, x: torch.Tensor, all_steps: bool = False) -> torch.Tensor:
        """Logits for the last step [N, C], or for every step [N, T, C] when ``all_steps``."""
        if x.dim() != 3 or x.shape[2] != self.config.input_size:
            raise ModelError(f"expected input [N, T, {self.config.input_size}], got {list(x.shape)}")
        top = self._stepwise(x) if self.config.feedback else self._layerwise(x)
        return self.head(top if all_steps else top[:, -1])

    def _layerwise(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer.forward_sequence(x)
        return x

    def _stepwise(self, x: torch.Tensor) -> torch.Tensor:
        states = [layer.zero_state(x.shape[0], x) for layer in self.layers]
        outputs = []
        for t in range(x.shape[1]):
            inp = x[:, t]
            previous = [s[0] for s in states]  # feedback reads the states from t-1
            for l, layer in enumerate(self.layers):
                fb = previous[l + 1] if layer.feedback_size else None
                states[l] = layer.step(inp, states[l], fb)
                inp = states[l][0]
            outputs.append(inp)
        return torch.stack(outputs, dim=1)

    # -- masks ---------------------------------------------------------------------------------
    def prunable(self, include_head: bool = True) -> dict[str, torch.nn.Parameter]:
        """Weights a mask may apply to, by state-dict name (recurrent cells first, then the head)."""
        out = {}
        for l, layer in enumerate(self.layers):
            for name in layer.weight_names():
                out[f"layers.{l}.{name}"] = getattr(layer, name)
        if include_head:
            out["head.weight"] = self.head.weight
        return out

    def _owner(self, name: str) -> tuple[_Masked, str]:
        module_path, _, attr = name.rpartition(".")
        try:
            module = self.get_submodule(module_path)
        except AttributeError:
            module = None
        if not isinstance(module, _Masked) or name not in self.prunable():
            raise ModelError(f"'{name}' is not a prunable weight of this model")
        return module, attr

    def set_masks(self, masks: dict[str, torch.Tensor]) -> None:
        for name, mask in masks.items():
            module, attr = self._owner(name)
            module.set_mask(attr, torch.as_tensor(mask))

    def masks(self) -> dict[str, torch.Tensor]:
        out = {}
        for name in self.prunable():
            module, attr = self._owner(name)
            mask = module.get_mask(attr)
            if mask is not None:
                out[name] = mask.detach().clone().bool()
        return out

    def clear_masks(self) -> None:
        for name in self.prunable():
            module, attr = self._owner(name)
            module.set_mask(attr, None)

    def effective_weights(self) -> dict[str, torch.Tensor]:
        """Every parameter as inference sees it (masked weights multiplied out), detached."""
        out = {}
        for name, p in self.named_parameters():
            module_path, _, attr = name.rpartition(".")
            module = self.get_submodule(module_path)
            w = module.effective(attr) if isinstance(module, _Masked) and attr.startswith("weight") else p
            out[name] = w.detach().clone()
        return out


_RECURRENT_TYPES = (nn.LSTM, nn.GRU, nn.RNN)


def from_torch(rnn: nn.Module, head: nn.Linear | None = None) -> SequenceClassifier:
    """Adopt a user's ``nn.LSTM``/``nn.GRU``/``nn.RNN`` and ``nn.Linear`` head.

    ``rnn`` may also be any module holding exactly one recurrent module and one ``nn.Linear`` (the
    head is then found inside it). The head must read the last step's top-layer state.
    """
    if not isinstance(rnn, _RECURRENT_TYPES):
        found_rnn = [m for m in rnn.modules() if isinstance(m, _RECURRENT_TYPES)]
        found_head = [m for m in rnn.modules() if isinstance(m, nn.Linear)]
        if len(found_rnn) != 1:
            raise ModelError(f"expected exactly one nn.LSTM/GRU/RNN in {type(rnn).__name__}, found {len(found_rnn)}")
        if head is None:
            if len(found_head) != 1:
                raise ModelError(f"expected exactly one nn.Linear head in {type(rnn).__name__}, found {len(found_head)}")
            head = found_head[0]
        rnn = found_rnn[0]
    if head is None or not isinstance(head, nn.Linear):
        raise ModelError("a classifier head (nn.Linear) is required")
    cell = {nn.LSTM: "lstm", nn.GRU: "gru", nn.RNN: "rnn"}[type(rnn)]
    if rnn.bidirectional:
        raise ModelError(f"bidirectional {type(rnn).__name__} is not supported (streaming needs one direction)")
    if getattr(rnn, "proj_size", 0):
        raise ModelError("LSTM with proj_size is not supported")
    if cell == "rnn" and rnn.nonlinearity != "tanh":
        raise ModelError(f"RNN nonlinearity '{rnn.nonlinearity}' is not supported (tanh only)")
    if head.in_features != rnn.hidden_size:
        raise ModelError(f"head expects {head.in_features} inputs but the RNN has hidden size {rnn.hidden_size}")
    config = ModelConfig(cell, rnn.input_size, (rnn.hidden_size,) * rnn.num_layers, head.out_features)
    model = SequenceClassifier(config)
    with torch.no_grad():
        for l, layer in enumerate(model.layers):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                src = getattr(rnn, f"{name}_l{l}", None)
                target = getattr(layer, name)
                if src is None:  # bias=False
                    target.zero_()
                else:
                    target.copy_(src.detach())
        model.head.weight.copy_(head.weight.detach())
        if head.bias is not None:
            model.head.bias.copy_(head.bias.detach())
        else:
            model.head.bias.zero_()
    return model

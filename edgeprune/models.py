"""Torch models built from a ``ModelSpec``: a chain of stages with weight masks.

``SequenceModel`` runs the stages of a spec (``modelspec.py``) over whole sequences: dense
layers, causal Conv1d, RNN/LSTM/GRU layers with torch's parameter names and gate orders (LSTM
i,f,g,o; GRU r,z,n) and optional top-down feedback (a layer reads the next layer's state at t-1),
LayerNorm, a fitted per-feature normalisation, running mean/max pooling. Stages are
``layers.{i}`` except a final dense one, ``head`` — the v1 names of recurrent layers + a head.

Masks are buffers next to the weights they mask. Every forward pass uses ``weight * mask``, so the
gradient of a pruned entry is exactly zero and masked fine-tuning keeps it at zero.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .errors import ModelError
from .modelspec import CELL_GATES, RECURRENT, ModelConfig, ModelSpec, StageSpec

CELLS = RECURRENT

__all__ = ["CELLS", "CELL_GATES", "ModelConfig", "ModelSpec", "SequenceClassifier", "SequenceModel", "from_torch"]


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

    def weight_names(self) -> list[str]:
        return ["weight"]


def _act(x: torch.Tensor, activation: str) -> torch.Tensor:
    if activation == "relu":
        return torch.relu(x)
    if activation == "tanh":
        return torch.tanh(x)
    if activation == "sigmoid":
        return torch.sigmoid(x)
    if activation == "softmax":
        return torch.softmax(x, dim=-1)
    return x


class RecurrentLayer(_Masked):
    """One RNN/LSTM/GRU layer with torch's parameter layout plus optional feedback weights."""

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        feedback_size: int = 0,
        bias: bool = True,
        activation: str = "tanh",
    ):
        super().__init__()
        gates = CELL_GATES[cell]
        self.cell, self.input_size, self.hidden_size, self.feedback_size = cell, input_size, hidden_size, feedback_size
        self.activation = activation if cell == "rnn" else "tanh"
        rows = gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(rows)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(rows)) if bias else None
        self.weight_fb = nn.Parameter(torch.empty(rows, feedback_size)) if feedback_size else None
        bound = 1.0 / math.sqrt(hidden_size)  # torch's RNN initialisation
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    @property
    def has_bias(self) -> bool:
        return self.bias_ih is not None

    def weight_names(self) -> list[str]:
        names = ["weight_ih", "weight_hh"]
        return names + (["weight_fb"] if self.weight_fb is not None else [])

    def zero_state(self, batch: int, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h = like.new_zeros(batch, self.hidden_size)
        return (h, h.clone()) if self.cell == "lstm" else (h,)

    def forward_sequence(self, x: torch.Tensor) -> torch.Tensor:
        """Whole sequence [N, T, I] -> [N, T, H] through torch's fused kernels (no feedback)."""
        params = [self.effective("weight_ih"), self.effective("weight_hh")]
        if self.has_bias:
            params += [self.bias_ih, self.bias_hh]
        h0 = tuple(s.unsqueeze(0) for s in self.zero_state(x.shape[0], x))  # [layers=1, N, H]
        args = (params, self.has_bias, 1, 0.0, self.training, False, True)
        if self.cell == "lstm":
            out, _, _ = torch.lstm(x, h0, *args)
        elif self.cell == "gru":
            out, _ = torch.gru(x, h0[0], *args)
        elif self.activation == "relu":
            out, _ = torch.rnn_relu(x, h0[0], *args)
        else:
            out, _ = torch.rnn_tanh(x, h0[0], *args)
        return out

    def step(self, x: torch.Tensor, state: tuple[torch.Tensor, ...], feedback: torch.Tensor | None = None):
        """One step of the cell, written out so feedback can join the input side."""
        gi = x @ self.effective("weight_ih").t()
        h = state[0]
        gh = h @ self.effective("weight_hh").t()
        if self.has_bias:
            gi, gh = gi + self.bias_ih, gh + self.bias_hh
        if feedback is not None:
            gi = gi + feedback @ self.effective("weight_fb").t()
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
        return (_act(gi + gh, self.activation),)


class MaskedLinear(_Masked, nn.Linear):
    """A dense stage: ``act(W x + b)`` at every step."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "none"):
        super().__init__(in_features, out_features, bias=bias)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _act(F.linear(x, self.effective("weight"), self.bias), self.activation)


class CausalConv1d(_Masked):
    """Causal Conv1d over time, stride 1. ``weight`` is [out, kernel * in] in the IR's column order
    (column ``tap * in + c``, tap 0 the oldest input), so masks and the IR need no reshaping."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        dilation: int = 1,
        bias: bool = True,
        activation: str = "none",
    ):
        super().__init__()
        self.in_channels, self.kernel, self.dilation, self.activation = in_channels, kernel, dilation, activation
        conv = nn.Conv1d(in_channels, out_channels, kernel, dilation=dilation, bias=bias)  # torch's initialisation
        self.weight = nn.Parameter(conv.weight.detach().permute(0, 2, 1).reshape(out_channels, -1).clone())
        self.bias = nn.Parameter(conv.bias.detach().clone()) if bias else None

    def torch_weight(self) -> torch.Tensor:
        w = self.effective("weight")
        return w.reshape(w.shape[0], self.kernel, self.in_channels).permute(0, 2, 1)  # [out, in, kernel]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, T, C]
        padded = F.pad(x.transpose(1, 2), ((self.kernel - 1) * self.dilation, 0))
        y = F.conv1d(padded, self.torch_weight(), self.bias, dilation=self.dilation)
        return _act(y.transpose(1, 2), self.activation)


class Normalize(nn.Module):
    """``x * scale + shift`` per feature; fitted on training data, not trained."""

    def __init__(self, size: int):
        super().__init__()
        self.register_buffer("scale", torch.ones(size))
        self.register_buffer("shift", torch.zeros(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class Pool(nn.Module):
    """Running mean or max over time: output at t pools the inputs 1..t."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "max":
            return torch.cummax(x, dim=1).values
        steps = torch.arange(1, x.shape[1] + 1, dtype=x.dtype, device=x.device).view(1, -1, 1)
        return torch.cumsum(x, dim=1) / steps


def build_stage(spec: ModelSpec, i: int) -> nn.Module:
    s: StageSpec = spec.stages[i]
    width = spec.stage_input_size(i)
    if s.kind == "dense":
        return MaskedLinear(width, s.size, s.bias, s.activation)
    if s.kind == "conv":
        return CausalConv1d(width, s.size, s.kernel, s.dilation, s.bias, s.activation)
    if s.recurrent:
        feedback = spec.stages[i + 1].size if s.feedback else 0
        return RecurrentLayer(s.kind, width, s.size, feedback, s.bias, s.activation)
    if s.kind == "layernorm":
        return nn.LayerNorm(width, eps=s.eps)
    if s.kind == "normalize":
        return Normalize(width)
    return Pool(s.mode)


class SequenceModel(nn.Module):
    """The stages of ``spec`` over sequences [N, T, F] -> [N, C] (output ``last``) or [N, T, C] (``every``)."""

    def __init__(self, config: ModelSpec):
        super().__init__()
        self.config = config
        modules = [build_stage(config, i) for i in range(len(config.stages))]
        self.head = modules.pop() if config.has_head() else None
        self.layers = nn.ModuleList(modules)

    @property
    def spec(self) -> ModelSpec:
        return self.config

    def stages(self) -> list[nn.Module]:
        return list(self.layers) + ([self.head] if self.head is not None else [])

    def named_stages(self) -> list[tuple[str, nn.Module]]:
        return list(zip(self.config.stage_names(), self.stages()))

    def forward(self, x: torch.Tensor, all_steps: bool | None = None, lengths: torch.Tensor | None = None):
        """The model's outputs; ``all_steps`` overrides the spec's output mode; ``lengths`` [N] picks each
        sequence's own last step for output ``last``."""
        if x.dim() != 3 or x.shape[2] != self.config.input_size:
            raise ModelError(f"expected input [N, T, {self.config.input_size}], got {list(x.shape)}")
        every = self.config.output == "every" if all_steps is None else all_steps
        stages, specs = self.stages(), self.config.stages
        i = 0
        while i < len(stages):
            if specs[i].feedback:  # a group linked by feedback runs step by step
                j = i
                while specs[j].feedback:
                    j += 1
                x = self._stepwise(x, stages[i : j + 1])
                i = j + 1
                continue
            stage = stages[i]
            x = stage.forward_sequence(x) if isinstance(stage, RecurrentLayer) else stage(x)
            i += 1
        if every:
            return x
        if lengths is None:
            return x[:, -1]
        return x[torch.arange(x.shape[0]), torch.as_tensor(lengths, dtype=torch.long) - 1]

    def _stepwise(self, x: torch.Tensor, group: list[RecurrentLayer] | None = None) -> torch.Tensor:
        """Recurrent layers (default: all of a v1 model) step by step, so feedback reads states from t-1."""
        group = list(self.layers) if group is None else group
        states = [layer.zero_state(x.shape[0], x) for layer in group]
        outputs = []
        for t in range(x.shape[1]):
            inp = x[:, t]
            previous = [s[0] for s in states]  # feedback reads the states from t-1
            for l, layer in enumerate(group):
                fb = previous[l + 1] if layer.feedback_size else None
                states[l] = layer.step(inp, states[l], fb)
                inp = states[l][0]
            outputs.append(inp)
        return torch.stack(outputs, dim=1)

    # -- masks ---------------------------------------------------------------------------------
    def prunable(self, include_head: bool = True) -> dict[str, torch.nn.Parameter]:
        """Matrices a mask may apply to, by state-dict name, in chain order (the head last)."""
        out = {}
        for name, stage in self.named_stages():
            if isinstance(stage, _Masked) and (include_head or name != "head"):
                for attr in stage.weight_names():
                    out[f"{name}.{attr}"] = getattr(stage, attr)
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


SequenceClassifier = SequenceModel  # the v1 name


_RECURRENT_TYPES = (nn.LSTM, nn.GRU, nn.RNN)


def from_torch(
    rnn: nn.Module,
    head: nn.Linear | torch.Tensor | None = None,
    *,
    example_input: torch.Tensor | None = None,
    zeros_are_pruned: bool = True,
    check: bool = True,
) -> SequenceModel:
    """Adopt a user's torch model as a ``SequenceModel``.

    ``from_torch(module, example_input)``: ``module``'s forward on batch-first sequences like
    ``example_input`` ([batch, time, features]) is captured with ``torch.export`` and its aten ops are
    mapped to stages (``frontend/torch_export.py``; docs/import.md lists what maps to what). An op
    without a mapping is refused in one line naming it and its module. The adopted model and the
    module are then run on the example (and on the capture sample) and must agree to fp32 noise.

    ``from_torch(rnn, head)``: an ``nn.LSTM``/``nn.GRU``/``nn.RNN`` and an ``nn.Linear`` head on its
    last step (the v1 form). A module passed without ``example_input`` is captured on a sample of
    [3, 7, F] random sequences, F read from its first layer; a holder without a forward of its own is
    a container of one recurrent module and one ``nn.Linear``. ``check`` false (holders only) skips
    the capture and the comparison, for callers that only read the modules' weights (e.g. to make
    masks for them). Weights that are exactly zero become pruned entries (masks) unless
    ``zeros_are_pruned`` is false.
    """
    if isinstance(head, torch.Tensor):
        head, example_input = None, head
    if not isinstance(rnn, _RECURRENT_TYPES) and head is None and (check or example_input is not None):
        if example_input is not None or type(rnn).forward is not nn.Module.forward:
            return _adopt_captured(rnn, example_input, zeros_are_pruned)
    wrapper = None if isinstance(rnn, _RECURRENT_TYPES) else rnn
    if not isinstance(rnn, _RECURRENT_TYPES):
        found_rnn = [m for m in rnn.modules() if isinstance(m, _RECURRENT_TYPES)]
        found_head = [m for m in rnn.modules() if isinstance(m, nn.Linear)]
        if len(found_rnn) != 1:
            raise ModelError(f"expected exactly one nn.LSTM/GRU/RNN in {type(rnn).__name__}, found {len(found_rnn)}")
        if head is None:
            if len(found_head) != 1:
                raise ModelError(
                    f"expected exactly one nn.Linear head in {type(rnn).__name__}, found {len(found_head)}"
                )
            head = found_head[0]
        rnn = found_rnn[0]
    if head is None or not isinstance(head, nn.Linear):
        raise ModelError("a classifier head (nn.Linear) is required")
    cell = {nn.LSTM: "lstm", nn.GRU: "gru", nn.RNN: "rnn"}[type(rnn)]
    if rnn.bidirectional:
        raise ModelError(f"bidirectional {type(rnn).__name__} is not supported (streaming needs one direction)")
    if getattr(rnn, "proj_size", 0):
        raise ModelError("LSTM with proj_size is not supported")
    if head.in_features != rnn.hidden_size:
        raise ModelError(f"head expects {head.in_features} inputs but the RNN has hidden size {rnn.hidden_size}")
    act = rnn.nonlinearity if cell == "rnn" else "none"
    stages = [StageSpec(cell, rnn.hidden_size, act, bias=rnn.bias) for _ in range(rnn.num_layers)]
    stages.append(StageSpec("dense", head.out_features, bias=head.bias is not None))
    model = SequenceModel(ModelSpec(rnn.input_size, tuple(stages)))
    with torch.no_grad():
        for l, layer in enumerate(model.layers):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                target = getattr(layer, name)
                if target is not None:
                    target.copy_(getattr(rnn, f"{name}_l{l}").detach())
        model.head.weight.copy_(head.weight.detach())
        if head.bias is not None:
            model.head.bias.copy_(head.bias.detach())
    if zeros_are_pruned:  # a user's pruned weights keep their sparsity
        _zeros_to_masks(model)
    if wrapper is not None and check:
        _check_adoption(wrapper, model)
    return model.eval()


def _zeros_to_masks(model: SequenceModel) -> None:
    model.set_masks({n: w.detach() != 0 for n, w in model.prunable().items() if bool((w == 0).any())})


def _first_width(module: nn.Module) -> int | None:
    """The input features of the first layer registered in ``module`` (to shape a sample without an example)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            return m.in_features
        if isinstance(m, nn.Conv1d):
            return m.in_channels
        if isinstance(m, _RECURRENT_TYPES):
            return m.input_size
        if isinstance(m, nn.LayerNorm) and len(m.normalized_shape) == 1:
            return int(m.normalized_shape[0])
    return None


def _adopt_captured(module: nn.Module, example: torch.Tensor | None, zeros_are_pruned: bool) -> SequenceModel:
    from .frontend.torch_export import capture

    name = type(module).__name__
    if example is None:
        width = _first_width(module)
        if width is None:
            raise ModelError(f"{name}: pass example_input (a [batch, time, features] tensor) to capture its forward")
        example = torch.randn(3, 7, width, generator=torch.Generator().manual_seed(0))
    was_training = module.training
    model = capture(module, example)
    if zeros_are_pruned:
        _zeros_to_masks(model)
    samples = [example.detach().float()]
    if example.shape[0] < 2 or example.shape[1] < 2:
        samples.append(samples[0].repeat(2 if example.shape[0] < 2 else 1, 2 if example.shape[1] < 2 else 1, 1))
    for x in samples:
        _compare(module, model, x, name)
    # Another length too: torch.export fixes the capture's sizes, so a forward that reads a literal step
    # or size is exposed here (a module that cannot run at another length at all is not compared).
    longer = torch.randn(
        example.shape[0], example.shape[1] + 3, example.shape[2], generator=torch.Generator().manual_seed(1)
    )
    try:
        with torch.no_grad():
            module.eval()(longer)
        runs = True
    except Exception:  # noqa: BLE001 - the user's forward may insist on its own length
        runs = False
    finally:
        module.train(was_training)
    if runs:
        _compare(module, model, longer, name)
    return model


def _compare(module: nn.Module, model: SequenceModel, x: torch.Tensor, name: str) -> None:
    """Refuse unless the adopted model computes what ``module`` computes on ``x``, to fp32 noise."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            theirs = module(x)
    finally:
        module.train(was_training)
    with torch.no_grad():
        ours = model(x)
    theirs = theirs[0] if isinstance(theirs, (tuple, list)) else theirs
    if not isinstance(theirs, torch.Tensor) or tuple(theirs.shape) != tuple(ours.shape):
        shape = list(theirs.shape) if isinstance(theirs, torch.Tensor) else type(theirs).__name__
        raise ModelError(f"{name} returns {shape} but the adopted chain gives {list(ours.shape)}: not adopted")
    err = float((theirs.float() - ours).abs().max())
    if not err <= 1e-5 * max(1.0, float(ours.abs().max())):
        raise ModelError(
            f"{name}: the adopted chain ({model.config.text()}) differs from its forward by max |difference| "
            f"{err:.2g} on {list(x.shape)} inputs: not adopted"
        )


def _check_adoption(wrapper: nn.Module, model: SequenceModel) -> None:
    """Refuse a wrapper whose forward is not the adopted recurrent module + head on the last step."""
    name = type(wrapper).__name__
    x = torch.randn(3, 7, model.config.input_size, generator=torch.Generator().manual_seed(0))
    was_training = wrapper.training
    wrapper.eval()
    try:
        with torch.no_grad():
            theirs = wrapper(x)
    except NotImplementedError:  # no forward of its own: a container of the two modules, nothing dropped
        return
    except Exception as e:  # noqa: BLE001 - whatever the user's forward raises on a batch-first sample
        raise ModelError(
            f"cannot check that {name} computes what would be adopted (its forward on a batch-first [3, 7, "
            f"{model.config.input_size}] sample raised {type(e).__name__}); pass its recurrent module and head"
        ) from None
    finally:
        wrapper.train(was_training)
    with torch.no_grad():
        ours = model(x)
    theirs = theirs[0] if isinstance(theirs, tuple) else theirs
    if not isinstance(theirs, torch.Tensor) or tuple(theirs.shape) != tuple(ours.shape):
        shape = list(theirs.shape) if isinstance(theirs, torch.Tensor) else type(theirs).__name__
        raise ModelError(
            f"{name} returns {shape}, but its recurrent module + head on the last step give {list(ours.shape)}: "
            "not adopted (other layers or operations would be dropped)"
        )
    err = float((theirs.float() - ours).abs().max())
    if err > 1e-5 * max(1.0, float(ours.abs().max())):
        raise ModelError(
            f"{name} computes something else than its recurrent module + head on the last step (max |difference| "
            f"{err:.2g}): not adopted (other layers or operations would be dropped)"
        )

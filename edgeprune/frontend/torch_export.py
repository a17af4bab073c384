"""Adopt a user's torch module by capturing it with ``torch.export`` and mapping its aten ops to stages.

``torch.export.export(module, (x,))`` gives a flat graph of aten ops with the weights as inputs
(docs/import.md lists the mapping). It is read by abstract interpretation, like the ONNX importer:
every value is a constant (parameters, buffers and anything computed from them alone, which is
folded by running the op), an all-zero tensor (initial states), a tuple, or a data tensor whose axes
are labelled (batch ``N``, time ``T``, features ``C``, a singleton ``S``, stacked layer states ``K``,
batch and time merged ``NT``/``TN``) and which has gone through the first ``depth`` stages of the
chain. Stages are appended in graph order; a value read after a later stage exists (a branch or a
skip connection) is refused, as is every op without a mapping, in one line naming the op and the
module it belongs to (``node.meta['nn_module_stack']``).

The input is the batch-first ``[batch, time, features]`` tensor a ``SequenceModel`` reads; the
output is ``[batch, classes]`` (the last step, or a pool over time) or ``[batch, time, classes]``
(every step). The caller (``models.from_torch``) then compares the adopted model with the module.
"""

from __future__ import annotations

import operator
import warnings
from dataclasses import dataclass, replace

import torch
from torch import nn

from ..errors import ModelError, first_line
from ..models import SequenceModel
from ..modelspec import ModelSpec, StageSpec


@dataclass
class Const:
    value: object  # a tensor, or what an op on constants returned


@dataclass
class Zeros:
    """An all-zero tensor (an initial state built with ``zeros`` or ``new_zeros``)."""


@dataclass
class Refused:
    reason: str


@dataclass
class Tup:
    items: tuple


@dataclass
class Data:
    labels: tuple[str, ...]
    depth: int  # how many stages of the chain it has gone through
    pad: int = 0  # zeros padded on the left of the time axis, waiting for a conv
    extra: int = 0  # steps a symmetrically padded conv wrote past the end of time, waiting to be cut


ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "softmax": "softmax", "_softmax": "softmax"}
PASS_THROUGH = {"clone", "contiguous", "alias", "detach", "lift_fresh_copy", "dropout", "feature_dropout", "_to_copy"}
RESHAPES = {"view", "reshape", "_unsafe_view", "flatten", "unsqueeze", "squeeze", "expand"}
RECURRENT_OPS = {"lstm": "lstm", "gru": "gru", "rnn_tanh": "rnn", "rnn_relu": "rnn"}
RESHAPE_RULE = "only singleton axes, or batch x time merged around a per-step op"
ZERO_MAKERS = {"zeros", "zeros_like", "new_zeros"}


def _bind(node) -> dict:
    """The op's arguments by schema name, defaults filled in."""
    schema = node.target._schema
    out = {}
    for i, a in enumerate(schema.arguments):
        if i < len(node.args):
            out[a.name] = node.args[i]
        elif a.name in node.kwargs:
            out[a.name] = node.kwargs[a.name]
        else:
            out[a.name] = a.default_value if a.has_default_value() else None
    return out


def _ancestors(node) -> set:
    """``node`` and every node it is computed from."""
    seen, todo = set(), [node]
    while todo:
        n = todo.pop()
        if isinstance(n, torch.fx.Node) and n not in seen:
            seen.add(n)
            todo += list(n.all_input_nodes)
    return seen


def _shape(node) -> tuple[int, ...]:
    return tuple(int(d) for d in node.meta["val"].shape)


class Capture:
    """One exported program read into a ``ModelSpec`` and the weights of its stages."""

    def __init__(self, program, name: str, sizes: dict[str, int]):
        self.program, self.name, self.sizes = program, name, sizes  # sizes: N, T, C of the capture sample
        self.stages: list[StageSpec] = []
        self.params: list[dict[str, torch.Tensor]] = []
        self.values: dict = {}
        self.node = None

    # -- errors --------------------------------------------------------------------------------
    def where(self, node) -> str:
        stack = node.meta.get("nn_module_stack") or {}
        if stack:
            path, kind = list(stack.values())[-1]
            if path:
                return f"in module '{path}' ({str(kind).rpartition('.')[2]})"
        return f"in {self.name}.forward"

    def op_name(self, node) -> str:
        t = node.target
        return f"aten.{t._overloadpacket.__name__}" if hasattr(t, "_overloadpacket") else getattr(t, "__name__", str(t))

    def fail(self, message: str):
        node = self.node
        raise ModelError(f"{self.name}: {self.op_name(node)} {self.where(node)}: {message}; not adopted")

    # -- the walk ------------------------------------------------------------------------------
    def run(self) -> tuple[ModelSpec, list[dict[str, torch.Tensor]]]:
        ep = self.program
        sig = ep.graph_signature
        consts = {**ep.state_dict, **ep.constants}
        named = {**sig.inputs_to_parameters, **sig.inputs_to_buffers, **sig.inputs_to_lifted_tensor_constants}
        users = list(sig.user_inputs)
        if len(users) != 1:
            raise ModelError(f"{self.name}: its forward takes {len(users)} tensor inputs; one sequence batch expected")
        out_node = next(n for n in ep.graph.nodes if n.op == "output")
        outs = out_node.args[0]
        first = outs[0] if isinstance(outs, (tuple, list)) else outs
        needed = _ancestors(first)  # ops whose results the output does not use are not read
        for node in ep.graph.nodes:
            if node.op == "call_function" and node not in needed:
                continue
            self.node = node
            if node.op == "placeholder":
                if node.name in named:
                    self.values[node] = Const(consts[named[node.name]].detach())
                elif node.name == users[0]:
                    self.values[node] = Data(("N", "T", "C"), 0)
                else:
                    self.fail("an input that is neither a weight nor the sequences")
            elif node.op == "call_function":
                self.values[node] = self.call(node)
        self.node = first
        v = self.values.get(first)
        if isinstance(v, Refused):
            self.fail(v.reason)
        if not isinstance(v, Data):
            raise ModelError(f"{self.name}: its output does not depend on the input sequences; not adopted")
        if v.depth != len(self.stages):
            self.fail("the output skips stages computed after it (only a chain of stages is supported)")
        if v.pad or v.extra:
            self.fail("the output is a padded sequence")
        if v.labels == ("N", "C"):
            output = "last"
        elif v.labels == ("N", "T", "C"):
            output = "every"
        else:
            named_axes = ", ".join({"N": "batch", "T": "time", "C": "features"}.get(l, l) for l in v.labels)
            self.fail(f"the output's axes are [{named_axes}]; [batch, classes] or [batch, time, classes] expected")
        if not self.stages:
            raise ModelError(f"{self.name}: computes no stage (nothing to compile)")
        try:
            spec = ModelSpec(self.sizes["C"], tuple(self.stages), output)
        except ModelError as e:
            raise ModelError(f"{self.name}: {e}; not adopted") from None
        return spec, self.params

    def arg(self, a):
        if isinstance(a, torch.fx.Node):
            return self.values[a]
        if isinstance(a, (list, tuple)) and any(isinstance(x, torch.fx.Node) for x in a):
            return [self.arg(x) for x in a]
        return Const(a)

    def call(self, node):
        if node.target is operator.getitem:
            v = self.values[node.args[0]]
            if isinstance(v, Tup):  # a Refused item fails when something reads it
                return v.items[node.args[1]]
            if isinstance(v, Const):
                return Const(v.value[node.args[1]])
            self.fail("indexing of this value is not supported")
        if not hasattr(node.target, "_schema"):
            self.fail("not an aten op")
        args = _bind(node)
        values = {k: self.arg(a) for k, a in args.items()}
        flat = [x for v in values.values() for x in (v if isinstance(v, (list, tuple)) else [v])]
        refused = next((x for x in flat if isinstance(x, Refused)), None)
        if refused is not None:
            self.fail(refused.reason)
        name = node.target._overloadpacket.__name__
        if all(isinstance(x, Const) for x in flat):  # weights and numbers only: fold by running the op

            def raw(v):
                return type(v)(raw(x) for x in v) if isinstance(v, (list, tuple)) else v.value

            return Const(
                node.target(
                    *[raw(self.arg(a)) for a in node.args], **{k: raw(self.arg(a)) for k, a in node.kwargs.items()}
                )
            )
        if name in ZERO_MAKERS or (name == "full" and float(values["fill_value"].value) == 0):
            return Zeros()
        data = [x for x in flat if isinstance(x, Data)]
        if not data:
            if any(isinstance(x, Zeros) for x in flat) and (
                name in PASS_THROUGH or name in RESHAPES or name in ("transpose", "permute", "select", "slice", "to")
            ):
                return Zeros()
            self.fail("not supported on the initial states")
        if name in RECURRENT_OPS:
            return self.recurrent(RECURRENT_OPS[name], name, values)
        if len(data) > 1:
            self.fail("combines two data tensors (only a chain of stages is supported)")
        x = data[0]
        first = node.args[0]
        if name in PASS_THROUGH or (name == "to" and node.meta["val"].dtype == torch.float32):
            if name in ("dropout", "feature_dropout") and values["train"].value:
                self.fail("dropout in training mode")
            if name == "_to_copy" and node.meta["val"].dtype != torch.float32:
                self.fail("converts the data to another type than float32")
            return x
        if x.extra and not (name == "slice"):
            self.fail("reads a conv output padded on the right before its extra steps are cut")
        if name in ACTIVATIONS:
            return self.activation(ACTIVATIONS[name], x, values, first)
        if name in ("transpose", "permute", "t"):
            return self.permute(name, x, values, first)
        if name in RESHAPES:
            return self.reshape(x, _shape(first), _shape(node))
        if name in ("select", "slice"):
            return self.index(name, x, values, _shape(first), _shape(node))
        if name in ("pad", "constant_pad_nd"):
            return self.pad(x, values, first)
        if name in ("linear", "matmul", "mm", "addmm"):
            return self.linear(name, x, values)
        if name in ("conv1d", "convolution"):
            return self.conv(name, x, values, first, node)
        if name == "layer_norm":
            return self.layer_norm(x, values, first)
        if name in ("mean", "amax", "max"):
            return self.pool(name, x, values, first)
        if name in ("add", "sub", "mul", "div", "rsub"):
            return self.scale(name, x, values, node)
        self.fail("has no mapping to an edgeprune stage")

    # -- helpers -------------------------------------------------------------------------------
    def push(self, x: Data, stage: StageSpec, params: dict) -> int:
        self.check_chain(x)
        self.stages.append(stage)
        self.params.append(params)
        return len(self.stages)

    def check_chain(self, x: Data):
        if x.depth != len(self.stages):
            self.fail(
                "reads a value from before a later stage (a branch or skip connection; only a chain is supported)"
            )
        if x.pad or x.extra:
            self.fail("reads a time-padded sequence (only a conv may read it)")

    def width(self, node, x: Data) -> int:
        return _shape(node)[x.labels.index("C")]

    def features_last(self, x: Data, what: str):
        if not x.labels or x.labels[-1] != "C":
            self.fail(f"{what} over an axis other than the features")

    def activation(self, act: str, x: Data, values: dict, first) -> Data:
        if act == "softmax":
            rank = len(x.labels)
            if x.labels[int(values["dim"].value) % rank] != "C":
                self.fail("softmax over an axis other than the features")
        self.check_chain(x)
        if self.stages and self.stages[-1].kind in ("dense", "conv") and self.stages[-1].activation == "none":
            if act != "softmax" or self.stages[-1].kind == "dense":
                self.stages[-1] = replace(self.stages[-1], activation=act)
                return x
        c = self.width(first, x)  # an identity dense stage carries the activation
        depth = self.push(x, StageSpec("dense", c, act, bias=False), {"weight": torch.eye(c)})
        return replace(x, depth=depth)

    def permute(self, name: str, x: Data, values: dict, first) -> Data:
        rank = len(x.labels)
        if name == "t":
            order = [1, 0] if rank == 2 else list(range(rank))
        elif name == "transpose":
            a, b = int(values["dim0"].value) % rank, int(values["dim1"].value) % rank
            order = list(range(rank))
            order[a], order[b] = order[b], order[a]
        else:
            order = [int(d) % rank for d in values["dims"].value]
        return replace(x, labels=tuple(x.labels[i] for i in order))

    def reshape(self, x: Data, before: tuple, after: tuple) -> Data:
        """Adding or dropping singleton axes, or merging/splitting batch and time around per-step ops."""
        n, t = self.sizes["N"], self.sizes["T"]
        keys = [(l, s) for l, s in zip(x.labels, before) if l != "S" and not (l == "K" and s == 1)]
        out, p = [], 0
        for d in after:
            if p < len(keys) and keys[p][0] in ("NT", "TN") and d != keys[p][1]:
                a, b = keys[p][0]
                keys[p : p + 1] = [(a, n if a == "N" else t), (b, n if b == "N" else t)]
            if p < len(keys) and d == keys[p][1]:
                out.append(keys[p][0])
                p += 1
            elif p + 1 < len(keys) and {keys[p][0], keys[p + 1][0]} == {"N", "T"} and d == keys[p][1] * keys[p + 1][1]:
                out.append(keys[p][0] + keys[p + 1][0])
                p += 2
            elif d == 1:
                out.append("S")
            else:
                self.fail(f"reshapes {list(before)} to {list(after)} ({RESHAPE_RULE})")
        if p != len(keys):
            self.fail(f"reshapes {list(before)} to {list(after)} ({RESHAPE_RULE})")
        return replace(x, labels=tuple(out))

    def index(self, name: str, x: Data, values: dict, before: tuple, after: tuple) -> Data:
        rank = len(x.labels)
        dim = int(values["dim"].value) % rank
        label, size = x.labels[dim], before[dim]
        if name == "slice":
            if after[dim] == size:
                return x
            start = values["start"].value
            start = 0 if start is None else int(start)
            raw, start = start, start + size if start < 0 else start
            if label == "T" and x.extra and start == 0 and after[dim] == size - x.extra:
                return replace(x, extra=0)  # the causal outputs of a symmetrically padded conv
            # Time: only ``-1`` (a literal T-1 is the last step only at the capture's length); layers: L-1 too.
            if after[dim] == 1 and not x.extra and (raw == -1 or (label == "K" and start == size - 1)):
                return replace(x, labels=x.labels[:dim] + ("S",) + x.labels[dim + 1 :])
            what = "time steps" if label == "T" else f"the {label} axis"
            self.fail(f"slices {what} {start}..{start + after[dim]} of {size}; only the last step can be selected")
        raw = int(values["index"].value)
        i = raw + size if raw < 0 else raw
        if x.extra:
            self.fail("selects from a conv output padded on the right")
        if label == "S" or (label == "T" and raw == -1) or (label == "K" and i == size - 1):
            return replace(x, labels=x.labels[:dim] + x.labels[dim + 1 :])
        if label == "K":
            self.fail(f"reads the final state of layer {i} of {size}; only the top layer's state can be read")
        if label == "T":
            self.fail(f"selects time step {i} of {size}; only the last step can be selected (as index -1)")
        self.fail(f"selects one entry of the {label} axis")

    def pad(self, x: Data, values: dict, first) -> Data:
        pads = [int(p) for p in values["pad"].value]
        mode = values.get("mode")
        if mode is not None and mode.value not in (None, "constant"):
            self.fail(f"pad mode '{mode.value}' (only zero padding before a causal conv)")
        fill = values.get("value")
        if fill is not None and fill.value not in (None, 0, 0.0):
            self.fail("pads with a nonzero value")
        if len(pads) != 2 or x.labels[-1] != "T" or pads[1] != 0 or pads[0] < 0:
            self.fail(f"pads {pads} (only zeros on the left of the time axis, before a causal conv)")
        return replace(x, pad=x.pad + pads[0])

    def linear(self, name: str, x: Data, values: dict) -> Data:
        self.features_last(x, "a linear map")
        if name == "linear":
            w, b = values["weight"], values["bias"]
        elif name == "addmm":
            if float(values["beta"].value) != 1 or float(values["alpha"].value) != 1:
                self.fail("addmm with alpha/beta other than 1")
            w, b = values["mat2"], values["self"]
        else:
            w, b = values["other" if name == "matmul" else "mat2"], Const(None)
        if not isinstance(w, Const) or not isinstance(b, Const):
            self.fail("a linear map whose weights are computed from the data")
        weight = torch.as_tensor(w.value).float()
        if name != "linear":
            if weight.dim() != 2:
                self.fail("a matrix product with a weight of rank other than 2")
            weight = weight.t()
        bias = None if b.value is None else torch.as_tensor(b.value).float().reshape(-1)
        if bias is not None and bias.numel() != weight.shape[0]:
            self.fail("a bias that does not match the output features")
        params = {"weight": weight.contiguous()} | ({} if bias is None else {"bias": bias})
        depth = self.push(x, StageSpec("dense", int(weight.shape[0]), bias=bias is not None), params)
        return replace(x, depth=depth)

    def conv(self, name: str, x: Data, values: dict, first, node) -> Data:
        if x.labels != ("N", "C", "T"):
            self.fail("a convolution not over [batch, channels, time]")
        w, b = values["weight"], values["bias"]
        if not isinstance(w, Const) or not isinstance(b, Const):
            self.fail("a convolution whose weights are computed from the data")
        weight = torch.as_tensor(w.value).float()
        if weight.dim() != 3:
            self.fail("not a 1-D convolution")
        stride = [int(s) for s in values["stride"].value]
        dilation = [int(s) for s in values["dilation"].value]
        padding = values["padding"].value
        if isinstance(padding, str):
            if padding != "valid":
                self.fail(f"padding='{padding}' (a causal conv pads (k-1)*d zeros on the left)")
            padding = [0]
        padding = [int(p) for p in padding]
        if name == "convolution" and (
            values["transposed"].value or any(int(p) for p in values["output_padding"].value)
        ):
            self.fail("a transposed convolution")
        if stride != [1] or int(values["groups"].value) != 1:
            self.fail(f"stride {stride[0]} / groups {int(values['groups'].value)} (only stride 1, groups 1)")
        k, d = int(weight.shape[2]), dilation[0]
        span = (k - 1) * d
        left, right = x.pad + padding[0], padding[0]
        if left != span or right not in (0, span):
            self.fail(
                f"left pad {left} and right pad {right} (a causal conv pads (k-1)*d = {span} zeros on the left "
                "only, or on both sides with the extra outputs cut)"
            )
        out = int(weight.shape[0])
        params = {"weight": weight.permute(0, 2, 1).reshape(out, -1).contiguous()}  # column tap * in + c
        bias = None if b.value is None else torch.as_tensor(b.value).float()
        if bias is not None:
            params["bias"] = bias
        depth = self.push(
            replace(x, pad=0), StageSpec("conv", out, kernel=k, dilation=d, bias=bias is not None), params
        )
        return Data(("N", "C", "T"), depth, extra=right)

    def layer_norm(self, x: Data, values: dict, first) -> Data:
        self.features_last(x, "a layer norm")
        c = self.width(first, x)
        if [int(s) for s in values["normalized_shape"].value] != [c]:
            self.fail("a layer norm over more than the features")
        g, b = values["weight"], values["bias"]
        gamma = torch.ones(c) if g.value is None else torch.as_tensor(g.value).float()
        beta = torch.zeros(c) if b.value is None else torch.as_tensor(b.value).float()
        eps = float(values["eps"].value)
        depth = self.push(x, StageSpec("layernorm", eps=eps), {"weight": gamma, "bias": beta})
        return replace(x, depth=depth)

    def pool(self, name: str, x: Data, values: dict, first) -> Data:
        rank = len(x.labels)
        dims = values["dim"].value
        dims = [dims] if isinstance(dims, int) else list(dims or [])
        dims = [int(d) % rank for d in dims]
        if [x.labels[d] for d in dims] != ["T"]:
            self.fail("a reduction over an axis other than time (only mean/max over time is a pool)")
        if name == "mean" and values.get("dtype") and values["dtype"].value not in (None, torch.float32):
            self.fail("a mean in another type than float32")
        keep = bool(values["keepdim"].value)
        self.features_last(replace(x, labels=tuple(l for l in x.labels if l != "T")), "a pool")
        depth = self.push(x, StageSpec("pool", mode="mean" if name == "mean" else "max"), {})
        labels = tuple("S" if l == "T" else l for l in x.labels) if keep else tuple(l for l in x.labels if l != "T")
        y = Data(labels, depth)
        if name == "max":  # aten.max.dim returns (values, indices)
            return Tup((y, Refused("reads the indices of a max over time")))
        return y

    def scale(self, name: str, x: Data, values: dict, node) -> Data:
        """``x * a + b`` by constants per feature -> a normalize stage (merged with one right before)."""
        a, b = values["self"], values["other"]
        data_first = isinstance(a, Data)
        c = b if data_first else a
        if not isinstance(c, Const):
            self.fail("combines the data with a computed tensor")
        if "C" not in x.labels:
            self.fail("scales a value without a features axis")
        shape = _shape(node.args[0] if data_first else node.args[1])
        value = torch.as_tensor(c.value, dtype=torch.float32)
        if name in ("add", "sub", "rsub") and values.get("alpha") is not None:
            value = value * float(values["alpha"].value)
        if tuple(torch.broadcast_shapes(value.shape, shape)) != shape:
            self.fail("a constant that broadcasts the data to a larger shape")
        ci = x.labels.index("C")
        full = torch.broadcast_to(value, shape).movedim(ci, -1).reshape(-1, shape[ci])
        vec = full[0]
        if not torch.equal(full, vec.expand_as(full)):
            self.fail("a constant that varies along an axis other than the features")
        one, zero = torch.ones_like(vec), torch.zeros_like(vec)
        if name == "mul":
            s, t = vec, zero
        elif name == "div" and data_first:
            s, t = 1 / vec, zero
        elif name == "add":
            s, t = one, vec
        elif name == "sub" and data_first:
            s, t = one, -vec
        elif name == "rsub" or name == "sub":
            s, t = -one, vec
        else:
            self.fail("divides a constant by the data")
        self.check_chain(x)
        last = self.stages[-1] if self.stages else None
        if last is not None and last.kind == "dense" and last.activation == "none" and torch.equal(s, one):
            p = self.params[-1]  # a shift right after a linear map is its bias (``x @ W.T + b``)
            p["bias"] = p.get("bias", torch.zeros_like(t)) + t
            self.stages[-1] = replace(last, bias=True)
            return x
        if last is not None and last.kind == "normalize":
            p = self.params[-1]
            p["scale"], p["shift"] = p["scale"] * s, p["shift"] * s + t
            return x
        depth = self.push(x, StageSpec("normalize"), {"scale": s.clone(), "shift": t.clone()})
        return replace(x, depth=depth)

    def recurrent(self, cell: str, name: str, values: dict) -> Tup:
        x = values["input"]
        if not isinstance(x, Data):
            self.fail("a recurrent op whose input is not the data")
        batch_first = bool(values["batch_first"].value)
        want = ("N", "T", "C") if batch_first else ("T", "N", "C")
        if x.labels != want:
            self.fail(f"a recurrent op (batch_first={batch_first}) reading axes {list(x.labels)}")
        if bool(values["bidirectional"].value):
            self.fail("bidirectional (only forward: streaming runs one direction)")
        if bool(values["train"].value):
            self.fail("a recurrent op in training mode")
        hx = values["hx"]
        states = hx if isinstance(hx, (list, tuple)) else [hx]
        if not all(
            isinstance(h, Zeros) or (isinstance(h, Const) and not torch.as_tensor(h.value).any()) for h in states
        ):
            self.fail("initial states that are not zero (only zero initial states)")
        layers, has_bias = int(values["num_layers"].value), bool(values["has_biases"].value)
        params = list(values["params"])
        per = 4 if has_bias else 2
        if len(params) != per * layers:
            self.fail("LSTM with proj_size (projections are not supported)")
        if not all(isinstance(p, Const) for p in params):
            self.fail("recurrent weights computed from the data")
        act = {"rnn_relu": "relu", "rnn_tanh": "tanh"}.get(name, "none")
        depth = x.depth
        for layer in range(layers):
            ws = [torch.as_tensor(p.value).float() for p in params[per * layer : per * (layer + 1)]]
            names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"][:per]
            hidden = int(ws[1].shape[1])
            depth = self.push(
                replace(x, depth=depth), StageSpec(cell, hidden, act, bias=has_bias), dict(zip(names, ws))
            )
        k = "K" if layers > 1 else "S"
        y = Data(x.labels, depth)
        hn = Data((k, "N", "C"), depth)
        if cell == "lstm":
            return Tup((y, hn, Refused("reads the LSTM cell state c_n; only the hidden state can feed the next op")))
        return Tup((y, hn))


def capture(module: nn.Module, example: torch.Tensor) -> SequenceModel:
    """The chain of stages ``module`` computes on batch-first sequences like ``example`` (not yet compared)."""
    name = type(module).__name__
    if not isinstance(example, torch.Tensor) or example.dim() != 3 or not example.is_floating_point():
        raise ModelError(f"{name}: example_input must be a float tensor [batch, time, features]")
    x = example.detach().float()
    # Batch and time of at least 2 keep the axes apart from singletons in the captured shapes.
    x = x.repeat(2 if x.shape[0] < 2 else 1, 2 if x.shape[1] < 2 else 1, 1)
    was_training = module.training
    module.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "_flat_weights were assigned during export": harmless
            program = torch.export.export(module, (x,))
    except Exception as e:  # noqa: BLE001 - whatever torch.export raises on the user's code
        raise ModelError(f"{name}: torch.export could not capture its forward ({first_line(e)}); not adopted") from None
    finally:
        module.train(was_training)
    n, t, c = x.shape
    spec, params = Capture(program, name, {"N": int(n), "T": int(t), "C": int(c)}).run()
    model = SequenceModel(spec)
    with torch.no_grad():
        for stage, p in zip(model.stages(), params):
            for attr, value in p.items():
                target = getattr(stage, attr)
                if tuple(target.shape) != tuple(value.shape):
                    raise ModelError(
                        f"{name}: stage {stage} {attr} has shape {list(value.shape)}, expected {list(target.shape)}"
                    )
                target.copy_(value)
    return model.eval()

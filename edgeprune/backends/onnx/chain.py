"""The two ONNX graphs of an IR chain: whole sequences (``model.onnx``) and one step per call
(``model_step.onnx``), one emitter per stage kind in each.

Sequence graph: tensors move between three layouts, converted only where a stage needs it:
``bt`` [batch, time, C] (the input's), ``tb`` [time, batch, C] (what the recurrent ops and Scan
want) and ``vec`` [batch, C] (one step: after the last stateful stage of an output-``last`` model,
so later stages run once, not at every step).
"""

from __future__ import annotations

import numpy as np

from ... import ir
from .graph import Graph, stored_pattern
from .recurrent import gemm_step, op_sequence, op_step, op_weights

ACTIVATION_OPS = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "softmax": "Softmax"}


def state_layout(model: ir.Model) -> list[tuple[str, int, int]]:
    """(name, stage index, size) of every streaming state input of the step model, in order; the
    outputs are the same names + ``_next``. Recurrent ``h_{i}`` (and ``c_{i}``), conv ``conv_{i}``
    (the last (k-1)*d inputs, oldest first), pool ``pool_{i}`` and ``count_{i}``."""
    out = []
    for i, s in enumerate(model.stages):
        sizes = s.state_sizes()
        if isinstance(s, ir.Recurrent):
            out += [(f"{state}_{i}", i, s.hidden_size) for state in ir.cell_spec(s.cell).states]
        elif isinstance(s, ir.Conv1d) and sizes:
            out.append((f"conv_{i}", i, sizes[0]))
        elif isinstance(s, ir.Pool):
            out += [(f"pool_{i}", i, s.size), (f"count_{i}", i, 1)]
    return out


def _activate(g: Graph, x: str, activation: str, prefix: str) -> str:
    if activation == "none":
        return x
    attrs = {"axis": -1} if activation == "softmax" else {}
    return g.node(ACTIVATION_OPS[activation], [x], name=f"{prefix}_{activation}", **attrs)


def _dense(g: Graph, name: str, prefix: str, stage: ir.Dense, x: str, vector: bool) -> str:
    """``act(x W^T + b)`` on [N, C] (Gemm) or on a sequence of any layout (MatMul over the last axis)."""
    m = stage.weight
    if vector:
        ins = [x, g.weight(f"{name}.weight", m.to_dense(), stored_pattern(m))]
        if stage.bias is not None:
            ins.append(g.weight(f"{name}.bias", stage.bias))
        y = g.node("Gemm", ins, name=prefix, transB=1)
    else:
        y = g.node("MatMul", [x, g.weight(f"{name}.weight_t", m.to_dense().T, stored_pattern(m).T)], name=prefix)
        if stage.bias is not None:
            y = g.node("Add", [y, g.weight(f"{name}.bias", stage.bias)], name=f"{prefix}_bias")
    return _activate(g, y, stage.activation, prefix)


def _vector_stage(g: Graph, name: str, prefix: str, stage, x: str, vector: bool) -> str:
    """Stages that act on the last axis alone, in any layout."""
    if isinstance(stage, ir.Dense):
        return _dense(g, name, prefix, stage, x, vector)
    if isinstance(stage, ir.LayerNorm):
        return g.node(
            "LayerNormalization",
            [x, g.weight(f"{name}.gamma", stage.gamma), g.weight(f"{name}.beta", stage.beta)],
            name=prefix,
            axis=-1,
            epsilon=float(stage.eps),
        )
    scaled = g.node("Mul", [x, g.weight(f"{name}.scale", stage.scale)], name=f"{prefix}_scale")
    return g.node("Add", [scaled, g.weight(f"{name}.shift", stage.shift)], name=prefix)


class _Seq:
    """The current tensor of the sequence graph and its layout."""

    PERMS = {("bt", "tb"): [1, 0, 2], ("tb", "bt"): [1, 0, 2]}

    def __init__(self, g: Graph, tensor: str, layout: str):
        self.g, self.tensor, self.layout = g, tensor, layout

    def to(self, layout: str, prefix: str) -> str:
        if self.layout != layout:
            self.tensor = self.g.node(
                "Transpose", [self.tensor], name=f"{prefix}_to_{layout}", perm=self.PERMS[(self.layout, layout)]
            )
            self.layout = layout
        return self.tensor

    def last_step(self, prefix: str) -> None:
        axis = 1 if self.layout == "bt" else 0
        self.tensor = self.g.node("Gather", [self.tensor, self.g.int64s([-1])], name=f"{prefix}_last", axis=axis)
        self.tensor = self.g.node("Squeeze", [self.tensor, self.g.int64s([axis])], name=f"{prefix}_last_step")
        self.layout = "vec"


def _conv_sequence(g: Graph, name: str, prefix: str, stage: ir.Conv1d, seq: _Seq) -> None:
    """Causal Conv: [N, C, T] with (k-1)*d zeros padded on the left of time, then back to ``bt``."""
    C, k = stage.in_channels, stage.kernel
    x = g.node("Transpose", [seq.to("bt", prefix)], name=f"{prefix}_nct", perm=[0, 2, 1])
    if stage.history:
        x = g.node("Pad", [x, g.int64s([0, 0, stage.history, 0, 0, 0])], name=f"{prefix}_causal_pad")
    dense, keep = stage.weight.to_dense(), stored_pattern(stage.weight)  # columns tap * C + c
    w = g.weight(
        f"{name}.weight", dense.reshape(-1, k, C).transpose(0, 2, 1), keep.reshape(-1, k, C).transpose(0, 2, 1)
    )
    ins = [x, w] + ([g.weight(f"{name}.bias", stage.bias)] if stage.bias is not None else [])
    y = g.node("Conv", ins, name=prefix, kernel_shape=[k], dilations=[stage.dilation])
    y = _activate(g, y, stage.activation, prefix)
    seq.tensor, seq.layout = g.node("Transpose", [y], name=f"{prefix}_ntc", perm=[0, 2, 1]), "bt"


def _feedback_scan(g: Graph, model: ir.Model, names: list[str], group: list[int], seq: _Seq, per_step: bool) -> None:
    """Recurrent stages linked by top-down feedback form one joint recurrence: a Scan over time whose body
    is one step of every stage in the group (the standard ops), with their states as loop variables.
    ``per_step`` adds the top stage's state at every step as a scan output."""
    from onnx import TensorProto, helper

    from .graph import float_value

    layers = [model.stages[i] for i in group]
    state = [
        (f"{k}_{i}", i, model.stages[i].hidden_size) for i in group for k in ir.cell_spec(model.stages[i].cell).states
    ]
    batch = g.node("Shape", [seq.to("bt", f"s{group[0]}")], name=f"s{group[0]}_batch", start=0, end=1)
    zeros = {}
    for _, _, H in state:
        if H not in zeros:
            shape = g.node("Concat", [batch, g.int64s([H])], name=f"state_shape_{H}", axis=0)
            zeros[H] = g.node(
                "ConstantOfShape",
                [shape],
                name=f"zero_state_{H}",
                value=helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]),
            )
    initial = {}  # a stage's own initial state: its [H] vector expanded to [batch, H]
    for i in group:
        stage = model.stages[i]
        if stage.initial_state is not None:
            for k, v in zip(ir.cell_spec(stage.cell).states, stage.initial_state):
                shape = g.node("Concat", [batch, g.int64s([stage.hidden_size])], name=f"s{i}_s0_{k}", axis=0)
                const = g.weight(f"{names[i]}.initial_{k}", np.asarray(v, np.float32)[None])
                initial[f"{k}_{i}"] = g.node("Expand", [const, shape], name=f"s{i}_initial_{k}")
    weights = [op_weights(g, names[i], layer) for i, layer in zip(group, layers)]
    body = Graph()
    body._names = g._names  # subgraph names must not shadow outer ones
    body.initializers, body._consts = g.initializers, g._consts  # constants live in the outer graph
    b_x = body.name("body/x_t")
    b_in = {n: body.name(f"body/{n}") for n, _, _ in state}
    b_new = {n: body.name(f"body/{n}_next") for n, _, _ in state}
    inp = b_x
    for i, layer, w in zip(group, layers, weights):
        x_l = inp
        if layer.feedback_size:  # the next stage's state from t-1, as extra input columns
            x_l = body.node("Concat", [inp, b_in[f"h_{i + 1}"]], name=f"body/l{i}_with_feedback", axis=1)
        mine = {k: b_in[f"{k}_{i}"] for k in ("h", "c") if f"{k}_{i}" in b_in}
        new = {k: b_new[f"{k}_{i}"] for k in ("h", "c") if f"{k}_{i}" in b_new}
        inp = op_step(body, f"body/l{i}", layer, w, x_l, mine, new)
    outs = [b_new[n] for n, _, _ in state]
    scan_out = []
    if per_step:
        scan_out = [body.node("Identity", [inp], name="body/top_h")]
    body_graph = helper.make_graph(
        body.nodes,
        "step",
        [float_value(b_in[n], ["batch", H]) for n, _, H in state] + [float_value(b_x, ["batch", layers[0].input_size])],
        [float_value(o, ["batch", H]) for o, (_, _, H) in zip(outs, state)]
        + [float_value(s, ["batch", layers[-1].hidden_size]) for s in scan_out],
    )
    n_out = len(state) + len(scan_out)
    results = g.node(
        "Scan",
        [initial.get(n, zeros[H]) for n, _, H in state] + [seq.tensor],
        n_out,
        name=f"s{group[0]}_over_time",
        body=body_graph,
        num_scan_inputs=1,
        scan_input_axes=[1],
    )
    results = results if n_out > 1 else [results]
    if per_step:
        seq.tensor, seq.layout = results[-1], "tb"
    else:
        top = model.stages[group[-1]]
        seq.tensor = results[[n for n, _, _ in state].index(f"{top.output_state}_{group[-1]}")]
        seq.layout = "vec"


def sequence_graph(model: ir.Model, g: Graph, x: str) -> str:
    """Emit the whole-sequence chain on ``x`` [batch, time, F]; returns [batch, C] or [batch, time, C]."""
    names = model.stage_names()
    stateful = [i for i, s in enumerate(model.stages) if s.state_sizes()]
    last_stateful = stateful[-1] if stateful else -1
    take_last = model.output == "last"
    seq = _Seq(g, x, "bt")
    if take_last and last_stateful < 0:
        seq.last_step("input")
    i = 0
    while i < len(model.stages):
        stage, name, prefix = model.stages[i], names[i], f"s{i}"
        if isinstance(stage, ir.Recurrent) and stage.feedback_size:
            group = [i]
            while model.stages[group[-1]].feedback_size:
                group.append(group[-1] + 1)
            _feedback_scan(g, model, names, group, seq, per_step=not (take_last and group[-1] == last_stateful))
            i = group[-1] + 1
            continue
        if isinstance(stage, ir.Recurrent):
            last_only = take_last and i == last_stateful
            y = op_sequence(g, prefix, stage, seq.to("tb", prefix), op_weights(g, name, stage), last_only, name)
            seq.tensor = g.node("Squeeze", [y, g.int64s([0])], name=f"{prefix}_last") if last_only else y
            seq.layout = "vec" if last_only else "tb"
        elif isinstance(stage, ir.Conv1d):
            _conv_sequence(g, name, prefix, stage, seq)
            if take_last and i == last_stateful:
                seq.last_step(prefix)
        elif isinstance(stage, ir.Pool):  # valid only with output last: pool the whole sequence
            axis = 1 if seq.layout == "bt" else 0
            op = "ReduceMean" if stage.mode == "mean" else "ReduceMax"
            if g.opset >= 18:  # axes became an input in opset 18
                seq.tensor = g.node(op, [seq.tensor, g.int64s([axis])], name=prefix, keepdims=0)
            else:
                seq.tensor = g.node(op, [seq.tensor], name=prefix, keepdims=0, axes=[axis])
            seq.layout = "vec"
        else:
            seq.tensor = _vector_stage(g, name, prefix, stage, seq.tensor, seq.layout == "vec")
        i += 1
    return seq.tensor if take_last else seq.to("bt", "output")


def step_graph(model: ir.Model, g: Graph, x_t: str, states: dict[str, str], new: dict[str, str]) -> str:
    """Emit one step of every stage on ``x_t`` [batch, F] with the state inputs ``states``; the new states
    go to the names in ``new``. Returns the output [batch, C]."""
    names = model.stage_names()
    x = x_t
    for i, stage in enumerate(model.stages):
        name, prefix = names[i], f"s{i}"
        if isinstance(stage, ir.Recurrent):
            mine = {k: states[f"{k}_{i}"] for k in ("h", "c") if f"{k}_{i}" in states}
            out = {k: new[f"{k}_{i}"] for k in ("h", "c") if f"{k}_{i}" in new}
            feedback = states[f"h_{i + 1}"] if stage.feedback_size else None
            x = gemm_step(g, name, prefix, stage, x, mine, feedback, out)
            if stage.output_state != "h":  # the final stage's other state (LSTM c) is the output
                x = out[stage.output_state]
        elif isinstance(stage, ir.Conv1d):
            x = _conv_step(g, name, prefix, stage, x, states, new, i)
        elif isinstance(stage, ir.Pool):
            count = g.node(
                "Add",
                [states[f"count_{i}"], g.weight(f"{name}.one", np.ones(1, np.float32))],
                outputs=[new[f"count_{i}"]],
                name=f"{prefix}_count",
            )
            if stage.mode == "mean":
                acc = g.node("Add", [states[f"pool_{i}"], x], outputs=[new[f"pool_{i}"]], name=f"{prefix}_sum")
                x = g.node("Div", [acc, count], name=prefix)
            else:
                seen = g.node(
                    "Greater",
                    [states[f"count_{i}"], g.weight(f"{name}.zero", np.zeros(1, np.float32))],
                    name=f"{prefix}_seen",
                )
                larger = g.node("Max", [states[f"pool_{i}"], x], name=f"{prefix}_max")
                x = g.node("Where", [seen, larger, x], outputs=[new[f"pool_{i}"]], name=prefix)
        else:
            x = _vector_stage(g, name, prefix, stage, x, True)
    return x


def _conv_step(g: Graph, name: str, prefix: str, stage: ir.Conv1d, x: str, states, new, i: int) -> str:
    """The window [past (k-1)*d inputs ; x_t], its k taps gathered, one Gemm; the state drops the oldest."""
    C, d = stage.in_channels, stage.dilation
    window = x
    if stage.history:
        window = g.node("Concat", [states[f"conv_{i}"], x], name=f"{prefix}_window", axis=1)
        g.node(
            "Slice",
            [window, g.int64s([C]), g.int64s([(stage.history + 1) * C]), g.int64s([1])],
            outputs=[new[f"conv_{i}"]],
            name=f"{prefix}_shift",
        )
    taps = np.array([tap * d * C + c for tap in range(stage.kernel) for c in range(C)], np.int64)
    if stage.history:
        window = g.node("Gather", [window, g.int64s(taps)], name=f"{prefix}_taps", axis=1)
    ins = [window, g.weight(f"{name}.weight", stage.weight.to_dense(), stored_pattern(stage.weight))]
    if stage.bias is not None:
        ins.append(g.weight(f"{name}.bias", stage.bias))
    return _activate(g, g.node("Gemm", ins, name=prefix, transB=1), stage.activation, prefix)

"""Recurrent stages in ONNX: the standard ``LSTM``/``GRU``/``RNN`` ops (sequence model) and one step of
the IR's own computation (step model, Scan bodies of feedback groups).

Weights map from the IR's fused gate matrix over ``[x ; h ; feedback]`` to ONNX's ``W`` (input and
feedback columns: feedback enters the op as extra input columns), ``R`` (state columns) and
``B = [Wb ; Rb]`` (omitted for a bias-free stage), with the gate rows reordered (LSTM IR i,f,g,o ->
ONNX i,o,f,c; GRU IR r,z,n_x,n_h -> ONNX z,r,h, the same for both ``linear_before_reset``), all from the
cell table (``ir.cells``). A cell variant's attributes and ``P`` go on the op; its step model runs
``ir.cells.cell_update`` in ONNX ops (``_variant_step``).
"""

from __future__ import annotations

import numpy as np

from ... import ir
from .graph import Graph, stored_pattern


def onnx_tensors(layer: ir.Recurrent) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``W`` [1, G*H, I+F], ``R`` [1, G*H, H] as (values, kept pattern) and ``B`` [1, 2*G*H] (pattern all
    true; absent for a bias-free layer).

    The kept pattern is the IR's stored pattern (the mask), so a surviving weight that happens to
    be zero is still stored by a sparse initializer.
    """
    H = layer.hidden_size
    values, keep = layer.weight.to_dense(), stored_pattern(layer.weight)
    cols = layer.column_slices()
    input_cols = np.r_[cols["input"], cols["feedback"]]  # feedback joins the op's input side
    state_cols = np.arange(cols["state"].start, cols["state"].stop)

    # ONNX gate q reads IR block ir_block(q, side) on each side; a gate whose state half is its own IR
    # block (GRU n_h) keeps that bias in Rb, every other bias is already summed into Wb (Rb zero).
    spec = ir.cell_spec(layer.cell)
    w_blocks = [spec.ir_block(q, "input") for q in spec.onnx_gates]
    r_blocks = [spec.ir_block(q, "state") for q in spec.onnx_gates]
    w_rows, r_rows = ir.cells.block_rows(w_blocks, H), ir.cells.block_rows(r_blocks, H)
    bias = layer.bias_or_zeros().astype(np.float32)
    recurrent_bias = [
        bias[ir.cells.block_rows([r], H)] if r != w else np.zeros(H, np.float32) for w, r in zip(w_blocks, r_blocks)
    ]
    b = np.concatenate([bias[w_rows], *recurrent_bias])
    W = (values[np.ix_(w_rows, input_cols)], keep[np.ix_(w_rows, input_cols)])
    R = (values[np.ix_(r_rows, state_cols)], keep[np.ix_(r_rows, state_cols)])
    out = {"W": (W[0][None], W[1][None]), "R": (R[0][None], R[1][None])}
    if layer.bias is not None:
        out["B"] = (b[None], np.ones((1, b.size), bool))
    return out


def op_attrs(layer: ir.Recurrent) -> dict:
    attrs = {"hidden_size": layer.hidden_size}
    if layer.cell == "gru":
        # torch's GRU (the IR's default): r multiplies (R h + Rb); lbr=0 applies r to h before R
        attrs["linear_before_reset"] = int(layer.linear_before_reset)
    if layer.cell == "rnn" and layer.activation != "tanh":
        attrs["activations"] = ["Relu"]
    if layer.activations is not None:
        attrs.update(ir.cells.onnx_activation_attrs(layer.activations))
    if layer.clip is not None:
        attrs["clip"] = float(layer.clip)
    if layer.input_forget:
        attrs["input_forget"] = 1
    return attrs


def op_weights(g: Graph, name: str, layer: ir.Recurrent) -> dict[str, str]:
    out = {k: g.weight(f"{name}.{k}", v, keep if k != "B" else None) for k, (v, keep) in onnx_tensors(layer).items()}
    if layer.peephole is not None:  # P [1, 3H] in ONNX's order i, o, f: the IR stores it so
        out["P"] = g.weight(f"{name}.P", layer.peephole[None])
    return out


def op_inputs(seq: str, weights: dict[str, str], h: str = "", c: str = "") -> list[str]:
    """X, W, R, B, sequence_lens, initial_h, initial_c, P: empty inputs after B dropped."""
    ins = [seq, weights["W"], weights["R"], weights.get("B", ""), "", h, c, weights.get("P", "")]
    while len(ins) > 4 and ins[-1] == "":
        ins.pop()
    return ins


def op_sequence(g: Graph, prefix: str, layer: ir.Recurrent, seq: str, weights: dict[str, str], last_only: bool) -> str:
    """The op over a time-major sequence [T, N, I]: every step's state [T, N, H] or, when ``last_only``,
    the final state as a one-step sequence [1, N, H]."""
    op, attrs = ir.cell_spec(layer.cell).onnx_op, op_attrs(layer)
    ins = op_inputs(seq, weights)
    if last_only:  # only the final state Y_h [num_directions=1, N, H]: already a one-step sequence
        y_h = g.name(f"{prefix}_Y_h")
        g.node(op, ins, outputs=["", y_h], name=f"{prefix}_{layer.cell}", **attrs)
        return y_h
    y = g.name(f"{prefix}_Y")  # [T, num_directions=1, N, H]
    g.node(op, ins, outputs=[y], name=f"{prefix}_{layer.cell}", **attrs)
    return g.node("Squeeze", [y, g.int64s([1])], name=f"{prefix}_sequence")


def op_step(
    g: Graph,
    prefix: str,
    layer: ir.Recurrent,
    weights: dict[str, str],
    x_l: str,
    state: dict[str, str],
    new: dict[str, str],
) -> str:
    """One step with the standard op (the Scan body of feedback groups, which the importer reads back)."""
    ax0 = g.int64s([0])
    seq = g.node("Unsqueeze", [x_l, ax0], name=f"{prefix}_x")
    h = g.node("Unsqueeze", [state["h"], ax0], name=f"{prefix}_h")
    c = g.node("Unsqueeze", [state["c"], ax0], name=f"{prefix}_c") if layer.cell == "lstm" else ""
    ins = op_inputs(seq, weights, h, c)
    attrs = op_attrs(layer)
    if layer.cell == "lstm":
        yh, yc = g.name(f"{prefix}_lstm_Y_h"), g.name(f"{prefix}_lstm_Y_c")
        g.node("LSTM", ins, outputs=["", yh, yc], name=f"{prefix}_lstm", **attrs)
        g.node("Squeeze", [yc, ax0], outputs=[new["c"]], name=f"{prefix}_c_next")
    else:
        yh = g.name(f"{prefix}_{layer.cell}_Y_h")
        g.node(ir.cell_spec(layer.cell).onnx_op, ins, outputs=["", yh], name=f"{prefix}_{layer.cell}", **attrs)
    return g.node("Squeeze", [yh, ax0], outputs=[new["h"]], name=f"{prefix}_h_next")


def gemm_step(
    g: Graph,
    name: str,
    prefix: str,
    layer: ir.Recurrent,
    x_l: str,
    state: dict[str, str],
    feedback: str | None,
    new: dict[str, str],
) -> str:
    """One step as the IR computes it: one Gemm of the fused matrix over ``[x ; h ; feedback]``, then the
    gate nonlinearities. Fewer instructions per call than a recurrent op run for one step
    (docs/exports.md), and only ops every ONNX runtime has."""
    H = layer.hidden_size
    z = g.node("Concat", [x_l, state["h"]] + ([feedback] if feedback else []), name=f"{prefix}_z", axis=1)
    if not layer.default_cell:
        return _variant_step(g, name, prefix, layer, z, state, new)
    W = g.weight(f"{name}.weight", layer.weight.to_dense(), stored_pattern(layer.weight))
    ins = [z, W] + ([g.weight(f"{name}.bias", layer.bias)] if layer.bias is not None else [])
    pre = g.node("Gemm", ins, name=f"{prefix}_gates", transB=1)
    h_next = new["h"]
    if layer.cell == "rnn":
        g.node("Relu" if layer.activation == "relu" else "Tanh", [pre], outputs=[h_next], name=f"{prefix}_act")
        return h_next
    gates = g.node("Split", [pre, g.int64s([H] * 4)], 4, name=f"{prefix}_split", axis=1)
    if layer.cell == "lstm":
        i, f, c_in, o = gates
        c_next = new["c"]
        forget = g.node("Mul", [g.node("Sigmoid", [f], name=f"{prefix}_f"), state["c"]], name=f"{prefix}_fc")
        write = g.node(
            "Mul",
            [g.node("Sigmoid", [i], name=f"{prefix}_i"), g.node("Tanh", [c_in], name=f"{prefix}_g")],
            name=f"{prefix}_ig",
        )
        g.node("Add", [forget, write], outputs=[c_next], name=f"{prefix}_c")
        g.node(
            "Mul",
            [g.node("Sigmoid", [o], name=f"{prefix}_o"), g.node("Tanh", [c_next], name=f"{prefix}_tanh_c")],
            outputs=[h_next],
            name=f"{prefix}_h",
        )
        return h_next
    r, zg, nx, nh = gates  # GRU: n = tanh(n_x + r * n_h); h' = n + z * (h - n)
    reset = g.node("Mul", [g.node("Sigmoid", [r], name=f"{prefix}_r"), nh], name=f"{prefix}_r_nh")
    n = g.node("Tanh", [g.node("Add", [nx, reset], name=f"{prefix}_n_pre")], name=f"{prefix}_n")
    keep_old = g.node(
        "Mul",
        [g.node("Sigmoid", [zg], name=f"{prefix}_z_gate"), g.node("Sub", [state["h"], n], name=f"{prefix}_h_minus_n")],
        name=f"{prefix}_zd",
    )
    g.node("Add", [n, keep_old], outputs=[h_next], name=f"{prefix}_h")
    return h_next


class _GraphOps:
    """``ir.cells.CellOps`` as ONNX nodes: the step model's cell of a variant (ir.cells.cell_update)."""

    NATIVE = {
        "relu": "Relu",
        "tanh": "Tanh",
        "sigmoid": "Sigmoid",
        "softsign": "Softsign",
        "softplus": "Softplus",
        "leakyrelu": "LeakyRelu",
        "thresholdedrelu": "ThresholdedRelu",
        "elu": "Elu",
        "hardsigmoid": "HardSigmoid",
    }

    def __init__(self, g: Graph, prefix: str, late):
        self.g, self.prefix, self.state_matvec = g, prefix, late

    def _node(self, op: str, ins: list[str], **attrs) -> str:
        return self.g.node(op, ins, name=f"{self.prefix}_{op.lower()}", **attrs)

    def _scalar(self, v: float) -> str:
        return self.g.weight(f"{self.prefix}.const", np.float32(v))

    def add(self, a, b):
        return self._node("Add", [a, b])

    def sub(self, a, b):
        return self._node("Sub", [a, b])

    def mul(self, a, b):
        return self._node("Mul", [a, b])

    def one_minus(self, a):
        return self._node("Sub", [self._scalar(1.0), a])

    def clip(self, a, limit: float):
        return self._node("Clip", [a, self._scalar(-limit), self._scalar(limit)])

    def vector(self, name: str, values: np.ndarray):
        return self.g.weight(f"{self.prefix}.{name}", np.asarray(values, np.float32))

    def act(self, a, act: ir.Act):
        uses_alpha, uses_beta, _, _ = ir.cells.ACTIVATION_PARAMS[act.name]
        if act.name in self.NATIVE:
            attrs = {"alpha": act.alpha} if uses_alpha else {}
            attrs.update({"beta": act.beta} if uses_beta else {})
            return self._node(self.NATIVE[act.name], [a], **attrs)
        if act.name == "affine":  # alpha * x + beta (the op left ONNX at opset 10)
            return self.add(self.mul(a, self._scalar(act.alpha)), self._scalar(act.beta))
        # scaledtanh: alpha * tanh(beta * x)
        return self.mul(self._node("Tanh", [self.mul(a, self._scalar(act.beta))]), self._scalar(act.alpha))


def _variant_step(g: Graph, name: str, prefix: str, layer: ir.Recurrent, z: str, state, new) -> str:
    """One step of a variant cell: a Gemm of the fused rows (but the late ones, ``ir.cells.late_rows``), then
    ``ir.cells.cell_update`` in ONNX ops; the late rows get their own Gemm over the gated state."""
    H, spec = layer.hidden_size, ir.cell_spec(layer.cell)
    late = ir.cells.late_rows(layer)
    main = [r for r in spec.ir_rows if r not in late]
    values, keep = layer.weight.to_dense(), stored_pattern(layer.weight)
    bias = layer.bias

    def gemm(tag: str, rows: list[str], x: str, cols=slice(None)) -> str:
        idx = ir.cells.block_rows([spec.ir_rows.index(r) for r in rows], H)
        W = g.weight(f"{name}.{tag}", values[idx][:, cols], keep[idx][:, cols])
        ins = [x, W] + ([g.weight(f"{name}.{tag}_bias", bias[idx])] if bias is not None else [])
        return g.node("Gemm", ins, name=f"{prefix}_{tag}", transB=1)

    pre = gemm("weight", main, z)
    gates = g.node("Split", [pre, g.int64s([H] * len(main))], len(main), name=f"{prefix}_split", axis=1)
    pre_by_row = dict(zip(main, gates if len(main) > 1 else [gates]))
    ops = _GraphOps(g, prefix, lambda x: gemm("weight_late", list(late), x, layer.column_slices()["state"]))
    states = ir.cells.cell_update(layer, ops, pre_by_row, tuple(state[k] for k in spec.states))
    for k, t in zip(spec.states, states):
        g.node("Identity", [t], outputs=[new[k]], name=f"{prefix}_{k}_next")
    return new["h"]

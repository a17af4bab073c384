"""Recurrent stages in ONNX: the standard ``LSTM``/``GRU``/``RNN`` ops (sequence model) and one step of
the IR's own computation (step model, Scan bodies of feedback groups).

Weights map from the IR's fused gate matrix over ``[x ; h ; feedback]`` to ONNX's ``W`` (input and
feedback columns: feedback enters the op as extra input columns), ``R`` (state columns) and
``B = [Wb ; Rb]`` (omitted for a bias-free stage), with the gate rows reordered (LSTM IR i,f,g,o ->
ONNX i,o,f,c; GRU IR r,z,n_x,n_h -> ONNX z,r,h with ``linear_before_reset=1``), all from the cell table (``ir.cells``).
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


def op_weights(g: Graph, name: str, layer: ir.Recurrent) -> dict[str, str]:
    return {k: g.weight(f"{name}.{k}", v, keep if k != "B" else None) for k, (v, keep) in onnx_tensors(layer).items()}


def op_attrs(layer: ir.Recurrent) -> dict:
    attrs = {"hidden_size": layer.hidden_size}
    if layer.cell == "gru":
        attrs["linear_before_reset"] = 1  # the IR's (and torch's) GRU: r multiplies (R h + Rb)
    if layer.cell == "rnn" and layer.activation != "tanh":
        attrs["activations"] = ["Relu"]
    return attrs


def op_inputs(seq: str, weights: dict[str, str]) -> list[str]:
    return [seq, weights["W"], weights["R"], weights.get("B", "")]


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
    ins = op_inputs(seq, weights) + ["", g.node("Unsqueeze", [state["h"], ax0], name=f"{prefix}_h")]
    attrs = op_attrs(layer)
    if layer.cell == "lstm":
        ins.append(g.node("Unsqueeze", [state["c"], ax0], name=f"{prefix}_c"))
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

"""A recurrence tf2onnx writes as a ``Loop`` (Keras SimpleRNN and GRU, which its rewriters miss) read as the
ONNX ``RNN``/``GRU`` op it computes, before the interpreter walks the graph.

The loops Keras's recurrent layers become have one shape: the body reads step ``t`` of an outer
time-major tensor (``Gather(X, t)``), multiplies it by a constant kernel [F, g*H], the state by a constant
recurrent kernel [H, g*H], adds a constant bias ([g*H]; GRU reset_after=True: [2, g*H]) and writes the
new state as the one scan output (every step's state, [T, N, H]). The weights are loop-carried constants;
``g`` says the cell: 1 SimpleRNN (Tanh or Relu, from the body), 3 GRU (gate order z, r, h, as ONNX's;
a 1-D bias is reset_after=False = ``linear_before_reset=0``, a 2-D one reset_after=True). Such a Loop is
replaced by the op (with the loop's initial state as ``initial_h``, so the interpreter's zero-state rule
applies) and a Squeeze of its outputs under the Loop's output names. Only the structure is matched here,
not every op of the body: the import is compared with the ORIGINAL file run in onnxruntime afterwards
(``source.check_against_source``), so a loop that matches but computes something else (another
activation, a custom cell) is refused there, never adopted. Anything else is left alone (and refused
by the interpreter as an unsupported ``Loop``, saying why).
"""

from __future__ import annotations

import numpy as np


def _resolve(name: str, producers: dict) -> str:
    """Follow Identity nodes back to the value they pass on."""
    seen = set()
    while name in producers and producers[name].op_type == "Identity" and name not in seen:
        seen.add(name)
        name = producers[name].input[0]
    return name


def _as_recurrent_op(node, consts: dict, used: set, opset: int):
    """(nodes, initializers) replacing ``node``, or None when it is not a Keras recurrence."""
    from onnx import helper, numpy_helper

    body = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "body"), None)
    if body is None:
        return None
    carried = len(node.input) - 2
    if carried < 1 or len(body.input) != carried + 2 or len(body.output) != carried + 2:  # exactly one scan output
        return None
    producers = {o: n for n in body.node for o in n.output}
    body_inputs = [i.name for i in body.input]
    new_h = _resolve(body.output[carried + 1].name, producers)
    slots = [k for k in range(carried) if _resolve(body.output[1 + k].name, producers) == new_h]
    if len(slots) != 1:
        return None
    h_slot = slots[0]
    gathers = [
        n
        for n in body.node
        if n.op_type == "Gather"
        and n.input[0] not in producers
        and n.input[0] not in body_inputs
        and n.input[1] in body_inputs[2:]
        and all(a.name != "axis" or helper.get_attribute_value(a) == 0 for a in n.attribute)
    ]
    if len(gathers) != 1:
        return None
    x_seq, x_t = gathers[0].input[0], gathers[0].output[0]
    weights = {k: np.asarray(consts[node.input[2 + k]]) for k in range(carried) if node.input[2 + k] in consts}
    weights = {k: w for k, w in weights.items() if w.ndim in (1, 2) and w.size > 1}
    reads_x = {
        k
        for k in weights
        if any(n.op_type == "MatMul" and n.input[0] == x_t and n.input[1] == body_inputs[2 + k] for n in body.node)
    }
    h_prev = body_inputs[2 + h_slot]

    def feeds_state_matmul(name: str) -> bool:
        """Is ``name`` (or a Slice of it) multiplied with the previous state?"""
        sliced = {name} | {n.output[0] for n in body.node if n.op_type == "Slice" and n.input[0] == name}
        return any(n.op_type == "MatMul" and n.input[0] == h_prev and n.input[1] in sliced for n in body.node)

    recurrent_slots = [k for k, w in weights.items() if w.ndim == 2 and feeds_state_matmul(body_inputs[2 + k])]
    if len(reads_x) != 1 or len(recurrent_slots) != 1 or len(weights) != 3:
        return None
    kernel, R = weights[reads_x.pop()], weights[recurrent_slots[0]]
    bias = next(w for k, w in weights.items() if k not in recurrent_slots and w is not kernel)
    cols = kernel.shape[1]
    if R.shape[1] != cols or bias.shape[-1] != cols:
        return None
    H = R.shape[0]
    if cols % H or bias.ndim == 2 and bias.shape[0] != 2:
        return None
    gates = cols // H
    ops = {n.op_type for n in body.node}
    if gates == 1:
        act = "Relu" if "Relu" in ops and "Tanh" not in ops else "Tanh"
        op, attrs = "RNN", {"activations": [act]}
    elif gates == 3:
        op, attrs = "GRU", {"linear_before_reset": 1 if bias.ndim == 2 else 0}
    else:
        return None
    scan_out, h_out = node.output[carried], node.output[h_slot]
    if any(o in used for i, o in enumerate(node.output) if i not in (carried, h_slot)):
        return None  # the loop counter or the weights are read after the loop: not a plain recurrence
    B = np.concatenate([bias, np.zeros_like(bias)]) if bias.ndim == 1 else bias.reshape(-1)
    p = (node.name or node.output[0]) + "/as_op"
    inits = [
        numpy_helper.from_array(np.ascontiguousarray(kernel.T[None], np.float32), p + "/W"),
        numpy_helper.from_array(np.ascontiguousarray(R.T[None], np.float32), p + "/R"),
        numpy_helper.from_array(np.ascontiguousarray(B[None], np.float32), p + "/B"),
    ]

    def squeeze(x, y, axis, name):
        if opset >= 13:
            inits.append(numpy_helper.from_array(np.array([axis], np.int64), f"{name}/axes"))
            return helper.make_node(op_type, [x, f"{name}/axes"], [y], name=name)
        return helper.make_node(op_type, [x], [y], name=name, axes=[axis])

    op_type = "Unsqueeze"
    nodes = [squeeze(node.input[2 + h_slot], p + "/initial_h", 0, p + "/initial_h")]
    nodes.append(
        helper.make_node(
            op,
            [x_seq, p + "/W", p + "/R", p + "/B", "", p + "/initial_h"],
            [p + "/Y", p + "/Y_h"],
            name=node.name,
            hidden_size=H,
            **attrs,
        )
    )
    op_type = "Squeeze"
    nodes.append(squeeze(p + "/Y", scan_out, 1, p + "/Y_squeeze"))
    if h_out in used:
        nodes.append(squeeze(p + "/Y_h", h_out, 0, p + "/Y_h_squeeze"))
    return nodes, inits


def read_recurrent_loops(proto):
    """``proto`` with every Keras recurrence ``Loop`` replaced by its RNN/GRU op (a copy), or ``proto``."""
    import onnx
    from onnx import numpy_helper

    g = proto.graph
    if not any(n.op_type == "Loop" for n in g.node):
        return proto
    consts = {}
    for t in g.initializer:
        try:
            consts[t.name] = numpy_helper.to_array(t)
        except Exception:  # noqa: BLE001 - a damaged initializer: the interpreter reports it
            continue
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    nodes, inits, changed = [], [], False
    for node in g.node:
        found = None
        if node.op_type == "Loop":
            try:
                found = _as_recurrent_op(node, consts, used, opset)
            except (ValueError, IndexError, KeyError, TypeError):  # an odd loop: left for the interpreter
                found = None
        if found is None:
            nodes.append(node)
            continue
        nodes += found[0]
        inits += found[1]
        changed = True
    if not changed:
        return proto
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    out.graph.initializer.extend(inits)
    return out

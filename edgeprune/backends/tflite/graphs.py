"""The ``tflite`` target's graphs: one emitter per IR stage kind, and the three models built from them
(the streaming step model, the unrolled sequence model, the dense TFLite Micro model) plus a single
linear layer for measuring kernels. Which op each stage becomes: docs/tflite.md."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import ir
from .cells import variant_recurrent
from .flatbuffer import FORMAT, Graph, schema
from .ops import _Prepared, _Writer
from .weights import DENSE_FC_VERSION, Weight, encode_weight

__all__ = [
    "STAGE_KINDS",
    "_Prepared",
    "_VersionedWeight",
    "_Writer",
    "build_linear_model",
    "build_micro_model",
    "build_sequence_model",
    "build_step_model",
    "micro_uses_sequence_lstm",
    "prepare",
    "state_layout",
]


# The stage kinds the emitters below handle; the backend declines any other (docs/architecture.md,
# "Adding a stage kind").
STAGE_KINDS = (ir.Dense, ir.Conv1d, ir.Recurrent, ir.LayerNorm, ir.Normalize, ir.Pool)


def _emitted_rows(layer: ir.Recurrent) -> np.ndarray:
    """Row order of the emitted matrix: the cell table's ``tflite_rows`` (LSTM [i, f, o, g], so one
    LOGISTIC covers i, f, o); a variant cell's in IR order without its late rows (cells.py)."""
    spec = ir.cell_spec(layer.cell)
    if not layer.default_cell:
        rows = tuple(r for r in spec.ir_rows if r not in ir.cells.late_rows(layer))
        return ir.cells.block_rows(ir.cells.block_order(spec.ir_rows, rows), layer.hidden_size)
    return ir.cells.block_rows(ir.cells.block_order(spec.ir_rows, spec.tflite_rows), layer.hidden_size)


def _late(name: str, stage: ir.Recurrent, dtype: str, mode: str) -> _Prepared | None:
    """A variant's late rows over the state columns only (GRU lbr=0: n_h, applied to r * h)."""
    late = ir.cells.late_rows(stage)
    if not late:
        return None
    spec, H = ir.cell_spec(stage.cell), stage.hidden_size
    rows = ir.cells.block_rows([spec.ir_rows.index(r) for r in late], H)
    m = ir.CSR.from_scipy(stage.weight.to_scipy()[rows][:, stage.column_slices()["state"]])
    bias = None if stage.bias is None else stage.bias[rows]
    return _Prepared(encode_weight(f"{name}.weight_late", m, (H,), dtype, mode), bias)


def prepare(model: ir.Model, dtype: str, mode: str) -> list[_Prepared | None]:
    """Per stage, its FC weight as stored (None for stages without a matrix). Column parts: a recurrent
    layer's [x ; h ; feedback], a conv's k taps (oldest first), a dense stage's input."""
    out: list[_Prepared | None] = []
    for name, stage in model.named_stages():
        if isinstance(stage, ir.Recurrent):
            order = _emitted_rows(stage)
            m = ir.CSR.from_scipy(stage.weight.to_scipy()[order])
            parts = tuple(p for p in (stage.input_size, stage.hidden_size, stage.feedback_size) if p)
            bias = None if stage.bias is None else stage.bias[order]
            late = _late(name, stage, dtype, mode)
            out.append(_Prepared(encode_weight(f"{name}.weight", m, parts, dtype, mode), bias, late))
        elif isinstance(stage, (ir.Dense, ir.Conv1d)):
            parts = (stage.in_channels,) * stage.kernel if isinstance(stage, ir.Conv1d) else (stage.input_size,)
            out.append(_Prepared(encode_weight(f"{name}.weight", stage.weight, parts, dtype, mode), stage.bias))
        else:
            out.append(None)
    return out


def state_layout(model: ir.Model) -> list[tuple[str, int, int]]:
    """(name, stage index, width) of every state input of the step model, in order; outputs are the same
    names + ``_next``. Recurrent ``h{i}`` (and ``c{i}``), conv ``conv{i}`` (the last (k-1)*d inputs, oldest
    first), pool ``pool{i}`` (running sum or max) and ``count{i}`` (steps seen); ``i`` is the stage index,
    so a v1 model keeps its v1 names (h0, c0, h1, ...)."""
    out = []
    for i, s in enumerate(model.stages):
        if isinstance(s, ir.Recurrent):
            out += [(f"{state}{i}", i, s.hidden_size) for state in ir.cell_spec(s.cell).states]
        elif isinstance(s, ir.Conv1d) and s.history:
            out.append((f"conv{i}", i, s.history * s.in_channels))
        elif isinstance(s, ir.Pool):
            out += [(f"pool{i}", i, s.size), (f"count{i}", i, 1)]
    return out


class _Stages(_Writer):
    """The per-stage emitters, shared by the step and the sequence model."""

    def recurrent(
        self,
        layer: ir.Recurrent,
        prepared: _Prepared,
        x: int,
        state: tuple[int, ...] | None,
        feedback: int | None,
        tag: str,
    ) -> tuple[int, ...]:
        """New state of ``layer``; ``state``/``feedback`` None mean zeros (the first step)."""
        if not layer.default_cell:
            return variant_recurrent(self, layer, prepared, x, state, feedback, tag)
        H = layer.hidden_size
        pieces = [x, None if state is None else state[0]] + ([feedback] if layer.feedback_size else [])
        pre = self.fully_connected_over(pieces, prepared, f"{tag}/pre")
        if layer.cell == "rnn":
            return (self.unary("RELU" if layer.activation == "relu" else "TANH", pre, f"{tag}/h"),)
        if layer.cell == "lstm":  # rows [i, f, o, g]
            sig_in, g_in = self.split(pre, [3 * H, H], f"{tag}/gates")
            i, f, o = self.split(self.unary("LOGISTIC", sig_in, f"{tag}/sigmoid"), [H, H, H], f"{tag}/ifo")
            ig = self.binary("MUL", i, self.unary("TANH", g_in, f"{tag}/g"), f"{tag}/ig")
            c = (
                ig
                if state is None
                else self.binary("ADD", self.binary("MUL", f, state[1], f"{tag}/fc"), ig, f"{tag}/c")
            )
            h = self.binary("MUL", o, self.unary("TANH", c, f"{tag}/tanh_c"), f"{tag}/h")
            return (h, c)
        # gru, rows [r, z, n_x, n_h]: n = tanh(n_x + r n_h); h = n + z (h_prev - n)
        rz_in, nx, nh = self.split(pre, [2 * H, H, H], f"{tag}/gates")
        r, zg = self.split(self.unary("LOGISTIC", rz_in, f"{tag}/sigmoid"), [H, H], f"{tag}/rz")
        n = self.unary(
            "TANH", self.binary("ADD", nx, self.binary("MUL", r, nh, f"{tag}/rnh"), f"{tag}/n_in"), f"{tag}/n"
        )
        if state is None:
            h = self.binary("SUB", n, self.binary("MUL", zg, n, f"{tag}/zn"), f"{tag}/h")
        else:
            h = self.binary(
                "ADD", n, self.binary("MUL", zg, self.binary("SUB", state[0], n, f"{tag}/hn"), f"{tag}/zhn"), f"{tag}/h"
            )
        return (h,)

    def conv(self, stage: ir.Conv1d, prepared: _Prepared, taps: list[int | None], tag: str) -> int:
        """One FC over the k taps [x_{t-(k-1)d} ; ... ; x_t] (None = before the sequence start: zeros)."""
        y = self.fully_connected_over(taps, prepared, tag)
        return self.activate(y, stage.activation, f"{tag}/{stage.activation}")

    def stateless(self, name: str, stage, prepared: _Prepared | None, x: int, tag: str) -> int:
        if isinstance(stage, ir.Dense):
            return self.activate(self.fully_connected(x, prepared, tag), stage.activation, f"{tag}/{stage.activation}")
        if isinstance(stage, ir.Normalize):
            scaled = self.binary("MUL", x, self.const(f"{name}.scale", stage.scale.astype(np.float32)), f"{tag}/scaled")
            return self.binary("ADD", scaled, self.const(f"{name}.shift", stage.shift.astype(np.float32)), tag)
        assert isinstance(stage, ir.LayerNorm), stage
        centred = self.binary("SUB", x, self.mean_columns(x, f"{tag}/mean"), f"{tag}/centred")
        var = self.mean_columns(self.binary("MUL", centred, centred, f"{tag}/sq"), f"{tag}/var")
        eps = self.const(f"{name}.eps", np.full(1, stage.eps, np.float32))
        inv = self.unary("RSQRT", self.binary("ADD", var, eps, f"{tag}/var_eps"), f"{tag}/inv_std")
        scaled = self.binary(
            "MUL",
            self.binary("MUL", centred, inv, f"{tag}/normed"),
            self.const(f"{name}.gamma", stage.gamma.astype(np.float32)),
            f"{tag}/scaled",
        )
        return self.binary("ADD", scaled, self.const(f"{name}.beta", stage.beta.astype(np.float32)), tag)


def _metadata(kind: str, model: ir.Model, steps: int | None, batch, inputs, outputs, weights, dtype: str) -> dict:
    cells = [s.cell for s in model.stages if isinstance(s, ir.Recurrent)]
    return {
        "format": FORMAT,
        "version": 2,
        "kind": kind,
        "steps": steps,
        "batch": batch,
        "dtype": dtype,
        "output": model.output,
        "task": model.task,
        "cell": cells[0] if cells else None,
        "stages": [s.kind for s in model.stages],
        "inputs": list(inputs),
        "outputs": list(outputs),
        "state": [n for n, _, _ in state_layout(model)] if kind == "step" else [],
        "weights": weights,
    }


def _weights_info(prepared: list[_Prepared | None]) -> dict:
    out = {p.weight.name: p.weight.info() for p in prepared if p is not None}
    out.update({p.late.weight.name: p.late.weight.info() for p in prepared if p is not None and p.late is not None})
    return out


def build_step_model(model: ir.Model, dtype: str = "f32", mode: str = "auto") -> bytes:
    """model_step.tflite: inputs x [N, F] and every state; outputs ``logits`` (this step's output) and the
    new states (``{name}_next``)."""
    prepared = prepare(model, dtype, mode)
    g = Graph(dynamic_batch=True)
    w = _Stages(g)
    x = x_in = g.activation("x", [1, model.input_size])
    layout = state_layout(model)
    states = {n: g.activation(n, [1, width]) for n, _, width in layout}
    new: dict[str, int] = {}
    names = model.stage_names()
    for i, stage in enumerate(model.stages):
        tag, p = f"s{i}", prepared[i]
        if isinstance(stage, ir.Recurrent):
            mine = tuple(states[f"{k}{i}"] for k in ir.cell_spec(stage.cell).states)
            fb = states[f"h{i + 1}"] if stage.feedback_size else None  # the next stage's state from t-1
            out = w.recurrent(stage, p, x, mine, fb, tag)
            new.update({f"{k}{i}": t for k, t in zip(ir.cell_spec(stage.cell).states, out)})
            x = out[0]
        elif isinstance(stage, ir.Conv1d):
            C, d, taps = stage.in_channels, stage.dilation, [x]
            if stage.history:  # the window [past ; x_t] drops its oldest input for the next step
                past = states[f"conv{i}"]
                window = w.concat([past, x], f"{tag}/window")
                new[f"conv{i}"] = w.columns(window, C, stage.history * C, f"{tag}/shift")
                taps = [w.columns(past, tap * d * C, C, f"{tag}/tap{tap}") for tap in range(stage.kernel - 1)] + [x]
            x = w.conv(stage, p, taps, tag)
        elif isinstance(stage, ir.Pool):
            acc, count = states[f"pool{i}"], states[f"count{i}"]
            new[f"count{i}"] = w.binary("ADD", count, w.const("one", np.ones(1, np.float32)), f"{tag}/count")
            if stage.mode == "mean":
                new[f"pool{i}"] = w.binary("ADD", acc, x, f"{tag}/sum")
                x = w.binary("DIV", new[f"pool{i}"], new[f"count{i}"], tag)
            else:  # the first step takes x as it is (the zero state is not a value seen)
                seen = w.greater(count, w.const("zero", np.zeros(1, np.float32)), f"{tag}/seen")
                x = new[f"pool{i}"] = w.select(seen, w.binary("MAXIMUM", acc, x, f"{tag}/max"), x, tag)
        else:
            x = w.stateless(names[i], stage, p, x, tag)
    if x == x_in or x in new.values() or x in states.values():
        x = w.copy(x, "output")
    outputs = {"logits": x, **{f"{n}_next": new[n] for n, _, _ in layout}}
    meta = _metadata("step", model, None, "dynamic", ["x", *states], outputs, _weights_info(prepared), dtype)
    return g.finish({"x": x_in, **states}, outputs, meta, f"edgeprune {model.describe()}: one step per invoke")


def _unpack_steps(w: _Writer, x: int, steps: int, features: int) -> list[int]:
    g = w.g
    batch = g.shapes[x][0]
    outs = [g.activation(f"x_t{t}", [batch, features]) for t in range(steps)]
    opts = w.S.UnpackOptionsT()
    opts.num, opts.axis = steps, 1
    g.op("UNPACK", [x], outs, opts)
    return outs


def build_sequence_model(
    model: ir.Model,
    steps: int,
    dtype: str = "f32",
    mode: str = "auto",
    dynamic_batch: bool = True,
    kind: str = "sequence",
) -> bytes:
    """model.tflite: x [N, T, F] -> ``logits`` [N, C] (output last) or [N, T, C] (every), unrolled over T
    steps. With output last, the stages after the last stateful one run once, at the last step."""
    prepared = prepare(model, dtype, mode)
    g = Graph(dynamic_batch=dynamic_batch)
    w = _Stages(g)
    x_seq = g.activation("x", [1, steps, model.input_size])
    names = model.stage_names()
    stateful = [i for i, s in enumerate(model.stages) if s.state_sizes()]
    every = model.output == "every"
    state: dict[int, tuple[int, ...] | None] = {i: None for i in range(len(model.stages))}  # None: zeros
    inputs_at: dict[tuple[int, int], int] = {}  # (conv stage, step) -> its input then: the taps of later steps
    outputs = []
    for t, x in enumerate(_unpack_steps(w, x_seq, steps, model.input_size)):
        final = t == steps - 1
        upto = len(model.stages) if every or final else (stateful[-1] + 1 if stateful else 0)
        old = dict(state)
        for i in range(upto):
            stage, p, tag = model.stages[i], prepared[i], f"t{t}/s{i}"
            if isinstance(stage, ir.Recurrent):
                fb = old[i + 1][0] if stage.feedback_size and old[i + 1] is not None else None
                state[i] = w.recurrent(stage, p, x, old[i], fb, tag)
                x = state[i][0]
            elif isinstance(stage, ir.Conv1d):
                inputs_at[i, t] = x
                back = [t - (stage.kernel - 1 - tap) * stage.dilation for tap in range(stage.kernel)]
                x = w.conv(stage, p, [inputs_at[i, s] if s >= 0 else None for s in back], tag)
            elif isinstance(stage, ir.Pool):  # the running sum / max; its value is read only at the end
                op = "ADD" if stage.mode == "mean" else "MAXIMUM"
                acc = x if old[i] is None else w.binary(op, old[i][0], x, tag)
                state[i] = (acc,)
                x = acc
                if final and stage.mode == "mean":
                    x = w.binary(
                        "MUL", acc, w.const(f"{names[i]}.inv_steps", np.full(1, 1 / steps, np.float32)), f"{tag}/mean"
                    )
            else:
                x = w.stateless(names[i], stage, p, x, tag)
        if every:
            outputs.append(x)
    y = w.pack_time(outputs, "logits") if every else x
    meta = _metadata(
        kind, model, steps, "dynamic" if dynamic_batch else 1, ["x"], ["logits"], _weights_info(prepared), dtype
    )
    meta["cell_ops"] = "fully_connected"
    return g.finish(
        {"x": x_seq}, {"logits": y}, meta, f"edgeprune {model.describe()}: whole sequence of {steps} steps (unrolled)"
    )


def build_linear_model(m: ir.CSR, dtype: str = "f32", mode: str = "auto", fc_version: int | None = None) -> bytes:
    """One FULLY_CONNECTED, y [N, rows] = x [N, cols] W^T, stored as ``mode`` picks: for measuring
    kernels. ``fc_version`` overrides the op version (e.g. to reproduce the XNNPACK trap)."""
    weight = encode_weight("weight", m, (m.shape[1],), dtype, mode)
    if fc_version is not None:
        weight = _VersionedWeight(**vars(weight), forced_version=fc_version)
    g = Graph(dynamic_batch=True)
    w = _Writer(g)
    x = g.activation("x", [1, m.shape[1]])
    y = w.fully_connected(x, _Prepared(weight, np.zeros(m.shape[0], np.float32)), "y")
    meta = _metadata(
        "linear",
        ir.Model(m.shape[1], [ir.Head(m, np.zeros(m.shape[0], np.float32))]),
        None,
        "dynamic",
        ["x"],
        ["y"],
        {"weight": weight.info()},
        dtype,
    )
    return g.finish({"x": x}, {"y": y}, meta, "edgeprune: one fully connected layer")


@dataclass
class _VersionedWeight(Weight):
    forced_version: int = DENSE_FC_VERSION

    @property
    def fc_version(self) -> int:
        return self.forced_version


def micro_uses_sequence_lstm(model: ir.Model) -> bool:
    """UNIDIRECTIONAL_SEQUENCE_LSTM fits v1 models of LSTM layers without feedback (feedback crosses layers
    per step; other stages have no place in it)."""
    return (
        model.is_v1()
        and all(layer.cell == "lstm" and layer.default_cell for layer in model.layers)
        and not model.feedback
    )


def build_micro_model(model: ir.Model, steps: int) -> bytes:
    """model_dense.tflite for TFLite Micro: dense fp32, batch 1, x [1, T, F] -> logits [1, C] or [1, T, C]:
    the sequence model with dense weights, or UNIDIRECTIONAL_SEQUENCE_LSTM where it fits."""
    if not micro_uses_sequence_lstm(model):
        return build_sequence_model(model, steps, "f32", "dense", dynamic_batch=False, kind="micro")
    S = schema()
    g = Graph(dynamic_batch=False)
    w = _Writer(g)
    x = g.activation("x", [1, steps, model.input_size])
    inp, weights = x, {}
    for l, layer in enumerate(model.layers):
        H, I = layer.hidden_size, layer.input_size
        dense = layer.weight.to_dense()
        cols = layer.column_slices()
        order = ir.cell_spec("lstm").torch_gates  # the op's gate inputs are i, f, c(=g), o: torch's order
        gates = [dense[layer.gate_rows(k)] for k in order]
        tensors = [inp]
        tensors += [g.const(f"layers.{l}.weight_x.{k}", m[:, cols["input"]]) for k, m in zip(order, gates)]
        tensors += [g.const(f"layers.{l}.weight_h.{k}", m[:, cols["state"]]) for k, m in zip(order, gates)]
        tensors += [-1, -1, -1]  # no peepholes
        tensors += [g.const(f"layers.{l}.bias.{k}", layer.bias_or_zeros()[layer.gate_rows(k)]) for k in order]
        tensors += [-1, -1]  # no projection
        # The state lives in variable tensors: it persists across invokes until the interpreter resets them.
        tensors += [g.tensor(f"layers.{l}.h", [1, H], variable=True), g.tensor(f"layers.{l}.c", [1, H], variable=True)]
        tensors += [-1, -1, -1, -1]  # no layer normalisation
        out = g.activation(f"layers.{l}.out", [1, steps, H])
        opts = S.UnidirectionalSequenceLSTMOptionsT()
        opts.fusedActivationFunction, opts.timeMajor = S.ActivationFunctionType.TANH, False
        g.op("UNIDIRECTIONAL_SEQUENCE_LSTM", tensors, [out], opts)
        weights[f"layers.{l}.weight"] = {
            "encoding": "dense",
            "dtype": "f32",
            "nnz": layer.weight.nnz,
            "stored_values": 4 * H * (I + H),
            "op": "UNIDIRECTIONAL_SEQUENCE_LSTM",
        }
        inp = out
    H = model.layers[-1].hidden_size
    last = g.activation("last", [1, H])
    opts = S.StridedSliceOptionsT()
    opts.shrinkAxisMask = 2  # drop the time axis
    g.op(
        "STRIDED_SLICE",
        [
            inp,
            w._int_const("begin", [0, steps - 1, 0]),
            w._int_const("end", [1, steps, H]),
            w._int_const("strides", [1, 1, 1]),
        ],
        [last],
        opts,
    )
    head = _Prepared(encode_weight("head.weight", model.head.weight, (H,), "f32", "dense"), model.head.bias)
    logits = w.fully_connected(last, head, "logits")
    weights["head.weight"] = head.weight.info()
    meta = _metadata("micro", model, steps, 1, ["x"], ["logits"], weights, "f32")
    meta["cell_ops"] = "unidirectional_sequence_lstm"
    return g.finish(
        {"x": x}, {"logits": logits}, meta, f"edgeprune {model.describe()}: TFLite Micro, dense, {steps} steps"
    )

"""The ``tflite`` target's graphs: the recurrent cell built from FULLY_CONNECTED and elementwise ops,
the step model, the unrolled sequence model, a single linear layer and the TFLite Micro model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import ir
from .flatbuffer import FORMAT, Graph, schema
from .weights import DENSE_FC_VERSION, Weight, encode_weight, narrowest


@dataclass
class _Prepared:
    """A layer's matrix and bias in the row order the graph uses, with its stored weight."""

    weight: Weight
    bias: np.ndarray


def _emitted_rows(layer: ir.Layer) -> np.ndarray:
    """Row order of the emitted matrix: the cell table's ``tflite_rows`` (LSTM [i, f, o, g], so one
    LOGISTIC covers i, f, o)."""
    spec = ir.cell_spec(layer.cell)
    return ir.cells.block_rows(ir.cells.block_order(spec.ir_rows, spec.tflite_rows), layer.hidden_size)


def prepare(model: ir.Model, dtype: str, mode: str) -> tuple[list[_Prepared], _Prepared]:
    layers = []
    for l, layer in enumerate(model.layers):
        order = _emitted_rows(layer)
        m = ir.CSR.from_scipy(layer.weight.to_scipy()[order])
        parts = tuple(p for p in (layer.input_size, layer.hidden_size, layer.feedback_size) if p)
        layers.append(_Prepared(encode_weight(f"layers.{l}.weight", m, parts, dtype, mode), layer.bias_or_zeros()[order]))
    head = _Prepared(encode_weight("head.weight", model.head.weight, (model.head.weight.shape[1],), dtype, mode),
                     model.head.bias_or_zeros())
    return layers, head


class _Writer:
    """Emits the ops of a model into a ``Graph``; weights are created once and shared by every step."""

    def __init__(self, graph: Graph):
        self.g = graph
        self.S = graph.S
        self._weights: dict[str, tuple[int, int]] = {}
        self._consts: dict[tuple, int] = {}

    # ---- small helpers ----
    def _int_const(self, name: str, values) -> int:
        key = (name, tuple(np.ravel(values).tolist()), np.shape(values))
        if key not in self._consts:
            self._consts[key] = self.g.const(name, np.asarray(values, np.int32))
        return self._consts[key]

    def _same(self, name: str, like: int) -> int:
        return self.g.activation(name, self.g.shapes[like])

    def unary(self, code: str, x: int, name: str) -> int:
        out = self._same(name, x)
        self.g.op(code, [x], [out])
        return out

    def binary(self, code: str, a: int, b: int, name: str) -> int:
        out = self._same(name, a)
        options = {"ADD": self.S.AddOptionsT, "MUL": self.S.MulOptionsT, "SUB": self.S.SubOptionsT}[code]()
        self.g.op(code, [a, b], [out], options)
        return out

    def split(self, x: int, sizes: list[int], name: str) -> list[int]:
        """Split the last axis of a [batch, n] tensor."""
        batch = self.g.shapes[x][0]
        outs = [self.g.activation(f"{name}{k}", [batch, s]) for k, s in enumerate(sizes)]
        axis = self._int_const("axis1", np.int32(1))
        if len(set(sizes)) == 1:
            opts = self.S.SplitOptionsT()
            opts.numSplits = len(sizes)
            self.g.op("SPLIT", [axis, x], outs, opts)
        else:
            opts = self.S.SplitVOptionsT()
            opts.numSplits = len(sizes)
            self.g.op("SPLIT_V", [x, self._int_const("split_sizes", sizes), axis], outs, opts)
        return outs

    def concat(self, parts: list[int], name: str) -> int:
        if len(parts) == 1:
            return parts[0]
        batch = self.g.shapes[parts[0]][0]
        out = self.g.activation(name, [batch, sum(self.g.shapes[p][1] for p in parts)])
        opts = self.S.ConcatenationOptionsT()
        opts.axis = 1
        self.g.op("CONCATENATION", parts, [out], opts)
        return out

    def pad(self, x: int, right: int, name: str) -> int:
        """Zeros appended on the right of a [batch, n] tensor."""
        if right == 0:
            return x
        batch, n = self.g.shapes[x]
        out = self.g.activation(name, [batch, n + right])
        self.g.op("PAD", [x, self._int_const("pad", [[0, 0], [0, right]])], [out], self.S.PadOptionsT())
        return out

    # ---- weights and the fully connected layer ----
    def _filter(self, w: Weight) -> int:
        S, g = self.S, self.g
        shape = [w.rows, w.layout.cols]
        np_type = np.int8 if w.dtype == "int8" else np.float32
        quant = None
        if w.scales is not None:
            quant = S.QuantizationParametersT()
            quant.scale = [float(s) for s in w.scales]
            quant.zeroPoint = [0] * w.rows
            quant.quantizedDimension = 0
        if not w.sparse:
            return g.tensor(w.name, shape, np_type, data=w.values, quantization=quant)
        sparsity = S.SparsityParametersT()
        dims = [self._dim_dense(w.rows), self._dim_csr(w.segments, w.indices)]
        if w.block > 1:
            dims.append(self._dim_dense(w.block))
            sparsity.traversalOrder, sparsity.blockMap = [0, 1, 2], [1]
        else:
            sparsity.traversalOrder = [0, 1]
        sparsity.dimMetadata = dims
        stored = g.tensor(w.name + ("/sparse" if w.densify else ""), shape, np_type, data=w.values,
                          sparsity=sparsity, quantization=quant)
        if not w.densify:
            return stored
        dense = g.tensor(w.name, shape, np_type)
        g.op("DENSIFY", [stored], [dense], self.S.DensifyOptionsT())
        return dense

    def _dim_dense(self, size: int):
        d = self.S.DimensionMetadataT()
        d.format, d.denseSize = self.S.DimensionType.DENSE, int(size)
        return d

    def _dim_csr(self, segments: np.ndarray, indices: np.ndarray):
        d = self.S.DimensionMetadataT()
        d.format = self.S.DimensionType.SPARSE_CSR
        d.arraySegmentsType, d.arraySegments = self._index_vector(segments)
        d.arrayIndicesType, d.arrayIndices = self._index_vector(indices)
        return d

    def _index_vector(self, values: np.ndarray):
        """The narrowest index vector that holds ``values`` (Uint8, Uint16 or Int32)."""
        S, dtype = self.S, narrowest(values)
        kind = {"uint8": "Uint8Vector", "uint16": "Uint16Vector", "int32": "Int32Vector"}[dtype.name]
        vector = getattr(S, kind + "T")()
        vector.values = np.asarray(values).astype(dtype)
        return getattr(S.SparseIndexVector, kind), vector

    def fully_connected(self, x: int, prepared: _Prepared, name: str) -> int:
        """x [batch, n] -> [batch, rows]; ``x`` is padded to the weight's column layout if needed."""
        w = prepared.weight
        x = self.pad(x, w.layout.cols - self.g.shapes[x][1], f"{name}/in")
        # FC takes batch = x.size / cols, so a width mismatch would be silently "valid": refuse it here.
        assert self.g.shapes[x][1] == w.layout.cols, (name, self.g.shapes[x], w.layout.cols)
        if w.name not in self._weights:
            bias = self.g.const(w.name.replace("weight", "bias"), prepared.bias.astype(np.float32))
            self._weights[w.name] = (self._filter(w), bias)
        filt, bias = self._weights[w.name]
        out = self.g.activation(name, [self.g.shapes[x][0], w.rows])
        opts = self.S.FullyConnectedOptionsT()
        opts.asymmetricQuantizeInputs = w.dtype == "int8"
        self.g.op("FULLY_CONNECTED", [x, filt, bias], [out], opts, w.fc_version)
        return out

    # ---- one step of one layer ----
    def layer_step(self, layer: ir.Layer, prepared: _Prepared, x: int, state: tuple[int, ...] | None,
                   feedback: int | None, tag: str) -> tuple[int, ...]:
        """New state of ``layer``; ``state``/``feedback`` None mean zeros (the first step)."""
        H, layout = layer.hidden_size, prepared.weight.layout
        if state is None and feedback is None:  # z = [x ; 0 ; 0]: one PAD, no concatenation
            z = self.pad(x, layout.cols - layer.input_size, f"{tag}/z")
        else:
            pieces = [x, state[0]] + ([feedback] if layer.feedback_size else [])
            padded = [self.pad(t, full - width, f"{tag}/z{k}")
                      for k, (t, width, full) in enumerate(zip(pieces, layout.widths, layout.padded))]
            z = self.concat(padded, f"{tag}/z")
        pre = self.fully_connected(z, prepared, f"{tag}/pre")
        if layer.cell == "rnn":
            return (self.unary("TANH", pre, f"{tag}/h"),)
        if layer.cell == "lstm":  # rows [i, f, o, g]
            sig_in, g_in = self.split(pre, [3 * H, H], f"{tag}/gates")
            i, f, o = self.split(self.unary("LOGISTIC", sig_in, f"{tag}/sigmoid"), [H, H, H], f"{tag}/ifo")
            ig = self.binary("MUL", i, self.unary("TANH", g_in, f"{tag}/g"), f"{tag}/ig")
            c = ig if state is None else self.binary("ADD", self.binary("MUL", f, state[1], f"{tag}/fc"), ig,
                                                     f"{tag}/c")
            h = self.binary("MUL", o, self.unary("TANH", c, f"{tag}/tanh_c"), f"{tag}/h")
            return (h, c)
        # gru, rows [r, z, n_x, n_h]: n = tanh(n_x + r n_h); h = n + z (h_prev - n)
        rz_in, nx, nh = self.split(pre, [2 * H, H, H], f"{tag}/gates")
        r, zg = self.split(self.unary("LOGISTIC", rz_in, f"{tag}/sigmoid"), [H, H], f"{tag}/rz")
        n = self.unary("TANH", self.binary("ADD", nx, self.binary("MUL", r, nh, f"{tag}/rnh"), f"{tag}/n_in"),
                       f"{tag}/n")
        if state is None:
            h = self.binary("SUB", n, self.binary("MUL", zg, n, f"{tag}/zn"), f"{tag}/h")
        else:
            h = self.binary("ADD", n, self.binary("MUL", zg, self.binary("SUB", state[0], n, f"{tag}/hn"),
                                                  f"{tag}/zhn"), f"{tag}/h")
        return (h,)

    def all_layers_step(self, model: ir.Model, prepared: list[_Prepared], x: int, states, tag: str):
        """One step of every layer; ``states`` None = zeros. Feedback reads the next layer's old state."""
        new = []
        inp = x
        for l, layer in enumerate(model.layers):
            old = states[l] if states is not None else None
            fb = states[l + 1][0] if layer.feedback_size and states is not None else None
            s = self.layer_step(layer, prepared[l], inp, old, fb, f"{tag}l{l}")
            new.append(s)
            inp = s[0]
        return new


def _state_names(model: ir.Model) -> list[list[str]]:
    return [[f"{state}{l}" for state in ir.cell_spec(layer.cell).states] for l, layer in enumerate(model.layers)]


def _metadata(kind: str, model: ir.Model, steps: int | None, batch, inputs, outputs, weights, dtype: str) -> dict:
    return {"format": FORMAT, "version": 1, "kind": kind, "steps": steps, "batch": batch, "dtype": dtype,
            "cell": model.layers[0].cell if model.layers else None, "inputs": list(inputs), "outputs": list(outputs),
            "state": _state_names(model) if kind == "step" else [], "weights": weights}


def build_step_model(model: ir.Model, dtype: str = "f32", mode: str = "auto") -> bytes:
    """model_step.tflite: inputs x [N, F] and each layer's state; outputs logits and the new states."""
    prepared, head = prepare(model, dtype, mode)
    g = Graph(dynamic_batch=True)
    w = _Writer(g)
    x = g.activation("x", [1, model.input_size])
    inputs, states = {"x": x}, []
    for names, layer in zip(_state_names(model), model.layers):
        layer_state = tuple(g.activation(n, [1, layer.hidden_size]) for n in names)
        inputs.update(zip(names, layer_state))
        states.append(layer_state)
    new = w.all_layers_step(model, prepared, x, states, "")
    logits = w.fully_connected(new[-1][0], head, "logits")
    outputs = {"logits": logits}
    for names, layer_state in zip(_state_names(model), new):
        outputs.update({f"{n}_next": t for n, t in zip(names, layer_state)})
    weights = {p.weight.name: p.weight.info() for p in prepared + [head]}
    meta = _metadata("step", model, None, "dynamic", inputs, outputs, weights, dtype)
    return g.finish(inputs, outputs, meta, f"edgeprune {model.describe()}: one step per invoke")


def _unpack_steps(w: _Writer, x: int, steps: int, features: int) -> list[int]:
    g = w.g
    batch = g.shapes[x][0]
    outs = [g.activation(f"x_t{t}", [batch, features]) for t in range(steps)]
    opts = w.S.UnpackOptionsT()
    opts.num, opts.axis = steps, 1
    g.op("UNPACK", [x], outs, opts)
    return outs


def build_sequence_model(model: ir.Model, steps: int, dtype: str = "f32", mode: str = "auto",
                         dynamic_batch: bool = True, kind: str = "sequence") -> bytes:
    """model.tflite: x [N, T, F] -> logits of the last step [N, C], unrolled over T steps."""
    prepared, head = prepare(model, dtype, mode)
    g = Graph(dynamic_batch=dynamic_batch)
    w = _Writer(g)
    x = g.activation("x", [1, steps, model.input_size])
    states = None
    for t, x_t in enumerate(_unpack_steps(w, x, steps, model.input_size)):
        states = w.all_layers_step(model, prepared, x_t, states, f"t{t}/")
    logits = w.fully_connected(states[-1][0], head, "logits")
    weights = {p.weight.name: p.weight.info() for p in prepared + [head]}
    meta = _metadata(kind, model, steps, "dynamic" if dynamic_batch else 1, ["x"], ["logits"], weights, dtype)
    meta["cell_ops"] = "fully_connected"
    return g.finish({"x": x}, {"logits": logits}, meta,
                    f"edgeprune {model.describe()}: whole sequence of {steps} steps (unrolled)")


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
    meta = _metadata("linear", ir.Model(m.shape[1], [ir.Head(m, np.zeros(m.shape[0], np.float32))]), None,
                     "dynamic", ["x"], ["y"], {"weight": weight.info()}, dtype)
    return g.finish({"x": x}, {"y": y}, meta, "edgeprune: one fully connected layer")


@dataclass
class _VersionedWeight(Weight):
    forced_version: int = DENSE_FC_VERSION

    @property
    def fc_version(self) -> int:
        return self.forced_version


def micro_uses_sequence_lstm(model: ir.Model) -> bool:
    """UNIDIRECTIONAL_SEQUENCE_LSTM fits LSTM layers without feedback (feedback crosses layers per step)."""
    return all(layer.cell == "lstm" for layer in model.layers) and not model.feedback


def build_micro_model(model: ir.Model, steps: int) -> bytes:
    """model_dense.tflite for TFLite Micro: dense fp32, batch 1, x [1, T, F] -> logits [1, C]."""
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
        weights[f"layers.{l}.weight"] = {"encoding": "dense", "dtype": "f32", "nnz": layer.weight.nnz,
                                         "stored_values": 4 * H * (I + H), "op": "UNIDIRECTIONAL_SEQUENCE_LSTM"}
        inp = out
    H = model.layers[-1].hidden_size
    last = g.activation("last", [1, H])
    opts = S.StridedSliceOptionsT()
    opts.shrinkAxisMask = 2  # drop the time axis
    g.op("STRIDED_SLICE", [inp, w._int_const("begin", [0, steps - 1, 0]), w._int_const("end", [1, steps, H]),
                           w._int_const("strides", [1, 1, 1])], [last], opts)
    head = _Prepared(encode_weight("head.weight", model.head.weight, (H,), "f32", "dense"), model.head.bias_or_zeros())
    logits = w.fully_connected(last, head, "logits")
    weights["head.weight"] = head.weight.info()
    meta = _metadata("micro", model, steps, 1, ["x"], ["logits"], weights, "f32")
    meta["cell_ops"] = "unidirectional_sequence_lstm"
    return g.finish({"x": x}, {"logits": logits}, meta,
                    f"edgeprune {model.describe()}: TFLite Micro, dense, {steps} steps")

"""The ``onnx`` target: standard-op ONNX models built from the IR with ``onnx.helper``, run in onnxruntime.

Two files:

* ``model.onnx``: whole sequences, input ``x`` [batch, time, features] -> ``logits`` [batch, classes]
  (batch and time are dynamic). Without feedback it is a chain of the standard ``LSTM``/``GRU``/
  ``RNN`` ops (``layout=0``, forward); with top-down feedback the layers form one joint recurrence,
  so the sequence runs in a ``Scan`` whose body is one step of every layer.
* ``model_step.onnx``: one time step per call for streaming: input ``x_t`` [batch, features] and
  the previous states ``h_{l}`` (and ``c_{l}`` for LSTM) [batch, H_l]; outputs ``logits`` and
  the new states ``h_{l}_next`` (``c_{l}_next``). Zero states start a sequence. Each layer is the
  IR's own computation: one ``Gemm`` of the fused gate matrix over ``Concat(x, h, feedback)``, then
  ``Split`` and the gate nonlinearities (cheaper per call in onnxruntime than a recurrent op run
  for one step, and made of ops every runtime has).

Weights map from the IR's fused gate matrix over ``[x ; h ; feedback]`` to ONNX's ``W`` (input
and feedback columns: feedback enters the op as extra input columns), ``R`` (state columns) and
``B = [Wb ; Rb]``, with the gate rows reordered by the cell table (``ir.cells``: LSTM IR i,f,g,o ->
ONNX i,o,f,c; GRU IR r,z,n_x,n_h -> ONNX z,r,h with ``linear_before_reset=1``).

onnxruntime densifies every ``sparse_initializer`` when it loads a model, and its recurrent
kernels are dense: sparsity saves disk (with ``--sparse-initializers``), never compute. See
docs/exports.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import __version__, ir
from ..errors import BackendError, first_line
from ..fileio import write_bytes_atomic
from ..options import Option
from .base import Artifact, Backend, Runner

MIN_OPSET = 17
SEQUENCE_FILE, STEP_FILE = "model.onnx", "model_step.onnx"
# Every stored entry of an ONNX SparseTensorProto costs an int64 linear index plus a float32 value.
SPARSE_BYTES_PER_NONZERO = 12
SPARSE_WEIGHTS = ("off", "constant", "initializer")


def state_names(model: ir.Model) -> list[str]:
    """Names of the streaming state inputs of ``model_step.onnx``, in order (outputs add ``_next``)."""
    return [f"{state}_{l}" for l, layer in enumerate(model.layers) for state in ir.cell_spec(layer.cell).states]


def stored_pattern(m: ir.CSR) -> np.ndarray:
    """Dense boolean map of the entries ``m`` stores (its mask), stored zeros included."""
    return ir.CSR(np.ones(m.nnz, np.float32), m.indices, m.indptr, m.shape).to_dense().astype(bool)


def onnx_tensors(layer: ir.Layer) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``W`` [1, G*H, I+F], ``R`` [1, G*H, H] as (values, kept pattern) and ``B`` [1, 2*G*H] (pattern all true).

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
    bias = layer.bias.astype(np.float32)
    recurrent_bias = [bias[ir.cells.block_rows([r], H)] if r != w else np.zeros(H, np.float32)
                      for w, r in zip(w_blocks, r_blocks)]
    b = np.concatenate([bias[w_rows], *recurrent_bias])
    W = (values[np.ix_(w_rows, input_cols)], keep[np.ix_(w_rows, input_cols)])
    R = (values[np.ix_(r_rows, state_cols)], keep[np.ix_(r_rows, state_cols)])
    return {
        "W": (W[0][None], W[1][None]),
        "R": (R[0][None], R[1][None]),
        "B": (b[None], np.ones((1, b.size), bool)),
    }


class _Graph:
    """Collects nodes and (sparse) initializers for one ONNX graph; names are unique per model."""

    def __init__(self, sparse: str = "off"):
        self.nodes, self.initializers, self.sparse_initializers = [], [], []
        self.sparse = sparse
        self.stored_sparse: list[str] = []
        self._names: set[str] = set()
        self._consts: dict[tuple, str] = {}

    def name(self, base: str) -> str:
        name, k = base, 1
        while name in self._names:
            name, k = f"{base}_{k}", k + 1
        self._names.add(name)
        return name

    def node(self, op: str, inputs: list[str], n_out: int = 1, name: str | None = None, outputs=None, **attrs):
        """Append a node; ``outputs`` may name them (``""`` = optional output not produced)."""
        from onnx import helper

        base = name or op.lower()
        outputs = outputs or [self.name(f"{base}_out{k}" if n_out > 1 else base) for k in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outputs, name=self.name(f"node/{base}"), **attrs))
        return outputs if len(outputs) > 1 else outputs[0]

    def int64s(self, values) -> str:
        """A small int64 constant (axes, shapes), shared."""
        from onnx import numpy_helper

        key = tuple(int(v) for v in values)
        if key not in self._consts:
            name = self.name("const_" + "_".join(str(v).replace("-", "m") for v in key))
            self.initializers.append(numpy_helper.from_array(np.array(key, np.int64), name))
            self._consts[key] = name
        return self._consts[key]

    def weight(self, name: str, values: np.ndarray, keep: np.ndarray | None = None) -> str:
        """A float32 weight: a dense initializer, or (when asked for and smaller) only its kept entries."""
        from onnx import helper, numpy_helper

        name = self.name(name)
        values = np.ascontiguousarray(values, dtype=np.float32)
        keep = np.ones(values.shape, bool) if keep is None else keep
        nnz = int(keep.sum())
        if self.sparse == "off" or nnz * SPARSE_BYTES_PER_NONZERO >= values.size * 4:
            self.initializers.append(numpy_helper.from_array(values, name))
            return name
        flat = np.flatnonzero(keep.reshape(-1)).astype(np.int64)  # linear indices, ascending as ONNX requires
        sparse = helper.make_sparse_tensor(numpy_helper.from_array(values.reshape(-1)[flat], name),
                                           numpy_helper.from_array(flat, name + ".indices"), list(values.shape))
        if self.sparse == "initializer":
            self.sparse_initializers.append(sparse)
        else:  # a Constant node's sparse_value: a dense tensor to every consumer, so type inference accepts it
            self.nodes.append(helper.make_node("Constant", [], [name], name=self.name(f"node/{name}"),
                                               sparse_value=sparse))
        self.stored_sparse.append(name)
        return name


def _layer_weights(g: _Graph, model: ir.Model) -> list[dict[str, str]]:
    out = []
    for l, layer in enumerate(model.layers):
        tensors = onnx_tensors(layer)
        out.append({k: g.weight(f"layers.{l}.{k}", v, keep if k != "B" else None) for k, (v, keep) in tensors.items()})
    return out


def _head(g: _Graph, model: ir.Model, top: str, output: str) -> None:
    head = model.head.weight
    w = g.weight("head.weight", head.to_dense(), stored_pattern(head))
    b = g.weight("head.bias", model.head.bias)
    g.node("Gemm", [top, w, b], outputs=[output], name="head", transB=1)


def _recurrent_attrs(layer: ir.Layer) -> dict:
    attrs = {"hidden_size": layer.hidden_size}
    if layer.cell == "gru":
        attrs["linear_before_reset"] = 1  # the IR's (and torch's) GRU: r multiplies (R h + Rb)
    return attrs


def _recurrent_op_step(g: _Graph, model: ir.Model, weights, x_t: str, states: dict[str, str],
                       new_names: dict[str, str], prefix: str) -> str:
    """One time step of every layer with the standard recurrent ops (the Scan body of feedback models,
    which the importer reads back); writes the new states to ``new_names`` and returns the top h."""
    ax0 = g.int64s([0])
    inp = x_t
    for l, layer in enumerate(model.layers):
        x_l = inp
        if layer.feedback_size:  # the next layer's state from t-1, as extra input columns
            x_l = g.node("Concat", [inp, states[f"h_{l + 1}"]], name=f"{prefix}l{l}_with_feedback", axis=1)
        seq = g.node("Unsqueeze", [x_l, ax0], name=f"{prefix}l{l}_x")
        h0 = g.node("Unsqueeze", [states[f"h_{l}"], ax0], name=f"{prefix}l{l}_h")
        ins = [seq, weights[l]["W"], weights[l]["R"], weights[l]["B"], "", h0]
        if layer.cell == "lstm":
            ins.append(g.node("Unsqueeze", [states[f"c_{l}"], ax0], name=f"{prefix}l{l}_c"))
            yh, yc = g.name(f"{prefix}l{l}_lstm_Y_h"), g.name(f"{prefix}l{l}_lstm_Y_c")
            g.node("LSTM", ins, outputs=["", yh, yc], name=f"{prefix}l{l}_lstm", **_recurrent_attrs(layer))
            g.node("Squeeze", [yc, ax0], outputs=[new_names[f"c_{l}"]], name=f"{prefix}c_{l}_next")
        else:
            yh = g.name(f"{prefix}l{l}_{layer.cell}_Y_h")
            g.node(ir.cell_spec(layer.cell).onnx_op, ins, outputs=["", yh], name=f"{prefix}l{l}_{layer.cell}",
                   **_recurrent_attrs(layer))
        inp = g.node("Squeeze", [yh, ax0], outputs=[new_names[f"h_{l}"]], name=f"{prefix}h_{l}_next")
    return inp


def _model_proto(g: _Graph, inputs, outputs, opset: int, doc: str, meta: dict):
    from onnx import helper

    graph = helper.make_graph(g.nodes, "edgeprune", inputs, outputs, g.initializers,
                              sparse_initializer=g.sparse_initializers)
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="edgeprune", producer_version=__version__,
                              doc_string=doc)
    # The oldest IR version that can carry this opset, so older runtimes load the file too.
    proto.ir_version = helper.find_min_ir_version_for(opsets)
    helper.set_model_props(proto, meta)
    return proto


def _float(name: str, shape) -> object:
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _sequence_model(model: ir.Model, opset: int, sparse: str, meta: dict):
    from onnx import TensorProto, helper

    g = _Graph(sparse)
    weights = _layer_weights(g, model)
    x, logits = g.name("x"), g.name("logits")
    if not model.feedback:
        seq = g.node("Transpose", [x], name="time_major", perm=[1, 0, 2])  # layout=0 wants [time, batch, features]
        top = None
        for l, layer in enumerate(model.layers):
            ins = [seq, weights[l]["W"], weights[l]["R"], weights[l]["B"]]
            op, attrs = ir.cell_spec(layer.cell).onnx_op, _recurrent_attrs(layer)
            if l + 1 == len(model.layers):  # only the final state Y_h is needed from the top layer
                y_h = g.name(f"l{l}_{layer.cell}_Y_h")
                g.node(op, ins, outputs=["", y_h], name=f"l{l}_{layer.cell}", **attrs)
                top = g.node("Squeeze", [y_h, g.int64s([0])], name=f"h_{l}_last")
            else:  # every step's state, [time, num_directions=1, batch, H] -> [time, batch, H]
                y = g.name(f"l{l}_{layer.cell}_Y")
                g.node(op, ins, outputs=[y], name=f"l{l}_{layer.cell}", **attrs)
                seq = g.node("Squeeze", [y, g.int64s([1])], name=f"h_{l}_sequence")
    else:
        # One joint recurrence: Scan over time (axis 1 of x) with every layer's state as a loop variable.
        names = state_names(model)
        sizes = {f"{k}_{l}": layer.hidden_size for l, layer in enumerate(model.layers) for k in ("h", "c")}
        batch = g.node("Shape", [x], name="batch", start=0, end=1)
        zeros = {}
        for H in sorted({sizes[n] for n in names}):
            shape = g.node("Concat", [batch, g.int64s([H])], name=f"state_shape_{H}", axis=0)
            zeros[H] = g.node("ConstantOfShape", [shape], name=f"zero_state_{H}",
                              value=helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]))
        body = _Graph()
        body._names = g._names  # subgraph names must not shadow outer ones
        b_x = body.name("body/x_t")
        b_states = {n: body.name(f"body/{n}") for n in names}
        body.initializers, body._consts = g.initializers, g._consts  # constants live in the outer graph
        b_new = {n: body.name(f"body/{n}_next") for n in names}
        _recurrent_op_step(body, model, weights, b_x, b_states, b_new, "body/")
        outs = [b_new[n] for n in names]
        body_graph = helper.make_graph(
            body.nodes, "step",
            [_float(b_states[n], ["batch", sizes[n]]) for n in names] + [_float(b_x, ["batch", model.input_size])],
            [_float(o, ["batch", sizes[n]]) for o, n in zip(outs, names)],
        )
        finals = g.node("Scan", [zeros[sizes[n]] for n in names] + [x], len(names), name="over_time",
                        body=body_graph, num_scan_inputs=1, scan_input_axes=[1])
        finals = finals if len(names) > 1 else [finals]
        top = finals[names.index(f"h_{len(model.layers) - 1}")]
    _head(g, model, top, logits)
    doc = (f"edgeprune {model.describe()}: x [batch, time, {model.input_size}] -> logits of the last step "
           f"[batch, {model.num_classes}]")
    proto = _model_proto(g, [_float(x, ["batch", "time", model.input_size])],
                         [_float(logits, ["batch", model.num_classes])], opset, doc, meta)
    return proto, g.stored_sparse


def _gemm_step(g: _Graph, model: ir.Model, x_t: str, states: dict[str, str], new_names: dict[str, str]) -> str:
    """One step of every layer as the IR computes it: one Gemm of the fused matrix over the concatenated
    ``[x ; h ; feedback]``, then the gate nonlinearities. Fewer instructions per call than a recurrent op
    run for one step (docs/exports.md), and only ops every ONNX runtime has."""
    inp = x_t
    for l, layer in enumerate(model.layers):
        H = layer.hidden_size
        parts = [inp, states[f"h_{l}"]] + ([states[f"h_{l + 1}"]] if layer.feedback_size else [])
        z = g.node("Concat", parts, name=f"l{l}_z", axis=1)
        W = g.weight(f"layers.{l}.weight", layer.weight.to_dense(), stored_pattern(layer.weight))
        b = g.weight(f"layers.{l}.bias", layer.bias)
        pre = g.node("Gemm", [z, W, b], name=f"l{l}_gates", transB=1)
        h_next = new_names[f"h_{l}"]
        if layer.cell == "rnn":
            g.node("Tanh", [pre], outputs=[h_next], name=f"l{l}_tanh")
        else:
            gates = g.node("Split", [pre, g.int64s([H] * 4)], 4, name=f"l{l}_split", axis=1)
            if layer.cell == "lstm":
                i, f, c_in, o = gates
                c_next = new_names[f"c_{l}"]
                forget = g.node("Mul", [g.node("Sigmoid", [f], name=f"l{l}_f"), states[f"c_{l}"]], name=f"l{l}_fc")
                write = g.node("Mul", [g.node("Sigmoid", [i], name=f"l{l}_i"), g.node("Tanh", [c_in], name=f"l{l}_g")],
                               name=f"l{l}_ig")
                g.node("Add", [forget, write], outputs=[c_next], name=f"l{l}_c")
                g.node("Mul", [g.node("Sigmoid", [o], name=f"l{l}_o"), g.node("Tanh", [c_next], name=f"l{l}_tanh_c")],
                       outputs=[h_next], name=f"l{l}_h")
            else:  # GRU: n = tanh(n_x + r * n_h); h' = n + z * (h - n)
                r, zg, nx, nh = gates
                reset = g.node("Mul", [g.node("Sigmoid", [r], name=f"l{l}_r"), nh], name=f"l{l}_r_nh")
                n = g.node("Tanh", [g.node("Add", [nx, reset], name=f"l{l}_n_pre")], name=f"l{l}_n")
                keep_old = g.node("Mul", [g.node("Sigmoid", [zg], name=f"l{l}_z_gate"),
                                          g.node("Sub", [states[f"h_{l}"], n], name=f"l{l}_h_minus_n")], name=f"l{l}_zd")
                g.node("Add", [n, keep_old], outputs=[h_next], name=f"l{l}_h")
        inp = h_next
    return inp


def _step_model(model: ir.Model, opset: int, sparse: str, meta: dict):
    g = _Graph(sparse)
    x_t, logits = g.name("x_t"), g.name("logits")
    names = state_names(model)
    sizes = {n: model.layers[int(n.split("_")[1])].hidden_size for n in names}
    states = {n: g.name(n) for n in names}
    new = {n: g.name(f"{n}_next") for n in names}
    top = _gemm_step(g, model, x_t, states, new)
    outs = [new[n] for n in names]
    _head(g, model, top, logits)
    doc = (f"edgeprune {model.describe()}, one time step per call: x_t [batch, {model.input_size}] and states "
           f"{', '.join(names)} -> logits [batch, {model.num_classes}] and {', '.join(n + '_next' for n in names)}. "
           "Start every sequence from zero states; feed each *_next output back as the matching input.")
    proto = _model_proto(
        g,
        [_float(x_t, ["batch", model.input_size])] + [_float(states[n], ["batch", sizes[n]]) for n in names],
        [_float(logits, ["batch", model.num_classes])] + [_float(o, ["batch", sizes[n]]) for o, n in zip(outs, names)],
        opset, doc, {**meta, "edgeprune.states": json.dumps(names)},
    )
    return proto, g.stored_sparse


def build_models(model: ir.Model, opset: int = MIN_OPSET, sparse_weights: str = "off") -> dict[str, tuple]:
    """``{file name: (ModelProto, names of the weights stored sparse)}`` for ``model``, checked by onnx.checker.

    ``sparse_weights``: ``off`` (dense initializers), ``constant`` (``Constant`` nodes with a
    ``sparse_value``) or ``initializer`` (``graph.sparse_initializer``). A weight is stored sparse
    only where that is smaller than dense (density below 1/3). onnx.checker's full check (with
    shape inference) rejects a sparse_initializer that feeds a dense op, so ``initializer``
    models get the structural check only; ``constant`` models pass the full check.
    """
    import onnx

    model.validate()
    max_opset = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= max_opset:
        raise BackendError(f"--opset {opset}: supported range is {MIN_OPSET}..{max_opset} (onnx {onnx.__version__})")
    meta = {"edgeprune.meta": json.dumps(model.meta, sort_keys=True)}
    out = {
        SEQUENCE_FILE: _sequence_model(model, opset, sparse_weights, meta),
        STEP_FILE: _step_model(model, opset, sparse_weights, meta),
    }
    for name, (proto, _) in out.items():
        try:
            onnx.checker.check_model(proto, full_check=not proto.graph.sparse_initializer)
        except onnx.checker.ValidationError as e:  # a bug here, but say which file
            raise BackendError(f"{name}: fails onnx.checker: {first_line(e, limit=None)}") from None
    return out


def session(path: str | Path | bytes, threads: int = 1):
    """An onnxruntime CPU session pinned to ``threads`` intra-op threads (benchmarks time it)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # errors reach the user through our exception, not ORT's log
    try:
        return ort.InferenceSession(path if isinstance(path, bytes) else str(path), opts,
                                    providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
        raise BackendError(f"onnxruntime cannot load {path if not isinstance(path, bytes) else 'the model'}: "
                           f"{first_line(e)}") from None


class SequenceRunner(Runner):
    """``model.onnx``: whole sequences per call."""

    def __init__(self, path: Path, batch: int = 1024):
        self.session, self.batch = session(path), batch
        self.input = self.session.get_inputs()[0].name

    def run(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        parts = [self.session.run(None, {self.input: X[i : i + self.batch]})[0] for i in range(0, len(X), self.batch)]
        return np.concatenate(parts) if parts else np.zeros((0, self.session.get_outputs()[0].shape[1]), np.float32)


class StepRunner(Runner):
    """``model_step.onnx``: one step per call; the runner keeps the state outputs and feeds them back."""

    def __init__(self, path: Path):
        self.session = session(path)
        inputs = self.session.get_inputs()
        self.input, self.states = inputs[0].name, [i.name for i in inputs[1:]]
        self.sizes = {i.name: int(i.shape[1]) for i in inputs[1:]}
        self.outputs = [o.name for o in self.session.get_outputs()]  # logits, then the new states in order
        self.state: dict[str, np.ndarray] | None = None

    def reset(self, batch: int = 1) -> None:
        self.state = {n: np.zeros((batch, self.sizes[n]), np.float32) for n in self.states}

    def step(self, x_t: np.ndarray) -> np.ndarray:
        x_t = np.ascontiguousarray(x_t, dtype=np.float32)
        if self.state is None or len(next(iter(self.state.values()))) != len(x_t):
            self.reset(len(x_t))
        logits, *new = self.session.run(self.outputs, {self.input: x_t, **self.state})
        self.state = dict(zip(self.states, new))
        return logits

    def run(self, X: np.ndarray) -> np.ndarray:
        from ..verify import run_streaming

        return run_streaming(self, X)


class OnnxBackend(Backend):
    name = "onnx"
    help = "model.onnx (whole sequence, standard LSTM/GRU/RNN ops) and model_step.onnx (streaming), run in onnxruntime"
    options = (
        Option("opset", MIN_OPSET, f"ONNX opset of the written models (>= {MIN_OPSET})", int),
        Option("sparse_weights", "off",
               "store pruned weights sparse where smaller: as Constant sparse_value nodes (constant) or "
               "graph sparse_initializer (initializer); saves disk only, onnxruntime densifies at load", str,
               SPARSE_WEIGHTS),
    )

    def unavailable(self) -> str | None:
        missing = []
        for module in ("onnx", "onnxruntime"):
            try:
                __import__(module)
            except ImportError:
                missing.append(module)
        if missing:
            return f"needs {' and '.join(missing)} (pip install 'edgeprune[onnx]')"
        return None

    def emit(self, model: ir.Model, out_dir: Path, options: dict) -> list[Artifact]:
        opset, sparse = options["opset"], options["sparse_weights"]
        artifacts = []
        for name, (proto, stored_sparse) in build_models(model, opset, sparse).items():
            write_bytes_atomic(out_dir / name, proto.SerializeToString(deterministic=True))
            ops = sorted({n.op_type for n in proto.graph.node})
            info = {"opset": opset, "ops": ops, "sparse_weights": sparse, "stored_sparse": stored_sparse,
                    "checker": "basic" if proto.graph.sparse_initializer else "full",
                    "inputs": [i.name for i in proto.graph.input], "outputs": [o.name for o in proto.graph.output],
                    "nnz": model.nnz(include_head=True)}
            modes = ("step",) if name == STEP_FILE else ("sequence",)
            artifacts.append(Artifact(name, self.name, "onnxruntime", modes, [name], info))
        return artifacts

    def runner(self, artifact: Artifact, out_dir: Path, options: dict) -> Runner:
        path = out_dir / artifact.name
        return StepRunner(path) if artifact.name == STEP_FILE else SequenceRunner(path)


BACKEND = OnnxBackend()

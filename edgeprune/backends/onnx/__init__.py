"""The ``onnx`` target: standard-op ONNX models built from the IR with ``onnx.helper``, run in onnxruntime.

Two files:

* ``model.onnx``: whole sequences, input ``x`` [batch, time, features] -> ``logits`` (``y`` for
  regression) [batch, C], or [batch, time, C] for a model with an output at every step (batch and
  time are dynamic). Recurrent stages are the standard ``LSTM``/``GRU``/``RNN`` ops (``layout=0``,
  forward); stages linked by top-down feedback form one joint recurrence, so they run in a ``Scan``
  whose body is one step of each; dense stages are ``MatMul``/``Gemm``, causal Conv1d is ``Pad`` +
  ``Conv``, LayerNorm ``LayerNormalization``, pooling ``ReduceMean``/``ReduceMax`` (chain.py).
* ``model_step.onnx``: one time step per call for streaming: input ``x_t`` [batch, features] and
  the previous states (``state_layout``); outputs the step's output and the new states
  (``*_next``). Zero states start a sequence. Each recurrent stage is the IR's own computation: one
  ``Gemm`` of the fused gate matrix over ``Concat(x, h, feedback)``, then ``Split`` and the gate
  nonlinearities (cheaper per call in onnxruntime than a recurrent op run for one step, and made of
  ops every runtime has).

onnxruntime densifies every ``sparse_initializer`` when it loads a model, and its recurrent
kernels are dense: sparsity saves disk (with ``--sparse-initializers``), never compute. See
docs/exports.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ... import ir
from ...errors import BackendError, first_line
from ...fileio import write_bytes_atomic
from ...options import Option
from ..base import Artifact, Backend, Runner
from .chain import sequence_graph, state_layout, step_graph
from .graph import SPARSE_WEIGHTS, Graph, float_value, model_proto, stored_pattern
from .recurrent import onnx_tensors

MIN_OPSET = 17
SEQUENCE_FILE, STEP_FILE = "model.onnx", "model_step.onnx"

__all__ = [
    "BACKEND",
    "MIN_OPSET",
    "SEQUENCE_FILE",
    "STEP_FILE",
    "build_models",
    "onnx_tensors",
    "session",
    "state_names",
    "stored_pattern",
]


def state_names(model: ir.Model) -> list[str]:
    """Names of the streaming state inputs of ``model_step.onnx``, in order (outputs add ``_next``)."""
    return [name for name, _, _ in state_layout(model)]


def initial_state(model: ir.Model) -> dict[str, list[float]]:
    """The step model's state inputs that do not start at zero -> the vector every stream starts from
    (float32 values written as JSON numbers, which read back exactly)."""
    vectors = model.initial_state()
    return {
        n: [float(v) for v in vectors[i][ir.cell_spec(model.stages[i].cell).states.index(n.split("_")[0])]]
        for n, i, _ in state_layout(model)
        if isinstance(model.stages[i], ir.Recurrent) and model.stages[i].initial_state is not None
    }


def output_name(model: ir.Model) -> str:
    return "logits" if model.task == "classify" else "y"


def _sequence_model(model: ir.Model, opset: int, sparse: str, meta: dict):
    g = Graph(sparse, opset)
    x = g.name("x")
    top = sequence_graph(model, g, x)
    out = g.node("Identity", [top], outputs=[g.name(output_name(model))], name="output")
    every = model.output == "every"
    shape = ["batch", "time", model.output_size] if every else ["batch", model.output_size]
    doc = (
        f"edgeprune {model.describe()}: x [batch, time, {model.input_size}] -> {out} "
        f"{'of every step [batch, time' if every else 'of the last step [batch'}, {model.output_size}]"
    )
    proto = model_proto(
        g, [float_value(x, ["batch", "time", model.input_size])], [float_value(out, shape)], opset, doc, meta
    )
    return proto, g.stored_sparse


def _step_model(model: ir.Model, opset: int, sparse: str, meta: dict):
    g = Graph(sparse, opset)
    x_t = g.name("x_t")
    layout = state_layout(model)
    names = [n for n, _, _ in layout]
    sizes = {n: size for n, _, size in layout}
    states = {n: g.name(n) for n in names}
    new = {n: g.name(f"{n}_next") for n in names}
    top = step_graph(model, g, x_t, states, new)
    out = g.node("Identity", [top], outputs=[g.name(output_name(model))], name="output")
    doc = (
        f"edgeprune {model.describe()}, one time step per call: x_t [batch, {model.input_size}] and states "
        f"{', '.join(names) or '(none)'} -> {out} [batch, {model.output_size}] and "
        f"{', '.join(n + '_next' for n in names) or 'no states'}. "
        "Start every sequence from zero states (or the vectors in the metadata edgeprune.initial_state, "
        "one row per stream); feed each *_next output back as the matching input."
    )
    initial = initial_state(model)
    proto = model_proto(
        g,
        [float_value(x_t, ["batch", model.input_size])] + [float_value(states[n], ["batch", sizes[n]]) for n in names],
        [float_value(out, ["batch", model.output_size])] + [float_value(new[n], ["batch", sizes[n]]) for n in names],
        opset,
        doc,
        {
            **meta,
            "edgeprune.states": json.dumps(names),
            **({"edgeprune.initial_state": json.dumps(initial)} if initial else {}),
        },
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
        return ort.InferenceSession(
            path if isinstance(path, bytes) else str(path), opts, providers=["CPUExecutionProvider"]
        )
    except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
        raise BackendError(
            f"onnxruntime cannot load {path if not isinstance(path, bytes) else 'the model'}: {first_line(e)}"
        ) from None


class SequenceRunner(Runner):
    """``model.onnx``: whole sequences per call."""

    def __init__(self, path: Path, batch: int = 1024):
        self.session, self.batch = session(path), batch
        self.input = self.session.get_inputs()[0].name

    def run(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        parts = [self.session.run(None, {self.input: X[i : i + self.batch]})[0] for i in range(0, len(X), self.batch)]
        if parts:
            return np.concatenate(parts)
        return np.zeros((0, *self.session.get_outputs()[0].shape[1:]), np.float32)


class StepRunner(Runner):
    """``model_step.onnx``: one step per call; the runner keeps the state outputs and feeds them back."""

    def _init(self, path: Path):
        self.session = session(path)
        inputs = self.session.get_inputs()
        self.input, self.states = inputs[0].name, [i.name for i in inputs[1:]]
        self.sizes = {i.name: int(i.shape[1]) for i in inputs[1:]}
        self.outputs = [o.name for o in self.session.get_outputs()]  # logits, then the new states in order
        self.state: dict[str, np.ndarray] | None = None
        props = self.session.get_modelmeta().custom_metadata_map
        self.initial = json.loads(props.get("edgeprune.initial_state", "{}"))

    def reset(self, batch: int = 1) -> None:
        self.state = {n: np.zeros((batch, self.sizes[n]), np.float32) for n in self.states}
        for n, v in self.initial.items():  # a stage's own initial state (edgeprune.initial_state)
            self.state[n][:] = np.asarray(v, np.float32)

    def step(self, x_t: np.ndarray) -> np.ndarray:
        x_t = np.ascontiguousarray(x_t, dtype=np.float32)
        if self.state is None or len(next(iter(self.state.values()))) != len(x_t):
            self.reset(len(x_t))
        logits, *new = self.session.run(self.outputs, {self.input: x_t, **self.state})
        self.state = dict(zip(self.states, new))
        return logits

    def __init__(self, path: Path, every: bool = False):
        self._init(path)
        self.every = every

    def run(self, X: np.ndarray) -> np.ndarray:
        return self.stream(X, self.every)


class OnnxBackend(Backend):
    name = "onnx"
    help = "model.onnx (whole sequence, standard LSTM/GRU/RNN ops) and model_step.onnx (streaming), run in onnxruntime"

    def declines(self, model: ir.Model) -> str | None:
        return None  # every stage kind has a standard-op form (chain.py)

    options = (
        Option("opset", MIN_OPSET, f"ONNX opset of the written models (>= {MIN_OPSET})", int),
        Option(
            "sparse_weights",
            "off",
            "store pruned weights sparse where smaller: as Constant sparse_value nodes (constant) or "
            "graph sparse_initializer (initializer); saves disk only, onnxruntime densifies at load",
            str,
            SPARSE_WEIGHTS,
        ),
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
            info = {
                "opset": opset,
                "ops": ops,
                "sparse_weights": sparse,
                "stored_sparse": stored_sparse,
                "checker": "basic" if proto.graph.sparse_initializer else "full",
                "inputs": [i.name for i in proto.graph.input],
                "outputs": [o.name for o in proto.graph.output],
                "nnz": model.nnz(include_head=True),
            }
            modes = ("step",) if name == STEP_FILE else ("sequence",)
            info["output"] = model.output
            artifacts.append(Artifact(name, self.name, "onnxruntime", modes, [name], info))
        return artifacts

    def runner(self, artifact: Artifact, out_dir: Path, options: dict) -> Runner:
        path = out_dir / artifact.name
        every = artifact.info.get("output") == "every"
        return StepRunner(path, every) if artifact.name == STEP_FILE else SequenceRunner(path)


BACKEND = OnnxBackend()

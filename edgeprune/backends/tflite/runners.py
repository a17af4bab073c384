"""Running ``tflite`` files: LiteRT (ai-edge-litert or tflite-runtime) with a chosen kernel resolver,
and TFLite Micro for the dense micro file."""

from __future__ import annotations

import contextlib
import os
import sys
from importlib import import_module
from pathlib import Path

import numpy as np

from ...errors import BackendError, first_line
from ..base import Runner
from .flatbuffer import FORMAT, METADATA_NAME, STEP_FILE, check_micro_compatible, read_metadata

RESOLVERS = {  # option value -> ai_edge_litert / tflite_runtime OpResolverType member
    "xnnpack": "AUTO",  # the default: builtin kernels + the XNNPACK delegate
    "builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES",  # optimized builtin kernels, no delegate
    "builtin_ref": "BUILTIN_REF",  # reference kernels
}
RUNTIME_MODULES = {"ai-edge-litert": "ai_edge_litert.interpreter", "tflite-runtime": "tflite_runtime.interpreter"}


@contextlib.contextmanager
def runtime_log_hidden():
    """LiteRT's C++ runtime writes INFO lines ("Created TensorFlow Lite XNNPACK delegate for CPU") straight
    to file descriptor 2, past Python; keep them off the user's terminal while it sets a model up. Its
    errors still reach the user, as the Python exception they raise."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def interpreter_module(runtime: str = "auto"):
    """(package name, interpreter module) for ``auto``, ``ai-edge-litert`` or ``tflite-runtime``."""
    names = list(RUNTIME_MODULES) if runtime == "auto" else [runtime]
    problems = []
    for name in names:
        try:
            return name, import_module(RUNTIME_MODULES[name])
        except Exception as e:  # tflite-runtime built for numpy 1 fails here under numpy 2
            problems.append(f"{name} ({first_line(e, limit=None)})")
    raise BackendError(f"no usable LiteRT interpreter: {'; '.join(problems)}; pip install ai-edge-litert")


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def litert_label(runtime: str, resolver: str) -> str:
    """E.g. 'ai-edge-litert 2.3.0 (xnnpack)': the package that will run the files, and its kernels."""
    if runtime == "auto":
        runtime = next((n for n, m in RUNTIME_MODULES.items() if importable(m)), "ai-edge-litert")
    return f"{runtime} {package_version(runtime)} ({resolver})"


class LiteRTRunner(Runner):
    """Runs a file written by this backend in LiteRT (or tflite-runtime), one thread.

    A step file streams (``reset``/``step`` keep the state between calls; ``run`` steps through whole
    sequences); a sequence file runs whole sequences of its fixed length.
    """

    def __init__(self, path: str | Path, resolver: str = "xnnpack", runtime: str = "auto"):
        path = Path(path)
        data = path.read_bytes()
        self.name, self.meta = path.name, read_metadata(data)
        if self.meta.get("format") != FORMAT:
            raise BackendError(f"{path}: not a .tflite file written by edgeprune (no {METADATA_NAME} metadata)")
        self.package, api = interpreter_module(runtime)
        self.resolver = resolver
        self._data = data  # the interpreter reads the model from this buffer
        try:
            with runtime_log_hidden():
                self.interpreter = api.Interpreter(
                    model_content=data,
                    num_threads=1,
                    experimental_op_resolver_type=api.OpResolverType[RESOLVERS[resolver]],
                )
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise BackendError(f"{path.name}: {self.package} cannot load it ({first_line(e, limit=None)})") from None
        self.inputs = {d["name"]: d["index"] for d in self.interpreter.get_input_details()}
        self.outputs = {d["name"]: d["index"] for d in self.interpreter.get_output_details()}
        self.batch = 1
        self.state: dict[str, np.ndarray] = {}

    @property
    def runtime_label(self) -> str:
        return litert_label(self.package, self.resolver)

    def op_names(self) -> list[str]:
        """The interpreter's nodes by op name; XNNPACK partitions show up as DELEGATE (diagnostics)."""
        return [d["op_name"] for d in self.interpreter._get_ops_details()]  # no public API for this

    def delegated_weights(self) -> dict[str, bool]:
        """Per FULLY_CONNECTED weight: does a delegate (XNNPACK) run it, or the builtin kernel?

        A delegate node takes the constant weights of the nodes it replaced as inputs, so an FC is
        delegated iff its weight (or, behind a DENSIFY, the stored sparse weight) feeds a DELEGATE.
        """
        ops = self.interpreter._get_ops_details()
        delegate_inputs = {int(i) for d in ops if d["op_name"] == "DELEGATE" for i in d["inputs"]}
        producer = {int(o): d for d in ops if d["op_name"] != "DELEGATE" for o in d["outputs"]}
        names = {d["index"]: d["name"] for d in self.interpreter.get_tensor_details()}
        out = {}
        for d in ops:
            if d["op_name"] != "FULLY_CONNECTED":
                continue
            weight = int(d["inputs"][1])
            stored = [weight] + (
                [int(i) for i in producer[weight]["inputs"]]
                if weight in producer and producer[weight]["op_name"] == "DENSIFY"
                else []
            )
            out[names[stored[-1]]] = any(s in delegate_inputs for s in stored)
        return out

    def _resize(self, batch: int) -> None:
        if batch == self.batch:
            return
        if self.meta.get("batch") != "dynamic":
            raise BackendError(f"{self.name} has a fixed batch of {self.meta.get('batch')}, got {batch}")
        for d in self.interpreter.get_input_details():
            self.interpreter.resize_tensor_input(d["index"], [batch] + list(d["shape"][1:]))
        with runtime_log_hidden():
            self.interpreter.allocate_tensors()
        self.batch = batch

    def run(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        if self.meta["kind"] not in ("step", "sequence", "micro"):
            raise BackendError(f"{self.name} is a {self.meta['kind']} model, not a sequence model")
        if self.meta["kind"] == "step":
            return self.stream(X, self.meta.get("output") == "every")
        steps = self.meta["steps"]
        if X.ndim != 3 or X.shape[1] != steps:
            raise BackendError(
                f"{self.name} is unrolled over {steps} steps but got input of shape {list(X.shape)}; "
                f"use {STEP_FILE} for other lengths or recompile with --tflite-steps"
            )
        self._resize(len(X))
        self.interpreter.set_tensor(self.inputs["x"], X)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.outputs["logits"])

    def reset(self, batch: int = 1) -> None:
        if self.meta["kind"] != "step":
            raise NotImplementedError(f"{self.name} runs whole sequences; {STEP_FILE} streams")
        self._resize(batch)
        widths = {d["name"]: int(d["shape"][-1]) for d in self.interpreter.get_input_details()}
        self.state = {n: np.zeros((batch, widths[n]), np.float32) for n in self.meta["state"]}
        for n, v in self.meta.get("initial_state", {}).items():  # a stage's own initial state
            self.state[n][:] = np.asarray(v, np.float32)

    def step(self, x_t: np.ndarray) -> np.ndarray:
        x_t = np.ascontiguousarray(x_t, dtype=np.float32)
        if not self.state or len(x_t) != self.batch:
            self.reset(len(x_t))
        it = self.interpreter
        it.set_tensor(self.inputs["x"], x_t)
        for n, value in self.state.items():
            it.set_tensor(self.inputs[n], value)
        it.invoke()
        for n in self.state:
            self.state[n] = it.get_tensor(self.outputs[f"{n}_next"])
        return it.get_tensor(self.outputs["logits"])


class MicroRunner(Runner):
    """Runs ``model_dense.tflite`` in TFLite Micro, one sequence (batch 1) per invoke."""

    def __init__(self, path: str | Path):
        from tflite_micro.python.tflite_micro import runtime

        path = Path(path)
        data = path.read_bytes()
        check_micro_compatible(data, path.name)
        self.name, self.meta = path.name, read_metadata(data)
        # The arena holds activations and the LSTM state; weights stay in the flatbuffer.
        self.interpreter = runtime.Interpreter.from_bytes(data, arena_size=4 * len(data) + (1 << 20))

    def run(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        steps = self.meta.get("steps")
        if X.ndim != 3 or (steps and X.shape[1] != steps):
            raise BackendError(f"{self.name} is unrolled over {steps} steps but got input of shape {list(X.shape)}")
        out = []
        for sample in X:
            self.interpreter.reset()  # zero the LSTM state variables: each sequence starts fresh
            self.interpreter.set_input(sample[None], 0)
            self.interpreter.invoke()
            out.append(np.array(self.interpreter.get_output(0))[0])
        return np.stack(out) if out else np.zeros((0, 0), np.float32)


def importable(name: str) -> bool:
    try:
        import_module(name)
        return True
    except Exception:
        return False

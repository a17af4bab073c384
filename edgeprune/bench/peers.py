"""Peer runtimes: what a developer would deploy instead of edgeprune, run on the same model and data.

- ``executorch``: PyTorch's on-device runtime, the model lowered to its XNNPACK delegate.
- ``litert-torch``: Google's official PyTorch → LiteRT converter, run in LiteRT's interpreter (XNNPACK).

Both get what a user of those tools would give them: the checkpoint's dense model (masks folded into
plain weights: neither runtime has sparse kernels for these ops) as a streaming step — one call per time
step, the state passed in and returned as tensors — captured with ``torch.export`` from the torch
baseline's own step function (``TorchDenseRunner.step_fn``), so the three run the same arithmetic.

They are heavy packages with their own pins (litert-torch pins typing-extensions < 4.13 through xdsl),
so they may live in another interpreter: ``EDGEPRUNE_PEERS_PYTHON`` names it (a venv with torch==2.13.0,
the peer packages and edgeprune's own dependencies); the bench worker runs there, this checkout on its
path. Where a peer is missing, ``bench`` skips it and says why.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backends.base import Runner

PYTHON_VARIABLE = "EDGEPRUNE_PEERS_PYTHON"


@dataclass(frozen=True)
class Peer:
    name: str
    module: str  # what must import in the peers' interpreter
    runtime: str  # how the results table names it
    install: str  # the pip requirement that installs it


PEERS = {
    p.name: p
    for p in (
        Peer("executorch", "executorch.runtime", "ExecuTorch (XNNPACK delegate)", "executorch==1.5.1"),
        Peer("litert-torch", "litert_torch", "LiteRT (litert-torch conversion)", "litert-torch==0.10.0"),
    )
}


def peers_python() -> str:
    return os.environ.get(PYTHON_VARIABLE) or sys.executable


@functools.cache
def unavailable(name: str, python: str) -> str | None:
    """Why peer ``name`` cannot run in ``python`` (one line), or None. Checked in a child process: the
    peers' interpreter need not be this one, and importing them here would cost seconds and memory."""
    peer = PEERS[name]
    if not Path(python).is_file():
        return f"{PYTHON_VARIABLE}={python}: no such interpreter"
    try:
        done = subprocess.run(
            [python, "-c", f"import torch, {peer.module}"], capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"could not start {python} ({type(e).__name__})"
    if done.returncode != 0:
        return (
            f"{peer.module.split('.')[0]} does not import in {python} (pip install {peer.install}; "
            f"or point {PYTHON_VARIABLE} at a venv that has it)"
        )
    return None


def parse(names: list[str] | None) -> list[str]:
    """``--peers`` values: names from PEERS, or ``all``."""
    from .settings import BenchError

    chosen: list[str] = []
    for name in names or []:
        for n in PEERS if name == "all" else [name]:
            if n not in PEERS:
                raise BenchError(f"--peers: unknown peer '{n}' (choose from {', '.join(PEERS)}, all)")
            if n not in chosen:
                chosen.append(n)
    return chosen


# -- in the worker -----------------------------------------------------------------------------------
def _flatten(state: list[tuple]) -> list:
    return [t for stage in state for t in stage]


def _unflatten(flat, arities: list[int]) -> list[tuple]:
    out, k = [], 0
    for n in arities:
        out.append(tuple(flat[k : k + n]))
        k += n
    return out


def _step_module(base):
    """The chain's one-step function as an ``nn.Module``: (x_t, *state) -> (y_t, *new state)."""
    import torch

    arities = [len(s) for s in base.initial_state(1)]

    class Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = base.model  # its parameters become the exported program's weights

        def forward(self, x, *flat):
            y, new = base.step_fn(x, _unflatten(list(flat), arities))
            return (y, *_flatten(new))

    return Step().eval()


class PeerRunner(Runner):
    """Streams through a peer runtime, batch 1 per call (as a device runs one stream); a batch of
    streams is stepped one stream after another, each with its own state."""

    def __init__(self, checkpoint: str, name: str, threads: int):
        import torch

        from .torch_runtime import TorchDenseRunner

        self.name = name
        base = TorchDenseRunner(checkpoint)
        self.model = base.model
        self.every = base.config.output == "every"
        module = _step_module(base)
        self.initial = [t.numpy() for t in _flatten(base.initial_state(1))]
        x0 = torch.zeros(1, base.config.input_size)
        example = (x0, *(torch.from_numpy(t) for t in self.initial))
        with torch.no_grad():
            program = torch.export.export(module, example)
        self.call = _EXPORTERS[name](module, program, example, threads)
        self.states: list[list[np.ndarray]] = []

    def reset(self, batch: int = 1) -> None:
        self.states = [list(self.initial) for _ in range(batch)]

    def step(self, x_t: np.ndarray) -> np.ndarray:
        x_t = np.ascontiguousarray(x_t, dtype=np.float32)
        if len(self.states) != len(x_t):
            self.reset(len(x_t))
        ys = []
        for b in range(len(x_t)):
            outs = self.call([x_t[b : b + 1], *self.states[b]])
            ys.append(outs[0])
            self.states[b] = outs[1:]
        return np.concatenate(ys)

    def run(self, X: np.ndarray) -> np.ndarray:
        return self.stream(X, every=self.every)


def _executorch(module, exported, example, threads: int):
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
    from executorch.runtime import Runtime

    _unsafe_reset_threadpool(threads)  # XNNPACK's pool defaults to every core
    lowered = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()
    buffer = lowered.buffer
    program = Runtime.get().load_program(buffer)  # the method borrows from it: kept alive with the closure
    method = program.load_method("forward")

    def call(inputs: list[np.ndarray]) -> list[np.ndarray]:
        assert program is not None and buffer is not None
        return [t.numpy() for t in method.execute([torch.from_numpy(a) for a in inputs])]

    return call


def _litert_torch(module, exported, example, threads: int):
    import litert_torch
    from ai_edge_litert.interpreter import Interpreter

    converted = litert_torch.convert(module, example)
    with tempfile.TemporaryDirectory(prefix="edgeprune-peer-") as d:
        path = Path(d) / "step.tflite"
        converted.export(str(path))
        flatbuffer = path.read_bytes()
    interpreter = Interpreter(model_content=flatbuffer, num_threads=threads)
    signature = interpreter.get_signature_list()["serving_default"]
    # args_0, args_1, ..., args_10: in the order of the step function's arguments, not the names' order
    inputs, outputs = (sorted(signature[k], key=lambda n: int(n.rsplit("_", 1)[1])) for k in ("inputs", "outputs"))
    runner = interpreter.get_signature_runner("serving_default")

    def call(arrays: list[np.ndarray]) -> list[np.ndarray]:
        result = runner(**dict(zip(inputs, arrays)))
        return [result[name] for name in outputs]

    return call


_EXPORTERS = {"executorch": _executorch, "litert-torch": _litert_torch}

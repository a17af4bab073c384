"""The ``.tflite`` files run a second time, in ``tflite-runtime``, through a worker in its own Python.

tflite-runtime needs numpy < 2, so it cannot share the main environment (numpy 2). The Python that has
it is named by ``EDGEPRUNE_TFLITE_RUNTIME_PYTHON`` (CI creates that venv in ``.ci/run``); without it, or
when that Python cannot import tflite-runtime, the check is skipped and the artifact says why in one
line (``compile.json``: ``info.note``). The worker is ``tflite_runtime_worker.py`` from this package,
run in isolated mode (``-I``: nothing from the working directory or the artifact directory is imported).
"""

from __future__ import annotations

import functools
import io
import json
import os
import subprocess
from pathlib import Path

import numpy as np

from ...errors import BackendError, first_line
from ..base import Runner
from .flatbuffer import read_metadata
from .runners import RESOLVERS

ENV = "EDGEPRUNE_TFLITE_RUNTIME_PYTHON"
WORKER = Path(__file__).with_name("tflite_runtime_worker.py")
TIMEOUT = 600


@functools.cache
def _probe(python: str) -> tuple[str | None, str | None]:
    try:
        out = subprocess.run(
            [python, "-I", str(WORKER), "--version"], capture_output=True, text=True, timeout=120, cwd=WORKER.parent
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"{ENV}={python} cannot be run ({first_line(e)})"
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no message"])[-1]
        return None, f"{ENV}={python} cannot import tflite-runtime ({last})"
    return out.stdout.strip(), None


def probe() -> tuple[str | None, str | None]:
    """(tflite-runtime version, None) when the worker's Python runs it, else (None, why not)."""
    python = os.environ.get(ENV)
    if not python:
        return None, f"tflite-runtime not run: set {ENV} to a Python with tflite-runtime and numpy<2"
    version, why = _probe(python)
    return version, (f"tflite-runtime not run: {why}" if why else None)


class TFLiteRuntimeRunner(Runner):
    """Runs one file in the worker: whole sequences, or a step file streamed over whole sequences."""

    def __init__(self, path: str | Path, resolver: str = "xnnpack"):
        self.path = Path(path).absolute()
        self.meta = read_metadata(self.path.read_bytes())
        self.resolver = RESOLVERS[resolver]
        self.python = os.environ.get(ENV, "")

    def _call(self, X: np.ndarray, every: bool) -> np.ndarray:
        request = {
            "model": str(self.path),
            "resolver": self.resolver,
            "kind": self.meta["kind"],
            "state": list(self.meta.get("state", [])),
            "initial_state": dict(self.meta.get("initial_state", {})),  # a stage's own, else zeros
            "every": every,
        }
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(X, np.float32), allow_pickle=False)
        try:
            out = subprocess.run(
                [self.python, "-I", str(WORKER), json.dumps(request)],
                input=buf.getvalue(),
                capture_output=True,
                timeout=TIMEOUT,
                cwd=WORKER.parent,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise BackendError(f"{self.path.name}: the tflite-runtime worker failed ({first_line(e)})") from None
        if out.returncode != 0:
            last = (out.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
            raise BackendError(f"{self.path.name}: tflite-runtime failed ({last})")
        return np.load(io.BytesIO(out.stdout), allow_pickle=False)

    def run(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, np.float32)
        if self.meta["kind"] == "step":
            return self._call(X, self.meta.get("output") == "every")
        if X.ndim != 3 or X.shape[1] != self.meta["steps"]:
            raise BackendError(
                f"{self.path.name} is unrolled over {self.meta['steps']} steps but got input of shape {list(X.shape)}"
            )
        return self._call(X, False)

    def stream(self, X: np.ndarray, every: bool = False) -> np.ndarray:
        if self.meta["kind"] != "step":
            raise NotImplementedError(f"{self.path.name} runs whole sequences")
        return self._call(np.asarray(X, np.float32), every)

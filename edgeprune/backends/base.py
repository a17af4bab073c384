"""The backend contract: ``emit`` files from the IR, ``build`` them if needed, ``runner`` to run them.

A backend module defines ``BACKEND = SomeBackend()``; the registry finds it by module name. Every
artifact a backend emits is run in its own runtime by ``edgeprune.verify`` before ``compile``
reports success, so ``runner`` must execute the files on disk, not the in-memory IR.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import ir
from ..options import Option


@dataclass
class Artifact:
    name: str  # the main file, relative to the backend's output directory
    target: str  # backend name
    runtime: str  # what executes it, e.g. "onnxruntime", "numpy reference"
    modes: tuple[str, ...] = ("sequence",)  # "sequence": whole sequences per call; "step": one step per call
    files: list[str] = field(default_factory=list)  # every file belonging to it (relative)
    info: dict = field(default_factory=dict)  # sizes, kernel choices, notes (JSON-able)
    verify: bool = True  # False for files no host runtime can run (e.g. firmware sources)
    tolerance: dict | None = None  # {"max_abs": ..., "min_agreement": ...}; None = the fp32 default

    def size_bytes(self, directory: Path) -> int:
        return sum((directory / f).stat().st_size for f in (self.files or [self.name]))

    def to_dict(self, directory: Path | None = None) -> dict:
        d = {
            "name": self.name,
            "target": self.target,
            "runtime": self.runtime,
            "modes": list(self.modes),
            "files": list(self.files or [self.name]),
            "info": self.info,
        }
        if directory is not None:
            d["bytes"] = self.size_bytes(directory)
        return d


class Runner(ABC):
    """Executes one artifact. ``run`` is whole sequences; ``reset``/``step`` stream one step at a time."""

    @abstractmethod
    def run(self, X: np.ndarray) -> np.ndarray:
        """[N, T, F] float32 -> the model's outputs: [N, C] (output ``last``) or [N, T, C] (``every``)."""

    def reset(self, batch: int = 1) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not stream")

    def step(self, x_t: np.ndarray) -> np.ndarray:
        """[N, F] -> outputs [N, C] after this step; state is kept by the runner."""
        raise NotImplementedError(f"{type(self).__name__} does not stream")

    def stream(self, X: np.ndarray, every: bool = False) -> np.ndarray:
        """Whole sequences driven one ``step`` per call: the last step's outputs [N, C], or every
        step's [N, T, C]. The one streaming loop that verify, bench and tests share."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        self.reset(len(X))
        outs = [np.asarray(self.step(np.ascontiguousarray(X[:, t]))).copy() for t in range(X.shape[1])]
        if every:
            return np.stack(outs, axis=1)
        return outs[-1]

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Backend(ABC):
    name: str = ""
    help: str = ""
    options: tuple[Option, ...] = ()

    def unavailable(self) -> str | None:
        """Why this backend cannot run here (missing package/toolchain), or None."""
        return None

    def declines(self, model: ir.Model) -> str | None:
        """Why this backend cannot compile ``model`` exactly (one line), or None.

        The default is the v1 shape (recurrent layers read at the last step by a linear head);
        a backend that handles more stages overrides this."""
        problem = model.v1_problem()
        return None if problem is None else f"target {self.name} does not support {problem}"

    @abstractmethod
    def emit(self, model: ir.Model, out_dir: Path, options: dict) -> list[Artifact]:
        """Write the artifacts' files into ``out_dir`` (which exists and is empty)."""

    def build(self, artifact: Artifact, out_dir: Path, options: dict) -> None:
        """Compile what needs compiling (default: nothing)."""

    @abstractmethod
    def runner(self, artifact: Artifact, out_dir: Path, options: dict) -> Runner:
        """A runner executing ``artifact`` from the files in ``out_dir``."""

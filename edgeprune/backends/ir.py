"""The ``ir`` target: the IR files themselves, run by the numpy reference executor."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import ir
from .base import Artifact, Backend, Runner


class ReferenceRunner(Runner):
    def __init__(self, model: ir.Model):
        self.executor = ir.ReferenceExecutor(model)
        self.state = None

    def run(self, X: np.ndarray) -> np.ndarray:
        return self.executor.run(X).astype(np.float32)

    def reset(self, batch: int = 1) -> None:
        self.state = self.executor.init_state(batch)

    def step(self, x_t: np.ndarray) -> np.ndarray:
        if self.state is None:
            self.reset(len(x_t))
        logits, self.state = self.executor.step(x_t, self.state)
        return logits.astype(np.float32)


class IRBackend(Backend):
    name = "ir"
    help = "the IR files (model.json + weights.npz), run by the numpy reference executor"

    def declines(self, model: ir.Model) -> str | None:
        return None  # the reference executor runs every stage

    def emit(self, model: ir.Model, out_dir: Path, options: dict) -> list[Artifact]:
        ir.save(model, out_dir)
        files = [ir.serialize.JSON_NAME, ir.serialize.WEIGHTS_NAME]
        return [
            Artifact(
                ir.serialize.JSON_NAME,
                self.name,
                "numpy reference",
                ("sequence", "step"),
                files,
                {"nnz": model.nnz(include_head=True)},
            )
        ]

    def runner(self, artifact: Artifact, out_dir: Path, options: dict) -> Runner:
        return ReferenceRunner(ir.load(out_dir))


BACKEND = IRBackend()

"""``compile``: source model -> IR -> backends -> artifacts, each verified in its own runtime.

Output goes to a temporary directory that replaces the destination only when every artifact has
passed the verification gate, so a failed compile leaves nothing behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import backends, ir
from .errors import BackendError, EdgepruneError, VerificationError
from .fileio import atomic_directory, dumps_json, write_text_atomic
from .options import resolve
from .verify import FP32, Tolerance, VerificationResult, verify_runner

REPORT_NAME = "compile.json"


@dataclass
class Source:
    """What was compiled: the IR, and the model every artifact is compared with."""

    path: str
    model: ir.Model
    reference: Callable[[np.ndarray], np.ndarray]  # X [N,T,F] -> outputs [N,C] or [N,T,C] of the source model
    reference_name: str
    meta: dict = field(default_factory=dict)


def load_source(path: str | os.PathLike) -> Source:
    """A checkpoint (compared with torch), an IR directory (compared with the reference executor) or an
    ``.onnx`` model (imported; compared with onnxruntime running the file)."""
    p = Path(path)
    if p.suffix.lower() == ".onnx":
        from .frontend.onnx import import_onnx

        imported = import_onnx(p)
        return Source(
            str(path),
            imported.model,
            imported.logits,
            f"{imported.runtime} running {p.name}"
            + (
                f" (its sequence_lens input '{imported.lengths_name}' became per-sample lengths: fed the full length "
                "of every verification sequence)"
                if imported.lengths_name
                else ""
            ),
            dict(imported.model.meta),
        )
    if p.is_dir() or p.name == ir.serialize.JSON_NAME:
        model = ir.load(p)
        executor = ir.ReferenceExecutor(model)
        return Source(str(path), model, executor.run, "numpy reference", dict(model.meta))
    from . import checkpoint, frontend
    from .train import predict_logits

    torch_model, meta = checkpoint.load_with_meta(p)
    meta = {**meta, "checkpoint": p.name}
    model = frontend.lower(torch_model, {k: meta[k] for k in ("dataset", "sequence_length", "pruning") if k in meta})
    return Source(str(path), model, lambda X: predict_logits(torch_model, X), "torch", meta)


DEFAULT_RANDOM_STEPS = 16


def verification_inputs(
    source: Source, spec: str, samples: int, data_dir: str | None = None, seq_len: int | None = None
) -> tuple[np.ndarray, str]:
    """``spec``: 'auto' (the model's own test split, or random inputs shaped from the model when it
    records no dataset), a dataset name or .npz path, or 'random'. Random sequences have ``seq_len``
    steps (default: the model's recorded sequence length, else 16); the length used is recorded in the
    model's meta so that a target unrolled over a fixed T (TFLite's sequence model) uses the same."""
    if samples < 1:
        raise EdgepruneError(f"--verify-samples must be >= 1, got {samples}")
    if seq_len is not None and seq_len < 1:
        raise EdgepruneError(f"--seq-len must be >= 1, got {seq_len}")
    name = source.model.meta.get("dataset") if spec == "auto" else spec
    if spec == "random" or not name:
        steps = int(seq_len or source.model.meta.get("sequence_length") or DEFAULT_RANDOM_STEPS)
        source.model.meta.setdefault("sequence_length", steps)
        X = np.random.default_rng(0).random((samples, steps, source.model.input_size), dtype=np.float32)
        why = "" if spec == "random" else " (the model records no dataset; --verify-data names one)"
        return X, f"{samples} random sequences of {steps} steps{why}"
    from .data import ANY_LAYOUT, load

    ds = load(name, data_dir, layouts=ANY_LAYOUT, variable_length=True)
    if ds.features != source.model.input_size:
        raise EdgepruneError(
            f"dataset {ds.name} has {ds.features} features but the model takes {source.model.input_size}"
        )
    if seq_len is not None and seq_len != ds.steps:
        raise EdgepruneError(f"--seq-len {seq_len} does not fit {ds.name}, whose sequences have {ds.steps} steps")
    source.model.meta.setdefault("sequence_length", ds.steps)
    X = ds.X_test[:samples]
    note = "" if len(X) == len(ds.X_test) else f" (of {len(ds.X_test)}; --verify-samples sets how many)"
    return X, f"{len(X)} test samples of {ds.name}{note}"


@dataclass
class CompileReport:
    out_dir: Path
    source: str
    reference: str
    data: str
    artifacts: list[tuple[str, backends.Artifact]] = field(default_factory=list)  # (subdir, artifact)
    results: list[VerificationResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def to_dict(self, model: ir.Model) -> dict:
        return {
            "format": "edgeprune.compile",
            "version": 1,
            "source": self.source,
            "reference": self.reference,
            "verification_data": self.data,
            "model": {
                "description": model.describe(),
                "nnz": model.nnz(),
                "nnz_with_head": model.nnz(True),
                "output": model.output,
                "task": model.task,
            },
            "artifacts": [{**a.to_dict(self.out_dir / sub), "directory": sub or "."} for sub, a in self.artifacts],
            "verification": [r.to_dict() for r in self.results],
        }


def compile_source(
    source: Source,
    targets: list[str],
    out_dir: str | os.PathLike,
    *,
    options: dict | None = None,
    X_verify: np.ndarray,
    data_description: str = "",
    on_result: Callable[[VerificationResult], None] | None = None,
) -> CompileReport:
    """Emit, build and verify every target; raise ``VerificationError`` (leaving nothing) on failure."""
    chosen = [backends.get(t) for t in targets]
    given = {k: v for k, v in (options or {}).items() if v is not None}
    declared = {o.name for b in chosen for o in b.options}
    stray = sorted(set(given) - declared)
    if stray:
        flags = ", ".join("--" + k.replace("_", "-") for k in stray)
        raise EdgepruneError(f"{flags} does not apply to target {', '.join(targets)}")
    for backend in chosen:
        reason = backend.unavailable()
        if reason:
            raise BackendError(f"target {backend.name}: {reason}")
    for backend in chosen:  # before any work: a model a target cannot run exactly is refused up front
        reason = backend.declines(source.model)
        if reason:
            raise BackendError(reason)
    reference = source.reference(X_verify)
    out_dir = Path(out_dir)
    # Backends run tools in other working directories: hand them absolute paths.
    with atomic_directory(out_dir.absolute()) as tmp:
        report = CompileReport(tmp, source.path, source.reference_name, data_description)
        for backend in chosen:
            sub = "" if len(chosen) == 1 else backend.name
            target_dir = tmp / sub
            target_dir.mkdir(parents=True, exist_ok=True)
            mine = resolve(
                backend.options,
                {k: v for k, v in given.items() if k in {o.name for o in backend.options}},
                f"target {backend.name}",
            )
            for artifact in backend.emit(source.model, target_dir, mine):
                backend.build(artifact, target_dir, mine)
                report.artifacts.append((sub, artifact))
                if not artifact.verify:
                    continue
                tolerance = Tolerance(**artifact.tolerance) if artifact.tolerance else FP32
                label = f"{sub}/{artifact.name}" if sub else artifact.name
                with backend.runner(artifact, target_dir, mine) as runner:
                    for mode in artifact.modes:
                        result = verify_runner(
                            label,
                            artifact.runtime,
                            runner,
                            X_verify,
                            reference,
                            tolerance,
                            streaming=(mode == "step"),
                            task=source.model.task,
                        )
                        report.results.append(result)
                        if on_result:
                            on_result(result)
        write_text_atomic(tmp / REPORT_NAME, dumps_json(report.to_dict(source.model)))
        if not report.passed:
            failed = [r for r in report.results if not r.passed][0]
            raise VerificationError(f"verification failed, nothing written: {failed.describe()}")
    report.out_dir = out_dir
    return report

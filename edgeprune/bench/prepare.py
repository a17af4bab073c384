"""Preparing a run: compile a checkpoint (or read a compile output) into the runtimes to measure,
with the reference to check them against, and load the test split they are measured on."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EdgepruneError
from .runtimes import (
    RuntimeSpec,
    available_targets,
    compile_checkpoint,
    dedupe,
    default_variants,
    peer_specs,
    select,
    specs_from_compile_dir,
    torch_spec,
)
from .settings import BenchError


@dataclass
class Dataset:
    """The test split as bench measures it: the dataset's own layout and true lengths."""

    name: str
    X: np.ndarray  # [N, T, F] test split (capped to accuracy_samples), zero after each length
    y: np.ndarray  # [N] | [N, T] class labels, or [N, C] | [N, T, C] regression targets
    lengths: np.ndarray | None = None  # [N] true steps; None: every sequence has all T
    task: str = "classify"  # "classify" | "regress"
    labels: str = "sequence"  # "sequence" | "step"

    @property
    def every(self) -> bool:
        """Outputs per step ([N, T, C]) rather than per sequence."""
        return self.labels == "step"

    def head(self, n: int | None) -> Dataset:
        """The first ``n`` sequences (all of them for None)."""
        if n is None:
            return self
        return Dataset(
            self.name,
            self.X[:n],
            self.y[:n],
            None if self.lengths is None else self.lengths[:n],
            self.task,
            self.labels,
        )


@dataclass
class PreparedSource:
    path: str
    kind: str  # "checkpoint" | "artifacts"
    specs: list[RuntimeSpec]
    model_description: str | None
    nnz: int | None
    meta: dict
    reference: Callable[[np.ndarray], np.ndarray] | None
    reference_name: str | None
    failures: list[dict] = field(default_factory=list)
    work_dir: tempfile.TemporaryDirectory | None = None

    def cleanup(self) -> None:
        if self.work_dir is not None:
            self.work_dir.cleanup()
            self.work_dir = None


def _is_checkpoint(path: Path) -> bool:
    return path.is_file() and path.name != "compile.json"


def _targets_for(patterns: list[str] | None) -> list[str]:
    import fnmatch

    avail = available_targets()
    if not patterns:
        return [t for t in avail if t != "ir"]  # the numpy reference is a check, not a deployment runtime
    return [t for t in avail if any(fnmatch.fnmatchcase(t, p.split("[")[0].split("/")[0]) for p in patterns)]


def prepare(
    source: str,
    *,
    runtimes: list[str] | None = None,
    peers: list[str] | None = None,
    variants: dict | None = None,
    data: str | None = None,
    data_dir: str | None = None,
    keep_artifacts: str | None = None,
    compile_targets: bool = True,
    log: Callable[[str], None] = lambda m: None,
) -> tuple[PreparedSource, Dataset]:
    """Compile a checkpoint (or read a compile output) and load the test split to measure on."""
    from ..compiler import load_source

    path = Path(source)
    if not path.exists():
        raise BenchError(f"{source}: no such file or directory")
    if _is_checkpoint(path):
        src = load_source(path)
        dataset = _load_data(data or src.meta.get("dataset"), data_dir, src.model)
        targets = _targets_for(runtimes)
        chosen = variants if variants is not None else default_variants(targets)
        chosen = {t: v for t, v in chosen.items() if t in targets or variants is not None}
        if not compile_targets:  # a board running its own firmware: only the reference and the data matter
            chosen = {}
        work = None
        if keep_artifacts:
            out_dir = Path(keep_artifacts)
            if out_dir.exists() and any(out_dir.iterdir()):
                raise BenchError(f"--keep-artifacts {out_dir}: exists and is not empty")
        else:
            work = tempfile.TemporaryDirectory(prefix="edgeprune-bench-")
            out_dir = Path(work.name)
        X_verify = dataset.X[:64]
        if chosen:
            log(f"compiling {path.name} for {', '.join(sorted(chosen))}")
        specs, failures = compile_checkpoint(
            str(path), out_dir, chosen, X_verify, f"{len(X_verify)} test samples of {dataset.name}", log=log
        )
        specs, duplicates = dedupe([torch_spec(str(path))] + peer_specs(str(path), peers or []) + specs)
        failures += duplicates
        pruning = src.meta.get("pruning") or {}
        prepared = PreparedSource(
            str(path),
            "checkpoint",
            select(specs, runtimes, failures),
            src.model.describe(),
            src.model.nnz(include_head=True),
            {**src.meta, "pruning": pruning},
            src.reference,
            src.reference_name,
            failures,
            work,
        )
        return prepared, dataset
    if variants is not None:
        raise BenchError(
            "--variants applies to a checkpoint (bench compiles it); a compile output has its artifacts already"
        )
    specs = specs_from_compile_dir(path)
    reports = sorted(path.glob("compile.json")) or sorted(path.glob("*/compile.json"))
    docs = [json.loads(r.read_text()) for r in reports]
    doc = docs[0]
    reference = reference_name = model = None
    meta: dict = {}
    model_desc, nnz = doc.get("model", {}).get("description"), doc.get("model", {}).get("nnz_with_head")
    origin = Path(doc.get("source", ""))
    mixed = len({d.get("source") for d in docs}) > 1 or len({json.dumps(d.get("model")) for d in docs}) > 1
    if mixed:  # artifacts of different models: no common reference, no single torch baseline
        log(f"{path}: its compile outputs come from different sources; accuracy is against labels only")
        origin = Path("")
    if origin.is_file():  # the checkpoint it was compiled from: the torch baseline and the reference
        try:
            src = load_source(origin)
            reference, reference_name, meta = src.reference, src.reference_name, src.meta
            model = src.model
            specs = [torch_spec(str(origin))] + peer_specs(str(origin), peers or []) + specs
        except EdgepruneError as e:
            log(f"not using {origin} as reference ({e})")
    if reference is None and not mixed:
        ir_dirs = [Path(s.directory) for s in specs if s.target == "ir"]
        if ir_dirs:
            src = load_source(ir_dirs[0])
            reference, reference_name, meta = src.reference, src.reference_name, src.meta
            model = src.model
    specs, duplicates = dedupe(specs)
    if not meta:
        for s in specs:
            if s.target == "ir":
                meta = json.loads((Path(s.directory) / "model.json").read_text()).get("meta", {})
    dataset = _load_data(data or meta.get("dataset"), data_dir, model, doc.get("model") if not mixed else None)
    return PreparedSource(
        str(path), "artifacts", select(specs, runtimes), model_desc, nnz, meta, reference, reference_name, duplicates
    ), dataset


def _load_data(name: str | None, data_dir: str | None, model=None, recorded: dict | None = None) -> Dataset:
    """The test split in its own layout and true lengths, refused in one line when the model (an
    ``ir.Model``, or the ``model`` entry of a compile report) does not fit it."""
    if not name:
        raise BenchError("the model records no dataset; pass --data NAME|FILE.npz")
    from ..data import ANY_LAYOUT, load

    ds = load(name, data_dir, layouts=ANY_LAYOUT, variable_length=True)
    if model is not None:
        shape = {
            "input_size": model.input_size,
            "output_size": model.output_size,
            "task": model.task,
            "output": model.output,
            "description": model.describe(),
        }
    else:
        shape = dict(recorded or {})
    check_fits(ds, shape)
    return Dataset(ds.name, ds.X_test, ds.y_test, ds.test_lengths, ds.task, ds.labels)


def check_fits(ds, shape: dict) -> None:
    """One line when the model's inputs, task, output layout or output width do not fit the data."""
    who = f"the model ({shape['description']})" if shape.get("description") else "the model"
    if shape.get("input_size") is not None and ds.features != shape["input_size"]:
        raise BenchError(f"dataset {ds.name} has {ds.features} features but {who} takes {shape['input_size']}")
    task, output = shape.get("task"), shape.get("output")
    if task is None or output is None:
        return
    try:
        ds.require(task, "step" if output == "every" else "sequence", who)
    except EdgepruneError as e:
        raise BenchError(str(e)) from None
    width = shape.get("output_size")
    if width is None:
        return
    if task == "classify" and ds.num_classes > width:
        raise BenchError(f"dataset {ds.name} has {ds.num_classes} classes but {who} gives {width} outputs")
    if task == "regress" and ds.outputs != width:
        raise BenchError(f"dataset {ds.name} has {ds.outputs} regression targets but {who} gives {width} outputs")

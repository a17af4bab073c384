"""One sweep cell, start to finish, wherever it runs: prune -> fine-tune -> compile + verify ->
accuracy through every compiled runtime -> (latency on the device, when one is given).

``evaluate_cell`` is a module-level function of picklable inputs (a ``SweepSpec``, a ``Cell``
and the checkpoint's bytes, so a worker needs no shared filesystem) and never raises: a failing
cell comes back with ``status: failed``, the stage it failed in, and the error. It reuses the
bench core (``prepare.prepare`` compiles and verifies, ``worker.make_runner`` and
``measure`` run the artifacts, ``records`` shapes the runtime entries, ``harness.Bench`` measures
latency).

Everything outside ``timing`` is a function of the inputs: the same cell gives the same bytes on
a Ray worker and in the serial fallback. What depends on the machine or the moment (wall times,
host, latency measurements) is kept in ``timing``.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import os
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from .. import __version__
from ..errors import EdgepruneError
from .spec import Cell, SweepSpec

CELL_FORMAT, VERSION = "edgeprune.sweep-cell", 1
STAGES = ("setup", "prune", "compile", "accuracy", "latency")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def empty_record(cell: Cell) -> dict:
    return {
        "format": CELL_FORMAT,
        "version": VERSION,
        "key": cell.key,
        "method": cell.method,
        "sparsity": cell.sparsity,
        "seed": cell.seed,
        "status": "ok",
        "stage": None,
        "error": None,
        "pruning": None,
        "model": None,
        "runtimes": [],
        "skipped": [],
        "timing": {
            "started": _now(),
            "finished": None,
            "wall_s": None,
            "stages_s": {},
            "worker": {"host": socket.gethostname(), "pid": os.getpid(), "edgeprune": __version__},
            "latency": None,
        },
    }


def failed_record(cell: Cell, error: str, stage: str = "setup") -> dict:
    """A cell that could not even run (e.g. its Ray task died); same shape as any other."""
    record = empty_record(cell)
    record.update(status="failed", stage=stage, error=error)
    record["timing"]["worker"] = None
    record["timing"]["finished"] = record["timing"]["started"]
    return record


@contextmanager
def _one_torch_thread():
    """Cells parallelise across processes; inside one, 1 thread (also: same float sums everywhere)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


def evaluate_cell(spec: SweepSpec, cell: Cell, checkpoint_bytes: bytes) -> dict:
    """The cell record (see docs/sweeps.md); never raises."""
    record = empty_record(cell)
    timing = record["timing"]
    t_start = time.perf_counter()
    stage = "setup"

    def enter(name: str) -> float:
        nonlocal stage
        stage = name
        return time.perf_counter()

    try:
        with tempfile.TemporaryDirectory(prefix="edgeprune-cell-") as tmp, _one_torch_thread():
            for module in spec.plugins:
                importlib.import_module(module)
            t = enter("prune")
            _prune(spec, cell, checkpoint_bytes, Path(tmp), record)
            timing["stages_s"]["prune"] = time.perf_counter() - t
            t = enter("compile")
            prepared, dataset = _compile(spec, Path(tmp) / "cell.pt", record)
            try:
                timing["stages_s"]["compile"] = time.perf_counter() - t
                t = enter("accuracy")
                _accuracy(spec, prepared, dataset, record)
                timing["stages_s"]["accuracy"] = time.perf_counter() - t
                if spec.device:
                    t = enter("latency")
                    _latency(spec, cell, prepared, dataset, record)
                    timing["stages_s"]["latency"] = time.perf_counter() - t
            finally:
                prepared.cleanup()
            if record["status"] == "failed" and record["stage"] is None:
                record["stage"] = stage
    except EdgepruneError as e:
        record.update(status="failed", stage=stage, error=_first_line(e))
    except Exception as e:  # a method or backend bug: recorded, the other cells still run
        record.update(status="failed", stage=stage, error=f"{type(e).__name__}: {_first_line(e)}")
    timing["finished"] = _now()
    timing["wall_s"] = time.perf_counter() - t_start
    return record


def _prune(spec: SweepSpec, cell: Cell, checkpoint_bytes: bytes, tmp: Path, record: dict) -> None:
    from .. import checkpoint, data
    from ..prune import methods, prune_model

    source = tmp / "source.pt"
    source.write_bytes(checkpoint_bytes)
    model, meta = checkpoint.load_with_meta(source)
    name = spec.data or meta.get("dataset")
    if not name:
        raise EdgepruneError("the checkpoint records no dataset; pass --data")
    ds = data.load(name, spec.data_dir, layouts=data.ANY_LAYOUT, variable_length=True)
    declared = {o.name for o in methods()[cell.method].options}
    options = {k: v for k, v in spec.method_options.items() if k in declared and v is not None}
    lr = spec.finetune_lr if spec.finetune_lr is not None else float(meta.get("training", {}).get("lr", 1e-3))
    outcome = prune_model(
        model,
        cell.method,
        cell.sparsity,
        seed=cell.seed,
        options=options,
        dataset=ds,
        finetune_epochs=spec.finetune_epochs,
        finetune_lr=lr,
        batch_size=spec.batch_size,
    )
    report = outcome.report
    record["pruning"] = report
    record["model"] = {"config": outcome.model.config.to_dict(), "dataset": ds.name}
    new_meta = {**meta, "dataset": name if spec.data is None else spec.data, "pruning": report}
    if "accuracy_pruned" in report:  # a classifier; a regressor's metrics are in the report's test_* entries
        new_meta["accuracy"] = report.get("accuracy_finetuned", report.get("accuracy_pruned"))
    checkpoint.save(outcome.model, tmp / "cell.pt", new_meta)


def _compile(spec: SweepSpec, pruned: Path, record: dict):
    from ..bench.prepare import prepare

    variants = spec.variants or {t: [{}] for t in spec.targets}
    variants = {t: variants.get(t, [{}]) for t in spec.targets}
    prepared, dataset = prepare(str(pruned), variants=variants, data=spec.data, data_dir=spec.data_dir)
    record["model"].update(description=prepared.model_description, nnz=prepared.nnz)
    for failure in prepared.failures:
        entry = {"id": failure["id"], "reason": failure.get("error") or failure.get("reason", "")}
        record["skipped"].append(entry)
        if failure.get("stage") == "compile":  # a requested target that did not compile or verify
            if record["status"] == "ok":
                record.update(status="failed", stage="compile", error=f"{failure['id']}: {entry['reason']}")
    return prepared, dataset


def _accuracy(spec: SweepSpec, prepared, dataset, record: dict) -> None:
    """Every runtime on the test split, whole-sequence and step by step, scored with the task's metric;
    sizes from the artifacts."""
    from ..bench.measure import LATENCY, accuracy_record, outputs_of, reference_outputs
    from ..bench.records import memory_record, runtime_record
    from ..bench.worker import make_runner

    test = dataset.head(spec.accuracy_samples)
    record["model"].update(task=test.task, labels=test.labels)
    reference = reference_outputs(prepared.reference, test.X, test.every, test.lengths) if prepared.reference else None
    for rt in prepared.specs:
        entry = runtime_record(rt, None, "python", False, 1)
        entry.pop("os_threads")
        entry["memory"] = memory_record(rt, prepared.nnz)
        if rt.kind == "artifact" and not rt.verified:
            record["skipped"].append({"id": rt.id, "reason": "compile could not run it on this host (no runtime here)"})
            continue
        try:
            runner, info = make_runner(rt, 1)
            try:
                if info is not None:
                    entry["memory"] = memory_record(rt, prepared.nnz, info)
                for mode in rt.modes:
                    if mode in LATENCY:
                        outputs = outputs_of(runner, test.X, mode, test.every, test.lengths)
                        entry["accuracy"][mode] = accuracy_record(
                            outputs, test.y, mode, test.task, test.lengths, reference, prepared.reference_name
                        )
            finally:
                runner.close()
        except EdgepruneError as e:
            entry.update(status="failed", error=_first_line(e))
        except Exception as e:
            entry.update(status="failed", error=f"{type(e).__name__}: {_first_line(e)}")
        record["runtimes"].append(entry)
        if entry["status"] != "ok" and record["status"] == "ok":
            record.update(status="failed", stage="accuracy", error=f"{rt.id}: {entry['error']}")


def _latency(spec: SweepSpec, cell: Cell, prepared, dataset, record: dict) -> None:
    """bench's measurement of the compiled runtimes on the device; kept in ``timing.latency``."""
    from ..bench.devices import parse
    from ..bench.harness import Bench
    from ..bench.settings import BenchSettings

    device = parse(spec.device, ssh_config=spec.ssh_config)
    settings = spec.bench or BenchSettings()
    if spec.accuracy_samples is not None and settings.accuracy_samples is None:
        from dataclasses import replace

        settings = replace(settings, accuracy_samples=spec.accuracy_samples)
    try:
        doc = Bench(prepared, dataset, device, settings, command=f"edgeprune sweep (cell {cell.key})").run()
        error = None
    except EdgepruneError as e:
        doc, error = getattr(e, "doc", None), _first_line(e)
    if doc is not None:
        keep = ("id", "call_path", "emulated", "status", "error", "latency", "device")
        runtimes = []
        for r in doc["runtimes"]:
            entry = {k: r.get(k) for k in keep}
            entry["peak_rss_bytes"] = r["memory"].get("peak_rss_bytes")
            program = r["memory"].get("program")
            if program:
                entry["program"] = program
            runtimes.append(entry)
        record["timing"]["latency"] = {
            "device": doc["device"],
            "machine": doc["machine"],
            "settings": doc["settings"],
            "runtimes": runtimes,
            "comparisons": doc["comparisons"],
            "skipped": doc["skipped"],
            "errors": doc["errors"],
        }
    if error is not None and record["status"] == "ok":
        record.update(status="failed", stage="latency", error=f"{spec.device}: {error}")

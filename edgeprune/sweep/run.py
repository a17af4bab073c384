"""Run a sweep into a RUN_DIR: only the cells it does not hold yet, each saved as soon as it finishes.

``run_sweep`` checks the grid before any work, opens (or resumes) the RUN_DIR, hands the missing
cells to an executor (Ray or serial: same cell function, same results), writes every record the
moment it arrives, and finally draws the bench report from all the cells of the grid.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .rundir import REPORT, RunDir
from .spec import Cell, SweepSpec, check, file_sha256

# version 2: ``cells`` are the cell records as in cells/<key>.json (version 1 held a reshaped copy)
REPORT_FORMAT, REPORT_VERSION = "edgeprune.sweep-report", 2


@dataclass
class SweepOutcome:
    run_dir: Path
    records: dict[str, dict]  # every finished cell of the grid, by key
    ran: list[str]  # the cells this invocation ran
    resumed: list[str]  # the cells already in RUN_DIR
    executor: str
    keys: list[str] = field(default_factory=list)  # the grid's cells, in grid order
    report_files: list[Path] = field(default_factory=list)
    report: dict | None = None

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.records.values() if r["status"] != "ok"]


class _NoProgress:
    def start(self, total: int, done: int, executor: str) -> None:
        pass

    def advance(self, record: dict) -> None:
        pass

    def stop(self) -> None:
        pass


def run_sweep(
    spec: SweepSpec,
    run_dir: str | Path,
    *,
    cluster: str = "local",
    parallel: int | None = None,
    retry_failed: bool = False,
    report: bool = True,
    progress=None,
    ship_code: bool = True,
    log: Callable[[str], None] = lambda m: None,
    executor=None,
) -> SweepOutcome:
    """Run the cells of ``spec`` that ``run_dir`` does not hold yet; the outcome over the whole grid."""
    import importlib

    from .executors import check_cluster, make_executor

    for module in spec.plugins:  # custom methods must be registered before the grid is checked
        try:
            importlib.import_module(module)
        except ImportError as e:
            from .spec import SweepConfigError

            raise SweepConfigError(f"--plugin {module}: cannot import it ({e})") from None
    check(spec)
    check_cluster(cluster)
    if not Path(spec.checkpoint).is_file():
        from .spec import SweepConfigError

        raise SweepConfigError(f"{spec.checkpoint}: no such checkpoint file")
    checkpoint_bytes = Path(spec.checkpoint).read_bytes()
    from .. import checkpoint as checkpoint_mod

    checkpoint_mod.load_with_meta(spec.checkpoint)  # a bad checkpoint fails here, once, not in every cell
    if not spec.checkpoint_sha256:
        spec.checkpoint_sha256 = file_sha256(spec.checkpoint)
    cells = spec.cells()
    keys = [c.key for c in cells]
    rd = RunDir(run_dir)
    progress = progress or _NoProgress()
    try:
        records = rd.open(spec.identity(), keys, spec.checkpoint)
        if retry_failed:
            records = {k: r for k, r in records.items() if r["status"] == "ok"}
        resumed = list(records)
        todo = [c for c in cells if c.key not in records]
        if resumed:
            log(f"{run_dir}: {len(resumed)} of {len(cells)} cells already done; running the {len(todo)} missing")
        rd.write_index(keys, records, running=True)
        ran: list[str] = []
        name = "none"
        if todo:
            own = executor is None
            executor = executor or make_executor(cluster, parallel=parallel, ship_code=ship_code, log=log)
            name = getattr(executor, "name", type(executor).__name__)
            session = uuid.uuid4().hex[:12]
            progress.start(len(cells), len(records), name)
            try:
                for record in executor.run(spec, todo, checkpoint_bytes):
                    record["timing"]["executor"] = name
                    record["timing"]["session"] = session
                    rd.write_cell(record)
                    records[record["key"]] = record
                    ran.append(record["key"])
                    rd.write_index(keys, records, running=True)
                    progress.advance(record)
                    log(_line(record, len(records), len(cells)))
            finally:
                # An interrupt can land between a cell's file and the index: the cell files are the truth.
                records.update(rd.finished(keys))
                rd.write_index(keys, records, running=True)
                progress.stop()
                if own:
                    executor.close()
        rd.write_index(keys, records, running=False)
        records = {k: records[k] for k in keys if k in records}  # grid order
        outcome = SweepOutcome(Path(run_dir), records, ran, resumed, name, keys)
        if report:
            outcome.report = report_document(spec, rd, keys, records)
            from .report import write_report

            outcome.report_files = write_report(outcome.report, Path(run_dir) / REPORT)
        return outcome
    finally:
        rd.close()


def _line(record: dict, done: int, total: int) -> str:
    head = f"[{done}/{total}] {record['method']} sparsity {record['sparsity']:g} seed {record['seed']}: "
    if record["status"] != "ok":
        return head + f"FAILED in {record['stage']} ({record['error']})"
    from .rundir import headline

    h = headline(record)
    what = "accuracy " if h["metric"] == "accuracy" else ""  # "MSE ..." names itself
    acc = f"{what}{h['metric_text']} via {h['runtime']}" if h["score"] is not None else "ok"
    return head + acc + (f", {record['timing']['wall_s']:.1f} s" if record["timing"].get("wall_s") else "")


def report_document(spec: SweepSpec, rd: RunDir, keys: list[str], records: dict[str, dict]) -> dict:
    """What the report is drawn from (saved as report/result.json): the grid's cell records, in grid order."""
    cells = [records[k] for k in keys if k in records]
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "source": str(spec.checkpoint),
        "run_dir": str(rd.path),
        "identity": spec.identity(),
        "complete": len(cells) == len(keys) and all(c["status"] == "ok" for c in cells),
        "missing": [k for k in keys if k not in records],
        "cells": cells,
    }


__all__ = ["Cell", "SweepOutcome", "report_document", "run_sweep"]

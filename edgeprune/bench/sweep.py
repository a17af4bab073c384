"""``bench --sweep``: a method x sparsity (x seed) grid from one checkpoint.

Each cell prunes the checkpoint, optionally fine-tunes, compiles and benchmarks it. ``run_cell``
is a pure function of picklable inputs (a ``SweepConfig`` and a ``Cell``) that never raises: a
failing cell is recorded with its error. ``run_sweep`` maps it over the grid with any ``map``
(the built-in serial one by default; issue 8 distributes the same cells over Ray) and saves the
sweep JSON after every finished cell.
"""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ..errors import EdgepruneError
from ..fileio import dumps_json, write_text_atomic
from .schema import SWEEP_FORMAT, VERSION


@dataclass(frozen=True)
class Cell:
    method: str
    sparsity: float
    seed: int = 0

    @property
    def key(self) -> str:
        return f"{self.method}-s{self.sparsity:g}-seed{self.seed}"


@dataclass
class SweepConfig:
    checkpoint: str
    methods: list[str]
    sparsities: list[float]
    seeds: list[int] = field(default_factory=lambda: [0])
    finetune_epochs: int = 0
    method_options: dict = field(default_factory=dict)
    data: str | None = None
    data_dir: str | None = None
    runtimes: list[str] | None = None
    variants: dict | None = None
    device: str = "local"
    ssh_config: str | None = None
    settings: object = None  # harness.BenchSettings (picklable dataclass)

    def cells(self) -> list[Cell]:
        return [Cell(m, float(s), int(seed)) for m, s, seed in itertools.product(self.methods, self.sparsities, self.seeds)]


def check_grid(config: SweepConfig) -> None:
    """Fail before any work on an unknown method or an impossible sparsity."""
    from ..prune import check_sparsity, methods

    known = methods()
    for m in config.methods:
        if m not in known:
            raise EdgepruneError(f"--methods: unknown method '{m}' (choose {', '.join(known)})")
    for s in config.sparsities:
        check_sparsity(s)
    if not config.methods or not config.sparsities or not config.seeds:
        raise EdgepruneError("--sweep needs at least one method, one sparsity and one seed")


def run_cell(config: SweepConfig, cell: Cell, work_dir: str | None = None) -> dict:
    """Prune -> (fine-tune) -> compile -> bench one cell; the cell record (never raises)."""
    from .. import checkpoint, data
    from ..prune import prune_model
    from .devices import parse
    from .harness import bench
    from .settings import BenchSettings

    record = {**asdict(cell), "status": "ok", "error": None, "achieved_sparsity": None, "accuracy_torch": None,
              "result": None}
    tmp = tempfile.TemporaryDirectory(prefix="edgeprune-sweep-") if work_dir is None else None
    work = Path(work_dir or tmp.name)
    try:
        model, meta = checkpoint.load_with_meta(config.checkpoint)
        ds = data.load(config.data or meta.get("dataset"), config.data_dir) if (config.data or meta.get("dataset")) else None
        outcome = prune_model(model, cell.method, cell.sparsity, seed=cell.seed, options=config.method_options,
                              dataset=ds, finetune_epochs=config.finetune_epochs,
                              finetune_lr=float(meta.get("training", {}).get("lr", 1e-3)))
        report = outcome.report
        record["achieved_sparsity"] = report["sparsity"]
        record["accuracy_torch"] = report.get("accuracy_finetuned", report.get("accuracy_pruned"))
        new_meta = {**meta, "pruning": report, "parent": str(config.checkpoint)}
        ckpt = work / f"{cell.key}.pt"
        checkpoint.save(outcome.model, ckpt, new_meta)
        device = parse(config.device, ssh_config=config.ssh_config)
        record["result"] = bench(str(ckpt), device, config.settings or BenchSettings(), runtimes=config.runtimes,
                                 variants=config.variants, data=config.data, data_dir=config.data_dir,
                                 command=f"edgeprune bench --sweep (cell {cell.key})")
    except EdgepruneError as e:
        record.update(status="failed", error=str(e))
        if getattr(e, "doc", None) is not None:
            record["result"] = e.doc
    except Exception as e:  # a method or backend bug: recorded, the other cells still run
        record.update(status="failed", error=f"{type(e).__name__}: {e}")
    finally:
        if tmp is not None:
            tmp.cleanup()
    return record


def run_sweep(config: SweepConfig, json_path: str | None = None, *, log: Callable[[str], None] = lambda m: None,
              mapper: Callable[[Callable, Iterable], Iterable] = map) -> dict:
    """Every cell of the grid, in order; the sweep document (saved after each cell)."""
    check_grid(config)
    doc = {"format": SWEEP_FORMAT, "version": VERSION, "source": str(config.checkpoint), "complete": False,
           "grid": {"methods": config.methods, "sparsities": config.sparsities, "seeds": config.seeds,
                    "finetune_epochs": config.finetune_epochs, "device": config.device},
           "cells": []}
    cells = config.cells()

    def save():
        if json_path:
            write_text_atomic(json_path, dumps_json(_clean(doc)))

    for i, record in enumerate(mapper(lambda c: run_cell(config, c), cells), 1):
        doc["cells"].append(record)
        log(f"[{i}/{len(cells)}] {record['method']} sparsity {record['sparsity']:g} seed {record['seed']}: "
            + ("ok" if record["status"] == "ok" else f"FAILED ({record['error']})"))
        save()
    doc["complete"] = all(c["status"] == "ok" for c in doc["cells"])
    save()
    return doc


def _clean(obj):
    from .records import clean_json as clean

    return clean(obj)

"""The sweep's report drawn from cell records: the cells table, the plots over the grid, Pareto fronts.

The runtimes of the cells are those of a real bench run (the IR artifacts of the pruned digits LSTM),
placed in cell records the way ``evaluate_cell`` places them: accuracy and sizes in ``runtimes``,
the device's latency in ``timing.latency``.
"""

import copy

import numpy as np
import pytest

from edgeprune.bench import bench
from edgeprune.bench.devices import parse
from edgeprune.sweep import report
from edgeprune.sweep.cell import empty_record
from edgeprune.sweep.schema import validate
from edgeprune.sweep.spec import Cell

from ..bench.conftest import ir_artifacts, pruned_checkpoint, quick_settings  # noqa: F401  (shared fixtures)

LATENCY_KEYS = ("id", "call_path", "emulated", "status", "error", "latency", "device")


@pytest.fixture(scope="module")
def doc(ir_artifacts):  # noqa: F811
    return bench(str(ir_artifacts), parse("local"), quick_settings())


def cell_record(doc: dict, method: str, sparsity: float, *, error: str | None = None) -> dict:
    record = empty_record(Cell(method, sparsity, 0))
    if error is not None:
        record.update(status="failed", stage="prune", error=error)
    else:
        record["pruning"] = {"method": method, "sparsity": sparsity, "seed": 0}
        record["model"] = {"nnz": doc["source"]["nnz"]}
        record["runtimes"] = [
            {**{k: v for k, v in r.items() if k != "os_threads"}, "latency": {}}
            for r in doc["runtimes"]
            if r["call_path"] == "python"
        ]
        record["timing"]["latency"] = {
            "runtimes": [
                {**{k: r.get(k) for k in LATENCY_KEYS}, "peak_rss_bytes": r["memory"].get("peak_rss_bytes")}
                for r in doc["runtimes"]
            ]
        }
    validate(record)
    return record


def sweep_doc(cells: list[dict], complete: bool) -> dict:
    return {"format": "edgeprune.sweep-report", "version": 2, "source": "x.pt", "complete": complete, "cells": cells}


def test_runtime_rows_merge_the_device_latency_into_the_cells_runtimes(doc):
    record = cell_record(doc, "magnitude", 0.5)
    assert all(r["latency"] == {} for r in record["runtimes"])  # kept apart in the record
    rows = report.runtime_rows(record)
    assert [r["id"] for r in rows] == [r["id"] for r in doc["runtimes"]] == ["torch", "ir"]
    for row, measured in zip(rows, doc["runtimes"]):
        assert row["latency"] == measured["latency"] and row["latency"]["step"]["p50"] > 0
        assert row["accuracy"] == measured["accuracy"]
        assert row["memory"]["storage_bytes"] == measured["memory"]["storage_bytes"]


def test_sweep_plots(doc, tmp_path):
    cells = [
        cell_record(doc, method, sparsity)
        for method, sparsity in (("magnitude", 0.5), ("magnitude", 0.9), ("random", 0.5), ("random", 0.9))
    ]
    cells.append(cell_record(doc, "random", 0.95, error="boom"))
    names = {p.name for p in report.write_report(sweep_doc(cells, False), tmp_path)}
    assert {"latency_vs_sparsity.png", "accuracy_vs_sparsity.png", "bytes_vs_sparsity.png", "report.md"} <= names
    md = (tmp_path / "report.md").read_text()
    cells_table = md.split("## Pareto front")[0]
    assert "FAILED: boom" in md and cells_table.count("| magnitude |") == 4  # 2 cells x 2 runtimes


def test_pareto_front_matches_brute_force():
    rng = np.random.default_rng(0)
    for _trial in range(200):
        n = int(rng.integers(1, 12))
        # few distinct values, so ties in cost and in accuracy are common
        pts = [(float(rng.integers(1, 6)), float(rng.integers(0, 5)) / 4) for _ in range(n)]
        front = report.pareto_front(pts)

        def beaten(i):
            return any((c <= pts[i][0] and a >= pts[i][1]) and (c < pts[i][0] or a > pts[i][1]) for c, a in pts)  # noqa: B023 - called within this iteration

        expected = {i for i in range(n) if not beaten(i)}
        assert {pts[i] for i in front} == {pts[i] for i in expected}  # exact duplicates keep one
        assert len(front) == len({pts[i] for i in expected})
        assert [pts[i][0] for i in front] == sorted(pts[i][0] for i in front)


def test_sweep_pareto_table_and_plot(doc, tmp_path):
    cells = []
    for method, sparsity, acc, storage in (
        ("magnitude", 0.5, 0.9, 4000),
        ("magnitude", 0.9, 0.5, 1000),
        ("random", 0.5, 0.8, 4000),
        ("random", 0.9, 0.6, 1000),
    ):
        record = cell_record(copy.deepcopy(doc), method, sparsity)
        for r in record["runtimes"]:
            r["memory"]["storage_bytes"] = storage
            for a in r["accuracy"].values():
                a["accuracy"] = acc
        cells.append(record)
    sweep = sweep_doc(cells, True)
    sets = {name: front for name, key, label, front in report.pareto_sets(sweep)}
    assert [(p["method"], p["sparsity"]) for p in sets["bytes"]] == [("random", 0.9), ("magnitude", 0.5)]
    names = {p.name for p in report.write_report(sweep, tmp_path)}
    assert "pareto_bytes.png" in names
    md = (tmp_path / "report.md").read_text()
    table = md.split("## Pareto front: accuracy vs weights + indices")[1].split("##")[0]
    assert "| random | 0.900 |" in table and "| magnitude | 0.500 |" in table and "| magnitude | 0.900 |" not in table

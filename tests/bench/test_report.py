import matplotlib.image as mpimg
import pytest

from edgeprune.bench import bench, report
from edgeprune.bench.devices import parse

from .conftest import quick_settings


@pytest.fixture(scope="module")
def doc(ir_artifacts):
    return bench(str(ir_artifacts), parse("local"), quick_settings())


def test_table_and_markdown_show_every_runtime(doc):
    rows = report.rows(doc)
    assert [r[0] for r in rows] == ["torch", "ir"]
    torch_row = rows[0]
    p50 = doc["runtimes"][0]["latency"]["step"]["p50"]
    assert torch_row[2] == report.fmt_latency({"unit": "ns", "p50": p50})
    md = report.markdown(doc)
    assert md.count("\n| torch |") == 1 and "| runtime | path | step p50 |" in md
    assert "Timing an empty Python call costs" in md
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(report.console_table(doc))
    text = console.export_text()
    assert "torch" in text and "peak RSS" in text


def test_units_are_never_mixed():
    assert report.fmt_latency({"unit": "ns", "p50": 1500.0}) == "1.5 µs"
    assert report.fmt_latency({"unit": "ns", "p50": 2.5e6}) == "2.50 ms"
    assert report.fmt_latency({"unit": "instructions", "p50": 12345.0}) == "12.3k insn"
    assert report.fmt_latency({"unit": "cycles", "p50": 812.0}) == "812 cyc"


def test_report_directory(doc, tmp_path):
    written = report.write_report(doc, tmp_path / "rep")
    assert {p.name for p in written} == {"report.md", "latency.png", "result.json"}
    image = mpimg.imread(tmp_path / "rep" / "latency.png")
    assert image.shape[0] > 100 and image.shape[1] > 300 and image.std() > 0  # a real picture, not blank


def test_sweep_plots(doc, tmp_path):
    cells = []
    for method, sparsity in (("magnitude", 0.5), ("magnitude", 0.9), ("random", 0.5), ("random", 0.9)):
        cells.append({"method": method, "sparsity": sparsity, "seed": 0, "status": "ok", "error": None,
                      "achieved_sparsity": sparsity, "accuracy_torch": 0.5, "result": doc})
    cells.append({"method": "random", "sparsity": 0.95, "seed": 0, "status": "failed", "error": "boom",
                  "achieved_sparsity": None, "accuracy_torch": None, "result": None})
    sweep = {"format": "edgeprune.bench-sweep", "version": 1, "source": "x.pt", "complete": False, "cells": cells}
    from edgeprune.bench.schema import validate

    validate(sweep)
    names = {p.name for p in report.write_report(sweep, tmp_path)}
    assert {"latency_vs_sparsity.png", "accuracy_vs_sparsity.png", "bytes_vs_sparsity.png", "report.md"} <= names
    md = (tmp_path / "report.md").read_text()
    cells_table = md.split("## Pareto front")[0]
    assert "FAILED: boom" in md and cells_table.count("| magnitude |") == 4  # 2 cells x 2 runtimes


def test_pareto_front_matches_brute_force():
    import numpy as np

    rng = np.random.default_rng(0)
    for trial in range(200):
        n = int(rng.integers(1, 12))
        # few distinct values, so ties in cost and in accuracy are common
        pts = [(float(rng.integers(1, 6)), float(rng.integers(0, 5)) / 4) for _ in range(n)]
        front = report.pareto_front(pts)

        def beaten(i):
            return any((c <= pts[i][0] and a >= pts[i][1]) and (c < pts[i][0] or a > pts[i][1]) for c, a in pts)

        expected = {i for i in range(n) if not beaten(i)}
        assert {pts[i] for i in front} == {pts[i] for i in expected}  # exact duplicates keep one
        assert len(front) == len({pts[i] for i in expected})
        assert [pts[i][0] for i in front] == sorted(pts[i][0] for i in front)


def test_sweep_pareto_table_and_plot(doc, tmp_path):
    import copy

    cells = []
    for method, sparsity, acc, storage in (("magnitude", 0.5, 0.9, 4000), ("magnitude", 0.9, 0.5, 1000),
                                           ("random", 0.5, 0.8, 4000), ("random", 0.9, 0.6, 1000)):
        result = copy.deepcopy(doc)
        for r in result["runtimes"]:
            r["memory"]["storage_bytes"] = storage
            for a in r["accuracy"].values():
                a["accuracy"] = acc
        cells.append({"method": method, "sparsity": sparsity, "seed": 0, "status": "ok", "error": None,
                      "achieved_sparsity": sparsity, "accuracy_torch": acc, "result": result})
    sweep = {"format": "edgeprune.bench-sweep", "version": 1, "source": "x.pt", "complete": True, "cells": cells}
    sets = {name: front for name, key, label, front in report.pareto_sets(sweep)}
    assert [(p["method"], p["sparsity"]) for p in sets["bytes"]] == [("random", 0.9), ("magnitude", 0.5)]
    names = {p.name for p in report.write_report(sweep, tmp_path)}
    assert "pareto_bytes.png" in names
    md = (tmp_path / "report.md").read_text()
    table = md.split("## Pareto front: accuracy vs weights + indices")[1].split("##")[0]
    assert "| random | 0.900 |" in table and "| magnitude | 0.500 |" in table and "| magnitude | 0.900 |" not in table

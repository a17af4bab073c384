"""run_sweep with the serial executor: RUN_DIR layout and schema, resuming, refusing another grid, failures."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgeprune.sweep.run import run_sweep
from edgeprune.sweep.rundir import RunDirError
from edgeprune.sweep.schema import validate

from .conftest import PLUGIN, cell_files, small_spec, without_timing

ROOT = Path(__file__).resolve().parents[2]


def test_run_dir_holds_every_cell_index_and_report(serial_run):
    run_dir, outcome = serial_run
    cells = cell_files(run_dir)
    assert len(cells) == 8 and sorted(outcome.ran) == sorted(cells) and not outcome.resumed
    for record in cells.values():
        validate(record)
        assert record["status"] == "ok", record["error"]
        assert [r["id"] for r in record["runtimes"]] == ["torch", "c"]
        assert record["pruning"]["finetune_epochs"] == 1
        c = record["runtimes"][1]
        # the compiled C model agrees with torch on the test split it was measured on
        for mode in ("sequence", "step"):
            assert c["accuracy"][mode]["samples"] == 120
            assert c["accuracy"][mode]["agreement_vs_reference"] >= 0.99
            assert c["accuracy"][mode]["max_abs_vs_reference"] < 1e-4
    validate(json.loads((run_dir / "sweep.json").read_text()))
    index = json.loads((run_dir / "index.json").read_text())
    validate(index)
    assert index["running"] is False and index["finished"] == index["ok"] == 8
    # higher sparsity, fewer stored bytes; seeds do not change a magnitude mask
    size = {k: r["runtimes"][1]["memory"]["storage_bytes"] for k, r in cells.items()}
    assert size["magnitude-s0.9-seed0"] < size["magnitude-s0.5-seed0"]
    assert cells["magnitude-s0.5-seed0"]["pruning"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    report = run_dir / "report"
    assert {"report.md", "result.json", "accuracy_vs_sparsity.png", "bytes_vs_sparsity.png", "pareto_bytes.png"} <= {
        p.name for p in report.iterdir()
    }
    md = (report / "report.md").read_text()
    assert "## Pareto front: accuracy vs weights + indices" in md and md.count("| expander |") >= 8


def test_same_seed_same_bytes(serial_run, digits_checkpoint, tmp_path):
    run_dir, _ = serial_run
    again = run_sweep(
        small_spec(digits_checkpoint, methods=["expander"], seeds=[1], sparsities=[0.9]),
        tmp_path / "again",
        cluster="serial",
        report=False,
    )
    key = "expander-s0.9-seed1"
    assert again.ran == [key]
    assert without_timing(cell_files(tmp_path / "again")[key]) == without_timing(cell_files(run_dir)[key])


def test_a_failing_cell_is_recorded_and_the_others_complete(digits_checkpoint, tmp_path):
    from tests.sweep.explode_method import NAME

    spec = small_spec(digits_checkpoint, methods=["magnitude", NAME], seeds=[0], finetune_epochs=0, plugins=[PLUGIN])
    outcome = run_sweep(spec, tmp_path / "run", cluster="serial")
    cells = cell_files(tmp_path / "run")
    assert len(cells) == 4
    failed = cells[f"{NAME}-s0.9-seed0"]
    validate(failed)
    assert failed["status"] == "failed" and failed["stage"] == "prune" and failed["error"] == "cannot prune that far"
    assert [r["key"] for r in outcome.failed] == [f"{NAME}-s0.9-seed0"]
    for key, record in cells.items():
        if record is not failed:
            assert record["status"] == "ok", (key, record["error"])
            assert [r["id"] for r in record["runtimes"]] == ["torch", "c"]
    assert outcome.report["complete"] is False and len(outcome.report["cells"]) == 4
    assert cells["magnitude-s0.9-seed0"]["pruning"]["sparsity"] == pytest.approx(0.9, abs=0.01)
    nnz = {s: cells[f"magnitude-s{s}-seed0"]["model"]["nnz"] for s in (0.5, 0.9)}
    assert nnz[0.9] < nnz[0.5]
    index = json.loads((tmp_path / "run" / "index.json").read_text())
    assert (index["ok"], index["failed"]) == (3, 1)
    assert "FAILED: cannot prune that far" in (tmp_path / "run" / "report" / "report.md").read_text()
    # resuming keeps the recorded failure; --retry-failed runs exactly that cell again
    assert run_sweep(spec, tmp_path / "run", cluster="serial", report=False).ran == []
    assert run_sweep(spec, tmp_path / "run", cluster="serial", report=False, retry_failed=True).ran == [failed["key"]]


def test_a_run_dir_refuses_another_grid_or_checkpoint(serial_run, digits_checkpoint, tmp_path):
    run_dir, _ = serial_run
    with pytest.raises(
        RunDirError, match=r"made by a different sweep \(sparsities: \[0.5, 0.9\] there, \[0.5, 0.8\] here\)"
    ):
        run_sweep(small_spec(digits_checkpoint, sparsities=[0.5, 0.8]), run_dir, cluster="serial")
    with pytest.raises(RunDirError, match="finetune_epochs: 1 there, 2 here"):
        run_sweep(small_spec(digits_checkpoint, finetune_epochs=2), run_dir, cluster="serial")
    other = tmp_path / "other.pt"
    other.write_bytes(Path(digits_checkpoint).read_bytes())
    from edgeprune import checkpoint

    model, meta = checkpoint.load_with_meta(other)
    checkpoint.save(model, other, {**meta, "note": "changed"})
    with pytest.raises(RunDirError, match="different sweep \\(the checkpoint's contents"):
        run_sweep(small_spec(other), run_dir, cluster="serial")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="is not a sweep run directory"):
        run_sweep(small_spec(digits_checkpoint), foreign, cluster="serial")


def test_killed_mid_run_then_resumed_runs_only_the_missing_cells(digits_checkpoint, tmp_path):
    """A real `edgeprune sweep` process, SIGKILLed after two cells, then the same command again."""
    run_dir = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "edgeprune",
        "sweep",
        str(digits_checkpoint),
        "--methods",
        "magnitude,random",
        "--sparsities",
        "0.5,0.9",
        "--seeds",
        "0,1",
        "--finetune-epochs",
        "0",
        "--accuracy-samples",
        "120",
        "--cluster",
        "serial",
        "--no-progress",
        "-o",
        str(run_dir),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while len(list((run_dir / "cells").glob("*.json"))) < 2:
            assert proc.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    before = {p.name: p.read_bytes() for p in (run_dir / "cells").glob("*.json")}
    assert 2 <= len(before) < 8
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]  # nothing half-written
    sessions = {json.loads(b)["timing"]["session"] for b in before.values()}
    assert len(sessions) == 1

    outcome = run_sweep(
        small_spec(digits_checkpoint, methods=["magnitude", "random"], finetune_epochs=0), run_dir, cluster="serial"
    )
    after = cell_files(run_dir)
    assert len(after) == 8
    assert sorted(outcome.resumed) == sorted(n[:-5] for n in before)
    assert sorted(outcome.ran) == sorted(set(after) - set(outcome.resumed))  # exactly the missing ones
    for name, data in before.items():  # finished cells are never touched again
        assert (run_dir / "cells" / name).read_bytes() == data
    assert {after[k]["timing"]["session"] for k in outcome.ran}.isdisjoint(sessions)
    assert json.loads((run_dir / "index.json").read_text())["finished"] == 8


def test_one_sweep_per_run_dir_at_a_time(tmp_path):
    from edgeprune.sweep.rundir import RunDir

    first = RunDir(tmp_path / "run")
    first.open({"methods": ["m"]}, ["k"], "x.pt")
    try:
        with pytest.raises(RunDirError, match=rf"another sweep is running here \(pid {os.getpid()}\)"):
            RunDir(tmp_path / "run").open({"methods": ["m"]}, ["k"], "x.pt")
    finally:
        first.close()
    again = RunDir(tmp_path / "run")
    assert again.open({"methods": ["m"]}, ["k"], "x.pt") == {}
    again.close()


def test_with_a_device_latency_is_measured_and_kept_apart(serial_run, digits_checkpoint, tmp_path):
    from edgeprune.bench.settings import BenchSettings
    from edgeprune.bench.stats import Budget

    settings = BenchSettings(
        budget=Budget.quick(), isolate=False, native=False, latency_sequences=2, keep_samples=False
    )
    spec = small_spec(
        digits_checkpoint, methods=["magnitude"], sparsities=[0.9], seeds=[0], device="local", bench=settings
    )
    outcome = run_sweep(spec, tmp_path / "run", cluster="serial")
    record = cell_files(tmp_path / "run")["magnitude-s0.9-seed0"]
    validate(record)
    assert record["status"] == "ok", record["error"]
    latency = {r["id"]: r for r in record["timing"]["latency"]["runtimes"]}
    assert set(latency) == {"torch", "c"}
    for r in latency.values():
        step = r["latency"]["step"]
        assert r["status"] == "ok" and step["unit"] == "ns" and 0 < step["min"] <= step["p50"] <= step["max"]
    # the measurement lives in timing only: the rest is the same cell as a sweep without a device
    assert without_timing(record) == without_timing(cell_files(serial_run[0])["magnitude-s0.9-seed0"])
    names = {p.name for p in outcome.report_files}
    assert {"latency_vs_sparsity.png", "pareto_latency.png", "pareto_bytes.png"} <= names
    assert "## Pareto front: accuracy vs step p50 (ns)" in (tmp_path / "run" / "report" / "report.md").read_text()

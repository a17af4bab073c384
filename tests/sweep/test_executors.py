"""The same cells on a local Ray instance (started once for this module) and in the serial fallback."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from edgeprune.sweep.run import run_sweep

from .conftest import PLUGIN, cell_files, small_spec, without_timing

ray = pytest.importorskip("ray", reason="needs ray (pip install 'edgeprune[sweep]')")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ray_executor():
    from edgeprune.sweep.executors import RayExecutor

    before = dict(os.environ)
    executor = RayExecutor(None, num_cpus=2)
    assert dict(os.environ) == {**before, "RAY_USAGE_STATS_ENABLED": "0"}  # the workers' settings stay theirs
    yield executor
    executor.close()
    assert not ray.is_initialized()


def test_ray_local_gives_the_serial_fallbacks_bytes(ray_executor, serial_run, digits_checkpoint, tmp_path):
    serial_dir, _ = serial_run
    outcome = run_sweep(small_spec(digits_checkpoint), tmp_path / "ray", executor=ray_executor)
    on_ray, serial = cell_files(tmp_path / "ray"), cell_files(serial_dir)
    assert sorted(on_ray) == sorted(serial) and len(on_ray) == 8
    for key in serial:
        assert on_ray[key]["status"] == "ok", on_ray[key]["error"]
        assert without_timing(on_ray[key]) == without_timing(serial[key]), key
        assert on_ray[key]["timing"]["executor"] == "ray local"
    # the cells really ran in Ray workers, not in this process
    assert {r["timing"]["worker"]["pid"] for r in on_ray.values()}.isdisjoint({os.getpid()})
    assert {r["timing"]["worker"]["pid"] for r in serial.values()} == {os.getpid()}
    assert outcome.executor == "ray local"


def test_failing_and_crashing_cells_on_ray_are_recorded_and_the_others_complete(
    ray_executor, digits_checkpoint, tmp_path
):
    from tests.sweep.explode_method import CRASH, NAME

    spec = small_spec(
        digits_checkpoint, methods=["magnitude", NAME, CRASH], seeds=[0], finetune_epochs=0, plugins=[PLUGIN]
    )
    outcome = run_sweep(spec, tmp_path / "run", executor=ray_executor, report=False)
    cells = cell_files(tmp_path / "run")
    crashed = cells.pop(f"{CRASH}-s0.9-seed0")
    assert {k: (r["status"], r["error"]) for k, r in cells.items()} == {
        "magnitude-s0.5-seed0": ("ok", None),
        "magnitude-s0.9-seed0": ("ok", None),
        f"{NAME}-s0.5-seed0": ("ok", None),
        f"{NAME}-s0.9-seed0": ("failed", "cannot prune that far"),
        f"{CRASH}-s0.5-seed0": ("ok", None),
    }
    # its worker died (twice: Ray retries a dead worker's task once): recorded as the task's failure
    assert crashed["status"] == "failed" and crashed["error"].startswith("the Ray task failed: ")
    assert "\n" not in crashed["error"] and "\x1b" not in crashed["error"]
    assert len(outcome.failed) == 2


def _processes_with(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker.encode() in (proc / "environ").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                pass
    return found


def test_sigterm_stops_a_ray_sweep_cleanly_and_it_resumes(digits_checkpoint, serial_run, tmp_path):
    """A real `edgeprune sweep` on its own local Ray instance, stopped with SIGTERM after its first cell."""
    run_dir = tmp_path / "run"
    marker = f"EDGEPRUNE_TEST_MARKER={uuid.uuid4().hex}"
    args = [
        sys.executable,
        "-m",
        "edgeprune",
        "sweep",
        str(digits_checkpoint),
        "--methods",
        "magnitude,expander",
        "--sparsities",
        "0.5,0.9",
        "--seeds",
        "0,1",
        "--finetune-epochs",
        "1",
        "--accuracy-samples",
        "120",
        "--cluster",
        "local",
        "--parallel",
        "1",
        "--no-progress",
        "-o",
        str(run_dir),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), marker.split("=")[0]: marker.split("=")[1]}
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    try:
        while not list((run_dir / "cells").glob("*.json")):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 1, err
    last = lines[-1]
    assert last.startswith("edgeprune: error: interrupted: ") and "run the same command again" in last, err
    deadline = time.monotonic() + 20  # Ray's processes (raylet, GCS, workers) go with the driver
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_with(marker) == []
    done = cell_files(run_dir)
    assert 1 <= len(done) < 8
    index = json.loads((run_dir / "index.json").read_text())
    assert index["finished"] == len(done) and index["running"] is True  # stopped before the end
    serial = cell_files(serial_run[0])  # what was saved is what a sweep that never stopped computes
    for key, record in done.items():
        assert without_timing(record) == without_timing(serial[key]), key
    recorder = _Recorder()
    outcome = run_sweep(small_spec(digits_checkpoint), run_dir, report=False, executor=recorder)
    assert sorted(outcome.resumed) == sorted(done)
    assert sorted(recorder.asked) == sorted(set(serial) - set(done))  # a restart asks only for the missing cells


class _Recorder:
    """An executor that records which cells it is asked for (and fails them without work)."""

    name = "check"

    def __init__(self):
        self.asked = []

    def run(self, spec, cells, checkpoint_bytes):
        from edgeprune.sweep.cell import failed_record

        self.asked = [c.key for c in cells]
        for cell in cells:
            yield failed_record(cell, "not run in this test")

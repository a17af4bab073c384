import json

import pytest


def test_demo_runs_the_whole_pipeline(run_cli, tmp_path):
    r = run_cli("demo", "-o", tmp_path / "demo")
    assert r.code == 0, r.err
    assert "dense vs pruned" in r.out and "90%" in r.out
    report = json.loads((tmp_path / "demo" / "compiled" / "compile.json").read_text())
    assert report["verification"] and all(v["passed"] for v in report["verification"])
    assert (tmp_path / "demo" / "pruned.pt").exists()
    # what pruning buys: the side-by-side (timed in the run: only its presence is checked) and the M4 sizes
    assert "what pruning buys" in r.out and "edgeprune C (native step)" in r.out and "ONNX Runtime" in r.out
    assert "Cortex-M4 flash" in r.out or "Cortex-M4 sizes skipped" in r.out


def test_demo_gains_compare_dense_and_pruned_builds(tmp_path):
    """The side-by-side's sizes come from real builds of both models (times are only checked to exist)."""
    from edgeprune import demo
    from edgeprune.backends.c.toolchain import toolchain

    from ..backends.c.conftest import random_ir

    dense, pruned = (
        random_ir(density=1.0, hidden=(32,), cells=("lstm",)),
        random_ir(density=0.1, hidden=(32,), cells=("lstm",)),
    )
    from edgeprune import backends

    targets = [t for t in ("c", "onnx") if backends.get(t).unavailable() is None]
    if "c" not in targets:
        pytest.skip(f"target c: {backends.get('c').unavailable()}")
    result = demo.DemoResult([], None, tmp_path)
    demo.measure_gains(result, dense, pruned, targets, tmp_path / "speed", 0.2)
    runtimes = {row[0] for row in result.speed}
    assert "edgeprune C (native step)" in runtimes and ("onnx" not in targets or "ONNX Runtime" in runtimes)
    assert all(d > 0 and p > 0 and r == pytest.approx(d / p) for _, d, p, r in result.speed)
    if toolchain("cortex-m4").missing():
        assert result.notes and "Cortex-M4 sizes skipped" in result.notes[0]
    else:
        flash = next(row for row in result.sizes if row[0].startswith("Cortex-M4 flash"))
        assert flash[2] < flash[1]  # 10% of the weights: far less flash

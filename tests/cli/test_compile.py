import json

import numpy as np

from edgeprune import ir


def test_compile_ir_target(run_cli, tmp_path, digits_checkpoint):
    out = tmp_path / "c"
    r = run_cli("compile", digits_checkpoint, "--target", "ir", "-o", out, "--verify-samples", "64")
    assert r.code == 0, r.err
    assert "64 test samples of digits" in r.out and "ok" in r.out
    doc = json.loads((out / "compile.json").read_text())
    assert {v["mode"] for v in doc["verification"]} == {"sequence", "step"}
    assert all(v["max_abs_error"] <= 1e-5 for v in doc["verification"])
    assert ir.load(out).meta["dataset"] == "digits"


def test_compile_twice_gives_the_same_bytes(run_cli, tmp_path, digits_checkpoint):
    for name in ("a", "b"):
        assert run_cli("compile", digits_checkpoint, "-o", tmp_path / name, "--verify-samples", "8").code == 0
    for f in ("model.json", "weights.npz", "compile.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_invalid_ir_is_refused_and_nothing_is_written(run_cli, tmp_path, digits_checkpoint):
    src = tmp_path / "src"
    assert run_cli("compile", digits_checkpoint, "-o", src, "--verify-samples", "8").code == 0
    with np.load(src / "weights.npz") as f:
        arrays = dict(f)
    arrays["layers.0.weight.data"][0] = np.nan
    np.savez(src / "weights.npz", **arrays)
    r = run_cli("compile", src, "-o", tmp_path / "out", "--verify-data", "random")
    assert r.code != 0 and len(r.err_lines) == 1 and "non-finite" in r.err
    assert not (tmp_path / "out").exists()


def test_unknown_target(run_cli, tmp_path, digits_checkpoint):
    r = run_cli("compile", digits_checkpoint, "--target", "coreml", "-o", tmp_path / "o")
    assert r.code != 0 and len(r.err_lines) == 1 and "unknown target 'coreml'" in r.err


def test_a_relative_output_directory_works_for_every_available_target(
    run_cli, tmp_path, digits_checkpoint, monkeypatch
):
    from edgeprune import backends

    available = [b.name for b in backends.all_backends() if b.unavailable() is None]
    targets = ",".join(available)
    monkeypatch.chdir(tmp_path)
    r = run_cli("compile", digits_checkpoint, "--target", targets, "-o", "relative/out", "--verify-samples", "8")
    assert r.code == 0, r.err
    doc = json.loads((tmp_path / "relative" / "out" / "compile.json").read_text())
    assert {a["target"] for a in doc["artifacts"]} == set(available)
    assert not list((tmp_path / "relative").glob(".*tmp"))


def test_foreign_model_compiles_to_every_target_with_no_other_flag(run_cli, tmp_path):
    """An IR without a dataset or sequence length: random inputs shaped from the model, T for TFLite."""
    from edgeprune import frontend

    from ..conftest import make_model

    graph = frontend.lower(make_model("gru", (6,)))
    graph.meta.clear()
    ir.save(graph, tmp_path / "src")
    r = run_cli("compile", tmp_path / "src", "--target", "all", "-o", tmp_path / "out", "--seq-len", "5")
    assert r.code == 0, r.err
    assert "random sequences of 5 steps" in r.out and "records no dataset" in r.out
    doc = json.loads((tmp_path / "out" / "compile.json").read_text())
    assert doc["verification"] and all(v["passed"] for v in doc["verification"])


def test_per_step_regression_model_compiles_and_shows_no_argmax(run_cli, tmp_path):
    from edgeprune import frontend

    from .. import zoo

    graph = frontend.lower(zoo.build("denoiser", sparsity=0.8))
    ir.save(graph, tmp_path / "src")
    r = run_cli("compile", tmp_path / "src", "--target", "ir,onnx", "-o", tmp_path / "out")
    assert r.code == 0, r.err
    doc = json.loads((tmp_path / "out" / "compile.json").read_text())
    assert doc["model"]["output"] == "every" and doc["model"]["task"] == "regress"
    assert all(v["passed"] and v["argmax_agreement"] is None and v["task"] == "regress" for v in doc["verification"])


def test_piped_tables_never_wrap_their_cells(tmp_path):
    """Before: piped output wrapped the verification table at the console width (runtime cells split
    over several rows with an empty artifact column)."""
    import subprocess
    import sys
    from pathlib import Path

    from edgeprune import frontend

    from ..conftest import make_model

    ir.save(frontend.lower(make_model("gru", (6,))), tmp_path / "src")
    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "edgeprune", "compile", str(tmp_path / "src"), "--target", "ir,c"]
    done = subprocess.run([*cmd, "-o", str(tmp_path / "o")], capture_output=True, text=True, cwd=root, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("│")]
    assert rows and all(line.split("│")[1].strip() for line in rows), done.stdout

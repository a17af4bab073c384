"""edgeprune sweep from the command line: a config file, the summary, and one clear line per bad input."""

import json

import pytest

from edgeprune.fileio import dumps_json


def _one_line(r, *fragments):
    assert r.code != 0
    assert len(r.err_lines) == 1, r.err
    line = r.err_lines[0]
    assert line.startswith("edgeprune: error: ")
    for f in fragments:
        assert f in line, line
    return line


def test_sweep_from_a_config_file(run_cli, digits_checkpoint, tmp_path):
    config = tmp_path / "sweep.toml"
    config.write_text(
        f'checkpoint = "{digits_checkpoint}"\nmethods = ["magnitude", "random"]\n'
        'sparsities = [0.5, 0.9]\nseeds = [3]\naccuracy_samples = 60\ncluster = "serial"\n'
        '[method_options]\nscope = "global"\n'
    )
    r = run_cli("sweep", "--config", config, "--sparsities", "0.8", "--no-progress", "-o", tmp_path / "run")
    assert r.code == 0, r.err
    cells = sorted(p.name for p in (tmp_path / "run" / "cells").iterdir())
    assert cells == ["magnitude-s0.8-seed3.json", "random-s0.8-seed3.json"]  # the flag wins over the file
    record = json.loads((tmp_path / "run" / "cells" / cells[0]).read_text())
    assert record["pruning"]["options"] == {"scope": "global"} and record["seed"] == 3
    assert record["runtimes"][1]["accuracy"]["sequence"]["samples"] == 60
    assert "Pareto front, accuracy vs weights + indices" in r.out and "report: " in r.out
    assert "(serial)" in r.out
    # run again: nothing left to do, same summary, nothing rewritten
    before = (tmp_path / "run" / "cells" / cells[0]).read_bytes()
    r = run_cli("sweep", "--config", config, "--sparsities", "0.8", "--no-progress", "-o", tmp_path / "run")
    assert r.code == 0 and "2 of 2 cells already done" in r.out + r.err
    assert (tmp_path / "run" / "cells" / cells[0]).read_bytes() == before


def test_sweep_with_latency_on_a_device(run_cli, digits_checkpoint, tmp_path):
    """What `bench --sweep` did: the grid compiled, measured on a device, plotted over sparsity."""
    from edgeprune.sweep.schema import validate

    run_dir = tmp_path / "run"
    r = run_cli(
        "sweep",
        digits_checkpoint,
        "--methods",
        "magnitude,random",
        "--sparsities",
        "0.5",
        "--targets",
        "ir",
        "--device",
        "local",
        "--quick",
        "--accuracy-samples",
        "16",
        "--cluster",
        "serial",
        "--no-progress",
        "-o",
        run_dir,
    )
    assert r.code == 0, r.err
    cells = [json.loads(p.read_text()) for p in sorted((run_dir / "cells").glob("*.json"))]
    for record in cells:
        validate(record)
        latency = {m["id"]: m for m in record["timing"]["latency"]["runtimes"]}
        assert set(latency) == {"torch", "ir"} and all(m["latency"]["step"]["p50"] > 0 for m in latency.values())
    assert [(c["method"], c["status"]) for c in cells] == [("magnitude", "ok"), ("random", "ok")]
    assert {"accuracy_vs_sparsity.png", "latency_vs_sparsity.png", "bytes_vs_sparsity.png"} <= {
        p.name for p in (run_dir / "report").iterdir()
    }


def test_failed_cells_make_a_non_zero_exit_with_one_line(run_cli, digits_checkpoint, tmp_path):
    from tests.sweep.explode_method import NAME

    r = run_cli(
        "sweep",
        digits_checkpoint,
        "--methods",
        f"magnitude,{NAME}",
        "--sparsities",
        "0.9",
        "--plugin",
        "tests.sweep.explode_method",
        "--cluster",
        "serial",
        "--accuracy-samples",
        "30",
        "--no-progress",
        "-o",
        tmp_path / "run",
    )
    _one_line(r, "1 of 2 cells failed", f"{NAME}-s0.9-seed0", "in prune: cannot prune that far")
    assert (tmp_path / "run" / "cells" / "magnitude-s0.9-seed0.json").exists()


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--methods", "nope"], ["--methods: unknown method 'nope'"]),
        (["--sparsities", "0.5,1.5"], ["sparsity must be in [0, 1), got 1.5"]),
        (["--sparsities", "0.5,x"], ["--sparsities must be comma-separated numbers"]),
        (["--seeds", "0,0"], ["--seeds: 0 is listed twice"]),
        (["--finetune-epochs", "-1"], ["--finetune-epochs must be >= 0"]),
        (["--cluster", "yarn"], ["--cluster: expected local", "got 'yarn'"]),
        (["--parallel", "0"], ["--parallel must be >= 1"]),
        (["--targets", "nosuch"], ["--targets: unknown target 'nosuch'"]),
        (["--device", "ftp://x"], ["bad device 'ftp://x'"]),
        (["--methods", "magnitude", "--round-epochs", "0"], ["--round-epochs does not apply to any of magnitude"]),
        (["--plugin", "no.such.module"], ["--plugin no.such.module: cannot import it"]),
    ],
)
def test_bad_flags_give_one_line(run_cli, digits_checkpoint, tmp_path, args, fragments):
    r = run_cli("sweep", digits_checkpoint, "--cluster", "serial", *args, "-o", tmp_path / "run")
    _one_line(r, *fragments)
    assert not (tmp_path / "run").exists()  # nothing written before the grid is known to be good


def test_bad_sources_and_run_dirs_give_one_line(run_cli, digits_checkpoint, tmp_path):
    _one_line(run_cli("sweep", "--methods", "magnitude", "-o", tmp_path / "r"), "give a checkpoint")
    _one_line(run_cli("sweep", digits_checkpoint), "-o/--output RUN_DIR is required")
    _one_line(run_cli("sweep", tmp_path / "nope.pt", "-o", tmp_path / "r"), "nope.pt: no such checkpoint file")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    _one_line(run_cli("sweep", junk, "-o", tmp_path / "r"), "junk.pt: not a readable edgeprune checkpoint")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "x").write_text("x")
    _one_line(run_cli("sweep", digits_checkpoint, "--cluster", "serial", "-o", foreign), "is not a sweep run directory")
    made = tmp_path / "made"
    made.mkdir()
    (made / "sweep.json").write_text(
        dumps_json({"format": "edgeprune.sweep", "version": 1, "identity": {"methods": ["random"]}})
    )
    _one_line(run_cli("sweep", digits_checkpoint, "--cluster", "serial", "-o", made), "was made by a different sweep")


@pytest.mark.parametrize(
    "text, fragment",
    [
        ('methods = ["magnitude"\n', "not valid TOML"),
        ('method = ["magnitude"]\n', "unknown key 'method'"),
        ("sparsities = 0.5\n", "'sparsities' must be a list of numbers"),
        ('seeds = ["a"]\n', "'seeds' must be a list of integers"),
        ("finetune_epochs = true\n", "'finetune_epochs' must be an integer"),
    ],
)
def test_bad_config_files_give_one_line(run_cli, digits_checkpoint, tmp_path, text, fragment):
    config = tmp_path / "sweep.toml"
    config.write_text(text)
    _one_line(run_cli("sweep", digits_checkpoint, "--config", config, "-o", tmp_path / "run"), "sweep.toml", fragment)
    _one_line(
        run_cli("sweep", digits_checkpoint, "--config", tmp_path / "none.toml", "-o", tmp_path / "run"),
        "none.toml: no such file",
    )


def test_sweep_a_regression_model_labels_its_metric(run_cli, tmp_path):
    from ..bench.v2models import denoise_npz, sequence_npz, trained_checkpoint

    ckpt = trained_checkpoint("denoiser", denoise_npz(tmp_path / "noisy.npz"), tmp_path / "d.pt")
    r = run_cli(
        "sweep",
        ckpt,
        "--methods",
        "magnitude",
        "--sparsities",
        "0.5,0.9",
        "--targets",
        "ir,onnx",
        "--accuracy-samples",
        "12",
        "--cluster",
        "serial",
        "--no-progress",
        "-o",
        tmp_path / "run",
    )
    assert r.code == 0, r.err
    assert "MSE" in r.out and "Pareto front, MSE vs weights + indices" in r.out and "accuracy" not in r.out
    record = json.loads((tmp_path / "run" / "cells" / "magnitude-s0.5-seed0.json").read_text())
    assert record["model"]["task"] == "regress"
    assert all(a["metric"] == "mse" and a["mse"] > 0 for x in record["runtimes"] for a in x["accuracy"].values())
    r = run_cli(
        "sweep",
        ckpt,
        "--methods",
        "magnitude",
        "--sparsities",
        "0.5",
        "--targets",
        "ir",
        "--data",
        sequence_npz(tmp_path / "s.npz", 9),
        "--cluster",
        "serial",
        "--no-progress",
        "-o",
        tmp_path / "bad",
    )
    _one_line(r, "in prune", "the data has class labels per sequence but the model gives regression targets per step")

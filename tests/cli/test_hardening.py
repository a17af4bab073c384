"""Issue 18: bad inputs are refused in one line before any slow work; threads are explicit."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import edgeprune

READ_ONLY = Path("/sys/edgeprune-test")  # no process, root included, can create files in /sys


@pytest.fixture
def no_training(monkeypatch):
    """Any training or pruning reached by a command that should have failed first is a test failure."""
    import edgeprune.cli.train as cli_train
    from edgeprune import demo, prune

    def forbidden(*a, **k):
        raise AssertionError("slow work started before the input was checked")

    monkeypatch.setattr(cli_train, "run_training", forbidden)
    monkeypatch.setattr(demo, "train", forbidden)
    monkeypatch.setattr(prune, "prune_model", forbidden)


def _npz(path, classes, features=8, n=200):
    rng = np.random.default_rng(0)
    np.savez(path, X=rng.random((n, 8, features), dtype=np.float32), y=np.arange(n) % classes)
    return path


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "-o", "{file}/m.pt"], "a_file is a file, not a directory"),
        (["train", "-o", f"{READ_ONLY}/m.pt"], r"cannot write in /sys \(Permission denied\)"),
        (
            [
                "prune",
                "{ckpt}",
                "--method",
                "magnitude",
                "--sparsity",
                "0.5",
                "--finetune-epochs",
                "1",
                "-o",
                "{file}/p.pt",
            ],
            "a_file is a file, not a directory",
        ),
        (
            ["prune", "{ckpt}", "--method", "magnitude", "--sparsity", "0.5", "-o", f"{READ_ONLY}/p.pt"],
            "cannot write in /sys",
        ),
        (["compile", "{ckpt}", "-o", "{file}/c"], "a_file is a file, not a directory"),
        (["compile", "{ckpt}", "-o", f"{READ_ONLY}/c"], "cannot write in /sys"),
        (["demo", "-o", "{file}/d"], "a_file is a file, not a directory"),
        (["demo", "-o", f"{READ_ONLY}/d"], "cannot write in /sys"),
    ],
)
def test_unwritable_outputs_fail_before_training(run_cli, tmp_path, digits_checkpoint, no_training, args, message):
    """Before: FileExistsError/PermissionError as 'internal error' (rc 70), after training the whole model."""
    (tmp_path / "a_file").write_text("x")
    argv = [a.format(file=tmp_path / "a_file", ckpt=digits_checkpoint) for a in args]
    r = run_cli(*argv)
    assert r.code == 1 and len(r.err_lines) == 1 and r.err.startswith("edgeprune: error:"), r.err
    assert __import__("re").search(message, r.err), r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--hidden", "10000000"],
            r"has 400,000,500,000,010 parameters: training it needs about 7.1 PiB, this machine has",
        ),
        (["--hidden", "100000,100000"], r"training it needs about 2.2 TiB"),
        (["--hidden", "64", "--layers", "100000"], r"training it needs about"),
        (["--lr", "nan"], r"--lr must be a finite number > 0, got nan"),
        (["--lr", "inf"], r"--lr must be a finite number > 0, got inf"),
        (["--max-train-samples", "0"], r"--max-train-samples must be >= 1"),
        (["--threads", "0"], r"--threads must be >= 1, got 0"),
    ],
)
def test_impossible_training_settings_are_one_line(run_cli, tmp_path, no_training, args, message):
    """Before: --hidden 10000000 and --lr nan ended as 'internal error' (allocator RuntimeError, NaN loss)."""
    r = run_cli("train", *args, "-o", tmp_path / "m.pt")
    assert r.code == 1 and len(r.err_lines) == 1, r.err
    assert __import__("re").search(message, r.err), r.err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "classes, features, message",
    [
        (20, 8, r"c has 20 classes \(labels 0..19\), the model has 10"),
        (5, 8, r"c has 5 classes \(labels 0..4\), the model has 10"),
        (10, 3, r"c has 3 features per step, the model takes 8"),
    ],
)
def test_data_must_match_the_model(run_cli, tmp_path, digits_checkpoint, classes, features, message):
    """Before: 20 classes on a 10-class model was an IndexError (internal error); 5 classes fine-tuned silently."""
    data = _npz(tmp_path / "c.npz", classes, features)
    out = tmp_path / "p.pt"
    r = run_cli(
        "prune",
        digits_checkpoint,
        "--method",
        "magnitude",
        "--sparsity",
        "0.5",
        "--finetune-epochs",
        "1",
        "--data",
        data,
        "-o",
        out,
    )
    assert r.code == 1 and len(r.err_lines) == 1, r.err
    assert __import__("re").search(message, r.err), r.err
    assert not out.exists()


def test_train_api_refuses_mismatched_data():
    from edgeprune import data
    from edgeprune.errors import DatasetError
    from edgeprune.models import ModelConfig, SequenceClassifier
    from edgeprune.train import train

    ds = data.load("digits")
    model = SequenceClassifier(ModelConfig("lstm", ds.features, (4,), 5))
    with pytest.raises(DatasetError, match="digits has 10 classes"):
        train(model, ds, epochs=1, progress=False)


def test_threads_are_explicit_and_recorded(run_cli, tmp_path):
    """Before: no --threads (torch's default count; bytes depended on it, silently)."""
    before = torch.get_num_threads()
    try:
        out = tmp_path / "m.pt"
        r = run_cli("train", "--hidden", "4", "--epochs", "1", "--max-train-samples", "64", "--threads", "1", "-o", out)
        assert r.code == 0, r.err
        assert torch.get_num_threads() == 1
        assert edgeprune.checkpoint.load_with_meta(out)[1]["training"]["threads"] == 1
        pruned = tmp_path / "p.pt"
        r = run_cli(
            "prune",
            out,
            "--method",
            "random",
            "--sparsity",
            "0.5",
            "--finetune-epochs",
            "1",
            "--threads",
            "2",
            "-o",
            pruned,
        )
        assert r.code == 0, r.err
        assert torch.get_num_threads() == 2
        assert edgeprune.checkpoint.load_with_meta(pruned)[1]["pruning"]["threads"] == 2
    finally:
        torch.set_num_threads(before)


def test_default_threads_follow_cores_and_model_size(monkeypatch):
    from edgeprune import train

    monkeypatch.setattr(train, "usable_cores", lambda: 16)
    assert train.default_threads(20_000) == 1  # too small to gain from threads
    assert train.default_threads(2_500_000) == 3
    assert train.default_threads(50_000_000) == train.MAX_DEFAULT_THREADS
    monkeypatch.setattr(train, "usable_cores", lambda: 2)
    assert train.default_threads(50_000_000) == 2


def test_a_refused_path_from_any_command_is_one_line(run_cli, tmp_path, monkeypatch):
    """The CLI's last line of defence: an OSError naming a path is the user's to fix, not an internal error."""
    import edgeprune.cli.inspect as cli_inspect

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x"))

    monkeypatch.setattr(cli_inspect.checkpoint, "load_with_meta", refuse)
    r = run_cli("inspect", tmp_path / "x")
    assert r.code == 1 and r.err_lines == [f"edgeprune: error: {tmp_path / 'x'}: Permission denied"]


def test_a_plain_pickle_is_one_line_on_the_real_stderr(tmp_path):
    """Before: torch's UserWarning (several lines) was printed before our error line."""
    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-m", "edgeprune", "inspect", str(path)], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"edgeprune: error: {path}: not a readable edgeprune checkpoint (a plain Python pickle, not loaded: a pickle "
        "can run code)"
    ]


@pytest.mark.parametrize("command", ["bench", "sweep"])
def test_bench_and_sweep_check_their_outputs_before_any_work(
    run_cli, tmp_path, digits_checkpoint, command, monkeypatch
):
    """Before: a --report/-o under a file failed only after benchmarking (or after the cells ran)."""
    import edgeprune.bench.harness
    import edgeprune.sweep.run

    def no_work(*args, **kwargs):
        raise AssertionError("the work started before the output was checked")

    monkeypatch.setattr(edgeprune.bench.harness, "bench", no_work)
    monkeypatch.setattr(edgeprune.sweep.run, "run_sweep", no_work)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    if command == "bench":
        args = ["bench", digits_checkpoint, "--report", blocker / "rep"]
    else:
        args = ["sweep", digits_checkpoint, "--methods", "magnitude", "--sparsities", "0.5", "-o", blocker / "run"]
    r = run_cli(*args)
    assert r.code != 0 and len(r.err_lines) == 1 and "a_file" in r.err

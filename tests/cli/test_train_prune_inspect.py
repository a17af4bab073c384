import json

import pytest

import edgeprune


def test_train_writes_a_checkpoint(run_cli, tmp_path):
    out = tmp_path / "m.pt"
    r = run_cli("train", "--cell", "gru", "--hidden", "8", "--epochs", "1", "--max-train-samples", "200", "-o", out)
    assert r.code == 0, r.err
    assert "test accuracy" in r.out
    model = edgeprune.load(out)
    assert model.config.cell == "gru" and model.config.hidden_sizes == (8,)


def test_train_two_layers_with_feedback(run_cli, tmp_path):
    out = tmp_path / "fb.pt"
    r = run_cli("train", "--hidden", "8,6", "--feedback", "--epochs", "1", "--max-train-samples", "100", "-o", out)
    assert r.code == 0, r.err
    assert edgeprune.load(out).config.feedback


def test_prune_and_inspect(run_cli, tmp_path, digits_checkpoint):
    out = tmp_path / "p.pt"
    r = run_cli(
        "prune", digits_checkpoint, "--method", "magnitude", "--sparsity", "0.8", "--finetune-epochs", "1", "-o", out
    )
    assert r.code == 0, r.err
    assert "sparsity 80.0" in r.out and "after 1 fine-tune epochs" in r.out
    j = run_cli("inspect", out, "--json")
    assert j.code == 0, j.err
    doc = json.loads(j.out)
    assert doc["schema"] == "edgeprune.inspect/1"
    assert doc["totals"]["recurrent_sparsity"] == pytest.approx(0.8, abs=1e-3)
    assert doc["meta"]["pruning"]["method"] == "magnitude"
    assert run_cli("inspect", out, "--json").out == j.out  # stable
    t = run_cli("inspect", out)
    assert "layers.0.weight_hh" in t.out and "sparsity 80.0" in t.out


@pytest.mark.parametrize("sparsity", ["1.0", "1.2", "-0.5"])
def test_bad_sparsity_is_one_line_and_writes_nothing(run_cli, tmp_path, digits_checkpoint, sparsity):
    out = tmp_path / "p.pt"
    r = run_cli("prune", digits_checkpoint, "--method", "random", "--sparsity", sparsity, "-o", out)
    assert r.code != 0 and len(r.err_lines) == 1 and "sparsity must be in [0, 1)" in r.err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_method_option_on_the_wrong_method(run_cli, tmp_path, digits_checkpoint):
    r = run_cli(
        "prune",
        digits_checkpoint,
        "--method",
        "random",
        "--sparsity",
        "0.5",
        "--scope",
        "global",
        "-o",
        tmp_path / "p.pt",
    )
    assert r.code != 0 and r.err_lines == ["edgeprune: error: --scope does not apply to method 'random'"]


def test_corrupt_checkpoint_is_one_line(run_cli, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 64)
    for args in (
        ("inspect", bad),
        ("prune", bad, "--method", "random", "--sparsity", "0.5", "-o", tmp_path / "o.pt"),
        ("compile", bad, "-o", tmp_path / "c"),
    ):
        r = run_cli(*args)
        assert r.code != 0 and len(r.err_lines) == 1 and "not a readable edgeprune checkpoint" in r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pt"]


def test_missing_dataset_is_one_line(run_cli, tmp_path):
    r = run_cli("train", "--data", "fashion-mnist", "--data-dir", tmp_path, "-o", tmp_path / "m.pt")
    assert r.code != 0 and len(r.err_lines) == 1 and "apt-get install dataset-fashion-mnist" in r.err
    assert list(tmp_path.iterdir()) == []


def test_usage_errors_are_one_line(run_cli, tmp_path):
    r = run_cli("prune", "x.pt", "--method", "nope", "-o", tmp_path / "o.pt")
    assert r.code == 2 and len(r.err_lines) == 1 and "'nope' is not one of" in r.err


def test_train_a_regressor_writes_a_checkpoint(run_cli, tmp_path):
    """daphnet-denoise (a per-step regression): the checkpoint records MSE/SNR, not a NaN accuracy
    (NaN is not JSON: the save used to fail)."""
    pytest.importorskip("aeon")
    out = tmp_path / "reg.pt"
    r = run_cli(
        "train", "--data", "daphnet-denoise", "--model", "gru:8,dense", "--epochs", "1", "--threads", "1", "-o", out
    )
    assert r.code == 0, r.err
    model, meta = edgeprune.checkpoint.load_with_meta(out)
    assert model.config.task == "regress" and "accuracy" not in meta
    assert meta["test_metrics"]["mse"] > 0 and "snr_db" in meta["test_metrics"]

import json

from edgeprune.bench.schema import validate

from ..bench.conftest import ir_artifacts, pruned_checkpoint  # noqa: F401  (shared session fixtures)


def test_bench_a_checkpoint_end_to_end(run_cli, pruned_checkpoint, tmp_path):
    out, rep = tmp_path / "r.json", tmp_path / "rep"
    r = run_cli(
        "bench",
        pruned_checkpoint,
        "--quick",
        "--runtimes",
        "torch,ir",
        "--accuracy-samples",
        "32",
        "--latency-sequences",
        "2",
        "--no-isolate",
        "--json",
        out,
        "--report",
        rep,
    )
    assert r.code == 0, r.err
    doc = json.loads(out.read_text())
    validate(doc)
    assert doc["complete"] and [x["id"] for x in doc["runtimes"]] == ["torch", "ir"]
    assert doc["settings"]["threads"] == 1 and all(x["threads"] == 1 for x in doc["runtimes"])
    assert "step p50" in r.out and "torch" in r.out and "ir" in r.out
    assert sorted(p.name for p in rep.iterdir()) == ["latency.png", "report.md", "result.json"]


def test_bad_options_are_one_line(run_cli, pruned_checkpoint, ir_artifacts, tmp_path):
    cases = [
        (("--threads", "0"), "--threads must be >= 1"),
        (("--runtimes", "tflite-gpu"), "'tflite-gpu' matches no runtime"),
        (("--min-reps", "50", "--max-reps", "10"), "--min-reps (50) is larger than --max-reps (10)"),
        (("--variants", "ir:kernel=csr"), "--variants: target ir has no option 'kernel'"),
        (("--variants", "ir;;bad spec"), "--variants: cannot read 'bad spec'"),
        (("--variants", "coreml"), "unknown target 'coreml'"),
        (("--variants", "ir"), "--variants applies to a checkpoint"),
    ]
    for args, message in cases:
        r = run_cli("bench", ir_artifacts, "--quick", *args)
        assert r.code != 0 and len(r.err_lines) == 1 and message in r.err, (args, r.err)
    r = run_cli("bench", tmp_path / "missing.pt")
    assert r.code != 0 and len(r.err_lines) == 1 and "no such file or directory" in r.err
    for source in (ir_artifacts, pruned_checkpoint):  # the grid runner is `edgeprune sweep` (tests/cli/test_sweep.py)
        r = run_cli("bench", source, "--sweep")
        assert r.code != 0 and len(r.err_lines) == 1 and "bench --sweep is now `edgeprune sweep CHECKPOINT" in r.err


def test_bench_a_per_step_model_and_refuse_data_it_does_not_fit(run_cli, tmp_path):
    from ..bench.v2models import labelling_npz, sequence_npz, trained_checkpoint

    ckpt = trained_checkpoint("labelling", labelling_npz(tmp_path / "labels.npz"), tmp_path / "l.pt", sparsity=0.8)
    out = tmp_path / "r.json"
    r = run_cli(
        "bench",
        ckpt,
        "--quick",
        "--runtimes",
        "torch,ir,onnx*",
        "--accuracy-samples",
        "12",
        "--latency-sequences",
        "2",
        "--no-isolate",
        "--json",
        out,
    )
    assert r.code == 0, r.err
    doc = json.loads(out.read_text())
    validate(doc)
    assert doc["data"]["labels"] == "step" and all(
        a["per_step"] for x in doc["runtimes"] for a in x["accuracy"].values()
    )
    assert "accuracy, per step" in r.out
    r = run_cli("bench", ckpt, "--quick", "--runtimes", "ir", "--data", sequence_npz(tmp_path / "s.npz", 5))
    assert r.code != 0 and len(r.err_lines) == 1
    assert "the data has class labels per sequence but the model" in r.err and "per step" in r.err

import json


def test_demo_runs_the_whole_pipeline(run_cli, tmp_path):
    r = run_cli("demo", "-o", tmp_path / "demo")
    assert r.code == 0, r.err
    assert "dense vs pruned" in r.out and "90%" in r.out
    report = json.loads((tmp_path / "demo" / "compiled" / "compile.json").read_text())
    assert report["verification"] and all(v["passed"] for v in report["verification"])
    assert (tmp_path / "demo" / "pruned.pt").exists()

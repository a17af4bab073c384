"""bench never loads or runs a binary it did not build in this run (issue 18, item 2).

Benchmarking a compile output someone sent you must not be code execution: a planted
``build/lib<prefix>.so`` whose constructor runs on load used to run before any check.
"""

import json
import shutil
import subprocess

import pytest


def test_a_planted_library_in_the_artifact_directory_is_never_loaded(run_cli, pruned_checkpoint, tmp_path):
    if shutil.which("cc") is None:
        pytest.skip("needs cc")
    out = tmp_path / "c"
    r = run_cli("compile", pruned_checkpoint, "--target", "c", "-o", out, "--verify-samples", "8")
    assert r.code == 0, r.err
    marker = tmp_path / "pwned"
    planted = tmp_path / "evil.c"
    planted.write_text(
        "#include <stdio.h>\n__attribute__((constructor)) static void evil(void) {\n"
        f'    FILE *f = fopen("{marker}", "w"); if (f) fclose(f);\n}}\n'
    )
    for name in ("libmodel.so", "edgeprune_run"):  # the in-process library and the harness program
        target = out / "build" / name
        flags = ["-shared", "-fPIC"] if name.endswith(".so") else []
        src = planted if flags else tmp_path / "evil_main.c"
        if not flags:
            src.write_text(planted.read_text() + "int main(void) { return 0; }\n")
        assert subprocess.run(["cc", *flags, str(src), "-o", str(target)]).returncode == 0
    report = tmp_path / "bench.json"
    r = run_cli("bench", out, "--runtimes", "c", "--json", report, "--min-reps", "5", "--max-reps", "20")
    assert r.code == 0, r.err
    assert not marker.exists(), "bench executed a binary it found in the artifact directory"
    doc = json.loads(report.read_text())
    assert any(rt["id"].startswith("c") for rt in doc["runtimes"])

"""bench sits below sweep and the CLI and keeps workers light: a non-torch runtime's process never imports torch."""

import ast
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "edgeprune" / "bench"


def test_bench_never_imports_the_cli():
    for path in BENCH.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert "cli" not in (node.module or "").split("."), f"{path.name} imports {node.module}"


def test_bench_never_imports_the_sweep():
    """Data flows bench -> sweep: the grid runner uses bench's public modules, never the reverse."""
    for path in BENCH.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert "sweep" not in (node.module or "").split("."), f"{path.name} imports {node.module}"
            if isinstance(node, ast.Import):
                assert not any("sweep" in a.name.split(".") for a in node.names), f"{path.name} imports sweep"


def test_worker_and_devices_import_no_torch():
    code = (
        "import sys, edgeprune.bench.worker, edgeprune.bench.devices.ssh, edgeprune.bench.devices.qemu, "
        "edgeprune.bench.devices.serial, edgeprune.bench.report, edgeprune.bench.targets.c; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=BENCH.parents[1])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"

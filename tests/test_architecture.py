"""The layering rules of docs/architecture.md, checked."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "edgeprune"


def test_ir_and_passes_import_no_torch():
    code = "import sys, edgeprune.ir, edgeprune.passes, edgeprune.backends.ir; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found.append("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names]
    return found


def test_pruning_methods_never_import_a_backend():
    for path in (PACKAGE / "prune").rglob("*.py"):
        for name in _imports(path):
            assert "backends" not in name, f"{path.name} imports {name}"


def test_ir_imports_nothing_above_it():
    for path in (PACKAGE / "ir").rglob("*.py"):
        for name in _imports(path):
            if name.startswith(".."):
                assert name in ("..errors", "..fileio"), f"{path.name} imports {name}"

import pytest

from edgeprune import backends
from edgeprune.errors import BackendError


def test_every_backend_keeps_the_contract():
    for name in backends.names():
        backend = backends.get(name)
        assert backend.name == name
        for method in ("emit", "build", "runner", "unavailable"):
            assert callable(getattr(backend, method))


def test_unknown_target_lists_the_choices():
    with pytest.raises(BackendError, match="choose ir"):
        backends.get("coreml")


def test_no_backend_imports_another():
    import ast
    from pathlib import Path

    folder = Path(backends.__file__).parent
    names = set(backends.names())
    for name in names:
        path = folder / f"{name}.py"
        if not path.exists():
            path = folder / name / "__init__.py"
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                assert node.module.split(".")[0] not in names - {name}, f"{name} imports {node.module}"

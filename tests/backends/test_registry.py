import numpy as np
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


@pytest.mark.parametrize("target", backends.names())
def test_every_backend_supports_or_declines_every_cell(target, tmp_path):
    """Each cell of the table, as a 2-layer model with feedback: the backend's artifacts match the IR
    reference, or the backend refuses the cell in one line naming it."""
    from edgeprune import ir
    from edgeprune.errors import EdgepruneError
    from edgeprune.frontend.torch_lowering import lower
    from edgeprune.options import resolve
    from edgeprune.verify import FP32, Tolerance, verify_runner

    from ..conftest import make_model

    backend = backends.get(target)
    if backend.unavailable():
        pytest.skip(f"{target}: {backend.unavailable()}")
    X = np.random.default_rng(3).standard_normal((6, 5, 5)).astype(np.float32)
    options = resolve(backend.options, {}, target)
    for cell in ir.CELLS:
        model = lower(make_model(cell, (6, 4), feedback=True), {"sequence_length": X.shape[1]})
        reference = ir.ReferenceExecutor(model).run(X)
        out = tmp_path / cell
        out.mkdir()
        try:
            artifacts = backend.emit(model, out, options)
        except EdgepruneError as e:
            assert "\n" not in str(e) and cell in str(e).lower(), f"{target} declines {cell} unclearly: {e}"
            continue
        checked = 0
        for artifact in artifacts:
            backend.build(artifact, out, options)
            if not artifact.verify:
                continue
            tolerance = Tolerance(**artifact.tolerance) if artifact.tolerance else FP32
            with backend.runner(artifact, out, options) as runner:
                for mode in artifact.modes:
                    result = verify_runner(
                        artifact.name, artifact.runtime, runner, X, reference, tolerance, streaming=mode == "step"
                    )
                    assert result.passed, f"{target} {cell}: {result.describe()}"
                    checked += 1
        assert checked, f"{target} emitted nothing it could run for {cell}"

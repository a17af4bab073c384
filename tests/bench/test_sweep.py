import numpy as np
import pytest

from edgeprune.bench.schema import validate
from edgeprune.bench.sweep import Cell, SweepConfig, run_cell, run_sweep
from edgeprune.errors import PruneError
from edgeprune.prune.registry import MaskResult

from .conftest import quick_settings


@pytest.fixture
def exploding_method():
    """A registered method that raises on one sparsity (a degenerate case), to check cells fail alone."""
    from edgeprune.prune import registry

    def explode(ctx, sparsity):
        if sparsity > 0.6:
            raise PruneError("cannot prune that far")
        # the requested count by |w|: a mask that keeps everything is refused at s > 0
        return MaskResult({n: registry.top_k_mask(np.abs(w.values), registry.keep_count(w.values.size, sparsity))
                           for n, w in ctx.weights.items()})

    registry.register("test-explode", help="test method")(explode)
    yield "test-explode"
    registry._REGISTRY.pop("test-explode", None)


def test_sweep_grid_and_a_failing_cell(pruned_checkpoint, exploding_method, tmp_path):
    config = SweepConfig(str(pruned_checkpoint), ["magnitude", exploding_method], [0.5, 0.9], [0],
                         runtimes=["ir"], settings=quick_settings(accuracy_samples=32, latency_sequences=2))
    out = tmp_path / "sweep.json"
    doc = run_sweep(config, str(out))
    validate(doc)
    cells = {(c["method"], c["sparsity"]): c for c in doc["cells"]}
    assert len(cells) == 4 and doc["complete"] is False
    failed = cells[(exploding_method, 0.9)]
    assert failed["status"] == "failed" and "cannot prune that far" in failed["error"]
    for key, cell in cells.items():
        if cell is failed:
            continue
        assert cell["status"] == "ok", cell["error"]
        ids = [r["id"] for r in cell["result"]["runtimes"]]
        assert ids == ["ir"]
    assert cells[("magnitude", 0.9)]["achieved_sparsity"] == pytest.approx(0.9, abs=0.01)
    nnz = {s: cells[("magnitude", s)]["result"]["source"]["nnz"] for s in (0.5, 0.9)}
    assert nnz[0.9] < nnz[0.5]
    assert validate(__import__("json").loads(out.read_text())) is None


def test_run_cell_records_errors_instead_of_raising(pruned_checkpoint):
    config = SweepConfig(str(pruned_checkpoint), ["magnitude"], [0.5], data="no-such-dataset",
                         settings=quick_settings())
    cell = run_cell(config, Cell("magnitude", 0.5))
    assert cell["status"] == "failed" and "unknown dataset 'no-such-dataset'" in cell["error"]


def test_cells_and_config_travel_to_other_processes(pruned_checkpoint):
    """What a distributed sweep needs: picklable inputs and a module-level cell function."""
    import pickle

    config = SweepConfig(str(pruned_checkpoint), ["magnitude", "random"], [0.5, 0.9], [0, 1], settings=quick_settings())
    again = pickle.loads(pickle.dumps(config))
    assert again.cells() == config.cells() and len(config.cells()) == 8
    assert pickle.loads(pickle.dumps(run_cell)) is run_cell

"""evaluate_cell on its own: it never raises, and what a distributed sweep sends travels between processes."""

import pickle
from pathlib import Path

from edgeprune.sweep.cell import evaluate_cell
from edgeprune.sweep.schema import validate
from edgeprune.sweep.spec import Cell

from .conftest import small_spec


def test_a_cell_records_its_error_instead_of_raising(digits_checkpoint):
    spec = small_spec(digits_checkpoint, data="no-such-dataset")
    record = evaluate_cell(spec, Cell("magnitude", 0.5), Path(digits_checkpoint).read_bytes())
    validate(record)
    assert record["status"] == "failed" and record["stage"] == "prune"
    assert "unknown dataset 'no-such-dataset'" in record["error"]


def test_cells_and_spec_travel_to_other_processes(digits_checkpoint):
    """What a distributed sweep needs: picklable inputs and a module-level cell function."""
    spec = small_spec(digits_checkpoint, methods=["magnitude", "random"])
    again = pickle.loads(pickle.dumps(spec))
    assert again.cells() == spec.cells() and len(spec.cells()) == 8
    assert again.identity() == spec.identity()
    assert pickle.loads(pickle.dumps(evaluate_cell)) is evaluate_cell

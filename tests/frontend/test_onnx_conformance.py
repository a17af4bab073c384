"""ONNX's own conformance cases for LSTM, GRU and RNN (collected from the installed onnx package at test
time, offline; tests/recurrent_cases.py): weight inputs folded into initializers, the last output kept.
Every forward case (GRU linear_before_reset=0, LSTM peepholes, per-sample lengths that run the whole
sequence, layout 0 and 1, B omitted) imports and compiles to every target (ir, onnx, c, tflite) exactly
against the case's expected output; reverse and bidirectional are refused in one line naming the direction."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install 'edgeprune[onnx]')")
pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'edgeprune[onnx]')")
from onnx import numpy_helper  # noqa: E402

from edgeprune import backends, ir  # noqa: E402
from edgeprune.compiler import compile_source, load_source  # noqa: E402
from edgeprune.frontend.onnx import OnnxImportError, import_onnx  # noqa: E402
from tests import recurrent_cases as rc  # noqa: E402

CASES = rc.conformance_cases()
REFUSED, ACCEPTED = rc.REFUSED, rc.FORWARD
TARGETS = [t for t in ("ir", "onnx", "c", "tflite") if backends.get(t).unavailable() is None]
_all_cases = rc._all_conformance
_fold_model = rc.fold_model


def test_the_installed_onnx_has_the_recurrent_cases():
    assert sorted(CASES) == sorted([*REFUSED, *ACCEPTED])


@pytest.mark.parametrize("name", ACCEPTED)
def test_forward_case_imports_and_compiles_exactly_to_every_target(tmp_path, name):
    X, want = rc.fold(CASES[name], tmp_path / "case.onnx")
    imported = import_onnx(tmp_path / "case.onnx")
    assert [s.kind for s in imported.model.stages] == ["recurrent"]  # the chain ends at the recurrent stage
    assert np.max(np.abs(ir.ReferenceExecutor(imported.model).run(X) - want)) <= 1e-5
    assert np.max(np.abs(imported.logits(X) - want)) <= 1e-5
    assert imported.runtime == ("onnx.reference" if "batchwise" in name else "onnxruntime")
    source = load_source(tmp_path / "case.onnx")
    assert source.reference_name.startswith(imported.runtime)
    report = compile_source(source, TARGETS, tmp_path / "out", X_verify=X)
    assert report.passed and all(r.max_abs_error <= 1e-5 for r in report.results)
    assert {r.artifact.split("/")[0] for r in report.results} == set(TARGETS)
    assert imported.runtime in (tmp_path / "out" / "compile.json").read_text()


def test_gru_cases_are_linear_before_reset_0_and_the_peephole_case_keeps_P(tmp_path):
    """The importer keeps what makes these cases differ from torch's cells (not silently the default)."""
    rc.fold(CASES["test_gru_defaults"], tmp_path / "gru.onnx")
    assert import_onnx(tmp_path / "gru.onnx").model.stages[0].linear_before_reset is False
    rc.fold(CASES["test_lstm_with_peepholes"], tmp_path / "lstm.onnx")
    P = np.asarray(CASES["test_lstm_with_peepholes"].data_sets[0][0][7], np.float32).reshape(-1)
    assert np.array_equal(import_onnx(tmp_path / "lstm.onnx").model.stages[0].peephole, P)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_reverse_and_bidirectional_are_refused_by_name(tmp_path, name):
    rc.fold(CASES[name], tmp_path / "case.onnx")
    with pytest.raises(OnnxImportError, match=REFUSED[name]) as err:
        import_onnx(tmp_path / "case.onnx")
    assert "\n" not in str(err.value) and str(err.value).startswith("case.onnx:")


def test_every_onnx_node_case_imports_checked_or_is_refused_in_one_line(tmp_path):
    """Robustness: every op's conformance model (inputs but the first folded) either imports, checked against
    the file's own run, or is refused with one EdgepruneError line: never a traceback."""
    from edgeprune.errors import EdgepruneError

    imported, refused = [], 0
    for case in _all_cases():
        if not case.data_sets or not all(isinstance(v, np.ndarray) for v in case.data_sets[0][0]):
            continue
        if not case.model.graph.input or not case.model.graph.output:
            continue
        _fold_model(case, tmp_path / "case.onnx")
        try:
            import_onnx(tmp_path / "case.onnx")
            imported.append(case.name)
        except EdgepruneError as e:
            assert "\n" not in str(e), case.name
            refused += 1
    assert set(ACCEPTED) <= set(imported) and refused > 1000


@pytest.mark.parametrize("name", ["test_lstm_batchwise", "test_gru_batchwise", "test_simple_rnn_batchwise"])
def test_output_Y_every_step_of_the_recurrent_op(tmp_path, name):
    """The same cases keeping Y (every step, [batch, time, 1, hidden] with layout=1): a chain ending at the
    recurrent stage with output every, exact against the case's expected Y."""
    case = CASES[name]
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    inputs, expected = case.data_sets[0]
    for vi, value in list(zip(model.graph.input, inputs, strict=False))[1:]:
        model.graph.initializer.append(numpy_helper.from_array(np.asarray(value), vi.name))
    del model.graph.input[1:]
    del model.graph.output[1:]  # Y only
    onnx.save(model, str(tmp_path / "y.onnx"))
    X = np.asarray(inputs[0], np.float32)  # layout=1: already [batch, time, features]
    want = np.asarray(expected[0], np.float32)[:, :, 0, :]
    imported = import_onnx(tmp_path / "y.onnx")
    assert imported.model.output == "every" and [s.kind for s in imported.model.stages] == ["recurrent"]
    assert np.max(np.abs(ir.ReferenceExecutor(imported.model).run(X) - want)) <= 1e-5
    report = compile_source(load_source(tmp_path / "y.onnx"), ["ir", "onnx"], tmp_path / "out", X_verify=X)
    assert report.passed and all(r.max_abs_error <= 1e-5 for r in report.results)

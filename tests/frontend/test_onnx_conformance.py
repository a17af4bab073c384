"""ONNX's own conformance cases for LSTM, GRU and RNN (collected from the installed onnx package at test
time, offline): weight inputs folded into initializers, the last output kept. Every forward case the IR
can express imports and compiles (ir, onnx) exactly against the case's expected output; the others are
refused in one line naming the attribute or input the IR cannot express."""

import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install 'edgeprune[onnx]')")
pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'edgeprune[onnx]')")
from onnx import helper, numpy_helper  # noqa: E402

from edgeprune import ir  # noqa: E402
from edgeprune.compiler import compile_source, load_source  # noqa: E402
from edgeprune.frontend.onnx import OnnxImportError, import_onnx  # noqa: E402

# What the IR cannot express yet, by case: the one-line refusal must name it.
REFUSED = {
    "test_gru_defaults": "linear_before_reset=0",
    "test_gru_with_initial_bias": "linear_before_reset=0",
    "test_gru_seq_length": "linear_before_reset=0",
    "test_gru_batchwise": "linear_before_reset=0",
    "test_lstm_with_peepholes": "peephole weights P",
    "test_gru_reverse": "direction=reverse",
    "test_gru_bidirectional": "direction=bidirectional",
    "test_lstm_reverse": "direction=reverse",
    "test_lstm_bidirectional": "direction=bidirectional",
    "test_simple_rnn_reverse": "direction=reverse",
    "test_simple_rnn_bidirectional": "direction=bidirectional",
}
ACCEPTED = [
    "test_lstm_defaults",
    "test_lstm_with_initial_bias",
    "test_lstm_batchwise",
    "test_simple_rnn_defaults",
    "test_simple_rnn_with_initial_bias",
    "test_rnn_seq_length",
    "test_simple_rnn_batchwise",
]


def _all_cases() -> list:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unrelated cases' numpy overflow warnings
        return collect_testcases()


def _cases() -> dict:
    return {
        c.name: c
        for c in _all_cases()
        if c.model.graph.node and c.model.graph.node[0].op_type in ("LSTM", "GRU", "RNN")
    }


CASES = _cases()


def _fold_model(case, path):
    """Write the case's model with every input but the first turned into an initializer, only its last output kept."""
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    graph = model.graph
    inputs = case.data_sets[0][0]
    for vi, value in list(zip(graph.input, inputs, strict=False))[1:]:
        graph.initializer.append(numpy_helper.from_array(np.asarray(value), vi.name))
    del graph.input[1:]
    kept = graph.output[-1]
    del graph.output[:-1]
    assert graph.output[0] is kept or graph.output[0].name == kept.name
    onnx.save(model, str(path))


def _fold(case, path):
    """The folded file, the case's X as [batch, time, features] and its expected last output."""
    _fold_model(case, path)
    inputs, expected = case.data_sets[0]
    node = case.model.graph.node[0]
    layout = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "layout"), 0)
    X = np.asarray(inputs[0], np.float32)
    X = X if layout == 1 else X.transpose(1, 0, 2)  # -> [batch, time, features]
    return np.ascontiguousarray(X), np.asarray(expected[-1], np.float32)


def test_the_installed_onnx_has_the_recurrent_cases():
    assert sorted(CASES) == sorted([*REFUSED, *ACCEPTED])


@pytest.mark.parametrize("name", ACCEPTED)
def test_forward_case_imports_and_compiles_exactly(tmp_path, name):
    X, expected = _fold(CASES[name], tmp_path / "case.onnx")
    imported = import_onnx(tmp_path / "case.onnx")
    want = expected.reshape(expected.shape[-2] if "batchwise" not in name else expected.shape[0], -1)
    assert [s.kind for s in imported.model.stages] == ["recurrent"]  # the chain ends at the recurrent stage
    assert np.max(np.abs(ir.ReferenceExecutor(imported.model).run(X) - want)) <= 1e-5
    assert np.max(np.abs(imported.logits(X) - want)) <= 1e-5
    assert imported.runtime == ("onnx.reference" if "batchwise" in name else "onnxruntime")
    source = load_source(tmp_path / "case.onnx")
    assert source.reference_name.startswith(imported.runtime)
    report = compile_source(source, ["ir", "onnx"], tmp_path / "out", X_verify=X)
    assert report.passed and all(r.max_abs_error <= 1e-5 for r in report.results)
    assert imported.runtime in (tmp_path / "out" / "compile.json").read_text()


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_case_the_ir_cannot_express_is_refused_by_name(tmp_path, name):
    _fold(CASES[name], tmp_path / "case.onnx")
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


@pytest.mark.parametrize("name", ["test_lstm_batchwise", "test_simple_rnn_batchwise"])
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

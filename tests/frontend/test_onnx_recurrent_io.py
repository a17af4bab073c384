"""The recurrent ops' inputs and outputs beyond X -> Y/Y_h: nonzero constant initial states (initial_h /
initial_c). Our cases (tests/recurrent_cases.py, OWN_IO) are checked against onnxruntime and onnx.reference
in test_onnx_cell_variants.py; here: what they become in the IR, the refusals, the IR file, a feedback chain
starting from initial states in every target, and int8 C."""

import dataclasses

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install 'edgeprune[onnx]')")
pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'edgeprune[onnx]')")

from edgeprune import backends, ir  # noqa: E402
from edgeprune.compiler import compile_source, load_source  # noqa: E402
from edgeprune.errors import EdgepruneError  # noqa: E402
from edgeprune.frontend.onnx import OnnxImportError, import_onnx  # noqa: E402
from tests import recurrent_cases as rc  # noqa: E402
from tests.backends.test_cell_variants import TARGETS, _chain  # noqa: E402


def _initializer(path, name):
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    return model, next(t for t in model.graph.initializer if t.name == name), numpy_helper


def test_initial_states_become_the_stage_s_start_vectors(tmp_path):
    rc.build_own("lstm_initial_h_c", tmp_path / "case.onnx")
    model, init_c, numpy_helper = _initializer(tmp_path / "case.onnx", "initial_c")
    stage = import_onnx(tmp_path / "case.onnx").model.stages[0]
    assert stage.initial_state is not None and not stage.default_cell
    assert np.array_equal(stage.initial_state[1], numpy_helper.to_array(init_c)[0, 0])
    init_h = next(t for t in model.graph.initializer if t.name == "initial_h")
    assert np.array_equal(stage.initial_state[0], numpy_helper.to_array(init_h)[0, 0])


def test_only_initial_h_given_leaves_the_cell_state_zero(tmp_path):
    rc.build_own("lstm_peepholes_initial_h", tmp_path / "case.onnx")
    stage = import_onnx(tmp_path / "case.onnx").model.stages[0]
    assert stage.initial_state[0].any() and not stage.initial_state[1].any()


def test_initial_state_rows_that_differ_per_sample_are_refused(tmp_path):
    import onnx

    rc.build_own("gru_lbr0_initial_h", tmp_path / "case.onnx")
    model, init_h, numpy_helper = _initializer(tmp_path / "case.onnx", "initial_h")
    value = numpy_helper.to_array(init_h).copy()
    value[0, 1] += 0.5
    init_h.CopyFrom(numpy_helper.from_array(value, "initial_h"))
    onnx.save(model, str(tmp_path / "case.onnx"))
    with pytest.raises(OnnxImportError, match="initial_h differs between the 3 batch rows") as err:
        import_onnx(tmp_path / "case.onnx", check=False)
    assert "\n" not in str(err.value)


def test_initial_state_as_a_model_input_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    rc.build_own("rnn_initial_h", tmp_path / "case.onnx")
    model = onnx.load(str(tmp_path / "case.onnx"))
    kept = [t for t in model.graph.initializer if t.name != "initial_h"]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    model.graph.input.append(helper.make_tensor_value_info("initial_h", TensorProto.FLOAT, [1, 3, 4]))
    onnx.save(model, str(tmp_path / "case.onnx"))
    with pytest.raises(EdgepruneError, match="initial_h") as err:
        import_onnx(tmp_path / "case.onnx", check=False)
    assert "\n" not in str(err.value)


def test_the_ir_file_keeps_the_initial_state_and_files_without_one_are_unchanged(tmp_path):
    rc.build_own("lstm_initial_h_c", tmp_path / "case.onnx")
    model = import_onnx(tmp_path / "case.onnx").model
    ir.save(model, tmp_path / "m")
    back = ir.load(tmp_path / "m").stages[0]
    assert all(np.array_equal(a, b) for a, b in zip(back.initial_state, model.stages[0].initial_state))
    plain = dataclasses.replace(model, stages=[dataclasses.replace(model.stages[0], initial_state=None)])
    files = ir.serialize.dump(plain)
    assert b"initial" not in files[ir.serialize.JSON_NAME]
    assert ir.serialize.dump(ir.serialize.load(ir.save(plain, tmp_path / "p"))) == files


def test_the_initial_state_changes_the_output():
    model = _chain()
    X = np.random.default_rng(5).normal(0, 1.2, (4, 7, 5)).astype(np.float32)
    base = ir.ReferenceExecutor(model).run(X)
    lstm = model.stages[0]
    start = (np.full(lstm.hidden_size, 0.4, np.float32), np.full(lstm.hidden_size, -0.3, np.float32))
    stages = [dataclasses.replace(lstm, initial_state=start), *model.stages[1:]]
    other = ir.ReferenceExecutor(ir.Model(model.input_size, stages)).run(X)
    assert np.max(np.abs(other - base)) > 1e-4


def _chain_with_initial_states() -> ir.Model:
    model = _chain()
    rng = np.random.default_rng(11)
    stages = [
        dataclasses.replace(
            s,
            initial_state=tuple(rng.normal(0, 0.6, s.hidden_size).astype(np.float32) for _ in s.state_sizes()),
        )
        if isinstance(s, ir.Recurrent)
        else s
        for s in model.stages
    ]
    return ir.Model(model.input_size, stages, meta=model.meta).validate()


def test_a_feedback_chain_from_initial_states_compiles_exactly_to_every_target(tmp_path):
    """Both stages start from their own states; the LSTM reads the GRU's initial h as feedback at the first step
    (ONNX: the Scan's start values; TFLite: the first unrolled step; C: the reset tables)."""
    model = _chain_with_initial_states()
    ir.save(model, tmp_path / "model")
    X = np.random.default_rng(3).normal(0, 1.2, (6, 9, 5)).astype(np.float32)
    report = compile_source(load_source(tmp_path / "model"), TARGETS, tmp_path / "out", X_verify=X)
    assert report.passed and all(r.max_abs_error <= 1e-5 for r in report.results)
    assert {r.artifact.split("/")[0] for r in report.results} == set(TARGETS)
    assert any(r.mode == "step" for r in report.results)


def test_int8_c_resets_to_the_initial_state(tmp_path):
    if backends.get("c").unavailable() is not None:
        pytest.skip("no C toolchain")
    X, _ = rc.build_own("lstm_initial_h_c", tmp_path / "case.onnx")
    report = compile_source(
        load_source(tmp_path / "case.onnx"), ["c"], tmp_path / "out", X_verify=X, options={"dtype": "int8"}
    )
    assert report.passed


def test_y_c_is_the_lstm_cell_state_as_the_model_output(tmp_path):
    X, want = rc.build_own("lstm_y_c", tmp_path / "case.onnx")
    model = import_onnx(tmp_path / "case.onnx").model
    assert model.stages[-1].output_state == "c" and model.output == "last"
    got = ir.ReferenceExecutor(model).run(X)
    assert np.max(np.abs(got - want)) <= 1e-5
    h_model = ir.Model(model.input_size, [dataclasses.replace(model.stages[0], output_state="h")])
    assert np.max(np.abs(ir.ReferenceExecutor(h_model).run(X) - want)) > 1e-3  # c is not h
    ir.save(model, tmp_path / "m")
    assert ir.load(tmp_path / "m").stages[0].output_state == "c"


def test_y_c_feeding_another_op_is_refused_in_one_line(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rc.build_own("lstm_y_c", tmp_path / "case.onnx")
    model = onnx.load(str(tmp_path / "case.onnx"))
    g = model.graph
    g.initializer.append(numpy_helper.from_array(np.ones((4, 2), np.float32), "Wh"))
    g.node.extend(
        [
            helper.make_node("Squeeze", ["Y_c", "ax0"], ["c2"]),
            helper.make_node("MatMul", ["c2", "Wh"], ["logits"]),
        ]
    )
    g.initializer.append(numpy_helper.from_array(np.array([0], np.int64), "ax0"))
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, [3, 2]))
    onnx.save(model, str(tmp_path / "case.onnx"))
    with pytest.raises(OnnxImportError, match="its output is the lstm state c, which only the model's output") as err:
        import_onnx(tmp_path / "case.onnx", check=False)
    assert "\n" not in str(err.value)


def test_a_feedback_chain_ending_in_the_top_lstm_s_cell_state_compiles_exactly(tmp_path):
    """ONNX: the Scan's final c of the top stage; C: the cell array; TFLite: the c tensor."""
    rng = np.random.default_rng(2)
    I, H1, H2 = 4, 5, 6
    low = ir.Recurrent(
        "lstm", I, H1, H2, ir.CSR.from_dense(rng.normal(0, 0.5, (4 * H1, I + H1 + H2)).astype(np.float32)), None
    )
    top = ir.Recurrent(
        "lstm",
        H1,
        H2,
        0,
        ir.CSR.from_dense(rng.normal(0, 0.5, (4 * H2, H1 + H2)).astype(np.float32)),
        rng.normal(0, 0.3, 4 * H2).astype(np.float32),
        initial_state=(rng.normal(0, 0.5, H2).astype(np.float32), rng.normal(0, 0.5, H2).astype(np.float32)),
        output_state="c",
    )
    model = ir.Model(I, [low, top], task="regress", meta={"sequence_length": 7}).validate()
    ir.save(model, tmp_path / "model")
    X = rng.normal(0, 1.0, (5, 7, I)).astype(np.float32)
    report = compile_source(load_source(tmp_path / "model"), TARGETS, tmp_path / "out", X_verify=X)
    assert report.passed and all(r.max_abs_error <= 1e-5 for r in report.results)
    assert any(r.mode == "step" for r in report.results)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"output": "every"}, "only the model's output after the last step"),
        ({"head": True}, "only the model's output after the last step"),
    ],
)
def test_the_ir_refuses_a_cell_state_output_anywhere_but_the_end(change, message):
    rng = np.random.default_rng(0)
    lstm = ir.Recurrent(
        "lstm", 3, 4, 0, ir.CSR.from_dense(rng.normal(0, 0.5, (16, 7)).astype(np.float32)), None, output_state="c"
    )
    stages = [lstm] + ([ir.Dense(ir.CSR.from_dense(np.ones((2, 4), np.float32)))] if change.get("head") else [])
    with pytest.raises(EdgepruneError, match=message):
        ir.Model(3, stages, output=change.get("output", "last")).validate()
    gru = ir.Recurrent("gru", 3, 4, 0, ir.CSR.from_dense(np.zeros((16, 7), np.float32)), None, output_state="c")
    with pytest.raises(EdgepruneError, match="output_state 'c' is not a state of the gru cell"):
        ir.Model(3, [gru]).validate()


@pytest.mark.parametrize(
    "name", ["lstm_sequence_lens_input", "gru_lbr0_sequence_lens_input_y", "rnn_sequence_lens_input_initial_h"]
)
def test_sequence_lens_as_an_input_is_the_data_s_per_sample_lengths(tmp_path, name):
    """The IR run with the data's lengths equals onnxruntime fed them as sequence_lens: Y_h at each sample's own
    last step, Y on its valid steps (ONNX zero-pads Y beyond a sequence's length). onnx.reference ignores
    sequence_lens (its ops take it as an unused argument): it agrees at full length only (test_onnx_cell_variants)."""
    X, _ = rc.build_own(name, tmp_path / "case.onnx")
    imported = import_onnx(tmp_path / "case.onnx")
    assert imported.lengths_name == "lens" and "sequence_lens" in imported.model.meta
    lengths = np.array([6, 2, 4])
    got = ir.ReferenceExecutor(imported.model).run(X, lengths=lengths)
    valid = np.arange(X.shape[1])[None, :] < lengths[:, None]
    for runtime in ("onnxruntime",):
        want = rc.run_with_lengths(tmp_path / "case.onnx", name, X, lengths, runtime)
        mine = got
        if imported.model.output == "every":
            assert not want[~valid].any()  # what the comparison leaves out: ONNX's zero padding
            mine, want = got[valid], want[valid]
        assert np.max(np.abs(mine - want)) <= 1e-5, runtime
        assert np.max(np.abs(imported.logits(X, lengths)[valid if got.ndim == 3 else slice(None)] - want)) <= 1e-5
    if imported.model.output == "last":  # the per-sample lengths matter: the full-length run differs
        full = ir.ReferenceExecutor(imported.model).run(X)
        assert np.max(np.abs(full - got)) > 1e-4


def test_compile_says_sequence_lens_became_per_sample_lengths(tmp_path):
    import json

    X, _ = rc.build_own("lstm_sequence_lens_input", tmp_path / "case.onnx")
    compile_source(load_source(tmp_path / "case.onnx"), ["ir"], tmp_path / "out", X_verify=X)
    report = json.loads((tmp_path / "out" / "compile.json").read_text())
    assert "sequence_lens input 'lens' became per-sample lengths" in report["reference"]


def test_sequence_lens_input_read_by_another_op_is_refused_in_one_line(tmp_path):
    import onnx
    from onnx import helper

    rc.build_own("lstm_sequence_lens_input", tmp_path / "case.onnx")
    model = onnx.load(str(tmp_path / "case.onnx"))
    model.graph.node.insert(0, helper.make_node("Identity", ["lens"], ["lens2"]))
    onnx.save(model, str(tmp_path / "case.onnx"))
    with pytest.raises(OnnxImportError, match="expected one input .* found 2: X, lens") as err:
        import_onnx(tmp_path / "case.onnx", check=False)
    assert "\n" not in str(err.value)


def test_layout_1_with_a_sequence_lens_input_is_refused(tmp_path):
    """onnxruntime cannot run layout=1 and onnx.reference ignores sequence_lens: nothing could check the lengths."""
    rc.build_own("lstm_sequence_lens_input", tmp_path / "case.onnx")
    rc.rewrite_batch_first(tmp_path / "case.onnx")
    with pytest.raises(OnnxImportError, match="onnx.reference ignores sequence_lens") as err:
        import_onnx(tmp_path / "case.onnx")
    assert "\n" not in str(err.value)


def test_the_import_check_compares_at_per_sample_lengths(tmp_path, monkeypatch):
    """An IR that ignored the lengths (every sample read at the full length) would be caught at import."""
    rc.build_own("lstm_sequence_lens_input", tmp_path / "case.onnx")
    import_onnx(tmp_path / "case.onnx")  # the real mapping passes
    run = ir.ReferenceExecutor.run
    monkeypatch.setattr(ir.ReferenceExecutor, "run", lambda self, X, all_steps=None, lengths=None: run(self, X))
    with pytest.raises(OnnxImportError, match="disagrees with onnxruntime"):
        import_onnx(tmp_path / "case.onnx")

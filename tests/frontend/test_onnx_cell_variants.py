"""Our own recurrent cases (tests/recurrent_cases.py, built with onnx.helper) for what ONNX's conformance set
does not cover: clip, input_forget, peepholes with both, every activation with its alpha/beta (given and
default), GRU linear_before_reset 0 and 1 with clip. Each imports, matches onnxruntime (and onnx.reference
where that computes the attributes), and compiles exactly: every case to ir and onnx, a representative
subset (every activation among them) to C and TFLite too. Plus the refusals and the IR round trip."""

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install 'edgeprune[onnx]')")
pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'edgeprune[onnx]')")

from edgeprune import backends, ir  # noqa: E402
from edgeprune.compiler import compile_source, load_source  # noqa: E402
from edgeprune.errors import EdgepruneError  # noqa: E402
from edgeprune.frontend.onnx import OnnxImportError, import_onnx  # noqa: E402
from tests import recurrent_cases as rc  # noqa: E402

NATIVE = [t for t in ("c", "tflite") if backends.get(t).unavailable() is None]


def test_the_cases_use_every_activation_and_the_subset_covers_them():
    used = {a for n in rc.NATIVE_SUBSET for a in rc.OWN[n][2].get("activations", [])}
    assert used == set(rc.ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(rc.OWN))
def test_own_case_matches_onnxruntime_and_compiles_exactly(tmp_path, name):
    X, want = rc.build_own(name, tmp_path / "case.onnx")
    imported = import_onnx(tmp_path / "case.onnx")
    layer = imported.model.stages[-1]
    assert layer.default_cell == (name in ("rnn_tanh", "rnn_relu"))  # a variant is kept, not dropped
    got = ir.ReferenceExecutor(imported.model).run(X)
    tol = 1e-5 * max(1.0, float(np.abs(want).max()))  # unbounded activations (Relu, Elu as a gate) grow the state
    assert np.max(np.abs(got - want)) <= tol
    if rc.onnx_reference_honours(name):
        from onnx.reference import ReferenceEvaluator

        feeds = {"X": X.transpose(1, 0, 2).copy()}
        if rc.OWN_IO.get(name, {}).get("lengths"):  # every sequence in full here; per sample: test_onnx_recurrent_io
            feeds["lens"] = np.full(len(X), X.shape[1], np.int32)
        ref = ReferenceEvaluator(str(tmp_path / "case.onnx")).run([rc.output_of(name)], feeds)[0]
        assert np.max(np.abs(got - rc.arrange(rc.output_of(name), ref))) <= tol
    targets = ["ir", "onnx"] + (NATIVE if name in rc.NATIVE_SUBSET else [])
    report = compile_source(load_source(tmp_path / "case.onnx"), targets, tmp_path / "out", X_verify=X)
    assert report.passed and all(r.max_abs_error <= tol for r in report.results)
    assert {r.artifact.split("/")[0] for r in report.results} == set(targets)


def test_ir_round_trip_keeps_every_variant_field(tmp_path):
    rc.build_own("lstm_peepholes_clip_input_forget", tmp_path / "a.onnx")
    rc.build_own("lstm_acts_hardsigmoid_leakyrelu_affine", tmp_path / "b.onnx")
    rc.build_own("gru_lbr0_clip", tmp_path / "c.onnx")
    for f in ("a", "b", "c"):
        model = import_onnx(tmp_path / f"{f}.onnx").model
        ir.save(model, tmp_path / f)
        back = ir.load(tmp_path / f).stages[0]
        s = model.stages[0]
        assert (back.activations, back.clip, back.input_forget, back.linear_before_reset) == (
            s.activations,
            s.clip,
            s.input_forget,
            s.linear_before_reset,
        )
        assert (back.peephole is None) == (s.peephole is None)
        if s.peephole is not None:
            assert np.array_equal(back.peephole, s.peephole)


def test_int8_c_compiles_a_gru_lbr0(tmp_path):
    """The late rows (n_h over r*h) get their own quantized segment: within the int8 tolerance."""
    if "c" not in NATIVE:
        pytest.skip("no C toolchain")
    X, _ = rc.build_own("gru_lbr0_clip", tmp_path / "case.onnx")
    report = compile_source(
        load_source(tmp_path / "case.onnx"), ["c"], tmp_path / "out", X_verify=X, options={"dtype": "int8"}
    )
    assert report.passed


def _edit(path, **changes):
    import onnx
    from onnx import helper

    model = onnx.load(str(path))
    node = model.graph.node[0]
    for k, v in changes.items():
        for a in list(node.attribute):
            if a.name == k:
                node.attribute.remove(a)
        if v is not None:
            node.attribute.append(helper.make_attribute(k, v))
    onnx.save(model, str(path))


@pytest.mark.parametrize(
    "case, changes, message",
    [
        ("rnn_affine", {"activation_alpha": None, "activation_beta": None}, "Affine needs its activation_alpha"),
        ("rnn_relu", {"activations": ["Gelu"]}, "activation 'Gelu' is not one of"),
        ("lstm_clip", {"activations": ["Sigmoid", "Tanh"]}, "expected 3"),
        ("rnn_leakyrelu", {"activation_alpha": [0.1, 0.2]}, "more values than the activations"),
        ("gru_lbr0_clip", {"clip": -1.0}, "clip=-1.0 must be a positive number"),
    ],
)
def test_bad_variant_attributes_are_refused_in_one_line(tmp_path, case, changes, message):
    rc.build_own(case, tmp_path / "case.onnx")
    _edit(tmp_path / "case.onnx", **changes)
    with pytest.raises(OnnxImportError, match=message) as err:
        import_onnx(tmp_path / "case.onnx", check=False)
    assert "\n" not in str(err.value)


def test_sequence_lens_shorter_than_the_sequence_is_refused(tmp_path):
    import onnx
    from onnx import numpy_helper

    rc.build_own("rnn_clip", tmp_path / "case.onnx")
    model = onnx.load(str(tmp_path / "case.onnx"))
    node = model.graph.node[0]
    node.input[:] = [*node.input[:4], "lens"]
    model.graph.initializer.append(numpy_helper.from_array(np.array([6, 2, 6], np.int32), "lens"))
    onnx.save(model, str(tmp_path / "case.onnx"))
    with pytest.raises(OnnxImportError, match=r"sequence_lens=\[6, 2, 6\]") as err:
        import_onnx(tmp_path / "case.onnx", check=False)
    assert "\n" not in str(err.value)


def test_a_variant_cell_cannot_be_lifted_to_torch_for_pruning(tmp_path):
    """torch's GRU is linear_before_reset=1: lifting the import for training is refused, not silently wrong."""
    from edgeprune.frontend.onnx import load_classifier

    rc.build_own("gru_lbr0_clip", tmp_path / "case.onnx")
    with pytest.raises(EdgepruneError, match="linear_before_reset=0, which no torch module computes"):
        load_classifier(tmp_path / "case.onnx")


def test_layout_1_with_an_attribute_onnx_reference_ignores_is_refused(tmp_path):
    """onnxruntime cannot run layout=1 and onnx.reference ignores clip: no runtime could check the import."""
    rc.build_own("lstm_clip", tmp_path / "case.onnx")
    rc.rewrite_batch_first(tmp_path / "case.onnx")
    with pytest.raises(OnnxImportError, match="onnx.reference ignores clip") as err:
        import_onnx(tmp_path / "case.onnx")
    assert "\n" not in str(err.value)


def test_prune_cli_prunes_a_variant_cell_ir_side_and_the_result_compiles(run_cli, tmp_path):
    """`edgeprune prune lbr0.onnx` computes the masks on the same weights, keeps the variant and writes an IR
    directory; the kept weights are the original ones; it compiles exactly (against the IR reference)."""
    X, _ = rc.build_own("gru_lbr0_clip", tmp_path / "case.onnx")
    r = run_cli("prune", tmp_path / "case.onnx", "--method", "magnitude", "--sparsity", "0.6", "-o", tmp_path / "p")
    assert r.code == 0, r.err
    original = import_onnx(tmp_path / "case.onnx").model.stages[0]
    pruned = ir.load(tmp_path / "p").stages[0]
    assert (pruned.linear_before_reset, pruned.clip) == (False, original.clip)
    assert pruned.weight.nnz < 0.5 * original.weight.nnz
    kept = pruned.weight.to_dense() != 0
    assert np.array_equal(pruned.weight.to_dense()[kept], original.weight.to_dense()[kept])
    assert np.array_equal(pruned.bias, original.bias)
    targets = ["ir", "onnx"] + NATIVE
    report = compile_source(load_source(tmp_path / "p"), targets, tmp_path / "out", X_verify=X)
    assert report.passed and all(r.max_abs_error <= 1e-5 for r in report.results)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["-o", "p.pt"], "has no torch checkpoint: give -o a directory"),
        (["-o", "q", "--finetune-epochs", "1"], "cannot be fine-tuned or evaluated through torch"),
    ],
)
def test_prune_cli_refuses_what_a_variant_cell_cannot_do(run_cli, tmp_path, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    rc.build_own("lstm_clip", tmp_path / "case.onnx")
    r = run_cli("prune", "case.onnx", "--method", "magnitude", "--sparsity", "0.5", *extra)
    assert r.code != 0 and len(r.err_lines) == 1 and message in r.err, r.err
    assert not (tmp_path / extra[1]).exists()

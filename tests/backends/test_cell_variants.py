"""Cell variants (ir.cells: activations, clip, peepholes, input_forget, GRU linear_before_reset=0) in chains
the ONNX cases do not build: pruned (sparse) weights, two layers with top-down feedback, a head. Compiled
to every target against the IR reference, whole sequences and one step per call."""

import numpy as np
import pytest

from edgeprune import backends, ir
from edgeprune.compiler import compile_source, load_source

TARGETS = [t for t in ("ir", "onnx", "c", "tflite") if backends.get(t).unavailable() is None]


def _csr(rng, rows, cols, density, allowed=None):
    keep = rng.random((rows, cols)) < density
    if allowed is not None:
        keep &= allowed
    return ir.CSR.from_dense(rng.normal(0, 0.5, (rows, cols)).astype(np.float32), keep)


def _chain(seed: int = 0, density: float = 0.35) -> ir.Model:
    """LSTM (peepholes, clip, HardSigmoid/Softsign/Elu) fed back from the GRU above it (lbr=0,
    LeakyRelu/Tanh), then a softmax head; every matrix pruned to ``density``."""
    rng = np.random.default_rng(seed)
    I, H1, H2, C = 5, 6, 7, 3
    lstm = ir.Recurrent(
        "lstm",
        I,
        H1,
        H2,
        _csr(rng, 4 * H1, I + H1 + H2, density),
        rng.normal(0, 0.3, 4 * H1).astype(np.float32),
        activations=(ir.Act("hardsigmoid", 0.25, 0.5), ir.Act("softsign"), ir.Act("elu", 0.7)),
        clip=1.5,
        peephole=rng.normal(0, 0.4, 3 * H1).astype(np.float32),
    )
    gru_cols = H1 + H2
    allowed = np.ones((4 * H2, gru_cols), bool)
    allowed[2 * H2 : 3 * H2, H1:] = False  # n_x reads the input only
    allowed[3 * H2 :, :H1] = False  # n_h reads the state only
    gru = ir.Recurrent(
        "gru",
        H1,
        H2,
        0,
        _csr(rng, 4 * H2, gru_cols, density, allowed),
        rng.normal(0, 0.3, 4 * H2).astype(np.float32),
        activations=(ir.Act("leakyrelu", 0.1), ir.Act("tanh")),
        linear_before_reset=False,
    )
    head = ir.Dense(_csr(rng, C, H2, 0.8), rng.normal(0, 0.1, C).astype(np.float32), "softmax")
    return ir.Model(I, [lstm, gru, head], meta={"sequence_length": 9})


@pytest.mark.parametrize("kernel", ["auto", "bsr"])
def test_pruned_feedback_chain_of_variant_cells_compiles_exactly(tmp_path, kernel):
    model = _chain()
    model.validate()
    assert model.stages[0].weight.density < 0.5 and model.stages[1].weight.density < 0.5
    ir.save(model, tmp_path / "model")
    X = np.random.default_rng(3).normal(0, 1.2, (6, 9, 5)).astype(np.float32)
    targets = TARGETS if kernel == "auto" else [t for t in TARGETS if t == "c"]
    if not targets:
        pytest.skip("no C toolchain")
    report = compile_source(
        load_source(tmp_path / "model"), targets, tmp_path / "out", X_verify=X, options={"kernel": kernel}
    )
    assert report.passed and all(r.max_abs_error <= 1e-5 for r in report.results)
    if len(targets) > 1:
        assert {r.artifact.split("/")[0] for r in report.results} == set(targets)
    assert any(r.mode == "step" for r in report.results)  # the streaming artifacts too


def test_a_variant_cell_changes_the_output(tmp_path):
    """The variant fields are not decoration: dropping any one changes the reference's output."""
    model = _chain()
    X = np.random.default_rng(4).normal(0, 1.2, (4, 7, 5)).astype(np.float32)
    base = ir.ReferenceExecutor(model).run(X)
    import dataclasses

    lstm, gru = model.stages[0], model.stages[1]
    for stage, field, value in (
        (lstm, "activations", None),
        (lstm, "clip", None),
        (lstm, "peephole", None),
        (lstm, "input_forget", True),
        (gru, "linear_before_reset", True),
        (gru, "activations", None),
    ):
        stages = [dataclasses.replace(s, **{field: value}) if s is stage else s for s in model.stages]
        other = ir.ReferenceExecutor(ir.Model(model.input_size, stages)).run(X)
        assert np.max(np.abs(other - base)) > 1e-4, field

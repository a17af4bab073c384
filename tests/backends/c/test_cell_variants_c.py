"""The C of the cell variants (backends/c/cells.py) is strict C99 and clean under ASan/UBSan, fp32 and
int8 (the GRU lbr=0 late rows get their own quantized segment of r*h), whole sequences and streamed."""

import numpy as np
import pytest

from edgeprune import ir
from edgeprune.passes import QuantizedExecutor, quantize

from ..test_cell_variants import _chain
from .conftest import build, needs_cc
from .test_stages import SANITIZE, _run_and_stream, _sanitizers_work

pytestmark = needs_cc


def test_variant_chain_is_clean_under_sanitizers(tmp_path):
    if not _sanitizers_work(tmp_path):
        pytest.skip("this compiler cannot build ASan/UBSan programs")
    model = _chain()
    X = np.random.default_rng(5).normal(0, 1.2, (4, 8, 5)).astype(np.float32)
    for dtype in ("f32", "int8"):
        artifact, options = build(model, tmp_path / dtype, c_cflags=SANITIZE, dtype=dtype)
        whole, streamed = _run_and_stream(artifact, tmp_path / dtype, options, X)
        ref = ir.ReferenceExecutor(model) if dtype == "f32" else QuantizedExecutor(quantize(model))
        tol = 2e-5 if dtype == "f32" else 1e-4
        assert np.max(np.abs(whole - ref.run(X))) <= tol, dtype
        assert np.max(np.abs(streamed - ref.run(X, all_steps=True))) <= tol, dtype


def test_initial_states_and_a_cell_state_output_are_clean_under_sanitizers(tmp_path):
    """<prefix>_reset copies the initial-state tables into the arena and the cell array; the output reads c."""
    import dataclasses

    if not _sanitizers_work(tmp_path):
        pytest.skip("this compiler cannot build ASan/UBSan programs")
    rng = np.random.default_rng(9)
    chain = _chain()
    stages = [
        dataclasses.replace(
            s, initial_state=tuple(rng.normal(0, 0.6, s.hidden_size).astype(np.float32) for _ in s.state_sizes())
        )
        if isinstance(s, ir.Recurrent)
        else s
        for s in chain.stages
    ]
    lstm = ir.Recurrent(
        "lstm",
        5,
        6,
        0,
        ir.CSR.from_dense(rng.normal(0, 0.5, (24, 11)).astype(np.float32)),
        rng.normal(0, 0.3, 24).astype(np.float32),
        initial_state=(rng.normal(0, 0.5, 6).astype(np.float32), rng.normal(0, 0.5, 6).astype(np.float32)),
        output_state="c",
    )
    X = np.random.default_rng(5).normal(0, 1.2, (4, 8, 5)).astype(np.float32)
    for k, model in enumerate((ir.Model(5, stages), ir.Model(5, [lstm], task="regress"))):
        for dtype in ("f32", "int8"):
            artifact, options = build(model, tmp_path / f"{k}{dtype}", c_cflags=SANITIZE, dtype=dtype)
            whole, streamed = _run_and_stream(artifact, tmp_path / f"{k}{dtype}", options, X)
            ref = ir.ReferenceExecutor(model) if dtype == "f32" else QuantizedExecutor(quantize(model))
            tol = 2e-5 if dtype == "f32" else 1e-4
            assert np.max(np.abs(whole - ref.run(X))) <= tol, (k, dtype)
            assert np.max(np.abs(streamed - ref.run(X, all_steps=True))) <= tol, (k, dtype)

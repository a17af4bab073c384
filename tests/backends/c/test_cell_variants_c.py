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

import numpy as np
import pytest

from edgeprune import data, ir
from edgeprune.bench import bench
from edgeprune.bench.devices import parse
from edgeprune.bench.schema import validate

from ..conftest import have, quick_settings


@pytest.mark.skipif(have("gcc") is not None, reason="needs gcc")
def test_native_program_next_to_the_python_runner(ir_artifacts, ir_programs):
    doc = bench(str(ir_artifacts), parse("local"), quick_settings(), runtimes=["ir"])
    validate(doc)
    runs = {r["id"]: r for r in doc["runtimes"]}
    assert set(runs) == {"ir", "ir (native)"}
    native = runs["ir (native)"]
    assert native["call_path"] == "native" and not native["emulated"]
    X = data.load("digits").X_test[:6]
    reference = ir.ReferenceExecutor(ir.load(ir_artifacts)).run(X)
    for mode in ("step", "sequence"):
        assert np.abs(np.array(native["outputs"][mode]) - reference).max() < 1e-5
        stat = native["latency"][mode]
        assert stat["unit"] == "ns" and stat["clock"] == "clock_gettime(CLOCK_MONOTONIC)"
        assert stat["p50"] == np.percentile(stat["samples"], 50) > 0
    assert native["memory"]["program"]["text_bytes"] > 0
    # the same kernel with and without the Python call path, side by side
    comparison = {c["mode"]: c for c in doc["comparisons"]}
    assert set(comparison) == {"step", "sequence"}
    assert comparison["step"]["python_overhead_ns"] == pytest.approx(
        runs["ir"]["latency"]["step"]["p50"] - native["latency"]["step"]["p50"]
    )

"""Emulated boards: outputs must match the reference; latency is counted in instructions, labelled emulated."""

import json

import numpy as np
import pytest

from edgeprune import data, ir
from edgeprune.bench import bench
from edgeprune.bench.devices import parse
from edgeprune.bench.devices.qemu import parse_plugin_log
from edgeprune.bench.programs import marked_intervals
from edgeprune.bench.schema import validate

from ..conftest import have, quick_settings


def reference_logits(ir_artifacts, n):
    return ir.ReferenceExecutor(ir.load(ir_artifacts)).run(data.load("digits").X_test[:n])


@pytest.mark.parametrize(
    "url, tools",
    [
        ("qemu-aarch64", ("qemu-aarch64", "aarch64-linux-gnu-gcc", "gcc")),
        ("qemu-m4", ("qemu-system-arm", "arm-none-eabi-gcc", "gcc")),
        ("qemu-x86_64", ("qemu-x86_64", "gcc")),
    ],
)
def test_emulated_device_matches_the_reference(url, tools, ir_artifacts, ir_programs):
    if have(*tools):
        pytest.skip(have(*tools))
    settings = quick_settings()
    doc = bench(str(ir_artifacts), parse(url), settings, runtimes=["ir"])
    validate(doc)
    assert doc["device"]["emulated"] and doc["device"]["counter"].startswith("instructions")
    (run,) = doc["runtimes"]
    assert run["emulated"] and run["call_path"] == "native"
    reference = reference_logits(ir_artifacts, settings.device_samples)
    for mode in ("step", "sequence"):
        assert np.abs(np.array(run["outputs"][mode]) - reference).max() < 1e-5
        stat = run["latency"][mode]
        assert stat["unit"] == "instructions" and "QEMU" in stat["clock"]
        assert stat["n"] == 16 and 100 < stat["p50"] < 1e6
    # a whole sequence of 8 steps costs about 8 steps (the same kernel, same inputs)
    ratio = run["latency"]["sequence"]["p50"] / run["latency"]["step"]["p50"]
    assert 6 < ratio < 10
    assert run["memory"]["program"]["text_bytes"] > 1000


def test_nothing_to_run_on_the_device_is_one_clear_error(run_cli, ir_artifacts, tmp_path):
    if have("qemu-aarch64"):
        pytest.skip(have("qemu-aarch64"))
    out = tmp_path / "r.json"
    r = run_cli("bench", ir_artifacts, "--device", "qemu-aarch64", "--quick", "--json", out)  # no program provider
    assert r.code != 0 and len(r.err_lines) == 1
    assert (
        "nothing could run on qemu-aarch64 (torch: a Python runtime: host only; ir: target ir has no benchmark program"
    ) in r.err
    assert json.loads(out.read_text())["complete"] is False


def test_plugin_log_parsing_and_intervals():
    total, marks = parse_plugin_log("epcount total 99\nepcount marks 1 5 9\nepcount marks 20 31\nnoise\n")
    assert total == 99 and marks == [1, 5, 9, 20, 31]
    assert marked_intervals(marks) == [4, 11]

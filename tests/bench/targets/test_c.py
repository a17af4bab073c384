"""The C target's artifacts as device programs (runs once the C backend is on the branch)."""

import json

import numpy as np
import pytest

from edgeprune import backends, data
from edgeprune.bench import bench
from edgeprune.bench.devices import parse
from edgeprune.bench.schema import validate

from ..conftest import have, quick_settings

needs_c_backend = pytest.mark.skipif(
    "c" not in backends.names(), reason="the C backend (edgeprune/backends/c) is not on this branch"
)


@pytest.fixture(scope="module")
def c_artifacts(pruned_checkpoint, tmp_path_factory):
    from edgeprune.cli import main

    if backends.get("c").unavailable():
        pytest.skip(backends.get("c").unavailable())
    out = tmp_path_factory.mktemp("c") / "out"
    assert main(["compile", str(pruned_checkpoint), "--target", "c", "-o", str(out), "--verify-samples", "16"]) == 0
    return out


@needs_c_backend
@pytest.mark.parametrize(
    "url, tools",
    [
        ("local", ("gcc",)),
        ("qemu-aarch64", ("qemu-aarch64", "aarch64-linux-gnu-gcc")),
        ("qemu-m4", ("qemu-system-arm", "arm-none-eabi-gcc")),
    ],
)
def test_generated_c_runs_as_a_device_program(url, tools, c_artifacts, pruned_checkpoint):
    if have(*tools, "gcc"):
        pytest.skip(have(*tools, "gcc"))
    from edgeprune import checkpoint
    from edgeprune.train import predict_logits

    settings = quick_settings()
    doc = bench(str(c_artifacts), parse(url), settings, runtimes=["c*"])
    validate(doc)
    native = [r for r in doc["runtimes"] if r["call_path"] == "native"]
    assert len(native) == 1 and native[0]["status"] == "ok"
    model = checkpoint.load(pruned_checkpoint)
    reference = predict_logits(model, data.load("digits").X_test[: settings.device_samples])
    for mode in ("step", "sequence"):
        assert np.abs(np.array(native[0]["outputs"][mode]) - reference).max() < 1e-4
        assert native[0]["latency"][mode]["unit"] == ("ns" if url == "local" else "instructions")
    # built where it runs (local): the artifact's host flags, -march=native included, as in-process; a
    # board gets them without host-only flags
    assert ("-march=native" in native[0]["runtime"]) == (url == "local"), native[0]["runtime"]
    if url == "local":  # and the build's host tuning (the gather this core runs faster), as in-process
        compiled = json.loads((c_artifacts / "compile.json").read_text())
        tuning = next(a for a in compiled["artifacts"] if a["target"] == "c")["info"].get("host_tuning", {})
        assert all(d in native[0]["runtime"] for d in tuning.get("defines", [])), (tuning, native[0]["runtime"])
    if url == "local":  # the backend's own runner and the kernel alone, side by side
        assert {c["mode"] for c in doc["comparisons"]} == {"step", "sequence"}
        assert native[0]["memory"]["bytes_per_nonzero"] > 0  # from the C target's own weight report


def test_c_weight_report_becomes_the_standard_keys():
    from edgeprune.bench.targets import memory_info

    m = memory_info("c", {"weight_bytes": {"weights": 1000, "biases": 64, "total": 1064}, "state_bytes": 256})
    assert m["storage_bytes"] == 1000 and m["bias_bytes"] == 64 and m["state_bytes"] == 256
    assert m["dtype"] == "float32"
    tiles = [{"format": "bsr8x1", "stored": 96}, {"format": "dense", "stored": 40}]
    m = memory_info(
        "c",
        {
            "dtype": "int8",
            "matrices": {"layers.0.weight": {"format": "bsr8x1+dense", "tiles": tiles}},
            "object_bytes": {"model": {"text": 300, "rodata": 900}, "runtime_used": 700},
        },
    )
    assert m["kernels"] == {"layers.0.weight": "bsr8x1+dense"} and m["stored_values"] == 136
    assert m["code_bytes"] == 1000 and m["dtype"] == "int8"


@needs_c_backend
def test_generated_c_served_over_serial_by_qemu_firmware(run_cli, c_artifacts, pruned_checkpoint, tmp_path):
    """The generated model + the serial server on QEMU's Cortex-M4 board, benchmarked over its UART."""
    import json
    import re
    import subprocess

    if have("arm-none-eabi-gcc", "qemu-system-arm"):
        pytest.skip(have("arm-none-eabi-gcc", "qemu-system-arm"))
    from edgeprune import checkpoint
    from edgeprune.bench.targets.c import build_serial_firmware
    from edgeprune.train import predict_logits

    firmware = build_serial_firmware(c_artifacts, tmp_path / "fw.elf")
    proc = subprocess.Popen(
        [
            "qemu-system-arm",
            "-M",
            "mps2-an386",
            "-nographic",
            "-monitor",
            "none",
            "-serial",
            "pty",
            "-kernel",
            str(firmware),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        pty = re.search(r"(/dev/pts/\d+)", proc.stdout.readline()).group(1)
        out = tmp_path / "r.json"
        r = run_cli(
            "bench",
            c_artifacts,
            "--device",
            f"serial://{pty}",
            "--device-samples",
            "3",
            "--min-reps",
            "8",
            "--max-reps",
            "8",
            "--json",
            out,
        )
        assert r.code == 0, r.err
    finally:
        proc.kill()
        proc.wait()
    (run,) = json.loads(out.read_text())["runtimes"]
    reference = predict_logits(checkpoint.load(pruned_checkpoint), data.load("digits").X_test[:3])
    for mode in ("step", "sequence"):
        assert np.abs(np.array(run["outputs"][mode]) - reference).max() < 1e-4
        assert run["latency"][mode]["unit"] == "cycles"

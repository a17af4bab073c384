"""IR v2 stages in C: every zoo shape (tests/zoo.py) built strict, sanitized, int8, cross and in the bench program.

tests/test_zoo_compile.py already verifies every zoo model's host build against torch through
``compile``; here the C code itself is held to the numpy references (float64 ReferenceExecutor,
QuantizedExecutor for int8) in whole-sequence and streaming runs, under ASan/UBSan, for every
forced kernel family, on the emulated aarch64 and Cortex-M4 targets, and in edgeprune bench's program.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess

import numpy as np
import pytest

from edgeprune import compiler, frontend, ir
from edgeprune.backends.c import BUILD_DIR, planning
from edgeprune.passes import QuantizedExecutor, quantize
from edgeprune.runtime import CompiledModel

from ... import zoo
from .conftest import BACKEND, build, c_options, needs_cc, torch_logits

pytestmark = needs_cc
SANITIZE = "-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all -march=native"
STEPS = 11  # longer than every conv window in the zoo (k3 d2: 4 past inputs)


def _model(name, sparsity=0.85):
    return frontend.lower(zoo.build(name, sparsity=sparsity))


def _inputs(name, n=5, steps=STEPS):
    return zoo.inputs(name, n=n, steps=steps)


def _run_and_stream(artifact, directory, options, X):
    with BACKEND.runner(artifact, directory, options) as runner:
        return runner.run(X), runner.stream(X, every=True)


def test_the_c_target_declines_no_zoo_model():
    for name in zoo.ZOO:
        assert BACKEND.declines(_model(name)) is None, name


@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_every_zoo_model_is_strict_c99_and_clean_under_sanitizers(tmp_path, name):
    """-std=c99 -pedantic -Wall -Wextra -Werror ... (toolchain.WARNINGS), then ASan/UBSan in the harness."""
    if not _sanitizers_work(tmp_path):
        pytest.skip("this compiler cannot build ASan/UBSan programs")
    model, X = _model(name), _inputs(name)
    reference = ir.ReferenceExecutor(model)
    for dtype in ("f32", "int8"):
        d = tmp_path / dtype
        artifact, options = build(model, d, c_cflags=SANITIZE, dtype=dtype)
        assert not (d / BUILD_DIR / "libmodel.so").exists()  # sanitized builds run in the harness
        whole, streamed = _run_and_stream(artifact, d, options, X)
        if dtype == "f32":
            expected, every, tol = reference.run(X), reference.run(X, all_steps=True), 2e-5
        else:
            q = QuantizedExecutor(quantize(model))
            expected, every, tol = q.run(X), q.run(X, all_steps=True), 1e-4
        assert whole.shape == expected.shape
        assert np.max(np.abs(whole - expected)) <= tol, (name, dtype)
        assert np.max(np.abs(streamed - every)) <= tol, (name, dtype)


def _sanitizers_work(tmp_path) -> bool:
    probe = tmp_path / "probe.c"
    probe.write_text("int main(void) { return 0; }\n")
    done = subprocess.run(
        ["cc", "-fsanitize=address,undefined", str(probe), "-o", str(tmp_path / "probe")], capture_output=True
    )
    return done.returncode == 0 and subprocess.run([str(tmp_path / "probe")]).returncode == 0


@pytest.mark.parametrize("name", ["kws", "conv", "maxpool", "denoiser"])
@pytest.mark.parametrize("kernel", ["dense", "csr", "ell", "bsr"])
def test_every_kernel_family_runs_every_stage_matrix(tmp_path, name, kernel):
    model, X = _model(name), _inputs(name)
    artifact, options = build(model, tmp_path, kernel=kernel)
    formats = {t["format"] for m in artifact.info["matrices"].values() for t in m["tiles"]}
    assert formats <= set(planning.FAMILIES[kernel]) | {"csr"}  # csr: where the family cannot apply
    whole, streamed = _run_and_stream(artifact, tmp_path, options, X)
    reference = ir.ReferenceExecutor(model)
    assert np.max(np.abs(whole - reference.run(X))) <= 2e-5
    assert np.max(np.abs(streamed - reference.run(X, all_steps=True))) <= 2e-5


@pytest.mark.parametrize("name", ["kws", "conv"])
@pytest.mark.parametrize("kernel", ["auto", "dense", "csr", "bsr"])
def test_int8_kws_and_conv_compute_what_the_quantized_executor_simulates(tmp_path, name, kernel):
    model, X = _model(name), _inputs(name)
    artifact, options = build(model, tmp_path, dtype="int8", kernel=kernel)
    simulated = QuantizedExecutor(quantize(model))
    whole, streamed = _run_and_stream(artifact, tmp_path, options, X)
    assert np.max(np.abs(whole - simulated.run(X))) <= 1e-4
    assert np.max(np.abs(streamed - simulated.run(X, all_steps=True))) <= 1e-4
    # ... and the quantisation itself moves the float outputs, so the check above is not vacuous
    assert np.max(np.abs(simulated.run(X) - ir.ReferenceExecutor(model).run(X))) > 1e-4


def test_every_step_outputs_through_compiled_model_and_header(tmp_path):
    model, X = _model("denoiser"), _inputs("denoiser")  # regression, an output at every step
    build(model, tmp_path)
    header = (tmp_path / "model.h").read_text()
    assert re.search(r"^#define MODEL_OUTPUT_SIZE 9\b", header, re.M)
    assert re.search(r"^#define MODEL_NUM_CLASSES MODEL_OUTPUT_SIZE\b", header, re.M)
    assert re.search(r"^#define MODEL_OUTPUT_EVERY 1\b", header, re.M)
    m = CompiledModel.load(tmp_path)
    assert m.every and m.output_size == 9
    expected = ir.ReferenceExecutor(model).run(X)  # [N, T, C]
    out = m.run(X)
    assert out.shape == (5, STEPS, 9) and np.max(np.abs(out - expected)) <= 2e-5
    assert m.run(X[0]).shape == (STEPS, 9) and np.array_equal(m.run(X[0]), out[0])
    m.reset(len(X))
    for t in range(STEPS):  # step returns one output: this step's
        assert np.max(np.abs(m.step(X[:, t]) - expected[:, t])) <= 2e-5
    assert m.run(np.zeros((2, 0, 9), np.float32)).shape == (2, 0, 9)
    m.close()


def test_last_step_models_say_so_and_a_zero_step_run_is_the_output_of_the_zero_state(tmp_path):
    model = _model("meanpool")
    build(model, tmp_path)
    assert re.search(r"^#define MODEL_OUTPUT_EVERY 0\b", (tmp_path / "model.h").read_text(), re.M)
    m = CompiledModel.load(tmp_path)
    assert not m.every and m.run(_inputs("meanpool")).shape == (5, 5)
    # no step: the stages after the pool see its zeroed accumulator, i.e. the head's bias
    assert np.array_equal(m.run(np.zeros((1, 0, 7), np.float32)), model.head.bias[None])
    m.close()


def test_conv_and_pool_state_lives_in_the_struct_and_streams_of_any_length(tmp_path):
    model = _model("maxpool")  # conv k2 -> relu RNN -> max-pool -> dense
    artifact, options = build(model, tmp_path)
    header = (tmp_path / "model.h").read_text()
    assert "l0 window 6" in header and "l2 max 16" in header and "uint32_t steps;" in header
    assert artifact.info["state_bytes"] == CompiledModel.load(tmp_path).state_bytes
    X = _inputs("maxpool", n=3, steps=200)
    with BACKEND.runner(artifact, tmp_path, options) as runner:
        assert np.max(np.abs(runner.run(X) - ir.ReferenceExecutor(model).run(X))) <= 2e-5


def test_the_generated_makefile_builds_the_example_for_a_v2_model(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("no make")
    BACKEND.emit(_model("denoiser"), tmp_path, c_options())
    done = subprocess.run(["make", "-s", "example", "CFLAGS=-O2 -Werror"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    out = subprocess.run(["./example"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert len(re.findall(r"^output \d+ ", out, re.M)) == 9


@pytest.mark.parametrize("name", ["denoiser", "kws"])
def test_the_bench_program_runs_v2_models(tmp_path, name):
    from edgeprune.bench.programs import ProgramSettings, parse_program_output
    from edgeprune.bench.targets.c import build_program
    from edgeprune.bench.toolchains import normalize_arch

    model, X = _model(name), _inputs(name, n=2, steps=6)
    build(model, tmp_path / "out")
    settings = ProgramSettings(warmup=1, min_reps=3, max_reps=3, budget_ns=0)
    program = build_program(
        tmp_path / "out", "model", normalize_arch(platform.machine()), X, settings, tmp_path / "bench", ["-O2"]
    )
    parsed = parse_program_output(
        subprocess.run([str(program.path)], capture_output=True, text=True, check=True).stdout
    )
    last = ir.ReferenceExecutor(model).run(X, all_steps=True)[:, -1]  # ep_model.h: the output after the last step
    for mode in ("step", "sequence"):
        assert np.max(np.abs(np.asarray(parsed["outputs"][mode]) - last)) <= 2e-5, mode


def _kws_source():
    model = zoo.build("kws", sparsity=0.85)
    return compiler.Source("kws", frontend.lower(model), lambda X: torch_logits(model, X), "torch")


@pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("aarch64-linux-gnu-gcc", "qemu-aarch64")),
    reason="needs gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user",
)
def test_kws_for_aarch64_verified_under_qemu_user(tmp_path):
    X = _inputs("kws", n=4, steps=7)
    report = compiler.compile_source(_kws_source(), ["c"], tmp_path, options={"arch": "aarch64"}, X_verify=X)
    assert report.passed and {r.mode for r in report.results} == {"sequence", "step"}
    assert all(r.max_abs_error <= 1e-4 for r in report.results)
    assert "qemu-aarch64" in report.results[0].runtime


@pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("arm-none-eabi-gcc", "qemu-system-arm")),
    reason="needs gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm",
)
@pytest.mark.parametrize("dtype", ["f32", "int8"])
def test_kws_for_cortex_m4_verified_on_the_emulated_board(tmp_path, dtype):
    X = _inputs("kws", n=4, steps=7)
    source = _kws_source()
    report = compiler.compile_source(source, ["c"], tmp_path, options={"arch": "cortex-m4", "dtype": dtype}, X_verify=X)
    assert report.passed and {r.mode for r in report.results} == {"sequence", "step"}
    info = json.loads((tmp_path / "compile.json").read_text())["artifacts"][0]["info"]
    assert info["arch"] == "cortex-m4" and 0 < info["flash_bytes"] < 32_000
    artifact = report.artifacts[0][1]
    expected = ir.ReferenceExecutor(source.model) if dtype == "f32" else QuantizedExecutor(quantize(source.model))
    with BACKEND.runner(artifact, tmp_path, c_options(arch="cortex-m4", dtype=dtype)) as runner:
        assert np.max(np.abs(runner.run(X) - expected.run(X))) <= (2e-5 if dtype == "f32" else 1e-4)


@pytest.mark.parametrize(
    "text,output",
    [
        ("conv:8:k1:tanh,dense:4", "every"),  # a conv without history; no state at all: every stage is output-only
        ("dense:8:relu,dense:3:softmax", "last"),
        ("gru:8,pool:max", "last"),  # the model ends in a stage with state: its output is copied out
        ("rnn:6:nobias,lstm:5,layernorm", "every"),
        ("conv:6:k4:d3,conv:5:k2:sigmoid,lstm:7", "last"),  # two windows, one dilated
    ],
)
def test_edge_shapes_match_torch_and_the_reference(tmp_path, text, output):
    import torch

    from edgeprune import modelspec
    from edgeprune.models import SequenceModel

    torch.manual_seed(3)
    net = SequenceModel(modelspec.parse(text, 5, output=output)).eval()
    model = frontend.lower(net)
    X = np.random.default_rng(2).normal(0, 1, (4, 13, 5)).astype(np.float32)
    artifact, options = build(model, tmp_path)
    whole, streamed = _run_and_stream(artifact, tmp_path, options, X)
    reference = ir.ReferenceExecutor(model)
    assert np.max(np.abs(whole - torch_logits(net, X))) <= 1e-4
    assert np.max(np.abs(whole - reference.run(X))) <= 2e-5
    assert np.max(np.abs(streamed - reference.run(X, all_steps=True))) <= 2e-5

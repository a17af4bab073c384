"""The c target end to end: emit, build with -Werror, run the built harness, compare with torch."""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess

import numpy as np
import pytest

from edgeprune import compiler, frontend, ir, prune
from edgeprune.backends.c import BUILD_DIR, INT8_TOLERANCE, PROGRAM
from edgeprune.backends.c.toolchain import WARNINGS
from edgeprune.errors import BackendError, EdgepruneError

from ...conftest import CONFIG_CASES, make_model
from .conftest import BACKEND, build, c_options, needs_cc, random_ir, torch_logits

pytestmark = needs_cc


def _pruned(cell, hidden, feedback, sparsity=0.8, seed=0):
    return prune.prune_model(make_model(cell, hidden, feedback, seed=seed), "magnitude", sparsity).model


def _check(artifact, directory, options, X, expected, tol):
    with BACKEND.runner(artifact, directory, options) as runner:
        whole = runner.run(X)
        streamed = runner.stream(X)
    assert np.max(np.abs(whole - expected)) <= tol
    assert np.max(np.abs(streamed - expected)) <= tol
    return whole


@pytest.mark.parametrize("cell,hidden,feedback", CONFIG_CASES)
def test_every_cell_and_layout_matches_torch(tmp_path, inputs, cell, hidden, feedback):
    model = _pruned(cell, hidden, feedback)
    artifact, options = build(frontend.lower(model), tmp_path)
    _check(artifact, tmp_path, options, inputs, torch_logits(model, inputs), 1e-5)


KERNEL_FORMATS = {
    "dense": {"dense"},
    "csr": {"csr"},
    "ell": {"ell", "sell"},
    "bsr": {"bsr8x1", "bsr8x1w", "bsr4x1", "bsr1x4"},
}


@pytest.mark.parametrize("case", ["gru-12x9-fb", "lstm-12x9-fb"])
def test_every_forced_kernel_gives_the_same_logits(tmp_path, inputs, case):
    cell, hidden, feedback = {"gru-12x9-fb": ("gru", (12, 9), True), "lstm-12x9-fb": ("lstm", (12, 9), True)}[case]
    model = _pruned(cell, hidden, feedback, sparsity=0.6)
    expected = torch_logits(model, inputs)
    outputs = {}
    for kernel, allowed in KERNEL_FORMATS.items():
        artifact, options = build(frontend.lower(model), tmp_path / kernel, kernel=kernel)
        used = {t["format"] for m in artifact.info["matrices"].values() for t in m["tiles"]}
        assert used and used <= allowed
        outputs[kernel] = _check(artifact, tmp_path / kernel, options, inputs, expected, 1e-5)
    assert all(np.max(np.abs(o - outputs["dense"])) <= 1e-6 for o in outputs.values())


def test_auto_within_a_budget_and_fastest_give_the_reference_logits(tmp_path, inputs):
    # 70%: fastest is dense (~73 KB) on both host profiles, the smallest layout ~29 KB
    model = frontend.lower(_pruned("lstm", (64,), False, sparsity=0.7))
    reference = ir.ReferenceExecutor(model).run(inputs)
    outputs, sizes = [], []
    for name, given in (("auto", {}), ("fastest", {"kernel": "fastest"}), ("tight", {"flash_budget": 40_000})):
        artifact, options = build(model, tmp_path / name, **given)
        sizes.append(artifact.info["weight_bytes"]["total"])
        outputs.append(_check(artifact, tmp_path / name, options, inputs, reference, 1e-5))
    assert sizes[2] <= 40_000 < sizes[1]
    assert all(np.max(np.abs(o - outputs[0])) <= 1e-6 for o in outputs)


def test_both_gathers_of_a_host_build_give_the_reference_logits(tmp_path, inputs, monkeypatch):
    from edgeprune.backends.c import costs

    model = frontend.lower(_pruned("lstm", (16,), False, sparsity=0.75))
    reference = ir.ReferenceExecutor(model).run(inputs)
    outputs = []
    for gather in ("sw", "hw"):
        monkeypatch.setenv("EDGEPRUNE_C_GATHER", gather)
        artifact, options = build(model, tmp_path / gather, kernel="ell")
        if costs.profile_for("host", ("cc",), ("-march=native",)) == "x86-avx2":
            assert artifact.info["host_tuning"]["defines"] == (["-DEP_HW_GATHER"] if gather == "hw" else [])
        outputs.append(_check(artifact, tmp_path / gather, options, inputs, reference, 1e-5))
    assert np.max(np.abs(outputs[0] - outputs[1])) <= 1e-6


@pytest.mark.parametrize(
    "method,kernel,formats_used", [("random-regular", "ell", {"ell"}), ("magnitude", "ell", {"sell"})]
)
def test_regular_masks_get_ell_without_padding_and_irregular_ones_sliced_ell(
    tmp_path, inputs, method, kernel, formats_used
):
    # random-regular with exactly equal rows (0.75 of 5 inputs is not a whole row degree: accept 0.8 there)
    options = {"row_degrees": "equal", "accept_reached": True} if method == "random-regular" else None
    model = prune.prune_model(make_model("lstm", (16,), False, seed=3), method, 0.75, options=options).model
    artifact, options = build(frontend.lower(model), tmp_path, kernel=kernel)
    gates = artifact.info["matrices"]["layers.0.weight"]
    assert {t["format"] for t in gates["tiles"]} == formats_used
    if method == "random-regular":
        assert all(t["stored"] == t["nnz"] for t in gates["tiles"])  # 16 rows: two full slices, no padding
    _check(artifact, tmp_path, options, inputs, torch_logits(model, inputs), 1e-5)


def test_libm_activations(tmp_path, inputs):
    model = _pruned("lstm", (12,), False)
    artifact, options = build(frontend.lower(model), tmp_path, c_activations="libm")
    _check(artifact, tmp_path, options, inputs, torch_logits(model, inputs), 2e-6)


def test_empty_rows_and_an_empty_head_run_like_the_reference(tmp_path, inputs):
    model = frontend.lower(_pruned("gru", (12,), False, sparsity=0.95))
    head = model.head.weight
    model.head = ir.Head(
        ir.CSR(np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(head.shape[0] + 1, np.int32), head.shape),
        model.head.bias,
    )
    assert np.any(np.diff(model.layers[0].weight.indptr) == 0)
    artifact, options = build(model, tmp_path)
    assert artifact.info["matrices"]["head.weight"]["format"] == "empty"
    _check(artifact, tmp_path, options, inputs, ir.ReferenceExecutor(model).run(inputs), 1e-5)


def test_a_zero_step_sequence_gives_the_classifier_of_the_zero_state(tmp_path):
    model = frontend.lower(_pruned("rnn", (12,), False))
    artifact, options = build(model, tmp_path)
    with BACKEND.runner(artifact, tmp_path, options) as runner:
        logits = runner.run(np.zeros((2, 0, 5), np.float32))
    assert np.array_equal(logits, np.tile(model.head.bias, (2, 1)))


def test_reported_state_matches_sizeof_and_flash_holds_the_weights(tmp_path):
    model = frontend.lower(_pruned("lstm", (12, 9), True))
    artifact, _ = build(model, tmp_path)
    info = artifact.info
    # sizeof(model_state_t) as the compiled code sees it
    state_size = ctypes.CDLL(str(tmp_path / BUILD_DIR / "libmodel.so")).model_state_size
    state_size.restype = ctypes.c_size_t
    # arena [x | h0 | h1] + 3 padding floats, LSTM cells, pre-activations of the widest layer
    assert state_size() == info["state_bytes"] == 4 * (5 + 12 + 9 + 3 + (12 + 9) + 4 * 12)
    assert info["object_bytes"]["model"]["rodata"] >= info["weight_bytes"]["total"]
    assert info["flash_bytes"] > info["weight_bytes"]["total"] and info["ram_bytes"] == info["state_bytes"]
    assert info["object_bytes"]["runtime_functions"]  # the kernels the model calls, counted in flash
    nnz = sum(m["nnz"] for m in info["matrices"].values())
    assert info["bytes_per_nonzero"] == round(info["weight_bytes"]["weights"] / nnz, 3)


def test_sources_are_byte_identical_across_runs(tmp_path):
    model = frontend.lower(_pruned("gru", (12, 9), True))
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        BACKEND.emit(model, tmp_path / name, c_options())
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files and all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)


def _sanitizers_work(tmp_path) -> bool:
    probe = tmp_path / "probe.c"
    probe.write_text("int main(void) { return 0; }\n")
    done = subprocess.run(
        ["cc", "-fsanitize=address,undefined", str(probe), "-o", str(tmp_path / "probe")], capture_output=True
    )
    return done.returncode == 0 and subprocess.run([str(tmp_path / "probe")]).returncode == 0


def test_mixed_cells_with_feedback_match_the_reference(tmp_path, inputs):
    model = random_ir()  # LSTM -> GRU -> RNN, each layer reading the next one's state
    for kernel in KERNEL_FORMATS:
        artifact, options = build(model, tmp_path / kernel, kernel=kernel)
        _check(artifact, tmp_path / kernel, options, inputs, ir.ReferenceExecutor(model).run(inputs), 1e-5)


def test_clean_under_address_and_undefined_behaviour_sanitizers(tmp_path, inputs):
    if not _sanitizers_work(tmp_path):
        pytest.skip("this compiler cannot build ASan/UBSan programs")
    model = random_ir(density=0.3)  # every cell, feedback, empty rows
    flags = "-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all -march=native"
    reference = ir.ReferenceExecutor(model).run(inputs)
    for kernel, dtype in (("csr", "f32"), ("ell", "f32"), ("bsr", "int8"), ("dense", "int8"), ("bsr", "f32")):
        d = tmp_path / f"{kernel}-{dtype}"
        artifact, options = build(model, d, c_cflags=flags, kernel=kernel, dtype=dtype)
        assert not (d / BUILD_DIR / "libmodel.so").exists()  # sanitized builds run in the harness
        _check(artifact, d, options, inputs, reference, 1e-5 if dtype == "f32" else INT8_TOLERANCE["max_abs"])


def test_two_models_and_one_runtime_link_into_one_program(tmp_path):
    models = {"kws": _pruned("lstm", (12,), False, seed=1), "gesture": _pruned("gru", (12, 9), True, seed=2)}
    for prefix, model in models.items():
        BACKEND.emit(frontend.lower(model), tmp_path, c_options(c_prefix=prefix))  # the runtime is written twice
    (tmp_path / "main.c").write_text(r"""
#include <stdio.h>
#include "kws.h"
#include "gesture.h"
int main(void)
{
    static float x[7 * 5];
    kws_state_t a;
    gesture_state_t b;
    float la[KWS_NUM_CLASSES], lb[GESTURE_NUM_CLASSES];
    if (fread(x, sizeof x, 1, stdin) != 1)
        return 1;
    kws_run(&a, x, 7, la);
    gesture_run(&b, x, 7, lb);
    fwrite(la, sizeof la, 1, stdout);
    fwrite(lb, sizeof lb, 1, stdout);
    return 0;
}
""")
    subprocess.run(
        ["cc", *WARNINGS, "-O2", "kws.c", "gesture.c", "edgeprune_rt.c", "main.c", "-lm", "-o", "both"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    x = np.random.default_rng(5).random((1, 7, 5), dtype=np.float32)
    out = np.frombuffer(
        subprocess.run([str(tmp_path / "both")], input=x.tobytes(), capture_output=True, check=True).stdout, np.float32
    )
    expected = np.concatenate([torch_logits(models["kws"], x)[0], torch_logits(models["gesture"], x)[0]])
    assert np.max(np.abs(out - expected)) <= 1e-5


@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler (g++)")
def test_headers_work_from_cpp(tmp_path, inputs):
    model = _pruned("lstm", (12,), False)
    BACKEND.emit(frontend.lower(model), tmp_path, c_options())
    (tmp_path / "main.cpp").write_text(r"""
#include <cstdio>
#include "model.h"
#include "edgeprune_rt.h"
int main()
{
    static float x[7 * MODEL_INPUT_SIZE];
    model_state_t state;
    float logits[MODEL_NUM_CLASSES];
    if (std::fread(x, sizeof x, 1, stdin) != 1) return 1;
    model_run(&state, x, 7, logits);
    std::fwrite(logits, sizeof logits, 1, stdout);
    return ep_tanhf(0.0f) == 0.0f ? 0 : 1;
}
""")
    for source in ("model.c", "edgeprune_rt.c"):
        subprocess.run(["cc", *WARNINGS, "-O2", "-c", source], cwd=tmp_path, check=True, capture_output=True)
    subprocess.run(
        [
            "g++",
            "-std=c++11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-O2",
            "main.cpp",
            "model.o",
            "edgeprune_rt.o",
            "-lm",
            "-o",
            "cpp",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    out = subprocess.run([str(tmp_path / "cpp")], input=inputs[:1].tobytes(), capture_output=True, check=True).stdout
    assert np.max(np.abs(np.frombuffer(out, np.float32) - torch_logits(model, inputs[:1])[0])) <= 1e-5


def _example_reference(model) -> np.ndarray:
    """The example main.c streams 8 steps of x[t][i] = ((7t + 3i) % 11) / 10 and prints the last logits."""
    t, i = np.meshgrid(np.arange(8), np.arange(5), indexing="ij")
    x = (((t * 7 + i * 3) % 11) / 10).astype(np.float32)[None]
    return torch_logits(model, x)[0]


def _example_logits(stdout: str) -> np.ndarray:
    return np.array([float(line.split()[2]) for line in stdout.splitlines() if line.startswith("logit ")])


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_the_generated_makefile_builds_library_example_and_harness(tmp_path, inputs):
    model = _pruned("gru", (12,), False)
    artifact = BACKEND.emit(frontend.lower(model), tmp_path, c_options(c_prefix="net"))[0]
    subprocess.run(["make", "-s"], cwd=tmp_path, check=True, capture_output=True)
    assert (tmp_path / "libnet.a").exists()
    from edgeprune.backends.c.runner import HarnessRunner

    with HarnessRunner([str(tmp_path / "edgeprune_run")], 5, artifact.info["num_classes"]) as runner:
        assert np.max(np.abs(runner.run(inputs) - torch_logits(model, inputs))) <= 1e-5
    out = subprocess.run(["./example"], cwd=tmp_path, check=True, capture_output=True, text=True).stdout
    assert np.max(np.abs(_example_logits(out) - _example_reference(model))) <= 1e-5
    assert f"class {int(np.argmax(_example_reference(model)))}" in out


@pytest.mark.skipif(shutil.which("cmake") is None, reason="no cmake (apt install cmake)")
def test_the_generated_cmake_project_builds_and_its_example_runs(tmp_path):
    model = _pruned("lstm", (12, 9), True)
    BACKEND.emit(frontend.lower(model), tmp_path / "src", c_options(dtype="int8", kernel="bsr"))
    for step in (["cmake", "-S", "src", "-B", "out", "-DCMAKE_C_FLAGS=-Werror"], ["cmake", "--build", "out"]):
        done = subprocess.run(step, cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    out = subprocess.run([str(tmp_path / "out" / "model_example")], check=True, capture_output=True, text=True).stdout
    assert np.max(np.abs(_example_logits(out) - _example_reference(model))) <= INT8_TOLERANCE["max_abs"]
    assert (tmp_path / "out" / "edgeprune_run").exists()


def _compile_for(arch, model, tmp_path, inputs):
    source = compiler.Source("mem", frontend.lower(model), lambda X: torch_logits(model, X), "torch")
    return compiler.compile_source(source, ["c"], tmp_path / arch, options={"arch": arch}, X_verify=inputs)


@pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("aarch64-linux-gnu-gcc", "qemu-aarch64")),
    reason="needs gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user",
)
def test_aarch64_build_verified_under_qemu_user(tmp_path, inputs):
    report = _compile_for("aarch64", _pruned("gru", (12, 9), True), tmp_path, inputs)
    assert [r.mode for r in report.results] == ["sequence", "step"] and report.passed
    assert all(r.max_abs_error <= 1e-5 for r in report.results)
    assert "qemu-aarch64" in report.results[0].runtime


@pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("arm-none-eabi-gcc", "qemu-system-arm")),
    reason="needs gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm",
)
@pytest.mark.parametrize("dtype", ["f32", "int8"])
def test_cortex_m4_build_verified_on_the_emulated_board(tmp_path, inputs, dtype):
    model = _pruned("lstm", (12, 9), True)
    source = compiler.Source("mem", frontend.lower(model), lambda X: torch_logits(model, X), "torch")
    report = compiler.compile_source(
        source, ["c"], tmp_path / "m4", options={"arch": "cortex-m4", "dtype": dtype}, X_verify=inputs[:8]
    )
    assert [r.mode for r in report.results] == ["sequence", "step"] and report.passed
    limit = 1e-5 if dtype == "f32" else INT8_TOLERANCE["max_abs"]
    assert all(r.max_abs_error <= limit for r in report.results)
    doc = json.loads((tmp_path / "m4" / "compile.json").read_text())
    info = doc["artifacts"][0]["info"]
    assert info["arch"] == "cortex-m4" and "board/startup.c" in doc["artifacts"][0]["files"]
    assert 0 < info["flash_bytes"] < 16_000  # model + the runtime functions it calls, Thumb-2
    if dtype == "int8":  # the board ran the int8 kernels: same outputs as the numpy simulation of them
        from edgeprune.passes import QuantizedExecutor, quantize

        simulated = QuantizedExecutor(quantize(frontend.lower(model))).run(inputs[:8])
        artifact = report.artifacts[0][1]
        with BACKEND.runner(artifact, tmp_path / "m4", c_options(arch="cortex-m4", dtype=dtype)) as runner:
            assert np.max(np.abs(runner.run(inputs[:8]) - simulated)) <= 1e-4


def test_compiler_errors_are_one_line(tmp_path):
    model = frontend.lower(make_model())
    with pytest.raises(BackendError, match=r"compiling model.c with cc failed: .*no-such-flag"):
        build(model, tmp_path / "a", c_cflags="-O2 -fno-such-flag")
    with pytest.raises(BackendError, match="no-such-cc not found"):
        build(model, tmp_path / "b", c_cc="no-such-cc")
    with pytest.raises(BackendError, match="--c-cflags"):
        build(model, tmp_path / "c", c_cflags="-O2 '")
    with pytest.raises(EdgepruneError, match="--arch for target c: 'riscv' is not one of host, aarch64, cortex-m4"):
        build(model, tmp_path / "d", arch="riscv")


def test_cli_compiles_and_verifies_the_c_target(run_cli, tmp_path, digits_checkpoint):
    out = tmp_path / "out"
    r = run_cli(
        "compile", digits_checkpoint, "--target", "c", "-o", out, "--verify-samples", "32", "--c-prefix", "digits"
    )
    assert r.code == 0, r.err
    doc = json.loads((out / "compile.json").read_text())
    assert [v["mode"] for v in doc["verification"]] == ["sequence", "step"]
    assert all(v["passed"] and v["max_abs_error"] <= 1e-5 for v in doc["verification"])
    info = doc["artifacts"][0]["info"]
    assert doc["artifacts"][0]["name"] == "digits.c" and info["flash_bytes"] > 0 and info["ram_bytes"] > 0
    assert "in-process (ctypes)" in doc["verification"][0]["runtime"]
    assert (out / BUILD_DIR / PROGRAM).exists() and (out / BUILD_DIR / "libdigits.so").exists()
    for name in ("Makefile", "CMakeLists.txt", "main.c", "digits.h", "edgeprune_rt.c"):
        assert (out / name).exists()
    # the table shows flash, RAM and bytes per nonzero; the format of every matrix is printed
    assert "flash" in r.out and "B/nnz" in r.out
    for label, matrix in info["matrices"].items():
        assert f"{label} {matrix['shape'][0]}x{matrix['shape'][1]}" in r.out and matrix["format"] in r.out


def test_int8_keeps_the_predictions_of_a_trained_model(run_cli, tmp_path, digits_checkpoint):
    out = tmp_path / "int8"
    r = run_cli("compile", digits_checkpoint, "--target", "c", "-o", out, "--verify-samples", "360", "--dtype", "int8")
    assert r.code == 0, r.err
    doc = json.loads((out / "compile.json").read_text())
    for v in doc["verification"]:
        # the record holds every bound applied: the backend's, and the verifier's near-tie floor
        assert v["tolerance"] == {**INT8_TOLERANCE, "min_agreement_explained": 0.95}
        assert v["passed"] and v["argmax_agreement"] >= 0.99 and v["flips_within_error"] == 0
    info = doc["artifacts"][0]["info"]
    assert info["dtype"] == "int8" and "ep_quantize" in info["object_bytes"]["runtime_functions"]


def test_cli_refuses_a_bad_prefix_and_writes_nothing(run_cli, tmp_path, digits_checkpoint):
    r = run_cli(
        "compile",
        digits_checkpoint,
        "--target",
        "c",
        "-o",
        tmp_path / "out",
        "--c-prefix",
        "2fast",
        "--verify-samples",
        "4",
    )
    assert r.code == 1 and len(r.err_lines) == 1 and "--c-prefix '2fast'" in r.err
    assert not (tmp_path / "out").exists()

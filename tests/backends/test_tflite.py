"""The tflite target: every file against torch in its own runtime (LiteRT with XNNPACK on and with
the reference kernels, TFLite Micro), sparse storage that really holds only the nonzeros, int8."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("flatbuffers", reason="the tflite target needs flatbuffers (pip install edgeprune[tflite])")
pytest.importorskip("ai_edge_litert.interpreter", reason="the tflite target needs ai-edge-litert")

from edgeprune import compiler, frontend, ir, prune  # noqa: E402
from edgeprune.backends import get  # noqa: E402
from edgeprune.backends import tflite as T  # noqa: E402
from edgeprune.errors import BackendError  # noqa: E402

from ..conftest import CONFIG_CASES, make_model  # noqa: E402

STEPS = 7  # the `inputs` fixture: 24 sequences of 7 steps, 5 features
RESOLVERS = ("xnnpack", "builtin_ref")

try:
    import tflite_micro.python.tflite_micro.runtime  # noqa: F401

    HAVE_MICRO = True
except ImportError:
    HAVE_MICRO = False
needs_micro = pytest.mark.skipif(not HAVE_MICRO, reason="tflite-micro is not installed (pip install tflite-micro)")


def torch_logits(model, X):
    with torch.no_grad():
        return model(torch.from_numpy(X)).numpy()


def lowered(model, steps=STEPS):
    return frontend.lower(model, {"sequence_length": steps})


def block_masks(model, width: int, sparsity: float, seed: int = 0) -> None:
    """Masks made of whole 1 x ``width`` blocks (per torch weight matrix) on every recurrent weight."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for name in layer.weight_names():
            rows, cols = getattr(layer, name).shape
            keep = rng.random((rows, -(-cols // width))) >= sparsity
            layer.set_mask(name, torch.from_numpy(np.repeat(keep, width, axis=1)[:, :cols]).float())


@pytest.mark.parametrize("sparsity", [0.0, 0.9], ids=["dense", "sparse90"])
@pytest.mark.parametrize("cell,hidden,feedback", CONFIG_CASES)
def test_every_file_matches_torch_in_its_runtime(tmp_path, inputs, cell, hidden, feedback, sparsity):
    model = make_model(cell, hidden, feedback)
    if sparsity:
        model = prune.prune_model(model, "magnitude", sparsity).model
    expected = torch_logits(model, inputs)
    backend = get("tflite")
    artifacts = {a.name: a for a in backend.emit(lowered(model), tmp_path, {})}
    assert set(artifacts) == {T.STEP_FILE, T.SEQUENCE_FILE, T.MICRO_FILE}
    assert artifacts[T.STEP_FILE].modes == ("step",) and artifacts[T.SEQUENCE_FILE].modes == ("sequence",)
    for resolver in RESOLVERS:
        with T.LiteRTRunner(tmp_path / T.STEP_FILE, resolver) as runner:
            assert np.max(np.abs(runner.stream(inputs) - expected)) <= 1e-5, resolver
        with T.LiteRTRunner(tmp_path / T.SEQUENCE_FILE, resolver) as runner:
            assert np.max(np.abs(runner.run(inputs) - expected)) <= 1e-5, resolver
            # the xnnpack runs really go through the delegate; builtin_ref has none
            assert ("DELEGATE" in runner.op_names()) == (resolver == "xnnpack")
            # XNNPACK takes the dense FCs and declines the sparse (v8) ones
            layers = {k: v for k, v in runner.delegated_weights().items() if k.startswith("layers")}
            assert len(layers) == len(hidden)
            assert all(v == (resolver == "xnnpack" and not sparsity) for v in layers.values()), layers
    if HAVE_MICRO:
        with backend.runner(artifacts[T.MICRO_FILE], tmp_path, {}) as runner:
            assert np.max(np.abs(runner.run(inputs) - expected)) <= 1e-5
    step = T.summarize((tmp_path / T.STEP_FILE).read_bytes())
    fc = {k: v for k, v in step["ops"].items() if k.startswith("FULLY_CONNECTED")}
    if sparsity:  # every recurrent FC is sparse and version 8 (the version XNNPACK declines)
        assert fc.get("FULLY_CONNECTED/v8") == len(hidden)
        assert sum(1 for c in step["constants"].values() if "format" in c) == len(hidden)
    else:
        assert "FULLY_CONNECTED/v8" not in fc and not T.sparse_tensors((tmp_path / T.STEP_FILE).read_bytes())


def test_step_file_streams_with_state_across_calls_and_any_batch(tmp_path, inputs):
    model = prune.prune_model(make_model("lstm", (12, 9), True), "magnitude", 0.9).model
    irm = lowered(model)
    (tmp_path / "s.tflite").write_bytes(T.build_step_model(irm))
    ref = ir.ReferenceExecutor(irm)
    for resolver in RESOLVERS:
        runner = T.LiteRTRunner(tmp_path / "s.tflite", resolver)
        for batch in (1, 5, 24):
            X = inputs[:batch]
            runner.reset(batch)
            state = ref.init_state(batch)
            for t in range(X.shape[1]):  # logits after every step, not just the last
                expected, state = ref.step(X[:, t], state)
                assert np.max(np.abs(runner.step(X[:, t]) - expected)) <= 1e-5


def test_sparse_file_stores_only_the_nonzeros(tmp_path):
    """The weight buffer holds 4 bytes per kept entry; only it and its index vectors grow with nnz."""
    sizes, rest = {}, []
    for sparsity in (0.6, 0.75, 0.9, 0.95):
        model = prune.prune_model(make_model("lstm", (64,), input_size=16), "magnitude", sparsity).model
        nnz = model.masks()["layers.0.weight_ih"].sum() + model.masks()["layers.0.weight_hh"].sum()
        data = T.build_step_model(lowered(model), mode="sparse")  # the dense head too: same in all
        weight = T.summarize(data)["constants"]["layers.0.weight"]
        info = T.read_metadata(data)["weights"]["layers.0.weight"]
        assert weight["format"] == "csr" and weight["bytes"] == 4 * nnz
        # values + column indices (80 columns: uint8) + row segments (nnz > 255: uint16)
        assert info["bytes"] == 4 * nnz + nnz + 2 * (256 + 1)
        sizes[sparsity] = len(data)
        rest.append(len(data) - info["bytes"])
    assert max(rest) - min(rest) <= 64, rest  # everything else is the same (up to alignment)
    dense = len(T.build_step_model(lowered(make_model("lstm", (64,), input_size=16))))
    assert sizes[0.9] < 0.25 * dense and sizes[0.95] < 0.15 * dense, (sizes, dense)


def test_index_vectors_use_the_narrowest_type():
    rng = np.random.default_rng(0)

    def encoded(rows, cols, density):
        keep = rng.random((rows, cols)) < density
        return T.encode_weight("w", ir.CSR.from_dense(rng.standard_normal((rows, cols)), keep), (cols,), mode="sparse")

    small, medium, large = encoded(16, 200, 0.05), encoded(64, 300, 0.2), encoded(1024, 300, 0.5)
    assert small.info()["index_types"] == ["uint8", "uint8"]
    assert medium.info()["index_types"] == ["uint16", "uint16"]  # nnz > 255, columns > 255
    assert large.info()["index_types"] == ["int32", "uint16"]  # nnz > 65535


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_block_1x4_masks_use_the_1x4_kernel(tmp_path, cell):
    model = make_model(cell, (16, 12), True, input_size=8)
    block_masks(model, 4, 0.7)
    X = np.random.default_rng(2).random((6, 5, 8), dtype=np.float32)
    expected = torch_logits(model, X)
    data = T.build_sequence_model(lowered(model, 5), 5)
    constants = T.summarize(data)["constants"]
    formats = {k: v.get("format") for k, v in constants.items() if k.startswith("layers") and k.endswith("weight")}
    assert formats == {"layers.0.weight": "block1x4", "layers.1.weight": "block1x4"}
    (tmp_path / "m.tflite").write_bytes(data)
    for resolver in RESOLVERS:
        assert np.max(np.abs(T.LiteRTRunner(tmp_path / "m.tflite", resolver).run(X) - expected)) <= 1e-5


def test_densify_keeps_sparse_storage_and_runs_dense_kernels(tmp_path, inputs):
    model = prune.prune_model(make_model("gru", (12, 9)), "magnitude", 0.9).model
    data = T.build_step_model(lowered(model), mode="densify")
    summary = T.summarize(data)
    assert summary["ops"]["DENSIFY/v1"] == 2 and "FULLY_CONNECTED/v8" not in summary["ops"]
    assert summary["constants"]["layers.0.weight/sparse"]["format"] == "csr"
    (tmp_path / "d.tflite").write_bytes(data)
    for resolver in RESOLVERS:
        runner = T.LiteRTRunner(tmp_path / "d.tflite", resolver)
        assert np.max(np.abs(runner.run(inputs) - torch_logits(model, inputs))) <= 1e-5
        assert runner.delegated_weights()["layers.0.weight/sparse"] == (resolver == "xnnpack")


def dequantized(irm: ir.Model) -> ir.Model:
    """The IR with every matrix rounded as the int8 files store it: symmetric, one scale per row."""

    def rounded(w: ir.CSR) -> ir.CSR:
        rows = np.repeat(np.arange(w.shape[0]), np.diff(w.indptr))
        top = np.zeros(w.shape[0], np.float32)
        np.maximum.at(top, rows, np.abs(w.data))
        scale = np.where(top > 0, top / 127, 1)[rows]
        return ir.CSR(
            (np.clip(np.rint(w.data / scale), -127, 127) * scale).astype(np.float32), w.indices, w.indptr, w.shape
        )

    layers = [
        ir.Layer(l.cell, l.input_size, l.hidden_size, l.feedback_size, rounded(l.weight), l.bias) for l in irm.layers
    ]
    return ir.Model(irm.input_size, [*layers, ir.Head(rounded(irm.head.weight), irm.head.bias)], meta=irm.meta)


@pytest.mark.parametrize(
    "cell,hidden,feedback,features",
    [
        ("lstm", (32,), False, 16),
        ("gru", (32,), False, 16),
        ("rnn", (32,), False, 16),
        ("lstm", (20, 12), True, 10),  # no part is a multiple of 16: every part of z and the head input get padded
    ],
    ids=["lstm", "gru", "rnn", "lstm-padded-fb"],
)
def test_int8_block_1x16_weights_in_both_resolvers(tmp_path, cell, hidden, feedback, features):
    model = make_model(cell, hidden, feedback, input_size=features)
    block_masks(model, 16, 0.75, seed=3)
    X = np.random.default_rng(4).random((16, 6, features), dtype=np.float32)
    irm = lowered(model, 6)
    data = T.build_sequence_model(irm, 6, dtype="int8", mode="sparse")
    weight = T.summarize(data)["constants"]["layers.0.weight"]
    assert weight["type"] == "INT8" and weight["format"] == "block1x16"
    if features % 16 == 0:  # exact 1x16 blocks: one byte per kept weight
        assert weight["bytes"] == irm.layers[0].weight.nnz
    else:  # blocks cut by a part's end are zero-filled up to the next boundary
        assert T.read_metadata(data)["weights"]["layers.0.weight"]["padded_columns"] == [16, 32, 16]
    (tmp_path / "q.tflite").write_bytes(data)
    outs = {r: T.LiteRTRunner(tmp_path / "q.tflite", r).run(X) for r in RESOLVERS}
    assert np.max(np.abs(outs["xnnpack"] - outs["builtin_ref"])) <= 1e-4  # same kernel: XNNPACK declines v8
    assert all(w["dtype"] == "int8" for w in T.read_metadata(data)["weights"].values())
    # Only the dynamic int8 quantization of each FC input separates the file from its own weights...
    own_weights = ir.ReferenceExecutor(dequantized(irm)).run(X)
    assert np.max(np.abs(outs["xnnpack"] - own_weights)) <= 5e-3  # measured ~1e-3
    # ...and the weight rounding from torch.
    assert np.max(np.abs(outs["xnnpack"] - torch_logits(model, X))) <= 2e-2  # measured ~2e-3


def test_int8_unstructured_sparsity_is_stored_as_zero_filled_blocks_or_dense():
    """Int8 sparse exists only as 1x16 blocks: an unstructured mask fills them with stored zeros."""
    model = prune.prune_model(make_model("lstm", (64,), input_size=16), "magnitude", 0.9).model
    irm = lowered(model)
    auto = T.read_metadata(T.build_step_model(irm, "int8"))["weights"]["layers.0.weight"]
    forced = T.read_metadata(T.build_step_model(irm, "int8", "sparse"))["weights"]["layers.0.weight"]
    assert forced["encoding"] == "block1x16" and forced["fill"] < 0.5  # blocks padded with stored zeros
    assert forced["bytes"] > 0.5 * 256 * 80  # 90% unstructured touches most 1x16 blocks...
    assert auto["encoding"] == "dense" and auto["bytes"] == 256 * 80  # ...so auto keeps dense int8


@needs_micro
def test_micro_file_is_dense_and_uses_the_sequence_lstm_op_where_it_fits(tmp_path):
    lstm = prune.prune_model(make_model("lstm", (12, 9)), "magnitude", 0.9).model
    ops = T.summarize(T.build_micro_model(lowered(lstm), STEPS))["ops"]
    assert ops.get("UNIDIRECTIONAL_SEQUENCE_LSTM/v1") == 2 and "FULLY_CONNECTED/v8" not in ops
    feedback = prune.prune_model(make_model("lstm", (12, 9), True), "magnitude", 0.9).model
    data = T.build_micro_model(lowered(feedback), STEPS)
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM/v1" not in T.summarize(data)["ops"] and not T.sparse_tensors(data)


@needs_micro
def test_sparse_files_are_refused_for_tflite_micro(tmp_path, inputs):
    model = prune.prune_model(make_model("gru", (12,)), "magnitude", 0.9).model
    (tmp_path / T.STEP_FILE).write_bytes(T.build_sequence_model(lowered(model), STEPS))
    with pytest.raises(BackendError, match="TFLite Micro ignores sparsity") as err:
        T.MicroRunner(tmp_path / T.STEP_FILE)
    assert "\n" not in str(err.value)
    with pytest.raises(BackendError, match="--micro sparse: TFLite Micro ignores sparse weights"):
        get("tflite").emit(lowered(model), tmp_path, {"micro": "sparse"})


def test_same_model_gives_the_same_bytes():
    model = prune.prune_model(make_model("lstm", (12, 9), True), "magnitude", 0.9).model
    for build in (
        lambda m: T.build_step_model(m, "int8"),
        lambda m: T.build_sequence_model(m, 4),
        lambda m: T.build_micro_model(m, 4),
    ):
        assert build(lowered(model)) == build(lowered(model))


def test_sequence_file_refuses_another_length(tmp_path, inputs):
    (tmp_path / "m.tflite").write_bytes(T.build_sequence_model(lowered(make_model()), STEPS))
    with pytest.raises(BackendError, match=f"unrolled over {STEPS} steps"):
        T.LiteRTRunner(tmp_path / "m.tflite").run(inputs[:, :3])


def test_tflite_runtime_is_optional(tmp_path, inputs):
    model = make_model("rnn", (12,))
    (tmp_path / "m.tflite").write_bytes(T.build_sequence_model(lowered(model), STEPS))
    try:
        runner = T.LiteRTRunner(tmp_path / "m.tflite", runtime="tflite-runtime")
    except BackendError as e:  # not installed here, or built for numpy 1: one line naming it
        assert "tflite-runtime" in str(e) and "\n" not in str(e)
        return
    assert np.max(np.abs(runner.run(inputs) - torch_logits(model, inputs))) <= 1e-5


def test_model_without_sequence_length_needs_steps(tmp_path):
    irm = frontend.lower(make_model())
    with pytest.raises(BackendError, match="--tflite-steps"):
        get("tflite").emit(irm, tmp_path, {})
    arts = get("tflite").emit(irm, tmp_path, {"tflite_steps": 3, "micro": "off"})
    arts = [a for a in arts if "runs_in" not in a.info]  # not the same files again in tflite-runtime
    assert [a.name for a in arts] == [T.STEP_FILE, T.SEQUENCE_FILE] and arts[1].info["steps"] == 3


def test_compile_gate_verifies_every_file(tmp_path, inputs):
    model = prune.prune_model(make_model("gru", (12, 9), True), "magnitude", 0.9).model
    src = compiler.Source("mem", lowered(model), lambda X: torch_logits(model, X), "torch")
    report = compiler.compile_source(
        src, ["tflite"], tmp_path / "out", X_verify=inputs, options={"litert_resolver": "builtin_ref"}
    )
    assert report.passed
    runs = {(r.artifact, r.mode) for r in report.results}
    assert {(T.STEP_FILE, "step"), (T.SEQUENCE_FILE, "sequence")} <= runs
    assert all("builtin_ref" in r.runtime for r in report.results if r.artifact != T.MICRO_FILE)
    doc = json.loads((tmp_path / "out" / "compile.json").read_text())
    step = next(a for a in doc["artifacts"] if a["name"] == T.STEP_FILE)
    assert step["info"]["weights"]["layers.0.weight"]["fc_version"] == 8


def test_cli_compiles_a_checkpoint_to_tflite(run_cli, digits_checkpoint, tmp_path):
    pruned = tmp_path / "p.pt"
    assert run_cli("prune", digits_checkpoint, "--method", "magnitude", "--sparsity", "0.9", "-o", pruned).code == 0
    result = run_cli("compile", pruned, "--target", "tflite", "-o", tmp_path / "out", "--verify-samples", "64")
    assert result.code == 0, result.err
    assert all((tmp_path / "out" / f).exists() for f in (T.STEP_FILE, T.SEQUENCE_FILE, T.MICRO_FILE))
    doc = json.loads((tmp_path / "out" / "compile.json").read_text())
    ours = [r for r in doc["verification"] if not r["runtime"].startswith("tflite-runtime")]  # + its own test
    assert all(r["passed"] for r in doc["verification"]) and len(ours) == 2 + HAVE_MICRO
    refused = run_cli("compile", pruned, "--target", "tflite", "-o", tmp_path / "bad", "--micro", "sparse")
    assert refused.code != 0 and len(refused.err_lines) == 1 and "TFLite Micro" in refused.err
    assert not (tmp_path / "bad").exists()


def test_litert_info_lines_never_reach_the_terminal(tmp_path):
    """Before: 'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.' on stderr in every compile."""
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from tests.conftest import make_model\n"
        "from edgeprune import frontend\n"
        "from edgeprune.backends import tflite as T\n"
        f"p = {str(tmp_path / 'm.tflite')!r}\n"
        "open(p, 'wb').write(T.build_step_model(frontend.lower(make_model('gru', (6,)))))\n"
        "r = T.LiteRTRunner(p)\n"
        "r.stream(np.zeros((3, 4, 5), np.float32))\n"
        "print('ran')\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=120)
    assert done.returncode == 0 and "ran" in done.stdout, done.stderr
    assert "INFO" not in done.stderr and done.stderr.strip() == ""

"""The tflite target on IR v2 stages: every zoo shape (and a few edge shapes) in every file and
runtime against torch, every streaming state against the numpy reference, sparse storage of the
non-recurrent matrices, and the ops each stage becomes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("flatbuffers", reason="the tflite target needs flatbuffers (pip install edgeprune[tflite])")
pytest.importorskip("ai_edge_litert.interpreter", reason="the tflite target needs ai-edge-litert")

from edgeprune import frontend, ir, modelspec  # noqa: E402
from edgeprune.backends import get  # noqa: E402
from edgeprune.backends import tflite as T  # noqa: E402
from edgeprune.models import SequenceModel  # noqa: E402

from .. import zoo  # noqa: E402
from .test_tflite import HAVE_MICRO, RESOLVERS  # noqa: E402

STEPS = 7
# Shapes the zoo does not cover: a 1-tap conv (no window state), a wide dilated conv, a max pool over raw
# (negative) inputs with nothing recurrent, a chain without any state, a relu rnn without bias at every step,
# chains ending in a stateful stage (its state and the output are the same values: two named outputs).
EXTRA = {
    "ends-lstm": ("lstm:6", 4, "every", "regress"),
    "ends-maxpool": ("conv:4:k2,pool:max", 4, "last", "regress"),
    "ends-meanpool": ("gru:5:fb,gru:3,pool:mean", 4, "last", "regress"),
    "conv-k1": ("conv:6:k1,lstm:8,dense:3", 4, "last", "classify"),
    "conv-k1-tail": ("gru:6,conv:4:k1:relu,dense:3", 4, "last", "classify"),  # after the last state: once
    "conv-dilated": ("conv:5:k4:d3:tanh,conv:4:k2:sigmoid,rnn:8,dense:3:sigmoid", 3, "every", "regress"),
    "maxpool-raw": ("normalize,pool:max,dense:4", 5, "last", "classify"),
    "stateless": ("dense:8:relu,layernorm,dense:4:softmax", 5, "every", "classify"),
    "relu-rnn-every": ("rnn:12:relu:nobias,dense:8:tanh,dense:3", 4, "every", "regress"),
}


def build(name: str, sparsity: float = 0.85):
    if name in zoo.ZOO:
        return zoo.build(name, sparsity=sparsity)
    text, features, output, task = EXTRA[name]
    torch.manual_seed(3)
    model = SequenceModel(modelspec.parse(text, features, output=output, task=task)).eval()
    rng = np.random.default_rng(3)
    model.set_masks({n: torch.from_numpy(rng.random(tuple(w.shape)) >= sparsity) for n, w in model.prunable().items()})
    return model


def inputs(name: str, n: int = 6) -> np.ndarray:
    features = zoo.ZOO[name][1] if name in zoo.ZOO else EXTRA[name][1]
    return np.random.default_rng(1).normal(0, 1.5, (n, STEPS, features)).astype(np.float32)


def torch_outputs(model, X):
    with torch.no_grad():
        return model(torch.from_numpy(X)).numpy()


ALL = sorted(zoo.ZOO) + sorted(EXTRA)


@pytest.mark.parametrize("name", ALL)
def test_every_file_matches_torch_in_both_resolvers_and_tflite_micro(tmp_path, name):
    model = build(name)
    irm = frontend.lower(model, {"sequence_length": STEPS})
    X = inputs(name)
    expected = torch_outputs(model, X)
    assert expected.shape == ((6, STEPS, irm.output_size) if irm.output == "every" else (6, irm.output_size))
    assert get("tflite").declines(irm) is None
    (tmp_path / "step.tflite").write_bytes(T.build_step_model(irm, mode="sparse"))
    (tmp_path / "seq.tflite").write_bytes(T.build_sequence_model(irm, STEPS, mode="sparse"))
    for resolver in RESOLVERS:
        for f in ("step.tflite", "seq.tflite"):
            out = T.LiteRTRunner(tmp_path / f, resolver).run(X)
            assert out.shape == expected.shape and np.max(np.abs(out - expected)) <= 1e-5, (f, resolver)
    # every matrix (dense, conv and recurrent alike) is stored sparse and run by the v8 sparse FC
    matrices = len(irm.matrices())
    step = T.summarize((tmp_path / "step.tflite").read_bytes())
    assert step["ops"].get("FULLY_CONNECTED/v8") == matrices and "FULLY_CONNECTED/v1" not in step["ops"]
    assert len(T.sparse_tensors((tmp_path / "step.tflite").read_bytes())) == matrices
    micro = T.build_micro_model(irm, STEPS)
    assert not T.sparse_tensors(micro)
    if HAVE_MICRO:
        (tmp_path / "micro.tflite").write_bytes(micro)
        out = T.MicroRunner(tmp_path / "micro.tflite").run(X)
        assert out.shape == expected.shape and np.max(np.abs(out - expected)) <= 1e-5


@pytest.mark.parametrize("name", ALL)
def test_step_file_states_follow_the_reference_at_every_step(tmp_path, name):
    """Conv windows, pool sums/maxima and counts, recurrent h/c: each state output equals the numpy
    reference's state after every step, and so does the step's output."""
    irm = frontend.lower(build(name))
    X = inputs(name, n=3)
    (tmp_path / "s.tflite").write_bytes(T.build_step_model(irm))
    runner = T.LiteRTRunner(tmp_path / "s.tflite")
    ref = ir.ReferenceExecutor(irm)
    layout = T.state_layout(irm)
    assert [n for n, _, _ in layout] == runner.meta["state"]
    assert [w for _, _, w in layout] == [w for sizes in irm.state_sizes() for w in sizes]
    runner.reset(len(X))
    state = ref.init_state(len(X))
    for t in range(STEPS):
        expected, state = ref.step(X[:, t], state)
        assert np.max(np.abs(runner.step(X[:, t]) - expected)) <= 1e-5, t
        flat = [v for per_stage in state for v in per_stage]
        for (n, _i, _), value in zip(layout, flat):
            assert np.max(np.abs(runner.state[n] - value)) <= 1e-5, (n, t)


def test_conv_window_state_is_the_last_inputs_oldest_first(tmp_path):
    model = build("conv")  # conv:16:k3:d2 over 6 features: a window of (3-1)*2 = 4 inputs
    (tmp_path / "s.tflite").write_bytes(T.build_step_model(frontend.lower(model)))
    runner = T.LiteRTRunner(tmp_path / "s.tflite")
    X = inputs("conv", n=2)
    runner.stream(X)
    assert runner.state["conv0"].shape == (2, 4 * 6)
    np.testing.assert_array_equal(runner.state["conv0"], X[:, -4:].reshape(2, -1))


def test_dense_and_conv_matrices_are_stored_sparse_with_only_their_nonzeros():
    irm = frontend.lower(build("conv"))
    data = T.build_step_model(irm, mode="sparse")
    constants, info = T.summarize(data)["constants"], T.read_metadata(data)["weights"]
    for name in ("layers.0.weight", "head.weight"):  # the conv and the dense head
        nnz = irm.matrices()[name].nnz
        assert constants[name]["format"] == "csr" and constants[name]["bytes"] == 4 * nnz, name
        assert info[name]["fc_version"] == 8 and info[name]["nnz"] == nnz
        assert constants[name]["shape"] == list(irm.matrices()[name].shape)  # the dense shape, k*C columns


def test_sparse_dense_stages_are_declined_by_xnnpack(tmp_path):
    irm = frontend.lower(build("kws"))  # dense relu, gru, dense relu, dense
    X = inputs("kws")
    (tmp_path / "m.tflite").write_bytes(T.build_sequence_model(irm, STEPS, mode="sparse"))
    runner = T.LiteRTRunner(tmp_path / "m.tflite", "xnnpack")
    assert "DELEGATE" in runner.op_names()  # the elementwise ops still go to XNNPACK...
    assert runner.delegated_weights() == {n: False for n in irm.matrices()}  # ...no sparse FC does
    (tmp_path / "d.tflite").write_bytes(T.build_sequence_model(irm, STEPS, mode="dense"))
    dense = T.LiteRTRunner(tmp_path / "d.tflite", "xnnpack")
    assert dense.delegated_weights() == {n: True for n in irm.matrices()}
    assert np.max(np.abs(runner.run(X) - dense.run(X))) <= 1e-5


@pytest.mark.parametrize(
    "name,ops",
    [
        ("layernorm", {"MEAN/v1": 2, "RSQRT/v1": 1}),
        ("softmax", {"SOFTMAX/v1": 1}),
        ("denoiser", {"TANH/v1": 3, "LOGISTIC/v1": 3}),  # dense tanh, two GRUs (tanh n; sigmoid r,z), sigmoid out
        ("relu-rnn", {"RELU/v1": 1}),
        ("meanpool", {"DIV/v1": 1}),
        ("maxpool", {"MAXIMUM/v1": 1, "SELECT_V2/v1": 1}),
        ("normalize", {"MUL/v1": 4, "ADD/v1": 2}),  # normalize x*s+b; LSTM: f*c, i*g, o*tanh(c); f*c + i*g
    ],
)
def test_each_stage_becomes_its_ops(name, ops):
    found = T.summarize(T.build_step_model(frontend.lower(build(name))))["ops"]
    assert {k: found.get(k) for k in ops} == ops


def test_sequence_model_runs_stages_after_the_last_state_once():
    """Output last: the head (and the layers after the recurrent stage) are emitted at the last step only."""
    irm = frontend.lower(build("kws"))  # dense, gru, dense, dense: 2 FCs per step + 2 at the end
    ops = T.summarize(T.build_sequence_model(irm, STEPS))["ops"]
    assert sum(v for k, v in ops.items() if k.startswith("FULLY_CONNECTED")) == 2 * STEPS + 2
    every = frontend.lower(build("labelling"))  # lstm, dense at every step, packed to [N, T, C]
    ops = T.summarize(T.build_sequence_model(every, STEPS))["ops"]
    assert sum(v for k, v in ops.items() if k.startswith("FULLY_CONNECTED")) == 2 * STEPS and ops["PACK/v1"] == 1


@pytest.mark.parametrize("name", ["conv", "denoiser", "layernorm"])
def test_int8_weights_of_every_matrix_stage(tmp_path, name):
    """int8 (hybrid) FCs for dense and conv stages too: close to the float reference, and the gate's int8
    tolerance holds."""
    irm = frontend.lower(build(name, sparsity=0.0), {"sequence_length": STEPS})
    X = inputs(name)
    data = T.build_sequence_model(irm, STEPS, dtype="int8")
    assert {w["dtype"] for w in T.read_metadata(data)["weights"].values()} == {"int8"}
    (tmp_path / "q.tflite").write_bytes(data)
    out = T.LiteRTRunner(tmp_path / "q.tflite").run(X)
    assert np.max(np.abs(out - ir.ReferenceExecutor(irm).run(X))) <= 3e-2


@pytest.mark.parametrize("name", ["gru-nobias", "relu-rnn-every"])
def test_stages_without_bias_get_no_bias_tensor(name):
    irm = frontend.lower(build(name))
    without = {f"{n}.bias" for n, s in irm.named_stages() if hasattr(s, "bias") and s.bias is None}
    assert without  # (and the files still match torch: test_every_file_matches_torch_...)
    constants = T.summarize(T.build_step_model(irm))["constants"]
    assert not without & set(constants)
    with_bias = {f"{n}.bias" for n, s in irm.named_stages() if getattr(s, "bias", None) is not None}
    assert with_bias and {k for k in constants if k.endswith(".bias")} == with_bias


def test_int8_regression_files_are_held_to_a_relative_error(tmp_path):
    """A regression output has no argmax to agree on: the int8 gate bounds the error by the outputs' range."""
    from edgeprune.compiler import Source, compile_source
    from edgeprune.train import predict_logits

    model = build("denoiser")
    irm = frontend.lower(model, {"sequence_length": STEPS})
    source = Source("denoiser", irm, lambda X: predict_logits(model, X), "torch")
    report = compile_source(
        source, ["tflite"], tmp_path / "out", options={"dtype": "int8"}, X_verify=inputs("denoiser")
    )
    int8 = [r for r in report.results if r.artifact != T.MICRO_FILE]
    assert report.passed and len(int8) == 2
    assert all(r.tolerance.max_rel == 0.05 and r.max_rel_error <= 0.05 and r.max_abs_error > 1e-6 for r in int8)


def test_same_stage_chain_gives_the_same_bytes():
    for name in ("conv", "maxpool", "denoiser"):
        a, b = frontend.lower(build(name)), frontend.lower(build(name))
        for make in (T.build_step_model, lambda m: T.build_sequence_model(m, 4), lambda m: T.build_micro_model(m, 4)):
            assert make(a) == make(b)


def test_cli_compiles_a_v2_checkpoint_to_every_tflite_file(run_cli, tmp_path):
    from edgeprune import checkpoint

    checkpoint.save(build("feedback-every"), tmp_path / "m.pt", {"sequence_length": STEPS})
    result = run_cli(
        "compile",
        tmp_path / "m.pt",
        "--target",
        "tflite",
        "-o",
        tmp_path / "out",
        "--verify-data",
        "random",
        "--verify-samples",
        "16",
    )
    assert result.code == 0, result.err
    doc = json.loads((tmp_path / "out" / "compile.json").read_text())
    ours = [r for r in doc["verification"] if not r["runtime"].startswith("tflite-runtime")]  # + its own test
    runs = {(r["artifact"], r["mode"]) for r in ours if r["passed"]}
    assert {(T.STEP_FILE, "step"), (T.SEQUENCE_FILE, "sequence")} <= runs and len(ours) == 2 + HAVE_MICRO


def test_block_1x4_masks_on_conv_and_dense_stages_use_the_1x4_kernel(tmp_path):
    """A conv's taps and a dense stage's input are column parts like a recurrent layer's [x ; h]: blocks
    that stay inside one tap (8 channels) are stored as 1x4 blocks and run by the 1x4 kernel."""
    torch.manual_seed(0)
    irm = frontend.lower(
        SequenceModel(modelspec.parse("dense:8:tanh,conv:12:k3:d2:relu,gru:8,dense:4", 8)).eval(),
        {"sequence_length": STEPS},
    )
    rng = np.random.default_rng(5)
    for stage in irm.stages:
        if isinstance(stage, (ir.Dense, ir.Conv1d)):
            rows, cols = stage.weight.shape
            keep = np.repeat(rng.random((rows, cols // 4)) >= 0.6, 4, axis=1)
            stage.weight = ir.CSR.from_dense(stage.weight.to_dense(), keep)
    X = np.random.default_rng(6).normal(0, 1, (5, STEPS, 8)).astype(np.float32)
    expected = ir.ReferenceExecutor(irm).run(X)
    for build_file in (T.build_step_model, lambda m, **kw: T.build_sequence_model(m, STEPS, **kw)):
        data = build_file(irm, mode="sparse")
        formats = {k: v.get("format") for k, v in T.summarize(data)["constants"].items() if k.endswith("weight")}
        assert formats["layers.0.weight"] == formats["layers.1.weight"] == formats["head.weight"] == "block1x4"
        (tmp_path / "b.tflite").write_bytes(data)
        for resolver in RESOLVERS:
            assert np.max(np.abs(T.LiteRTRunner(tmp_path / "b.tflite", resolver).run(X) - expected)) <= 1e-5


def test_a_stage_kind_without_an_emitter_is_declined_in_one_line():
    from dataclasses import dataclass, field

    @dataclass
    class Fancy:  # a stage kind added to the IR later, which the tflite writer does not know yet
        kind: str = field(default="fancy", init=False)
        input_size: int = 4
        output_size: int = 4

    irm = frontend.lower(build("normalize"))
    assert get("tflite").declines(irm) is None
    irm.stages.insert(1, Fancy())
    reason = get("tflite").declines(irm)
    assert reason == "target tflite does not support a fancy stage (layers.1)"

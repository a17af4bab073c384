"""IR v2 on every zoo shape: torch model == IR reference (run and step) == saved and loaded == lifted."""

import numpy as np
import pytest
import torch

from edgeprune import frontend, ir
from edgeprune.errors import IRError
from edgeprune.frontend.torch_lifting import lift

from .. import zoo


def _torch(model, X):
    with torch.no_grad():
        return model(torch.from_numpy(X)).numpy()


@pytest.fixture(params=sorted(zoo.ZOO), scope="module")
def case(request):
    name = request.param
    model = zoo.build(name, sparsity=0.8)
    return name, model, frontend.lower(model), zoo.inputs(name)


def test_reference_equals_torch(case):
    name, model, graph, X = case
    expected = _torch(model, X)
    assert expected.shape == (
        (len(X), X.shape[1], graph.output_size) if graph.output == "every" else (len(X), graph.output_size)
    )
    np.testing.assert_allclose(ir.ReferenceExecutor(graph).run(X), expected, atol=2e-6)


def test_streaming_steps_equal_the_sequence(case):
    name, model, graph, X = case
    ex = ir.ReferenceExecutor(graph)
    state, outs = ex.init_state(len(X)), []
    for t in range(X.shape[1]):
        y, state = ex.step(X[:, t], state)
        outs.append(y)
    every = _torch(model, X) if graph.output == "every" else None
    if every is not None:
        np.testing.assert_allclose(np.stack(outs, 1), every, atol=2e-6)
    np.testing.assert_allclose(outs[-1], ex.run(X, all_steps=True)[:, -1], atol=1e-12)


def test_save_load_and_lift_round_trip(case, tmp_path):
    name, model, graph, X = case
    loaded = ir.load(ir.save(graph, tmp_path))
    assert loaded.describe() == graph.describe() and loaded.stage_names() == graph.stage_names()
    assert loaded.nnz(True) == graph.nnz(True) < sum(m.shape[0] * m.shape[1] for m in graph.matrices().values())
    np.testing.assert_array_equal(ir.ReferenceExecutor(loaded).run(X), ir.ReferenceExecutor(graph).run(X))
    lifted = lift(loaded)
    np.testing.assert_allclose(_torch(lifted, X), _torch(model, X), atol=1e-6)
    for key, mask in model.masks().items():
        assert torch.equal(lifted.masks()[key], mask), key


def test_variable_lengths_pick_each_sequences_last_step():
    model = zoo.build("meanpool")
    graph = frontend.lower(model)
    X = zoo.inputs("meanpool", n=4, steps=7)
    lengths = np.array([7, 3, 1, 5])
    got = ir.ReferenceExecutor(graph).run(X, lengths=lengths)
    for i, n in enumerate(lengths):  # the same as running the sequence cut at its length
        np.testing.assert_allclose(got[i], ir.ReferenceExecutor(graph).run(X[i : i + 1, :n])[0], atol=1e-12)
        with torch.no_grad():
            t = model(torch.from_numpy(X[i : i + 1]), lengths=torch.tensor([n]))[0].numpy()
        np.testing.assert_allclose(got[i], t, atol=2e-6)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("gru:8,dense:4:softmax,dense:3", "softmax is allowed only on the last stage"),
        ("gru:8,pool:mean,gru:4,dense:3", "cannot follow"),
        ("conv:8:k0,dense:3", "kernel and dilation"),
        ("lstm:8:fb,dense:3", "feedback needs a recurrent stage"),
        ("gru:8,dense:3:relu:foo", "cannot read 'foo'"),
        ("gru:8,,dense:3", "empty stage"),
        ("transformer:8,dense:3", "unknown kind"),
        ("lstm:8:relu,dense:3", "not allowed"),
    ],
)
def test_bad_specs_are_refused_naming_the_stage(spec, message):
    from edgeprune import modelspec
    from edgeprune.errors import ModelError

    with pytest.raises(ModelError, match=message):
        modelspec.parse(spec, 4)


def test_pool_needs_output_last():
    from edgeprune import modelspec
    from edgeprune.errors import ModelError

    with pytest.raises(ModelError, match="needs --outputs last"):
        modelspec.parse("gru:8,pool:mean,dense:3", 4, output="every")


@pytest.mark.parametrize(
    "name, mutate, message",
    [
        (
            "conv",
            lambda g: g.stages.insert(1, ir.Pool(16, "mean")) or setattr(g, "output", "every"),
            "needs output 'last'",
        ),
        ("kws", lambda g: setattr(g.stages[0], "activation", "softmax"), "softmax is allowed only on the last stage"),
        ("conv", lambda g: setattr(g.stages[0], "activation", "softmax"), "unknown activation 'softmax'"),
        ("conv", lambda g: setattr(g.stages[0], "kernel", 0), "kernel must be >= 1"),
        (
            "conv",
            lambda g: g.stages.insert(1, ir.Dense(ir.CSR.from_dense(np.ones((3, 5), np.float32)))),
            "input size 5",
        ),
        ("conv", lambda g: g.stages[0].bias.__setitem__(0, np.nan), "non-finite"),
        ("meanpool", lambda g: setattr(g.stages[1], "mode", "median"), "unknown pool mode"),
    ],
)
def test_invalid_chains_are_refused_in_one_line(name, mutate, message):
    graph = frontend.lower(zoo.build(name))
    mutate(graph)
    with pytest.raises(IRError, match=message):
        graph.validate()


def test_v1_fixtures_still_load_and_give_the_same_outputs():
    from pathlib import Path

    from edgeprune import checkpoint
    from edgeprune.train import predict_logits

    here = Path(__file__).parent.parent / "fixtures" / "v1"
    expected = np.load(here / "expected.npz")
    for name in ("gru", "lstm_fb"):
        model = checkpoint.load(here / f"{name}.pt")
        np.testing.assert_allclose(predict_logits(model, expected["X"]), expected[name], atol=1e-6)
        graph = ir.load(here / f"{name}_ir")
        assert graph.is_v1()
        np.testing.assert_allclose(ir.ReferenceExecutor(graph).run(expected["X"]), expected[name], atol=1e-5)


def test_v1_fixtures_compile_to_every_target(tmp_path):
    """IR v1 directories and v1 checkpoints written before IR v2 compile and verify, as they are."""
    from pathlib import Path

    from edgeprune import backends
    from edgeprune.compiler import compile_source, load_source

    here = Path(__file__).parent.parent / "fixtures" / "v1"
    X = np.load(here / "expected.npz")["X"]
    targets = [t for t in ("ir", "onnx", "c", "tflite") if backends.get(t).unavailable() is None]
    for source in (here / "gru.pt", here / "lstm_fb_ir"):
        src = load_source(source)
        src.model.meta.setdefault("sequence_length", X.shape[1])
        report = compile_source(src, targets, tmp_path / source.stem, X_verify=X)
        assert report.passed and {r.artifact.split("/")[0] for r in report.results} >= set(targets) - {"ir"}

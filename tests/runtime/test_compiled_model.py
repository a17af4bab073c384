"""CompiledModel: the fast single-stream step, step_into, batched run and multi-stream steps give the
IR reference's outputs, and exactly each other's; bad input is one line. (No timing here: the
overhead over the native step is measured by benchmarks/c/step_overhead.py.)"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgeprune import ir
from edgeprune.errors import BackendError
from edgeprune.runtime import CompiledModel

from ..backends.c.conftest import build, needs_cc, random_ir

pytestmark = needs_cc


@pytest.fixture(scope="module", params=["last", "every"])
def compiled(request, tmp_path_factory):
    model = dataclasses.replace(random_ir(density=0.4), output=request.param)
    directory = tmp_path_factory.mktemp(request.param)
    build(model, directory)
    with CompiledModel.load(directory) as m:
        yield model, m


def _native(m: CompiledModel, seq: np.ndarray) -> np.ndarray:
    """[T, C]: the compiled model's output after each step, from run (one C call per prefix)."""
    if m.every:
        return m.run(seq)
    return np.stack([m.run(seq[: t + 1]) for t in range(len(seq))])


def test_step_and_step_into_equal_the_reference_and_the_native_run(compiled, inputs):
    model, m = compiled
    reference = ir.ReferenceExecutor(model).run(inputs[:3], all_steps=True)  # [N, T, C]
    out = np.empty(m.num_classes, np.float32)
    for i, seq in enumerate(inputs[:3]):
        native = _native(m, seq)
        assert np.max(np.abs(native - reference[i])) <= 1e-5
        m.reset()
        for t, x_t in enumerate(seq):
            y = m.step(x_t.astype(np.float64))  # converted by the copy into the bound buffer
            assert np.array_equal(y, native[t])
        kept = y.copy()
        m.reset()
        for t, x_t in enumerate(seq):
            assert m.step_into(x_t, out) is out and np.array_equal(out, native[t])
        assert np.array_equal(y, kept)  # step returned a copy, not the bound buffer


def test_run_over_a_batch_is_one_call_that_equals_the_sequences_one_by_one(compiled, inputs):
    model, m = compiled
    assert m._run_batch is not None and m._step_streams is not None  # the generated library exports both
    reference = ir.ReferenceExecutor(model).run(inputs)
    batch = m.run(inputs)
    assert np.max(np.abs(batch - reference)) <= 1e-5
    assert np.array_equal(batch, np.stack([m.run(seq) for seq in inputs]))
    assert m.run(inputs[:, :0]).shape == ((len(inputs), 0, m.num_classes) if m.every else (len(inputs), m.num_classes))


def test_several_streams_step_together_like_one_stream_each(compiled, inputs):
    _, m = compiled
    X = inputs[:4]
    m.reset(4)
    together = np.stack([m.step(X[:, t]) for t in range(X.shape[1])], axis=1)  # [4, T, C]
    for i in range(4):
        m.reset()
        alone = np.stack([m.step(x_t) for x_t in X[i]])
        assert np.array_equal(together[i], alone)
    m.reset(4)
    out = np.empty((4, m.num_classes), np.float32)
    assert np.array_equal(m.step_into(X[:, 0], out), together[:, 0])


@pytest.mark.parametrize(
    "x,match",
    [
        (np.zeros(3, np.float32), r"expected a step \[n, 5\], got \[3\]"),
        (np.zeros((1, 2, 5), np.float32), r"expected a step \[n, 5\], got \[1, 2, 5\]"),
        (np.float32(1.0), r"expected a step \[n, 5\], got \[\]"),
        (np.array(["a"] * 5), "step input of dtype <U1 is not numeric"),
        (np.zeros((2, 5), np.float32), r"step got 2 streams after reset\(1\)"),
    ],
)
def test_bad_steps_are_refused_in_one_line(compiled, x, match):
    _, m = compiled
    m.reset()
    with pytest.raises(BackendError, match=match):
        m.step(x)


def test_step_into_refuses_a_wrong_output_buffer(compiled):
    _, m = compiled
    m.reset()
    x = np.zeros(5, np.float32)
    for bad, what in (
        (np.empty(m.num_classes, np.float64), "float64"),
        (np.empty(m.num_classes + 1, np.float32), "float32"),
        ([0.0] * m.num_classes, "list"),
    ):
        with pytest.raises(
            BackendError, match=rf"step_into needs a float32 output of shape \[{m.num_classes}\], got {what}"
        ):
            m.step_into(x, bad)

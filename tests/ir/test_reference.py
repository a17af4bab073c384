import numpy as np
import pytest
import torch

from edgeprune import frontend, ir, prune

from ..conftest import CONFIG_CASES, make_model


@pytest.mark.parametrize("sparsity", [None, 0.9])
@pytest.mark.parametrize("cell,hidden,feedback", CONFIG_CASES)
def test_reference_equals_torch(cell, hidden, feedback, sparsity, inputs):
    model = make_model(cell, hidden, feedback)
    if sparsity:
        model = prune.prune_model(model, "magnitude", sparsity, include_head=True).model
    executor = ir.ReferenceExecutor(frontend.lower(model))
    x = torch.from_numpy(inputs)
    with torch.no_grad():
        expected_last = model(x).numpy()
        expected_all = model(x, all_steps=True).numpy()
    assert np.max(np.abs(executor.run(inputs) - expected_last)) <= 1e-5
    assert np.max(np.abs(executor.run(inputs, all_steps=True) - expected_all)) <= 1e-5


def test_streaming_equals_whole_sequence(inputs):
    executor = ir.ReferenceExecutor(frontend.lower(make_model("lstm", (12, 9), True)))
    state = executor.init_state(len(inputs))
    for t in range(inputs.shape[1]):
        logits, state = executor.step(inputs[:, t], state)
    np.testing.assert_allclose(logits, executor.run(inputs), rtol=0, atol=1e-12)


def test_single_sample_stream_matches_batch(inputs):
    executor = ir.ReferenceExecutor(frontend.lower(make_model("gru", (12,))))
    state = executor.init_state(1)
    for t in range(inputs.shape[1]):
        logits, state = executor.step(inputs[3:4, t], state)
    np.testing.assert_allclose(logits[0], executor.run(inputs)[3], rtol=0, atol=1e-12)

"""Lifting the IR back to a SequenceClassifier: same outputs, same masks, refusals for what it cannot hold."""

import numpy as np
import pytest
import torch

from edgeprune import frontend, ir, prune
from edgeprune.frontend.torch_lifting import lift

from ..conftest import CONFIG_CASES, make_model


@pytest.mark.parametrize("cell,hidden,feedback", CONFIG_CASES)
def test_lift_inverts_lower(inputs, cell, hidden, feedback):
    model = prune.prune_model(make_model(cell, hidden, feedback), "magnitude", 0.8, include_head=True).model
    low = frontend.lower(model)
    lifted = lift(low)
    assert lifted.config == model.config
    x = torch.from_numpy(inputs)
    with torch.no_grad():
        assert torch.max(torch.abs(lifted(x) - model(x))) <= 1e-5
    assert lifted.masks().keys() == model.masks().keys()
    for name, mask in model.masks().items():
        assert torch.equal(lifted.masks()[name], mask), name
    again = frontend.lower(lifted)
    for name, m in low.matrices().items():
        np.testing.assert_array_equal(again.matrices()[name].indices, m.indices)


def test_dense_ir_gets_no_masks():
    assert lift(frontend.lower(make_model("gru", (12,)))).masks() == {}


def test_mixed_cells_lift_exactly():
    lstm, gru = frontend.lower(make_model("lstm", (12, 9))), frontend.lower(make_model("gru", (12, 9)))
    mixed = ir.Model(lstm.input_size, [lstm.layers[0], gru.layers[1], lstm.head])
    lifted = lift(mixed)
    assert [layer.cell for layer in lifted.layers] == ["lstm", "gru"]
    X = np.random.default_rng(0).random((5, 6, lstm.input_size), dtype=np.float32)
    with torch.no_grad():
        out = lifted(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(out, ir.ReferenceExecutor(mixed).run(X), atol=1e-5)

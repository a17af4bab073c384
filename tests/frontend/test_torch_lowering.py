import numpy as np
import torch

from edgeprune import frontend, prune

from ..conftest import make_model


def test_sparsity_pattern_is_exactly_the_mask():
    model = prune.prune_model(make_model("lstm", (12,)), "random", 0.8, seed=0).model
    with torch.no_grad():  # a kept weight that happens to be zero must still be stored
        mask = model.masks()["layers.0.weight_ih"]
        r, c = map(int, mask.nonzero()[0])
        model.layers[0].weight_ih[r, c] = 0.0
    layer = frontend.lower(model).layers[0]
    fused_mask = torch.cat([model.masks()["layers.0.weight_ih"], model.masks()["layers.0.weight_hh"]], 1).numpy()
    np.testing.assert_array_equal(layer.weight.to_dense() != 0, fused_mask & (layer.weight.to_dense() != 0))
    assert layer.weight.nnz == int(fused_mask.sum())


def test_gru_blocks_are_split_for_the_candidate_gate():
    model = make_model("gru", (12, 9), True)
    layer = frontend.lower(model).layers[0]
    dense, H = layer.weight.to_dense(), 12
    w_ih, w_hh, w_fb = (getattr(model.layers[0], n).detach().numpy() for n in ("weight_ih", "weight_hh", "weight_fb"))
    cols = layer.column_slices()
    np.testing.assert_array_equal(dense[2 * H : 3 * H, cols["input"]], w_ih[2 * H :])
    np.testing.assert_array_equal(dense[2 * H : 3 * H, cols["feedback"]], w_fb[2 * H :])
    assert not dense[2 * H : 3 * H, cols["state"]].any()
    np.testing.assert_array_equal(dense[3 * H :, cols["state"]], w_hh[2 * H :])
    assert not dense[3 * H :, cols["input"]].any() and not dense[3 * H :, cols["feedback"]].any()
    b_ih, b_hh = model.layers[0].bias_ih.detach().numpy(), model.layers[0].bias_hh.detach().numpy()
    np.testing.assert_allclose(
        layer.bias, np.concatenate([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H :], b_hh[2 * H :]])
    )


def test_lstm_bias_is_folded():
    model = make_model("lstm", (12,))
    layer = frontend.lower(model).layers[0]
    np.testing.assert_allclose(layer.bias, (model.layers[0].bias_ih + model.layers[0].bias_hh).detach().numpy())

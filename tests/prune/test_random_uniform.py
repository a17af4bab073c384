import numpy as np

from edgeprune import prune

from ..conftest import make_model


def test_exact_count_and_seed_determinism():
    model = make_model("gru", (12,))
    a = prune.prune_model(model, "random", 0.75, seed=1).model.masks()
    b = prune.prune_model(model, "random", 0.75, seed=1).model.masks()
    c = prune.prune_model(model, "random", 0.75, seed=2).model.masks()
    for name, mask in a.items():
        assert int(mask.sum()) == round(0.25 * mask.numel())
        assert np.array_equal(mask, b[name])
    assert any(not np.array_equal(a[n], c[n]) for n in a)


def test_ignores_magnitudes():
    model = make_model("rnn", (12,))
    masks = prune.prune_model(model, "random", 0.5, seed=0).model.masks()
    w = np.abs(model.layers[0].weight_hh.detach().numpy())
    m = masks["layers.0.weight_hh"].numpy()
    # not magnitude: some dropped weight is larger than some kept one
    assert w[~m].max() > w[m].min()

import numpy as np
import pytest
import torch

from edgeprune import prune
from edgeprune.errors import PruneError

from ..conftest import make_model


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 0.97])
def test_layerwise_hits_the_sparsity_per_matrix_and_keeps_the_largest(sparsity):
    model = make_model("lstm", (12, 9), True)
    pruned = prune.prune_model(model, "magnitude", sparsity).model
    for name, w in model.prunable(include_head=False).items():
        mask = pruned.masks()[name].numpy()
        assert mask.sum() == round((1 - sparsity) * w.numel())
        kept, dropped = np.abs(w.detach().numpy())[mask], np.abs(w.detach().numpy())[~mask]
        if kept.size and dropped.size:
            assert kept.min() >= dropped.max()
    assert "head.weight" not in pruned.masks()


def test_global_ranks_across_matrices():
    model = make_model("rnn", (12, 9))
    with torch.no_grad():
        model.layers[1].weight_hh.mul_(100)  # this matrix dominates globally
    pruned = prune.prune_model(model, "magnitude", 0.7, options={"scope": "global"}).model
    masks = pruned.masks()
    total = sum(m.numel() for m in masks.values())
    assert sum(int(m.sum()) for m in masks.values()) == round(0.3 * total)
    assert masks["layers.1.weight_hh"].float().mean() > 0.9
    # at 0.8 the dominating matrix takes all 79 kept entries but 2: the others would be empty
    with pytest.raises(PruneError, match="magnitude at sparsity 0.8 leaves no weight in layers.0.weight_ih"):
        prune.prune_model(model, "magnitude", 0.8, options={"scope": "global"})


def test_head_is_pruned_only_when_asked():
    pruned = prune.prune_model(make_model(), "magnitude", 0.5, include_head=True).model
    assert pruned.masks()["head.weight"].float().mean() == pytest.approx(0.5, abs=0.05)


def test_pruning_does_not_touch_the_original():
    model = make_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prune.prune_model(model, "magnitude", 0.9)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.masks() == {}

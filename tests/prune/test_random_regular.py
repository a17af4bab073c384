import pytest

from edgeprune import prune

from ..conftest import make_model


@pytest.mark.parametrize("sparsity", [0.5, 0.9])
def test_every_row_has_the_same_count(sparsity):
    model = make_model("lstm", (12, 9), True)
    out = prune.prune_model(model, "random-regular", sparsity, seed=0)
    for name, mask in out.model.masks().items():
        rows = mask.sum(dim=1)
        expected = round((1 - sparsity) * mask.shape[1])
        assert rows.min() == rows.max() == expected, name
        assert out.report["method_report"]["row_degree"][name] == expected

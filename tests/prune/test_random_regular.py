import pytest

from edgeprune import prune
from edgeprune.errors import PruneError

from ..conftest import make_model


@pytest.mark.parametrize("sparsity", [0.5, 0.9])
def test_every_row_has_the_same_count(sparsity):
    model = make_model("lstm", (12, 9), True)
    out = prune.prune_model(
        model, "random-regular", sparsity, seed=0, options={"row_degrees": "equal", "accept_reached": True}
    )
    for name, mask in out.model.masks().items():
        rows = mask.sum(dim=1)
        # at least one per row: round(0.1 * 5) = 0 would empty weight_ih (refused, see below)
        expected = max(1, round((1 - sparsity) * mask.shape[1]))
        assert rows.min() == rows.max() == expected, name
        assert out.report["method_report"]["row_degree"][name] == [expected, expected]


@pytest.mark.parametrize("sparsity", [0.5, 0.75, 0.9])
def test_balanced_rows_keep_the_exact_count_within_one_per_row(sparsity):
    model = make_model("lstm", (12, 9), True)
    out = prune.prune_model(model, "random-regular", sparsity, seed=0)
    for name, mask in out.model.masks().items():
        rows = mask.sum(dim=1)
        assert int(mask.sum()) == round((1 - sparsity) * mask.numel()), name
        assert rows.max() - rows.min() <= 1, name


def test_equal_rows_that_miss_the_request_are_refused_in_one_line():
    with pytest.raises(
        PruneError,
        match=r"random-regular cannot reach sparsity 0.75 on layers.0.weight_ih: it "
        r"reaches 0.8000 .*1 of 5 in every row.*--accept-reached",
    ) as e:
        prune.prune_model(make_model("lstm", (12,)), "random-regular", 0.75, options={"row_degrees": "equal"})
    assert "\n" not in str(e.value)

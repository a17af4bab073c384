import numpy as np
import pytest

from edgeprune import prune
from edgeprune.errors import EdgepruneError, PruneError

from ..conftest import make_model


def test_builtin_methods_are_registered_with_one_signature():
    import inspect

    found = prune.methods()
    assert {"magnitude", "random", "random-regular"} <= set(found)
    for m in found.values():
        params = list(inspect.signature(m.fn).parameters)
        assert params == ["ctx", "sparsity"], m.name


@pytest.mark.parametrize("bad", [1.0, 1.5, -0.1, float("nan"), "x"])
def test_sparsity_outside_unit_interval_is_refused(bad):
    with pytest.raises(PruneError, match=r"sparsity must be"):
        prune.prune_model(make_model(), "magnitude", bad)


def test_unknown_method_lists_the_choices():
    with pytest.raises(PruneError, match="random-regular"):
        prune.get_method("bogus")


def test_option_of_another_method_is_refused():
    with pytest.raises(EdgepruneError, match="--scope does not apply to method 'random'"):
        prune.prune_model(make_model(), "random", 0.5, options={"scope": "global"})


def test_top_k_ties_are_deterministic():
    scores = np.array([[1.0, 1.0], [1.0, 0.5]])
    np.testing.assert_array_equal(prune.top_k_mask(scores, 2), [[True, True], [False, False]])


def test_describe_weights_names_sources_and_destinations():
    described = prune.describe_weights(make_model("gru", (12, 9), True))
    w = described["layers.0.weight_fb"]
    assert (w.kind, w.src, w.dst, w.gates, w.units) == ("feedback", "h1@t-1", "h0@t", 3, 12)
    assert described["layers.1.weight_ih"].src == "h0@t"
    assert described["head.weight"].dst == "y"

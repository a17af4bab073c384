import numpy as np
import pytest
import torch

from edgeprune import data, prune
from edgeprune.errors import PruneError
from edgeprune.prune.registry import _REGISTRY, MaskResult, register

from ..conftest import make_model


def test_finetune_keeps_pruned_weights_zero_and_reports_accuracy():
    ds = data.load("digits")
    model = make_model("lstm", (16,), input_size=8, classes=10)
    out = prune.prune_model(model, "magnitude", 0.8, dataset=ds, finetune_epochs=2, finetune_lr=1e-2)
    for name, mask in out.model.masks().items():
        w = out.model.prunable()[name]
        assert torch.all(w[~mask] == 0)
    r = out.report
    assert r["sparsity"] == pytest.approx(0.8, abs=1e-3)
    assert 0 <= r["accuracy_pruned"] <= 1 and r["accuracy_finetuned"] > r["accuracy_pruned"]


def test_finetune_without_data_is_refused():
    with pytest.raises(PruneError, match="needs a dataset"):
        prune.prune_model(make_model(), "magnitude", 0.5, finetune_epochs=1)


def test_a_method_returning_bad_masks_is_caught():
    @register("test-broken", help="returns nothing")
    def broken(ctx, sparsity):
        return MaskResult({})

    try:
        with pytest.raises(RuntimeError, match="returned masks"):
            prune.prune_model(make_model(), "test-broken", 0.5)
    finally:
        del _REGISTRY["test-broken"]


def test_iterative_methods_get_a_finetune_hook_that_applies_masks():
    seen = {}

    @register("test-iterative", help="calls the hook")
    def iterative(ctx, sparsity):
        masks = {n: np.abs(w.values) > np.median(np.abs(w.values)) for n, w in ctx.weights.items()}
        new = ctx.finetune(masks, 1)
        seen["zeros_ok"] = all(np.all(new[n][~masks[n]] == 0) for n in masks)
        return MaskResult(masks, finetuned_epochs=1)

    try:
        ds = data.load("digits")
        out = prune.prune_model(make_model(input_size=8, classes=10), "test-iterative", 0.5, dataset=ds)
        assert seen["zeros_ok"] and out.report["finetune_epochs"] == 1
    finally:
        del _REGISTRY["test-iterative"]

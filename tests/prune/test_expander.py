import numpy as np
import pytest
import torch

from edgeprune import checkpoint, prune
from edgeprune.errors import PruneError
from edgeprune.graphs.bipartite import gate_slices
from edgeprune.models import CELL_GATES

from ..conftest import CONFIG_CASES, make_model
from ..graphs.test_spectral import adjacency_spectrum


def numpy_gap(mask: np.ndarray) -> float:
    """Δr from a dense eigen-decomposition of the bipartite adjacency (independent of graphs.spectral)."""
    lam = adjacency_spectrum(mask.astype(float))
    cols, rows = mask.sum(0), mask.sum(1)  # average degrees over non-isolated nodes
    return np.sqrt(cols[cols > 0].mean() - 1) + np.sqrt(rows[rows > 0].mean() - 1) - lam[1]


@pytest.mark.parametrize("cell,hidden,feedback", CONFIG_CASES)
@pytest.mark.parametrize("sparsity", [0.5, 0.8, 0.9])
def test_masks_are_exactly_biregular_per_gate_and_whole(cell, hidden, feedback, sparsity):
    model = make_model(cell, hidden, feedback, seed=2)
    out = prune.prune_model(
        model, "expander", sparsity, seed=0, options={"row_degrees": "equal", "accept_reached": True}
    )
    gates = CELL_GATES[cell]
    for name, mask in out.model.masks().items():
        mask = mask.numpy()
        rows, cols = mask.shape
        degree = max(1, round((1 - sparsity) * cols))
        assert np.all(mask.sum(1) == degree), name  # every row: the same degree
        col = mask.sum(0)
        assert col.max() - col.min() <= 1, name  # columns as equal as possible, whole matrix ...
        for rs in gate_slices(rows, gates):  # ... and per gate block
            c = mask[rs].sum(0)
            assert c.max() - c.min() <= 1, name
        # the target sparsity, up to the per-row rounding
        assert abs((1 - mask.mean()) - sparsity) <= 0.5 / cols + 1e-12, name
        assert out.report["method_report"]["weights"][name]["row_degree"] == [degree, degree]


@pytest.mark.parametrize("cell,hidden,feedback", CONFIG_CASES)
@pytest.mark.parametrize("sparsity", [0.5, 0.8, 0.9])
def test_balanced_masks_keep_the_exact_count_and_are_biregular_within_one(cell, hidden, feedback, sparsity):
    model = make_model(cell, hidden, feedback, seed=2)
    out = prune.prune_model(model, "expander", sparsity, seed=0)
    gates = CELL_GATES[cell]
    for name, mask in out.model.masks().items():
        mask = mask.numpy()
        assert int(mask.sum()) == round((1 - sparsity) * mask.size), name
        for degrees in (mask.sum(1), mask.sum(0)):
            assert degrees.max() - degrees.min() <= 1, name
        for rs in gate_slices(mask.shape[0], gates):
            for degrees in (mask[rs].sum(1), mask[rs].sum(0)):
                assert degrees.max() - degrees.min() <= 1, name
        assert out.report["sparsity_per_matrix"][name] == pytest.approx(1 - mask.mean())


def test_reported_gaps_match_a_numpy_eigendecomposition():
    model = make_model("lstm", (24,), input_size=20, seed=1)
    out = prune.prune_model(model, "expander", 0.7, seed=0)
    for name, mask in out.model.masks().items():
        rep = out.report["method_report"]["weights"][name]
        gaps = [numpy_gap(mask.numpy()[rs]) for rs in gate_slices(mask.shape[0], 4)]
        for g, gap in zip(rep["gates"], gaps):
            assert g["ramanujan_gap"] == pytest.approx(gap, abs=1e-8)
            assert g["ramanujan"] == (gap >= -1e-9)
        assert rep["ramanujan_gap"] == pytest.approx(min(gaps), abs=1e-8)
        assert rep["ramanujan"] is True  # the repair found a passing graph at this size


def test_expander_is_magnitude_aware():
    # It keeps far more of the |w| mass than a random biregular mask of the same degrees.
    model = make_model("lstm", (32,), input_size=28, seed=3)
    w = {n: p.detach().abs().numpy() for n, p in model.prunable(include_head=False).items()}
    mass = {}
    for method, opts in (("expander", {}), ("expander", {"init": True}), ("magnitude", {})):
        masks = prune.prune_model(model, method, 0.8, seed=0, options=opts).model.masks()
        mass[(method, bool(opts))] = sum(float((w[n] * masks[n].numpy()).sum()) for n in w)
    assert mass[("expander", False)] > 1.2 * mass[("expander", True)]
    assert mass[("expander", False)] <= mass[("magnitude", False)]


def test_same_seed_same_masks():
    model = make_model("gru", (12, 9), True)
    a = prune.prune_model(model, "expander", 0.75, seed=4).model.masks()
    b = prune.prune_model(model, "expander", 0.75, seed=4).model.masks()
    assert all(torch.equal(a[n], b[n]) for n in a)


def test_failed_checks_are_reported_when_repair_is_off():
    # Weights concentrated on two diagonal blocks: the pure magnitude-greedy graph falls apart in
    # two communities and fails the bound; with repairs off the report must say so.
    model = make_model("rnn", (32,), input_size=32, seed=0)
    with torch.no_grad():
        hh = model.layers[0].weight_hh
        hh.mul_(0.01)
        hh[:16, :16] += 1.0
        hh[16:, 16:] += 1.0
    out = prune.prune_model(model, "expander", 0.75, seed=0, options={"max_repairs": 0})
    rep = out.report["method_report"]
    assert "layers.0.weight_hh" in rep["not_ramanujan"]
    assert rep["weights"]["layers.0.weight_hh"]["ramanujan_gap"] < 0
    repaired = prune.prune_model(model, "expander", 0.75, seed=0).report["method_report"]
    assert repaired["weights"]["layers.0.weight_hh"]["ramanujan"] is True
    assert repaired["weights"]["layers.0.weight_hh"]["gates"][0]["attempts"] > 1


@pytest.mark.parametrize("opts,match", [({"greedy_share": 1.5}, "greedy-share"), ({"max_repairs": -1}, "max-repairs")])
def test_bad_options_are_user_errors(opts, match):
    with pytest.raises(PruneError, match=match):
        prune.prune_model(make_model(), "expander", 0.5, options=opts)


def test_init_draws_a_random_biregular_mask_and_fresh_weights():
    model = make_model("lstm", (16,), input_size=8)
    out = prune.prune_model(model, "expander", 0.75, seed=5, options={"init": True})
    assert out.report["reinitialized"] is True
    for name, p in out.model.prunable(include_head=True).items():
        assert not torch.allclose(p, model.prunable(include_head=True)[name] * (p != 0)), name
    rep = out.report["method_report"]["weights"]
    assert all(g["greedy_edges"] == 0 for r in rep.values() for g in r["gates"])
    for mask in out.model.masks().values():
        assert mask.sum(1).min() == mask.sum(1).max()
    # same seed: same fresh weights and masks
    again = prune.prune_model(model, "expander", 0.75, seed=5, options={"init": True})
    assert all(torch.equal(a, b) for a, b in zip(out.model.state_dict().values(), again.model.state_dict().values()))


def test_init_end_to_end_through_the_cli_trains_a_sparse_model_from_scratch(run_cli, digits_checkpoint, tmp_path):
    out = tmp_path / "sparse.pt"
    r = run_cli(
        "prune",
        digits_checkpoint,
        "--method",
        "expander",
        "--init",
        "--sparsity",
        "0.7",
        "--row-degrees",
        "equal",
        "--accept-reached",
        "--finetune-epochs",
        "3",
        "-o",
        out,
    )
    assert r.code == 0, r.err
    model, meta = checkpoint.load_with_meta(out)
    rep = meta["pruning"]
    assert rep["reinitialized"] and rep["method_report"]["init"]
    # trained from fresh weights: the sparse model learns (digits: chance is 10%)
    assert rep["accuracy_pruned"] < 0.3 and rep["accuracy_finetuned"] > 0.5
    for name, mask in model.masks().items():
        assert mask.sum(1).min() == mask.sum(1).max(), name
        assert torch.all(model.prunable()[name][~mask] == 0)


def test_cli_declares_the_options(run_cli):
    r = run_cli("prune", "--help")
    for flag in ("--init", "--greedy-share", "--max-repairs", "--block", "--rate", "--round-epochs", "--reach-target"):
        assert flag in r.out, flag


def test_help_says_expander_is_edgeprunes_own_and_imp_the_papers_kind(run_cli):
    r = run_cli("prune", "--help")
    text = " ".join(r.out.split())
    assert r.code == 0
    assert "expander = edgeprune's own one-shot construction (not the paper's method, which is ramanujan-imp)" in text
    assert "ramanujan-imp = the paper's kind of method" in text

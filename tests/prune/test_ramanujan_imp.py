import dataclasses

import numpy as np
import pytest
import torch

from edgeprune import data, prune
from edgeprune.errors import PruneError
from edgeprune.graphs.bipartite import gate_slices
from edgeprune.models import CELL_GATES

from ..conftest import make_model
from .test_expander import numpy_gap


def gate_gaps(mask: np.ndarray, gates: int) -> list[float | None]:
    """Δr of each gate block from numpy's eigen-decomposition; None when an average degree < 3."""
    out = []
    for rs in gate_slices(mask.shape[0], gates):
        m = mask[rs]
        r, c = m.sum(1), m.sum(0)
        if min(r[r > 0].mean(), c[c > 0].mean()) < 3:
            out.append(None)
        else:
            out.append(numpy_gap(m))
    return out


@pytest.mark.parametrize(
    "cell,hidden,feedback", [("lstm", (16,), False), ("gru", (12, 9), True), ("rnn", (24,), False)]
)
@pytest.mark.parametrize("sparsity", [0.8, 0.95])
def test_never_leaves_a_matrix_below_the_bound(cell, hidden, feedback, sparsity):
    model = make_model(cell, hidden, feedback, input_size=10, seed=3)
    out = prune.prune_model(
        model, "ramanujan-imp", sparsity, seed=0, options={"round_epochs": 0, "accept_reached": True}
    )
    rep = out.report["method_report"]
    assert rep["violations"] == []
    for name, mask in out.model.masks().items():
        gaps = gate_gaps(mask.numpy(), CELL_GATES[cell])
        assert all(g is not None and g >= -1e-9 for g in gaps), (name, gaps)
        w = rep["weights"][name]
        assert w["sparsity"] == pytest.approx(1 - mask.numpy().mean())
        if w["stopped"] == "target":
            assert w["sparsity"] == pytest.approx(sparsity, abs=1.0 / mask.numel())
        else:
            assert w["sparsity"] < sparsity and w["stopped"] in ("ramanujan", "undefined")


def test_a_stopped_matrix_really_had_a_failing_next_round():
    # With no fine-tuning the values never change, so the rejected round can be recomputed.
    model = make_model("rnn", (32,), input_size=12, seed=1)
    values = {n: p.detach().numpy().copy() for n, p in model.prunable(include_head=False).items()}
    out = prune.prune_model(model, "ramanujan-imp", 0.97, seed=0, options={"round_epochs": 0, "accept_reached": True})
    rep = out.report["method_report"]
    assert rep["stopped_early"], "the 0.97 target should trip the rule on a 32-unit RNN"
    for name in rep["stopped_early"]:
        mask = out.model.masks()[name].numpy()
        kept = int(mask.sum())
        nxt = min(kept - 1, int(round(0.8 * kept)))
        scores = np.where(mask, np.abs(values[name]), -1.0).ravel()
        candidate = np.zeros(mask.size, dtype=bool)
        candidate[np.argsort(-scores, kind="stable")[:nxt]] = True
        gaps = gate_gaps(candidate.reshape(mask.shape), 1)
        reason = rep["weights"][name]["stopped"]
        if reason == "ramanujan":
            assert gaps[0] is not None and gaps[0] < 0
        else:
            assert reason == "undefined" and gaps[0] is None


def test_reach_target_reports_the_matrices_it_had_to_leave_non_ramanujan():
    model = make_model("rnn", (32,), input_size=12, seed=1)
    out = prune.prune_model(model, "ramanujan-imp", 0.97, seed=0, options={"round_epochs": 0, "reach_target": True})
    rep = out.report["method_report"]
    assert rep["violations"]
    for name, mask in out.model.masks().items():
        assert 1 - mask.numpy().mean() == pytest.approx(0.97, abs=1.0 / mask.numel())
        gaps = gate_gaps(mask.numpy(), 1)
        bad = any(g is None or g < 0 for g in gaps)
        assert (name in rep["violations"]) == bad, (name, gaps)


def test_fine_tunes_every_round_and_keeps_pruned_weights_zero():
    full = data.load("digits")
    ds = dataclasses.replace(full, X_train=full.X_train[:400], y_train=full.y_train[:400])  # keep it quick
    model = make_model("lstm", (16,), input_size=8, classes=10)
    out = prune.prune_model(
        model, "ramanujan-imp", 0.5, seed=0, dataset=ds, finetune_lr=2e-2, options={"round_epochs": 1}
    )
    rep = out.report["method_report"]
    assert rep["rounds"] >= 4  # 0.8^4 ≈ 0.41 kept
    assert out.report["finetune_epochs"] == rep["rounds"]
    assert [h["round"] for h in rep["history"]] == list(range(1, rep["rounds"] + 1))
    assert all(a["sparsity"] < b["sparsity"] for a, b in zip(rep["history"], rep["history"][1:]))
    for name, mask in out.model.masks().items():
        assert torch.all(out.model.prunable()[name][~mask] == 0)
    assert out.report["accuracy_pruned"] > 0.3  # an untrained model fine-tuned while pruning: above chance (0.1)


def test_needs_a_dataset_to_fine_tune():
    with pytest.raises(PruneError, match="needs a dataset"):
        prune.prune_model(make_model(), "ramanujan-imp", 0.5, options={"round_epochs": 1})


@pytest.mark.parametrize(
    "opts,match", [({"rate": 0.0}, "--rate"), ({"rate": 1.0}, "--rate"), ({"round_epochs": -1}, "--round-epochs")]
)
def test_bad_options(opts, match):
    with pytest.raises(PruneError, match=match):
        prune.prune_model(make_model(), "ramanujan-imp", 0.5, options=opts)


def test_cli_error_is_one_line(run_cli, digits_checkpoint, tmp_path):
    r = run_cli(
        "prune",
        digits_checkpoint,
        "--method",
        "ramanujan-imp",
        "--sparsity",
        "0.5",
        "--rate",
        "2",
        "-o",
        tmp_path / "x.pt",
    )
    assert r.code != 0 and len(r.err_lines) == 1 and "--rate" in r.err
    assert not (tmp_path / "x.pt").exists()


def test_stopping_short_is_refused_in_one_line_unless_accepted():
    model = make_model("rnn", (32,), input_size=12, seed=1)
    with pytest.raises(
        PruneError,
        match=r"ramanujan-imp cannot reach sparsity 0.97 on layers.0.weight_\w+: it "
        r"reaches 0\.\d+ .*Ramanujan rule stopped it.*--accept-reached",
    ) as e:
        prune.prune_model(model, "ramanujan-imp", 0.97, seed=0, options={"round_epochs": 0})
    assert "\n" not in str(e.value)
    out = prune.prune_model(model, "ramanujan-imp", 0.97, seed=0, options={"round_epochs": 0, "accept_reached": True})
    for name in out.report["method_report"]["stopped_early"]:
        assert out.report["sparsity_per_matrix"][name] < 0.97
        assert "Ramanujan rule" in out.report["sparsity_limits"][name]


def test_testing_the_current_mask_takes_one_round_more_than_testing_the_next():
    model = make_model("rnn", (32,), input_size=12, seed=1)
    runs = {
        t: prune.prune_model(
            model, "ramanujan-imp", 0.97, seed=0, options={"round_epochs": 0, "accept_reached": True, "test": t}
        )
        for t in ("next", "current")
    }
    nxt, cur = (runs[t].report["method_report"]["weights"] for t in ("next", "current"))
    stopped = [n for n in nxt if nxt[n]["stopped"] == "ramanujan"]
    assert stopped
    for name in stopped:  # the current mask still passed, so the authors' rule takes the failing round
        assert cur[name]["rounds"] == nxt[name]["rounds"] + 1
        assert cur[name]["ramanujan"] is False and name in runs["current"].report["method_report"]["violations"]
    masks = {t: r.model.masks() for t, r in runs.items()}
    assert any(not torch.equal(masks["next"][n], masks["current"][n]) for n in stopped)


def test_whole_matrix_test_stops_earlier_than_per_gate_test():
    # The 4 gate blocks of an LSTM matrix pick correlated inputs: as one graph it fails sooner.
    model = make_model("lstm", (32,), input_size=24, seed=1)
    runs = {
        g: prune.prune_model(
            model, "ramanujan-imp", 0.9, seed=0, options={"round_epochs": 0, "accept_reached": True, "test_graph": g}
        )
        for g in ("gate", "matrix")
    }
    gate, whole = (runs[g].report["method_report"]["weights"] for g in ("gate", "matrix"))
    assert any(whole[n]["rounds"] != gate[n]["rounds"] for n in gate)
    a, b = runs["gate"].model.masks(), runs["matrix"].model.masks()
    assert any(not torch.equal(a[n], b[n]) for n in a)
    for name, mask in b.items():  # the whole-matrix verdict is the eigen-decomposition's
        if whole[name]["ramanujan"] is not None:
            assert whole[name]["ramanujan_gap"] == pytest.approx(numpy_gap(mask.numpy()), abs=1e-8)


def test_both_spectral_gap_definitions_are_reported():
    model = make_model("rnn", (24,), input_size=12, seed=1)
    out = prune.prune_model(model, "ramanujan-imp", 0.5, seed=0, options={"round_epochs": 0})
    for name, mask in out.model.masks().items():
        m = mask.numpy().astype(float)
        s = np.linalg.svd(m, compute_uv=False)
        gaps = out.report["method_report"]["weights"][name]["spectral_gap"]["matrix"]
        assert gaps["mu0_minus_mu_hat"] == pytest.approx(s[0] - s[1], abs=1e-9)
        assert gaps["code_2sqrt_mu0_minus_1_minus_mu_hat"] == pytest.approx(2 * np.sqrt(s[0] - 1) - s[1], abs=1e-9)


def test_rewind_to_init_resets_to_the_models_own_initial_weights_and_changes_the_masks():
    full = data.load("digits")
    ds = dataclasses.replace(full, X_train=full.X_train[:300], y_train=full.y_train[:300])
    init = make_model("lstm", (16,), input_size=8, classes=10, seed=5)  # torch.manual_seed(5), then the constructor
    trained = prune.prune_model(init, "magnitude", 0.0, dataset=ds, finetune_epochs=2, finetune_lr=2e-2, seed=5).model
    seen = {}

    @prune.register("test-rewind", help="rewinds once")
    def rewinding(ctx, sparsity):
        masks = {n: np.ones(w.shape, dtype=bool) for n, w in ctx.weights.items()}
        seen.update(ctx.finetune(masks, 0, rewind=0))
        return prune.MaskResult(masks)

    from edgeprune.prune.registry import _REGISTRY

    try:
        prune.prune_model(trained, "test-rewind", 0.0, dataset=ds, seed=5)
    finally:
        del _REGISTRY["test-rewind"]
    own = {n: p.detach().numpy() for n, p in init.prunable(include_head=False).items()}
    assert all(np.array_equal(seen[n], own[n]) for n in own)
    assert not all(np.array_equal(seen[n], trained.prunable()[n].detach().numpy()) for n in own)

    runs = {
        r: prune.prune_model(
            trained,
            "ramanujan-imp",
            0.6,
            seed=5,
            dataset=ds,
            finetune_lr=2e-2,
            options={"round_epochs": 1, "rewind": r, "rewind_epochs": 1, "accept_reached": True},
        )
        for r in ("none", "init", "early")
    }
    masks = {r: o.model.masks() for r, o in runs.items()}
    for a, b in (("none", "init"), ("init", "early"), ("none", "early")):
        assert any(not torch.equal(masks[a][n], masks[b][n]) for n in masks[a]), (a, b)
    assert runs["init"].report["method_report"]["rewind"] == "init"


def test_rewind_needs_training_rounds():
    with pytest.raises(PruneError, match="--rewind init retrains"):
        prune.prune_model(make_model(), "ramanujan-imp", 0.5, options={"round_epochs": 0, "rewind": "init"})

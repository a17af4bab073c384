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


@pytest.mark.parametrize("cell,hidden,feedback", [("lstm", (16,), False), ("gru", (12, 9), True), ("rnn", (24,), False)])
@pytest.mark.parametrize("sparsity", [0.8, 0.95])
def test_never_leaves_a_matrix_below_the_bound(cell, hidden, feedback, sparsity):
    model = make_model(cell, hidden, feedback, input_size=10, seed=3)
    out = prune.prune_model(model, "ramanujan-imp", sparsity, seed=0, options={"round_epochs": 0})
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
    out = prune.prune_model(model, "ramanujan-imp", 0.97, seed=0, options={"round_epochs": 0})
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
    out = prune.prune_model(model, "ramanujan-imp", 0.5, seed=0, dataset=ds, finetune_lr=2e-2,
                            options={"round_epochs": 1})
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


@pytest.mark.parametrize("opts,match", [({"rate": 0.0}, "--rate"), ({"rate": 1.0}, "--rate"),
                                        ({"round_epochs": -1}, "--round-epochs")])
def test_bad_options(opts, match):
    with pytest.raises(PruneError, match=match):
        prune.prune_model(make_model(), "ramanujan-imp", 0.5, options=opts)


def test_cli_error_is_one_line(run_cli, digits_checkpoint, tmp_path):
    r = run_cli("prune", digits_checkpoint, "--method", "ramanujan-imp", "--sparsity", "0.5", "--rate", "2",
                "-o", tmp_path / "x.pt")
    assert r.code != 0 and len(r.err_lines) == 1 and "--rate" in r.err
    assert not (tmp_path / "x.pt").exists()

"""The lattice pruning method: modes, sparsity, determinism, fine-tuning, CLI, inspect, torch API."""

import json

import numpy as np
import pytest
import torch
import torch.nn.utils.prune
from torch import nn

from edgeprune import checkpoint, data, prune
from edgeprune.errors import PruneError
from edgeprune.inspection import inspect_model
from edgeprune.prune.lattice import lattice_analysis, lattice_masks

from ..conftest import CONFIG_CASES, make_model


@pytest.mark.parametrize("cell,hidden,feedback", CONFIG_CASES)
@pytest.mark.parametrize("adjacency", ["binary", "continuous"])
def test_target_mode_hits_the_sparsity_exactly_per_matrix(cell, hidden, feedback, adjacency):
    model = make_model(cell, hidden, feedback)
    for s in (0.5, 0.9, 0.97):
        out = prune.prune_model(model, "lattice", s, options={"adjacency": adjacency})
        for name, mask in out.model.masks().items():
            assert int(mask.sum()) == round((1 - s) * mask.numel()), name
        assert out.report["sparsity_requested"] == s
        assert out.report["method_report"]["mode"] == "target"


def test_global_scope_hits_the_total_exactly():
    model = make_model("gru", (12, 9), True)
    masks = prune.prune_model(model, "lattice", 0.8, options={"scope": "global"}).model.masks()
    total = sum(m.numel() for m in masks.values())
    assert sum(int(m.sum()) for m in masks.values()) == round(0.2 * total)


def test_without_structure_terms_it_is_magnitude_pruning():
    model = make_model("lstm", (12, 9), True)
    lattice = prune.prune_model(model, "lattice", 0.8, options={"beta": 0.0, "gamma": 0.0}).model.masks()
    magnitude = prune.prune_model(model, "magnitude", 0.8).model.masks()
    assert all(torch.equal(lattice[n], magnitude[n]) for n in magnitude)
    # ... and with them it is not (the score reorders some connections).
    scored = prune.prune_model(model, "lattice", 0.8, options={"gamma": 5.0}).model.masks()
    assert any(not torch.equal(scored[n], magnitude[n]) for n in magnitude)


def test_natural_mode_reports_the_outcome_and_is_deterministic(tmp_path):
    model = make_model("lstm", (12, 9), True)
    runs = [
        prune.prune_model(
            model, "lattice", None, seed=3, options={"centrality": "betweenness", "betweenness_samples": 8}
        )
        for _ in range(2)
    ]
    a, b = (r.model.masks() for r in runs)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert runs[0].report == runs[1].report
    paths = [tmp_path / f"{i}.pt" for i in range(2)]
    for run, path in zip(runs, paths):
        checkpoint.save(run.model, path, {"pruning": run.report})
    assert paths[0].read_bytes() == paths[1].read_bytes()
    r = runs[0].report
    assert r["sparsity_requested"] is None and r["method_report"]["mode"] == "natural"
    kept = sum(int(m.sum()) for m in a.values())
    assert r["sparsity"] == pytest.approx(1 - kept / sum(m.numel() for m in a.values()))
    assert r["sparsity"] == pytest.approx(r["method_report"]["outcome_sparsity"])


def test_binary_and_continuous_natural_modes_differ_as_documented():
    # On a dense network the continuous adjacency is complete between consecutive node groups:
    # its poset is an ordinal sum of antichains, every unit is meet-irreducible and the natural
    # mode keeps every connection. The binary adjacency keeps at most 1 - quantile of each matrix.
    model = make_model("lstm", (12, 9), True)
    cont = prune.prune_model(model, "lattice", None, options={"adjacency": "continuous", "theta": 0.0}).report
    assert cont["sparsity"] == 0.0
    groups = cont["method_report"]["groups"]
    assert all(g["meet_irreducible"] == g["units"] for g in groups.values())
    for q in (0.5, 0.8):
        binary = prune.prune_model(model, "lattice", None, options={"quantile": q}).report
        assert binary["sparsity"] >= q - 0.02
        assert any(g["meet_irreducible"] < g["units"] for g in binary["method_report"]["groups"].values())
    # A cut on the normalised strength makes the continuous reading sparse.
    cuts = [
        prune.prune_model(model, "lattice", None, options={"adjacency": "continuous", "theta": m}).report["sparsity"]
        for m in (0.3, 0.7)
    ]
    assert 0 < cuts[0] < cuts[1]


def test_mode_and_sparsity_must_agree():
    model = make_model()
    with pytest.raises(PruneError, match="--mode target needs --sparsity"):
        prune.prune_model(model, "lattice", None, options={"mode": "target"})
    with pytest.raises(PruneError, match="--sparsity does not apply to lattice --mode natural"):
        prune.prune_model(model, "lattice", 0.5, options={"mode": "natural"})
    with pytest.raises(PruneError, match="--quantile must be in"):
        prune.prune_model(model, "lattice", 0.5, options={"quantile": 1.5})


@pytest.mark.parametrize("sparsity,options", [(0.8, {"adjacency": "continuous"}), (None, {"quantile": 0.7})])
def test_pruned_weights_stay_zero_through_finetuning(sparsity, options):
    full = data.load("digits")
    ds = data.Dataset("digits-small", full.X_train[:256], full.y_train[:256], full.X_test[:64], full.y_test[:64], 10)
    model = make_model("lstm", (10, 6), True, input_size=8, classes=10)
    out = prune.prune_model(
        model, "lattice", sparsity, options=options, dataset=ds, finetune_epochs=2, finetune_lr=1e-2
    )
    before = prune.prune_model(model, "lattice", sparsity, options=options).model.prunable(include_head=False)
    weights = out.model.prunable(include_head=False)
    for name, mask in out.model.masks().items():
        assert (~mask).any() and torch.all(weights[name][~mask] == 0), name
        assert not torch.equal(weights[name][mask], before[name][mask]), f"{name} was not trained"


def test_cli_prune_modes_and_inspect(run_cli, tmp_path, digits_checkpoint):
    target = tmp_path / "t.pt"
    r = run_cli(
        "prune",
        digits_checkpoint,
        "--method",
        "lattice",
        "--adjacency",
        "continuous",
        "--sparsity",
        "0.8",
        "--centrality",
        "pagerank",
        "-o",
        target,
    )
    assert r.code == 0, r.err
    assert "lattice: sparsity 80.0" in r.out
    natural = tmp_path / "n.pt"
    r = run_cli("prune", digits_checkpoint, "--method", "lattice", "--quantile", "0.6", "-o", natural)
    assert r.code == 0, r.err
    meta = checkpoint.load_with_meta(natural)[1]
    assert meta["pruning"]["method_report"]["mode"] == "natural" and meta["pruning"]["sparsity"] >= 0.58
    j = run_cli("inspect", target, "--json")
    assert j.code == 0, j.err
    doc = json.loads(j.out)
    layer = doc["layers"][0]["lattice"]
    assert layer["units"] == 16 and set(layer["meet_irreducible"]) == {"binary", "continuous"}
    assert 0 <= layer["meet_irreducible"]["binary"]["t"] <= 16 and layer["centrality"]["max"] <= 1.0
    assert doc["lattice"]["adjacency"]["continuous"]["elements"] == 8 + 16 + 16 + 10
    assert run_cli("inspect", target, "--json").out == j.out  # stable
    assert "Lattice: dependency poset" in run_cli("inspect", target).out


def test_cli_errors_are_one_line(run_cli, tmp_path, digits_checkpoint):
    out = tmp_path / "x.pt"
    r = run_cli("prune", digits_checkpoint, "--method", "lattice", "--mode", "target", "-o", out)
    assert r.code != 0 and len(r.err_lines) == 1 and "needs --sparsity" in r.err
    r = run_cli(
        "prune", digits_checkpoint, "--method", "lattice", "--sparsity", "0.5", "--central-fraction", "2", "-o", out
    )
    assert r.code != 0 and len(r.err_lines) == 1 and "--central-fraction must be in [0, 1]" in r.err
    assert not out.exists()


def test_inspect_counts_match_the_analysis():
    model = prune.prune_model(make_model("rnn", (12, 9), True), "lattice", 0.9).model
    doc, sections = inspect_model(model)
    fig = doc["lattice"]["adjacency"]["binary"]
    assert fig["elements"] == 5 + 12 + 9 + 12 + 9 + 4
    per_layer = sum(
        l["lattice"]["meet_irreducible"]["binary"]["t"] + l["lattice"]["meet_irreducible"]["binary"]["t-1"]
        for l in doc["layers"]
    )
    assert per_layer <= fig["meet_irreducible"]
    assert len([s for s in sections if s.title.startswith("Lattice")]) == 2


@pytest.mark.parametrize("kind", [nn.LSTM, nn.GRU])
def test_masks_for_a_users_torch_module(kind):
    torch.manual_seed(0)
    rnn, head = kind(6, 10, num_layers=2, batch_first=True), nn.Linear(10, 3)
    result = lattice_masks(rnn, 0.75, head=head, adjacency="binary")
    assert set(result.rnn) == {"weight_ih_l0", "weight_hh_l0", "weight_ih_l1", "weight_hh_l1"}
    for name, mask in result.rnn.items():
        assert mask.shape == getattr(rnn, name).shape and int(mask.sum()) == round(0.25 * mask.numel())
    assert result.head is None and result.report["sparsity"] == pytest.approx(0.75)
    # The masks keep zeros through training when registered with torch's pruning utilities.
    for name, mask in result.rnn.items():
        torch.nn.utils.prune.custom_from_mask(rnn, name, mask)
    opt = torch.optim.SGD(list(rnn.parameters()) + list(head.parameters()), lr=0.1)
    x = torch.randn(4, 5, 6)
    loss = head(rnn(x)[0][:, -1]).sum()
    loss.backward()
    opt.step()
    for name, mask in result.rnn.items():
        assert torch.all(getattr(rnn, name)[~mask] == 0)
    # Natural mode without a sparsity, on a module holding the RNN and its head.
    holder = nn.Sequential(kind(6, 10, batch_first=True), nn.Linear(10, 3))
    natural = lattice_masks(holder, quantile=0.8)
    assert natural.report["method_report"]["mode"] == "natural" and natural.report["sparsity"] >= 0.78
    before = holder[0].weight_hh_l0.detach().clone()
    natural.apply(holder[0])
    assert torch.equal(holder[0].weight_hh_l0, before * natural.rnn["weight_hh_l0"])


def test_prune_model_passes_none_only_to_outcome_methods():
    # prune/api.py: a method registered with fixed_sparsity=False gets None when no sparsity was
    # requested (lattice needs it to tell natural from target); fixed methods still refuse.
    from edgeprune.prune.registry import _REGISTRY, MaskResult, register

    seen = []

    @register("test-outcome", help="records its sparsity", fixed_sparsity=False)
    def outcome(ctx, sparsity):
        seen.append(sparsity)
        return MaskResult({n: np.ones(w.shape, dtype=bool) for n, w in ctx.weights.items()})

    try:
        report = prune.prune_model(make_model(), "test-outcome", None).report
        # (it keeps everything: only --accept-reached lets that stand for a 0.25 request)
        prune.prune_model(make_model(), "test-outcome", 0.25, options={"accept_reached": True})
        assert seen == [None, 0.25] and report["sparsity_requested"] is None
    finally:
        del _REGISTRY["test-outcome"]
    with pytest.raises(PruneError, match="method 'magnitude' needs --sparsity"):
        prune.prune_model(make_model(), "magnitude", None)


def test_analysis_of_a_users_module_names_its_units():
    torch.manual_seed(0)
    gru, head = nn.GRU(4, 6, batch_first=True), nn.Linear(6, 3)
    a = lattice_analysis(gru, head=head, adjacency="continuous", theta=0.0)
    names = a.graph.node_names()
    assert len(names) == 4 + 6 + 6 + 3 and names[0] == "x[0]" and names[-1] == "y[2]"
    assert a.meet_irreducible.all()  # dense: every unit shares its successors with its group
    binary = lattice_analysis(gru, head=head)  # the median: sources feeding several units become reducible
    assert binary.adjacency.thresholds.keys() == {"layers.0.weight_ih", "layers.0.weight_hh"}
    assert not binary.meet_irreducible.all()


@pytest.fixture(scope="module")
def trained_lstm():
    """An LSTM-64 trained to ~98% on digits: weights with the heavy tail of a trained network."""
    from edgeprune.models import ModelConfig, SequenceClassifier
    from edgeprune.train import seed_everything, train

    ds = data.load("digits")
    seed_everything(0)
    model = SequenceClassifier(ModelConfig("lstm", ds.features, (64,), ds.num_classes))
    result = train(model, ds, epochs=10, lr=1e-2, progress=False)
    assert result.test_accuracy > 0.95
    return model


def test_one_theta_reproduces_both_natural_outcomes_on_a_trained_lstm(trained_lstm):
    # The paper's two outcomes: binary adjacency ~50% sparsity, continuous far higher.
    binary = prune.prune_model(trained_lstm, "lattice", None).report
    assert binary["sparsity"] == pytest.approx(0.5, abs=0.02)
    continuous = prune.prune_model(trained_lstm, "lattice", None, options={"adjacency": "continuous"}).report
    assert continuous["method_report"]["theta"] == 0.5
    assert continuous["sparsity"] > 0.9
    # ... it is the threshold that does it: at theta 0 the continuous graph is complete, nothing goes.
    assert (
        prune.prune_model(trained_lstm, "lattice", None, options={"adjacency": "continuous", "theta": 0.0}).report[
            "sparsity"
        ]
        == 0.0
    )
    # and the binary reading does not depend on theta (its values are 0/1)
    again = prune.prune_model(trained_lstm, "lattice", None, options={"theta": 0.9}).model.masks()
    first = prune.prune_model(trained_lstm, "lattice", None).model.masks()
    assert all(torch.equal(again[n], first[n]) for n in first)


def test_which_readings_move_the_masks_away_from_magnitude(trained_lstm):
    # Structure term only (gamma = 0): at the binary median every current-state unit is
    # irreducible and no source is, so the bonus is the same for every weight, whichever endpoint
    # is asked: magnitude exactly. With the continuous adjacency at theta, previous-state units
    # differ in irreducibility, and the source / both / recurrent readings reorder connections.
    magnitude = prune.prune_model(trained_lstm, "magnitude", 0.9).model.masks()

    def differs(options):
        out = prune.prune_model(trained_lstm, "lattice", 0.9, options={**options, "gamma": 0.0})
        masks = out.model.masks()
        return sum(int((masks[n] & ~magnitude[n]).sum()) for n in masks) / sum(int(m.sum()) for m in masks.values())

    for options in ({}, {"critical_at": "source"}, {"critical_at": "both"}, {"adjacency": "continuous"}):
        assert differs(options) == 0.0, options
    for options in (
        {"adjacency": "continuous", "critical_at": "source"},
        {"adjacency": "continuous", "critical_at": "both"},
        {"adjacency": "continuous", "poset_graph": "recurrent"},
    ):
        assert differs(options) > 0.05, options


def test_recurrent_poset_reports_its_components(trained_lstm):
    r = prune.prune_model(trained_lstm, "lattice", 0.9, options={"poset_graph": "recurrent"}).report["method_report"]
    assert r["poset_graph"] == "recurrent"
    # x (8) + h (64) + y (10) nodes at most; the W_hh cycles merge some of them
    assert 1 <= r["strongly_connected_components"] < 8 + 64 + 10
    assert r["poset"]["elements"] == r["strongly_connected_components"]

import json

import numpy as np
import pytest

from edgeprune import checkpoint, prune
from edgeprune.graphs.spectral import expansion
from edgeprune.inspection import inspect_model

from .conftest import make_model
from .graphs.test_spectral import adjacency_spectrum


@pytest.fixture(scope="module")
def pruned_lstm():
    return prune.prune_model(make_model("lstm", (12, 9), True, input_size=8), "expander", 0.6, seed=0).model


def test_every_weight_gate_and_fused_layer_is_measured(pruned_lstm):
    doc, sections = inspect_model(pruned_lstm)
    for w in doc["weights"]:
        e = w["expansion"]
        assert set(e) == {"mask", "weighted", "gates"}
        assert list(e["gates"]) == ([] if w["kind"] == "head" else list("ifgo"))
    for layer in doc["layers"]:
        assert list(layer["expansion"]["gates"]) == list("ifgo")
        fused = layer["expansion"]["fused"]["mask"]
        assert fused["cols"] == layer["input_size"] + layer["hidden_size"] + layer["feedback_size"]
    (section,) = [s for s in sections if s.title.startswith("expansion")]
    # whole + 4 gates for each of 5 weights and 2 fused layers, plus the head
    assert len(section.rows) == 7 * 5 + 1


def test_values_match_a_numpy_eigendecomposition(pruned_lstm):
    doc, _ = inspect_model(pruned_lstm)
    hh = {w["name"]: w for w in doc["weights"]}["layers.1.weight_hh"]
    mask = pruned_lstm.masks()["layers.1.weight_hh"].numpy()
    values = pruned_lstm.layers[1].effective("weight_hh").detach().numpy()
    gate_f = slice(9, 18)
    lam = adjacency_spectrum(mask[gate_f].astype(float))
    got = hh["expansion"]["gates"]["f"]["mask"]
    assert (got["sigma1"], got["sigma2"]) == pytest.approx((lam[0], lam[1]))
    w = np.abs(values[gate_f])
    lam_w = adjacency_spectrum(w / w[mask[gate_f]].mean())
    assert hh["expansion"]["gates"]["f"]["weighted"]["sigma2"] == pytest.approx(lam_w[1])
    layer0 = pruned_lstm.layers[0]
    fused = np.hstack([pruned_lstm.masks()[f"layers.0.{a}"].numpy() for a in layer0.weight_names()])
    assert doc["layers"][0]["expansion"]["fused"]["mask"]["sigma2"] == pytest.approx(expansion(fused).sigma2)


def test_dense_weights_are_complete_graphs():
    doc, _ = inspect_model(make_model("rnn", (6,), input_size=4))
    e = {w["name"]: w for w in doc["weights"]}["layers.0.weight_hh"]["expansion"]["mask"]
    assert e["biregular"] and e["sigma2"] == pytest.approx(0, abs=1e-9) and e["ramanujan"] is True


def test_cli_table_and_json(run_cli, pruned_lstm, tmp_path):
    path = tmp_path / "m.pt"
    checkpoint.save(pruned_lstm, path, {"dataset": "digits"})
    r = run_cli("inspect", path)
    assert r.code == 0 and "expansion" in r.out and "L1 hh:f" in r.out and "L0 fused:o" in r.out
    r = run_cli("inspect", path, "--json")
    doc = json.loads(r.out)
    assert doc["weights"][0]["expansion"]["gates"]["i"]["mask"]["rows"] == 12
    r = run_cli("inspect", path, "--no-analysis", "--json")
    assert "expansion" not in json.loads(r.out)["weights"][0]

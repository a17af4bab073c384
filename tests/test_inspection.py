from edgeprune import prune
from edgeprune.inspection import inspect_model

from .conftest import make_model


def test_counts_and_degrees():
    model = prune.prune_model(
        make_model("lstm", (12, 9), True),
        "random-regular",
        0.75,
        seed=0,
        options={"row_degrees": "equal", "accept_reached": True},
    ).model
    doc, _ = inspect_model(model)
    by_name = {w["name"]: w for w in doc["weights"]}
    fb = by_name["layers.0.weight_fb"]
    assert fb["shape"] == [48, 9] and fb["row_degree"]["min"] == fb["row_degree"]["max"] == round(0.25 * 9)
    assert fb["nnz"] == 48 * round(0.25 * 9)
    recurrent = [w for w in doc["weights"] if w["kind"] != "head"]
    assert doc["totals"]["recurrent_nnz"] == sum(w["nnz"] for w in recurrent)
    assert doc["totals"]["parameters"] == sum(p.numel() for p in model.parameters())
    head = by_name["head.weight"]
    assert head["nnz"] == head["size"] and not head["masked"]
    assert [l["index"] for l in doc["layers"]] == [0, 1]
    assert doc["layers"][0]["nnz"] == sum(by_name[n]["nnz"] for n in doc["layers"][0]["weights"])


def test_dense_model_has_zero_sparsity():
    doc, _ = inspect_model(make_model())
    assert doc["totals"]["recurrent_sparsity"] == 0.0

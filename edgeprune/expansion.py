"""``inspect`` analysis: expansion (Ramanujan) measures of every bipartite layer of a model.

For each weight matrix (whole and per gate block), for each layer's time-unfolded matrix
``[W_ih | W_hh | W_fb]`` (whole and per gate) and for the head: degrees, σ₁, σ₂, the spectral gap
Δs and the Ramanujan gap Δr, on the binary mask and on |W| (``graphs.spectral``). Adds
``expansion`` keys under ``weights[j]`` and ``layers[i]`` of the JSON document and one table.
"""

from __future__ import annotations

from .graphs.bipartite import MatrixView, fused_views, matrix_views
from .graphs.spectral import expansion
from .inspection import Section, register_analysis
from .models import CELL_GATES, RecurrentLayer, SequenceClassifier


def _arrays(module, attr: str):
    values = module.effective(attr).detach().cpu().numpy()
    mask = module.get_mask(attr)
    return values, (None if mask is None else mask.detach().cpu().numpy().astype(bool))


def model_views(model: SequenceClassifier) -> tuple[dict[str, list[MatrixView]], dict[int, list[MatrixView]]]:
    """Views per weight name (whole matrix first, then gates) and fused views per recurrent stage index."""
    per_weight, per_layer = {}, {}
    for i, (name, stage) in enumerate(model.named_stages()):
        if isinstance(stage, RecurrentLayer):
            gates = CELL_GATES[stage.cell]
            parts = []
            for attr in stage.weight_names():
                values, mask = _arrays(stage, attr)
                parts.append((values, mask))
                per_weight[f"{name}.{attr}"] = matrix_views(
                    f"{name}.{attr}", values, mask, gates=gates, cell=stage.cell, layer=i
                )
            per_layer[i] = fused_views(i, parts, gates=gates, cell=stage.cell)
        elif hasattr(stage, "effective"):  # dense, conv, head: one matrix
            values, mask = _arrays(stage, "weight")
            per_weight[f"{name}.weight"] = matrix_views(f"{name}.weight", values, mask)
    return per_weight, per_layer


def _measure(view: MatrixView) -> dict:
    return {"mask": expansion(view.mask).to_dict(), "weighted": expansion(view.values, weighted=True).to_dict()}


def _entry(views: list[MatrixView]) -> dict:
    whole, gates = views[0], views[1:]
    return {**_measure(whole), "gates": {v.gate: _measure(v) for v in gates}}


def _verdict(e: dict) -> str:
    return {True: "yes", False: "no", None: "n/a"}[e["ramanujan"]]


def _short(name: str) -> str:
    """``layers.0.weight_hh[f]`` -> ``L0 hh:f``: short enough for a terminal, and no brackets (rich
    would read ``[i]`` as markup)."""
    name = name.replace("[", ":").replace("]", "")
    if name.startswith("layers."):
        _, l, rest = name.split(".", 2)
        return f"L{l} {rest.replace('weight_', '')}"
    return name.replace(".weight", "")


def _num(v):
    if v is None:
        return None
    return 0.0 if abs(v) < 1e-9 else float(f"{v:.3g}")


def _row(name: str, m: dict) -> list:
    b, w = m["mask"], m["weighted"]
    return [
        _short(name),
        f"{b['rows']}x{b['cols']}",
        _num(b["left_degree"]),
        _num(b["right_degree"]),
        "yes" if b["biregular"] else "no",
        _num(b["sigma1"]),
        _num(b["sigma2"]),
        _num(b["spectral_gap"]),
        _num(b["ramanujan_gap"]),
        _verdict(b),
        _num(w["sigma2"]),
        _num(w["ramanujan_gap"]),
    ]


@register_analysis("expansion")
def expansion_analysis(model: SequenceClassifier, doc: dict) -> list[Section]:
    per_weight, per_layer = model_views(model)
    rows = []
    by_name = {w["name"]: w for w in doc["weights"]}

    def add_weight(name):
        entry = _entry(per_weight[name])
        by_name[name]["expansion"] = entry
        rows.append(_row(name, entry))
        rows.extend(_row(f"{name}[{g}]", m) for g, m in entry["gates"].items())

    layer_entries = {entry["index"]: entry for entry in doc["layers"]}
    for i, entry_doc in layer_entries.items():
        if i not in per_layer:  # dense / conv stages: their one matrix
            for name in entry_doc["weights"]:
                add_weight(name)
            continue
        views = per_layer[i]
        for name in entry_doc["weights"]:
            add_weight(name)
        entry = _entry(views)
        entry_doc["expansion"] = {"fused": {k: v for k, v in entry.items() if k != "gates"}, "gates": entry["gates"]}
        rows.append(_row(f"layers.{i}.fused", entry))
        rows.extend(_row(f"layers.{i}.fused[{g}]", m) for g, m in entry["gates"].items())
    if "head.weight" in per_weight:
        add_weight("head.weight")
    columns = ["graph", "shape", "d̄L", "d̄R", "bireg", "σ1", "σ2", "Δs", "Δr", "Ram.", "σ2|W|", "Δr|W|"]
    title = (
        "expansion: bipartite graph per weight, gate and fused layer (left = inputs, right = outputs); "
        "Ram. = Ramanujan (Δr ≥ 0), n/a when an average degree < 3; |W| scaled to mean 1"
    )
    return [Section(title, columns, rows)]


__all__ = ["expansion_analysis", "model_views"]

"""``inspect``: what survives in a checkpoint, per weight and per layer, as a table or stable JSON.

Later analyses (graph metrics of pruning methods) plug in with ``register_analysis``: each adds
keys to the document (under ``layers[i]`` / ``weights[j]``) and may return extra table sections.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Callable

import numpy as np

from .models import SequenceClassifier

SCHEMA = "edgeprune.inspect/1"


@dataclass
class Section:
    """An extra table for the text report."""

    title: str
    columns: list[str]
    rows: list[list]


Analysis = Callable[[SequenceClassifier, dict], list[Section]]
_ANALYSES: dict[str, Analysis] = {}
# Modules that register analyses on import (later issues add graph metrics here).
ANALYSIS_MODULES: tuple[str, ...] = ("edgeprune.prune.lattice", "edgeprune.expansion")


def register_analysis(name: str):
    def decorate(fn: Analysis) -> Analysis:
        _ANALYSES[name] = fn
        return fn

    return decorate


def _weight_entry(name: str, kind: str, layer: int | None, values: np.ndarray, mask) -> dict:
    nonzero = values != 0 if mask is None else mask.detach().cpu().numpy().astype(bool)
    rows = nonzero.sum(axis=1)
    cols = nonzero.sum(axis=0)
    nnz = int(nonzero.sum())
    return {
        "name": name,
        "kind": kind,
        "layer": layer,
        "shape": list(values.shape),
        "size": int(values.size),
        "nnz": nnz,
        "sparsity": 1.0 - nnz / values.size if values.size else 0.0,
        "masked": mask is not None,
        "row_degree": {"min": int(rows.min()), "max": int(rows.max()), "mean": float(rows.mean())},
        "col_degree": {"min": int(cols.min()), "max": int(cols.max()), "mean": float(cols.mean())},
    }


def inspect_model(model: SequenceClassifier, meta: dict | None = None, source: str = "",
                  analyses: bool = True) -> tuple[dict, list[Section]]:
    cfg = model.config
    kinds = {"weight_ih": "input", "weight_hh": "recurrent", "weight_fb": "feedback"}
    weights, layers = [], []
    for l, layer in enumerate(model.layers):
        entries = [
            _weight_entry(f"layers.{l}.{a}", kinds[a], l, layer.effective(a).detach().cpu().numpy(), layer.get_mask(a))
            for a in layer.weight_names()
        ]
        weights += entries
        size = sum(e["size"] for e in entries)
        nnz = sum(e["nnz"] for e in entries)
        layers.append({
            "index": l,
            "cell": cfg.cell,
            "input_size": layer.input_size,
            "hidden_size": layer.hidden_size,
            "feedback_size": layer.feedback_size,
            "weights": [e["name"] for e in entries],
            "size": size,
            "nnz": nnz,
            "sparsity": 1.0 - nnz / size,
        })
    head = _weight_entry("head.weight", "head", None, model.head.effective("weight").detach().cpu().numpy(),
                         model.head.get_mask("weight"))
    recurrent_size = sum(e["size"] for e in weights)
    recurrent_nnz = sum(e["nnz"] for e in weights)
    params = sum(int(p.numel()) for p in model.parameters())
    nonzeros = sum(int(np.count_nonzero(v.numpy())) for v in model.effective_weights().values())
    doc = {
        "schema": SCHEMA,
        "source": source,
        "model": cfg.to_dict(),
        "weights": weights + [head],
        "layers": layers,
        "totals": {
            "parameters": params,
            "nonzero_parameters": nonzeros,
            "recurrent_weights": recurrent_size,
            "recurrent_nnz": recurrent_nnz,
            "recurrent_sparsity": 1.0 - recurrent_nnz / recurrent_size,
            "head_nnz": head["nnz"],
            "biases": params - recurrent_size - head["size"],
        },
        "meta": _json_safe(meta or {}),
    }
    sections: list[Section] = []
    if analyses:
        for module in ANALYSIS_MODULES:
            import_module(module)
        for fn in _ANALYSES.values():
            sections += fn(model, doc) or []
    return doc, sections


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj

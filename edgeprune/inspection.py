"""``inspect``: what survives in a checkpoint, per weight and per layer, as a table or stable JSON.

Later analyses (graph metrics of pruning methods) plug in with ``register_analysis``: each adds
keys to the document (under ``layers[i]`` / ``weights[j]``) and may return extra table sections.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

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


def inspect_model(
    model: SequenceClassifier, meta: dict | None = None, source: str = "", analyses: bool = True
) -> tuple[dict, list[Section]]:
    cfg = model.config
    kinds = {"weight_ih": "input", "weight_hh": "recurrent", "weight_fb": "feedback"}
    weights, layers, head = [], [], None
    for i, (name, stage) in enumerate(model.named_stages()):
        spec = cfg.stages[i]
        if name == "head":
            head = _weight_entry(
                "head.weight", "head", None, stage.effective("weight").detach().cpu().numpy(), stage.get_mask("weight")
            )
            continue
        names = stage.weight_names() if hasattr(stage, "weight_names") else []
        kind_of = kinds if spec.recurrent else {"weight": spec.kind}
        entries = [
            _weight_entry(f"{name}.{a}", kind_of[a], i, stage.effective(a).detach().cpu().numpy(), stage.get_mask(a))
            for a in names
        ]
        weights += entries
        size = sum(e["size"] for e in entries)
        nnz = sum(e["nnz"] for e in entries)
        entry = {
            "index": i,
            "kind": "recurrent" if spec.recurrent else spec.kind,
            "stage": spec.text(),
            "output_size": cfg.sizes[i],
            "weights": [e["name"] for e in entries],
            "size": size,
            "nnz": nnz,
            "sparsity": 1.0 - nnz / size if size else 0.0,
        }
        if spec.recurrent:
            entry.update(
                {
                    "cell": spec.kind,
                    "input_size": stage.input_size,
                    "hidden_size": stage.hidden_size,
                    "feedback_size": stage.feedback_size,
                }
            )
        layers.append(entry)
    recurrent = [e for e in weights if e["kind"] in kinds.values()]
    recurrent_size = sum(e["size"] for e in recurrent)
    recurrent_nnz = sum(e["nnz"] for e in recurrent)
    body_size = sum(e["size"] for e in weights)
    body_nnz = sum(e["nnz"] for e in weights)
    params = sum(int(p.numel()) for p in model.parameters())
    nonzeros = sum(int(np.count_nonzero(v.numpy())) for v in model.effective_weights().values())
    doc = {
        "schema": SCHEMA,
        "source": source,
        "model": cfg.to_dict(),
        "weights": weights + ([head] if head else []),
        "layers": layers,
        "totals": {
            "parameters": params,
            "nonzero_parameters": nonzeros,
            "recurrent_weights": recurrent_size,
            "recurrent_nnz": recurrent_nnz,
            "recurrent_sparsity": 1.0 - recurrent_nnz / recurrent_size if recurrent_size else 0.0,
            "matrix_weights": body_size,  # every prunable matrix but the head
            "matrix_nnz": body_nnz,
            "matrix_sparsity": 1.0 - body_nnz / body_size if body_size else 0.0,
            "head_nnz": head["nnz"] if head else 0,
            "biases": params - body_size - (head["size"] if head else 0),
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

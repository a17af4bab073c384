"""JSON schemas of a RUN_DIR's files (version 1; fields are only ever added). docs/sweeps.md describes them."""

from __future__ import annotations

from .cell import CELL_FORMAT
from .rundir import INDEX_FORMAT, RUN_FORMAT

_opt_str = {"type": ["string", "null"]}
_opt_num = {"type": ["number", "null"]}
_status = {"enum": ["ok", "failed"]}
_stage = {"enum": [None, "setup", "prune", "compile", "accuracy", "latency"]}

RUNTIME = {
    "type": "object",
    "required": ["id", "kind", "runtime", "target", "variant", "modes", "status", "error", "memory", "accuracy"],
    "properties": {
        "id": {"type": "string"},
        "kind": {"enum": ["torch", "artifact"]},
        "status": _status,
        "error": _opt_str,
        "memory": {"type": "object", "required": ["storage_bytes", "artifact_bytes", "nnz"]},
        "accuracy": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["accuracy", "samples", "mode"],
                "properties": {
                    "accuracy": _opt_num,
                    "samples": {"type": "integer"},
                    "mode": {"enum": ["step", "sequence"]},
                    "max_abs_vs_reference": _opt_num,
                    "agreement_vs_reference": _opt_num,
                    "metric": {"enum": ["accuracy", "mse"]},
                    "mse": _opt_num,
                    "macro_f1": _opt_num,
                },
            },
        },
    },
}

CELL = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "edgeprune sweep cell",
    "type": "object",
    "required": [
        "format",
        "version",
        "key",
        "method",
        "sparsity",
        "seed",
        "status",
        "stage",
        "error",
        "pruning",
        "model",
        "runtimes",
        "skipped",
        "timing",
    ],
    "properties": {
        "format": {"const": CELL_FORMAT},
        "version": {"const": 1},
        "key": {"type": "string"},
        "method": {"type": "string"},
        "sparsity": {"type": "number"},
        "seed": {"type": "integer"},
        "status": _status,
        "stage": _stage,
        "error": _opt_str,
        "pruning": {"type": ["object", "null"], "required": ["method", "sparsity", "seed"]},
        "model": {"type": ["object", "null"]},
        "runtimes": {"type": "array", "items": RUNTIME},
        "skipped": {"type": "array", "items": {"type": "object", "required": ["id", "reason"]}},
        "timing": {
            "type": "object",
            "required": ["started", "finished", "wall_s", "stages_s", "worker", "latency"],
            "properties": {
                "wall_s": _opt_num,
                "stages_s": {"type": "object"},
                "latency": {"type": ["object", "null"]},
                "executor": {"type": "string"},
                "session": {"type": "string"},
            },
        },
    },
    "allOf": [
        {
            "if": {"properties": {"status": {"const": "failed"}}},
            "then": {"properties": {"error": {"type": "string"}, "stage": {"type": "string"}}},
        }
    ],
}

MANIFEST = {
    "type": "object",
    "required": ["format", "version", "edgeprune", "created", "checkpoint", "identity", "cells"],
    "properties": {
        "format": {"const": RUN_FORMAT},
        "version": {"const": 1},
        "cells": {"type": "array", "items": {"type": "string"}},
        "identity": {"type": "object", "required": ["checkpoint_sha256", "methods", "sparsities", "seeds"]},
    },
}

INDEX = {
    "type": "object",
    "required": ["format", "version", "running", "total", "finished", "ok", "failed", "cells"],
    "properties": {
        "format": {"const": INDEX_FORMAT},
        "version": {"const": 1},
        "running": {"type": "boolean"},
        "cells": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "status"],
                "properties": {"status": {"enum": ["ok", "failed", "pending"]}},
            },
        },
    },
}


def validate(doc: dict) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``doc`` is a valid cell, manifest or index."""
    import jsonschema

    schema = {CELL_FORMAT: CELL, RUN_FORMAT: MANIFEST, INDEX_FORMAT: INDEX}.get(doc.get("format"))
    if schema is None:
        raise jsonschema.ValidationError(f"unknown format {doc.get('format')!r}")
    jsonschema.validate(doc, schema)

"""The JSON schema of ``bench`` results (``edgeprune.bench`` version 1); a sweep's are in ``sweep.schema``.

Stable: fields are only ever added in version 1. docs/bench.md describes every field; the tests
validate real outputs against this schema with ``jsonschema``.
"""

from __future__ import annotations

FORMAT, VERSION = "edgeprune.bench", 1

_num = {"type": "number"}
_int = {"type": "integer", "minimum": 0}
_opt_num = {"type": ["number", "null"]}
_opt_int = {"type": ["integer", "null"], "minimum": 0}
_opt_str = {"type": ["string", "null"]}

LATENCY = {
    "type": "object",
    "required": ["unit", "clock", "n", "p50", "p90", "p99", "mean", "min", "max", "ci95_median", "stopped_by"],
    "properties": {
        "unit": {"enum": ["ns", "instructions", "cycles"]},
        "clock": {"type": "string"},
        "clock_hz": _opt_num,
        "n": {"type": "integer", "minimum": 1},
        "p50": _num,
        "p90": _num,
        "p99": _num,
        "mean": _num,
        "std": _num,
        "min": _num,
        "max": _num,
        "ci95_median": {"type": "array", "items": _num, "minItems": 2, "maxItems": 2},
        "rel_ci95_median": _opt_num,
        "stopped_by": {"type": "string"},
        "warmup": _int,
        "samples": {"type": "array", "items": _num},
    },
}

MEMORY = {
    "type": "object",
    "required": [
        "artifact_bytes",
        "weight_bytes",
        "index_bytes",
        "storage_bytes",
        "nnz",
        "bytes_per_nonzero",
        "state_bytes",
        "scratch_bytes",
        "ram_bytes",
        "peak_rss_bytes",
    ],
    "properties": {
        "artifact_bytes": _opt_int,
        "weight_bytes": _opt_int,
        "index_bytes": _opt_int,
        "storage_bytes": _opt_int,
        "bias_bytes": _opt_int,
        "stored_values": _opt_int,
        "nnz": _opt_int,
        "bytes_per_nonzero": _opt_num,
        "state_bytes": _opt_int,
        "scratch_bytes": _opt_int,
        "ram_bytes": _opt_int,
        "code_bytes": _opt_int,
        "peak_rss_bytes": _opt_int,
        "baseline_rss_bytes": _opt_int,
        "dtype": _opt_str,
        "program": {
            "type": "object",
            "properties": {
                **{
                    k: _int
                    for k in ("text_bytes", "data_bytes", "bss_bytes", "flash_bytes", "static_ram_bytes", "file_bytes")
                },
                "kind": {"enum": ["linux", "semihosting"]},
                "arch": {"type": "string"},
            },
        },
    },
}

ACCURACY = {
    "type": "object",
    "required": ["accuracy", "samples", "mode"],
    "properties": {
        "accuracy": _opt_num,
        "samples": _int,
        "mode": {"enum": ["step", "sequence"]},
        "reference": _opt_str,
        "max_abs_vs_reference": _opt_num,
        "agreement_vs_reference": _opt_num,
        "task": {"enum": ["classify", "regress"]},
        "metric": {"enum": ["accuracy", "mse"]},
        "per_step": {"type": "boolean"},
        "macro_f1": _opt_num,
        "mse": _opt_num,
        "snr_db": _opt_num,
    },
}

RUNTIME = {
    "type": "object",
    "required": [
        "id",
        "kind",
        "runtime",
        "target",
        "variant",
        "device",
        "call_path",
        "emulated",
        "status",
        "error",
        "latency",
        "memory",
        "accuracy",
        "threads",
    ],
    "properties": {
        "id": {"type": "string"},
        "kind": {"enum": ["torch", "artifact"]},
        "runtime": {"type": "string"},
        "target": _opt_str,
        "artifact": _opt_str,
        "variant": {"type": "object"},
        "modes": {"type": "array", "items": {"enum": ["step", "sequence"]}},
        "device": {"type": "string"},
        "call_path": {"enum": ["python", "native", "firmware"]},
        "emulated": {"type": "boolean"},
        "status": {"enum": ["ok", "failed"]},
        "error": _opt_str,
        "latency": {
            "type": "object",
            "properties": {"step": LATENCY, "sequence": LATENCY},
            "additionalProperties": False,
        },
        "memory": MEMORY,
        "accuracy": {
            "type": "object",
            "properties": {"step": ACCURACY, "sequence": ACCURACY},
            "additionalProperties": False,
        },
        "threads": {"type": "integer", "minimum": 1},
        "os_threads": _opt_int,
        "info": {"type": "object"},
        "outputs": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                m: {"type": "array", "items": {"type": "array", "items": _num}} for m in ("step", "sequence")
            },
        },
    },
}

BENCH = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "edgeprune bench result",
    "type": "object",
    "required": [
        "format",
        "version",
        "edgeprune",
        "created",
        "command",
        "complete",
        "machine",
        "device",
        "source",
        "data",
        "settings",
        "runtimes",
        "skipped",
        "errors",
    ],
    "properties": {
        "format": {"const": FORMAT},
        "version": {"const": VERSION},
        "edgeprune": {"type": "string"},
        "created": {"type": "string"},
        "command": {"type": "string"},
        "complete": {"type": "boolean"},
        "machine": {"type": "object", "required": ["cpu", "cores", "machine"]},
        "device": {
            "type": "object",
            "required": ["url", "kind", "emulated"],
            "properties": {
                "url": {"type": "string"},
                "kind": {"type": "string"},
                "arch": _opt_str,
                "emulated": {"type": "boolean"},
            },
        },
        "source": {
            "type": "object",
            "required": ["path", "kind"],
            "properties": {
                "path": {"type": "string"},
                "kind": {"enum": ["checkpoint", "artifacts"]},
                "model": _opt_str,
                "nnz": _opt_int,
                "sparsity": _opt_num,
                "method": _opt_str,
            },
        },
        "data": {
            "type": "object",
            "required": ["dataset", "split"],
            "properties": {
                "dataset": _opt_str,
                "split": {"type": "string"},
                "accuracy_samples": _opt_int,
                "latency_sequences": _opt_int,
                "device_samples": _opt_int,
                "steps": _opt_int,
                "task": {"enum": [None, "classify", "regress"]},
                "labels": {"enum": [None, "sequence", "step"]},
                "metric": {"enum": [None, "accuracy", "mse"]},
                "min_length": _opt_int,
            },
        },
        "settings": {
            "type": "object",
            "required": ["threads"],
            "properties": {"threads": {"type": "integer", "minimum": 1}},
        },
        "harness": {"type": "object"},
        "runtimes": {"type": "array", "items": RUNTIME},
        "comparisons": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "mode", "python_p50_ns", "native_p50_ns", "python_overhead_ns"],
                "properties": {
                    "id": {"type": "string"},
                    "mode": {"enum": ["step", "sequence"]},
                    "python_p50_ns": _num,
                    "native_p50_ns": _num,
                    "python_overhead_ns": _num,
                },
            },
        },
        "skipped": {"type": "array", "items": {"type": "object", "required": ["id", "reason"]}},
        "errors": {"type": "array", "items": {"type": "string"}},
    },
}


def validate(doc: dict, schema: dict | None = None) -> None:
    """Raise ``jsonschema.ValidationError`` if ``doc`` does not follow the schema (``BENCH`` by default)."""
    import jsonschema

    jsonschema.validate(doc, BENCH if schema is None else schema)

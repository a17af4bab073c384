"""Memory figures of a runtime: what is on disk, what the weights and indices cost, RAM, peak RSS.

Backends report what only they know in ``Artifact.info`` (keys below, all optional, batch 1,
bytes). ``bench`` never guesses them for a backend: a key the backend does not report is null in
the results. It computes the ratios and the per-nonzero cost against the model's true nonzero
count, so a runtime that stores dense weights shows it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Artifact.info keys read by bench (documented in docs/bench.md)
INFO_KEYS = {
    "weight_bytes": "bytes of stored weight values, recurrent layers + head, as the runtime holds them",
    "index_bytes": "bytes of sparse index structures (column indices, row pointers, block maps); 0 for dense",
    "storage_bytes": "weights + indices as stored, when a backend does not split them (else their sum)",
    "bias_bytes": "bytes of biases",
    "stored_values": "values stored including padding (ELL/SELL/blocks); nnz when there is none",
    "state_bytes": "RAM for the recurrent state of one stream (h, and c for LSTM, every layer)",
    "scratch_bytes": "RAM for scratch buffers of one step (z_t, gate pre-activations, ...)",
    "code_bytes": "machine code of the model's kernels, when known (e.g. .text of the object)",
    "dtype": "storage type of the weights: float32, int8, ...",
    "kernels": "kernel chosen per matrix, e.g. {\"layers.0.weight\": \"sell8\"}",
}


def ir_storage(model) -> dict:
    """What the IR itself holds (the ``ir`` target): fp32 CSR values, int32 indices and row pointers."""
    mats = model.matrices()
    weight = sum(m.data.size * 4 for m in mats.values())
    index = sum(m.indices.size * 4 + m.indptr.size * 4 for m in mats.values())
    bias = sum(s.bias.size * 4 for s in model.stages if getattr(s, "bias", None) is not None)
    state = sum(4 * sum(s) for s in model.state_sizes())
    scratch = 4 * max(l.cols + l.rows for l in model.layers)
    return {"weight_bytes": int(weight), "index_bytes": int(index), "bias_bytes": int(bias),
            "stored_values": int(sum(m.nnz for m in mats.values())), "state_bytes": int(state),
            "scratch_bytes": int(scratch), "dtype": "float32"}


def torch_storage(state: dict, hidden_sizes, cell: str) -> dict:
    """Dense torch parameters (every weight stored, zero or not)."""
    weight = sum(int(np.prod(v.shape)) * v.element_size() for k, v in state.items() if "weight" in k and "mask" not in k)
    bias = sum(int(np.prod(v.shape)) * v.element_size() for k, v in state.items() if "bias" in k)
    per_layer = 2 if cell == "lstm" else 1
    return {"weight_bytes": int(weight), "index_bytes": 0, "storage_bytes": int(weight), "bias_bytes": int(bias),
            "dtype": "float32",
            "state_bytes": int(sum(4 * h * per_layer for h in hidden_sizes))}


def record(artifact: dict | None, directory: str | None, model_nnz: int | None, info: dict | None = None) -> dict:
    """The ``memory`` record of one runtime (RSS is added by whoever ran it)."""
    info = dict(info if info is not None else (artifact or {}).get("info", {}))
    out: dict = {"artifact_bytes": None}
    if artifact is not None and directory is not None:
        files = artifact.get("files") or [artifact["name"]]
        try:
            out["artifact_bytes"] = int(sum((Path(directory) / f).stat().st_size for f in files))
        except OSError:
            out["artifact_bytes"] = artifact.get("bytes")
    for key in ("weight_bytes", "index_bytes", "storage_bytes", "bias_bytes", "stored_values", "state_bytes",
                "scratch_bytes", "code_bytes"):
        v = info.get(key)
        out[key] = int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
    if out["storage_bytes"] is None and out["weight_bytes"] is not None and out["index_bytes"] is not None:
        out["storage_bytes"] = out["weight_bytes"] + out["index_bytes"]
    out["dtype"] = info.get("dtype") if isinstance(info.get("dtype"), str) else None
    out["nnz"] = int(model_nnz) if model_nnz is not None else None
    out["bytes_per_nonzero"] = out["storage_bytes"] / out["nnz"] if out["storage_bytes"] is not None and out["nnz"] else None
    if out["state_bytes"] is not None or out["scratch_bytes"] is not None:
        out["ram_bytes"] = (out["state_bytes"] or 0) + (out["scratch_bytes"] or 0)
    else:
        out["ram_bytes"] = None
    out["peak_rss_bytes"] = None
    out["baseline_rss_bytes"] = None
    return out

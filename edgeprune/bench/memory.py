"""Memory figures of a runtime: what is on disk, what the weights and indices cost, RAM, peak RSS.

Backends report what only they know in ``Artifact.info`` (keys below, all optional, batch 1,
bytes). ``bench`` never guesses them for a backend: a key the backend does not report is null in
the results. It computes the ratios and the per-nonzero cost against the model's true nonzero
count, so a runtime that stores dense weights shows it.
"""

from __future__ import annotations

from pathlib import Path

# Artifact.info keys read by bench (documented in docs/bench.md)
INFO_KEYS = {
    "weight_bytes": "bytes of stored weight values, recurrent layers + head, as the runtime holds them",
    "index_bytes": "bytes of sparse index structures (column indices, row pointers, block maps); 0 for dense",
    "storage_bytes": "weights + indices as stored, when a backend does not split them (else their sum)",
    "bias_bytes": "bytes of biases and the stages' other vectors (LayerNorm gamma/beta, normalize scale/shift)",
    "stored_values": "values stored including padding (ELL/SELL/blocks); nnz when there is none",
    "state_bytes": "RAM for the state of one stream, every stage (h and c, conv input windows, pool accumulators)",
    "scratch_bytes": "RAM for scratch buffers of one step (z_t, gate pre-activations, ...)",
    "code_bytes": "machine code of the model's kernels, when known (e.g. .text of the object)",
    "dtype": "storage type of the weights: float32, int8, ...",
    "kernels": 'kernel chosen per matrix, e.g. {"layers.0.weight": "sell8"}',
}


def state_bytes(model) -> int:
    """fp32 state of one stream, every stage: recurrent h (and c), conv input windows, pool accumulators."""
    return int(sum(4 * sum(sizes) for sizes in model.state_sizes()))


def scratch_bytes(model) -> int:
    """fp32 scratch of one step: the widest stage's input plus what it computes before its output
    (a recurrent stage's [x ; h ; feedback] and gate pre-activations, a conv stage's window of taps)."""
    widths = []
    for stage in model.stages:
        if stage.kind == "recurrent":
            widths.append(stage.cols + stage.rows)
        elif stage.kind == "conv1d":
            widths.append(stage.kernel * stage.in_channels + stage.output_size)
        else:
            widths.append(stage.input_size + stage.output_size)
    return 4 * max(widths, default=0)


def ir_storage(model) -> dict:
    """What the IR itself holds (the ``ir`` target): fp32 CSR values, int32 indices and row pointers, the
    stages' fp32 vectors (biases, LayerNorm gamma/beta, normalize scale/shift)."""
    mats = model.matrices()
    weight = sum(m.data.size * 4 for m in mats.values())
    index = sum(m.indices.size * 4 + m.indptr.size * 4 for m in mats.values())
    vectors = sum(v.size * 4 for s in model.stages for v in s.arrays().values())
    return {
        "weight_bytes": int(weight),
        "index_bytes": int(index),
        "bias_bytes": int(vectors),
        "stored_values": int(sum(m.nnz for m in mats.values())),
        "state_bytes": state_bytes(model),
        "scratch_bytes": scratch_bytes(model),
        "dtype": "float32",
    }


def torch_storage(model) -> dict:
    """A torch ``SequenceModel`` held dense: every matrix stored, zero or not; every vector (biases,
    LayerNorm and normalize parameters); the state of every stage (from the same chain in the IR)."""
    from ..frontend import lower

    # masks are not part of what a dense deployment holds (they are folded into the weights)
    tensors = [*model.parameters(), *(b for name, b in model.named_buffers() if "mask_" not in name.rsplit(".", 1)[-1])]
    weight = sum(t.numel() * t.element_size() for t in tensors if t.dim() >= 2)
    vectors = sum(t.numel() * t.element_size() for t in tensors if t.dim() < 2)
    ir_model = lower(model)
    return {
        "weight_bytes": int(weight),
        "index_bytes": 0,
        "storage_bytes": int(weight),
        "bias_bytes": int(vectors),
        "stored_values": int(sum(t.numel() for t in tensors if t.dim() >= 2)),
        "dtype": "float32",
        "state_bytes": state_bytes(ir_model),
        "scratch_bytes": scratch_bytes(ir_model),
    }


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
    for key in (
        "weight_bytes",
        "index_bytes",
        "storage_bytes",
        "bias_bytes",
        "stored_values",
        "state_bytes",
        "scratch_bytes",
        "code_bytes",
    ):
        v = info.get(key)
        out[key] = int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
    if out["storage_bytes"] is None and out["weight_bytes"] is not None and out["index_bytes"] is not None:
        out["storage_bytes"] = out["weight_bytes"] + out["index_bytes"]
    out["dtype"] = info.get("dtype") if isinstance(info.get("dtype"), str) else None
    out["nnz"] = int(model_nnz) if model_nnz is not None else None
    out["bytes_per_nonzero"] = (
        out["storage_bytes"] / out["nnz"] if out["storage_bytes"] is not None and out["nnz"] else None
    )
    if out["state_bytes"] is not None or out["scratch_bytes"] is not None:
        out["ram_bytes"] = (out["state_bytes"] or 0) + (out["scratch_bytes"] or 0)
    else:
        out["ram_bytes"] = None
    out["peak_rss_bytes"] = None
    out["baseline_rss_bytes"] = None
    return out

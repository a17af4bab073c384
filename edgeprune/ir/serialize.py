"""IR on disk: ``model.json`` (structure, metadata) + ``weights.npz`` (CSR arrays, biases).

Loading validates everything (shapes, index ranges, monotonic indptr, finite values) and reports
the first problem as one line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import IRError
from ..fileio import dumps_json, npz_bytes, write_bytes_atomic
from .model import CSR, Head, Layer, Model

FORMAT = "edgeprune.ir"
VERSION = 1
JSON_NAME, WEIGHTS_NAME = "model.json", "weights.npz"


def _csr_arrays(prefix: str, m: CSR) -> dict[str, np.ndarray]:
    return {f"{prefix}.data": m.data, f"{prefix}.indices": m.indices, f"{prefix}.indptr": m.indptr}


def dump(model: Model) -> dict[str, bytes]:
    """The two files of ``model`` as bytes (deterministic)."""
    arrays: dict[str, np.ndarray] = {}
    layers = []
    for l, layer in enumerate(model.layers):
        arrays.update(_csr_arrays(f"layers.{l}.weight", layer.weight))
        arrays[f"layers.{l}.bias"] = layer.bias.astype(np.float32)
        layers.append({
            "cell": layer.cell,
            "input_size": layer.input_size,
            "hidden_size": layer.hidden_size,
            "feedback_size": layer.feedback_size,
            "weight_shape": list(layer.weight.shape),
            "nnz": layer.weight.nnz,
        })
    arrays.update(_csr_arrays("head.weight", model.head.weight))
    arrays["head.bias"] = model.head.bias.astype(np.float32)
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "input_size": model.input_size,
        "num_classes": model.num_classes,
        "layers": layers,
        "head": {"weight_shape": list(model.head.weight.shape), "nnz": model.head.weight.nnz},
        "meta": model.meta,
    }
    return {JSON_NAME: dumps_json(doc).encode(), WEIGHTS_NAME: npz_bytes(arrays)}


def save(model: Model, directory: str | os.PathLike) -> Path:
    directory = Path(directory)
    model.validate()
    for name, data in dump(model).items():
        write_bytes_atomic(directory / name, data)
    return directory


def load(path: str | os.PathLike) -> Model:
    """Load and validate an IR directory (or its ``model.json``)."""
    path = Path(path)
    directory = path.parent if path.name == JSON_NAME else path
    json_path, npz_path = directory / JSON_NAME, directory / WEIGHTS_NAME
    if not json_path.exists():
        raise IRError(f"{directory}: not an edgeprune IR directory (no {JSON_NAME})")
    try:
        doc = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IRError(f"{json_path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise IRError(f"{json_path}: not an edgeprune IR file")
    if doc.get("version") != VERSION:
        raise IRError(f"{json_path}: IR version {doc.get('version')} is not supported (expected {VERSION})")
    try:
        with np.load(npz_path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as e:  # noqa: BLE001 - numpy/zipfile/zlib raise many types for a damaged archive
        raise IRError(f"{npz_path}: cannot read weights ({type(e).__name__})") from None

    def take(key: str, dtype) -> np.ndarray:
        if key not in arrays:
            raise IRError(f"{npz_path}: missing array '{key}'")
        a = arrays[key]
        if a.dtype.kind not in "fiu":
            raise IRError(f"{npz_path}: array '{key}' has unsupported dtype {a.dtype}")
        return a.astype(dtype, copy=False)

    def csr(prefix: str, shape) -> CSR:
        if not isinstance(shape, list) or len(shape) != 2:
            raise IRError(f"{json_path}: {prefix} weight_shape must be [rows, columns], got {shape!r}")
        return CSR(take(f"{prefix}.data", np.float32), take(f"{prefix}.indices", np.int32),
                   take(f"{prefix}.indptr", np.int32), tuple(int(s) for s in shape))

    try:
        layers = [
            Layer(
                cell=str(spec["cell"]),
                input_size=int(spec["input_size"]),
                hidden_size=int(spec["hidden_size"]),
                feedback_size=int(spec["feedback_size"]),
                weight=csr(f"layers.{l}.weight", spec["weight_shape"]),
                bias=take(f"layers.{l}.bias", np.float32),
            )
            for l, spec in enumerate(doc["layers"])
        ]
        head = Head(csr("head.weight", doc["head"]["weight_shape"]), take("head.bias", np.float32))
        model = Model(int(doc["input_size"]), layers, head, dict(doc.get("meta", {})))
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise IRError(f"{json_path}: malformed IR description ({type(e).__name__}: {e})") from None
    return model.validate()

"""IR on disk: ``model.json`` (structure, metadata) + ``weights.npz`` (CSR arrays, vectors).

Version 2 stores a chain of stages (``stages`` in model.json, arrays ``{name}.{array}`` with the
stage names of ``Model.stage_names``); version 1 directories (recurrent ``layers`` + ``head``) still
load, as the same chain. Loading validates everything (shapes, index ranges, monotonic indptr,
finite values, the chain) and reports the first problem as one line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import IRError
from ..fileio import check_header, dumps_json, npz_bytes, write_bytes_atomic
from .csr import CSR
from .model import Dense, Model
from .stages import STAGE_TYPES, Recurrent

FORMAT = "edgeprune.ir"
VERSION = 2
READS = (1, 2)
JSON_NAME, WEIGHTS_NAME = "model.json", "weights.npz"


def _csr_arrays(prefix: str, m: CSR) -> dict[str, np.ndarray]:
    return {f"{prefix}.data": m.data, f"{prefix}.indices": m.indices, f"{prefix}.indptr": m.indptr}


def dump(model: Model) -> dict[str, bytes]:
    """The two files of ``model`` as bytes (deterministic)."""
    arrays: dict[str, np.ndarray] = {}
    stages = []
    for name, stage in model.named_stages():
        entry = {"name": name, "kind": stage.kind, **stage.attributes()}
        for mname, m in stage.matrices().items():
            arrays.update(_csr_arrays(f"{name}.{mname}", m))
            entry[f"{mname}_shape"] = list(m.shape)
            entry[f"{mname}_nnz"] = m.nnz
        for aname, a in stage.arrays().items():
            arrays[f"{name}.{aname}"] = np.asarray(a, np.float32)
        stages.append(entry)
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "input_size": model.input_size,
        "output_size": model.output_size,
        "output": model.output,
        "task": model.task,
        "stages": stages,
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
    """Load and validate an IR directory (or its ``model.json``), version 1 or 2."""
    path = Path(path)
    directory = path.parent if path.name == JSON_NAME else path
    json_path, npz_path = directory / JSON_NAME, directory / WEIGHTS_NAME
    if not json_path.exists():
        raise IRError(f"{directory}: not an edgeprune IR directory (no {JSON_NAME})")
    try:
        doc = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IRError(f"{json_path}: not valid JSON ({e})") from None
    check_header(doc, json_path, FORMAT, READS, "an edgeprune IR file", "IR", IRError)
    try:
        with np.load(npz_path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as e:  # noqa: BLE001 - numpy/zipfile/zlib raise many types for a damaged archive
        raise IRError(f"{npz_path}: cannot read weights ({type(e).__name__})") from None
    reader = _Arrays(arrays, npz_path)
    try:
        model = _read_v1(doc, reader) if doc["version"] == 1 else _read_v2(doc, reader)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
        raise IRError(f"{json_path}: malformed IR description ({type(e).__name__}: {e})") from None
    return model.validate()


class _Arrays:
    def __init__(self, arrays: dict[str, np.ndarray], where: Path):
        self.arrays, self.where = arrays, where

    def has(self, key: str) -> bool:
        return key in self.arrays

    def take(self, key: str, dtype) -> np.ndarray:
        if key not in self.arrays:
            raise IRError(f"{self.where}: missing array '{key}'")
        a = self.arrays[key]
        if a.dtype.kind not in "fiu":
            raise IRError(f"{self.where}: array '{key}' has unsupported dtype {a.dtype}")
        if a.dtype.kind in "iu" and a.size and np.dtype(dtype).kind == "i":  # no silent wrap-around in the cast
            info = np.iinfo(dtype)
            if a.min() < info.min or a.max() > info.max:
                raise IRError(f"{self.where}: array '{key}' has values outside {np.dtype(dtype).name}")
        return a.astype(dtype, copy=False)

    def csr(self, prefix: str, shape) -> CSR:
        if not isinstance(shape, list) or len(shape) != 2:
            raise IRError(f"{self.where}: {prefix} weight_shape must be [rows, columns], got {shape!r}")
        return CSR(
            self.take(f"{prefix}.data", np.float32),
            self.take(f"{prefix}.indices", np.int32),
            self.take(f"{prefix}.indptr", np.int32),
            tuple(int(s) for s in shape),
        )


def _read_v2(doc: dict, reader: _Arrays) -> Model:
    stages = []
    for entry in doc["stages"]:
        kind, name = str(entry["kind"]), str(entry["name"])
        cls = STAGE_TYPES.get(kind)
        if cls is None:
            raise IRError(f"{reader.where}: stage {name} has unknown kind '{kind}'")
        matrices = {
            m[: -len("_shape")]: reader.csr(f"{name}.{m[: -len('_shape')]}", entry[m])
            for m in entry
            if m.endswith("_shape")
        }
        vectors = {}
        for aname in ("bias", "gamma", "beta", "scale", "shift", "peephole"):
            key = f"{name}.{aname}"
            if reader.has(key):
                vectors[aname] = reader.take(key, np.float32)
        if entry.get("bias") and "bias" not in vectors:
            raise IRError(f"{reader.where}: missing array '{name}.bias'")
        stages.append(cls.from_arrays(entry, matrices, vectors))
    model = Model(
        int(doc["input_size"]),
        stages,
        str(doc.get("output", "last")),
        str(doc.get("task", "classify")),
        dict(doc.get("meta", {})),
    )
    names = [str(e["name"]) for e in doc["stages"]]
    if names != model.stage_names():
        raise IRError(f"{reader.where}: stage names {names} do not follow the chain ({model.stage_names()})")
    return model


def _read_v1(doc: dict, reader: _Arrays) -> Model:
    """Version 1: recurrent layers + a linear head read at the last step."""
    stages: list = [
        Recurrent(
            str(spec["cell"]),
            int(spec["input_size"]),
            int(spec["hidden_size"]),
            int(spec["feedback_size"]),
            reader.csr(f"layers.{l}.weight", spec["weight_shape"]),
            reader.take(f"layers.{l}.bias", np.float32),
        )
        for l, spec in enumerate(doc["layers"])
    ]
    stages.append(Dense(reader.csr("head.weight", doc["head"]["weight_shape"]), reader.take("head.bias", np.float32)))
    return Model(int(doc["input_size"]), stages, meta=dict(doc.get("meta", {})))

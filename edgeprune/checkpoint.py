"""One-file checkpoints: config, weights, masks and metadata.

The file is a ``torch.save`` archive of plain tensors and JSON-able values, read back with
``weights_only=True`` so that a foreign pickle is never executed. It is serialised in memory and
written atomically, so the same model gives the same bytes whatever the output's name.

Loading trusts nothing in the file. Before torch reads it, the archive must be an uncompressed
zip whose members pass their CRC (a flipped byte anywhere is caught here; torch does not check);
after, the payload's SHA-256 (version 2) must match, every tensor must have the shape and dtype
the config implies (checked on torch's ``meta`` device, so a damaged config cannot make us
allocate terabytes), weights must be finite and masks boolean, and the metadata must be strict
JSON. Version-1 checkpoints (no checksum) are still read, with all the other checks.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
import zipfile
from pathlib import Path

import torch

from .errors import CheckpointError, EdgepruneError
from .fileio import check_header, dumps_json, existing_file, write_bytes_atomic
from .models import ModelSpec, SequenceClassifier

FORMAT = "edgeprune.checkpoint"
VERSION = 2  # a SHA-256 of the payload; the config is a chain of stages (ModelSpec)
READABLE_VERSIONS = (1, 2)  # 1: no checksum, a cell/hidden_sizes config (read as the same chain)


def _tensor_section(h, name: str, tensors: dict) -> None:
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        h.update(f"{name}/{key}:{t.dtype}:{list(t.shape)}\n".encode())
        h.update(t.numpy().tobytes())


def payload_digest(payload: dict) -> str:
    """SHA-256 of everything a checkpoint carries (config, metadata, weights, masks), in a fixed order."""
    h = hashlib.sha256()
    header = {k: payload[k] for k in ("format", "version", "config", "meta")}
    h.update(dumps_json(header).encode())
    _tensor_section(h, "state", payload["state"])
    _tensor_section(h, "masks", payload["masks"])
    return h.hexdigest()


def save(model: SequenceClassifier, path: str | os.PathLike, meta: dict | None = None) -> Path:
    if not isinstance(model, SequenceClassifier):
        raise CheckpointError(
            f"can only save a SequenceClassifier, got {type(model).__name__} "
            "(adopt it with edgeprune.models.from_torch)"
        )
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "masks": {k: v.cpu() for k, v in model.masks().items()},
        "meta": dict(meta or {}),
    }
    try:
        payload["sha256"] = payload_digest(payload)
    except (TypeError, ValueError) as e:  # NaN or a non-JSON value in meta would make the file unreadable
        raise CheckpointError(f"{path}: checkpoint metadata must be plain JSON values ({e})") from None
    for name, t in payload["state"].items():
        if not bool(torch.isfinite(t).all()):
            raise CheckpointError(
                f"{path}: not saved: {name} has NaN/infinite values (training diverged; try a smaller --lr)"
            )
    buf = io.BytesIO()
    torch.save(payload, buf)
    return write_bytes_atomic(path, buf.getvalue())


def _sniff(path: Path) -> None:
    """Name what a file that is not a torch zip archive is, before torch ever reads it."""
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        raise CheckpointError(f"{path}: not a readable edgeprune checkpoint (empty file)")
    if head.startswith(b"PK\x03\x04"):
        return
    if path.suffix.lower() == ".onnx":
        raise CheckpointError(
            f"{path}: not a readable edgeprune checkpoint (an ONNX model; compile and prune read .onnx files)"
        )
    if head[:1] == b"\x80":  # pickle protocol 2+ (also torch's legacy, pre-zip format)
        raise CheckpointError(
            f"{path}: not a readable edgeprune checkpoint (a plain Python pickle, not loaded: a pickle can run code)"
        )
    if head.startswith(b"\x93NUMPY"):
        raise CheckpointError(f"{path}: not a readable edgeprune checkpoint (a NumPy .npy array)")
    raise CheckpointError(f"{path}: not a readable edgeprune checkpoint (not a zip archive written by torch.save)")


def _check_archive(path: Path) -> None:
    """The zip layer: torch's members are stored uncompressed and CRC-32-checked here (torch skips it)."""
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            names = [i.filename for i in infos]
            if not any(n.endswith("/data.pkl") for n in names):
                if any(n.endswith(".npy") for n in names):
                    raise CheckpointError(f"{path}: not a readable edgeprune checkpoint (a NumPy .npz archive)")
                raise CheckpointError(
                    f"{path}: not a readable edgeprune checkpoint (a zip archive without torch's data.pkl)"
                )
            for info in infos:  # bounds what testzip reads: no zip bomb, no multi-GB member claims
                if info.compress_type != zipfile.ZIP_STORED or info.file_size > size:
                    raise CheckpointError(
                        f"{path}: not a readable edgeprune checkpoint (damaged: member {info.filename} "
                        "has an impossible size or compression)"
                    )
            bad = zf.testzip()
    except CheckpointError:
        raise
    except Exception:  # zipfile raises BadZipFile, EOFError, OSError, ValueError, ... for damaged archives
        raise CheckpointError(
            f"{path}: not a readable edgeprune checkpoint (damaged: its zip archive is truncated or corrupt)"
        ) from None
    if bad is not None:
        raise CheckpointError(f"{path}: not a readable edgeprune checkpoint (damaged: {bad} fails its CRC-32 check)")


def _torch_load(path: Path):
    try:
        with warnings.catch_warnings():  # torch warns about plain pickles; we say it in our own line
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for foreign or damaged files
        if "Weights only load failed" in str(e):
            raise CheckpointError(
                f"{path}: not a readable edgeprune checkpoint (it pickles Python objects other than "
                "tensors; refused without running them)"
            ) from None
        raise CheckpointError(
            f"{path}: not a readable edgeprune checkpoint (damaged: torch cannot read its archive)"
        ) from None


def _check_values(state: dict, where: str) -> None:
    for name, t in state.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise CheckpointError(f"{where}damaged checkpoint ({name} has {bad} NaN/infinite value(s))")


def _check_payload(path: Path, payload) -> tuple[ModelSpec, dict, dict, dict]:
    check_header(payload, path, FORMAT, READABLE_VERSIONS, "an edgeprune checkpoint", "checkpoint", CheckpointError)
    version = payload["version"]
    state, masks, meta = payload.get("state"), payload.get("masks", {}), payload.get("meta", {})
    for what, value in (("weights", state), ("masks", masks)):
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) and v.layout == torch.strided for k, v in value.items()
        ):
            raise CheckpointError(f"{path}: damaged checkpoint ({what} are not a table of dense tensors)")
    if not isinstance(meta, dict) or not isinstance(payload.get("config"), dict):
        raise CheckpointError(f"{path}: damaged checkpoint (config or metadata is not a table)")
    try:
        dumps_json(meta)
    except (TypeError, ValueError):
        raise CheckpointError(
            f"{path}: damaged checkpoint (metadata is not plain JSON: NaN, infinity or non-JSON values)"
        ) from None
    if version >= 2:
        try:
            intact = payload.get("sha256") == payload_digest({**payload, "masks": masks, "meta": meta})
        except (TypeError, ValueError, RuntimeError):
            intact = False
        if not intact:
            raise CheckpointError(f"{path}: damaged checkpoint (its contents do not match the SHA-256 it carries)")
    try:
        config = ModelSpec.from_dict(payload["config"])
    except EdgepruneError as e:
        raise CheckpointError(f"{path}: {e}") from None

    # Expected tensors from the config, without allocating them: first the count (plain integers,
    # so a config claiming 10**12 units costs nothing), then every shape on torch's meta device.
    from .train import parameter_count

    stored = sum(t.numel() for t in state.values())
    if parameter_count(config) > stored:
        raise CheckpointError(
            f"{path}: damaged checkpoint (its {config.describe()} config needs "
            f"{parameter_count(config):,} weights, the file holds {stored:,})"
        )
    with torch.device("meta"):
        skeleton = SequenceClassifier(config)
    expected = skeleton.state_dict()
    if set(state) != set(expected):
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        what = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
        raise CheckpointError(
            f"{path}: damaged checkpoint (weights do not match its {config.describe()} config: {what})"
        )
    for name, t in state.items():
        if t.dtype != torch.float32 or t.shape != expected[name].shape:
            raise CheckpointError(
                f"{path}: damaged checkpoint ({name} is {str(t.dtype)[6:]} {list(t.shape)}, "
                f"the config needs float32 {list(expected[name].shape)})"
            )
    prunable = skeleton.prunable()
    for name, m in masks.items():
        if name not in prunable:
            raise CheckpointError(f"{path}: damaged checkpoint (a mask for '{name}', which is not a prunable weight)")
        if m.dtype != torch.bool or m.shape != prunable[name].shape:
            raise CheckpointError(
                f"{path}: damaged checkpoint (the mask of {name} is {str(m.dtype)[6:]} "
                f"{list(m.shape)}, not bool {list(prunable[name].shape)})"
            )
    _check_values(state, f"{path}: ")
    return config, state, masks, meta


def load_with_meta(path: str | os.PathLike) -> tuple[SequenceClassifier, dict]:
    path = existing_file(path, "a checkpoint file", CheckpointError)
    try:
        _sniff(path)
        _check_archive(path)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read it ({e.strerror or type(e).__name__})") from None
    config, state, masks, meta = _check_payload(path, _torch_load(path))
    model = SequenceClassifier(config)  # sizes match tensors already in memory: no surprise allocation
    model.load_state_dict(state, strict=True)
    model.set_masks(masks)
    model.eval()
    return model, dict(meta)


def load(path: str | os.PathLike) -> SequenceClassifier:
    return load_with_meta(path)[0]

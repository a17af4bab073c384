"""One-file checkpoints: config, weights, masks and metadata.

The file is a ``torch.save`` archive of plain tensors and JSON-able values, read back with
``weights_only=True`` so that a foreign pickle is never executed. It is serialised in memory and
written atomically, so the same model gives the same bytes whatever the output's name.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch

from .errors import CheckpointError, EdgepruneError, first_line
from .fileio import check_header, existing_file, write_bytes_atomic
from .models import ModelSpec, SequenceClassifier

FORMAT = "edgeprune.checkpoint"
VERSION = 2  # 2: the config is a chain of stages (ModelSpec); 1: recurrent layers + head
READS = (1, 2)


def save(model: SequenceClassifier, path: str | os.PathLike, meta: dict | None = None) -> Path:
    if not isinstance(model, SequenceClassifier):
        raise CheckpointError(
            f"can only save a SequenceClassifier, got {type(model).__name__} (adopt it with edgeprune.models.from_torch)"
        )
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "masks": {k: v.cpu() for k, v in model.masks().items()},
        "meta": dict(meta or {}),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return write_bytes_atomic(path, buf.getvalue())


def load_with_meta(path: str | os.PathLike) -> tuple[SequenceClassifier, dict]:
    path = existing_file(path, "a checkpoint file", CheckpointError)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for foreign or damaged files
        raise CheckpointError(f"{path}: not a readable edgeprune checkpoint ({first_line(e, 160)})") from None
    check_header(payload, path, FORMAT, READS, "an edgeprune checkpoint", "checkpoint", CheckpointError)
    try:
        config = ModelSpec.from_dict(payload["config"])
        model = SequenceClassifier(config)
        model.load_state_dict(payload["state"], strict=True)
        model.set_masks(payload.get("masks", {}))
    except EdgepruneError as e:
        raise CheckpointError(f"{path}: {e}") from None
    except (KeyError, RuntimeError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: damaged checkpoint ({first_line(e, 160)})") from None
    model.eval()
    return model, dict(payload.get("meta", {}))


def load(path: str | os.PathLike) -> SequenceClassifier:
    return load_with_meta(path)[0]

"""Valid inputs the fuzz tests mutate: a masked checkpoint, its IR directory and ONNX file, an .npz dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgeprune import checkpoint, frontend, ir
from edgeprune.models import ModelConfig, SequenceClassifier


@pytest.fixture(scope="session")
def seeds(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz-seeds")
    torch.manual_seed(0)
    model = SequenceClassifier(ModelConfig("lstm", 5, (6,), 3)).eval()
    model.set_masks({"layers.0.weight_hh": torch.rand(24, 6) > 0.5})
    meta = {"dataset": "digits", "sequence_length": 7, "accuracy": 0.5}
    ckpt = checkpoint.save(model, root / "m.pt", meta)
    ir_dir = ir.save(frontend.lower(model, {"sequence_length": 7}), root / "ir")
    onnx_path = None
    try:
        from edgeprune.compiler import compile_source, load_source

        source = load_source(ckpt)
        X = np.random.default_rng(0).random((4, 7, 5), dtype=np.float32)
        compile_source(source, ["onnx"], root / "onnx", X_verify=X)
        onnx_path = root / "onnx" / "model.onnx"
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    data = {
        "X": rng.random((40, 7, 5), dtype=np.float32),
        "y": np.arange(40) % 3,
        "X_test": rng.random((6, 7, 5), dtype=np.float32),
        "y_test": np.arange(6) % 3,
    }
    return Seeds({"ckpt": ckpt, "ir": ir_dir, "onnx": onnx_path, "data": data})


class Seeds(dict):
    def __repr__(self) -> str:  # Hypothesis prints the fixtures of a failing example: keep it short
        return "seeds"

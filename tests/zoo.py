"""The model zoo of IR v2: one small model per deployed shape, with fixed random weights.

Each entry is (spec text, input features, output mode, task); ``build`` makes the torch model with
random weights, random values in every normalisation/LayerNorm vector, and (optionally) random
masks at ``sparsity`` on every matrix, so tests compare all stages against torch.
"""

from __future__ import annotations

import numpy as np
import torch

from edgeprune import modelspec
from edgeprune.models import SequenceModel

ZOO = {
    "kws": ("dense:32:relu,gru:32,dense:16:relu,dense:12", 40, "last", "classify"),
    "conv": ("conv:16:k3:d2:relu,gru:24,dense:5", 6, "last", "classify"),
    "labelling": ("lstm:24,dense:6", 5, "every", "classify"),
    "denoiser": ("dense:24:tanh,gru:24,gru:24,dense:9:sigmoid", 9, "every", "regress"),
    "layernorm": ("lstm:24,layernorm,dense:5", 7, "last", "classify"),
    "softmax": ("gru:24,dense:5:softmax", 7, "last", "classify"),
    "meanpool": ("gru:24,pool:mean,dense:5", 7, "last", "classify"),
    "maxpool": ("conv:8:k2,rnn:16,pool:max,dense:4", 3, "last", "classify"),
    "gru-nobias": ("gru:24:nobias,dense:5", 7, "last", "classify"),
    "relu-rnn": ("rnn:24:relu,dense:5", 7, "last", "classify"),
    "lstm-feedback": ("lstm:24:fb,lstm:16,dense:5", 7, "last", "classify"),
    "normalize": ("normalize,lstm:16,dense:3", 4, "last", "classify"),
    "feedback-every": ("dense:8:tanh,gru:16:fb,lstm:12,dense:4", 5, "every", "classify"),
}


def spec(name: str) -> modelspec.ModelSpec:
    text, features, output, task = ZOO[name]
    return modelspec.parse(text, features, output=output, task=task)


def build(name: str, seed: int = 0, sparsity: float = 0.0) -> SequenceModel:
    torch.manual_seed(seed)
    model = SequenceModel(spec(name)).eval()
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, module.weight.shape).astype(np.float32)))
                module.bias.copy_(torch.from_numpy(rng.normal(0, 0.3, module.bias.shape).astype(np.float32)))
            if hasattr(module, "scale") and hasattr(module, "shift"):
                module.scale.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, module.scale.shape).astype(np.float32)))
                module.shift.copy_(torch.from_numpy(rng.normal(0, 1.0, module.shift.shape).astype(np.float32)))
    if sparsity:
        model.set_masks(
            {n: torch.from_numpy(rng.random(tuple(w.shape)) >= sparsity) for n, w in model.prunable().items()}
        )
    return model


def inputs(name: str, n: int = 8, steps: int = 9, seed: int = 1) -> np.ndarray:
    features = ZOO[name][1]
    return np.random.default_rng(seed).normal(0, 1, (n, steps, features)).astype(np.float32)

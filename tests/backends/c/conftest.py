"""Helpers for the C target's tests: resolved options, emit + build into a folder, torch logits."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeprune.backends import get
from edgeprune.options import resolve

BACKEND = get("c")
needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) on this machine")


def c_options(**given) -> dict:
    return resolve(BACKEND.options, given, "target c")


def build(model_ir, directory: Path, **given):
    """Emit and build ``model_ir``; returns (artifact, options)."""
    options = c_options(**given)
    directory.mkdir(parents=True, exist_ok=True)
    [artifact] = BACKEND.emit(model_ir, directory, options)
    BACKEND.build(artifact, directory, options)
    return artifact, options


def torch_logits(model, X: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(X)).numpy()


def random_ir(
    cells=("lstm", "gru", "rnn"), hidden=(7, 9, 6), feedback=True, density=0.5, input_size=5, classes=4, seed=0
):
    """A valid random IR, any mix of cells per layer (beyond what the torch models build)."""
    from edgeprune import ir

    rng = np.random.default_rng(seed)
    layers, inp = [], input_size
    for l, (cell, H) in enumerate(zip(cells, hidden)):
        fb = hidden[l + 1] if feedback and l + 1 < len(hidden) else 0
        rows, cols = ir.IR_GATES[cell] * H, inp + H + fb
        keep = rng.random((rows, cols)) < density
        if cell == "gru":  # n_x never reads the state, n_h reads only the state
            keep[2 * H : 3 * H, inp : inp + H] = False
            keep[3 * H :, :inp] = False
            keep[3 * H :, inp + H :] = False
        weight = ir.CSR.from_dense(rng.normal(scale=0.5, size=(rows, cols)).astype(np.float32), keep)
        layers.append(ir.Layer(cell, inp, H, fb, weight, rng.normal(scale=0.1, size=rows).astype(np.float32)))
        inp = H
    head = ir.Head(
        ir.CSR.from_dense(rng.normal(size=(classes, inp)).astype(np.float32)),
        rng.normal(size=classes).astype(np.float32),
    )
    return ir.Model(input_size, [*layers, head]).validate()

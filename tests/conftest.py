"""Shared fixtures: tiny models for every cell/layout, and a CLI runner."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from edgeprune.cli import main
from edgeprune.models import ModelConfig, SequenceClassifier

CELLS = ("rnn", "lstm", "gru")
# (hidden sizes, feedback): 1 layer, 2 layers, 2 layers with top-down feedback
LAYOUTS = (((12,), False), ((12, 9), False), ((12, 9), True))
CONFIG_CASES = [
    pytest.param(c, h, f, id=f"{c}-{'x'.join(map(str, h))}{'-fb' if f else ''}")
    for c, (h, f) in itertools.product(CELLS, LAYOUTS)
]


def make_model(cell="lstm", hidden=(12,), feedback=False, input_size=5, classes=4, seed=0) -> SequenceClassifier:
    torch.manual_seed(seed)
    return SequenceClassifier(ModelConfig(cell, input_size, hidden, classes, feedback)).eval()


@pytest.fixture
def inputs():
    return np.random.default_rng(1).random((24, 7, 5), dtype=np.float32)


class CliResult:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err

    @property
    def err_lines(self):
        return [l for l in self.err.splitlines() if l.strip()]


@pytest.fixture
def run_cli(capsys):
    """Run the edgeprune CLI in-process; returns exit code, stdout and stderr."""

    def run(*args):
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


@pytest.fixture(scope="session")
def digits_checkpoint(tmp_path_factory):
    """A small LSTM trained briefly on digits (shared by the CLI tests)."""
    from edgeprune import checkpoint, data
    from edgeprune.train import seed_everything, train

    ds = data.load("digits")
    seed_everything(0)
    model = SequenceClassifier(ModelConfig("lstm", ds.features, (16,), ds.num_classes))
    result = train(model, ds, epochs=3, lr=1e-2, progress=False)
    path = tmp_path_factory.mktemp("ckpt") / "lstm16.pt"
    checkpoint.save(
        model,
        path,
        {"dataset": "digits", "sequence_length": ds.steps, "accuracy": result.test_accuracy, "training": {"lr": 1e-2}},
    )
    return path

"""Fixtures for sweep tests: a grid on the shared digits LSTM, and helpers to read a RUN_DIR."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeprune.fileio import dumps_json
from edgeprune.sweep.spec import SweepSpec

PLUGIN = "tests.sweep.explode_method"


def small_spec(checkpoint, **kw) -> SweepSpec:
    """2 methods x 2 sparsities x 2 seeds, 1 fine-tune epoch, compiled for the C target."""
    base = dict(
        methods=["magnitude", "expander"],
        sparsities=[0.5, 0.9],
        seeds=[0, 1],
        finetune_epochs=1,
        targets=["c"],
        accuracy_samples=120,
    )
    base.update(kw)
    return SweepSpec(str(checkpoint), **base)


def cell_files(run_dir) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((Path(run_dir) / "cells").glob("*.json"))}


def without_timing(record: dict) -> str:
    """The part of a cell record that must not depend on where or when it ran, as bytes."""
    return dumps_json({k: v for k, v in record.items() if k != "timing"})


@pytest.fixture(scope="session")
def serial_run(digits_checkpoint, tmp_path_factory):
    """The small grid run by the serial fallback (shared: the Ray test compares against it)."""
    from edgeprune.sweep.run import run_sweep

    run_dir = tmp_path_factory.mktemp("sweep") / "serial"
    outcome = run_sweep(small_spec(digits_checkpoint), run_dir, cluster="serial")
    return run_dir, outcome

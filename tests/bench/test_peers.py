"""Peer runtimes in bench (ExecuTorch, litert-torch): the same model, stepped in another on-device runtime,
against the torch baseline's own streaming on every zoo shape, and through `edgeprune bench`.

The peers are heavy packages with their own pins, usually in another venv (EDGEPRUNE_PEERS_PYTHON; .ci/run
makes one); where a peer does not import, its tests are skipped with that reason, as bench skips it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from edgeprune import checkpoint
from edgeprune.bench import BenchError, bench
from edgeprune.bench.devices import parse
from edgeprune.bench.peers import PEERS, PYTHON_VARIABLE, peers_python, unavailable
from edgeprune.bench.peers import parse as parse_peers

from .. import zoo
from .conftest import quick_settings

ROOT = Path(__file__).resolve().parents[2]
SHAPES = ["kws", "conv", "labelling", "layernorm", "meanpool", "maxpool", "lstm-feedback", "normalize"]

# runs in the peers' interpreter: each zoo checkpoint stepped by the peer and by the torch baseline
COMPARE = """
import json, sys
import numpy as np
from edgeprune.bench.peers import PeerRunner
from edgeprune.bench.torch_runtime import TorchDenseRunner
from tests import zoo
peer, jobs = sys.argv[1], json.loads(sys.argv[2])
out = {}
for name, path in jobs.items():
    X = zoo.inputs(name, n=3, steps=6)
    mine = PeerRunner(path, peer, 1).stream(X, every=True)
    theirs = TorchDenseRunner(path).stream(X, every=True)
    out[name] = [float(np.max(np.abs(mine - theirs))), float(np.max(np.abs(theirs))), list(mine.shape)]
print(json.dumps(out))
"""


def _need(peer: str) -> None:
    reason = unavailable(peer, peers_python())
    if reason:
        pytest.skip(f"{peer}: {reason}")


@pytest.mark.parametrize("peer", sorted(PEERS))
def test_a_peer_steps_every_stage_kind_like_the_torch_baseline(peer, tmp_path):
    _need(peer)
    jobs = {}
    for name in SHAPES:
        model = zoo.build(name, sparsity=0.5)
        jobs[name] = str(checkpoint.save(model, tmp_path / f"{name}.pt", {}))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [peers_python(), "-c", COMPARE, peer, json.dumps(jobs)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for name in SHAPES:
        err, scale, shape = result[name]
        assert shape[:2] == [3, 6], name
        assert scale > 0.01 and err <= 2e-5, (name, err)


def test_bench_measures_the_peers_beside_torch_and_checks_their_outputs(pruned_checkpoint, tmp_path):
    for peer in PEERS:
        _need(peer)
    doc = bench(
        str(pruned_checkpoint),
        parse("local"),
        quick_settings(isolate=True),
        runtimes=["torch"],
        peers=parse_peers(["all"]),
        json_path=str(tmp_path / "r.json"),
    )
    rows = {r["id"]: r for r in doc["runtimes"]}
    torch_row = rows["torch"]
    for peer in PEERS:
        row = rows[peer]
        assert row["status"] == "ok" and row["runtime"] == PEERS[peer].runtime
        assert row["latency"]["step"]["p50"] > 0
        # the same dense function: the peer's accuracy is torch's, its outputs within fp32 noise of the model's
        assert row["accuracy"]["step"]["accuracy"] == torch_row["accuracy"]["step"]["accuracy"]
        assert row["accuracy"]["step"]["agreement_vs_reference"] == 1.0
        assert row["accuracy"]["step"]["max_abs_vs_reference"] <= 2e-5


def test_a_missing_peer_is_skipped_with_the_reason(pruned_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv(PYTHON_VARIABLE, str(tmp_path / "no-python"))
    unavailable.cache_clear()
    doc = bench(str(pruned_checkpoint), parse("local"), quick_settings(), runtimes=["torch"], peers=["executorch"])
    skipped = {s["id"]: s["reason"] for s in doc["skipped"]}
    assert skipped["executorch"] == f"{PYTHON_VARIABLE}={tmp_path / 'no-python'}: no such interpreter"
    assert [r["id"] for r in doc["runtimes"]] == ["torch"]


def test_a_peer_that_does_not_import_says_how_to_install_it(tmp_path):
    empty = tmp_path / "python"
    empty.write_text("#!/bin/sh\nexit 1\n")
    empty.chmod(0o755)
    reason = unavailable("litert-torch", str(empty))
    assert reason.startswith(f"litert_torch does not import in {empty} (pip install litert-torch==")


def test_unknown_peers_are_refused_in_one_line():
    expected = r"^--peers: unknown peer 'tvm' \(choose from executorch, litert-torch, all\)$"
    with pytest.raises(BenchError, match=expected):
        parse_peers(["executorch", "tvm"])
    assert parse_peers(["all", "executorch"]) == list(PEERS)

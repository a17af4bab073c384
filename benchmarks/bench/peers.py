"""edgeprune against the on-device runtimes a developer would pick instead: ExecuTorch (XNNPACK delegate)
and LiteRT through the official PyTorch converter (litert-torch), beside torch, ONNX Runtime and LiteRT
from edgeprune's own exports and edgeprune's C — streaming, one step per call, 1 thread, batch 1.

    EDGEPRUNE_PEERS_PYTHON=/path/to/venv/bin/python python benchmarks/bench/peers.py [--hidden 128,256]

The peers run the dense model (neither has sparse kernels for these ops); edgeprune runs each mask.
Models are freshly initialised LSTMs on MNIST rows (28 inputs, 10 classes): latency depends on the
masks' structure, not on what the weights learned. Every runtime is measured by `bench`'s harness in
its own worker process, in one run per model, so the ratios in a row are comparable.
Writes benchmarks/results/peers.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import markdown_table, write_results  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", default="128,256")
    p.add_argument("--sparsities", default="0,0.9")
    p.add_argument("--time-budget", type=float, default=2.0, help="seconds per runtime")
    return p.parse_args(argv)


def main(argv=None) -> int:
    from edgeprune import checkpoint
    from edgeprune.bench import bench
    from edgeprune.bench.devices import parse
    from edgeprune.bench.peers import PEERS
    from edgeprune.bench.settings import BenchSettings
    from edgeprune.bench.stats import Budget
    from edgeprune.models import ModelConfig, SequenceClassifier
    from edgeprune.prune import prune_model
    from edgeprune.train import seed_everything

    args = parse_args(argv)
    settings = BenchSettings(
        budget=Budget(min_reps=200, max_reps=20000, time_s=args.time_budget, rel_ci=0.02),
        threads=1,
        isolate=True,
        latency_sequences=8,
        accuracy_samples=64,
        timeout_s=1800,
    )
    runtimes = ["torch", "c", "onnx", "tflite"]
    rows, cells = [], []
    with tempfile.TemporaryDirectory(prefix="edgeprune-peers-") as work:
        for hidden in (int(h) for h in args.hidden.split(",")):
            seed_everything(0)
            dense = SequenceClassifier(ModelConfig("lstm", 28, (hidden,), 10))
            for sparsity in (float(s) for s in args.sparsities.split(",")):
                model = prune_model(dense, "magnitude", sparsity).model if sparsity else dense
                meta = {"dataset": "mnist5k", "sequence_length": 28}
                path = checkpoint.save(model, Path(work) / f"lstm{hidden}-s{sparsity}.pt", meta)
                print(f"H={hidden} sparsity {sparsity}", flush=True)
                doc = bench(
                    str(path),
                    parse("local"),
                    settings,
                    runtimes=runtimes,
                    peers=list(PEERS),
                    variants={"c": [{"kernel": "auto"}], "onnx": [{}], "tflite": [{"tflite_weights": "sparse"}]},
                    log=lambda m: None,
                )
                steps = {
                    r["id"]: r["latency"]["step"]["p50"]
                    for r in doc["runtimes"]
                    if r["status"] == "ok" and "step" in r.get("latency", {})
                }
                skipped = {s["id"]: s["reason"] for s in doc["skipped"]}
                cells.append({"hidden": hidden, "sparsity": sparsity, "step_p50_ns": steps, "skipped": skipped})
                c_ns = next((v for k, v in steps.items() if k.startswith("c")), None)
                for rid, ns in sorted(steps.items(), key=lambda kv: kv[1]):
                    ratio = f"{ns / c_ns:.1f}x" if c_ns else "-"
                    rows.append([hidden, f"{sparsity:.0%}", rid, f"{ns / 1000:.1f}", ratio])
    columns = ["H", "sparsity", "runtime (step, Python call)", "µs/step p50", "vs edgeprune C"]
    md = (
        "Streaming LSTM step, one step per Python call, 1 thread, batch 1; each row set measured in one "
        "`bench` run (every runtime in its own worker process). The peers (executorch, litert-torch) run the "
        "dense model; `c` is edgeprune's C with `--kernel auto`. Python call figures include each runtime's "
        "own call overhead; `(native)` is edgeprune's C benchmark program, the same step without Python.\n\n"
        + markdown_table(columns, rows)
    )
    write_results("peers", {"cells": cells, "runtimes": runtimes, "peers": list(PEERS)}, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Per-target max |error| of every IR v2 zoo shape (tests/zoo.py) against torch, through ``compile``.

Each zoo model (random weights, random masks at 85% on every matrix) is compiled for every target
available here; every artifact is verified against the torch model on the same inputs, whole
sequences and one step per call. A target that cannot compile a shape exactly declines it in one
line; the table says so. Writes benchmarks/results/zoo_errors.{md,json}.

    python benchmarks/ir_v2/zoo_errors.py [--targets ir,onnx,c,tflite] [--samples 32] [--steps 9]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.common import markdown_table, write_results  # noqa: E402
from edgeprune import backends, frontend  # noqa: E402
from edgeprune.compiler import Source, compile_source  # noqa: E402
from edgeprune.errors import EdgepruneError  # noqa: E402
from edgeprune.train import predict_logits  # noqa: E402
from tests import zoo  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="ir,onnx,c,tflite")
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--steps", type=int, default=9)
    ap.add_argument("--sparsity", type=float, default=0.85)
    args = ap.parse_args()
    targets = [t for t in args.targets.split(",") if backends.get(t).unavailable() is None]
    rows, cells = [], []
    for name in zoo.ZOO:
        model = zoo.build(name, sparsity=args.sparsity)
        graph = frontend.lower(model, {"sequence_length": args.steps})
        X = zoo.inputs(name, n=args.samples, steps=args.steps)
        row = [name, graph.describe()]
        for target in targets:
            source = Source(name, graph, lambda X, m=model: predict_logits(m, X), "torch")
            reason = backends.get(target).declines(graph)
            if reason:
                row.append("declined")
                cells.append({"model": name, "target": target, "declined": reason})
                continue
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    report = compile_source(source, [target], Path(tmp) / "out", X_verify=X)
                except EdgepruneError as e:
                    row.append("FAILED")
                    cells.append({"model": name, "target": target, "error": str(e)})
                    continue
            worst = max(r.max_abs_error for r in report.results)
            row.append(f"{worst:.1e}")
            cells.append({"model": name, "target": target, "results": [r.to_dict() for r in report.results]})
        rows.append(row)
        print(" | ".join(row), flush=True)
    load = os.getloadavg()
    text = (
        f"IR v2 zoo (tests/zoo.py: random weights, {args.sparsity:.0%} of every matrix pruned), "
        f"{args.samples} random sequences of {args.steps} steps; the largest |error| against torch over "
        f"every artifact of the target (whole sequences and one step per call). Load average "
        f"{load[0]:.1f}.\n\n" + markdown_table(["model", "chain", *targets], rows)
    )
    write_results("zoo_errors", {"targets": targets, "cells": cells, "load_average": load}, text)


if __name__ == "__main__":
    main()

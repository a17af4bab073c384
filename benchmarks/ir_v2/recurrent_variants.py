"""Case x target -> max |error| for ONNX's recurrent conformance cases and our own cell-variant cases.

The 18 LSTM/GRU/RNN cases of the installed onnx (tests/recurrent_cases.py: weights folded into
initializers, the last output kept) and our own cases built with onnx.helper (clip, input_forget,
peepholes, every activation, GRU linear_before_reset 0/1) are imported and compiled to every target;
each artifact is run on the case's input, whole sequences and one step per call, and compared with
the case's expected output (ONNX's own for the conformance cases, onnxruntime's run of our file for
ours). Reverse/bidirectional cases are refused by the importer; the table gives the refusal.
Writes benchmarks/results/recurrent_variants.{md,json}.

    python benchmarks/ir_v2/recurrent_variants.py [--targets ir,onnx,c,tflite] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

from benchmarks.common import markdown_table, write_results  # noqa: E402
from edgeprune import backends  # noqa: E402
from edgeprune.compiler import Source, compile_source  # noqa: E402
from edgeprune.errors import EdgepruneError  # noqa: E402
from edgeprune.frontend.onnx import import_onnx  # noqa: E402
from tests import recurrent_cases as rc  # noqa: E402


def _cases(tmp: Path, only: list[str]):
    """(name, kind, file, X, expected) for every case, conformance first."""
    conformance = rc.conformance_cases()
    for name in sorted(conformance):
        if not only or name in only:
            path = tmp / f"{name}.onnx"
            X, want = rc.fold(conformance[name], path)
            yield name, "onnx conformance", path, X, want
    for name in rc.OWN:
        if not only or name in only:
            path = tmp / f"{name}.onnx"
            X, want = rc.build_own(name, path)
            yield name, "own (onnxruntime)", path, X, want


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="ir,onnx,c,tflite")
    ap.add_argument("--only", nargs="*", default=[])
    args = ap.parse_args()
    targets = [t for t in args.targets.split(",") if backends.get(t).unavailable() is None]
    rows, cells = [], []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for name, kind, path, X, want in _cases(tmp, args.only):
            try:
                imported = import_onnx(path)
            except EdgepruneError as e:
                rows.append([name, kind, f"refused: {str(e).split(': ', 2)[-1]}", "-"] + ["-"] * len(targets))
                cells.append({"case": name, "refused": str(e)})
                print(" | ".join(rows[-1]), flush=True)
                continue
            layer = imported.model.stages[-1]
            row = [name, kind, layer.describe(), f"{float(np.abs(want).max()):.3g}"]
            # the case's own expected output is the reference (X is exactly the case's input)
            source = Source(str(path), imported.model, lambda X, w=want: w, kind)
            for target in targets:
                try:
                    report = compile_source(source, [target], tmp / f"{name}-{target}", X_verify=X)
                except EdgepruneError as e:
                    row.append("FAILED")
                    cells.append({"case": name, "target": target, "error": str(e)})
                    continue
                worst = max(r.max_abs_error for r in report.results)
                scale = float(np.abs(want).max())
                row.append(f"{worst:.1e}")
                cells.append(
                    {
                        "case": name,
                        "target": target,
                        "max_abs_error": worst,
                        "output_max_abs": scale,
                        "results": [r.to_dict() for r in report.results],
                    }
                )
            rows.append(row)
            print(" | ".join(row), flush=True)
    load = os.getloadavg()
    text = (
        "ONNX's recurrent conformance cases (installed onnx package) and our own cell-variant cases "
        "(tests/recurrent_cases.py): the largest |error| against the case's expected output over every "
        "artifact of the target (whole sequences and, for streaming artifacts, one step per call; C fp32, "
        "TFLite f32); 'largest output' is the largest |expected output| (a ReLU-like gate lets the state "
        f"grow, and the error with it). Load average {load[0]:.1f}.\n\n"
        + markdown_table(["case", "kind", "IR stage", "largest output", *targets], rows)
    )
    write_results("recurrent_variants", {"targets": targets, "cells": cells, "load_average": load}, text)


if __name__ == "__main__":
    main()

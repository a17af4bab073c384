"""The foreign corpus (tests/corpus.py), model x runtime -> max |error| against the ORIGINAL framework.

Every corpus model (torch dynamo / TorchScript exports, onnx.helper graphs with omitted optional inputs,
Keras through tf2onnx, torch modules adopted by ``from_torch(module, example_input)``) is compiled for
every target available here; every artifact is run in its runtime, whole sequences and one step per call,
and compared with the outputs of the framework that made the model (torch, Keras, or onnxruntime for the
hand-built graphs). A cell is the largest error over its artifacts and modes. Models the importer refuses
are listed with the one-line reason. Writes benchmarks/results/import_corpus.{md,json}.

    EDGEPRUNE_TFLITE_RUNTIME_PYTHON=/work/venvs/tflite-runtime/bin/python \\
        python benchmarks/ir_v2/import_corpus.py [--targets ir,onnx,c,tflite]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.common import markdown_table, write_results  # noqa: E402
from edgeprune import backends  # noqa: E402
from edgeprune.compiler import load_source  # noqa: E402
from edgeprune.errors import EdgepruneError  # noqa: E402
from tests import corpus  # noqa: E402


def column(result) -> str:
    """The runtime a result ran in: the target, and for tflite which interpreter."""
    target = result.artifact.split("/")[0]
    if target != "tflite":
        return target
    return "tflite-micro" if result.runtime.startswith("tflite-micro") else result.runtime.split(" ")[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default=",".join(corpus.TARGETS))
    args = ap.parse_args()
    targets = [t for t in args.targets.split(",") if backends.get(t).unavailable() is None]
    jobs = [
        (name, origin, lambda out, p=path: corpus.compile_onnx_against_original(p, out, targets))
        for name, (path, origin) in corpus.onnx_files().items()
    ]
    jobs += [
        (name, "torch module, from_torch", lambda out, b=build: corpus.compile_module_against_torch(b(), out, targets))
        for name, build in corpus.from_torch_modules().items()
    ]
    cli = {}  # every ONNX corpus file through the CLI with no flag but the target: ok, or its one error line
    for name, (path, _) in corpus.onnx_files().items():
        with tempfile.TemporaryDirectory() as tmp:
            argv = [sys.executable, "-m", "edgeprune", "compile", str(path), "--target", "all", "-o", f"{tmp}/out"]
            done = subprocess.run(argv, capture_output=True, text=True)
        cli[name] = "ok" if done.returncode == 0 else (done.stderr.strip().splitlines() or ["failed"])[-1]
    cells, columns = {}, []
    for name, origin, run in jobs:
        with tempfile.TemporaryDirectory() as tmp:
            report = run(Path(tmp) / "out")
        errs: dict[str, float] = {}
        for r in report.results:
            c = column(r)
            errs[c] = max(errs.get(c, 0.0), float(r.max_abs_error))
            columns += [c] if c not in columns else []
        cells[name] = {"origin": origin, "reference": report.reference, "max_abs_error": errs, "passed": report.passed}
        print(name, {k: f"{v:.2e}" for k, v in errs.items()}, flush=True)
    refused = {}
    for name in corpus.KERAS_REFUSED:
        try:
            load_source(corpus.FIXTURES / "keras" / f"{name}.onnx")
        except EdgepruneError as e:
            refused[f"keras_{name}"] = str(e)
    rows = [
        [n, c["origin"], c["reference"], *[c["max_abs_error"].get(k) for k in columns], cli.get(n, "(no file)")]
        for n, c in cells.items()
    ]
    load = os.getloadavg()
    text = (
        "# Foreign corpus: max |error| against the original framework, per runtime\n\n"
        "Every artifact of every target, whole sequences and step by step, against the outputs of the framework "
        "that made the model (saved next to each fixture; from_torch modules: the module itself). tflite columns: "
        "the LiteRT interpreter (ai-edge-litert), tflite-runtime (a worker in its own venv) and TFLite Micro. "
        "The last column: `edgeprune compile model.onnx --target all -o out` with no other flag (verified "
        f"against onnxruntime running the file on random sequences). Load average {load[0]:.1f}.\n\n"
        + markdown_table(["model", "made by", "compared with", *columns, "`compile --target all`, no flag"], rows)
        + ("\n\nRefused (one line each):\n\n" if refused else "\n\nNo corpus model is refused.\n")
        + "\n".join(f"- `{n}`: {why}" for n, why in refused.items())
    )
    write_results(
        "import_corpus",
        {
            "targets": targets,
            "columns": columns,
            "cells": cells,
            "cli_no_flags": cli,
            "refused": refused,
            "tflite_runtime_python": os.environ.get("EDGEPRUNE_TFLITE_RUNTIME_PYTHON"),
            "load_average": load,
        },
        text,
    )


if __name__ == "__main__":
    main()

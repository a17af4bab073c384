"""LiteRT step latency of an H=256 LSTM: dense FC vs sparse FC (CSR / 1x4 blocks) vs DENSIFY,
with XNNPACK on, builtin kernels without delegate, and the reference kernels; one thread, batch 1.

Two models per variant: the whole step (model_step.tflite: FC + cell ops + head) and the layer's
fully connected layer alone (the fused [4H, I+H] = [1024, 284] matrix). Wall-clock figures are
medians over interleaved rounds (every variant is timed in every round, so a load change hits all
of them); on a shared machine they are noisy - ``--callgrind`` adds instruction counts per invoke
(valgrind, load-independent) with XNNPACK on, and how many of them the sparse FC spends re-checking its
index arrays on every invoke (``VerifySparsity``).

    python benchmarks/exports/tflite_latency.py                 # ~3 min
    python benchmarks/exports/tflite_latency.py --callgrind     # + a few minutes under valgrind
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[2])]
import numpy as np  # noqa: E402

HIDDEN, INPUTS, CLASSES = 256, 28, 10  # row-by-row MNIST shape
RESOLVERS = ("xnnpack", "builtin", "builtin_ref")


def count_invokes(paths: list[str], n: int) -> None:
    """Child process for --callgrind (no torch import): ``n`` + 1 invokes of each file, XNNPACK on.

    Callgrind dumps a profile part after every AllocateTensors, so part k holds file k's invokes.
    """
    from edgeprune.backends.tflite import LiteRTRunner

    for path in paths:
        runner = LiteRTRunner(path, "xnnpack")  # allocates: starts a new part
        for d in runner.interpreter.get_input_details():
            runner.interpreter.set_tensor(d["index"], np.full(d["shape"], 0.5, np.float32))
        for _ in range(n + 1):
            runner.interpreter.invoke()


def callgrind_instructions(paths: list[Path], n: int = 200) -> list[dict]:
    """Per file: instructions per invoke inside the interpreter's Invoke, and the part of them the
    sparse FC spends re-validating its index arrays on every invoke (``VerifySparsity``)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cg.out"
        cmd = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            "--toggle-collect=tflite::interpreter_wrapper::InterpreterWrapper::Invoke*",
            "--dump-after=tflite::interpreter_wrapper::InterpreterWrapper::AllocateTensors*",
            sys.executable,
            __file__,
            "--_count",
            str(n),
            *map(str, paths),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"valgrind failed: {proc.stderr[-500:]}")
        parts = sorted(
            Path(tmp).glob("cg.out*"), key=lambda p: int(p.name.rsplit(".", 1)[-1]) if p.name[-1].isdigit() else 1 << 30
        )
        results = []
        for part in parts[1:]:  # part 1 ends at the first allocation: nothing invoked yet
            annotated = subprocess.run(
                ["callgrind_annotate", "--inclusive=yes", str(part)], capture_output=True, text=True
            ).stdout
            total = re.search(r"^([\d,]+) \([^)]*\)\s+PROGRAM TOTALS", annotated, re.M)
            verify = [
                int(m.group(1).replace(",", ""))
                for m in re.finditer(r"^\s*([\d,]+) \([^)]*\)\s+\S*VerifySparsity\(", annotated, re.M)
            ]
            results.append(
                {
                    "total": int(total.group(1).replace(",", "")) / (n + 1) if total else 0.0,
                    "verify_sparsity": max(verify, default=0) / (n + 1),
                }
            )
        if len(results) != len(paths):
            raise RuntimeError(f"expected {len(paths)} callgrind parts, got {len(results)}")
        return results


def block_mask_model(base, sparsity: float, seed: int = 0):
    """``base`` with random masks made of whole 1x4 blocks (a structured-pruning pattern)."""
    import copy

    import torch

    model = copy.deepcopy(base)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for name in layer.weight_names():
            rows, cols = getattr(layer, name).shape
            keep = np.repeat(rng.random((rows, cols // 4)) >= sparsity, 4, axis=1)
            layer.set_mask(name, torch.from_numpy(keep).float())
    return model


def timed(interpreters: dict, rounds: int, reps: dict) -> dict:
    """Median over rounds of the mean invoke time (us); every variant is timed once per round."""
    samples = {k: [] for k in interpreters}
    for _ in range(rounds):
        for key, it in interpreters.items():
            n = reps[key]
            t0 = time.perf_counter()
            for _ in range(n):
                it.invoke()
            samples[key].append((time.perf_counter() - t0) / n * 1e6)
    return {k: (float(np.median(v)), float(np.min(v))) for k, v in samples.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--reps", type=int, default=40, help="invokes per round (builtin_ref: a tenth)")
    parser.add_argument("--callgrind", action="store_true", help="also count instructions per invoke (valgrind)")
    parser.add_argument("--_count", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._count:
        count_invokes(args._count[1:], int(args._count[0]))
        return

    import torch
    from common import markdown_table, write_results

    from edgeprune import frontend, prune
    from edgeprune.backends import tflite as T
    from edgeprune.models import ModelConfig, SequenceClassifier

    torch.set_num_threads(1)
    torch.manual_seed(0)
    base = SequenceClassifier(ModelConfig("lstm", INPUTS, (HIDDEN,), CLASSES)).eval()
    masks = [
        ("unstructured", 0.0),
        ("unstructured", 0.5),
        ("unstructured", 0.9),
        ("unstructured", 0.95),
        ("1x4 blocks", 0.5),
        ("1x4 blocks", 0.9),
        ("1x4 blocks", 0.95),
    ]
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="tflite_latency."))
    variants = []  # (mask, sparsity, weights, model kind, path)
    for pattern, sparsity in masks:
        if pattern == "unstructured":
            model = prune.prune_model(base, "random", sparsity, seed=0).model if sparsity else base
        else:
            model = block_mask_model(base, sparsity)
        irm = frontend.lower(model, {"sequence_length": INPUTS})
        for mode in ("dense",) if sparsity == 0 else ("dense", "sparse", "densify"):
            for kind, data in (
                ("step", T.build_step_model(irm, "f32", mode)),
                ("fc", T.build_linear_model(irm.layers[0].weight, "f32", mode)),
            ):
                path = work / f"{pattern[:4]}-{sparsity}-{mode}-{kind}.tflite"
                path.write_bytes(data)
                variants.append((pattern, sparsity, mode, kind, path))

    runners, reps, info = {}, {}, {}
    for pattern, sparsity, mode, kind, path in variants:
        data = path.read_bytes()
        weight = T.read_metadata(data)["weights"]["layers.0.weight" if kind == "step" else "weight"]
        for resolver in RESOLVERS:
            key = (pattern, sparsity, mode, kind, resolver)
            runner = T.LiteRTRunner(path, resolver)
            it = runner.interpreter
            for d in it.get_input_details():
                it.set_tensor(d["index"], np.random.default_rng(0).random(d["shape"], dtype=np.float32))
            for _ in range(3):
                it.invoke()
            delegated = runner.delegated_weights()
            runners[key] = it
            reps[key] = max(2, args.reps // 10) if resolver == "builtin_ref" else args.reps
            fc_by = (
                "XNNPACK" if any(v for k, v in delegated.items() if k.startswith(("layers.0", "weight"))) else "builtin"
            )
            info[key] = {
                "encoding": weight["encoding"] + (" + DENSIFY" if weight.get("densify") else ""),
                "file_bytes": len(data),
                "weight_bytes": weight["bytes"],
                "fc_run_by": fc_by,
                "nnz": weight["nnz"],
            }
    print(f"timing {len(runners)} interpreters x {args.rounds} rounds ...", flush=True)
    times = timed(runners, args.rounds, reps)
    load_after = os.getloadavg()

    instructions = {}
    if args.callgrind:  # XNNPACK on only: what users get (a sparse FC runs the builtin kernel either way)
        if not shutil.which("valgrind"):
            raise SystemExit("--callgrind needs valgrind")
        print(f"counting instructions of {len(variants)} files under valgrind ...", flush=True)
        counted = callgrind_instructions([v[-1] for v in variants])
        instructions = {(p, s, m, k, "xnnpack"): c for (p, s, m, k, _), c in zip(variants, counted)}

    def table(kind: str) -> str:
        rows = []
        for pattern, sparsity, mode, k, _ in variants:
            if k != kind:
                continue
            first = info[(pattern, sparsity, mode, kind, "xnnpack")]
            row = [
                pattern,
                f"{sparsity:.0%}",
                mode,
                first["encoding"],
                first["weight_bytes"],
                first["file_bytes"],
                first["fc_run_by"],
            ]
            for resolver in RESOLVERS:
                med, best = times[(pattern, sparsity, mode, kind, resolver)]
                row.append(f"{med:.1f} ({best:.1f})")
            if instructions:
                counted = instructions[(pattern, sparsity, mode, kind, "xnnpack")]
                row += [f"{counted['total'] / 1e3:.0f}k", f"{counted['verify_sparsity'] / 1e3:.0f}k"]
            rows.append(row)
        columns = [
            "mask",
            "sparsity",
            "--tflite-weights",
            "stored as",
            "weight bytes",
            "file bytes",
            "FC run by (XNNPACK on)",
            "xnnpack us",
            "builtin us",
            "builtin_ref us",
        ]
        if instructions:
            columns += ["instructions/invoke (XNNPACK on)", "of which VerifySparsity"]
        return markdown_table(columns, rows)

    from importlib.metadata import version

    md = (
        f"LSTM H={HIDDEN}, {INPUTS} inputs, {CLASSES} classes, batch 1, one thread, ai-edge-litert "
        f"{version('ai-edge-litert')}. Times: median (best) microseconds per invoke over {args.rounds} interleaved "
        f"rounds. **Noisy**: measured on a shared 2-core machine (load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after); the instruction counts (valgrind callgrind, when present) do not depend on "
        "load.\n\n"
        f"## One step (model_step.tflite)\n\n{table('step')}\n\n"
        f"## The layer's FULLY_CONNECTED alone ([{4 * HIDDEN} x {INPUTS + HIDDEN}])\n\n{table('fc')}\n"
    )
    payload = {
        "hidden": HIDDEN,
        "inputs": INPUTS,
        "classes": CLASSES,
        "rounds": args.rounds,
        "reps": args.reps,
        "load_average": {"before": load_before, "after": load_after},
        "results": [
            {
                "mask": p,
                "sparsity": s,
                "weights": m,
                "model": k,
                "resolver": r,
                "median_us": times[(p, s, m, k, r)][0],
                "best_us": times[(p, s, m, k, r)][1],
                "instructions_per_invoke": instructions.get((p, s, m, k, r)),
                **info[(p, s, m, k, r)],
            }
            for (p, s, m, k, r) in times
        ],
    }
    _, md_path = write_results("tflite_latency", payload, md)
    print(md)
    print(f"wrote {md_path}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

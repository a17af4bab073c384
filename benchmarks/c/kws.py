"""The keyword-spotting shape (IR v2, issue 13) through the C target: host speed, Cortex-M4 size and instructions.

MFCC-like input of 40 features -> dense 64 relu -> GRU 64 -> dense 12 (``dense:64:relu,gru:64,dense:12``),
random init (the cost of a step depends on the pattern, not on the values), dense and pruned 90% by
magnitude over every matrix (head included), fp32 and int8, ``--kernel auto``:

* host µs per streaming step: edgeprune.bench's benchmark program (``bench/native/ep_bench_main.c``
  around the generated code, the artifact's own flags, ``-march=native`` included), every step call
  timed alone; the four builds are run in interleaved rounds and each figure is the fastest round's
  median call (and the fastest single call), so the ratios compare builds under the same load;
* Cortex-M4 (``--arch cortex-m4``, mps2-an386): flash (model code + tables + the runtime functions
  it calls) and RAM (the state struct + data) from ``compile``'s accounting, and guest instructions
  per step counted by QEMU's TCG plugin (``bench/native/epcount.c``, via ``edgeprune.bench``'s
  qemu-m4 device) around each ``model_step`` call — emulated instructions, not cycles.

Every build's outputs (from the same benchmark program) are checked against the float64 reference
(fp32) or the int8 simulation (``QuantizedExecutor``) before anything is reported.

    python benchmarks/c/kws.py                 # ~5 min on a loaded 2-core machine
    python benchmarks/c/kws.py --rounds 5 --reps 500
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np  # noqa: E402
from common import build_c, markdown_table, write_results  # noqa: E402

from edgeprune import frontend, ir, modelspec, prune  # noqa: E402
from edgeprune.backends import get  # noqa: E402
from edgeprune.bench.devices import parse as parse_device  # noqa: E402
from edgeprune.bench.devices.base import Job  # noqa: E402
from edgeprune.bench.programs import ProgramSettings, parse_program_output  # noqa: E402
from edgeprune.bench.targets.c import build_program  # noqa: E402
from edgeprune.bench.toolchains import normalize_arch  # noqa: E402
from edgeprune.passes import QuantizedExecutor, quantize  # noqa: E402

C = get("c")
SPEC, FEATURES, CLASSES, STEPS = "dense:64:relu,gru:64,dense:12", 40, 12, 49  # ~1 s of 20 ms MFCC frames
SPARSITIES = (0.0, 0.9)
DTYPES = ("f32", "int8")


def kws_model(sparsity: float, seed: int = 0) -> ir.Model:
    import torch

    from edgeprune.models import SequenceModel

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    model = SequenceModel(modelspec.parse(SPEC, FEATURES, CLASSES)).eval()
    if sparsity:
        model = prune.prune_model(model, "magnitude", sparsity, seed=seed, include_head=True).model
    return frontend.lower(model)


def build(graph: ir.Model, directory: Path, **given):
    return build_c(graph, directory, **given)


def expected_last(graph: ir.Model, dtype: str, X: np.ndarray) -> np.ndarray:
    executor = ir.ReferenceExecutor(graph) if dtype == "f32" else QuantizedExecutor(quantize(graph))
    return executor.run(X)


def check(outputs: dict, expected: np.ndarray, dtype: str, what: str) -> float:
    err = max(float(np.max(np.abs(np.asarray(v) - expected))) for v in outputs.values())
    if err > (2e-5 if dtype == "f32" else 1e-4):
        raise SystemExit(f"{what}: outputs differ from the reference by {err:.3g}")
    return err


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds of the host programs")
    ap.add_argument("--reps", type=int, default=2000, help="timed step calls per host run")
    ap.add_argument("--no-m4", action="store_true", help="skip the Cortex-M4 builds")
    ap.add_argument("--name", default="kws")
    args = ap.parse_args()
    X = np.random.default_rng(0).normal(0, 1, (2, STEPS, FEATURES)).astype(np.float32)
    load_before = os.getloadavg()
    host = normalize_arch(platform.machine())
    rows: dict[str, dict] = {}
    work = Path(tempfile.mkdtemp(prefix="edgeprune-kws-"))
    programs = {}
    try:
        for sparsity in SPARSITIES:
            graph = kws_model(sparsity)
            nnz, size = graph.nnz(True), sum(m.shape[0] * m.shape[1] for m in graph.matrices().values())
            for dtype in DTYPES:
                key = f"{sparsity:.0%}/{dtype}"
                d = work / f"host-{sparsity}-{dtype}"
                artifact = build(graph, d, dtype=dtype)
                info = artifact.info
                settings = ProgramSettings(warmup=STEPS, min_reps=args.reps, max_reps=args.reps, budget_ns=0)
                program = build_program(
                    d, info["prefix"], host, X, settings, d / "bench", shlex.split(info["cflags"]), name=key
                )
                programs[key] = (program, graph, dtype)
                rows[key] = {
                    "sparsity": sparsity,
                    "dtype": dtype,
                    "nnz": nnz,
                    "weights": size,
                    "formats": {k: v["format"] for k, v in info["matrices"].items()},
                    "host_flash_bytes": info["flash_bytes"],
                    "host_cflags": info["cflags"],
                    "round_median_ns": [],
                    "round_min_ns": [],
                }
                if not args.no_m4 and shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm"):
                    rows[key].update(m4(graph, dtype, X, work / f"m4-{sparsity}-{dtype}", key))
                print(key, "built", flush=True)
        for r in range(args.rounds):  # interleaved: every build once per round, same load for all
            for key, (program, graph, dtype) in programs.items():
                done = subprocess.run([str(program.path)], capture_output=True, text=True, timeout=1800, check=True)
                parsed = parse_program_output(done.stdout)
                if r == 0:
                    rows[key]["host_max_abs_error"] = check(
                        parsed["outputs"], expected_last(graph, dtype, X), dtype, key
                    )
                samples = sorted(parsed["latency"]["step"]["samples"])
                rows[key]["round_median_ns"].append(float(samples[len(samples) // 2]))
                rows[key]["round_min_ns"].append(float(samples[0]))
            print("round", r + 1, {k: round(min(v["round_median_ns"]) / 1000, 2) for k, v in rows.items()}, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for row in rows.values():
        row["us_per_step"] = min(row["round_median_ns"]) / 1000
        row["us_per_step_fastest_call"] = min(row["round_min_ns"]) / 1000
    for dtype in DTYPES:
        dense, sparse = rows[f"0%/{dtype}"], rows[f"90%/{dtype}"]
        sparse["host_speedup_vs_0%"] = dense["us_per_step"] / sparse["us_per_step"]
        if "m4_instructions_per_step" in dense and "m4_instructions_per_step" in sparse:
            sparse["m4_instructions_ratio_vs_0%"] = (
                dense["m4_instructions_per_step"] / sparse["m4_instructions_per_step"]
            )
    load = {"before": [round(v, 2) for v in load_before], "after": [round(v, 2) for v in os.getloadavg()]}
    payload = {
        "spec": SPEC,
        "features": FEATURES,
        "classes": CLASSES,
        "steps": STEPS,
        "rounds": args.rounds,
        "reps": args.reps,
        "load_average": load,
        "results": rows,
    }
    write_results(args.name, payload, report(payload))
    print(report(payload))


def m4(graph: ir.Model, dtype: str, X: np.ndarray, directory: Path, key: str) -> dict:
    """Flash/RAM of the Cortex-M4 build and emulated instructions per step on QEMU's mps2-an386."""
    artifact = build(graph, directory, arch="cortex-m4", dtype=dtype)
    info = artifact.info
    settings = ProgramSettings.emulated(modes=("step",))
    flags = shlex.split(info["cflags"])
    program = build_program(directory, info["prefix"], "cortex-m4", X, settings, directory / "bench", flags, name=key)
    device = parse_device("qemu-m4")
    device.open()
    try:
        m = device.execute(Job(key, program, X, settings, timeout_s=600))
    finally:
        device.close()
    if m.unit != "instructions":
        raise SystemExit(f"{key}: QEMU's instruction counter is unavailable ({m.clock})")
    err = check(m.outputs, expected_last(graph, dtype, X), dtype, f"{key} (cortex-m4)")
    counts = sorted(m.samples["step"])
    return {
        "m4_flash_bytes": info["flash_bytes"],
        "m4_ram_bytes": info["ram_bytes"],
        "m4_state_bytes": info["state_bytes"],
        "m4_instructions_per_step": float(np.median(counts)),
        "m4_instructions_range": [float(counts[0]), float(counts[-1])],
        "m4_max_abs_error": err,
        "m4_formats": {k: v["format"] for k, v in info["matrices"].items()},
    }


def report(payload: dict) -> str:
    rows = payload["results"]
    table = []
    for key, r in rows.items():
        table.append(
            [
                key,
                f"{r['nnz']:,} / {r['weights']:,}",
                f"{r['us_per_step']:.2f}",
                f"{r['us_per_step_fastest_call']:.2f}",
                f"{r.get('host_speedup_vs_0%', 1.0):.2f}x",
                f"{r['m4_flash_bytes']:,}" if "m4_flash_bytes" in r else "",
                f"{r['m4_ram_bytes']:,}" if "m4_ram_bytes" in r else "",
                f"{r['m4_instructions_per_step']:,.0f}" if "m4_instructions_per_step" in r else "",
                ", ".join(sorted(set(r.get("m4_formats", r["formats"]).values()))),
            ]
        )
    load = payload["load_average"]
    return (
        f"# Keyword spotting in C (IR v2): `{payload['spec']}`, {payload['features']} features, "
        f"{payload['classes']} classes\n\n"
        "Random init, magnitude pruning over every matrix (head included), `--kernel auto`. Host: "
        "edgeprune.bench's program around the generated code (`-O2 -ffp-contract=fast -march=native`), every "
        f"`model_step` call timed alone, {payload['reps']} calls per run, {payload['rounds']} interleaved rounds; "
        "µs/step = the fastest round's median call. Cortex-M4: `--arch cortex-m4` build (flash = model code and "
        "tables + the runtime functions it calls; RAM = state struct + data) and guest instructions per "
        "`model_step` on QEMU mps2-an386 (TCG plugin; emulated instructions, not cycles). Every build's outputs "
        "were checked against the float64 reference (fp32, <= 2e-5) or the int8 simulation (<= 1e-4).\n\n"
        f"Load average (1/5/15 min): before {load['before']}, after {load['after']} (a shared 2-core machine: "
        "ratios within this run are meaningful, absolute host figures are not).\n\n"
        + markdown_table(
            [
                "sparsity/dtype",
                "nnz / weights",
                "host µs/step",
                "fastest call µs",
                "vs 0%",
                "M4 flash B",
                "M4 RAM B",
                "M4 instr/step",
                "formats (M4)",
            ],
            table,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()

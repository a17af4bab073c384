"""What pruning buys in the generated C: instructions, time, flash and RAM per step vs sparsity.

For each cell and sparsity, the standard dense model (benchmarks/common.py) is magnitude-pruned
(no fine-tuning: cost depends only on the pattern), lowered, and compiled by the c target with
the weights forced to CSR and to dense tiles, for the host and for the Cortex-M4F board:

* host (x86-64, default flags): instructions per step inside ``model_step`` (callgrind) and wall
  time per step (min of repeats; noisy on a shared machine, instructions are the stable figure);
* Cortex-M4F (arm-none-eabi-gcc, default flags, QEMU mps2-an386 with -icount): emulated
  instructions per step; flash = code + constants of model and runtime objects; RAM = the state;
* ``--c-format smallest`` (the default) and ``fastest`` (per-target cost model) pick per matrix;
  the table shows what each picks for the gate matrix and whether ``fastest`` chose the format
  that measured faster.

    python benchmarks/c/speed_memory.py                      # LSTM and GRU 128 on mnist5k
    python benchmarks/c/speed_memory.py --random-init --cells lstm --sparsities 0,0.9   # quick
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import markdown_table, standard_dense_model, write_results  # noqa: E402

from edgeprune import frontend, prune  # noqa: E402
from edgeprune.backends import get  # noqa: E402
from edgeprune.backends.c import bench, codegen  # noqa: E402
from edgeprune.options import resolve  # noqa: E402

BACKEND = get("c")
FLAG_SETS = ("-O2 -ffp-contract=fast", "-O2", "-O3", "-O2 -ffp-contract=fast -march=native")


def build(model_ir, directory: Path, **given):
    options = resolve(BACKEND.options, given, "target c")
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    [artifact] = BACKEND.emit(model_ir, directory, options)
    BACKEND.build(artifact, directory, options)
    return artifact


def dense_model(cell: str, hidden: int, dataset: str, random_init: bool):
    if random_init:
        import torch

        from edgeprune.models import ModelConfig, SequenceClassifier

        torch.manual_seed(0)
        return SequenceClassifier(ModelConfig(cell, 28, (hidden,), 10)), None
    return standard_dense_model(dataset, cell, (hidden,))


def measure(model_ir, work: Path, fmt: str, m4: bool, timing: bool) -> dict:
    host = build(model_ir, work / f"host-{fmt}", c_format=fmt)
    row = {"format": fmt, "host_instructions": bench.instructions_per_step(work / f"host-{fmt}", "host"),
           "weight_bytes": host.info["weight_bytes"]["total"], "state_bytes": host.info["state_bytes"],
           "formats": {k: v["format"] for k, v in host.info["matrices"].items()}}
    if timing:
        row["host_ns"] = bench.time_per_step(work / f"host-{fmt}")
    if m4:
        board = build(model_ir, work / f"m4-{fmt}", c_format=fmt, c_arch="cortex-m4")
        row["m4_instructions"] = bench.instructions_per_step(work / f"m4-{fmt}", "cortex-m4", steps=100)
        row["m4_flash_bytes"] = board.info["flash_bytes"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", default="lstm,gru")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--dataset", default="mnist5k")
    ap.add_argument("--sparsities", default="0,0.5,0.7,0.8,0.9,0.95,0.98")
    ap.add_argument("--random-init", action="store_true", help="skip training (patterns of untrained weights)")
    ap.add_argument("--no-m4", action="store_true", help="skip the Cortex-M4 builds")
    ap.add_argument("--no-timing", action="store_true", help="instructions only")
    ap.add_argument("--name", default="c_speed_memory")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    m4 = not args.no_m4 and shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")
    sparsities = [float(s) for s in args.sparsities.split(",")]
    results, md = {"cells": {}, "flags": []}, []
    work = Path(tempfile.mkdtemp(prefix="edgeprune-c-bench-"))
    try:
        for cell in args.cells.split(","):
            model, accuracy = dense_model(cell, args.hidden, args.dataset, args.random_init)
            rows = []
            for s in sparsities:
                pruned = prune.prune_model(model, "magnitude", s).model if s else model
                graph = frontend.lower(pruned)
                measured = {fmt: measure(graph, work, fmt, bool(m4), not args.no_timing) for fmt in ("csr", "dense")}
                picks = {"smallest": codegen.plan(graph, fmt="smallest"),
                         "fastest_host": codegen.plan(graph, fmt="fastest", arch="host"),
                         "fastest_m4": codegen.plan(graph, fmt="fastest", arch="cortex-m4")}
                rows.append({"sparsity": s, "nnz": graph.nnz(), "nnz_with_head": graph.nnz(True),
                             "picks": {k: {m.label: m.format for m in p.matrices()} for k, p in picks.items()},
                             "smallest_weight_bytes": picks["smallest"].weight_bytes()["total"],
                             "by_format": measured})
                print(cell, s, {f: {k: v for k, v in r.items() if k != "formats"} for f, r in measured.items()},
                      flush=True)
            results["cells"][cell] = {"dense_accuracy": accuracy, "rows": rows}
            md.append(_cell_table(cell, args, rows, bool(m4), not args.no_timing))
        lstm = dense_model("lstm", args.hidden, args.dataset, args.random_init)[0]
        graph, sparse = frontend.lower(lstm), frontend.lower(prune.prune_model(lstm, "magnitude", 0.9).model)
        flag_rows = []
        for flags in FLAG_SETS:
            for label, g in (("dense 0%", graph), ("csr 90%", sparse)):
                d = work / "flags"
                build(g, d, c_cflags=flags)
                entry = {"flags": flags, "model": label, "host_instructions": bench.instructions_per_step(d, "host")}
                if not args.no_timing:
                    entry["host_ns"] = bench.time_per_step(d)
                flag_rows.append(entry)
                print(entry, flush=True)
        results["flags"] = flag_rows
        md.append("### Compiler flags (host, LSTM 128, --c-format smallest)\n\n" + markdown_table(
            ["flags", "model", "instructions/step", "µs/step"],
            [[r["flags"], r["model"], round(r["host_instructions"]), _us(r.get("host_ns"))] for r in flag_rows]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_results(args.name, {"args": vars(args), **results}, "\n\n".join(md))


def _us(ns):
    return "-" if ns is None else f"{ns / 1000:.2f}"


def _cell_table(cell, args, rows, m4, timing) -> str:
    base = rows[0]["by_format"]["dense"] if rows[0]["sparsity"] == 0 else None
    columns = ["sparsity", "nnz", "gate format: smallest / fastest host / fastest M4", "weights KiB (smallest)",
               "state B", "host instr csr", "host instr dense"]
    columns += ["host µs csr", "host µs dense"] if timing else []
    columns += ["M4 instr csr", "M4 instr dense", "M4 flash KiB (smallest)"] if m4 else []
    columns += ["speed-up of fastest vs dense 0% (host, M4)"] if base else []
    out = []
    for r in rows:
        c, d = r["by_format"]["csr"], r["by_format"]["dense"]
        pick = {k: v["layers.0.weight"] for k, v in r["picks"].items()}

        def mark(chosen, key):  # did the cost model pick the format that measured faster?
            best = "csr" if c[key] < d[key] else "dense"
            return chosen + ("" if chosen == best else " (slower)")

        picks = [pick["smallest"], mark(pick["fastest_host"], "host_instructions")]
        picks.append(mark(pick["fastest_m4"], "m4_instructions") if m4 else pick["fastest_m4"])
        line = [r["sparsity"], r["nnz"], " / ".join(picks), f"{r['smallest_weight_bytes'] / 1024:.1f}",
                c["state_bytes"], round(c["host_instructions"]), round(d["host_instructions"])]
        if timing:
            line += [_us(c.get("host_ns")), _us(d.get("host_ns"))]
        if m4:
            line += [round(c["m4_instructions"]), round(d["m4_instructions"]),
                     f"{(c if pick['smallest'] == 'csr' else d)['m4_flash_bytes'] / 1024:.1f}"]
        if base:
            chosen = {"host": (c if pick["fastest_host"] == "csr" else d), "m4": (c if pick["fastest_m4"] == "csr" else d)}
            speed = f"{base['host_instructions'] / chosen['host']['host_instructions']:.1f}x"
            if m4:
                speed += f", {base['m4_instructions'] / chosen['m4']['m4_instructions']:.1f}x"
            line.append(speed)
        out.append(line)
    source = "random init" if args.random_init else f"standard dense model on {args.dataset}"
    return (f"### {cell.upper()} {args.hidden}, 28 inputs, 10 classes ({source}), magnitude pruning of the "
            "recurrent weights (head dense)\n\nInstructions per streaming step (logits every step): callgrind "
            "inside model_step on the host, QEMU -icount on the Cortex-M4F board. Wall times (µs) are the minimum "
            "of 5 runs and only indicative on a shared machine.\n\n" + markdown_table(columns, out))


if __name__ == "__main__":
    main()

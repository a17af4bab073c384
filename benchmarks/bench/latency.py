"""Headline latency: every runtime side by side, LSTM H = 128/256/1024, sparsity 0 .. 0.98.

    python benchmarks/bench/latency.py                      # the full grid (about 20-40 min, quiet machine)
    python benchmarks/bench/latency.py --quick              # a smoke run (few repetitions)
    python benchmarks/bench/latency.py --device qemu-m4     # the same grid as Cortex-M4 instruction counts

Latency does not depend on what the weights learned, only on the masks' structure, so the models
are freshly initialised LSTMs on 28-feature inputs (MNIST rows, 28 steps), pruned by each method
at each sparsity, compiled for every available target (each C kernel and LiteRT dense/sparse
variant) and measured with ``edgeprune sweep --device`` (bench's harness on the device; 1 thread,
batch 1; torch dense as the baseline).
Writes benchmarks/results/bench_latency[_<device>].{json,md} and a latency-vs-sparsity plot per H.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import RESULTS, markdown_table, run_grid, write_results  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", default="128,256,1024")
    p.add_argument("--sparsities", default="0,0.5,0.8,0.9,0.95,0.98")
    p.add_argument("--methods", default="magnitude,random-regular")
    p.add_argument("--cell", default="lstm", choices=("lstm", "gru", "rnn"))
    p.add_argument("--runtimes", default=None, help="comma list of targets (default: all available)")
    p.add_argument("--device", default="local")
    p.add_argument("--ssh-config", default=None)
    p.add_argument("--time-budget", type=float, default=2.0, help="seconds per runtime and mode")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--name", default=None, help="results file name (default bench_latency[_device])")
    return p.parse_args(argv)


def pivot(sweep: dict, what: str) -> str:
    """Rows (method, sparsity) x columns runtime: latency p50 (p99) of ``what`` mode, or stored bytes."""
    from edgeprune.bench import report
    from edgeprune.sweep.report import runtime_rows

    columns: dict[str, str] = {}  # runtime id -> column: its variant ("onnx") when it is that variant's only
    ids: list[str] = []  # artifact with this mode, else the full id ("tflite[dense]/model.tflite")
    for c in sweep["cells"]:
        for r in runtime_rows(c):
            if r["id"] not in ids and (what == "bytes" or what in r["modes"]):
                ids.append(r["id"])
    for i in ids:
        group = i.split("/", 1)[0]
        columns[i] = group if sum(j.split("/", 1)[0] == group for j in ids) == 1 else i
    rows = []
    for c in sweep["cells"]:
        if c["status"] != "ok":
            rows.append([c["method"], c["sparsity"], f"FAILED: {c['error']}"] + [""] * (len(ids) - 1))
            continue
        by_id = {r["id"]: r for r in runtime_rows(c)}
        row = [c["method"], round(c["pruning"]["sparsity"], 3)]
        for i in ids:
            r = by_id.get(i)
            if r is None or r["status"] != "ok":
                row.append("-" if r is None else "failed")
            elif what == "bytes":
                row.append(report.fmt_bytes(r["memory"].get("storage_bytes")))
            else:
                stat = r["latency"].get(what)
                row.append(f"{report.fmt_latency(stat)} ({report.fmt_latency(stat, 'p99')})" if stat else "-")
        rows.append(row)
    return markdown_table(["method", "sparsity", *(columns[i] for i in ids)], rows)


def main(argv=None) -> int:
    import torch

    from edgeprune import checkpoint
    from edgeprune.bench.settings import BenchSettings
    from edgeprune.bench.stats import Budget
    from edgeprune.models import ModelConfig, SequenceClassifier
    from edgeprune.sweep.report import sweep_plots

    args = parse_args(argv)
    torch.set_num_threads(1)
    hidden = [int(h) for h in args.hidden.split(",")]
    sparsities = [float(s) for s in args.sparsities.split(",")]
    methods = args.methods.split(",")
    budget = Budget.quick() if args.quick else Budget(time_s=args.time_budget)
    settings = BenchSettings(
        budget=budget, accuracy_samples=64, latency_sequences=8, device_samples=8, keep_samples=False
    )
    device_tag = "" if args.device == "local" else "_" + args.device.split(":")[0].replace("/", "")
    name = args.name or f"bench_latency{device_tag}"
    sweeps = {}
    with tempfile.TemporaryDirectory(prefix="edgeprune-bench-latency-") as tmp:
        for h in hidden:
            torch.manual_seed(0)
            model = SequenceClassifier(ModelConfig(args.cell, 28, (h,), 10)).eval()
            ckpt = Path(tmp) / f"{args.cell}{h}.pt"
            checkpoint.save(model, ckpt, {"dataset": "mnist5k", "sequence_length": 28})
            runtimes = args.runtimes.split(",") if args.runtimes else None
            print(
                f"== {args.cell.upper()} H={h}: {len(methods)} methods x {len(sparsities)} sparsities on {args.device}"
            )
            sweeps[h] = run_grid(
                ckpt,
                methods,
                sparsities,
                Path(tmp) / f"run-{h}",
                runtimes,
                accuracy_samples=64,
                device=args.device,
                ssh_config=args.ssh_config,
                bench=settings,
            )
    RESULTS.mkdir(parents=True, exist_ok=True)
    sections, plots = [], []
    for h, sweep in sweeps.items():
        plot_dir = RESULTS / f"{name}_H{h}"
        plots += [p.relative_to(RESULTS) for p in sweep_plots(sweep, plot_dir) if "accuracy" not in p.name]
        for mode in ("step", "sequence"):
            sections.append(f"### {args.cell.upper()} H={h}, {mode} latency p50 (p99)\n\n" + pivot(sweep, mode))
        sections.append(f"### {args.cell.upper()} H={h}, weights + indices as stored\n\n" + pivot(sweep, "bytes"))
    md = (
        f"Latency per runtime, {args.cell.upper()} on 28 inputs x 28 steps, 10 classes; 1 thread, batch 1; device "
        f"{args.device}. p50 (p99) of per-call timings; adaptive repetitions: until the 95% CI of the median is "
        f"within {budget.rel_ci:.0%} of it, or {budget.time_s:g} s per runtime and mode. Python-path rows include "
        f"the runner's call overhead, (native) rows are the kernel alone. Instruction counts (insn) are emulated, "
        f"not time.\n\n" + "\n\n".join(sections) + "\n\n" + "\n".join(f"![{p}]({p})" for p in plots)
    )
    payload = {
        "grid": {
            "hidden": hidden,
            "sparsities": sparsities,
            "methods": methods,
            "cell": args.cell,
            "device": args.device,
        },
        "sweeps": {str(h): s for h, s in sweeps.items()},
    }
    json_path, md_path = write_results(name, payload, md)
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

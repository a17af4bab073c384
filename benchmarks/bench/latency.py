"""Headline latency: every runtime side by side, LSTM H = 128/256/1024, sparsity 0 .. 0.98.

    python benchmarks/bench/latency.py                      # the full grid (about 20-40 min, quiet machine)
    python benchmarks/bench/latency.py --quick              # a smoke run (few repetitions)
    python benchmarks/bench/latency.py --device qemu-m4     # the same grid as Cortex-M4 instruction counts

Latency does not depend on what the weights learned, only on the masks' structure, so the models
are freshly initialised LSTMs on 28-feature inputs (MNIST rows, 28 steps), pruned by each method
at each sparsity, compiled for every available target (each C kernel and LiteRT dense/sparse
variant) and measured with ``edgeprune bench`` (1 thread, batch 1; torch dense as the baseline).
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

from common import RESULTS, markdown_table, write_results  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", default="128,256,1024")
    p.add_argument("--sparsities", default="0,0.5,0.8,0.9,0.95,0.98")
    p.add_argument("--methods", default="magnitude,random-regular")
    p.add_argument("--cell", default="lstm", choices=("lstm", "gru", "rnn"))
    p.add_argument("--runtimes", default=None, help="comma list of runtime ids/targets (default: all available)")
    p.add_argument("--device", default="local")
    p.add_argument("--ssh-config", default=None)
    p.add_argument("--time-budget", type=float, default=2.0, help="seconds per runtime and mode")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--name", default=None, help="results file name (default bench_latency[_device])")
    return p.parse_args(argv)


def main(argv=None) -> int:
    import torch

    from edgeprune import checkpoint
    from edgeprune.bench import report
    from edgeprune.bench.harness import BenchSettings
    from edgeprune.bench.stats import Budget
    from edgeprune.bench.sweep import SweepConfig, run_sweep
    from edgeprune.models import ModelConfig, SequenceClassifier

    args = parse_args(argv)
    torch.set_num_threads(1)
    hidden = [int(h) for h in args.hidden.split(",")]
    sparsities = [float(s) for s in args.sparsities.split(",")]
    methods = args.methods.split(",")
    budget = Budget.quick() if args.quick else Budget(time_s=args.time_budget)
    settings = BenchSettings(budget=budget, accuracy_samples=64, latency_sequences=8, device_samples=8,
                             keep_samples=False)
    device_tag = "" if args.device == "local" else "_" + args.device.split(":")[0].replace("/", "")
    name = args.name or f"bench_latency{device_tag}"
    sweeps = {}
    with tempfile.TemporaryDirectory(prefix="edgeprune-bench-latency-") as tmp:
        for h in hidden:
            torch.manual_seed(0)
            model = SequenceClassifier(ModelConfig(args.cell, 28, (h,), 10)).eval()
            ckpt = Path(tmp) / f"{args.cell}{h}.pt"
            checkpoint.save(model, ckpt, {"dataset": "mnist5k", "sequence_length": 28})
            config = SweepConfig(str(ckpt), methods, sparsities, [0], runtimes=args.runtimes.split(",") if args.runtimes else None,
                                 device=args.device, ssh_config=args.ssh_config, settings=settings)
            print(f"== {args.cell.upper()} H={h}: {len(methods)} methods x {len(sparsities)} sparsities on {args.device}")
            sweeps[h] = run_sweep(config, log=print)
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows, plots = [], []
    for h, sweep in sweeps.items():
        plot_dir = RESULTS / f"{name}_H{h}"
        plots += [p.relative_to(RESULTS) for p in report.sweep_plots(sweep, plot_dir) if "latency" in p.name]
        for cell in sweep["cells"]:
            if cell["status"] != "ok":
                rows.append([h, cell["method"], cell["sparsity"], "FAILED", cell["error"], "", "", "", ""])
                continue
            for r in cell["result"]["runtimes"]:
                step, seq = r["latency"].get("step"), r["latency"].get("sequence")
                wi = r["memory"].get("storage_bytes")
                rows.append([h, cell["method"], round(cell["achieved_sparsity"], 3), r["id"], r["call_path"],
                             report.fmt_latency(step), report.fmt_latency(step, "p99"), report.fmt_latency(seq),
                             report.fmt_bytes(wi)])
    md = (f"Latency per runtime, {args.cell.upper()} on 28 inputs x 28 steps, 10 classes; 1 thread, batch 1; device "
          f"{args.device}. p50/p99 of per-call timings (adaptive repetitions: until the 95% CI of the median is within "
          f"{budget.rel_ci:.0%} of it, or {budget.time_s:g} s per runtime and mode). Instruction counts (insn) are "
          f"emulated, not time.\n\n"
          + markdown_table(["H", "method", "sparsity", "runtime", "path", "step p50", "step p99", "seq p50",
                            "weights+idx"], rows)
          + "\n\n" + "\n".join(f"![{p}]({p})" for p in plots))
    payload = {"grid": {"hidden": hidden, "sparsities": sparsities, "methods": methods, "cell": args.cell,
                        "device": args.device}, "sweeps": {str(h): s for h, s in sweeps.items()}}
    json_path, md_path = write_results(name, payload, md)
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Accuracy tables: each pruning method x sparsity, measured through every runtime on the test split.

    python benchmarks/bench/accuracy.py                         # digits + mnist5k, 3 methods, 5 sparsities
    python benchmarks/bench/accuracy.py --datasets digits --quick

Starts from the project's standard dense models (benchmarks/common.py, cached), prunes each
(method, sparsity) cell with masked fine-tuning, compiles it for every available target and runs
the whole test split through each runtime (not through torch): the numbers a user gets on the
device. Latency is measured only briefly here (see latency.py for the headline latency).
Writes benchmarks/results/bench_accuracy.{json,md} and accuracy-vs-sparsity plots.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import RESULTS, markdown_table, standard_dense_model, write_results  # noqa: E402

MODELS = {"digits": ("lstm", (64,)), "mnist5k": ("lstm", (128,))}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="digits,mnist5k")
    p.add_argument("--methods", default="magnitude,random-regular,random")
    p.add_argument("--sparsities", default="0,0.5,0.8,0.9,0.95")
    p.add_argument("--finetune-epochs", type=int, default=5)
    p.add_argument("--runtimes", default=None)
    p.add_argument("--quick", action="store_true", help="1 fine-tune epoch, 2 sparsities")
    p.add_argument("--name", default="bench_accuracy")
    return p.parse_args(argv)


def main(argv=None) -> int:
    import torch

    from edgeprune import checkpoint
    from edgeprune.bench import report
    from edgeprune.bench.harness import BenchSettings
    from edgeprune.bench.stats import Budget
    from edgeprune.bench.sweep import SweepConfig, run_sweep

    args = parse_args(argv)
    torch.set_num_threads(1)
    sparsities = [0.5, 0.9] if args.quick else [float(s) for s in args.sparsities.split(",")]
    epochs = 1 if args.quick else args.finetune_epochs
    methods = args.methods.split(",")
    settings = BenchSettings(budget=Budget.quick(), latency_sequences=4, device_samples=8, keep_samples=False)
    sweeps, rows, plots = {}, [], []
    with tempfile.TemporaryDirectory(prefix="edgeprune-bench-accuracy-") as tmp:
        for dataset in args.datasets.split(","):
            cell, hidden = MODELS[dataset]
            model, dense_acc = standard_dense_model(dataset, cell, hidden)
            ckpt = Path(tmp) / f"{dataset}.pt"
            from edgeprune import data

            ds = data.load(dataset)
            checkpoint.save(model, ckpt, {"dataset": dataset, "sequence_length": ds.steps, "accuracy": dense_acc,
                                          "training": {"lr": 3e-3}})
            print(f"== {dataset}: dense {cell} {hidden} at {dense_acc:.2%}")
            config = SweepConfig(str(ckpt), methods, sparsities, [0], finetune_epochs=epochs,
                                 runtimes=args.runtimes.split(",") if args.runtimes else None, settings=settings)
            sweep = run_sweep(config, log=print)
            sweeps[dataset] = sweep
            plot_dir = RESULTS / f"{args.name}_{dataset}"
            plots += [p.relative_to(RESULTS) for p in report.sweep_plots(sweep, plot_dir) if "accuracy" in p.name]
            for c in sweep["cells"]:
                if c["status"] != "ok":
                    rows.append([dataset, c["method"], c["sparsity"], "FAILED", c["error"], ""])
                    continue
                for r in c["result"]["runtimes"]:
                    a = r["accuracy"].get("sequence") or r["accuracy"].get("step") or {}
                    rows.append([dataset, c["method"], round(c["achieved_sparsity"], 3), r["id"],
                                 f"{a['accuracy']:.2%}" if a.get("accuracy") is not None else "-",
                                 f"{a.get('max_abs_vs_reference', float('nan')):.1e}"])
    md = (f"Test accuracy through each runtime after pruning and {epochs} masked fine-tuning epochs (dense "
          f"starting points: benchmarks/common.py STANDARD_TRAINING). max|Δ| = largest logit difference from the "
          f"torch model.\n\n"
          + markdown_table(["dataset", "method", "sparsity", "runtime", "accuracy", "max|Δ| vs torch"], rows)
          + "\n\n" + "\n".join(f"![{p}]({p})" for p in plots))
    json_path, md_path = write_results(args.name, {"sweeps": sweeps, "finetune_epochs": epochs}, md)
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

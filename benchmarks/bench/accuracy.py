"""Accuracy tables: each pruning method x sparsity, measured through every runtime on the test split.

    python benchmarks/bench/accuracy.py                         # digits + mnist5k, 3 methods, 5 sparsities
    python benchmarks/bench/accuracy.py --datasets digits --quick

Starts from the project's standard dense models (benchmarks/common.py, cached), prunes each
(method, sparsity) cell with masked fine-tuning, compiles it for every available target and runs
the whole test split through each runtime (not through torch): the numbers a user gets on the
device. Runs on ``edgeprune sweep`` (serially); latency is latency.py's.
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

from common import RESULTS, STANDARD_TRAINING, markdown_table, run_grid, standard_dense_model, write_results  # noqa: E402

MODELS = {"digits": ("lstm", (64,)), "mnist5k": ("lstm", (128,))}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="digits,mnist5k")
    p.add_argument("--methods", default="magnitude,random-regular,random")
    p.add_argument("--sparsities", default="0,0.5,0.8,0.9,0.95")
    p.add_argument("--finetune-epochs", type=int, default=5)
    p.add_argument("--runtimes", default=None, help="comma list of targets (default: every available one)")
    p.add_argument("--quick", action="store_true", help="1 fine-tune epoch, 2 sparsities")
    p.add_argument("--name", default="bench_accuracy")
    return p.parse_args(argv)


def pivot(dataset: str, dense_acc: float, sweep: dict) -> str:
    """One row per (method, sparsity), one column per runtime: accuracy; and the largest logit gap."""
    from edgeprune.sweep.report import runtime_rows

    ids: list[str] = []
    for c in sweep["cells"]:
        for r in runtime_rows(c):
            if r["id"] not in ids:
                ids.append(r["id"])
    rows, gap = [], 0.0
    for c in sweep["cells"]:
        if c["status"] != "ok":
            rows.append([c["method"], c["sparsity"], f"FAILED: {c['error']}"] + [""] * (len(ids) - 1))
            continue
        by_id = {r["id"]: r for r in runtime_rows(c)}
        row = [c["method"], round(c["pruning"]["sparsity"], 3)]
        for i in ids:
            a = (by_id[i]["accuracy"].get("sequence") or by_id[i]["accuracy"].get("step") or {}) if i in by_id else {}
            row.append(f"{a['accuracy']:.2%}" if a.get("accuracy") is not None else "-")
            gap = max(gap, a.get("max_abs_vs_reference") or 0.0)
        rows.append(row)
    return (
        f"### {dataset} (dense: {dense_acc:.2%})\n\n"
        + markdown_table(["method", "sparsity", *ids], rows)
        + f"\n\nLargest logit difference from torch over every runtime and cell: {gap:.1e}."
    )


def main(argv=None) -> int:
    import torch

    from edgeprune import checkpoint
    from edgeprune.sweep.report import sweep_plots

    args = parse_args(argv)
    torch.set_num_threads(1)
    sparsities = [0.5, 0.9] if args.quick else [float(s) for s in args.sparsities.split(",")]
    epochs = 1 if args.quick else args.finetune_epochs
    methods = args.methods.split(",")
    sweeps, tables, plots = {}, [], []
    with tempfile.TemporaryDirectory(prefix="edgeprune-bench-accuracy-") as tmp:
        for dataset in args.datasets.split(","):
            cell, hidden = MODELS[dataset]
            model, dense_acc = standard_dense_model(dataset, cell, hidden)
            ckpt = Path(tmp) / f"{dataset}.pt"
            from edgeprune import data

            ds = data.load(dataset)
            checkpoint.save(
                model,
                ckpt,
                {
                    "dataset": dataset,
                    "sequence_length": ds.steps,
                    "accuracy": dense_acc,
                    "training": {"lr": STANDARD_TRAINING[dataset]["lr"]},
                },
            )
            print(f"== {dataset}: dense {cell} {hidden} at {dense_acc:.2%}")
            sweep = run_grid(
                ckpt,
                methods,
                sparsities,
                Path(tmp) / f"run-{dataset}",
                args.runtimes.split(",") if args.runtimes else None,
                finetune_epochs=epochs,
            )
            sweeps[dataset] = sweep
            plot_dir = RESULTS / f"{args.name}_{dataset}"
            plots += [p.relative_to(RESULTS) for p in sweep_plots(sweep, plot_dir) if "accuracy" in p.name]
            tables.append((dataset, dense_acc, sweep))
    md = (
        f"Test accuracy through each runtime (whole test split, not through torch) after pruning and {epochs} "
        f"masked fine-tuning epochs; dense starting points: benchmarks/common.py STANDARD_TRAINING.\n\n"
        + "\n\n".join(pivot(dataset, dense_acc, sweep) for dataset, dense_acc, sweep in tables)
        + "\n\n"
        + "\n".join(f"![{p}]({p})" for p in plots)
    )
    json_path, md_path = write_results(args.name, {"sweeps": sweeps, "finetune_epochs": epochs}, md)
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

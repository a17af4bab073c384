"""Wall time of one real `edgeprune sweep`, serial fallback vs a local Ray instance.

    # digits LSTM-64, magnitude,expander x 0.5,0.8,0.9 x seeds 0,1, 2 epochs:
    nice python benchmarks/sweep/wall_time.py
    nice python benchmarks/sweep/wall_time.py --clusters serial,local --repeat 2

Each run is the whole command in a fresh process (`python -m edgeprune sweep ... --cluster X`):
interpreter start, imports, Ray's start-up and its workers' warm-up are part of what a user
waits for. The cells must come out the same in every mode (compared outside their `timing`
section); the load average is recorded before and after each run, because on a shared machine
other jobs compete for the same cores. Writes benchmarks/results/sweep_wall_time.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import ROOT, markdown_table, standard_dense_model, write_results  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="digits")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--methods", default="magnitude,expander")
    p.add_argument("--sparsities", default="0.5,0.8,0.9")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--finetune-epochs", type=int, default=2)
    p.add_argument("--clusters", default="serial,local", help="--cluster values to compare")
    p.add_argument("--repeat", type=int, default=1, help="runs per cluster mode (alternating)")
    p.add_argument("--name", default="sweep_wall_time")
    return p.parse_args(argv)


def cells_without_timing(run_dir: Path) -> dict[str, str]:
    out = {}
    for p in sorted((run_dir / "cells").glob("*.json")):
        record = json.loads(p.read_text())
        record.pop("timing")
        out[p.stem] = json.dumps(record, sort_keys=True)
    return out


def main(argv=None) -> int:
    from edgeprune import checkpoint, data

    args = parse_args(argv)
    model, dense_acc = standard_dense_model(args.dataset, "lstm", (args.hidden,))
    runs, reference = [], None
    with tempfile.TemporaryDirectory(prefix="edgeprune-sweep-wall-") as tmp:
        ckpt = Path(tmp) / "dense.pt"
        ds = data.load(args.dataset)
        checkpoint.save(
            model,
            ckpt,
            {"dataset": args.dataset, "sequence_length": ds.steps, "accuracy": dense_acc, "training": {"lr": 1e-2}},
        )
        for rep in range(args.repeat):
            for cluster in args.clusters.split(","):
                run_dir = Path(tmp) / f"{cluster}-{rep}"
                cmd = [
                    sys.executable,
                    "-m",
                    "edgeprune",
                    "sweep",
                    str(ckpt),
                    "--methods",
                    args.methods,
                    "--sparsities",
                    args.sparsities,
                    "--seeds",
                    args.seeds,
                    "--finetune-epochs",
                    str(args.finetune_epochs),
                    "--cluster",
                    cluster,
                    "--no-progress",
                    "-o",
                    str(run_dir),
                ]
                env = {**os.environ, "PYTHONPATH": str(ROOT)}
                load_before = os.getloadavg()
                start = time.perf_counter()
                proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
                wall = time.perf_counter() - start
                load_after = os.getloadavg()
                if proc.returncode != 0:
                    print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
                    raise SystemExit(f"{cluster}: the sweep failed")
                cells = [json.loads(p.read_text()) for p in (run_dir / "cells").glob("*.json")]
                same = cells_without_timing(run_dir)
                reference = reference or same
                run = {
                    "cluster": cluster,
                    "repeat": rep,
                    "wall_s": wall,
                    "cells": len(cells),
                    "executor": cells[0]["timing"]["executor"],
                    "sum_cell_wall_s": sum(c["timing"]["wall_s"] for c in cells),
                    "median_cell_wall_s": statistics.median(c["timing"]["wall_s"] for c in cells),
                    "max_cell_wall_s": max(c["timing"]["wall_s"] for c in cells),
                    "workers": len({c["timing"]["worker"]["pid"] for c in cells}),
                    "load_average_before": list(load_before),
                    "load_average_after": list(load_after),
                    "same_cells_as_first_run": same == reference,
                }
                runs.append(run)
                print(
                    f"{cluster} (run {rep}): {wall:.1f} s wall for {len(cells)} cells "
                    f"(sum of cell times {run['sum_cell_wall_s']:.1f} s, {run['workers']} worker process(es)); "
                    f"load average {load_before[0]:.2f} -> {load_after[0]:.2f}; "
                    f"same cells: {run['same_cells_as_first_run']}",
                    flush=True,
                )
    serial = [r["wall_s"] for r in runs if r["cluster"] == "serial"]
    rows = []
    for r in runs:
        speedup = (min(serial) / r["wall_s"]) if serial else None
        rows.append(
            [
                r["cluster"],
                r["executor"],
                r["repeat"],
                r["cells"],
                f"{r['wall_s']:.1f}",
                f"{r['sum_cell_wall_s']:.1f}",
                f"{r['median_cell_wall_s']:.1f} / {r['max_cell_wall_s']:.1f}",
                f"{speedup:.2f}x" if speedup else "-",
                " / ".join(f"{v:.2f}" for v in r["load_average_before"]),
                " / ".join(f"{v:.2f}" for v in r["load_average_after"]),
                "yes" if r["same_cells_as_first_run"] else "NO",
            ]
        )
    grid = (
        f"{args.dataset} LSTM-{args.hidden} (dense accuracy {dense_acc:.2%}), methods {args.methods} x sparsities "
        f"{args.sparsities} x seeds {args.seeds}, {args.finetune_epochs} fine-tune epochs, target c"
    )
    md = (
        f"# `edgeprune sweep` wall time: serial vs Ray local\n\n{grid}; {os.cpu_count()} cores.\n\n"
        + markdown_table(
            [
                "--cluster",
                "executor",
                "run",
                "cells",
                "wall s",
                "sum of cell s",
                "cell s median / max",
                "speed-up vs serial",
                "load avg before (1/5/15 min)",
                "load avg after",
                "same cells",
            ],
            rows,
        )
        + "\n\nWall = the whole command in a fresh process (imports, Ray start-up and worker warm-up included). "
        "Sum of cell s = the cells' own wall times added up (what one process would need without start-up costs). "
        "A load average above the core count means other jobs shared the cores: rerun on a quiet machine.\n"
    )
    write_results(args.name, {"grid": grid, "runs": runs}, md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

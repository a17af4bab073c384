"""Cost of the lattice analysis (the paper never reported it): time and peak memory of building
the dependency graph, the adjacency, the reachability closure, the exact meet-irreducibles,
centrality and the connection scores, for growing hidden sizes.

    OMP_NUM_THREADS=1 nice python benchmarks/seeds/lattice_cost.py

Targets (issue 3): a 1-layer LSTM with H = 1024 and a 2-layer H = 512 model with top-down
feedback in <= 10 s and <= 2 GiB. Each configuration runs in a fresh process (so its peak RSS is
its own; no tracemalloc, which slows networkx down tenfold), ``--repeats`` times; the table shows the fastest run,
since other work on a shared
machine only ever adds time. Weights are random normal (the cost depends on the graph's size and
density, not on training). Writes ``results/lattice_cost.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.common import markdown_table, write_results  # noqa: E402

INPUTS, CLASSES, GATES = 28, 10, 4
CONFIGS = [
    {"hidden": [256], "feedback": False},
    {"hidden": [512], "feedback": False},
    {"hidden": [1024], "feedback": False},
    {"hidden": [2048], "feedback": False},
    {"hidden": [512, 512], "feedback": True},
]
TARGET_SECONDS, TARGET_BYTES = 10.0, 2 * 1024**3


def connections(hidden: list[int], feedback: bool, seed: int = 0):
    import numpy as np

    from edgeprune.graphs.dependency import Connection

    rng = np.random.default_rng(seed)
    out = []
    for l, h in enumerate(hidden):
        src = "x" if l == 0 else f"h{l - 1}@t"
        cols = INPUTS if l == 0 else hidden[l - 1]
        out.append(
            Connection(
                f"layers.{l}.weight_ih", rng.standard_normal((GATES * h, cols), dtype=np.float32), GATES, src, f"h{l}@t"
            )
        )
        out.append(
            Connection(
                f"layers.{l}.weight_hh",
                rng.standard_normal((GATES * h, h), dtype=np.float32),
                GATES,
                f"h{l}@t-1",
                f"h{l}@t",
            )
        )
        if feedback and l + 1 < len(hidden):
            out.append(
                Connection(
                    f"layers.{l}.weight_fb",
                    rng.standard_normal((GATES * h, hidden[l + 1]), dtype=np.float32),
                    GATES,
                    f"h{l + 1}@t-1",
                    f"h{l}@t",
                )
            )
    out.append(
        Connection(
            "head.weight",
            rng.standard_normal((CLASSES, hidden[-1]), dtype=np.float32),
            1,
            f"h{len(hidden) - 1}@t",
            "y",
            prunable=False,
        )
    )
    return out


def measure_one(spec: dict) -> dict:
    """One configuration, in this process: seconds per step and peak memory."""
    from edgeprune.graphs import dependency, poset

    conns = connections(spec["hidden"], spec["feedback"])
    t0 = time.perf_counter()
    graph = dependency.build(conns)
    t_build = time.perf_counter() - t0
    analysis = dependency.analyze(
        graph,
        adjacency_kind=spec["adjacency"],
        centrality_measure=spec["centrality"],
        betweenness_samples=spec.get("betweenness_samples", 64),
    )
    t = time.perf_counter()
    scores = dependency.connection_scores(analysis)
    t_scores = time.perf_counter() - t
    t = time.perf_counter()
    natural = dependency.natural_masks(analysis)
    t_natural = time.perf_counter() - t
    total = time.perf_counter() - t0
    figures = poset.figures(analysis.poset, analysis.meet_irreducible)
    del scores, natural
    return {
        **spec,
        "nodes": graph.n,
        "edges": figures["edges"],
        "meet_irreducible": figures["meet_irreducible"],
        "seconds": {"build": t_build, **analysis.seconds, "scores": t_scores, "natural": t_natural, "total": total},
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def run_isolated(spec: dict, timeout: float) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--one", json.dumps(spec)],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return {**spec, "timeout": timeout}
    except subprocess.CalledProcessError as e:
        raise SystemExit(f"{spec}: {e.stderr.strip().splitlines()[-1]}") from None
    return json.loads(out.stdout.strip().splitlines()[-1])


def baseline_rss() -> int:
    """RSS of a process that imported what a measurement imports (networkx only comes in for
    betweenness) but ran nothing: subtracted to show the analysis' own memory."""
    code = (
        f"import resource, sys; sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r}); "
        "import numpy, scipy.sparse; "
        "import edgeprune.graphs.dependency; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)"
    )
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def label(spec: dict) -> str:
    h = "x".join(map(str, spec["hidden"]))
    return f"LSTM {h}{' + feedback' if spec['feedback'] else ''}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--timeout", type=float, default=900.0, help="per run, seconds")
    p.add_argument("--quick", action="store_true", help="only the two target configurations, one repeat")
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(measure_one(json.loads(args.one))))
        return 0

    base = baseline_rss()
    configs = CONFIGS if not args.quick else [CONFIGS[2], CONFIGS[4]]
    repeats = 1 if args.quick else args.repeats
    specs = [{**c, "adjacency": a, "centrality": "strength"} for c in configs for a in ("binary", "continuous")]
    # The optional centralities, on the sizes where networkx stays practical.
    specs += [
        {**c, "adjacency": "binary", "centrality": m}
        for c in configs[:3]
        if not args.quick
        for m in ("pagerank", "betweenness")
    ]
    runs = []
    for spec in specs:
        trials = [run_isolated(spec, args.timeout) for _ in range(repeats)]
        done = [t for t in trials if "timeout" not in t]
        best = min(done, key=lambda t: t["seconds"]["total"]) if done else trials[0]
        best["repeats"] = len(done)
        best["load_average"] = os.getloadavg()[0]
        runs.append(best)
        if "timeout" in best:
            print(f"{label(spec)} {spec['adjacency']} {spec['centrality']}: over {args.timeout:.0f} s", flush=True)
        else:
            print(
                f"{label(spec)} {spec['adjacency']} {spec['centrality']}: {best['seconds']['total']:.2f} s, "
                f"peak RSS {best['max_rss_bytes'] / 2**20:.0f} MiB",
                flush=True,
            )

    rows = []
    for r in runs:
        if "timeout" in r:
            rows.append(
                [label(r), r["adjacency"], r["centrality"], "", "", "", "", "", "", "", f"> {r['timeout']:.0f}", "", ""]
            )
            continue
        s = r["seconds"]
        target = r["hidden"] in ([1024], [512, 512]) and r["centrality"] == "strength"
        ok = s["total"] <= TARGET_SECONDS and r["max_rss_bytes"] <= TARGET_BYTES
        rows.append(
            [
                label(r),
                r["adjacency"],
                r["centrality"],
                r["nodes"],
                f"{r['edges']:,}",
                f"{s['build'] + s['adjacency']:.3f}",
                f"{s['closure']:.3f}",
                f"{s['irreducibles']:.3f}",
                f"{s['centrality']:.3f}",
                f"{s['scores'] + s['natural']:.3f}",
                f"{s['total']:.2f}",
                f"{r['max_rss_bytes'] / 2**20:.0f} ({(r['max_rss_bytes'] - base) / 2**20:+.0f})",
                ("met" if ok else "MISSED") if target else "",
            ]
        )
    md = "\n".join(
        [
            "# Lattice analysis cost",
            "",
            "Seconds per step (fastest of the repeats, each in a fresh single-threaded process) and the "
            "process's peak RSS in MiB (in brackets: above a process that only imported the libraries, "
            f"{base / 2**20:.0f} MiB). Random-normal weights, 28 inputs, 10 classes, LSTM gates; the binary "
            "adjacency keeps the upper half of each matrix's unit strengths, the continuous one every edge. "
            "`graph` = unit strengths + adjacency, `scores` = target-mode scores + natural-mode masks. "
            f"Target: <= {TARGET_SECONDS:g} s and <= 2 GiB for LSTM 1024 and LSTM 512x512 + feedback "
            "(strength centrality, the default).",
            "",
            markdown_table(
                [
                    "model",
                    "adjacency",
                    "centrality",
                    "nodes",
                    "edges",
                    "graph",
                    "closure",
                    "irreducibles",
                    "centrality s",
                    "scores",
                    "total s",
                    "peak RSS MiB",
                    "target",
                ],
                rows,
            ),
            "",
            "Load average (1 min) while measuring: " + ", ".join(f"{r['load_average']:.1f}" for r in runs) + ".",
        ]
    )
    write_results("lattice_cost", {"baseline_rss_bytes": base, "runs": runs}, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Host speed of the C target's int8 build against its float build, per step (issue 17).

Dense and 90% magnitude-pruned GRU-64 and LSTM-64 (12 inputs, 9 classes: JapaneseVowels' shape)
and LSTM-256 (28 inputs, 10 classes), random init (a step's cost depends on the pattern, not on the
values), each built with ``--dtype f32`` and ``--dtype int8`` (``--kernel auto``), by every source
tree given (``--trees``: e.g. the main checkout and a branch, so before and after land in one run).
A tree's builds are made by that tree's own code (planner, cost model, runtime), in a subprocess
with it on ``PYTHONPATH``; all builds are then timed by this tree's benchmark program
(``bench/native/ep_bench_main.c`` around the generated code, built with the artifact's flags and
host tuning: every step call timed alone). Rounds are interleaved over the builds, so that load from
other processes spreads over all of them; the fastest step of all rounds is reported, the median of
the rounds' medians alongside. One thread.

    python benchmarks/c/int8_speed.py                               # this tree only
    python benchmarks/c/int8_speed.py --trees /work/main,.          # before / after
"""

from __future__ import annotations

import argparse
import json
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
from common import markdown_table, write_results  # noqa: E402

from edgeprune.bench.programs import ProgramSettings, parse_program_output  # noqa: E402
from edgeprune.bench.targets.c import build_program  # noqa: E402
from edgeprune.bench.toolchains import normalize_arch  # noqa: E402

# (name, cell, inputs, hidden, classes)
MODELS = (
    ("GRU-64", "gru", 12, 64, 9),
    ("LSTM-64", "lstm", 12, 64, 9),
    ("LSTM-256", "lstm", 28, 256, 10),
)
SPARSITIES = (0.0, 0.9)
DTYPES = ("f32", "int8")

# Run in a tree's own Python environment: only APIs every tree since the int8 build has.
BUILDER = r"""
import json, sys
from pathlib import Path
import torch
from edgeprune import frontend, prune
from edgeprune.backends import get
from edgeprune.models import ModelConfig, SequenceClassifier
from edgeprune.options import resolve
torch.set_num_threads(1)
out, specs = Path(sys.argv[1]), json.loads(sys.argv[2])
backend, infos = get("c"), {}
for spec in specs:
    torch.manual_seed(spec["hidden"])
    model = SequenceClassifier(ModelConfig(spec["cell"], spec["inputs"], (spec["hidden"],), spec["classes"])).eval()
    if spec["sparsity"]:
        model = prune.prune_model(model, "magnitude", spec["sparsity"], seed=0).model
    graph = frontend.lower(model)
    for dtype in spec["dtypes"]:
        d = out / f"{spec['key']}-{dtype}"
        d.mkdir(parents=True)
        options = resolve(backend.options, {"dtype": dtype}, "target c")
        [artifact] = backend.emit(graph, d, options)
        backend.build(artifact, d, options)
        info = artifact.info
        infos[d.name] = {"prefix": info["prefix"], "cflags": info["cflags"], "host_tuning": info.get("host_tuning", {}),
                         "formats": {k: v["format"] for k, v in info["matrices"].items()}}
print(json.dumps(infos))
"""


def build_tree(tree: Path, out: Path, specs: list[dict]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", BUILDER, str(out), json.dumps(specs)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise SystemExit(f"building with {tree} failed: {done.stderr.strip()[-400:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def revision(tree: Path) -> str:
    """The tree's commit (and whether its files differ from it), so that a result names the code it timed."""
    try:
        head = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        )
    except OSError:
        return "?"
    return (head.stdout.strip() or "?") + (" + uncommitted changes" if dirty.stdout.strip() else "")


def step_program(directory: Path, info: dict, inputs: int, classes: int, reps: int) -> Path:
    X = np.random.default_rng(0).random((1, 20, inputs), dtype=np.float32)
    settings = ProgramSettings(warmup=20, min_reps=reps, max_reps=reps, budget_ns=0, modes=("step",))
    flags = [*shlex.split(info["cflags"]), *info["host_tuning"].get("defines", [])]
    built = build_program(
        directory,
        info["prefix"],
        normalize_arch(platform.machine()),
        X,
        settings,
        directory / "bench",
        flags,
        classes=classes,
    )
    return built.path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trees", default=".", help="comma-separated source trees whose builds are compared")
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds over all builds")
    ap.add_argument("--reps", type=int, default=400, help="timed step calls per build and round")
    ap.add_argument("--name", default="c_int8_speed")
    args = ap.parse_args()
    trees = [Path(t).resolve() for t in args.trees.split(",") if t]
    revisions = [revision(t) for t in trees]
    labels = [t.name if t.name else str(t) for t in trees]
    if len(set(labels)) < len(labels):
        labels = [str(t) for t in trees]
    specs = [
        {
            "key": f"{name}-{int(s * 100)}",
            "cell": cell,
            "inputs": i,
            "hidden": h,
            "classes": c,
            "sparsity": s,
            "dtypes": list(DTYPES),
        }
        for name, cell, i, h, c in MODELS
        for s in SPARSITIES
    ]
    shape = {spec["key"]: spec for spec in specs}
    work = Path(tempfile.mkdtemp(prefix="edgeprune-int8-speed-"))
    try:
        builds = []  # (label, key, dtype, directory, info, program)
        for label, tree in zip(labels, trees):
            infos = build_tree(tree, work / label, specs)
            for dname, info in infos.items():
                key, dtype = dname.rsplit("-", 1)
                d = work / label / dname
                program = step_program(d, info, shape[key]["inputs"], shape[key]["classes"], args.reps)
                builds.append((label, key, dtype, d, info, program))
        samples: dict[int, list[list[float]]] = {i: [] for i in range(len(builds))}
        for r in range(args.rounds):
            for i, (*_, program) in enumerate(builds):
                done = subprocess.run([str(program)], capture_output=True, text=True, timeout=600, check=True)
                samples[i].append(sorted(parse_program_output(done.stdout)["latency"]["step"]["samples"]))
            print(f"round {r + 1}/{args.rounds}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = []
    for i, (label, key, dtype, _, info, _) in enumerate(builds):
        rounds = samples[i]
        results.append(
            {
                "tree": label,
                "model": key,
                "dtype": dtype,
                "formats": info["formats"],
                "host_tuning": info["host_tuning"].get("defines", []),
                "ns_per_step": float(min(s[0] for s in rounds)),
                "ns_per_step_median": float(np.median([s[len(s) // 2] for s in rounds])),
            }
        )
    by = {(r["tree"], r["model"], r["dtype"]): r for r in results}
    rows = []
    for spec in specs:
        for label in labels:
            f, q = by[(label, spec["key"], "f32")], by[(label, spec["key"], "int8")]
            rows.append(
                [
                    spec["key"].replace("-0", " dense").replace("-90", " 90%"),
                    label,
                    f"{f['ns_per_step'] / 1e3:.2f} ({f['ns_per_step_median'] / 1e3:.2f})",
                    f"{q['ns_per_step'] / 1e3:.2f} ({q['ns_per_step_median'] / 1e3:.2f})",
                    f"{q['ns_per_step'] / f['ns_per_step']:.2f}",
                    f["formats"].get("layers.0.weight", "?"),
                    q["formats"].get("layers.0.weight", "?"),
                ]
            )
    md = (
        f"µs per step, native step program, one thread, fastest of {args.rounds} interleaved rounds x {args.reps} "
        "step calls (median of the rounds' medians in brackets); `--kernel auto`. Trees: "
        + ", ".join(f"`{label}` = {tree} at {rev}" for label, tree, rev in zip(labels, trees, revisions))
        + ".\n\n"
        + markdown_table(
            ["model", "tree", "f32 µs/step", "int8 µs/step", "int8 / f32", "f32 gate formats", "int8 gate formats"],
            rows,
        )
    )
    print(md)
    write_results(
        args.name,
        {
            "args": vars(args),
            "trees": [{"path": str(t), "revision": r} for t, r in zip(trees, revisions)],
            "results": results,
        },
        md,
    )


if __name__ == "__main__":
    main()

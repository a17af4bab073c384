"""Old vs new on separate builds: the same masked LSTMs compiled by a baseline checkout and by this
one, each step timed by ``step_profile.py`` in its own program, old and new alternating.

``limits.py --baseline`` links both into one program, where unchanged code moves by up to ~10%
with where the linker puts it; a change smaller than that is checked here as well. Each side's
build uses its own edgeprune (the checkout's ``benchmarks/c/targets.py`` masks, its backend and
runtime); the timing is this checkout's ``step_profile.py`` for both, fastest of ``--repeats``.

    python benchmarks/c/ab_steps.py --baseline CHECKOUT [--repeats 2] [--rounds 300]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))
from common import markdown_table, write_results  # noqa: E402

CASES = (
    "magnitude:0.9",
    "magnitude:0.95",
    "magnitude:0.98",
    "expander:0.9",
    "expander:0.98",
    "block-expander-8x1:0.9",
    "block-expander-8x1:0.95",
    "block-expander-8x1:0.98",
)

BUILD = r"""
import sys
from pathlib import Path
root, out, hidden = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
sys.path[:0] = [root, root + "/benchmarks", root + "/benchmarks/c"]
from common import build_c
from targets import dense_lstm, masked
model = dense_lstm(hidden)
for i, case in enumerate(sys.argv[4:]):
    mask, sparsity = case.split(":")
    build_c(masked(model, mask, float(sparsity)), out / str(i))
"""


def build(checkout: Path, out: Path, hidden: int, cases: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, "-c", BUILD, str(checkout), str(out), str(hidden), *cases],
        cwd=checkout,
        env=env,
        check=True,
        capture_output=True,
    )


def step_ns(artifact: Path, rounds: int) -> float:
    out = subprocess.run(
        [sys.executable, str(HERE / "step_profile.py"), str(artifact), "--rounds", str(rounds)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(re.search(r"^\s*([\d.]+) ns\s+step$", out, re.M).group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", type=Path, required=True, help="a checkout of an older edgeprune")
    ap.add_argument("--cases", default=",".join(CASES), help="mask:sparsity, comma-separated")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--name", default="c_ab_steps", help="results/<name>.md and .json")
    args = ap.parse_args()
    cases = args.cases.split(",")
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="edgeprune-ab-") as tmp:
        sides = {"baseline": Path(tmp) / "old", "this": Path(tmp) / "new"}
        build(args.baseline.resolve(), sides["baseline"], args.hidden, cases)
        build(ROOT, sides["this"], args.hidden, cases)
        best = {(side, i): float("inf") for side in sides for i in range(len(cases))}
        for _ in range(args.repeats):
            for i in range(len(cases)):
                for side, out in sides.items():  # alternating: drifts in load hit both
                    best[side, i] = min(best[side, i], step_ns(out / str(i), args.rounds))
    rows = []
    for i, case in enumerate(cases):
        old, new = best["baseline", i] / 1000, best["this", i] / 1000
        rows.append([case, round(old, 3), round(new, 3), f"{old / new:.3f}x"])
    md = (
        f"LSTM-{args.hidden}, 28 inputs, 10 classes, `--kernel auto`; µs per step, fastest of {args.repeats} "
        f"alternating step_profile runs ({args.rounds} rounds each) per build; baseline `{args.baseline}`; "
        f"load average {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end.\n\n"
        + markdown_table(["case", "baseline µs", "this µs", "speed-up"], rows)
    )
    write_results(args.name, {"baseline": str(args.baseline), "hidden": args.hidden, "rows": rows}, md)
    print(md)


if __name__ == "__main__":
    main()

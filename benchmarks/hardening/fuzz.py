"""The long fuzz run: tests/fuzz with many random examples per loader; counts inputs and internal errors.

CI runs the same tests with a few dozen derandomized examples each (under ~30 s); this run draws
``--examples`` fresh random examples per test and writes ``results/fuzz.{md,json}`` with
"N mutated inputs, M internal errors" per loader (checkpoint, IR, ONNX, .npz dataset).

Run: ``PYTHONPATH=. python benchmarks/hardening/fuzz.py --examples 500``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from common import markdown_table, write_results  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=500, help="examples per fuzz test")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    os.environ["EDGEPRUNE_FUZZ_EXAMPLES"] = str(args.examples)
    import pytest
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    code = pytest.main(
        [str(ROOT / "tests" / "fuzz"), "-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning"]
    )
    wall = time.perf_counter() - start
    from tests.fuzz.mutations import STATS

    kinds = ("checkpoint", "IR", "ONNX", "dataset")
    rows = [
        [k, STATS[f"{k} inputs"], STATS[f"{k} loaded"], STATS[f"{k} refused"], STATS[f"{k} internal errors"]]
        for k in kinds
    ]
    total = sum(r[1] for r in rows)
    internal = sum(r[4] for r in rows)
    summary = f"{total} mutated inputs, {internal} internal errors"
    print(summary, f"(pytest exit {int(code)}, {wall:.0f} s, load average {os.getloadavg()[0]:.1f})")
    if not args.no_write:
        md = (
            f"**{summary}** ({args.examples} random examples per fuzz test, pytest exit code {int(code)}, "
            f"wall time {wall:.0f} s, load average {os.getloadavg()[0]:.1f} at the end).\n\n"
            "Every mutated input either loaded as a valid model/dataset or was refused with one "
            "`EdgepruneError` line; an internal error is any other exception, a hang or a file written.\n\n"
            + markdown_table(
                ["loader", "mutated inputs", "loaded (valid)", "refused (one line)", "internal errors"], rows
            )
        )
        write_results(
            "fuzz",
            {
                "summary": summary,
                "examples_per_test": args.examples,
                "pytest_exit": int(code),
                "wall_s": round(wall, 1),
                "load_average": os.getloadavg()[0],
                "rows": [dict(zip(["loader", "inputs", "loaded", "refused", "internal_errors"], r)) for r in rows],
            },
            md,
        )
    return int(code)


if __name__ == "__main__":
    sys.exit(main())

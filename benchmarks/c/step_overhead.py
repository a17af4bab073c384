"""What Python adds to one streaming step: ``CompiledModel.step`` / ``step_into`` vs the native step.

LSTM, 28 inputs, 10 classes, one thread: 8x1 blocks at 90% (the cheapest kernel, where the
overhead is the largest share), magnitude 90%, dense, and an LSTM-8 whose step costs next to
nothing. The native step time is a C loop of 64 ``<prefix>_step`` calls on one stream (with its
output) in one ctypes call, divided by 64 (the loop is built here against the model's shared
library); main's previous ``step`` (array conversion, shape checks, ``.ctypes.data`` per call, a
copy out) is reproduced here as ``old_step`` for a same-run comparison. Rounds are interleaved
(each round times every variant), the fastest round of each is reported, ratios within the run;
the load average is recorded.

    python benchmarks/c/step_overhead.py [--hidden 256] [--rounds 200]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np  # noqa: E402
from common import build_c, markdown_table, write_results  # noqa: E402

from edgeprune import frontend, prune  # noqa: E402
from edgeprune.runtime import CompiledModel  # noqa: E402

INPUTS, CLASSES, STREAMS = 28, 10, 64
NATIVE = "native step (64 in one call) / 64"


def old_step(m: CompiledModel, x_t: np.ndarray) -> np.ndarray:
    """main's CompiledModel.step before the bound buffers (one stream), for a same-run comparison."""
    x = np.ascontiguousarray(x_t, dtype=np.float32)
    x2 = x.reshape(1, -1)
    if x2.ndim != 2 or x2.shape[1] != m.input_size:
        raise ValueError
    state, xs, out = m._states.ctypes.data, x2.ctypes.data, m._logits.ctypes.data
    m._step(state, xs, out)
    return m._logits.copy()[0]


LOOP = """
void PREFIX_step(void *state, const float *x, float *out);
void steps(void *state, const float *x, float *out, int n)
{
    int i;
    for (i = 0; i < n; ++i)
        PREFIX_step(state, x, out);
}
"""


def native_loop(m: CompiledModel, directory: Path):
    """``steps(state, x, out, n)``: n native steps in one call, linked against the model's library."""
    (directory / "loop.c").write_text(LOOP.replace("PREFIX", m.prefix))
    lib = directory / "libloop.so"
    subprocess.run(
        [
            "cc",
            "-O2",
            "-shared",
            "-fPIC",
            "loop.c",
            f"-L{m.library.parent}",
            f"-l{m.prefix}",
            f"-Wl,-rpath,{m.library.parent}",
            "-o",
            str(lib),
        ],
        cwd=directory,
        check=True,
    )
    fn = ctypes.CDLL(str(lib)).steps
    fn.argtypes, fn.restype = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int), None
    return fn


def timed(fn, n: int) -> float:
    t0 = time.perf_counter_ns()
    for _ in range(n):
        fn()
    return (time.perf_counter_ns() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--name", default="c_step_overhead")
    args = ap.parse_args()
    import torch

    from benchmarks.c.targets import block_masked, dense_lstm

    torch.set_num_threads(1)
    H = args.hidden
    model = dense_lstm(H)
    graphs = {
        "dense": frontend.lower(model),
        "magnitude 90%": frontend.lower(prune.prune_model(model, "magnitude", 0.9, seed=0).model),
        "8x1 blocks 90%": block_masked(frontend.lower(model), (8, 1), 0.9),
        "LSTM-8 (the step ~ nothing)": frontend.lower(dense_lstm(8)),
    }
    rng = np.random.default_rng(0)
    x = rng.random(INPUTS, dtype=np.float32)
    load = os.getloadavg()
    rows, payload = [], {"hidden": H, "rounds": args.rounds, "load_average_start": load, "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        models = {}
        for k, (name, graph) in enumerate(graphs.items()):
            d = Path(tmp) / f"m{k}"
            build_c(graph, d, c_prefix=f"m{k}")  # one prefix each: the loops link to their own library
            models[name] = CompiledModel.load(d)
        variants = {}
        for name, m in models.items():
            loop = native_loop(m, m.library.parent.parent)
            state = np.zeros(m.state_bytes, np.uint8)
            out = np.empty(CLASSES, np.float32)
            ptrs = (state.ctypes.data, x.ctypes.data, out.ctypes.data)
            m.reset()
            variants[name] = {
                # the arrays ride along in the default arguments: the loop writes into them
                NATIVE: (lambda loop=loop, ptrs=ptrs, keep=(state, out): loop(*ptrs, STREAMS), 1),
                "step (before: main)": (lambda m=m: old_step(m, x), 1),
                "step": (lambda m=m: m.step(x), 1),
                "step_into": (lambda m=m, out=out: m.step_into(x, out), 1),
            }
        best = {(c, v): float("inf") for c in variants for v in variants[c]}
        for _ in range(args.rounds):  # interleaved: every variant of every case in each round
            for c, vs in variants.items():
                for v, (fn, _) in vs.items():
                    n = 20 if v == NATIVE else 400
                    t = timed(fn, n) / (STREAMS if v == NATIVE else 1)
                    best[(c, v)] = min(best[(c, v)], t)
    load_end = os.getloadavg()
    for c in variants:
        native = best[(c, NATIVE)]
        case = {v: round(best[(c, v)], 1) for v in variants[c]}
        payload["cases"][c] = case
        rows.append(
            [
                c,
                f"{native / 1000:.2f}",
                f"{(best[(c, 'step (before: main)')] - native) / 1000:.2f}",
                f"{(best[(c, 'step')] - native) / 1000:.2f}",
                f"{(best[(c, 'step_into')] - native) / 1000:.2f}",
            ]
        )
    payload["load_average_end"] = load_end
    md = (
        f"LSTM-{H}, 28 inputs, 10 classes, one thread; fastest of {args.rounds} interleaved rounds "
        f"(400 calls each); load average {load[0]:.2f} at the start, {load_end[0]:.2f} at the end.\n\n"
        "Overhead = Python call time minus the native step (µs). Target (issue 17): <= 1.5 µs.\n\n"
        + markdown_table(
            ["model", "native step µs", "overhead: step before", "overhead: step", "overhead: step_into"], rows
        )
    )
    write_results(args.name, payload, md)
    print(md)


if __name__ == "__main__":
    main()

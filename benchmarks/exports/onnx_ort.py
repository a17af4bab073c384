"""The onnx target in onnxruntime: file size, load memory and latency, dense vs pruned.

Question: does onnxruntime turn sparsity into anything but smaller files? It densifies sparse
weights at load and its LSTM kernel is dense, so the expectation is "no": same latency, same
resident memory, only the file shrinks with ``--sparse-weights``. This measures it.

    python benchmarks/exports/onnx_ort.py                      # H=256 LSTM, dense vs 90% sparse
    python benchmarks/exports/onnx_ort.py --instructions        # + valgrind instruction counts (slow)

Per configuration (sparsity x weight storage):
* file sizes of model.onnx and model_step.onnx;
* resident memory added by creating the session and running one call (fresh process each);
* latency per time step at batch 1, one intra-op thread: model_step.onnx (one call per step,
  states fed back) and model.onnx (one call per sequence of --steps, divided by --steps);
* with ``--instructions``: instructions per step under valgrind (callgrind), collected only inside
  a tiny C loop (compiled here with gcc against valgrind's callgrind.h) that makes the calls, so
  start-up and loading are excluded. Wall-clock time on a shared machine is noisy; instruction counts are not.

Weights are a randomly initialised model pruned by magnitude: latency and size do not depend on
training. Results: benchmarks/results/exports_onnx_ort.{md,json}.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import markdown_table, write_results  # noqa: E402

STORAGES = ("off", "constant", "initializer")


def _rss_kib() -> tuple[int, int]:
    status = Path("/proc/self/status").read_text()
    get = lambda key: int(re.search(rf"^{key}:\s+(\d+) kB", status, re.M).group(1))  # noqa: E731
    return get("VmRSS"), get("VmHWM")


def _feeds(session, batch: int = 1, steps: int | None = None) -> dict:
    rng = np.random.default_rng(0)
    feeds = {}
    for i in session.get_inputs():
        shape = [batch if d == "batch" else (steps if d == "time" else d) for d in i.shape]
        feeds[i.name] = (
            rng.standard_normal(shape).astype(np.float32) if i.name in ("x", "x_t") else np.zeros(shape, np.float32)
        )
    return feeds


def _stepper(session):
    """One streaming step per call, the new states fed back as the next call's inputs."""
    feeds = _feeds(session)
    states = [i.name for i in session.get_inputs()[1:]]

    def step():
        out = session.run(None, feeds)
        feeds.update(zip(states, out[1:]))

    return step


def _ort_session(path):
    """The session edgeprune's runner makes (backends.onnx.session), built here without importing edgeprune so
    that a worker process holds onnxruntime and numpy only."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def worker(args) -> None:
    """Run in a fresh process: memory of loading one file, or K calls for instruction counting."""
    make_session = _ort_session
    if args.worker == "load":
        import onnxruntime  # noqa: F401  (its own footprint is not the model's)

        before, _ = _rss_kib()
        sess = make_session(args.path)
        call = _stepper(sess) if "step" in Path(args.path).name else (lambda: sess.run(None, _feeds(sess, 1, 8)))
        call()
        after, peak = _rss_kib()
        print(json.dumps({"rss_added_kib": after - before, "peak_added_kib": peak - before}))
    else:  # "calls"
        sess = make_session(args.path)
        if "step" in Path(args.path).name:
            call = _stepper(sess)
        else:
            feeds = _feeds(sess, 1, args.steps)
            call = lambda: sess.run(None, feeds)  # noqa: E731
        call()  # first run: lazy initialisation stays outside the measured loop
        done = []

        def counted():
            call()
            done.append(1)

        # callgrind collects only inside edgeprune_measured_loop, i.e. exactly these calls
        loop = ctypes.CDLL(args.marker).edgeprune_measured_loop
        loop(ctypes.CFUNCTYPE(None)(counted), args.calls)
        if len(done) != args.calls:
            raise SystemExit(f"only {len(done)} of {args.calls} calls ran")


def _subprocess(*extra) -> str:
    cmd = [sys.executable, str(Path(__file__).resolve()), *map(str, extra)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout


MARKER_C = """
/* The measured region: callgrind collects (valgrind client requests) only while the callback runs. */
#include <valgrind/callgrind.h>
typedef void (*callback)(void);
void edgeprune_measured_loop(callback cb, int n) {
    CALLGRIND_TOGGLE_COLLECT;
    for (int i = 0; i < n; i++) cb();
    CALLGRIND_TOGGLE_COLLECT;
}
"""


def _marker_library(directory: Path) -> Path:
    source, lib = directory / "marker.c", directory / "libmarker.so"
    source.write_text(MARKER_C)
    subprocess.run(["gcc", "-O0", "-shared", "-fPIC", "-o", str(lib), str(source)], check=True)
    return lib


def _instructions_per_step(path: Path, calls: int, steps: int, steps_per_call: int, marker: Path) -> float:
    """Instructions inside the measured loop of ``calls`` calls (start-up and loading excluded), per step."""
    out = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            "--collect-atstart=no",
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            "calls",
            "--path",
            str(path),
            "--calls",
            str(calls),
            "--steps",
            str(steps),
            "--marker",
            str(marker),
        ],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    ).stderr
    return int(re.search(r"Collected : (\d+)", out).group(1)) / (calls * steps_per_call)


def _identity_model(path: Path, features: int) -> Path:
    """An Identity model with the step file's input: what a call costs before any computing."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x_t"], ["y"])],
        "empty",
        [helper.make_tensor_value_info("x_t", TensorProto.FLOAT, ["batch", features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", features])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _latency_us(call, calls: int, rounds: int) -> tuple[float, float]:
    """(median, min) over ``rounds`` of the mean time per call, in microseconds."""
    for _ in range(max(10, calls // 10)):
        call()
    means = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(calls):
            call()
        means.append((time.perf_counter() - t) / calls * 1e6)
    return float(np.median(means)), float(np.min(means))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cell", default="lstm", choices=("lstm", "gru", "rnn"))
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--steps", type=int, default=100, help="sequence length for model.onnx")
    p.add_argument("--sparsity", type=float, nargs="+", default=[0.0, 0.9])
    p.add_argument("--step-calls", type=int, default=2000)
    p.add_argument("--sequence-calls", type=int, default=40)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--instructions", action="store_true", help="also count instructions with valgrind (slow)")
    p.add_argument("--instruction-step-calls", type=int, default=200, help="model_step.onnx calls under callgrind")
    p.add_argument("--instruction-sequence-calls", type=int, default=5, help="model.onnx calls under callgrind")
    p.add_argument("--jobs", type=int, default=2, help="valgrind runs at a time")
    p.add_argument("--worker", choices=("load", "calls"), help=argparse.SUPPRESS)
    p.add_argument("--path", help=argparse.SUPPRESS)
    p.add_argument("--calls", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--marker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)

    import torch

    from edgeprune import frontend, prune
    from edgeprune.backends import get
    from edgeprune.backends.onnx import session as make_session
    from edgeprune.models import ModelConfig, SequenceClassifier

    torch.set_num_threads(1)
    torch.manual_seed(0)
    dense = SequenceClassifier(ModelConfig(args.cell, args.features, (args.hidden,), args.classes)).eval()
    backend = get("onnx")
    rows, records, pending = [], [], []
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=args.jobs)
    baseline = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.instructions:
            marker = _marker_library(Path(tmp))
            baseline = pool.submit(
                _instructions_per_step,
                _identity_model(Path(tmp) / "identity.onnx", args.features),
                args.instruction_step_calls,
                1,
                1,
                marker,
            )
        for sparsity in args.sparsity:
            model = prune.prune_model(dense, "magnitude", sparsity).model if sparsity else dense
            low = frontend.lower(model)
            for storage in STORAGES:
                if storage != "off" and not sparsity:
                    continue  # nothing to store sparse
                out = Path(tmp) / f"{sparsity}-{storage}"
                out.mkdir()
                backend.emit(low, out, {"opset": 17, "sparse_weights": storage})
                seq_path, step_path = out / "model.onnx", out / "model_step.onnx"
                rec = {
                    "sparsity": sparsity,
                    "storage": storage,
                    "recurrent_nnz": low.nnz(),
                    "model_onnx_bytes": seq_path.stat().st_size,
                    "model_step_onnx_bytes": step_path.stat().st_size,
                }
                for name, path in (("step", step_path), ("sequence", seq_path)):
                    mem = json.loads(_subprocess("--worker", "load", "--path", path))
                    rec[f"{name}_load_rss_kib"] = mem["rss_added_kib"]
                    rec[f"{name}_load_peak_kib"] = mem["peak_added_kib"]
                step_sess, seq_sess = make_session(step_path), make_session(seq_path)
                rec["step_us"], rec["step_us_min"] = _latency_us(_stepper(step_sess), args.step_calls, args.rounds)
                feeds = _feeds(seq_sess, 1, args.steps)
                seq_us, seq_min = _latency_us(lambda: seq_sess.run(None, feeds), args.sequence_calls, args.rounds)  # noqa: B023 - called within this iteration
                rec["sequence_us_per_step"], rec["sequence_us_per_step_min"] = seq_us / args.steps, seq_min / args.steps
                if args.instructions:
                    pending.append(
                        (
                            rec,
                            {
                                "step": pool.submit(
                                    _instructions_per_step,
                                    step_path,
                                    args.instruction_step_calls,
                                    args.steps,
                                    1,
                                    marker,
                                ),
                                "sequence": pool.submit(
                                    _instructions_per_step,
                                    seq_path,
                                    args.instruction_sequence_calls,
                                    args.steps,
                                    args.steps,
                                    marker,
                                ),
                            },
                        )
                    )
                records.append(rec)
                print(json.dumps(rec), flush=True)
        for rec, futures in pending:  # wait for valgrind while the files still exist
            for name, job in futures.items():
                rec[f"{name}_instructions_per_step"] = job.result()
            print(json.dumps(rec), flush=True)
        baseline = baseline.result() if baseline else None
    pool.shutdown()
    for rec in records:
        rows.append(
            [
                f"{rec['sparsity']:.0%}",
                rec["storage"],
                rec["recurrent_nnz"],
                rec["model_onnx_bytes"],
                rec["model_step_onnx_bytes"],
                rec["step_load_rss_kib"],
                rec["sequence_load_rss_kib"],
                round(rec["step_us"], 1),
                round(rec["sequence_us_per_step"], 2),
            ]
            + (
                [round(rec["step_instructions_per_step"]), round(rec["sequence_instructions_per_step"])]
                if args.instructions
                else []
            )
        )
    columns = [
        "sparsity",
        "weights stored",
        "recurrent nnz",
        "model.onnx bytes",
        "model_step.onnx bytes",
        "load RSS step (KiB)",
        "load RSS seq (KiB)",
        "µs/step (model_step)",
        "µs/step (model.onnx)",
    ]
    if args.instructions:
        columns += ["instr/step (model_step)", "instr/step (model.onnx)"]
    import onnxruntime

    setup = (
        f"{args.cell.upper()} H={args.hidden}, {args.features} inputs, {args.classes} classes; batch 1; "
        f"onnxruntime {onnxruntime.__version__}, CPU provider, 1 intra-op thread; model.onnx runs "
        f"{args.steps}-step sequences (µs/step = per call / {args.steps}); medians of {args.rounds} rounds."
    )
    md = f"# onnxruntime: dense vs pruned\n\n{setup}\n\n{markdown_table(columns, rows)}\n"
    if baseline is not None:
        md += (
            f"\nA call of an Identity model with the same input costs {baseline:,.0f} instructions "
            "(Python binding and onnxruntime's per-run work), included in the model_step column.\n"
        )
    payload = {"setup": setup, "args": vars(args), "results": records, "identity_call_instructions": baseline}
    paths = write_results("exports_onnx_ort", payload, md)
    print(md)
    print("wrote", *paths)


if __name__ == "__main__":
    main()

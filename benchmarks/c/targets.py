"""Issue 5's speed, size and Cortex-M4 targets, measured side by side in one run.

LSTM, 28 inputs, 10 classes, batch 1, one thread, H = 128 / 256 / 1024 (random init: the cost of
a step depends on the pattern, not on the values). Per H, the dense baselines once (pruned zeros
cost a dense kernel the same):

* our dense kernel (``--kernel dense``), ORT's fused LSTM over a 28-step sequence (time / 28),
  ORT one step per ``Run`` (state in and out, as a streaming app calls it), LiteRT's dense step
  model (XNNPACK) driven through ``LiteRTRunner.step``;

then our kernels on masks at sparsities 0..0.98: magnitude (irregular), random-regular and expander
(every row the same count: ELL), block-expander with 8x1 / 4x1 / 1x4 tiles (block-regular), and
random 8x1 / 4x1 / 1x4 block masks built here, with ``--kernel auto`` and each forced kernel. Our step is timed by
edgeprune.bench's benchmark program (``bench/native/ep_bench_main.c`` around the generated code, built
with the artifact's own flags, ``-march=native`` included: every step call timed alone with
``clock_gettime``, the fastest and the median reported) and, for auto, also from Python through
``CompiledModel.step`` (ctypes). Baselines are timed in Python: their
Python API is how they are called. Wall-clock figures are the fastest of many rounds, with the
median alongside; the machine's load is recorded. ``--callgrind`` adds instruction counts per step
of our builds (load-independent: callgrind counting inside ``<prefix>_step`` of the same program).

Sizes: bytes per nonzero for every build, and the H=256, 90% model built for the Cortex-M4
(flash = tables + code of the model + the runtime functions it calls), fp32 and int8. Cortex-M4
instructions per nonzero come from ``benchmarks/c/kernels.py`` (its results file is read if present).

    python benchmarks/c/targets.py                      # H = 128, 256, 1024 (~30 min on a quiet machine)
    python benchmarks/c/targets.py --hidden 256 --quick # the H=256 rows only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np  # noqa: E402
from common import RESULTS, build_c, markdown_table, write_results  # noqa: E402

from edgeprune import frontend, ir, prune  # noqa: E402
from edgeprune.backends import get  # noqa: E402
from edgeprune.bench.programs import ProgramSettings, parse_program_output  # noqa: E402
from edgeprune.bench.targets.c import build_program  # noqa: E402
from edgeprune.bench.toolchains import normalize_arch  # noqa: E402
from edgeprune.runtime import CompiledModel  # noqa: E402

C = get("c")
INPUTS, CLASSES, STEPS = 28, 10, 28
MASKS = (
    "magnitude",
    "random-regular",
    "expander",
    "block-expander-8x1",
    "block-expander-4x1",
    "block-expander-1x4",
    "block8x1",
    "block4x1",
    "block1x4",
)
SPARSITIES = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98)
KERNELS_FOR = {
    "magnitude": ("auto", "csr", "ell"),
    "random-regular": ("auto", "ell"),
    "expander": ("auto", "ell"),
    **{m: ("auto", "bsr") for m in MASKS if "block" in m},
}
ROUND_NS = 1e6
# the speed-up at 90% over the best dense: irregular 2x, regular (expander -> ELL) 3x,
# block-regular (block-expander -> SIMD block kernels) 5x
TARGETS = {"magnitude": 2.0, "random-regular": 3.0, "expander": 3.0, **{m: 5.0 for m in MASKS if "block" in m}}


# --- models and masks --------------------------------------------------------------------------


def dense_lstm(H: int):
    import torch

    from edgeprune.models import ModelConfig, SequenceClassifier

    torch.manual_seed(H)
    return SequenceClassifier(ModelConfig("lstm", INPUTS, (H,), CLASSES)).eval()


def block_masked(graph: ir.Model, shape: tuple[int, int], sparsity: float, seed: int = 0) -> ir.Model:
    """Keep whole blocks of the gate matrix, aligned to each gate block and to the x / h segments."""
    layer = graph.layers[0]
    w = layer.weight.to_dense()
    keep = np.zeros(w.shape, bool)
    rng = np.random.default_rng(seed)
    br, bc = shape
    for c0, c1 in ((0, layer.input_size), (layer.input_size, layer.cols)):
        grid = rng.random((w.shape[0] // br, (c1 - c0) // bc)) >= sparsity
        keep[:, c0:c1] = np.kron(grid, np.ones(shape, bool))
    out = ir.Model(
        graph.input_size,
        [
            ir.Layer(layer.cell, layer.input_size, layer.hidden_size, 0, ir.CSR.from_dense(w, keep), layer.bias),
            graph.head,
        ],
        meta=dict(graph.meta),
    )
    return out.validate()


def masked(model, mask: str, sparsity: float) -> ir.Model:
    graph = frontend.lower(model)
    if sparsity == 0:
        return graph
    if mask.startswith("block-expander-"):
        pruned = prune.prune_model(
            model, "block-expander", sparsity, seed=0, options={"block": mask[len("block-expander-") :]}
        ).model
        return frontend.lower(pruned)
    if mask.startswith("block"):
        return block_masked(graph, tuple(int(v) for v in mask[5:].split("x")), sparsity)
    pruned = prune.prune_model(model, mask, sparsity, seed=0).model
    return frontend.lower(pruned)


# --- our builds ----------------------------------------------------------------------------------


def build(graph: ir.Model, directory: Path, **given):
    return build_c(graph, directory, **given)


def python_step_ns(directory: Path, rounds: int) -> tuple[float, float]:
    model = CompiledModel.load(directory)
    model.reset()
    x = np.random.default_rng(0).random(INPUTS, dtype=np.float32)
    return best_of(lambda: model.step(x), rounds)


def best_of(fn, rounds: int, n: int | None = None) -> tuple[float, float]:
    """(fastest, median) over ``rounds`` of the mean time of ``n`` calls (default: ~1 ms a round), in ns."""
    for _ in range(3):
        fn()
    if n is None:
        t0 = time.perf_counter_ns()
        for _ in range(5):
            fn()
        n = int(min(10000, max(1, ROUND_NS / max(1.0, (time.perf_counter_ns() - t0) / 5))))
    per = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn()
        per.append((time.perf_counter_ns() - t0) / n)
    return float(np.min(per)), float(np.median(per))


# --- baselines -----------------------------------------------------------------------------------


def onnx_lstm(graph: ir.Model, step: bool) -> bytes:
    """The IR's LSTM as ONNX's fused LSTM op (+ the head); ``step``: one step with the state in and out."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    layer = graph.layers[0]
    H, I = layer.hidden_size, layer.input_size
    w = layer.weight.to_dense()
    order = np.concatenate([np.arange(k * H, (k + 1) * H) for k in (0, 3, 1, 2)])  # IR i,f,g,o -> ONNX i,o,f,c
    W, R = w[order, :I][None], w[order, I : I + H][None]
    B = np.concatenate([layer.bias[order], np.zeros(4 * H, np.float32)])[None]
    head_w, head_b = graph.head.weight.to_dense().T, graph.head.bias
    inits = [
        numpy_helper.from_array(a.astype(np.float32), n)
        for a, n in ((W, "W"), (R, "R"), (B, "B"), (head_w, "head_w"), (head_b, "head_b"))
    ]
    T = 1 if step else "T"
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [T, 1, I])]
    lstm_in = ["x", "W", "R", "B"]
    if step:
        inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1, H]) for n in ("h", "c")]
        lstm_in += ["", "h", "c"]
    nodes = [
        helper.make_node("LSTM", lstm_in, ["", "h_next", "c_next"], hidden_size=H),
        helper.make_node("Reshape", ["h_next", "shape"], ["h_flat"]),
        helper.make_node("MatMul", ["h_flat", "head_w"], ["z"]),
        helper.make_node("Add", ["z", "head_b"], ["logits"]),
    ]
    inits.append(numpy_helper.from_array(np.array([1, H], np.int64), "shape"))
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, CLASSES])]
    if step:
        outputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1, H]) for n in ("h_next", "c_next")]
    model = helper.make_model(
        helper.make_graph(nodes, "lstm", inputs, outputs, inits), opset_imports=[helper.make_opsetid("", 17)]
    )
    onnx.checker.check_model(model)
    return model.SerializeToString()


def ort_session(data: bytes):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def baselines(graph: ir.Model, work: Path, rounds: int) -> dict:
    """Per-step ns (fastest, median) of the dense baselines, each checked against the reference first."""
    out = {}
    X = np.random.default_rng(1).random((1, STEPS, INPUTS), dtype=np.float32)
    reference = ir.ReferenceExecutor(graph).run(X)[0]
    H = graph.layers[0].hidden_size
    seq = ort_session(onnx_lstm(graph, step=False))
    xs = np.ascontiguousarray(X.transpose(1, 0, 2))
    assert np.abs(seq.run(["logits"], {"x": xs})[0][0] - reference).max() < 1e-4
    fast, med = best_of(lambda: seq.run(["logits"], {"x": xs}), rounds)
    out["ORT fused LSTM (sequence / 28)"] = (fast / STEPS, med / STEPS)
    step = ort_session(onnx_lstm(graph, step=True))
    state = {"h": np.zeros((1, 1, H), np.float32), "c": np.zeros((1, 1, H), np.float32)}
    for t in range(STEPS):
        logits, state["h"], state["c"] = step.run(None, {"x": X[:, t][None], **state})
    assert np.abs(logits[0] - reference).max() < 1e-4

    def ort_step():
        _, state["h"], state["c"] = step.run(None, {"x": X[:, 0][None], **state})

    out["ORT one step per Run"] = best_of(ort_step, rounds)
    try:
        from edgeprune.backends import tflite as T

        path = work / f"litert{H}.tflite"
        path.write_bytes(T.build_step_model(graph, "f32", "dense"))
        runner = T.LiteRTRunner(path, "xnnpack")
        runner.reset(1)
        for t in range(STEPS):
            logits = runner.step(X[:, t])
        assert np.abs(logits[0] - reference).max() < 1e-4
        out["LiteRT dense step (XNNPACK)"] = best_of(lambda: runner.step(X[:, 0]), rounds)
    except ImportError as e:
        print(f"LiteRT skipped: {e}")
    return out


# --- the run -------------------------------------------------------------------------------------


def step_program(directory: Path, info: dict, settings: ProgramSettings):
    """edgeprune.bench's benchmark program for this build, on this machine, stepping only."""
    X = np.random.default_rng(0).random((1, STEPS, INPUTS), dtype=np.float32)
    return build_program(
        directory,
        info["prefix"],
        normalize_arch(platform.machine()),
        X,
        settings,
        directory / "bench",
        shlex.split(info["cflags"]),
        classes=CLASSES,
    )


def time_per_step(directory: Path, info: dict, reps: int) -> dict:
    """Every step call timed alone: the fastest (a call nothing preempted) and the median, in ns."""
    settings = ProgramSettings(warmup=STEPS, min_reps=reps, max_reps=reps, budget_ns=0, modes=("step",))
    program = step_program(directory, info, settings)
    done = subprocess.run([str(program.path)], capture_output=True, text=True, timeout=1800, check=True)
    samples = sorted(parse_program_output(done.stdout)["latency"]["step"]["samples"])
    return {"ns_per_step": float(samples[0]), "ns_per_step_median": float(samples[len(samples) // 2])}


def instructions_per_step(directory: Path, info: dict, reps: int = 200) -> float:
    """callgrind's count inside ``<prefix>_step`` over the program's step calls: the outputs pass
    (STEPS calls for the one embedded sequence) and ``reps`` timed calls, no warm-up."""
    settings = ProgramSettings(warmup=0, min_reps=reps, max_reps=reps, budget_ns=0, modes=("step",))
    program = step_program(directory, info, settings)
    out = directory / "callgrind.out"
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            f"--toggle-collect={info['prefix']}_step",
            str(program.path),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    m = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or not m:
        raise SystemExit(f"callgrind failed: {done.stderr.strip()[-200:]}")
    return int(m.group(1)) / (STEPS + reps)


def measure_ours(graph, directory: Path, args, **options) -> dict:
    artifact = build(graph, directory, **options)
    info = artifact.info
    timing = time_per_step(directory, info, args.reps)
    row = {
        "ns": timing["ns_per_step"],
        "ns_median": timing["ns_per_step_median"],
        "formats": {k: v["format"] for k, v in info["matrices"].items()},
        "bytes_per_nonzero": info["bytes_per_nonzero"],
        "weight_bytes": info["weight_bytes"]["total"],
        "nnz": graph.nnz(True),
    }
    if args.callgrind:
        row["instructions"] = instructions_per_step(directory, info)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", default="128,256,1024")
    ap.add_argument("--masks", default=",".join(MASKS))
    ap.add_argument("--quick", action="store_true", help="sparsities 0.5, 0.9, 0.95 only")
    ap.add_argument("--rounds", type=int, default=200, help="timing rounds of the Python-side baselines")
    ap.add_argument("--reps", type=int, default=4000, help="timed step calls of our builds (the fastest is reported)")
    ap.add_argument("--callgrind", action="store_true", help="also count instructions per step (valgrind)")
    ap.add_argument("--no-m4", action="store_true", help="skip the Cortex-M4 flash builds")
    ap.add_argument("--name", default="c_targets")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="edgeprune-targets-"))
    results: dict = {"hidden": {}, "load_before": load_before}
    try:
        for H in [int(h) for h in args.hidden.split(",")]:
            model = dense_lstm(H)
            dense_graph = frontend.lower(model)
            entry = {"baselines": {}, "masks": {}}
            base = baselines(dense_graph, work, max(10, args.rounds // 2))
            ours_dense = measure_ours(dense_graph, work / f"dense{H}", args, kernel="dense")
            base["edgeprune dense kernel"] = (ours_dense["ns"], ours_dense["ns_median"])
            entry["baselines"] = {k: {"ns": v[0], "ns_median": v[1]} for k, v in base.items()}
            best_dense = min(v["ns"] for v in entry["baselines"].values())
            print(H, {k: round(v[0] / 1000, 2) for k, v in base.items()}, flush=True)
            sparsities = (0.5, 0.9, 0.95) if args.quick else SPARSITIES
            if H >= 1024:
                sparsities = (0.9, 0.95)
            for mask in args.masks.split(","):
                rows = []
                for s in sparsities:
                    if mask != "magnitude" and s < 0.5:
                        continue
                    graph = masked(model, mask, s)
                    row = {"sparsity": s, "kernels": {}}
                    kernels = KERNELS_FOR[mask] + (("dense",) if mask == "magnitude" and H < 1024 else ())
                    for kernel in kernels:
                        row["kernels"][kernel] = measure_ours(
                            graph, work / f"{H}-{mask}-{s}-{kernel}", args, kernel=kernel
                        )
                    auto_dir = work / f"{H}-{mask}-{s}-auto"
                    row["auto_python_ns"] = python_step_ns(auto_dir, max(10, args.rounds // 2))[0]
                    if s == 0.9:
                        row["int8_auto"] = measure_ours(
                            graph, work / f"{H}-{mask}-{s}-int8", args, kernel="auto", dtype="int8"
                        )
                    best = min(r["ns"] for k, r in row["kernels"].items() if k != "dense")
                    row["speedup_auto"] = best_dense / row["kernels"]["auto"]["ns"]
                    row["speedup_best_kernel"] = best_dense / best
                    rows.append(row)
                    print(
                        H,
                        mask,
                        s,
                        {
                            k: (round(r["ns"] / 1000, 2), r["formats"]["layers.0.weight"])
                            for k, r in row["kernels"].items()
                        },
                        f"auto x{row['speedup_auto']:.2f}",
                        flush=True,
                    )
                entry["masks"][mask] = rows
            results["hidden"][H] = entry
        if not args.no_m4 and shutil.which("arm-none-eabi-gcc"):
            results["m4_flash"] = m4_flash(work)
        results["load_after"] = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_results(args.name, {"args": vars(args), **results}, report(results))


def m4_flash(work: Path) -> dict:
    """H=256 at 90%: flash of the Cortex-M4 build (auto for the M4's cost model, and smallest)."""
    model = dense_lstm(256)
    out = {}
    for mask in ("magnitude", "random-regular", "block8x1", "block4x1"):
        graph = masked(model, mask, 0.9)
        for dtype in ("f32", "int8"):
            for kernel in ("auto", "smallest"):
                a = build(graph, work / f"m4-{mask}-{dtype}-{kernel}", arch="cortex-m4", dtype=dtype, kernel=kernel)
                out[f"{mask}/{dtype}/{kernel}"] = {
                    "flash_bytes": a.info["flash_bytes"],
                    "ram_bytes": a.info["ram_bytes"],
                    "bytes_per_nonzero": a.info["bytes_per_nonzero"],
                    "formats": a.info["matrices"]["layers.0.weight"]["format"],
                }
                print("m4", mask, dtype, kernel, out[f"{mask}/{dtype}/{kernel}"], flush=True)
    return out


def never_slower(H: int, entry: dict) -> list:
    """auto vs our dense kernel over every mask and sparsity of this H.

    A dense step costs the same whatever the mask, so each row compares with the dense build of
    its own row where there is one, else with the dense baseline. Rows where auto chose dense for
    every matrix run the dense code itself: their ratio is the timer's noise, so they are counted
    apart. With ``--callgrind``, instruction counts give a load-independent ratio as well.
    """
    base = entry["baselines"]["edgeprune dense kernel"]
    ratios, instr, same = [], [], 0
    for rows in entry["masks"].values():
        for r in rows:
            auto = r["kernels"]["auto"]
            dense = r["kernels"].get("dense")
            if all(f == "dense" for f in auto["formats"].values()):
                same += 1
                continue
            ratios.append(auto["ns"] / (dense or base)["ns"])
            if "instructions" in auto and dense and "instructions" in dense:
                instr.append(auto["instructions"] / dense["instructions"])
    worst = max(ratios, default=0.0)
    text = f"worst auto/dense {worst:.2f} wall-clock over {len(ratios)} sparse choices"
    if instr:
        text += f", {max(instr):.2f} in instructions"
    text += f"; {same} rows where auto kept dense (same code)"
    return [
        f"H={H}: --kernel auto never slower than dense (all masks, 0..98%)",
        text,
        "met" if worst <= 1.05 else "not met",
    ]


def _us(ns) -> str:
    return "-" if ns is None else f"{ns / 1000:.2f}"


def report(results: dict) -> str:
    md = [
        f"LSTM, {INPUTS} inputs, {CLASSES} classes, batch 1, one thread. Times: microseconds per streaming step, the "
        "fastest of many rounds (median in brackets). Load average {:.1f} before, {:.1f} after: on a shared "
        "machine the fastest round is the better estimate, and only ratios within one run are comparable.".format(
            results["load_before"][0], results.get("load_after", results["load_before"])[0]
        )
    ]
    summary = []
    for H, entry in results["hidden"].items():
        base = entry["baselines"]
        md.append(
            f"## H = {H}\n\nDense baselines (pruned zeros cost them the same):\n\n"
            + markdown_table(
                ["implementation", "us/step"], [[k, f"{_us(v['ns'])} ({_us(v['ns_median'])})"] for k, v in base.items()]
            )
        )
        ort_step = base.get("ORT one step per Run", {}).get("ns")
        for mask, rows in entry["masks"].items():
            kernels = list(rows[0]["kernels"]) if rows else []
            table = []
            for r in rows:
                line = [f"{r['sparsity']:.0%}"]
                for k in kernels:
                    got = r["kernels"][k]
                    line.append(
                        f"{_us(got['ns'])} ({got['formats']['layers.0.weight']}, {got['bytes_per_nonzero']} B/nnz)"
                    )
                line += [_us(r["auto_python_ns"]), f"{r['speedup_auto']:.2f}x", f"{r['speedup_best_kernel']:.2f}x"]
                if ort_step:
                    line.append(f"{ort_step / r['kernels']['auto']['ns']:.1f}x")
                if "int8_auto" in r:
                    i8 = r["int8_auto"]
                    line.append(f"{_us(i8['ns'])}, {i8['bytes_per_nonzero']} B/nnz")
                else:
                    line.append("-")
                table.append(line)
            columns = (
                ["sparsity"]
                + [f"--kernel {k}" for k in kernels]
                + ["auto via CompiledModel.step (Python)", "auto vs best dense", "best kernel vs best dense"]
            )
            columns += ["auto vs ORT step/Run"] if ort_step else []
            columns += ["int8 auto"]
            md.append(f"### {mask} mask, H = {H}\n\n" + markdown_table(columns, table))
            at90 = [r for r in rows if r["sparsity"] == 0.9]
            if at90:
                target = TARGETS[mask] if H != 1024 or mask == "magnitude" else None
                if H == 1024 and mask == "magnitude":
                    target = 5.0
                if target and H in (256, 1024):
                    got = at90[0]["speedup_auto"]
                    summary.append(
                        [
                            f"H={H}, {mask}, 90%: >= {target:g}x vs best dense",
                            f"{got:.2f}x",
                            "met" if got >= target else "not met",
                        ]
                    )
                if ort_step and H == 256:
                    got = ort_step / at90[0]["kernels"]["auto"]["ns"]
                    summary.append(
                        [
                            f"H={H}, {mask}, 90%: >= 5x vs ORT one step per Run",
                            f"{got:.1f}x",
                            "met" if got >= 5 else "not met",
                        ]
                    )
        summary.append(never_slower(H, entry))
    for H, entry in results["hidden"].items():
        for mask, rows in entry["masks"].items():
            for r in rows:
                if r["sparsity"] == 0.9 and "int8_auto" in r and H == 256:
                    b = r["int8_auto"]["bytes_per_nonzero"]
                    summary.append(
                        [
                            f"int8 bytes per nonzero (H=256, 90%, {mask}) <= 2.2",
                            f"{b}",
                            "met" if b <= 2.2 else "not met",
                        ]
                    )
                if r["sparsity"] == 0.9 and H == 256:
                    b = r["kernels"]["auto"]["bytes_per_nonzero"]
                    summary.append(
                        [f"fp32 bytes per nonzero (H=256, 90%, {mask}) <= 6", f"{b}", "met" if b <= 6 else "not met"]
                    )
    if "m4_flash" in results:
        rows = [
            [
                k,
                f"{v['flash_bytes'] / 1024:.1f} KiB",
                f"{v['ram_bytes']:,} B" if "ram_bytes" in v else "-",
                v["bytes_per_nonzero"],
                v["formats"],
            ]
            for k, v in results["m4_flash"].items()
        ]
        md.append(
            "## H = 256 at 90%, Cortex-M4 build (flash = model tables and code + the runtime functions it "
            "calls)\n\n" + markdown_table(["mask / dtype / kernel", "flash", "RAM", "B/nnz", "gate formats"], rows)
        )
        for k, v in results["m4_flash"].items():
            if k.endswith("/smallest"):
                limit = 180 if "/f32/" in k else 64
                summary.append(
                    [
                        f"H=256 90% flash, {k}: <= {limit} KiB",
                        f"{v['flash_bytes'] / 1024:.1f} KiB",
                        "met" if v["flash_bytes"] <= limit * 1024 else "not met",
                    ]
                )
    kernels_file = RESULTS / "c_kernels.json"
    if kernels_file.exists():
        fits = json.loads(kernels_file.read_text())["profiles"].get("cortex-m4", {})
        for dtype, limit in (("f32", 5), ("int8", 3)):
            for fmt, fit in fits.get(dtype, {}).items():
                if fmt == "stream":
                    continue
                summary.append(
                    [
                        f"Cortex-M4 (QEMU, emulated instructions) {dtype} {fmt}: <= {limit} per weight",
                        f"{fit['per_stored']:.2f}",
                        "met" if fit["per_stored"] <= limit else "not met",
                    ]
                )
    md.insert(1, "## Targets\n\n" + markdown_table(["target", "measured", ""], summary))
    return "\n\n".join(md)


if __name__ == "__main__":
    main()

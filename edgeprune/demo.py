"""The demo pipeline: train -> prune -> compile -> verify, on the bundled digits data, then what the
pruning bought: time per streaming step dense vs pruned in each runtime (measured in the same run,
interleaved rounds, the fastest of each) and the Cortex-M4 build's flash and RAM."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import backends, checkpoint, data, ir, prune
from .compiler import CompileReport, compile_source, load_source, verification_inputs
from .models import ModelConfig, SequenceClassifier
from .options import resolve
from .train import parameter_count, seed_everything, train, use_threads


@dataclass
class DemoResult:
    rows: list[list]  # model, accuracy, recurrent nnz, sparsity
    compile_report: CompileReport
    out_dir: Path
    speed: list[list] = field(default_factory=list)  # runtime, dense µs/step, pruned µs/step, speed-up
    sizes: list[list] = field(default_factory=list)  # build, dense, pruned, ratio (flash / RAM bytes)
    notes: list[str] = field(default_factory=list)  # what was skipped, and why


def run_demo(
    out_dir: str | Path,
    *,
    seed: int = 0,
    hidden: int = 64,
    epochs: int = 30,
    sparsity: float = 0.9,
    finetune_epochs: int = 15,
    progress: bool = False,
    log=print,
    threads: int | None = None,
    speed_seconds: float = 3.0,
) -> DemoResult:
    out_dir = Path(out_dir)
    ds = data.load("digits")
    log(ds.describe())
    config = ModelConfig("lstm", ds.features, (hidden,), ds.num_classes)
    use_threads(threads, parameter_count(config))
    seed_everything(seed)
    model = SequenceClassifier(config)
    trained = train(model, ds, epochs=epochs, lr=1e-2, seed=seed, progress=progress, description="train LSTM")
    log(f"trained LSTM-{hidden}: test accuracy {trained.test_accuracy:.2%} ({trained.seconds:.1f} s)")
    meta = {"dataset": "digits", "sequence_length": ds.steps, "accuracy": trained.test_accuracy}
    checkpoint.save(model, out_dir / "dense.pt", meta)

    outcome = prune.prune_model(
        model,
        "magnitude",
        sparsity,
        seed=seed,
        dataset=ds,
        finetune_epochs=finetune_epochs,
        finetune_lr=1e-2,
        progress=progress,
    )
    r = outcome.report
    log(
        f"pruned {r['sparsity']:.0%} (magnitude): {r['accuracy_pruned']:.2%} -> "
        f"{r['accuracy_finetuned']:.2%} after {finetune_epochs} fine-tune epochs"
    )
    pruned_path = checkpoint.save(
        outcome.model, out_dir / "pruned.pt", {**meta, "pruning": r, "accuracy": r["accuracy_finetuned"]}
    )

    targets = [b.name for b in backends.all_backends() if b.unavailable() is None]
    source = load_source(pruned_path)
    X, described = verification_inputs(source, "auto", 256)
    report = compile_source(source, targets, out_dir / "compiled", X_verify=X, data_description=described)
    dense_nnz = sum(int(p.numel()) for p in model.prunable(include_head=False).values())
    rows = [
        ["dense", trained.test_accuracy, dense_nnz, 0.0],
        [
            f"pruned (magnitude {sparsity:.0%} + {finetune_epochs} ep fine-tune)",
            r["accuracy_finetuned"],
            source.model.nnz(),
            r["sparsity"],
        ],
    ]
    result = DemoResult(rows, report, out_dir)
    if speed_seconds > 0:
        dense_ir = load_source(out_dir / "dense.pt").model
        # backends run tools in other working directories: absolute paths
        measure_gains(result, dense_ir, source.model, targets, (out_dir / "speed").absolute(), speed_seconds)
    return result


# --- what pruning bought ---------------------------------------------------------------------------

RUNTIME_LABELS = {"c": "edgeprune C", "onnx": "ONNX Runtime", "tflite": "LiteRT"}


def _step_artifact(backend, model: ir.Model, directory: Path, given: dict):
    """Emit and build ``model`` for ``backend`` (no verification: the compile above verified the
    pruned model's artifacts; this is the dense twin); the first streaming artifact and its options."""
    options = resolve(backend.options, given, f"target {backend.name}")
    directory.mkdir(parents=True, exist_ok=True)
    for artifact in backend.emit(model, directory, options):
        backend.build(artifact, directory, options)
        if "step" in artifact.modes:
            return artifact, options
    return None, options


def _stepper(name: str, backend, artifact, directory: Path, options: dict, x: np.ndarray):
    """A no-argument function that runs one streaming step, and what must be closed afterwards."""
    runner = backend.runner(artifact, directory, options)
    if name == "c" and hasattr(runner, "model"):  # the in-process library: its bound-buffer step
        model = runner.model
        model.reset()
        out = np.empty(model.num_classes, np.float32)
        return (lambda: model.step_into(x[0], out)), runner
    runner.reset(1)
    return (lambda: runner.step(x)), runner


def _native_c(directory: Path, x: np.ndarray, streams: int = 64):
    """The C step without Python: ``streams`` streams stepped in one call (each with its output)."""
    from .runtime import CompiledModel

    model = CompiledModel.load(directory)
    model.reset(streams)
    xs = np.repeat(x, streams, axis=0)
    out = np.empty((streams, model.num_classes), np.float32)
    return (lambda: model.step_into(xs, out)), streams


def measure_gains(
    result: DemoResult, dense: ir.Model, pruned: ir.Model, targets: list[str], work: Path, seconds: float
) -> None:
    """Fill ``result.speed`` and ``result.sizes``: µs per step of the dense and the pruned model in
    each runtime, timed in interleaved rounds within ``seconds`` (the fastest round of each, so
    other load on the machine counts as little as it can), and the Cortex-M4 flash and RAM."""
    x = np.random.default_rng(0).random((1, pruned.input_size), dtype=np.float32)
    cases: dict[tuple[str, str], tuple] = {}  # (runtime, dense|pruned) -> (fn, calls per timing)
    with contextlib.ExitStack() as stack:
        for name in [t for t in ("c", "onnx", "tflite") if t in targets]:
            backend = backends.get(name)
            for which, model in (("dense", dense), ("pruned", pruned)):
                artifact, options = _step_artifact(backend, model, work / which / name, {})
                if artifact is None:
                    continue
                fn, runner = _stepper(name, backend, artifact, work / which / name, options, x)
                stack.enter_context(runner)
                label = RUNTIME_LABELS[name] + (" (from Python, one call a step)" if name == "c" else "")
                cases[(label, which)] = (fn, 1)
                if name == "c":
                    native, per = _native_c(work / which / name, x)
                    cases[(RUNTIME_LABELS[name] + " (native step)", which)] = (native, per)
        best = _interleaved(cases, seconds)
    labels = list(dict.fromkeys(label for label, _ in cases))
    labels.sort(key=lambda label: "native" not in label)  # the native step first
    for label in labels:
        d, p = best.get((label, "dense")), best.get((label, "pruned"))
        if d and p:
            result.speed.append([label, d * 1e6, p * 1e6, d / p])
    _m4_sizes(result, dense, pruned, work / "cortex-m4")


def _interleaved(cases: dict, seconds: float) -> dict:
    """Fastest time per call of each case (s), over rounds that each time every case once."""
    for fn, _ in cases.values():  # warm up, and size each timing to ~1 ms
        fn()
    reps = {}
    for key, (fn, _) in cases.items():
        t0 = time.perf_counter()
        for _ in range(10):
            fn()
        reps[key] = max(1, int(1e-3 / max((time.perf_counter() - t0) / 10, 1e-9)))
    best = dict.fromkeys(cases, float("inf"))
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for key, (fn, per) in cases.items():
            n = reps[key]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            best[key] = min(best[key], (time.perf_counter() - t0) / (n * per))
    return best


def _m4_sizes(result: DemoResult, dense: ir.Model, pruned: ir.Model, work: Path) -> None:
    backend = backends.get("c")
    from .backends.c.toolchain import toolchain

    missing = toolchain("cortex-m4").missing()
    if missing:
        result.notes.append(f"Cortex-M4 sizes skipped: {missing}")
        return
    sizes = {}
    for which, model in (("dense", dense), ("pruned", pruned)):
        options = resolve(backend.options, {"arch": "cortex-m4"}, "target c")
        (work / which).mkdir(parents=True, exist_ok=True)
        [artifact] = backend.emit(model, work / which, options)
        backend.build(artifact, work / which, options)
        sizes[which] = artifact.info
    for key, label in (("flash_bytes", "Cortex-M4 flash (fp32, B)"), ("ram_bytes", "Cortex-M4 RAM (B)")):
        d, p = sizes["dense"][key], sizes["pruned"][key]
        result.sizes.append([label, d, p, d / p])
    # the M4's time per step, as the cost model fitted on QEMU instruction counts estimates it
    d, p = (sum(m["estimated_cost"] for m in sizes[w]["matrices"].values()) for w in ("dense", "pruned"))
    result.sizes.append(["Cortex-M4 mat-vec instructions/step (est.)", round(d), round(p), d / p])

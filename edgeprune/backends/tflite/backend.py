"""The ``tflite`` backend: options, emitting the three files, and the runner for each."""

from __future__ import annotations

from pathlib import Path

from ... import ir
from ...errors import BackendError
from ...fileio import write_bytes_atomic
from ...options import Option
from ..base import Artifact, Backend, Runner
from .flatbuffer import MICRO_FILE, SEQUENCE_FILE, STEP_FILE, read_metadata, sparse_tensors
from .graphs import STAGE_KINDS, build_micro_model, build_sequence_model, build_step_model
from .runners import RESOLVERS, RUNTIME_MODULES, LiteRTRunner, MicroRunner, importable, litert_label, package_version
from .runtime_worker import TFLiteRuntimeRunner, probe

WORKER_INFO = "tflite-runtime worker"  # info["runs_in"] of the artifacts that run a file again in tflite-runtime

# Int8 weights (float activations): the outputs move by the weight rounding and the per-step dynamic
# quantization of each FC's input, so the gate holds these files to their predictions (classify) or to
# 5% of the reference outputs' range (regress: measured <= 1.3% on the zoo's regression shapes); the
# absolute bound only catches garbage (the silent wrong-kernel traps are off by 10-1000s).
INT8_TOLERANCE = {"max_abs": 1.0, "min_agreement": 0.97, "max_rel": 0.05}


# Measured (docs/tflite.md, tests/backends/test_tflite_runtime.py): tflite-runtime 2.14 runs the int8 files
# (per-channel symmetric weights, float activations) but its FULLY_CONNECTED computes them wrongly (max |err|
# 0.18-1.2 where LiteRT 2.3 gives 0.001-0.02; probably the per-channel FC scales, not verified further).
INT8_IN_TFLITE_RUNTIME = (
    "tflite-runtime not run: its 2.14 kernels compute these int8 (per-channel) files wrongly, measured "
    "100x LiteRT's error (docs/tflite.md); compile with --dtype f32 for tflite-runtime"
)


class TFLiteBackend(Backend):
    name = "tflite"
    help = "LiteRT/TFLite flatbuffers: sparse FC step + unrolled sequence models, a dense TFLite Micro model"
    options = (
        Option(
            "dtype",
            "f32",
            "weights of the LiteRT files: f32, or int8 (symmetric per-channel, float "
            "activations; sparse only as 1x16 blocks)",
            choices=("f32", "int8"),
        ),
        Option(
            "tflite_weights",
            "auto",
            "auto = sparse where that halves the bytes, else dense; sparse; "
            "densify = sparse storage expanded once at load (dense kernels, XNNPACK); dense",
            choices=("auto", "sparse", "densify", "dense"),
        ),
        Option(
            "micro",
            "dense",
            "model_dense.tflite for TFLite Micro: dense, or off (TFLite Micro ignores sparsity, so sparse is refused)",
            choices=("dense", "off", "sparse"),
        ),
        Option(
            "tflite_steps",
            0,
            "steps unrolled in model.tflite and model_dense.tflite (0 = the model's sequence_length)",
            type=int,
        ),
        Option(
            "litert_resolver",
            "xnnpack",
            "LiteRT kernels the verification gate uses: xnnpack (the default), builtin (no delegate) or builtin_ref",
            choices=tuple(RESOLVERS),
        ),
        Option(
            "litert_runtime",
            "auto",
            "Python package running the LiteRT files",
            choices=("auto",) + tuple(RUNTIME_MODULES),
        ),
    )

    def unavailable(self) -> str | None:
        if not importable("flatbuffers"):
            return "needs flatbuffers (pip install flatbuffers ai-edge-litert)"
        if not (importable("ai_edge_litert.interpreter") or importable("tflite_runtime.interpreter")):
            return "needs a LiteRT interpreter (pip install ai-edge-litert)"
        return None

    def declines(self, model: ir.Model) -> str | None:
        """Every IR v2 stage kind has an exact graph here (docs/tflite.md); a kind added later is declined
        until its emitter exists."""
        for name, stage in model.named_stages():
            if not isinstance(stage, STAGE_KINDS):
                return f"target {self.name} does not support a {stage.kind} stage ({name})"
        return None

    def _steps(self, model: ir.Model, options: dict) -> int:
        steps = options.get("tflite_steps") or model.meta.get("sequence_length")
        if not steps:
            raise BackendError(
                "model.tflite is unrolled over a fixed number of steps and the model records no "
                "sequence_length: pass --tflite-steps N"
            )
        if int(steps) < 1:
            raise BackendError(f"--tflite-steps must be >= 1, got {steps}")
        return int(steps)

    def emit(self, model: ir.Model, out_dir: Path, options: dict) -> list[Artifact]:
        dtype, mode = options.get("dtype", "f32"), options.get("tflite_weights", "auto")
        micro = options.get("micro", "dense")
        if micro == "sparse":
            raise BackendError(
                "--micro sparse: TFLite Micro ignores sparse weights and computes garbage with them; "
                "its file is always dense (--micro dense), sparse files are for LiteRT"
            )
        steps = self._steps(model, options)
        runtime = litert_label(options.get("litert_runtime", "auto"), options.get("litert_resolver", "xnnpack"))
        tolerance = INT8_TOLERANCE if dtype == "int8" else None
        resolver = options.get("litert_resolver", "xnnpack")
        # The same files again in tflite-runtime (its own venv, numpy < 2), unless that already runs them.
        worker_version, worker_skip = (None, None) if runtime.startswith("tflite-runtime") else probe()
        if worker_version and dtype == "int8":
            worker_skip = INT8_IN_TFLITE_RUNTIME
        artifacts = []
        for name, data, modes in (
            (STEP_FILE, build_step_model(model, dtype, mode), ("step",)),
            (SEQUENCE_FILE, build_sequence_model(model, steps, dtype, mode), ("sequence",)),
        ):
            write_bytes_atomic(out_dir / name, data)
            meta = read_metadata(data)
            artifacts.append(
                Artifact(
                    name,
                    self.name,
                    runtime,
                    modes,
                    [name],
                    {
                        "dtype": dtype,
                        "weights": meta["weights"],
                        "steps": meta["steps"],
                        "batch": "dynamic",
                        "sparse_tensors": len(sparse_tensors(data)),
                    },
                    tolerance=tolerance,
                )
            )
            if worker_skip:
                artifacts[-1].info["tflite_runtime"] = worker_skip
            elif worker_version:
                artifacts.append(
                    Artifact(
                        name,
                        self.name,
                        f"tflite-runtime {worker_version} ({resolver}; subprocess)",
                        modes,
                        [name],
                        {"runs_in": WORKER_INFO, "steps": meta["steps"]},
                        tolerance=tolerance,
                    )
                )
        if micro == "dense":
            data = build_micro_model(model, steps)
            write_bytes_atomic(out_dir / MICRO_FILE, data)
            has_runtime = importable("tflite_micro.python.tflite_micro.runtime")
            info = {
                "dtype": "f32",
                "steps": steps,
                "batch": 1,
                "weights": read_metadata(data)["weights"],
                "cell_ops": read_metadata(data)["cell_ops"],
            }
            if not has_runtime:
                info["note"] = "tflite-micro is not installed: not run"
            artifacts.append(
                Artifact(
                    MICRO_FILE,
                    self.name,
                    f"tflite-micro {package_version('tflite-micro')}",
                    ("sequence",),
                    [MICRO_FILE],
                    info,
                    verify=has_runtime,
                )
            )
        return artifacts

    def runner(self, artifact: Artifact, out_dir: Path, options: dict) -> Runner:
        path = Path(out_dir) / artifact.name
        if artifact.info.get("runs_in") == WORKER_INFO:
            return TFLiteRuntimeRunner(path, options.get("litert_resolver", "xnnpack"))
        if artifact.name == MICRO_FILE:
            return MicroRunner(path)
        return LiteRTRunner(path, options.get("litert_resolver", "xnnpack"), options.get("litert_runtime", "auto"))


BACKEND = TFLiteBackend()

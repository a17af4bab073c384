"""The ``c`` target: generated C99 over the portable edgeprune runtime (``runtimes/c``).

``emit`` writes the model (``<prefix>.c/.h``: const weight tables, one tile format each, a state
struct, reset/step/run), a copy of the runtime, the host harness, an example ``main.c``, a
``Makefile`` and a ``CMakeLists.txt`` (plus the board's start-up code for ``cortex-m4``).
``build`` compiles them with ``-std=c99 -Wall -Wextra -Werror`` and more for the chosen
architecture and records flash and RAM; on the host it also links ``build/lib<prefix>.so``,
which ``runner`` calls in-process (``edgeprune.runtime.CompiledModel``); other architectures
run the built harness under qemu-aarch64 or on QEMU's MPS2 AN386 board. Either way the gate
verifies the very code a device would run. See docs/c-backend.md.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
from pathlib import Path

from ... import ir
from ...errors import BackendError
from ...fileio import write_text_atomic
from ...options import Option
from ...runtime import CompiledModel, source_dir
from ..base import Artifact, Backend, Runner
from . import codegen, costs, planning
from .runner import BridgeRunner, HarnessRunner
from .toolchain import ARCHES, SEMIHOSTING_FLAGS, WARNINGS, run_tool, section_sizes, symbol_sizes, toolchain

BUILD_DIR = "build"
PROGRAM = "edgeprune_run"
# --dtype int8: the logits move by the weight and activation rounding, so the gate holds int8
# builds to their predictions (>= 99% agreement with the float model); the error bound only
# catches garbage (benchmarks/results/c_int8.md has the measured errors: 0.01-0.1 typical).
INT8_TOLERANCE = {"max_abs": 0.5, "min_agreement": 0.99}


# what the harness needs of the board; its UART/SysTick port (board.c) serves edgeprune bench
BOARD_FILES = ("link.ld", "startup.c")


def _board_files(tc) -> dict[str, str]:
    """Start-up code and linker script of the emulated board, if the architecture has one."""
    if not tc.board:
        return {}
    folder = source_dir("c") / "boards" / tc.board
    return {f"board/{name}": (folder / name).read_text() for name in BOARD_FILES}


# The runtime is the same file for every model: within a process (a test session, a benchmark
# sweep) its object is compiled once per compiler and flags.
_RUNTIME_OBJECTS: dict[str, bytes] = {}


def _compile(command: list[str], source: str, obj: Path, cwd: Path, what: str) -> None:
    key = None
    if source in codegen.RUNTIME_FILES:
        text = b"".join((cwd / name).read_bytes() for name in codegen.RUNTIME_FILES)
        compiler = shutil.which(command[0]) or command[0]
        stamp = f"{compiler}:{os.stat(compiler).st_mtime_ns if os.path.exists(compiler) else 0}"
        key = hashlib.sha256(text + "\0".join([stamp, *command]).encode()).hexdigest()
        if key in _RUNTIME_OBJECTS:
            obj.write_bytes(_RUNTIME_OBJECTS[key])
            return
    run_tool([*command, "-o", str(obj)], cwd, what)
    if key:
        _RUNTIME_OBJECTS[key] = obj.read_bytes()


def _sanitized(cflags: list[str]) -> bool:
    return any(f.startswith("-fsanitize") for f in cflags)


class CBackend(Backend):
    name = "c"
    help = "C99 source over the portable edgeprune runtime, built and verified natively or under QEMU"
    options = (
        Option(
            "dtype",
            "f32",
            "weights: f32, or int8 (per-row scales, int32 sums, activations quantized per step)",
            choices=planning.DTYPES,
        ),
        Option(
            "kernel",
            "auto",
            "format per weight tile: auto = fastest by the measured cost model within a byte budget "
            "(--flash-budget; default 1.25x the smallest layout where sparse pays, dense where it does not), "
            "fastest = fastest whatever the bytes, smallest = fewest bytes, or force dense, csr, ell (sliced "
            "ELL where rows differ) or bsr (8x1/4x1/1x4 blocks)",
            choices=planning.KERNELS,
        ),
        Option(
            "flash_budget",
            0,
            "bytes the weights (tables, int8 scales, biases) may take: auto picks the fastest layout "
            "within it (0: the default budget); other kernels refuse to exceed it",
            type=int,
        ),
        Option(
            "arch",
            "host",
            "build and verify natively (host), for aarch64 Linux under qemu-aarch64, or for "
            "a Cortex-M4F board under qemu-system-arm (cortex-m4)",
            choices=ARCHES,
        ),
        Option("c_prefix", "model", "prefix of the generated files and C symbols (<prefix>_step, ...)"),
        Option(
            "c_activations",
            "fast",
            "tanh/sigmoid: branch-free rational approximations (|err| < 5e-7) or libm",
            choices=planning.ACTIVATIONS,
        ),
        Option("c_cc", "", "C compiler (default: $CC or cc on the host, the arch's cross gcc otherwise)"),
        Option(
            "c_cflags",
            "",
            "optimisation flags (default per arch: host '-O2 -ffp-contract=fast "
            "-march=native', otherwise '-O2 -ffp-contract=fast')",
        ),
    )

    def unavailable(self) -> str | None:
        return toolchain("host").missing()

    def declines(self, model: ir.Model) -> str | None:
        """Every IR v2 stage has kernels here (fp32 and int8), so every valid model compiles."""
        return None

    @staticmethod
    def _setup(options: dict):
        tc = toolchain(options["arch"], options["c_cc"] or None)
        text = options["c_cflags"] or tc.default_cflags
        try:
            cflags = shlex.split(text)
        except ValueError as e:
            raise BackendError(f"--c-cflags: {e}") from None
        return tc, text, cflags

    def emit(self, model: ir.Model, out_dir: Path, options: dict) -> list[Artifact]:
        tc, text, cflags = self._setup(options)
        profile = costs.profile_for(tc.arch, tc.cc, [*tc.target_flags, *cflags])
        plan = planning.plan(
            model,
            options["c_prefix"],
            options["kernel"],
            options["c_activations"],
            options["dtype"],
            profile,
            costs.cache_bytes(tc.arch),
            options["flash_budget"] or None,
        )
        files = {**codegen.generate(plan), **_board_files(tc)}
        for name, content in files.items():
            write_text_atomic(out_dir / name, content)
        info = plan.describe()
        info.update(
            {
                "arch": tc.arch,
                "cflags": text,
                "input_size": model.input_size,
                "num_classes": model.output_size,
                "summary": plan.summary(),
            }
        )
        runtime = tc.label(text) + (", in-process (ctypes)" if tc.arch == "host" and not _sanitized(cflags) else "")
        tolerance = INT8_TOLERANCE if options["dtype"] == "int8" else None
        return [
            Artifact(
                f"{plan.prefix}.c", self.name, runtime, ("sequence", "step"), sorted(files), info, tolerance=tolerance
            )
        ]

    def build(self, artifact: Artifact, out_dir: Path, options: dict) -> None:
        tc, _, cflags = self._setup(options)
        missing = tc.missing()
        if missing:
            raise BackendError(f"target c ({tc.arch}): {missing}")
        prefix = options["c_prefix"]
        build = out_dir / BUILD_DIR
        build.mkdir(exist_ok=True)
        sources = [f"{prefix}.c", "edgeprune_rt.c", codegen.HARNESS]
        link = [*tc.link_flags]
        if tc.board:
            sources.append("board/startup.c")
            link += [*SEMIHOSTING_FLAGS, "-T", "board/link.ld"]
        shared = tc.arch == "host" and not _sanitized(cflags)
        pic = ["-fPIC"] if shared else []
        tuned: list[str] = []  # host builds with the AVX2 kernels: the gather this core runs faster
        if tc.arch == "host" and costs.profile_for(tc.arch, tc.cc, [*tc.target_flags, *cflags]) == "x86-avx2":
            tuned, why = costs.host_gather_flags(tc.cc, [*tc.target_flags, *cflags])
            artifact.info["host_tuning"] = {"defines": tuned, "why": why}
        # One section per function and table, so that a linker with --gc-sections keeps only the
        # kernels the model calls; the flash figure below counts the same.
        sections = ["-ffunction-sections", "-fdata-sections"]
        objects = []
        for source in sources:
            obj = build / (Path(source).stem + ".o")
            command = [*tc.cc, *WARNINGS, *tc.target_flags, *cflags, *tuned, *pic, *sections, "-c", source]
            _compile(command, source, obj, out_dir, f"compiling {source} with {tc.cc[0]}")
            objects.append(obj)
        run_tool(
            [*tc.cc, *tc.target_flags, *cflags, *link, *map(str, objects), "-lm", "-o", str(build / PROGRAM)],
            out_dir,
            f"linking {PROGRAM} with {tc.cc[0]}",
        )
        if shared:
            run_tool(
                [*tc.cc, *cflags, "-shared", *map(str, objects[:2]), "-lm", "-o", str(build / f"lib{prefix}.so")],
                out_dir,
                f"linking lib{prefix}.so with {tc.cc[0]}",
            )
        self._sizes(artifact, tc, objects[0], objects[1])

    @staticmethod
    def _sizes(artifact: Artifact, tc, model_obj: Path, runtime_obj: Path) -> None:
        """Flash: the model's code and tables + the runtime functions it calls; RAM: the state."""
        model = section_sizes(model_obj)
        runtime = symbol_sizes(tc.nm, runtime_obj)
        called = set(symbol_sizes(tc.nm, model_obj, undefined=True))
        used = {name: n for name, n in runtime.items() if name in called or not name.startswith("ep_")}
        runtime_bytes = sum(used.values())
        info = artifact.info
        info["object_bytes"] = {
            "model": model,
            "runtime_used": runtime_bytes,
            "runtime_functions": sorted(k for k in used if k.startswith("ep_")),
        }
        info["flash_bytes"] = model["text"] + model["rodata"] + model["data"] + runtime_bytes
        info["ram_bytes"] = info["state_bytes"] + model["data"] + model["bss"]
        nnz = sum(m["nnz"] for m in info["matrices"].values())
        info["flash_bytes_per_nonzero"] = round(info["flash_bytes"] / nnz, 3) if nnz else None

    def runner(self, artifact: Artifact, out_dir: Path, options: dict) -> Runner:
        tc, _, cflags = self._setup(options)
        prefix = options["c_prefix"]
        library = out_dir / BUILD_DIR / f"lib{prefix}.so"
        info = artifact.info
        every = info.get("output") == "every"
        if tc.arch == "host" and library.exists():
            return BridgeRunner(CompiledModel(library, prefix, info["input_size"], info["num_classes"], every))
        program = (out_dir / BUILD_DIR / PROGRAM).resolve()
        if not program.exists():
            raise BackendError(f"{program}: not built")
        command = [*tc.emulator, "-kernel", str(program)] if tc.board else [*tc.emulator, str(program)]
        return HarnessRunner(
            command, info["input_size"], info["num_classes"], f"{PROGRAM} ({tc.arch})", io=tc.io, every=every
        )


BACKEND = CBackend()

"""The ``c`` target: generated C99 over the portable edgeprune runtime (``edgeprune/runtimes/c``).

``emit`` writes the model (``<prefix>.c/.h``: const weight tables in CSR or dense tiles, a state
struct, reset/step/run), a copy of the runtime, a host harness and a Makefile (plus the board's
start-up code for ``cortex-m4``). ``build`` compiles them with ``-std=c99 -Wall -Wextra -Werror``
and more for the chosen architecture and records object sizes; ``runner`` drives the built
harness natively, under qemu-aarch64, or on QEMU's MPS2 AN386 board, so verification executes
the very code a device would run. See docs/c-backend.md.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from ... import ir
from ...errors import BackendError
from ...fileio import write_text_atomic
from ...options import Option
from ...runtimes import path as runtime_path
from ..base import Artifact, Backend, Runner
from . import codegen
from .runner import HarnessRunner
from .toolchain import ARCHES, WARNINGS, run_tool, section_sizes, toolchain

BUILD_DIR = "build"
DEFAULT_CFLAGS = codegen.DEFAULT_CFLAGS
PROGRAM = "edgeprune_run"


def _board_files(tc) -> dict[str, str]:
    """Start-up code and linker script of the emulated board, if the architecture has one."""
    if not tc.board:
        return {}
    folder = runtime_path("c", "boards", tc.board)
    return {f"board/{p.name}": p.read_text() for p in sorted(folder.iterdir()) if p.is_file()}


class CBackend(Backend):
    name = "c"
    help = "C99 source over the portable edgeprune runtime, built and verified natively or under QEMU"
    options = (
        Option("c_format", "smallest", "weight storage per matrix: csr or dense, whichever is smaller (smallest) or "
               "estimated faster on the --c-arch (fastest), or force one", choices=codegen.FORMATS),
        Option("c_activations", "fast", "tanh/sigmoid: branch-free rational approximations (|err| < 5e-7) or libm",
               choices=codegen.ACTIVATIONS),
        Option("c_prefix", "model", "prefix of the generated files and C symbols (<prefix>_step, ...)"),
        Option("c_arch", "host", "build and verify natively (host), for aarch64 Linux under qemu-aarch64, or for "
               "a Cortex-M4F board under qemu-system-arm (cortex-m4)", choices=ARCHES),
        Option("c_cc", "", "C compiler (default: $CC or cc on the host, the arch's cross gcc otherwise)"),
        Option("c_cflags", DEFAULT_CFLAGS, "optimisation flags of the build (fused multiply-adds are allowed by "
               "default: -std=c99 alone forbids them)"),
    )

    def unavailable(self) -> str | None:
        return toolchain("host").missing()

    def emit(self, model: ir.Model, out_dir: Path, options: dict) -> list[Artifact]:
        tc = toolchain(options["c_arch"], options["c_cc"] or None)
        plan = codegen.plan(model, options["c_prefix"], options["c_format"], options["c_activations"], tc.arch)
        files = {**codegen.generate(plan), **_board_files(tc)}
        for name, text in files.items():
            write_text_atomic(out_dir / name, text)
        info = plan.describe()
        info.update({"arch": tc.arch, "cflags": options["c_cflags"], "input_size": model.input_size,
                     "num_classes": model.num_classes})
        return [Artifact(f"{plan.prefix}.c", self.name, tc.label(options["c_cflags"]), ("sequence", "step"),
                         sorted(files), info)]

    def build(self, artifact: Artifact, out_dir: Path, options: dict) -> None:
        tc = toolchain(options["c_arch"], options["c_cc"] or None)
        missing = tc.missing()
        if missing:
            raise BackendError(f"target c ({tc.arch}): {missing}")
        prefix = options["c_prefix"]
        try:
            cflags = shlex.split(options["c_cflags"])
        except ValueError as e:
            raise BackendError(f"--c-cflags: {e}") from None
        build = out_dir / BUILD_DIR
        build.mkdir(exist_ok=True)
        sources = [f"{prefix}.c", "edgeprune_rt.c", codegen.HARNESS]
        link = [*tc.link_flags]
        defines = []
        if tc.board:
            sources.append("board/startup.c")
            link += ["-T", "board/link.ld"]
            defines = ["-DEP_BOARD_CLOCK"]
        objects = []
        for source in sources:
            obj = build / (Path(source).stem + ".o")
            run_tool([*tc.cc, *WARNINGS, *tc.target_flags, *cflags, *defines, "-c", source, "-o", str(obj)], out_dir,
                     f"compiling {source} with {tc.cc[0]}")
            objects.append(obj)
        run_tool([*tc.cc, *tc.target_flags, *cflags, *link, *map(str, objects), "-lm", "-o", str(build / PROGRAM)],
                 out_dir, f"linking {PROGRAM} with {tc.cc[0]}")
        model_sizes = section_sizes(tc.size, objects[0])
        runtime_sizes = section_sizes(tc.size, objects[1])
        artifact.info["object_bytes"] = {"model": model_sizes, "runtime": runtime_sizes}
        # Flash: code + constants (+ initial values of data); RAM: the caller's state struct (no globals).
        artifact.info["flash_bytes"] = sum(model_sizes[k] + runtime_sizes[k] for k in ("text", "rodata", "data"))
        artifact.info["ram_bytes"] = artifact.info["state_bytes"] + sum(
            model_sizes[k] + runtime_sizes[k] for k in ("data", "bss"))

    def runner(self, artifact: Artifact, out_dir: Path, options: dict) -> Runner:
        tc = toolchain(options["c_arch"], options["c_cc"] or None)
        program = (out_dir / BUILD_DIR / PROGRAM).resolve()
        if not program.exists():
            raise BackendError(f"{program}: not built")
        command = [*tc.emulator, "-kernel", str(program)] if tc.board else [*tc.emulator, str(program)]
        return HarnessRunner(command, artifact.info["input_size"], artifact.info["num_classes"],
                             f"{PROGRAM} ({tc.arch})", io=tc.io)


BACKEND = CBackend()

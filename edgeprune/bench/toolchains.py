"""Building benchmark programs for a device with the C platform layer (``backends/c/toolchain.py``).

Programs for Linux devices are linked statically so one binary runs on any board of that
architecture whatever its C library. Flags are the same for every device of an architecture (no
``-march=native``: the build host is not the board), so a program built for ``local`` and for an
x86_64 board over SSH is the same file; extra flags go through ``extra_cflags``.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..backends.c.toolchain import (
    SEMIHOSTING_FLAGS,
    SERIAL_FLAGS,
    WARNINGS,
    ToolchainError,
    device_toolchain,
    elf_sizes,
    normalize_arch,
)
from ..runtime import source_dir

__all__ = [
    "BuildRequest",
    "ToolchainError",
    "build_bench_program",
    "build_linux",
    "build_m4_firmware",
    "elf_sizes",
    "native_dir",
    "normalize_arch",
    "toolchain_problem",
    "WARNINGS",
]

BASE_CFLAGS = ("-O2",)
# Linux programs are linked statically: one binary runs on any board of that architecture.
STATIC = ("-static",)


def native_dir() -> Path:
    """C sources shipped with the harness (benchmark program, serial server, board interface, QEMU plugin)."""
    return Path(str(resources.files("edgeprune.bench") / "native"))


def board_dir() -> Path:
    """QEMU's mps2-an386 board (``runtimes/c/boards/mps2-an386``): start-up code, linker script, and
    the ``ep_board.h`` port (UART0, SysTick) with the serial server's ``main``."""
    return source_dir("c") / "boards" / "mps2-an386"


def run_compiler(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        first = next(
            (l for l in proc.stderr.splitlines() if "error" in l), proc.stderr.strip().splitlines()[:1] or [""]
        )
        first = first if isinstance(first, str) else (first[0] if first else "")
        raise ToolchainError(f"building {what} failed: {first.strip()[:300]}")


@dataclass
class BuildRequest:
    sources: list[Path]
    include_dirs: list[Path] = field(default_factory=list)
    defines: dict[str, str] = field(default_factory=dict)
    extra_cflags: list[str] = field(default_factory=list)


def build_linux(request: BuildRequest, arch: str, out: Path) -> Path:
    arch = normalize_arch(arch)
    if arch == "cortex-m4":
        raise ToolchainError("cortex-m4 is firmware, not a Linux program")
    tc = device_toolchain(arch)
    argv = [*tc.cc, *BASE_CFLAGS, *tc.target_flags, *WARNINGS, *request.extra_cflags]
    argv += [f"-I{d}" for d in request.include_dirs] + [f"-D{k}={v}" for k, v in request.defines.items()]
    argv += [str(s) for s in request.sources] + ["-o", str(out), *STATIC, "-lm"]
    run_compiler(argv, f"the benchmark program for {arch}")
    return out


def build_m4_firmware(request: BuildRequest, out: Path, *, semihosting: bool) -> Path:
    """Firmware for QEMU mps2-an386 with the harness's startup code and linker script."""
    tc = device_toolchain("cortex-m4")
    port = board_dir()
    specs = SEMIHOSTING_FLAGS if semihosting else SERIAL_FLAGS
    argv = [
        *tc.cc,
        *BASE_CFLAGS,
        *tc.target_flags,
        *WARNINGS,
        *request.extra_cflags,
        *specs,
        *tc.link_flags,
        "-T",
        str(port / "link.ld"),
    ]
    argv += [f"-I{d}" for d in [*request.include_dirs, native_dir()]] + [
        f"-D{k}={v}" for k, v in request.defines.items()
    ]
    argv += [str(port / "startup.c"), *(str(s) for s in request.sources), "-o", str(out), "-lm"]
    run_compiler(argv, "the Cortex-M4 firmware")
    return out


def build_bench_program(request: BuildRequest, arch: str, out: Path) -> tuple[Path, str]:
    """The benchmark program for ``arch``: semihosting firmware (``out``.elf) on the Cortex-M4,
    a Linux executable elsewhere; returns its path and kind."""
    if arch == "cortex-m4":
        return build_m4_firmware(request, out.with_suffix(".elf"), semihosting=True), "semihosting"
    return build_linux(request, arch, out), "linux"


def toolchain_problem(arch: str) -> str | None:
    """Why nothing can be built for ``arch`` here (None when its toolchain is installed)."""
    try:
        device_toolchain(arch)
    except ToolchainError as e:
        return str(e)
    return None

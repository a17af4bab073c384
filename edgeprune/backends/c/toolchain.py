"""Compilers, emulators and size tools for the architectures the C target builds and verifies on."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ...errors import BackendError

# The generated code, the runtime and the harness must stay clean under all of these.
WARNINGS = ("-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wstrict-prototypes",
            "-Wmissing-prototypes", "-Wdouble-promotion", "-Wcast-qual", "-Wconversion")
COMPILE_TIMEOUT = 300
ARCHES = ("host", "aarch64", "cortex-m4")
# -O2 rather than -O3: GCC 12 at -O3 vectorises the dense panels across columns as an in-order
# reduction (2.7x slower). The host build may use the host's SIMD; a device build must not.
HOST_CFLAGS = "-O2 -ffp-contract=fast -march=native"
DEVICE_CFLAGS = "-O2 -ffp-contract=fast"
M4_FLAGS = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")
# QEMU's MPS2 AN386 board; semihosting carries the harness's file I/O and exit status.
MPS2_AN386 = ("qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none", "-serial", "null",
              "-semihosting-config", "enable=on,target=native")


@dataclass(frozen=True)
class Toolchain:
    arch: str
    cc: tuple[str, ...]
    size: str
    nm: str
    default_cflags: str
    target_flags: tuple[str, ...] = ()  # compile and link
    link_flags: tuple[str, ...] = ()
    board: str | None = None  # runtimes/c/boards/<board>: start-up code and linker script for the harness
    emulator: tuple[str, ...] = ()  # prefix that runs a built program on this host
    io: str = "pipe"  # "pipe": one long-lived harness on stdin/stdout; "files": one run per request
    install_hint: str = ""

    def missing(self) -> str | None:
        """Which tool is absent, said in one line, or None."""
        for tool in (self.cc[0], *self.emulator[:1]):
            if shutil.which(tool) is None:
                hint = f" (install {self.install_hint})" if self.install_hint else ""
                return f"{tool} not found{hint}"
        return None

    def label(self, cflags: str) -> str:
        where = {"host": "native", "aarch64": "qemu-aarch64", "cortex-m4": "qemu-system-arm mps2-an386"}[self.arch]
        return f"{Path(self.cc[0]).name} {cflags}".strip() + f", {self.arch} ({where})"


def toolchain(arch: str, cc: str | None = None) -> Toolchain:
    if arch == "host":
        spec = cc or os.environ.get("CC") or "cc"
        return Toolchain("host", tuple(shlex.split(spec)), "size", "nm", HOST_CFLAGS,
                         install_hint="gcc, or set CC / --c-cc")
    if arch == "aarch64":
        return Toolchain("aarch64", tuple(shlex.split(cc or "aarch64-linux-gnu-gcc")), "aarch64-linux-gnu-size",
                         "aarch64-linux-gnu-nm", DEVICE_CFLAGS, link_flags=("-static",), emulator=("qemu-aarch64",),
                         install_hint="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user")
    if arch == "cortex-m4":
        return Toolchain("cortex-m4", tuple(shlex.split(cc or "arm-none-eabi-gcc")), "arm-none-eabi-size",
                         "arm-none-eabi-nm", DEVICE_CFLAGS, target_flags=M4_FLAGS,
                         link_flags=("--specs=rdimon.specs", "-nostartfiles"),
                         board="mps2-an386", emulator=MPS2_AN386, io="files",
                         install_hint="gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm")
    raise BackendError(f"--arch '{arch}' is not one of {', '.join(ARCHES)}")


def run_tool(command: list[str], cwd: Path, what: str) -> str:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT)
    except FileNotFoundError:
        raise BackendError(f"{what}: {command[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise BackendError(f"{what}: {command[0]} took longer than {COMPILE_TIMEOUT} s") from None
    if done.returncode != 0:
        lines = [l.strip() for l in (done.stderr or done.stdout).splitlines() if l.strip()]
        causes = [l for l in lines if ("error" in l or "undefined reference" in l) and not l.startswith("collect2")]
        first = (causes or lines or [f"exit status {done.returncode}"])[0]
        raise BackendError(f"{what} failed: {first}")
    return done.stdout


def section_sizes(size_tool: str, obj: Path) -> dict[str, int]:
    """Bytes of an object file by kind: code (.text), constants (.rodata), data, bss."""
    out = run_tool([size_tool, "-A", str(obj)], obj.parent, f"{size_tool} {obj.name}")
    sizes = {"text": 0, "rodata": 0, "data": 0, "bss": 0}
    for line in out.splitlines():
        m = re.match(r"^(\.\S+)\s+(\d+)\s+\d+", line)
        if not m:
            continue
        name, n = m.group(1), int(m.group(2))
        for kind in sizes:
            if name == f".{kind}" or name.startswith(f".{kind}."):
                sizes[kind] += n
    return sizes


def symbol_sizes(nm_tool: str, obj: Path, undefined: bool = False) -> dict[str, int]:
    """Defined functions and data of an object file with their sizes (or, undefined=True, the names it uses)."""
    if undefined:
        out = run_tool([nm_tool, "-u", str(obj)], obj.parent, f"{nm_tool} {obj.name}")
        return {line.split()[-1]: 0 for line in out.splitlines() if line.strip()}
    out = run_tool([nm_tool, "-S", "--defined-only", str(obj)], obj.parent, f"{nm_tool} {obj.name}")
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2].lower() in "tdrb":
            sizes[parts[3]] = sizes.get(parts[3], 0) + int(parts[1], 16)
    return sizes

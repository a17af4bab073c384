"""Compilers, emulators and size tools for the C target's build architectures."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ...errors import BackendError

# The generated code and the runtime must stay clean under all of these.
WARNINGS = ("-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wstrict-prototypes",
            "-Wmissing-prototypes", "-Wdouble-promotion", "-Wcast-qual", "-Wconversion")
COMPILE_TIMEOUT = 300


@dataclass(frozen=True)
class Toolchain:
    arch: str
    cc: tuple[str, ...]
    size: str
    link_flags: tuple[str, ...] = ()
    emulator: tuple[str, ...] = ()  # prefix to run a built program on this host
    install_hint: str = ""

    def missing(self) -> str | None:
        """Which tool is absent, said in one line, or None."""
        for tool in (self.cc[0], *self.emulator[:1]):
            if shutil.which(tool) is None:
                hint = f" (install {self.install_hint})" if self.install_hint else ""
                return f"{tool} not found{hint}"
        return None

    @property
    def label(self) -> str:
        runs = f" under {self.emulator[0]}" if self.emulator else ""
        return f"{Path(self.cc[0]).name} ({self.arch}){runs}"


def host_compiler(override: str | None = None) -> tuple[str, ...]:
    spec = override or os.environ.get("CC") or "cc"
    return tuple(shlex.split(spec))


def toolchain(arch: str, cc: str | None = None) -> Toolchain:
    if arch == "host":
        return Toolchain("host", host_compiler(cc), "size", install_hint="gcc, or set CC / --c-cc")
    if arch == "aarch64":
        return Toolchain("aarch64", (cc or "aarch64-linux-gnu-gcc",), "aarch64-linux-gnu-size", ("-static",),
                         ("qemu-aarch64",), "gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user")
    raise BackendError(f"--c-arch '{arch}' is not one of host, aarch64")


def run_tool(command: list[str], cwd: Path, what: str) -> str:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT)
    except FileNotFoundError:
        raise BackendError(f"{what}: {command[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise BackendError(f"{what}: {command[0]} took longer than {COMPILE_TIMEOUT} s") from None
    if done.returncode != 0:
        lines = [l for l in (done.stderr or done.stdout).splitlines() if l.strip()]
        first = next((l for l in lines if "error" in l), lines[0] if lines else f"exit status {done.returncode}")
        raise BackendError(f"{what} failed: {first.strip()}")
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
        for kind in ("text", "rodata", "data", "bss"):
            if name == f".{kind}" or name.startswith(f".{kind}."):
                sizes[kind] += n
    return sizes

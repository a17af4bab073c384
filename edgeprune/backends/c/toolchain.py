"""The C platform layer: compilers, emulators, the warning set and ELF size accounting.

One table of architectures serves both the C target (which builds and verifies a model for
``host``, ``aarch64`` or ``cortex-m4``) and ``edgeprune.bench`` (which builds benchmark programs for
a device whose ``uname -m`` names the architecture: ``device_toolchain``). The model code, the
runtime, the harness and the benchmark programs are all built with ``WARNINGS``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ...errors import BackendError

# The generated code, the runtime and the harness must stay clean under all of these.
WARNINGS = (
    "-std=c99",
    "-pedantic",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wshadow",
    "-Wstrict-prototypes",
    "-Wmissing-prototypes",
    "-Wdouble-promotion",
    "-Wcast-qual",
    "-Wconversion",
)
COMPILE_TIMEOUT = 300
ARCHES = ("host", "aarch64", "cortex-m4")
# -O2 rather than -O3: GCC 12 at -O3 vectorises the dense panels across columns as an in-order
# reduction (2.7x slower). The host build may use the host's SIMD; a device build must not.
HOST_CFLAGS = "-O2 -ffp-contract=fast -march=native"
DEVICE_CFLAGS = "-O2 -ffp-contract=fast"
M4_FLAGS = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")
# The board's I/O (compile and link flags): Arm semihosting (newlib's rdimon: files and exit status
# on the host) or UART0 (newlib's nosys, built with -DEP_SERIAL: runtimes/c/boards/mps2-an386/startup.c).
SEMIHOSTING_FLAGS = ("--specs=rdimon.specs",)
SERIAL_FLAGS = ("--specs=nosys.specs", "-DEP_SERIAL=1")
# `uname -m` (or our own names) -> the architecture a device's programs are built for
ARCH_ALIASES = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "aarch64": "aarch64",
    "arm64": "aarch64",
    "armv8l": "aarch64",
    "cortex-m4": "cortex-m4",
}
# QEMU's MPS2 AN386 board; semihosting carries the harness's file I/O and exit status.
MPS2_AN386 = (
    "qemu-system-arm",
    "-M",
    "mps2-an386",
    "-nographic",
    "-monitor",
    "none",
    "-serial",
    "null",
    "-semihosting-config",
    "enable=on,target=native",
)


@dataclass(frozen=True)
class Toolchain:
    arch: str
    cc: tuple[str, ...]
    nm: str
    default_cflags: str
    target_flags: tuple[str, ...] = ()  # compile and link
    link_flags: tuple[str, ...] = ()
    board: str | None = None  # runtimes/c/boards/<board>: start-up code and linker script for the harness
    emulator: tuple[str, ...] = ()  # prefix that runs a built program on this host
    io: str = "pipe"  # "pipe": one long-lived harness on stdin/stdout; "files": one run per request
    install_hint: str = ""

    def missing(self, run: bool = True) -> str | None:
        """Which tool is absent, said in one line, or None (``run=False``: only the compiler)."""
        for tool in (self.cc[0], *(self.emulator[:1] if run else ())):
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
        return Toolchain("host", tuple(shlex.split(spec)), "nm", HOST_CFLAGS, install_hint="gcc, or set CC / --c-cc")
    if arch == "aarch64":
        return Toolchain(
            "aarch64",
            tuple(shlex.split(cc or "aarch64-linux-gnu-gcc")),
            "aarch64-linux-gnu-nm",
            DEVICE_CFLAGS,
            link_flags=("-static",),
            emulator=("qemu-aarch64",),
            install_hint="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user",
        )
    if arch == "cortex-m4":
        return Toolchain(
            "cortex-m4",
            tuple(shlex.split(cc or "arm-none-eabi-gcc")),
            "arm-none-eabi-nm",
            DEVICE_CFLAGS,
            target_flags=M4_FLAGS,
            link_flags=("-nostartfiles",),
            board="mps2-an386",
            emulator=MPS2_AN386,
            io="files",
            install_hint="gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm",
        )
    raise BackendError(f"--arch '{arch}' is not one of {', '.join(ARCHES)}")


class ToolchainError(BackendError):
    """Nothing can be built for a device's architecture here."""


def normalize_arch(machine: str) -> str:
    """``uname -m`` (or our own names) -> the architecture a device's programs are built for."""
    arch = ARCH_ALIASES.get(machine.strip())
    if arch is None:
        known = ", ".join(sorted(set(ARCH_ALIASES.values())))
        raise ToolchainError(f"no toolchain for architecture '{machine.strip()}' (supported: {known})")
    return arch


def device_toolchain(machine: str) -> Toolchain:
    """The toolchain that builds programs for a device of this architecture, checked installed.

    An x86_64 device gets the build host's gcc (its programs are linked statically and built
    without ``-march=native``: the build host is not the board)."""
    arch = normalize_arch(machine)
    tc = toolchain("host", "gcc") if arch == "x86_64" else toolchain(arch)
    reason = tc.missing(run=False)
    if reason:
        raise ToolchainError(f"cannot build for {arch}: {reason}")
    return tc


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


# -- ELF sizes: one reader for objects (the C target's flash figure) and linked programs (bench) --
_SHF_WRITE, _SHF_ALLOC = 0x1, 0x2
_SHT_NOBITS = 8


def elf_sections(path: Path) -> list[tuple[str, int, int, int]]:
    """(name, size, flags, type) of every section of an ELF file (32/64-bit, either byte order)."""
    raw = Path(path).read_bytes()
    if raw[:4] != b"\x7fELF":
        raise ToolchainError(f"{path}: not an ELF file")
    is64, end = raw[4] == 2, "<" if raw[5] == 1 else ">"
    if is64:
        (shoff,) = struct.unpack_from(end + "Q", raw, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", raw, 0x3A)
        fmt = end + "IIQQQQIIQQ"
    else:
        (shoff,) = struct.unpack_from(end + "I", raw, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", raw, 0x2E)
        fmt = end + "IIIIIIIIII"
    headers = [struct.unpack_from(fmt, raw, shoff + i * shentsize) for i in range(shnum)]
    names_at = headers[shstrndx][4] if headers else 0  # sh_offset of the section-name table

    def name(offset: int) -> str:
        stop = raw.index(b"\0", names_at + offset)
        return raw[names_at + offset : stop].decode("ascii", "replace")

    return [(name(h[0]), h[5], h[2], h[1]) for h in headers]


def section_sizes(obj: Path) -> dict[str, int]:
    """Bytes of an object file by kind: code (.text), constants (.rodata), data, bss."""
    sizes = {"text": 0, "rodata": 0, "data": 0, "bss": 0}
    for name, size, _, _ in elf_sections(obj):
        for kind in sizes:
            if name == f".{kind}" or name.startswith(f".{kind}."):
                sizes[kind] += size
    return sizes


def elf_sizes(path: Path) -> dict:
    """Berkeley-style sizes of a linked ELF file: text (code + read-only data), data, bss.

    ``flash_bytes`` = text + data (what a board stores), ``static_ram_bytes`` = data + bss.
    """
    text = data = bss = 0
    for _, size, flags, kind in elf_sections(path):
        if not flags & _SHF_ALLOC:
            continue
        if kind == _SHT_NOBITS:
            bss += size
        elif flags & _SHF_WRITE:
            data += size
        else:
            text += size
    return {
        "text_bytes": text,
        "data_bytes": data,
        "bss_bytes": bss,
        "flash_bytes": text + data,
        "static_ram_bytes": data + bss,
        "file_bytes": Path(path).stat().st_size,
    }


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

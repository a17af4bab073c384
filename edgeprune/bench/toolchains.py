"""Compilers for the devices ``bench`` builds programs for, and ELF size accounting.

Programs for Linux devices are linked statically so one binary runs on any board of that
architecture whatever its C library. Flags are the same for every device of an architecture (no
``-march=native``: the build host is not the board), so a program built for ``local`` and for an
x86_64 board over SSH is the same file; extra flags go through ``extra_cflags``.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..errors import EdgepruneError

ARCH_ALIASES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64",
                "armv8l": "aarch64", "cortex-m4": "cortex-m4"}

M4_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]


class ToolchainError(EdgepruneError):
    pass


@dataclass(frozen=True)
class Toolchain:
    arch: str
    cc: str
    cflags: tuple[str, ...]
    ldflags: tuple[str, ...] = ()
    libs: tuple[str, ...] = ("-lm",)
    package: str = ""  # Debian package that provides it, for the error message

    def missing(self) -> str | None:
        if shutil.which(self.cc) is None:
            return f"{self.cc} not found (install {self.package})" if self.package else f"{self.cc} not found"
        return None


TOOLCHAINS = {
    "x86_64": Toolchain("x86_64", "gcc", ("-O2", "-std=c99"), ("-static",), package="gcc"),
    "aarch64": Toolchain("aarch64", "aarch64-linux-gnu-gcc", ("-O2", "-std=c99"), ("-static",),
                         package="gcc-aarch64-linux-gnu libc6-dev-arm64-cross"),
    "cortex-m4": Toolchain("cortex-m4", "arm-none-eabi-gcc", ("-O2", "-std=c99", *M4_FLAGS), ("-nostartfiles",),
                           package="gcc-arm-none-eabi libnewlib-arm-none-eabi"),
}

# the C backend's warning set: the model code, the runtime and these programs are built together
WARNINGS = ("-pedantic", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wstrict-prototypes", "-Wmissing-prototypes",
            "-Wdouble-promotion", "-Wcast-qual", "-Wconversion")


def normalize_arch(machine: str) -> str:
    """``uname -m`` (or our own names) -> the architecture we build for."""
    arch = ARCH_ALIASES.get(machine.strip())
    if arch is None:
        known = ", ".join(sorted(set(ARCH_ALIASES.values())))
        raise ToolchainError(f"no toolchain for architecture '{machine.strip()}' (supported: {known})")
    return arch


def toolchain(arch: str) -> Toolchain:
    tc = TOOLCHAINS[normalize_arch(arch)]
    reason = tc.missing()
    if reason:
        raise ToolchainError(f"cannot build for {tc.arch}: {reason}")
    return tc


def native_dir() -> Path:
    """C sources shipped with the harness (serial server, board ports, QEMU plugin)."""
    return Path(str(resources.files("edgeprune.bench") / "native"))


def run_compiler(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        first = next((l for l in proc.stderr.splitlines() if "error" in l), proc.stderr.strip().splitlines()[:1] or [""])
        first = first if isinstance(first, str) else (first[0] if first else "")
        raise ToolchainError(f"building {what} failed: {first.strip()[:300]}")


@dataclass
class BuildRequest:
    sources: list[Path]
    include_dirs: list[Path] = field(default_factory=list)
    defines: dict[str, str] = field(default_factory=dict)
    extra_cflags: list[str] = field(default_factory=list)


def build_linux(request: BuildRequest, arch: str, out: Path) -> Path:
    tc = toolchain(arch)
    if tc.arch == "cortex-m4":
        raise ToolchainError("cortex-m4 is firmware, not a Linux program")
    argv = [tc.cc, *tc.cflags, *WARNINGS, *request.extra_cflags]
    argv += [f"-I{d}" for d in request.include_dirs] + [f"-D{k}={v}" for k, v in request.defines.items()]
    argv += [str(s) for s in request.sources] + ["-o", str(out), *tc.ldflags, *tc.libs]
    run_compiler(argv, f"the benchmark program for {tc.arch}")
    return out


def build_m4_firmware(request: BuildRequest, out: Path, *, semihosting: bool) -> Path:
    """Firmware for QEMU mps2-an386 with the harness's startup code and linker script."""
    tc = toolchain("cortex-m4")
    port = native_dir() / "mps2-an386"
    specs = ["--specs=rdimon.specs", "-DEP_SEMIHOSTING=1"] if semihosting else ["--specs=nosys.specs"]
    argv = [tc.cc, *tc.cflags, *WARNINGS, *request.extra_cflags, *specs, *tc.ldflags, "-T", str(port / "link.ld")]
    argv += [f"-I{d}" for d in [*request.include_dirs, native_dir()]] + [f"-D{k}={v}" for k, v in request.defines.items()]
    argv += [str(port / "startup.c"), *(str(s) for s in request.sources), "-o", str(out), *tc.libs]
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
        toolchain(arch)
    except ToolchainError as e:
        return str(e)
    return None


# -- ELF sizes -------------------------------------------------------------------------------
_SHF_WRITE, _SHF_ALLOC, _SHF_EXECINSTR = 0x1, 0x2, 0x4
_SHT_NOBITS = 8


def elf_sizes(path: Path) -> dict:
    """Berkeley-style sizes of an ELF file: text (code + read-only data), data, bss; flash and RAM.

    ``flash_bytes`` = text + data (what a board stores), ``static_ram_bytes`` = data + bss.
    """
    raw = Path(path).read_bytes()
    if raw[:4] != b"\x7fELF":
        raise ToolchainError(f"{path}: not an ELF file")
    is64, little = raw[4] == 2, raw[5] == 1
    end = "<" if little else ">"
    if is64:
        shoff, = struct.unpack_from(end + "Q", raw, 0x28)
        shentsize, shnum = struct.unpack_from(end + "HH", raw, 0x3A)
        fmt, size_at, flags_at, type_at = end + "IIQQQQIIQQ", 5, 2, 1
    else:
        shoff, = struct.unpack_from(end + "I", raw, 0x20)
        shentsize, shnum = struct.unpack_from(end + "HH", raw, 0x2E)
        fmt, size_at, flags_at, type_at = end + "IIIIIIIIII", 5, 2, 1
    text = data = bss = 0
    for i in range(shnum):
        fields = struct.unpack_from(fmt, raw, shoff + i * shentsize)
        flags, size, kind = fields[flags_at], fields[size_at], fields[type_at]
        if not flags & _SHF_ALLOC:
            continue
        if kind == _SHT_NOBITS:
            bss += size
        elif flags & _SHF_WRITE:
            data += size
        else:
            text += size
    return {"text_bytes": text, "data_bytes": data, "bss_bytes": bss, "flash_bytes": text + data,
            "static_ram_bytes": data + bss, "file_bytes": len(raw)}

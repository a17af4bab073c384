"""Emulated boards: ``qemu-aarch64`` (Linux user mode), ``qemu-m4`` (Cortex-M4 on mps2-an386), and
``qemu-x86_64`` (this host's instruction set: exact counts where wall time is too noisy to steer by).

QEMU checks correctness on the target instruction set; it does not model time. Latency on these
devices is the number of guest instructions per call, counted by a small TCG plugin
(``native/epcount.c``, built here with the host compiler) between the markers the benchmark
program puts around each timed call. Results are labelled emulated; instructions are not cycles
(no pipeline, cache or memory wait states), but they compare kernels on the same target well.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from ...backends.c.toolchain import MPS2_AN386
from ..toolchains import native_dir
from .base import Device, DeviceError, Job, Measurement
from .process import Timeout, describe_status, last_line, measurement_from_output, run

PLUGIN_SOURCE = "epcount.c"


def build_plugin(out_dir: Path) -> Path | None:
    """The instruction-counting plugin as a shared object, or None if it cannot be built here."""
    if shutil.which("gcc") is None:
        return None
    out = Path(out_dir) / "libepcount.so"
    proc = subprocess.run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-O2",
            "-std=c99",
            "-fvisibility=hidden",
            "-D_POSIX_C_SOURCE=200809L",
            "-Wall",
            "-Wextra",
            "-Werror",
            str(native_dir() / PLUGIN_SOURCE),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    return out if proc.returncode == 0 else None


def parse_plugin_log(text: str) -> tuple[int | None, list[int]]:
    total, marks = None, []
    for line in text.splitlines():
        if line.startswith("epcount total "):
            total = int(line.split()[2])
        elif line.startswith("epcount marks"):
            marks.extend(int(v) for v in line.split()[2:])
    return total, marks


class _QemuDevice(Device):
    emulated = True
    emulator = ""
    package = "qemu-user"

    def __init__(self, url: str):
        super().__init__(url)
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.plugin: Path | None = None

    def open(self) -> None:
        if shutil.which(self.emulator) is None:
            raise DeviceError(f"{self.url}: {self.emulator} not found (Debian: {self.package})")
        self._tmp = tempfile.TemporaryDirectory(prefix="edgeprune-qemu-")
        self.plugin = build_plugin(Path(self._tmp.name))

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def describe(self) -> dict:
        return {
            **super().describe(),
            "emulator": self.emulator,
            "counter": "instructions (QEMU TCG plugin)" if self.plugin else "none (plugin unavailable)",
        }

    def command(self, program: Path) -> list[str]:
        raise NotImplementedError

    def execute(self, job: Job) -> Measurement:
        if self._tmp is None:
            self.open()
        log = Path(self._tmp.name) / "plugin.log"
        log.unlink(missing_ok=True)
        argv = [self.emulator]
        if self.plugin is not None and job.program.marker:
            argv += ["-plugin", f"{self.plugin},marker={job.program.marker}", "-d", "plugin", "-D", str(log)]
        argv += self.command(job.program.path)
        try:
            done = run(argv, timeout=job.timeout_s, cwd=self._tmp.name)
        except Timeout:
            raise DeviceError(f"{self.url}: {job.label}: no result within {job.timeout_s:g} s") from None
        if done.returncode != 0:
            detail = last_line(done.stderr) or last_line(done.stdout)
            raise DeviceError(
                f"{self.url}: {job.label}: the program {describe_status(done.returncode)}"
                + (f" ({detail})" if detail else "")
            )
        marks = None
        if log.exists():
            total, marks = parse_plugin_log(log.read_text())
            if total is None:
                marks = None
        m = measurement_from_output(
            done.stdout, f"{self.url}: {job.label}", marks=marks, emulated=True, program=job.program
        )
        if marks is None:
            m.clock += " (emulated wall time: not a board's speed)"
        return m


class QemuAarch64Device(_QemuDevice):
    """An arm64 Linux board emulated in user mode (static binaries)."""

    kind = "qemu-aarch64"
    emulator = "qemu-aarch64"

    def arch(self) -> str:
        return "aarch64"

    def command(self, program: Path) -> list[str]:
        return ["-L", "/usr/aarch64-linux-gnu", str(program)]


class QemuX86Device(_QemuDevice):
    """The host's own instruction set (baseline x86-64, QEMU's default CPU), for exact instruction counts."""

    kind = "qemu-x86_64"
    emulator = "qemu-x86_64"

    def arch(self) -> str:
        return "x86_64"

    def command(self, program: Path) -> list[str]:
        return [str(program)]


class QemuM4Device(_QemuDevice):
    """Cortex-M4F firmware on QEMU's mps2-an386 board, stdout through semihosting."""

    kind = "qemu-m4"
    emulator = "qemu-system-arm"
    package = "qemu-system-arm"

    def arch(self) -> str:
        return "cortex-m4"

    def command(self, program: Path) -> list[str]:
        return [*MPS2_AN386[1:], "-kernel", str(program)]  # the board's one QEMU command line

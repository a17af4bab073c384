"""Benchmark programs: native executables (or firmware) that run an artifact without Python.

A device other than the host cannot import a Python runner; it runs a self-contained program
built for its architecture from an artifact. Which artifacts can become such programs is decided
by a ``ProgramProvider`` registered for the artifact's target (the C backend's generated code;
the tests register a small IR interpreter). On the host, the same program measures the kernel
without the Python call path, next to the backend's Python runner.

The program embeds its test inputs and settings, runs every input step by step and as a whole
sequence, times each call, and prints ONE JSON object (``edgeprune.bench-program`` version 1,
docs/bench.md). Each timed call is bracketed by calls to a marker function so that QEMU's
instruction-counting plugin can count exactly that call on emulated devices.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import EdgepruneError

PROGRAM_FORMAT = "edgeprune.bench-program"
MARKER = "ep_bench_mark"


class ProgramOutputError(EdgepruneError):
    pass


@dataclass(frozen=True)
class ProgramSettings:
    """Repetitions baked into a program (it has no Python to decide adaptively)."""

    warmup: int = 10
    min_reps: int = 200
    max_reps: int = 2000
    budget_ns: int = 2_000_000_000
    modes: tuple[str, ...] = ("step", "sequence")

    @classmethod
    def emulated(cls, modes=("step", "sequence")) -> "ProgramSettings":
        """Instruction counts are deterministic: a few repetitions show the spread over inputs."""
        return cls(warmup=1, min_reps=16, max_reps=16, budget_ns=0, modes=tuple(modes))


@dataclass
class BuiltProgram:
    path: Path  # executable or firmware ELF on the host
    arch: str  # "x86_64", "aarch64", "cortex-m4"
    kind: str  # "linux" (run as a process) or "semihosting" (Cortex-M firmware printing via semihosting)
    runtime: str  # label, e.g. "c (native)"
    marker: str | None = MARKER  # symbol bracketing each timed call (for instruction counts)
    sizes: dict = field(default_factory=dict)  # toolchains.elf_sizes()
    parse: Callable[[str], dict] | None = None  # stdout -> parse_program_output() shape; default: ours
    info: dict = field(default_factory=dict)


class ProgramProvider(ABC):
    """Builds a benchmark program from one artifact for one architecture."""

    @abstractmethod
    def unavailable(self, spec, arch: str) -> str | None:
        """Why this artifact cannot become a program for ``arch`` (None when it can)."""

    @abstractmethod
    def build(self, spec, arch: str, X: np.ndarray, settings: ProgramSettings, work_dir: Path) -> BuiltProgram:
        """Build a program embedding the sequences ``X`` [N, T, F] (float32)."""


_PROVIDERS: dict[str, ProgramProvider] = {}


def register(target: str, provider: ProgramProvider | None) -> None:
    """Make ``target``'s artifacts runnable on devices (None removes it)."""
    if provider is None:
        _PROVIDERS.pop(target, None)
    else:
        _PROVIDERS[target] = provider


def provider_for(target: str | None) -> ProgramProvider | None:
    if target is None:
        return None
    if target not in _PROVIDERS:
        _load_builtin(target)
    return _PROVIDERS.get(target)


def _load_builtin(target: str) -> None:
    """Providers shipped with edgeprune, keyed by backend name (the C backend's, once it exists)."""
    from importlib import import_module

    try:
        module = import_module(f"{__package__}.providers.{target}")
    except ModuleNotFoundError:
        return
    provider = getattr(module, "PROVIDER", None)
    if provider is not None:
        _PROVIDERS.setdefault(target, provider)


def parse_program_output(stdout: str) -> dict:
    """The program's JSON -> {"model", "clock", "unit", "outputs": {mode: [N,C]}, "latency": {mode: {...}}}."""
    start = stdout.find("{")
    doc = None
    if start >= 0:
        try:
            doc, _ = json.JSONDecoder().raw_decode(stdout[start:])
        except ValueError:
            doc = None
    if not isinstance(doc, dict):
        tail = " ".join(stdout.strip().split())[-120:]
        raise ProgramOutputError(f"the benchmark program printed no complete JSON object (output ends: '{tail}')")
    if "error" in doc:
        raise ProgramOutputError(f"the benchmark program reported: {doc['error']}")
    if doc.get("format") != PROGRAM_FORMAT or doc.get("version") != 1:
        raise ProgramOutputError(f"the program's output is not {PROGRAM_FORMAT} version 1")
    outputs = {mode: np.asarray(v, dtype=np.float32) for mode, v in doc.get("outputs", {}).items()}
    latency = {mode: {"samples": list(v.get("samples", [])), "warmup": int(v.get("warmup", 0))}
               for mode, v in doc.get("latency", {}).items()}
    return {"model": doc.get("model"), "clock": doc.get("clock", ""), "unit": doc.get("unit", "ns"),
            "outputs": outputs, "latency": latency}


def marked_intervals(marks: list[int]) -> list[int]:
    """Instruction counts of the bracketed calls: differences of consecutive (enter, leave) marks."""
    if len(marks) % 2:
        marks = marks[:-1]
    return [marks[i + 1] - marks[i] for i in range(0, len(marks), 2)]

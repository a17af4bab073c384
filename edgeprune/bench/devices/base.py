"""The device interface: where a benchmark program (or a board's firmware) runs.

A device is opened once, tells its architecture (to build for), and executes jobs: a job is a
built program (or, for a serial board, the inputs to send) and yields a ``Measurement`` — logits
per mode and one latency sample per timed call, in the device's unit. Every failure is a
``DeviceError`` with one line that names the device.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from ...errors import EdgepruneError


class DeviceError(EdgepruneError):
    """A device could not be reached or failed while running; the message names it."""


@dataclass
class Job:
    label: str  # runtime id, for messages
    program: object | None  # programs.BuiltProgram, None for devices that run their own firmware
    X: np.ndarray  # [N, T, F] inputs (embedded in the program, or sent over the wire)
    settings: object  # programs.ProgramSettings
    timeout_s: float = 300.0


@dataclass
class Measurement:
    outputs: dict[str, np.ndarray]  # mode -> logits [N, C]
    samples: dict[str, list[float]]  # mode -> one figure per timed call
    unit: str  # "ns", "instructions", "cycles"
    clock: str  # how the figures were taken
    warmup: dict[str, int] = field(default_factory=dict)
    emulated: bool = False
    info: dict = field(default_factory=dict)  # model id, clock rate, program sizes, ...


class Device(ABC):
    kind: str = ""
    emulated: bool = False
    builds_programs: bool = True  # False: the board already runs its firmware (serial)

    def __init__(self, url: str):
        self.url = url

    def open(self) -> None:
        """Connect / check the tools; raise ``DeviceError`` with one line if impossible."""

    def close(self) -> None:
        pass

    @abstractmethod
    def arch(self) -> str:
        """Architecture to build programs for ("x86_64", "aarch64", "cortex-m4")."""

    def describe(self) -> dict:
        return {"url": self.url, "kind": self.kind, "arch": self.arch(), "emulated": self.emulated}

    @abstractmethod
    def execute(self, job: Job) -> Measurement:
        """Run one job; raise ``DeviceError`` (one line) on any failure."""

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

"""``local``: benchmark programs run as processes on this machine."""

from __future__ import annotations

import platform
import tempfile

from ..toolchains import normalize_arch
from .base import Device, DeviceError, Job, Measurement
from .process import Timeout, describe_status, last_line, measurement_from_output, run


class LocalDevice(Device):
    kind = "local"

    def __init__(self, url: str = "local"):
        super().__init__(url)

    def arch(self) -> str:
        return normalize_arch(platform.machine())

    def describe(self) -> dict:
        return {**super().describe(), "host": platform.node()}

    def execute(self, job: Job) -> Measurement:
        with tempfile.TemporaryDirectory(prefix="edgeprune-bench-") as cwd:
            try:
                done = run([str(job.program.path)], timeout=job.timeout_s, cwd=cwd)
            except Timeout:
                raise DeviceError(f"local: {job.label}: no result within {job.timeout_s:g} s") from None
        if done.returncode != 0:
            raise DeviceError(
                f"local: {job.label}: the benchmark program {describe_status(done.returncode)}"
                + (f" ({last_line(done.stderr)})" if last_line(done.stderr) else "")
            )
        return measurement_from_output(done.stdout, f"local: {job.label}", program=job.program)

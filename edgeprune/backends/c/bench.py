"""Per-step cost of a built C artifact: wall time, and executed instructions.

* ``time_per_step``: the harness's ``--bench`` mode run natively (host only: under qemu-user wall
  time says nothing about the target). The minimum over repeats, in ns.
* ``instructions_per_step``: deterministic counts, for design decisions on a shared machine and
  for targets we can only emulate. Host: callgrind, counting inside ``<prefix>_step`` only.
  Cortex-M4: QEMU with ``-icount shift=0`` (one instruction = one virtual ns) and the board's
  SysTick, so the figure is emulated instructions (QEMU models no cycles or wait states).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ...errors import BackendError
from .toolchain import MPS2_AN386

PROGRAM = Path("build") / "edgeprune_run"


def _bench(command: list[str], cwd: Path | None = None) -> dict:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise BackendError(f"{' '.join(command[:2])} --bench failed: {done.stderr.strip()[:200]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def time_per_step(directory: Path, steps: int = 2000, rounds: int = 50) -> dict:
    """Native wall time of one streaming step (logits every step): the harness's JSON, ns_per_step is
    the fastest of ``rounds`` rounds of ``steps`` steps, ns_per_step_median the median."""
    return _bench([str(Path(directory) / PROGRAM), "--bench", str(steps), str(rounds)])


def instructions_per_step(directory: Path, arch: str, prefix: str = "model", steps: int = 1000) -> float:
    directory = Path(directory).resolve()
    if arch == "host":
        if shutil.which("valgrind") is None:
            raise BackendError("counting instructions on the host needs valgrind")
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "callgrind.out"
            done = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                                   f"--toggle-collect={prefix}_step", str(directory / PROGRAM), "--bench", str(steps)],
                                  capture_output=True, text=True, timeout=1800)
            m = re.search(r"Collected : (\d+)", done.stderr)
            if done.returncode != 0 or not m:
                raise BackendError(f"callgrind failed: {done.stderr.strip()[-200:]}")
            return int(m.group(1)) / steps
    if arch == "cortex-m4":
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "edgeprune_bench.txt").write_text(str(steps))
            command = [*MPS2_AN386, "-icount", "shift=0", "-kernel", str(directory / PROGRAM)]
            return _bench(command, cwd=Path(tmp))["ns_per_step"]
    raise BackendError(f"no instruction counter for arch {arch}")

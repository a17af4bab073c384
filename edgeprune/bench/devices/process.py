"""Running local processes with a deadline, and turning program output into a Measurement."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass

from ..programs import ProgramOutputError, marked_intervals, parse_program_output
from .base import DeviceError, Measurement


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str


class Timeout(Exception):
    pass


def run(argv: list[str], *, timeout: float, stdin: bytes | None = None, cwd=None, env=None) -> Completed:
    """Run ``argv`` in its own process group; on timeout kill the whole group and raise ``Timeout``."""
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    except OSError as e:
        raise DeviceError(f"cannot start {argv[0]}: {e.strerror or e}") from None
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
        raise Timeout() from None
    except BaseException:
        _kill_group(proc)
        proc.communicate()
        raise
    return Completed(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the group we created for this process only
    except ProcessLookupError:
        pass


def describe_status(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    if returncode > 128 and returncode - 128 < 65:
        try:
            return f"was killed by {signal.Signals(returncode - 128).name}"
        except ValueError:
            pass
    return f"exited with status {returncode}"


def last_line(text: str) -> str:
    lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
    return lines[-1][:200] if lines else ""


def measurement_from_output(
    stdout: str, where: str, *, marks: list[int] | None = None, emulated: bool = False, program=None
) -> Measurement:
    """Parse a benchmark program's JSON; with QEMU's marks, latency becomes instructions per call."""
    parse = getattr(program, "parse", None) or parse_program_output
    try:
        parsed = parse(stdout)
    except ProgramOutputError as e:
        raise DeviceError(f"{where}: {e}") from None
    samples = {mode: v["samples"] for mode, v in parsed["latency"].items()}
    warmup = {mode: v["warmup"] for mode, v in parsed["latency"].items()}
    unit, clock = parsed["unit"], parsed["clock"]
    if marks is not None:
        intervals = marked_intervals(marks)
        counts = {mode: len(s) for mode, s in samples.items()}
        if sum(counts.values()) != len(intervals):
            raise DeviceError(
                f"{where}: the instruction counter saw {len(intervals)} timed calls, "
                f"the program reports {sum(counts.values())}"
            )
        order = list(samples)  # the order the program printed them in is the order it timed them in
        at = 0
        for mode in order:
            samples[mode] = intervals[at : at + counts[mode]]
            at += counts[mode]
        unit, clock = "instructions", "QEMU TCG plugin (edgeprune epcount), instructions per call"
    info = {"model": parsed.get("model"), "program_clock": parsed["clock"]}
    if program is not None:
        info["program"] = {"arch": program.arch, "kind": program.kind, **program.sizes}
    return Measurement(parsed["outputs"], samples, unit, clock, warmup, emulated, info)

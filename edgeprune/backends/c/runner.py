"""Runners of a built C artifact: in-process through ctypes, or the built harness over its protocol.

``BridgeRunner`` (host builds) calls ``build/lib<prefix>.so`` via ``edgeprune.runtime.CompiledModel``.
``HarnessRunner`` drives ``edgeprune_run`` (cross builds, sanitizer builds). Two transports: a long-lived process on
stdin/stdout (native, qemu-user), or, for an emulated
board whose I/O is semihosted files, one emulator run per request that replays the stream's
commands so far (so step-by-step verification still exercises ``<prefix>_step`` on the board).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ...errors import BackendError
from ...runtime import CompiledModel
from ..base import Runner

RUN_TIMEOUT = 300
BOARD_INPUT, BOARD_OUTPUT = "edgeprune_in.bin", "edgeprune_out.bin"


def _first_line(text: str) -> str:
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    return lines[0] if lines else ""


class _Pipe:
    def __init__(self, command: list[str], label: str):
        self.command, self.label = command, label
        self.proc: subprocess.Popen | None = None
        self.stderr = None

    def _process(self) -> subprocess.Popen:
        if self.proc is None:
            self.stderr = tempfile.TemporaryFile()  # a file, so a chatty child can never block on it
            try:
                self.proc = subprocess.Popen(
                    self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr
                )
            except OSError as e:
                raise BackendError(f"cannot start {self.label}: {e}") from None
        return self.proc

    def _failed(self, why: str) -> BackendError:
        proc = self.proc
        if proc is not None:
            try:  # it died or misbehaved; give it a moment to report its exit status
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        code = proc.poll() if proc else None
        message = ""
        if self.stderr is not None:
            self.stderr.seek(0)
            message = _first_line(self.stderr.read().decode(errors="replace"))
        self.close()
        status = f" (exit status {code})" if code is not None else ""
        return BackendError(f"{self.label} {why}{status}{': ' + message if message else ''}")

    def send(self, payload: bytes) -> None:
        try:
            self._process().stdin.write(payload)
        except (BrokenPipeError, OSError):
            raise self._failed("stopped reading its input") from None

    def ask(self, payload: bytes, want: int, keep: bool = True) -> bytes:
        self.send(payload)
        try:
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._failed("stopped reading its input") from None
        data = self.proc.stdout.read(want) if want else b""
        if len(data) != want:
            raise self._failed(f"returned {len(data)} of {want} output bytes")
        return data

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                if proc.poll() is None:
                    proc.stdin.write(b"Q")
                    proc.stdin.close()
                    proc.wait(timeout=10)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
            finally:
                for stream in (proc.stdin, proc.stdout):
                    try:  # closing flushes what is buffered, which fails if the child is gone
                        if stream and not stream.closed:
                            stream.close()
                    except OSError:
                        pass
        if self.stderr is not None:
            self.stderr.close()
            self.stderr = None


class _Files:
    """One emulator run per request; stream commands ('R', 'S') are replayed before each new one."""

    def __init__(self, command: list[str], label: str):
        self.command, self.label = command, label
        self.session, self.session_out = b"", 0
        self.workdir = Path(tempfile.mkdtemp(prefix="edgeprune-board-"))

    def send(self, payload: bytes) -> None:
        if payload[:1] == b"R":
            self.session, self.session_out = payload, 0
        else:
            self.session += payload

    def ask(self, payload: bytes, want: int, keep: bool = True) -> bytes:
        before = self.session_out
        request = self.session + payload if keep else payload
        (self.workdir / BOARD_INPUT).write_bytes(request + b"Q")
        (self.workdir / BOARD_OUTPUT).unlink(missing_ok=True)
        try:
            done = subprocess.run(self.command, cwd=self.workdir, capture_output=True, timeout=RUN_TIMEOUT)
        except OSError as e:
            raise BackendError(f"cannot start {self.label}: {e}") from None
        except subprocess.TimeoutExpired:
            raise BackendError(f"{self.label} did not finish within {RUN_TIMEOUT} s") from None
        out_path = self.workdir / BOARD_OUTPUT
        data = out_path.read_bytes() if out_path.exists() else b""
        expected = (before if keep else 0) + want
        if done.returncode != 0 or len(data) != expected:
            message = _first_line(done.stderr.decode(errors="replace") + "\n" + done.stdout.decode(errors="replace"))
            raise BackendError(
                f"{self.label} failed (exit status {done.returncode}, {len(data)} of {expected} "
                f"output bytes){': ' + message if message else ''}"
            )
        if keep:
            self.session, self.session_out = request, expected
        return data[len(data) - want :] if want else b""

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


class HarnessRunner(Runner):
    """Runs an artifact through its harness; the C code keeps the stream states between calls."""

    def __init__(
        self,
        command: list[str],
        input_size: int,
        num_classes: int,
        label: str = "edgeprune_run",
        io: str = "pipe",
        every: bool = False,
    ):
        self.input_size, self.num_classes, self.every = input_size, num_classes, every
        self.transport = _Files(command, label) if io == "files" else _Pipe(command, label)
        self._streams = 0

    def run(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 3 or X.shape[2] != self.input_size:
            raise BackendError(f"expected inputs [N, T, {self.input_size}], got {list(X.shape)}")
        header = b"X" + np.array([X.shape[0], X.shape[1]], dtype=np.int32).tobytes()
        per = X.shape[1] if self.every else 1  # outputs per sequence
        data = self.transport.ask(header + X.tobytes(), X.shape[0] * per * self.num_classes * 4, keep=False)
        out = self._logits(data, X.shape[0] * per)
        return out.reshape(X.shape[0], X.shape[1], self.num_classes) if self.every else out

    def reset(self, batch: int = 1) -> None:
        self.transport.send(b"R" + np.array([batch], dtype=np.int32).tobytes())
        self._streams = batch

    def step(self, x_t: np.ndarray) -> np.ndarray:
        x_t = np.ascontiguousarray(x_t, dtype=np.float32)
        if x_t.ndim != 2 or x_t.shape[1] != self.input_size:
            raise BackendError(f"expected a step [N, {self.input_size}], got {list(x_t.shape)}")
        if not self._streams:
            self.reset(len(x_t))
        elif self._streams != len(x_t):
            raise BackendError(f"step got {len(x_t)} streams after reset({self._streams})")
        data = self.transport.ask(b"S" + x_t.tobytes(), len(x_t) * self.num_classes * 4)
        return self._logits(data, len(x_t))

    def _logits(self, data: bytes, rows: int) -> np.ndarray:
        return np.frombuffer(data, dtype=np.float32).reshape(rows, self.num_classes).copy()

    def close(self) -> None:
        self.transport.close()
        self._streams = 0


class BridgeRunner(Runner):
    """The host build, in this process: one ctypes call per stream and step."""

    def __init__(self, model: CompiledModel):
        self.model = model

    def run(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 3:
            raise BackendError(f"expected inputs [N, T, {self.model.input_size}], got {list(X.shape)}")
        return self.model.run(X)

    def reset(self, batch: int = 1) -> None:
        self.model.reset(batch)

    def step(self, x_t: np.ndarray) -> np.ndarray:
        x_t = np.asarray(x_t)
        if x_t.ndim != 2:
            raise BackendError(f"expected a step [N, {self.model.input_size}], got {list(x_t.shape)}")
        return self.model.step(x_t)

    def close(self) -> None:
        self.model.close()

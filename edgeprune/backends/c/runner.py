"""Drive the built harness (``edgeprune_run``) over its binary stdin/stdout protocol."""

from __future__ import annotations

import subprocess
import tempfile

import numpy as np

from ...errors import BackendError
from ..base import Runner


class HarnessRunner(Runner):
    """One harness process per runner; the C code keeps the stream states between calls."""

    def __init__(self, command: list[str], input_size: int, num_classes: int, label: str = "edgeprune_run"):
        self.command, self.input_size, self.num_classes, self.label = command, input_size, num_classes, label
        self._proc: subprocess.Popen | None = None
        self._stderr = None
        self._streams = 0

    def _process(self) -> subprocess.Popen:
        if self._proc is None:
            self._stderr = tempfile.TemporaryFile()  # a file, so a chatty child can never block on it
            try:
                self._proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                              stderr=self._stderr)
            except OSError as e:
                raise BackendError(f"cannot start {self.label}: {e}") from None
        return self._proc

    def _failed(self, why: str) -> BackendError:
        proc = self._proc
        code = proc.poll() if proc else None
        message = ""
        if self._stderr is not None:
            self._stderr.seek(0)
            lines = [l for l in self._stderr.read().decode(errors="replace").splitlines() if l.strip()]
            message = lines[0].strip() if lines else ""
        self.close()
        status = f" (exit status {code})" if code is not None else ""
        return BackendError(f"{self.label} {why}{status}{': ' + message if message else ''}")

    def _exchange(self, payload: bytes, rows: int) -> np.ndarray:
        proc = self._process()
        try:
            proc.stdin.write(payload)
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._failed("stopped reading its input") from None
        want = rows * self.num_classes * 4
        data = proc.stdout.read(want) if want else b""
        if len(data) != want:  # it died or misbehaved; give it a moment to report its exit status
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            raise self._failed(f"returned {len(data)} of {want} output bytes")
        return np.frombuffer(data, dtype=np.float32).reshape(rows, self.num_classes).copy()

    def run(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 3 or X.shape[2] != self.input_size:
            raise BackendError(f"expected inputs [N, T, {self.input_size}], got {list(X.shape)}")
        header = b"X" + np.array([X.shape[0], X.shape[1]], dtype=np.int32).tobytes()
        return self._exchange(header + X.tobytes(), X.shape[0])

    def reset(self, batch: int = 1) -> None:
        self._process()
        self._streams = batch
        try:
            self._proc.stdin.write(b"R" + np.array([batch], dtype=np.int32).tobytes())
        except (BrokenPipeError, OSError):
            raise self._failed("stopped reading its input") from None

    def step(self, x_t: np.ndarray) -> np.ndarray:
        x_t = np.ascontiguousarray(x_t, dtype=np.float32)
        if x_t.ndim != 2 or x_t.shape[1] != self.input_size:
            raise BackendError(f"expected a step [N, {self.input_size}], got {list(x_t.shape)}")
        if not self._streams:
            self.reset(len(x_t))
        elif self._streams != len(x_t):
            raise BackendError(f"step got {len(x_t)} streams after reset({self._streams})")
        return self._exchange(b"S" + x_t.tobytes(), len(x_t))

    def close(self) -> None:
        proc, self._proc = self._proc, None
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
                    if stream and not stream.closed:
                        stream.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self._streams = 0

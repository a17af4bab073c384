"""``serial:///dev/ttyX``: a microcontroller board running the edgeprune serial server firmware.

The board already runs its firmware (``native/ep_serial.c`` over the board's UART port, around
the backend's model code); the harness only talks to it, with the line protocol documented in
docs/bench.md. Latency is what the board's own counter measured around each call, in its unit
("cycles" of the counter whose name and rate the board reports), so the UART round trip is never
part of a figure. Any pyserial URL works after ``serial:`` (``serial:socket://127.0.0.1:4444``,
``serial:rfc2217://...``), which is also how the tests reach QEMU's emulated UART.
"""

from __future__ import annotations

import secrets
import struct
import time

import numpy as np

from .base import Device, DeviceError, Job, Measurement

PROTOCOL = "edgeprune-serial"
PROTOCOL_VERSION = 1


def float_words(values: np.ndarray) -> str:
    return " ".join(f"{w:08x}" for w in np.ascontiguousarray(values, dtype="<f4").view("<u4"))


def words_to_floats(words: list[str]) -> np.ndarray:
    return np.array([struct.unpack("<f", struct.pack("<I", int(w, 16)))[0] for w in words], dtype=np.float32)


class SerialDevice(Device):
    kind = "serial"
    builds_programs = False

    def __init__(
        self, url: str, port: str, baudrate: int = 115200, reply_timeout: float = 10.0, boot_timeout: float = 10.0
    ):
        super().__init__(url)
        self.port, self.baudrate = port, baudrate
        self.reply_timeout, self.boot_timeout = reply_timeout, boot_timeout
        self.conn = None
        self.hello: dict = {}

    # -- protocol ------------------------------------------------------------------------------
    def command(self, line: str, *, timeout: float | None = None) -> list[str]:
        """Send one command, return the reply's words after OK; ERR or silence -> DeviceError."""
        verb = line.split(" ", 1)[0]
        try:
            self._send(line)
            reply = self._readline(self.reply_timeout if timeout is None else timeout)
        except OSError as e:  # pyserial's SerialException is an OSError
            raise DeviceError(f"{self.url}: connection lost during {verb} ({e})") from None
        if reply is None:
            raise DeviceError(f"{self.url}: no reply to {verb} within {self.reply_timeout:g} s")
        words = reply.split()
        if words and words[0] == "ERR":
            raise DeviceError(f"{self.url}: the board refused {verb}: {' '.join(words[1:])}")
        if not words or words[0] != "OK":
            raise DeviceError(f"{self.url}: unexpected reply to {verb}: '{reply[:80]}'")
        return words[1:]

    def _send(self, line: str) -> None:
        self.conn.write((line + "\n").encode("ascii"))
        self.conn.flush()

    def _readline(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        buf = b""
        while time.monotonic() < deadline:
            chunk = self.conn.readline()
            buf += chunk
            if buf.endswith(b"\n"):
                return buf.decode("ascii", "replace").strip()
        return None

    # -- Device --------------------------------------------------------------------------------
    def open(self) -> None:
        try:
            import serial
        except ImportError:
            raise DeviceError(f"{self.url}: pyserial is not installed (pip install 'edgeprune[embedded]')") from None
        try:
            self.conn = serial.serial_for_url(self.port, baudrate=self.baudrate, timeout=0.2, write_timeout=5)
        except (OSError, ValueError) as e:
            raise DeviceError(f"{self.url}: cannot open {self.port} ({e})") from None
        deadline = time.monotonic() + self.boot_timeout
        words = None
        while words is None:  # the board may still be booting: say hello until it answers
            try:
                self.conn.reset_input_buffer()
                words = self.command("HELLO", timeout=1.0)
            except DeviceError:
                if time.monotonic() > deadline:
                    self.close()
                    raise DeviceError(
                        f"{self.url}: no {PROTOCOL} firmware answered within {self.boot_timeout:g} s"
                    ) from None
        if len(words) < 2 or words[0] != PROTOCOL or words[1] != str(PROTOCOL_VERSION):
            self.close()
            raise DeviceError(
                f"{self.url}: the board speaks '{' '.join(words[:2])}', expected {PROTOCOL} {PROTOCOL_VERSION}"
            )
        self._synchronise()
        fields = dict(w.split("=", 1) for w in words[2:] if "=" in w)
        try:
            self.hello = {
                "model": fields.get("model", ""),
                "inputs": int(fields["inputs"]),
                "classes": int(fields["classes"]),
                "max_steps": int(fields["max_steps"]),
                "clock": fields.get("clock", ""),
                "clock_hz": int(fields.get("clock_hz", 0)),
            }
        except (KeyError, ValueError):
            self.close()
            raise DeviceError(f"{self.url}: malformed HELLO reply: '{' '.join(words)[:120]}'") from None

    def _synchronise(self) -> None:
        """Skip replies still queued from HELLOs the booting board answered late.

        Each command has exactly one reply, so a late one would be read as the answer to the next
        command; SYNC echoes a fresh token and everything before its echo is stale.
        """
        token = secrets.token_hex(4)
        deadline = time.monotonic() + self.reply_timeout
        try:
            self._send(f"SYNC {token}")
            while time.monotonic() < deadline:
                line = self._readline(deadline - time.monotonic())
                if line is not None and line.split() == ["OK", token]:
                    return
        except OSError as e:
            self.close()
            raise DeviceError(f"{self.url}: connection lost during SYNC ({e})") from None
        self.close()
        raise DeviceError(
            f"{self.url}: no reply to SYNC within {self.reply_timeout:g} s "
            f"(firmware older than the SYNC command? rebuild it)"
        )

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None

    def arch(self) -> str:
        return "mcu"

    def describe(self) -> dict:
        return {**super().describe(), "port": self.port, "baudrate": self.baudrate, "board": self.hello}

    def execute(self, job: Job) -> Measurement:
        if self.conn is None:
            self.open()
        X = np.asarray(job.X, dtype=np.float32)
        N, T, F = X.shape
        h = self.hello
        if F != h["inputs"]:
            raise DeviceError(f"{self.url}: the board's model takes {h['inputs']} inputs, the data has {F}")
        settings = job.settings
        outputs: dict[str, np.ndarray] = {}
        samples: dict[str, list[float]] = {}
        deadline = time.monotonic() + job.timeout_s

        def timed(words: list[str]) -> tuple[int, np.ndarray]:
            if len(words) != 1 + h["classes"]:
                raise DeviceError(f"{self.url}: reply has {len(words) - 1} logits, expected {h['classes']}")
            return int(words[0]), words_to_floats(words[1:])

        def check_time() -> None:
            if time.monotonic() > deadline:
                raise DeviceError(f"{self.url}: {job.label}: no result within {job.timeout_s:g} s")

        reps = max(settings.min_reps, 1)
        if "step" in settings.modes:
            logits, counts = [], []
            lines = [[float_words(X[n, t]) for t in range(T)] for n in range(N)]
            n = 0
            while n < N or len(counts) < reps:  # every sequence once (outputs), then until enough samples
                seq = n % N
                self.command("RESET")
                for t in range(T):
                    cycles, out = timed(self.command("STEP " + lines[seq][t]))
                    counts.append(cycles)
                    check_time()
                if n < N:
                    logits.append(out)
                n += 1
            outputs["step"], samples["step"] = np.stack(logits), counts
        if "sequence" in settings.modes:
            if T > h["max_steps"]:
                raise DeviceError(f"{self.url}: sequences have {T} steps, the board holds at most {h['max_steps']}")
            logits, counts = [], []
            n = 0
            while n < N or len(counts) < min(reps, settings.max_reps):
                seq = n % N
                if n < N or N > 1:
                    for t in range(T):
                        self.command(f"LOAD {t} {float_words(X[seq, t])}")
                cycles, out = timed(self.command(f"RUN {T}"))
                counts.append(cycles)
                check_time()
                if n < N:
                    logits.append(out)
                n += 1
            outputs["sequence"], samples["sequence"] = np.stack(logits), counts
        clock = f"board counter '{h['clock']}'" + (f" at {h['clock_hz']} Hz" if h["clock_hz"] else "")
        return Measurement(
            outputs,
            samples,
            "cycles",
            clock,
            {m: 0 for m in samples},
            self.emulated,
            {"model": h["model"], "clock_hz": h["clock_hz"], "board": h},
        )

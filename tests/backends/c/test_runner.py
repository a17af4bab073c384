"""The harness runner's transports fail with one clear line, and stream bookkeeping is checked."""

import shutil
import sys

import numpy as np
import pytest

from edgeprune.backends.c.runner import HarnessRunner
from edgeprune.errors import BackendError

# A stand-in harness in Python: answers 'X' with the sum of each sequence in every class slot.
FAKE = r"""
import struct, sys
inp, out = sys.stdin.buffer, sys.stdout.buffer
while True:
    c = inp.read(1)
    if c in (b"", b"Q"):
        break
    if c == b"X":
        n, t = struct.unpack("ii", inp.read(8))
        data = struct.unpack(f"{n * t * 2}f", inp.read(4 * n * t * 2))
        for i in range(n):
            s = sum(data[i * t * 2:(i + 1) * t * 2])
            out.write(struct.pack("3f", s, s, s))
        out.flush()
    elif c == b"R":
        inp.read(4)
    else:
        sys.stderr.write("edgeprune_run: unknown command\n")
        sys.exit(2)
"""


def test_pipe_protocol_round_trip(tmp_path):
    (tmp_path / "fake.py").write_text(FAKE)
    X = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    with HarnessRunner([sys.executable, str(tmp_path / "fake.py")], 2, 3) as runner:
        out = runner.run(X)
        again = runner.run(X)  # the process stays up between requests
    assert np.array_equal(out, np.repeat(X.sum(axis=(1, 2))[:, None], 3, axis=1)) and np.array_equal(out, again)


def test_a_dying_harness_is_reported_with_its_message(tmp_path):
    (tmp_path / "fake.py").write_text(FAKE)
    with HarnessRunner([sys.executable, str(tmp_path / "fake.py")], 2, 3, label="fake") as runner:
        runner.reset(1)
        with pytest.raises(
            BackendError,
            match=r"fake returned 0 of 12 output bytes \(exit status 2\): "
            r"edgeprune_run: unknown command",
        ):
            runner.step(np.zeros((1, 2), np.float32))


def test_a_missing_program_is_reported(tmp_path):
    with HarnessRunner([str(tmp_path / "nothing")], 2, 3, label="ghost") as runner:
        with pytest.raises(BackendError, match="cannot start ghost"):
            runner.run(np.zeros((1, 1, 2), np.float32))


@pytest.mark.parametrize("child", ["exits at once", "reads everything"])
def test_shapes_and_stream_counts_are_checked(child):
    code = "pass" if child == "exits at once" else "import sys; sys.stdin.buffer.read()"
    with HarnessRunner([sys.executable, "-c", code], 2, 3) as runner:
        with pytest.raises(BackendError, match=r"expected inputs \[N, T, 2\]"):
            runner.run(np.zeros((1, 1, 5), np.float32))
        runner.reset(4)
        with pytest.raises(BackendError, match=r"step got 2 streams after reset\(4\)"):
            runner.step(np.zeros((2, 2), np.float32))


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs sh")
def test_file_transport_reports_a_failed_board_run(tmp_path):
    with HarnessRunner(["sh", "-c", "echo boom >&2; exit 3"], 2, 3, label="board", io="files") as runner:
        with pytest.raises(BackendError, match=r"board failed \(exit status 3, 0 of 12 output bytes\): boom"):
            runner.run(np.zeros((1, 1, 2), np.float32))
        workdir = runner.transport.workdir
    assert not workdir.exists()  # cleaned up on close

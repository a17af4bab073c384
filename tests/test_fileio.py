import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeprune.errors import OutputError
from edgeprune.fileio import atomic_directory, check_writable, npz_bytes, remove_stale_temporaries, write_bytes_atomic


def test_failed_block_leaves_nothing(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as d:
            (d / "partial.bin").write_bytes(b"x")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_success_replaces_existing_directory(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_directory(target) as d:
        (d / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_file_write(tmp_path):
    write_bytes_atomic(tmp_path / "a" / "b.bin", b"123")
    assert (tmp_path / "a" / "b.bin").read_bytes() == b"123"
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.bin"]


def test_npz_is_byte_stable_and_loadable(tmp_path):
    arrays = {"b": np.arange(5, dtype=np.int32), "a": np.ones((2, 2), np.float32)}
    data = npz_bytes(arrays)
    assert data == npz_bytes(dict(reversed(list(arrays.items()))))
    (tmp_path / "x.npz").write_bytes(data)
    with np.load(tmp_path / "x.npz") as f:
        np.testing.assert_array_equal(f["b"], arrays["b"])


def test_outputs_get_the_usual_permissions(tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    try:
        f = write_bytes_atomic(tmp_path / "f.bin", b"x")
        with atomic_directory(tmp_path / "d") as d:
            (d / "x").write_text("x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(f.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755


def test_existing_file_and_check_header_say_what_is_wrong_in_one_line(tmp_path):
    from edgeprune.errors import IRError
    from edgeprune.fileio import check_header, existing_file

    f = tmp_path / "m.bin"
    with pytest.raises(IRError, match=r"m\.bin: no such file$"):
        existing_file(f, "a model file", IRError)
    with pytest.raises(IRError, match=r": is a directory, not a model file$"):
        existing_file(tmp_path, "a model file", IRError)
    f.write_bytes(b"x")
    assert existing_file(str(f), "a model file", IRError) == f
    doc = {"format": "edgeprune.x", "version": 1}
    assert check_header(doc, f, "edgeprune.x", 1, "an x file", "x", IRError) is doc
    for bad, message in (
        ([1], "not an x file (no 'edgeprune.x' header)"),
        ({"format": "other"}, "not an x file (no 'edgeprune.x' header)"),
        ({"format": "edgeprune.x", "version": 2}, "x version 2 is not supported (expected 1)"),
    ):
        with pytest.raises(IRError) as e:
            check_header(bad, f, "edgeprune.x", 1, "an x file", "x", IRError)
        assert str(e.value) == f"{f}: {message}"


# -- hardening (issue 18, item 4): no temporaries survive a kill or a failed replace ------------------

_WRITER = """
import sys, time
from edgeprune.fileio import atomic_directory
with atomic_directory(sys.argv[1]) as d:
    (d / "half.bin").write_bytes(b"x" * 4096)
    print("writing", flush=True)
    time.sleep(60)
"""


def _start_writer(target: Path) -> subprocess.Popen:
    """A process in the middle of writing ``target`` (it holds its temporary directory)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "writing"
    return proc


def _hidden(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_a_killed_runs_temporary_directory_is_removed_by_the_next_run(tmp_path):
    """Before: kill -9 during compile left '.out.XXXX.tmp' next to the output for ever."""
    target = tmp_path / "out"
    proc = _start_writer(target)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(_hidden(tmp_path)) == 1 and _hidden(tmp_path)[0].endswith(".tmp")
    with atomic_directory(target) as d:
        (d / "new.txt").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_live_writers_temporary_is_left_alone(tmp_path):
    target = tmp_path / "out"
    proc = _start_writer(target)
    try:
        theirs = _hidden(tmp_path)
        with atomic_directory(target) as d:  # a second writer of the same output, at the same time
            (d / "mine.txt").write_text("mine")
        assert _hidden(tmp_path) == theirs and (tmp_path / theirs[0] / "half.bin").exists()
    finally:
        proc.kill()
        proc.wait()
    assert remove_stale_temporaries(target) == [tmp_path / theirs[0]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_stale_file_temporary_is_removed_by_the_next_write(tmp_path):
    (tmp_path / ".m.pt.k1ll3d.tmp").write_bytes(b"half a checkpoint")  # what a kill mid-write leaves
    (tmp_path / ".other.pt.k1ll3d.tmp").write_bytes(b"another output's: not ours to judge")
    write_bytes_atomic(tmp_path / "m.pt", b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.pt.k1ll3d.tmp", "m.pt"]


def test_a_kill_between_the_two_renames_puts_the_old_output_back(tmp_path):
    old = tmp_path / ".out.abc.old"
    (old / "d").mkdir(parents=True)
    (old / "d" / "previous.txt").write_text("previous")
    remove_stale_temporaries(tmp_path / "out")
    assert (tmp_path / "out" / "previous.txt").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failed_replace_leaves_the_old_output_and_no_temporaries(tmp_path, monkeypatch):
    """Before: replacing an immutable directory failed with PermissionError and left a full .tmp and a .old."""
    import edgeprune.fileio as fileio

    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    real_replace = os.replace

    def refuse_to_move_the_output(src, dst):  # what chattr +i on the output directory does
        if Path(src) == target:
            raise PermissionError(1, "Operation not permitted")
        return real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", refuse_to_move_the_output)
    with pytest.raises(OutputError, match=r"out: cannot replace it \(Operation not permitted\)"):
        with atomic_directory(target) as d:
            (d / "new.txt").write_text("new" * 1000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert [p.name for p in target.iterdir()] == ["old.txt"]


def test_write_errors_are_one_line_output_errors(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot create its directory"):
        write_bytes_atomic(tmp_path / "file" / "m.pt", b"x")
    with pytest.raises(OutputError, match="is a directory"):
        write_bytes_atomic(tmp_path, b"x")
    with pytest.raises(OutputError, match="cannot write"):
        write_bytes_atomic(Path("/sys/edgeprune-test.bin"), b"x")  # nobody, not even root, creates files there


@pytest.mark.parametrize(
    "make, directory, message",
    [
        (lambda t: t / "file" / "m.pt", False, r"file is a file, not a directory"),
        (lambda t: t / "file" / "a" / "b" / "m.pt", False, r"file is a file, not a directory"),
        (lambda t: Path("/sys/edgeprune-test/m.pt"), False, r"cannot write in /sys \(Permission denied\)"),
        (lambda t: t / "adir", False, "exists and is not a file"),
        (lambda t: t / "file", True, "exists and is not a directory"),
        (lambda t: Path(""), False, "not a usable output name"),
    ],
)
def test_check_writable_refuses_before_any_work(tmp_path, make, directory, message):
    (tmp_path / "file").write_text("x")
    (tmp_path / "adir").mkdir()
    with pytest.raises(OutputError, match=message):
        check_writable(make(tmp_path), directory=directory)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "file"]


def test_check_writable_accepts_new_paths_and_creates_nothing(tmp_path):
    check_writable(tmp_path / "a" / "b" / "m.pt")
    check_writable(tmp_path / "out", directory=True)
    assert list(tmp_path.iterdir()) == []

import numpy as np
import pytest

from edgeprune.fileio import atomic_directory, npz_bytes, write_bytes_atomic


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
    for bad, message in (([1], "not an x file (no 'edgeprune.x' header)"),
                         ({"format": "other"}, "not an x file (no 'edgeprune.x' header)"),
                         ({"format": "edgeprune.x", "version": 2}, "x version 2 is not supported (expected 1)")):
        with pytest.raises(IRError) as e:
            check_header(bad, f, "edgeprune.x", 1, "an x file", "x", IRError)
        assert str(e.value) == f"{f}: {message}"

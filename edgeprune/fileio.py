"""Atomic, byte-reproducible file output.

Outputs are written to a temporary sibling and renamed into place, so an interrupted or failed
command never leaves a partial file or directory behind. Archives get fixed timestamps so that the
same inputs give the same bytes.

A temporary sibling (``.NAME.XXXX.tmp``, and ``.NAME.XXXX.old`` while a directory is replaced) is
``flock``-ed by the process writing it. A killed process cannot remove its temporaries, but the
kernel drops its locks: the next write of the same output removes every sibling temporary nobody
holds a lock on. A temporary is created under a ``.new`` name and renamed only once it is locked,
so a concurrent writer never sees another's fresh temporary unlocked.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from .errors import OutputError

_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_TEMP_SUFFIXES = (".tmp", ".old")
_UNLOCKED_GRACE_S = 60.0  # a ".new" lives microseconds; one older than this was left by a kill


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _reason(e: OSError) -> str:
    return e.strerror or type(e).__name__


def check_writable(path: str | os.PathLike, *, directory: bool = False) -> Path:
    """Fail now, as one line, if ``path`` cannot be written later (call before any slow work).

    The output's nearest existing ancestor must be a directory this process can create files in
    (tried for real: permission bits, read-only mounts and root all answer the same way), and an
    existing ``path`` must be of the kind that will replace it.
    """
    path = Path(path)
    if not str(path) or path.name in ("", ".", ".."):
        raise OutputError(f"'{path}' is not a usable output name")
    kind = "directory" if directory else "file"
    if path.exists() and path.is_dir() != directory:
        raise OutputError(f"{path}: exists and is not a {kind}")
    ancestor = path.parent.absolute()
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"{path}: cannot create it, {ancestor} is a file, not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".edgeprune-probe.", dir=ancestor)
    except OSError as e:
        raise OutputError(f"{path}: cannot write in {ancestor} ({_reason(e)})") from None
    os.close(fd)
    os.unlink(probe)
    return path


def _lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _locked_temp(parent: Path, name: str, suffix: str, *, directory: bool) -> tuple[Path, int]:
    """A new temporary sibling ``.NAME.XXXX<suffix>`` and an fd holding its lock."""
    if directory:
        fresh = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".new", dir=parent))
        fd = os.open(fresh, os.O_RDONLY | os.O_DIRECTORY)
    else:
        fd, fresh_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".new", dir=parent)
        fresh = Path(fresh_name)
    fcntl.flock(fd, fcntl.LOCK_EX)  # ours alone: nobody else knows the name yet
    final = fresh.with_name(fresh.name[: -len(".new")] + suffix)
    os.rename(fresh, final)
    return final, fd


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporaries a killed writer of ``path`` left next to it; returns what was removed.

    If the kill came between moving the old output aside and moving the new one in, the old
    output is put back first.
    """
    path = Path(path)
    prefix = f".{path.name}."
    try:
        entries = [e for e in path.parent.iterdir() if e.name.startswith(prefix)]
    except OSError:
        return []
    removed = []
    for entry in sorted(entries):
        name = entry.name
        if name.endswith(".new"):
            with contextlib.suppress(OSError):
                if time.time() - entry.lstat().st_mtime > _UNLOCKED_GRACE_S:
                    _remove(entry)
                    removed.append(entry)
            continue
        if not name.endswith(_TEMP_SUFFIXES) or entry.is_symlink():
            continue
        try:
            fd = os.open(entry, os.O_RDONLY)
        except OSError:
            continue
        try:
            if not _lock(fd):
                continue  # a live writer holds it
            if name.endswith(".old") and (entry / "d").exists() and not path.exists():
                with contextlib.suppress(OSError):
                    os.replace(entry / "d", path)
            _remove(entry)
            removed.append(entry)
        finally:
            os.close(fd)
    return removed


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{path}: cannot create its directory ({_reason(e)})") from None


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    _make_parent(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a directory")
    remove_stale_temporaries(path)
    try:
        tmp, fd = _locked_temp(path.parent, path.name, ".tmp", directory=False)
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({_reason(e)})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
            os.replace(tmp, path)  # still locked (fd open) until the rename is done
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise OutputError(f"{path}: cannot write ({_reason(e)})") from None
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def dumps_json(obj) -> str:
    """Stable JSON: sorted keys, two-space indent, trailing newline."""
    return json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces ``path`` only if the block succeeds."""
    path = Path(path)
    _make_parent(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a directory")
    remove_stale_temporaries(path)
    try:
        tmp, tmp_fd = _locked_temp(path.parent, path.name, ".tmp", directory=True)
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({_reason(e)})") from None
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _replace_directory(tmp, path)
    finally:
        os.close(tmp_fd)


def _replace_directory(tmp: Path, path: Path) -> None:
    """Move ``tmp`` to ``path`` (the old ``path`` goes away); on failure nothing of ours is left."""
    old = old_fd = None
    moved_aside = False
    try:
        if path.exists():
            old, old_fd = _locked_temp(path.parent, path.name, ".old", directory=True)
            os.replace(path, old / "d")
            moved_aside = True
        os.replace(tmp, path)
    except OSError as e:
        if moved_aside:
            with contextlib.suppress(OSError):
                os.replace(old / "d", path)  # put the previous output back
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(f"{path}: cannot replace it ({_reason(e)})") from None
    finally:
        # never delete the previous output: if putting it back failed, its ".old" stays
        if old is not None and not (moved_aside and not path.exists()):
            shutil.rmtree(old, ignore_errors=True)
        if old_fd is not None:
            os.close(old_fd)


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """An .npz archive (readable by ``np.load``) with fixed timestamps and sorted members."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


# Reading our versioned files (checkpoints, the IR, imported models): the same first checks and the
# same one-line messages everywhere. ``error`` is the EdgepruneError subclass of the caller's domain.
def existing_file(path: str | os.PathLike, what: str, error: type[Exception]) -> Path:
    """``path`` if it names a file, else ``error``: "<path>: no such file" / "is a directory, not <what>"."""
    path = Path(path)
    if not path.exists():
        raise error(f"{path}: no such file")
    if path.is_dir():
        raise error(f"{path}: is a directory, not {what}")
    return path


def check_header(
    doc, path: str | os.PathLike, fmt: str, version: int | tuple[int, ...], what: str, kind: str, error: type[Exception]
) -> dict:
    """``doc``, the top level of a loaded file, must be a dict whose ``format`` is ``fmt`` and whose
    ``version`` is ``version`` (or one of them); else ``error`` naming ``what`` the file should be / its ``kind``."""
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise error(f"{path}: not {what} (no '{fmt}' header)")
    versions = version if isinstance(version, tuple) else (version,)
    if doc.get("version") not in versions:
        expected = " or ".join(str(v) for v in versions)
        raise error(f"{path}: {kind} version {doc.get('version')} is not supported (expected {expected})")
    return doc

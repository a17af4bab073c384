"""Atomic, byte-reproducible file output.

Outputs are written to a temporary sibling and renamed into place, so an interrupted or failed
command never leaves a partial file or directory behind. Archives get fixed timestamps so that the
same inputs give the same bytes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
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
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not path.is_dir():
        from .errors import EdgepruneError

        raise EdgepruneError(f"{path}: exists and is not a directory")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
        os.replace(path, old / "d")
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


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


def check_header(doc, path: str | os.PathLike, fmt: str, version: int | tuple[int, ...], what: str, kind: str,
                 error: type[Exception]) -> dict:
    """``doc``, the top level of a loaded file, must be a dict whose ``format`` is ``fmt`` and whose
    ``version`` is ``version`` (or one of them); else ``error`` naming ``what`` the file should be / its ``kind``."""
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise error(f"{path}: not {what} (no '{fmt}' header)")
    versions = version if isinstance(version, tuple) else (version,)
    if doc.get("version") not in versions:
        expected = " or ".join(str(v) for v in versions)
        raise error(f"{path}: {kind} version {doc.get('version')} is not supported (expected {expected})")
    return doc

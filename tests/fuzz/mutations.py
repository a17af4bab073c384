"""Mutations of edgeprune's input files and the property every load must keep.

The property: loading a mutated input either succeeds with a valid model (or dataset), or raises
one ``EdgepruneError`` whose message is one non-empty line. Any other exception, a hang (an alarm
fires after ``HANG_S``) or a file written next to the input fails the test. ``STATS`` counts what
happened, for benchmarks/hardening/fuzz.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from edgeprune.errors import EdgepruneError

STATS: Counter = Counter()
HANG_S = 60  # generous: the CI machine runs at load 10+; a real hang never ends


class Hang(Exception):
    pass


@contextlib.contextmanager
def _alarm(seconds: float):
    def fire(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_load(kind: str, load, directory: Path, validate) -> str:
    """Run ``load()``; assert the property; return 'loaded' or 'refused'."""
    before = sorted(p.name for p in directory.rglob("*"))
    STATS[f"{kind} inputs"] += 1
    try:
        with _alarm(HANG_S), warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)  # not shown to users; not the property
            try:
                result = load()
            except EdgepruneError as e:
                message = str(e)
                assert message.strip() and "\n" not in message, f"not one line: {message!r}"
                outcome = "refused"
            else:
                validate(result)
                outcome = "loaded"
    except BaseException:
        STATS[f"{kind} internal errors"] += 1
        raise
    assert sorted(p.name for p in directory.rglob("*")) == before, "the load wrote files"
    STATS[f"{kind} {outcome}"] += 1
    return outcome


# -- byte-level mutations (any file) -----------------------------------------------------------------
@st.composite
def byte_mutation(draw, data: bytes) -> bytes:
    """Bit flips, a truncation, an overwritten span or an inserted span of ``data``."""
    n = len(data)
    kind = draw(st.sampled_from(["flip", "truncate", "overwrite", "insert", "zero"]))
    out = bytearray(data)
    if kind == "flip":
        for pos in draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=8)):
            out[pos] ^= 1 << draw(st.integers(0, 7))
    elif kind == "truncate":
        del out[draw(st.integers(0, n - 1)) :]
    elif kind == "overwrite":
        start = draw(st.integers(0, n - 1))
        chunk = draw(st.binary(min_size=1, max_size=64))
        out[start : start + len(chunk)] = chunk
    elif kind == "insert":
        start = draw(st.integers(0, n))
        out[start:start] = draw(st.binary(min_size=1, max_size=64))
    else:
        start = draw(st.integers(0, n - 1))
        out[start : start + draw(st.integers(1, 256))] = bytes(min(256, n - start))
    return bytes(out)


# -- array mutations (npz members, tensors) ------------------------------------------------------------
SPECIAL_VALUES = [np.nan, np.inf, -np.inf, 3.4e38, -3.4e38, 1e-45, 0.0]
HUGE_DIMS = [0, 1, 2**31 - 1, 2**31, 2**40, 2**62]


@st.composite
def array_mutation(draw, a: np.ndarray) -> np.ndarray:
    kind = draw(st.sampled_from(["special", "dtype", "reshape", "extra_dim", "drop_dim", "slice", "empty"]))
    if kind == "special" and a.size and a.dtype.kind == "f":
        a = a.copy()
        for _ in range(draw(st.integers(1, 4))):
            a.flat[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from(SPECIAL_VALUES))
        return a
    if kind == "dtype":
        dtype = draw(st.sampled_from(["float16", "float64", "int8", "int64", "uint8", "bool", "complex64", "U3"]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return a.astype(dtype)
    if kind == "reshape" and a.size:
        return a.reshape(-1)
    if kind == "extra_dim":
        return a[..., None]
    if kind == "drop_dim" and a.ndim:
        return a.reshape(a.shape[:-2] + (-1,)) if a.ndim > 1 else a[:0]
    if kind == "slice" and a.shape and a.shape[0] > 1:
        return a[: draw(st.integers(0, a.shape[0] - 1))]
    if kind == "empty":
        return a[:0]
    return a[::-1].copy() if a.ndim else a


def npy_with_header_shape(a: np.ndarray, shape: tuple[int, ...]) -> bytes:
    """An .npy member whose header claims ``shape`` while holding ``a``'s bytes (huge-dims attack)."""
    buf = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(a.dtype), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buf, header)
    buf.write(np.ascontiguousarray(a).tobytes())
    return buf.getvalue()


@st.composite
def npz_mutation(draw, arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz archive of ``arrays`` with one structural change (bytes of a valid zip)."""
    import zipfile

    arrays = dict(arrays)
    names = sorted(arrays)
    kind = draw(st.sampled_from(["array", "drop", "rename", "huge_header", "object", "add"]))
    name = draw(st.sampled_from(names))
    raw_members: dict[str, bytes] = {}
    if kind == "array":
        arrays[name] = draw(array_mutation(arrays[name]))
    elif kind == "drop":
        del arrays[name]
    elif kind == "rename":
        arrays[name + "x"] = arrays.pop(name)
    elif kind == "huge_header":
        a = arrays.pop(name)
        shape = tuple(draw(st.sampled_from(HUGE_DIMS)) for _ in range(max(1, a.ndim)))
        raw_members[name] = npy_with_header_shape(a, shape)
    elif kind == "object":
        arrays[name] = np.array([{"x": 1}] * 2, dtype=object)
    else:
        arrays["extra"] = np.zeros(3)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for key, a in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(a), allow_pickle=True)
            zf.writestr(f"{key}.npy", member.getvalue())
        for key, data in raw_members.items():
            zf.writestr(f"{key}.npy", data)
    return buf.getvalue()


# -- JSON mutations (model.json) -----------------------------------------------------------------------
JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 10**30, 1e308, 0.5]),
    st.sampled_from([float("nan"), float("inf")]),
    st.text(max_size=8),
    st.just([]),
    st.just({}),
    st.just(["lstm"]),
    st.just([10**12, 10**12]),
)


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


@st.composite
def json_mutation(draw, doc) -> str:
    doc = json.loads(json.dumps(doc))
    paths = [p for p in _paths(doc) if p]
    path = draw(st.sampled_from(paths))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(JSON_VALUES)
    return json.dumps(doc)  # NaN/Infinity literals included: Python's json reads them


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def fresh_dir(root: Path, name: str) -> Path:
    """An empty directory for one example (examples run in one process, one after another)."""
    d = root / name
    if d.exists():
        import shutil

        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def examples(default: int) -> int:
    """Examples per test: ``default`` in CI; EDGEPRUNE_FUZZ_EXAMPLES for a long run."""
    return int(os.environ.get("EDGEPRUNE_FUZZ_EXAMPLES", default))

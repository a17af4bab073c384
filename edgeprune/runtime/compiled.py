"""``CompiledModel``: generated C built into a shared library and called in-process via ctypes.

    model = CompiledModel.build("out/")          # the directory `compile --target c` wrote
    model.reset()                                # one stream (reset(n): n independent streams)
    y = model.step(x_t)                          # [F] -> [C]   (or [n, F] -> [n, C]): this step's output
    y = model.run(X)                             # [T, F] -> [C] or [N, T, F] -> [N, C]; a model whose
                                                 # output is `every` step: [T, C] or [N, T, C]

    model.step_into(x_t, out)                    # the same into a caller's float32 [C] buffer

Each stream's state is a ``<prefix>_state_t`` in a numpy buffer owned here. One stream's ``step``
is a copy of ``x_t`` into a buffer bound at ``reset`` (pointers resolved once), one ctypes call
and a copy out: ~1 µs on top of the C step (benchmarks/results/c_step_overhead.md), so ``bench``
can time streaming from Python. Several streams step in one C call (``<prefix>_step_streams``),
and ``run`` runs a whole batch of sequences in one C call (``<prefix>_run_batch``).
"""

from __future__ import annotations

import ctypes
import os
import re
import shlex
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import BackendError

DEFAULT_CFLAGS = "-O2 -ffp-contract=fast -march=native"
BUILD_DIR = "build"
_P = ctypes.c_void_p
_F32 = np.dtype(np.float32)  # dtypes are singletons: an identity check is the cheapest


def find_prefix(directory: Path) -> str:
    """The prefix of the one generated model header in ``directory``."""
    found = sorted(
        p.stem
        for p in Path(directory).glob("*.h")
        if re.search(r"^#define \w+_STATE_BYTES ", p.read_text(errors="replace"), re.M)
    )
    if len(found) != 1:
        raise BackendError(
            f"{directory}: expected one generated model header, found {len(found)}"
            + (f" ({', '.join(found)}); pass prefix=" if found else "")
        )
    return found[0]


def header_sizes(header: Path, prefix: str) -> tuple[int, int, bool]:
    """(inputs, outputs, an output every step) from the generated header's macros."""
    text = Path(header).read_text()
    sizes = []
    for what in ("INPUT_SIZE", "OUTPUT_SIZE|NUM_CLASSES", "OUTPUT_EVERY"):
        m = re.search(rf"^#define {prefix.upper()}_(?:{what}) (\d+)", text, re.M)
        if not m and what == "OUTPUT_EVERY":  # a v1 header: the last step only
            sizes.append(0)
            continue
        if not m:
            raise BackendError(f"{header}: no {prefix.upper()}_{what.split('|')[0]}")
        sizes.append(int(m.group(1)))
    return sizes[0], sizes[1], bool(sizes[2])


def library_path(directory: str | os.PathLike, prefix: str) -> Path:
    return Path(directory) / BUILD_DIR / f"lib{prefix}.so"


class CompiledModel:
    def __init__(
        self,
        library: str | os.PathLike,
        prefix: str = "model",
        input_size: int | None = None,
        num_classes: int | None = None,
        every: bool | None = None,
    ):
        library = Path(library)
        if input_size is None or num_classes is None or every is None:
            found = header_sizes(library.parent.parent / f"{prefix}.h", prefix)
            input_size = found[0] if input_size is None else input_size
            num_classes = found[1] if num_classes is None else num_classes
            every = found[2] if every is None else every
        try:
            self._lib = ctypes.CDLL(str(library.resolve()))
        except OSError as e:
            raise BackendError(f"cannot load {library}: {e}") from None
        try:
            self._step = getattr(self._lib, f"{prefix}_step")
            self._run = getattr(self._lib, f"{prefix}_run")
            self._reset = getattr(self._lib, f"{prefix}_reset")
            size = getattr(self._lib, f"{prefix}_state_size")
        except AttributeError as e:
            raise BackendError(f"{library} is not a model with prefix '{prefix}': {e}") from None
        self._step.argtypes, self._step.restype = (_P, _P, _P), None
        self._run.argtypes, self._run.restype = (_P, _P, ctypes.c_int, _P), None
        # batch entry points (a library generated before them has none: loops in Python instead)
        self._run_batch = getattr(self._lib, f"{prefix}_run_batch", None)
        self._step_streams = getattr(self._lib, f"{prefix}_step_streams", None)
        if self._run_batch is not None:
            self._run_batch.argtypes, self._run_batch.restype = (_P, _P, ctypes.c_int, ctypes.c_int, _P), None
        if self._step_streams is not None:
            self._step_streams.argtypes, self._step_streams.restype = (_P, ctypes.c_int, _P, _P), None
        self._reset.argtypes, self._reset.restype = (_P,), None
        size.argtypes, size.restype = (), ctypes.c_size_t
        self.library, self.prefix = library, prefix
        self.input_size, self.num_classes = int(input_size), int(num_classes)
        self.output_size = self.num_classes
        self.every = bool(every)  # run returns every step's output
        self.state_bytes = int(size())
        self._states = np.zeros((0, self.state_bytes), np.uint8)
        self._bind(0)

    @classmethod
    def build(
        cls,
        directory: str | os.PathLike,
        prefix: str | None = None,
        *,
        cc: str | None = None,
        cflags: str = DEFAULT_CFLAGS,
        output: str | os.PathLike | None = None,
    ) -> CompiledModel:
        """Compile ``<prefix>.c`` and the runtime in ``directory`` into ``build/lib<prefix>.so`` and load it."""
        directory = Path(directory)
        prefix = prefix or find_prefix(directory)
        out = Path(output) if output else library_path(directory, prefix)
        out.parent.mkdir(parents=True, exist_ok=True)
        compiler = shlex.split(cc or os.environ.get("CC") or "cc")
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        os.close(fd)
        command = [
            *compiler,
            "-std=c99",
            *shlex.split(cflags),
            "-fPIC",
            "-shared",
            f"{prefix}.c",
            "edgeprune_rt.c",
            "-lm",
            "-o",
            tmp,
        ]
        try:
            done = subprocess.run(command, cwd=directory, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                lines = [l for l in done.stderr.splitlines() if "error" in l] or done.stderr.splitlines() or ["?"]
                raise BackendError(f"building {out.name} failed: {lines[0].strip()}")
            os.replace(tmp, out)
        except FileNotFoundError:
            raise BackendError(f"{compiler[0]} not found (install gcc, or set CC)") from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return cls(out, prefix)

    @classmethod
    def load(cls, directory: str | os.PathLike, prefix: str | None = None) -> CompiledModel:
        """The library a previous ``build`` (or ``compile --target c``) left in ``directory/build``."""
        prefix = prefix or find_prefix(Path(directory))
        return cls(library_path(directory, prefix), prefix)

    # --- streaming ----------------------------------------------------------------------------

    @property
    def streams(self) -> int:
        return len(self._states)

    def reset(self, batch: int = 1) -> None:
        """``batch`` independent streams, each at the start of a sequence (the model's reset: zeros, or a
        stage's own initial state)."""
        if batch < 1:
            raise BackendError(f"reset needs at least one stream, got {batch}")
        self._states = np.zeros((batch, self.state_bytes), np.uint8)
        for i in range(batch):  # the model's own reset: zeros, or the initial states it was given
            self._reset(self._states[i].ctypes.data)
        self._bind(batch)

    def _bind(self, batch: int) -> None:
        """Input and output buffers for ``batch`` streams and their addresses, resolved once (per reset)."""
        self._x = np.zeros((max(batch, 1), self.input_size), np.float32)
        self._logits = np.zeros((max(batch, 1), self.num_classes), np.float32)
        self._x1, self._out1 = self._x[0], self._logits[0]
        self._shape1 = (self.input_size,)
        self._args1 = tuple(ctypes.c_void_p(a.ctypes.data) for a in (self._states, self._x, self._logits))
        if not batch:
            self._args1 = None  # no stream yet: the first step resets

    def step(self, x_t: np.ndarray) -> np.ndarray:
        """One step of every stream: [F] -> [C] (one stream) or [n, F] -> [n, C]."""
        out = self._advance(x_t)
        return out.copy()

    def step_into(self, x_t: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``step`` writing into ``out`` (float32, the shape ``step`` returns): no allocation. Returns ``out``."""
        got = self._advance(x_t)
        if getattr(out, "dtype", None) is not _F32 or out.shape != got.shape or not isinstance(out, np.ndarray):
            shape = getattr(out, "shape", None)
            raise BackendError(
                f"step_into needs a float32 output of shape {list(got.shape)}, got "
                f"{getattr(out, 'dtype', type(out).__name__)} {list(shape) if shape is not None else ''}".rstrip()
            )
        out[...] = got
        return out

    def _advance(self, x_t) -> np.ndarray:
        """Step every stream; a view of the bound output buffer ([C] for one stream, [n, C] otherwise)."""
        args = self._args1
        # the common case first: one stream, a [F] array (checked by shape, converted by the copy)
        if args is not None and len(self._states) == 1 and getattr(x_t, "shape", None) == self._shape1:
            try:
                self._x1[...] = x_t
            except (TypeError, ValueError):
                raise BackendError(f"step input of dtype {x_t.dtype} is not numeric") from None
            self._step(*args)
            return self._out1
        x = np.asarray(x_t, dtype=np.float32)
        single = x.ndim == 1
        x2 = x.reshape(1, -1) if single else x
        if x2.ndim != 2 or x2.shape[1] != self.input_size:
            raise BackendError(f"expected a step [n, {self.input_size}], got {list(x.shape)}")
        n = x2.shape[0]
        if self.streams == 0:
            self.reset(n)
        elif self.streams != n:
            raise BackendError(f"step got {n} streams after reset({self.streams})")
        self._x[...] = x2
        if self._step_streams is not None:
            self._step_streams(self._args1[0], n, self._args1[1], self._args1[2])
        else:
            state, xs, out = self._states.ctypes.data, self._x.ctypes.data, self._logits.ctypes.data
            sb, xb, ob = self.state_bytes, 4 * self.input_size, 4 * self.num_classes
            for i in range(n):
                self._step(state + i * sb, xs + i * xb, out + i * ob)
        return self._out1 if single else self._logits

    def run(self, X: np.ndarray) -> np.ndarray:
        """Whole sequences: [T, F] -> [C] or [N, T, F] -> [N, C] (the output after the last step), or for a
        model whose output is ``every`` step [T, F] -> [T, C] or [N, T, F] -> [N, T, C]."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        single = X.ndim == 2
        X3 = X[None] if single else X
        if X3.ndim != 3 or X3.shape[2] != self.input_size:
            raise BackendError(f"expected inputs [N, T, {self.input_size}], got {list(X.shape)}")
        n, steps = X3.shape[:2]
        state = np.zeros(self.state_bytes, np.uint8)
        out = np.zeros((n, steps, self.num_classes) if self.every else (n, self.num_classes), np.float32)
        per = 4 * self.num_classes * (steps if self.every else 1)
        sp, xp, op, stride = state.ctypes.data, X3.ctypes.data, out.ctypes.data, 4 * steps * self.input_size
        if self._run_batch is not None:
            self._run_batch(sp, xp, n, steps, op)
        else:
            for i in range(n):
                self._run(sp, xp + i * stride, steps, op + i * per)
        return out[0] if single else out

    def close(self) -> None:
        """Drop the library's handle (the process may keep it mapped; rebuild into a new path)."""
        self._lib = None
        self._step = self._run = self._run_batch = self._step_streams = None
        self._args1 = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self) -> str:
        return (
            f"CompiledModel({str(self.library)!r}, prefix={self.prefix!r}, inputs={self.input_size}, "
            f"outputs={self.num_classes}{' every step' if self.every else ''}, state_bytes={self.state_bytes})"
        )

"""The measured cost model behind ``--kernel auto``: time of one tile's kernel call, per format.

``cost = per_stored * stored weights (padding included) + per_row * rows + per_call``, in
nanoseconds (hosts) or instructions (Cortex-M4), plus, for dense tiles on a host, the extra time
of streaming weights that do not stay in the core's cache between steps. The figures come from
``benchmarks/c/kernels.py`` (results in ``benchmarks/results/c_kernels.md``): every kernel timed
alone on tiles of the shapes a model produces, at several densities, and fitted by least squares.

Profiles: ``x86-avx2`` (the runtime's AVX2+FMA kernels), ``generic`` (the plain C kernels on a
64-bit core: aarch64, x86 without AVX2), ``cortex-m4`` (emulated instructions, QEMU -icount; the
DSP-extension int8 kernels).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

# format -> (per stored weight, per row, per call). f32 and int8 kernels differ.
PROFILES: dict[str, dict[str, dict[str, tuple[float, float, float]]]] = {
    "x86-avx2": {
        "f32": {"dense": (0.030, 0.5, 15.0), "csr": (0.36, 1.6, 15.0), "ell": (0.29, 0.9, 15.0),
                "ell16": (0.31, 0.9, 15.0), "sell": (0.29, 1.1, 15.0), "bsr8x1": (0.052, 0.9, 15.0),
                "bsr4x1": (0.10, 1.0, 15.0), "bsr1x4": (0.14, 2.6, 15.0)},
        "int8": {"dense": (0.017, 1.0, 15.0), "csr": (0.50, 2.0, 15.0), "ell": (0.45, 1.5, 15.0),
                 "ell16": (0.47, 1.5, 15.0), "sell": (0.45, 1.7, 15.0), "bsr8x1": (0.06, 1.5, 15.0),
                 "bsr4x1": (0.14, 1.6, 15.0), "bsr1x4": (0.20, 2.0, 15.0)},
    },
    "generic": {
        "f32": {"dense": (0.25, 1.0, 15.0), "csr": (0.5, 2.0, 15.0), "ell": (0.45, 1.0, 15.0),
                "ell16": (0.47, 1.0, 15.0), "sell": (0.45, 1.5, 15.0), "bsr8x1": (0.2, 1.0, 15.0),
                "bsr4x1": (0.25, 1.0, 15.0), "bsr1x4": (0.3, 2.0, 15.0)},
        "int8": {"dense": (0.2, 1.0, 15.0), "csr": (0.55, 2.0, 15.0), "ell": (0.5, 1.0, 15.0),
                 "ell16": (0.52, 1.0, 15.0), "sell": (0.5, 1.5, 15.0), "bsr8x1": (0.2, 1.5, 15.0),
                 "bsr4x1": (0.25, 1.5, 15.0), "bsr1x4": (0.3, 2.0, 15.0)},
    },
    "cortex-m4": {
        "f32": {"dense": (2.2, 6.0, 30.0), "csr": (5.2, 14.0, 30.0), "ell": (5.6, 3.0, 30.0),
                "ell16": (5.6, 3.0, 30.0), "sell": (5.6, 4.0, 30.0), "bsr8x1": (2.4, 6.0, 30.0),
                "bsr4x1": (2.6, 6.0, 30.0), "bsr1x4": (2.6, 10.0, 30.0)},
        "int8": {"dense": (1.4, 14.0, 30.0), "csr": (4.5, 16.0, 30.0), "ell": (4.6, 12.0, 30.0),
                 "ell16": (4.6, 12.0, 30.0), "sell": (4.6, 14.0, 30.0), "bsr8x1": (1.7, 14.0, 30.0),
                 "bsr4x1": (2.0, 14.0, 30.0), "bsr1x4": (2.4, 16.0, 30.0)},
    },
}
# Hosts: ns per dense weight byte beyond what the cache holds (L3 instead of L2 every step).
STREAM_NS_PER_BYTE = {"x86-avx2": 0.0075, "generic": 0.0075, "cortex-m4": 0.0}
UNITS = {"x86-avx2": "ns", "generic": "ns", "cortex-m4": "instructions"}
# auto takes a sparse format only when the model says it saves at least this fraction of the dense
# time: the margin that keeps `auto` from being slower than dense where the estimates are close.
SPARSE_MARGIN = 0.85
DEFAULT_CACHE_BYTES = 512 * 1024


def tile_cost(profile: str, dtype: str, fmt: str, stored: int, rows: int) -> float:
    per_stored, per_row, per_call = PROFILES[profile][dtype][fmt]
    return per_stored * stored + per_row * rows + per_call


def profile_for(arch: str, cc: list[str] | tuple[str, ...] = (), cflags: list[str] | tuple[str, ...] = ()) -> str:
    """Which kernels the build will use: ask the compiler whether it targets AVX2+FMA."""
    if arch == "cortex-m4":
        return "cortex-m4"
    if arch == "host" and cc and shutil.which(cc[0]):
        try:
            done = subprocess.run([*cc, *cflags, "-dM", "-E", "-x", "c", "-"], input="", capture_output=True,
                                  text=True, timeout=60)
            macros = set(re.findall(r"#define (\w+)", done.stdout))
            if {"__AVX2__", "__FMA__"} <= macros and "EP_NO_SIMD" not in " ".join(cflags):
                return "x86-avx2"
        except (OSError, subprocess.TimeoutExpired):
            pass
    return "generic"


def cache_bytes(arch: str) -> int:
    """Per-core cache the weights of a step can stay in (the host's L2), for the dense streaming term."""
    if arch == "host":
        try:
            text = Path("/sys/devices/system/cpu/cpu0/cache/index2/size").read_text().strip()
            m = re.fullmatch(r"(\d+)([KMG]?)", text)
            if m:
                return int(m.group(1)) * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[m.group(2)]
        except OSError:
            pass
    return DEFAULT_CACHE_BYTES

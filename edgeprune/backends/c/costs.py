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

import math
import re
import shutil
import subprocess
from pathlib import Path

# format -> (per stored weight, per row, per call). f32 and int8 kernels differ.
PROFILES: dict[str, dict[str, dict[str, tuple[float, float, float]]]] = {
    "cortex-m4": {
        "f32": {
            "bsr1x4": (4.5023, 11.776, 51.7),
            "bsr4x1": (3.5112, 13.751, 50.4),
            "bsr8x1": (2.7568, 11.368, 52.2),
            "bsr8x1w": (2.7568, 11.368, 52.2),  # bsr8x1 with 16-bit columns: the same loads
            "csr": (6.2854, 24.679, 33.1),
            "dense": (2.5003, 2.936, 52.8),
            "ell": (4.3745, 12.648, 47.8),
            "ell16": (5.4997, 11.887, 51.2),
            "sell": (4.3784, 15.095, 54.3),
            "sell16": (5.4997, 15.095, 54.3),  # sell's rows and calls, ell16's plain loop per weight
        },
        "int8": {
            "bsr1x4": (2.909, 13.545, 56.6),
            "bsr4x1": (2.5139, 15.941, 49.2),
            "bsr8x1": (2.4561, 15.009, 56.0),
            "csr": (5.6986, 24.423, 40.2),
            "dense": (2.3128, 15.632, 63.8),
            "ell": (5.2501, 19.985, 56.9),
            "ell16": (5.2497, 20.278, 57.8),
            "sell": (5.0108, 24.237, 61.4),
        },
    },
    "generic": {
        "f32": {
            "bsr1x4": (0.3133, 0.985, 4.2),
            "bsr4x1": (0.1867, 0.571, 29.1),
            "bsr8x1": (0.1063, 0.645, 9.1),
            "bsr8x1w": (0.1063, 0.645, 9.1),  # bsr8x1 with 16-bit columns: the same loads
            "csr": (0.3775, 1.318, 0.0),
            "dense": (0.1057, 0.0, 0.0),
            "ell": (0.3023, 0.645, 8.2),
            "ell16": (0.3085, 0.762, 6.7),
            "sell": (0.2973, 0.661, 22.2),
            "sell16": (0.3035, 0.661, 22.2),  # sell x ell16 / ell per weight
        },
        "int8": {
            "bsr1x4": (0.6463, 0.821, 3.6),
            "bsr4x1": (0.4858, 1.481, 9.5),
            "bsr8x1": (0.5376, 1.559, 2.5),
            "csr": (0.6028, 2.596, 11.6),
            "dense": (0.3874, 0.791, 3.6),
            "ell": (0.524, 0.807, 38.4),
            "ell16": (0.528, 0.103, 180.5),
            "sell": (0.521, 1.139, 6.8),
        },
    },
    "x86-avx2": {
        "f32": {
            # per stored weight and dense: the earlier fit. Per row and per call of the sparse formats:
            # refit (kernels.py --profiles x86-avx2 --dtypes f32) with tiles of 1024 rows among the
            # shapes (gate blocks merged, tiling._layouts) and SELL walking only rows that hold a
            # weight; that run's per-stored figures came out 0.64-0.91x the earlier ones (a quieter
            # machine), so its per-row and per-call figures are scaled by the same ratio per format
            # to stay comparable with the dense fit kept here.
            # f32 blocks since the runs layout (formats._runs): a refit counting only the rows of the
            # block rows a tile stores gave per row 0.12 / 0.19 / 2.07, per call 5.9 / 7.0 / 6.8 (8x1 /
            # 4x1 / 1x4, scaled as above); with it auto took zero-filled 4x1 blocks on magnitude and
            # expander masks at 90-95%, and split block-expander 95% tiles by column, both measured
            # 4-7% slower (limits.py, step_profile.py, H=256), so the earlier figures stay.
            "bsr1x4": (0.1255, 2.098, 5.8),
            "bsr4x1": (0.0898, 0.361, 3.0),
            "bsr8x1": (0.0525, 0.179, 3.3),
            "bsr8x1w": (0.0525, 0.179, 3.3),  # bsr8x1 with 16-bit columns: the same loads
            "csr": (0.3582, 1.662, 0.0),
            "dense": (0.0429, 0.03, 25.3),
            # ELL/SELL per stored weight: x 0.85 since their gathers are inlined (a call per eight
            # weights before): kernels.py on one Zen 4 host, the runtime before and after, gave
            # 0.72 / 0.84 / 0.79 / 0.93x (ell / ell16 / sell / sell16); one factor for the four keeps
            # the choices among them as they were measured in steps (limits.py, ab_steps.py).
            "ell": (0.2349, 0.105, 3.7),
            "ell16": (0.2325, 0.269, 0.0),
            "sell": (0.2298, 0.444, 3.8),
            "sell16": (0.2298, 0.444, 3.8),  # sell with 16-bit columns: the same loop (ell16 ~ ell)
        },
        "int8": {  # refit after the AVX2 int8 paths (dense z pairs, ELL/SELL), with the host's gather
            "bsr1x4": (0.1102, 1.529, 2.4),
            "bsr4x1": (0.0925, 0.865, 3.3),
            "bsr8x1": (0.0486, 0.167, 3.1),
            "csr": (0.3377, 0.902, 3.8),
            "dense": (0.0306, 0.044, 9.5),
            "ell": (0.1657, 0.086, 3.4),
            "ell16": (0.1747, 0.0, 3.9),
            "sell": (0.1794, 0.728, 4.2),
        },
    },
}
# Hosts: ns per dense weight byte beyond what the cache holds (L3 instead of L2 every step).
STREAM_NS_PER_BYTE = {"generic": 0.0076, "x86-avx2": 0.0018, "cortex-m4": 0.0}
# auto (planning.choose_within): per byte of a layout, every step, once all its bytes no longer fit
# the cache -- any format, as every weight of a step is read once. Measured by benchmarks/c/limits.py
# (dense FMA rate from beyond L2 minus the in-L2 rate, per byte: (0.148 - 0.039) / 4 ns on a Xeon with
# 2 MiB L2; taken for plain C too, unmeasured there); none on the cache-less M4.
SPILL_PER_BYTE = {"generic": 0.027, "x86-avx2": 0.027, "cortex-m4": 0.0}
UNITS = {"x86-avx2": "ns", "generic": "ns", "cortex-m4": "instructions"}
# auto takes a sparse format only when the model says it saves at least this fraction of the dense
# time: the margin that keeps `auto` from being slower than dense where the estimates are close.
SPARSE_MARGIN = 0.85
DEFAULT_CACHE_BYTES = 512 * 1024


# A sparse tile merged over several gate blocks (tiling._layouts) walks more of y per call, and in
# a model's step such tiles over the wide state columns ran slower than the same weights cut per gate
# block -- where the fit expects them faster (fewer calls, less SELL padding): per-statement times of
# LSTM builds, 4 blocks merged, 0.006-0.016 ns per stored weight off the estimate for SELL at H=256,
# ~0.03 for 8x1 blocks at H=512 (loaded machine). So per stored weight and per doubling of the
# blocks a tile spans; measured on x86-avx2, taken for plain C on a cached core too (unmeasured
# there), none on the cache-less M4. The narrow input segment still merges: few weights, and its
# per-row and per-call savings are large.
TALL_PER_STORED = {"x86-avx2": 0.006, "generic": 0.006, "cortex-m4": 0.0}


def tile_cost(profile: str, dtype: str, fmt: str, stored: int, rows: int, blocks: float = 1.0) -> float:
    """Estimate of one kernel call that walks ``rows`` rows of a tile spanning ``blocks`` gate blocks."""
    per_stored, per_row, per_call = PROFILES[profile][dtype][fmt]
    cost = per_stored * stored + per_row * rows + per_call
    if fmt != "dense" and blocks > 1:
        cost += TALL_PER_STORED[profile] * stored * math.log2(blocks)
    return cost


def profile_for(arch: str, cc: list[str] | tuple[str, ...] = (), cflags: list[str] | tuple[str, ...] = ()) -> str:
    """Which kernels the build will use: ask the compiler whether it targets AVX2+FMA."""
    if arch == "cortex-m4":
        return "cortex-m4"
    if arch == "host" and cc and shutil.which(cc[0]):
        try:
            done = subprocess.run(
                [*cc, *cflags, "-dM", "-E", "-x", "c", "-"], input="", capture_output=True, text=True, timeout=60
            )
            macros = set(re.findall(r"#define (\w+)", done.stdout))
            if {"__AVX2__", "__FMA__"} <= macros and "EP_NO_SIMD" not in " ".join(cflags):
                return "x86-avx2"
        except (OSError, subprocess.TimeoutExpired):
            pass
    return "generic"


# The ELL/SELL loops gather 8 z values per FMA: eight scalar loads (the default) or AVX2's gather
# instruction (-DEP_HW_GATHER). Which is faster depends on the core (the instruction: 12.7 vs 4.8
# cycles per 8 on Zen 3, 0.16 vs 0.22 ns a weight on an AVX-512 Xeon; slow again under the
# Gather Data Sampling microcode), so a host build measures both once per process.
GATHER_PROBE = r"""
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#define N 4096
static float z[256], v[8 * N], y[8];
static uint8_t ix[8 * N];
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
static __m256 sw(const uint8_t *c) {
    uint64_t k; memcpy(&k, c, 8);
    return _mm256_set_m128(_mm_setr_ps(z[(k >> 32) & 255], z[(k >> 40) & 255], z[(k >> 48) & 255], z[k >> 56]),
                           _mm_setr_ps(z[k & 255], z[(k >> 8) & 255], z[(k >> 16) & 255], z[(k >> 24) & 255]));
}
static __m256 hw(const uint8_t *c) {
    return _mm256_i32gather_ps(z, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)c)), 4);
}
#define LOOP(G) { __m256 a = _mm256_setzero_ps(), b = a; int k;                              \
    for (k = 0; k < N; k += 2) { a = _mm256_fmadd_ps(_mm256_loadu_ps(v + 8 * k), G(ix + 8 * k), a);    \
        b = _mm256_fmadd_ps(_mm256_loadu_ps(v + 8 * k + 8), G(ix + 8 * k + 8), b); }           \
    _mm256_storeu_ps(y, _mm256_add_ps(_mm256_add_ps(a, b), _mm256_loadu_ps(y))); }
int main(void) {
    double best[2] = {1e30, 1e30}; int r, i;
    for (i = 0; i < 8 * N; ++i) { ix[i] = (uint8_t)((i * 97) & 255); v[i] = 1e-3f; }
    for (r = 0; r < 60; ++r) {
        double t = now(); LOOP(sw); t = now() - t; if (t < best[0]) best[0] = t;
        t = now(); LOOP(hw); t = now() - t; if (t < best[1]) best[1] = t;
    }
    printf("%f %f %f\n", best[0] / N, best[1] / N, (double)y[0]);
    return 0;
}
"""
_GATHER: dict[tuple, tuple[list[str], str]] = {}


def host_gather_flags(cc, cflags) -> tuple[list[str], str]:
    """(flags, why): ``-DEP_HW_GATHER`` where this host runs the gather instruction >= 10% faster than
    scalar loads in the AVX2 loop (measured once per compiler and flags; EDGEPRUNE_C_GATHER=sw|hw
    decides instead), else none. Only for host builds that use the AVX2 kernels."""
    import os
    import tempfile

    forced = os.environ.get("EDGEPRUNE_C_GATHER", "")
    if forced in ("sw", "hw"):
        return (["-DEP_HW_GATHER"] if forced == "hw" else []), f"EDGEPRUNE_C_GATHER={forced}"
    key = (tuple(cc), tuple(cflags))
    if key not in _GATHER:
        _GATHER[key] = ([], "gather probe did not run")
        with tempfile.TemporaryDirectory() as tmp:
            try:
                built = subprocess.run(
                    [*cc, "-O2", *cflags, "-x", "c", "-", "-o", f"{tmp}/probe"],
                    input=GATHER_PROBE,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                if built.returncode == 0:
                    done = subprocess.run([f"{tmp}/probe"], capture_output=True, text=True, timeout=60)
                    sw, hw, _ = (float(v) for v in done.stdout.split())
                    faster = hw < 0.9 * sw
                    why = f"gather probe: {sw:.2f} ns per 8 with scalar loads, {hw:.2f} with vgatherdps"
                    _GATHER[key] = ((["-DEP_HW_GATHER"] if faster else []), why)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
    return _GATHER[key]


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

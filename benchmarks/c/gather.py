"""Ways to gather z for the irregular (ELL/SELL) kernels, timed on this core: is the runtime's
software gather the fastest we know, and what do 16-bit column indices cost?

The runtime's f32 ELL/SELL loops build each 8-wide FMA operand from eight ``z[cols[i]]``: eight
scalar loads (``ep_gather_u8`` / ``ep_gather_u16``, the runtime's own functions, compiled in from
``edgeprune_rt.c``) or AVX2's gather instruction (``-DEP_HW_GATHER``). SELL16 takes 16-bit
indices so that one tile spans all of an LSTM-256's z = [x ; h] (284 columns); byte indices reach
256. Timed here, over slices of 8 rows x 28 columns (an LSTM-256 gate row at 90%), two
accumulators as the runtime's loop:

* ``u8`` / ``u16``: the runtime's software gathers (u8 over 256 columns, the bound of a byte index);
* ``vgather u8``: the gather instruction;
* ``called``: the same software gathers called out of line, once per 8 weights, as GCC 12 at -O2
  compiled the runtime's ELL/SELL kernels until the gathers were declared always-inline;
* ``u8, two windows``: byte indices over 284 columns, each slice's entries in two runs, the first
  relative to z and the second to z + 28 (a row's x columns first, its last 28 h columns last),
  two loops a slice, the split at a random even position;
* ``u8, window byte``: the same with a window byte per 8 entries (0 or 28) instead of a split;
* ``u16, 16 wide`` / ``u8, 16 wide`` (AVX-512F hosts): 16 scalar loads into one 512-bit FMA operand;
* ``masked broadcasts`` (AVX-512F): 16 masked broadcast loads merged into one register.

Each variant is the fastest of many interleaved rounds in one program (ns per weight; ratios within
the run), with the load average recorded.

    python benchmarks/c/gather.py [--rounds 300]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import markdown_table, write_results  # noqa: E402

from edgeprune.runtime import source_dir  # noqa: E402

PROGRAM = r"""
#include "edgeprune_rt.c"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define W 28                 /* entries a row: an LSTM-256 gate row at 90% */
#define SLICES 128
#define N (SLICES * 8 * W)   /* weights: 143 KB of values and indices, in L2 */
static float z[284 + 64], vals[N], ysum[SLICES * 8];
static uint8_t c8[N + 16], c8w[N + 16], win[N / 8], split[SLICES];
static uint16_t c16[N + 16];

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static __m256 hw_u8(const float *zz, const uint8_t *c)
{
    return _mm256_i32gather_ps(zz, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)c)), 4);
}

/* as the runtime's ELL/SELL kernels ran them before their gathers were always inlined: GCC 12 at -O2
 * called them out of line, once per eight weights */
__attribute__((noinline)) static __m256 called_u8(const float *zz, const uint8_t *c)
{
    return ep_gather_u8(zz, c);
}
__attribute__((noinline)) static __m256 called_u16(const float *zz, const uint16_t *c)
{
    return ep_gather_u16(zz, c);
}

/* one slice loop, as the runtime's: two accumulators, then the slice's sums stored */
#define SLICE_LOOP(NAME, IDX, TABLE, GATHER_AT)                                                \
    static __attribute__((noinline)) void NAME(void)                                          \
    {                                                                                         \
        const float *v = vals;                                                                \
        const IDX *c = TABLE;                                                                 \
        const uint8_t *wb = win;                                                              \
        int s, k;                                                                             \
        for (s = 0; s < SLICES; ++s) {                                                        \
            __m256 a0 = _mm256_setzero_ps(), a1 = a0;                                         \
            for (k = 0; k + 2 <= W; k += 2, v += 16, c += 16, wb += 2) {                      \
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(v), GATHER_AT(0), a0);                   \
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(v + 8), GATHER_AT(8), a1);               \
            }                                                                                 \
            _mm256_storeu_ps(ysum + 8 * s, _mm256_add_ps(a0, a1));                            \
        }                                                                                     \
    }
#define AT_U8(o) ep_gather_u8(z, c + (o))
#define AT_U16(o) ep_gather_u16(z, c + (o))
#define AT_HW(o) hw_u8(z, c + (o))
#define AT_CALLED_U8(o) called_u8(z, c + (o))
#define AT_CALLED_U16(o) called_u16(z, c + (o))
#define AT_WINB(o) ep_gather_u8(z + wb[(o) / 8], c + (o))
SLICE_LOOP(g_u8, uint8_t, c8, AT_U8)
SLICE_LOOP(g_u16, uint16_t, c16, AT_U16)
SLICE_LOOP(g_hw, uint8_t, c8, AT_HW)
SLICE_LOOP(g_called_u8, uint8_t, c8, AT_CALLED_U8)
SLICE_LOOP(g_called_u16, uint16_t, c16, AT_CALLED_U16)
SLICE_LOOP(g_winb, uint8_t, c8w, AT_WINB)

/* two runs a slice: [0, split) relative to z, [split, W) to z + 28 */
static __attribute__((noinline)) void g_two(void)
{
    const float *v = vals;
    const uint8_t *c = c8w;
    int s, k;
    for (s = 0; s < SLICES; ++s) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        const float *zb = z;
        int end = split[s];
        for (k = 0;;) {
            for (; k + 2 <= end; k += 2, v += 16, c += 16) {
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(v), ep_gather_u8(zb, c), a0);
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(v + 8), ep_gather_u8(zb, c + 8), a1);
            }
            if (end == W)
                break;
            zb = z + 28;
            end = W;
        }
        _mm256_storeu_ps(ysum + 8 * s, _mm256_add_ps(a0, a1));
    }
}

#ifdef __AVX512F__
__attribute__((always_inline)) static inline __m512 z16_u16(const uint16_t *c)
{
    return _mm512_insertf32x8(_mm512_castps256_ps512(ep_gather_u16(z, c)), ep_gather_u16(z, c + 8), 1);
}
__attribute__((always_inline)) static inline __m512 z16_u8(const uint8_t *c)
{
    return _mm512_insertf32x8(_mm512_castps256_ps512(ep_gather_u8(z, c)), ep_gather_u8(z, c + 8), 1);
}
__attribute__((always_inline)) static inline __m512 z16_mb(const uint8_t *c)
{
    __m512 x = _mm512_set1_ps(z[c[0]]);
    int j;
    for (j = 1; j < 16; ++j)
        x = _mm512_mask_broadcastss_ps(x, (__mmask16)(1u << j), _mm_load_ss(z + c[j]));
    return x;
}
/* 16 rows a slice: the same weights as 2 x (8 rows x W) */
#define WIDE_LOOP(NAME, TABLE, G)                                                              \
    static __attribute__((noinline)) void NAME(void)                                          \
    {                                                                                         \
        const float *v = vals;                                                                \
        int s, k;                                                                             \
        for (s = 0; s < SLICES / 2; ++s) {                                                    \
            __m512 a0 = _mm512_setzero_ps(), a1 = a0;                                         \
            for (k = 0; k + 2 <= W; k += 2, v += 32) {                                        \
                const long at = v - vals;                                                     \
                a0 = _mm512_fmadd_ps(_mm512_loadu_ps(v), G(TABLE + at), a0);                  \
                a1 = _mm512_fmadd_ps(_mm512_loadu_ps(v + 16), G(TABLE + at + 16), a1);        \
            }                                                                                 \
            _mm512_storeu_ps(ysum + 16 * s, _mm512_add_ps(a0, a1));                           \
        }                                                                                     \
    }
WIDE_LOOP(g_z16_u16, c16, z16_u16)
WIDE_LOOP(g_z16_u8, c8, z16_u8)
WIDE_LOOP(g_z16_mb, c8, z16_mb)
#endif

typedef struct {
    const char *name;
    void (*run)(void);
} variant_t;

static int cmp(const void *p, const void *q)
{
    double a = *(const double *)p, b = *(const double *)q;
    return a < b ? -1 : a > b;
}

int main(int argc, char **argv)
{
    variant_t vs[] = {
        {"u8", g_u8}, {"u16", g_u16}, {"vgather_u8", g_hw}, {"called_u8", g_called_u8},
        {"called_u16", g_called_u16}, {"u8_two_windows", g_two}, {"u8_window_byte", g_winb},
#ifdef __AVX512F__
        {"u16_16_wide", g_z16_u16}, {"u8_16_wide", g_z16_u8}, {"masked_broadcasts", g_z16_mb},
#endif
    };
    const int nv = (int)(sizeof vs / sizeof vs[0]), rounds = argc > 1 ? atoi(argv[1]) : 300;
    double *t = malloc(sizeof(double) * (size_t)nv * (size_t)rounds);
    int i, r, k;
    srand(1);
    for (i = 0; i < 284 + 64; ++i)
        z[i] = (float)rand() / (float)RAND_MAX;
    for (i = 0; i < N; ++i) {
        vals[i] = (float)rand() / (float)RAND_MAX;
        c8[i] = (uint8_t)(rand() & 0xFF);
        c16[i] = (uint16_t)(rand() % 284);
        c8w[i] = (uint8_t)(rand() & 0xFF); /* either window: 256 columns */
    }
    for (i = 0; i < N / 8; ++i)
        win[i] = (uint8_t)((rand() & 1) * 28);
    for (i = 0; i < SLICES; ++i)
        split[i] = (uint8_t)(2 * (rand() % (W / 2 + 1)));
    for (r = 0; r < rounds; ++r)
        for (i = 0; i < nv; ++i) {
            double t0;
            vs[i].run(); /* warm */
            t0 = now_ns();
            for (k = 0; k < 8; ++k)
                vs[i].run();
            t[(size_t)i * (size_t)rounds + (size_t)r] = (now_ns() - t0) / 8 / N;
        }
    for (i = 0; i < nv; ++i) {
        double *s = t + (size_t)i * (size_t)rounds;
        qsort(s, (size_t)rounds, sizeof *s, cmp);
        printf("%s %.5f %.5f\n", vs[i].name, s[0], s[rounds / 2]);
    }
    printf("checksum %g\n", (double)ysum[0]);
    free(t);
    return 0;
}
"""

LABELS = {
    "u8": "u8 (runtime, 256 columns)",
    "u16": "u16 (runtime: sell16, ell16)",
    "vgather_u8": "vgather u8 (-DEP_HW_GATHER)",
    "called_u8": "u8 called out of line (the runtime before)",
    "called_u16": "u16 called out of line (the runtime before)",
    "u8_two_windows": "u8, two windows (two loops a slice)",
    "u8_window_byte": "u8, a window byte per 8",
    "u16_16_wide": "u16, 16 wide (AVX-512)",
    "u8_16_wide": "u8, 16 wide (AVX-512)",
    "masked_broadcasts": "masked broadcasts, 16 wide (AVX-512)",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--name", default="c_gather")
    args = ap.parse_args()
    load_start = os.getloadavg()
    flags = ["-O2", "-ffp-contract=fast", "-march=native", "-std=gnu11"]
    with tempfile.TemporaryDirectory(prefix="edgeprune-gather-") as tmp:
        work = Path(tmp)
        (work / "gather.c").write_text(PROGRAM)
        subprocess.run(["cc", *flags, f"-I{source_dir()}", "gather.c", "-lm", "-o", "gather"], cwd=work, check=True)
        out = subprocess.run([str(work / "gather"), str(args.rounds)], capture_output=True, text=True, check=True)
    timings = {}
    for line in out.stdout.splitlines():
        name, *vals = line.split()
        if name != "checksum":
            timings[name] = (float(vals[0]), float(vals[1]))
    base = timings["u8"][0]
    rows = [
        [LABELS[n], f"{best:.4f}", f"{median:.4f}", f"{best / base:.2f}", f"{8 * best:.2f}"]
        for n, (best, median) in timings.items()
    ]
    md = (
        f"Slices of 8 rows x 28 entries (an LSTM-256 gate row at 90%), 143 KB in L2, two accumulators; "
        f"fastest of {args.rounds} interleaved rounds, median alongside; `{' '.join(flags)}`; load average "
        f"{load_start[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end.\n\n"
        + markdown_table(["gather", "ns a weight", "median", "vs u8", "ns per 8"], rows)
    )
    write_results(args.name, {"flags": flags, "rounds": args.rounds, "ns_per_weight": timings}, md)
    print(md)


if __name__ == "__main__":
    main()

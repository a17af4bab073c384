/* edgeprune runtime: see edgeprune_rt.h for the formats, docs/c-backend.md for the design. */
#include "edgeprune_rt.h"

#if !defined(EP_NO_SIMD) && defined(__AVX2__) && defined(__FMA__)
#define EP_AVX2 1
#include <immintrin.h>
#endif
#if !defined(EP_NO_SIMD) && defined(__ARM_FEATURE_DSP) && !defined(__aarch64__)
#define EP_DSP 1
#include <arm_acle.h>
#endif
#if !defined(EP_NO_SIMD) && defined(__ARM_ARCH_7EM__) && defined(__ARM_FP) && (__ARM_FP & 4) && defined(__GNUC__)
#define EP_M4F 1 /* Cortex-M4F (single-precision FPU): the ELL/SELL slice loop in assembly */
#endif

void ep_copy(float *EP_RESTRICT y, const float *EP_RESTRICT b, int n)
{
    int i;
    for (i = 0; i < n; ++i)
        y[i] = b[i];
}

/* Adds the n <= EP_SLICE sums of a slice to y (rows base..base+n-1, or perm[0..n-1]). */
static void ep_scatter(float *EP_RESTRICT y, const float *EP_RESTRICT acc, const uint16_t *EP_RESTRICT perm,
                       int base, int n)
{
    int i;
    if (perm)
        for (i = 0; i < n; ++i)
            y[perm[i]] += acc[i];
    else
        for (i = 0; i < n; ++i)
            y[base + i] += acc[i];
}

/* A first-writer tile (ep_sell_set_f32, ep_bsr8x1_set_f32) sets rows instead of adding to them:
 * y[perm[i]] (or y[base + i]) = acc[i] + pbias[i] (pbias: those rows' biases in the same order, or
 * NULL for none). */
static void ep_scatter_set(float *EP_RESTRICT y, const float *EP_RESTRICT acc, const uint16_t *EP_RESTRICT perm,
                           const float *EP_RESTRICT pbias, int base, int n)
{
    int i;
    for (i = 0; i < n; ++i)
        y[perm ? perm[i] : base + i] = acc[i] + (pbias ? pbias[i] : 0.0f);
}

/* ... and its rows without a weight, slots walked..rows-1 after the walked ones: the bias alone. */
static void ep_set_rest(float *EP_RESTRICT y, const uint16_t *EP_RESTRICT perm, const float *EP_RESTRICT pbias,
                        int walked, int rows)
{
    int i;
    for (i = walked; i < rows; ++i)
        y[perm[i]] = pbias ? pbias[i] : 0.0f;
}

static void ep_scatter_i32(float *EP_RESTRICT y, const float *EP_RESTRICT scales, float zscale,
                           const int32_t *EP_RESTRICT acc, const uint16_t *EP_RESTRICT perm, int base, int n)
{
    int i;
#ifdef EP_AVX2
    if (!perm && n == 8) { /* a full slice in rows base..base+7: one multiply-add */
        const __m256 s = _mm256_mul_ps(_mm256_loadu_ps(scales + base), _mm256_set1_ps(zscale));
        const __m256 a = _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(const void *)acc));
        _mm256_storeu_ps(y + base, _mm256_add_ps(_mm256_loadu_ps(y + base), _mm256_mul_ps(s, a)));
        return;
    }
#endif
    if (perm)
        for (i = 0; i < n; ++i)
            y[perm[i]] += scales[perm[i]] * zscale * (float)acc[i];
    else
        for (i = 0; i < n; ++i)
            y[base + i] += scales[base + i] * zscale * (float)acc[i];
}

static int ep_min(int a, int b)
{
    return a < b ? a : b;
}

/* ============================================================================================== */
/* float32                                                                                        */
/* ============================================================================================== */

#ifdef EP_AVX2
static float ep_hsum4(__m128 s)
{
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static float ep_hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* A full SELL slice's sums written to y[perm[0..7]], unrolled: added (SET 0) or, for a first-writer
 * tile (ep_sell_set_f32), stored without reading y (SET 1; its slot-ordered biases already added in
 * one vector). A loop over a stored copy costs about as much as a short slice's gathers (98% sparse
 * rows hold 1-11 weights). Always inlined, SET a constant: GCC calls it once the slice loop has two
 * copies (streaming or not), +6% on a 98% sparse tile. */
#define EP_PERM_LANE(I, V) (y[perm[I]] = (SET) ? (V) : y[perm[I]] + (V))
__attribute__((always_inline)) static inline void ep_perm8(float *EP_RESTRICT y, __m256 a, const uint16_t *EP_RESTRICT perm,
                                                           const int SET)
{
    const __m128 lo = _mm256_castps256_ps128(a), hi = _mm256_extractf128_ps(a, 1);
    EP_PERM_LANE(0, _mm_cvtss_f32(lo));
    EP_PERM_LANE(1, _mm_cvtss_f32(_mm_movehdup_ps(lo)));
    EP_PERM_LANE(2, _mm_cvtss_f32(_mm_movehl_ps(lo, lo)));
    EP_PERM_LANE(3, _mm_cvtss_f32(_mm_shuffle_ps(lo, lo, 3)));
    EP_PERM_LANE(4, _mm_cvtss_f32(hi));
    EP_PERM_LANE(5, _mm_cvtss_f32(_mm_movehdup_ps(hi)));
    EP_PERM_LANE(6, _mm_cvtss_f32(_mm_movehl_ps(hi, hi)));
    EP_PERM_LANE(7, _mm_cvtss_f32(_mm_shuffle_ps(hi, hi, 3)));
}
#undef EP_PERM_LANE

/* Eight z[cols[i]] in one register. AVX2's gather instruction is slower than eight scalar loads on
 * the Zen 3 cores this was tuned on (12.7 vs 4.8 cycles per 8 in benchmarks/c/kernels.py), and
 * taking the indices from one 64-bit word keeps the load ports for the z values. Always inlined:
 * GCC 12 at -O2 left the six calls in each ELL/SELL kernel out of line, a call per eight weights
 * (benchmarks/c/gather.py: 0.237 vs ~0.19 ns a weight on a Zen 4). */
__attribute__((always_inline)) static inline __m256 ep_gather_u8(const float *z, const uint8_t *cols)
{
#ifdef EP_HW_GATHER
    /* Where the gather instruction is the faster one (the backend measures it on the host it
     * builds for: costs.host_gather_flags), e.g. 0.16 vs 0.22 ns a weight on an AVX-512 Xeon. */
    return _mm256_i32gather_ps(z, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)cols)), 4);
#else
    uint64_t k;
    __m128 lo, hi;
    memcpy(&k, cols, sizeof k);
    lo = _mm_setr_ps(z[k & 0xFF], z[(k >> 8) & 0xFF], z[(k >> 16) & 0xFF], z[(k >> 24) & 0xFF]);
    hi = _mm_setr_ps(z[(k >> 32) & 0xFF], z[(k >> 40) & 0xFF], z[(k >> 48) & 0xFF], z[k >> 56]);
    return _mm256_set_m128(hi, lo);
#endif
}

__attribute__((always_inline)) static inline __m256 ep_gather_u16(const float *z, const uint16_t *cols)
{
#ifdef EP_HW_GATHER
    return _mm256_i32gather_ps(z, _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)cols)), 4);
#else
    uint64_t k, m;
    __m128 lo, hi;
    memcpy(&k, cols, sizeof k);
    memcpy(&m, cols + 4, sizeof m);
    lo = _mm_setr_ps(z[k & 0xFFFF], z[(k >> 16) & 0xFFFF], z[(k >> 32) & 0xFFFF], z[k >> 48]);
    hi = _mm_setr_ps(z[m & 0xFFFF], z[(m >> 16) & 0xFFFF], z[(m >> 32) & 0xFFFF], z[m >> 48]);
    return _mm256_set_m128(hi, lo);
#endif
}

#endif

void ep_dense_f32(float *EP_RESTRICT y, const float *EP_RESTRICT w, const float *EP_RESTRICT z, int rows, int cols)
{
    int r = 0, c;
#ifdef EP_AVX2
    /* Four accumulators over columns c mod 4 hide the latency of the fused multiply-adds. */
    for (; r + EP_SLICE <= rows; r += EP_SLICE) {
        __m256 a0 = _mm256_loadu_ps(y + r), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps();
        __m256 a3 = _mm256_setzero_ps();
        for (c = 0; c + 4 <= cols; c += 4, w += 32) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w), _mm256_broadcast_ss(z + c), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8), _mm256_broadcast_ss(z + c + 1), a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 16), _mm256_broadcast_ss(z + c + 2), a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 24), _mm256_broadcast_ss(z + c + 3), a3);
        }
        for (; c < cols; ++c, w += 8)
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w), _mm256_broadcast_ss(z + c), a0);
        _mm256_storeu_ps(y + r, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    }
#else
    /* Eight named sums: compilers at -O2 do not always unroll a loop over an accumulator array (GCC
     * for Thumb-2 keeps it on the stack); a vectoriser still packs them into SIMD registers. */
    for (; r + EP_SLICE <= rows; r += EP_SLICE) {
        float a0 = y[r], a1 = y[r + 1], a2 = y[r + 2], a3 = y[r + 3];
        float a4 = y[r + 4], a5 = y[r + 5], a6 = y[r + 6], a7 = y[r + 7];
        for (c = 0; c < cols; ++c, w += 8) {
            const float zc = z[c];
            a0 += w[0] * zc;
            a1 += w[1] * zc;
            a2 += w[2] * zc;
            a3 += w[3] * zc;
            a4 += w[4] * zc;
            a5 += w[5] * zc;
            a6 += w[6] * zc;
            a7 += w[7] * zc;
        }
        y[r] = a0;
        y[r + 1] = a1;
        y[r + 2] = a2;
        y[r + 3] = a3;
        y[r + 4] = a4;
        y[r + 5] = a5;
        y[r + 6] = a6;
        y[r + 7] = a7;
    }
#endif
    for (; r < rows; ++r, w += cols) { /* the last rows % 8 rows, row-major */
        float acc = y[r];
        c = 0;
#ifdef EP_AVX2
        /* A row of a head (10 classes: 8 in a panel, 2 left) is a dot product over all of z: as a
         * scalar chain it waits on each add (~4 cycles a weight); four vector sums do not. */
        if (cols >= 32) {
            __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            for (; c + 32 <= cols; c += 32) {
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c), _mm256_loadu_ps(z + c), s0);
                s1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c + 8), _mm256_loadu_ps(z + c + 8), s1);
                s2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c + 16), _mm256_loadu_ps(z + c + 16), s2);
                s3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c + 24), _mm256_loadu_ps(z + c + 24), s3);
            }
            for (; c + 8 <= cols; c += 8)
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c), _mm256_loadu_ps(z + c), s0);
            acc += ep_hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
        }
#endif
        for (; c < cols; ++c)
            acc += w[c] * z[c];
        y[r] = acc;
    }
}

void ep_csr_f32(float *EP_RESTRICT y, const float *EP_RESTRICT values, const uint8_t *EP_RESTRICT cols,
                const uint16_t *EP_RESTRICT row_nnz, const float *EP_RESTRICT z, int rows)
{
    /* Four partial sums break the chain of dependent additions on cores that pipeline them. */
    int r, k;
    for (r = 0; r < rows; ++r) {
        const int n = (int)row_nnz[r];
        float a0 = y[r], a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
        for (k = 0; k + 4 <= n; k += 4) {
            a0 += values[k] * z[cols[k]];
            a1 += values[k + 1] * z[cols[k + 1]];
            a2 += values[k + 2] * z[cols[k + 2]];
            a3 += values[k + 3] * z[cols[k + 3]];
        }
        for (; k < n; ++k)
            a0 += values[k] * z[cols[k]];
        y[r] = (a0 + a1) + (a2 + a3);
        values += n;
        cols += n;
    }
}

/* ELL and SELL: slice s has `width` (or widths[s]) columns of EP_SLICE entries, one per row. */
#ifdef EP_AVX2
/*
 * Streaming tiles read their tables a page ahead. A step whose tables exceed L2 (LSTM 1024 at 90%:
 * 2.1 MB against 2 MiB) streams them from L3 or memory, and the hardware prefetchers, which stop at
 * every 4 KiB page and restart with every tile, leave the gathers waiting. Prefetching the values
 * a page ahead (one per 64 bytes: one iteration), the indices as far ahead in slices (a slice's
 * lines, once per slice) and a tile's first page on entry took that step from 141 to 102 us in
 * benchmarks/c/limits.py, where it runs once after 32 MiB sweeps (second call after a sweep in a
 * loop of its own: 144 -> 90 us; steady: 86 -> 80 us). A tile under 64 KiB of values (LSTM 256,
 * 512; 1024-row tiles past 90%) skips all that: it sits in L1/L2 next to the rest of its step, and
 * there the prefetches (most of them past its end at 95-98%) cost 2-7% of a tile.
 */
#define EP_PREFETCH_BYTES 4096
/* the indices as far ahead in slices: a quarter of that for bytes, half for 16-bit indices */
#define EP_PREFETCH_COLS (EP_PREFETCH_BYTES * (long)sizeof *cols / (long)sizeof *values)
#define EP_STREAM_BYTES (64 * 1024)
/* prefetch the bytes [from, from + n) of a table (an address, not a pointer: it may pass the end) */
__attribute__((always_inline)) static inline void ep_prefetch(const void *table, long from, long n)
{
    long i;
    for (i = 0; i < n; i += 64)
        _mm_prefetch((const char *)((uintptr_t)table + (uintptr_t)(from + i)), _MM_HINT_T0);
}

#define EP_SLICES_F32(GATHER, PERM, PREFETCH, SET, PBIAS)                                             \
    for (s = 0; s < slices; ++s) {                                                        \
        const int w = WIDTH(s), n = ep_min(EP_SLICE, rows - s * EP_SLICE);                \
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();                        \
        float acc[EP_SLICE];                                                              \
        if (PREFETCH)                                                                     \
            ep_prefetch(cols, EP_PREFETCH_COLS, (long)w * EP_SLICE * (long)sizeof *cols);  \
        for (k = 0; k + 2 <= w; k += 2, values += 16, cols += 16) {                       \
            if (PREFETCH)                                                                 \
                _mm_prefetch((const char *)((uintptr_t)values + EP_PREFETCH_BYTES), _MM_HINT_T0); \
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(values), GATHER(z, cols), a0);           \
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(values + 8), GATHER(z, cols + 8), a1);   \
        }                                                                                 \
        if (k < w) {                                                                      \
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(values), GATHER(z, cols), a0);           \
            values += 8;                                                                  \
            cols += 8;                                                                    \
        }                                                                                 \
        a0 = _mm256_add_ps(a0, a1);                                                       \
        if ((SET) && n == EP_SLICE) {                                                     \
            if (PBIAS)                                                                    \
                a0 = _mm256_add_ps(a0, _mm256_loadu_ps((PBIAS) + s * EP_SLICE));          \
            ep_perm8(y, a0, (PERM) + s * EP_SLICE, 1);                                    \
        } else if (SET) {                                                                 \
            _mm256_storeu_ps(acc, a0);                                                    \
            ep_scatter_set(y, acc, (PERM) + s * EP_SLICE, (PBIAS) ? (PBIAS) + s * EP_SLICE : NULL, 0, n); \
        } else if (!(PERM) && n == EP_SLICE) {                                            \
            float *const ys = y + s * EP_SLICE;                                           \
            _mm256_storeu_ps(ys, _mm256_add_ps(_mm256_loadu_ps(ys), a0));                 \
        } else if ((PERM) && n == EP_SLICE) {                                             \
            ep_perm8(y, a0, (PERM) + s * EP_SLICE, 0);                                    \
        } else {                                                                          \
            _mm256_storeu_ps(acc, a0);                                                    \
            ep_scatter(y, acc, (PERM) ? (PERM) + s * EP_SLICE : NULL, s * EP_SLICE, n);   \
        }                                                                                 \
    }
#define EP_SLICED_F32(GATHER, PERM, SET, PBIAS)                                                       \
    int s, k;                                                                             \
    const int slices = (rows + EP_SLICE - 1) / EP_SLICE;                                  \
    /* rows x the middle slice's width: about the values' bytes (SELL sorts rows by count) */ \
    if (rows <= 0 || (long)rows * WIDTH(slices / 2) * (long)sizeof *values <= EP_STREAM_BYTES) { \
        EP_SLICES_F32(GATHER, PERM, 0, SET, PBIAS)                                        \
    } else {                                                                              \
        ep_prefetch(values, 0, EP_PREFETCH_BYTES);                                        \
        ep_prefetch(cols, 0, EP_PREFETCH_COLS);                                           \
        EP_SLICES_F32(GATHER, PERM, 1, SET, PBIAS)                                        \
    }
#elif defined(EP_M4F)
/*
 * One slice: `w` columns of EP_SLICE (8) weights, 8 sums in s-registers. GCC loads the 8 weights
 * with 8 VLDRs and keeps loop counters apart (5.6 instructions a weight); here one VLDMIA loads
 * them and a down-counter ends the loop: per weight LDRB (post-increment), ADD, VLDR, VFMA, plus
 * 3/8 for the VLDMIA and the loop, i.e. 4.4 instructions. Two index registers alternate so a
 * load is not used by the next instruction.
 */
static void ep_slice8_m4f(float *EP_RESTRICT acc, const float *values, const uint8_t *cols, const float *z, int w)
{
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, a4 = 0.0f, a5 = 0.0f, a6 = 0.0f, a7 = 0.0f;
    uint32_t t0, t1;
    if (w > 0) {
        __asm__ volatile(
            "1:\n\t"
            "vldmia %[v]!, {s16-s23}\n\t"
            "ldrb %[t0], [%[c]], #1\n\t"
            "ldrb %[t1], [%[c]], #1\n\t"
            "add %[t0], %[z], %[t0], lsl #2\n\t"
            "vldr s24, [%[t0]]\n\t"
            "add %[t1], %[z], %[t1], lsl #2\n\t"
            "vldr s25, [%[t1]]\n\t"
            "ldrb %[t0], [%[c]], #1\n\t"
            "vfma.f32 %[a0], s16, s24\n\t"
            "ldrb %[t1], [%[c]], #1\n\t"
            "vfma.f32 %[a1], s17, s25\n\t"
            "add %[t0], %[z], %[t0], lsl #2\n\t"
            "vldr s24, [%[t0]]\n\t"
            "add %[t1], %[z], %[t1], lsl #2\n\t"
            "vldr s25, [%[t1]]\n\t"
            "ldrb %[t0], [%[c]], #1\n\t"
            "vfma.f32 %[a2], s18, s24\n\t"
            "ldrb %[t1], [%[c]], #1\n\t"
            "vfma.f32 %[a3], s19, s25\n\t"
            "add %[t0], %[z], %[t0], lsl #2\n\t"
            "vldr s24, [%[t0]]\n\t"
            "add %[t1], %[z], %[t1], lsl #2\n\t"
            "vldr s25, [%[t1]]\n\t"
            "ldrb %[t0], [%[c]], #1\n\t"
            "vfma.f32 %[a4], s20, s24\n\t"
            "ldrb %[t1], [%[c]], #1\n\t"
            "vfma.f32 %[a5], s21, s25\n\t"
            "add %[t0], %[z], %[t0], lsl #2\n\t"
            "vldr s24, [%[t0]]\n\t"
            "add %[t1], %[z], %[t1], lsl #2\n\t"
            "vldr s25, [%[t1]]\n\t"
            "vfma.f32 %[a6], s22, s24\n\t"
            "subs %[n], %[n], #1\n\t"
            "vfma.f32 %[a7], s23, s25\n\t"
            "bne 1b\n\t"
            : [v] "+r"(values), [c] "+r"(cols), [n] "+r"(w), [t0] "=&r"(t0), [t1] "=&r"(t1), [a0] "+t"(a0),
              [a1] "+t"(a1), [a2] "+t"(a2), [a3] "+t"(a3), [a4] "+t"(a4), [a5] "+t"(a5), [a6] "+t"(a6),
              [a7] "+t"(a7)
            : [z] "r"(z)
            : "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "cc", "memory");
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    acc[4] = a4;
    acc[5] = a5;
    acc[6] = a6;
    acc[7] = a7;
}

/* byte indices (ell, sell) take the assembly loop; ell16 and sell16 the plain one */
#define EP_SLICED_F32(GATHER, PERM, SET, PBIAS)                                                       \
    int s, k;                                                                             \
    const int slices = (rows + EP_SLICE - 1) / EP_SLICE;                                  \
    for (s = 0; s < slices; ++s) {                                                        \
        const int w = WIDTH(s), n = ep_min(EP_SLICE, rows - s * EP_SLICE);                \
        float acc[EP_SLICE];                                                              \
        if (sizeof *cols == 1) {                                                          \
            ep_slice8_m4f(acc, values, (const uint8_t *)(const void *)cols, z, w);        \
        } else { /* named sums: GCC for Thumb-2 keeps an array of sums on the stack */    \
            float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;                             \
            float a4 = 0.0f, a5 = 0.0f, a6 = 0.0f, a7 = 0.0f;                             \
            for (k = 0; k < w; ++k) {                                                     \
                const float *const v = values + k * EP_SLICE;                             \
                a0 += v[0] * z[cols[k * EP_SLICE + 0]];                                   \
                a1 += v[1] * z[cols[k * EP_SLICE + 1]];                                   \
                a2 += v[2] * z[cols[k * EP_SLICE + 2]];                                   \
                a3 += v[3] * z[cols[k * EP_SLICE + 3]];                                   \
                a4 += v[4] * z[cols[k * EP_SLICE + 4]];                                   \
                a5 += v[5] * z[cols[k * EP_SLICE + 5]];                                   \
                a6 += v[6] * z[cols[k * EP_SLICE + 6]];                                   \
                a7 += v[7] * z[cols[k * EP_SLICE + 7]];                                   \
            }                                                                             \
            acc[0] = a0;                                                                  \
            acc[1] = a1;                                                                  \
            acc[2] = a2;                                                                  \
            acc[3] = a3;                                                                  \
            acc[4] = a4;                                                                  \
            acc[5] = a5;                                                                  \
            acc[6] = a6;                                                                  \
            acc[7] = a7;                                                                  \
        }                                                                                 \
        values += w * EP_SLICE;                                                           \
        cols += w * EP_SLICE;                                                             \
        if (SET)                                                                          \
            ep_scatter_set(y, acc, (PERM) + s * EP_SLICE, (PBIAS) ? (PBIAS) + s * EP_SLICE : NULL, 0, n); \
        else                                                                              \
            ep_scatter(y, acc, (PERM) ? (PERM) + s * EP_SLICE : NULL, s * EP_SLICE, n);   \
    }
#else
#define EP_SLICED_F32(GATHER, PERM, SET, PBIAS)                                                       \
    int s, k;                                                                             \
    const int slices = (rows + EP_SLICE - 1) / EP_SLICE;                                  \
    for (s = 0; s < slices; ++s) {                                                        \
        const int w = WIDTH(s), n = ep_min(EP_SLICE, rows - s * EP_SLICE);                \
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;                                 \
        float a4 = 0.0f, a5 = 0.0f, a6 = 0.0f, a7 = 0.0f;                                 \
        float acc[EP_SLICE];                                                              \
        for (k = 0; k < w; ++k, values += EP_SLICE, cols += EP_SLICE) {                   \
            a0 += values[0] * z[cols[0]];                                                 \
            a1 += values[1] * z[cols[1]];                                                 \
            a2 += values[2] * z[cols[2]];                                                 \
            a3 += values[3] * z[cols[3]];                                                 \
            a4 += values[4] * z[cols[4]];                                                 \
            a5 += values[5] * z[cols[5]];                                                 \
            a6 += values[6] * z[cols[6]];                                                 \
            a7 += values[7] * z[cols[7]];                                                 \
        }                                                                                 \
        acc[0] = a0;                                                                      \
        acc[1] = a1;                                                                      \
        acc[2] = a2;                                                                      \
        acc[3] = a3;                                                                      \
        acc[4] = a4;                                                                      \
        acc[5] = a5;                                                                      \
        acc[6] = a6;                                                                      \
        acc[7] = a7;                                                                      \
        if (SET)                                                                          \
            ep_scatter_set(y, acc, (PERM) + s * EP_SLICE, (PBIAS) ? (PBIAS) + s * EP_SLICE : NULL, 0, n); \
        else                                                                              \
            ep_scatter(y, acc, (PERM) ? (PERM) + s * EP_SLICE : NULL, s * EP_SLICE, n);   \
    }
#endif

#define WIDTH(s) width
void ep_ell_f32(float *EP_RESTRICT y, const float *EP_RESTRICT values, const uint8_t *EP_RESTRICT cols,
                const float *EP_RESTRICT z, int rows, int width)
{
    const uint16_t *const perm = NULL;
    EP_SLICED_F32(ep_gather_u8, perm, 0, (const float *)NULL)
}

void ep_ell16_f32(float *EP_RESTRICT y, const float *EP_RESTRICT values, const uint16_t *EP_RESTRICT cols,
                  const float *EP_RESTRICT z, int rows, int width)
{
    const uint16_t *const perm = NULL;
    EP_SLICED_F32(ep_gather_u16, perm, 0, (const float *)NULL)
}
#undef WIDTH

#define WIDTH(s) (int)widths[s]
void ep_sell_f32(float *EP_RESTRICT y, const float *EP_RESTRICT values, const uint8_t *EP_RESTRICT cols,
                 const uint16_t *EP_RESTRICT widths, const uint16_t *EP_RESTRICT perm, const float *EP_RESTRICT z,
                 int rows)
{
    EP_SLICED_F32(ep_gather_u8, perm, 0, (const float *)NULL)
}

void ep_sell_set_f32(float *EP_RESTRICT y, const float *EP_RESTRICT values, const uint8_t *EP_RESTRICT cols,
                     const uint16_t *EP_RESTRICT widths, const uint16_t *EP_RESTRICT perm,
                     const float *EP_RESTRICT pbias, const float *EP_RESTRICT z, int rows, int all_rows)
{
    EP_SLICED_F32(ep_gather_u8, perm, 1, pbias)
    ep_set_rest(y, perm, pbias, rows, all_rows);
}

void ep_sell16_f32(float *EP_RESTRICT y, const float *EP_RESTRICT values, const uint16_t *EP_RESTRICT cols,
                   const uint16_t *EP_RESTRICT widths, const uint16_t *EP_RESTRICT perm, const float *EP_RESTRICT z,
                   int rows)
{
    EP_SLICED_F32(ep_gather_u16, perm, 0, (const float *)NULL)
}

void ep_sell16_set_f32(float *EP_RESTRICT y, const float *EP_RESTRICT values, const uint16_t *EP_RESTRICT cols,
                       const uint16_t *EP_RESTRICT widths, const uint16_t *EP_RESTRICT perm,
                       const float *EP_RESTRICT pbias, const float *EP_RESTRICT z, int rows, int all_rows)
{
    EP_SLICED_F32(ep_gather_u16, perm, 1, pbias)
    ep_set_rest(y, perm, pbias, rows, all_rows);
}
#undef WIDTH

/* Block rows come in runs of equal block count (formats._runs): runs[2g] blocks in each of the
 * runs[2g + 1] block rows brows[...] of run g; empty block rows are not stored. Within a run every
 * loop below has the same trip count, so its exit is predicted. */
/* A first-writer block tile's block rows without a block, brows[0..n-1] (listed after the walked ones): the bias alone */
static void ep_set_block_rows(float *EP_RESTRICT y, const uint16_t *EP_RESTRICT brows, const float *EP_RESTRICT bias,
                              int height, int n, int rows)
{
    int i, j;
    for (i = 0; i < n; ++i) {
        const int base = (int)brows[i] * height, m = ep_min(height, rows - base);
        for (j = 0; j < m; ++j)
            y[base + j] = bias ? bias[base + j] : 0.0f;
    }
}

#ifdef EP_AVX2
/* y[b*8 ...] += a, or for a first writer (SET: ep_bsr8x1_set_f32) y[b*8 ...] = a + bias[b*8 ...];
 * the tile's last block row possibly partial. Always inlined, SET a constant. */
__attribute__((always_inline)) static inline void ep_bsr8x1_put(float *EP_RESTRICT y, __m256 a, int b, int rows,
                                                                const float *EP_RESTRICT bias, const int SET)
{
    float acc[8];
    if (b * 8 + 8 <= rows) {
        const __m256 old = SET ? (bias ? _mm256_loadu_ps(bias + b * 8) : _mm256_setzero_ps()) : _mm256_loadu_ps(y + b * 8);
        _mm256_storeu_ps(y + b * 8, _mm256_add_ps(old, a));
        return;
    }
    _mm256_storeu_ps(acc, a);
    if (SET)
        ep_scatter_set(y, acc, NULL, bias ? bias + b * 8 : NULL, b * 8, rows - b * 8);
    else
        ep_scatter(y, acc, NULL, b * 8, rows - b * 8);
}

/* A run of block rows with BLOCKS unrolled (a fixed count: no inner loop), two chains of sums. */
#define EP_B8(J, A) A = _mm256_fmadd_ps(_mm256_loadu_ps(values + 8 * (J)), _mm256_broadcast_ss(z + cols[J]), A)
#define EP_BSR8_RUN(BLOCKS)                                              \
    for (i = 0; i < m; ++i, cols += nb, values += 8 * nb) {              \
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();      \
        BLOCKS;                                                          \
        ep_bsr8x1_put(y, _mm256_add_ps(a0, a1), (int)brows[i], rows, bias, set); \
    }                                                                    \
    break

/* y[b*4 ...] += a, as ep_bsr8x1_put adds */
static void ep_bsr4x1_add(float *EP_RESTRICT y, __m128 a, int b, int rows)
{
    float acc[4];
    if (b * 4 + 4 <= rows) {
        _mm_storeu_ps(y + b * 4, _mm_add_ps(_mm_loadu_ps(y + b * 4), a));
        return;
    }
    _mm_storeu_ps(acc, a);
    ep_scatter(y, acc, NULL, b * 4, rows - b * 4);
}

#define EP_B4(J, A) A = _mm_fmadd_ps(_mm_loadu_ps(values + 4 * (J)), _mm_broadcast_ss(z + cols[J]), A)
#define EP_BSR4_RUN(BLOCKS)                                              \
    for (i = 0; i < m; ++i, cols += nb, values += 4 * nb) {              \
        __m128 a0 = _mm_setzero_ps(), a1 = _mm_setzero_ps();            \
        BLOCKS;                                                          \
        ep_bsr4x1_add(y, _mm_add_ps(a0, a1), (int)brows[i], rows);       \
    }                                                                    \
    break

/* the switch cases of block counts 1-8: RUN over the run's block rows with B(j, sum) per block */
#define EP_BSR_SHORT(RUN, B)                                                                      \
    case 1: RUN(B(0, a0));                                                                        \
    case 2: RUN(B(0, a0); B(1, a1));                                                              \
    case 3: RUN(B(0, a0); B(1, a1); B(2, a0));                                                    \
    case 4: RUN(B(0, a0); B(1, a1); B(2, a0); B(3, a1));                                          \
    case 5: RUN(B(0, a0); B(1, a1); B(2, a0); B(3, a1); B(4, a0));                                \
    case 6: RUN(B(0, a0); B(1, a1); B(2, a0); B(3, a1); B(4, a0); B(5, a1));                      \
    case 7: RUN(B(0, a0); B(1, a1); B(2, a0); B(3, a1); B(4, a0); B(5, a1); B(6, a0));            \
    case 8: RUN(B(0, a0); B(1, a1); B(2, a0); B(3, a1); B(4, a0); B(5, a1); B(6, a0); B(7, a1))
#endif

/* the body of both 8x1 kernels, over u8 block columns (tiles up to 256 wide) or u16 (bsr8x1w:
 * wider f32 tiles, e.g. the input and state columns of a recurrent matrix in one tile) */
#ifdef EP_AVX2
/* One block row of nb 8x1 blocks onto `init`, four sums (the 8x1 kernels' long rows, ep_lstm8x1_f32's
 * every row), per index type. */
#define EP_B8_ROW(NAME, INDEX)                                                                                   \
    static inline __m256 NAME(const float *EP_RESTRICT values, const INDEX *EP_RESTRICT cols, int nb,            \
                              const float *EP_RESTRICT z, __m256 init)                                           \
    {                                                                                                            \
        __m256 a0 = init, a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();          \
        int k;                                                                                                   \
        for (k = 0; k + 4 <= nb; k += 4, values += 32) {                                                         \
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(values), _mm256_broadcast_ss(z + cols[k]), a0);                 \
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(values + 8), _mm256_broadcast_ss(z + cols[k + 1]), a1);         \
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(values + 16), _mm256_broadcast_ss(z + cols[k + 2]), a2);        \
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(values + 24), _mm256_broadcast_ss(z + cols[k + 3]), a3);        \
        }                                                                                                        \
        for (; k < nb; ++k, values += 8)                                                                         \
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(values), _mm256_broadcast_ss(z + cols[k]), a0);                 \
        return _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));                                     \
    }
EP_B8_ROW(ep_b8_row_u8, uint8_t)
EP_B8_ROW(ep_b8_row_u16, uint16_t)
#undef EP_B8_ROW
/* the row function for the index type of `cols` (a constant: one call is left) */
#define EP_B8_ROW_OF(cols, values, nb, z, init)                                                                   \
    (sizeof *(cols) == 1 ? ep_b8_row_u8(values, (const uint8_t *)(const void *)(cols), nb, z, init)              \
                         : ep_b8_row_u16(values, (const uint16_t *)(const void *)(cols), nb, z, init))
#define EP_BSR8X1_BLOCK_ROWS                                                                                         \
        /* Per-row work is most of a short block row's time (95-98% sparsity: 1-16 blocks): a                        \
         * straight-line body per count up to 8 (the jump repeats over the run: predicted). */                       \
        switch (nb) {                                                                                                \
            EP_BSR_SHORT(EP_BSR8_RUN, EP_B8);                                                                        \
        default: /* longer rows: four sums */                                                                        \
            for (i = 0; i < m; ++i, cols += nb, values += 8 * nb)                                                    \
                ep_bsr8x1_put(y, EP_B8_ROW_OF(cols, values, nb, z, _mm256_setzero_ps()), (int)brows[i], rows, bias,  \
                              set);                                                                                  \
        }
#else
#define EP_BSR8X1_BLOCK_ROWS                                                                               \
        for (i = 0; i < m; ++i, cols += nb) {                                                              \
            const int b = (int)brows[i], n = ep_min(8, rows - b * 8);                                      \
            float acc[8];                                                                                  \
            int k;                                                                                         \
            float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, a4 = 0.0f, a5 = 0.0f, a6 = 0.0f, a7 = 0.0f;  \
            for (k = 0; k < nb; ++k, values += 8) {                                                        \
                const float zc = z[cols[k]];                                                               \
                a0 += values[0] * zc;                                                                      \
                a1 += values[1] * zc;                                                                      \
                a2 += values[2] * zc;                                                                      \
                a3 += values[3] * zc;                                                                      \
                a4 += values[4] * zc;                                                                      \
                a5 += values[5] * zc;                                                                      \
                a6 += values[6] * zc;                                                                      \
                a7 += values[7] * zc;                                                                      \
            }                                                                                              \
            acc[0] = a0;                                                                                   \
            acc[1] = a1;                                                                                   \
            acc[2] = a2;                                                                                   \
            acc[3] = a3;                                                                                   \
            acc[4] = a4;                                                                                   \
            acc[5] = a5;                                                                                   \
            acc[6] = a6;                                                                                   \
            acc[7] = a7;                                                                                   \
            if (set)                                                                                       \
                ep_scatter_set(y, acc, NULL, bias ? bias + b * 8 : NULL, b * 8, n);                        \
            else                                                                                           \
                ep_scatter(y, acc, NULL, b * 8, n);                                                        \
        }
#endif
/* SET (a constant): the tile is its rows' first writer (ep_bsr8x1_set_f32): each walked block row
 * stores its sums + bias, then the block rows listed after the walked ones in brows get the bias
 * alone. */
#define EP_BSR8X1_F32_BODY(SET)                                                        \
    const int set = (SET); /* read by EP_BSR8X1_BLOCK_ROWS */                          \
    int g, i, m = 0, walked = 0;                                                       \
    for (g = 0; g < nruns; ++g, brows += m) {                                          \
        const int nb = (int)runs[2 * g];                                               \
        m = (int)runs[2 * g + 1];                                                      \
        walked += m;                                                                   \
        EP_BSR8X1_BLOCK_ROWS;                                                          \
    }                                                                                  \
    if (set)                                                                           \
        ep_set_block_rows(y, brows, bias, 8, (rows + 7) / 8 - walked, rows);

void ep_bsr8x1_f32(float *EP_RESTRICT y, const float *EP_RESTRICT values, const uint8_t *EP_RESTRICT cols,
                   const uint16_t *EP_RESTRICT runs, const uint16_t *EP_RESTRICT brows, const float *EP_RESTRICT z,
                   int rows, int nruns)
{
    const float *const bias = NULL;
    EP_BSR8X1_F32_BODY(0)
}

void ep_bsr8x1w_f32(float *EP_RESTRICT y, const float *EP_RESTRICT values, const uint16_t *EP_RESTRICT cols,
                    const uint16_t *EP_RESTRICT runs, const uint16_t *EP_RESTRICT brows, const float *EP_RESTRICT z,
                    int rows, int nruns)
{
    const float *const bias = NULL;
    EP_BSR8X1_F32_BODY(0)
}

void ep_bsr8x1_set_f32(float *EP_RESTRICT y, const float *EP_RESTRICT values, const uint8_t *EP_RESTRICT cols,
                       const uint16_t *EP_RESTRICT runs, const uint16_t *EP_RESTRICT brows,
                       const float *EP_RESTRICT bias, const float *EP_RESTRICT z, int rows, int nruns)
{
    EP_BSR8X1_F32_BODY(1)
}

void ep_bsr8x1w_set_f32(float *EP_RESTRICT y, const float *EP_RESTRICT values, const uint16_t *EP_RESTRICT cols,
                        const uint16_t *EP_RESTRICT runs, const uint16_t *EP_RESTRICT brows,
                        const float *EP_RESTRICT bias, const float *EP_RESTRICT z, int rows, int nruns)
{
    EP_BSR8X1_F32_BODY(1)
}

/* The step's mat-vec and cell in one pass: the cell's arithmetic on one group of units (bound by the
 * FMA ports) overlaps the next group's block loads (bound by the cache), where separate calls run
 * one after the other; and the gate sums never leave registers (AVX2). Each block row's place comes
 * from `starts`, not from the previous row's count, so the next group's loads do not wait on a chain
 * of additions (formats.lstm8x1). Measured: benchmarks/c/fused_lstm.py. */
void ep_lstm8x1_f32(float *EP_RESTRICT h_out, float *EP_RESTRICT c, const float *EP_RESTRICT values,
                    const uint16_t *EP_RESTRICT cols, const uint32_t *EP_RESTRICT starts,
                    const float *EP_RESTRICT bias, const float *EP_RESTRICT z, int hidden)
{
    const int groups = hidden / EP_SLICE;
    int b;
    for (b = 0; b < hidden; b += EP_SLICE, ++starts) { /* starts[g * groups]: gate g's row of this group */
#if defined(EP_AVX2) && EP_CELL_SIMD == 8 /* the sums stay in registers, the cell's vector form on them */
        __m256 cb = _mm256_loadu_ps(c + b), hb;
        /* the four gates written out, not a loop over them: 2-5% faster at 95% (ab_steps.py) */
#define EP_GATE(G)                                                                                                  \
    ep_b8_row_u16(values + (size_t)EP_SLICE * starts[(G) * groups], cols + starts[(G) * groups],                   \
                  (int)(starts[(G) * groups + 1] - starts[(G) * groups]), z,                                        \
                  bias ? _mm256_loadu_ps(bias + (G) * hidden + b) : _mm256_setzero_ps())
        const __m256 gi = EP_GATE(0), gf = EP_GATE(1), gg = EP_GATE(2), go = EP_GATE(3);
#undef EP_GATE
        ep_v_lstm(gi, gf, gg, go, &cb, &hb);
        _mm256_storeu_ps(c + b, cb);
        _mm256_storeu_ps(h_out + b, hb);
#else
        float pre[4 * EP_SLICE]; /* the group's gate sums, as ep_lstm reads them: i, f, g, o */
        int g;
        for (g = 0; g < 4; ++g) {
            const float *v = values + (size_t)EP_SLICE * starts[g * groups];
            float *const p = pre + g * EP_SLICE;
            uint32_t k;
            int i;
            for (i = 0; i < EP_SLICE; ++i)
                p[i] = bias ? bias[g * hidden + b + i] : 0.0f;
            for (k = starts[g * groups]; k < starts[g * groups + 1]; ++k, v += EP_SLICE) {
                const float zc = z[cols[k]];
                for (i = 0; i < EP_SLICE; ++i)
                    p[i] += v[i] * zc;
            }
        }
        ep_lstm(h_out + b, c + b, pre, EP_SLICE);
#endif
    }
}

void ep_bsr4x1_f32(float *EP_RESTRICT y, const float *EP_RESTRICT values, const uint8_t *EP_RESTRICT cols,
                   const uint16_t *EP_RESTRICT runs, const uint16_t *EP_RESTRICT brows, const float *EP_RESTRICT z,
                   int rows, int nruns)
{
    int g, i, k, m = 0;
    for (g = 0; g < nruns; ++g, brows += m) {
        const int nb = (int)runs[2 * g];
        m = (int)runs[2 * g + 1];
#ifdef EP_AVX2
        switch (nb) { /* as bsr8x1: a straight-line body per count up to 8 */
            EP_BSR_SHORT(EP_BSR4_RUN, EP_B4);
        default: break;
        }
        if (nb <= 8)
            continue; /* the run is done */
#endif
        for (i = 0; i < m; ++i, cols += nb) {
            const int b = (int)brows[i], n = ep_min(4, rows - b * 4);
            float acc[4];
#ifdef EP_AVX2
            __m128 a0 = _mm_setzero_ps(), a1 = _mm_setzero_ps(), a2 = _mm_setzero_ps(), a3 = _mm_setzero_ps();
            for (k = 0; k + 4 <= nb; k += 4, values += 16) {
                a0 = _mm_fmadd_ps(_mm_loadu_ps(values), _mm_broadcast_ss(z + cols[k]), a0);
                a1 = _mm_fmadd_ps(_mm_loadu_ps(values + 4), _mm_broadcast_ss(z + cols[k + 1]), a1);
                a2 = _mm_fmadd_ps(_mm_loadu_ps(values + 8), _mm_broadcast_ss(z + cols[k + 2]), a2);
                a3 = _mm_fmadd_ps(_mm_loadu_ps(values + 12), _mm_broadcast_ss(z + cols[k + 3]), a3);
            }
            for (; k < nb; ++k, values += 4)
                a0 = _mm_fmadd_ps(_mm_loadu_ps(values), _mm_broadcast_ss(z + cols[k]), a0);
            a0 = _mm_add_ps(_mm_add_ps(a0, a1), _mm_add_ps(a2, a3));
            if (n == 4) { /* whole block row: add in place (the scatter loop was most of a short row's time) */
                _mm_storeu_ps(y + b * 4, _mm_add_ps(_mm_loadu_ps(y + b * 4), a0));
                continue;
            }
            _mm_storeu_ps(acc, a0);
#else
            float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
            for (k = 0; k < nb; ++k, values += 4) {
                const float zc = z[cols[k]];
                a0 += values[0] * zc;
                a1 += values[1] * zc;
                a2 += values[2] * zc;
                a3 += values[3] * zc;
            }
            acc[0] = a0;
            acc[1] = a1;
            acc[2] = a2;
            acc[3] = a3;
#endif
            ep_scatter(y, acc, NULL, b * 4, n);
        }
    }
}

void ep_bsr1x4_f32(float *EP_RESTRICT y, const float *EP_RESTRICT values, const uint8_t *EP_RESTRICT cols,
                   const uint16_t *EP_RESTRICT runs, const uint16_t *EP_RESTRICT brows, const float *EP_RESTRICT z,
                   int rows, int nruns)
{
    int g, i, k, m = 0;
    (void)rows; /* a block row is one row: never partial */
    for (g = 0; g < nruns; ++g, brows += m) {
        const int nb = (int)runs[2 * g];
        m = (int)runs[2 * g + 1];
        for (i = 0; i < m; ++i, cols += nb) {
            const int r = (int)brows[i];
#ifdef EP_AVX2
            /* Two blocks per 256-bit register: the four inputs of each are contiguous. */
            __m256 a = _mm256_setzero_ps();
            __m128 t = _mm_setzero_ps();
            for (k = 0; k + 2 <= nb; k += 2, values += 8) {
                const __m256 zz = _mm256_set_m128(_mm_loadu_ps(z + 4 * cols[k + 1]), _mm_loadu_ps(z + 4 * cols[k]));
                a = _mm256_fmadd_ps(_mm256_loadu_ps(values), zz, a);
            }
            if (k < nb) {
                t = _mm_mul_ps(_mm_loadu_ps(values), _mm_loadu_ps(z + 4 * cols[k]));
                values += 4;
            }
            y[r] += ep_hsum8(a) + ep_hsum4(t);
#else
            float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
            for (k = 0; k < nb; ++k, values += 4) {
                const float *const zb = z + 4 * cols[k];
                a0 += values[0] * zb[0];
                a1 += values[1] * zb[1];
                a2 += values[2] * zb[2];
                a3 += values[3] * zb[3];
            }
            y[r] += (a0 + a1) + (a2 + a3);
#endif
        }
    }
}

/* ============================================================================================== */
/* int8                                                                                           */
/* ============================================================================================== */

#ifdef EP_AVX2
/* Eight values: q = trunc(v + copysign(0.5, v)) with v = x * inv rounded to float first (the empty
 * asm keeps -ffp-contract from fusing the two steps, which would round some ties differently from
 * the numpy reference); the pack saturates, but |v| <= 127.5 so nothing clips. */
static void ep_quantize8(int8_t *q, __m256 x, __m256 inv)
{
    const __m256 sign = _mm256_set1_ps(-0.0f); /* the sign bit alone */
    __m256 v = _mm256_mul_ps(x, inv);
    __m256i i;
    __m128i h;
    __asm__("" : "+x"(v));
    i = _mm256_cvttps_epi32(_mm256_add_ps(v, _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(0.5f))));
    h = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
    _mm_storel_epi64((__m128i *)(void *)q, _mm_packs_epi16(h, h));
}
#endif

float ep_quantize(int8_t *EP_RESTRICT q, const float *EP_RESTRICT x, int n)
{
    float top = 0.0f, inv;
    int i = 0;
#ifdef EP_AVX2
    { /* max |x| eight at a time; any NaN sends the whole scan through the scalar loop (NaN sticks) */
        const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
        __m256 m = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
        for (; i + 8 <= n; i += 8) {
            const __m256 a = _mm256_and_ps(_mm256_loadu_ps(x + i), magnitude);
            m = _mm256_max_ps(m, a);
            nan = _mm256_or_ps(nan, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
        }
        if (_mm256_movemask_ps(nan))
            i = 0;
        else {
            __m128 t = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            t = _mm_max_ps(t, _mm_movehl_ps(t, t));
            top = _mm_cvtss_f32(_mm_max_ss(t, _mm_movehdup_ps(t)));
        }
    }
#endif
    for (; i < n; ++i) {
        const float a = x[i] < 0.0f ? -x[i] : x[i];
        top = (a > top || a != a) ? a : top; /* NaN sticks */
    }
    if (!(top >= 1e-30f && top <= 3.4028234e38f)) { /* all (nearly) zero, or infinite, or NaN */
        memset(q, 0, (size_t)(n > 0 ? n : 0));
        return top <= 3.4028234e38f ? 0.0f : top; /* 127 / top would overflow below 1e-30 */
    }
    inv = 127.0f / top;
#ifdef EP_AVX2
    {
        const __m256 vinv = _mm256_set1_ps(inv);
        for (i = 0; i + 8 <= n; i += 8)
            ep_quantize8(q + i, _mm256_loadu_ps(x + i), vinv);
        if (i < n) { /* the last n % 8 through a zero-padded copy: the same rounding as the rest */
            float pad[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
            int8_t out[8];
            memcpy(pad, x + i, (size_t)(n - i) * sizeof *x);
            ep_quantize8(out, _mm256_loadu_ps(pad), vinv);
            memcpy(q + i, out, (size_t)(n - i));
        }
    }
#else
    for (i = 0; i < n; ++i) {
        const float v = x[i] * inv; /* |v| <= 127 up to rounding, which (int) truncates */
        q[i] = (int8_t)(v >= 0.0f ? (int)(v + 0.5f) : (int)(v - 0.5f));
    }
#endif
    return top / 127.0f;
}

#ifdef EP_DSP
/* Two signed 16-bit halves from bytes 0 and 2 (or 1 and 3) of a little-endian word. */
static uint32_t ep_load32(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static int32_t ep_pair(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)hi << 16) | ((uint32_t)lo & 0xFFFFu));
}

/* SXTB16 of bytes 1 and 3: GCC 12 has no intrinsic for the rotated form and does not fuse a
 * separate rotate into it (one instruction more per four multiply-adds). */
static int16x2_t ep_sxtb16_ror8(uint32_t v)
{
    int16x2_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

#define EP_LO(v) ((int16x2_t)__sxtb16((int8x4_t)(v)))
#define EP_HI(v) ep_sxtb16_ror8(v)
#endif

#ifdef EP_AVX2
/* [r0c0 r1c0 r0c1 r1c1] groups -> [r0c0 r0c1 r1c0 r1c1], then 16 int16 for _mm256_madd_epi16. */
static __m256i ep_pairs16(const int8_t *w)
{
    const __m128i order = _mm_setr_epi8(0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15);
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)w), order));
}

/* Two int16 of z (one column pair) in every 32-bit lane. */
static __m256i ep_zword(const int16_t *z)
{
    int32_t v;
    memcpy(&v, z, sizeof v);
    return _mm256_set1_epi32(v);
}

static __m256i ep_zpair(int z0, int z1)
{
    return _mm256_set1_epi32((int)(((uint32_t)z1 << 16) | ((uint32_t)z0 & 0xFFFFu)));
}
#endif

/*
 * Eight rows over column pairs (dense_i8, and bsr8x1_i8 whose blocks are stored in pairs): 16 bytes
 * per pair, rows 2k and 2k+1 as [r0c0 r1c0 r0c1 r1c1]. Z0/Z1 fetch the pair's two inputs. On a
 * Cortex-M4 with DSP that is one word load, two SXTB16 and two SMLAD per four multiply-adds.
 */
#if defined(EP_AVX2)
#define EP_PANEL8_I8(PAIRS, Z0, Z1)                                                       \
    {                                                                                     \
        __m256i a = _mm256_setzero_si256();                                               \
        for (p = 0; p < (PAIRS); ++p, w += 16)                                            \
            a = _mm256_add_epi32(a, _mm256_madd_epi16(ep_pairs16(w), ep_zpair(Z0, Z1)));  \
        _mm256_storeu_si256((__m256i *)(void *)acc, a);                                   \
    }
#elif defined(EP_DSP)
#define EP_PANEL8_I8(PAIRS, Z0, Z1)                                                       \
    {                                                                                     \
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;           \
        for (p = 0; p < (PAIRS); ++p, w += 16) {                                          \
            const int16x2_t zz = (int16x2_t)ep_pair(Z0, Z1);                              \
            const uint32_t w0 = ep_load32(w), w1 = ep_load32(w + 4);                      \
            const uint32_t w2 = ep_load32(w + 8), w3 = ep_load32(w + 12);                 \
            a0 = __smlad(EP_LO(w0), zz, a0);                                              \
            a1 = __smlad(EP_HI(w0), zz, a1);                                              \
            a2 = __smlad(EP_LO(w1), zz, a2);                                              \
            a3 = __smlad(EP_HI(w1), zz, a3);                                              \
            a4 = __smlad(EP_LO(w2), zz, a4);                                              \
            a5 = __smlad(EP_HI(w2), zz, a5);                                              \
            a6 = __smlad(EP_LO(w3), zz, a6);                                              \
            a7 = __smlad(EP_HI(w3), zz, a7);                                              \
        }                                                                                 \
        acc[0] = a0;                                                                      \
        acc[1] = a1;                                                                      \
        acc[2] = a2;                                                                      \
        acc[3] = a3;                                                                      \
        acc[4] = a4;                                                                      \
        acc[5] = a5;                                                                      \
        acc[6] = a6;                                                                      \
        acc[7] = a7;                                                                      \
    }
#else
#define EP_PANEL8_I8(PAIRS, Z0, Z1)                                                       \
    {                                                                                     \
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;           \
        for (p = 0; p < (PAIRS); ++p, w += 16) {                                          \
            const int32_t z0 = (Z0), z1 = (Z1);                                           \
            a0 += w[0] * z0 + w[2] * z1;                                                  \
            a1 += w[1] * z0 + w[3] * z1;                                                  \
            a2 += w[4] * z0 + w[6] * z1;                                                  \
            a3 += w[5] * z0 + w[7] * z1;                                                  \
            a4 += w[8] * z0 + w[10] * z1;                                                 \
            a5 += w[9] * z0 + w[11] * z1;                                                 \
            a6 += w[12] * z0 + w[14] * z1;                                                \
            a7 += w[13] * z0 + w[15] * z1;                                                \
        }                                                                                 \
        acc[0] = a0;                                                                      \
        acc[1] = a1;                                                                      \
        acc[2] = a2;                                                                      \
        acc[3] = a3;                                                                      \
        acc[4] = a4;                                                                      \
        acc[5] = a5;                                                                      \
        acc[6] = a6;                                                                      \
        acc[7] = a7;                                                                      \
    }
#endif

/* Column pairs a dense AVX2 tile takes its z pairs from a table for (wider tiles build each pair in the loop). */
#define EP_ZPAIRS 256

void ep_dense_i8(float *EP_RESTRICT y, const float *EP_RESTRICT scales, float zscale, const int8_t *EP_RESTRICT w,
                 const int8_t *EP_RESTRICT zq, int rows, int cols)
{
    const int full = cols / 2, pairs = (cols + 1) / 2;
    int r, p;
#ifdef EP_AVX2
    if (pairs <= EP_ZPAIRS) {
        /* Every panel multiplies the same z pairs: z widened to 16 bits once (a pair is then one
         * 32-bit word, broadcast straight from memory) instead of a pair built per panel. */
        int16_t zz[2 * EP_ZPAIRS];
        int c = 0; /* whole columns widened, 16 at a time */
        for (; c + 16 <= cols; c += 16)
            _mm256_storeu_si256((__m256i *)(void *)(zz + c),
                                _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(zq + c))));
        for (p = c / 2; p < pairs; ++p) { /* the rest a pair at a time: 32-bit stores, as read below */
            /* odd column count: the last pair's second weight is zero padding */
            const uint32_t hi = p < full ? (uint32_t)zq[2 * p + 1] << 16 : 0u;
            const int32_t v = (int32_t)(hi | ((uint32_t)zq[2 * p] & 0xFFFFu));
            memcpy(zz + 2 * p, &v, sizeof v);
        }
        for (r = 0; r < rows; r += 8) {
            int32_t acc[8];
            __m256i a = _mm256_setzero_si256(), b = _mm256_setzero_si256();
            for (p = 0; p + 2 <= pairs; p += 2, w += 32) {
                a = _mm256_add_epi32(a, _mm256_madd_epi16(ep_pairs16(w), ep_zword(zz + 2 * p)));
                b = _mm256_add_epi32(b, _mm256_madd_epi16(ep_pairs16(w + 16), ep_zword(zz + 2 * p + 2)));
            }
            if (p < pairs) {
                a = _mm256_add_epi32(a, _mm256_madd_epi16(ep_pairs16(w), ep_zword(zz + 2 * p)));
                w += 16;
            }
            _mm256_storeu_si256((__m256i *)(void *)acc, _mm256_add_epi32(a, b));
            ep_scatter_i32(y, scales, zscale, acc, NULL, r, ep_min(8, rows - r));
        }
        return;
    }
#endif
    for (r = 0; r < rows; r += 8) {
        int32_t acc[8];
        EP_PANEL8_I8(full, zq[2 * p], zq[2 * p + 1])
        if (pairs > full) { /* odd column count: the last pair's second column is zero padding */
            int i;
            for (i = 0; i < 8; i += 2) {
                acc[i] += w[2 * i] * zq[cols - 1];
                acc[i + 1] += w[2 * i + 1] * zq[cols - 1];
            }
            w += 16;
        }
        ep_scatter_i32(y, scales, zscale, acc, NULL, r, ep_min(8, rows - r));
    }
}

void ep_bsr8x1_i8(float *EP_RESTRICT y, const float *EP_RESTRICT scales, float zscale,
                  const int8_t *EP_RESTRICT values, const uint8_t *EP_RESTRICT cols,
                  const uint16_t *EP_RESTRICT blocks, const int8_t *EP_RESTRICT zq, int rows)
{
    /* blocks[b] is even: an odd count is padded with a zero block when the model is generated. */
    const int8_t *w = values;
    int b, p;
    for (b = 0; b * 8 < rows; ++b) {
        const int nb = (int)blocks[b];
        int32_t acc[8];
        EP_PANEL8_I8(nb / 2, zq[cols[2 * p]], zq[cols[2 * p + 1]])
        ep_scatter_i32(y, scales, zscale, acc, NULL, b * 8, ep_min(8, rows - b * 8));
        cols += nb;
    }
}

void ep_bsr4x1_i8(float *EP_RESTRICT y, const float *EP_RESTRICT scales, float zscale,
                  const int8_t *EP_RESTRICT values, const uint8_t *EP_RESTRICT cols,
                  const uint16_t *EP_RESTRICT blocks, const int8_t *EP_RESTRICT zq, int rows)
{
    /* Blocks in pairs as for bsr8x1_i8, 8 bytes per pair: [r0b0 r1b0 r0b1 r1b1 r2b0 r3b0 r2b1 r3b1]. */
    int b, p;
    for (b = 0; b * 4 < rows; ++b) {
        const int nb = (int)blocks[b];
        int32_t acc[4];
#ifdef EP_DSP
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (p = 0; p < nb / 2; ++p, values += 8) {
            const int16x2_t zz = (int16x2_t)ep_pair(zq[cols[2 * p]], zq[cols[2 * p + 1]]);
            const uint32_t w0 = ep_load32(values), w1 = ep_load32(values + 4);
            a0 = __smlad(EP_LO(w0), zz, a0);
            a1 = __smlad(EP_HI(w0), zz, a1);
            a2 = __smlad(EP_LO(w1), zz, a2);
            a3 = __smlad(EP_HI(w1), zz, a3);
        }
#elif defined(EP_AVX2)
        /* A pair's 8 bytes reordered to [r0b0 r0b1 r1b0 r1b1 ...], widened to 16 bits: one
         * multiply-add of pairs (pmaddwd) against [z0 z1] gives the 4 rows' sums, exact in int32. */
        int32_t a0, a1, a2, a3;
        const __m128i order = _mm_setr_epi8(0, 2, 1, 3, 4, 6, 5, 7, -1, -1, -1, -1, -1, -1, -1, -1);
        __m128i sum = _mm_setzero_si128();
        for (p = 0; p < nb / 2; ++p, values += 8) {
            const __m128i raw = _mm_loadl_epi64((const __m128i *)(const void *)values);
            const __m128i w = _mm_cvtepi8_epi16(_mm_shuffle_epi8(raw, order));
            const __m128i z0 = _mm_set1_epi16(zq[cols[2 * p]]), z1 = _mm_set1_epi16(zq[cols[2 * p + 1]]);
            const __m128i zz = _mm_unpacklo_epi16(z0, z1);
            sum = _mm_add_epi32(sum, _mm_madd_epi16(w, zz));
        }
        a0 = _mm_cvtsi128_si32(sum);
        a1 = _mm_extract_epi32(sum, 1);
        a2 = _mm_extract_epi32(sum, 2);
        a3 = _mm_extract_epi32(sum, 3);
#else
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (p = 0; p < nb / 2; ++p, values += 8) {
            const int32_t z0 = zq[cols[2 * p]], z1 = zq[cols[2 * p + 1]];
            a0 += values[0] * z0 + values[2] * z1;
            a1 += values[1] * z0 + values[3] * z1;
            a2 += values[4] * z0 + values[6] * z1;
            a3 += values[5] * z0 + values[7] * z1;
        }
#endif
        acc[0] = a0;
        acc[1] = a1;
        acc[2] = a2;
        acc[3] = a3;
        ep_scatter_i32(y, scales, zscale, acc, NULL, b * 4, ep_min(4, rows - b * 4));
        cols += nb;
    }
}

void ep_bsr1x4_i8(float *EP_RESTRICT y, const float *EP_RESTRICT scales, float zscale,
                  const int8_t *EP_RESTRICT values, const uint8_t *EP_RESTRICT cols,
                  const uint16_t *EP_RESTRICT blocks, const int8_t *EP_RESTRICT zq, int rows)
{
    int r, k;
    for (r = 0; r < rows; ++r) {
        const int nb = (int)blocks[r];
        int32_t a = 0;
#ifdef EP_DSP
        for (k = 0; k < nb; ++k, values += 4) {
            const uint32_t v = ep_load32(values), x = ep_load32(zq + 4 * cols[k]);
            a = __smlad(EP_LO(v), EP_LO(x), a);
            a = __smlad(EP_HI(v), EP_HI(x), a);
        }
#elif defined(EP_AVX2)
        /* Two blocks (8 weights, 2 x 4 inputs) widened to 16 bits, one pmaddwd: exact int32 sums. */
        __m128i sum = _mm_setzero_si128(), w;
        for (k = 0; k + 2 <= nb; k += 2, values += 8) {
            int32_t x0, x1;
            memcpy(&x0, zq + 4 * cols[k], sizeof x0);
            memcpy(&x1, zq + 4 * cols[k + 1], sizeof x1);
            w = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(const void *)values));
            sum = _mm_add_epi32(sum, _mm_madd_epi16(w, _mm_cvtepi8_epi16(_mm_setr_epi32(x0, x1, 0, 0))));
        }
        sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0x4E));
        sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0xB1));
        a = _mm_cvtsi128_si32(sum);
        if (k < nb) {
            const int8_t *const zb = zq + 4 * cols[k];
            a += values[0] * zb[0] + values[1] * zb[1] + values[2] * zb[2] + values[3] * zb[3];
            values += 4;
        }
#else
        for (k = 0; k < nb; ++k, values += 4) {
            const int8_t *const zb = zq + 4 * cols[k];
            a += values[0] * zb[0] + values[1] * zb[1] + values[2] * zb[2] + values[3] * zb[3];
        }
#endif
        y[r] += scales[r] * zscale * (float)a;
        cols += nb;
    }
}

void ep_csr_i8(float *EP_RESTRICT y, const float *EP_RESTRICT scales, float zscale,
               const int8_t *EP_RESTRICT values, const uint8_t *EP_RESTRICT cols,
               const uint16_t *EP_RESTRICT row_nnz, const int8_t *EP_RESTRICT zq, int rows)
{
    int r, k;
    for (r = 0; r < rows; ++r) {
        const int n = (int)row_nnz[r];
        int32_t a0 = 0, a1 = 0;
        for (k = 0; k + 2 <= n; k += 2) {
            a0 += values[k] * zq[cols[k]];
            a1 += values[k + 1] * zq[cols[k + 1]];
        }
        if (k < n)
            a0 += values[k] * zq[cols[k]];
        y[r] += scales[r] * zscale * (float)(a0 + a1);
        values += n;
        cols += n;
    }
}

#ifdef EP_AVX2
/*
 * z of a slice's entries k and k+1 (cols[0..7], cols[8..15]) as the 16-bit pairs of one
 * _mm256_madd_epi16 (row i: z[cols[i]] low, z[cols[8 + i]] high), and of one entry alone (the
 * high halves then meet zero weights). With the gather instruction each 32-bit lane reads 4 bytes
 * at zq + col and keeps the first: up to 3 bytes past the last column, which the generated models'
 * z buffer has (planning.ARENA_PAD, as for 1x4 blocks); without it, scalar loads pair in integer
 * registers first (half the vector inserts).
 */
#ifdef EP_HW_GATHER
#define EP_ZBYTES(zq, idx) _mm256_i32gather_epi32((const int *)(const void *)(zq), (idx), 1)
#define EP_ZPAIRS_I8(IDX)                                                                 \
    __attribute__((always_inline)) static inline __m256i ep_zpair_##IDX(const int8_t *zq, const IDX##_t *cols)                  \
    {                                                                                     \
        const __m256i lo = _mm256_slli_epi32(EP_ZBYTES(zq, EP_IDX_##IDX(cols)), 24);      \
        const __m256i hi = _mm256_slli_epi32(EP_ZBYTES(zq, EP_IDX_##IDX(cols + 8)), 24);  \
        return _mm256_blend_epi16(_mm256_srai_epi32(lo, 24), _mm256_srai_epi32(hi, 8), 0xAA); \
    }                                                                                     \
    __attribute__((always_inline)) static inline __m256i ep_zone_##IDX(const int8_t *zq, const IDX##_t *cols)                   \
    {                                                                                     \
        return _mm256_srai_epi32(_mm256_slli_epi32(EP_ZBYTES(zq, EP_IDX_##IDX(cols)), 24), 24); \
    }
#define EP_IDX_uint8(c) _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(c)))
#define EP_IDX_uint16(c) _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(c)))
#else
#define EP_ZP(i) ((int)(((uint32_t)zq[cols[8 + (i)]] << 16) | ((uint32_t)zq[cols[i]] & 0xFFFFu)))
#define EP_ZPAIRS_I8(IDX)                                                                 \
    __attribute__((always_inline)) static inline __m256i ep_zpair_##IDX(const int8_t *zq, const IDX##_t *cols)                  \
    {                                                                                     \
        return _mm256_setr_epi32(EP_ZP(0), EP_ZP(1), EP_ZP(2), EP_ZP(3), EP_ZP(4), EP_ZP(5), EP_ZP(6), EP_ZP(7)); \
    }                                                                                     \
    __attribute__((always_inline)) static inline __m256i ep_zone_##IDX(const int8_t *zq, const IDX##_t *cols)                   \
    {                                                                                     \
        return _mm256_setr_epi32(zq[cols[0]], zq[cols[1]], zq[cols[2]], zq[cols[3]], zq[cols[4]], zq[cols[5]], \
                                 zq[cols[6]], zq[cols[7]]);                               \
    }
#endif
EP_ZPAIRS_I8(uint8)
EP_ZPAIRS_I8(uint16)

/* A slice's entries in pairs: 16 weight bytes [k: rows 0..7][k+1: rows 0..7] interleaved by row and
 * widened to 16 bits, one multiply-add of pairs against the z pairs: exact int32 row sums. */
#define EP_SLICED_I8(PERM, IDX)                                                           \
    int s, k;                                                                             \
    const int slices = (rows + EP_SLICE - 1) / EP_SLICE;                                  \
    const __m128i order = _mm_setr_epi8(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15); \
    for (s = 0; s < slices; ++s) {                                                        \
        const int w = WIDTH(s), n = ep_min(EP_SLICE, rows - s * EP_SLICE);                \
        int32_t acc[EP_SLICE];                                                            \
        __m256i a = _mm256_setzero_si256();                                               \
        for (k = 0; k + 2 <= w; k += 2, values += 2 * EP_SLICE, cols += 2 * EP_SLICE) {   \
            const __m128i raw = _mm_loadu_si128((const __m128i *)(const void *)values);   \
            const __m256i wv = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(raw, order));        \
            a = _mm256_add_epi32(a, _mm256_madd_epi16(wv, ep_zpair_##IDX(zq, cols)));     \
        }                                                                                 \
        if (k < w) {                                                                      \
            const __m128i raw = _mm_loadl_epi64((const __m128i *)(const void *)values);   \
            const __m256i wv = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(raw, _mm_setzero_si128())); \
            a = _mm256_add_epi32(a, _mm256_madd_epi16(wv, ep_zone_##IDX(zq, cols)));      \
            values += EP_SLICE;                                                           \
            cols += EP_SLICE;                                                             \
        }                                                                                 \
        _mm256_storeu_si256((__m256i *)(void *)acc, a);                                   \
        ep_scatter_i32(y, scales, zscale, acc, (PERM) ? (PERM) + s * EP_SLICE : NULL,     \
                       s * EP_SLICE, n);                                                  \
    }
#else
/* A slice in two halves of four rows: eight integer sums and their pointers would not fit the
 * registers of a 32-bit core (GCC spilled them on the Cortex-M4: 6.7 instead of ~4.5 per weight). */
#define EP_SLICED_I8(PERM, IDX)                                                                \
    int s, k, half;                                                                       \
    const int slices = (rows + EP_SLICE - 1) / EP_SLICE;                                  \
    for (s = 0; s < slices; ++s) {                                                        \
        const int w = WIDTH(s), n = ep_min(EP_SLICE, rows - s * EP_SLICE);                \
        int32_t acc[EP_SLICE];                                                            \
        for (half = 0; half < EP_SLICE; half += 4) {                                      \
            const int8_t *v = values + half;                                              \
            const COL_T *c = cols + half;                                                 \
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;                                       \
            for (k = 0; k < w; ++k, v += EP_SLICE, c += EP_SLICE) {                       \
                a0 += v[0] * zq[c[0]];                                                    \
                a1 += v[1] * zq[c[1]];                                                    \
                a2 += v[2] * zq[c[2]];                                                    \
                a3 += v[3] * zq[c[3]];                                                    \
            }                                                                             \
            acc[half] = a0;                                                               \
            acc[half + 1] = a1;                                                           \
            acc[half + 2] = a2;                                                           \
            acc[half + 3] = a3;                                                           \
        }                                                                                 \
        values += w * EP_SLICE;                                                           \
        cols += w * EP_SLICE;                                                             \
        ep_scatter_i32(y, scales, zscale, acc, (PERM) ? (PERM) + s * EP_SLICE : NULL,     \
                       s * EP_SLICE, n);                                                  \
    }

#endif

#define WIDTH(s) width
#define COL_T uint8_t
void ep_ell_i8(float *EP_RESTRICT y, const float *EP_RESTRICT scales, float zscale,
               const int8_t *EP_RESTRICT values, const uint8_t *EP_RESTRICT cols, const int8_t *EP_RESTRICT zq,
               int rows, int width)
{
    const uint16_t *const perm = NULL;
    EP_SLICED_I8(perm, uint8)
}
#undef COL_T

#define COL_T uint16_t
void ep_ell16_i8(float *EP_RESTRICT y, const float *EP_RESTRICT scales, float zscale,
                 const int8_t *EP_RESTRICT values, const uint16_t *EP_RESTRICT cols, const int8_t *EP_RESTRICT zq,
                 int rows, int width)
{
    const uint16_t *const perm = NULL;
    EP_SLICED_I8(perm, uint16)
}
#undef COL_T
#undef WIDTH

#define WIDTH(s) (int)widths[s]
#define COL_T uint8_t
void ep_sell_i8(float *EP_RESTRICT y, const float *EP_RESTRICT scales, float zscale,
                const int8_t *EP_RESTRICT values, const uint8_t *EP_RESTRICT cols,
                const uint16_t *EP_RESTRICT widths, const uint16_t *EP_RESTRICT perm, const int8_t *EP_RESTRICT zq,
                int rows)
{
    EP_SLICED_I8(perm, uint8)
}
#undef COL_T
#undef WIDTH

/* --- the other stages ------------------------------------------------------------------------- */

void ep_softmax(float *y, int n)
{
    float top = y[0], sum = 0.0f;
    int j;
    for (j = 1; j < n; ++j)
        top = y[j] > top ? y[j] : top;
    for (j = 0; j < n; ++j) {
        y[j] = expf(y[j] - top); /* <= 1: no overflow */
        sum += y[j];
    }
    for (j = 0; j < n; ++j)
        y[j] /= sum;
}

void ep_layernorm(float *EP_RESTRICT y, const float *EP_RESTRICT x, const float *EP_RESTRICT gamma,
                  const float *EP_RESTRICT beta, float eps, int n)
{
    float mean = 0.0f, var = 0.0f, inv;
    int j;
    for (j = 0; j < n; ++j)
        mean += x[j];
    mean /= (float)n;
    for (j = 0; j < n; ++j) /* two passes: no cancellation when the mean is large */
        var += (x[j] - mean) * (x[j] - mean);
    inv = 1.0f / sqrtf(var / (float)n + eps);
    for (j = 0; j < n; ++j)
        y[j] = (x[j] - mean) * inv * gamma[j] + beta[j];
}

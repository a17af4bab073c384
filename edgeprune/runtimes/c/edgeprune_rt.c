/* edgeprune runtime: see edgeprune_rt.h. */
#include "edgeprune_rt.h"

void ep_copy(float *EP_RESTRICT y, const float *EP_RESTRICT b, int n)
{
    int i;
    for (i = 0; i < n; ++i)
        y[i] = b[i];
}

void ep_dense(float *EP_RESTRICT y, const float *EP_RESTRICT w, const float *EP_RESTRICT z, int rows, int cols)
{
    int r = 0, c;
    /* Panels of 8 rows, column-major inside: each z[c] is loaded once per panel and the panel's
     * eight sums stay in registers. They are written out by hand because compilers at -O2 do not
     * always unroll a loop over them (GCC for Thumb-2 keeps an array on the stack); a vectoriser
     * still packs them into SIMD registers. */
    for (; r + 8 <= rows; r += 8) {
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
    for (; r < rows; ++r, w += cols) { /* the last rows % 8 rows, row-major */
        float acc = y[r];
        for (c = 0; c < cols; ++c)
            acc += w[c] * z[c];
        y[r] = acc;
    }
}

/* One body for every index width; the width only changes the types of cols and row_nnz. The
 * bias starts the sum (no separate pass), and four partial sums break the chain of dependent
 * additions on cores that pipeline them. */
#define EP_CSR_BODY                                                       \
    int r, k;                                                             \
    for (r = 0; r < rows; ++r) {                                          \
        const int n = (int)row_nnz[r];                                    \
        float a0 = bias[r], a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;              \
        for (k = 0; k + 4 <= n; k += 4) {                                 \
            a0 += values[k] * z[cols[k]];                                 \
            a1 += values[k + 1] * z[cols[k + 1]];                         \
            a2 += values[k + 2] * z[cols[k + 2]];                         \
            a3 += values[k + 3] * z[cols[k + 3]];                         \
        }                                                                 \
        for (; k < n; ++k)                                                \
            a0 += values[k] * z[cols[k]];                                 \
        y[r] = (a0 + a1) + (a2 + a3);                                     \
        values += n;                                                      \
        cols += n;                                                        \
    }

void ep_csr8(float *EP_RESTRICT y, const float *EP_RESTRICT bias, const float *EP_RESTRICT values,
             const uint8_t *EP_RESTRICT cols, const uint8_t *EP_RESTRICT row_nnz, const float *EP_RESTRICT z,
             int rows)
{
    EP_CSR_BODY
}

void ep_csr16(float *EP_RESTRICT y, const float *EP_RESTRICT bias, const float *EP_RESTRICT values,
              const uint16_t *EP_RESTRICT cols, const uint16_t *EP_RESTRICT row_nnz, const float *EP_RESTRICT z,
              int rows)
{
    EP_CSR_BODY
}

void ep_csr32(float *EP_RESTRICT y, const float *EP_RESTRICT bias, const float *EP_RESTRICT values,
              const uint32_t *EP_RESTRICT cols, const uint32_t *EP_RESTRICT row_nnz, const float *EP_RESTRICT z,
              int rows)
{
    EP_CSR_BODY
}


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
    int r = 0, c, i;
    /* Panels of EP_PANEL rows, column-major inside: each z[c] is loaded once per panel and the
     * panel's sums stay in registers (one SIMD register on a vector machine). */
    for (; r + EP_PANEL <= rows; r += EP_PANEL) {
        float acc[EP_PANEL];
        for (i = 0; i < EP_PANEL; ++i)
            acc[i] = y[r + i];
        for (c = 0; c < cols; ++c, w += EP_PANEL) {
            const float zc = z[c];
            for (i = 0; i < EP_PANEL; ++i)
                acc[i] += w[i] * zc;
        }
        for (i = 0; i < EP_PANEL; ++i)
            y[r + i] = acc[i];
    }
    for (; r < rows; ++r, w += cols) { /* the last rows % EP_PANEL rows, row-major */
        float acc = y[r];
        for (c = 0; c < cols; ++c)
            acc += w[c] * z[c];
        y[r] = acc;
    }
}

/* One body for every index width; the width only changes the types of cols and row_nnz. Four
 * partial sums break the chain of dependent additions. */
#define EP_CSR_BODY                                                       \
    int r, k;                                                             \
    for (r = 0; r < rows; ++r) {                                          \
        const int n = (int)row_nnz[r];                                    \
        float a0 = y[r], a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;                 \
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

void ep_csr8(float *EP_RESTRICT y, const float *EP_RESTRICT values, const uint8_t *EP_RESTRICT cols,
             const uint8_t *EP_RESTRICT row_nnz, const float *EP_RESTRICT z, int rows)
{
    EP_CSR_BODY
}

void ep_csr16(float *EP_RESTRICT y, const float *EP_RESTRICT values, const uint16_t *EP_RESTRICT cols,
              const uint16_t *EP_RESTRICT row_nnz, const float *EP_RESTRICT z, int rows)
{
    EP_CSR_BODY
}

void ep_csr32(float *EP_RESTRICT y, const float *EP_RESTRICT values, const uint32_t *EP_RESTRICT cols,
              const uint32_t *EP_RESTRICT row_nnz, const float *EP_RESTRICT z, int rows)
{
    EP_CSR_BODY
}


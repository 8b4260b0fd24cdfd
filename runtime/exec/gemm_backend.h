/* gemm_backend.h - the GEMM backend beside OpenBLAS (gemm_xsmm.c). */
#ifndef RA_GEMM_BACKEND_H
#define RA_GEMM_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

/* Row-major C = alpha op(A) op(B) + beta C on this thread through a kernel
 * chosen by cpuid, then C[i, j] = bias[j] + C[i, j] when bias is not NULL
 * (row blocks of C while they are in cache); false (C untouched) when this
 * build has no such backend or it declines the call (then OpenBLAS does
 * it). */
bool gemm_jit(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
              const float *bias);

/* C[r, j] = bias[j] + C[r, j] over rows x cols (kernels_linalg.c): the sum
 * the add node after a product computes, for both backends. */
void gemm_add_bias(float *c, int64_t ldc, int64_t rows, int64_t cols, const float *bias);

/* Makes (or finds) the kernels gemm_jit would use for this call, on this
 * thread; true when it will take the call. */
bool gemm_jit_ready(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, int64_t lda,
                    int64_t ldb, float beta, int64_t ldc);

/* The instruction set the JIT targets ("cpx", "skx", "hsw", ...), or NULL
 * when this build has none. */
const char *gemm_jit_target(void);

#endif

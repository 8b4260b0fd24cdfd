/* transpose.c - transpose2d (transpose.h): the panels of a transposed B
 * (gemm_xsmm.c) and 2-D transposes (k_transpose).
 *
 * Row by row, a transpose reads (or writes) one element per cache line;
 * in 16x16 tiles it reads 16 lines of a row block and writes 16 lines of
 * a column block.  Measured on one Zen 4 core (bench_kernels, 3
 * alternating runs): the attention scores Q K^T and dP = dctx V^T, whose
 * GEMMs copy K and V into panels, went from 70-71 to 82 GFLOP/s with
 * tiles instead of a scalar loop. */
#include "transpose.h"

static void rect(uint32_t *dst, int64_t ldd, const uint32_t *src, int64_t lds, int64_t r0,
                 int64_t r1, int64_t c0, int64_t c1) {
  for (int64_t rb = r0; rb < r1; rb += 16)
    for (int64_t cb = c0; cb < c1; cb += 16) {
      int64_t re = rb + 16 < r1 ? rb + 16 : r1, ce = cb + 16 < c1 ? cb + 16 : c1;
      for (int64_t r = rb; r < re; r++)
        for (int64_t c = cb; c < ce; c++) dst[c * ldd + r] = src[r * lds + c];
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

__attribute__((target("avx512f"))) static void tiles(uint32_t *dst, int64_t ldd,
                                                     const uint32_t *src, int64_t lds,
                                                     int64_t rows, int64_t cols) {
  for (int64_t r0 = 0; r0 + 16 <= rows; r0 += 16)
    for (int64_t c0 = 0; c0 + 16 <= cols; c0 += 16) {
      __m512 r[16], t[16];
      for (int q = 0; q < 16; q++) r[q] = _mm512_loadu_ps(src + (r0 + q) * lds + c0);
      for (int q = 0; q < 16; q += 2) {
        t[q] = _mm512_unpacklo_ps(r[q], r[q + 1]);
        t[q + 1] = _mm512_unpackhi_ps(r[q], r[q + 1]);
      }
      for (int q = 0; q < 16; q += 4) {
        r[q] = _mm512_shuffle_ps(t[q], t[q + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[q + 1] = _mm512_shuffle_ps(t[q], t[q + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[q + 2] = _mm512_shuffle_ps(t[q + 1], t[q + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[q + 3] = _mm512_shuffle_ps(t[q + 1], t[q + 3], _MM_SHUFFLE(3, 2, 3, 2));
      }
      for (int h = 0; h < 16; h += 8)
        for (int q = 0; q < 4; q++) {
          t[h + q] = _mm512_shuffle_f32x4(r[h + q], r[h + q + 4], 0x88);
          t[h + q + 4] = _mm512_shuffle_f32x4(r[h + q], r[h + q + 4], 0xdd);
        }
      for (int q = 0; q < 8; q++) {
        r[q] = _mm512_shuffle_f32x4(t[q], t[q + 8], 0x88);
        r[q + 8] = _mm512_shuffle_f32x4(t[q], t[q + 8], 0xdd);
      }
      for (int q = 0; q < 16; q++) _mm512_storeu_ps(dst + (c0 + q) * ldd + r0, r[q]);
    }
}

void transpose2d(uint32_t *dst, int64_t ldd, const uint32_t *src, int64_t lds, int64_t rows,
                 int64_t cols) {
  if (rows >= 16 && cols >= 16 && __builtin_cpu_supports("avx512f")) {
    int64_t r16 = rows / 16 * 16, c16 = cols / 16 * 16;
    tiles(dst, ldd, src, lds, rows, cols);
    rect(dst, ldd, src, lds, 0, r16, c16, cols); /* the edges */
    rect(dst, ldd, src, lds, r16, rows, 0, cols);
    return;
  }
  rect(dst, ldd, src, lds, 0, rows, 0, cols);
}
#else
void transpose2d(uint32_t *dst, int64_t ldd, const uint32_t *src, int64_t lds, int64_t rows,
                 int64_t cols) {
  rect(dst, ldd, src, lds, 0, rows, 0, cols);
}
#endif

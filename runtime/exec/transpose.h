/* transpose.h - one matrix transposed into another (4-byte elements). */
#ifndef RA_TRANSPOSE_H
#define RA_TRANSPOSE_H

#include <stdint.h>

/* dst[c * ldd + r] = src[r * lds + c] for r < rows, c < cols: 16x16 tiles
 * through AVX-512 registers where cpuid has AVX-512F, 16x16 blocks of
 * scalar moves otherwise and at the edges.  A copy: every way gives the
 * same bits. */
void transpose2d(uint32_t *dst, int64_t ldd, const uint32_t *src, int64_t lds, int64_t rows,
                 int64_t cols);

#endif

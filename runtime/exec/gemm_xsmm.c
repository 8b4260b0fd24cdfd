/* gemm_xsmm.c - single-threaded row-major SGEMM through libxsmm's JIT
 * kernels, where the build found libxsmm (RA_HAVE_LIBXSMM); OpenBLAS does
 * what this declines.
 *
 * libxsmm generates a kernel per shape (m, n, k, leading dimensions,
 * transposes, beta) for the instruction set it reads from cpuid
 * (libxsmm_cpuid: AVX-512 where cpuid reports it, as on Skylake-X and later
 * and Zen 4, AVX2 on Haswell and Zen 1-3); no environment variable chooses it (LIBXSMM_TARGET,
 * which libxsmm_init reads, is overridden by the cpuid answer).  Kernels
 * live in libxsmm's process-wide registry, made on first use of a shape;
 * its one-time set-up runs under pthread_once.  k_gemm and k_matmul make a
 * product's kernels on the calling thread (gemm_jit_ready) before the
 * pool's workers run its blocks, so that workers only look kernels up: a
 * dispatch that met another thread generating might decline, which would
 * make the backend of a block depend on timing.
 *
 * libxsmm is column-major: the row-major C[m,n] = op(A) op(B) is computed
 * as the column-major C^T = op(B)^T op(A)^T, B's buffer first.  Its JIT has
 * no transposed first operand, so a transposed B (C = op(A) B^T) is copied
 * into a row-major panel of B^T on the stack (transpose2d: 16x16 tiles),
 * a few columns of C and at most PANEL_K of k at a time; the chunks of k
 * after the first add to C.  (A large product with a 2-D B gets a B^T
 * made once per step by the compiler instead, compiler/transb.c.)
 * Each element of C is then one chain of FMAs in k order, as it is without
 * the copy, so the bits do not depend on the panels, the chunks of k, nor on
 * how k_gemm cuts the product - for most widths: libxsmm sums some columns
 * of a few widths in another order (tests/test_gemm.c,
 * jit_sums_each_element_in_k_order).  Every cut is a function of the shape
 * alone, so the bits never depend on the thread count.
 *
 * libxsmm's kernels do not pack: each column block of C re-reads the whole
 * operand that is reused (B, or A's chunk of k when B is transposed), which
 * pays while it sits in cache.  Without a transposed B, k is taken in
 * chunks of K_CHUNK as well (beta 1 after the first, the same chains of
 * FMAs), so that the rows of B a chunk re-reads stay in L2, and rows of C
 * in passes of M_ROWS where B's panel is small.  Measured on one Zen 4 core (bench/README.md),
 * libxsmm is ahead of OpenBLAS up to [1024,1024] operands and far behind
 * beyond (a [2048,2048] B: 21-30 GFLOP/s against 55; a [2048,4000] one: 19
 * against 92), so operands of more than JIT_MAX_OPERAND floats go to
 * OpenBLAS.  k_gemm's blocks of about 512 rows or columns keep the encoder's
 * products well below it.
 *
 * Declined (returns false): alpha other than 1, beta other than 0 or 1,
 * dimensions beyond int, a reused operand beyond JIT_MAX_OPERAND, or a
 * shape libxsmm does not generate.
 */
#include <limits.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "gemm_backend.h"
#include "transpose.h"

#ifdef RA_HAVE_LIBXSMM
#include <libxsmm.h>
#include <pthread.h>
#include <sched.h>

/* Floats of a transposed panel of B (64 KiB of stack), and the longest
 * stretch of k one panel holds: at 256, panels are at least 64 columns
 * wide, so each element of A the kernel broadcasts feeds four vectors of C
 * (a [512,1024] x [1024,256]^T product, a 1024-wide layer's dX: 22 GFLOP/s
 * in panels of the whole k, 16 columns wide, 106 in chunks of 256; 84 in
 * chunks of 512; one Zen 4 core). */
#define PANEL 16384
#define PANEL_K 256

/* The stretch of k of one kernel call without a transposed B.  The weight
 * gradients XᵀdY of a layer have k = batch x sequence: with k whole
 * (2048), a [2048,256]ᵀ x [2048,1024] product ran at 72-94 GFLOP/s in the
 * training step, 101-108 in chunks of 128 (64: about the same, 512:
 * between); the forward products (k up to 1024) do not differ (one Zen 4
 * core, operands cold, bench/medium.ra). */
#define K_CHUNK 128

/* The widest stretch of columns of C those chunks cover: a [512,1024] block
 * of a [2048,256] x [256,1024] product (medium's ffn) re-read C from L3 for
 * its second chunk of k; in panels of 512 columns, 10.45 -> 9.96 ms cold
 * (256: 10.0, 128: 10.1), the other encoder products unchanged. */
#define N_PANEL 512

/* Rows of C per pass over a panel's chunks of k, when the panel of B
 * (k x the panel's columns) is at most B_PANEL_FLOATS (512 KiB): the pass's
 * rows of C (256 KiB at most) and the panel then both stay in L2 from one
 * chunk of k to the next, where a block of 512 rows re-read its 1 MiB of
 * C from L3 for each; a bias is added to those rows while they are there.
 * The rows of a pass do not change any element's chain of FMAs. */
#define M_ROWS 128
#define B_PANEL_FLOATS (1 << 17)

/* Largest reused operand (floats, 4 MiB) the JIT takes. */
#define JIT_MAX_OPERAND (1 << 20)

static pthread_once_t xsmm_once = PTHREAD_ONCE_INIT;

static void xsmm_init(void) {
  libxsmm_init();
  libxsmm_set_target_archid(libxsmm_cpuid());
}

/* The column-major kernel C'[M,N] = op(A')[M,K] op(B')[K,N] (+ C' when
 * beta1), or NULL. */
static libxsmm_smmfunction xsmm_kernel(int64_t M, int64_t N, int64_t K, int64_t lda,
                                       int64_t ldb, int64_t ldc, bool trans_b, bool beta1) {
  libxsmm_blasint m = (libxsmm_blasint)M, n = (libxsmm_blasint)N, k = (libxsmm_blasint)K;
  libxsmm_blasint la = (libxsmm_blasint)lda, lb = (libxsmm_blasint)ldb,
                  lc = (libxsmm_blasint)ldc;
  float alpha = 1.0f, beta = beta1 ? 1.0f : 0.0f;
  int flags = (trans_b ? LIBXSMM_GEMM_FLAG_TRANS_B : 0) | (beta1 ? 0 : LIBXSMM_GEMM_FLAG_BETA_0);
  int prefetch = LIBXSMM_GEMM_PREFETCH_NONE;
  /* A dispatch that meets another thread working on the registry may come
   * back empty; a shape libxsmm cannot do stays empty.  Asking again a few
   * times keeps a passing contention from sending a block to OpenBLAS. */
  for (int tries = 0; tries < 64; tries++) {
    libxsmm_smmfunction f =
        libxsmm_smmdispatch(m, n, k, &la, &lb, &lc, &alpha, &beta, &flags, &prefetch);
    if (f) return f;
    sched_yield();
  }
  return NULL;
}

static bool fits_int(int64_t x) { return x >= 0 && x <= INT_MAX; }

/* The panel: bt[l * w + j] = b[j * ldb + l] for j < w, l < k (rows of B
 * as columns of a row-major [k, w] panel), moved as 4-byte words (the
 * panel is only read by libxsmm's kernel). */
static void panel(uint32_t *bt, const float *b, int64_t ldb, int64_t w, int64_t k) {
  transpose2d(bt, w, (const uint32_t *)(const void *)b, ldb, w, k);
}

/* gemm_jit, or with c NULL only the kernels it needs made (gemm_jit_ready). */
static bool jit(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
                const float *bias) {
  if (alpha != 1.0f || (beta != 0.0f && beta != 1.0f)) return false;
  if (m <= 0 || n <= 0 || k <= 0) return false;
  if (!fits_int(m) || !fits_int(n) || !fits_int(k) || !fits_int(lda) || !fits_int(ldb) ||
      !fits_int(ldc))
    return false;
  /* the operand each pass re-reads: B, or A's columns of one k chunk */
  if ((tb ? m * (k < PANEL_K ? k : PANEL_K) : n * k) > JIT_MAX_OPERAND) return false;
  pthread_once(&xsmm_once, xsmm_init);
  bool beta1 = beta == 1.0f;
  if (!tb) {
    /* C^T[n,m] = B'[n,k] op(A)'[k,m]: A transposed is the second operand's
     * transpose, which the JIT has. */
    /* columns in panels of N_PANEL, each panel's k in chunks of K_CHUNK
     * (the last one shorter): at most six kernels */
    int64_t kc = k < K_CHUNK ? k : K_CHUNK, kl = k - (k - 1) / kc * kc;
    int64_t nw = n < N_PANEL ? n : N_PANEL;
    int64_t mr = nw * k <= B_PANEL_FLOATS && m > M_ROWS ? M_ROWS : m;
    for (int64_t j0 = 0; j0 < n; j0 += nw) {
      int64_t w = n - j0 < nw ? n - j0 : nw;
      for (int64_t i0 = 0; i0 < m; i0 += mr) {
        int64_t h = m - i0 < mr ? m - i0 : mr;
        if (!c && i0 > 0 && i0 + mr < m) continue; /* the same kernels as the first */
        libxsmm_smmfunction f0 = xsmm_kernel(w, h, kc, ldb, lda, ldc, ta, beta1);
        libxsmm_smmfunction f1 = k > kc ? xsmm_kernel(w, h, kc, ldb, lda, ldc, ta, true) : f0;
        libxsmm_smmfunction fl = k > kc ? xsmm_kernel(w, h, kl, ldb, lda, ldc, ta, true) : f0;
        if (!f0 || !f1 || !fl) return false;
        if (!c) continue;
        const float *ai = ta ? a + i0 : a + i0 * lda;
        float *ci = c + i0 * ldc + j0;
        for (int64_t k0 = 0; k0 < k; k0 += kc)
          (k0 == 0 ? f0 : k0 + kc < k ? f1 : fl)(b + k0 * ldb + j0, ta ? ai + k0 * lda : ai + k0, ci);
        if (bias) gemm_add_bias(ci, ldc, h, w, bias + j0);
      }
    }
    return true;
  }
  /* B is [n,k] (row-major, ldb): k in chunks of PANEL_K, and each chunk in
   * panels of np columns of C, copied into bt as the row-major [kc, np]
   * B^T of those columns; chunks after the first add to C (beta 1), which
   * continues each element's chain of FMAs where the previous chunk left
   * it. */
  uint32_t bt[PANEL];
  /* Pass 0 makes (or finds) every kernel the panels need, so that a shape
   * libxsmm declines leaves C untouched for OpenBLAS; pass 1 computes.  One
   * panel of one chunk needs no pass 0. */
  bool one = k <= PANEL_K && n * k <= PANEL;
  for (int pass = one && c; pass < (c ? 2 : 1); pass++)
    for (int64_t k0 = 0; k0 < k; k0 += PANEL_K) {
      int64_t kc = k - k0 < PANEL_K ? k - k0 : PANEL_K;
      int64_t np = n * kc <= PANEL ? n : PANEL / kc / 16 * 16;
      const float *ak = ta ? a + k0 * lda : a + k0;
      bool mid_k = k0 > PANEL_K && k0 + PANEL_K < k; /* kernels of the chunk at PANEL_K */
      for (int64_t j0 = 0; j0 < n; j0 += np) {
        int64_t w = n - j0 < np ? n - j0 : np;
        if (!pass && (mid_k || (j0 > 0 && j0 + np < n))) continue; /* already made */
        libxsmm_smmfunction f = xsmm_kernel(w, m, kc, w, lda, ldc, ta, beta1 || k0 > 0);
        if (!f) return false;
        if (!pass) continue;
        panel(bt, b + j0 * ldb + k0, ldb, w, kc);
        f((const float *)(const void *)bt, ak, c + j0);
      }
    }
  if (c && bias) gemm_add_bias(c, ldc, m, n, bias);
  return true;
}

bool gemm_jit(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
              const float *bias) {
  return c && jit(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias);
}

bool gemm_jit_ready(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, int64_t lda,
                    int64_t ldb, float beta, int64_t ldc) {
  return jit(ta, tb, m, n, k, alpha, NULL, lda, NULL, ldb, beta, NULL, ldc, NULL);
}

const char *gemm_jit_target(void) {
  pthread_once(&xsmm_once, xsmm_init);
  return libxsmm_get_target_arch();
}

#else

bool gemm_jit(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
              const float *bias) {
  return false;
}

bool gemm_jit_ready(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, int64_t lda,
                    int64_t ldb, float beta, int64_t ldc) {
  return false;
}

const char *gemm_jit_target(void) { return NULL; }

#endif

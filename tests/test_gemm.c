/* test_gemm.c - the GEMM backend: the dispatch the build and the CPU pick is
 * the one reported (ra_gemm_backend, rac --version), libxsmm's kernels are
 * chosen by cpuid, and k_gemm (and the JIT path on its own) against a
 * double-precision product for every transpose, odd shapes (1xN, Nx1,
 * k = 1, sizes off multiples of 16), leading dimensions wider than the
 * matrix, beta 0 and 1, and the alpha the JIT declines. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../include/ra.h"
#include "../runtime/exec/gemm_backend.h"
#include "../runtime/exec/kernels.h"
#include "../runtime/exec/pool.h"
#include "testutil.h"

char *openblas_get_corename(void);

static uint64_t rng_state = 88172645463325252ull;

static float frand(void) {
  rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
  return (float)((double)(rng_state >> 40) / 16777216.0 * 2 - 1);
}

/* A row-major matrix of r x c with leading dimension ld (>= c), the
 * padding filled with NaN so that a kernel reading it shows. */
static float *matrix(int64_t r, int64_t c, int64_t ld) {
  float *x = malloc((size_t)(r * ld + 1) * sizeof *x);
  cr_assert(x);
  for (int64_t i = 0; i < r; i++)
    for (int64_t j = 0; j < ld; j++) x[i * ld + j] = j < c ? frand() : NAN;
  return x;
}

/* Checks C = alpha op(A) op(B) + beta C0 against double for one call of
 * fn (k_gemm on pool, or gemm_jit when jit). */
static void check(bool jit, Pool *pool, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                  int64_t pad, float alpha, float beta) {
  int64_t ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
  int64_t lda = ac + pad, ldb = bc + pad, ldc = n + pad;
  float *a = matrix(ar, ac, lda), *b = matrix(br, bc, ldb), *c = matrix(m, n, ldc);
  float *c0 = malloc((size_t)(m * ldc + 1) * sizeof *c0);
  cr_assert(c0);
  memcpy(c0, c, (size_t)(m * ldc) * sizeof *c);
  if (jit) {
    bool took = gemm_jit(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL);
    cr_assert(took, "gemm_jit declined [%ld,%ld,%ld] ta %d tb %d ld +%ld beta %g", (long)m,
              (long)n, (long)k, ta, tb, (long)pad, beta);
  } else {
    k_gemm(pool, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < ldc; j++) {
      float got = c[i * ldc + j];
      if (j >= n) {
        cr_assert(isnan(got), "[%ld,%ld,%ld] ta %d tb %d: padding of C written at (%ld,%ld)",
                  (long)m, (long)n, (long)k, ta, tb, (long)i, (long)j);
        continue;
      }
      double s = 0, mag = 0;
      for (int64_t l = 0; l < k; l++) {
        double x = ta ? a[l * lda + i] : a[i * lda + l];
        double y = tb ? b[j * ldb + l] : b[l * ldb + j];
        s += x * y, mag += fabs(x * y);
      }
      double want = alpha * s + (beta != 0 ? beta * (double)c0[i * ldc + j] : 0.0);
      double tol = 1e-6 * (fabs(alpha) * mag + fabs(beta * c0[i * ldc + j])) + 1e-30;
      cr_assert(fabs(got - want) <= tol,
                "%s [%ld,%ld,%ld] ta %d tb %d ld +%ld alpha %g beta %g: C(%ld,%ld) = %.9g, want "
                "%.9g",
                jit ? "gemm_jit" : "k_gemm", (long)m, (long)n, (long)k, ta, tb, (long)pad, alpha,
                beta, (long)i, (long)j, got, want);
    }
  free(a), free(b), free(c), free(c0);
}

/* m, n, k: vectors, k = 1, sizes off multiples of 16, the encoder's
 * attention products, a transposed B wider than one panel (n*k > 16384),
 * and k beyond 1024 (a transposed B then goes to OpenBLAS). */
static const int64_t shapes[][3] = {
    {1, 1, 1},    {1, 37, 5},   {37, 1, 5},    {1, 1, 300},  {5, 7, 1},    {17, 33, 1},
    {15, 17, 19}, {31, 47, 65}, {64, 64, 16},  {64, 16, 64}, {33, 129, 200}, {130, 300, 70},
    {40, 50, 1100}, {3, 20, 2050},
};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

static void all_cases(bool jit, Pool *pool) {
  for (size_t s = 0; s < NSHAPES; s++)
    for (int tr = 0; tr < 4; tr++)
      for (int pad = 0; pad <= 5; pad += 5)
        for (int bi = 0; bi < 2; bi++) {
          if (jit && (tr & 2) && shapes[s][2] > 1024) continue; /* declined: see below */
          check(jit, pool, tr & 1, tr & 2, shapes[s][0], shapes[s][1], shapes[s][2], pad, 1.0f,
                bi ? 1.0f : 0.0f);
        }
}

Test(gemm, k_gemm_matches_double_every_transpose_and_odd_shape) { all_cases(false, NULL); }

/* Large enough to be cut into blocks on the pool. */
Test(gemm, k_gemm_cut_products_match_double) {
  Pool *pool = pool_new(ra_alloc_default(), 2);
  cr_assert(pool);
  for (int tr = 0; tr < 4; tr++) {
    check(false, pool, tr & 1, tr & 2, 1100, 130, 96, 3, 1.0f, 0.0f);
    check(false, pool, tr & 1, tr & 2, 70, 1500, 40, 0, 1.0f, 1.0f);
  }
  pool_free(pool);
}

/* alpha other than 1 and beta other than 0 and 1 (OpenBLAS's, with libxsmm
 * in the build: its JIT declines them and leaves C as it was). */
Test(gemm, k_gemm_general_alpha_beta) {
  for (int tr = 0; tr < 4; tr++) {
    check(false, NULL, tr & 1, tr & 2, 19, 23, 29, 2, 0.5f, 0.0f);
    check(false, NULL, tr & 1, tr & 2, 19, 23, 29, 2, 1.0f, -2.0f);
  }
  float a[4] = {1, 2, 3, 4}, b[4] = {1, 0, 0, 1}, c[4] = {7, 7, 7, 7};
  cr_assert(!gemm_jit(false, false, 2, 2, 2, 2.0f, a, 2, b, 2, 0.0f, c, 2, NULL));
  cr_assert(!gemm_jit(false, false, 2, 2, 2, 1.0f, a, 2, b, 2, 0.5f, c, 2, NULL));
  for (int i = 0; i < 4; i++) cr_assert_eq(c[i], 7.0f, "a declined call wrote C");
}

#ifdef RA_HAVE_LIBXSMM

/* The JIT path itself takes every case above (none falls back). */
Test(gemm, jit_takes_and_matches_every_case) { all_cases(true, NULL); }

/* Each element of the JIT's product is one chain of float FMAs in k order
 * (on a CPU with FMA), so its bits do not depend on how a product is cut
 * into blocks or panels, nor on the vector width cpuid picked.  Not for
 * every width: on Zen 4, libxsmm 1.17's kernels sum some columns of some
 * widths in another order (with m 20, k 300: n 65-80, 129-144, 193-208, ...
 * without a transposed B; 65-80, 433-448, ... with one); the shapes here
 * avoid them, and the runtime cuts a product by its shape alone, so its
 * bits never depend on the threads either way. */
Test(gemm, jit_sums_each_element_in_k_order) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("fma")) cr_skip_test("no FMA on this CPU");
  /* with a transposed B: 16x16 tiles of its panel and their edges
   * (gemm_xsmm.c, panel), rows of 16 to 64 floats and longer, k in one
   * chunk and in several (PANEL_K, 256, with a transposed B, else K_CHUNK,
   * 128) with a shorter last one or a whole one, and without a transposed
   * B columns in panels of N_PANEL (512) and a narrower last one, in
   * passes of M_ROWS (128) rows where a panel of B is small enough, with a
   * shorter last pass; with a bias, added to each element after its
   * chain */
  const int64_t sh[][3] = {{64, 64, 16}, {64, 16, 64}, {33, 40, 48}, {37, 29, 131}, {512, 128, 128},
                           {24, 40, 256}, {40, 500, 1000}, {40, 50, 1100}, {3, 20, 2050},
                           {20, 1040, 300}, {300, 640, 256}};
  /* beta 1: the chain starts from C's value (and the chunks of k after the
   * first continue it) */
  for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++)
    for (int tr = 0; tr < 16; tr++) {
      bool ta = tr & 1, tb = tr & 2, beta1 = tr & 4, with_bias = tr & 8;
      int64_t m = sh[s][0], n = sh[s][1], k = sh[s][2];
      int64_t lda = ta ? m : k, ldb = tb ? k : n;
      float *a = matrix(ta ? k : m, lda, lda), *b = matrix(tb ? n : k, ldb, ldb);
      float *c = beta1 ? matrix(m, n, n) : calloc((size_t)(m * n), 4);
      float *c0 = malloc((size_t)(m * n) * 4), *bias = with_bias ? matrix(1, n, n) : NULL;
      cr_assert(c && c0);
      memcpy(c0, c, (size_t)(m * n) * 4);
      cr_assert(gemm_jit(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta1 ? 1.0f : 0.0f, c, n, bias));
      for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
          float acc = c0[i * n + j];
          for (int64_t l = 0; l < k; l++)
            acc = fmaf(ta ? a[l * lda + i] : a[i * lda + l], tb ? b[j * ldb + l] : b[l * ldb + j],
                       acc);
          if (bias) acc = bias[j] + acc;
          cr_assert(acc == c[i * n + j],
                    "[%ld,%ld,%ld] ta %d tb %d beta %d bias %d: C(%ld,%ld) %.9g, chain %.9g",
                    (long)m, (long)n, (long)k, ta, tb, beta1, with_bias, (long)i, (long)j,
                    c[i * n + j], acc);
        }
      free(a), free(b), free(c), free(c0), free(bias);
    }
}

/* Operands beyond 4 MiB, which it would re-read from memory, go to
 * OpenBLAS (B's n x k, or A's m x 256 of a chunk of k when B is
 * transposed). */
Test(gemm, jit_declines_operands_beyond_its_limit) {
  int64_t k = 1024;
  float *a = calloc((size_t)(4097 * k), 4), *b = calloc((size_t)(1025 * k), 4);
  float *c = calloc((size_t)(4097 * 1025), 4);
  cr_assert(a && b && c);
  cr_assert(gemm_jit(false, false, 2, 1024, k, 1.0f, a, k, b, 1024, 0.0f, c, 1024, NULL));
  cr_assert(!gemm_jit(false, false, 2, 1025, k, 1.0f, a, k, b, 1025, 0.0f, c, 1025, NULL));
  cr_assert(gemm_jit(false, true, 4096, 2, k, 1.0f, a, k, b, k, 0.0f, c, 2, NULL));
  cr_assert(!gemm_jit(false, true, 4097, 2, k, 1.0f, a, k, b, k, 0.0f, c, 2, NULL));
  /* a transposed B's k has no limit of its own (it is taken in chunks) */
  cr_assert(gemm_jit(false, true, 2, 2, 4099, 1.0f, a, 4099, b, 4099, 0.0f, c, 2, NULL));
  cr_assert(gemm_jit(false, false, 2, 2, 1025, 1.0f, a, 1025, b, 2, 0.0f, c, 2, NULL));
  free(a), free(b), free(c);
}

/* k_gemm's products are the JIT's: the same bits as a direct call, for
 * the encoder's shapes. */
Test(gemm, k_gemm_goes_through_the_jit) {
  const int64_t sh[][3] = {{512, 128, 128}, {64, 64, 16}, {64, 16, 64}, {128, 512, 2048}};
  for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++)
    for (int tr = 0; tr < 4; tr++) {
      bool ta = tr & 1, tb = tr & 2;
      int64_t m = sh[s][0], n = sh[s][1], k = sh[s][2];
      int64_t lda = ta ? m : k, ldb = tb ? k : n;
      float *a = matrix(ta ? k : m, lda, lda), *b = matrix(tb ? n : k, ldb, ldb);
      float *c1 = calloc((size_t)(m * n), 4), *c2 = calloc((size_t)(m * n), 4);
      cr_assert(c1 && c2);
      k_gemm(NULL, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c1, n);
      cr_assert(gemm_jit(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c2, n, NULL));
      cr_assert(memcmp(c1, c2, (size_t)(m * n) * 4) == 0,
                "[%ld,%ld,%ld] ta %d tb %d: k_gemm is not the JIT's product", (long)m, (long)n,
                (long)k, ta, tb);
      free(a), free(b), free(c1), free(c2);
    }
}

/* libxsmm's cpuid target, whatever LIBXSMM_TARGET says: an AVX-512 target
 * on a CPU with AVX-512 (F, CD, DQ, BW, VL), AVX2 ("hsw") on one with AVX2
 * and FMA only. */
Test(gemm, backend_is_libxsmm_by_cpuid) {
  setenv("LIBXSMM_TARGET", "sse3", 1); /* this test's own process */
  const char *kernels = NULL;
  cr_assert_str_eq(ra_gemm_backend(&kernels), "libxsmm");
  cr_assert_str_eq(k_gemm_backend(NULL), "libxsmm");
  cr_assert(kernels && kernels == gemm_jit_target());
  __builtin_cpu_init();
  bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
                __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vl");
  bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx512) {
    const char *ok[] = {"skx", "clx", "cpx", "spr"};
    bool found = false;
    for (size_t i = 0; i < 4; i++) found |= !strcmp(kernels, ok[i]);
    cr_assert(found, "AVX-512 CPU, libxsmm target %s", kernels);
  } else if (avx2) {
    cr_assert_str_eq(kernels, "hsw");
  }
}

#else

Test(gemm, backend_is_openblas_without_libxsmm) {
  const char *kernels = NULL;
  cr_assert_str_eq(ra_gemm_backend(&kernels), "openblas");
  cr_assert(kernels && !strcmp(kernels, openblas_get_corename()));
  cr_assert_null(gemm_jit_target());
  float a = 2, b = 3, c = 0;
  cr_assert(!gemm_jit(false, false, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1, NULL));
}

#endif

/* rac --version names the backend and kernels this build and CPU use. */
Test(gemm, rac_version_reports_the_backend) {
  const char *kernels = NULL;
  const char *lib = ra_gemm_backend(&kernels);
  char want[256];
  snprintf(want, sizeof want, "gemm: %s (%s)\n", lib, kernels);
  TuRun r = tu_sh(20, "$RAC --version");
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert(strstr(r.out, want), "rac --version printed %s, want a line %s", r.out, want);
  tu_run_free(&r);
}

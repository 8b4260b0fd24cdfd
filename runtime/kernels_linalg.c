/* kernels_linalg.c - contractions and row moves: GEMM (OpenBLAS), batched
 * and broadcast matmul, embedding gather and its adjoint scatter_add.
 *
 * MATMUL maps to as few GEMMs as it can: a left operand with leading dims
 * times a 2-D right operand is one [B*T, k] x [k, n] GEMM.  Other batched
 * products loop over the batch; when each product is small the loop runs in
 * parallel (one single-threaded GEMM per iteration), else each GEMM uses the
 * threads itself.  OpenBLAS never splits the k dimension, so results depend
 * only on the thread count.
 */
#include <cblas.h>
#include <limits.h>

#include "kernels_internal.h"

/* OpenBLAS extensions (declared here so that any cblas.h will do). */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

/* Below this m*n*k OpenBLAS runs a GEMM on one thread anyway (its
 * GEMM_MULTITHREAD_THRESHOLD * SMP_THRESHOLD_MIN); batched loops of such
 * products are better parallelised across the batch. */
#define K_SMALL_GEMM 262144

static void gemm_raw(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                     const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                     float *c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0 ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* OpenBLAS always runs single-threaded here: its own thread pool would spin
 * against our OpenMP threads (2 cores: a 4 ms stall per switch).  Large
 * products are split by rows (or columns) across OpenMP threads instead,
 * one single-threaded GEMM per block; each element is still one dot
 * product in BLAS's order, so the split does not change the results. */
static void blas_single(void) {
  if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

void k_gemm(int threads, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
            const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
            int64_t ldc) {
  blas_single();
  if (threads < 1) threads = 1;
  if (threads == 1 || m * n * k < 4 * K_SMALL_GEMM) {
    gemm_raw(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  /* split the longer side into blocks of whole multiples of 16 */
  bool by_rows = m >= n;
  int64_t len = by_rows ? m : n;
  int64_t parts = threads;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t t = 0; t < parts; t++) {
    int64_t lo = (len * t / parts) & ~(int64_t)15, hi = (len * (t + 1) / parts) & ~(int64_t)15;
    if (t == parts - 1) hi = len;
    if (hi <= lo) continue;
    if (by_rows) {
      const float *ab = ta ? a + lo : a + lo * lda;
      gemm_raw(ta, tb, hi - lo, n, k, alpha, ab, lda, b, ldb, beta, c + lo * ldc, ldc);
    } else {
      const float *bb = tb ? b + lo * ldb : b + lo;
      gemm_raw(ta, tb, m, hi - lo, k, alpha, a, lda, bb, ldb, beta, c + lo, ldc);
    }
  }
}

/* Matrix strides of an operand's batch dims within the output's batch dims
 * (NumPy broadcasting: a missing or length-1 dim repeats). */
static void batch_strides(const IrType *out, int R, const IrType *x, int64_t mat, int64_t *s) {
  int r = x->rank - 2;
  int64_t st = mat;
  for (int j = R - 1; j >= 0; j--) {
    int xj = j - (R - r);
    if (xj >= 0 && x->dim[xj] == out->dim[j] && out->dim[j] != 1) s[j] = st;
    else s[j] = 0;
    if (xj >= 0) st *= x->dim[xj];
  }
}

int k_matmul(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out, void *const *in) {
  if (k_need_f32(kc, f, n, 2)) return -1;
  const IrType *A = k_in_type(f, n, 0), *B = k_in_type(f, n, 1), *Y = &n->type;
  if (A->rank < 2 || B->rank < 2 || Y->rank < 2)
    return k_fail(kc, n, "operands must have rank 2 or more");
  bool ta = n->attr.i[0] != 0, tb = n->attr.i[1] != 0;
  int ra = A->rank, rb = B->rank, R = Y->rank - 2;
  int64_t m = ta ? A->dim[ra - 1] : A->dim[ra - 2];
  int64_t k = ta ? A->dim[ra - 2] : A->dim[ra - 1];
  int64_t kb = tb ? B->dim[rb - 1] : B->dim[rb - 2];
  int64_t nn = tb ? B->dim[rb - 2] : B->dim[rb - 1];
  if (k != kb || Y->dim[R] != m || Y->dim[R + 1] != nn)
    return k_fail(kc, n, "inner dimensions %lld and %lld do not match", (long long)k,
                  (long long)kb);
  if (m > INT_MAX / 2 || nn > INT_MAX / 2 || k > INT_MAX / 2)
    return k_fail(kc, n, "a matrix dimension exceeds the BLAS limit");
  int64_t lda = A->dim[ra - 1], ldb = B->dim[rb - 1];
  const float *a = in[0], *b = in[1];
  float *y = out;
  int64_t nb = k_prod(Y, 0, R);
  int64_t a_mats = k_prod(A, 0, ra - 2), b_mats = k_prod(B, 0, rb - 2);
  int threads = kc->threads > 0 ? kc->threads : 1;

  /* [..., m, k] x [k, n]: one GEMM over all the rows. */
  if (b_mats == 1 && !ta && a_mats == nb) {
    if (nb * m > INT_MAX / 2) return k_fail(kc, n, "too many rows for one GEMM");
    k_gemm(k_threads(kc, nb * m * nn * k) > 1 ? threads : 1, false, tb, nb * m, nn, k, 1.0f,
           a, lda, b, ldb, 0.0f, y, nn);
    return 0;
  }

  int64_t sa[IR_MAX_RANK], sb[IR_MAX_RANK];
  batch_strides(Y, R, A, m * k, sa);
  batch_strides(Y, R, B, k * nn, sb);
  int64_t mnk = m * nn * k;
  if (mnk <= K_SMALL_GEMM && nb > 1) {
    blas_single();
    int nt = k_threads(kc, nb * mnk);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int64_t i = 0; i < nb; i++) {
      int64_t oa = 0, ob = 0, r = i;
      for (int j = R - 1; j >= 0; j--) {
        int64_t ix = r % Y->dim[j];
        r /= Y->dim[j];
        oa += ix * sa[j];
        ob += ix * sb[j];
      }
      gemm_raw(ta, tb, m, nn, k, 1.0f, a + oa, lda, b + ob, ldb, 0.0f, y + i * m * nn, nn);
    }
    return 0;
  }
  int gt = k_threads(kc, mnk) > 1 ? threads : 1;
  for (int64_t i = 0; i < nb; i++) {
    int64_t oa = 0, ob = 0, r = i;
    for (int j = R - 1; j >= 0; j--) {
      int64_t ix = r % Y->dim[j];
      r /= Y->dim[j];
      oa += ix * sa[j];
      ob += ix * sb[j];
    }
    k_gemm(gt, ta, tb, m, nn, k, 1.0f, a + oa, lda, b + ob, ldb, 0.0f, y + i * m * nn, nn);
  }
  return 0;
}

/* First index outside [0, V), or -1. */
static int64_t bad_index(const int32_t *idx, int64_t N, int64_t V) {
  for (int64_t p = 0; p < N; p++)
    if (idx[p] < 0 || idx[p] >= V) return p;
  return -1;
}

int k_gather(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out, void *const *in) {
  const IrType *T = k_in_type(f, n, 0), *Ix = k_in_type(f, n, 1);
  if (T->dtype != IR_F32 || T->rank != 2) return k_fail(kc, n, "the table must be f32[V, d]");
  if (Ix->dtype != IR_I32) return k_fail(kc, n, "the indices must be i32");
  int64_t V = T->dim[0], d = T->dim[1], N = k_numel(Ix);
  const float *tab = in[0];
  const int32_t *idx = in[1];
  float *y = out;
  int64_t bad = bad_index(idx, N, V);
  if (bad >= 0)
    return k_fail(kc, n, "token id %d is outside the vocabulary of %lld (at position %lld)",
                  idx[bad], (long long)V, (long long)bad);
  int nt = k_threads(kc, N * d);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t p = 0; p < N; p++) memcpy(y + p * d, tab + (int64_t)idx[p] * d, (size_t)d * sizeof *y);
  return 0;
}

int k_scatter_add(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out,
                  void *const *in) {
  const IrType *Ix = k_in_type(f, n, 0), *D = k_in_type(f, n, 1), *Y = &n->type;
  if (Ix->dtype != IR_I32) return k_fail(kc, n, "the indices must be i32");
  if (Y->dtype != IR_F32 || D->dtype != IR_F32 || Y->rank != 2)
    return k_fail(kc, n, "the result must be f32[V, d]");
  int64_t V = Y->dim[0], d = Y->dim[1], N = k_numel(Ix);
  if (k_numel(D) != N * d)
    return k_fail(kc, n, "the gradient has %lld elements, expected %lld", (long long)k_numel(D),
                  (long long)(N * d));
  const int32_t *idx = in[0];
  const float *dy = in[1];
  float *y = out;
  int64_t bad = bad_index(idx, N, V);
  if (bad >= 0)
    return k_fail(kc, n, "token id %d is outside the vocabulary of %lld (at position %lld)",
                  idx[bad], (long long)V, (long long)bad);
  /* Each thread owns a block of columns and adds rows in position order, so
   * every sum has the same order whatever the thread count. */
  int nt = k_threads(kc, (V + N) * d);
  if (d < 16 * nt) nt = 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    int t = 0, T = 1;
#ifdef _OPENMP
    t = omp_get_thread_num();
    T = omp_get_num_threads();
#endif
    int64_t c0 = d * t / T, c1 = d * (t + 1) / T;
    for (int64_t v = 0; v < V; v++) memset(y + v * d + c0, 0, (size_t)(c1 - c0) * sizeof *y);
    for (int64_t p = 0; p < N; p++) {
      float *row = y + (int64_t)idx[p] * d;
      const float *src = dy + p * d;
#pragma omp simd
      for (int64_t c = c0; c < c1; c++) row[c] += src[c];
    }
  }
  return 0;
}

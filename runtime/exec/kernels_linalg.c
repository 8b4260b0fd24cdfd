/* kernels_linalg.c - contractions and row moves: GEMM (OpenBLAS), batched
 * and broadcast matmul, embedding gather and its adjoint scatter_add.
 *
 * MATMUL maps to as few GEMMs as it can: a left operand with leading dims
 * times a 2-D right operand is one [B*T, k] x [k, n] GEMM.  Other batched
 * products loop over the batch; when each product is small the loop runs in
 * parallel (one single-threaded GEMM per iteration), else each GEMM is
 * cut into blocks that the pool's workers share.  The blocks are a function
 * of the product's shape alone, never of the thread count, so a result has
 * the same bits on any number of threads whatever GEMM kernel OpenBLAS
 * picks (its kernels compute a block's edge tiles in their own order, so a
 * cut that moved with the thread count would move those bits too).
 *
 * Each block (and each product of a batch) goes first to libxsmm's JIT
 * kernels where the build has libxsmm (gemm_xsmm.c: kernels chosen by
 * cpuid, whatever OPENBLAS_CORETYPE says); OpenBLAS does what it declines
 * and everything in a build without it.  Which one a call takes is a
 * function of its shape, alpha and beta alone.
 */
#include <cblas.h>
#include <limits.h>

#include "gemm_backend.h"
#include "kernels_int.h"

/* OpenBLAS extensions (declared here so that any cblas.h will do). */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_corename(void);

/* Below this m*n*k OpenBLAS runs a GEMM on one thread anyway (its
 * GEMM_MULTITHREAD_THRESHOLD * SMP_THRESHOLD_MIN); batched loops of such
 * products are better parallelised across the batch. */
#define K_SMALL_GEMM 262144

/* C = alpha op(A) op(B) + beta C, then + bias on every row when bias is
 * not NULL. */
static void gemm_raw(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                     const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                     float *c, int64_t ldc, const float *bias) {
  if (m <= 0 || n <= 0) return;
  if (k > 0 && gemm_jit(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias)) return;
  if (k <= 0) {
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0 ? 0.0f : beta * c[i * ldc + j];
  } else {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
  }
  if (bias) gemm_add_bias(c, ldc, m, n, bias);
}

const char *k_gemm_backend(const char **kernels) {
  const char *t = gemm_jit_target();
  if (t) {
    if (kernels) *kernels = t;
    return "libxsmm";
  }
  if (kernels) *kernels = openblas_get_corename();
  return "openblas";
}


/* OpenBLAS always runs single-threaded here: its own thread pool would spin
 * against ours (2 cores: a 4 ms stall per switch).  Large products are cut
 * by rows (or columns) into blocks run on the pool's workers instead, one
 * single-threaded GEMM per block. */
static void blas_single(void) {
  if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

/* Blocks of a large product: about GEMM_BLOCK rows (or columns) each, cut at
 * multiples of GEMM_ALIGN, between 2 and GEMM_MAX_BLOCKS of them.  The cut
 * is a function of the shape only; it need not match any kernel's tiles.
 * Measured on one core (2048x512x128): 4 blocks cost 1% against one call,
 * 8 blocks 2.5%. */
#define GEMM_BLOCK 512
#define GEMM_ALIGN 16
#define GEMM_MAX_BLOCKS 16

typedef struct GemmArg {
  bool ta, tb, by_rows;
  int64_t m, n, k, len, parts;
  float alpha, beta;
  const float *a, *b;
  int64_t lda, ldb, ldc;
  float *c;
  const float *bias;  /* added to every row of C after the product, or NULL */
} GemmArg;

K_CLONES static void add_bias_rows(float *c, int64_t ldc, int64_t rows, int64_t cols,
                                   const float *bias) {
  for (int64_t r = 0; r < rows; r++) {
    float *cr = c + r * ldc;
#pragma omp simd
    for (int64_t j = 0; j < cols; j++) cr[j] = bias[j] + cr[j];
  }
}

/* (a plain function: a multi-versioned global's resolver would be a global
 * symbol of the library too) */
void gemm_add_bias(float *c, int64_t ldc, int64_t rows, int64_t cols, const float *bias) {
  add_bias_rows(c, ldc, rows, cols, bias);
}

/* Blocks [lo_t, hi_t) of parts. */
static void gemm_blocks(void *arg, int64_t lo_t, int64_t hi_t, int worker) {
  const GemmArg *G = arg;
  for (int64_t t = lo_t; t < hi_t; t++) {
    int64_t lo = G->len * t / G->parts / GEMM_ALIGN * GEMM_ALIGN;
    int64_t hi = G->len * (t + 1) / G->parts / GEMM_ALIGN * GEMM_ALIGN;
    if (t == G->parts - 1) hi = G->len;
    if (hi <= lo) continue;
    if (G->by_rows) {
      const float *ab = G->ta ? G->a + lo : G->a + lo * G->lda;
      gemm_raw(G->ta, G->tb, hi - lo, G->n, G->k, G->alpha, ab, G->lda, G->b, G->ldb, G->beta,
               G->c + lo * G->ldc, G->ldc, G->bias);
    } else {
      const float *bb = G->tb ? G->b + lo * G->ldb : G->b + lo;
      gemm_raw(G->ta, G->tb, G->m, hi - lo, G->k, G->alpha, G->a, G->lda, bb, G->ldb, G->beta,
               G->c + lo, G->ldc, G->bias ? G->bias + lo : NULL);
    }
  }
}

/* A product k_gemm runs whole, on one thread: too small to cut. */
static bool gemm_whole(int64_t m, int64_t n, int64_t k) {
  return m * n * k < 4 * K_SMALL_GEMM || (m >= n ? m : n) < 2 * GEMM_ALIGN;
}

void k_gemm(Pool *pool, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
            const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
            int64_t ldc) {
  k_gemm_bias(pool, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL);
}

void k_gemm_bias(Pool *pool, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                 int64_t ldc, const float *bias) {
  blas_single();
  bool by_rows = m >= n;
  int64_t len = by_rows ? m : n;
  if (gemm_whole(m, n, k)) {
    gemm_raw(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias);
    return;
  }
  int64_t parts = (len + GEMM_BLOCK - 1) / GEMM_BLOCK;
  if (parts < 2) parts = 2;
  if (parts > GEMM_MAX_BLOCKS) parts = GEMM_MAX_BLOCKS;
  GemmArg G = {ta, tb, by_rows, m, n, k, len, parts, alpha, beta, a, b, lda, ldb, ldc, c, bias};
  /* The blocks' JIT kernels are made here, before the workers look them up. */
  if (pool)
    for (int64_t t = 0; t < parts; t++) {
      int64_t lo = len * t / parts / GEMM_ALIGN * GEMM_ALIGN;
      int64_t hi = t == parts - 1 ? len : len * (t + 1) / parts / GEMM_ALIGN * GEMM_ALIGN;
      if (hi > lo)
        gemm_jit_ready(ta, tb, by_rows ? hi - lo : m, by_rows ? n : hi - lo, k, alpha, lda, ldb,
                       beta, ldc);
    }
  pool_for(pool, G.parts, 1, gemm_blocks, &G);
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

/* A batched product: the output's batch dims and each operand's strides. */
typedef struct MatArg {
  const IrType *Y;
  int R;
  bool ta, tb;
  int64_t m, nn, k;
  const float *a, *b;
  int64_t lda, ldb;
  float *y;
  int64_t sa[IR_MAX_RANK], sb[IR_MAX_RANK];
  int tri;  /* IR_MM_TRI_* of each product, or 0 */
} MatArg;

static void mat_offsets(const MatArg *M, int64_t i, int64_t *oa, int64_t *ob) {
  int64_t r = i;
  *oa = 0;
  *ob = 0;
  for (int j = M->R - 1; j >= 0; j--) {
    int64_t ix = r % M->Y->dim[j];
    r /= M->Y->dim[j];
    *oa += ix * M->sa[j];
    *ob += ix * M->sb[j];
  }
}

/* ---- triangular products (pass_causal, MATMUL's i[2]) ----
 * A product of causal attention whose length T is a multiple of 16 runs as
 * blocks of TRI_BLOCK rows (16 for short sequences or when T is not a
 * multiple of TRI_BLOCK), each a GEMM over only what it needs: with IR_MM_TRI_A
 * (a square A, zero above its diagonal) block [r0, r1) of A B takes the
 * inner dimension [0, r1), and of A^T B the inner dimension [r0, T); with
 * IR_MM_TRI_OUT (only entries j <= i are read) it takes the columns
 * [0, r1) and writes 0 to the rest of its rows (entries above the
 * diagonal inside the block keep the product's values).  What is left out are
 * products with exact zeros (or entries nobody reads), and a JIT kernel
 * sums each element in k order, so the bits are the full product's
 * (causal.c). */
#define TRI_BLOCK 32

static int64_t tri_block(int64_t T) {
  return T >= 4 * TRI_BLOCK && T % TRI_BLOCK == 0 ? TRI_BLOCK : 16;
}

/* The mode of a product, 0 when its shape does not fit it: too short to
 * gain, or a length that would leave a short last block (libxsmm makes a
 * kernel of few rows that sums in another order: measured, a 4-row block
 * of T = 100 changed bits).  Blocks of 16 and 32 rows keep the full
 * product's (kernels::causal_products_keep_the_bits). */
static int tri_mode(int64_t mode, bool ta, int64_t m, int64_t nn, int64_t k) {
  if (m % 16 || m < 2 * tri_block(m)) return 0;
  if (mode == IR_MM_TRI_A && m == k) return IR_MM_TRI_A;
  if (mode == IR_MM_TRI_OUT && m == nn) return IR_MM_TRI_OUT;
  return 0;
}

/* Row block [r0, r1) of a triangular product as one GEMM's arguments; with
 * ready set, only makes its JIT kernel. */
static void tri_gemm(int mode, bool ta, bool tb, int64_t m, int64_t nn, int64_t k,
                     const float *a, int64_t lda, const float *b, int64_t ldb, float *y,
                     int64_t ldy, bool ready) {
  int64_t bs = tri_block(m);
  for (int64_t r0 = 0; r0 < m; r0 += bs) {
    int64_t r1 = r0 + bs < m ? r0 + bs : m, rows = r1 - r0;
    const float *ab = ta ? a + r0 : a + r0 * lda, *bb = b;
    int64_t kk = k, cols = nn;
    if (mode == IR_MM_TRI_A && !ta) {
      kk = r1;
    } else if (mode == IR_MM_TRI_A) {
      ab = a + r0 * lda + r0;
      bb = tb ? b + r0 : b + r0 * ldb;
      kk = k - r0;
    } else {
      cols = r1;
    }
    if (ready) {
      gemm_jit_ready(ta, tb, rows, cols, kk, 1.0f, lda, ldb, 0.0f, ldy);
      continue;
    }
    gemm_raw(ta, tb, rows, cols, kk, 1.0f, ab, lda, bb, ldb, 0.0f, y + r0 * ldy, ldy, NULL);
    if (cols < nn)
      for (int64_t r = r0; r < r1; r++)
        memset(y + r * ldy + cols, 0, (size_t)(nn - cols) * sizeof *y);
  }
}

/* Products [lo, hi) of a batch, one single-threaded GEMM each (or the
 * blocks of a triangular one). */
static void mat_batch(void *arg, int64_t lo, int64_t hi, int worker) {
  const MatArg *M = arg;
  for (int64_t i = lo; i < hi; i++) {
    int64_t oa, ob;
    mat_offsets(M, i, &oa, &ob);
    if (M->tri)
      tri_gemm(M->tri, M->ta, M->tb, M->m, M->nn, M->k, M->a + oa, M->lda, M->b + ob, M->ldb,
               M->y + i * M->m * M->nn, M->nn, false);
    else
      gemm_raw(M->ta, M->tb, M->m, M->nn, M->k, 1.0f, M->a + oa, M->lda, M->b + ob, M->ldb,
               0.0f, M->y + i * M->m * M->nn, M->nn, NULL);
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

  int tri = tri_mode(n->attr.i[2], ta, m, nn, k);

  /* [..., m, k] x [k, n]: one GEMM over all the rows. */
  const float *bias = n->nin > 2 ? in[2] : NULL;
  if (b_mats == 1 && !ta && a_mats == nb && !tri) {
    if (nb * m > INT_MAX / 2) return k_fail(kc, n, "too many rows for one GEMM");
    k_gemm_bias(k_threads(kc, nb * m * nn * k) > 1 ? kc->pool : NULL, false, tb, nb * m, nn, k,
                1.0f, a, lda, b, ldb, 0.0f, y, nn, bias);
    return 0;
  }
  if (bias) { /* pass_bias makes only the product above; any other adds after */
    IrNode plain = *n;
    plain.nin = 2;
    if (k_matmul(kc, f, &plain, out, in)) return -1;
    gemm_add_bias(y, nn, nb * m, nn, bias);
    return 0;
  }

  MatArg M = {Y, R, ta, tb, m, nn, k, a, b, lda, ldb, y, {0}, {0}, tri};
  batch_strides(Y, R, A, m * k, M.sa);
  batch_strides(Y, R, B, k * nn, M.sb);
  int64_t mnk = m * nn * k;
  /* products k_gemm would run whole, and triangular ones whatever their
   * size (a single one on several threads runs whole, below, cut by
   * k_gemm): the batch shared out, each product as k_gemm computes it */
  if ((gemm_whole(m, nn, k) || tri) && (nb > 1 || (tri && k_threads(kc, mnk) == 1))) {
    blas_single();
    /* the kernels before the workers */
    if (tri) tri_gemm(tri, ta, tb, m, nn, k, NULL, lda, NULL, ldb, NULL, nn, true);
    else gemm_jit_ready(ta, tb, m, nn, k, 1.0f, lda, ldb, 0.0f, nn);
    k_par(kc, k_threads(kc, nb * mnk), nb, mat_batch, &M);
    return 0;
  }
  Pool *gp = k_threads(kc, mnk) > 1 ? kc->pool : NULL;
  for (int64_t i = 0; i < nb; i++) {
    int64_t oa, ob;
    mat_offsets(&M, i, &oa, &ob);
    k_gemm(gp, ta, tb, m, nn, k, 1.0f, a + oa, lda, b + ob, ldb, 0.0f, y + i * m * nn, nn);
  }
  return 0;
}

/* First index outside [0, V), or -1. */
static int64_t bad_index(const int32_t *idx, int64_t N, int64_t V) {
  for (int64_t p = 0; p < N; p++)
    if (idx[p] < 0 || idx[p] >= V) return p;
  return -1;
}

typedef struct GatherArg {
  float *y;
  const float *tab;
  const int32_t *idx;
  int64_t d;
} GatherArg;

static void gather_rows(void *arg, int64_t lo, int64_t hi, int worker) {
  const GatherArg *G = arg;
  int64_t d = G->d;
  for (int64_t p = lo; p < hi; p++)
    memcpy(G->y + p * d, G->tab + (int64_t)G->idx[p] * d, (size_t)d * sizeof *G->y);
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
  GatherArg G = {y, tab, idx, d};
  k_par(kc, k_threads(kc, N * d), N, gather_rows, &G);
  return 0;
}

typedef struct ScatterArg {
  float *y;
  const float *dy;
  const int32_t *idx;
  int64_t V, N, d;
  int T;
} ScatterArg;

/* Column blocks [lo, hi) of T: zeroes them, then adds the rows in order. */
static void scatter_cols(void *arg, int64_t lo, int64_t hi, int worker) {
  const ScatterArg *S = arg;
  int64_t d = S->d, T = S->T;
  for (int64_t t = lo; t < hi; t++) {
    int64_t c0 = d * t / T, c1 = d * (t + 1) / T;
    for (int64_t v = 0; v < S->V; v++) memset(S->y + v * d + c0, 0, (size_t)(c1 - c0) * sizeof *S->y);
    for (int64_t p = 0; p < S->N; p++) {
      float *row = S->y + (int64_t)S->idx[p] * d;
      const float *src = S->dy + p * d;
#pragma omp simd
      for (int64_t c = c0; c < c1; c++) row[c] += src[c];
    }
  }
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
  ScatterArg S = {y, dy, idx, V, N, d, nt};
  k_par(kc, nt, nt, scatter_cols, &S);
  return 0;
}

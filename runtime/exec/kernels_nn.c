/* kernels_nn.c - row-wise and layout kernels: softmax, layernorm, the
 * cross-entropy loss, reductions and their adjoints (sum, mean, max,
 * broadcast, sum_to), causal masks, reshape, transpose, concat and slice.
 *
 * Rows are independent and run in parallel.  Sums across rows either give
 * each output element to one thread (columns), or use K_NPART partial sums
 * over a partition fixed by the length, added in order: the same input gives
 * the same bits whatever the thread count.
 */
#include <math.h>

#include "kernels_int.h"
#include "transpose.h"

/* ---- helpers ------------------------------------------------------------- */

typedef struct SumArg {
  const float *x;
  int64_t n;
  double *part;
} SumArg;

static void sum_parts(void *arg, int64_t lo, int64_t hi, int worker) {
  const SumArg *A = arg;
  for (int64_t b = lo; b < hi; b++) {
    int64_t i0 = A->n * b / K_NPART, i1 = A->n * (b + 1) / K_NPART;
    const float *x = A->x;
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = i0; i < i1; i++) s += x[i];
    A->part[b] = s;
  }
}

/* Sum of x[0..n) in double, blocked so the order is fixed by n alone. */
static double sum_fixed(const KernelCtx *kc, const float *x, int64_t n, int nt) {
  if (n < 4096) {
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++) s += x[i];
    return s;
  }
  double part[K_NPART];
  SumArg A = {x, n, part};
  k_par(kc, nt, K_NPART, sum_parts, &A);
  double s = 0;
  for (int b = 0; b < K_NPART; b++) s += part[b];
  return s;
}

/* Arguments of the row-wise loops below (each uses the fields it needs). */
typedef struct RowArg {
  float *y;
  const float *x, *d;
  const int32_t *t;
  int64_t L;
  float eps, sc;
  const IrNode *n;  /* softmax rows: the node (causal prefixes) */
} RowArg;

/* ---- softmax --------------------------------------------------------------- */

K_CLONES static void softmax_row(float *y, const float *x, int64_t L) {
  float mx = k_row_max(x, L);
  if (mx == -INFINITY) {  /* a fully masked row: zeros rather than NaN */
    for (int64_t j = 0; j < L; j++) y[j] = 0.0f;
    return;
  }
#pragma omp simd
  for (int64_t j = 0; j < L; j++) y[j] = km_exp(x[j] - mx);
  float inv = 1.0f / k_row_sum(y, L);
#pragma omp simd
  for (int64_t j = 0; j < L; j++) y[j] *= inv;
}

/* y (dy - sum(dy y)) for one row. */
K_CLONES static void softmax_grad_row(float *o, const float *y, const float *d, int64_t L) {
  float s = k_row_dot(y, d, L);
#pragma omp simd
  for (int64_t j = 0; j < L; j++) o[j] = y[j] * (d[j] - s);
}

static void softmax_rows(void *arg, int64_t lo, int64_t hi, int worker) {
  const RowArg *A = arg;
  int64_t L = A->L;
  for (int64_t r = lo; r < hi; r++)
    k_softmax_row(A->y + r * L, A->x + r * L, k_row_prefix(&A->n->attr, &A->n->type, r, L), L);
}

static void softmax_grad_rows(void *arg, int64_t lo, int64_t hi, int worker) {
  const RowArg *A = arg;
  int64_t L = A->L;
  for (int64_t r = lo; r < hi; r++)
    k_softmax_grad_row(A->y + r * L, A->x + r * L, A->d + r * L,
                       k_row_prefix(&A->n->attr, &A->n->type, r, L), L);
}

int k_softmax(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out, void *const *in) {
  if (k_need_f32(kc, f, n, 1)) return -1;
  if (n->type.rank < 1) return k_fail(kc, n, "needs rank 1 or more");
  int64_t L = n->type.dim[n->type.rank - 1], N = k_numel(&n->type);
  int64_t rows = L ? N / L : 0;
  float *y = out;
  const float *x = in[0];
  RowArg A = {.y = y, .x = x, .L = L, .n = n};
  k_par(kc, k_threads(kc, N * 8), rows, softmax_rows, &A);
  return 0;
}

int k_softmax_grad(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out,
                   void *const *in) {
  if (k_need_f32(kc, f, n, 2)) return -1;
  if (n->type.rank < 1) return k_fail(kc, n, "needs rank 1 or more");
  int64_t L = n->type.dim[n->type.rank - 1], N = k_numel(&n->type);
  int64_t rows = L ? N / L : 0;
  float *dx = out;
  const float *y = in[0], *dy = in[1];
  RowArg A = {.y = dx, .x = y, .d = dy, .L = L, .n = n};
  k_par(kc, k_threads(kc, N * 3), rows, softmax_grad_rows, &A);
  return 0;
}

/* ---- layernorm ----------------------------------------------------------- */

/* mean and 1/sqrt(var + eps) of one row (two passes, biased variance). */
K_CLONES static void row_stats(const float *x, int64_t L, float eps, float *mean, float *rstd) {
  float mu = k_row_sum(x, L) / (float)L;
  float acc[16] = {0};  /* sum of (x - mu)^2, as in k_row_sum */
  int64_t j = 0;
  for (; j + 16 <= L; j += 16)
    for (int l = 0; l < 16; l++) acc[l] += (x[j + l] - mu) * (x[j + l] - mu);
  for (int l = 0; j + l < L; l++) acc[l] += (x[j + l] - mu) * (x[j + l] - mu);
  for (int w = 8; w > 0; w /= 2)
    for (int l = 0; l < w; l++) acc[l] += acc[l + w];
  *mean = mu;
  *rstd = 1.0f / sqrtf(acc[0] / (float)L + eps);
}

/* dx of one layernorm row. */
K_CLONES static void layernorm_grad_row(float *o, const float *xr, const float *dr, int64_t L,
                                        float eps) {
  float mu, rs;
  row_stats(xr, L, eps, &mu, &rs);
  float md = k_row_sum(dr, L) / (float)L;
  float mdx = k_row_dot_c(dr, xr, mu, L) * rs / (float)L;
#pragma omp simd
  for (int64_t j = 0; j < L; j++) o[j] = rs * (dr[j] - md - (xr[j] - mu) * rs * mdx);
}

K_CLONES static void layernorm_row(float *yr, const float *xr, int64_t L, float eps) {
  float mu, rs;
  row_stats(xr, L, eps, &mu, &rs);
#pragma omp simd
  for (int64_t j = 0; j < L; j++) yr[j] = (xr[j] - mu) * rs;
}

static void layernorm_rows(void *arg, int64_t lo, int64_t hi, int worker) {
  const RowArg *A = arg;
  int64_t L = A->L;
  for (int64_t r = lo; r < hi; r++) layernorm_row(A->y + r * L, A->x + r * L, L, A->eps);
}

static void layernorm_grad_rows(void *arg, int64_t lo, int64_t hi, int worker) {
  const RowArg *A = arg;
  int64_t L = A->L;
  for (int64_t r = lo; r < hi; r++)
    layernorm_grad_row(A->y + r * L, A->x + r * L, A->d + r * L, L, A->eps);
}

int k_layernorm(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out, void *const *in) {
  if (k_need_f32(kc, f, n, 1)) return -1;
  if (n->type.rank < 1) return k_fail(kc, n, "needs rank 1 or more");
  int64_t L = n->type.dim[n->type.rank - 1], N = k_numel(&n->type);
  int64_t rows = L ? N / L : 0;
  float eps = (float)n->attr.f[0];
  float *y = out;
  const float *x = in[0];
  RowArg A = {.y = y, .x = x, .L = L, .eps = eps};
  k_par(kc, k_threads(kc, N * 4), rows, layernorm_rows, &A);
  return 0;
}

int k_layernorm_grad(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out,
                     void *const *in) {
  if (k_need_f32(kc, f, n, 2)) return -1;
  if (n->type.rank < 1) return k_fail(kc, n, "needs rank 1 or more");
  int64_t L = n->type.dim[n->type.rank - 1], N = k_numel(&n->type);
  int64_t rows = L ? N / L : 0;
  float eps = (float)n->attr.f[0];
  float *dx = out;
  const float *x = in[0], *dy = in[1];
  RowArg A = {.y = dx, .x = x, .d = dy, .L = L, .eps = eps};
  k_par(kc, k_threads(kc, N * 8), rows, layernorm_grad_rows, &A);
  return 0;
}

/* The row functions for the fused kernel (kernels_int.h): plain functions
 * over the multi-versioned ones, whose resolvers stay local. */
void k_softmax_row(float *y, const float *x, int64_t n, int64_t L) {
  softmax_row(y, x, n);
  if (n < L) memset(y + n, 0, (size_t)(L - n) * sizeof *y);
}
void k_softmax_grad_row(float *o, const float *y, const float *d, int64_t n, int64_t L) {
  softmax_grad_row(o, y, d, n);
  if (n < L) memset(o + n, 0, (size_t)(L - n) * sizeof *o);
}
void k_layernorm_row(float *y, const float *x, int64_t L, float eps) { layernorm_row(y, x, L, eps); }
void k_layernorm_grad_row(float *o, const float *x, const float *d, int64_t L, float eps) {
  layernorm_grad_row(o, x, d, L, eps);
}

/* ---- reductions along an axis -------------------------------------------- */

enum { RED_SUM, RED_MEAN, RED_MAX };

#define RED_IC 1024  /* inner elements per tile */

typedef struct RedArg {
  float *y;
  const float *x;
  KAxis a;
  int kind;
  float div;
} RedArg;

/* Rows [lo, hi) of [outer, len] -> [outer]. */
static void reduce_rows(void *arg, int64_t lo, int64_t hi, int worker) {
  const RedArg *R = arg;
  int64_t len = R->a.len;
  for (int64_t o = lo; o < hi; o++) {
    const float *xr = R->x + o * len;
    if (R->kind == RED_MAX) {
      float m = xr[0];
      for (int64_t l = 1; l < len; l++) m = xr[l] > m ? xr[l] : m;
      R->y[o] = m;
    } else {
      double s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t l = 0; l < len; l++) s += xr[l];
      R->y[o] = (float)(s / R->div);
    }
  }
}

/* Tiles [lo, hi) of [outer, len, inner] -> [outer, inner]: RED_IC inner
 * elements each, accumulated over len in order. */
static void reduce_tiles(void *arg, int64_t lo, int64_t hi, int worker) {
  const RedArg *R = arg;
  KAxis a = R->a;
  int kind = R->kind;
  float div = R->div;
  int64_t per = (a.inner + RED_IC - 1) / RED_IC;
  for (int64_t t = lo; t < hi; t++) {
    int64_t o = t / per, c0 = (t % per) * RED_IC;
    int64_t c1 = c0 + RED_IC < a.inner ? c0 + RED_IC : a.inner;
    float *yr = R->y + o * a.inner;
    const float *xo = R->x + o * a.len * a.inner;
    for (int64_t c = c0; c < c1; c++) yr[c] = xo[c];
    for (int64_t l = 1; l < a.len; l++) {
      const float *xr = xo + l * a.inner;
      if (kind == RED_MAX) {
        for (int64_t c = c0; c < c1; c++) yr[c] = xr[c] > yr[c] ? xr[c] : yr[c];
      } else {
#pragma omp simd
        for (int64_t c = c0; c < c1; c++) yr[c] += xr[c];
      }
    }
    if (kind == RED_MEAN)
      for (int64_t c = c0; c < c1; c++) yr[c] /= div;
  }
}

static int reduce_axis(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out,
                       void *const *in, int kind) {
  if (k_need_f32(kc, f, n, 1)) return -1;
  const IrType *X = k_in_type(f, n, 0);
  int64_t ax = n->attr.i[0];
  if (ax < 0 || ax >= X->rank) return k_fail(kc, n, "axis %lld out of range", (long long)ax);
  KAxis a = k_axis(X, ax);
  const float *x = in[0];
  float *y = out;
  if (kind != RED_MAX && a.len == 0) {
    memset(y, 0, (size_t)(a.outer * a.inner) * sizeof *y);
    return 0;
  }
  if (kind == RED_MAX && a.len == 0) return k_fail(kc, n, "maximum over an empty axis");
  float div = kind == RED_MEAN ? (float)a.len : 1.0f;
  int64_t N = a.outer * a.len * a.inner;
  int nt = k_threads(kc, N);
  RedArg R = {y, x, a, kind, div};
  if (a.inner == 1) {
    if (kind != RED_MAX && a.outer == 1) {
      y[0] = (float)(sum_fixed(kc, x, a.len, nt) / div);
      return 0;
    }
    k_par(kc, nt, a.outer, reduce_rows, &R);
    return 0;
  }
  /* [outer, len, inner] -> [outer, inner]: tiles of the inner dim, each
   * owned by one thread and accumulated over len in order. */
  k_par(kc, nt, a.outer * ((a.inner + RED_IC - 1) / RED_IC), reduce_tiles, &R);
  return 0;
}

int k_sum(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out, void *const *in) {
  return reduce_axis(kc, f, n, out, in, RED_SUM);
}
int k_mean(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out, void *const *in) {
  return reduce_axis(kc, f, n, out, in, RED_MEAN);
}
int k_max(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out, void *const *in) {
  return reduce_axis(kc, f, n, out, in, RED_MAX);
}

/* (x, y, dy) -> dx: dy goes to the first maximum along the axis (the same
 * comparison as the forward max). */
typedef struct MaxGradArg {
  float *dx;
  const float *x, *dy;
  KAxis a;
} MaxGradArg;

static void max_grad_rows(void *arg, int64_t lo, int64_t hi, int worker) {
  const MaxGradArg *M = arg;
  KAxis a = M->a;
  for (int64_t o = lo; o < hi; o++) {
    const float *xo = M->x + o * a.len * a.inner;
    for (int64_t c = 0; c < a.inner; c++) {
      int64_t best = 0;
      float m = xo[c];
      for (int64_t l = 1; l < a.len; l++) {
        float v = xo[l * a.inner + c];
        if (v > m) {
          m = v;
          best = l;
        }
      }
      M->dx[o * a.len * a.inner + best * a.inner + c] = M->dy[o * a.inner + c];
    }
  }
}

int k_max_grad(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out, void *const *in) {
  if (k_need_f32(kc, f, n, 3)) return -1;
  const IrType *X = k_in_type(f, n, 0);
  int64_t ax = n->attr.i[0];
  if (ax < 0 || ax >= X->rank) return k_fail(kc, n, "axis %lld out of range", (long long)ax);
  KAxis a = k_axis(X, ax);
  const float *x = in[0], *dy = in[2];
  float *dx = out;
  int64_t N = a.outer * a.len * a.inner;
  memset(dx, 0, (size_t)N * sizeof *dx);
  if (a.len == 0) return 0;
  MaxGradArg M = {dx, x, dy, a};
  k_par(kc, k_threads(kc, N), a.outer, max_grad_rows, &M);
  return 0;
}

/* Arguments of the copying loops (broadcast, concat, slice). */
typedef struct CopyArg {
  uint32_t *y;
  const uint32_t *x;
  int64_t inner, len, off, blk;
} CopyArg;

static void broadcast_rows(void *arg, int64_t lo, int64_t hi, int worker) {
  const CopyArg *C = arg;
  int64_t inner = C->inner;
  for (int64_t r = lo; r < hi; r++)
    memcpy(C->y + r * inner, C->x + (r / C->len) * inner, (size_t)inner * sizeof *C->y);
}

/* Inserts axis i[0] of length type.dim[i[0]]: y[o, l, c] = x[o, c]. */
int k_broadcast(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out, void *const *in) {
  const IrType *Y = &n->type;
  int64_t ax = n->attr.i[0];
  if (ax < 0 || ax >= Y->rank) return k_fail(kc, n, "axis %lld out of range", (long long)ax);
  KAxis a = k_axis(Y, ax);
  if (k_numel(k_in_type(f, n, 0)) != a.outer * a.inner)
    return k_fail(kc, n, "the operand does not match the result without axis %lld",
                  (long long)ax);
  const uint32_t *x = in[0];
  uint32_t *y = out;
  int64_t rows = a.outer * a.len;
  CopyArg C = {y, x, a.inner, a.len, 0, 0};
  k_par(kc, k_threads(kc, rows * a.inner), rows, broadcast_rows, &C);
  return 0;
}

typedef struct SumToArg {
  float *y;
  const float *x;
  int64_t rows, C, chunks;
} SumToArg;

/* y[c0, c1) = the column sums of [rows, C], rows added in order: SUM_CB
 * columns at a time in vector registers, over blocks of SUM_RB rows, each
 * block starting from the sums so far in y (each column's additions are
 * the same, in the same order, as one row after the other through y).
 * Measured on one Zen 4 core (bench_kernels, sum_to [2048,512] -> [512]):
 * 124 us with 64 columns down all rows, 112 so; in medium's step at 2
 * threads the [2048,1024] bias gradients 1.48 -> 1.06-1.28 ms. */
enum { SUM_RB = 128, SUM_CB = 128 };

K_CLONES static void sum_cols(float *y, const float *x, int64_t rows, int64_t C, int64_t c0,
                              int64_t c1) {
  int64_t ce = c0 + (c1 - c0) / SUM_CB * SUM_CB;
  for (int64_t r0 = 0; r0 < rows; r0 += SUM_RB) {
    int64_t r1 = r0 + SUM_RB < rows ? r0 + SUM_RB : rows, rs = r0 ? r0 : 1;
    const float *from = r0 ? y : x; /* the sums so far, or row 0 */
    for (int64_t c = c0; c < ce; c += SUM_CB) {
      KV16 s[SUM_CB / 16];
      K_LOAD16(s, from + c);
      for (int64_t r = rs; r < r1; r++) {
        KV16 v[SUM_CB / 16];
        K_LOAD16(v, x + r * C + c);
        for (int q = 0; q < SUM_CB / 16; q++) s[q] += v[q];
      }
      memcpy(y + c, s, sizeof s);
    }
    if (ce == c1) continue;
    if (!r0)
      for (int64_t j = ce; j < c1; j++) y[j] = x[j];
    for (int64_t r = rs; r < r1; r++) {
      const float *xr = x + r * C;
#pragma omp simd
      for (int64_t j = ce; j < c1; j++) y[j] += xr[j];
    }
  }
}

/* Column chunks [lo, hi) of [rows, C] -> [C]. */
static void sum_to_cols(void *arg, int64_t lo, int64_t hi, int worker) {
  const SumToArg *A = arg;
  for (int64_t t = lo; t < hi; t++)
    sum_cols(A->y, A->x, A->rows, A->C, A->C * t / A->chunks, A->C * (t + 1) / A->chunks);
}

/* Rows [lo, hi) of [O, L] -> [O] (rows = O, C = L). */
static void sum_to_rows(void *arg, int64_t lo, int64_t hi, int worker) {
  const SumToArg *A = arg;
  int64_t L = A->C;
  for (int64_t o = lo; o < hi; o++) {
    const float *xr = A->x + o * L;
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t l = 0; l < L; l++) s += xr[l];
    A->y[o] = s;
  }
}

/* Sums x down to the node's type (broadcasting run backwards). */
int k_sum_to(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out, void *const *in) {
  if (k_need_f32(kc, f, n, 1)) return -1;
  const IrType *X = k_in_type(f, n, 0), *Y = &n->type;
  KBcast p;
  k_bcast_plan(&p, X, Y, NULL);  /* p.sa: where each x element lands in y */
  const float *x = in[0];
  float *y = out;
  int64_t N = k_numel(X), M = k_numel(Y);
  int nt = k_threads(kc, N);
  int R = p.rank;
  if (R == 1) {
    if (p.sa[0] == 1) memcpy(y, x, (size_t)M * sizeof *y);
    else y[0] = (float)sum_fixed(kc, x, N, nt);
    return 0;
  }
  if (R == 2 && p.sa[0] == 0 && p.sa[1] == 1) {
    /* [rows, C] -> [C]: columns owned by threads, rows added in order */
    int64_t rows = p.dim[0], C = p.dim[1];
    const int64_t CC = 256;
    int64_t chunks = (C + CC - 1) / CC;
    if (chunks < nt && C >= 16 * nt) chunks = nt;  /* enough chunks for every thread */
    SumToArg A = {y, x, rows, C, chunks};
    k_par(kc, nt, chunks, sum_to_cols, &A);
    return 0;
  }
  if (R == 2 && p.sa[0] == 1 && p.sa[1] == 0) {
    /* [O, L] -> [O]: contiguous row sums */
    SumToArg A = {y, x, p.dim[0], p.dim[1], 0};
    k_par(kc, nt, p.dim[0], sum_to_rows, &A);
    return 0;
  }
  /* general: one pass over x in order, adding into y */
  memset(y, 0, (size_t)M * sizeof *y);
  int64_t idx[IR_MAX_RANK] = {0};
  int64_t off = 0;
  for (int64_t i = 0; i < N; i++) {
    y[off] += x[i];
    for (int j = R - 1; j >= 0; j--) {
      idx[j]++;
      off += p.sa[j];
      if (idx[j] < p.dim[j]) break;
      off -= p.sa[j] * p.dim[j];
      idx[j] = 0;
    }
  }
  return 0;
}

/* ---- masks ----------------------------------------------------------------- */

/* Rows [lo, hi) of [..., T, T]; eps carries the fill value. */
static void causal_rows(void *arg, int64_t lo, int64_t hi, int worker) {
  const RowArg *A = arg;
  int64_t T = A->L;
  float fill = A->eps;
  for (int64_t r = lo; r < hi; r++) {
    int64_t i = r % T;
    const float *xr = A->x + r * T;
    float *yr = A->y + r * T;
    for (int64_t j = 0; j <= i; j++) yr[j] = xr[j];
    for (int64_t j = i + 1; j < T; j++) yr[j] = fill;
  }
}

int k_causal_mask(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out,
                  void *const *in) {
  if (k_need_f32(kc, f, n, 1)) return -1;
  const IrType *Y = &n->type;
  if (Y->rank < 2 || Y->dim[Y->rank - 1] != Y->dim[Y->rank - 2])
    return k_fail(kc, n, "needs [..., T, T]");
  int64_t T = Y->dim[Y->rank - 1], mats = k_prod(Y, 0, Y->rank - 2);
  float fill = (float)n->attr.f[0];
  const float *x = in[0];
  float *y = out;
  int64_t rows = mats * T;
  RowArg A = {.y = y, .x = x, .L = T, .eps = fill};
  k_par(kc, k_threads(kc, rows * T), rows, causal_rows, &A);
  return 0;
}

/* ---- layout (4-byte elements: f32 and i32 alike) ------------------------ */

int k_reshape(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out, void *const *in) {
  int64_t N = k_numel(&n->type);
  if (k_numel(k_in_type(f, n, 0)) != N)
    return k_fail(kc, n, "element counts differ (%lld and %lld)",
                  (long long)k_numel(k_in_type(f, n, 0)), (long long)N);
  if (out != in[0]) memcpy(out, in[0], (size_t)N * 4);
  return 0;
}

typedef struct TransArg {
  uint32_t *y;
  const uint32_t *x;
  const IrType *Y;
  const int64_t *s;    /* x stride of each y dim */
  int q;               /* y dims [0, q) index the blocks or rows */
  int64_t inner, L, sl;
} TransArg;

static int64_t trans_offset(const TransArg *A, int64_t b) {
  int64_t off = 0, rr = b;
  for (int j = A->q - 1; j >= 0; j--) {
    off += (rr % A->Y->dim[j]) * A->s[j];
    rr /= A->Y->dim[j];
  }
  return off;
}

/* Blocks [lo, hi) of `inner` contiguous elements; the offset in x follows
 * y's index like an odometer (a division per block cost more than a short
 * block's copy). */
static void transpose_blocks(void *arg, int64_t lo, int64_t hi, int worker) {
  const TransArg *A = arg;
  int64_t inner = A->inner, idx[IR_MAX_RANK], off = 0, rr = lo;
  for (int j = A->q - 1; j >= 0; j--) {
    idx[j] = rr % A->Y->dim[j];
    rr /= A->Y->dim[j];
    off += idx[j] * A->s[j];
  }
  for (int64_t b = lo; b < hi; b++) {
    uint32_t *yb = A->y + b * inner;
    const uint32_t *xb = A->x + off;
    int64_t e = 0;
    for (; e + 16 <= inner; e += 16) memcpy(yb + e, xb + e, 64); /* inlined: heads of 16, 32 */
    if (e < inner) memcpy(yb + e, xb + e, (size_t)(inner - e) * sizeof *yb);
    for (int j = A->q - 1; j >= 0; j--) {
      off += A->s[j];
      if (++idx[j] < A->Y->dim[j]) break;
      off -= A->s[j] * A->Y->dim[j];
      idx[j] = 0;
    }
  }
}

/* Rows [lo, hi) of y's last dim, gathered with stride sl. */
static void transpose_rows(void *arg, int64_t lo, int64_t hi, int worker) {
  const TransArg *A = arg;
  int64_t L = A->L, sl = A->sl;
  for (int64_t b = lo; b < hi; b++) {
    uint32_t *yr = A->y + b * L;
    const uint32_t *xr = A->x + trans_offset(A, b);
    for (int64_t j = 0; j < L; j++) yr[j] = xr[j * sl];
  }
}

/* Blocks [lo, hi) of 16 rows of the matrices of a transpose of the last
 * two dims (R rows, C columns each). */
static void transpose_mats(void *arg, int64_t lo, int64_t hi, int worker) {
  const TransArg *A = arg;
  int64_t R = A->L, C = A->sl, per = (R + 15) / 16;
  for (int64_t t = lo; t < hi; t++) {
    int64_t b = t / per, r0 = t % per * 16, r1 = r0 + 16 < R ? r0 + 16 : R;
    transpose2d(A->y + b * R * C + r0, R, A->x + b * R * C + r0 * C, C, r1 - r0, C);
  }
}

int k_transpose(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out, void *const *in) {
  const IrType *X = k_in_type(f, n, 0), *Y = &n->type;
  int r = Y->rank;
  if (X->rank != r) return k_fail(kc, n, "rank %d and %d differ", X->rank, r);
  int64_t xs[IR_MAX_RANK], st = 1;
  for (int j = r - 1; j >= 0; j--) {
    xs[j] = st;
    st *= X->dim[j];
  }
  int64_t s[IR_MAX_RANK];  /* x stride of each y dim */
  for (int k = 0; k < r; k++) {
    int64_t p = n->attr.i[k];
    if (p < 0 || p >= r || X->dim[p] != Y->dim[k])
      return k_fail(kc, n, "bad permutation entry %lld at %d", (long long)p, k);
    s[k] = xs[p];
  }
  /* trailing dims left in place copy as one contiguous block */
  int q = r;
  int64_t inner = 1;
  while (q > 0 && n->attr.i[q - 1] == q - 1) {
    inner *= Y->dim[q - 1];
    q--;
  }
  const uint32_t *x = in[0];
  uint32_t *y = out;
  int64_t N = k_numel(Y);
  if (q == 0) {
    if (out != in[0]) memcpy(y, x, (size_t)N * sizeof *y);
    return 0;
  }
  int nt = k_threads(kc, N * 2);
  TransArg A = {y, x, Y, s, q, inner, 0, 0};
  if (inner > 1) {
    k_par(kc, nt, N / inner, transpose_blocks, &A);
    return 0;
  }
  bool last_two = r >= 2 && n->attr.i[r - 1] == r - 2 && n->attr.i[r - 2] == r - 1;
  for (int k = 0; k < r - 2 && last_two; k++) last_two = n->attr.i[k] == k;
  if (last_two) {
    /* matrices [R, C] -> [C, R], in tiles */
    A.L = X->dim[r - 2];
    A.sl = X->dim[r - 1];
    int64_t mats = A.L * A.sl > 0 ? N / (A.L * A.sl) : 0;
    k_par(kc, nt, mats * ((A.L + 15) / 16), transpose_mats, &A);
    return 0;
  }
  /* the last axis moves: rows of y's last dim gather with stride s[r-1] */
  A.L = Y->dim[r - 1];
  A.sl = s[r - 1];
  A.q = r - 1;
  k_par(kc, nt, A.L ? N / A.L : 0, transpose_rows, &A);
  return 0;
}

/* Outer rows [lo, hi) of one concat operand: blk elements at off. */
static void concat_rows(void *arg, int64_t lo, int64_t hi, int worker) {
  const CopyArg *C = arg;
  for (int64_t o = lo; o < hi; o++)
    memcpy(C->y + (o * C->len + C->off) * C->inner, C->x + o * C->blk,
           (size_t)C->blk * sizeof *C->y);
}

/* Outer rows [lo, hi) of a slice: blk elements from off. */
static void slice_rows(void *arg, int64_t lo, int64_t hi, int worker) {
  const CopyArg *C = arg;
  for (int64_t o = lo; o < hi; o++)
    memcpy(C->y + o * C->blk, C->x + (o * C->len + C->off) * C->inner,
           (size_t)C->blk * sizeof *C->y);
}

int k_concat(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out, void *const *in) {
  const IrType *Y = &n->type;
  int64_t ax = n->attr.i[0];
  if (ax < 0 || ax >= Y->rank) return k_fail(kc, n, "axis %lld out of range", (long long)ax);
  KAxis a = k_axis(Y, ax);
  uint32_t *y = out;
  int64_t off = 0;
  for (int k = 0; k < n->nin; k++) {
    const IrType *X = k_in_type(f, n, k);
    if (X->rank != Y->rank) return k_fail(kc, n, "operand %d has rank %d", k + 1, X->rank);
    int64_t len = X->dim[ax];
    if (off + len > a.len) return k_fail(kc, n, "operands are longer than the result");
    const uint32_t *x = in[k];
    int64_t blk = len * a.inner;
    CopyArg C = {y, x, a.inner, a.len, off, blk};
    k_par(kc, k_threads(kc, a.outer * blk), a.outer, concat_rows, &C);
    off += len;
  }
  if (off != a.len) return k_fail(kc, n, "operands are shorter than the result");
  return 0;
}

int k_slice(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out, void *const *in) {
  const IrType *X = k_in_type(f, n, 0), *Y = &n->type;
  int64_t ax = n->attr.i[0], from = n->attr.i[1];
  if (ax < 0 || ax >= X->rank) return k_fail(kc, n, "axis %lld out of range", (long long)ax);
  KAxis a = k_axis(X, ax);
  int64_t len = Y->dim[ax];
  if (from < 0 || from + len > a.len)
    return k_fail(kc, n, "[%lld, %lld) is outside axis %lld of length %lld", (long long)from,
                  (long long)(from + len), (long long)ax, (long long)a.len);
  const uint32_t *x = in[0];
  uint32_t *y = out;
  int64_t blk = len * a.inner;
  CopyArg C = {y, x, a.inner, a.len, from, blk};
  k_par(kc, k_threads(kc, a.outer * blk), a.outer, slice_rows, &C);
  return 0;
}

/* ---- cross entropy ------------------------------------------------------- */

/* log sum exp of a row, stable; -inf entries contribute nothing.  The
 * exponentials go through a stack buffer in chunks summed in order. */
K_CLONES static float row_lse(const float *x, int64_t K) {
  float mx = k_row_max(x, K);
  if (mx == -INFINITY) return -INFINITY;
  float t[512];
  float s = 0;
  for (int64_t j0 = 0; j0 < K; j0 += 512) {
    int64_t m = K - j0 < 512 ? K - j0 : 512;
#pragma omp simd
    for (int64_t j = 0; j < m; j++) t[j] = km_exp(x[j0 + j] - mx);
    s += k_row_sum(t, m);
  }
  return mx + logf(s);
}

static int ce_check(KernelCtx *kc, const IrFunc *f, const IrNode *n, int64_t *rows,
                    int64_t *K) {
  const IrType *X = k_in_type(f, n, 0), *T = k_in_type(f, n, 1);
  if (X->dtype != IR_F32 || X->rank < 1) return k_fail(kc, n, "logits must be f32[..., K]");
  if (T->dtype != IR_I32) return k_fail(kc, n, "targets must be i32");
  *K = X->dim[X->rank - 1];
  *rows = *K ? k_numel(X) / *K : 0;
  if (k_numel(T) != *rows)
    return k_fail(kc, n, "%lld targets for %lld rows of logits", (long long)k_numel(T),
                  (long long)*rows);
  return 0;
}

static int ce_targets(KernelCtx *kc, const IrNode *n, const int32_t *t, int64_t rows,
                      int64_t K) {
  for (int64_t r = 0; r < rows; r++)
    if (t[r] < 0 || t[r] >= K)
      return k_fail(kc, n, "target %d is outside the %lld classes (at position %lld)", t[r],
                    (long long)K, (long long)r);
  return 0;
}

typedef struct CeArg {
  const float *x;
  const int32_t *t;
  int64_t rows, K;
  double *part;
} CeArg;

/* Partial sums [lo, hi) of K_NPART over a partition of the rows fixed by
 * their number. */
static void ce_parts(void *arg, int64_t lo, int64_t hi, int worker) {
  const CeArg *A = arg;
  int64_t rows = A->rows, K = A->K;
  for (int64_t b = lo; b < hi; b++) {
    int64_t r0 = rows * b / K_NPART, r1 = rows * (b + 1) / K_NPART;
    double s = 0;
    for (int64_t r = r0; r < r1; r++) {
      const float *xr = A->x + r * K;
      s += (double)row_lse(xr, K) - (double)xr[A->t[r]];
    }
    A->part[b] = s;
  }
}

static void ce_grad_rows(void *arg, int64_t lo, int64_t hi, int worker) {
  const RowArg *A = arg;
  int64_t K = A->L;
  float sc = A->sc;
  for (int64_t r = lo; r < hi; r++) {
    const float *xr = A->x + r * K;
    float *o = A->y + r * K;
    softmax_row(o, xr, K);
#pragma omp simd
    for (int64_t j = 0; j < K; j++) o[j] *= sc;
    o[A->t[r]] -= sc;
  }
}

int k_cross_entropy(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out,
                    void *const *in) {
  int64_t rows, K;
  if (ce_check(kc, f, n, &rows, &K)) return -1;
  const float *x = in[0];
  const int32_t *t = in[1];
  if (ce_targets(kc, n, t, rows, K)) return -1;
  float *y = out;
  if (rows == 0) {
    y[0] = 0;
    return 0;
  }
  /* fixed partition of the rows: K_NPART partial sums added in order */
  double part[K_NPART];
  CeArg A = {x, t, rows, K, part};
  k_par(kc, k_threads(kc, rows * K * 4), K_NPART, ce_parts, &A);
  double s = 0;
  for (int b = 0; b < K_NPART; b++) s += part[b];
  y[0] = (float)(s / (double)rows);
  return 0;
}

int k_cross_entropy_grad(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out,
                         void *const *in) {
  int64_t rows, K;
  if (ce_check(kc, f, n, &rows, &K)) return -1;
  if (k_in_type(f, n, 2)->dtype != IR_F32 || k_numel(k_in_type(f, n, 2)) != 1)
    return k_fail(kc, n, "the loss gradient must be one f32");
  const float *x = in[0];
  const int32_t *t = in[1];
  if (ce_targets(kc, n, t, rows, K)) return -1;
  float dl = ((const float *)in[2])[0];
  float *dx = out;
  float sc = rows ? dl / (float)rows : 0.0f;
  RowArg A = {.y = dx, .x = x, .t = t, .L = K, .sc = sc};
  k_par(kc, k_threads(kc, rows * K * 4), rows, ce_grad_rows, &A);
  return 0;
}

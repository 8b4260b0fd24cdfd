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

#include "kernels_internal.h"

/* ---- helpers ------------------------------------------------------------- */

/* Sum of x[0..n) in double, blocked so the order is fixed by n alone. */
static double sum_fixed(const float *x, int64_t n, int nt) {
  if (n < 4096) {
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++) s += x[i];
    return s;
  }
  double part[K_NPART];
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int b = 0; b < K_NPART; b++) {
    int64_t i0 = n * b / K_NPART, i1 = n * (b + 1) / K_NPART;
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = i0; i < i1; i++) s += x[i];
    part[b] = s;
  }
  double s = 0;
  for (int b = 0; b < K_NPART; b++) s += part[b];
  return s;
}

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

int k_softmax(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out, void *const *in) {
  if (k_need_f32(kc, f, n, 1)) return -1;
  if (n->type.rank < 1) return k_fail(kc, n, "needs rank 1 or more");
  int64_t L = n->type.dim[n->type.rank - 1], N = k_numel(&n->type);
  int64_t rows = L ? N / L : 0;
  float *y = out;
  const float *x = in[0];
  int nt = k_threads(kc, N * 8);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t r = 0; r < rows; r++) softmax_row(y + r * L, x + r * L, L);
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
  int nt = k_threads(kc, N * 3);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t r = 0; r < rows; r++) softmax_grad_row(dx + r * L, y + r * L, dy + r * L, L);
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

int k_layernorm(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out, void *const *in) {
  if (k_need_f32(kc, f, n, 1)) return -1;
  if (n->type.rank < 1) return k_fail(kc, n, "needs rank 1 or more");
  int64_t L = n->type.dim[n->type.rank - 1], N = k_numel(&n->type);
  int64_t rows = L ? N / L : 0;
  float eps = (float)n->attr.f[0];
  float *y = out;
  const float *x = in[0];
  int nt = k_threads(kc, N * 4);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * L;
    float *yr = y + r * L;
    float mu, rs;
    row_stats(xr, L, eps, &mu, &rs);
#pragma omp simd
    for (int64_t j = 0; j < L; j++) yr[j] = (xr[j] - mu) * rs;
  }
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
  int nt = k_threads(kc, N * 8);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t r = 0; r < rows; r++) layernorm_grad_row(dx + r * L, x + r * L, dy + r * L, L, eps);
  return 0;
}

/* ---- reductions along an axis -------------------------------------------- */

enum { RED_SUM, RED_MEAN, RED_MAX };

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
  if (a.inner == 1) {
    if (kind != RED_MAX && a.outer == 1) {
      y[0] = (float)(sum_fixed(x, a.len, nt) / div);
      return 0;
    }
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int64_t o = 0; o < a.outer; o++) {
      const float *xr = x + o * a.len;
      if (kind == RED_MAX) {
        float m = xr[0];
        for (int64_t l = 1; l < a.len; l++) m = xr[l] > m ? xr[l] : m;
        y[o] = m;
      } else {
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t l = 0; l < a.len; l++) s += xr[l];
        y[o] = (float)(s / div);
      }
    }
    return 0;
  }
  /* [outer, len, inner] -> [outer, inner]: tiles of the inner dim, each
   * owned by one thread and accumulated over len in order. */
  const int64_t IC = 1024;
  int64_t per = (a.inner + IC - 1) / IC, tiles = a.outer * per;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t t = 0; t < tiles; t++) {
    int64_t o = t / per, c0 = (t % per) * IC;
    int64_t c1 = c0 + IC < a.inner ? c0 + IC : a.inner;
    float *yr = y + o * a.inner;
    const float *xo = x + o * a.len * a.inner;
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
  int nt = k_threads(kc, N);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t o = 0; o < a.outer; o++) {
    const float *xo = x + o * a.len * a.inner;
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
      dx[o * a.len * a.inner + best * a.inner + c] = dy[o * a.inner + c];
    }
  }
  return 0;
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
  int nt = k_threads(kc, rows * a.inner);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t r = 0; r < rows; r++)
    memcpy(y + r * a.inner, x + (r / a.len) * a.inner, (size_t)a.inner * sizeof *y);
  return 0;
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
    else y[0] = (float)sum_fixed(x, N, nt);
    return 0;
  }
  if (R == 2 && p.sa[0] == 0 && p.sa[1] == 1) {
    /* [rows, C] -> [C]: columns owned by threads, rows added in order */
    int64_t rows = p.dim[0], C = p.dim[1];
    const int64_t CC = 256;
    int64_t chunks = (C + CC - 1) / CC;
    if (chunks < nt && C >= 16 * nt) chunks = nt;  /* enough chunks for every thread */
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int64_t t = 0; t < chunks; t++) {
      int64_t c0 = C * t / chunks, c1 = C * (t + 1) / chunks;
      for (int64_t c = c0; c < c1; c++) y[c] = x[c];
      for (int64_t r = 1; r < rows; r++) {
        const float *xr = x + r * C;
#pragma omp simd
        for (int64_t c = c0; c < c1; c++) y[c] += xr[c];
      }
    }
    return 0;
  }
  if (R == 2 && p.sa[0] == 1 && p.sa[1] == 0) {
    /* [O, L] -> [O]: contiguous row sums */
    int64_t O = p.dim[0], L = p.dim[1];
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int64_t o = 0; o < O; o++) {
      const float *xr = x + o * L;
      float s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t l = 0; l < L; l++) s += xr[l];
      y[o] = s;
    }
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
  int nt = k_threads(kc, rows * T);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t r = 0; r < rows; r++) {
    int64_t i = r % T;
    const float *xr = x + r * T;
    float *yr = y + r * T;
    for (int64_t j = 0; j <= i; j++) yr[j] = xr[j];
    for (int64_t j = i + 1; j < T; j++) yr[j] = fill;
  }
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
  if (inner > 1) {
    int64_t blocks = N / inner;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int64_t b = 0; b < blocks; b++) {
      int64_t off = 0, rr = b;
      for (int j = q - 1; j >= 0; j--) {
        off += (rr % Y->dim[j]) * s[j];
        rr /= Y->dim[j];
      }
      memcpy(y + b * inner, x + off, (size_t)inner * sizeof *y);
    }
    return 0;
  }
  /* the last axis moves: rows of y's last dim gather with stride s[r-1] */
  int64_t L = Y->dim[r - 1], rows = L ? N / L : 0, sl = s[r - 1];
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t b = 0; b < rows; b++) {
    int64_t off = 0, rr = b;
    for (int j = r - 2; j >= 0; j--) {
      off += (rr % Y->dim[j]) * s[j];
      rr /= Y->dim[j];
    }
    uint32_t *yr = y + b * L;
    const uint32_t *xr = x + off;
    for (int64_t j = 0; j < L; j++) yr[j] = xr[j * sl];
  }
  return 0;
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
    int nt = k_threads(kc, a.outer * blk);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int64_t o = 0; o < a.outer; o++)
      memcpy(y + (o * a.len + off) * a.inner, x + o * blk, (size_t)blk * sizeof *y);
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
  int nt = k_threads(kc, a.outer * blk);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t o = 0; o < a.outer; o++)
    memcpy(y + o * blk, x + (o * a.len + from) * a.inner, (size_t)blk * sizeof *y);
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
  int nt = k_threads(kc, rows * K * 4);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int b = 0; b < K_NPART; b++) {
    int64_t r0 = rows * b / K_NPART, r1 = rows * (b + 1) / K_NPART;
    double s = 0;
    for (int64_t r = r0; r < r1; r++) {
      const float *xr = x + r * K;
      s += (double)row_lse(xr, K) - (double)xr[t[r]];
    }
    part[b] = s;
  }
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
  int nt = k_threads(kc, rows * K * 4);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * K;
    float *o = dx + r * K;
    softmax_row(o, xr, K);
#pragma omp simd
    for (int64_t j = 0; j < K; j++) o[j] *= sc;
    o[t[r]] -= sc;
  }
  return 0;
}

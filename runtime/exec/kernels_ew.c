/* kernels_ew.c - elementwise kernels: arithmetic with NumPy broadcasting,
 * activations and their gradients, dropout, native (extern) functions, and
 * the leaf ops.
 *
 * Broadcasting collapses the operands' shapes into the fewest dims (same
 * shape -> one flat loop; scalar and bias-like suffix operands -> rows of a
 * contiguous inner loop with a repeated operand), then walks tiles of the
 * innermost dim in parallel.  Every kernel here is safe in place (out may be
 * the storage of an input of the same shape), except extern_grad's array
 * form, which refuses out == dy.
 */
#include <math.h>

#include "externfn.h"
#include "kernels_int.h"
#include "rng.h"

/* ---- broadcasting plan ----------------------------------------------------- */

static void strides_for(const IrType *out, const IrType *x, int64_t *s) {
  int R = out->rank, r = x->rank;
  int64_t st = 1;
  for (int j = R - 1; j >= 0; j--) {
    int xj = j - (R - r);
    if (xj >= 0 && x->dim[xj] == out->dim[j] && out->dim[j] != 1) {
      s[j] = st;
    } else {
      s[j] = 0;
    }
    if (xj >= 0) st *= x->dim[xj];
  }
}

void k_bcast_plan(KBcast *p, const IrType *out, const IrType *a, const IrType *b) {
  int64_t sa[IR_MAX_RANK], sb[IR_MAX_RANK];
  strides_for(out, a, sa);
  if (b) strides_for(out, b, sb);
  else memset(sb, 0, sizeof sb);
  p->rank = 0;
  for (int j = 0; j < out->rank; j++) {
    if (out->dim[j] == 1) continue;
    int k = p->rank;
    if (k > 0) {
      int64_t d = out->dim[j];
      bool ma = (p->sa[k - 1] == 0 && sa[j] == 0) || (sa[j] != 0 && p->sa[k - 1] == sa[j] * d);
      bool mb = (p->sb[k - 1] == 0 && sb[j] == 0) || (sb[j] != 0 && p->sb[k - 1] == sb[j] * d);
      if (ma && mb) {
        p->dim[k - 1] *= d;
        p->sa[k - 1] = sa[j];
        p->sb[k - 1] = sb[j];
        continue;
      }
    }
    p->dim[k] = out->dim[j];
    p->sa[k] = sa[j];
    p->sb[k] = sb[j];
    p->rank++;
  }
  if (p->rank == 0) {  /* everything has one element */
    p->rank = 1;
    p->dim[0] = 1;
    p->sa[0] = 0;
    p->sb[0] = 0;
  }
}

/* ---- binary arithmetic ----------------------------------------------------- */

#define BIN_TILE 4096

#define BIN_LOOP(EXPR)                                                         \
  do {                                                                         \
    if (ia == 1 && ib == 1) {                                                  \
      _Pragma("omp simd") for (int64_t j = 0; j < len; j++) {                  \
        float x = pa[j], y = pb[j];                                            \
        po[j] = (EXPR);                                                        \
      }                                                                        \
    } else if (ia == 1) {                                                      \
      float y = pb[0];                                                         \
      _Pragma("omp simd") for (int64_t j = 0; j < len; j++) {                  \
        float x = pa[j];                                                       \
        po[j] = (EXPR);                                                        \
      }                                                                        \
    } else if (ib == 1) {                                                      \
      float x = pa[0];                                                         \
      _Pragma("omp simd") for (int64_t j = 0; j < len; j++) {                  \
        float y = pb[j];                                                       \
        po[j] = (EXPR);                                                        \
      }                                                                        \
    } else {                                                                   \
      float x = pa[0], y = pb[0];                                              \
      for (int64_t j = 0; j < len; j++) po[j] = (EXPR);                        \
    }                                                                          \
  } while (0)

static void bin_tile(int op, float *po, const float *pa, const float *pb, int64_t ia,
                     int64_t ib, int64_t len) {
  switch (op) {
#define BIN_CASE(U, l, EXPR) \
  case OP_##U:               \
    BIN_LOOP(EXPR);          \
    break;
    OPMATH_BINARY(BIN_CASE)
#undef BIN_CASE
  default:
    break;
  }
}

typedef struct BinArg {
  const KBcast *p;
  float *o;
  const float *a, *b;
  int op;
  int64_t L, per_row;
} BinArg;

/* Tiles [lo, hi) of a binary op: BIN_TILE elements of one row each. */
static void bin_tiles(void *arg, int64_t lo, int64_t hi, int worker) {
  const BinArg *A = arg;
  const KBcast *p = A->p;
  int R = p->rank, op = A->op;
  int64_t L = A->L, per_row = A->per_row;
  float *o = A->o;
  const float *a = A->a, *b = A->b;
  for (int64_t t = lo; t < hi; t++) {
    int64_t row = t / per_row, c0 = (t % per_row) * BIN_TILE;
    int64_t len = L - c0 < BIN_TILE ? L - c0 : BIN_TILE;
    int64_t oa = 0, ob = 0, rr = row;
    for (int j = R - 2; j >= 0; j--) {
      int64_t ix = rr % p->dim[j];
      rr /= p->dim[j];
      oa += ix * p->sa[j];
      ob += ix * p->sb[j];
    }
    int64_t ia = p->sa[R - 1], ib = p->sb[R - 1];
    bin_tile(op, o + row * L + c0, a + oa + c0 * ia, b + ob + c0 * ib, ia, ib, len);
  }
}

static int k_binary(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out,
                    void *const *in, int op) {
  if (k_need_f32(kc, f, n, 2)) return -1;
  KBcast p;
  k_bcast_plan(&p, &n->type, k_in_type(f, n, 0), k_in_type(f, n, 1));
  int R = p.rank;
  int64_t L = p.dim[R - 1];
  int64_t rows = 1;
  for (int j = 0; j < R - 1; j++) rows *= p.dim[j];
  BinArg A = {&p, out, in[0], in[1], op, L, (L + BIN_TILE - 1) / BIN_TILE};
  k_par(kc, k_threads(kc, rows * L), rows * A.per_row, bin_tiles, &A);
  return 0;
}

#define BIN_KERNEL(U, l, EXPR)                                                                \
  int k_##l(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out, void *const *in) { \
    return k_binary(kc, f, n, out, in, OP_##U);                                            \
  }
OPMATH_BINARY(BIN_KERNEL)

/* ---- unary maps ---------------------------------------------------------- */

/* A unary map is a span function (compiled per ISA) applied to chunks of
 * the flat tensor in parallel.  cost weighs the work of one element. */
typedef void (*SpanFn)(float *y, const float *x, const float *d, int64_t n, float s);

#define K_CHUNK 8192

typedef struct SpanArg {
  SpanFn fn;
  float *y;
  const float *x, *d;
  int64_t N;
  float s;
} SpanArg;

/* Chunks [lo, hi) of K_CHUNK elements. */
static void span_chunks(void *arg, int64_t lo, int64_t hi, int worker) {
  const SpanArg *A = arg;
  for (int64_t c = lo; c < hi; c++) {
    int64_t i0 = c * K_CHUNK, len = A->N - i0 < K_CHUNK ? A->N - i0 : K_CHUNK;
    A->fn(A->y + i0, A->x + i0, A->d ? A->d + i0 : NULL, len, A->s);
  }
}

static void run_span(KernelCtx *kc, SpanFn fn, float *y, const float *x, const float *d,
                     int64_t N, float s, int64_t cost) {
  int nt = k_threads(kc, N * cost);
  if (nt == 1) {
    fn(y, x, d, N, s);
    return;
  }
  SpanArg A = {fn, y, x, d, N, s};
  k_par(kc, nt, (N + K_CHUNK - 1) / K_CHUNK, span_chunks, &A);
}

#define UNARY_KERNEL(lname, COST, EXPR)                                                 \
  K_CLONES static void span_##lname(float *y, const float *xs, const float *ds,         \
                                    int64_t n, float s) {                               \
    _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {                               \
      float x = xs[i];                                                                  \
      y[i] = (EXPR);                                                                    \
    }                                                                                   \
  }                                                                                     \
  int k_##lname(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out,             \
                void *const *in) {                                                     \
    if (k_need_f32(kc, f, n, 1)) return -1;                                            \
    run_span(kc, span_##lname, out, in[0], NULL, k_numel(&n->type), (float)n->attr.f[0], \
             COST);                                                                    \
    return 0;                                                                          \
  }

#define UNARY_ROW(U, lname, COST, EXPR) UNARY_KERNEL(lname, COST, EXPR)
OPMATH_UNARY(UNARY_ROW)

/* (a, dy) -> dy * g(a), a flat loop over same-shape operands. */
#define GRAD_KERNEL(lname, COST, EXPR)                                                  \
  K_CLONES static void span_##lname(float *o, const float *as, const float *ds,         \
                                    int64_t n, float s) {                               \
    _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {                               \
      float a = as[i], dy = ds[i];                                                      \
      o[i] = (EXPR);                                                                    \
    }                                                                                   \
  }                                                                                     \
  int k_##lname(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out,             \
                void *const *in) {                                                     \
    if (k_need_f32(kc, f, n, 2)) return -1;                                            \
    int64_t N = k_numel(&n->type);                                                     \
    if (k_numel(k_in_type(f, n, 0)) != N || k_numel(k_in_type(f, n, 1)) != N)          \
      return k_fail(kc, n, "operands must have the result's %lld elements",            \
                    (long long)N);                                                     \
    run_span(kc, span_##lname, out, in[0], in[1], N, 0, COST);                         \
    return 0;                                                                          \
  }

#define GRAD_ROW(U, lname, COST, EXPR) GRAD_KERNEL(lname, COST, EXPR)
OPMATH_GRAD(GRAD_ROW)

/* ---- dropout ---------------------------------------------------------------
 * Element i keeps with probability 1 - p: word i % 4 of the Philox block
 * (seed, RNG_STREAM_DROPOUT + stream, step * 2^32 + i / 4), as a 24-bit
 * uniform u, keeps iff u >= p (k_philox_words, kernels_int.h; the fused
 * kernel draws the same words).  i counts from the start of the global
 * batch: a rank's share of it starts at k_dropout_offset. */

/* Full blocks [b0, b1): o[4b + k] = x[4b + k] * scale or 0. */
K_CLONES static void dropout_blocks(float *o, const float *x, int64_t b0, int64_t b1,
                                    uint64_t seed, uint64_t stream, uint64_t base, uint32_t thr,
                                    float scale) {
#pragma omp simd
  for (int64_t b = b0; b < b1; b++) {
    uint32_t w0, w1, w2, w3;
    k_philox_words(seed, stream, base + (uint64_t)b, &w0, &w1, &w2, &w3);
    float v0 = x[4 * b] * scale, v1 = x[4 * b + 1] * scale;
    float v2 = x[4 * b + 2] * scale, v3 = x[4 * b + 3] * scale;
    o[4 * b] = (w0 >> 8) >= thr ? v0 : 0.0f;
    o[4 * b + 1] = (w1 >> 8) >= thr ? v1 : 0.0f;
    o[4 * b + 2] = (w2 >> 8) >= thr ? v2 : 0.0f;
    o[4 * b + 3] = (w3 >> 8) >= thr ? v3 : 0.0f;
  }
}

#define DROP_CB 1024  /* blocks per chunk */

typedef struct DropArg {
  float *o;
  const float *x;
  int64_t full;
  uint64_t seed, stream, base;
  uint32_t thr;
  float scale;
} DropArg;

static void dropout_chunks(void *arg, int64_t lo, int64_t hi, int worker) {
  const DropArg *A = arg;
  for (int64_t c = lo; c < hi; c++) {
    int64_t b0 = c * DROP_CB, b1 = b0 + DROP_CB < A->full ? b0 + DROP_CB : A->full;
    dropout_blocks(A->o, A->x, b0, b1, A->seed, A->stream, A->base, A->thr, A->scale);
  }
}

static int dropout_apply(KernelCtx *kc, const IrFunc *f, const IrNode *n, float *o,
                         const float *x) {
  int64_t N = k_numel(&n->type);
  double p = n->attr.f[0];
  if (!(p >= 0 && p <= 1)) return k_fail(kc, n, "probability %g is not in [0, 1]", p);
  if (!kc->training || p == 0) {
    if (o != x) memcpy(o, x, (size_t)N * sizeof *o);
    return 0;
  }
  if (p >= 1) {
    memset(o, 0, (size_t)N * sizeof *o);
    return 0;
  }
  float scale = (float)(1.0 / (1.0 - p));
  uint32_t thr = (uint32_t)ceil(p * 16777216.0);  /* u24 >= thr  <=>  u >= p */
  uint64_t stream = (uint64_t)RNG_STREAM_DROPOUT + (uint64_t)n->attr.i[0];
  uint64_t base = (uint64_t)kc->step << 32;
  int64_t off = k_dropout_offset(kc, f, &n->type);
  if (off % 4) { /* a share that starts inside a block: element by element */
    for (int64_t i = 0; i < N; i++) {
      uint64_t gi = (uint64_t)(off + i);
      uint32_t w[4];
      k_philox_words(kc->seed, stream, base + gi / 4, &w[0], &w[1], &w[2], &w[3]);
      o[i] = (w[gi % 4] >> 8) >= thr ? x[i] * scale : 0.0f;
    }
    return 0;
  }
  base += (uint64_t)(off / 4);
  int64_t full = N / 4;
  DropArg A = {o, x, full, kc->seed, stream, base, thr, scale};
  k_par(kc, k_threads(kc, N * 8), (full + DROP_CB - 1) / DROP_CB, dropout_chunks, &A);
  if (N % 4) {  /* the last partial block */
    uint32_t w[4];
    k_philox_words(kc->seed, stream, base + (uint64_t)full, &w[0], &w[1], &w[2], &w[3]);
    for (int64_t i = full * 4; i < N; i++)
      o[i] = (w[i - full * 4] >> 8) >= thr ? x[i] * scale : 0.0f;
  }
  return 0;
}

int k_dropout(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out, void *const *in) {
  if (k_need_f32(kc, f, n, 1)) return -1;
  return dropout_apply(kc, f, n, out, in[0]);
}

int k_dropout_grad(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out,
                   void *const *in) {
  if (k_need_f32(kc, f, n, 1)) return -1;
  return dropout_apply(kc, f, n, out, in[0]);
}

/* ---- native functions ------------------------------------------------------ */

static const ExternFn *extern_get(KernelCtx *kc, const IrNode *n) {
  int64_t e = n->attr.i[0];
  if (e < 0 || e >= kc->nexterns || !kc->externs || !kc->externs[e]) {
    k_fail(kc, n, "native function %lld is not loaded", (long long)e);
    return NULL;
  }
  return kc->externs[e];
}

int k_extern(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out, void *const *in) {
  if (k_need_f32(kc, f, n, 1)) return -1;
  const ExternFn *ef = extern_get(kc, n);
  if (!ef) return -1;
  float *y = out;
  const float *x = in[0];
  int64_t N = k_numel(&n->type);
  const char *nm = ef->name ? ef->name : "?";
  if (ef->array_form) {
    if (!ef->afn) return k_fail(kc, n, "native function '%s' has no code", nm);
    if (N > INT32_MAX)
      return k_fail(kc, n, "'%s': %lld elements do not fit its int length", nm, (long long)N);
    if (y != x) memcpy(y, x, (size_t)N * sizeof *y);
    ef->afn(y, (int32_t)N);
    return 0;
  }
  if (!ef->fn) return k_fail(kc, n, "native function '%s' has no code", nm);
  float (*fn)(float) = ef->fn;
  for (int64_t i = 0; i < N; i++) y[i] = fn(x[i]);
  return 0;
}

int k_extern_grad(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out,
                  void *const *in) {
  if (k_need_f32(kc, f, n, 2)) return -1;
  const ExternFn *ef = extern_get(kc, n);
  if (!ef) return -1;
  float *o = out;
  const float *x = in[0], *dy = in[1];
  int64_t N = k_numel(&n->type);
  const char *nm = ef->name ? ef->name : "?";
  if (ef->array_form) {
    if (!ef->agrad) return k_fail(kc, n, "native function '%s' has no gradient", nm);
    if (N > INT32_MAX)
      return k_fail(kc, n, "'%s': %lld elements do not fit its int length", nm, (long long)N);
    if (o == dy && o != x)
      return k_fail(kc, n, "'%s': the gradient cannot be computed in place", nm);
    if (o != x) memcpy(o, x, (size_t)N * sizeof *o);
    ef->agrad(o, (int32_t)N);
    for (int64_t i = 0; i < N; i++) o[i] *= dy[i];
    return 0;
  }
  if (!ef->grad) return k_fail(kc, n, "native function '%s' has no gradient", nm);
  float (*g)(float) = ef->grad;
  for (int64_t i = 0; i < N; i++) o[i] = dy[i] * g(x[i]);
  return 0;
}

/* ---- leaves ------------------------------------------------------------------ */

int k_input(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out, void *const *in) {
  return 0;
}

int k_param(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out, void *const *in) {
  return 0;
}

int k_const(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out, void *const *in) {
  int64_t N = k_numel(&n->type);
  if (n->type.dtype == IR_I32) {
    int32_t *o = out;
    for (int64_t i = 0; i < N; i++) o[i] = n->data ? (int32_t)n->data[i] : (int32_t)n->attr.f[0];
    return 0;
  }
  float *o = out;
  if (n->data) {
    memcpy(o, n->data, (size_t)N * sizeof *o);
  } else {
    float v = (float)n->attr.f[0];
    for (int64_t i = 0; i < N; i++) o[i] = v;
  }
  return 0;
}

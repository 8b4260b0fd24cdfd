/* kernels_internal.h - helpers shared by the kernel files (kernels_*.c).
 *
 * Shapes come from the node's type and its inputs' types.  Parallel loops
 * run on the context's pool (pool_for: static chunks) when the amount of
 * work is large enough, so tiny tensors never pay for a parallel region; results
 * never depend on timing (each output element is written by one thread, and
 * sums across rows use fixed partitions combined in a fixed order).
 */
#ifndef RA_KERNELS_INTERNAL_H
#define RA_KERNELS_INTERNAL_H

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kernels.h"

/* Below this many "work units" (roughly flops) a kernel runs on one thread. */
#define K_PAR_MIN 32768

/* Fixed number of partial sums for reductions of long vectors to one value:
 * the partition depends only on the length, never on the thread count. */
#define K_NPART 64

static inline const IrType *k_in_type(const IrFunc *f, const IrNode *n, int k) {
  return &f->nodes[n->in[k]].type;
}

static inline int64_t k_numel(const IrType *t) {
  int64_t m = 1;
  for (int i = 0; i < t->rank; i++) m *= t->dim[i];
  return m;
}

/* Threads to use for a loop of this much work: the pool's size, or 1. */
static inline int k_threads(const KernelCtx *kc, int64_t work) {
  int t = pool_size(kc->pool);
  return (t > 1 && work >= K_PAR_MIN) ? t : 1;
}

/* Runs fn over [0, n): split over the pool (one static chunk per worker)
 * when nt > 1, else in one call on this thread.  A loop body becomes a
 * function of a chunk [lo, hi) and an argument struct. */
static inline void k_par(const KernelCtx *kc, int nt, int64_t n, PoolFn fn, void *arg) {
  if (n <= 0) return;
  if (nt > 1) pool_for(kc->pool, n, 1, fn, arg);
  else fn(arg, 0, n, 0);
}

/* Product of dims [lo, hi). */
static inline int64_t k_prod(const IrType *t, int lo, int hi) {
  int64_t m = 1;
  for (int i = lo; i < hi; i++) m *= t->dim[i];
  return m;
}

/* Formats "op: message" into kc->err; returns -1. */
static inline int k_fail(KernelCtx *kc, const IrNode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int k_fail(KernelCtx *kc, const IrNode *n, const char *fmt, ...) {
  va_list ap;
  int off = snprintf(kc->err, sizeof kc->err, "%s: ", ir_op_info[n->op].name);
  if (off < 0 || (size_t)off >= sizeof kc->err) off = 0;
  va_start(ap, fmt);
  vsnprintf(kc->err + off, sizeof kc->err - (size_t)off, fmt, ap);
  va_end(ap);
  return -1;
}

/* Fails unless the node and its first nf inputs are f32. */
static inline int k_need_f32(KernelCtx *kc, const IrFunc *f, const IrNode *n, int nf) {
  if (n->type.dtype != IR_F32) return k_fail(kc, n, "result must be f32");
  for (int k = 0; k < nf && k < n->nin; k++)
    if (k_in_type(f, n, k)->dtype != IR_F32)
      return k_fail(kc, n, "operand %d must be f32", k + 1);
  return 0;
}

/* A normalised reduction axis: the tensor viewed as [outer, len, inner]. */
typedef struct KAxis {
  int64_t outer, len, inner;
} KAxis;

static inline KAxis k_axis(const IrType *t, int64_t axis) {
  KAxis a = {1, 1, 1};
  if (axis < 0) axis += t->rank;
  if (axis < 0 || axis >= t->rank) return a;
  a.outer = k_prod(t, 0, (int)axis);
  a.len = t->dim[axis];
  a.inner = k_prod(t, (int)axis + 1, t->rank);
  return a;
}

/* Shared by the elementwise and layout files: strided iteration over a
 * collapsed broadcast shape (see kernels_ew.c). */
typedef struct KBcast {
  int rank;                   /* collapsed rank, >= 1 */
  int64_t dim[IR_MAX_RANK];
  int64_t sa[IR_MAX_RANK];    /* element strides of operand a, 0 = repeated */
  int64_t sb[IR_MAX_RANK];
} KBcast;

/* Collapses out = a (op) b into as few dims as possible.  b may be NULL for
 * a one-operand map (sum_to uses it with the roles of out and a swapped). */
void k_bcast_plan(KBcast *p, const IrType *out, const IrType *a, const IrType *b);

/* ---- vectorised loops --------------------------------------------------------
 * The scalar math of the elementwise ops (km_exp, km_gelu, ...) lives in
 * compiler/opmath.h, shared with constant folding; it is included below. */

/* Hot loops are compiled for AVX-512, AVX2+FMA and baseline x86-64, picked
 * at load time: K_CLONES (base/simd.h). */
#include "../../base/simd.h"

/* GCC will not turn `c ? a : b` on floats into vector selects while it must
 * preserve floating-point traps; the kernels never rely on traps (values are
 * unchanged, only exceptions flags may differ). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

/* after the pragma: the scalar math inlined into the kernels gets it too */
#include "../../compiler/opmath.h"

/* Sum and maximum of a short row with 16 interleaved partials combined
 * pairwise: these vectorise (a plain float reduction does not, and an
 * `omp simd` reduction ends in a slow serial loop), and the order of the
 * additions is fixed by this code, whatever the vector width.  With GCC 12
 * or clang the partials are one vector and the pairwise steps halves of
 * it (the same additions in the same order as the scalar steps below, which
 * ran as 15 scalar operations per row: a third of a 64-wide softmax row). */
/* 16 floats as one value (GCC's vector extension: one register with
 * AVX-512, split into halves or quarters by the other clones), loaded
 * with K_LOAD16 (a macro: a function returning a 64-byte vector changes
 * the ABI between the clones, -Wpsabi). */
typedef float KV16 __attribute__((vector_size(64)));
#define K_LOAD16(v, x) memcpy(&(v), (x), sizeof(v))

#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
typedef float KV8 __attribute__((vector_size(32)));
typedef float KV4 __attribute__((vector_size(16)));
typedef float KV2 __attribute__((vector_size(8)));
typedef int32_t KI16 __attribute__((vector_size(64)));
typedef int32_t KI8 __attribute__((vector_size(32)));
typedef int32_t KI4 __attribute__((vector_size(16)));
typedef int32_t KI2 __attribute__((vector_size(8)));

#define K_LO8(v) __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7)
#define K_HI8(v) __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15)
#define K_LO4(v) __builtin_shufflevector(v, v, 0, 1, 2, 3)
#define K_HI4(v) __builtin_shufflevector(v, v, 4, 5, 6, 7)
#define K_LO2(v) __builtin_shufflevector(v, v, 0, 1)
#define K_HI2(v) __builtin_shufflevector(v, v, 2, 3)

/* acc[l] += acc[l + w] for w = 8, 4, 2, 1 */
static inline float k_pairwise_sum(const KV16 *a) {
  KV8 b = K_LO8(*a) + K_HI8(*a);
  KV4 c = K_LO4(b) + K_HI4(b);
  KV2 d = K_LO2(c) + K_HI2(c);
  return d[0] + d[1];
}

/* a > b ? a : b, lane by lane (as the scalar expression: b where a is NaN) */
#define K_VMAX(T, I, a, b) ((T)(((I)(a) & (I)((a) > (b))) | ((I)(b) & ~(I)((a) > (b)))))

static inline float k_pairwise_max(const KV16 *a) {
  KV8 lo8 = K_LO8(*a), hi8 = K_HI8(*a), b = K_VMAX(KV8, KI8, hi8, lo8);
  KV4 lo4 = K_LO4(b), hi4 = K_HI4(b), c = K_VMAX(KV4, KI4, hi4, lo4);
  KV2 lo2 = K_LO2(c), hi2 = K_HI2(c), d = K_VMAX(KV2, KI2, hi2, lo2);
  return d[1] > d[0] ? d[1] : d[0];
}


static inline float k_row_sum(const float *x, int64_t n) {
  KV16 acc = {0};
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    KV16 v;
    K_LOAD16(v, x + j);
    acc += v;
  }
  for (int l = 0; j + l < n; l++) acc[l] += x[j + l];
  return k_pairwise_sum(&acc);
}

/* sum of d[j] * (x[j] - c); with d == x, the sum of squared deviations. */
static inline float k_row_dot_c(const float *d, const float *x, float c, int64_t n) {
  KV16 acc = {0};
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    KV16 u, v;
    K_LOAD16(u, d + j);
    K_LOAD16(v, x + j);
    acc += u * (v - c);
  }
  for (int l = 0; j + l < n; l++) acc[l] += d[j + l] * (x[j + l] - c);
  return k_pairwise_sum(&acc);
}

static inline float k_row_max(const float *x, int64_t n) {
  KV16 acc = {0};
  acc -= INFINITY;
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    KV16 v;
    K_LOAD16(v, x + j);
    acc = K_VMAX(KV16, KI16, v, acc);
  }
  for (int l = 0; j + l < n; l++) acc[l] = x[j + l] > acc[l] ? x[j + l] : acc[l];
  return k_pairwise_max(&acc);
}
#else
static inline float k_row_sum(const float *x, int64_t n) {
  float acc[16] = {0};
  int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (int l = 0; l < 16; l++) acc[l] += x[j + l];
  for (int l = 0; j + l < n; l++) acc[l] += x[j + l];
  for (int w = 8; w > 0; w /= 2)
    for (int l = 0; l < w; l++) acc[l] += acc[l + w];
  return acc[0];
}

/* sum of d[j] * (x[j] - c); with d == x, the sum of squared deviations. */
static inline float k_row_dot_c(const float *d, const float *x, float c, int64_t n) {
  float acc[16] = {0};
  int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (int l = 0; l < 16; l++) acc[l] += d[j + l] * (x[j + l] - c);
  for (int l = 0; j + l < n; l++) acc[l] += d[j + l] * (x[j + l] - c);
  for (int w = 8; w > 0; w /= 2)
    for (int l = 0; l < w; l++) acc[l] += acc[l + w];
  return acc[0];
}

static inline float k_row_max(const float *x, int64_t n) {
  float acc[16];
  for (int l = 0; l < 16; l++) acc[l] = -INFINITY;
  int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (int l = 0; l < 16; l++) acc[l] = x[j + l] > acc[l] ? x[j + l] : acc[l];
  for (int l = 0; j + l < n; l++) acc[l] = x[j + l] > acc[l] ? x[j + l] : acc[l];
  for (int w = 8; w > 0; w /= 2)
    for (int l = 0; l < w; l++) acc[l] = acc[l + w] > acc[l] ? acc[l + w] : acc[l];
  return acc[0];
}
#endif

/* sum of x[j] y[j]: k_row_dot_c with c 0 (x - 0 is x, bit for bit) */
static inline float k_row_dot(const float *x, const float *y, int64_t n) {
  return k_row_dot_c(x, y, 0.0f, n);
}

/* Philox4x32-10 inlined (the same rounds as rng_philox) so that dropout's
 * blocks are generated several at a time in vectors: the words of block c
 * of (seed, stream). */
static inline void k_philox_words(uint64_t seed, uint64_t stream, uint64_t c, uint32_t *w0,
                                uint32_t *w1, uint32_t *w2, uint32_t *w3) {
  uint32_t x0 = (uint32_t)c, x1 = (uint32_t)(c >> 32);
  uint32_t x2 = (uint32_t)stream, x3 = (uint32_t)(stream >> 32);
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
#pragma GCC unroll 10
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * x0, p1 = (uint64_t)0xCD9E8D57u * x2;
    uint32_t y0 = (uint32_t)(p1 >> 32) ^ x1 ^ k0, y1 = (uint32_t)p1;
    uint32_t y2 = (uint32_t)(p0 >> 32) ^ x3 ^ k1, y3 = (uint32_t)p0;
    x0 = y0;
    x1 = y1;
    x2 = y2;
    x3 = y3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  *w0 = x0;
  *w1 = x1;
  *w2 = x2;
  *w3 = x3;
}

/* The global element index of element 0 of a dropout over type t: a batched
 * value of a rank's share of the batch (kc->example0 its first row, f->batch
 * its rows) starts example0 rows into the global batch, so every rank draws
 * the mask a single process draws for those rows.  0 for an unbatched value
 * (the same mask for every row, on every rank). */
static inline int64_t k_dropout_offset(const KernelCtx *kc, const IrFunc *f, const IrType *t) {
  if (!kc->example0 || !t->batched || f->batch <= 0) return 0;
  int64_t n = 1;
  for (int d = 0; d < t->rank; d++) n *= t->dim[d];
  return n % f->batch ? 0 : kc->example0 * (n / f->batch);
}

/* Rows of the normalisations (kernels_nn.c), also run by the fused kernel
 * on rows it computed; each is safe in place (out may be an operand).  The
 * softmax rows run over the prefix [0, n) of a row of L and write 0 to the
 * rest (n < L: causal rows, pass_causal; the bits of the prefix are the
 * whole row's when the rest of x is -inf, or of y is 0). */
void k_softmax_row(float *y, const float *x, int64_t n, int64_t L);
void k_softmax_grad_row(float *o, const float *y, const float *d, int64_t n, int64_t L);
/* The prefix length of row r of a softmax node or micro-op with attributes
 * a over rows of L (causal: row r % L of its square matrix, plus one). */
static inline int64_t k_row_prefix(const IrAttr *a, const IrType *t, int64_t r, int64_t L) {
  if (!a->i[0] || t->rank < 2 || t->dim[t->rank - 2] != L) return L;
  return r % L + 1;
}
void k_layernorm_row(float *y, const float *x, int64_t L, float eps);
void k_layernorm_grad_row(float *o, const float *x, const float *d, int64_t L, float eps);

#endif

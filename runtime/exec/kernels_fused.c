/* kernels_fused.c - the kernel of FUSED nodes: a micro-program (ir.h,
 * IrFused) run over the elements in blocks.
 *
 * The elementwise micro-ops run block by block (FB elements): each computes
 * its block from its operands' blocks - an external input read in place
 * when it has the region's element count, else gathered with NumPy
 * broadcasting - with the expression its own kernel uses (opmath.h), so
 * every element has the bits of the unfused chain.  A program with a row op
 * runs row by row: the prologue writes the row op's operand into the output
 * row, the row op (the kernels' own row function) runs there in place, and
 * the epilogue runs over that row.  A program ending in sum_to adds the
 * prologue's rows into column chunks in row order, as k_sum_to does.  Loops
 * are split over the pool in static chunks; no element depends on the
 * partition.
 */
#include "kernels_int.h"
#include "rng.h"

#define FB 1024 /* elements per block */
/* the fewest columns a chunk of a fused sum_to has when the columns are
 * shared out */
#define SUM_CHUNK_MIN 256

typedef struct FusedRun {
  const IrFused *p;
  const IrType *region;          /* type of the elementwise micro-ops */
  const float *ext[IR_MAX_IN];   /* the node's inputs */
  bool flat[IR_MAX_IN];          /* read in place (same element count) */
  int64_t suffix[IR_MAX_IN];     /* else, > 0: its dims end the region's,
                                    element i reads i % suffix */
  KBcast plan[IR_MAX_IN];        /* else: where each region element reads */
  float *out;
  int64_t L;                     /* row length (row ops), columns (sum_to) */
  int64_t rows, chunks;
  /* dropout, per micro-op */
  bool drop_on[IR_FUSED_MAX], drop_zero[IR_FUSED_MAX];
  float drop_scale[IR_FUSED_MAX];
  uint32_t drop_thr[IR_FUSED_MAX];
  uint64_t drop_stream[IR_FUSED_MAX];
  uint64_t seed, base;
  int64_t drop_off;              /* k_dropout_offset of the region */
} FusedRun;

/* Per-worker block storage. */
typedef struct FusedScratch {
  float val[IR_FUSED_MAX][FB];
  float ext[IR_MAX_IN][FB];
  bool tiled[IR_MAX_IN];  /* ext[j] holds input j repeated from index 0 */
} FusedScratch;

/* Elements [i0, i0 + len) of external input j, broadcast to the region:
 * a pointer into it when they are contiguous there, else copied to dst. */
static const float *gather(const FusedRun *R, FusedScratch *S, int j, int64_t i0, int64_t len) {
  float *dst = S->ext[j];
  if (R->suffix[j] > 0) {
    int64_t M = R->suffix[j], off = i0 % M;
    if (off + len <= M) return R->ext[j] + off;
    if (off == 0 && FB % M == 0) {  /* a block from a period's start: the tile */
      if (!S->tiled[j])
        for (int64_t e = 0; e < FB; e += M) memcpy(dst + e, R->ext[j], (size_t)M * sizeof *dst);
      S->tiled[j] = true;
      return dst;
    }
    S->tiled[j] = false;
    for (int64_t e = 0; e < len;) {
      int64_t run = M - off < len - e ? M - off : len - e;
      memcpy(dst + e, R->ext[j] + off, (size_t)run * sizeof *dst);
      e += run;
      off = 0;
    }
    return dst;
  }
  S->tiled[j] = false;
  const KBcast *pl = &R->plan[j];
  const float *x = R->ext[j];
  int D = pl->rank;
  int64_t idx[IR_MAX_RANK], off = 0, rem = i0;
  for (int d = D - 1; d >= 0; d--) {
    idx[d] = rem % pl->dim[d];
    rem /= pl->dim[d];
    off += idx[d] * pl->sa[d];
  }
  int64_t inner = pl->dim[D - 1], s = pl->sa[D - 1];
  int64_t e = 0;
  while (e < len) {
    int64_t run = inner - idx[D - 1];
    if (run > len - e) run = len - e;
    if (s == 1) memcpy(dst + e, x + off, (size_t)run * sizeof *dst);
    else
      for (int64_t k = 0; k < run; k++) dst[e + k] = x[off + k * s];
    e += run;
    off += run * s;
    idx[D - 1] += run;
    for (int d = D - 1; d > 0 && idx[d] == pl->dim[d]; d--) {
      off -= idx[d] * pl->sa[d];
      idx[d] = 0;
      idx[d - 1]++;
      off += pl->sa[d - 1];
    }
  }
  return dst;
}

/* dropout of x over elements [i0, i0 + len) of its tensor: word i % 4 of
 * the Philox block i / 4, as in k_dropout. */
static void drop_block(const FusedRun *R, int k, float *o, const float *x, int64_t i0,
                       int64_t len) {
  if (R->drop_zero[k]) {
    for (int64_t e = 0; e < len; e++) o[e] = 0.0f;
    return;
  }
  if (!R->drop_on[k]) {
    if (o != x) memmove(o, x, (size_t)len * sizeof *o);
    return;
  }
  float scale = R->drop_scale[k];
  uint32_t thr = R->drop_thr[k];
  uint64_t stream = R->drop_stream[k];
  int64_t e = 0;
  while (e < len) {
    int64_t i = R->drop_off + i0 + e, b = i / 4;
    uint32_t w[4];
    k_philox_words(R->seed, stream, R->base + (uint64_t)b, &w[0], &w[1], &w[2], &w[3]);
    for (int64_t q = i - b * 4; q < 4 && e < len; q++, e++) {
      float v = x[e] * scale;
      o[e] = (w[q] >> 8) >= thr ? v : 0.0f;
    }
  }
}

/* The elementwise micro-ops, one vectorised function each (compiled per
 * ISA, like the kernels' span functions): o = op(a, b) over len elements. */
typedef void (*MicroFn)(float *o, const float *pa, const float *pb, int64_t len, float s);

#define F_BINARY(U, l, EXPR)                                                                 \
  K_CLONES static void mf_##l(float *o, const float *pa, const float *pb, int64_t len,       \
                              float s) {                                                     \
    _Pragma("omp simd") for (int64_t i = 0; i < len; i++) {                                  \
      float x = pa[i], y = pb[i];                                                            \
      o[i] = (EXPR);                                                                         \
    }                                                                                        \
  }
#define F_UNARY(U, l, COST, EXPR)                                                            \
  K_CLONES static void mf_##l(float *o, const float *pa, const float *pb, int64_t len,       \
                              float s) {                                                     \
    _Pragma("omp simd") for (int64_t i = 0; i < len; i++) {                                  \
      float x = pa[i];                                                                       \
      o[i] = (EXPR);                                                                         \
    }                                                                                        \
  }
#define F_GRAD(U, l, COST, EXPR)                                                             \
  K_CLONES static void mf_##l(float *o, const float *pa, const float *pb, int64_t len,       \
                              float s) {                                                     \
    _Pragma("omp simd") for (int64_t i = 0; i < len; i++) {                                  \
      float a = pa[i], dy = pb[i];                                                           \
      o[i] = (EXPR);                                                                         \
    }                                                                                        \
  }
OPMATH_BINARY(F_BINARY)
OPMATH_UNARY(F_UNARY)
OPMATH_GRAD(F_GRAD)
#undef F_BINARY
#undef F_UNARY
#undef F_GRAD

static const MicroFn micro_fns[OP_COUNT] = {
#define F_ROW2(U, l, EXPR) [OP_##U] = mf_##l,
#define F_ROW3(U, l, COST, EXPR) [OP_##U] = mf_##l,
    OPMATH_BINARY(F_ROW2) OPMATH_UNARY(F_ROW3) OPMATH_GRAD(F_ROW3)
#undef F_ROW2
#undef F_ROW3
};

/* One micro-op over a block; a, b its operands' blocks; i0 the block's
 * first element in the region (dropout and masks). */
static void micro_block(const FusedRun *R, int k, float *o, const float *pa, const float *pb,
                        int64_t i0, int64_t len) {
  const IrMicro *m = &R->p->ops[k];
  const float s = (float)m->attr.f[0];
  if (micro_fns[m->op]) {
    micro_fns[m->op](o, pa, pb, len, s);
    return;
  }
  switch ((IrOp)m->op) {
  case OP_DROPOUT:
  case OP_DROPOUT_GRAD:
    drop_block(R, k, o, pa, i0, len);
    break;
  case OP_CAUSAL_MASK: {
    /* runs of a row: the entries up to the diagonal copied, the rest s (two
     * divisions per block, not per element) */
    int64_t T = m->type.dim[m->type.rank - 1];
    int64_t col = i0 % T, row = (i0 / T) % T;
    for (int64_t i = 0; i < len;) {
      int64_t run = T - col < len - i ? T - col : len - i;
      int64_t keep = row + 1 - col; /* entries j <= row left in this run */
      if (keep < 0) keep = 0;
      if (keep > run) keep = run;
      if (o != pa) memmove(o + i, pa + i, (size_t)keep * sizeof *o);
      for (int64_t e = keep; e < run; e++) o[i + e] = s;
      i += run;
      col += run;
      if (col == T) {
        col = 0;
        if (++row == T) row = 0;
      }
    }
    break;
  }
  default:
    break;
  }
}

/* Micro-ops [k0, k1) over region elements [i0, i0 + len); the value of
 * micro-op `last` goes to dst, micro-op `have` (the row op, or -1) is
 * already in have_at. */
static void run_block(const FusedRun *R, FusedScratch *S, int k0, int k1, int64_t i0,
                      int64_t len, float *dst, int have, const float *have_at) {
  const IrFused *p = R->p;
  bool got[IR_MAX_IN] = {0};
  const float *ext[IR_MAX_IN];
  for (int k = k0; k < k1; k++) {
    const IrMicro *m = &p->ops[k];
    const float *arg[2] = {NULL, NULL};
    for (int j = 0; j < m->nin; j++) {
      int32_t r = m->in[j];
      if (r >= 0) {
        arg[j] = r == have ? have_at : S->val[r];
        continue;
      }
      int e = -1 - r;
      if (!got[e]) {
        ext[e] = R->flat[e] ? R->ext[e] + i0 : gather(R, S, e, i0, len);
        got[e] = true;
      }
      arg[j] = ext[e];
    }
    micro_block(R, k, k == k1 - 1 ? dst : S->val[k], arg[0], arg[1], i0, len);
  }
}

/* ---- the three shapes of program ---- */

static void ew_blocks(void *arg, int64_t lo, int64_t hi, int worker) {
  const FusedRun *R = arg;
  FusedScratch S;
  memset(S.tiled, 0, sizeof S.tiled);
  int64_t N = R->rows;
  for (int64_t b = lo; b < hi; b++) {
    int64_t i0 = b * FB, len = N - i0 < FB ? N - i0 : FB;
    run_block(R, &S, 0, R->p->n, i0, len, R->out + i0, -1, NULL);
  }
}

/* Rows [lo, hi) in groups of about FB elements: the prologue over the
 * group into the output rows, the row op on each row in place, the
 * epilogue over the group. */
static void row_rows(void *arg, int64_t lo, int64_t hi, int worker) {
  const FusedRun *R = arg;
  const IrFused *p = R->p;
  int ro = p->rowop;
  const IrMicro *rm = &p->ops[ro];
  int64_t L = R->L, per = L < FB ? FB / L : 1;
  FusedScratch S;
  memset(S.tiled, 0, sizeof S.tiled);
  for (int64_t r0 = lo; r0 < hi; r0 += per) {
    int64_t r1 = r0 + per < hi ? r0 + per : hi;
    int64_t g0 = r0 * L, g1 = r1 * L;
    /* the row op's operand from the prologue: in scratch when the group
     * fits one block, else in the output rows (the row op runs in place) */
    float *pv = g1 - g0 <= FB ? S.val[ro > 0 ? ro - 1 : 0] : NULL;
    for (int64_t i = g0; ro > 0 && i < g1; i += FB) {
      int64_t len = g1 - i < FB ? g1 - i : FB;
      run_block(R, &S, 0, ro, i, len, pv ? pv : R->out + i, -1, NULL);
    }
    for (int64_t r = r0; r < r1; r++) {
      float *y = R->out + r * L;
      const float *a[2];
      for (int j = 0; j < rm->nin; j++)
        a[j] = rm->in[j] >= 0 ? (pv ? pv + (r - r0) * L : y) : R->ext[-1 - rm->in[j]] + r * L;
      switch ((IrOp)rm->op) {
      case OP_SOFTMAX: k_softmax_row(y, a[0], k_row_prefix(&rm->attr, &rm->type, r, L), L); break;
      case OP_SOFTMAX_GRAD:
        k_softmax_grad_row(y, a[0], a[1], k_row_prefix(&rm->attr, &rm->type, r, L), L);
        break;
      case OP_LAYERNORM: k_layernorm_row(y, a[0], L, (float)rm->attr.f[0]); break;
      case OP_LAYERNORM_GRAD: k_layernorm_grad_row(y, a[0], a[1], L, (float)rm->attr.f[0]); break;
      default: break;
      }
    }
    for (int64_t i = g0; ro + 1 < p->n && i < g1; i += FB) {
      int64_t len = g1 - i < FB ? g1 - i : FB;
      run_block(R, &S, ro + 1, p->n, i, len, R->out + i, ro, R->out + i);
    }
  }
}

/* Column chunks of [rows, C] -> [C]: rows added in order, as k_sum_to. */
static void sum_chunks(void *arg, int64_t lo, int64_t hi, int worker) {
  const FusedRun *R = arg;
  int64_t C = R->L, chunks = R->chunks;
  int last = R->p->n - 1;
  FusedScratch S;
  memset(S.tiled, 0, sizeof S.tiled);
  float v[FB];
  float *y = R->out;
  for (int64_t t = lo; t < hi; t++) {
    int64_t c0 = C * t / chunks, c1 = C * (t + 1) / chunks, w = c1 - c0;
    /* whole rows are contiguous: several at a time */
    int64_t per = w == C && C <= FB ? FB / C : 1;
    for (int64_t r0 = 0; r0 < R->rows; r0 += per) {
      int64_t r1 = r0 + per < R->rows ? r0 + per : R->rows;
      run_block(R, &S, 0, last, r0 * C + c0, per == 1 ? w : (r1 - r0) * C, v, -1, NULL);
      for (int64_t r = r0; r < r1; r++) {
        const float *vr = v + (r - r0) * w;
        if (r == 0) {
          for (int64_t c = c0; c < c1; c++) y[c] = vr[c - c0];
        } else {
#pragma omp simd
          for (int64_t c = c0; c < c1; c++) y[c] += vr[c - c0];
        }
      }
    }
  }
}

/* The element count of t when its dims (less leading 1s) end r's, else 0. */
static int64_t suffix_of(const IrType *t, const IrType *r) {
  int lead = 0;
  while (lead < t->rank && t->dim[lead] == 1) lead++;
  int k = t->rank - lead;
  if (k > r->rank) return 0;
  for (int j = 0; j < k; j++)
    if (t->dim[lead + j] != r->dim[r->rank - k + j]) return 0;
  return k_numel(t);
}

int k_fused(KernelCtx *kc, const IrFunc *f, const IrNode *n, void *out, void *const *in) {
  const IrFused *p = n->fused;
  if (!p || p->n < 1) return k_fail(kc, n, "no micro-program");
  if (k_need_f32(kc, f, n, n->nin)) return -1;
  FusedRun *R = &(FusedRun){0};
  R->p = p;
  R->out = out;
  R->seed = kc->seed;
  R->base = (uint64_t)kc->step << 32;
  int ro = p->rowop;
  bool sum = ro >= 0 && p->ops[ro].op == OP_SUM_TO;
  /* the elementwise region: the row op's operand's type for sum_to, the
   * row op's type, or the node's */
  R->region = ro < 0 ? &n->type : sum ? &p->ops[p->ops[ro].in[0]].type : &p->ops[ro].type;
  int64_t N = k_numel(R->region);
  R->drop_off = k_dropout_offset(kc, f, R->region);
  for (int j = 0; j < n->nin; j++) {
    const IrType *t = k_in_type(f, n, j);
    R->ext[j] = in[j];
    R->flat[j] = k_numel(t) == N;
    if (!R->flat[j]) {
      R->suffix[j] = suffix_of(t, R->region);
      k_bcast_plan(&R->plan[j], R->region, t, NULL);
    }
  }
  for (int k = 0; k < p->n; k++) {
    const IrMicro *m = &p->ops[k];
    if (m->op != OP_DROPOUT && m->op != OP_DROPOUT_GRAD) continue;
    double pr = m->attr.f[0];
    if (!(pr >= 0 && pr <= 1)) return k_fail(kc, n, "probability %g is not in [0, 1]", pr);
    R->drop_on[k] = kc->training && pr > 0 && pr < 1;
    R->drop_zero[k] = kc->training && pr >= 1;
    R->drop_scale[k] = (float)(1.0 / (1.0 - pr));
    R->drop_thr[k] = (uint32_t)ceil(pr * 16777216.0);
    R->drop_stream[k] = (uint64_t)RNG_STREAM_DROPOUT + (uint64_t)m->attr.i[0];
  }
  int64_t work = N * 4 * p->n;
  if (ro < 0) {
    R->rows = N;
    k_par(kc, k_threads(kc, work), (N + FB - 1) / FB, ew_blocks, R);
    return 0;
  }
  if (sum) {
    int64_t C = k_numel(&n->type);
    int nt = k_threads(kc, work);
    R->L = C;
    R->rows = N / C;
    R->chunks = (C + FB - 1) / FB;
    /* narrower chunks run the program row by row, over half-rows: on two
     * threads, medium's [2048,256] mul and sum took 0.39 ms in chunks of
     * 128 columns against 0.21 whole on one (bench/medium.ra --profile) */
    if (R->chunks < nt && C >= SUM_CHUNK_MIN * nt) R->chunks = nt;
    k_par(kc, nt, R->chunks, sum_chunks, R);
    return 0;
  }
  const IrType *T = R->region;
  if (T->rank < 1) return k_fail(kc, n, "a row op needs rank 1 or more");
  R->L = T->dim[T->rank - 1];
  R->rows = R->L ? N / R->L : 0;
  k_par(kc, k_threads(kc, work + N * 8), R->rows, row_rows, R);
  return 0;
}

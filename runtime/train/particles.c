/* particles.c - repulsive particle updates (language.md §6, docs/repulsion.md).
 *
 * A head group's heads are M particles.  For each particle set (theta and
 * its loss gradients g, both [M][D]) this computes the pairwise squared
 * distances, the RBF kernel with the median (or a fixed) bandwidth, the
 * repulsive force, and replaces g by the svgd or spos direction G.  The
 * gather/scatter functions move the heads' slices of a layer's weight
 * matrices between the model's flat parameter buffer and the [M][D] layout.
 *
 * Everything is deterministic: sums run in a fixed order in double, the
 * medians come from a selection whose result does not depend on the order
 * it visits elements in, and the spos noise is a pure function of
 * (seed, stream, step, i, d) through the Philox counter RNG.
 */
#include "particles.h"

#include <math.h>
#include <string.h>

#include "../../base/simd.h"
#include "../exec/exec_jit.h"
#include "../exec/rng.h"

/* Sizes beyond these are refused, so M*M and M*D never overflow. */
#define PART_MAX_M ((int64_t)1 << 20)
#define PART_MAX_MD ((int64_t)1 << 40)

/* ---- medians ---- */

static inline void swapf(float *a, float *b) {
  float t = *a;
  *a = *b;
  *b = t;
}

/* Rearranges a[0..n) so that a[k] holds the k-th smallest value, with
 * nothing larger before it and nothing smaller after it (Hoare selection,
 * median-of-three pivot).  The value found does not depend on the order
 * of the input. */
static void select_kth(float *a, int64_t n, int64_t k) {
  int64_t lo = 0, hi = n - 1;
  while (hi > lo) {
    int64_t mid = lo + (hi - lo) / 2;
    if (a[mid] < a[lo]) swapf(&a[mid], &a[lo]);
    if (a[hi] < a[lo]) swapf(&a[hi], &a[lo]);
    if (a[hi] < a[mid]) swapf(&a[hi], &a[mid]);
    float pivot = a[mid];
    int64_t i = lo, j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (pivot < a[j]) j--;
      if (i <= j) {
        swapf(&a[i], &a[j]);
        i++;
        j--;
      }
    }
    if (k <= j)
      hi = j;
    else if (k >= i)
      lo = i;
    else
      return; /* a[j+1 .. i-1] all equal the pivot */
  }
}

/* The median of a[0..n) (n >= 1): the middle value, or the mean of the two
 * middle values when n is even.  Reorders a. */
static double median_inplace(float *a, int64_t n) {
  int64_t k = n / 2;
  select_kth(a, n, k);
  double hi = a[k];
  if (n % 2) return hi;
  float lo = a[0]; /* the largest of a[0..k) is the (k-1)-th smallest */
  for (int64_t i = 1; i < k; i++)
    if (a[i] > lo) lo = a[i];
  return 0.5 * ((double)lo + hi);
}

/* ---- the update ---- */

int64_t particles_work_floats(int64_t M, int64_t D) {
  if (M < 1 || D < 1 || M > PART_MAX_M || D > PART_MAX_MD / M) return 0;
  return 2 * M * M + 2 * M * D;
}

bool repulsion_applies(const Repulsion *rep, int64_t step, bool *triggered,
                       double (*measure)(void *ud), void *ud) {
  if (!rep || (rep->kind != REP_SVGD && rep->kind != REP_SPOS)) return false;
  if (step < rep->start || (rep->stop > 0 && step >= rep->stop)) return false;
  if (rep->every > 1 && step % rep->every != 0) return false;
  if (rep->when == REP_WHEN_NONE) return true;
  if (triggered && *triggered) return true;
  if (!measure) return false;
  double d = measure(ud), x = rep->threshold;
  bool on = rep->when == REP_WHEN_LT ? d < x : rep->when == REP_WHEN_LE ? d <= x
          : rep->when == REP_WHEN_GT ? d > x : rep->when == REP_WHEN_GE ? d >= x : false;
  if (on && triggered) *triggered = true;
  return on;
}

static int rep_valid(const Repulsion *rep) {
  if (!rep) return 0;
  if (rep->kind == REP_NONE) return 1;
  if (rep->kind != REP_SVGD && rep->kind != REP_SPOS) return 0;
  if (!isfinite(rep->alpha) || !isfinite(rep->stepsize)) return 0;
  if (!rep->bw_median && !(isfinite(rep->bandwidth) && rep->bandwidth > 0)) return 0;
  if (rep->kind == REP_SPOS &&
      !(rep->stepsize > 0 && isfinite(rep->beta) && rep->beta >= 0))
    return 0;
  return 1;
}

/* The update's loops on the pool: each pair's distance is computed whole
 * by one worker, and each block of DB coordinates of every particle's
 * direction too, so the bits do not depend on the thread count. */
typedef struct PartArg {
  int64_t M, D;
  const float *theta, *xi;
  float *g, *dist, *kern, *out;
  double h2, alpha, inv_m, s, beta, noise;
  int spos;
} PartArg;

/* Particle i's direction at coordinate d from the sums kg = sum_j K_ij
 * g_jd and r = sum_j K_ij (theta_id - theta_jd). */
K_INLINE float direction(const PartArg *P, int64_t i, int64_t d, double kg, double r) {
  double G = (kg - P->alpha * (r / P->h2)) * P->inv_m;
  if (P->spos) {
    G += P->beta * (double)P->g[i * P->D + d];
    if (P->xi) G -= P->noise * (double)P->xi[i * P->D + d];
  }
  return (float)(P->s * G);
}

/* One coordinate of one particle: the sums over j in index order, in
 * double. */
static void svgd_one(const PartArg *P, int64_t i, int64_t d) {
  const int64_t M = P->M, D = P->D;
  double kg = 0.0, r = 0.0, ti = (double)P->theta[i * D + d];
  for (int64_t j = 0; j < M; j++) {
    double kij = P->kern[i * M + j];
    kg += kij * (double)P->g[j * D + d];
    r += kij * (ti - (double)P->theta[j * D + d]);
  }
  P->out[i * D + d] = direction(P, i, d, kg, r);
}

/* The same sums for eight coordinates [d, d + 8) of four particles i0 ..
 * i0 + 3 (rows past M - 1 repeat the last and are not stored), in vectors
 * of doubles: each coordinate's additions are svgd_one's, in its order,
 * and the four particles share each load and conversion of theta_j and
 * g_j.  (Macros, not functions: a 64-byte vector argument changes the
 * ABI between the clones.) */
typedef double PD8 __attribute__((vector_size(64)));
typedef float PF8 __attribute__((vector_size(32)));
#define LOAD_PD8(v, x)                 \
  do {                                 \
    PF8 f_;                            \
    memcpy(&f_, (x), sizeof f_);       \
    (v) = __builtin_convertvector(f_, PD8); \
  } while (0)
enum { IG = 4 };

K_INLINE void svgd_eight(const PartArg *P, int64_t i0, int64_t d) {
  const int64_t M = P->M, D = P->D;
  PD8 ti[IG], kg[IG], r[IG];
  const float *kq[IG];
#pragma GCC unroll 4
  for (int q = 0; q < IG; q++) {
    int64_t i = i0 + q < M ? i0 + q : M - 1;
    kq[q] = P->kern + i * M;
    LOAD_PD8(ti[q], P->theta + i * D + d);
    kg[q] = (PD8){0};
    r[q] = (PD8){0};
  }
  for (int64_t j = 0; j < M; j++) {
    PD8 gj, tj;
    LOAD_PD8(gj, P->g + j * D + d);
    LOAD_PD8(tj, P->theta + j * D + d);
#pragma GCC unroll 4
    for (int q = 0; q < IG; q++) {
      double kij = kq[q][j];
      kg[q] += kij * gj;
      r[q] += kij * (ti[q] - tj);
    }
  }
  /* direction(), on the eight lanes at once */
  for (int q = 0; q < IG && i0 + q < M; q++) {
    int64_t o = (i0 + q) * D + d;
    PD8 G = (kg[q] - P->alpha * (r[q] / P->h2)) * P->inv_m;
    if (P->spos) {
      PD8 gi;
      LOAD_PD8(gi, P->g + o);
      G += P->beta * gi;
      if (P->xi) {
        PD8 xi;
        LOAD_PD8(xi, P->xi + o);
        G -= P->noise * xi;
      }
    }
    PF8 out = __builtin_convertvector(P->s * G, PF8);
    memcpy(P->out + o, &out, sizeof out);
  }
}

/* Every particle's direction for coordinates [d0, d1), in out. */
K_CLONES static void svgd_block(const PartArg *P, int64_t d0, int64_t d1) {
  int64_t d8 = d0 + (d1 - d0) / 8 * 8;
  for (int64_t i0 = 0; i0 < P->M; i0 += IG)
    for (int64_t d = d0; d < d8; d += 8) svgd_eight(P, i0, d);
  for (int64_t i = 0; i < P->M; i++)
    for (int64_t d = d8; d < d1; d++) svgd_one(P, i, d);
}

enum { DB = JIT_PART_BLOCK };

/* Blocks [lo, hi) of DB coordinates: every particle's direction there, in
 * out, then copied over g (only this block's worker reads g's block). */
static void direction_blocks(void *arg, int64_t lo, int64_t hi, int worker) {
  const PartArg *P = arg;
  for (int64_t b = lo; b < hi; b++) {
    int64_t d0 = b * DB, d1 = d0 + DB < P->D ? d0 + DB : P->D;
    svgd_block(P, d0, d1);
    for (int64_t i = 0; i < P->M; i++)
      memcpy(P->g + i * P->D + d0, P->out + i * P->D + d0, (size_t)(d1 - d0) * sizeof *P->g);
  }
}

/* |a - b|^2 over D coordinates in double: eight interleaved partial sums
 * (coordinate d in lane d % 8, so the loop vectorises), combined
 * pairwise; the same additions whatever the machine. */
K_CLONES static double sq_dist(const float *a, const float *b, int64_t D) {
  double p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t d = 0;
  for (; d + 8 <= D; d += 8)
#pragma omp simd
    for (int l = 0; l < 8; l++) {
      double e = (double)a[d + l] - (double)b[d + l];
      p[l] += e * e;
    }
  for (int l = 0; d < D; d++, l++) {
    double e = (double)a[d] - (double)b[d];
    p[l] += e * e;
  }
  return ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]));
}

/* Pairs [lo, hi) of i < j, numbered row by row. */
static void dist_pairs(void *arg, int64_t lo, int64_t hi, int worker) {
  const PartArg *P = arg;
  int64_t M = P->M, D = P->D, i = 0, first = 0; /* first: the number of row i's first pair */
  while (first + (M - 1 - i) <= lo) first += M - 1 - i, i++;
  for (int64_t q = lo; q < hi; q++) {
    if (q - first >= M - 1 - i) first += M - 1 - i, i++;
    int64_t j = i + 1 + (q - first);
    float s = (float)sq_dist(P->theta + i * D, P->theta + j * D, D);
    P->dist[i * M + j] = P->dist[j * M + i] = s;
  }
}

typedef struct NoiseArg {
  float *x;
  uint64_t seed, stream, base;
} NoiseArg;

static void noise_fill(void *arg, int64_t lo, int64_t hi, int worker) {
  const NoiseArg *N = arg;
  for (int64_t k = lo; k < hi; k++) N->x[k] = rng_normal(N->seed, N->stream, N->base + (uint64_t)k);
}

/* Work layout (floats): dist [M*M] | kern [M*M] | out [M*D] | xi [M*D].
 * particles_update_noise uses the first three; particles_update puts the
 * Philox noise in the last. */
int particles_update_noise(const Repulsion *rep, int64_t M, int64_t D, const float *theta,
                           float *g, float *work, const float *xi, ParticleStats *stats,
                           Pool *pool, JitLoopFn dir) {
  if (stats) memset(stats, 0, sizeof *stats);
  if (particles_work_floats(M, D) == 0 || !rep_valid(rep) || !theta || !g || !work) return -1;
  if (rep->kind == REP_NONE) return 0;

  const int64_t MM = M * M, MD = M * D;
  float *dist = work, *kern = work + MM, *out = work + 2 * MM;

  /* 1. D_ij = sum_d (theta_id - theta_jd)^2, directly; D_ii = 0. */
  for (int64_t i = 0; i < M; i++) dist[i * M + i] = 0.0f;
  PartArg P = {.M = M, .D = D, .theta = theta, .g = g, .dist = dist, .kern = kern, .out = out};
  pool_for(pool, M * (M - 1) / 2, 1, dist_pairs, &P);

  /* 2. Bandwidth. */
  double h2, med = 0.0;
  if (rep->bw_median) {
    memcpy(kern, dist, (size_t)MM * sizeof *kern);
    med = median_inplace(kern, MM);
    if (M == 1 || !(med > 1e-12))
      h2 = 1.0;
    else
      h2 = 0.5 * med / log((double)M + 1.0);
  } else {
    h2 = rep->bandwidth * rep->bandwidth;
  }

  /* 3. K_ij = exp(-D_ij / (2 h^2)). */
  for (int64_t k = 0; k < MM; k++) kern[k] = (float)exp(-(double)dist[k] / (2.0 * h2));

  /* spos: med|g| over the whole set (out is free until step 5). */
  double med_g = 0.0;
  const int spos = rep->kind == REP_SPOS;
  if (spos) {
    for (int64_t k = 0; k < MD; k++) out[k] = fabsf(g[k]);
    med_g = median_inplace(out, MD);
  }

  /* 4-5. R_i = sum_j K_ij (theta_i - theta_j) / h^2, which equals
   * (theta_i sum_j K_ij - sum_j K_ij theta_j) / h^2 without the
   * cancellation; then G_i.  Sums over j run in index order, in double. */
  const double s = rep->stepsize, alpha = rep->alpha, inv_m = 1.0 / (double)M;
  const double beta = spos ? rep->beta : 0.0;
  const double noise = spos ? sqrt(2.0 * beta / s) * med_g : 0.0;
  P.h2 = h2, P.alpha = alpha, P.inv_m = inv_m, P.s = s, P.beta = beta, P.noise = noise;
  P.xi = xi, P.spos = spos;
  if (dir) {
    JitPartArgs A = {.theta = theta, .kern = kern, .xi = xi, .g = g, .out = out, .M = M,
                     .D = D, .spos = spos, .h2 = h2, .alpha = alpha, .inv_m = inv_m, .s = s,
                     .beta = beta, .noise = noise};
    exec_jit_loop(pool, pool_size(pool), dir, &A, (D + DB - 1) / DB);
  } else {
    pool_for(pool, (D + DB - 1) / DB, 1, direction_blocks, &P);
  }

  if (stats) {
    stats->h2 = h2;
    stats->med = med;
    stats->med_abs_g = med_g;
  }
  return 0;
}

int particles_update(const Repulsion *rep, int64_t M, int64_t D, const float *theta,
                     float *g, float *work, uint64_t seed, uint64_t stream, int64_t step,
                     ParticleStats *stats, Pool *pool, JitLoopFn dir) {
  if (stats) memset(stats, 0, sizeof *stats);
  if (particles_work_floats(M, D) == 0 || !rep_valid(rep) || !work || step < 0) return -1;
  const float *xi = NULL;
  if (rep->kind == REP_SPOS) {
    /* xi_id = rng_normal(seed, stream, step*M*D + i*D + d) */
    float *x = work + 2 * M * M + M * D;
    NoiseArg N = {x, seed, stream, (uint64_t)step * (uint64_t)(M * D)};
    pool_for(pool, M * D, 4096, noise_fill, &N);
    xi = x;
  }
  return particles_update_noise(rep, M, D, theta, g, work, xi, stats, pool, dir);
}

/* ---- particle layout ---- */

enum { MAT_Q, MAT_K, MAT_V, MAT_O };

/* The chosen matrices that the layer has, in the order q, k, v, o:
 * letters (MAT_*) and parameter indices.  particles == 0 means the
 * default q|k|v. */
static int chosen_mats(const HeadGroup *g, int letter[4], int32_t index[4]) {
  unsigned bits = g->rep.particles ? g->rep.particles : (PART_Q | PART_K | PART_V);
  const int32_t idx[4] = {g->wq, g->wk, g->wv, g->wo};
  const unsigned bit[4] = {PART_Q, PART_K, PART_V, PART_O};
  int n = 0;
  for (int m = 0; m < 4; m++) {
    if ((bits & bit[m]) && idx[m] >= 0) {
      letter[n] = m;
      index[n] = idx[m];
      n++;
    }
  }
  return n;
}

int particles_nsets(const HeadGroup *g) {
  if (!g || g->heads < 1) return 0;
  if (g->attnpool) return g->w2 >= 0 ? 1 : 0;
  int letter[4];
  int32_t index[4];
  int n = chosen_mats(g, letter, index);
  if (g->rep.group == GROUP_JOINT) return n > 0 ? 1 : 0;
  return n;
}

/* A 2-D weight's rows and columns, from its type when it has rank 2. */
static void mat_shape(const HeadGroup *g, const ParamInfo *p, int letter, int64_t *rows,
                      int64_t *cols) {
  int64_t inner = g->heads * g->head_dim;
  if (p->type.rank == 2) {
    *rows = p->type.dim[0];
    *cols = p->type.dim[1];
  } else if (letter == MAT_O) {
    *rows = inner;
    *cols = g->dim;
  } else {
    *rows = g->dim;
    *cols = inner;
  }
}

/* One head's slice of one attention matrix: its float count, and the copy
 * between buf (the parameter or gradient buffer) and part (the particle). */
static int64_t slice_size(const HeadGroup *g, const ParamInfo *p, int letter) {
  int64_t rows, cols;
  mat_shape(g, p, letter, &rows, &cols);
  return letter == MAT_O ? g->head_dim * cols : rows * g->head_dim;
}

/* Gather (to_part): part <- buf; scatter: buf <- part.  Exactly one of
 * each pair of pointers is used. */
typedef struct Xfer {
  const float *buf_in;
  float *buf_out;
  const float *part_in;
  float *part_out;
} Xfer;

/* n floats; the 64-byte copies are inlined (heads of 16, 32, 64), where a
 * call per row of a head cost more than the copy. */
static inline void xcopy(float *dst, const float *src, int64_t n) {
  int64_t e = 0;
  for (; e + 16 <= n; e += 16) memcpy(dst + e, src + e, 64);
  if (e < n) memcpy(dst + e, src + e, (size_t)(n - e) * sizeof *dst);
}

/* Every head's slice of one matrix: its parameter offset w0 and row
 * length cols, hd (head_dim), the slice's offset part_off in a particle of
 * D floats; units are heads (wo, by_head) or rows (wq, wk, wv). */
typedef struct Slices {
  const Xfer *x;
  int64_t w0, cols, hd, heads, part_off, D;
  bool by_head;
} Slices;

/* n floats between buf at w and the particles at o, the way x goes. */
static void xmove(const Xfer *x, int64_t w, int64_t o, int64_t n) {
  if (x->part_out)
    xcopy(x->part_out + o, x->buf_in + w, n);
  else
    xcopy(x->buf_out + w, x->part_in + o, n);
}

/* Units [lo, hi): wo [H*hd, cols] holds head u in rows [u*hd, (u+1)*hd),
 * contiguous; wq/wk/wv [rows, H*hd] hold head i in columns [i*hd,
 * (i+1)*hd) of every row u, each row's heads copied in turn. */
static void slice_units(void *arg, int64_t lo, int64_t hi, int worker) {
  const Slices *S = arg;
  int64_t hd = S->hd, cols = S->cols;
  for (int64_t u = lo; u < hi; u++) {
    if (S->by_head) {
      xmove(S->x, S->w0 + u * hd * cols, u * S->D + S->part_off, hd * cols);
      continue;
    }
    for (int64_t i = 0; i < S->heads; i++)
      xmove(S->x, S->w0 + u * cols + i * hd, i * S->D + S->part_off + u * hd, hd);
  }
}

static void slice_copy(const HeadGroup *g, const ParamInfo *p, int letter, const Xfer *x,
                       int64_t part_off, int64_t D, Pool *pool) {
  int64_t rows, cols;
  mat_shape(g, p, letter, &rows, &cols);
  Slices S = {x, p->offset, cols, g->head_dim, g->heads, part_off, D, letter == MAT_O};
  pool_for(pool, S.by_head ? g->heads : rows, 16, slice_units, &S);
}

/* The matrices of set `set`: fills letter/index, returns their count (0 for
 * a set that does not exist). */
static int set_mats(const HeadGroup *g, int set, int letter[4], int32_t index[4]) {
  if (set < 0 || set >= particles_nsets(g) || g->attnpool) return 0;
  int n = chosen_mats(g, letter, index);
  if (g->rep.group == GROUP_JOINT) return n;
  letter[0] = letter[set];
  index[0] = index[set];
  return 1;
}

int64_t particles_dim(const HeadGroup *g, const ParamInfo *params, int set) {
  if (!g || !params || set < 0 || set >= particles_nsets(g)) return 0;
  if (g->attnpool) {
    const ParamInfo *p = &params[g->w2];
    return p->type.rank == 2 ? p->type.dim[0] : g->dim;
  }
  int letter[4];
  int32_t index[4];
  int n = set_mats(g, set, letter, index);
  int64_t d = 0;
  for (int m = 0; m < n; m++) d += slice_size(g, &params[index[m]], letter[m]);
  return d;
}

static void move(const HeadGroup *g, const ParamInfo *params, int set, const Xfer *x,
                 Pool *pool) {
  const int64_t H = g->heads;
  if (g->attnpool) {
    /* w2 [hidden, H]: particle i is column i */
    const ParamInfo *p = &params[g->w2];
    int64_t rows = p->type.rank == 2 ? p->type.dim[0] : g->dim;
    int64_t cols = p->type.rank == 2 ? p->type.dim[1] : H;
    for (int64_t i = 0; i < H; i++)
      for (int64_t r = 0; r < rows; r++) xmove(x, p->offset + r * cols + i, i * rows + r, 1);
    return;
  }
  int letter[4];
  int32_t index[4];
  int n = set_mats(g, set, letter, index);
  const int64_t D = particles_dim(g, params, set);
  int64_t off = 0;
  for (int m = 0; m < n; m++) {
    const ParamInfo *p = &params[index[m]];
    slice_copy(g, p, letter[m], x, off, D, pool);
    off += slice_size(g, p, letter[m]);
  }
}

void particles_gather(const HeadGroup *g, const ParamInfo *params, int set,
                      const float *buf, float *out, Pool *pool) {
  if (!g || !params || !buf || !out || set < 0 || set >= particles_nsets(g)) return;
  Xfer x = {buf, NULL, NULL, out};
  move(g, params, set, &x, pool);
}

void particles_scatter(const HeadGroup *g, const ParamInfo *params, int set,
                       const float *in, float *buf, Pool *pool) {
  if (!g || !params || !buf || !in || set < 0 || set >= particles_nsets(g)) return;
  Xfer x = {NULL, buf, in, NULL};
  move(g, params, set, &x, pool);
}

/* optim.c - learning-rate schedules, clipping by global norm, and the
 * optimizers (sgd with momentum, adam, adamw) over flat float buffers.
 *
 * The update rules follow PyTorch's torch.optim.SGD, Adam and AdamW
 * (default options: no dampening, no nesterov, no amsgrad) and
 * torch.nn.utils.clip_grad_norm_, so runs can be compared with it; the
 * reference vectors in tests/golden/optim/ come from PyTorch itself.
 * The update is float arithmetic, as PyTorch's: the step's scalars (the
 * bias corrections, 1 - lr wd, ...) are computed in double and rounded
 * once to float (JitOptArgs), then each element takes a few float
 * operations, the products that feed a sum fused with fmaf (one rounding:
 * the same bits in every clone of the loop and in the JIT's kernel,
 * compiler/jit/jit.c, emit_opt, which does the same operations in the same
 * order).  Buffers of OPT_PAR_MIN floats and more are split over the
 * pool: each element is independent, so any split gives the same bits.
 *
 * Schedules (step is 0-based, total the number of steps, N the warmup):
 *   constant             lr
 *   warmup N (constant)  lr * (step+1)/N for step < N, then lr
 *   warmup N linear      warmup, then lr * (total-step)/(total-N)
 *   warmup N cosine      warmup, then lr * 0.5 * (1 + cos(pi (step-N)/(total-N)))
 * The decays reach 0 at step == total and stay there.  The warmup is
 * PyTorch's LinearLR(start_factor=1/N, end_factor=1, total_iters=N-1): lr/N
 * at step 0, lr at step N-1, and never a step with lr 0.
 */
#include "optim.h"

#include <math.h>

#include "../../base/simd.h"
#include "../exec/exec_jit.h"

/* The update's loops vectorise only when sqrtf need not set errno (v is
 * never negative) and `c ? a : b` may become a vector select (the kernels'
 * reason, kernels_int.h); neither changes a value. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-math-errno", "no-trapping-math")
#endif

/* Floats from which an update is split over the pool (about 10 us of
 * work on one core: a pool_for costs a few). */
#define OPT_PAR_MIN 16384

double sched_lr(const TrainDecl *t, int64_t step, int64_t total) {
  if (!t) return 0.0;
  const double lr = t->lr;
  if (step < 0) step = 0;
  if (t->sched == SCHED_CONSTANT) return lr;
  const int64_t n = t->warmup > 0 ? t->warmup : 0;
  if (step < n) return lr * (double)(step + 1) / (double)n;
  if (t->sched == SCHED_WARMUP_CONSTANT) return lr;
  if (step >= total) return 0.0;
  /* total > step >= n here, so total - n >= 1 */
  const double span = (double)(total - n);
  const double progress = (double)(step - n) / span;
  if (t->sched == SCHED_WARMUP_LINEAR) return lr * (1.0 - progress);
  if (t->sched == SCHED_WARMUP_COSINE) return lr * 0.5 * (1.0 + cos(M_PI * progress));
  return lr;
}

double clip_global_norm(float *g, int64_t n, double max_norm) {
  if (!g || n <= 0) return 0.0;
  double ss = 0.0;
  for (int64_t i = 0; i < n; i++) ss += (double)g[i] * (double)g[i];
  const double norm = sqrt(ss);
  /* As torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6),
   * applied when it is below 1.  A non-finite norm leaves g alone (the
   * caller sees it in the return value). */
  if (!isfinite(norm) || !(max_norm > 0)) return norm;
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0)
    for (int64_t i = 0; i < n; i++) g[i] = (float)((double)g[i] * coef);
  return norm;
}

/* One update's arguments: the JIT's (the same struct, so both loops read
 * the same float scalars), the decay mask (C loop only) and the kind. */
typedef struct OptRun {
  JitOptArgs a;
  const uint8_t *mask; /* NULL: every element decays */
  int kind;            /* JIT_OPT_* */
} OptRun;

/* torch.optim.SGD: d = g + wd w; v = mu v + d (v = d at the first step,
 * which is the same from v = 0); w -= lr v.  Without momentum w -= lr d.
 * Adam (L2: d = g + wd w) and AdamW (w *= 1 - lr wd first), as
 * torch.optim.Adam and AdamW:
 *   m = b1 m + (1-b1) d;  v = b2 v + (1-b2) d^2
 *   w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * each line one fmaf where a product meets a sum. */
K_CLONES static void opt_range(const OptRun *R, int64_t lo, int64_t hi) {
  const JitOptArgs *A = &R->a;
  float *restrict w = A->w, *restrict om = A->m, *restrict ov = A->v;
  const float *restrict g = A->g;
  const uint8_t *mask = R->mask;
  const float wd = A->wd, decay = A->decay, b1 = A->b1, omb1 = A->omb1, b2 = A->b2,
              omb2 = A->omb2, eps = A->eps, inv_sb = A->inv_sb, nss = A->nss, nlr = A->nlr,
              mu = A->mu;
  switch (R->kind) {
  case JIT_OPT_SGD:
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) {
      float wdi = (!mask || mask[i]) ? wd : 0.0f;
      w[i] = fmaf(nlr, fmaf(wdi, w[i], g[i]), w[i]);
    }
    break;
  case JIT_OPT_SGD_MOMENTUM:
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) {
      float wdi = (!mask || mask[i]) ? wd : 0.0f;
      float v = fmaf(mu, om[i], fmaf(wdi, w[i], g[i]));
      om[i] = v;
      w[i] = fmaf(nlr, v, w[i]);
    }
    break;
  case JIT_OPT_ADAM:
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) {
      float wdi = (!mask || mask[i]) ? wd : 0.0f;
      float wi = w[i], d = fmaf(wdi, wi, g[i]);
      float m = fmaf(b1, om[i], omb1 * d);
      float v = fmaf(b2, ov[i], (omb2 * d) * d);
      om[i] = m;
      ov[i] = v;
      w[i] = fmaf(nss, m / fmaf(sqrtf(v), inv_sb, eps), wi);
    }
    break;
  case JIT_OPT_ADAMW:
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) {
      float di = (!mask || mask[i]) ? decay : 1.0f;
      float wi = w[i] * di, d = g[i];
      float m = fmaf(b1, om[i], omb1 * d);
      float v = fmaf(b2, ov[i], (omb2 * d) * d);
      om[i] = m;
      ov[i] = v;
      w[i] = fmaf(nss, m / fmaf(sqrtf(v), inv_sb, eps), wi);
    }
    break;
  }
}

static void opt_chunk(void *arg, int64_t lo, int64_t hi, int worker) { opt_range(arg, lo, hi); }

static void run_update(Optim *o, OptRun *R) {
  const int par = o->n >= OPT_PAR_MIN;
  if (o->jit && !R->mask) {
    exec_jit_loop(o->pool, par ? 2 : 1, o->jit, &R->a, o->n);
    return;
  }
  if (par && o->pool) pool_for(o->pool, o->n, 1, opt_chunk, R);
  else opt_range(R, 0, o->n);
}

static void sgd_step(Optim *o, float *w, const float *g, double lr, const uint8_t *mask) {
  const int use_v = o->momentum != 0.0 && o->m;
  OptRun R = {.a = {.w = w, .g = g, .m = o->m, .wd = (float)o->weight_decay, .nlr = (float)-lr,
                    .mu = (float)o->momentum},
              .mask = mask,
              .kind = use_v ? JIT_OPT_SGD_MOMENTUM : JIT_OPT_SGD};
  run_update(o, &R);
}

static void adam_step(Optim *o, float *w, const float *g, double lr, const uint8_t *mask,
                      int decoupled) {
  if (!o->m || !o->v) return;
  const double t = (double)o->t;
  const double bc1 = 1.0 - pow(o->beta1, t), bc2 = 1.0 - pow(o->beta2, t);
  OptRun R = {.a = {.w = w, .g = g, .m = o->m, .v = o->v, .wd = (float)o->weight_decay,
                    .decay = (float)(1.0 - lr * o->weight_decay), .b1 = (float)o->beta1,
                    .omb1 = (float)(1.0 - o->beta1), .b2 = (float)o->beta2,
                    .omb2 = (float)(1.0 - o->beta2), .eps = (float)o->eps,
                    .inv_sb = (float)(1.0 / sqrt(bc2)), .nss = (float)(-lr / bc1)},
              .mask = mask,
              .kind = decoupled ? JIT_OPT_ADAMW : JIT_OPT_ADAM};
  run_update(o, &R);
}

void optim_step(Optim *o, float *w, const float *g, double lr, const uint8_t *decay_mask) {
  if (!o || !w || !g || o->n <= 0) return;
  o->t++;
  switch (o->kind) {
  case OPT_SGD: sgd_step(o, w, g, lr, decay_mask); break;
  case OPT_ADAM: adam_step(o, w, g, lr, decay_mask, 0); break;
  case OPT_ADAMW: adam_step(o, w, g, lr, decay_mask, 1); break;
  }
}

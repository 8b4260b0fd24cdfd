/* optim.c - learning-rate schedules, clipping by global norm, and the
 * optimizers (sgd with momentum, adam, adamw) over flat float buffers.
 *
 * The update rules follow PyTorch's torch.optim.SGD, Adam and AdamW
 * (default options: no dampening, no nesterov, no amsgrad) and
 * torch.nn.utils.clip_grad_norm_, so runs can be compared with it; the
 * reference vectors in tests/golden/optim/ come from PyTorch itself.
 * Per-element arithmetic is done in double and rounded once to float.
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

#include "../exec/exec_jit.h"

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

static inline double decay_of(const Optim *o, const uint8_t *mask, int64_t i) {
  return (!mask || mask[i]) ? o->weight_decay : 0.0;
}

/* torch.optim.SGD: d = g + wd w; v = mu v + d (v = d at the first step,
 * which is the same from v = 0); w -= lr v.  Without momentum w -= lr d. */
static void sgd_step(Optim *o, float *w, const float *g, double lr, const uint8_t *mask) {
  const double mu = o->momentum;
  const int use_v = mu != 0.0 && o->m;
  if (o->jit && !mask) {
    JitOptArgs A = {.w = w, .g = g, .m = o->m, .lr = lr, .wd = o->weight_decay, .momentum = mu};
    exec_jit_loop(o->pool, o->n >= 65536 ? 2 : 1, o->jit, &A, o->n);
    return;
  }
  for (int64_t i = 0; i < o->n; i++) {
    double d = (double)g[i] + decay_of(o, mask, i) * (double)w[i];
    if (use_v) {
      double v = mu * (double)o->m[i] + d;
      o->m[i] = (float)v;
      d = v;
    }
    w[i] = (float)((double)w[i] - lr * d);
  }
}

typedef struct AdamArg {
  const Optim *o;
  float *w;
  const float *g;
  const uint8_t *mask;
  int decoupled;
  double lr, step_size, sqrt_bc2;
} AdamArg;

/* Elements [lo, hi) of an Adam or AdamW update. */
static void adam_range(void *arg, int64_t lo, int64_t hi, int worker) {
  const AdamArg *A = arg;
  const Optim *o = A->o;
  const double b1 = o->beta1, b2 = o->beta2, eps = o->eps, lr = A->lr;
  const double step_size = A->step_size, sqrt_bc2 = A->sqrt_bc2;
  float *w = A->w, *om = o->m, *ov = o->v;
  const float *g = A->g;
  for (int64_t i = lo; i < hi; i++) {
    double wd = decay_of(o, A->mask, i), wi = w[i], d = g[i];
    if (A->decoupled)
      wi *= 1.0 - lr * wd;
    else
      d += wd * wi;
    double m = b1 * (double)om[i] + (1.0 - b1) * d;
    double v = b2 * (double)ov[i] + (1.0 - b2) * d * d;
    om[i] = (float)m;
    ov[i] = (float)v;
    double denom = sqrt((double)ov[i]) / sqrt_bc2 + eps;
    w[i] = (float)(wi - step_size * (double)om[i] / denom);
  }
}

/* torch.optim.Adam (L2: d = g + wd w) and AdamW (w *= 1 - lr wd first):
 *   m = b1 m + (1-b1) d;  v = b2 v + (1-b2) d^2
 *   w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * Long buffers are split over the pool (each element is independent). */
static void adam_step(Optim *o, float *w, const float *g, double lr, const uint8_t *mask,
                      int decoupled) {
  if (!o->m || !o->v) return;
  const double t = (double)o->t;
  const double bc1 = 1.0 - pow(o->beta1, t), bc2 = 1.0 - pow(o->beta2, t);
  if (o->jit && !mask) {
    JitOptArgs J = {.w = w, .g = g, .m = o->m, .v = o->v, .lr = lr, .wd = o->weight_decay,
                    .b1 = o->beta1, .b2 = o->beta2, .eps = o->eps, .step_size = lr / bc1,
                    .sqrt_bc2 = sqrt(bc2)};
    exec_jit_loop(o->pool, o->n >= 65536 ? 2 : 1, o->jit, &J, o->n);
    return;
  }
  AdamArg A = {o, w, g, mask, decoupled, lr, lr / bc1, sqrt(bc2)};
  if (o->n >= 65536) pool_for(o->pool, o->n, 1, adam_range, &A);
  else adam_range(&A, 0, o->n, 0);
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

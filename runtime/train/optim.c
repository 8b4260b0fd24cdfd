/* optim.c - learning-rate schedules, clipping by global norm, and the
 * optimizers (sgd with momentum, adam, adamw) over flat float buffers.
 *
 * The update rules follow PyTorch's torch.optim.SGD, Adam and AdamW
 * (default options: no dampening, no nesterov, no amsgrad) and
 * torch.nn.utils.clip_grad_norm_, so runs can be compared with it; the
 * reference vectors in tests/golden/optim/ come from PyTorch itself.
 * Adam and AdamW update each element in float on the context's pool, as
 * PyTorch's float32 tensors do; SGD in double, rounded once to float.
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
  float b1, nb1, b2, nb2, eps, wd, shrink, step_size, sqrt_bc2;
} AdamArg;

/* Elements [lo, hi) of an Adam or AdamW update, in float as PyTorch's
 * float32 tensors compute it (each element independent, so the loop
 * vectorises and any split over threads gives the same bits). */
static void adam_range(void *arg, int64_t lo, int64_t hi, int worker) {
  const AdamArg *A = arg;
  const float b1 = A->b1, nb1 = A->nb1, b2 = A->b2, nb2 = A->nb2, eps = A->eps;
  const float step_size = A->step_size, sqrt_bc2 = A->sqrt_bc2;
  float *restrict w = A->w, *restrict om = A->o->m, *restrict ov = A->o->v;
  const float *restrict g = A->g;
  const uint8_t *mask = A->mask;
  const float wd = A->wd, shrink = A->shrink;
  const int decoupled = A->decoupled;
#pragma omp simd
  for (int64_t i = lo; i < hi; i++) {
    bool on = !mask || mask[i]; /* decay applies to this weight */
    float wi = w[i], d = g[i];
    if (decoupled) wi *= on ? shrink : 1.0f;
    else d += on ? wd * wi : 0.0f;
    float m = b1 * om[i] + nb1 * d;
    float v = b2 * ov[i] + nb2 * (d * d);
    om[i] = m;
    ov[i] = v;
    float denom = __builtin_sqrtf(v) / sqrt_bc2 + eps;
    w[i] = wi - step_size * (m / denom);
  }
}

/* torch.optim.Adam (L2: d = g + wd w) and AdamW (w *= 1 - lr wd first):
 *   m = b1 m + (1-b1) d;  v = b2 v + (1-b2) d^2
 *   w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * The bias corrections are computed in double once per step; the update
 * of every element is in float, split over the pool. */
static void adam_step(Optim *o, float *w, const float *g, double lr, const uint8_t *mask,
                      int decoupled) {
  if (!o->m || !o->v) return;
  const double t = (double)o->t;
  const double bc1 = 1.0 - pow(o->beta1, t), bc2 = 1.0 - pow(o->beta2, t);
  AdamArg A = {o,
               w,
               g,
               mask,
               decoupled,
               (float)o->beta1,
               (float)(1.0 - o->beta1),
               (float)o->beta2,
               (float)(1.0 - o->beta2),
               (float)o->eps,
               (float)o->weight_decay,
               (float)(1.0 - lr * o->weight_decay),
               (float)(lr / bc1),
               (float)sqrt(bc2)};
  if (o->n >= 16384) pool_for(o->pool, o->n, 1, adam_range, &A);
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

/* optim.h - optimizers (sgd with momentum, adam, adamw), learning-rate
 * schedules and clipping by global norm, over flat float buffers. */
#ifndef RA_OPTIM_H
#define RA_OPTIM_H

#include <stdint.h>

#include "../../compiler/program.h"
#include "../exec/pool.h"
#include "../../compiler/jit/jit.h"

typedef struct Optim {
  OptKind kind;
  double lr, momentum, beta1, beta2, eps, weight_decay;
  int64_t n;        /* floats */
  float *m, *v;     /* moments (sgd uses m as velocity); owned by caller */
  int64_t t;        /* steps taken */
  Pool *pool;       /* workers for the update (elementwise: any count gives
                       the same bits); NULL = the caller only */
  JitLoopFn jit;    /* the compiled update of this kind (exec_jit_optimizer),
                       or NULL: the C loops below */
} Optim;

/* The learning rate at step (0-based) of total steps. */
double sched_lr(const TrainDecl *t, int64_t step, int64_t total);
/* Scales g so its global L2 norm is at most max_norm (> 0); returns the norm
 * before clipping.  Summation order is fixed (deterministic). */
double clip_global_norm(float *g, int64_t n, double max_norm);
/* One update of params w with gradient g at learning rate lr.
 * adam: L2 decay added to the gradient; adamw: decoupled decay.
 * sgd: v = momentum v + g (+ wd w); w -= lr v.  Bias-corrected Adam as
 * PyTorch.  decay_mask (may be NULL) has 1 for floats that get weight decay. */
void optim_step(Optim *o, float *w, const float *g, double lr, const uint8_t *decay_mask);

#endif

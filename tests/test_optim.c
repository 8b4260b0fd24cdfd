/* test_optim.c - optimizers, clipping and schedules against PyTorch's
 * (tests/gen_golden_optim.py wrote tests/golden/optim/) and by hand. */
#include <stdint.h>

#include "../compiler/program.h"
#include "../runtime/train/optim.h"
#include "testutil.h"

#define RTOL 1e-5
#define ATOL 1e-6
#define GOLD_DIR "tests/golden/optim/"

/* ---- golden files: '#' comments, then records "name count" + numbers ---- */

/* the golden readers of testutil.h, in this suite's folder */
#define gold_load(g, file) tu_gold_load((g), GOLD_DIR, (file))
#define gold_free(g) tu_gold_free(g)
#define gold_find(g, name) tu_gold_find((g), (name))
#define gold_get(g, name, n) tu_gold_get((g), (name), (n))

static double gold_num(const Gold *g, const char *name) { return gold_get(g, name, 1)[0]; }

static void to_floats(float *out, const double *v, long n) {
  for (long i = 0; i < n; i++) out[i] = (float)v[i];
}

static void close_to(double got, double want, const char *what) {
  cr_assert(fabs(got - want) <= ATOL + RTOL * fabs(want), "%s: got %.9g want %.9g", what, got,
            want);
}

/* ---- optimizers ---- */

enum { NW = 12, STEPS = 5 };

/* The golden case tiled `tiles` times (the mask with it) and run on a pool
 * of `threads` (0: none): long buffers take the vector loops and the
 * pool's split, and every tile must still follow PyTorch's trajectory. */
static void run_optimizer_tiled(const char *file, OptKind want_kind, int tiles, int threads) {
  Gold gd;
  gold_load(&gd, file);
  const size_t N = (size_t)NW * (size_t)tiles;
  float *w = calloc(N, sizeof *w), *g = calloc(N, sizeof *g), *m = calloc(N, sizeof *m),
        *v = calloc(N, sizeof *v), want[NW];
  uint8_t *mask = calloc(N, 1);
  cr_assert(w && g && m && v && mask);
  Pool *pool = threads > 0 ? pool_new(ra_alloc_default(), threads) : NULL;
  const double *maskv = gold_get(&gd, "mask", NW), *lr = gold_get(&gd, "lr", STEPS);
  const double *betas = gold_get(&gd, "betas", 2);
  const double *grads = gold_get(&gd, "grads", NW * STEPS);
  const double *traj = gold_get(&gd, "w", NW * STEPS);
  for (size_t i = 0; i < N; i++) mask[i] = maskv[i % NW] != 0;
  Optim o;
  memset(&o, 0, sizeof o);
  o.kind = (OptKind)(int)gold_num(&gd, "kind");
  cr_assert_eq(o.kind, want_kind, "%s: kind", file);
  o.momentum = gold_num(&gd, "momentum");
  o.beta1 = betas[0];
  o.beta2 = betas[1];
  o.eps = gold_num(&gd, "eps");
  o.weight_decay = gold_num(&gd, "weight_decay");
  o.n = (int64_t)N;
  o.m = m;
  o.v = v;
  o.pool = pool;
  for (int k = 0; k < tiles; k++) to_floats(w + k * NW, gold_get(&gd, "w0", NW), NW);
  for (int t = 0; t < STEPS; t++) {
    for (int k = 0; k < tiles; k++) to_floats(g + k * NW, grads + t * NW, NW);
    optim_step(&o, w, g, lr[t], mask);
    cr_assert_eq(o.t, t + 1);
    to_floats(want, traj + t * NW, NW);
    for (int k = 0; k < tiles; k++) {
      char what[96];
      snprintf(what, sizeof what, "%s step %d tile %d of %d", file, t + 1, k, tiles);
      tu_allclose(w + k * NW, want, NW, RTOL, ATOL, what);
    }
  }
  pool_free(pool);
  free(w);
  free(g);
  free(m);
  free(v);
  free(mask);
  gold_free(&gd);
}

static void run_optimizer(const char *file, OptKind want_kind) {
  run_optimizer_tiled(file, want_kind, 1, 0);
  /* 2001 tiles: 24,012 floats, split over the pool (optim.c, OPT_PAR_MIN) */
  run_optimizer_tiled(file, want_kind, 2001, 2);
}

Test(optim, torch_sgd) { run_optimizer("sgd", OPT_SGD); }
Test(optim, torch_sgd_momentum_decay) { run_optimizer("sgd_momentum", OPT_SGD); }
Test(optim, torch_adam) { run_optimizer("adam", OPT_ADAM); }
Test(optim, torch_adam_l2_varying_lr) { run_optimizer("adam_l2", OPT_ADAM); }
Test(optim, torch_adamw_varying_lr) { run_optimizer("adamw", OPT_ADAMW); }

/* sgd momentum 0.5, wd 0.1, lr 0.1 on w = 1, g = 1:
 *   step 1: d = 1 + 0.1 = 1.1, v = 1.1, w = 1 - 0.11 = 0.89
 *   step 2: d = 1 + 0.089 = 1.089, v = 0.55 + 1.089 = 1.639, w = 0.89 - 0.1639 = 0.7261 */
Test(optim, sgd_by_hand) {
  float w[2] = {1, 1}, g[2] = {1, 1}, m[2] = {0, 0};
  uint8_t mask[2] = {1, 0};
  Optim o = {.kind = OPT_SGD, .momentum = 0.5, .weight_decay = 0.1, .n = 2, .m = m};
  optim_step(&o, w, g, 0.1, mask);
  optim_step(&o, w, g, 0.1, mask);
  cr_assert_float_eq(w[0], 0.7261f, 1e-6);
  cr_assert_float_eq(m[0], 1.639f, 1e-6);
  /* no decay: v = 1, 1.5; w = 1 - 0.1 - 0.15 */
  cr_assert_float_eq(w[1], 0.75f, 1e-6);
  /* momentum 0 needs no velocity buffer */
  float w2[1] = {2}, g2[1] = {4};
  Optim p = {.kind = OPT_SGD, .n = 1};
  optim_step(&p, w2, g2, 0.25, NULL);
  cr_assert_float_eq(w2[0], 1.0f, 1e-7);
}

/* Adam's first step moves each weight by lr * g / (|g| + eps) (bias
 * correction makes m_hat = g, v_hat = g^2); adam's L2 decay enters the
 * gradient, adamw's scales w first.  NULL mask = decay everywhere. */
Test(optim, adam_first_step_by_hand) {
  float w[3] = {1, -2, 0.5f}, g[3] = {0.3f, -4, 1e-3f}, m[3] = {0}, v[3] = {0};
  Optim o = {.kind = OPT_ADAM, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .n = 3, .m = m, .v = v};
  optim_step(&o, w, g, 0.01, NULL);
  cr_assert_float_eq(w[0], 0.99f, 1e-6);
  cr_assert_float_eq(w[1], -1.99f, 1e-6);
  cr_assert_float_eq(w[2], 0.49f, 1e-6);

  /* adamw with g = 0: moments stay 0, so only the decay acts: w (1 - lr wd) */
  float w2[2] = {3, -1}, z[2] = {0, 0}, m2[2] = {0}, v2[2] = {0};
  Optim q = {.kind = OPT_ADAMW, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.5,
             .n = 2, .m = m2, .v = v2};
  optim_step(&q, w2, z, 0.1, NULL);
  cr_assert_float_eq(w2[0], 3 * 0.95f, 1e-6);
  cr_assert_float_eq(w2[1], -0.95f, 1e-6);
  uint8_t none[2] = {0, 0};
  optim_step(&q, w2, z, 0.1, none);
  cr_assert_float_eq(w2[0], 3 * 0.95f, 1e-6);

  /* adam with g = 0 and L2: the gradient is wd w, so the first step is lr */
  float w3[1] = {2}, z3[1] = {0}, m3[1] = {0}, v3[1] = {0};
  Optim r = {.kind = OPT_ADAM, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.5,
             .n = 1, .m = m3, .v = v3};
  optim_step(&r, w3, z3, 0.1, NULL);
  cr_assert_float_eq(w3[0], 1.9f, 1e-6);
}

/* The update is elementwise and float: a long buffer gives the same bits
 * on 1, 2 and 3 threads (the pool's split) as element by element alone. */
Test(optim, same_bits_on_any_thread_count) {
  const int64_t n = 70001;
  const OptKind kinds[] = {OPT_ADAMW, OPT_ADAM, OPT_SGD, OPT_SGD};
  const double mom[] = {0, 0, 0.9, 0};
  for (int c = 0; c < 4; c++) {
    float *ref = NULL, *refm = NULL;
    for (int threads = 0; threads <= 3; threads++) {
      float *w = malloc((size_t)n * 4), *g = malloc((size_t)n * 4), *m = calloc((size_t)n, 4),
            *v = calloc((size_t)n, 4);
      cr_assert(w && g && m && v);
      for (int64_t i = 0; i < n; i++) {
        w[i] = (float)sin(0.37 * (double)i);
        g[i] = (float)(cos(1.3 * (double)i) * (i % 7 == 0 ? 1e-5 : 0.1));
      }
      Pool *pool = threads > 0 ? pool_new(ra_alloc_default(), threads) : NULL;
      Optim o = {.kind = kinds[c], .momentum = mom[c], .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                 .weight_decay = 0.01, .n = n, .m = m, .v = v, .pool = pool};
      if (threads == 0) {
        /* element by element: buffers of one float each */
        for (int step = 0; step < 4; step++)
          for (int64_t i = 0; i < n; i++) {
            Optim e = o;
            e.n = 1;
            e.m = m + i;
            e.v = v + i;
            e.t = step;
            optim_step(&e, w + i, g + i, 1e-3 * (step + 1), NULL);
          }
        ref = w;
        refm = m;
        free(g);
        free(v);
        continue;
      }
      for (int step = 0; step < 4; step++) optim_step(&o, w, g, 1e-3 * (step + 1), NULL);
      cr_assert(memcmp(w, ref, (size_t)n * 4) == 0, "kind %d: weights differ on %d threads", c,
                threads);
      cr_assert(memcmp(m, refm, (size_t)n * 4) == 0, "kind %d: moments differ on %d threads", c,
                threads);
      pool_free(pool);
      free(w);
      free(g);
      free(m);
      free(v);
    }
    free(ref);
    free(refm);
  }
}

/* ---- clipping ---- */

Test(optim, torch_clip_grad_norm) {
  Gold gd;
  gold_load(&gd, "clip");
  const char *tags[2] = {"big", "small"};
  for (int k = 0; k < 2; k++) {
    char key[32];
    float g[20], want[20];
    snprintf(key, sizeof key, "%s_g", tags[k]);
    to_floats(g, gold_get(&gd, key, 20), 20);
    snprintf(key, sizeof key, "%s_max_norm", tags[k]);
    double max_norm = gold_num(&gd, key);
    double norm = clip_global_norm(g, 20, max_norm);
    snprintf(key, sizeof key, "%s_norm", tags[k]);
    close_to(norm, gold_num(&gd, key), key);
    snprintf(key, sizeof key, "%s_clipped", tags[k]);
    to_floats(want, gold_get(&gd, key, 20), 20);
    tu_allclose(g, want, 20, RTOL, ATOL, key);
  }
  gold_free(&gd);
}

Test(optim, clip_by_hand) {
  float g[2] = {3, 4};
  double norm = clip_global_norm(g, 2, 1.0); /* the macros evaluate twice */
  cr_assert_float_eq(norm, 5.0, 1e-12);
  cr_assert_float_eq(g[0], (float)(3 / (5 + 1e-6)), 1e-7);
  cr_assert_float_eq(g[1], (float)(4 / (5 + 1e-6)), 1e-7);
  float h[2] = {0.3f, 0.4f};
  norm = clip_global_norm(h, 2, 1.0);
  cr_assert_float_eq(norm, 0.5, 1e-7);
  cr_assert_eq(h[0], 0.3f);
  cr_assert_eq(h[1], 0.4f);
  /* at norm == max_norm PyTorch still scales by max / (norm + 1e-6) */
  float e[2] = {3, 4};
  norm = clip_global_norm(e, 2, 5.0);
  cr_assert_eq(norm, 5.0);
  cr_assert_eq(e[0], (float)(3 * (5 / (5 + 1e-6))));
  cr_assert(e[0] < 3.0f);
  float bad[2] = {INFINITY, 1};
  cr_assert(isinf(clip_global_norm(bad, 2, 1.0)));
  cr_assert_eq(bad[1], 1.0f, "a non-finite norm leaves g alone");
}

/* ---- schedules ---- */

Test(optim, torch_schedules) {
  Gold gd;
  gold_load(&gd, "sched");
  const char *kinds[3] = {"constant", "linear", "cosine"};
  const SchedKind sk[3] = {SCHED_WARMUP_CONSTANT, SCHED_WARMUP_LINEAR, SCHED_WARMUP_COSINE};
  for (int k = 0; k < 3; k++) {
    char key[32];
    TrainDecl t;
    memset(&t, 0, sizeof t);
    snprintf(key, sizeof key, "%s_sched", kinds[k]);
    cr_assert_eq((int)gold_num(&gd, key), (int)sk[k]);
    t.sched = sk[k];
    snprintf(key, sizeof key, "%s_lr", kinds[k]);
    t.lr = gold_num(&gd, key);
    snprintf(key, sizeof key, "%s_warmup", kinds[k]);
    t.warmup = (int64_t)gold_num(&gd, key);
    snprintf(key, sizeof key, "%s_total", kinds[k]);
    int64_t total = (int64_t)gold_num(&gd, key);
    const double *want = gold_get(&gd, kinds[k], total + 1);
    for (int64_t s = 0; s <= total; s++) {
      snprintf(key, sizeof key, "%s step %ld", kinds[k], (long)s);
      double got = sched_lr(&t, s, total);
      cr_assert(fabs(got - want[s]) <= 1e-12, "%s: got %.17g want %.17g", key, got, want[s]);
    }
  }
  gold_free(&gd);
}

Test(optim, schedules_by_hand) {
  TrainDecl t;
  memset(&t, 0, sizeof t);
  t.lr = 2;
  t.sched = SCHED_CONSTANT;
  t.warmup = 5; /* ignored by constant */
  cr_assert_eq(sched_lr(&t, 0, 10), 2.0);
  cr_assert_eq(sched_lr(&t, 100, 10), 2.0);

  /* warmup 1: full lr at step 0; the decay starts at step 1 */
  t.sched = SCHED_WARMUP_LINEAR;
  t.warmup = 1;
  cr_assert_eq(sched_lr(&t, 0, 5), 2.0);
  cr_assert_eq(sched_lr(&t, 1, 5), 2.0);
  cr_assert_float_eq(sched_lr(&t, 3, 5), 1.0, 1e-12);
  cr_assert_eq(sched_lr(&t, 5, 5), 0.0);
  cr_assert_eq(sched_lr(&t, 9, 5), 0.0);

  /* warmup 0 cosine: a plain cosine from lr at step 0 to 0 at total */
  t.sched = SCHED_WARMUP_COSINE;
  t.warmup = 0;
  cr_assert_eq(sched_lr(&t, 0, 8), 2.0);
  cr_assert_float_eq(sched_lr(&t, 4, 8), 1.0, 1e-12);
  cr_assert_eq(sched_lr(&t, 8, 8), 0.0);

  /* total within the warmup: the warmup runs, then 0 */
  t.warmup = 10;
  cr_assert_float_eq(sched_lr(&t, 2, 6), 0.6, 1e-12);
  cr_assert_eq(sched_lr(&t, 12, 6), 0.0);
  t.sched = SCHED_WARMUP_CONSTANT;
  cr_assert_float_eq(sched_lr(&t, 9, 6), 2.0, 1e-12);
  cr_assert_float_eq(sched_lr(&t, 99, 6), 2.0, 1e-12);
}

/* test_particles.c - svgd/spos particle updates and the head-slice layout,
 * against the reference vectors of tests/gen_golden_particles.py (an
 * independent float64 implementation) and against hand-computed values. */
#include <stdint.h>

#include "../compiler/program.h"
#include "../runtime/train/particles.h"
#include "../runtime/exec/rng.h"
#include "testutil.h"

#define RTOL 1e-5
#define ATOL 1e-6
#define GOLD_DIR "tests/golden/particles/"

/* ---- golden files: '#' comments, then records "name count" + numbers ---- */

/* the golden readers of testutil.h, in this suite's folder */
#define gold_load(g, file) tu_gold_load((g), GOLD_DIR, (file))
#define gold_free(g) tu_gold_free(g)
#define gold_find(g, name) tu_gold_find((g), (name))
#define gold_get(g, name, n) tu_gold_get((g), (name), (n))

static double gold_num(const Gold *g, const char *name) { return gold_get(g, name, 1)[0]; }

static float *gold_floats(const Gold *g, const char *name, long n) {
  const double *v = gold_get(g, name, n);
  float *out = malloc((size_t)n * sizeof *out);
  cr_assert(out != NULL);
  for (long i = 0; i < n; i++) out[i] = (float)v[i];
  return out;
}

static void close_to(double got, double want, const char *what) {
  cr_assert(fabs(got - want) <= ATOL + RTOL * fabs(want), "%s: got %.9g want %.9g", what, got,
            want);
}

static Repulsion rep_make(RepKind kind, double alpha, double s, double beta, double bw) {
  Repulsion r;
  memset(&r, 0, sizeof r);
  r.kind = kind;
  r.group = GROUP_EACH;
  r.particles = PART_Q | PART_K | PART_V;
  r.every = 1;
  r.bw_median = bw <= 0;
  r.bandwidth = bw;
  r.alpha = alpha;
  r.stepsize = s;
  r.beta = beta;
  return r;
}

static int all_finite(const float *x, long n) {
  for (long i = 0; i < n; i++)
    if (!isfinite(x[i])) return 0;
  return 1;
}

/* Runs one golden case: G, the intermediates left in the work buffer
 * (D then K), the stats, and R (from an svgd run with g = 0, alpha 1, s 1,
 * where G = -R / M). */
static void run_case(const char *file) {
  Gold gd;
  gold_load(&gd, file);
  int64_t M = (int64_t)gold_num(&gd, "M"), D = (int64_t)gold_num(&gd, "D");
  RepKind kind = (RepKind)(int)gold_num(&gd, "kind");
  double bw = gold_num(&gd, "bandwidth");
  Repulsion rep = rep_make(kind, gold_num(&gd, "alpha"), gold_num(&gd, "stepsize"),
                           gold_num(&gd, "beta"), bw);
  float *theta = gold_floats(&gd, "theta", M * D);
  float *g = gold_floats(&gd, "g", M * D);
  float *xi = gold_find(&gd, "xi") ? gold_floats(&gd, "xi", M * D) : NULL;
  float *G = gold_floats(&gd, "G", M * D);
  float *dist = gold_floats(&gd, "dist", M * M);
  float *K = gold_floats(&gd, "K", M * M);
  float *R = gold_floats(&gd, "R", M * D);
  int64_t nw = particles_work_floats(M, D);
  cr_assert_eq(nw, 2 * M * M + 2 * M * D);
  float *work = calloc((size_t)nw, sizeof *work);
  cr_assert(work != NULL);

  ParticleStats st;
  cr_assert_eq(particles_update_noise(&rep, M, D, theta, g, work, xi, &st, NULL, NULL), 0, "%s",
               file);
  char what[96];
  snprintf(what, sizeof what, "%s: G", file);
  tu_allclose(g, G, (long)(M * D), RTOL, ATOL, what);
  snprintf(what, sizeof what, "%s: D", file);
  tu_allclose(work, dist, (long)(M * M), RTOL, ATOL, what);
  snprintf(what, sizeof what, "%s: K", file);
  tu_allclose(work + M * M, K, (long)(M * M), RTOL, ATOL, what);
  close_to(st.h2, gold_num(&gd, "h2"), "h2");
  close_to(st.med, gold_num(&gd, "med"), "med");
  close_to(st.med_abs_g, gold_num(&gd, "med_abs_g"), "med|g|");

  /* R: svgd, alpha 1, s 1, g = 0 gives G = -R / M */
  Repulsion rr = rep_make(REP_SVGD, 1.0, 1.0, 1.0, bw);
  memset(g, 0, (size_t)(M * D) * sizeof *g);
  cr_assert_eq(particles_update_noise(&rr, M, D, theta, g, work, NULL, NULL, NULL, NULL), 0);
  for (int64_t k = 0; k < M * D; k++) g[k] *= -(float)M;
  double rmax = 0;
  for (int64_t k = 0; k < M * D; k++) rmax = fmax(rmax, fabs(R[k]));
  snprintf(what, sizeof what, "%s: R", file);
  tu_allclose(g, R, (long)(M * D), RTOL, ATOL * (1 + rmax), what);

  free(theta); free(g); free(xi); free(G); free(dist); free(K); free(R); free(work);
  gold_free(&gd);
}

/* ---- the worked example ----
 * theta = (0,0), (1,0), (0,2);  g = (1,0), (0,1), (1,1);  svgd, alpha = s = 1.
 *   D = [0 1 4; 1 0 5; 4 5 0]; sorted 0 0 0 1 1 4 4 5 5, median (5th of 9) = 1
 *   h2 = 0.5 * 1 / ln 4 = 0.360674, so 1/(2 h2) = ln 4 and K_ij = 4^-D_ij:
 *   K = [1 1/4 1/256; 1/4 1 1/1024; 1/256 1/1024 1]
 *   R_1 = [1/4 (0-1, 0-0) + 1/256 (0-0, 0-2)] / h2 = (-1/4, -1/128) * 2 ln 4
 *       = (-ln 2, -ln 2 / 32) = (-0.693147, -0.0216608)
 *   sum_j K_1j g_j = (1 + 1/256, 1/4 + 1/256)
 *   G_1 = (sum_j K_1j g_j - R_1) / 3 = ((1.00390625 + ln 2) / 3, (0.25390625 + ln 2 / 32) / 3)
 *       = (0.565684, 0.0918557)
 *   G_2 = ((0.25 + 1/1024) - (0.25 + 1/1024) 2 ln 4, (1 + 1/1024) + (2/1024) 2 ln 4) / 3
 *       = (-0.148293, 0.335464)
 */
Test(particles, worked_example_by_hand) {
  const float theta[6] = {0, 0, 1, 0, 0, 2};
  float g[6] = {1, 0, 0, 1, 1, 1};
  float work[30];
  Repulsion rep = rep_make(REP_SVGD, 1, 1, 1, 0);
  ParticleStats st;
  cr_assert_eq(particles_work_floats(3, 2), 30);
  cr_assert_eq(particles_update(&rep, 3, 2, theta, g, work, 1, 2, 3, &st, NULL, NULL), 0);
  const double ln2 = log(2.0), ln4 = log(4.0);
  close_to(st.med, 1.0, "med");
  close_to(st.h2, 0.5 / ln4, "h2");
  const float Kwant[9] = {1, 0.25f, 1 / 256.f, 0.25f, 1, 1 / 1024.f, 1 / 256.f, 1 / 1024.f, 1};
  tu_allclose(work + 9, Kwant, 9, RTOL, ATOL, "K");
  const float Gwant[4] = {(float)((1.00390625 + ln2) / 3), (float)((0.25390625 + ln2 / 32) / 3),
                          (float)((0.2509765625 - 0.2509765625 * 2 * ln4) / 3),
                          (float)((1.0009765625 + 2.0 / 1024 * 2 * ln4) / 3)};
  tu_allclose(g, Gwant, 4, RTOL, ATOL, "G_1, G_2");
  close_to(g[0], 0.565684, "G_11");
  close_to(g[3], 0.335464, "G_22");
}

Test(particles, golden_worked) {
  run_case("worked_svgd");
  run_case("worked_spos");
}

Test(particles, golden_svgd_m8_d48) {
  run_case("svgd_m8_d48");
  run_case("svgd_m8_d48_alpha");
}

Test(particles, golden_fixed_bandwidth) { run_case("svgd_fixed_bw"); }

Test(particles, golden_spos) {
  run_case("spos_nonoise");
  run_case("spos_xi");
  run_case("spos_m5_d3");
}

Test(particles, golden_degenerate) {
  run_case("svgd_d1");
  run_case("svgd_m2");
  run_case("svgd_m1");
  run_case("spos_m1");
  run_case("svgd_identical");
  run_case("svgd_far");
}

/* M = 1: D = 0, h2 = 1, K = 1, R = 0, so svgd G = s g exactly and spos
 * G = s ((1 + beta) g - sqrt(2 beta / s) xi med|g|). */
Test(particles, single_particle) {
  const float theta[3] = {3, -1, 2};
  float g[3] = {0.5f, -2, 1};
  float work[8];
  Repulsion rep = rep_make(REP_SVGD, 7, 0.25, 1, 0);
  ParticleStats st;
  cr_assert_eq(particles_update_noise(&rep, 1, 3, theta, g, work, NULL, &st, NULL, NULL), 0);
  cr_assert_float_eq(st.h2, 1.0, 0);
  cr_assert_eq(g[0], 0.125f);
  cr_assert_eq(g[1], -0.5f);
  cr_assert_eq(g[2], 0.25f);

  float g2[3] = {0.5f, -2, 1}, xi[3] = {1, 0, -2};
  Repulsion sp = rep_make(REP_SPOS, 1, 0.5, 1, 0);
  cr_assert_eq(particles_update_noise(&sp, 1, 3, theta, g2, work, xi, &st, NULL, NULL), 0);
  cr_assert_float_eq(st.med_abs_g, 1.0, 0); /* |g| = 0.5 2 1 */
  /* s = 0.5, beta = 1: G = 0.5 (2 g - 2 xi) = g - xi */
  const float want[3] = {-0.5f, -2, 3};
  tu_allclose(g2, want, 3, RTOL, ATOL, "spos M=1");
}

/* Identical particles: med = 0, so h2 = 1 (no division by zero), K = 1,
 * R = 0 and every G_i = s * mean_j g_j. */
Test(particles, identical_particles) {
  const float theta[8] = {1, 2, 1, 2, 1, 2, 1, 2};
  float g[8] = {1, 0, 2, 4, 3, -4, 6, 8};
  float work[2 * 16 + 2 * 8];
  Repulsion rep = rep_make(REP_SVGD, 1, 2, 1, 0);
  ParticleStats st;
  cr_assert_eq(particles_update_noise(&rep, 4, 2, theta, g, work, NULL, &st, NULL, NULL), 0);
  cr_assert_eq(st.med, 0.0);
  cr_assert_eq(st.h2, 1.0);
  cr_assert(all_finite(g, 8));
  for (int i = 0; i < 4; i++) {
    cr_assert_float_eq(g[2 * i], 2 * 3.0f, 1e-6); /* mean of 1 2 3 6 = 3 */
    cr_assert_float_eq(g[2 * i + 1], 2 * 2.0f, 1e-6);
  }
}

/* A far particle: its kernel entries underflow to 0, so its G is s g / M
 * and no NaN appears anywhere. */
Test(particles, huge_distances) {
  const float theta[6] = {0, 0, 1e-3f, 0, 1e4f, 0};
  float g[6] = {1, 2, 3, 4, 5, 6};
  float work[2 * 9 + 2 * 6];
  Repulsion rep = rep_make(REP_SVGD, 1, 1, 1, 0);
  cr_assert_eq(particles_update_noise(&rep, 3, 2, theta, g, work, NULL, NULL, NULL, NULL), 0);
  cr_assert(all_finite(g, 6));
  cr_assert_eq(work[9 + 2], 0.0f); /* K_13 */
  cr_assert_eq(work[9 + 5], 0.0f); /* K_23 */
  cr_assert_float_eq(g[4], 5 / 3.0f, 1e-6);
  cr_assert_float_eq(g[5], 6 / 3.0f, 1e-6);

  /* a tiny fixed bandwidth: K is the identity, G = s g / M, R = 0 */
  float g2[6] = {1, 2, 3, 4, 5, 6};
  Repulsion fx = rep_make(REP_SVGD, 1, 3, 1, 1e-5);
  cr_assert_eq(particles_update_noise(&fx, 3, 2, theta, g2, work, NULL, NULL, NULL, NULL), 0);
  for (int k = 0; k < 6; k++) cr_assert_float_eq(g2[k], (float)(k + 1), 1e-6);
}

Test(particles, none_and_errors) {
  const float theta[4] = {0, 1, 2, 3};
  float g[4] = {1, 2, 3, 4};
  float work[64];
  Repulsion none = rep_make(REP_NONE, 1, 1, 1, 0);
  cr_assert_eq(particles_update(&none, 2, 2, theta, g, work, 1, 1, 0, NULL, NULL, NULL), 0);
  for (int k = 0; k < 4; k++) cr_assert_eq(g[k], (float)(k + 1));

  Repulsion sv = rep_make(REP_SVGD, 1, 1, 1, 0);
  cr_assert_eq(particles_update(&sv, 0, 2, theta, g, work, 1, 1, 0, NULL, NULL, NULL), -1);
  cr_assert_eq(particles_update(&sv, 2, 0, theta, g, work, 1, 1, 0, NULL, NULL, NULL), -1);
  cr_assert_eq(particles_update(NULL, 2, 2, theta, g, work, 1, 1, 0, NULL, NULL, NULL), -1);
  cr_assert_eq(particles_work_floats(0, 3), 0);
  Repulsion bw = rep_make(REP_SVGD, 1, 1, 1, 0);
  bw.bw_median = false;
  bw.bandwidth = 0;
  cr_assert_eq(particles_update(&bw, 2, 2, theta, g, work, 1, 1, 0, NULL, NULL, NULL), -1);
  Repulsion sp = rep_make(REP_SPOS, 1, 0, 1, 0);
  cr_assert_eq(particles_update(&sp, 2, 2, theta, g, work, 1, 1, 0, NULL, NULL, NULL), -1);
  sp.stepsize = 1;
  sp.beta = -1;
  cr_assert_eq(particles_update(&sp, 2, 2, theta, g, work, 1, 1, 0, NULL, NULL, NULL), -1);
  for (int k = 0; k < 4; k++) cr_assert_eq(g[k], (float)(k + 1), "failed calls leave g");
}

/* svgd ignores the noise; zero noise equals no noise. */
Test(particles, noise_free_paths_agree) {
  enum { M = 4, D = 6 };
  float theta[M * D], g0[M * D], a[M * D], b[M * D], zeros[M * D] = {0};
  float work[2 * M * M + 2 * M * D];
  for (int k = 0; k < M * D; k++) {
    theta[k] = rng_normal(5, 1, (uint64_t)k);
    g0[k] = rng_normal(5, 2, (uint64_t)k);
  }
  Repulsion sv = rep_make(REP_SVGD, 0.5, 0.3, 1, 0);
  memcpy(a, g0, sizeof a);
  memcpy(b, g0, sizeof b);
  cr_assert_eq(particles_update(&sv, M, D, theta, a, work, 9, 9, 9, NULL, NULL, NULL), 0);
  cr_assert_eq(particles_update_noise(&sv, M, D, theta, b, work, NULL, NULL, NULL, NULL), 0);
  cr_assert_eq(memcmp(a, b, sizeof a), 0);
  Repulsion sp = rep_make(REP_SPOS, 0.5, 0.3, 0.7, 0);
  memcpy(a, g0, sizeof a);
  memcpy(b, g0, sizeof b);
  cr_assert_eq(particles_update_noise(&sp, M, D, theta, a, work, zeros, NULL, NULL, NULL), 0);
  cr_assert_eq(particles_update_noise(&sp, M, D, theta, b, work, NULL, NULL, NULL, NULL), 0);
  cr_assert_eq(memcmp(a, b, sizeof a), 0);
}

/* The spos noise: exactly -s sqrt(2 beta / s) med|g| xi with
 * xi = rng_normal(seed, stream, step*M*D + i*D + d); its statistics; and
 * its dependence on (seed, stream, step). */
Test(particles, spos_noise) {
  enum { M = 8, D = 64, STEPS = 50 };
  const double s = 0.5, beta = 0.3, medg = 0.5;
  static float theta[M * D], g0[M * D], det[M * D], a[M * D], b[M * D];
  static float work[2 * M * M + 2 * M * D];
  for (int k = 0; k < M * D; k++) {
    theta[k] = rng_normal(11, 1, (uint64_t)k);
    g0[k] = (k % 2) ? 0.5f : -0.5f; /* |g| = 0.5 everywhere: med|g| = 0.5 */
  }
  Repulsion sp = rep_make(REP_SPOS, 0, s, beta, 0);
  memcpy(det, g0, sizeof det);
  cr_assert_eq(particles_update_noise(&sp, M, D, theta, det, work, NULL, NULL, NULL, NULL), 0);
  const double amp = s * sqrt(2 * beta / s) * medg; /* std of the noise term */
  double sum = 0, sum2 = 0;
  long n = 0;
  const uint64_t seed = 42, stream = RNG_STREAM_SPOS + 3;
  for (int64_t step = 0; step < STEPS; step++) {
    memcpy(a, g0, sizeof a);
    ParticleStats st;
    cr_assert_eq(
        particles_update(&sp, M, D, theta, a, work, seed, stream, step, &st, NULL, NULL), 0);
    cr_assert_float_eq(st.med_abs_g, medg, 0);
    for (int i = 0; i < M; i++)
      for (int d = 0; d < D; d++) {
        int k = i * D + d;
        double noise = (double)a[k] - (double)det[k];
        double xi = rng_normal(seed, stream, (uint64_t)(step * M * D + i * D + d));
        cr_assert(fabs(noise - (-amp * xi)) <= 1e-6 + 1e-5 * fabs(amp * xi),
                  "noise of step %ld particle %d coord %d: %g, want %g", (long)step, i, d, noise,
                  -amp * xi);
        sum += noise;
        sum2 += noise * noise;
        n++;
      }
  }
  double mean = sum / n, var = sum2 / n - mean * mean;
  double want_var = s * s * (2 * beta / s) * medg * medg; /* = 2 beta s med^2 = 0.075 */
  cr_assert(fabs(mean) < 4 * sqrt(want_var / n), "noise mean %g", mean);
  cr_assert(fabs(var / want_var - 1) < 0.05, "noise variance %g, want %g", var, want_var);

  /* same (seed, stream, step): identical; another step/stream/seed: not */
  memcpy(a, g0, sizeof a);
  memcpy(b, g0, sizeof b);
  particles_update(&sp, M, D, theta, a, work, seed, stream, 7, NULL, NULL, NULL);
  particles_update(&sp, M, D, theta, b, work, seed, stream, 7, NULL, NULL, NULL);
  cr_assert_eq(memcmp(a, b, sizeof a), 0);
  const struct { uint64_t seed, stream; int64_t step; } other[3] = {
      {seed, stream, 8}, {seed, stream + 1, 7}, {seed + 1, stream, 7}};
  for (int o = 0; o < 3; o++) {
    memcpy(b, g0, sizeof b);
    particles_update(&sp, M, D, theta, b, work, other[o].seed, other[o].stream, other[o].step,
                     NULL, NULL, NULL);
    int differ = 0;
    for (int k = 0; k < M * D; k++) differ += a[k] != b[k];
    cr_assert(differ > M * D / 2, "variant %d: only %d of %d values differ", o, differ, M * D);
  }
}

/* The loops on a pool of 2 or 3 workers give the bits of the caller alone:
 * svgd and spos, 8 particles of more coordinates than one block (and not a
 * multiple of it), with the median bandwidth. */
Test(particles, same_bits_on_a_pool) {
  enum { M = 8, D = 1000 };
  static float theta[M * D], g0[M * D], one[M * D], many[M * D];
  static float work[2 * M * M + 2 * M * D];
  for (int k = 0; k < M * D; k++) {
    theta[k] = rng_normal(3, 1, (uint64_t)k);
    g0[k] = rng_normal(3, 2, (uint64_t)k);
  }
  for (int kind = 0; kind < 2; kind++) {
    Repulsion rep = rep_make(kind ? REP_SPOS : REP_SVGD, 0.5, 0.3, 0.2, 0);
    memcpy(one, g0, sizeof one);
    cr_assert_eq(particles_update(&rep, M, D, theta, one, work, 7, 5, 3, NULL, NULL, NULL), 0);
    for (int t = 2; t <= 3; t++) {
      Pool *pool = pool_new(ra_alloc_default(), t);
      cr_assert(pool && pool_size(pool) == t);
      memcpy(many, g0, sizeof many);
      cr_assert_eq(particles_update(&rep, M, D, theta, many, work, 7, 5, 3, NULL, pool, NULL), 0);
      cr_assert_eq(memcmp(one, many, sizeof one), 0, "kind %d on %d threads", kind, t);
      pool_free(pool);
    }
  }
}

/* Every coordinate's direction is the formula in double, bit for bit:
 * the sums over j in index order, then G = (kg - alpha r / h^2) / M
 * (+ beta g_i - noise xi_i for spos), times s.  5 particles (a group of
 * four and one alone) of 1003 coordinates (vectors of eight and a tail of
 * three), on 1 and 3 threads. */
Test(particles, direction_by_formula) {
  enum { M = 5, D = 1003 };
  static float theta[M * D], g0[M * D], xi[M * D], got[M * D];
  static float work[2 * M * M + 2 * M * D];
  for (int k = 0; k < M * D; k++) {
    theta[k] = rng_normal(4, 1, (uint64_t)k);
    g0[k] = rng_normal(4, 2, (uint64_t)k);
    xi[k] = rng_normal(4, 3, (uint64_t)k);
  }
  for (int kind = 0; kind < 2; kind++)
    for (int t = 1; t <= 3; t += 2) {
      Repulsion rep = rep_make(kind ? REP_SPOS : REP_SVGD, 0.7, 0.3, 0.2, 0);
      Pool *pool = t > 1 ? pool_new(ra_alloc_default(), t) : NULL;
      memcpy(got, g0, sizeof got);
      ParticleStats st;
      cr_assert_eq(particles_update_noise(&rep, M, D, theta, got, work, kind ? xi : NULL, &st,
                                          pool, NULL), 0);
      const float *K = work + M * M;
      double noise = kind ? sqrt(2.0 * rep.beta / rep.stepsize) * st.med_abs_g : 0.0;
      for (int i = 0; i < M; i++)
        for (int d = 0; d < D; d++) {
          double kg = 0.0, r = 0.0, ti = (double)theta[i * D + d];
          for (int j = 0; j < M; j++) {
            double kij = K[i * M + j];
            kg += kij * (double)g0[j * D + d];
            r += kij * (ti - (double)theta[j * D + d]);
          }
          double G = (kg - rep.alpha * (r / st.h2)) * (1.0 / M);
          if (kind) {
            G += rep.beta * (double)g0[i * D + d];
            G -= noise * (double)xi[i * D + d];
          }
          float want = (float)(rep.stepsize * G);
          cr_assert(memcmp(&want, &got[i * D + d], sizeof want) == 0,
                    "kind %d, %d threads: particle %d coordinate %d: %.9g, want %.9g", kind, t, i,
                    d, got[i * D + d], want);
        }
      pool_free(pool);
    }
}

/* ---- layout ---- */

/* The attention layer of layout.txt: dim 3, 2 heads of 2; the buffer holds
 * wq bq wk bk wv bv wo bo, each ParamInfo pointing at its offset. */
typedef struct Layer {
  ParamInfo params[8];
  HeadGroup hg;
} Layer;

static IrType ty2(int64_t a, int64_t b) {
  IrType t;
  memset(&t, 0, sizeof t);
  t.dtype = IR_F32;
  t.rank = 2;
  t.dim[0] = a;
  t.dim[1] = b;
  return t;
}

static void layer_make(Layer *L, const double *offsets, RepGroup group, unsigned parts) {
  memset(L, 0, sizeof *L);
  const char *names[8] = {"wq", "bq", "wk", "bk", "wv", "bv", "wo", "bo"};
  for (int p = 0; p < 8; p++) {
    L->params[p].path = names[p];
    L->params[p].offset = (int64_t)offsets[p];
    if (p % 2) {
      L->params[p].type.rank = 1;
      L->params[p].type.dim[0] = p == 7 ? 3 : 4;
    } else {
      L->params[p].type = p == 6 ? ty2(4, 3) : ty2(3, 4);
    }
  }
  L->hg.path = "m.a";
  L->hg.heads = 2;
  L->hg.head_dim = 2;
  L->hg.dim = 3;
  L->hg.wq = 0;
  L->hg.wk = 2;
  L->hg.wv = 4;
  L->hg.wo = 6;
  L->hg.w2 = -1;
  L->hg.rep = rep_make(REP_SVGD, 0.5, 1, 1, 0);
  L->hg.rep.group = group;
  L->hg.rep.particles = parts;
}

static void check_gather(const Layer *L, int set, const Gold *gd, const char *rec, long D,
                         const float *buf, long nbuf) {
  cr_assert_eq(particles_dim(&L->hg, L->params, set), D, "%s: dim", rec);
  float *want = gold_floats(gd, rec, 2 * D);
  float *got = calloc((size_t)(2 * D), sizeof *got);
  particles_gather(&L->hg, L->params, set, buf, got, NULL);
  tu_allclose(got, want, 2 * D, 0, 0, rec);
  /* scatter puts exactly those values back, and touches nothing else */
  float *back = malloc((size_t)nbuf * sizeof *back);
  for (long k = 0; k < nbuf; k++) back[k] = -1;
  particles_scatter(&L->hg, L->params, set, got, back, NULL);
  long placed = 0;
  for (long k = 0; k < nbuf; k++) {
    if (back[k] == -1) continue;
    cr_assert_eq(back[k], buf[k], "%s: scatter wrote %g at %ld", rec, back[k], k);
    placed++;
  }
  cr_assert_eq(placed, 2 * D, "%s: scatter placed %ld values", rec, placed);
  free(want);
  free(got);
  free(back);
}

Test(particles, layout_each_and_joint) {
  Gold gd;
  gold_load(&gd, "layout");
  long nbuf = (long)gold_num(&gd, "nbuf");
  const double *off = gold_get(&gd, "offsets", 8);
  float *buf = malloc((size_t)nbuf * sizeof *buf);
  for (long k = 0; k < nbuf; k++) buf[k] = (float)k;
  Layer L;

  layer_make(&L, off, GROUP_EACH, PART_Q | PART_K | PART_V);
  cr_assert_eq(particles_nsets(&L.hg), 3);
  check_gather(&L, 0, &gd, "each_q", 6, buf, nbuf);
  check_gather(&L, 1, &gd, "each_k", 6, buf, nbuf);
  check_gather(&L, 2, &gd, "each_v", 6, buf, nbuf);
  cr_assert_eq(particles_dim(&L.hg, L.params, 3), 0, "no fourth set");

  layer_make(&L, off, GROUP_EACH, 0); /* 0 = default q|k|v */
  cr_assert_eq(particles_nsets(&L.hg), 3);

  layer_make(&L, off, GROUP_EACH, PART_Q | PART_K | PART_V | PART_O);
  cr_assert_eq(particles_nsets(&L.hg), 4);
  check_gather(&L, 3, &gd, "each_o", 6, buf, nbuf);

  layer_make(&L, off, GROUP_EACH, PART_V);
  cr_assert_eq(particles_nsets(&L.hg), 1);
  check_gather(&L, 0, &gd, "each_v", 6, buf, nbuf);

  layer_make(&L, off, GROUP_JOINT, PART_Q | PART_K);
  cr_assert_eq(particles_nsets(&L.hg), 1);
  check_gather(&L, 0, &gd, "joint_qk", 12, buf, nbuf);

  layer_make(&L, off, GROUP_JOINT, PART_Q | PART_K | PART_V | PART_O);
  cr_assert_eq(particles_nsets(&L.hg), 1);
  check_gather(&L, 0, &gd, "joint_qkvo", 24, buf, nbuf);
  free(buf);
  gold_free(&gd);
}

Test(particles, layout_attnpool) {
  Gold gd;
  gold_load(&gd, "layout");
  int64_t hidden = (int64_t)gold_num(&gd, "pool_hidden");
  int64_t off = (int64_t)gold_num(&gd, "pool_w2_offset");
  ParamInfo params[2];
  memset(params, 0, sizeof params);
  params[0].path = "p.w1";
  params[0].type = ty2(hidden, 3);
  params[0].offset = 0;
  params[1].path = "p.w2";
  params[1].type = ty2(hidden, 2);
  params[1].offset = off;
  HeadGroup hg;
  memset(&hg, 0, sizeof hg);
  hg.attnpool = true;
  hg.heads = 2;
  hg.dim = 3;
  hg.wq = hg.wk = hg.wv = hg.wo = -1;
  hg.w2 = 1;
  hg.rep = rep_make(REP_SVGD, 1, 1, 1, 0);
  cr_assert_eq(particles_nsets(&hg), 1);
  cr_assert_eq(particles_dim(&hg, params, 0), hidden);
  long nbuf = (long)(off + hidden * 2);
  float buf[64], got[64], back[64];
  cr_assert(nbuf <= 64);
  for (long k = 0; k < nbuf; k++) buf[k] = (float)k;
  particles_gather(&hg, params, 0, buf, got, NULL);
  float *want = gold_floats(&gd, "pool", 2 * hidden);
  tu_allclose(got, want, (long)(2 * hidden), 0, 0, "attnpool particles");
  memset(back, 0, sizeof back);
  particles_scatter(&hg, params, 0, got, back, NULL);
  for (long k = 0; k < nbuf; k++) cr_assert_eq(back[k], k < off ? 0.0f : buf[k]);
  free(want);
  gold_free(&gd);
}

/* A layer big enough for the rows to be shared among workers (dim 96, 3
 * heads of 8, every matrix chosen, joint): gather puts each head's values
 * where the layout says, on 1-3 threads, and scatter puts them back. */
Test(particles, layout_on_a_pool) {
  enum { DIM = 96, H = 3, HD = 8, IN = H * HD };
  Layer L;
  const double off[8] = {0, DIM * IN, DIM * IN + IN, 2 * DIM * IN + IN, 2 * DIM * IN + 2 * IN,
                         3 * DIM * IN + 2 * IN, 3 * DIM * IN + 3 * IN, 4 * DIM * IN + 3 * IN};
  layer_make(&L, off, GROUP_JOINT, PART_Q | PART_K | PART_V | PART_O);
  L.hg.heads = H, L.hg.head_dim = HD, L.hg.dim = DIM;
  for (int p = 0; p < 8; p += 2) L.params[p].type = p == 6 ? ty2(IN, DIM) : ty2(DIM, IN);
  for (int p = 1; p < 8; p += 2) L.params[p].type.dim[0] = p == 7 ? DIM : IN;
  const long nbuf = 4 * DIM * IN + 3 * IN + DIM, D = 4 * DIM * HD;
  cr_assert_eq(particles_dim(&L.hg, L.params, 0), D);
  float *buf = malloc((size_t)nbuf * sizeof *buf), *back = malloc((size_t)nbuf * sizeof *back);
  float *got = malloc((size_t)(H * D) * sizeof *got);
  for (long k = 0; k < nbuf; k++) buf[k] = (float)k;
  for (int t = 1; t <= 3; t++) {
    Pool *pool = t > 1 ? pool_new(ra_alloc_default(), t) : NULL;
    memset(got, 0, (size_t)(H * D) * sizeof *got);
    particles_gather(&L.hg, L.params, 0, buf, got, pool);
    for (int i = 0; i < H; i++)
      for (int m = 0; m < 4; m++)
        for (int r = 0; r < DIM; r++)
          for (int c = 0; c < HD; c++) {
            /* wq, wk, wv: row r, column i*HD + c; wo: row i*HD + c, column r */
            long at = m < 3 ? (long)off[2 * m] + r * IN + i * HD + c
                            : (long)off[6] + (i * HD + c) * DIM + r;
            long slot = m < 3 ? r * HD + c : c * DIM + r;
            cr_assert_eq(got[i * D + m * DIM * HD + slot], buf[at],
                         "%d threads: head %d matrix %d row %d column %d", t, i, m, r, c);
          }
    for (long k = 0; k < nbuf; k++) back[k] = -1;
    particles_scatter(&L.hg, L.params, 0, got, back, pool);
    long placed = 0;
    for (long k = 0; k < nbuf; k++)
      if (back[k] != -1) {
        cr_assert_eq(back[k], buf[k], "%d threads: scatter wrote %g at %ld", t, back[k], k);
        placed++;
      }
    cr_assert_eq(placed, H * D, "%d threads: scatter placed %ld values", t, placed);
    pool_free(pool);
  }
  free(buf);
  free(back);
  free(got);
}

/* The whole flow over a layer: gather theta and g per set, update, scatter
 * G back into the gradient buffer. */
static void group_apply(const Layer *L, const float *params, float *grads) {
  for (int s = 0; s < particles_nsets(&L->hg); s++) {
    int64_t M = L->hg.heads, D = particles_dim(&L->hg, L->params, s);
    float *th = malloc((size_t)(M * D) * sizeof *th), *g = malloc((size_t)(M * D) * sizeof *g);
    float *work = malloc((size_t)particles_work_floats(M, D) * sizeof *work);
    particles_gather(&L->hg, L->params, s, params, th, NULL);
    particles_gather(&L->hg, L->params, s, grads, g, NULL);
    cr_assert_eq(particles_update(&L->hg.rep, M, D, th, g, work, 1, RNG_STREAM_SPOS + (uint64_t)s,
                                  0, NULL, NULL, NULL), 0);
    particles_scatter(&L->hg, L->params, s, g, grads, NULL);
    free(th);
    free(g);
    free(work);
  }
}

Test(particles, golden_group_update) {
  Gold lay, gd;
  gold_load(&lay, "layout");
  gold_load(&gd, "group_update");
  long nbuf = (long)gold_num(&lay, "nbuf");
  const double *off = gold_get(&lay, "offsets", 8);
  float *params = gold_floats(&gd, "params", nbuf);
  float *grads = gold_floats(&gd, "grads", nbuf);
  float *want = gold_floats(&gd, "each_qkv", nbuf);
  Layer L;
  layer_make(&L, off, GROUP_EACH, PART_Q | PART_K | PART_V);
  group_apply(&L, params, grads);
  tu_allclose(grads, want, nbuf, RTOL, ATOL, "group each qkv");
  free(grads);
  free(want);
  grads = gold_floats(&gd, "grads", nbuf);
  want = gold_floats(&gd, "joint_qkvo", nbuf);
  layer_make(&L, off, GROUP_JOINT, PART_Q | PART_K | PART_V | PART_O);
  group_apply(&L, params, grads);
  tu_allclose(grads, want, nbuf, RTOL, ATOL, "group joint qkvo");
  free(params);
  free(grads);
  free(want);
  gold_free(&lay);
  gold_free(&gd);
}

/* ---- the schedule: start, stop, every, when (repulsion_applies) ---- */

typedef struct FakeDiv {
  const double *v; /* the diversity measured at each call */
  int calls;
} FakeDiv;

static double fake_div(void *ud) {
  FakeDiv *f = ud;
  return f->v[f->calls++];
}

static Repulsion sched_rep(int64_t start, int64_t stop, int64_t every) {
  Repulsion r = rep_make(REP_SVGD, 1, 1, 1, 0);
  r.start = start;
  r.stop = stop;
  r.every = every;
  return r;
}

Test(schedule, start_stop_and_every) {
  Repulsion r = sched_rep(3, 9, 2);
  char got[16] = {0};
  for (int s = 0; s < 12; s++) got[s] = repulsion_applies(&r, s, NULL, NULL, NULL) ? 'x' : '.';
  /* steps 3..8, the even ones: 4, 6, 8 */
  cr_assert_str_eq(got, "....x.x.x...");
  r = sched_rep(0, 0, 1);
  for (int s = 0; s < 12; s++) got[s] = repulsion_applies(&r, s, NULL, NULL, NULL) ? 'x' : '.';
  cr_assert_str_eq(got, "xxxxxxxxxxxx");
  r = sched_rep(5, 0, 1);
  for (int s = 0; s < 12; s++) got[s] = repulsion_applies(&r, s, NULL, NULL, NULL) ? 'x' : '.';
  cr_assert_str_eq(got, ".....xxxxxxx");
  r = sched_rep(0, 4, 1);
  for (int s = 0; s < 12; s++) got[s] = repulsion_applies(&r, s, NULL, NULL, NULL) ? 'x' : '.';
  cr_assert_str_eq(got, "xxxx........");
  /* none and penalty have no particle update */
  r.kind = REP_NONE;
  cr_assert(!repulsion_applies(&r, 0, NULL, NULL, NULL));
  r.kind = REP_PENALTY;
  cr_assert(!repulsion_applies(&r, 0, NULL, NULL, NULL));
}

/* `when diversity < 0.6 every 3`: measured on the due steps only, until it
 * holds; from then on it stays on without measuring. */
Test(schedule, a_trigger_stays_on) {
  Repulsion r = sched_rep(0, 0, 3);
  r.when = REP_WHEN_LT;
  r.threshold = 0.6;
  const double v[] = {0.9, 0.7, 0.6, 0.5, 0.1};
  FakeDiv f = {v, 0};
  bool on = false;
  char got[24] = {0};
  for (int s = 0; s < 21; s++) got[s] = repulsion_applies(&r, s, &on, fake_div, &f) ? 'x' : '.';
  /* checks at 0 (0.9), 3 (0.7), 6 (0.6: not < 0.6), 9 (0.5: fires) */
  cr_assert_str_eq(got, ".........x..x..x..x..");
  cr_assert_eq(f.calls, 4);
  cr_assert(on);
  /* a state that is already on (resumed) applies without measuring */
  FakeDiv g = {v, 0};
  on = true;
  cr_assert(repulsion_applies(&r, 3, &on, fake_div, &g));
  cr_assert_eq(g.calls, 0);
  /* <=, >, >= */
  const double w[] = {0.6};
  int kinds[3] = {REP_WHEN_LE, REP_WHEN_GT, REP_WHEN_GE};
  bool want[3] = {true, false, true};
  for (int i = 0; i < 3; i++) {
    r.when = kinds[i];
    FakeDiv h = {w, 0};
    on = false;
    cr_assert_eq(repulsion_applies(&r, 0, &on, fake_div, &h), want[i], "comparison %d", kinds[i]);
    cr_assert_eq(on, want[i]);
  }
  /* outside the window nothing is measured */
  r = sched_rep(10, 20, 1);
  r.when = REP_WHEN_LT;
  r.threshold = 1;
  FakeDiv z = {v, 0};
  on = false;
  cr_assert(!repulsion_applies(&r, 9, &on, fake_div, &z));
  cr_assert(!repulsion_applies(&r, 20, &on, fake_div, &z));
  cr_assert_eq(z.calls, 0);
  cr_assert(repulsion_applies(&r, 10, &on, fake_div, &z));
  cr_assert_eq(z.calls, 1);
}

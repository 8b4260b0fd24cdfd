/* test_stats.c - cli/stats.c against numbers computed with scipy
 * (tests/gen_golden_stats.py writes tests/golden/stats/). */
#include "testutil.h"
#include "../cli/stats.h"

#define GOLD_DIR "tests/golden/stats/"

static void close_rel(double got, double want, double rel, const char *what) {
  double tol = rel * fabs(want);
  if (tol < 1e-300) tol = 1e-300;
  cr_assert(fabs(got - want) <= tol, "%s: got %.17g want %.17g (rel diff %.3g)", what, got, want,
            want != 0 ? fabs(got - want) / fabs(want) : fabs(got));
}

Test(stats, t_quantiles_match_scipy) {
  Gold g;
  tu_gold_load(&g, GOLD_DIR, "quantile");
  const GoldRec *df = tu_gold_find(&g, "df"), *p = tu_gold_find(&g, "p");
  cr_assert(df && p);
  cr_assert_eq(df->n, 32, "df 1..30, 50, 100");
  const double *q = tu_gold_get(&g, "q", df->n * p->n);
  for (long i = 0; i < df->n; i++)
    for (long j = 0; j < p->n; j++) {
      char what[64];
      snprintf(what, sizeof what, "t quantile df %g p %g", df->v[i], p->v[j]);
      close_rel(st_t_quantile(p->v[j], df->v[i]), q[i * p->n + j], 1e-9, what);
      /* the CDF of the quantile is the probability */
      close_rel(st_t_cdf(st_t_quantile(p->v[j], df->v[i]), df->v[i]), p->v[j], 1e-9, what);
    }
  tu_gold_free(&g);
}

Test(stats, p_values_and_cdf_match_scipy) {
  Gold g;
  tu_gold_load(&g, GOLD_DIR, "pvalue");
  const GoldRec *t = tu_gold_find(&g, "t"), *df = tu_gold_find(&g, "df");
  cr_assert(t && df);
  const double *p = tu_gold_get(&g, "p", t->n * df->n);
  const double *cdf = tu_gold_get(&g, "cdf", t->n * df->n);
  for (long i = 0; i < df->n; i++)
    for (long j = 0; j < t->n; j++) {
      char what[64];
      snprintf(what, sizeof what, "p-value t %g df %g", t->v[j], df->v[i]);
      close_rel(st_t_p2(t->v[j], df->v[i]), p[i * t->n + j], 1e-9, what);
      snprintf(what, sizeof what, "cdf t %g df %g", t->v[j], df->v[i]);
      close_rel(st_t_cdf(t->v[j], df->v[i]), cdf[i * t->n + j], 1e-9, what);
    }
  tu_gold_free(&g);
}

Test(stats, betainc_matches_scipy) {
  Gold g;
  tu_gold_load(&g, GOLD_DIR, "betainc");
  const GoldRec *r = tu_gold_find(&g, "abxv");
  cr_assert(r && r->n % 4 == 0 && r->n >= 40);
  for (long i = 0; i < r->n; i += 4) {
    char what[80];
    snprintf(what, sizeof what, "I_%g(%g, %g)", r->v[i + 2], r->v[i], r->v[i + 1]);
    close_rel(st_betainc(r->v[i], r->v[i + 1], r->v[i + 2]), r->v[i + 3], 1e-9, what);
  }
  cr_assert_eq(st_betainc(2, 3, 0), 0);
  cr_assert_eq(st_betainc(2, 3, 1), 1);
  tu_gold_free(&g);
}

Test(stats, confidence_intervals_match_scipy) {
  Gold g;
  tu_gold_load(&g, GOLD_DIR, "samples");
  const char *names[] = {"s2", "s3", "s5", "s8"};
  for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
    const GoldRec *x = tu_gold_find(&g, names[k]);
    cr_assert(x, "sample %s", names[k]);
    char cin[40];
    snprintf(cin, sizeof cin, "%s_ci", names[k]);
    const double *want = tu_gold_get(&g, cin, 3);
    StCI c = st_ci95(x->v, (size_t)x->n);
    cr_assert_eq(c.n, (size_t)x->n);
    close_rel(c.mean, want[0], 1e-12, "mean");
    close_rel(c.sd, want[1], 1e-9, "sd");
    close_rel(c.half, want[2], 1e-9, "CI half-width");
  }
  tu_gold_free(&g);
}

Test(stats, paired_t_test_matches_scipy) {
  Gold g;
  tu_gold_load(&g, GOLD_DIR, "samples");
  const char *names[] = {"p3", "p4", "p5"};
  for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
    char nx[40], ny[40], nr[40];
    snprintf(nx, sizeof nx, "%s_x", names[k]);
    snprintf(ny, sizeof ny, "%s_y", names[k]);
    snprintf(nr, sizeof nr, "%s_r", names[k]);
    const GoldRec *x = tu_gold_find(&g, nx), *y = tu_gold_find(&g, ny);
    cr_assert(x && y && x->n == y->n);
    const double *want = tu_gold_get(&g, nr, 5);
    StPaired r = st_paired(x->v, y->v, (size_t)x->n);
    close_rel(r.mean, want[0], 1e-9, "mean difference");
    close_rel(r.sd, want[1], 1e-9, "sd of the differences");
    close_rel(r.half, want[2], 1e-9, "CI half-width of the difference");
    close_rel(r.t, want[3], 1e-9, "t");
    close_rel(r.p, want[4], 1e-9, "p");
    cr_assert_eq(r.df, (double)(x->n - 1));
  }
  tu_gold_free(&g);
}

/* Fewer than two values: no spread, no interval, no test. */
Test(stats, small_samples_have_no_interval) {
  double x[] = {0.5}, y[] = {0.25};
  StCI c = st_ci95(x, 1);
  cr_assert_eq(c.mean, 0.5);
  cr_assert(isnan(c.sd) && isnan(c.half));
  StPaired r = st_paired(x, y, 1);
  cr_assert_eq(r.mean, 0.25);
  cr_assert(isnan(r.half) && isnan(r.t) && isnan(r.p));
  cr_assert(isnan(st_mean(x, 0)));
}

/* Equal differences: the test is degenerate (t infinite, p 0), all zero: p 1. */
Test(stats, constant_differences) {
  double x[] = {1, 2, 3}, y[] = {0.5, 1.5, 2.5};
  StPaired r = st_paired(x, y, 3);
  cr_assert_eq(r.mean, 0.5);
  cr_assert(isinf(r.t) && r.t > 0 && r.p == 0, "t %g p %g", r.t, r.p);
  r = st_paired(x, x, 3);
  cr_assert(isnan(r.t) && r.p == 1, "t %g p %g", r.t, r.p);
  cr_assert(isnan(st_t_quantile(0, 3)) && isnan(st_t_quantile(1, 3)));
  cr_assert_eq(st_t_quantile(0.5, 7), 0);
}

/* stats.c - mean, sample sd, Student t and the paired t-test (stats.h).
 *
 * The t distribution goes through the regularized incomplete beta function:
 * for T with v degrees of freedom, P(|T| >= t) = I_x(v/2, 1/2) with
 * x = v / (v + t^2).  I_x(a, b) is evaluated by its continued fraction
 * (modified Lentz), on the side of x where it converges fast, with 1 - x
 * passed separately so that neither side loses digits to cancellation.
 * The quantile solves the tail equation by Newton steps kept inside a
 * bisection bracket. */
#include "stats.h"

#include <float.h>
#include <math.h>

double st_mean(const double *x, size_t n) {
  if (n == 0) return NAN;
  double s = 0;
  for (size_t i = 0; i < n; i++) s += x[i];
  return s / (double)n;
}

double st_sd(const double *x, size_t n) {
  if (n < 2) return NAN;
  double m = st_mean(x, n), s = 0;
  for (size_t i = 0; i < n; i++) s += (x[i] - m) * (x[i] - m);
  return sqrt(s / (double)(n - 1));
}

/* The continued fraction of I_x(a, b) (Numerical Recipes' betacf, modified
 * Lentz): converges fast for x < (a + 1) / (a + b + 2). */
static double beta_cf(double a, double b, double x) {
  const double tiny = 1e-300, eps = 1e-16;
  double qab = a + b, qap = a + 1, qam = a - 1;
  double c = 1, d = 1 - qab * x / qap;
  if (fabs(d) < tiny) d = tiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 10000; m++) {
    double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (fabs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (fabs(c) < tiny) c = tiny;
    d = 1 / d;
    double del = d * c;
    h *= del;
    if (fabs(del - 1) < eps) break;
  }
  return h;
}

/* I_x(a, b) given x and y = 1 - x, each to full precision. */
static double ibeta(double a, double b, double x, double y) {
  if (!(a > 0) || !(b > 0) || isnan(x) || isnan(y)) return NAN;
  if (x <= 0) return 0;
  if (y <= 0) return 1;
  double lbeta = lgamma(a) + lgamma(b) - lgamma(a + b);
  double front = exp(a * log(x) + b * log(y) - lbeta);
  if (x < (a + 1) / (a + b + 2)) return front * beta_cf(a, b, x) / a;
  return 1 - front * beta_cf(b, a, y) / b;
}

double st_betainc(double a, double b, double x) { return ibeta(a, b, x, 1 - x); }

/* P(T >= t) for t >= 0. */
static double t_upper(double t, double df) {
  if (isinf(t)) return 0;
  if (t == 0) return 0.5;
  double t2 = t * t;
  double x, y;
  if (t2 < df) {
    x = df / (df + t2);
    y = t2 / (df + t2);
  } else {
    double r = df / t2; /* no overflow of t^2 + df for large t */
    x = r / (1 + r);
    y = 1 / (1 + r);
  }
  return 0.5 * ibeta(df / 2, 0.5, x, y);
}

double st_t_cdf(double t, double df) {
  if (isnan(t) || !(df > 0)) return NAN;
  double u = t_upper(fabs(t), df);
  return t >= 0 ? 1 - u : u;
}

double st_t_p2(double t, double df) {
  if (isnan(t) || !(df > 0)) return NAN;
  double p = 2 * t_upper(fabs(t), df);
  return p > 1 ? 1 : p;
}

static double t_pdf(double t, double df) {
  double lc = lgamma((df + 1) / 2) - lgamma(df / 2) - 0.5 * log(df * M_PI);
  return exp(lc - (df + 1) / 2 * log1p(t * t / df));
}

double st_t_quantile(double p, double df) {
  if (!(p > 0 && p < 1) || !(df > 0)) return NAN;
  if (p == 0.5) return 0;
  /* the upper tail u = P(T >= q) of the positive quantile q; 1 - p is exact
   * for p in [0.5, 1) */
  double u = p < 0.5 ? p : 1 - p, sign = p < 0.5 ? -1 : 1;
  double lo = 0, hi = 1;
  while (t_upper(hi, df) > u) {
    lo = hi;
    hi *= 2;
    if (hi > 1e300) return sign * INFINITY;
  }
  double t = 0.5 * (lo + hi);
  for (int it = 0; it < 400; it++) {
    double f = t_upper(t, df) - u;
    if (f == 0) break;
    if (f > 0) lo = t; /* tail still too heavy: the quantile is further out */
    else hi = t;
    double next = t + f / t_pdf(t, df); /* d(tail)/dt = -pdf */
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    double step = fabs(next - t);
    t = next;
    if (step <= 4 * DBL_EPSILON * t || hi - lo <= 4 * DBL_EPSILON * hi) break;
  }
  return sign * t;
}

StCI st_ci95(const double *x, size_t n) {
  StCI c = {.n = n, .mean = st_mean(x, n), .sd = st_sd(x, n), .half = NAN};
  if (n >= 2) c.half = st_t_quantile(0.975, (double)(n - 1)) * c.sd / sqrt((double)n);
  return c;
}

StPaired st_paired(const double *x, const double *y, size_t n) {
  StPaired r = {.n = n, .mean = NAN, .sd = NAN, .half = NAN, .t = NAN, .df = NAN, .p = NAN};
  if (n == 0) return r;
  double s = 0;
  for (size_t i = 0; i < n; i++) s += x[i] - y[i];
  r.mean = s / (double)n;
  if (n < 2) return r;
  double ss = 0;
  for (size_t i = 0; i < n; i++) {
    double d = x[i] - y[i] - r.mean;
    ss += d * d;
  }
  r.sd = sqrt(ss / (double)(n - 1));
  r.df = (double)(n - 1);
  double se = r.sd / sqrt((double)n);
  r.half = st_t_quantile(0.975, r.df) * se;
  if (se == 0) {
    r.t = r.mean == 0 ? NAN : r.mean > 0 ? INFINITY : -INFINITY;
    r.p = r.mean == 0 ? 1 : 0;
    return r;
  }
  r.t = r.mean / se;
  r.p = st_t_p2(r.t, r.df);
  return r;
}

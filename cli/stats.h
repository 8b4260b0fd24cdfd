/* stats.h - the statistics of rac sweep: mean, sample standard deviation,
 * Student t distribution (CDF, two-sided p-value, quantile) through the
 * regularized incomplete beta function, confidence intervals and the paired
 * t-test.  Pure functions, no state. */
#ifndef RAC_STATS_H
#define RAC_STATS_H

#include <stddef.h>

double st_mean(const double *x, size_t n);
/* Sample standard deviation (n - 1 in the denominator); NaN for n < 2. */
double st_sd(const double *x, size_t n);
/* The regularized incomplete beta function I_x(a, b), a, b > 0, 0 <= x <= 1. */
double st_betainc(double a, double b, double x);
/* P(T <= t) for Student's t with df > 0 degrees of freedom. */
double st_t_cdf(double t, double df);
/* P(|T| >= |t|): the two-sided p-value of t. */
double st_t_p2(double t, double df);
/* The p-quantile of Student's t (0 < p < 1): st_t_cdf(q, df) = p. */
double st_t_quantile(double p, double df);

/* Mean and the half-width of its 95 % confidence interval,
 * t_{0.975, n-1} * s / sqrt(n) (NaN for n < 2). */
typedef struct StCI {
  size_t n;
  double mean, sd, half;
} StCI;
StCI st_ci95(const double *x, size_t n);

/* Paired t-test of x - y (n pairs): the mean difference, its 95 % CI
 * half-width, t = mean / (sd / sqrt(n)), df = n - 1 and the two-sided
 * p-value.  n < 2: half, t and p are NaN.  Every difference equal (sd 0):
 * t is +-inf (p 0) or, all differences 0, NaN (p 1). */
typedef struct StPaired {
  size_t n;
  double mean, sd, half, t, df, p;
} StPaired;
StPaired st_paired(const double *x, const double *y, size_t n);

#endif

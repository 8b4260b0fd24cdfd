/* opmath.h - the scalar math of the elementwise ops, in one place.
 *
 * The kernels (runtime/kernels_ew.c) run these expressions over tensors and
 * constant folding (passes.c) runs them on constants, so a folded value has
 * the bits the kernel would give at run time (both are compiled as ISO C11,
 * where GCC contracts no a*b+c into an FMA, and neither uses -ffast-math:
 * the same operations in the same order round the same way, vectorised or
 * not).  libm is not used: expf/erff are not vectorised without
 * -ffast-math, and their bits vary between libm builds.
 *
 * The functions are accurate to a few ulp over the range that matters and
 * are written without branches (every value computed, then selected) so
 * that loops over them vectorise.
 *
 * The X-macros list the elementwise ops by their ops.def names:
 *   OPMATH_BINARY(X)  X(UPPER, lower, expression of x, y)
 *   OPMATH_UNARY(X)   X(UPPER, lower, cost, expression of x; s = (float)f[0])
 *   OPMATH_GRAD(X)    X(UPPER, lower, cost, expression of a, dy)
 * (cost: the kernels' relative work per element).  An elementwise op added
 * to ops.def with its expression here gets its kernel, its folding, and its
 * place in fused nodes (compiler/fuse.c, runtime/exec/kernels_fused.c).
 */
#ifndef RA_OPMATH_H
#define RA_OPMATH_H

#include <math.h>
#include <stdint.h>

#include "../base/simd.h"

#define KM_INLINE K_INLINE

/* e^x: Cody-Waite reduction by ln 2 and a degree-6 polynomial on
 * [-ln2/2, ln2/2] fitted to e^f (relative error 1.9e-9; tools/fit_cdf.py
 * --exp), Horner's rule in fmaf (about 1 ulp in all).  x below -87.3 gives 0
 * (so -inf masks vanish exactly); x above 88.3 is clamped. */
KM_INLINE float km_exp(float x) {
  float xc = x < -87.3f ? -87.3f : x;
  xc = xc > 88.3f ? 88.3f : xc;
  float r = fmaf(xc, 1.44269504088896341f, 12582912.0f) - 12582912.0f;  /* round */
  float f = fmaf(r, -0.693145751953125f, xc);
  f = fmaf(r, -1.428606765330187045e-06f, f);
  float p = 0.00138377224f;
  p = fmaf(p, f, 0.00837482698f);
  p = fmaf(p, f, 0.0416682102f);
  p = fmaf(p, f, 0.166664198f);
  p = fmaf(p, f, 0.499999911f);
  p = fmaf(p, f, 1.0f);
  p = fmaf(p, f, 1.0f);
  /* r is NaN only for a NaN x (p is NaN then too): converting a NaN to an
   * integer is undefined, so the exponent is built from 0 instead */
  float rn = r == r ? r : 0.0f;
  union { int32_t i; float f; } u = {.i = ((int32_t)rn + 127) << 23};
  float v = p * u.f;
  return x < -87.3f ? 0.0f : v;
}

/* The standard normal cdf Phi(x) = erfc(-x / sqrt 2) / 2, and in *e the
 * e^(-x^2 / 2) it used.  erfc(z) = t e^(-z^2) Q(t) with t = 1 / (1 + z/2)
 * in (0, 1] and Q a degree-10 polynomial fitted to erfcx(z) / t (relative
 * error 1.1e-8; tools/fit_cdf.py gives the coefficients and the errors in
 * float): accurate in both tails (no 1 + erf cancellation), Horner's rule
 * in fmaf.  GELU's derivative reuses e for the pdf. */
KM_INLINE float km_cdf_e(float x, float *e) {
  float z = fabsf(x) * 0.70710678118654752f;
  float t = 1.0f / fmaf(0.5f, z, 1.0f);
  float q = 0.0423909761f;
  q = fmaf(q, t, -0.231024578f);
  q = fmaf(q, t, 0.486483783f);
  q = fmaf(q, t, -0.447281837f);
  q = fmaf(q, t, 0.127270505f);
  q = fmaf(q, t, -0.0572981238f);
  q = fmaf(q, t, 0.0930148438f);
  q = fmaf(q, t, 0.175375074f);
  q = fmaf(q, t, 0.246880695f);
  q = fmaf(q, t, 0.282093853f);
  q = fmaf(q, t, 0.282094806f);
  float ez = km_exp(-(z * z));
  float half_erfc = 0.5f * (t * ez) * q;
  float up = 1.0f - half_erfc;
  *e = ez;
  return x >= 0 ? up : half_erfc;
}

KM_INLINE float km_cdf(float x) {
  float e;
  return km_cdf_e(x, &e);
}

KM_INLINE float km_gelu(float x) { return x * km_cdf(x); }

/* Phi(x) + x pdf(x), pdf(x) = e^(-x^2/2) / sqrt(2 pi) */
KM_INLINE float km_gelu_d(float x) {
  float e;
  float c = km_cdf_e(x, &e);
  return c + x * (0.39894228040143268f * e);
}

KM_INLINE float km_sigmoid(float x) {
  float e = km_exp(-fabsf(x));
  float d = 1.0f / (1.0f + e);
  float ed = e * d;
  return x >= 0 ? d : ed;
}

KM_INLINE float km_silu(float x) { return x * km_sigmoid(x); }

/* silu'(x) = s + x s (1 - s), s = sigmoid(x) */
KM_INLINE float km_silu_d(float x) {
  float s = km_sigmoid(x);
  return s * (1.0f + x * (1.0f - s));
}

/* tanh: Taylor to x^13 below 0.4, else (1 - e^-2z) / (1 + e^-2z). */
KM_INLINE float km_tanh(float x) {
  float z = fabsf(x);
  float x2 = x * x;
  float small = x * (1.0f + x2 * (-0.33333333f + x2 * (0.13333333f + x2 * (-0.053968254f +
                x2 * (0.021869488f + x2 * (-0.0088632355f + x2 * 0.0035921280f))))));
  float e = km_exp(-2.0f * z);
  float big = copysignf((1.0f - e) / (1.0f + e), x);
  return z < 0.4f ? small : big;
}


#define OPMATH_BINARY(X) \
  X(ADD, add, x + y)     \
  X(SUB, sub, x - y)     \
  X(MUL, mul, x * y)     \
  X(DIV, div, x / y)

#define OPMATH_UNARY(X)                   \
  X(NEG, neg, 1, -x)                      \
  X(SCALE, scale, 1, x * s)               \
  X(SQUARE, square, 1, x * x)             \
  X(RELU, relu, 1, x > 0 ? x : 0.0f)      \
  X(GELU, gelu, 16, km_gelu(x))           \
  X(TANH, tanh, 12, km_tanh(x))           \
  X(SIGMOID, sigmoid, 12, km_sigmoid(x))  \
  X(SILU, silu, 13, km_silu(x))

/* (a, dy) -> dy * op'(a): a is x (relu, gelu, silu) or y (tanh, sigmoid) */
#define OPMATH_GRAD(X)                                 \
  X(RELU_GRAD, relu_grad, 1, a > 0 ? dy : 0.0f)        \
  X(GELU_GRAD, gelu_grad, 20, dy * km_gelu_d(a))       \
  X(TANH_GRAD, tanh_grad, 2, dy * (1.0f - a * a))      \
  X(SIGMOID_GRAD, sigmoid_grad, 2, dy * a * (1.0f - a)) \
  X(SILU_GRAD, silu_grad, 14, dy * km_silu_d(a))

#endif

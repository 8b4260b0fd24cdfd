/* myops.c - a small native library for the extern tests (tests/test_ffi.c):
 * swish and its derivative in the scalar form, a square and its derivative
 * in the array form, and a function without a derivative.  Built by the
 * Makefile into build/tests/libmyops.so. */
#include <math.h>
#include <stdint.h>

float swish(float x) { return x / (1.0f + expf(-x)); }

float swish_grad(float x) {
  float s = 1.0f / (1.0f + expf(-x));
  return s + x * s * (1.0f - s);
}

void square_arr(float *x, int32_t n) {
  for (int32_t i = 0; i < n; i++) x[i] = x[i] * x[i];
}

void square_arr_grad(float *x, int32_t n) {
  for (int32_t i = 0; i < n; i++) x[i] = 2.0f * x[i];
}

/* not differentiable: rounds to a multiple of 1/8 */
float quantize(float x) { return floorf(x * 8.0f + 0.5f) / 8.0f; }

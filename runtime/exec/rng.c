/* rng.c - Philox4x32-10 (Salmon et al., SC'11) and the draws built on it. */
#include "rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
  uint64_t p = (uint64_t)a * b;
  *hi = (uint32_t)(p >> 32);
  *lo = (uint32_t)p;
}

void rng_philox(uint64_t seed, uint64_t stream, uint64_t c, uint32_t out[4]) {
  uint32_t x0 = (uint32_t)c, x1 = (uint32_t)(c >> 32);
  uint32_t x2 = (uint32_t)stream, x3 = (uint32_t)(stream >> 32);
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  for (int r = 0; r < 10; r++) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(PHILOX_M0, x0, &hi0, &lo0);
    mulhilo(PHILOX_M1, x2, &hi1, &lo1);
    uint32_t y0 = hi1 ^ x1 ^ k0, y1 = lo1, y2 = hi0 ^ x3 ^ k1, y3 = lo0;
    x0 = y0; x1 = y1; x2 = y2; x3 = y3;
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  out[0] = x0; out[1] = x1; out[2] = x2; out[3] = x3;
}

static inline float u24(uint32_t w) { return (float)(w >> 8) * (1.0f / 16777216.0f); }

float rng_uniform(uint64_t seed, uint64_t stream, uint64_t i) {
  uint32_t o[4];
  rng_philox(seed, stream, i, o);
  return u24(o[0]);
}

float rng_normal(uint64_t seed, uint64_t stream, uint64_t i) {
  uint32_t o[4];
  rng_philox(seed, stream, i, o);
  /* u1 in (0, 1] so log is finite */
  double u1 = ((double)(o[0] >> 8) + 1.0) / 16777216.0;
  double u2 = (double)(o[1] >> 8) / 16777216.0;
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void rng_fill_uniform(uint64_t seed, uint64_t stream, float *x, int64_t n, float lo, float hi) {
  for (int64_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * rng_uniform(seed, stream, (uint64_t)i);
}

void rng_fill_normal(uint64_t seed, uint64_t stream, float *x, int64_t n, float mean, float std) {
  for (int64_t i = 0; i < n; i++) x[i] = mean + std * rng_normal(seed, stream, (uint64_t)i);
}

uint64_t rng_below(uint64_t seed, uint64_t stream, uint64_t i, uint64_t n) {
  uint32_t o[4];
  rng_philox(seed, stream, i, o);
  uint64_t r = ((uint64_t)o[0] << 32) | o[1];
  return n ? r % n : 0;
}

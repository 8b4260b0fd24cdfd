/* rng.h - counter-based random numbers (Philox4x32-10).
 *
 * A draw is a pure function of (seed, stream, counter): results never depend
 * on call order or thread count.  Streams name what the numbers are for
 * (initialisation of parameter i, dropout site k, SPOS noise, shuffling), so
 * adding a consumer never shifts another's numbers.
 */
#ifndef RA_RNG_H
#define RA_RNG_H

#include <stdint.h>

/* Well-known stream bases; add an index to them. */
enum {
  RNG_STREAM_INIT = 0x1000000,     /* + param index */
  RNG_STREAM_DROPOUT = 0x2000000,  /* + dropout site */
  RNG_STREAM_SPOS = 0x3000000,     /* + particle set */
  RNG_STREAM_SHUFFLE = 0x4000000,  /* + epoch */
  RNG_STREAM_SPLIT = 0x5000000,
  RNG_STREAM_DATA = 0x6000000,     /* synthetic data */
};

/* Four 32-bit words for counter c of (seed, stream). */
void rng_philox(uint64_t seed, uint64_t stream, uint64_t c, uint32_t out[4]);
/* Uniform in [0, 1) (24-bit resolution), element i of a stream. */
float rng_uniform(uint64_t seed, uint64_t stream, uint64_t i);
/* Standard normal (Box-Muller on one Philox block), element i of a stream. */
float rng_normal(uint64_t seed, uint64_t stream, uint64_t i);
/* Fills n values. */
void rng_fill_uniform(uint64_t seed, uint64_t stream, float *x, int64_t n, float lo, float hi);
void rng_fill_normal(uint64_t seed, uint64_t stream, float *x, int64_t n, float mean, float std);
/* Uniform integer in [0, n). */
uint64_t rng_below(uint64_t seed, uint64_t stream, uint64_t i, uint64_t n);

#endif

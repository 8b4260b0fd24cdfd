/* keyperm.c - a keyed bijection on [0, n) (keyperm.h). */
#include "keyperm.h"

#include "../exec/rng.h"

void keyperm_init(KeyPerm *p, uint64_t n, uint64_t seed, uint64_t stream) {
  int bits = 2;
  while (bits < 64 && (n - 1) >> bits) bits += 2;
  p->n = n;
  p->half = bits / 2;
  p->mask = ((uint64_t)1 << p->half) - 1;
  for (int r = 0; r < KEYPERM_ROUNDS; r++) {
    uint32_t w[4];
    rng_philox(seed, stream, (uint64_t)r, w);
    p->key[r] = (uint64_t)w[0] | (uint64_t)w[1] << 32;
  }
}

/* The round function: half bits of a 64-bit mix (splitmix64's finalizer)
 * of one half and the round key. */
static inline uint64_t round_f(const KeyPerm *p, int r, uint64_t x) {
  uint64_t z = x ^ p->key[r];
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return (z ^ (z >> 31)) & p->mask;
}

static uint64_t encrypt(const KeyPerm *p, uint64_t x) {
  uint64_t l = x >> p->half, r = x & p->mask;
  for (int k = 0; k < KEYPERM_ROUNDS; k++) {
    uint64_t t = l ^ round_f(p, k, r);
    l = r;
    r = t;
  }
  return l << p->half | r;
}

static uint64_t decrypt(const KeyPerm *p, uint64_t x) {
  uint64_t l = x >> p->half, r = x & p->mask;
  for (int k = KEYPERM_ROUNDS - 1; k >= 0; k--) {
    uint64_t t = r ^ round_f(p, k, l);
    r = l;
    l = t;
  }
  return l << p->half | r;
}

/* Cycle walking: the network permutes [0, 4^half), which holds [0, n);
 * following the cycle of i < n from i reaches a value below n again. */
uint64_t keyperm_fwd(const KeyPerm *p, uint64_t i) {
  uint64_t x = i;
  do x = encrypt(p, x);
  while (x >= p->n);
  return x;
}

uint64_t keyperm_inv(const KeyPerm *p, uint64_t x) {
  uint64_t i = x;
  do i = decrypt(p, i);
  while (i >= p->n);
  return i;
}

/* keyperm.h - a keyed bijection on [0, n), computed per index: a balanced
 * Feistel network of KEYPERM_ROUNDS rounds on the smallest even number of
 * bits that holds n - 1, its round keys drawn from a Philox stream, walked
 * in cycles until the value is below n.  The large data sets' split and
 * shuffles (docs/data.md): no array of n is held. */
#ifndef RA_KEYPERM_H
#define RA_KEYPERM_H

#include <stdint.h>

enum { KEYPERM_ROUNDS = 6 };

typedef struct KeyPerm {
  uint64_t n;
  int half;                        /* bits of each half */
  uint64_t mask;                   /* (1 << half) - 1 */
  uint64_t key[KEYPERM_ROUNDS];
} KeyPerm;

/* The bijection of (seed, stream) on [0, n), n >= 1. */
void keyperm_init(KeyPerm *p, uint64_t n, uint64_t seed, uint64_t stream);
/* The image of i < n, and the index whose image is x < n. */
uint64_t keyperm_fwd(const KeyPerm *p, uint64_t i);
uint64_t keyperm_inv(const KeyPerm *p, uint64_t x);

#endif

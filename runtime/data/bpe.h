/* bpe.h - byte-level byte-pair encoding (docs/data.md, "tokenize bpe").
 *
 * Ids: 0 <pad>, 1 <unk>, 2 + b for the byte b (all 256 bytes), then
 * BPE_FIRST + k for merge k, the concatenation of its two tokens.
 *
 * Text is first cut into chunks, and merges never cross a chunk: a chunk
 * starts at the beginning of the text and at every whitespace byte (space,
 * \t, \n, \v, \f, \r) that follows a byte that is not whitespace, so
 * "In the\nbeginning" is "In", " the", "\nbeginning".
 *
 * Learning: every adjacent pair of tokens inside the chunks is counted
 * (overlapping pairs too: "aaa" holds (a,a) twice); the pair with the
 * highest count becomes the next merge, ties broken by the smallest left
 * id, then the smallest right id; each chunk's occurrences of it are merged
 * left to right.  It stops at the wanted number of merges or when no pair
 * occurs twice.  Counts are kept incrementally: only the chunks holding
 * the merged pair are recounted.
 *
 * Encoding applies the merges in the order they were learned (the one of
 * lowest rank present in a chunk first), which gives the same tokens as
 * learning gave its own text. */
#ifndef RA_BPE_H
#define RA_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "../../base/arena.h"

#define BPE_BYTE0 2
#define BPE_FIRST 258

typedef struct Bpe {
  int32_t (*merge)[2];  /* merge k: (left id, right id) -> BPE_FIRST + k */
  int64_t n;
  /* pair -> rank, open addressing: keys (left << 32 | right) + 1, 0 empty */
  uint64_t *keys;
  int32_t *rank;
  int64_t nslots;
} Bpe;

/* Learns at most max_merges merges from the text s[0..n) (the bytes of
 * the train split), into out (arrays in a; scratch through alloc).
 * 0, or -1 when out of memory. */
int bpe_learn(Arena *a, RaAlloc alloc, const char *s, size_t n, int64_t max_merges, Bpe *out);

/* out from a list of merges (checked: each side an id below the merge's
 * own).  0; -1 when out of memory; -2 with *bad the first bad merge. */
int bpe_from_merges(Arena *a, const int32_t (*merge)[2], int64_t n, Bpe *out, int64_t *bad);

typedef int (*BpeEmitFn)(void *ud, int32_t id);
/* Calls emit with each token id of s[0..n); stops when emit returns
 * non-zero (and returns that).  -1 when out of memory. */
int bpe_encode(const Bpe *b, RaAlloc alloc, const char *s, size_t n, BpeEmitFn emit, void *ud);

/* The tokens' bytes, NUL-terminated, in id order (BPE_FIRST + b->n of
 * them; <pad>, <unk>, then the bytes and merges; the byte 0 is ""), in a.
 * NULL when out of memory. */
char **bpe_tokens(Arena *a, const Bpe *b);

#endif

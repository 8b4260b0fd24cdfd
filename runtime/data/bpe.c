/* bpe.c - byte-level byte-pair encoding: learning merges with incremental
 * pair counts, encoding by merge rank, the tokens' bytes (bpe.h has the
 * rules; docs/data.md the user's view). */
#include "bpe.h"

#include <string.h>

static int is_ws(unsigned char c) { return c == ' ' || (c >= 0x09 && c <= 0x0D); }

/* The end of the chunk starting at i of s[0..n). */
static size_t chunk_end(const unsigned char *s, size_t n, size_t i) {
  size_t j = i + 1;
  while (j < n && !(is_ws(s[j]) && !is_ws(s[j - 1]))) j++;
  return j;
}

static uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

static uint64_t pair_key(int32_t l, int32_t r) { return ((uint64_t)(uint32_t)l << 32 | (uint32_t)r) + 1; }

/* A growable array through the allocator. */
static int grow(const RaAlloc *al, void **p, int64_t *cap, int64_t need, size_t esz) {
  if (need <= *cap) return 0;
  int64_t c = *cap ? *cap : 16;
  while (c < need) c *= 2;
  void *q = ra_realloc(al, *p, (size_t)*cap * esz, (size_t)c * esz);
  if (!q) return -1;
  *p = q;
  *cap = c;
  return 0;
}

/* ---- learning ---- */

typedef struct Occ {
  int32_t *w;  /* chunks that hold (or held) the pair */
  int64_t n, cap;
} Occ;

typedef struct Learner {
  RaAlloc al;
  const unsigned char *s;
  /* unique chunks: bytes [start, start + len) of s, count, symbols */
  int64_t *cstart, *csym, *clen0;
  int32_t *clen;      /* current symbol count */
  int64_t *ccount;
  int64_t nchunks, cchunks;
  int64_t *cslots;    /* chunk map: index + 1 */
  int64_t ncslots;
  int32_t *sym;       /* every chunk's symbols */
  int64_t nsym;
  /* pairs */
  int32_t *pl, *pr;
  int64_t *pcount;
  Occ *pocc;
  int64_t npairs, cpairs;
  uint64_t *pkeys;    /* pair map: key, and the entry in pslot */
  int64_t *pslot;
  int64_t npslots;
  int64_t *stamp;     /* per chunk: the last merge that recounted it */
} Learner;

static uint64_t bytes_hash(const unsigned char *p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return mix64(h);
}

static int chunk_rehash(Learner *L, int64_t nslots) {
  int64_t *slots = ra_calloc(&L->al, (size_t)nslots, sizeof(int64_t));
  if (!slots) return -1;
  for (int64_t c = 0; c < L->nchunks; c++) {
    uint64_t h = bytes_hash(L->s + L->cstart[c], (size_t)L->clen0[c]);
    uint64_t m = (uint64_t)nslots - 1, i = h & m;
    while (slots[i]) i = (i + 1) & m;
    slots[i] = c + 1;
  }
  if (L->cslots) ra_free_mem(&L->al, L->cslots, sizeof(int64_t) * (size_t)L->ncslots);
  L->cslots = slots;
  L->ncslots = nslots;
  return 0;
}

static int add_chunk(Learner *L, size_t start, size_t len) {
  if ((L->nchunks + 1) * 2 > L->ncslots && chunk_rehash(L, L->ncslots ? L->ncslots * 2 : 1024))
    return -1;
  const unsigned char *p = L->s + start;
  uint64_t m = (uint64_t)L->ncslots - 1, i = bytes_hash(p, len) & m;
  for (;; i = (i + 1) & m) {
    int64_t c = L->cslots[i] - 1;
    if (c < 0) break;
    if ((size_t)L->clen0[c] == len && memcmp(L->s + L->cstart[c], p, len) == 0) {
      L->ccount[c]++;
      return 0;
    }
  }
  int64_t c = L->nchunks, cap = L->cchunks;
  if (c == cap) {
    int64_t need = c + 1, c0 = cap;
    if (grow(&L->al, (void **)&L->cstart, &c0, need, sizeof(int64_t))) return -1;
    c0 = cap;
    if (grow(&L->al, (void **)&L->csym, &c0, need, sizeof(int64_t))) return -1;
    c0 = cap;
    if (grow(&L->al, (void **)&L->clen0, &c0, need, sizeof(int64_t))) return -1;
    c0 = cap;
    if (grow(&L->al, (void **)&L->ccount, &c0, need, sizeof(int64_t))) return -1;
    c0 = cap;
    if (grow(&L->al, (void **)&L->clen, &c0, need, sizeof(int32_t))) return -1;
    L->cchunks = c0;
  }
  L->cstart[c] = (int64_t)start;
  L->clen0[c] = (int64_t)len;
  L->ccount[c] = 1;
  L->nchunks++;
  L->cslots[i] = c + 1;
  return 0;
}

static int pair_rehash(Learner *L, int64_t nslots) {
  uint64_t *keys = ra_calloc(&L->al, (size_t)nslots, sizeof(uint64_t));
  int64_t *slot = ra_calloc(&L->al, (size_t)nslots, sizeof(int64_t));
  if (!keys || !slot) {
    ra_free_mem(&L->al, keys, sizeof(uint64_t) * (size_t)nslots);
    ra_free_mem(&L->al, slot, sizeof(int64_t) * (size_t)nslots);
    return -1;
  }
  for (int64_t e = 0; e < L->npairs; e++) {
    uint64_t k = pair_key(L->pl[e], L->pr[e]), m = (uint64_t)nslots - 1, i = mix64(k) & m;
    while (keys[i]) i = (i + 1) & m;
    keys[i] = k;
    slot[i] = e;
  }
  if (L->pkeys) {
    ra_free_mem(&L->al, L->pkeys, sizeof(uint64_t) * (size_t)L->npslots);
    ra_free_mem(&L->al, L->pslot, sizeof(int64_t) * (size_t)L->npslots);
  }
  L->pkeys = keys;
  L->pslot = slot;
  L->npslots = nslots;
  return 0;
}

/* The entry of pair (l, r), made when absent; -1 when out of memory. */
static int64_t pair_entry(Learner *L, int32_t l, int32_t r) {
  if ((L->npairs + 1) * 2 > L->npslots && pair_rehash(L, L->npslots ? L->npslots * 2 : 4096))
    return -1;
  uint64_t k = pair_key(l, r), m = (uint64_t)L->npslots - 1, i = mix64(k) & m;
  for (; L->pkeys[i]; i = (i + 1) & m)
    if (L->pkeys[i] == k) return L->pslot[i];
  int64_t e = L->npairs, cap = L->cpairs;
  if (e == cap) {
    int64_t need = e + 1, c0 = cap;
    if (grow(&L->al, (void **)&L->pl, &c0, need, sizeof(int32_t))) return -1;
    c0 = cap;
    if (grow(&L->al, (void **)&L->pr, &c0, need, sizeof(int32_t))) return -1;
    c0 = cap;
    if (grow(&L->al, (void **)&L->pcount, &c0, need, sizeof(int64_t))) return -1;
    c0 = cap;
    if (grow(&L->al, (void **)&L->pocc, &c0, need, sizeof(Occ))) return -1;
    L->cpairs = c0;
  }
  L->pl[e] = l;
  L->pr[e] = r;
  L->pcount[e] = 0;
  memset(&L->pocc[e], 0, sizeof(Occ));
  L->npairs++;
  L->pkeys[i] = k;
  L->pslot[i] = e;
  return e;
}

/* Counts pair (l, r) of chunk c: by delta times its count; a chunk is
 * listed under the pair when listed is false. */
static int count_pair(Learner *L, int32_t l, int32_t r, int64_t c, int64_t delta, int list) {
  int64_t e = pair_entry(L, l, r);
  if (e < 0) return -1;
  L->pcount[e] += delta * L->ccount[c];
  if (list) {
    Occ *o = &L->pocc[e];
    if (o->n == 0 || o->w[o->n - 1] != (int32_t)c) {
      if (grow(&L->al, (void **)&o->w, &o->cap, o->n + 1, sizeof(int32_t))) return -1;
      o->w[o->n++] = (int32_t)c;
    }
  }
  return 0;
}

static void learner_free(Learner *L) {
  const RaAlloc *al = &L->al;
  size_t cc = (size_t)L->cchunks, cp = (size_t)L->cpairs;
  ra_free_mem(al, L->cstart, cc * sizeof(int64_t));
  ra_free_mem(al, L->csym, cc * sizeof(int64_t));
  ra_free_mem(al, L->clen0, cc * sizeof(int64_t));
  ra_free_mem(al, L->ccount, cc * sizeof(int64_t));
  ra_free_mem(al, L->clen, cc * sizeof(int32_t));
  ra_free_mem(al, L->stamp, (size_t)L->nchunks * sizeof(int64_t));
  ra_free_mem(al, L->cslots, (size_t)L->ncslots * sizeof(int64_t));
  ra_free_mem(al, L->sym, (size_t)L->nsym * sizeof(int32_t));
  for (int64_t e = 0; e < L->npairs; e++)
    ra_free_mem(al, L->pocc[e].w, (size_t)L->pocc[e].cap * sizeof(int32_t));
  ra_free_mem(al, L->pl, cp * sizeof(int32_t));
  ra_free_mem(al, L->pr, cp * sizeof(int32_t));
  ra_free_mem(al, L->pcount, cp * sizeof(int64_t));
  ra_free_mem(al, L->pocc, cp * sizeof(Occ));
  ra_free_mem(al, L->pkeys, (size_t)L->npslots * sizeof(uint64_t));
  ra_free_mem(al, L->pslot, (size_t)L->npslots * sizeof(int64_t));
}

/* Merges every occurrence of (l, r) in chunk c into id, left to right,
 * keeping the pair counts.  0 or -1. */
static int merge_chunk(Learner *L, int64_t c, int32_t l, int32_t r, int32_t id) {
  int32_t *w = L->sym + L->csym[c];
  int32_t n = L->clen[c];
  int found = 0;
  for (int32_t i = 0; i + 1 < n && !found; i++) found = w[i] == l && w[i + 1] == r;
  if (!found) return 0; /* listed before an earlier merge changed it */
  for (int32_t i = 0; i + 1 < n; i++)
    if (count_pair(L, w[i], w[i + 1], c, -1, 0)) return -1;
  int32_t k = 0;
  for (int32_t i = 0; i < n; i++) {
    if (i + 1 < n && w[i] == l && w[i + 1] == r) {
      w[k++] = id;
      i++;
    } else {
      w[k++] = w[i];
    }
  }
  L->clen[c] = k;
  for (int32_t i = 0; i + 1 < k; i++)
    if (count_pair(L, w[i], w[i + 1], c, +1, w[i] == id || w[i + 1] == id)) return -1;
  return 0;
}

int bpe_learn(Arena *a, RaAlloc alloc, const char *text, size_t n, int64_t max_merges, Bpe *out) {
  memset(out, 0, sizeof *out);
  Learner L;
  memset(&L, 0, sizeof L);
  L.al = alloc;
  L.s = (const unsigned char *)text;
  int rc = -1;
  int32_t (*merge)[2] = NULL;
  int64_t nm = 0;
  for (size_t i = 0; i < n;) {
    size_t e = chunk_end(L.s, n, i);
    if (add_chunk(&L, i, e - i)) goto done;
    i = e;
  }
  /* symbols: the bytes of each unique chunk */
  L.nsym = 0;
  for (int64_t c = 0; c < L.nchunks; c++) L.nsym += L.clen0[c];
  L.sym = ra_malloc(&L.al, sizeof(int32_t) * (size_t)(L.nsym ? L.nsym : 1));
  L.stamp = ra_malloc(&L.al, sizeof(int64_t) * (size_t)(L.nchunks ? L.nchunks : 1));
  if (!L.sym || !L.stamp) goto done;
  if (!L.nsym) L.nsym = 1;
  for (int64_t c = 0, o = 0; c < L.nchunks; c++) {
    L.csym[c] = o;
    L.clen[c] = (int32_t)L.clen0[c];
    L.stamp[c] = -1;
    for (int64_t j = 0; j < L.clen0[c]; j++) L.sym[o + j] = BPE_BYTE0 + L.s[L.cstart[c] + j];
    for (int64_t j = 0; j + 1 < L.clen0[c]; j++)
      if (count_pair(&L, L.sym[o + j], L.sym[o + j + 1], c, +1, 1)) goto done;
    o += L.clen0[c];
  }
  if (max_merges > 0) {
    merge = arena_alloc(a, sizeof *merge * (size_t)max_merges);
    if (!merge) goto done;
  }
  for (; nm < max_merges; nm++) {
    int64_t best = -1;
    for (int64_t e = 0; e < L.npairs; e++) {
      int64_t ct = L.pcount[e];
      if (ct < 2) continue;
      if (best < 0 || ct > L.pcount[best] ||
          (ct == L.pcount[best] &&
           (L.pl[e] < L.pl[best] || (L.pl[e] == L.pl[best] && L.pr[e] < L.pr[best]))))
        best = e;
    }
    if (best < 0) break;
    int32_t l = L.pl[best], r = L.pr[best], id = (int32_t)(BPE_FIRST + nm);
    merge[nm][0] = l;
    merge[nm][1] = r;
    /* (l, r) never forms again (merges make new ids only): its list goes */
    Occ occ = L.pocc[best];
    memset(&L.pocc[best], 0, sizeof(Occ));
    for (int64_t j = 0; j < occ.n; j++) {
      int64_t c = occ.w[j];
      if (L.stamp[c] == nm) continue;
      L.stamp[c] = nm;
      if (merge_chunk(&L, c, l, r, id)) {
        ra_free_mem(&L.al, occ.w, sizeof(int32_t) * (size_t)occ.cap);
        goto done;
      }
    }
    ra_free_mem(&L.al, occ.w, sizeof(int32_t) * (size_t)occ.cap);
  }
  {
    int64_t bad;
    rc = bpe_from_merges(a, (const int32_t(*)[2])merge, nm, out, &bad) ? -1 : 0;
  }
done:
  learner_free(&L);
  return rc;
}

/* ---- the merges' table ---- */

static int32_t rank_of(const Bpe *b, int32_t l, int32_t r) {
  if (!b->nslots) return -1;
  uint64_t k = pair_key(l, r), m = (uint64_t)b->nslots - 1;
  for (uint64_t i = mix64(k) & m; b->keys[i]; i = (i + 1) & m)
    if (b->keys[i] == k) return b->rank[i];
  return -1;
}

int bpe_from_merges(Arena *a, const int32_t (*merge)[2], int64_t n, Bpe *out, int64_t *bad) {
  memset(out, 0, sizeof *out);
  for (int64_t k = 0; k < n; k++) {
    int64_t lim = BPE_FIRST + k;
    if (merge[k][0] < BPE_BYTE0 || merge[k][0] >= lim || merge[k][1] < BPE_BYTE0 ||
        merge[k][1] >= lim) {
      if (bad) *bad = k;
      return -2;
    }
  }
  int64_t nslots = 16;
  while (nslots < 2 * n) nslots *= 2;
  out->merge = arena_alloc(a, sizeof *out->merge * (size_t)(n ? n : 1));
  out->keys = arena_alloc(a, sizeof(uint64_t) * (size_t)nslots);
  out->rank = arena_alloc(a, sizeof(int32_t) * (size_t)nslots);
  if (!out->merge || !out->keys || !out->rank) return -1;
  if (n) memcpy(out->merge, merge, sizeof *out->merge * (size_t)n);
  out->n = n;
  out->nslots = nslots;
  for (int64_t k = 0; k < n; k++) {
    uint64_t key = pair_key(merge[k][0], merge[k][1]), m = (uint64_t)nslots - 1;
    uint64_t i = mix64(key) & m;
    while (out->keys[i] && out->keys[i] != key) i = (i + 1) & m;
    if (out->keys[i]) continue; /* a pair twice: the first rank wins */
    out->keys[i] = key;
    out->rank[i] = (int32_t)k;
  }
  return 0;
}

/* ---- encoding ---- */

int bpe_encode(const Bpe *b, RaAlloc alloc, const char *text, size_t n, BpeEmitFn emit, void *ud) {
  const unsigned char *s = (const unsigned char *)text;
  int32_t *w = NULL;
  int64_t cap = 0;
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0;) {
    size_t e = chunk_end(s, n, i);
    int64_t len = (int64_t)(e - i);
    if (grow(&alloc, (void **)&w, &cap, len, sizeof(int32_t))) {
      rc = -1;
      break;
    }
    for (int64_t j = 0; j < len; j++) w[j] = BPE_BYTE0 + s[i + j];
    for (;;) { /* the pair of lowest rank, merged everywhere in the chunk */
      int32_t best = -1;
      for (int64_t j = 0; j + 1 < len; j++) {
        int32_t r = rank_of(b, w[j], w[j + 1]);
        if (r >= 0 && (best < 0 || r < best)) best = r;
      }
      if (best < 0) break;
      int32_t l = b->merge[best][0], r = b->merge[best][1], k = 0;
      for (int64_t j = 0; j < len; j++) {
        if (j + 1 < len && w[j] == l && w[j + 1] == r) {
          w[k++] = BPE_FIRST + best;
          j++;
        } else {
          w[k++] = w[j];
        }
      }
      len = k;
    }
    for (int64_t j = 0; j < len && rc == 0; j++) rc = emit(ud, w[j]);
    i = e;
  }
  ra_free_mem(&alloc, w, sizeof(int32_t) * (size_t)cap);
  return rc;
}

char **bpe_tokens(Arena *a, const Bpe *b) {
  int64_t n = BPE_FIRST + b->n;
  char **t = arena_alloc(a, sizeof(char *) * (size_t)n);
  size_t *len = arena_alloc(a, sizeof(size_t) * (size_t)n);
  if (!t || !len) return NULL;
  t[0] = arena_strdup(a, "<pad>");
  t[1] = arena_strdup(a, "<unk>");
  if (!t[0] || !t[1]) return NULL;
  len[0] = len[1] = 5;
  for (int c = 0; c < 256; c++) {
    char s[2] = {(char)c, 0};
    t[BPE_BYTE0 + c] = arena_strndup(a, s, 1);
    len[BPE_BYTE0 + c] = c ? 1 : 0;
    if (!t[BPE_BYTE0 + c]) return NULL;
  }
  for (int64_t k = 0; k < b->n; k++) {
    int32_t l = b->merge[k][0], r = b->merge[k][1];
    size_t m = len[l] + len[r];
    char *s = arena_alloc(a, m + 1);
    if (!s) return NULL;
    memcpy(s, t[l], len[l]);
    memcpy(s + len[l], t[r], len[r]);
    s[m] = 0;
    t[BPE_FIRST + k] = s;
    len[BPE_FIRST + k] = m;
  }
  return t;
}

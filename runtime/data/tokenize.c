/* tokenize.c - tokenizers (chars: Unicode code points; words: lowercased
 * words with punctuation as tokens of their own) and vocabularies: a hash
 * table from token to id, and the capped, frequency-ordered vocabulary with
 * the specials <pad> = 0 and <unk> = 1 (see docs/data.md). */
#include "data.h"

#include <stdlib.h>
#include <string.h>

#include "../../base/utf8.h"

/* ---- UTF-8 ---- */

/* Decodes one code point of s[0..n) (n >= 1).  Returns its length in bytes,
 * or 0 when the bytes are not valid UTF-8 (overlong forms, surrogates and
 * values above U+10FFFF included). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
  unsigned v = 0;
  int k = utf8_seq_len(s, n, &v);
  *cp = v;
  return (size_t)k;
}

static int is_space_cp(uint32_t c) {
  if (c == ' ' || (c >= 0x09 && c <= 0x0D)) return 1;
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200B) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000 ||
         c == 0xFEFF;
}

/* Punctuation tokens: ASCII punctuation and symbols, a few Latin-1 marks
 * (¡ § « ¶ · » ¿), General Punctuation (dashes, quotes, ellipsis) and the
 * CJK marks and brackets. */
static int is_punct_cp(uint32_t c) {
  if (c < 0x80) {
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) ||
           (c >= 0x5B && c <= 0x60 && c != '_') || (c >= 0x7B && c <= 0x7E);
  }
  return c == 0xA1 || c == 0xA7 || c == 0xAB || c == 0xB6 || c == 0xB7 || c == 0xBB ||
         c == 0xBF || (c >= 0x2010 && c <= 0x2027) || (c >= 0x2030 && c <= 0x205E) ||
         (c >= 0x3001 && c <= 0x3003) || (c >= 0x3008 && c <= 0x3011);
}

static int is_word_cp(uint32_t c) {
  return c >= 0x20 && c != 0x7F && !is_space_cp(c) && !is_punct_cp(c);
}

int tok_split(TokKind kind, const char *s, size_t n, TokEmitFn emit, void *ud, size_t *bad) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  size_t wstart = 0;
  int inword = 0;
  while (i < n) {
    uint32_t cp;
    size_t len = u[i] ? utf8_next(u + i, n - i, &cp) : 0;
    if (len == 0) {
      if (bad) *bad = i;
      return -1;
    }
    if (kind != TOK_WORDS) {
      int r = emit(ud, s + i, len);
      if (r) return r;
    } else if (is_word_cp(cp)) {
      if (!inword) {
        inword = 1;
        wstart = i;
      }
    } else {
      if (inword) {
        int r = emit(ud, s + wstart, i - wstart);
        if (r) return r;
        inword = 0;
      }
      if (is_punct_cp(cp)) {
        int r = emit(ud, s + i, len);
        if (r) return r;
      }
      /* other control characters are dropped like whitespace */
    }
    i += len;
  }
  if (inword) return emit(ud, s + wstart, n - wstart);
  return 0;
}

/* ---- the hash table ---- */

static inline unsigned char fold_byte(unsigned char c, int fold) {
  return (fold && c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static uint64_t tok_hash(const char *s, size_t n, int fold) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) {
    h ^= fold_byte((unsigned char)s[i], fold);
    h *= 1099511628211ull;
  }
  return h ^ (h >> 29);
}

static int tok_equal(const char *word, const char *s, size_t n, int fold) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)word[i] != fold_byte((unsigned char)s[i], fold) || !word[i]) return 0;
  return word[n] == 0;
}

/* slots hold id + 1; 0 is an empty slot */
static int64_t *probe(const Vocab *v, const char *s, size_t n, int fold, uint64_t h) {
  uint64_t mask = (uint64_t)v->nslots - 1;
  for (uint64_t i = h & mask;; i = (i + 1) & mask) {
    int64_t *slot = &v->slots[i];
    if (*slot == 0 || tok_equal(v->words[*slot - 1], s, n, fold)) return slot;
  }
}

int64_t vocab_lookup(const Vocab *v, const char *tok, size_t len, int fold) {
  if (!v->nslots) return -1;
  int64_t *slot = probe(v, tok, len, fold, tok_hash(tok, len, fold));
  return *slot ? *slot - 1 : -1;
}

static int vocab_rehash(Arena *a, Vocab *v, int64_t nslots) {
  int64_t *slots = arena_alloc(a, sizeof(int64_t) * (size_t)nslots);
  if (!slots) return -1;
  v->slots = slots;
  v->nslots = nslots;
  for (int64_t id = 0; id < v->n; id++) {
    const char *w = v->words[id];
    size_t len = strlen(w);
    *probe(v, w, len, 0, tok_hash(w, len, 0)) = id + 1;
  }
  return 0;
}

/* capacity of the words array for n entries: 8, then powers of two */
static int64_t words_cap(int64_t n) {
  int64_t c = 8;
  while (c < n) c *= 2;
  return c;
}

/* Appends a word (already folded) without looking it up. */
static int64_t vocab_append(Arena *a, Vocab *v, const char *tok, size_t len, int fold) {
  if (v->n == 0 || (v->n >= 8 && v->n == words_cap(v->n))) {
    int64_t cap = v->n ? v->n * 2 : 8;
    char **w = arena_alloc(a, sizeof(char *) * (size_t)cap);
    if (!w) return -1;
    if (v->n) memcpy(w, v->words, sizeof(char *) * (size_t)v->n);
    v->words = w;
  }
  if ((v->n + 1) * 2 > v->nslots) {
    if (vocab_rehash(a, v, v->nslots ? v->nslots * 2 : 64) != 0) return -1;
  }
  char *copy = arena_alloc(a, len + 1);
  if (!copy) return -1;
  for (size_t i = 0; i < len; i++) copy[i] = (char)fold_byte((unsigned char)tok[i], fold);
  int64_t id = v->n++;
  v->words[id] = copy;
  *probe(v, copy, len, 0, tok_hash(copy, len, 0)) = id + 1;
  return id;
}

int64_t vocab_intern(Arena *a, Vocab *v, const char *tok, size_t len, int fold) {
  int64_t id = vocab_lookup(v, tok, len, fold);
  if (id >= 0) return id;
  return vocab_append(a, v, tok, len, fold);
}

/* ---- the capped vocabulary ---- */

typedef struct Ranked {
  int64_t count;
  const char *word;
  int64_t id;
} Ranked;

static int ranked_cmp(const void *pa, const void *pb) {
  const Ranked *a = pa, *b = pb;
  if (a->count != b->count) return a->count > b->count ? -1 : 1;
  return strcmp(a->word, b->word);
}

int vocab_build(Arena *a, Vocab *out, const Vocab *full, const int64_t *counts, int64_t cap,
                int32_t *remap) {
  memset(out, 0, sizeof *out);
  if (vocab_append(a, out, "<pad>", 5, 0) != 0 || vocab_append(a, out, "<unk>", 5, 0) != 1)
    return -1;
  int64_t m = 0;
  for (int64_t i = 0; i < full->n; i++) {
    remap[i] = 1;
    if (counts[i] > 0) m++;
  }
  if (m == 0) return 0;
  RaAlloc al = a->alloc;
  Ranked *r = ra_malloc(&al, sizeof(Ranked) * (size_t)m);
  if (!r) return -1;
  m = 0;
  for (int64_t i = 0; i < full->n; i++)
    if (counts[i] > 0) r[m++] = (Ranked){counts[i], full->words[i], i};
  qsort(r, (size_t)m, sizeof *r, ranked_cmp);
  int64_t keep = (cap <= 0 || cap - 2 > m) ? m : cap - 2;
  if (keep < 0) keep = 0;
  int rc = 0;
  for (int64_t i = 0; i < keep; i++) {
    int64_t id = vocab_append(a, out, r[i].word, strlen(r[i].word), 0);
    if (id < 0) {
      rc = -1;
      break;
    }
    remap[r[i].id] = (int32_t)id;
  }
  ra_free_mem(&al, r, sizeof(Ranked) * (size_t)m);
  return rc;
}

/* data.c - data sets (language.md §8): the tsv, csv, text and synthetic
 * loaders, text fields through the vocabulary (tokenize.c), labels to class
 * ids, deterministic splits and shuffles from Philox streams, and batches.
 *
 * Everything a DataSet owns lives in one arena freed by data_free; loading
 * works in a second, scratch arena.  Every malformed input is an error that
 * names the file and the line (docs/data.md lists them). */
#include "data.h"

#include "../../base/file.h"
#include "../../base/utf8.h"
#include "keyperm.h"
#include "npy.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../exec/rng.h"

/* The DataSet and the arena that holds everything it owns. */
typedef struct DataBox {
  DataSet ds;
  Arena keep;
  const void *map;      /* the text loader's file, mapped while its examples are read */
  size_t map_len;
  void *woff;           /* the text loader's window offsets (through ds.alloc) */
  size_t woff_bytes;
} DataBox;

/* The text loader's examples (chars, words), read from the mapped file when
 * a batch asks for them: window i is the N + 1 tokens from byte woff[i]. */
struct DataText {
  const char *s;        /* the text (after a byte order mark) */
  size_t len;
  int64_t *woff;        /* [n / WOFF_EVERY + 1]: every WOFF_EVERY-th window's byte offset */
  int64_t N;
  int32_t ascii[128];   /* tokenize chars: the vocabulary id of each byte below 0x80 (<unk> if none) */
  TokKind kind;
};

/* A field of a table record: bytes (not NUL-terminated). */
typedef struct Cell {
  const char *p;
  size_t n;
} Cell;

typedef struct Rec {
  int64_t line;    /* where the record starts */
  int64_t first;   /* index of its first cell */
  int64_t ncells;
} Rec;

/* A growable array over the RaAlloc. */
typedef struct Vec {
  void *p;
  size_t n, cap, esz;
} Vec;

typedef struct Loader {
  RaAlloc alloc;
  const DataDecl *d;
  DataSet *ds;
  Arena *keep;
  Arena tmp;
  const char *path;      /* as opened (for messages) */
  const char *buf;       /* the file's bytes (mapped), after a byte order mark */
  size_t len;
  const void *map;       /* the mapping (unmapped by the loader unless kept) */
  size_t map_len;
  Vec recs, cells;       /* tables */
  uint8_t *split_of;     /* per example: 0 train, 1 valid, 2 test, 3 none */
  char *err;
  size_t errlen;
  const DataVocab *fixed; /* the vocabulary and labels to encode with, or NULL */
} Loader;

/* ---- small helpers ---- */

static void *vec_push(Loader *L, Vec *v) {
  if (v->n == v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 256;
    if (cap > SIZE_MAX / v->esz) return NULL;
    void *p = ra_realloc(&L->alloc, v->p, v->cap * v->esz, cap * v->esz);
    if (!p) return NULL;
    v->p = p;
    v->cap = cap;
  }
  return (char *)v->p + v->esz * v->n++;
}

static void vec_free(Loader *L, Vec *v) {
  if (v->p) ra_free_mem(&L->alloc, v->p, v->cap * v->esz);
  v->p = NULL;
  v->n = v->cap = 0;
}

static int fail(Loader *L, int64_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "path:line: message" (or "path: message" for line 0). */
static int fail(Loader *L, int64_t line, const char *fmt, ...) {
  if (!L->err || !L->errlen) return -1;
  int k;
  if (L->path && line > 0)
    k = snprintf(L->err, L->errlen, "%s:%lld: ", L->path, (long long)line);
  else if (L->path)
    k = snprintf(L->err, L->errlen, "%s: ", L->path);
  else
    k = snprintf(L->err, L->errlen, "data '%s': ", L->d->name ? L->d->name : "?");
  if (k < 0) k = 0;
  if ((size_t)k < L->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->err + k, L->errlen - (size_t)k, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static int oom(Loader *L) { return fail(L, 0, "out of memory while loading the data"); }

/* A printable excerpt of a cell for messages. */
static const char *excerpt(const char *p, size_t n, char *out, size_t outlen) {
  size_t k = 0, i = 0;
  for (; i < n && k + 4 < outlen; i++) {
    unsigned char c = (unsigned char)p[i];
    out[k++] = (c < 0x20 || c == 0x7F) ? '?' : (char)c;
  }
  if (i < n) {
    memcpy(out + k, "...", 3);
    k += 3;
  }
  out[k] = 0;
  return out;
}

static Cell trim(Cell c) {
  while (c.n && (c.p[0] == ' ' || c.p[0] == '\t')) c.p++, c.n--;
  while (c.n && (c.p[c.n - 1] == ' ' || c.p[c.n - 1] == '\t')) c.n--;
  return c;
}

static bool mul_ok(int64_t a, int64_t b, int64_t *out) {
  if (a < 0 || b < 0 || (b && a > INT64_MAX / 4 / b)) return false;
  *out = a * b;
  return true;
}

static int64_t numel(const IrType *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->dim[i];
  return n;
}

static IrType int_vec(int64_t n) {
  IrType t;
  memset(&t, 0, sizeof t);
  t.dtype = IR_I32;
  t.rank = 1;
  t.dim[0] = n;
  return t;
}

/* ---- files ---- */

static int file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

/* Resolves the path p (relative to the spec's folder first, then to the
 * working directory) and sets L->path; *also* gets p when it was joined. */
static int resolve_path(Loader *L, const char *p, const char **also) {
  if (!p || !*p) return fail(L, 0, "no file name given");
  const char *path = p;
  if (p[0] != '/' && L->d->spec_dir && *L->d->spec_dir && strcmp(L->d->spec_dir, ".") != 0) {
    const char *joined = arena_printf(&L->tmp, "%s/%s", L->d->spec_dir, p);
    if (!joined) return oom(L);
    if (file_exists(joined) || !file_exists(p)) path = joined;
  }
  L->path = path;
  *also = path != p ? p : NULL;
  return 0;
}

static int open_error(Loader *L, const char *why, const char *also) {
  if (also) return fail(L, 0, "cannot open the data file: %s (also looked for '%s')", why, also);
  return fail(L, 0, "cannot open the data file: %s", why);
}

/* Resolves p and reads the file whole (npy arrays). */
static int read_path(Loader *L, const char *p, char **buf, size_t *size) {
  const char *also;
  if (resolve_path(L, p, &also)) return -1;
  char why[256];
  if (file_read_all(&L->alloc, L->path, (uint64_t)1 << 40, buf, size, why, sizeof why) != 0)
    return open_error(L, why, also);
  return 0;
}

/* Maps the data block's file as L->buf (tsv, csv, text): never copied into
 * memory, so a corpus may be larger than it. */
static int read_file(Loader *L) {
  const char *also;
  if (resolve_path(L, L->d->path, &also)) return -1;
  char why[256];
  if (file_map(L->path, &L->map, &L->map_len, why, sizeof why) != 0) {
    if (strncmp(why, "cannot map", 10) == 0) /* opened, but not mappable (a /sys or /proc file) */
      return fail(L, 0, "%s (tsv, csv and text files are read through a memory mapping)", why);
    return open_error(L, why, also);
  }
  L->buf = L->map;
  L->len = L->map_len;
  /* a UTF-8 byte order mark is not data */
  if (L->len >= 3 && memcmp(L->buf, "\xEF\xBB\xBF", 3) == 0) {
    L->buf += 3;
    L->len -= 3;
  }
  if (L->len == 0) return fail(L, 0, "the file is empty");
  return 0;
}

/* The file's size against the mapping's after a pass over it: a file that
 * shrank would raise SIGBUS at the next read of its lost pages. */
static int still_whole(Loader *L) {
  int64_t now = file_size_now(L->path);
  if (now >= 0 && (uint64_t)now >= (uint64_t)L->map_len) return 0;
  return fail(L, 0, "the file was truncated while it was read (%llu bytes mapped, %lld now)",
              (unsigned long long)L->map_len, (long long)now);
}

/* ---- tables (tsv, csv) ---- */

static int push_cell(Loader *L, const char *p, size_t n) {
  Cell *c = vec_push(L, &L->cells);
  if (!c) return oom(L);
  c->p = p;
  c->n = n;
  return 0;
}

static int push_rec(Loader *L, int64_t line, int64_t first) {
  Rec *r = vec_push(L, &L->recs);
  if (!r) return oom(L);
  r->line = line;
  r->first = first;
  r->ncells = (int64_t)L->cells.n - first;
  return 0;
}

static bool blank(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') return false;
  return true;
}

static int parse_tsv(Loader *L) {
  const char *b = L->buf;
  size_t pos = 0;
  int64_t line = 0;
  while (pos < L->len) {
    line++;
    const char *nl = memchr(b + pos, '\n', L->len - pos);
    size_t end = nl ? (size_t)(nl - b) : L->len;
    size_t e = end;
    if (e > pos && b[e - 1] == '\r') e--;
    const char *nul = memchr(b + pos, 0, e - pos);
    if (nul) return fail(L, line, "NUL byte at column %zu of the line", (size_t)(nul - (b + pos)) + 1);
    if (!blank(b + pos, e - pos)) {
      int64_t first = (int64_t)L->cells.n;
      size_t s = pos;
      for (;;) {
        const char *tab = memchr(b + s, '\t', e - s);
        size_t f = tab ? (size_t)(tab - b) : e;
        if (push_cell(L, b + s, f - s)) return -1;
        if (!tab) break;
        s = f + 1;
      }
      if (push_rec(L, line, first)) return -1;
    }
    pos = end + 1;
  }
  return 0;
}

/* RFC 4180: fields separated by commas, records by (CR)LF; a field in
 * double quotes may hold commas, line breaks and "" for a quote. */
static int parse_csv(Loader *L) {
  const char *b = L->buf;
  size_t pos = 0, n = L->len;
  int64_t line = 1;
  while (pos < n) {
    int64_t rec_line = line;
    int64_t first = (int64_t)L->cells.n;
    bool rec_blank = true;
    for (;;) { /* one field */
      if (pos < n && b[pos] == '"') {
        int64_t open_line = line;
        size_t s = ++pos, quotes = 0;
        for (;;) {
          if (pos >= n) return fail(L, open_line, "a quoted field opened here is never closed");
          if (b[pos] == 0) return fail(L, line, "NUL byte in a quoted field");
          if (b[pos] == '\n') line++;
          if (b[pos] == '"') {
            if (pos + 1 < n && b[pos + 1] == '"') {
              quotes++;
              pos += 2;
              continue;
            }
            break;
          }
          pos++;
        }
        size_t e = pos++; /* past the closing quote */
        const char *cp = b + s;
        size_t cn = e - s;
        if (quotes) {
          char *u = arena_alloc(&L->tmp, cn + 1);
          if (!u) return oom(L);
          size_t k = 0;
          for (size_t i = s; i < e; i++) {
            u[k++] = b[i];
            if (b[i] == '"') i++;
          }
          cp = u;
          cn = k;
        }
        if (push_cell(L, cp, cn)) return -1;
        rec_blank = false;
        if (pos < n && b[pos] == '\r' && pos + 1 < n && b[pos + 1] == '\n') pos++;
        if (pos < n && b[pos] != ',' && b[pos] != '\n') {
          char c = b[pos];
          return fail(L, line, "unexpected character '%c' after a closing quote (expected ',' or the end of the line)",
                      (c >= 0x20 && c < 0x7F) ? c : '?');
        }
      } else {
        size_t s = pos;
        while (pos < n && b[pos] != ',' && b[pos] != '\n') {
          if (b[pos] == 0) return fail(L, line, "NUL byte at byte %zu of the record", pos - s + 1);
          pos++;
        }
        size_t e = pos;
        if (e > s && b[e - 1] == '\r' && (pos >= n || b[pos] == '\n')) e--;
        if (push_cell(L, b + s, e - s)) return -1;
        if (!blank(b + s, e - s) || (pos < n && b[pos] == ',')) rec_blank = false;
      }
      if (pos < n && b[pos] == ',') {
        pos++;
        continue;
      }
      break; /* end of line or of file */
    }
    if (pos < n && b[pos] == '\n') {
      pos++;
      line++;
    }
    if (rec_blank) {
      L->cells.n = (size_t)first; /* an empty line */
      continue;
    }
    if (push_rec(L, rec_line, first)) return -1;
  }
  return 0;
}

/* Column of a named header cell; lists the header's names when absent. */
static int find_column(Loader *L, const char *name, int64_t *col) {
  Rec *h = (Rec *)L->recs.p;
  Cell *cells = (Cell *)L->cells.p + h->first;
  size_t nlen = strlen(name);
  for (int64_t i = 0; i < h->ncells; i++) {
    Cell c = trim(cells[i]);
    if (c.n == nlen && memcmp(c.p, name, nlen) == 0) {
      *col = i;
      return 0;
    }
  }
  /* the names as excerpts, as many as fit; "..." says there are more */
  char list[512];
  size_t k = 0;
  list[0] = 0;
  int64_t i = 0;
  for (; i < h->ncells; i++) {
    char ex[64];
    Cell c = trim(cells[i]);
    excerpt(c.p, c.n, ex, sizeof ex);
    size_t w = strlen(ex) + (i ? 2 : 0);
    if (k + w + 8 > sizeof list) break;
    k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", ex);
  }
  return fail(L, h->line, "no column named '%s' in the header (columns: %s%s)", name, list,
              i < h->ncells ? ", ..." : "");
}

/* ---- splits ---- */

/* p = 0 .. n-1 in the Fisher-Yates order of (seed, stream): the split's
 * permutation and each epoch's shuffle below DATA_KEYED_MIN. */
static void shuffled(uint32_t *p, int64_t n, uint64_t seed, uint64_t stream) {
  for (int64_t i = 0; i < n; i++) p[i] = (uint32_t)i;
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)rng_below(seed, stream, (uint64_t)i, (uint64_t)i + 1);
    uint32_t t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
}

/* The Fisher-Yates permutation of [0, n) (n at most DATA_MAX_EXAMPLES)
 * from the split stream of seed, giving each item the split of its
 * position: lab[e] is 0, 1 or 2 (train, valid, test) or 3 (in none) for
 * positions cut[s] .. cut[s+1].  The permutation is held only here.  0, or
 * -1 when out of memory. */
static int split_labels(Loader *L, int64_t n, const int64_t cut[4], uint8_t *lab) {
  uint64_t seed = L->d->seed;
  size_t bytes = sizeof(uint32_t) * (size_t)(n ? n : 1);
  uint32_t *p = ra_malloc(&L->alloc, bytes);
  if (!p) return -1;
  shuffled(p, n, seed, RNG_STREAM_SPLIT);
  for (int s = 0; s < 4; s++)
    for (int64_t i = cut[s]; i < (s < 3 ? cut[s + 1] : n); i++) lab[p[i]] = (uint8_t)s;
  ra_free_mem(&L->alloc, p, bytes);
  return 0;
}

/* The cuts of a split of n items by the fractions: positions cut[s] ..
 * cut[s+1] of the permutation are split s (cnt[s] of them); noun names the
 * items in the message of an empty split. */
static int split_cuts(Loader *L, int64_t n, const char *noun, int64_t cut[4], int64_t cnt[3]) {
  const DataDecl *d = L->d;
  double f[3] = {d->split[0], d->split[1], d->split[2]};
  static const char *const names[3] = {"train", "valid", "test"};
  double sum = 0;
  for (int s = 0; s < 3; s++) {
    if (!(f[s] >= 0 && f[s] <= 1))
      return fail(L, 0, "split fraction %s %g is not between 0 and 1", names[s], f[s]);
    sum += f[s];
  }
  if (sum > 1 + 1e-6) return fail(L, 0, "split fractions add up to %g, more than 1", sum);
  if (sum == 0) {
    f[0] = 1;
    sum = 1;
  }
  if (n > DATA_MAX_EXAMPLES)
    return fail(L, 0, "%lld %s, more than the %lld a data set can have", (long long)n, noun,
                (long long)DATA_MAX_EXAMPLES);
  double acc = 0;
  cut[0] = 0;
  for (int s = 0; s < 3; s++) {
    acc += f[s];
    cut[s + 1] = (s == 2 && sum > 1 - 1e-6) ? n : (int64_t)floor((double)n * acc + 0.5);
    if (cut[s + 1] > n) cut[s + 1] = n;
    if (cut[s + 1] < cut[s]) cut[s + 1] = cut[s];
  }
  for (int s = 0; s < 3; s++) {
    int64_t m = cut[s + 1] - cut[s];
    if (m == 0 && f[s] > 0)
      return fail(L, 0, "the %s split is empty (%lld %s, %s fraction %g); use more data or change the split",
                  names[s], (long long)n, noun, names[s], f[s]);
    cnt[s] = m;
  }
  return 0;
}

/* A stored split of n items (examples, or the lines of tokenize bpe) into
 * idx[s] and cnt[s], each ascending, in arena where.  *lab_out (when
 * given) gets each item's split (as split_labels), in L->tmp. */
static int split_items(Loader *L, int64_t n, const char *noun, Arena *where, uint32_t *idx[3],
                       int64_t cnt[3], uint8_t **lab_out) {
  int64_t cut[4];
  if (split_cuts(L, n, noun, cut, cnt)) return -1;
  /* each split's items are the permutation's between its cuts, in
   * ascending order: read off the labels */
  uint8_t *lab = arena_alloc(&L->tmp, (size_t)(n ? n : 1));
  if (!lab || split_labels(L, n, cut, lab)) return oom(L);
  for (int s = 0; s < 3; s++) {
    idx[s] = arena_alloc(where, sizeof(uint32_t) * (size_t)(cnt[s] ? cnt[s] : 1));
    if (!idx[s]) return oom(L);
  }
  int64_t k[4] = {0, 0, 0, 0};
  for (int64_t e = 0; e < n; e++) {
    int s = lab[e];
    if (s < 3) idx[s][k[s]++] = (uint32_t)e;
  }
  if (lab_out) *lab_out = lab;
  return 0;
}

/* The examples' split: stored below DATA_KEYED_MIN examples, keyed from
 * it on (the same fractions and cuts; no array of n). */
static int make_split(Loader *L) {
  DataSet *ds = L->ds;
  if (ds->n < DATA_KEYED_MIN)
    return split_items(L, ds->n, "examples", L->keep, ds->split_idx, ds->split_n, &L->split_of);
  if (split_cuts(L, ds->n, "examples", ds->split_cut, ds->split_n)) return -1;
  ds->split_keyed = true;
  keyperm_init(&ds->split_key, (uint64_t)ds->n, L->d->seed, RNG_STREAM_SPLIT);
  return 0;
}

/* The split of example e (0, 1, 2, or 3 for none). */
static int split_of(const Loader *L, int64_t e) {
  if (L->split_of) return L->split_of[e];
  const DataSet *ds = L->ds;
  int64_t i = (int64_t)keyperm_inv(&ds->split_key, (uint64_t)e);
  return i < ds->split_cut[1] ? 0 : i < ds->split_cut[2] ? 1 : i < ds->split_cut[3] ? 2 : 3;
}

/* ---- tokens ---- */

/* One text source per example: its tokens as ids of a full dictionary. */
typedef struct TokSeq {
  Vec ids;            /* int32 */
  int64_t *off;       /* [n + 1] */
} TokSeq;

typedef struct TokCtx {
  Loader *L;
  Vocab *full;
  Vec *ids;
  int fold;
} TokCtx;

static int tok_collect(void *ud, const char *tok, size_t len) {
  TokCtx *c = ud;
  int64_t id = vocab_intern(&c->L->tmp, c->full, tok, len, c->fold);
  if (id < 0 || id > INT32_MAX) return 1;
  int32_t *slot = vec_push(c->L, c->ids);
  if (!slot) return 1;
  *slot = (int32_t)id;
  return 0;
}

/* Line number of byte off of the file. */
static int64_t line_of(const Loader *L, size_t off) {
  int64_t line = 1;
  for (size_t i = 0; i < off && i < L->len; i++) line += L->buf[i] == '\n';
  return line;
}

/* Tokenizes s into seq; errors name the line (and column when given). */
static int tokenize_into(Loader *L, Vocab *full, Vec *ids, TokKind kind, const char *s, size_t n,
                         int64_t line, int64_t column) {
  TokCtx c = {L, full, ids, kind == TOK_WORDS};
  size_t bad = 0;
  int r = tok_split(kind == TOK_WORDS ? TOK_WORDS : TOK_CHARS, s, n, tok_collect, &c, &bad);
  if (r == 0) return 0;
  if (r > 0) return oom(L);
  if (line == 0) line = line_of(L, (size_t)(s - L->buf) + bad);
  const char *what = s[bad] == 0 ? "NUL byte" : "invalid UTF-8";
  if (column >= 0)
    return fail(L, line, "%s in column %lld (byte %zu of the field)", what, (long long)column, bad + 1);
  return fail(L, line, "%s (byte 0x%02x)", what, (unsigned)(unsigned char)s[bad]);
}

/* ds->vocab as L->fixed's, in its id order; remap[i] the fixed id of token i
 * of full (<unk> when the fixed vocabulary lacks it). */
static int fixed_vocab(Loader *L, const Vocab *full, int32_t *remap) {
  DataSet *ds = L->ds;
  memset(&ds->vocab, 0, sizeof ds->vocab);
  for (int64_t k = 0; k < L->fixed->ntokens; k++) {
    const char *w = L->fixed->tokens[k];
    int64_t id = vocab_intern(L->keep, &ds->vocab, w, strlen(w), 0);
    if (id < 0) return oom(L);
    if (id != k) return fail(L, 0, "the vocabulary of '%s' has token '%s' twice", L->fixed->source, w);
  }
  for (int64_t i = 0; remap && i < full->n; i++) {
    int64_t id = vocab_lookup(&ds->vocab, full->words[i], strlen(full->words[i]), 0);
    remap[i] = id >= 0 ? (int32_t)id : 1;
  }
  return 0;
}

/* Builds ds->vocab from the train examples' tokens of every sequence. */
static int build_vocab(Loader *L, Vocab *full, TokSeq *seqs, int nseq, int64_t cap,
                       int32_t **remap_out) {
  DataSet *ds = L->ds;
  int64_t *counts = arena_alloc(&L->tmp, sizeof(int64_t) * (size_t)(full->n ? full->n : 1));
  int32_t *remap = arena_alloc(&L->tmp, sizeof(int32_t) * (size_t)(full->n ? full->n : 1));
  if (!counts || !remap) return oom(L);
  for (int q = 0; q < nseq; q++) {
    const int32_t *ids = seqs[q].ids.p;
    for (int64_t i = 0; i < ds->n; i++) {
      if (split_of(L, i) != 0) continue;
      for (int64_t k = seqs[q].off[i]; k < seqs[q].off[i + 1]; k++) counts[ids[k]]++;
    }
  }
  if (L->fixed && L->fixed->ntokens > 0) {
    if (fixed_vocab(L, full, remap)) return -1;
  } else if (vocab_build(L->keep, &ds->vocab, full, counts, cap, remap) != 0) {
    return oom(L);
  }
  *remap_out = remap;
  return 0;
}

/* ---- tsv / csv ---- */

static int table_text_field(Loader *L, const DataField *f, int64_t col, Vocab *full, TokSeq *seq) {
  DataSet *ds = L->ds;
  const Rec *recs = (const Rec *)L->recs.p + (L->d->header ? 1 : 0);
  const Cell *cells = L->cells.p;
  seq->ids.esz = sizeof(int32_t);
  seq->off = arena_alloc(&L->tmp, sizeof(int64_t) * (size_t)(ds->n + 1));
  if (!seq->off) return oom(L);
  for (int64_t i = 0; i < ds->n; i++) {
    seq->off[i] = (int64_t)seq->ids.n;
    Cell c = cells[recs[i].first + col];
    if (tokenize_into(L, full, &seq->ids, f->tokenize, c.p, c.n, recs[i].line, col)) return -1;
  }
  seq->off[ds->n] = (int64_t)seq->ids.n;
  return 0;
}

/* The number in a cell (anything strtod reads, finite, in f32's range), or
 * with ints an integer id in int32's range; an error names line and column. */
static int cell_number(Loader *L, const Rec *r, int64_t col, bool ints, double *out) {
  Cell c = trim(((const Cell *)L->cells.p)[r->first + col]);
  char small[128], ex[48];
  char *end = NULL;
  double v = 0;
  bool ok = c.n > 0;
  if (ok) {
    /* a field of any length (a long run of digits is still a number) */
    char *num = c.n < sizeof small ? small : arena_alloc(&L->tmp, c.n + 1);
    if (!num) return oom(L);
    memcpy(num, c.p, c.n);
    num[c.n] = 0;
    errno = 0;
    if (ints) {
      long long iv = strtoll(num, &end, 10);
      ok = end == num + c.n && errno == 0 && iv >= INT32_MIN && iv <= INT32_MAX;
      v = (double)iv;
    } else {
      v = strtod(num, &end);
      ok = end == num + c.n && isfinite(v) && fabs(v) <= 3.4e38;
    }
  }
  if (!ok) {
    if (c.n == 0)
      return fail(L, r->line, "column %lld: expected %s, found an empty field", (long long)col,
                  ints ? "an integer id" : "a number");
    return fail(L, r->line, "column %lld: expected %s, found '%s'", (long long)col,
                ints ? "an integer id (the input it feeds is int)" : "a number",
                excerpt(c.p, c.n, ex, sizeof ex));
  }
  *out = v;
  return 0;
}

/* Columns lo..hi of every record as numbers (f32) or integer ids (int32,
 * when dt is IR_I32) into out[n][hi-lo+1]. */
static int table_numbers(Loader *L, int64_t lo, int64_t hi, IrDtype dt, void *out) {
  const Rec *recs = (const Rec *)L->recs.p + (L->d->header ? 1 : 0);
  int64_t m = hi - lo + 1;
  for (int64_t i = 0; i < L->ds->n; i++)
    for (int64_t j = 0; j < m; j++) {
      double v = 0;
      if (cell_number(L, &recs[i], lo + j, dt == IR_I32, &v)) return -1;
      if (dt == IR_I32) ((int32_t *)out)[i * m + j] = (int32_t)v;
      else ((float *)out)[i * m + j] = (float)v;
    }
  return 0;
}

static int table_features(Loader *L, int k, const DataField *f, int64_t lo, int64_t hi) {
  DataSet *ds = L->ds;
  int64_t m = hi - lo + 1;
  IrType t = f->shape;
  t.dtype = f->shape.dtype == IR_I32 ? IR_I32 : IR_F32;
  t.batched = 0;
  if (t.rank == 0) {
    t.rank = 1;
    t.dim[0] = m;
  }
  if (numel(&t) != m)
    return fail(L, 0, "features columns %lld..%lld give %lld values per example, but the shape has %lld",
                (long long)lo, (long long)hi, (long long)m, (long long)numel(&t));
  ds->in_type[k] = t;
  int64_t total;
  if (!mul_ok(ds->n, m, &total)) return oom(L);
  void *out = arena_alloc(L->keep, 4 * (size_t)(total ? total : 1));
  if (!out) return oom(L);
  ds->in_data[k] = out;
  return table_numbers(L, lo, hi, t.dtype, out);
}

/* A label field bound to an f32 target: numbers, columns lo..hi. */
static int table_value_labels(Loader *L, const DataField *f, int64_t lo, int64_t hi) {
  DataSet *ds = L->ds;
  int64_t m = hi - lo + 1;
  IrType t = f->shape;
  t.batched = 0;
  if (t.rank == 0) {
    t.rank = 1;
    t.dim[0] = m;
  }
  if (numel(&t) != m)
    return fail(L, 0, "labels columns %lld..%lld give %lld values per example, but the shape has %lld",
                (long long)lo, (long long)hi, (long long)m, (long long)numel(&t));
  ds->tgt_type = t;
  int64_t total;
  if (!mul_ok(ds->n, m, &total)) return oom(L);
  ds->tgt_data = arena_alloc(L->keep, 4 * (size_t)(total ? total : 1));
  if (!ds->tgt_data) return oom(L);
  return table_numbers(L, lo, hi, IR_F32, ds->tgt_data);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Labels as class ids of L->fixed's names; a label it does not have is an
 * error naming both the line and the checkpoint.  Columns lo .. lo + m - 1
 * of each record, into tgt_data[i * m + j]. */
static int fixed_labels(Loader *L, int64_t lo, int64_t m) {
  DataSet *ds = L->ds;
  const DataVocab *fx = L->fixed;
  const Rec *recs = (const Rec *)L->recs.p + (L->d->header ? 1 : 0);
  const Cell *cells = L->cells.p;
  Vocab names;
  memset(&names, 0, sizeof names);
  for (int64_t k = 0; k < fx->nlabels; k++) {
    int64_t id = vocab_intern(&L->tmp, &names, fx->labels[k], strlen(fx->labels[k]), 0);
    if (id < 0) return oom(L);
    if (id != k) return fail(L, 0, "the labels of '%s' have '%s' twice", fx->source, fx->labels[k]);
  }
  for (int64_t i = 0; i < ds->n; i++)
    for (int64_t j = 0; j < m; j++) {
      int64_t col = lo + j;
      Cell c = trim(cells[recs[i].first + col]);
      if (c.n == 0) return fail(L, recs[i].line, "column %lld: empty label", (long long)col);
      int64_t id = memchr(c.p, 0, c.n) ? -1 : vocab_lookup(&names, c.p, c.n, 0);
      if (id < 0) {
        char ex[48], list[160];
        size_t n = 0;
        list[0] = 0;
        for (int64_t k = 0; k < fx->nlabels && n + 8 < sizeof list; k++) {
          int w = snprintf(list + n, sizeof list - n, "%s%s", k ? ", " : "", fx->labels[k]);
          if (w < 0 || (size_t)w >= sizeof list - n) {
            snprintf(list + n, sizeof list - n, ", ...");
            break;
          }
          n += (size_t)w;
        }
        return fail(L, recs[i].line, "column %lld: label '%s' is not one of the %lld labels the checkpoint '%s' was trained with (%s)",
                    (long long)col, excerpt(c.p, c.n, ex, sizeof ex), (long long)fx->nlabels,
                    fx->source ? fx->source : "?", list);
      }
      ds->tgt_data[i * m + j] = (int32_t)id;
    }
  ds->classes = fx->nlabels;
  ds->label_names = arena_alloc(L->keep, sizeof(char *) * (size_t)fx->nlabels);
  if (!ds->label_names) return oom(L);
  for (int64_t k = 0; k < fx->nlabels; k++) {
    ds->label_names[k] = arena_strdup(L->keep, fx->labels[k]);
    if (!ds->label_names[k]) return oom(L);
  }
  return 0;
}

/* Class labels of columns lo..hi (one column for `label`, a range for
 * `labels` feeding a class(K)[m] target): the cells of all of them share
 * one set of classes. */
static int table_labels(Loader *L, const DataField *f, int64_t lo, int64_t hi) {
  DataSet *ds = L->ds;
  const Rec *recs = (const Rec *)L->recs.p + (L->d->header ? 1 : 0);
  const Cell *cells = L->cells.p;
  int64_t m = hi - lo + 1, total;
  ds->tgt_type = (IrType){0};
  ds->tgt_type.dtype = IR_I32;
  if (f->range) {
    IrType t = f->shape;
    t.dtype = IR_I32;
    t.batched = 0;
    if (t.rank == 0) t = int_vec(m);
    if (numel(&t) != m)
      return fail(L, 0, "labels columns %lld..%lld give %lld labels per example, but the shape has %lld",
                  (long long)lo, (long long)hi, (long long)m, (long long)numel(&t));
    ds->tgt_type = t;
  }
  if (!mul_ok(ds->n, m, &total)) return oom(L);
  ds->tgt_data = arena_alloc(L->keep, sizeof(int32_t) * (size_t)(total ? total : 1));
  if (!ds->tgt_data) return oom(L);
  if (L->fixed && L->fixed->nlabels > 0) return fixed_labels(L, lo, m);
  /* integer labels when every label is a small non-negative integer */
  bool ints = true;
  int64_t maxv = -1;
  for (int64_t i = 0; i < ds->n; i++)
    for (int64_t j = 0; j < m; j++) {
      int64_t col = lo + j;
      Cell c = trim(cells[recs[i].first + col]);
      if (c.n == 0) return fail(L, recs[i].line, "column %lld: empty label", (long long)col);
      const char *nul = memchr(c.p, 0, c.n);
      if (nul) return fail(L, recs[i].line, "column %lld: NUL byte in the label", (long long)col);
      if (ints) {
        int64_t v = 0;
        for (size_t q = 0; q < c.n && ints; q++) {
          if (c.p[q] < '0' || c.p[q] > '9' || q >= 6) ints = false;
          else v = v * 10 + (c.p[q] - '0');
        }
        if (ints && v >= 65536) ints = false;
        if (ints && v > maxv) maxv = v;
      }
    }
  if (ints) {
    ds->classes = maxv + 1;
    ds->label_names = arena_alloc(L->keep, sizeof(char *) * (size_t)ds->classes);
    if (!ds->label_names) return oom(L);
    for (int64_t k = 0; k < ds->classes; k++) {
      ds->label_names[k] = arena_printf(L->keep, "%lld", (long long)k);
      if (!ds->label_names[k]) return oom(L);
    }
    for (int64_t i = 0; i < ds->n; i++)
      for (int64_t j = 0; j < m; j++) {
        Cell c = trim(cells[recs[i].first + lo + j]);
        int32_t v = 0;
        for (size_t q = 0; q < c.n; q++) v = v * 10 + (c.p[q] - '0');
        ds->tgt_data[i * m + j] = v;
      }
    return 0;
  }
  /* text labels: sorted by bytes, so ids do not depend on the file order */
  Vocab names;
  memset(&names, 0, sizeof names);
  int32_t *tmp_id = arena_alloc(&L->tmp, sizeof(int32_t) * (size_t)(total ? total : 1));
  if (!tmp_id) return oom(L);
  for (int64_t i = 0; i < ds->n; i++)
    for (int64_t j = 0; j < m; j++) {
      Cell c = trim(cells[recs[i].first + lo + j]);
      int64_t id = vocab_intern(&L->tmp, &names, c.p, c.n, 0);
      if (id < 0) return oom(L);
      tmp_id[i * m + j] = (int32_t)id;
    }
  char **sorted = arena_alloc(L->keep, sizeof(char *) * (size_t)names.n);
  int32_t *rank = arena_alloc(&L->tmp, sizeof(int32_t) * (size_t)names.n);
  if (!sorted || !rank) return oom(L);
  for (int64_t k = 0; k < names.n; k++) {
    sorted[k] = arena_strdup(L->keep, names.words[k]);
    if (!sorted[k]) return oom(L);
  }
  qsort(sorted, (size_t)names.n, sizeof(char *), cmp_str);
  for (int64_t k = 0; k < names.n; k++) {
    int64_t id = vocab_lookup(&names, sorted[k], strlen(sorted[k]), 0);
    rank[id] = (int32_t)k;
  }
  for (int64_t i = 0; i < total; i++) ds->tgt_data[i] = rank[tmp_id[i]];
  ds->classes = names.n;
  ds->label_names = sorted;
  return 0;
}

/* The columns of each field (names looked up in the header) into cols;
 * every record must have them.  0 or -1. */
static int table_columns(Loader *L, int64_t cols[][2]) {
  const DataDecl *d = L->d;
  bool csv = d->loader == LOADER_CSV;
  int64_t need = 0;
  int nlabel = 0;
  for (int i = 0; i < d->nfields; i++) {
    const DataField *f = &d->fields[i];
    bool range = f->range || f->role == FIELD_FEATURES;
    int64_t lo = range ? f->col_lo : f->column;
    int64_t hi = range ? f->col_hi : f->column;
    const char *lon = range ? f->col_lo_name : f->column_name;
    const char *hin = range ? f->col_hi_name : f->column_name;
    if ((lon && lo < 0) || (hin && hi < 0)) {
      if (!d->header)
        return fail(L, 0, "column '%s' is named, but the data has no header line (add 'header')",
                    lon && lo < 0 ? lon : hin);
      if (lon && lo < 0 && find_column(L, lon, &lo)) return -1;
      if (hin && hi < 0 && find_column(L, hin, &hi)) return -1;
    }
    if (lo < 0 || hi < 0) return fail(L, 0, "field %d has no column", i + 1);
    if (hi < lo)
      return fail(L, 0, "features columns %lld..%lld are in the wrong order", (long long)lo, (long long)hi);
    cols[i][0] = lo;
    cols[i][1] = hi;
    if (hi + 1 > need) need = hi + 1;
    if (f->role == FIELD_LABEL) nlabel++;
  }
  if (nlabel > 1) return fail(L, 0, "more than one label field");
  const Rec *recs = L->recs.p;
  for (int64_t r = 0; r < (int64_t)L->recs.n; r++) {
    if (recs[r].ncells < need)
      return fail(L, recs[r].line, "expected at least %lld %s columns, found %lld", (long long)need,
                  csv ? "comma-separated" : "tab-separated", (long long)recs[r].ncells);
  }
  return 0;
}

/* Token ids of a text field, cut or padded to its maxlen T, through the
 * vocabulary's remap, into ds->in_data[k]. */
static int table_text_ids(Loader *L, const TokSeq *seq, int k, const int32_t *remap) {
  DataSet *ds = L->ds;
  int64_t T = ds->in_type[k].dim[0], total;
  if (!mul_ok(ds->n, T, &total)) return oom(L);
  int32_t *out = arena_alloc(L->keep, sizeof(int32_t) * (size_t)(total ? total : 1));
  if (!out) return oom(L);
  const int32_t *ids = seq->ids.p;
  for (int64_t i = 0; i < ds->n; i++) {
    int64_t s = seq->off[i], e = seq->off[i + 1];
    if (e - s > T) e = s + T;
    for (int64_t j = s; j < e; j++) out[i * T + (j - s)] = remap[ids[j]];
  }
  ds->in_data[k] = out;
  return 0;
}

static int load_table(Loader *L) {
  const DataDecl *d = L->d;
  DataSet *ds = L->ds;
  bool csv = d->loader == LOADER_CSV;
  L->recs.esz = sizeof(Rec);
  L->cells.esz = sizeof(Cell);
  if (read_file(L)) return -1;
  if ((csv ? parse_csv(L) : parse_tsv(L)) != 0) return -1;
  int64_t nrec = (int64_t)L->recs.n;
  if (nrec == 0) return fail(L, 0, "no data (the file has only empty lines)");
  if (d->header && nrec == 1) return fail(L, 0, "no examples after the header line");
  ds->n = nrec - (d->header ? 1 : 0);
  int64_t cols[8][2];
  if (table_columns(L, cols) || make_split(L)) return -1;

  /* inputs, in field order */
  Vocab full;
  memset(&full, 0, sizeof full);
  TokSeq seqs[8];
  int text_k[8], ntext = 0;
  int64_t cap = 0;
  memset(seqs, 0, sizeof seqs);
  int k = 0;
  int rc = 0;
  for (int i = 0; i < d->nfields && rc == 0; i++) {
    const DataField *f = &d->fields[i];
    if (f->role == FIELD_LABEL) {
      /* numbers for an f32 target, class labels for a class one (sema
       * types the field); untyped, `labels` are numbers, `label` classes */
      bool numbers = f->typed ? f->shape.dtype == IR_F32 : f->range;
      rc = numbers ? table_value_labels(L, f, cols[i][0], cols[i][1])
                   : table_labels(L, f, cols[i][0], cols[i][1]);
      continue;
    }
    if (k >= 8) {
      rc = fail(L, 0, "more than 8 input fields");
      break;
    }
    if (f->role == FIELD_FEATURES) {
      rc = table_features(L, k, f, cols[i][0], cols[i][1]);
    } else {
      if (f->maxlen <= 0) {
        rc = fail(L, 0, "text column %lld needs a maxlen above 0", (long long)cols[i][0]);
        break;
      }
      ds->in_type[k] = int_vec(f->maxlen);
      if (f->vocab > cap) cap = f->vocab;
      if (f->vocab <= 0) cap = INT64_MAX;
      rc = table_text_field(L, f, cols[i][0], &full, &seqs[ntext]);
      text_k[ntext++] = k;
    }
    k++;
  }
  ds->nin = k;
  int32_t *remap = NULL;
  if (rc == 0 && ntext > 0) rc = build_vocab(L, &full, seqs, ntext, cap == INT64_MAX ? 0 : cap, &remap);
  for (int q = 0; q < ntext && rc == 0; q++) rc = table_text_ids(L, &seqs[q], text_k[q], remap);
  for (int q = 0; q < ntext; q++) vec_free(L, &seqs[q].ids);
  return rc;
}

/* ---- text(path) { tokenize bpe }: windows over byte-pair tokens ---- */

typedef struct IdSink {
  Loader *L;
  Vec *ids;
} IdSink;

static int id_push(void *ud, int32_t id) {
  IdSink *k = ud;
  int32_t *slot = vec_push(k->L, k->ids);
  if (!slot) return 1;
  *slot = id;
  return 0;
}

/* The vocabulary of ds->bpe: <pad>, <unk>, the bytes, the merges. */
static int bpe_vocab(Loader *L) {
  DataSet *ds = L->ds;
  memset(&ds->vocab, 0, sizeof ds->vocab);
  ds->vocab.words = bpe_tokens(L->keep, &ds->bpe);
  if (!ds->vocab.words) return oom(L);
  ds->vocab.n = BPE_FIRST + ds->bpe.n;
  return 0;
}

/* The merges of L->fixed (a checkpoint's) as ds->bpe and its vocabulary. */
static int fixed_bpe(Loader *L) {
  int64_t bad = 0;
  int r = bpe_from_merges(L->keep, (const int32_t(*)[2])L->fixed->merges, L->fixed->nmerges,
                          &L->ds->bpe, &bad);
  if (r == -1) return oom(L);
  if (r) return fail(L, 0, "merge %lld of '%s' refers to a token it precedes", (long long)bad,
                     L->fixed->source ? L->fixed->source : "?");
  return bpe_vocab(L);
}

/* The file (CRLF already LF) is cut into lines, each with its newline; the
 * lines are split as examples are (seed, fractions), each split's lines
 * joined in file order into one text; the merges are learned from the
 * train text alone, and each text gives the windows of its split. */
static int load_text_bpe(Loader *L) {
  const DataDecl *d = L->d;
  DataSet *ds = L->ds;
  int64_t N = d->window;
  if (L->fixed && L->fixed->ntokens == 0) L->fixed = NULL; /* labels only: learn */
  if (!L->fixed && d->vocab < BPE_FIRST)
    return fail(L, 0, "tokenize bpe needs a vocab of at least %d, not %lld", BPE_FIRST,
                (long long)d->vocab);
  /* valid UTF-8 and no NUL, as for chars */
  int64_t line = 1, nlines = 0;
  for (size_t i = 0; i < L->len;) {
    const unsigned char *u = (const unsigned char *)L->buf + i;
    int k = u[0] ? utf8_seq_len(u, L->len - i, NULL) : 0;
    if (k == 0) return fail(L, line, "%s (byte 0x%02x)", u[0] ? "invalid UTF-8" : "NUL byte", (unsigned)u[0]);
    if (u[0] == '\n') line++;
    i += (size_t)k;
  }
  /* line starts */
  for (size_t i = 0; i < L->len; i++)
    if (i == 0 || L->buf[i - 1] == '\n') nlines++;
  int64_t *start = arena_alloc(&L->tmp, sizeof(int64_t) * (size_t)(nlines + 1));
  if (!start) return oom(L);
  for (size_t i = 0, k = 0; i < L->len; i++)
    if (i == 0 || L->buf[i - 1] == '\n') start[k++] = (int64_t)i;
  start[nlines] = (int64_t)L->len;
  uint32_t *lidx[3];
  int64_t lcnt[3];
  if (split_items(L, nlines, "lines", &L->tmp, lidx, lcnt, NULL)) return -1;
  /* the three texts, one after another in one buffer */
  char *text = ra_malloc(&L->alloc, L->len ? L->len : 1);
  if (!text) return oom(L);
  size_t toff[4] = {0};
  for (int s = 0; s < 3; s++) {
    size_t o = toff[s];
    for (int64_t j = 0; j < lcnt[s]; j++) {
      int64_t a = start[lidx[s][j]], b = start[lidx[s][j] + 1];
      if (b - a >= 2 && L->buf[b - 1] == '\n' && L->buf[b - 2] == '\r') { /* CRLF is LF */
        memcpy(text + o, L->buf + a, (size_t)(b - a - 2));
        o += (size_t)(b - a - 2);
        text[o++] = '\n';
        continue;
      }
      memcpy(text + o, L->buf + a, (size_t)(b - a));
      o += (size_t)(b - a);
    }
    toff[s + 1] = o;
  }
  int rc = 0;
  Vec ids[3];
  memset(ids, 0, sizeof ids);
  for (int s = 0; s < 3; s++) ids[s].esz = sizeof(int32_t);
  if (L->fixed) rc = fixed_bpe(L);
  else if (bpe_learn(L->keep, L->alloc, text, toff[1], d->vocab - BPE_FIRST, &ds->bpe))
    rc = oom(L);
  else rc = bpe_vocab(L);
  int64_t nwin[3] = {0, 0, 0};
  static const char *const names[3] = {"train", "valid", "test"};
  for (int s = 0; s < 3 && rc == 0; s++) {
    IdSink sink = {L, &ids[s]};
    if (bpe_encode(&ds->bpe, L->alloc, text + toff[s], toff[s + 1] - toff[s], id_push, &sink)) {
      rc = oom(L);
      break;
    }
    int64_t t = (int64_t)ids[s].n;
    nwin[s] = t >= N + 1 ? (t - 1) / N : 0;
    if (lcnt[s] > 0 && nwin[s] == 0)
      rc = fail(L, 0, "the %s split's %lld lines give %lld tokens, fewer than one window of %lld plus 1; use more data or change the split",
                names[s], (long long)lcnt[s], (long long)t, (long long)N);
  }
  ra_free_mem(&L->alloc, text, L->len ? L->len : 1);
  int64_t total = 0;
  if (rc == 0) {
    ds->n = nwin[0] + nwin[1] + nwin[2];
    if (ds->n > DATA_MAX_EXAMPLES)
      rc = fail(L, 0, "%lld examples, more than the %lld a data set can have", (long long)ds->n,
                (long long)DATA_MAX_EXAMPLES);
    ds->nin = 1;
    ds->in_type[0] = int_vec(N);
    ds->tgt_type = int_vec(N);
    ds->classes = ds->vocab.n;
    if (rc == 0 && !mul_ok(ds->n, N, &total)) rc = oom(L);
  }
  int32_t *in = NULL, *tg = NULL;
  if (rc == 0) {
    in = arena_alloc(L->keep, sizeof(int32_t) * (size_t)(total ? total : 1));
    tg = arena_alloc(L->keep, sizeof(int32_t) * (size_t)(total ? total : 1));
    if (!in || !tg) rc = oom(L);
  }
  /* examples: the train windows, then the valid ones, then the test ones */
  for (int s = 0, e = 0; s < 3 && rc == 0; s++) {
    ds->split_n[s] = nwin[s];
    ds->split_idx[s] = arena_alloc(L->keep, sizeof(uint32_t) * (size_t)(nwin[s] ? nwin[s] : 1));
    if (!ds->split_idx[s]) {
      rc = oom(L);
      break;
    }
    const int32_t *x = ids[s].p;
    for (int64_t i = 0; i < nwin[s]; i++, e++) {
      ds->split_idx[s][i] = (uint32_t)e;
      for (int64_t j = 0; j < N; j++) {
        in[e * N + j] = x[i * N + j];
        tg[e * N + j] = x[i * N + j + 1];
      }
    }
  }
  ds->in_data[0] = in;
  ds->tgt_data = tg;
  for (int s = 0; s < 3; s++) vec_free(L, &ids[s]);
  return rc;
}

/* ---- text(path): language modelling windows ---- */

static int ascii_space(char c) { return c == ' ' || c == '\n' || c == '\t'; }

/* Tokens of s[a..b) as the text loader reads them: "\r\n" is "\n" (the
 * \r is skipped, so no token holds it).  *bad is an offset into s.  The
 * text is handed to tok_split in pieces cut at a \r\n or just after an
 * ASCII space, tab or newline (no token spans one), at most 64 KiB each
 * unless a run without any is longer, so a reader that stops after a few
 * tokens (a batch's window) reads only the bytes near them. */
static int text_split(TokKind kind, const char *s, size_t a, size_t b, TokEmitFn emit, void *ud,
                      size_t *bad) {
  size_t i = a;
  while (i < b) {
    size_t e = b, skip = 0, w = (size_t)1 << 16;
    for (;;) {
      size_t lim = b - i <= w ? b : i + w, x = i;
      bool found = false;
      while (x < lim) { /* a \r\n in [i, lim) */
        const char *cr = memchr(s + x, '\r', lim - x);
        if (!cr) break;
        x = (size_t)(cr - s);
        if (x + 1 < b && s[x + 1] == '\n') {
          found = true;
          break;
        }
        x++;
      }
      if (found) {
        e = x;
        skip = 1;
        break;
      }
      if (lim == b) break;
      size_t c = lim;
      while (c > i && !ascii_space(s[c - 1])) c--;
      if (c > i) {
        e = c;
        break;
      }
      w *= 2; /* no space in w bytes: look further */
    }
    size_t bad0 = 0;
    int r = tok_split(kind, s + i, e - i, emit, ud, &bad0);
    if (r) {
      if (bad) *bad = i + bad0;
      return r;
    }
    i = e + skip; /* past the \r of \r\n */
  }
  return 0;
}

/* The byte offset of every WOFF_EVERY-th window is kept: window i is read
 * from window i - i % WOFF_EVERY's offset, past (i % WOFF_EVERY) * N tokens
 * (at most 63 windows' bytes scanned for one), so the index is 8 bytes per
 * WOFF_EVERY windows. */
enum { WOFF_EVERY = 64 };

/* Pages a pass has read are given back every SCAN_CHUNK bytes, so that a
 * pass over a large file holds little of it resident. */
#define SCAN_CHUNK ((size_t)16 << 20)

/* Pass 1: every token into the full dictionary; the byte offsets of every
 * WOFF_EVERY-th window.  Pass 2: the train windows' token counts. */
typedef struct TextScan {
  Loader *L;
  Vocab *full;
  int fold;
  int64_t N, ntok;
  int64_t span, k;       /* pass 1: N * WOFF_EVERY tokens between kept offsets; k since the last */
  Vec woff;              /* int64 */
  int64_t nwin;
  int64_t *counts;
  int64_t w, cur, times; /* pass 2: the window of the token, whether it is train, how often the token counts */
  size_t dropped;        /* the mapping's pages before this are given back */
  int64_t ascii[128];    /* the full id of each one-byte token seen, or -1 */
} TextScan;

/* The full id of a token: one-byte tokens from a table, the rest hashed;
 * interned when intern (pass 1).  -1 when out of memory. */
static int64_t scan_id(TextScan *c, const char *tok, size_t len, bool intern) {
  unsigned char b = (unsigned char)tok[0];
  if (len == 1 && b < 128 && c->ascii[b] >= 0) return c->ascii[b];
  int64_t id = intern ? vocab_intern(&c->L->tmp, c->full, tok, len, c->fold)
                      : vocab_lookup(c->full, tok, len, c->fold);
  if (len == 1 && b < 128) c->ascii[b] = id;
  return id;
}

/* Gives back the pages before byte off of the text once SCAN_CHUNK bytes
 * have been read past the last time. */
static void scan_progress(TextScan *c, size_t off) {
  Loader *L = c->L;
  off += (size_t)(L->buf - (const char *)L->map);
  if (off - c->dropped < SCAN_CHUNK) return;
  file_map_done(L->map, L->map_len, c->dropped, off - c->dropped);
  c->dropped = off;
}

/* One token of pass 1 at byte off of the text, its full id known. */
static inline int scan_one(TextScan *c, size_t off) {
  if (c->k == 0) {
    int64_t *slot = vec_push(c->L, &c->woff);
    if (!slot) return 1;
    *slot = (int64_t)off;
  }
  if (++c->k == c->span) c->k = 0;
  c->ntok++;
  return 0;
}

static int scan_token(void *ud, const char *tok, size_t len) {
  TextScan *c = ud;
  size_t off = (size_t)(tok - c->L->buf);
  scan_progress(c, off);
  int64_t id = scan_id(c, tok, len, true);
  if (id < 0 || id > INT32_MAX) return 1;
  return scan_one(c, off);
}

/* The step of tokenize chars at u[i] (of n bytes), shared by its three
 * loops (scan_chars, count_chars, chars_window): 1 for an ASCII byte, the
 * length of a longer UTF-8 character, CHAR_CRLF for a \r before \n (no
 * token: step over it), 0 at invalid UTF-8 or a NUL byte. */
enum { CHAR_CRLF = -1 };

static inline int char_step(const unsigned char *u, size_t i, size_t n) {
  unsigned ch = u[i];
  if (ch - 1u < 127u) return ch == '\r' && i + 1 < n && u[i + 1] == '\n' ? CHAR_CRLF : 1;
  return ch ? utf8_seq_len(u + i, n - i, NULL) : 0;
}

/* Pass 1 of tokenize chars, without a call per token: a byte below 0x80
 * is a token through the table (a \r before \n is none), a longer code
 * point through the dictionary.  As text_split: -1 with *bad at invalid
 * UTF-8 or a NUL byte, 1 when out of memory. */
static int scan_chars(TextScan *c, size_t *bad) {
  const unsigned char *u = (const unsigned char *)c->L->buf;
  size_t n = c->L->len, i = 0;
  while (i < n) {
    size_t end = n - i > SCAN_CHUNK ? i + SCAN_CHUNK : n;
    while (i < end) {
      int len = char_step(u, i, n);
      int64_t id;
      if (len == CHAR_CRLF) {
        i++;
        continue;
      }
      if (len == 0) {
        *bad = i;
        return -1;
      }
      if (len == 1) {
        id = c->ascii[u[i]];
        if (id < 0) id = scan_id(c, (const char *)u + i, 1, true);
      } else {
        id = vocab_intern(&c->L->tmp, c->full, (const char *)u + i, (size_t)len, 0);
      }
      if (id < 0 || id > INT32_MAX) return 1;
      if (c->k == 0 || c->k + 1 == c->span) { /* an offset to keep, or the span's end */
        if (scan_one(c, i)) return 1;
      } else {
        c->k++;
        c->ntok++;
      }
      i += (size_t)len;
    }
    scan_progress(c, i);
  }
  return 0;
}

/* Pass 2 counts each train window's N + 1 tokens, as if the windows were
 * cut apart (a token between two train windows counts twice): the token
 * after each N-th counts for the window it ends and the one it starts. */
static inline void count_step(TextScan *c) {
  if (++c->k == c->N) {
    c->k = 0;
    c->w++;
    int64_t prev = c->cur;
    c->cur = c->w < c->nwin && split_of(c->L, c->w) == 0;
    c->times = c->cur + prev;
  } else if (c->k == 1) {
    c->times = c->cur;
  }
}

static void count_begin(TextScan *c) {
  c->ntok = c->k = c->w = 0;
  c->dropped = 0;
  c->cur = c->times = c->nwin > 0 && split_of(c->L, 0) == 0;
}

static int count_token(void *ud, const char *tok, size_t len) {
  TextScan *c = ud;
  scan_progress(c, (size_t)(tok - c->L->buf));
  if (c->w > c->nwin) return 2; /* no window past this */
  if (c->times) {
    int64_t id = scan_id(c, tok, len, false);
    if (id < 0) return -1; /* the file changed since pass 1 */
    c->counts[id] += c->times;
  }
  count_step(c);
  return 0;
}

/* Pass 2 of tokenize chars, as scan_chars.  -1 with *bad when the file
 * changed since pass 1. */
static int count_chars(TextScan *c, size_t *bad) {
  const unsigned char *u = (const unsigned char *)c->L->buf;
  size_t n = c->L->len, i = 0;
  int64_t byte[128] = {0};
  while (i < n && c->w <= c->nwin) {
    size_t end = n - i > SCAN_CHUNK ? i + SCAN_CHUNK : n;
    while (i < end) {
      int len = char_step(u, i, n);
      if (len == CHAR_CRLF) {
        i++;
        continue;
      }
      if (len == 1) {
        byte[u[i]] += c->times;
      } else {
        int64_t id = len ? vocab_lookup(c->full, (const char *)u + i, (size_t)len, 0) : -1;
        if (id < 0) {
          *bad = i;
          return -1;
        }
        c->counts[id] += c->times;
      }
      i += (size_t)len;
      count_step(c);
      if (c->w > c->nwin) break;
    }
    scan_progress(c, i);
  }
  for (int b = 1; b < 128; b++) {
    if (!byte[b]) continue;
    if (c->ascii[b] < 0) {
      *bad = 0;
      return -1;
    }
    c->counts[c->ascii[b]] += byte[b];
  }
  return 0;
}

static int text_error(Loader *L, size_t at) {
  const char *what = L->buf[at] == 0 ? "NUL byte" : "invalid UTF-8";
  return fail(L, line_of(L, at), "%s (byte 0x%02x)", what, (unsigned)(unsigned char)L->buf[at]);
}

static int load_text(Loader *L) {
  const DataDecl *d = L->d;
  DataSet *ds = L->ds;
  if (d->window <= 0) return fail(L, 0, "the text loader needs a window above 0");
  if (d->window > INT64_MAX / WOFF_EVERY) return fail(L, 0, "the window %lld is too large", (long long)d->window);
  if (read_file(L)) return -1;
  if (d->tokenize == TOK_BPE) return load_text_bpe(L);
  Vocab full;
  memset(&full, 0, sizeof full);
  TokKind kind = d->tokenize == TOK_WORDS ? TOK_WORDS : TOK_CHARS;
  int64_t N = d->window;
  TextScan c;
  memset(&c, 0, sizeof c);
  c.L = L;
  c.full = &full;
  c.fold = kind == TOK_WORDS;
  c.N = N;
  c.span = N * WOFF_EVERY;
  c.woff.esz = sizeof(int64_t);
  for (int b = 0; b < 128; b++) c.ascii[b] = -1;
  /* pass 1 over the mapping: the dictionary and the windows' offsets */
  file_map_sequential(L->map, L->map_len);
  size_t bad = 0;
  int r = kind == TOK_CHARS ? scan_chars(&c, &bad) : text_split(kind, L->buf, 0, L->len, scan_token, &c, &bad);
  int rc = 0;
  if (r < 0) rc = text_error(L, bad);
  else if (r > 0) rc = oom(L);
  if (rc == 0) rc = still_whole(L);
  file_map_done(L->map, L->map_len, 0, L->map_len);
  int64_t ntok = c.ntok;
  if (rc == 0 && ntok < N + 1)
    rc = fail(L, 0, "the text has %lld tokens, fewer than one window of %lld plus 1", (long long)ntok,
              (long long)N);
  if (rc == 0) {
    ds->n = (ntok - 1) / N;
    ds->nin = 1;
    ds->in_type[0] = int_vec(N);
    ds->tgt_type = int_vec(N);
    rc = make_split(L);
  }
  int32_t *remap = NULL;
  if (rc == 0) {
    /* pass 2: the train windows' token counts, then the vocabulary */
    c.counts = arena_alloc(&L->tmp, sizeof(int64_t) * (size_t)(full.n ? full.n : 1));
    remap = arena_alloc(&L->tmp, sizeof(int32_t) * (size_t)(full.n ? full.n : 1));
    if (!c.counts || !remap) rc = oom(L);
  }
  if (rc == 0 && !(L->fixed && L->fixed->ntokens > 0)) {
    c.nwin = ds->n;
    count_begin(&c);
    r = kind == TOK_CHARS ? count_chars(&c, &bad) : text_split(kind, L->buf, 0, L->len, count_token, &c, &bad);
    if (r == 1) rc = oom(L);
    else if (r < 0) rc = fail(L, 0, "the file changed while it was read");
    if (rc == 0) rc = still_whole(L);
    file_map_done(L->map, L->map_len, 0, L->map_len);
  }
  if (rc == 0) {
    if (L->fixed && L->fixed->ntokens > 0) rc = fixed_vocab(L, &full, remap);
    else if (vocab_build(L->keep, &ds->vocab, &full, c.counts, d->vocab, remap) != 0) rc = oom(L);
  }
  /* the examples stay in the file: the data set keeps the mapping and the
   * windows' offsets, and a batch tokenizes its windows */
  if (rc == 0) {
    struct DataText *t = arena_alloc(L->keep, sizeof *t);
    if (!t) rc = oom(L);
    else { /* the offsets' array goes to the data set as it is (no copy) */
      DataBox *box = (DataBox *)ds;
      t->s = L->buf;
      t->len = L->len;
      t->woff = c.woff.p;
      t->N = N;
      t->kind = kind;
      for (int b = 0; b < 128; b++) {
        char ch = (char)b;
        int64_t id = b ? vocab_lookup(&ds->vocab, &ch, 1, 0) : -1;
        t->ascii[b] = id >= 0 ? (int32_t)id : 1;
      }
      ds->text = t;
      ds->classes = ds->vocab.n;
      box->map = L->map;
      box->map_len = L->map_len;
      box->woff = c.woff.p;
      box->woff_bytes = c.woff.cap * c.woff.esz;
      c.woff.p = NULL;
    }
  }
  vec_free(L, &c.woff);
  return rc;
}

/* A window's N + 1 tokens as ids of the vocabulary, after skip tokens: the
 * first N into in, the last N into tg. */
typedef struct WinCtx {
  const DataSet *ds;
  int fold;
  int32_t *in, *tg;
  int64_t skip, k, N;
} WinCtx;

static int win_token(void *ud, const char *tok, size_t len) {
  WinCtx *c = ud;
  if (c->skip > 0) {
    c->skip--;
    return 0;
  }
  int64_t id = vocab_lookup(&c->ds->vocab, tok, len, c->fold);
  int32_t v = id >= 0 ? (int32_t)id : 1;
  if (c->k < c->N && c->in) c->in[c->k] = v;
  if (c->k >= 1 && c->tg) c->tg[c->k - 1] = v;
  return ++c->k > c->N ? 2 : 0;
}

/* tokenize chars: skip tokens, then the window's, without a call per
 * token (as win_token; stops at bytes that are not UTF-8, which pass 1
 * saw none of, should the file have changed). */
static void chars_window(const struct DataText *t, const Vocab *v, size_t i, int64_t skip,
                         int32_t *in, int32_t *tg) {
  const unsigned char *u = (const unsigned char *)t->s;
  size_t n = t->len;
  int64_t N = t->N, k = 0;
  while (i < n && k <= N) {
    int len = char_step(u, i, n);
    int32_t id;
    if (len == CHAR_CRLF) {
      i++;
      continue;
    }
    if (len == 0) return;
    if (len == 1) {
      id = t->ascii[u[i]];
    } else {
      int64_t x = skip ? 0 : vocab_lookup(v, (const char *)u + i, (size_t)len, 0);
      id = x >= 0 ? (int32_t)x : 1;
    }
    i += (size_t)len;
    if (skip) {
      skip--;
      continue;
    }
    if (k < N && in) in[k] = id;
    if (k >= 1 && tg) tg[k - 1] = id;
    k++;
  }
}

static void text_window(const DataSet *ds, int64_t ex, int32_t *in, int32_t *tg) {
  const struct DataText *t = ds->text;
  size_t at = (size_t)t->woff[ex / WOFF_EVERY];
  int64_t skip = (ex % WOFF_EVERY) * t->N;
  if (t->kind == TOK_CHARS) {
    chars_window(t, &ds->vocab, at, skip, in, tg);
    return;
  }
  WinCtx c = {ds, t->kind == TOK_WORDS, in, tg, skip, 0, t->N};
  size_t bad;
  text_split(t->kind, t->s, at, t->len, win_token, &c, &bad);
}

/* ---- synthetic(task, length, vocab, examples) ---- */

static int load_synthetic(Loader *L) {
  const DataDecl *d = L->d;
  DataSet *ds = L->ds;
  int64_t V = d->vocab, T = d->length, E = d->examples;
  static const char *const tasks[3] = {"copy", "reverse", "recall"};
  const char *task = (unsigned)d->task < 3 ? tasks[d->task] : "?";
  if (V < 4 || V > 1000000) return fail(L, 0, "synthetic %s needs a vocab between 4 and 1000000, not %lld", task, (long long)V);
  if (T < 1 || T > 100000) return fail(L, 0, "synthetic %s needs a length between 1 and 100000, not %lld", task, (long long)T);
  if (E < 1 || E > 10000000) return fail(L, 0, "synthetic %s needs examples between 1 and 10000000, not %lld", task, (long long)E);
  int64_t nkeys = (V - 2) / 2, pairs = (T - 1) / 2;
  if (d->task == SYN_RECALL) {
    if (pairs < 1) return fail(L, 0, "synthetic recall needs a length of at least 3 (a key, a value, the query)");
    if (pairs > nkeys)
      return fail(L, 0, "synthetic recall with length %lld has %lld distinct keys, but vocab %lld gives only %lld",
                  (long long)T, (long long)pairs, (long long)V, (long long)nkeys);
  }
  int64_t total;
  if (!mul_ok(E, T, &total)) return oom(L);
  ds->n = E;
  ds->nin = 1;
  ds->in_type[0] = int_vec(T);
  ds->classes = V;
  int32_t *in = arena_alloc(L->keep, sizeof(int32_t) * (size_t)total);
  int32_t *tg = arena_alloc(L->keep, sizeof(int32_t) * (size_t)(d->task == SYN_RECALL ? E : total));
  if (!in || !tg) return oom(L);
  ds->in_data[0] = in;
  ds->tgt_data = tg;
  uint64_t stride = (uint64_t)(2 * T + 2);
  int64_t *keys = NULL;
  if (d->task == SYN_RECALL) {
    keys = arena_alloc(&L->tmp, sizeof(int64_t) * (size_t)nkeys);
    if (!keys) return oom(L);
  }
  for (int64_t i = 0; i < E; i++) {
    uint64_t base = (uint64_t)i * stride;
    int32_t *x = in + i * T;
    if (d->task == SYN_RECALL) {
      /* k1 v1 ... kp vp [<pad>] q: keys from [2, 2+nkeys), distinct;
       * values from [2+nkeys, V); the target is the value of key q */
      for (int64_t k = 0; k < nkeys; k++) keys[k] = 2 + k;
      for (int64_t k = 0; k < pairs; k++) {
        int64_t j = k + (int64_t)rng_below(d->seed, RNG_STREAM_DATA, base + (uint64_t)k, (uint64_t)(nkeys - k));
        int64_t t = keys[k];
        keys[k] = keys[j];
        keys[j] = t;
        x[2 * k] = (int32_t)keys[k];
        x[2 * k + 1] = (int32_t)(2 + nkeys +
                                 (int64_t)rng_below(d->seed, RNG_STREAM_DATA, base + (uint64_t)(pairs + k),
                                                    (uint64_t)(V - 2 - nkeys)));
      }
      if (2 * pairs + 1 < T) x[2 * pairs] = 0;
      int64_t q = (int64_t)rng_below(d->seed, RNG_STREAM_DATA, base + (uint64_t)(2 * pairs), (uint64_t)pairs);
      x[T - 1] = x[2 * q];
      tg[i] = x[2 * q + 1];
    } else {
      for (int64_t j = 0; j < T; j++)
        x[j] = (int32_t)(2 + rng_below(d->seed, RNG_STREAM_DATA, base + (uint64_t)j, (uint64_t)(V - 2)));
      for (int64_t j = 0; j < T; j++) tg[i * T + j] = d->task == SYN_REVERSE ? x[T - 1 - j] : x[j];
    }
  }
  if (d->task == SYN_RECALL) {
    ds->tgt_type = (IrType){0};
    ds->tgt_type.dtype = IR_I32;
  } else {
    ds->tgt_type = int_vec(T);
  }
  /* the vocabulary: <pad>, <unk>, then the ids as words ("2", "3", ...) */
  memset(&ds->vocab, 0, sizeof ds->vocab);
  for (int64_t k = 0; k < V; k++) {
    char w[24];
    int n = k == 0 ? snprintf(w, sizeof w, "<pad>") : k == 1 ? snprintf(w, sizeof w, "<unk>")
                                                           : snprintf(w, sizeof w, "%lld", (long long)k);
    if (vocab_intern(L->keep, &ds->vocab, w, (size_t)n, 0) != k) return oom(L);
  }
  return make_split(L);
}

/* ---- the public entry points ---- */

/* The inputs of d and their tokenizers, from the declaration alone. */
/* ---- npy(path) { label npy(path) } ---- */

static const char *shape_text(Arena *a, const int64_t *dim, int n, bool tuple) {
  char buf[256];
  size_t k = 0;
  buf[k++] = tuple ? '(' : '[';
  for (int i = 0; i < n && k < sizeof buf - 32; i++)
    k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%lld", i ? ", " : "", (long long)dim[i]);
  if (tuple && n == 1) buf[k++] = ',';
  buf[k++] = tuple ? ')' : ']';
  buf[k] = 0;
  return arena_strdup(a, buf);
}

/* One array of the data set: read, parsed, its examples checked against
 * the field's per-example type (as sema typed it from the model; an
 * untyped field takes the array's), converted into out. */
static int npy_array(Loader *L, const DataField *f, const char *what, IrType *t, void **out,
                     int64_t n_want) {
  char *buf = NULL;
  size_t size = 0;
  if (read_path(L, f->path, &buf, &size)) return -1;
  NpyArray a;
  char why[256];
  int rc = 0;
  if (npy_parse((const unsigned char *)buf, size, &a, why, sizeof why)) {
    rc = fail(L, 0, "%s", why);
    goto done;
  }
  const char *ashape = shape_text(&L->tmp, a.shape, a.ndim, true);
  if (!ashape) {
    rc = oom(L);
    goto done;
  }
  if (n_want >= 0 && a.shape[0] != n_want) {
    rc = fail(L, 0, "the %s array has %lld examples (shape %s), but the %s array has %lld",
              what, (long long)a.shape[0], ashape,
              strncmp(what, "input", 5) == 0 ? "first input" : "input", (long long)n_want);
    goto done;
  }
  *t = f->shape;
  t->batched = 0;
  if (!f->typed) { /* the array's own shape */
    t->dtype = a.dtype == NPY_I4 || a.dtype == NPY_I8 ? IR_I32 : IR_F32;
    t->rank = (uint8_t)(a.ndim - 1);
    for (int i = 1; i < a.ndim; i++) t->dim[i - 1] = a.shape[i];
  }
  /* per example: the dims after the first must be the type's (a class
   * label's are none, and an f32[1] target may also come as shape (n,)) */
  bool same = a.ndim - 1 == t->rank;
  for (int i = 1; same && i < a.ndim; i++) same = a.shape[i] == t->dim[i - 1];
  if (!same && a.ndim == 1 && t->rank == 1 && t->dim[0] == 1) same = true;
  if (!same) {
    const char *want = t->rank == 0 && t->dtype == IR_I32
                           ? "one class id per example (an array of shape (n,))"
                           : arena_printf(&L->tmp, "%s%s", t->dtype == IR_I32 ? "int" : "f32",
                                          shape_text(&L->tmp, t->dim, t->rank, false));
    rc = fail(L, 0, "the %s array has examples of shape %s (the array is %s), but what it "
                    "feeds takes %s",
              what, shape_text(&L->tmp, a.shape + 1, a.ndim - 1, false), ashape,
              want ? want : "?");
    goto done;
  }
  void *data = arena_alloc(L->keep, 4 * (size_t)(a.count ? a.count : 1));
  if (!data) {
    rc = oom(L);
    goto done;
  }
  if (npy_convert(&a, 0, a.count, t->dtype, data, why, sizeof why)) {
    rc = fail(L, 0, "%s", why);
    goto done;
  }
  *out = data;
  L->ds->n = a.shape[0];
done:
  if (buf) ra_free_mem(&L->alloc, buf, size + 1);
  return rc;
}

static int load_npy(Loader *L) {
  const DataDecl *d = L->d;
  DataSet *ds = L->ds;
  if (npy_array(L, &d->fields[0], "input", &ds->in_type[0], &ds->in_data[0], -1)) return -1;
  ds->nin = 1;
  const char *in_path = L->path;
  if (ds->n == 0) return fail(L, 0, "the array has no examples (its first dimension is 0)");
  /* further inputs (input npy(...)), in order, as many examples each */
  int label = -1;
  for (int i = 1; i < d->nfields; i++) {
    if (d->fields[i].role == FIELD_LABEL) {
      label = i;
      continue;
    }
    if (ds->nin >= DATA_MAX_INPUTS) return fail(L, 0, "more than %d input arrays", DATA_MAX_INPUTS);
    int k = ds->nin;
    char what[32];
    snprintf(what, sizeof what, "input %d", k + 1);
    if (npy_array(L, &d->fields[i], what, &ds->in_type[k], &ds->in_data[k], ds->n)) return -1;
    ds->nin++;
  }
  if (label >= 0) {
    const DataField *f = &d->fields[label];
    void *tg = NULL;
    if (npy_array(L, f, "label", &ds->tgt_type, &tg, ds->n)) return -1;
    ds->tgt_data = tg;
    if (ds->tgt_type.dtype == IR_I32) { /* class ids */
      int64_t per = numel(&ds->tgt_type), maxv = -1;
      int64_t fixed = L->fixed && L->fixed->nlabels > 0 ? L->fixed->nlabels : -1;
      for (int64_t i = 0; i < ds->n * per; i++) {
        int32_t v = ds->tgt_data[i];
        if (v < 0 || v >= 65536 || (fixed >= 0 && v >= fixed))
          return fail(L, 0, "element %lld is %d, not a class id (0 .. %lld)", (long long)i, (int)v,
                      (long long)(fixed >= 0 ? fixed - 1 : 65535));
        if (v > maxv) maxv = v;
      }
      ds->classes = fixed >= 0 ? fixed : maxv + 1;
      ds->label_names = arena_alloc(L->keep, sizeof(char *) * (size_t)(ds->classes + 1));
      if (!ds->label_names) return oom(L);
      for (int64_t k = 0; k < ds->classes; k++) {
        ds->label_names[k] = fixed >= 0 ? arena_strdup(L->keep, L->fixed->labels[k])
                                        : arena_printf(L->keep, "%lld", (long long)k);
        if (!ds->label_names[k]) return oom(L);
      }
    }
  }
  L->path = in_path;
  return make_split(L);
}

static int decl_inputs(const DataDecl *d, TokKind tok[8]) {
  if (d->loader == LOADER_TEXT) {
    tok[0] = d->tokenize == TOK_WORDS || d->tokenize == TOK_BPE ? d->tokenize : TOK_CHARS;
    return 1;
  }
  if (d->loader == LOADER_SYNTHETIC) {
    tok[0] = TOK_WORDS;
    return 1;
  }
  int k = 0;
  for (int i = 0; i < d->nfields && k < 8; i++) {
    const DataField *f = &d->fields[i];
    if (f->role == FIELD_LABEL) continue;
    tok[k++] = f->role != FIELD_TEXT ? TOK_NONE : f->tokenize == TOK_WORDS ? TOK_WORDS : TOK_CHARS;
  }
  return k;
}

static const char *tok_name(TokKind k) {
  return k == TOK_WORDS ? "words" : k == TOK_CHARS ? "chars" : k == TOK_BPE ? "bpe" : "none (not text)";
}

/* The declaration's tokenizers against the checkpoint's. */
static int check_tokenizers(Loader *L, const DataVocab *v, TokKind tok[8], int nin) {
  if (v->nin == 0 && v->ntokens == 0) return 0; /* labels only */
  if (v->nin != nin)
    return fail(L, 0, "%d inputs, but the checkpoint '%s' was trained on data with %d",
                nin, v->source ? v->source : "?", v->nin);
  for (int k = 0; k < nin; k++)
    if (tok[k] != v->tok[k])
      return fail(L, 0, "input %d is tokenized as %s, but the checkpoint '%s' was trained with %s",
                  k + 1, tok_name(tok[k]), v->source ? v->source : "?", tok_name(v->tok[k]));
  return 0;
}

DataSet *data_load(RaAlloc alloc, const DataDecl *d, char *err, size_t errlen) {
  return data_load_with(alloc, d, NULL, err, errlen);
}

/* A loader for d and the box of the DataSet it fills; NULL when out of
 * memory (the message in err). */
static DataBox *loader_begin(Loader *L, RaAlloc alloc, const DataDecl *d, char *err,
                             size_t errlen) {
  if (err && errlen) err[0] = 0;
  memset(L, 0, sizeof *L);
  L->alloc = alloc;
  L->d = d;
  L->err = err;
  L->errlen = errlen;
  DataBox *box = ra_malloc(&alloc, sizeof *box);
  if (!box) {
    oom(L);
    return NULL;
  }
  memset(box, 0, sizeof *box);
  arena_init(&box->keep, alloc);
  arena_init(&L->tmp, alloc);
  box->ds.alloc = alloc;
  box->ds.decl = d;
  L->ds = &box->ds;
  L->keep = &box->keep;
  return box;
}

DataSet *data_load_with(RaAlloc alloc, const DataDecl *d, const DataVocab *fixed, char *err,
                        size_t errlen) {
  Loader L;
  DataBox *box = loader_begin(&L, alloc, d, err, errlen);
  if (!box) return NULL;
  TokKind tok[8] = {TOK_NONE};
  int nin = decl_inputs(d, tok);
  memcpy(box->ds.tok, tok, sizeof tok);
  if (d->loader != LOADER_SYNTHETIC) L.fixed = fixed;
  int rc = L.fixed ? check_tokenizers(&L, fixed, tok, nin) : 0;
  if (rc == 0) switch (d->loader) {
  case LOADER_TSV:
  case LOADER_CSV: rc = load_table(&L); break;
  case LOADER_TEXT: rc = load_text(&L); break;
  case LOADER_SYNTHETIC: rc = load_synthetic(&L); break;
  case LOADER_NPY: rc = load_npy(&L); break;
  default: rc = fail(&L, 0, "unknown loader"); break;
  }
  vec_free(&L, &L.recs);
  vec_free(&L, &L.cells);
  if (L.map && rc == 0 && box->map == L.map) L.map = NULL; /* the data set reads it */
  file_unmap(L.map, L.map_len);
  arena_free(&L.tmp);
  if (rc != 0) {
    arena_free(&box->keep);
    ra_free_mem(&alloc, box, sizeof *box);
    return NULL;
  }
  return &box->ds;
}

DataSet *data_from_vocab(RaAlloc alloc, const DataDecl *d, const DataVocab *v, char *err,
                         size_t errlen) {
  Loader L;
  DataBox *box = loader_begin(&L, alloc, d, err, errlen);
  if (!box) return NULL;
  DataSet *ds = &box->ds;
  L.fixed = v;
  int nin = decl_inputs(d, ds->tok);
  int rc = check_tokenizers(&L, v, ds->tok, nin);
  ds->nin = nin;
  /* the shapes of the inputs, as the loaders give them */
  for (int k = 0, i = 0; rc == 0 && k < nin; k++) {
    if (d->loader == LOADER_TEXT) {
      ds->in_type[k] = int_vec(d->window);
    } else if (d->loader == LOADER_SYNTHETIC) {
      ds->in_type[k] = int_vec(d->length);
    } else {
      while (d->fields[i].role == FIELD_LABEL) i++;
      const DataField *f = &d->fields[i++];
      if (f->role == FIELD_TEXT) {
        ds->in_type[k] = int_vec(f->maxlen);
      } else {
        ds->in_type[k] = f->shape;
        ds->in_type[k].dtype = f->shape.dtype == IR_I32 ? IR_I32 : IR_F32;
      }
    }
  }
  if (rc == 0 && nin > 0 && ds->tok[0] == TOK_BPE) {
    rc = fixed_bpe(&L);
  } else if (rc == 0) {
    Vocab none;
    memset(&none, 0, sizeof none);
    rc = fixed_vocab(&L, &none, NULL);
  }
  if (rc == 0 && v->nlabels > 0) {
    ds->classes = v->nlabels;
    ds->label_names = arena_alloc(&box->keep, sizeof(char *) * (size_t)v->nlabels);
    if (!ds->label_names) rc = oom(&L);
    for (int64_t k = 0; rc == 0 && k < v->nlabels; k++) {
      ds->label_names[k] = arena_strdup(&box->keep, v->labels[k]);
      if (!ds->label_names[k]) rc = oom(&L);
    }
  } else if (rc == 0) {
    ds->classes = ds->vocab.n;
  }
  arena_free(&L.tmp);
  if (rc != 0) {
    arena_free(&box->keep);
    ra_free_mem(&alloc, box, sizeof *box);
    return NULL;
  }
  return ds;
}

DataVocab *data_vocab_new(RaAlloc alloc) {
  DataVocab *v = ra_malloc(&alloc, sizeof *v);
  if (!v) return NULL;
  memset(v, 0, sizeof *v);
  v->alloc = alloc;
  arena_init(&v->arena, alloc);
  return v;
}

DataVocab *data_vocab_of(RaAlloc alloc, const DataSet *ds) {
  DataVocab *v = data_vocab_new(alloc);
  if (!v) return NULL;
  v->nin = ds->nin;
  memcpy(v->tok, ds->tok, sizeof v->tok);
  bool ok = true;
  if (ds->vocab.n > 0) {
    v->tokens = arena_alloc(&v->arena, sizeof(char *) * (size_t)ds->vocab.n);
    ok = v->tokens != NULL;
    for (int64_t k = 0; ok && k < ds->vocab.n; k++) ok = (v->tokens[k] = arena_strdup(&v->arena, ds->vocab.words[k])) != NULL;
    v->ntokens = ds->vocab.n;
  }
  if (ok && ds->tok[0] == TOK_BPE) {
    v->merges = arena_alloc(&v->arena, sizeof *v->merges * (size_t)(ds->bpe.n ? ds->bpe.n : 1));
    ok = v->merges != NULL;
    if (ok && ds->bpe.n) memcpy(v->merges, ds->bpe.merge, sizeof *v->merges * (size_t)ds->bpe.n);
    v->nmerges = ds->bpe.n;
  }
  if (ok && ds->label_names && ds->classes > 0) {
    v->labels = arena_alloc(&v->arena, sizeof(char *) * (size_t)ds->classes);
    ok = v->labels != NULL;
    for (int64_t k = 0; ok && k < ds->classes; k++) ok = (v->labels[k] = arena_strdup(&v->arena, ds->label_names[k])) != NULL;
    v->nlabels = ds->classes;
  }
  if (!ok) {
    data_vocab_free(v);
    return NULL;
  }
  return v;
}

int data_vocab_set_merges(DataVocab *v, const int32_t (*merges)[2], int64_t n, int64_t *bad) {
  Bpe b;
  int r = bpe_from_merges(&v->arena, merges, n, &b, bad);
  if (r) return r;
  char **t = bpe_tokens(&v->arena, &b);
  if (!t) return -1;
  v->merges = b.merge;
  v->nmerges = n;
  v->tokens = t;
  v->ntokens = BPE_FIRST + n;
  return 0;
}

void data_vocab_free(DataVocab *v) {
  if (!v) return;
  RaAlloc alloc = v->alloc;
  arena_free(&v->arena);
  ra_free_mem(&alloc, v, sizeof *v);
}

void data_free(DataSet *ds) {
  if (!ds) return;
  DataBox *box = (DataBox *)ds;
  RaAlloc alloc = ds->alloc;
  file_unmap(box->map, box->map_len);
  if (box->woff) ra_free_mem(&alloc, box->woff, box->woff_bytes);
  arena_free(&box->keep);
  ra_free_mem(&alloc, box, sizeof *box);
}

typedef struct EncCtx {
  const Vocab *v;
  int fold;
  int32_t *out;
  int64_t n, max;
} EncCtx;

static int enc_emit(void *ud, const char *tok, size_t len) {
  EncCtx *c = ud;
  if (c->n >= c->max) return 2; /* enough */
  int64_t id = vocab_lookup(c->v, tok, len, c->fold);
  c->out[c->n++] = id >= 0 ? (int32_t)id : 1;
  return 0;
}

static int enc_none(void *ud, const char *tok, size_t len) {
  (void)ud, (void)tok, (void)len;
  return 0;
}

static int enc_bpe(void *ud, int32_t id) {
  EncCtx *c = ud;
  if (c->n >= c->max) return 2; /* enough */
  c->out[c->n++] = id;
  return 0;
}

int data_encode_text(const DataSet *ds, int field, const char *text, int32_t *out) {
  if (!ds || !text || !out || field < 0 || field >= ds->nin) return -1;
  const IrType *t = &ds->in_type[field];
  if (t->dtype != IR_I32 || t->rank != 1) return -1;
  TokKind kind = ds->tok[field];
  if (kind == TOK_NONE) return -1;
  int64_t T = t->dim[0];
  EncCtx c = {&ds->vocab, kind == TOK_WORDS, out, 0, T};
  size_t len = strlen(text);
  size_t bad;
  if (kind == TOK_BPE) { /* valid UTF-8 as for chars, then the merges */
    if (tok_split(TOK_CHARS, text, len, enc_none, NULL, &bad) == -1) return -1;
    if (bpe_encode(&ds->bpe, ds->alloc, text, len, enc_bpe, &c) == -1) return -1;
  } else if (tok_split(kind, text, len, enc_emit, &c, &bad) == -1) {
    return -1;
  }
  for (int64_t j = c.n; j < T; j++) out[j] = 0;
  return (int)c.n;
}

void data_example(const DataSet *ds, int64_t ex, void **in, int32_t *tg) {
  if (!ds || ex < 0 || ex >= ds->n) return;
  if (ds->text) {
    text_window(ds, ex, in ? (int32_t *)in[0] : NULL, tg);
    return;
  }
  for (int k = 0; k < ds->nin; k++) {
    if (!in || !in[k]) continue;
    size_t sz = (size_t)numel(&ds->in_type[k]) * 4;
    memcpy(in[k], (const char *)ds->in_data[k] + (size_t)ex * sz, sz);
  }
  int64_t tn = numel(&ds->tgt_type);
  if (tg && ds->tgt_data) memcpy(tg, ds->tgt_data + ex * tn, sizeof(int32_t) * (size_t)tn);
}

int64_t data_split_example(const DataSet *ds, int split, int64_t j) {
  if (ds->split_keyed) return (int64_t)keyperm_fwd(&ds->split_key, (uint64_t)(ds->split_cut[split] + j));
  return ds->split_idx[split][j];
}

int64_t data_batch(const DataSet *ds, int split, const DataOrder *order, int64_t start,
                   int64_t bs, void **inputs, int32_t *targets) {
  return data_batch_rows(ds, split, order, start, bs, 0, bs, inputs, targets);
}

int64_t data_batch_rows(const DataSet *ds, int split, const DataOrder *order, int64_t start,
                        int64_t bs, int64_t r0, int64_t rn, void **inputs, int32_t *targets) {
  if (!ds || split < 0 || split > 2 || bs <= 0 || start < 0 || r0 < 0 || rn < 0 || r0 + rn > bs)
    return 0;
  int64_t n = ds->split_n[split];
  if (order && order->n != n) return 0;
  int64_t real = n - start < bs ? n - start : bs;
  if (real <= 0) return 0;
  int64_t tn = ds->tgt_data || ds->text ? numel(&ds->tgt_type) : 0;
  for (int64_t r = r0; r < r0 + rn; r++) {
    int64_t pos = start + (r < real ? r : r % real), o = r - r0;
    int64_t ex = data_split_example(ds, split, order ? data_order_at(order, pos) : pos);
    void *row[DATA_MAX_INPUTS] = {NULL};
    for (int k = 0; k < ds->nin; k++)
      if (inputs && inputs[k]) row[k] = (char *)inputs[k] + (size_t)o * (size_t)numel(&ds->in_type[k]) * 4;
    data_example(ds, ex, row, targets && tn ? targets + o * tn : NULL);
  }
  return real;
}

int data_order_init(DataOrder *o, const DataSet *ds, int split) {
  memset(o, 0, sizeof *o);
  if (!ds || split < 0 || split > 2) return -1;
  o->alloc = ds->alloc;
  o->n = ds->split_n[split];
  if (ds->n >= DATA_KEYED_MIN) return 0; /* keyed, as the data set's split */
  o->perm = ra_malloc(&o->alloc, sizeof(uint32_t) * (size_t)(o->n ? o->n : 1));
  if (!o->perm) return -1;
  for (int64_t i = 0; i < o->n; i++) o->perm[i] = (uint32_t)i;
  return 0;
}

void data_order_free(DataOrder *o) {
  if (o && o->perm) ra_free_mem(&o->alloc, o->perm, sizeof(uint32_t) * (size_t)(o->n ? o->n : 1));
  if (o) o->perm = NULL;
}

/* Fisher-Yates from the shuffle stream of the epoch, or (keyed) the
 * bijection of that stream. */
void data_shuffle(const DataSet *ds, int split, uint64_t seed, int64_t epoch, DataOrder *o) {
  if (!ds || split < 0 || split > 2 || !o || o->n != ds->split_n[split]) return;
  int64_t n = o->n;
  uint64_t stream = (uint64_t)RNG_STREAM_SHUFFLE + (uint64_t)epoch;
  if (!o->perm) {
    if (n > 0) keyperm_init(&o->key, (uint64_t)n, seed, stream);
    return;
  }
  shuffled(o->perm, n, seed, stream);
}

int64_t data_order_at(const DataOrder *o, int64_t pos) {
  return o->perm ? o->perm[pos] : (int64_t)keyperm_fwd(&o->key, (uint64_t)pos);
}

/* state.c - a ModelState to and from a .safetensors checkpoint: parameters
 * by path, optimizer moments as "optim.m/<path>" and "optim.v/<path>", and
 * metadata (format, version, model, spec hash, step, epoch; the tokenizer,
 * vocabulary and labels as JSON arrays of strings; the repulsion triggers
 * that fired, when any did). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <sys/stat.h>

#include <jansson.h>

#include "../../include/ra.h"
#include "../../base/sbuf.h"
#include "../../base/utf8.h"
#include "../data/ckpt.h"
#include "train.h"

/* mkdir -p of the folder that will hold path ("runs/x.safetensors"). */
void make_parent_dirs(const char *path) {
  char buf[4096];
  size_t n = strlen(path);
  if (n >= sizeof buf) return;
  memcpy(buf, path, n + 1);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return;
    *p = '/';
  }
}

#define CKPT_FORMAT "rac-checkpoint"
#define CKPT_VERSION "1"
#define CKPT_MAX_COUNT 1000000000000000LL /* step, epoch */

/* A JSON array of strings in b; false when one is not valid UTF-8. */
static bool json_strings(SBuf *b, char *const *s, int64_t n) {
  sbuf_addc(b, '[');
  for (int64_t i = 0; i < n; i++) {
    if (!utf8_valid(s[i])) return false;
    if (i) sbuf_addc(b, ',');
    sbuf_addc(b, '"');
    for (const unsigned char *u = (const unsigned char *)s[i]; *u; u++) {
      if (*u == '"' || *u == '\\') {
        sbuf_addc(b, '\\');
        sbuf_addc(b, (char)*u);
      } else if (*u < 0x20) {
        sbuf_printf(b, "\\u%04x", *u);
      } else {
        sbuf_addc(b, (char)*u);
      }
    }
    sbuf_addc(b, '"');
  }
  sbuf_addc(b, ']');
  return true;
}

static const char *const tok_names[4] = {"none", "chars", "words", "bpe"};

/* "layer:heads,layer:heads" of ms's attention layers, in a (NULL without
 * any, or out of memory). */
static const char *heads_meta(const ModelState *ms, Arena *a) {
  if (!ms->ngroups) return NULL;
  SBuf b;
  sbuf_init(&b, a);
  for (int g = 0; g < ms->ngroups; g++)
    sbuf_printf(&b, "%s%s:%lld", g ? "," : "", ms->groups[g].path, (long long)ms->groups[g].heads);
  return sbuf_str(&b);
}

/* The metadata of v ("tokenizer", "vocab", "labels") into meta, text in a;
 * labels that are not valid UTF-8 are left out.  The number of entries, or
 * -1 when out of memory. */
static int vocab_meta(const DataVocab *v, Arena *a, CkptMeta *meta) {
  int n = 0;
  SBuf b;
  if (v->nin > 0) {
    sbuf_init(&b, a);
    sbuf_addc(&b, '[');
    for (int k = 0; k < v->nin; k++) sbuf_printf(&b, "%s\"%s\"", k ? "," : "", tok_names[v->tok[k]]);
    sbuf_addc(&b, ']');
    meta[n++] = (CkptMeta){"tokenizer", sbuf_str(&b)};
  }
  if (v->nin > 0 && v->tok[0] == TOK_BPE) {
    /* tokenize bpe: the merges, [[left, right], ...]; the tokens are theirs
     * (byte strings, not always UTF-8), so there is no "vocab" */
    sbuf_init(&b, a);
    sbuf_addc(&b, '[');
    for (int64_t k = 0; k < v->nmerges; k++)
      sbuf_printf(&b, "%s[%d,%d]", k ? "," : "", (int)v->merges[k][0], (int)v->merges[k][1]);
    sbuf_addc(&b, ']');
    meta[n++] = (CkptMeta){"bpe_merges", sbuf_str(&b)};
  } else if (v->ntokens > 0) {
    sbuf_init(&b, a);
    json_strings(&b, v->tokens, v->ntokens); /* tokens are valid UTF-8 */
    meta[n++] = (CkptMeta){"vocab", sbuf_str(&b)};
  }
  if (v->nlabels > 0) {
    sbuf_init(&b, a);
    if (json_strings(&b, v->labels, v->nlabels)) meta[n++] = (CkptMeta){"labels", sbuf_str(&b)};
  }
  for (int i = 0; i < n; i++)
    if (!meta[i].value) return -1;
  return n;
}

/* ---- the data settings' hash ---- */

typedef struct Fnv {
  uint64_t h;
} Fnv;

static void fnv_bytes(Fnv *f, const void *p, size_t n) {
  const unsigned char *u = p;
  for (size_t i = 0; i < n; i++) {
    f->h ^= u[i];
    f->h *= 1099511628211ULL;
  }
}

static void fnv_str(Fnv *f, const char *s) {
  fnv_bytes(f, s ? s : "", s ? strlen(s) + 1 : 1); /* NUL ends it: "ab","c" != "a","bc" */
  if (!s) fnv_bytes(f, "\x01", 1);                  /* NULL != "" */
}

static void fnv_i64(Fnv *f, int64_t v) {
  unsigned char b[8];
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)v >> (8 * i));
  fnv_bytes(f, b, 8);
}

static void fnv_f64(Fnv *f, double v) {
  char b[32];
  snprintf(b, sizeof b, "%.17g", v);
  fnv_str(f, b);
}

uint64_t data_settings_hash(const DataDecl *d) {
  Fnv f = {1469598103934665603ULL};
  fnv_i64(&f, d->loader);
  fnv_str(&f, d->path);
  fnv_i64(&f, d->header);
  fnv_i64(&f, d->nfields);
  for (int i = 0; i < d->nfields && i < 8; i++) {
    const DataField *x = &d->fields[i];
    fnv_i64(&f, x->role);
    fnv_i64(&f, x->column);
    fnv_str(&f, x->column_name);
    fnv_i64(&f, x->col_lo);
    fnv_i64(&f, x->col_hi);
    fnv_str(&f, x->col_lo_name);
    fnv_str(&f, x->col_hi_name);
    fnv_i64(&f, x->shape.rank);
    for (int k = 0; k < x->shape.rank && k < 8; k++) fnv_i64(&f, x->shape.dim[k]);
    fnv_i64(&f, x->tokenize);
    fnv_i64(&f, x->vocab);
    fnv_i64(&f, x->maxlen);
    if (x->path) fnv_str(&f, x->path); /* npy arrays */
  }
  for (int k = 0; k < 3; k++) fnv_f64(&f, d->split[k]);
  fnv_i64(&f, (int64_t)d->seed);
  fnv_i64(&f, d->tokenize);
  fnv_i64(&f, d->window);
  fnv_i64(&f, d->vocab);
  fnv_i64(&f, d->task);
  fnv_i64(&f, d->length);
  fnv_i64(&f, d->examples);
  return f.h;
}

int mstate_save(const ModelState *ms, const char *path, char *err, size_t errlen) {
  int nt = ms->nparams * (ms->opt_m ? 3 : 1);
  RaAlloc a = ms->alloc;
  CkptTensor *t = ra_calloc(&a, (size_t)(nt ? nt : 1), sizeof *t);
  char **names = ra_calloc(&a, (size_t)(nt ? nt : 1), sizeof *names);
  if (!t || !names) {
    ra_free_mem(&a, t, sizeof *t * (size_t)(nt ? nt : 1));
    ra_free_mem(&a, names, sizeof *names * (size_t)(nt ? nt : 1));
    snprintf(err, errlen, "out of memory saving '%s'", path);
    return RA_ENOMEM;
  }
  int k = 0, rc = 0;
  for (int pass = 0; pass < (ms->opt_m ? 3 : 1) && rc == 0; pass++) {
    for (int i = 0; i < ms->nparams; i++) {
      const ParamInfo *pi = &ms->params[i];
      const float *base = pass == 0 ? ms->w : pass == 1 ? ms->opt_m : ms->opt_v;
      const char *pre = pass == 0 ? "" : pass == 1 ? "optim.m/" : "optim.v/";
      size_t len = strlen(pre) + strlen(pi->path) + 1; /* freed as strlen + 1 */
      names[k] = ra_malloc(&a, len);
      if (!names[k]) { rc = RA_ENOMEM; break; }
      snprintf(names[k], len, "%s%s", pre, pi->path);
      t[k].name = names[k];
      t[k].dtype = 0;
      t[k].ndim = pi->type.rank;
      for (int d = 0; d < pi->type.rank; d++) t[k].shape[d] = pi->type.dim[d];
      t[k].data = (void *)(base + pi->offset);
      k++;
    }
  }
  if (rc == 0) {
    make_parent_dirs(path);
    char hash[32], step[32], epoch[32], trig[32];
    snprintf(hash, sizeof hash, "%016" PRIx64, ms->spec_hash);
    snprintf(trig, sizeof trig, "%016" PRIx64, ms->rep_triggered);
    snprintf(step, sizeof step, "%" PRId64, ms->step);
    snprintf(epoch, sizeof epoch, "%" PRId64, ms->epoch);
    CkptMeta meta[12] = {{"format", CKPT_FORMAT}, {"version", CKPT_VERSION},
                        {"model", ms->name},     {"spec_hash", hash},
                        {"step", step},          {"epoch", epoch}};
    Arena va;
    arena_init(&va, a);
    int nv = ms->vocab ? vocab_meta(ms->vocab, &va, meta + 6) : 0;
    if (nv < 0) {
      snprintf(err, errlen, "out of memory saving '%s'", path);
      rc = RA_ENOMEM;
    } else {
      /* the repulsion triggers that fired (bit g: head group g), to resume */
      if (ms->rep_triggered) meta[6 + nv++] = (CkptMeta){"repulsion_triggered", trig};
      /* the heads of each attention layer, which the parameters' shapes do
       * not show (a const such as n_heads set with --set) */
      const char *heads = heads_meta(ms, &va);
      if (ms->ngroups && !heads) nv = -1;
      else if (heads) meta[6 + nv++] = (CkptMeta){"heads", heads};
    }
    if (nv < 0) {
      snprintf(err, errlen, "out of memory saving '%s'", path);
      rc = RA_ENOMEM;
    } else {
      if (ckpt_write(path, t, k, meta, 6 + nv, err, errlen) != 0) rc = RA_EIO;
    }
    arena_free(&va);
  } else {
    snprintf(err, errlen, "out of memory saving '%s'", path);
  }
  for (int i = 0; i < k; i++) ra_free_mem(&a, names[i], strlen(names[i]) + 1);
  ra_free_mem(&a, t, sizeof *t * (size_t)(nt ? nt : 1));
  ra_free_mem(&a, names, sizeof *names * (size_t)(nt ? nt : 1));
  return rc;
}

/* The tensor `name` of c as the parameter pi expects it (f32, pi's shape,
 * every element finite); NULL with the error set. */
static const float *check_tensor(const Ckpt *c, const char *path, const char *name,
                                 const ParamInfo *pi, char *err, size_t errlen) {
  const CkptTensor *t = ckpt_find(c, name);
  if (!t) {
    snprintf(err, errlen, "%s: no tensor '%s' (the checkpoint is of another model?)", path, name);
    return NULL;
  }
  bool ok = t->dtype == 0 && t->ndim == pi->type.rank;
  for (int d = 0; ok && d < t->ndim; d++) ok = t->shape[d] == pi->type.dim[d];
  if (!ok) {
    char want[96];
    ir_type_str(&pi->type, want, sizeof want);
    char got[160];
    int n = snprintf(got, sizeof got, "%s[", t->dtype == 0 ? "f32" : "i32");
    for (int d = 0; d < t->ndim && n < (int)sizeof got - 24; d++)
      n += snprintf(got + n, sizeof got - (size_t)n, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    snprintf(got + n, sizeof got - (size_t)n, "]");
    snprintf(err, errlen, "%s: tensor '%s' is %s but the model expects %s", path, name, got, want);
    return NULL;
  }
  const float *x = t->data;
  int64_t n = ir_numel(&pi->type);
  for (int64_t i = 0; i < n; i++) {
    if (isfinite(x[i])) continue;
    snprintf(err, errlen, "%s: tensor '%s': element %lld is %s", path, name, (long long)i,
             isnan(x[i]) ? "NaN" : "infinite");
    return NULL;
  }
  return x;
}

/* A counter of the metadata ("step", "epoch"): decimal digits only, at most
 * 10^15.  Missing is an error only when need. */
static int meta_count(const Ckpt *c, const char *path, const char *key, bool need, int64_t *out,
                      char *err, size_t errlen) {
  const char *s = ckpt_meta(c, key);
  *out = 0;
  if (!s) {
    if (!need) return 0;
    snprintf(err, errlen, "%s: metadata '%s' is missing (needed to resume)", path, key);
    return RA_ECKPT;
  }
  int64_t v = 0;
  size_t n = strlen(s);
  bool ok = n > 0 && n <= 16;
  for (size_t i = 0; ok && i < n; i++) {
    if (s[i] < '0' || s[i] > '9') ok = false;
    else v = v * 10 + (s[i] - '0');
  }
  if (!ok || v > CKPT_MAX_COUNT) {
    snprintf(err, errlen, "%s: metadata '%s' is '%.40s', not a whole number from 0 to %lld", path,
             key, s, (long long)CKPT_MAX_COUNT);
    return RA_ECKPT;
  }
  *out = v;
  return 0;
}

/* A JSON array of strings (no NUL) in metadata key, copied into v's arena;
 * *out NULL and *n 0 when the key is absent. */
static int meta_strings(const Ckpt *c, const char *path, const char *key, DataVocab *v,
                        char ***out, int64_t *n, char *err, size_t errlen) {
  *out = NULL;
  *n = 0;
  const char *s = ckpt_meta(c, key);
  if (!s) return 0;
  json_error_t je;
  json_t *root = json_loads(s, 0, &je);
  bool ok = root && json_is_array(root) && json_array_size(root) > 0;
  size_t m = ok ? json_array_size(root) : 0;
  for (size_t i = 0; ok && i < m; i++) {
    json_t *e = json_array_get(root, i);
    ok = json_is_string(e) && strlen(json_string_value(e)) == json_string_length(e);
  }
  if (ok) {
    *out = arena_alloc(&v->arena, sizeof(char *) * m);
    if (!*out) {
      json_decref(root);
      snprintf(err, errlen, "out of memory loading '%s'", path);
      return RA_ENOMEM;
    }
    for (size_t i = 0; i < m; i++) {
      (*out)[i] = arena_strdup(&v->arena, json_string_value(json_array_get(root, i)));
      if (!(*out)[i]) {
        json_decref(root);
        snprintf(err, errlen, "out of memory loading '%s'", path);
        return RA_ENOMEM;
      }
    }
    *n = (int64_t)m;
  }
  if (root) json_decref(root);
  if (!ok) {
    snprintf(err, errlen, "%s: metadata '%s' is not a JSON array of strings", path, key);
    return RA_ECKPT;
  }
  return 0;
}

/* The metadata "bpe_merges": [[left, right], ...], each side an id made
 * before the merge (2 .. 257 bytes, then earlier merges). */
static int load_merges(const Ckpt *c, const char *path, DataVocab *v, char *err, size_t errlen) {
  json_error_t je;
  json_t *root = json_loads(ckpt_meta(c, "bpe_merges"), 0, &je);
  size_t m = root && json_is_array(root) ? json_array_size(root) : 0;
  bool ok = root && json_is_array(root) && m <= 100000000;
  RaAlloc al = v->alloc;
  int32_t (*mg)[2] = ok && m ? ra_malloc(&al, sizeof *mg * m) : NULL;
  if (ok && m && !mg) {
    json_decref(root);
    snprintf(err, errlen, "out of memory loading '%s'", path);
    return RA_ENOMEM;
  }
  size_t bad_at = 0;
  for (size_t i = 0; ok && i < m; i++) {
    json_t *e = json_array_get(root, i);
    ok = json_is_array(e) && json_array_size(e) == 2;
    for (size_t j = 0; ok && j < 2; j++) {
      json_t *x = json_array_get(e, j);
      ok = json_is_integer(x) && json_integer_value(x) >= 0 && json_integer_value(x) <= INT32_MAX;
      if (ok) mg[i][j] = (int32_t)json_integer_value(x);
    }
    if (!ok) bad_at = i;
  }
  bool pairs = root && json_is_array(root) && m <= 100000000; /* the entry is what is wrong */
  if (root) json_decref(root);
  int rc = 0;
  if (!ok) {
    if (pairs)
      snprintf(err, errlen, "%s: metadata 'bpe_merges': entry %zu is not a pair of token ids", path, bad_at);
    else
      snprintf(err, errlen, "%s: metadata 'bpe_merges' is not a JSON array of [left, right] pairs", path);
    rc = RA_ECKPT;
  } else {
    int64_t bad = 0;
    int r = data_vocab_set_merges(v, (const int32_t(*)[2])mg, (int64_t)m, &bad);
    if (r == -1) {
      snprintf(err, errlen, "out of memory loading '%s'", path);
      rc = RA_ENOMEM;
    } else if (r) {
      snprintf(err, errlen, "%s: metadata 'bpe_merges': merge %lld [%d, %d] uses a token not made before it (ids 2 .. %lld)",
               path, (long long)bad, (int)mg[bad][0], (int)mg[bad][1], (long long)(BPE_FIRST + bad - 1));
      rc = RA_ECKPT;
    }
  }
  if (mg) ra_free_mem(&al, mg, sizeof *mg * m);
  return rc;
}

/* The tokenizer, vocabulary and labels of the metadata: *out NULL when the
 * checkpoint has none (one written before they were stored). */
static int load_vocab(const Ckpt *c, const char *path, RaAlloc alloc, DataVocab **out, char *err,
                      size_t errlen) {
  *out = NULL;
  if (!ckpt_meta(c, "tokenizer") && !ckpt_meta(c, "vocab") && !ckpt_meta(c, "labels") &&
      !ckpt_meta(c, "bpe_merges"))
    return 0;
  DataVocab *v = data_vocab_new(alloc);
  if (!v) {
    snprintf(err, errlen, "out of memory loading '%s'", path);
    return RA_ENOMEM;
  }
  char **kinds;
  int64_t nk;
  int rc = meta_strings(c, path, "tokenizer", v, &kinds, &nk, err, errlen);
  if (rc == 0) rc = meta_strings(c, path, "vocab", v, &v->tokens, &v->ntokens, err, errlen);
  if (rc == 0) rc = meta_strings(c, path, "labels", v, &v->labels, &v->nlabels, err, errlen);
  if (rc == 0 && (nk > 8 || (nk == 0 && v->ntokens > 0))) {
    snprintf(err, errlen, "%s: metadata 'vocab' needs 'tokenizer' (one entry per input, at most 8)", path);
    rc = RA_ECKPT;
  }
  for (int64_t k = 0; rc == 0 && k < nk; k++) {
    int j = 0;
    while (j < 4 && strcmp(kinds[k], tok_names[j])) j++;
    if (j == 4) {
      snprintf(err, errlen, "%s: metadata 'tokenizer': unknown tokenizer '%.40s' (chars, words, bpe or none)", path, kinds[k]);
      rc = RA_ECKPT;
    }
    v->tok[k] = (TokKind)j;
  }
  v->nin = (int)nk;
  bool bpe = rc == 0 && nk > 0 && v->tok[0] == TOK_BPE;
  if (rc == 0 && bpe != (ckpt_meta(c, "bpe_merges") != NULL)) {
    snprintf(err, errlen, bpe ? "%s: metadata 'tokenizer' is bpe, but 'bpe_merges' is missing"
                              : "%s: metadata 'bpe_merges' without a bpe 'tokenizer'", path);
    rc = RA_ECKPT;
  }
  if (rc == 0 && bpe && v->ntokens > 0) {
    snprintf(err, errlen, "%s: metadata 'vocab' and 'bpe_merges' together (a bpe vocabulary is its merges)", path);
    rc = RA_ECKPT;
  }
  if (rc == 0 && bpe) rc = load_merges(c, path, v, err, errlen);
  if (rc == 0 && v->ntokens > 0 && (v->ntokens < 2 || strcmp(v->tokens[0], "<pad>") || strcmp(v->tokens[1], "<unk>"))) {
    snprintf(err, errlen, "%s: metadata 'vocab' does not start with \"<pad>\", \"<unk>\"", path);
    rc = RA_ECKPT;
  }
  if (rc == 0 && !(v->source = arena_strdup(&v->arena, path))) {
    snprintf(err, errlen, "out of memory loading '%s'", path);
    rc = RA_ENOMEM;
  }
  if (rc) {
    data_vocab_free(v);
    return rc;
  }
  *out = v;
  return 0;
}

/* Everything is checked before anything is copied: a checkpoint that fails
 * leaves the model as it was. */
/* The checkpoint's identity: format, version, model and the data-settings
 * hash (16 hex digits) into *hash.  0 or RA_ECKPT. */
static int check_identity(const Ckpt *c, const char *path, const ModelState *ms, uint64_t *hash,
                          char *err, size_t errlen) {
  const char *fmt = ckpt_meta(c, "format");
  if (!fmt || strcmp(fmt, CKPT_FORMAT) != 0) {
    snprintf(err, errlen, "%s: not a rac checkpoint (metadata 'format' is %s%s%s)", path,
             fmt ? "'" : "", fmt ? fmt : "missing", fmt ? "'" : "");
    return RA_ECKPT;
  }
  const char *ver = ckpt_meta(c, "version");
  if (!ver || strcmp(ver, CKPT_VERSION) != 0) {
    snprintf(err, errlen, "%s: checkpoint version %s; this rac reads version %s", path,
             ver ? ver : "(missing)", CKPT_VERSION);
    return RA_ECKPT;
  }
  const char *model = ckpt_meta(c, "model");
  if (model && ms->name && strcmp(model, ms->name) != 0) {
    snprintf(err, errlen, "%s: a checkpoint of model '%s', not of '%s'", path, model, ms->name);
    return RA_ECKPT;
  }
  /* a different spec with the same parameters may load its weights; the
   * hash of the data settings is compared when data is read (loop_setup) */
  *hash = 0;
  const char *hs = ckpt_meta(c, "spec_hash");
  if (!hs) return 0;
  bool ok = strlen(hs) == 16;
  for (int i = 0; ok && i < 16; i++) {
    char x = hs[i];
    int v = x >= '0' && x <= '9' ? x - '0' : x >= 'a' && x <= 'f' ? x - 'a' + 10 : -1;
    if (v < 0) ok = false;
    else *hash = *hash << 4 | (uint64_t)v;
  }
  if (ok) return 0;
  snprintf(err, errlen, "%s: metadata 'spec_hash' is '%.40s', not 16 hex digits", path, hs);
  return RA_ECKPT;
}

/* The metadata "repulsion_triggered" (16 hex digits; absent: none fired). */
static int meta_triggered(const Ckpt *c, const char *path, uint64_t *out, char *err,
                          size_t errlen) {
  *out = 0;
  const char *s = ckpt_meta(c, "repulsion_triggered");
  if (!s) return 0;
  bool ok = strlen(s) == 16;
  for (int i = 0; ok && i < 16; i++) {
    char x = s[i];
    int v = x >= '0' && x <= '9' ? x - '0' : x >= 'a' && x <= 'f' ? x - 'a' + 10 : -1;
    if (v < 0) ok = false;
    else *out = *out << 4 | (uint64_t)v;
  }
  if (ok) return 0;
  snprintf(err, errlen, "%s: metadata 'repulsion_triggered' is '%.40s', not 16 hex digits", path,
           s);
  return RA_ECKPT;
}

/* Every tensor the model needs, found and checked, into src[nsrc]: the
 * weights, then (need_optim) the moments m and v. */
static int find_sources(const Ckpt *c, const char *path, const ModelState *ms, int nsrc,
                        const float **src, char *err, size_t errlen) {
  for (int k = 0; k < nsrc; k++) {
    const ParamInfo *pi = &ms->params[k % ms->nparams];
    int pass = k / ms->nparams;
    char name[1024];
    snprintf(name, sizeof name, "%s%s", pass == 0 ? "" : pass == 1 ? "optim.m/" : "optim.v/",
             pi->path);
    src[k] = check_tensor(c, path, name, pi, err, errlen);
    if (!src[k]) return RA_ECKPT;
  }
  return 0;
}

int mstate_load(ModelState *ms, const char *path, bool need_optim, char *err, size_t errlen) {
  Ckpt *c = ckpt_read(ms->alloc, path, err, errlen);
  if (!c) return RA_ECKPT;
  uint64_t hash = 0;
  int rc = check_identity(c, path, ms, &hash, err, errlen);
  char *from = NULL;
  if (rc == 0 && !(from = ra_malloc(&ms->alloc, strlen(path) + 1))) {
    snprintf(err, errlen, "out of memory loading '%s'", path);
    rc = RA_ENOMEM;
  }
  if (from) memcpy(from, path, strlen(path) + 1);
  int64_t step = 0, epoch = 0;
  if (rc == 0) rc = meta_count(c, path, "step", need_optim, &step, err, errlen);
  if (rc == 0) rc = meta_count(c, path, "epoch", need_optim, &epoch, err, errlen);
  uint64_t triggered = 0;
  if (rc == 0) rc = meta_triggered(c, path, &triggered, err, errlen);
  if (rc == 0 && ckpt_meta(c, "heads") && ms->ngroups) {
    Arena ha;
    arena_init(&ha, ms->alloc);
    const char *want = heads_meta(ms, &ha), *got = ckpt_meta(c, "heads");
    if (!want) {
      snprintf(err, errlen, "out of memory loading '%s'", path);
      rc = RA_ENOMEM;
    } else if (strcmp(want, got) != 0) {
      snprintf(err, errlen,
               "%s: trained with heads %.200s, but the model has %.200s (give the run's "
               "--set of the const that sets them)",
               path, got, want);
      rc = RA_ECKPT;
    }
    arena_free(&ha);
  }
  int nsrc = ms->nparams * (need_optim ? 3 : 1);
  const float **src = NULL;
  if (rc == 0) {
    src = ra_calloc(&ms->alloc, (size_t)(nsrc ? nsrc : 1), sizeof *src);
    if (!src) {
      snprintf(err, errlen, "out of memory loading '%s'", path);
      rc = RA_ENOMEM;
    }
  }
  if (rc == 0) rc = find_sources(c, path, ms, nsrc, src, err, errlen);
  DataVocab *vocab = NULL;
  if (rc == 0) rc = load_vocab(c, path, ms->alloc, &vocab, err, errlen);
  if (rc == 0 && need_optim) {
    size_t nw = (size_t)(ms->nweights ? ms->nweights : 1);
    if (!ms->opt_m) ms->opt_m = ra_calloc(&ms->alloc, nw, sizeof(float));
    if (!ms->opt_v) ms->opt_v = ra_calloc(&ms->alloc, nw, sizeof(float));
    if (!ms->opt_m || !ms->opt_v) {
      snprintf(err, errlen, "out of memory loading '%s'", path);
      rc = RA_ENOMEM;
    }
  }
  /* nothing fails from here: all or nothing */
  for (int k = 0; rc == 0 && k < nsrc; k++) {
    const ParamInfo *pi = &ms->params[k % ms->nparams];
    int pass = k / ms->nparams;
    float *dst = pass == 0 ? ms->w : pass == 1 ? ms->opt_m : ms->opt_v;
    memcpy(dst + pi->offset, src[k], (size_t)ir_numel(&pi->type) * sizeof(float));
  }
  if (rc == 0 && need_optim) {
    ms->step = step;
    ms->epoch = epoch;
    ms->rep_triggered = triggered;
  }
  if (rc == 0) {
    /* without them (an older checkpoint) the data's are used, as before */
    data_vocab_free(ms->vocab);
    ms->vocab = vocab;
    vocab = NULL;
    if (ms->from) ra_free_mem(&ms->alloc, ms->from, strlen(ms->from) + 1);
    ms->from = from;
    from = NULL;
    ms->spec_hash = hash;
    ms->initialized = true;
  }
  if (from) ra_free_mem(&ms->alloc, from, strlen(from) + 1);
  data_vocab_free(vocab);
  if (src) ra_free_mem(&ms->alloc, src, sizeof *src * (size_t)(nsrc ? nsrc : 1));
  ckpt_free(c);
  return rc;
}

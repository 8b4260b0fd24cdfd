/* test_ckpt.c - .safetensors checkpoints: the exact layout, round trips,
 * atomic replacement, and that every kind of damaged file (truncated,
 * flipped bytes, bad JSON, bad offsets, bad dtypes, duplicates) is an error
 * naming the file, never a crash. */
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "../runtime/data/ckpt.h"
#include "../runtime/exec/rng.h"
#include "ra.h"

static char err[512];
static char dir[64];

static void make_dir(void) {
  strcpy(dir, "/tmp/rac_ckpt_XXXXXX");
  cr_assert(mkdtemp(dir) != NULL);
}

static void remove_dir(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
}

TestSuite(ckpt, .init = make_dir, .fini = remove_dir);

static const char *in_dir(const char *name) {
  static char p[2][128];
  static int k;
  k ^= 1;
  snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
  return p[k];
}

static float w[6] = {1, -2.5f, 3, 0.125f, -0, 1e30f};
static int32_t steps[4] = {7, -1, 0, 2147483647};
static float scalar = 42;

static int sample(CkptTensor *t) {
  memset(t, 0, sizeof(CkptTensor) * 4);
  t[0] = (CkptTensor){.name = "classifier.r0.a.wq", .dtype = 0, .ndim = 2, .shape = {2, 3}, .data = w};
  t[1] = (CkptTensor){.name = "optim.step", .dtype = 1, .ndim = 1, .shape = {4}, .data = steps};
  t[2] = (CkptTensor){.name = "scalar", .dtype = 0, .ndim = 0, .data = &scalar};
  t[3] = (CkptTensor){.name = "empty", .dtype = 0, .ndim = 2, .shape = {0, 5}, .data = NULL};
  return 4;
}

static const CkptMeta meta[3] = {{"format", "rac"}, {"version", "1"}, {"note", "a \"quoted\"\\ line\n"}};

static const char *write_sample(const char *name) {
  CkptTensor t[4];
  int n = sample(t);
  const char *p = in_dir(name);
  cr_assert_eq(ckpt_write(p, t, n, meta, 3, err, sizeof err), 0, "%s", err);
  return p;
}

static unsigned char *slurp(const char *p, size_t *len) {
  unsigned char *b = (unsigned char *)tu_read_file(p, len);
  cr_assert(b != NULL);
  return b;
}

static void spit(const char *p, const void *b, size_t len) {
  FILE *f = fopen(p, "wb");
  cr_assert(f != NULL);
  cr_assert_eq(fwrite(b, 1, len, f), len);
  fclose(f);
}

Test(ckpt, round_trip) {
  const char *p = write_sample("a.safetensors");
  Ckpt *c = ckpt_read(ra_alloc_default(), p, err, sizeof err);
  cr_assert(c != NULL, "%s", err);
  cr_assert_eq(c->n, 4);
  const CkptTensor *a = ckpt_find(c, "classifier.r0.a.wq");
  cr_assert(a != NULL);
  cr_assert_eq(a->dtype, 0);
  cr_assert_eq(a->ndim, 2);
  cr_assert_eq(a->shape[0], 2);
  cr_assert_eq(a->shape[1], 3);
  cr_assert(memcmp(a->data, w, sizeof w) == 0);
  const CkptTensor *s = ckpt_find(c, "optim.step");
  cr_assert_eq(s->dtype, 1);
  cr_assert(memcmp(s->data, steps, sizeof steps) == 0);
  const CkptTensor *z = ckpt_find(c, "scalar");
  cr_assert_eq(z->ndim, 0);
  cr_assert_float_eq(*(float *)z->data, 42.0f, 0);
  const CkptTensor *e = ckpt_find(c, "empty");
  cr_assert_eq(e->shape[0], 0);
  cr_assert_eq(e->shape[1], 5);
  cr_assert(ckpt_find(c, "nope") == NULL);
  cr_assert_str_eq(ckpt_meta(c, "format"), "rac");
  cr_assert_str_eq(ckpt_meta(c, "note"), "a \"quoted\"\\ line\n");
  cr_assert(ckpt_meta(c, "absent") == NULL);
  /* tensors come back in data order, which is the order written */
  cr_assert_str_eq(c->t[0].name, "classifier.r0.a.wq");
  cr_assert_str_eq(c->t[3].name, "empty");
  ckpt_free(c);
}

Test(ckpt, exact_layout) {
  const char *p = write_sample("b.safetensors");
  size_t len;
  unsigned char *b = slurp(p, &len);
  uint64_t n = 0;
  for (int i = 0; i < 8; i++) n |= (uint64_t)b[i] << (8 * i);
  cr_assert_eq(n % 8, 0, "the data starts 8-byte aligned");
  cr_assert_eq(len, 8 + n + sizeof w + sizeof steps + sizeof scalar);
  cr_assert_eq(b[8], '{');
  /* the header, padding spaces shown as they are */
  char *h = malloc(n + 2);
  memcpy(h, b + 8, n);
  h[n] = '\n';
  h[n + 1] = 0;
  tu_golden("tests/golden/ckpt/header.json", h);
  cr_assert(memcmp(b + 8 + n, w, sizeof w) == 0);
  free(h);
  free(b);
}

Test(ckpt, atomic_replace) {
  const char *p = write_sample("c.safetensors");
  float v = 5;
  CkptTensor t = {.name = "x", .dtype = 0, .ndim = 1, .shape = {1}, .data = &v};
  cr_assert_eq(ckpt_write(p, &t, 1, NULL, 0, err, sizeof err), 0, "%s", err);
  char tmp[160];
  cr_assert_eq(ckpt_temp_name(p, tmp, sizeof tmp), 0);
  cr_assert_neq(access(tmp, F_OK), 0, "the temporary file is gone");
  Ckpt *c = ckpt_read(ra_alloc_default(), p, err, sizeof err);
  cr_assert(c != NULL, "%s", err);
  cr_assert_eq(c->n, 1);
  cr_assert_eq(c->nmeta, 0);
  ckpt_free(c);
}

Test(ckpt, write_errors) {
  CkptTensor t[4];
  int n = sample(t);
  cr_assert_neq(ckpt_write("/nonexistent-dir/x.safetensors", t, n, meta, 3, err, sizeof err), 0);
  cr_assert(strstr(err, "/nonexistent-dir/x.safetensors: cannot create") == err, "%s", err);
  t[1].name = t[0].name;
  const char *p = in_dir("d.safetensors");
  cr_assert_neq(ckpt_write(p, t, n, meta, 3, err, sizeof err), 0);
  cr_assert(strstr(err, "two tensors are named 'classifier.r0.a.wq'"), "%s", err);
  cr_assert_neq(access(p, F_OK), 0);
  sample(t);
  t[2].data = NULL;
  cr_assert_neq(ckpt_write(p, t, n, meta, 3, err, sizeof err), 0);
  cr_assert(strstr(err, "tensor 'scalar' has no data"), "%s", err);
  sample(t);
  CkptMeta dup[2] = {{"k", "1"}, {"k", "2"}};
  cr_assert_neq(ckpt_write(p, t, n, dup, 2, err, sizeof err), 0);
  cr_assert(strstr(err, "two metadata entries are named 'k'"), "%s", err);
  CkptMeta bad[1] = {{"k", "\xff"}};
  cr_assert_neq(ckpt_write(p, t, n, bad, 1, err, sizeof err), 0);
  cr_assert(strstr(err, "not valid UTF-8"), "%s", err);
}

Test(ckpt, missing_file) {
  const char *p = in_dir("none.safetensors");
  cr_assert(ckpt_read(ra_alloc_default(), p, err, sizeof err) == NULL);
  cr_assert(strstr(err, "cannot open the checkpoint: No such file or directory"), "%s", err);
  cr_assert(strncmp(err, p, strlen(p)) == 0);
}

/* A file with the given header text (padded) and data bytes. */
static const char *craft(const char *name, const char *header, size_t data_len) {
  size_t hl = strlen(header), n = (hl + 7) & ~(size_t)7;
  unsigned char *b = calloc(8 + n + data_len + 1, 1);
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)n >> (8 * i));
  memcpy(b + 8, header, hl);
  memset(b + 8 + hl, ' ', n - hl);
  const char *p = in_dir(name);
  spit(p, b, 8 + n + data_len);
  free(b);
  return p;
}

static void expect_bad(const char *header, size_t data_len, const char *want) {
  const char *p = craft("bad.safetensors", header, data_len);
  err[0] = 0;
  Ckpt *c = ckpt_read(ra_alloc_default(), p, err, sizeof err);
  cr_assert(c == NULL, "accepted: %s", header);
  cr_assert(strncmp(err, p, strlen(p)) == 0, "names the file: %s", err);
  cr_assert(strstr(err, want) != NULL, "header %s\n  got: %s\n want: %s", header, err, want);
}

Test(ckpt, crafted_headers) {
  expect_bad("{\"a\":", 0, "invalid JSON in the header");
  expect_bad("[1,2]", 0, "not start with '{'");
  expect_bad("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'a': missing \"dtype\"");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "missing \"shape\"");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "missing \"data_offsets\"");
  expect_bad("{\"a\":{\"dtype\":\"Q9\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype 'Q9'");
  expect_bad("{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
             "dtype F16 is not supported (only F32 and I32)");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
             "data_offsets [0, 4] hold 4 bytes, but F32 with 1 dimensions needs 8");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
             "data_offsets [0, 8] reach past the data (4 bytes; file truncated?)");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, "end before they begin");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "overlap");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "leave a gap after byte 0");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12,
             "the data section has 12 bytes, but the tensors cover 4");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "duplicate object key");
  expect_bad("{\"__metadata__\":{\"step\":3}}", 0, "metadata 'step' is not a string");
  expect_bad("{\"__metadata__\":[]}", 0, "\"__metadata__\" is not an object");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "shape[0] is not a non-negative");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "not a pair");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, "unexpected key 'x'");
  expect_bad("{\"a\":[1]}", 0, "tensor 'a': expected an object");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
             "9 dimensions (at most 8)");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
             "hold 4 bytes");
}

Test(ckpt, header_length_beyond_file) {
  const char *p = write_sample("e.safetensors");
  size_t len;
  unsigned char *b = slurp(p, &len);
  b[6] = 1; /* a header length of 2^48 */
  spit(p, b, len);
  cr_assert(ckpt_read(ra_alloc_default(), p, err, sizeof err) == NULL);
  cr_assert(strstr(err, "is larger than the rest of the file"), "%s", err);
  free(b);
}

Test(ckpt, misaligned_header_is_read) {
  /* another writer may not pad: the data then starts at an odd offset */
  const char *hdr = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
  size_t hl = strlen(hdr);
  unsigned char b[256];
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
  memcpy(b + 8, hdr, hl);
  float v[2] = {1.5f, -2};
  memcpy(b + 8 + hl, v, 8);
  const char *p = in_dir("odd.safetensors");
  spit(p, b, 8 + hl + 8);
  Ckpt *c = ckpt_read(ra_alloc_default(), p, err, sizeof err);
  cr_assert(c != NULL, "%s", err);
  cr_assert_eq((uintptr_t)c->t[0].data % 4, 0);
  cr_assert(memcmp(c->t[0].data, v, 8) == 0);
  ckpt_free(c);
}

/* Every truncation and many random byte flips: an error or a file whose
 * tensors all lie inside it; never a crash (ASan runs check the reads). */
Test(ckpt, truncations_and_flips) {
  const char *p = write_sample("f.safetensors");
  size_t len;
  unsigned char *good = slurp(p, &len);
  unsigned char *b = malloc(len);
  const char *q = in_dir("g.safetensors");
  for (size_t cut = 0; cut < len; cut++) {
    spit(q, good, cut);
    Ckpt *c = ckpt_read(ra_alloc_default(), q, err, sizeof err);
    cr_assert(c == NULL, "truncated at %zu of %zu bytes but accepted", cut, len);
    cr_assert(strncmp(err, q, strlen(q)) == 0, "%s", err);
  }
  int accepted = 0;
  for (uint64_t it = 0; it < 1500; it++) {
    memcpy(b, good, len);
    uint32_t r[4];
    rng_philox(11, 1, it, r);
    int flips = 1 + (int)(r[3] % 3);
    for (int k = 0; k < flips; k++) {
      uint32_t s[4];
      rng_philox(11, 2 + (uint64_t)k, it, s);
      size_t at = (r[0] & 1) ? s[0] % (len < 160 ? len : 160) : s[0] % len; /* favour the header */
      b[at] ^= (unsigned char)(1u << (s[1] % 8));
    }
    spit(q, b, len);
    Ckpt *c = ckpt_read(ra_alloc_default(), q, err, sizeof err);
    if (!c) {
      cr_assert(err[0] != 0);
      continue;
    }
    accepted++;
    for (int i = 0; i < c->n; i++) {
      uint64_t bytes = 4;
      for (int d = 0; d < c->t[i].ndim; d++) bytes *= (uint64_t)c->t[i].shape[d];
      const unsigned char *d0 = c->t[i].data, *blob = c->blob;
      cr_assert(d0 >= blob && d0 + bytes <= blob + c->blob_len);
    }
    ckpt_free(c);
  }
  cr_assert(accepted > 0, "flips in the data bytes keep the file valid");
  free(b);
  free(good);
}

typedef struct Budget {
  long left, live;
} Budget;

static void *budget_fn(void *ud, void *ptr, size_t osize, size_t nsize) {
  Budget *b = ud;
  (void)osize;
  if (nsize == 0) {
    if (ptr) b->live--;
    free(ptr);
    return NULL;
  }
  if (b->left-- <= 0) return NULL;
  void *p = realloc(ptr, nsize);
  if (p && !ptr) b->live++;
  return p;
}

Test(ckpt, allocation_failures) {
  const char *p = write_sample("h.safetensors");
  bool done = false;
  for (long n = 0; n < 100 && !done; n++) {
    Budget b = {n, 0};
    RaAlloc al = {budget_fn, &b};
    Ckpt *c = ckpt_read(al, p, err, sizeof err);
    if (c) {
      done = true;
      cr_assert_eq(c->n, 4);
      ckpt_free(c);
    } else {
      cr_assert(strstr(err, "out of memory"), "budget %ld: %s", n, err);
    }
    cr_assert_eq(b.live, 0, "budget %ld: leaked", n);
  }
  cr_assert(done);
}

/* ---- checkpoints of a model, through ra.h ---- */

static const char *tiny_spec = TU_TINY_SPEC;

/* A copy of a checkpoint, tensors and metadata in memory, to edit and
 * write again. */
typedef struct Edit {
  CkptTensor t[64];
  int n;
  CkptMeta meta[32];
  int nmeta;
  Ckpt *c;
} Edit;

static void edit_open(Edit *e, const char *p) {
  e->c = ckpt_read(ra_alloc_default(), p, err, sizeof err);
  cr_assert(e->c != NULL, "%s", err);
  cr_assert(e->c->n <= 64 && e->c->nmeta <= 32);
  e->n = e->c->n;
  for (int i = 0; i < e->n; i++) e->t[i] = e->c->t[i];
  e->nmeta = e->c->nmeta;
  for (int i = 0; i < e->nmeta; i++) e->meta[i] = e->c->meta[i];
}

static CkptTensor *edit_tensor(Edit *e, const char *name) {
  for (int i = 0; i < e->n; i++)
    if (!strcmp(e->t[i].name, name)) return &e->t[i];
  cr_assert_fail("no tensor %s", name);
  return NULL;
}

static void edit_meta(Edit *e, const char *key, const char *value) {
  for (int i = 0; i < e->nmeta; i++)
    if (!strcmp(e->meta[i].key, key)) {
      if (value) e->meta[i].value = value;
      else e->meta[i] = e->meta[--e->nmeta];
      return;
    }
  cr_assert(value != NULL);
  e->meta[e->nmeta++] = (CkptMeta){key, value};
}

static void edit_write(Edit *e, const char *p) {
  cr_assert_eq(ckpt_write(p, e->t, e->n, e->meta, e->nmeta, err, sizeof err), 0, "%s", err);
  ckpt_free(e->c);
}

static ra_ctx *tiny_ctx(ra_model **m) {
  ra_ctx *c = ra_new();
  cr_assert_eq(ra_load_string(c, "tiny.ra", tiny_spec), 0, "%s", ra_error(c));
  *m = ra_model_get(c, "tiny");
  cr_assert_not_null(*m, "%s", ra_error(c));
  return c;
}

/* All of the model's weights, in parameter order, malloc'd. */
static float *weights_of(ra_model *m, long *count) {
  long n = 0;
  for (int i = 0; i < ra_model_n_params(m); i++) {
    ra_tensor t;
    cr_assert_eq(ra_param(m, ra_model_param_name(m, i), &t), 0);
    long k = 1;
    for (int d = 0; d < t.ndim; d++) k *= (long)t.shape[d];
    n += k;
  }
  float *w = malloc(sizeof(float) * (size_t)n), *at = w;
  for (int i = 0; i < ra_model_n_params(m); i++) {
    ra_tensor t;
    ra_param(m, ra_model_param_name(m, i), &t);
    long k = 1;
    for (int d = 0; d < t.ndim; d++) k *= (long)t.shape[d];
    memcpy(at, t.data, sizeof(float) * (size_t)k);
    at += k;
  }
  *count = n;
  return w;
}

/* A trained tiny model's checkpoint (weights, moments, metadata). */
static const char *tiny_trained(const char *name) {
  ra_model *m;
  ra_ctx *c = tiny_ctx(&m);
  const char *p = in_dir(name);
  char set[160];
  snprintf(set, sizeof set, "%s", p);
  cr_assert_eq(ra_set_option(c, "set.save", set), 0, "%s", ra_error(c));
  cr_assert_eq(ra_set_option(c, "quiet", "1"), 0, "%s", ra_error(c));
  cr_assert_eq(ra_train(c, NULL, NULL, NULL), 0, "%s", ra_error(c));
  ra_free(c);
  return p;
}

/* Loads a bad checkpoint into a model whose weights differ from it in
 * every element: the error names the tensor, the model is as it was. */
static void expect_load_refused(const char *p, const char *want) {
  ra_model *m;
  ra_ctx *c = tiny_ctx(&m);
  long n, n2;
  float *before = weights_of(m, &n);
  cr_assert_eq(ra_load(m, p), RA_ECKPT, "accepted %s", p);
  cr_assert(strstr(ra_error(c), p) != NULL, "names the file: %s", ra_error(c));
  cr_assert(strstr(ra_error(c), want) != NULL, "got: %s\nwant: %s", ra_error(c), want);
  float *after = weights_of(m, &n2);
  cr_assert_eq(n, n2);
  cr_assert(memcmp(before, after, sizeof(float) * (size_t)n) == 0, "the weights changed");
  free(before);
  free(after);
  ra_free(c);
}

/* The same checkpoint, every weight shifted by one, the last parameter
 * changed by fn. */
static const char *tiny_shifted(const char *name, void (*fn)(CkptTensor *t, void *ud), void *ud,
                                float **hold) {
  const char *src = tiny_trained("src.safetensors");
  ra_model *m;
  ra_ctx *c = tiny_ctx(&m);
  Edit e;
  edit_open(&e, src);
  long total = 0;
  for (int i = 0; i < e.n; i++) {
    long k = 1;
    for (int d = 0; d < e.t[i].ndim; d++) k *= (long)e.t[i].shape[d];
    total += k;
  }
  float *buf = malloc(sizeof(float) * (size_t)(total + 64)), *at = buf;
  for (int i = 0; i < e.n; i++) {
    long k = 1;
    for (int d = 0; d < e.t[i].ndim; d++) k *= (long)e.t[i].shape[d];
    for (long j = 0; j < k; j++) at[j] = ((float *)e.t[i].data)[j] + 1;
    e.t[i].data = at;
    at += k;
  }
  const char *last = ra_model_param_name(m, ra_model_n_params(m) - 1);
  fn(edit_tensor(&e, last), ud);
  const char *p = in_dir(name);
  edit_write(&e, p);
  ra_free(c);
  *hold = buf;
  return p;
}

static void shape_bad(CkptTensor *t, void *ud) {
  (void)ud;
  t->shape[0] = 1;
}

static void last_nan(CkptTensor *t, void *ud) {
  ((float *)t->data)[*(int *)ud] = NAN;
}

static void dtype_bad(CkptTensor *t, void *ud) {
  (void)ud;
  t->dtype = 1;
}

static void name_bad(CkptTensor *t, void *ud) {
  (void)ud;
  t->name = "renamed";
}

Test(ckpt, load_is_all_or_nothing) {
  ra_model *m;
  ra_ctx *c = tiny_ctx(&m);
  char last[200];
  snprintf(last, sizeof last, "%s", ra_model_param_name(m, ra_model_n_params(m) - 1));
  ra_free(c);
  void (*fns[3])(CkptTensor *, void *) = {shape_bad, dtype_bad, name_bad};
  const char *fmt[3] = {"tensor '%s' is f32[1", "tensor '%s' is i32[", "no tensor '%s'"};
  for (int i = 0; i < 3; i++) {
    float *hold;
    char src[160];
    snprintf(src, sizeof src, "%s", tiny_shifted("bad_last.safetensors", fns[i], NULL, &hold));
    char want[256];
    snprintf(want, sizeof want, fmt[i], last);
    expect_load_refused(src, want);
    free(hold);
  }
}

Test(ckpt, nan_weights_refused) {
  float *hold;
  int at = 3;
  const char *p = tiny_shifted("nan_last.safetensors", last_nan, &at, &hold);
  ra_model *m;
  ra_ctx *c = tiny_ctx(&m);
  char want[256];
  snprintf(want, sizeof want, "tensor '%s': element 3 is NaN", ra_model_param_name(m, ra_model_n_params(m) - 1));
  ra_free(c);
  expect_load_refused(p, want);
  free(hold);
}

/* Resumes from p: the error, or "" when it trained. */
static char *resume_error(const char *p) {
  ra_model *m;
  ra_ctx *c = tiny_ctx(&m);
  cr_assert_eq(ra_set_option(c, "resume", p), 0, "%s", ra_error(c));
  cr_assert_eq(ra_set_option(c, "quiet", "1"), 0);
  cr_assert_eq(ra_set_option(c, "set.steps", "4"), 0);
  int rc = ra_train(c, NULL, NULL, NULL);
  char *e = strdup(rc ? ra_error(c) : "");
  if (rc) cr_assert_eq(rc, RA_ECKPT, "%s", e);
  ra_free(c);
  return e;
}

Test(ckpt, infinite_moments_refused) {
  char src[160];
  snprintf(src, sizeof src, "%s", tiny_trained("src.safetensors"));
  Edit e;
  edit_open(&e, src);
  ra_model *m;
  ra_ctx *c = tiny_ctx(&m);
  char name[256];
  snprintf(name, sizeof name, "optim.v/%s", ra_model_param_name(m, 0));
  ra_free(c);
  CkptTensor *t = edit_tensor(&e, name);
  float v[4096];
  long k = 1;
  for (int d = 0; d < t->ndim; d++) k *= (long)t->shape[d];
  cr_assert(k >= 6 && k <= 4096);
  memcpy(v, t->data, sizeof(float) * (size_t)k);
  v[5] = -INFINITY;
  t->data = v;
  const char *p = in_dir("inf_v.safetensors");
  edit_write(&e, p);
  char *got = resume_error(p);
  char want[300];
  snprintf(want, sizeof want, "tensor '%s': element 5 is infinite", name);
  cr_assert(strstr(got, want) != NULL, "got: %s", got);
  free(got);
  /* the same file without the bad element resumes */
  cr_assert_str_eq((got = resume_error(src)), "");
  free(got);
}

Test(ckpt, step_and_epoch_checked) {
  char src[160];
  snprintf(src, sizeof src, "%s", tiny_trained("src.safetensors"));
  static const char *const bad[] = {"abc", "-1", "1e99", "12x", "", " 3", "+3",
                                    "99999999999999999999", "3.0", NULL};
  const char *keys[2] = {"step", "epoch"};
  for (int k = 0; k < 2; k++) {
    for (int i = 0; bad[i]; i++) {
      Edit e;
      edit_open(&e, src);
      edit_meta(&e, keys[k], bad[i]);
      const char *p = in_dir("meta.safetensors");
      edit_write(&e, p);
      char *got = resume_error(p);
      char want[64];
      snprintf(want, sizeof want, "metadata '%s' is '%s', not a whole number", keys[k], bad[i]);
      cr_assert(strstr(got, want) != NULL, "%s = '%s': %s", keys[k], bad[i], got);
      free(got);
      /* ra_load refuses it too, and leaves the weights */
      snprintf(want, sizeof want, "metadata '%s'", keys[k]);
      expect_load_refused(p, want);
    }
    Edit e;
    edit_open(&e, src);
    edit_meta(&e, keys[k], NULL);
    const char *p = in_dir("meta.safetensors");
    edit_write(&e, p);
    char *got = resume_error(p);
    char want[64];
    snprintf(want, sizeof want, "metadata '%s' is missing", keys[k]);
    cr_assert(strstr(got, want) != NULL, "no %s: %s", keys[k], got);
    free(got);
  }
  cr_assert_str_eq(resume_error(src), "");
}

/* ---- a large file that is not a checkpoint ---- */

typedef struct Counting {
  size_t largest, total;
} Counting;

static void *counting_fn(void *ud, void *ptr, size_t osize, size_t nsize) {
  Counting *c = ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  if (nsize > c->largest) c->largest = nsize;
  c->total += nsize;
  return realloc(ptr, nsize);
}

/* A 200 MB sparse file starting with head (len bytes). */
static const char *sparse_file(const char *name, const void *head, size_t len) {
  const char *p = in_dir(name);
  spit(p, head, len);
  cr_assert_eq(truncate(p, (off_t)200 << 20), 0);
  return p;
}

static void expect_cheap_refusal(const char *p, const char *want) {
  Counting cn = {0, 0};
  RaAlloc al = {counting_fn, &cn};
  Ckpt *c = ckpt_read(al, p, err, sizeof err);
  cr_assert(c == NULL, "accepted %s", p);
  cr_assert(strncmp(err, p, strlen(p)) == 0, "names the file: %s", err);
  cr_assert(strstr(err, want) != NULL, "got: %s\nwant: %s", err, want);
  cr_assert(cn.total < ((size_t)1 << 20), "allocated %zu bytes (largest %zu) for a file it refuses",
            cn.total, cn.largest);
}

Test(ckpt, large_garbage_refused_from_the_header) {
  const char *text = "this is not a checkpoint\n";
  expect_cheap_refusal(sparse_file("text.bin", text, strlen(text)), "not a .safetensors file");
  /* a plausible length, then zeros: the JSON fails at its second byte */
  unsigned char b[16] = {0};
  uint64_t n = (uint64_t)90 << 20;
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(n >> (8 * i));
  b[8] = '{';
  expect_cheap_refusal(sparse_file("zeros.bin", b, 9), "invalid JSON in the header at byte");
  /* a good header whose tensors cover 4 bytes of the 200 MB */
  const char *hdr = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
  size_t hl = strlen(hdr), pad = (hl + 7) & ~(size_t)7;
  unsigned char h[128];
  memset(h, ' ', sizeof h);
  for (int i = 0; i < 8; i++) h[i] = (unsigned char)((uint64_t)pad >> (8 * i));
  memcpy(h + 8, hdr, hl);
  expect_cheap_refusal(sparse_file("header.bin", h, 8 + pad + 4), "but the tensors cover 4");
}

/* ---- saves that are killed or fail ---- */

static float big[1 << 18]; /* 1 MB */

/* In a child: the file-size limit at 64 KB, SIGXFSZ as given; saves big
 * over p and writes the error into errfile.  The child's wait status. */
static int save_limited(const char *p, void (*xfsz)(int), const char *errfile) {
  pid_t pid = fork();
  cr_assert(pid >= 0);
  if (pid == 0) {
    signal(SIGXFSZ, xfsz);
    struct rlimit rl = {64 << 10, 64 << 10};
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(3);
    CkptTensor t = {.name = "big", .dtype = 0, .ndim = 1, .shape = {1 << 18}, .data = big};
    char e[512] = "";
    int rc = ckpt_write(p, &t, 1, NULL, 0, e, sizeof e);
    FILE *f = fopen(errfile, "w");
    if (f) {
      fputs(e, f);
      fclose(f);
    }
    _exit(rc != 0 ? 0 : 1);
  }
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  return st;
}

/* The names in dir, sorted, one a line. */
static char *listing(void) {
  char cmd[160];
  snprintf(cmd, sizeof cmd, "ls -A '%s' > '%s.ls'", dir, dir);
  cr_assert_eq(system(cmd), 0);
  snprintf(cmd, sizeof cmd, "%s.ls", dir);
  char *s = tu_read_file(cmd, NULL);
  unlink(cmd);
  cr_assert(s != NULL);
  return s;
}

Test(ckpt, killed_save_temporary_removed_by_the_next) {
  const char *p = write_sample("k.safetensors");
  /* a file of the user's beside it, named as the old temporary was */
  char mine[160];
  snprintf(mine, sizeof mine, "%s.tmp", p);
  spit(mine, "mine\n", 5);
  size_t len0;
  unsigned char *old = slurp(p, &len0);
  char errfile[160];
  snprintf(errfile, sizeof errfile, "%s.err", dir);
  int st = save_limited(p, SIG_DFL, errfile);
  unlink(errfile);
  cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGXFSZ, "the save was killed (status %d)", st);
  char tmp[160];
  cr_assert_eq(ckpt_temp_name(p, tmp, sizeof tmp), 0);
  struct stat sb;
  cr_assert_eq(stat(tmp, &sb), 0, "the killed save left its temporary %s", tmp);
  cr_assert_eq(sb.st_size, 64 << 10);
  size_t len1;
  unsigned char *now = slurp(p, &len1);
  cr_assert(len1 == len0 && memcmp(old, now, len0) == 0, "the target is untouched");
  free(now);
  /* the next save removes it */
  float v = 5;
  CkptTensor t = {.name = "x", .dtype = 0, .ndim = 1, .shape = {1}, .data = &v};
  cr_assert_eq(ckpt_write(p, &t, 1, NULL, 0, err, sizeof err), 0, "%s", err);
  char *ls = listing();
  cr_assert_str_eq(ls, "k.safetensors\nk.safetensors.tmp\n");
  free(ls);
  char *m = tu_read_file(mine, NULL);
  cr_assert_str_eq(m, "mine\n", "the user's file is untouched");
  free(m);
  free(old);
}

Test(ckpt, full_disk_is_an_error_and_keeps_the_target) {
  const char *p = write_sample("full.safetensors");
  size_t len0;
  unsigned char *old = slurp(p, &len0);
  char errfile[160];
  snprintf(errfile, sizeof errfile, "%s.err", dir);
  int st = save_limited(p, SIG_IGN, errfile);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the save failed (status %d)", st);
  char *e = tu_read_file(errfile, NULL);
  unlink(errfile);
  cr_assert(e != NULL);
  cr_assert(strncmp(e, p, strlen(p)) == 0, "names the file: %s", e);
  cr_assert(strstr(e, "File too large") != NULL, "%s", e);
  size_t len1;
  unsigned char *now = slurp(p, &len1);
  cr_assert(len1 == len0 && memcmp(old, now, len0) == 0, "the target is untouched");
  char *ls = listing();
  cr_assert_str_eq(ls, "full.safetensors\n", "no temporary is left");
  free(ls);
  free(now);
  free(old);
  free(e);
}

/* ---- the vocabulary and labels travel with the checkpoint ---- */

static const char *vocab_spec =
    "data d = tsv(\"d.tsv\") {\n"
    "  text   column 1  tokenize words  vocab 40  maxlen 8\n"
    "  label  column 0\n"
    "  split  train 0.8  valid 0.1  test 0.1\n"
    "  seed   5\n"
    "}\n"
    "model m {\n"
    "  input  tokens : int[8]\n"
    "  target label  : class(3)\n"
    "  x = embed(tokens, vocab: 40, dim: 16) + position(8, dim: 16)\n"
    "  p = attnpool(x) { heads 2  hidden 8 }\n"
    "  logits = linear(flatten(p), out: 3)\n"
    "  loss   cross_entropy(logits, label)\n"
    "  output probs = softmax(logits)\n"
    "}\n"
    "train m on d {\n"
    "  optimizer adam { lr 1e-2 }\n"
    "  batch 8\n"
    "  steps 80\n"
    "  seed 1\n"
    "  save \"m.safetensors\"\n"
    "}\n";

/* 90 examples of 3 labels, each label with words of its own; the words of a
 * line are a function of its number. */
static void vocab_data(void) {
  tu_write_file(in_dir("s.ra"), vocab_spec);
  FILE *f = fopen(in_dir("d.tsv"), "w");
  cr_assert(f != NULL);
  const char *labels[3] = {"alpha", "beta", "gamma"};
  for (int i = 0; i < 90; i++) {
    int c = i % 3;
    fprintf(f, "%s\t", labels[c]);
    for (int j = 0; j < 6; j++) fprintf(f, "%sw%d", j ? " " : "", c * 20 + (i * 7 + j * 13) % 20);
    fprintf(f, "\n");
  }
  fclose(f);
  tu_write_file(in_dir("in.txt"), "w1 w2 w3\nw21 w22 w30 w24\nw45 w46\nw1 w50 w22 w0\nw9 w59\n");
}

/* A command line in the test's folder ($RAC is rac); status and output. */
static TuRun sh_in_dir(const char *cmd) { return tu_sh(60, "cd '%s' && %s", dir, cmd); }

static char *predict_out(const char *ckpt) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "$RAC predict s.ra --ckpt %s --file in.txt", ckpt);
  TuRun r = sh_in_dir(cmd);
  cr_assert_eq(r.status, 0, "predict: status %d\n%s", r.status, r.err);
  free(r.err);
  return r.out;
}

Test(ckpt, predict_and_eval_use_the_checkpoint_vocabulary) {
  vocab_data();
  TuRun r = sh_in_dir("$RAC run s.ra --quiet");
  cr_assert_eq(r.status, 0, "%s", r.err);
  tu_run_free(&r);
  char *want = predict_out("m.safetensors");
  cr_assert(strstr(want, "alpha\t") && strstr(want, "beta\t") && strstr(want, "gamma\t"),
            "the model tells the labels apart:\n%s", want);
  /* the lines reordered: another split, another vocabulary from the data */
  r = sh_in_dir("$RAC predict s.ra --ckpt m.safetensors --file in.txt >/dev/null && "
                 "tac d.tsv > r.tsv && cp d.tsv orig.tsv && mv r.tsv d.tsv");
  cr_assert_eq(r.status, 0, "%s", r.err);
  tu_run_free(&r);
  char *got = predict_out("m.safetensors");
  cr_assert_str_eq(got, want, "reordered data changed the predictions");
  free(got);
  r = sh_in_dir("$RAC eval s.ra --ckpt m.safetensors");
  cr_assert_eq(r.status, 0, "eval agrees on reordered data: %s", r.err);
  cr_assert(strstr(r.out, "accuracy") != NULL, "%s", r.out);
  tu_run_free(&r);
  /* a label renamed: predictions keep their names, eval refuses the data */
  r = sh_in_dir("sed 's/^alpha/zeta/' orig.tsv > d.tsv");
  tu_run_free(&r);
  got = predict_out("m.safetensors");
  cr_assert_str_eq(got, want, "a renamed label shifted the predictions");
  free(got);
  r = sh_in_dir("$RAC eval s.ra --ckpt m.safetensors");
  cr_assert_eq(r.status, 1, "eval of a label the model does not know: status %d\n%s", r.status, r.out);
  cr_assert(strstr(r.err, "d.tsv:1: column 0: label 'zeta' is not one of the 3 labels the checkpoint "
                          "'m.safetensors' was trained with (alpha, beta, gamma)") != NULL,
            "%s", r.err);
  tu_run_free(&r);
  /* no data file at all */
  r = sh_in_dir("rm d.tsv");
  tu_run_free(&r);
  got = predict_out("m.safetensors");
  cr_assert_str_eq(got, want, "predict from the checkpoint alone");
  free(got);
  free(want);
}

Test(ckpt, older_checkpoints_rebuild_from_the_data) {
  vocab_data();
  TuRun r = sh_in_dir("$RAC run s.ra --quiet");
  cr_assert_eq(r.status, 0, "%s", r.err);
  tu_run_free(&r);
  char *want = predict_out("m.safetensors");
  char src[160];
  snprintf(src, sizeof src, "%s", in_dir("m.safetensors"));
  Edit e;
  edit_open(&e, src);
  cr_assert(ckpt_meta(e.c, "vocab") && ckpt_meta(e.c, "labels") && ckpt_meta(e.c, "tokenizer"));
  cr_assert_str_eq(ckpt_meta(e.c, "tokenizer"), "[\"words\"]");
  cr_assert_str_eq(ckpt_meta(e.c, "labels"), "[\"alpha\",\"beta\",\"gamma\"]");
  cr_assert(strncmp(ckpt_meta(e.c, "vocab"), "[\"<pad>\",\"<unk>\",\"w", 19) == 0, "%s", ckpt_meta(e.c, "vocab"));
  edit_meta(&e, "vocab", NULL);
  edit_meta(&e, "labels", NULL);
  edit_meta(&e, "tokenizer", NULL);
  edit_write(&e, in_dir("old.safetensors"));
  char *got = predict_out("old.safetensors");
  cr_assert_str_eq(got, want, "the same data gives the same vocabulary");
  free(got);
  r = sh_in_dir("$RAC eval s.ra --ckpt old.safetensors");
  cr_assert_eq(r.status, 0, "%s", r.err);
  tu_run_free(&r);
  r = sh_in_dir("rm d.tsv && $RAC predict s.ra --ckpt old.safetensors --file in.txt");
  cr_assert_eq(r.status, 1, "an older checkpoint needs the data: %s", r.out);
  cr_assert(strstr(r.err, "cannot open the data file") != NULL, "%s", r.err);
  tu_run_free(&r);
  free(want);
}

Test(ckpt, bad_vocabulary_metadata_refused) {
  const char *src = tiny_trained("src.safetensors");
  char s[160];
  snprintf(s, sizeof s, "%s", src);
  struct { const char *key, *value, *want; } bad[] = {
      {"vocab", "[\"<pad>\",\"<unk>\",3]", "metadata 'vocab' is not a JSON array of strings"},
      {"vocab", "not json", "metadata 'vocab' is not a JSON array of strings"},
      {"vocab", "[\"a\",\"b\"]", "metadata 'vocab' does not start with"},
      {"tokenizer", "[\"bytes\"]", "unknown tokenizer 'bytes'"},
      {"labels", "[]", "metadata 'labels' is not a JSON array of strings"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    Edit e;
    edit_open(&e, s);
    cr_assert(ckpt_meta(e.c, "vocab") != NULL, "a trained model stores its vocabulary");
    edit_meta(&e, bad[i].key, bad[i].value);
    const char *p = in_dir("badvocab.safetensors");
    edit_write(&e, p);
    expect_load_refused(p, bad[i].want);
  }
}

/* ---- the data settings' hash ---- */

typedef struct Lines {
  char text[8192];
} Lines;

static void collect(void *ud, const char *line) {
  Lines *l = ud;
  size_t n = strlen(l->text);
  snprintf(l->text + n, sizeof l->text - n, "%s\n", line);
}

/* tiny_spec with `from` replaced by `to` (a new string for each call). */
static char *tiny_variant(const char *from, const char *to) {
  char *buf = malloc(4096);
  cr_assert(buf != NULL);
  const char *at = strstr(tiny_spec, from);
  cr_assert(at != NULL, "%s", from);
  snprintf(buf, 4096, "%.*s%s%s", (int)(at - tiny_spec), tiny_spec, to, at + strlen(from));
  return buf;
}

/* Evaluates (or resumes, when resume) ckpt with spec; the log lines. */
static void run_logged(const char *spec, const char *ckpt, bool resume, Lines *l) {
  ra_ctx *c = ra_new();
  l->text[0] = 0;
  ra_set_log(c, collect, l);
  cr_assert_eq(ra_load_string(c, "tiny.ra", spec), 0, "%s", ra_error(c));
  cr_assert_eq(ra_set_option(c, "quiet", "1"), 0);
  if (resume) {
    cr_assert_eq(ra_set_option(c, "resume", ckpt), 0);
    cr_assert_eq(ra_set_option(c, "set.steps", "4"), 0);
    cr_assert_eq(ra_train(c, NULL, NULL, NULL), 0, "%s", ra_error(c));
  } else {
    const char *sum;
    cr_assert_eq(ra_eval(c, NULL, ckpt, "test", &sum), 0, "%s", ra_error(c));
  }
  ra_free(c);
}

Test(ckpt, other_data_settings_warn) {
  char src[160];
  snprintf(src, sizeof src, "%s", tiny_trained("src.safetensors"));
  Lines l;
  /* the same data settings: the train block, comments and the model's
   * clauses may change */
  char *same[] = {tiny_variant("lr 1e-2", "lr 1e-2"), tiny_variant("lr 1e-2", "lr 5e-3"),
                  tiny_variant("model tiny {", "# a comment\nmodel tiny {")};
  for (int i = 0; i < 3; i++) {
    run_logged(same[i], src, false, &l);
    cr_assert(strstr(l.text, "warning") == NULL, "variant %d: %s", i, l.text);
    free(same[i]);
  }
  char *other[] = {tiny_variant("split train 0.75 valid 0.125 test 0.125",
                                      "split train 0.5 valid 0.25 test 0.25"),
                         tiny_variant("seed 3", "seed 4"),
                         tiny_variant("examples: 64", "examples: 80")};
  for (int i = 0; i < 3; i++) {
    for (int resume = 0; resume < 2; resume++) {
      run_logged(other[i], src, resume, &l);
      char want[256];
      snprintf(want, sizeof want, "warning: %s: trained with other data settings than data 'syn' has now", src);
      cr_assert(strstr(l.text, want) != NULL, "variant %d, resume %d: %s", i, resume, l.text);
    }
    free(other[i]);
  }
}

Test(ckpt, bad_spec_hash_refused) {
  char src[160];
  snprintf(src, sizeof src, "%s", tiny_trained("src.safetensors"));
  const char *bad[] = {"xyz", "0123456789abcdeg", "0123456789ABCDEF", "0123456789abcdef0", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    Edit e;
    edit_open(&e, src);
    edit_meta(&e, "spec_hash", bad[i]);
    const char *p = in_dir("hash.safetensors");
    edit_write(&e, p);
    char want[96];
    snprintf(want, sizeof want, "metadata 'spec_hash' is '%s', not 16 hex digits", bad[i]);
    expect_load_refused(p, want);
  }
}

/* Features and a label: the checkpoint stores the labels alone. */
Test(ckpt, labels_without_a_vocabulary) {
  tu_write_file(in_dir("f.ra"),
                "data f = tsv(\"f.tsv\") {\n"
                "  features columns 1..2 shape [2]\n"
                "  label  column 0\n"
                "  split  train 0.8  valid 0.1  test 0.1\n"
                "  seed   5\n"
                "}\n"
                "model fm {\n"
                "  input  x : f32[2]\n"
                "  target label : class(2)\n"
                "  logits = linear(x, out: 2)\n"
                "  loss   cross_entropy(logits, label)\n"
                "  output probs = softmax(logits)\n"
                "}\n"
                "train fm on f {\n"
                "  optimizer adam { lr 1e-2 }\n"
                "  batch 8\n"
                "  steps 20\n"
                "  seed 1\n"
                "  save \"f.safetensors\"\n"
                "}\n");
  FILE *f = fopen(in_dir("f.tsv"), "w");
  cr_assert(f != NULL);
  for (int i = 0; i < 60; i++)
    fprintf(f, "%s\t%.2f\t%.2f\n", i % 2 ? "red" : "green", (i % 2) * 2 - 1 + (i % 7) * 0.1, (i % 5) * 0.2);
  fclose(f);
  TuRun r = sh_in_dir("$RAC run f.ra --quiet");
  cr_assert_eq(r.status, 0, "%s", r.err);
  tu_run_free(&r);
  Ckpt *c = ckpt_read(ra_alloc_default(), in_dir("f.safetensors"), err, sizeof err);
  cr_assert(c != NULL, "%s", err);
  cr_assert_str_eq(ckpt_meta(c, "tokenizer"), "[\"none\"]");
  cr_assert_str_eq(ckpt_meta(c, "labels"), "[\"green\",\"red\"]");
  cr_assert(ckpt_meta(c, "vocab") == NULL);
  ckpt_free(c);
  r = sh_in_dir("$RAC eval f.ra --ckpt f.safetensors && $RAC run f.ra --quiet --resume f.safetensors --set steps=30");
  cr_assert_eq(r.status, 0, "%s", r.err);
  tu_run_free(&r);
  r = sh_in_dir("sed -i 's/^red/blue/' f.tsv && $RAC eval f.ra --ckpt f.safetensors");
  cr_assert_eq(r.status, 1, "%s", r.out);
  cr_assert(strstr(r.err, "label 'blue' is not one of the 2 labels the checkpoint 'f.safetensors' was trained with (green, red)"),
            "%s", r.err);
  tu_run_free(&r);
}

static void *live_fn(void *ud, void *ptr, size_t osize, size_t nsize) {
  long *live = ud;
  (void)osize;
  if (nsize == 0) {
    if (ptr) (*live)--;
    free(ptr);
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (p && !ptr) (*live)++;
  return p;
}

/* The resume and log options are freed with the context. */
Test(ckpt, resume_option_freed) {
  long live = 0;
  ra_ctx *c = ra_new_with_alloc(live_fn, &live);
  cr_assert_not_null(c);
  cr_assert_eq(ra_set_option(c, "resume", "a.safetensors"), 0);
  cr_assert_eq(ra_set_option(c, "resume", "b.safetensors"), 0);
  cr_assert_eq(ra_set_option(c, "log", "x.jsonl"), 0);
  ra_free(c);
  cr_assert_eq(live, 0, "%ld allocations left after ra_free", live);
}

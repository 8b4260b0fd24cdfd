/* test_ffi.c - native functions (language.md §9) at the library edge:
 * externs from a shared library (build/tests/libmyops.so, from
 * tests/ffi/myops.c) and host functions registered with ra_register_fn,
 * called through libffi.  Gradients are checked by training the same model
 * with the extern and with the built-in expression it stands for; misuse
 * (permission, missing library or symbol, bad registrations, a
 * non-differentiable extern on the loss path) must give located errors. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "ra.h"
#include "testutil.h"
#include "../runtime/api/api_int.h"
#include "../runtime/exec/externfn.h"

/* The folder of this test binary (build/tests or build-san/tests), where
 * libmyops.so is built; specs are "loaded from" there so that a relative
 * library path is found in the spec's folder. */
static const char *bindir(void) {
  static char dir[1024];
  if (!dir[0]) {
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    cr_assert(n > 0);
    dir[n] = 0;
    char *s = strrchr(dir, '/');
    if (s) *s = 0;
  }
  return dir;
}

static const char *spec_name(const char *file) {
  static char buf[1100];
  snprintf(buf, sizeof buf, "%s/%s", bindir(), file);
  return buf;
}

/* A tiny model: h = ACT(linear(x)) on the path to the loss.  %s is the
 * extern declarations, the second %s the activation expression of u. */
static char *make_spec(const char *decls, const char *act) {
  static const char *fmt =
      "%s\n"
      "data syn = synthetic(task: copy, length: 4, vocab: 6, examples: 64) {\n"
      "  split train 0.75 valid 0.125 test 0.125\n"
      "  seed 3\n"
      "}\n"
      "model m {\n"
      "  input  seq : int[4]\n"
      "  target out : class(6)[4]\n"
      "  x = embed(seq, vocab: 6, dim: 8)\n"
      "  u = linear(x, out: 8)\n"
      "  h = %s\n"
      "  logits = linear(h, out: 6)\n"
      "  loss cross_entropy(logits, out)\n"
      "  output probs = softmax(logits)\n"
      "}\n"
      "train m on syn {\n"
      "  optimizer sgd { lr 0.5 }\n"
      "  batch 8\n"
      "  steps 3\n"
      "  seed 1\n"
      "}\n";
  size_t n = strlen(fmt) + strlen(decls) + strlen(act) + 1;
  char *s = malloc(n);
  snprintf(s, n, fmt, decls, act);
  return s;
}

#define SWISH_DECLS                                                        \
  "extern fn swish(x: f32) -> f32 from \"libmyops.so\" grad swish_grad\n" \
  "extern fn swish_grad(x: f32) -> f32 from \"libmyops.so\""
#define SQUARE_DECLS                                                                   \
  "extern fn square_arr(x: f32[], n: int) from \"libmyops.so\" grad square_arr_grad\n" \
  "extern fn square_arr_grad(x: f32[], n: int) from \"libmyops.so\""

typedef struct Trace {
  double loss[8];
  int n;
} Trace;

static int record(void *ud, int64_t step, double loss) {
  Trace *t = ud;
  if (t->n < 8) t->loss[t->n++] = loss;
  (void)step;
  return 0;
}

static ra_ctx *ctx_new(bool allow) {
  ra_ctx *c = ra_new();
  cr_assert_not_null(c);
  cr_assert_eq(ra_set_option(c, "quiet", "1"), 0);
  cr_assert_eq(ra_set_option(c, "threads", "1"), 0);
  if (allow) cr_assert_eq(ra_set_option(c, "allow_extern", "1"), 0);
  return c;
}

/* Trains spec for 3 steps; returns a copy of every parameter, concatenated. */
static float *train_params(ra_ctx *c, const char *spec, Trace *tr, int64_t *count) {
  cr_assert_eq(ra_load_string(c, spec_name("ffi.ra"), spec), 0, "%s", ra_error(c));
  cr_assert_eq(ra_train(c, NULL, record, tr), 0, "%s", ra_error(c));
  ra_model *m = ra_model_get(c, "m");
  cr_assert_not_null(m, "%s", ra_error(c));
  int np = ra_model_n_params(m);
  cr_assert_gt(np, 0);
  float *all = NULL;
  int64_t total = 0;
  for (int i = 0; i < np; i++) {
    ra_tensor t;
    cr_assert_eq(ra_param(m, ra_model_param_name(m, i), &t), 0, "%s", ra_error(c));
    int64_t k = 1;
    for (int d = 0; d < t.ndim; d++) k *= t.shape[d];
    all = realloc(all, sizeof *all * (size_t)(total + k));
    memcpy(all + total, t.data, sizeof *all * (size_t)k);
    total += k;
  }
  *count = total;
  return all;
}

/* The extern and the built-in expression train to the same parameters. */
static void same_training(ra_ctx *ca, const char *decls, const char *act, ra_ctx *cb,
                          const char *builtin) {
  char *sa = make_spec(decls, act), *sb = make_spec("", builtin);
  Trace ta = {{0}, 0}, tb = {{0}, 0};
  int64_t na = 0, nb = 0;
  float *pa = train_params(ca, sa, &ta, &na);
  float *pb = train_params(cb, sb, &tb, &nb);
  cr_assert_eq(na, nb);
  cr_assert_eq(ta.n, 3);
  cr_assert_eq(tb.n, 3);
  for (int i = 0; i < 3; i++) cr_assert_float_eq(ta.loss[i], tb.loss[i], 1e-5, "loss %d", i);
  cr_assert(ta.loss[2] < ta.loss[0], "the loss does not decrease: %g -> %g", ta.loss[0], ta.loss[2]);
  tu_allclose(pa, pb, (long)na, 1e-4, 1e-5, "parameters after 3 steps");
  free(pa);
  free(pb);
  free(sa);
  free(sb);
}

Test(ffi, scalar_extern_trains_like_builtin) {
  ra_ctx *ca = ctx_new(true), *cb = ctx_new(false);
  same_training(ca, SWISH_DECLS, "swish(u)", cb, "u * sigmoid(u)");
  /* the closures the kernels call compute the library's functions */
  cr_assert_eq(ca->nexterns, 2);
  const ExternFn *e = ca->externs[0];
  cr_assert_str_eq(e->name, "swish");
  cr_assert(!e->array_form);
  cr_assert_not_null(e->fn);
  cr_assert_not_null(e->grad);
  for (float x = -3.0f; x <= 3.0f; x += 0.75f) {
    float s = 1.0f / (1.0f + expf(-x));
    cr_assert_float_eq(e->fn(x), x * s, 1e-6);
    cr_assert_float_eq(e->grad(x), s + x * s * (1.0f - s), 1e-6);
    /* and the derivative is right: central difference of fn */
    double fd = ((double)e->fn(x + 1e-2f) - (double)e->fn(x - 1e-2f)) / 2e-2;
    cr_assert_float_eq(e->grad(x), fd, 2e-3, "x = %g", x);
  }
  cr_assert_null(ca->externs[1]->grad);
  ra_free(ca);
  ra_free(cb);
}

Test(ffi, array_extern_trains_like_builtin) {
  ra_ctx *ca = ctx_new(true), *cb = ctx_new(false);
  same_training(ca, SQUARE_DECLS, "square_arr(u)", cb, "u * u");
  const ExternFn *e = ca->externs[0];
  cr_assert(e->array_form);
  float buf[5] = {-2, -0.5f, 0, 1, 3};
  e->afn(buf, 5);
  cr_assert_float_eq(buf[0], 4.0f, 1e-7);
  cr_assert_float_eq(buf[4], 9.0f, 1e-7);
  float g[3] = {-2, 0.25f, 3};
  e->agrad(g, 3);
  cr_assert_float_eq(g[0], -4.0f, 1e-7);
  cr_assert_float_eq(g[1], 0.5f, 1e-7);
  ra_free(ca);
  ra_free(cb);
}

Test(ffi, refused_without_allow_extern) {
  ra_ctx *c = ctx_new(false);
  char *s = make_spec(SWISH_DECLS, "swish(u)");
  cr_assert_eq(ra_load_string(c, spec_name("ffi.ra"), s), 0, "%s", ra_error(c));
  cr_assert_eq(ra_train(c, NULL, NULL, NULL), RA_EEXTERN);
  char want[8192];
  snprintf(want, sizeof want,
           "%s:1:11: error: extern function 'swish' would load native code from 'libmyops.so'; "
           "allow it with --allow-extern (option allow_extern)",
           spec_name("ffi.ra"));
  cr_assert_str_eq(ra_error(c), want);
  /* ra_forward refuses too */
  ra_model *m = ra_model_get(c, "m");
  cr_assert_not_null(m);
  int32_t tok[4] = {1, 2, 3, 4};
  ra_tensor in = {RA_I32, 2, {1, 4}, tok}, out = {0};
  cr_assert_eq(ra_forward(m, &in, 1, &out, 1), RA_EEXTERN);
  cr_assert(strstr(ra_error(c), "--allow-extern") != NULL);
  /* allowed afterwards: the same context now runs */
  cr_assert_eq(ra_set_option(c, "allow_extern", "1"), 0);
  cr_assert_eq(ra_forward(m, &in, 1, &out, 1), 0, "%s", ra_error(c));
  cr_assert_eq(out.shape[0], 1);
  free(s);
  ra_free(c);
}

Test(ffi, missing_library) {
  ra_ctx *c = ctx_new(true);
  char *s = make_spec("extern fn swish(x: f32) -> f32 from \"./libnosuch.so\"", "swish(u)");
  cr_assert_eq(ra_load_string(c, spec_name("ffi.ra"), s), 0, "%s", ra_error(c));
  cr_assert_eq(ra_train(c, NULL, NULL, NULL), RA_EEXTERN);
  const char *e = ra_error(c);
  char want[8192];
  snprintf(want, sizeof want, "%s:1:37: error: cannot load library './libnosuch.so'", spec_name("ffi.ra"));
  cr_assert(strncmp(e, want, strlen(want)) == 0, "got: %s", e);
  cr_assert(strstr(e, "libnosuch.so: cannot open shared object file") != NULL, "got: %s", e);
  free(s);
  ra_free(c);
}

Test(ffi, missing_symbol) {
  ra_ctx *c = ctx_new(true);
  char *s = make_spec("extern fn swash(x: f32) -> f32 from \"libmyops.so\"", "swash(u)");
  cr_assert_eq(ra_load_string(c, spec_name("ffi.ra"), s), 0, "%s", ra_error(c));
  cr_assert_eq(ra_train(c, NULL, NULL, NULL), RA_EEXTERN);
  char want[8192];
  snprintf(want, sizeof want, "%s:1:11: error: library 'libmyops.so' has no function 'swash'",
           spec_name("ffi.ra"));
  cr_assert(strncmp(ra_error(c), want, strlen(want)) == 0, "got: %s", ra_error(c));
  free(s);
  ra_free(c);
}

Test(ffi, library_path_is_absolute_or_relative_to_cwd) {
  /* an absolute path; and a spec in another folder naming the library
   * relative to the working directory (the "as given" fallback) */
  char decl[8192];
  snprintf(decl, sizeof decl, "extern fn swish(x: f32) -> f32 from \"%s/libmyops.so\"", bindir());
  char *s = make_spec(decl, "swish(u)");
  ra_ctx *c = ctx_new(true);
  cr_assert_eq(ra_load_string(c, "/nonexistent/dir/ffi.ra", s), 0, "%s", ra_error(c));
  ra_model *m = ra_model_get(c, "m");
  int32_t tok[4] = {1, 2, 3, 4};
  ra_tensor in = {RA_I32, 2, {1, 4}, tok}, out = {0};
  cr_assert_eq(ra_forward(m, &in, 1, &out, 1), 0, "%s", ra_error(c));
  free(s);
  char cwd[PATH_MAX];
  cr_assert_not_null(getcwd(cwd, sizeof cwd));
  const char *rel = bindir() + strlen(cwd);
  cr_assert(strncmp(bindir(), cwd, strlen(cwd)) == 0 && *rel == '/', "tests run from the root");
  snprintf(decl, sizeof decl, "extern fn swish(x: f32) -> f32 from \".%s/libmyops.so\"", rel);
  s = make_spec(decl, "swish(u)");
  cr_assert_eq(ra_load_string(c, "/nonexistent/dir/ffi.ra", s), 0, "%s", ra_error(c));
  m = ra_model_get(c, "m");
  out = (ra_tensor){0}; /* the old output storage went with the old model */
  cr_assert_eq(ra_forward(m, &in, 1, &out, 1), 0, "%s", ra_error(c));
  free(s);
  ra_free(c);
}

Test(ffi, bare_name_found_next_to_a_spec_in_the_working_directory) {
  const char *dir = bindir(); /* before chdir: /proc/self/exe is absolute anyway */
  cr_assert_eq(chdir(dir), 0);
  ra_ctx *c = ctx_new(true);
  char *s = make_spec(SWISH_DECLS, "swish(u)");
  cr_assert_eq(ra_load_string(c, "ffi.ra", s), 0, "%s", ra_error(c));
  cr_assert_eq(ra_train(c, NULL, NULL, NULL), 0, "%s", ra_error(c));
  free(s);
  ra_free(c);
}

Test(ffi, not_differentiable_on_loss_path) {
  ra_ctx *c = ctx_new(true);
  char *s = make_spec("extern fn quantize(x: f32) -> f32 from \"libmyops.so\"", "quantize(u)");
  cr_assert_eq(ra_load_string(c, spec_name("ffi.ra"), s), 0, "%s", ra_error(c));
  cr_assert_eq(ra_train(c, NULL, NULL, NULL), RA_ESPEC);
  char want[8192];
  snprintf(want, sizeof want, "%s:11:7: error: 'quantize' has no gradient", spec_name("ffi.ra"));
  cr_assert(strstr(ra_error(c), want) != NULL, "got: %s", ra_error(c));
  /* the forward pass needs no gradient */
  ra_model *m = ra_model_get(c, "m");
  int32_t tok[8] = {1, 2, 3, 4, 0, 0, 5, 5};
  ra_tensor in = {RA_I32, 2, {2, 4}, tok}, out = {0};
  cr_assert_eq(ra_forward(m, &in, 1, &out, 1), 0, "%s", ra_error(c));
  cr_assert_eq(out.shape[0], 2);
  free(s);
  ra_free(c);
}

/* ---- host functions ---- */

static float host_swish(float x) { return x / (1.0f + expf(-x)); }
static float host_swish_d(float x) {
  float s = 1.0f / (1.0f + expf(-x));
  return s + x * s * (1.0f - s);
}
static void host_sq(float *x, int32_t n) {
  for (int32_t i = 0; i < n; i++) x[i] *= x[i];
}
static void host_sq_d(float *x, int32_t n) {
  for (int32_t i = 0; i < n; i++) x[i] *= 2.0f;
}

#define HOST_SWISH_DECLS                                       \
  "extern fn hswish(x: f32) -> f32 from host grad hswish_d\n" \
  "extern fn hswish_d(x: f32) -> f32 from host"

static void reg_swish(ra_ctx *c) {
  cr_assert_eq(ra_register_fn(c, "hswish", "f32(f32)", (void (*)(void))host_swish), 0, "%s", ra_error(c));
  cr_assert_eq(ra_register_fn(c, "hswish_d", "f32 ( f32 )", (void (*)(void))host_swish_d), 0, "%s", ra_error(c));
}

Test(ffi, host_scalar_trains_like_builtin) {
  /* registered before the load; no allow_extern needed for host functions */
  ra_ctx *ca = ctx_new(false), *cb = ctx_new(false);
  reg_swish(ca);
  same_training(ca, HOST_SWISH_DECLS, "hswish(u)", cb, "u * sigmoid(u)");
  ra_free(ca);
  ra_free(cb);
}

Test(ffi, host_array_registered_after_load) {
  ra_ctx *ca = ctx_new(false), *cb = ctx_new(false);
  char *sa = make_spec("extern fn hsq(x: f32[], n: int) from host grad hsq_d\n"
                       "extern fn hsq_d(x: f32[], n: int) from host",
                       "hsq(u)");
  cr_assert_eq(ra_load_string(ca, spec_name("ffi.ra"), sa), 0, "%s", ra_error(ca));
  /* unknown host function at run time: a located error */
  cr_assert_eq(ra_train(ca, NULL, NULL, NULL), RA_EEXTERN);
  char want[8192];
  snprintf(want, sizeof want,
           "%s:1:11: error: extern function 'hsq' is declared 'from host', but the application "
           "registered no function 'hsq' (ra_register_fn)",
           spec_name("ffi.ra"));
  cr_assert_str_eq(ra_error(ca), want);
  cr_assert_eq(ra_register_fn(ca, "hsq", "void(f32[],i32)", (void (*)(void))host_sq), 0, "%s", ra_error(ca));
  cr_assert_eq(ra_register_fn(ca, "hsq_d", "void(f32[], i32)", (void (*)(void))host_sq_d), 0, "%s", ra_error(ca));
  Trace ta = {{0}, 0}, tb = {{0}, 0};
  cr_assert_eq(ra_train(ca, NULL, record, &ta), 0, "%s", ra_error(ca));
  char *sb = make_spec("", "u * u");
  cr_assert_eq(ra_load_string(cb, spec_name("ffi.ra"), sb), 0, "%s", ra_error(cb));
  cr_assert_eq(ra_train(cb, NULL, record, &tb), 0, "%s", ra_error(cb));
  cr_assert_eq(ta.n, 3);
  for (int i = 0; i < 3; i++) cr_assert_float_eq(ta.loss[i], tb.loss[i], 1e-5);
  free(sa);
  free(sb);
  ra_free(ca);
  ra_free(cb);
}

Test(ffi, host_forward_resolves_on_first_call) {
  ra_ctx *c = ctx_new(false);
  char *s = make_spec(HOST_SWISH_DECLS, "hswish(u)");
  cr_assert_eq(ra_load_string(c, spec_name("ffi.ra"), s), 0, "%s", ra_error(c));
  ra_model *m = ra_model_get(c, "m");
  cr_assert_not_null(m);
  int32_t tok[4] = {1, 2, 3, 4};
  ra_tensor in = {RA_I32, 2, {1, 4}, tok}, out = {0};
  cr_assert_eq(ra_forward(m, &in, 1, &out, 1), RA_EEXTERN);
  cr_assert(strstr(ra_error(c), "ffi.ra:1:11: error: extern function 'hswish'") != NULL, "got: %s", ra_error(c));
  reg_swish(c);
  cr_assert_eq(ra_forward(m, &in, 1, &out, 1), 0, "%s", ra_error(c));
  const float *p = out.data;
  double sum = 0;
  for (int k = 0; k < 6; k++) sum += p[k];
  cr_assert_float_eq(sum, 1.0, 1e-5);
  free(s);
  ra_free(c);
}

Test(ffi, host_form_mismatch_is_located) {
  ra_ctx *c = ctx_new(false);
  cr_assert_eq(ra_register_fn(c, "hsq", "f32(f32)", (void (*)(void))host_swish), 0);
  char *s = make_spec("extern fn hsq(x: f32[], n: int) from host", "hsq(u)");
  cr_assert_eq(ra_load_string(c, spec_name("ffi.ra"), s), 0, "%s", ra_error(c));
  ra_model *m = ra_model_get(c, "m");
  int32_t tok[4] = {1, 2, 3, 4};
  ra_tensor in = {RA_I32, 2, {1, 4}, tok}, out = {0};
  cr_assert_eq(ra_forward(m, &in, 1, &out, 1), RA_EEXTERN);
  char want[8192];
  snprintf(want, sizeof want,
           "%s:1:11: error: extern function 'hsq' is declared in the array form, (x: f32[], n: "
           "int), but the host registered it as \"f32(f32)\"",
           spec_name("ffi.ra"));
  cr_assert_str_eq(ra_error(c), want);
  free(s);
  ra_free(c);
}

Test(ffi, register_misuse) {
  ra_ctx *c = ra_new();
  void (*fn)(void) = (void (*)(void))host_swish;
  cr_assert_eq(ra_register_fn(NULL, "f", "f32(f32)", fn), RA_EUSAGE);
  cr_assert_eq(ra_register_fn(c, "f", "f32(f32)", NULL), RA_EUSAGE);
  cr_assert_str_eq(ra_error(c), "ra_register_fn: fn is NULL");
  cr_assert_eq(ra_register_fn(c, NULL, "f32(f32)", fn), RA_EUSAGE);
  cr_assert_str_eq(ra_error(c), "ra_register_fn: name is NULL");
  cr_assert_eq(ra_register_fn(c, "f", NULL, fn), RA_EUSAGE);
  cr_assert_str_eq(ra_error(c), "ra_register_fn: signature is NULL");
  cr_assert_eq(ra_register_fn(c, "1f", "f32(f32)", fn), RA_EUSAGE);
  cr_assert(strstr(ra_error(c), "'1f' is not a valid function name") != NULL);
  cr_assert_eq(ra_register_fn(c, "", "f32(f32)", fn), RA_EUSAGE);
  static const char *bad[] = {"", "f32", "float(float)", "f32(f32", "void(f32[],i32",
                              "f32(i32)", "void(f32,i32)", "f64(f64)", "f32(f32)x",
                              "void(f32[],i32,i32)"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cr_assert_eq(ra_register_fn(c, "f", bad[i], fn), RA_EUSAGE, "accepted '%s'", bad[i]);
    cr_assert(strstr(ra_error(c), "unsupported signature") != NULL, "got: %s", ra_error(c));
  }
  cr_assert_eq(ra_register_fn(c, "f", "f32(f32)", fn), 0);
  cr_assert_str_eq(ra_error(c), "");
  cr_assert_eq(ra_register_fn(c, "f", "f32(f32)", fn), RA_EUSAGE);
  cr_assert_str_eq(ra_error(c), "ra_register_fn: a function named 'f' is already registered");
  cr_assert_eq(ra_register_fn(c, "g", "void(f32[],i32)", fn), 0);
  /* many registrations grow the table */
  char nm[16];
  for (int i = 0; i < 40; i++) {
    snprintf(nm, sizeof nm, "fn%d", i);
    cr_assert_eq(ra_register_fn(c, nm, "f32(f32)", fn), 0, "%s", ra_error(c));
  }
  cr_assert_eq(c->nhost, 42);
  ra_free(c);
}

Test(ffi, reload_keeps_registrations) {
  ra_ctx *c = ctx_new(false);
  reg_swish(c);
  char *s = make_spec(HOST_SWISH_DECLS, "hswish(u)");
  for (int round = 0; round < 2; round++) {
    cr_assert_eq(ra_load_string(c, spec_name("ffi.ra"), s), 0, "%s", ra_error(c));
    cr_assert_eq(ra_train(c, NULL, NULL, NULL), 0, "%s", ra_error(c));
    cr_assert_eq(c->nexterns, 2);
  }
  /* a spec without externs after one with them */
  char *t = make_spec("", "u");
  cr_assert_eq(ra_load_string(c, spec_name("ffi.ra"), t), 0, "%s", ra_error(c));
  cr_assert_eq(ra_train(c, NULL, NULL, NULL), 0, "%s", ra_error(c));
  cr_assert_eq(c->nexterns, 0);
  free(s);
  free(t);
  ra_free(c);
}

/* `rac run --allow-extern` */
Test(ffi, rac_allow_extern) {
  char dir[] = "/tmp/rac_ffi_XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char decl[8192];
  snprintf(decl, sizeof decl,
           "extern fn swish(x: f32) -> f32 from \"%s/libmyops.so\" grad swish_grad\n"
           "extern fn swish_grad(x: f32) -> f32 from \"%s/libmyops.so\"",
           bindir(), bindir());
  char *s = make_spec(decl, "swish(u)");
  char path[64], cmd[4096], out[64];
  snprintf(path, sizeof path, "%s/ffi.ra", dir);
  snprintf(out, sizeof out, "%s/out.txt", dir);
  cr_assert_eq(tu_write_file(path, s), 0);
  snprintf(cmd, sizeof cmd, "%s/../rac run %s --quiet > %s 2>&1", bindir(), path, out);
  int rc = system(cmd);
  cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "rac run without --allow-extern: %d", rc);
  char *text = tu_read_file(out, NULL);
  cr_assert(text && strstr(text, "ffi.ra:1:11: error: extern function 'swish' would load native code") != NULL,
            "got: %s", text ? text : "(nothing)");
  free(text);
  snprintf(cmd, sizeof cmd, "%s/../rac run %s --quiet --allow-extern > %s 2>&1", bindir(), path, out);
  rc = system(cmd);
  text = tu_read_file(out, NULL);
  cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "rac run --allow-extern: %d\n%s", rc, text ? text : "");
  free(text);
  unlink(path);
  unlink(out);
  rmdir(dir);
  free(s);
}

/* api.c - the public API of ra.h: contexts, options, loading specs, models,
 * training, forward passes, parameters, checkpoints and dumps.  Every entry
 * point checks its arguments and returns a status; messages are kept on the
 * context (ra_error).  Nothing here is global. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../include/ra.h"
#include "../../compiler/program.h"
#include "../../compiler/settings.h"
#include "../../base/file.h"
#include "api_int.h"
#include "../exec/exec.h"
#include "../exec/sysmem.h"
#include "../train/train.h"

/* ---- errors ---- */

int api_fail(ra_ctx *ctx, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  size_t need = (size_t)n + 1;
  if (need > ctx->errcap) {
    char *p = ra_realloc(&ctx->alloc, ctx->err, ctx->errcap, need);
    if (!p) {
      /* ra_error says the message is lost rather than show part of it */
      ctx->err_lost = true;
      ctx->code = code;
      return code;
    }
    ctx->err = p;
    ctx->errcap = need;
  }
  ctx->err_lost = false;
  if (ctx->err && ctx->errcap) {
    va_start(ap, fmt);
    vsnprintf(ctx->err, ctx->errcap, fmt, ap);
    va_end(ap);
  }
  ctx->code = code;
  return code;
}

int api_ok(ra_ctx *ctx) {
  ctx->code = RA_OK;
  ctx->err_lost = false;
  if (ctx->err && ctx->errcap) ctx->err[0] = 0;
  return RA_OK;
}

char *api_strdup(ra_ctx *ctx, const char *s) {
  size_t n = strlen(s) + 1;
  char *p = ra_malloc(&ctx->alloc, n);
  if (p) memcpy(p, s, n);
  return p;
}

static void api_strfree(ra_ctx *ctx, char *s) {
  if (s) ra_free_mem(&ctx->alloc, s, strlen(s) + 1);
}

/* Text returned to the caller (dumps, summaries), owned by ctx. */
const char *api_set_text(ra_ctx *ctx, const char *s) {
  api_strfree(ctx, ctx->text);
  ctx->text = api_strdup(ctx, s ? s : "");
  return ctx->text ? ctx->text : "";
}

/* ---- version ---- */

int ra_version(void) { return RA_VERSION_NUM; }
const char *ra_version_string(void) { return RA_VERSION_STRING; }
const char *ra_gemm_backend(const char **kernels) { return k_gemm_backend(kernels); }
const char *ra_mpi_library(void) { return dist_library(); }

/* ---- contexts ---- */

ra_ctx *ra_new_with_alloc(void *(*alloc)(void *, void *, size_t, size_t), void *ud) {
  RaAlloc a = {alloc, ud};
  if (!alloc) a = ra_alloc_default();
  ra_ctx *ctx = ra_calloc(&a, 1, sizeof *ctx);
  if (!ctx) return NULL;
  ctx->alloc = a;
  ctx->seed = 0;
  ctx->threads = 0;
  ctx->bucket_bytes = -1;
  arena_init(&ctx->arena, a);
  return ctx;
}

ra_ctx *ra_new(void) { return ra_new_with_alloc(NULL, NULL); }

static void model_free(ra_model *m);

static void ablation_drop(ra_ctx *ctx) {
  if (ctx->ablation_layers)
    ra_free_mem(&ctx->alloc, ctx->ablation_layers,
                (size_t)ctx->ablation.nheads * sizeof *ctx->ablation_layers);
  ctx->ablation_layers = NULL;
  ablation_free(ctx->alloc, &ctx->ablation);
  memset(&ctx->ablation_view, 0, sizeof ctx->ablation_view);
}

static void unload(ra_ctx *ctx) {
  ablation_drop(ctx);
  ra_model *m = ctx->models;
  while (m) {
    ra_model *next = m->next;
    model_free(m);
    m = next;
  }
  ctx->models = NULL;
  ctx->prog = NULL;
  arena_free(&ctx->arena);
  arena_init(&ctx->arena, ctx->alloc);
  api_strfree(ctx, ctx->diag_text);
  ctx->diag_text = NULL;
  ffi_unload(ctx);
}

void ra_free(ra_ctx *ctx) {
  if (!ctx) return;
  unload(ctx);
  RaAlloc a = ctx->alloc;
  for (int i = 0; i < ctx->nsets; i++) {
    api_strfree(ctx, ctx->sets[i].key);
    api_strfree(ctx, ctx->sets[i].value);
  }
  for (int i = 0; i < ctx->ncsets; i++) api_strfree(ctx, (char *)ctx->csets[i].name);
  api_strfree(ctx, ctx->stdlib);
  api_strfree(ctx, ctx->ra_path);
  api_strfree(ctx, ctx->log_path);
  api_strfree(ctx, ctx->resume);
  api_strfree(ctx, ctx->text);
  api_strfree(ctx, ctx->last_save);
  ffi_host_free(ctx);
  pool_free(ctx->pool);
  exec_jit_free(ctx->jit);
  dist_free(ctx->dist); /* last: MPI_Finalize when this context started MPI */
  ra_free_mem(&a, ctx->err, ctx->errcap);
  ra_free_mem(&a, ctx, sizeof *ctx);
}

const char *ra_error(ra_ctx *ctx) {
  if (!ctx) return "ra_error: the context is NULL (ra_new failed?)";
  if (!ctx->code) return "";
  if (ctx->err_lost || !ctx->err)
    return "out of memory: the message of this error could not be stored";
  return ctx->err;
}

int ra_errcode(ra_ctx *ctx) { return ctx ? ctx->code : RA_EUSAGE; }

int ra_set_stop_flag(ra_ctx *ctx, volatile sig_atomic_t *flag) {
  if (!ctx) return RA_EUSAGE;
  ctx->stop = flag;
  return api_ok(ctx);
}

const char *ra_last_save(ra_ctx *ctx) { return ctx ? ctx->last_save : NULL; }

/* ---- the processes of a data-parallel run ---- */

int api_dist(ra_ctx *ctx) {
  if (ctx->dist) return 0;
  int rank = 0, n = dist_launched_size(&rank);
  if (n <= 1) return 0;
  if (!dist_available())
    return api_fail(ctx, RA_EUSAGE,
                    "this build of rac has no MPI, but it was started as process %d of %d (by "
                    "mpirun or srun): build it where mpicc and libopenmpi-dev are installed "
                    "(tools/setup.sh), or run it as one process", rank, n);
  char err[FILE_MSG_MAX] = "";
  ctx->dist = dist_new(ctx->alloc, NULL, err, sizeof err);
  if (!ctx->dist) return api_fail(ctx, RA_ERUNTIME, "%s", err);
  return 0;
}

int api_agree(ra_ctx *ctx, int code) {
  if (!ctx->dist || dist_size(ctx->dist) < 2) return code;
  char err[FILE_MSG_MAX] = "";
  if (code) snprintf(err, sizeof err, "%s", ra_error(ctx));
  int rc = dist_agree(ctx->dist, code, err, sizeof err, NULL);
  if (rc) return api_fail(ctx, rc, "%s", err);
  return 0;
}

int ra_set_mpi_comm(ra_ctx *ctx, const void *comm) {
  if (!ctx) return RA_EUSAGE;
  if (!comm) return api_fail(ctx, RA_EUSAGE, "ra_set_mpi_comm: the communicator must not be NULL");
  if (!dist_available())
    return api_fail(ctx, RA_EUSAGE, "ra_set_mpi_comm: this build of rac has no MPI");
  char err[FILE_MSG_MAX] = "";
  Dist *d = dist_new(ctx->alloc, comm, err, sizeof err);
  if (!d) return api_fail(ctx, RA_EUSAGE, "%s", err);
  dist_free(ctx->dist);
  ctx->dist = d;
  return api_ok(ctx);
}

int ra_mpi_rank(ra_ctx *ctx, int *size) {
  if (size) *size = ctx && ctx->dist ? dist_size(ctx->dist) : 1;
  return ctx && ctx->dist ? dist_rank(ctx->dist) : -1;
}

void ra_set_log(ra_ctx *ctx, void (*log)(void *, const char *), void *ud) {
  if (!ctx) return;
  ctx->log = log;
  ctx->log_ud = ud;
}

/* ---- options ---- */

static int parse_bool(const char *s, bool *out) {
  if (!strcmp(s, "1") || !strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on")) {
    *out = true;
    return 0;
  }
  if (!strcmp(s, "0") || !strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off")) {
    *out = false;
    return 0;
  }
  return -1;
}

/* An identifier of the language ([A-Za-z_][A-Za-z0-9_]*). */
static bool is_name(const char *s) {
  if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_')) return false;
  for (s++; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_'))
      return false;
  return true;
}

/* A whole decimal integer of 64 bits. */
static int parse_i64(const char *s, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (!*s || *end || errno) return -1;
  *out = v;
  return 0;
}

int ra_set_option(ra_ctx *ctx, const char *key, const char *value) {
  if (!ctx) return RA_EUSAGE;
  if (!key || !value) return api_fail(ctx, RA_EUSAGE, "ra_set_option: key and value must not be NULL");
  bool b;
  long long ll;
  const Setting *st = setting_find(key, IN_OPTION);
  if (st) {
    /* a train setting of its own (settings.def): the table's limits and words */
    char msg[FILE_MSG_MAX];
    int64_t iv = 0;
    int w = 0;
    if (st->kind == SETK_INT && setting_parse_int(st, value, &iv, msg, sizeof msg))
      return api_fail(ctx, RA_EUSAGE, "%s", msg);
    if (st->kind == SETK_SPECIAL && (w = setting_parse_word(st, value, msg, sizeof msg)) < 0)
      return api_fail(ctx, RA_EUSAGE, "%s", msg);
    if (st == setting_get(SET_threads)) {
      ctx->threads = (int)iv;
    } else if (st == setting_get(SET_seed)) {
      ctx->seed = (uint64_t)iv;
      ctx->has_seed = true;
    } else {
      ctx->rep_override = (RepKind)w;
      ctx->has_rep_override = true;
    }
  } else if (!strcmp(key, "predict.tokens") || !strcmp(key, "predict.top_k")) {
    char *end = NULL;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (!*value || *end || errno || v < 1 || v > 1000000)
      return api_fail(ctx, RA_EUSAGE, "option %s (--%s): expected an integer from 1 to 1000000, "
                      "got '%s'", key, strcmp(key, "predict.tokens") == 0 ? "tokens" : "top-k", value);
    if (!strcmp(key, "predict.tokens")) ctx->predict_tokens = v;
    else ctx->predict_top_k = v;
  } else if (!strcmp(key, "predict.temperature")) {
    char *end = NULL;
    double v = strtod(value, &end);
    if (!*value || *end || !isfinite(v) || !(v > 0) || v > 1000)
      return api_fail(ctx, RA_EUSAGE, "option predict.temperature (--temperature): expected a "
                      "number above 0 and at most 1000, got '%s'", value);
    ctx->predict_temperature = v;
  } else if (!strcmp(key, "predict.greedy")) {
    if (parse_bool(value, &b)) return api_fail(ctx, RA_EUSAGE, "option predict.greedy (--greedy): expected 0 or 1, got '%s'", value);
    ctx->predict_greedy = b;
  } else if (!strcmp(key, "allow_extern")) {
    if (parse_bool(value, &b)) return api_fail(ctx, RA_EUSAGE, "option allow_extern: expected 0 or 1, got '%s'", value);
    ctx->allow_extern = b;
  } else if (!strcmp(key, "jit")) {
    if (parse_bool(value, &b)) return api_fail(ctx, RA_EUSAGE, "option jit: expected 0 or 1, got '%s'", value);
    if (b && !exec_jit_available())
      return api_fail(ctx, RA_EUSAGE, "option jit: " EXEC_NO_JIT_MSG "; leave the option out to run on the interpreter");
    if (b && !ctx->jit) {
      char err[512];
      ctx->jit = exec_jit_new(ctx->alloc, err, sizeof err);
      if (!ctx->jit) return api_fail(ctx, RA_ERUNTIME, "option jit: %s", err);
    }
    ctx->use_jit = b;
  } else if (!strcmp(key, "mpi.bucket_bytes")) {
    char *end = NULL;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (!*value || *end || errno || v < 0 || v > ((long long)1 << 32))
      return api_fail(ctx, RA_EUSAGE, "option mpi.bucket_bytes: expected bytes from 0 (one "
                      "reduction after the backward pass) to 4294967296, got '%s'", value);
    ctx->bucket_bytes = v;
  } else if (!strcmp(key, "bench.profile")) {
    if (parse_bool(value, &b)) return api_fail(ctx, RA_EUSAGE, "option bench.profile (--profile): expected 0 or 1, got '%s'", value);
    ctx->bench_profile = b;
  } else if (!strcmp(key, "fuse")) {
    if (parse_bool(value, &b)) return api_fail(ctx, RA_EUSAGE, "option fuse: expected 0 or 1, got '%s'", value);
    ctx->no_fuse = !b;
    if (ctx->prog) ctx->prog->no_fuse = !b;
  } else if (!strcmp(key, "chains")) {
    if (parse_bool(value, &b)) return api_fail(ctx, RA_EUSAGE, "option chains: expected 0 or 1, got '%s'", value);
    ctx->no_chains = !b;
    if (ctx->prog) ctx->prog->no_chains = !b;
  } else if (!strcmp(key, "stdlib") || !strcmp(key, "ra_path")) {
    char **slot = !strcmp(key, "stdlib") ? &ctx->stdlib : &ctx->ra_path;
    char *s = api_strdup(ctx, value);
    if (!s) return api_fail(ctx, RA_ENOMEM, "out of memory");
    api_strfree(ctx, *slot);
    *slot = s;
  } else if (!strcmp(key, "color")) {
    if (parse_bool(value, &b)) return api_fail(ctx, RA_EUSAGE, "option color: expected 0 or 1, got '%s'", value);
    ctx->color = b;
  } else if (!strcmp(key, "progress")) {
    if (parse_bool(value, &b)) return api_fail(ctx, RA_EUSAGE, "option progress: expected 0 or 1, got '%s'", value);
    ctx->progress = b;
  } else if (!strcmp(key, "quiet")) {
    if (parse_bool(value, &b)) return api_fail(ctx, RA_EUSAGE, "option quiet: expected 0 or 1, got '%s'", value);
    ctx->quiet = b;
  } else if (!strcmp(key, "log")) {
    api_strfree(ctx, ctx->log_path);
    ctx->log_path = value[0] ? api_strdup(ctx, value) : NULL;
  } else if (!strcmp(key, "resume")) {
    api_strfree(ctx, ctx->resume);
    ctx->resume = value[0] ? api_strdup(ctx, value) : NULL;
  } else if (!strncmp(key, "set.", 4) && key[4] && !setting_find(key + 4, IN_SET) &&
             is_name(key + 4) && parse_i64(value, &ll) == 0) {
    /* not a train setting: a const of the spec, applied when it loads */
    if (ctx->prog)
      return api_fail(ctx, RA_EUSAGE,
                      "--set %s=%s: '%s' is not a train setting, and a const of the spec is "
                      "overridden when the spec loads: set it before ra_load_file",
                      key + 4, value, key + 4);
    int i = 0;
    while (i < ctx->ncsets && strcmp(ctx->csets[i].name, key + 4)) i++;
    if (i == (int)(sizeof ctx->csets / sizeof ctx->csets[0]))
      return api_fail(ctx, RA_EUSAGE, "too many const overrides (at most %d)", i);
    if (i == ctx->ncsets) {
      char *k = api_strdup(ctx, key + 4);
      if (!k) return api_fail(ctx, RA_ENOMEM, "out of memory");
      ctx->csets[i].name = k;
      ctx->ncsets++;
    }
    ctx->csets[i].value = (int64_t)ll;
  } else if (!strncmp(key, "set.", 4) && key[4]) {
    /* checked now, applied to the train block when a run starts (where a
     * setting of the other optimizer is refused) */
    TrainDecl scratch;
    char msg[FILE_MSG_MAX];
    memset(&scratch, 0, sizeof scratch);
    if (settings_apply(&scratch, NULL, key + 4, value, false, msg, sizeof msg))
      return api_fail(ctx, RA_EUSAGE, "--set %s=%s: %s%s", key + 4, value, msg,
                      !setting_find(key + 4, IN_SET) && is_name(key + 4) &&
                              !strstr(msg, "did you mean")
                          ? "; a const of the spec takes an integer"
                          : "");
    for (int i = 0; i < ctx->nsets; i++) {
      const char *why = settings_exclusive(ctx->sets[i].key, key + 4);
      if (why)
        return api_fail(ctx, RA_EUSAGE, "--set %s=%s: %s (--set %s=%s is given too)", key + 4,
                        value, why, ctx->sets[i].key, ctx->sets[i].value);
    }
    if (ctx->nsets == (int)(sizeof ctx->sets / sizeof ctx->sets[0]))
      return api_fail(ctx, RA_EUSAGE, "too many set.* options (at most %d)", ctx->nsets);
    char *k = api_strdup(ctx, key + 4), *val = api_strdup(ctx, value);
    if (!k || !val) {
      api_strfree(ctx, k);
      api_strfree(ctx, val);
      return api_fail(ctx, RA_ENOMEM, "out of memory");
    }
    ctx->sets[ctx->nsets].key = k;
    ctx->sets[ctx->nsets].value = val;
    ctx->nsets++;
  } else {
    static const char *const other[] = {"allow_extern", "jit", "stdlib", "ra_path", "color",
                                        "progress", "quiet", "log", "resume", "mpi.bucket_bytes",
                                        "bench.profile", "fuse", "chains"};
    enum { NOTHER = sizeof other / sizeof other[0] };
    const char *names[SETTING_COUNT + NOTHER];
    int n = setting_keys(IN_OPTION, names, NULL);
    for (int i = 0; i < NOTHER; i++) names[n++] = other[i];
    const char *s = diag_suggest(key, names, n);
    if (s) return api_fail(ctx, RA_EUSAGE, "unknown option '%s'; did you mean '%s'?", key, s);
    if (setting_find(key, IN_SET))
      return api_fail(ctx, RA_EUSAGE, "unknown option '%s'; the train setting is 'set.%s'", key,
                      key);
    return api_fail(ctx, RA_EUSAGE,
                    "unknown option '%s' (options: threads, seed, allow_extern, jit, fuse, chains, repulsion, "
                    "stdlib, ra_path, color, progress, quiet, log, resume, mpi.bucket_bytes, bench.profile, set.KEY)",
                    key);
  }
  return api_ok(ctx);
}

/* ---- loading ---- */

static int load_source(ra_ctx *ctx, const char *name, const char *text, size_t len) {
  unload(ctx);
  jmp_buf jb;
  ctx->arena.oom_jmp = &jb;
  if (setjmp(jb)) {
    ctx->arena.oom_jmp = NULL;
    unload(ctx);
    return api_fail(ctx, RA_ENOMEM, "out of memory while compiling '%s'", name);
  }
  src_init(&ctx->src, &ctx->arena);
  diag_init(&ctx->diags, &ctx->arena, &ctx->src);
  int file = src_add(&ctx->src, name, text, len);
  CompileOptions co = {ctx->stdlib ? ctx->stdlib : RA_STDLIB_DIR,
                       ctx->ra_path ? ctx->ra_path : getenv("RA_PATH"), ctx->csets, ctx->ncsets};
  Program *p = sema_program(&ctx->arena, &ctx->src, &ctx->diags, file, &co);
  ctx->arena.oom_jmp = NULL;
  char *rendered = diag_render(&ctx->diags, ctx->color);
  ctx->diag_text = api_strdup(ctx, rendered ? rendered : "");
  if (!p || ctx->diags.nerrors > 0) {
    ctx->prog = NULL;
    if (ctx->arena.failed) /* the errors say "out of memory ..." */
      return api_fail(ctx, RA_ENOMEM, "out of memory while compiling '%s'", name);
    int code = api_fail(ctx, RA_ESPEC, "%s", rendered && *rendered ? rendered : "the spec has errors\n");
    return code;
  }
  for (int i = 0; i < ctx->ncsets; i++) {
    const char *sug = NULL;
    if (sema_has_const(p, ctx->csets[i].name, &sug)) continue;
    const ConstOverride *c = &ctx->csets[i];
    char msg[FILE_MSG_MAX];
    if (sug)
      snprintf(msg, sizeof msg, "the spec has no const '%s'; did you mean '%s'?", c->name, sug);
    else
      setting_unknown(c->name, IN_SET, msg, sizeof msg);
    bool near = sug || strstr(msg, "did you mean");
    unload(ctx);
    return api_fail(ctx, RA_EUSAGE, "--set %s=%lld: %s%s", c->name, (long long)c->value, msg,
                    near ? "" : "; nor is it a const of the spec");
  }
  ctx->prog = p;
  p->no_fuse = ctx->no_fuse;
  p->no_chains = ctx->no_chains;
  return api_ok(ctx);
}

int ra_load_string(ra_ctx *ctx, const char *name, const char *source) {
  if (!ctx) return RA_EUSAGE;
  if (!source) return api_fail(ctx, RA_EUSAGE, "ra_load_string: source is NULL");
  return load_source(ctx, name ? name : "<string>", source, strlen(source));
}

int ra_load_file(ra_ctx *ctx, const char *path) {
  if (!ctx) return RA_EUSAGE;
  if (!path) return api_fail(ctx, RA_EUSAGE, "ra_load_file: path is NULL");
  char why[256], *buf;
  size_t len;
  if (file_read_all(&ctx->alloc, path, (uint64_t)1 << 30, &buf, &len, why, sizeof why) != 0)
    return api_fail(ctx, strstr(why, "out of memory") ? RA_ENOMEM : RA_EIO, "%s: cannot open: %s",
                    path, why);
  int rc = load_source(ctx, path, buf, len);
  ra_free_mem(&ctx->alloc, buf, len + 1);
  return rc;
}

const char *ra_diagnostics(ra_ctx *ctx) {
  if (!ctx) return "";
  return ctx->diag_text ? ctx->diag_text : "";
}

/* A compile step after loading (lowering, autodiff, planning) failed: out of
 * memory if the program's arena ran out since api_compile_begin, else the
 * diagnostics it left (RA_ESPEC). */
void api_compile_begin(ra_ctx *ctx) {
  if (ctx->prog) ctx->prog->arena->failed = 0;
}

int api_compile_fail(ra_ctx *ctx, const char *model) {
  bool oom = ctx->prog && ctx->prog->arena->failed;
  const char *r = oom ? NULL : diag_render(&ctx->diags, ctx->color);
  if (oom || !r || !*r)
    return api_fail(ctx, RA_ENOMEM, "out of memory while compiling model '%s'", model);
  return api_fail(ctx, RA_ESPEC, "%s", r);
}

static int need_program(ra_ctx *ctx, const char *fn) {
  if (!ctx->prog)
    return api_fail(ctx, RA_EUSAGE, "%s: no spec is loaded (call ra_load_file first%s)", fn,
                    ctx->diag_text && *ctx->diag_text ? "; the last one had errors" : "");
  return 0;
}

/* ---- models ---- */

static void fwd_free(ra_model *m) {
  RaAlloc a = m->ctx->alloc;
  if (m->fex) exec_free(m->fex);
  m->fex = NULL;
  for (int i = 0; i < m->nfin; i++) ra_free_mem(&a, m->fin[i].p, m->fin[i].bytes);
  for (int i = 0; i < m->nfout; i++) ra_free_mem(&a, m->fout[i].p, m->fout[i].bytes);
  ra_free_mem(&a, m->fin, sizeof *m->fin * (size_t)m->nfin);
  ra_free_mem(&a, m->fout, sizeof *m->fout * (size_t)m->nfout);
  m->fin = m->fout = NULL;
  m->nfin = m->nfout = 0;
  m->fwd_batch = 0;
}

static void model_free(ra_model *m) {
  fwd_free(m);
  mstate_free(&m->ms);
  RaAlloc a = m->ctx->alloc;
  ra_free_mem(&a, m, sizeof *m);
}

static uint64_t default_seed(ra_ctx *ctx, const char *model) {
  if (ctx->has_seed) return ctx->seed;
  for (int i = 0; ctx->prog && i < ctx->prog->ntrains; i++)
    if (!strcmp(ctx->prog->trains[i].model, model)) return ctx->prog->trains[i].seed;
  return 1;
}

ra_model *api_model(ra_ctx *ctx, const char *name) {
  for (ra_model *m = ctx->models; m; m = m->next)
    if (!strcmp(m->name, name)) return m;
  const AstItem *item = sema_find_model(ctx->prog, name);
  if (!item) {
    const char *cands[64];
    int n = 0;
    for (int i = 0; i < ctx->prog->nmodels && n < 64; i++) cands[n++] = ctx->prog->models[i]->name;
    const char *s = diag_suggest(name, cands, n);
    api_fail(ctx, RA_ENOTFOUND, "no model named '%s'%s%s%s", name, s ? "; did you mean '" : "",
             s ? s : "", s ? "'?" : "");
    return NULL;
  }
  api_compile_begin(ctx);
  Model *meta = lower_model(ctx->prog, item, 1);
  if (!meta) {
    api_compile_fail(ctx, name);
    return NULL;
  }
  ra_model *m = ra_calloc(&ctx->alloc, 1, sizeof *m);
  if (!m) {
    api_fail(ctx, RA_ENOMEM, "out of memory");
    return NULL;
  }
  m->ctx = ctx;
  m->item = item;
  m->name = item->name;
  m->meta = meta;
  if (mstate_init(&m->ms, ctx->alloc, meta, default_seed(ctx, name)) != 0) {
    ra_free_mem(&ctx->alloc, m, sizeof *m);
    api_fail(ctx, RA_ENOMEM, "out of memory for the parameters of '%s' (%lld floats)", name,
             (long long)meta->nweights);
    return NULL;
  }
  m->next = ctx->models;
  ctx->models = m;
  return m;
}

ra_model *ra_model_get(ra_ctx *ctx, const char *model_name) {
  if (!ctx) return NULL;
  if (!model_name) {
    api_fail(ctx, RA_EUSAGE, "ra_model_get: model_name is NULL");
    return NULL;
  }
  if (need_program(ctx, "ra_model_get")) return NULL;
  ra_model *m = api_model(ctx, model_name);
  if (m) api_ok(ctx);
  return m;
}

int ra_model_n_params(ra_model *m) { return m ? m->ms.nparams : -1; }
const char *ra_model_param_name(ra_model *m, int i) {
  if (!m || i < 0 || i >= m->ms.nparams) return NULL;
  return m->ms.params[i].path;
}
int ra_model_n_inputs(ra_model *m) { return m ? m->meta->ninputs : -1; }

static int count_outputs(const Model *meta) {
  int n = 0;
  for (int i = 0; i < meta->fwd->nout; i++) n += meta->fwd->outs[i].role == OUT_OUTPUT;
  return n;
}

static const IrOutput *nth_output(const IrFunc *f, int k) {
  for (int i = 0; i < f->nout; i++)
    if (f->outs[i].role == OUT_OUTPUT && k-- == 0) return &f->outs[i];
  return NULL;
}

int ra_model_n_outputs(ra_model *m) { return m ? count_outputs(m->meta) : -1; }
const char *ra_model_output_name(ra_model *m, int i) {
  if (!m) return NULL;
  const IrOutput *o = nth_output(m->meta->fwd, i);
  return o ? o->name : NULL;
}

/* ---- training ---- */

const TrainDecl *api_find_train(ra_ctx *ctx, const char *name) {
  Program *p = ctx->prog;
  if (p->ntrains == 0) {
    api_fail(ctx, RA_ENOTFOUND, "the spec has no train block");
    return NULL;
  }
  if (!name) return &p->trains[0];
  for (int i = 0; i < p->ntrains; i++) {
    const TrainDecl *t = &p->trains[i];
    char both[512];
    snprintf(both, sizeof both, "%s:%s", t->model, t->data);
    if (!strcmp(t->model, name) || !strcmp(both, name)) return t;
  }
  const char *cands[64];
  int n = 0;
  for (int i = 0; i < p->ntrains && n < 64; i++) cands[n++] = p->trains[i].model;
  const char *s = diag_suggest(name, cands, n);
  api_fail(ctx, RA_ENOTFOUND, "no train block for '%s'%s%s%s", name, s ? "; did you mean '" : "",
           s ? s : "", s ? "'?" : "");
  return NULL;
}

/* A copy of a train block with the context's overrides applied. */
int api_train_decl(ra_ctx *ctx, const char *name, TrainDecl *out) {
  const TrainDecl *t = api_find_train(ctx, name);
  if (!t) return ctx->code;
  *out = *t;
  for (int i = 0; i < ctx->nsets; i++) {
    char err[FILE_MSG_MAX];
    if (sema_train_set(ctx->prog, out, ctx->sets[i].key, ctx->sets[i].value, err, sizeof err))
      return api_fail(ctx, RA_EUSAGE, "--set %s=%s: %s", ctx->sets[i].key, ctx->sets[i].value, err);
  }
  if (ctx->has_rep_override) {
    out->has_repulsion_override = true;
    out->repulsion_override = ctx->rep_override;
  }
  return 0;
}

void api_run_options(ra_ctx *ctx, RunOptions *o) {
  memset(o, 0, sizeof *o);
  long nproc = sysconf(_SC_NPROCESSORS_ONLN);
  o->threads = ctx->threads > 0 ? ctx->threads : 0;
  o->default_threads = nproc > 0 ? (int)(nproc < 8 ? nproc : 8) : 1;
  o->pool = &ctx->pool;
  o->seed = ctx->seed;
  o->has_seed = ctx->has_seed;
  o->predict_tokens = ctx->predict_tokens > 0 ? ctx->predict_tokens : 200;
  o->predict_temperature = ctx->predict_temperature > 0 ? ctx->predict_temperature : 0.8;
  o->predict_top_k = ctx->predict_top_k;
  o->predict_greedy = ctx->predict_greedy;
  o->progress = ctx->progress;
  o->quiet = ctx->quiet;
  o->log_path = ctx->log_path;
  o->resume = ctx->resume;
  o->log = ctx->log;
  o->log_ud = ctx->log_ud;
  o->stop = ctx->stop;
  o->externs = ctx->externs;
  o->nexterns = ctx->nexterns;
  o->jit = ctx->use_jit ? ctx->jit : NULL;
  o->dist = ctx->dist;
  o->bucket_bytes = ctx->bucket_bytes;
  o->profile = ctx->bench_profile;
}

/* What every run-like call starts with: a loaded spec, the train block
 * (with the context's overrides), its model, its native functions, and the
 * checkpoint's weights when one is given.  NULL with the error set. */
ra_model *api_begin_run(ra_ctx *ctx, const char *fn, const char *train_name, const char *ckpt,
                        TrainDecl *t) {
  if (need_program(ctx, fn)) return NULL;
  if (api_train_decl(ctx, train_name, t)) return NULL;
  ra_model *m = api_model(ctx, t->model);
  if (!m || ffi_prepare(ctx)) return NULL;
  if (ckpt) {
    char err[FILE_MSG_MAX] = "";
    int rc = mstate_load(&m->ms, ckpt, false, err, sizeof err);
    if (rc) {
      api_fail(ctx, rc, "%s", err);
      return NULL;
    }
  }
  return m;
}

int ra_train(ra_ctx *ctx, const char *train_name,
             int (*on_step)(void *ud, int64_t step, double loss), void *ud) {
  if (!ctx) return RA_EUSAGE;
  api_strfree(ctx, ctx->last_save);
  ctx->last_save = NULL;
  if (api_dist(ctx)) return ctx->code;
  TrainDecl t;
  ra_model *m = api_begin_run(ctx, "ra_train", train_name, NULL, &t);
  if (api_agree(ctx, m ? 0 : ctx->code)) return ctx->code;
  fwd_free(m);
  if (!ctx->resume) {
    /* a fresh run: the schedule and the optimizer start over */
    mstate_free(&m->ms);
    if (mstate_init(&m->ms, ctx->alloc, m->meta, ctx->has_seed ? ctx->seed : t.seed))
      return api_fail(ctx, RA_ENOMEM, "out of memory for parameters");
  }
  RunOptions o;
  api_run_options(ctx, &o);
  o.on_step = on_step;
  o.step_ud = ud;
  char err[FILE_MSG_MAX] = "", saved[FILE_MSG_MAX] = "";
  o.saved = saved;
  o.saved_len = sizeof saved;
  api_compile_begin(ctx);
  int rc = train_run(ctx->prog, &t, &m->ms, &o, err, sizeof err);
  if (saved[0]) ctx->last_save = api_strdup(ctx, saved);
  if (saved[0] && !ctx->last_save && rc == 0)
    return api_fail(ctx, RA_ENOMEM, "out of memory keeping the checkpoint's path '%s'", saved);
  if (rc) {
    if (rc == RA_ESPEC && ctx->prog->arena->failed)
      return api_compile_fail(ctx, t.model);
    if (rc == RA_ESPEC && ctx->diags.nerrors)
      return api_fail(ctx, rc, "%s", diag_render(&ctx->diags, ctx->color));
    return api_fail(ctx, rc, "%s", err);
  }
  return api_ok(ctx);
}

/* ---- forward ---- */

static int fwd_prepare(ra_model *m, int64_t batch) {
  ra_ctx *ctx = m->ctx;
  if (m->fex && m->fwd_batch == batch) return 0;
  fwd_free(m);
  api_compile_begin(ctx);
  Model *lm = lower_model(ctx->prog, m->item, batch);
  if (!lm) return api_compile_fail(ctx, m->name);
  /* keep only the named outputs, so the loss and targets drop out */
  IrFunc view = *lm->fwd;
  IrOutput *outs = arena_alloc(ctx->prog->arena, sizeof *outs * (size_t)(view.nout + 1));
  if (!outs) return api_fail(ctx, RA_ENOMEM, "out of memory preparing '%s'", m->name);
  int k = 0;
  for (int i = 0; i < view.nout; i++)
    if (view.outs[i].role == OUT_OUTPUT) outs[k++] = view.outs[i];
  view.outs = outs;
  view.nout = view.outcap = k;
  IrFunc *f = pass_compile(ctx->prog->arena, &view, !ctx->prog->no_fuse);
  MemPlan *plan = f ? plan_memory_chains(ctx->prog->arena, f, !ctx->prog->no_chains) : NULL;
  if (!plan) return api_fail(ctx, RA_ENOMEM, "out of memory preparing '%s'", m->name);
  int nin = lm->ninputs + lm->ntargets;
  RunOptions o;
  api_run_options(ctx, &o);
  char why[512];
  if (sysmem_check(plan->arena_bytes, o.threads > 0 ? o.threads : o.default_threads,
                   "the forward pass's buffers", why, sizeof why) != 0)
    return api_fail(ctx, RA_ENOMEM, "%s", why);
  m->fex = exec_new(ctx->alloc, f, plan, m->ms.w, m->ms.offsets, nin);
  if (!m->fex) return api_fail(ctx, RA_ENOMEM, "out of memory: the forward pass needs %zu bytes", plan->arena_bytes);
  if (o.jit && exec_jit_attach(m->fex, o.jit, why, sizeof why) != 0) {
    exec_free(m->fex);
    m->fex = NULL;
    return api_fail(ctx, RA_ERUNTIME, "ra_forward: %s", why);
  }
  m->fin = ra_calloc(&ctx->alloc, (size_t)nin + 1, sizeof *m->fin);
  m->fout = ra_calloc(&ctx->alloc, (size_t)k + 1, sizeof *m->fout);
  if (!m->fin || !m->fout) {
    ra_free_mem(&ctx->alloc, m->fin, sizeof *m->fin * ((size_t)nin + 1));
    ra_free_mem(&ctx->alloc, m->fout, sizeof *m->fout * ((size_t)k + 1));
    m->fin = m->fout = NULL;
    return api_fail(ctx, RA_ENOMEM, "out of memory preparing '%s'", m->name);
  }
  m->nfin = nin + 1;
  m->nfout = k + 1;
  for (int i = 0; i < nin; i++) {
    const ModelVar *v = i < lm->ninputs ? &lm->inputs[i] : &lm->targets[i - lm->ninputs];
    m->fin[i].bytes = (size_t)batch * ir_bytes(&v->type);
    m->fin[i].p = ra_calloc(&ctx->alloc, 1, m->fin[i].bytes);
    if (!m->fin[i].p) {
      m->fin[i].bytes = 0;
      return api_fail(ctx, RA_ENOMEM, "out of memory");
    }
    m->fex->inputs[i] = m->fin[i].p;
  }
  m->ff = f;
  m->flm = lm;
  m->fwd_batch = batch;
  return 0;
}

static void shape_text(const ra_tensor *t, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "%s[", t->dtype == RA_F32 ? "f32" : t->dtype == RA_I32 ? "i32" : "?");
  for (int d = 0; d < t->ndim && d < 8 && k < n; d++)
    k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
  if (k < n) snprintf(buf + k, n - k, "]");
}

int ra_forward(ra_model *m, const ra_tensor *inputs, int n_inputs, ra_tensor *outputs,
               int n_outputs) {
  if (!m) return RA_EUSAGE;
  ra_ctx *ctx = m->ctx;
  const Model *meta = m->meta;
  if (n_inputs != meta->ninputs)
    return api_fail(ctx, RA_EUSAGE, "ra_forward: model '%s' takes %d inputs, got %d", m->name, meta->ninputs, n_inputs);
  int nout = count_outputs(meta);
  if (n_outputs < 0 || n_outputs > nout)
    return api_fail(ctx, RA_EUSAGE, "ra_forward: model '%s' has %d outputs, asked for %d", m->name, nout, n_outputs);
  if (nout == 0) return api_fail(ctx, RA_EUSAGE, "ra_forward: model '%s' has no `output`", m->name);
  if (!inputs || (n_outputs && !outputs)) return api_fail(ctx, RA_EUSAGE, "ra_forward: inputs or outputs is NULL");
  int64_t batch = -1;
  for (int i = 0; i < n_inputs; i++) {
    const ra_tensor *t = &inputs[i];
    const ModelVar *v = &meta->inputs[i];
    int want_dt = v->type.dtype == IR_F32 ? RA_F32 : RA_I32;
    bool okshape = t->data && t->dtype == want_dt && t->ndim == v->type.rank + 1 && t->ndim <= 8 && t->shape[0] > 0;
    for (int d = 0; okshape && d < v->type.rank; d++) okshape = t->shape[d + 1] == v->type.dim[d];
    if (okshape && batch >= 0 && t->shape[0] != batch) okshape = false;
    if (!okshape) {
      char got[128], want[128];
      shape_text(t, got, sizeof got);
      ir_type_str(&v->type, want, sizeof want);
      return api_fail(ctx, RA_ESHAPE, "ra_forward: input %d ('%s') is %s%s; expected [batch] + %s%s", i, v->name, got,
                      t->data ? "" : " with NULL data", want, batch >= 0 ? " with the same batch as input 0" : "");
    }
    batch = t->shape[0];
  }
  if (ffi_prepare(ctx)) return ctx->code;
  if (fwd_prepare(m, batch)) return ctx->code;
  for (int i = 0; i < n_inputs; i++) {
    memcpy(m->fin[i].p, inputs[i].data, m->fin[i].bytes);
    if (meta->inputs[i].classes > 0 || meta->inputs[i].type.dtype == IR_I32) {
      /* indices are range-checked by the kernels */
    }
  }
  KernelCtx kc;
  memset(&kc, 0, sizeof kc);
  RunOptions o;
  api_run_options(ctx, &o);
  kc.pool = pool_ensure(&ctx->pool, ctx->alloc, o.threads > 0 ? o.threads : o.default_threads);
  kc.threads = pool_size(kc.pool);
  kc.training = false;
  kc.externs = ctx->externs;
  kc.nexterns = ctx->nexterns;
  if (exec_run(m->fex, &kc)) return api_fail(ctx, RA_ERUNTIME, "ra_forward: %s", kc.err);
  for (int k = 0; k < n_outputs; k++) {
    const IrOutput *oo = nth_output(m->ff, k);
    const IrType *ty = &m->ff->nodes[oo->value].type;
    size_t bytes = ir_bytes(ty);
    ra_tensor *t = &outputs[k];
    if (!t->data) {
      FwdBuf *b = &m->fout[k];
      if (b->bytes != bytes) {
        ra_free_mem(&ctx->alloc, b->p, b->bytes);
        b->p = ra_malloc(&ctx->alloc, bytes);
        b->bytes = b->p ? bytes : 0;
        if (!b->p) return api_fail(ctx, RA_ENOMEM, "out of memory for outputs");
      }
      t->dtype = ty->dtype == IR_F32 ? RA_F32 : RA_I32;
      t->ndim = ty->rank;
      for (int d = 0; d < ty->rank; d++) t->shape[d] = ty->dim[d];
      memcpy(b->p, exec_ptr(m->fex, oo->value), bytes);
      t->data = b->p;
    } else {
      bool okshape = t->ndim == ty->rank && t->dtype == (ty->dtype == IR_F32 ? RA_F32 : RA_I32);
      for (int d = 0; okshape && d < ty->rank; d++) okshape = t->shape[d] == ty->dim[d];
      if (!okshape) {
        char got[128], want[128];
        shape_text(t, got, sizeof got);
        ir_type_str(ty, want, sizeof want);
        return api_fail(ctx, RA_ESHAPE, "ra_forward: output %d ('%s') buffer is %s; the output is %s", k, oo->name, got, want);
      }
      memcpy(t->data, exec_ptr(m->fex, oo->value), bytes);
    }
  }
  return api_ok(ctx);
}

/* ---- parameters and checkpoints ---- */

int ra_param(ra_model *m, const char *path, ra_tensor *out) {
  if (!m) return RA_EUSAGE;
  ra_ctx *ctx = m->ctx;
  if (!path || !out) return api_fail(ctx, RA_EUSAGE, "ra_param: path and out must not be NULL");
  for (int i = 0; i < m->ms.nparams; i++) {
    const ParamInfo *pi = &m->ms.params[i];
    if (strcmp(pi->path, path)) continue;
    out->dtype = RA_F32;
    out->ndim = pi->type.rank;
    for (int d = 0; d < 8; d++) out->shape[d] = d < pi->type.rank ? pi->type.dim[d] : 0;
    out->data = m->ms.w + pi->offset;
    return api_ok(ctx);
  }
  const char *cands[4096];
  int n = 0;
  for (int i = 0; i < m->ms.nparams && n < 4096; i++) cands[n++] = m->ms.params[i].path;
  const char *s = diag_suggest(path, cands, n);
  return api_fail(ctx, RA_ENOTFOUND, "model '%s' has no parameter '%s'%s%s%s", m->name, path,
                  s ? "; did you mean '" : "", s ? s : "", s ? "'?" : "");
}

int ra_save(ra_model *m, const char *path) {
  if (!m) return RA_EUSAGE;
  if (!path) return api_fail(m->ctx, RA_EUSAGE, "ra_save: path is NULL");
  char err[FILE_MSG_MAX];
  int rc = mstate_save(&m->ms, path, err, sizeof err);
  return rc ? api_fail(m->ctx, rc, "%s", err) : api_ok(m->ctx);
}

int ra_load(ra_model *m, const char *path) {
  if (!m) return RA_EUSAGE;
  if (!path) return api_fail(m->ctx, RA_EUSAGE, "ra_load: path is NULL");
  char err[FILE_MSG_MAX];
  int rc = mstate_load(&m->ms, path, false, err, sizeof err);
  return rc ? api_fail(m->ctx, rc, "%s", err) : api_ok(m->ctx);
}

/* ---- eval, bench ---- */

static int split_of(const char *split) {
  return !split || !strcmp(split, "test") ? SPLIT_TEST : !strcmp(split, "valid") ? SPLIT_VALID
         : !strcmp(split, "train") ? SPLIT_TRAIN : -1;
}

/* What an evaluation of a checkpoint needs first (ra_eval, ra_ablate_heads):
 * the split, the processes of a data-parallel run, the model loaded from
 * ckpt (every rank agreeing) and the run options; NULL with ctx's error. */
static ra_model *api_begin_eval(ra_ctx *ctx, const char *fn, const char *train_name,
                                const char *ckpt, const char *split, int *sp, TrainDecl *t,
                                RunOptions *o) {
  *sp = split_of(split);
  if (*sp < 0) {
    api_fail(ctx, RA_EUSAGE, "unknown split '%s' (train, valid or test)", split);
    return NULL;
  }
  if (api_dist(ctx)) return NULL;
  ra_model *m = api_begin_run(ctx, fn, train_name, ckpt, t);
  if (api_agree(ctx, m ? 0 : ctx->code)) return NULL;
  api_run_options(ctx, o);
  return m;
}

int ra_eval(ra_ctx *ctx, const char *train_name, const char *ckpt, const char *split,
            const char **summary) {
  if (!ctx) return RA_EUSAGE;
  int sp;
  TrainDecl t;
  RunOptions o;
  ra_model *m = api_begin_eval(ctx, "ra_eval", train_name, ckpt, split, &sp, &t, &o);
  if (!m) return ctx->code;
  char err[FILE_MSG_MAX] = "";
  EvalResult r;
  int rc = train_eval(ctx->prog, &t, &m->ms, &o, sp, &r, err, sizeof err);
  if (rc) return api_fail(ctx, rc, "%s", err);
  /* sized for every group's line, so none is cut (and for three %f numbers
   * of up to 320 characters each: a double's largest) */
  size_t cap = 1024;
  for (int g = 0; g < r.ngroups; g++) cap += 2 * strlen(m->meta->groups[g].path) + 96;
  char *buf = ra_malloc(&ctx->alloc, cap);
  if (!buf) return api_fail(ctx, RA_ENOMEM, "ra_eval: out of memory for the summary");
  size_t k = (size_t)snprintf(buf, cap, "%s: %lld examples  loss %.4f", split ? split : "test",
                              (long long)r.examples, r.loss);
  if (r.accuracy >= 0) k += (size_t)snprintf(buf + k, cap - k, "  accuracy %.4f", r.accuracy);
  k += (size_t)snprintf(buf + k, cap - k, "  perplexity %.3f", r.perplexity);
  for (int g = 0; g < r.ngroups && k < cap; g++)
    k += (size_t)snprintf(buf + k, cap - k, "\n  head_diversity %s %.4f\n  effective_heads %s %.4f",
                          m->meta->groups[g].path, r.diversity[g], m->meta->groups[g].path,
                          r.effective[g]);
  const char *text = api_set_text(ctx, buf);
  ra_free_mem(&ctx->alloc, buf, cap);
  if (!ctx->text) return api_fail(ctx, RA_ENOMEM, "ra_eval: out of memory for the summary");
  if (summary) *summary = text;
  return api_ok(ctx);
}

int ra_ablate_heads(ra_ctx *ctx, const char *train_name, const char *ckpt, const char *split,
                    const ra_ablation **out) {
  if (!ctx) return RA_EUSAGE;
  if (out) *out = NULL;
  ablation_drop(ctx);
  if (!ckpt) return api_fail(ctx, RA_EUSAGE, "ra_ablate_heads: ckpt is NULL");
  int sp;
  TrainDecl t;
  RunOptions o;
  ra_model *m = api_begin_eval(ctx, "ra_ablate_heads", train_name, ckpt, split, &sp, &t, &o);
  if (!m) return ctx->code;
  char err[FILE_MSG_MAX] = "";
  Ablation *a = &ctx->ablation;
  int rc = train_ablate(ctx->prog, &t, &m->ms, &o, sp, a, err, sizeof err);
  if (rc) return api_fail(ctx, rc, "%s", err);
  ctx->ablation_layers = ra_calloc(&ctx->alloc, (size_t)a->nheads, sizeof *ctx->ablation_layers);
  if (!ctx->ablation_layers) {
    ablation_drop(ctx);
    return api_fail(ctx, RA_ENOMEM, "ra_ablate_heads: out of memory for the result");
  }
  for (int i = 0; i < a->nheads; i++) ctx->ablation_layers[i] = m->meta->groups[a->group[i]].path;
  ra_ablation *v = &ctx->ablation_view;
  v->metric = ablation_metric_name(a);
  v->higher_is_better = a->metric == MET_ACCURACY;
  v->base = ablation_value(a, &a->base);
  v->n_heads = a->nheads;
  v->layer = ctx->ablation_layers;
  v->head = a->head;
  v->single = a->single;
  v->order = a->order;
  v->greedy = a->greedy;
  if (out) *out = v;
  return api_ok(ctx);
}

int ra_bench(ra_ctx *ctx, const char *train_name, int64_t steps, const char **report) {
  if (!ctx) return RA_EUSAGE;
  if (steps < 1) return api_fail(ctx, RA_EUSAGE, "ra_bench: steps must be at least 1");
  if (api_dist(ctx)) return ctx->code;
  TrainDecl t;
  ra_model *m = api_begin_run(ctx, "ra_bench", train_name, NULL, &t);
  if (api_agree(ctx, m ? 0 : ctx->code)) return ctx->code;
  RunOptions o;
  api_run_options(ctx, &o);
  char err[FILE_MSG_MAX] = "", rep[16384] = "";
  int rc = train_bench(ctx->prog, &t, &m->ms, &o, steps, rep, sizeof rep, err, sizeof err);
  if (rc) return api_fail(ctx, rc, "%s", err);
  const char *text = api_set_text(ctx, rep);
  if (!ctx->text) return api_fail(ctx, RA_ENOMEM, "ra_bench: out of memory for the report");
  if (report) *report = text;
  return api_ok(ctx);
}

/* test_faults.c - fault injection: a counting allocator, given to
 * ra_new_with_alloc, fails the k-th allocation; for k = 1, 2, ... until a
 * run completes without reaching k, every run must end in an error code
 * (RA_ENOMEM or another clean error with a message), never crash, and leave
 * no byte allocated after ra_free.
 *
 *   compile phase  load + check of a spec with attention and a stdlib block,
 *                  `repeat`, then lowering, autodiff, passes and the memory
 *                  plan (ra_dump "plan"), then a spec with errors (the
 *                  diagnostics must be right or say out of memory): every k.
 *   training phase host functions registered, a 2-step training run of a
 *                  tiny synthetic model (attention with SVGD repulsion, a
 *                  host extern on the loss path), then ra_forward, ra_save
 *                  and ra_load: every k up to RA_FAULTS_DENSE (2000), then
 *                  every RA_FAULTS_STRIDE-th (7).  Compile-time data lives in
 *                  64 KiB arena chunks, so the whole sequence makes about a
 *                  hundred allocation calls today and every one is failed
 *                  once; the stride only matters for larger models.
 *
 * Allocations made outside the context's allocator are not covered: jansson
 * (checkpoint headers) and libffi/the dynamic loader use malloc. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <execinfo.h>

#include "ra.h"
#include "testutil.h"

typedef struct FaultAlloc {
  long count;      /* allocations so far (not frees) */
  long fail_at;    /* fail this one (1-based); 0 never */
  bool hit;        /* the failure was injected */
  size_t live;     /* bytes allocated and not yet freed */
  long nlive;      /* blocks allocated and not yet freed */
  long bad_osize;  /* frees or reallocs whose osize disagrees with the block */
} FaultAlloc;

/* Each block carries its size in a 16-byte header, so live bytes are exact
 * whatever osize the caller passes (and a wrong osize is counted). */
#define HDR 16

/* RA_FAULTS_TRACE=1: where each live block was allocated, to find leaks. */
typedef struct TraceRec {
  void *p;
  void *bt[8];
  int n;
} TraceRec;
static TraceRec traces[8192];

static void trace_alloc(void *old, void *p) {
  for (int i = 0; i < 8192; i++)
    if (traces[i].p == (old ? old : NULL) && (old || !traces[i].p)) {
      traces[i].p = p;
      traces[i].n = backtrace(traces[i].bt, 8);
      return;
    }
}

static void trace_free(void *p) {
  for (int i = 0; i < 8192; i++)
    if (traces[i].p == p) traces[i].p = NULL;
}

static void trace_report(void) {
  for (int i = 0; i < 8192; i++)
    if (traces[i].p) {
      fprintf(stderr, "leaked block allocated at:\n");
      backtrace_symbols_fd(traces[i].bt, traces[i].n, 2);
    }
}

static void *fault_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  FaultAlloc *a = ud;
  char *base = ptr ? (char *)ptr - HDR : NULL;
  size_t old = 0;
  if (base) {
    memcpy(&old, base, sizeof old);
    if (osize != old && !(osize == 0 && old == 1)) {
      a->bad_osize++;
      if (getenv("RA_FAULTS_TRACE")) { /* who frees with the wrong size */
        void *bt[8];
        fprintf(stderr, "wrong old size %zu for a block of %zu bytes:\n", osize, old);
        backtrace_symbols_fd(bt, backtrace(bt, 8), 2);
      }
    }
  }
  if (nsize == 0) {
    if (base) {
      a->live -= old;
      a->nlive--;
      if (getenv("RA_FAULTS_TRACE")) trace_free(base);
      free(base);
    }
    return NULL;
  }
  if (++a->count == a->fail_at) {
    a->hit = true;
    if (getenv("RA_FAULTS_TRACE")) { /* where the injected failure lands */
      void *bt[8];
      fprintf(stderr, "failing allocation %ld of %zu bytes:\n", a->count, nsize);
      backtrace_symbols_fd(bt, backtrace(bt, 8), 2);
    }
    return NULL;
  }
  char *nb = realloc(base, nsize + HDR);
  if (!nb) return NULL;
  memcpy(nb, &nsize, sizeof nsize);
  a->live = a->live - old + nsize;
  if (!base) a->nlive++;
  if (getenv("RA_FAULTS_TRACE")) trace_alloc(base, nb);
  return nb + HDR;
}

static const char *compile_spec =
    "use \"std/encoder\"\n"
    "const d = 16\n"
    "model enc {\n"
    "  input  seq : int[8]\n"
    "  target out : class(8)[8]\n"
    "  x = embed(seq, vocab: 8, dim: d) + position(8, dim: d)\n"
    "  repeat 2 {\n"
    "    a = attention(layernorm(x)) {\n"
    "      heads 2\n"
    "      repulsion svgd { alpha 0.1 }\n"
    "    }\n"
    "    x = x + a\n"
    "  }\n"
    "  x = encoder(x, heads: 2, hidden: 2 * d)\n"
    "  logits = linear(layernorm(x), out: 8)\n"
    "  loss cross_entropy(logits, out)\n"
    "  output probs = softmax(logits)\n"
    "}\n";

static const char *bad_spec =
    "model m {\n"
    "  input seq : int[6]\n"
    "  y = atention(embed(seq, vocab: 8, dim: 8))\n"
    "  z = nosuch + 1\n"
    "}\n";

static const char *train_spec =
    "extern fn hswish(x: f32) -> f32 from host grad hswish_d\n"
    "extern fn hswish_d(x: f32) -> f32 from host\n"
    "data syn = synthetic(task: reverse, length: 4, vocab: 6, examples: 32) {\n"
    "  split train 0.75 valid 0.125 test 0.125\n"
    "  seed 3\n"
    "}\n"
    "model tiny {\n"
    "  input  seq : int[4]\n"
    "  target out : class(6)[4]\n"
    "  x = embed(seq, vocab: 6, dim: 8) + position(4, dim: 8)\n"
    "  a = attention(layernorm(x)) {\n"
    "    heads 2\n"
    "    repulsion svgd { alpha 0.1 }\n"
    "  }\n"
    "  logits = linear(hswish(x + a), out: 6)\n"
    "  loss cross_entropy(logits, out)\n"
    "  output probs = softmax(logits)\n"
    "}\n"
    "train tiny on syn {\n"
    "  optimizer adam { lr 1e-2 }\n"
    "  batch 4\n"
    "  steps 2\n"
    "  seed 1\n"
    "}\n";

/* One call's outcome: 0, or a clean error: a known code and a message
 * that says memory ran out (RA_ENOMEM, or a located spec error "out of
 * memory while parsing ..."), and only once the failure was injected. */
static void check_rc(ra_ctx *c, const FaultAlloc *fa, int rc, const char *what, long k, int *nerr) {
  if (rc == 0) return;
  (*nerr)++;
  cr_assert(fa->hit, "k=%ld: %s failed (%d) before the injected failure: %s", k, what, rc, ra_error(c));
  cr_assert(rc >= RA_ESPEC && rc <= RA_ERUNTIME, "k=%ld: %s returned %d", k, what, rc);
  cr_assert_eq(ra_errcode(c), rc, "k=%ld: %s", k, what);
  const char *e = ra_error(c);
  cr_assert(strstr(e, "out of memory") != NULL || (rc == RA_ENOMEM && *e),
            "k=%ld: %s failed (%d) with an unclear message: '%s'", k, what, rc, e);
}

/* The compile phase with the k-th allocation failing; true if k was hit. */
static bool run_compile(long k, FaultAlloc *fa, int *nerr) {
  memset(fa, 0, sizeof *fa);
  fa->fail_at = k;
  ra_ctx *c = ra_new_with_alloc(fault_alloc, fa);
  if (!c) {
    cr_assert(fa->hit, "k=%ld: ra_new_with_alloc failed without an allocation failure", k);
    (*nerr)++;
    return true;
  }
  int rc = ra_set_option(c, "stdlib", "stdlib");
  check_rc(c, fa, rc, "ra_set_option", k, nerr);
  if (rc == 0) {
    rc = ra_load_string(c, "faults.ra", compile_spec);
    check_rc(c, fa, rc, "ra_load_string", k, nerr);
  }
  if (rc == 0) {
    ra_model *m = ra_model_get(c, "enc");
    if (!m) {
      cr_assert_neq(ra_errcode(c), 0, "k=%ld: ra_model_get returned NULL without an error", k);
      check_rc(c, fa, ra_errcode(c), "ra_model_get", k, nerr);
    }
    const char *text = NULL;
    rc = ra_dump(c, "enc", "plan", &text);
    check_rc(c, fa, rc, "ra_dump plan", k, nerr);
    if (rc == 0) cr_assert(text && strstr(text, "peak") != NULL, "k=%ld: plan dump: %s", k, text ? text : "(null)");
  }
  /* a spec with errors: located diagnostics, or out of memory */
  rc = ra_load_string(c, "bad.ra", bad_spec);
  if (rc != RA_ESPEC || !strstr(ra_error(c), "bad.ra:3:7: error: unknown function 'atention'"))
    check_rc(c, fa, rc ? rc : -1, "ra_load_string (bad spec)", k, nerr);
  ra_free(c);
  if (fa->live && getenv("RA_FAULTS_TRACE")) trace_report();
  cr_assert_eq(fa->live, 0, "k=%ld: %zu bytes in %ld blocks left after ra_free", k, fa->live, fa->nlive);
  cr_assert_eq(fa->nlive, 0, "k=%ld: %ld blocks left after ra_free", k, fa->nlive);
  cr_assert_eq(fa->bad_osize, 0, "k=%ld: %ld frees or reallocs with a wrong old size", k, fa->bad_osize);
  return fa->hit;
}

static char ckpt_path[64];

static float hswish(float x) { return x / (1.0f + expf(-x)); }
static float hswish_d(float x) {
  float s = 1.0f / (1.0f + expf(-x));
  return s + x * s * (1.0f - s);
}

/* The training phase (with the JIT when train_jit is set); true if k was
 * hit. */
static bool train_jit;

static bool run_train(long k, FaultAlloc *fa, int *nerr) {
  memset(fa, 0, sizeof *fa);
  fa->fail_at = k;
  ra_ctx *c = ra_new_with_alloc(fault_alloc, fa);
  if (!c) {
    (*nerr)++;
    return true;
  }
  int rc = 0;
  const char *opts[][2] = {{"quiet", "1"}, {"threads", "1"}, {"progress", "0"}, {"jit", "1"}};
  for (int i = 0; i < (train_jit ? 4 : 3) && rc == 0; i++) {
    rc = ra_set_option(c, opts[i][0], opts[i][1]);
    check_rc(c, fa, rc, "ra_set_option", k, nerr);
  }
  if (rc == 0) {
    rc = ra_register_fn(c, "hswish", "f32(f32)", (void (*)(void))hswish);
    check_rc(c, fa, rc, "ra_register_fn", k, nerr);
  }
  if (rc == 0) {
    rc = ra_register_fn(c, "hswish_d", "f32(f32)", (void (*)(void))hswish_d);
    check_rc(c, fa, rc, "ra_register_fn", k, nerr);
  }
  if (rc == 0) {
    rc = ra_load_string(c, "tiny.ra", train_spec);
    check_rc(c, fa, rc, "ra_load_string", k, nerr);
  }
  if (rc == 0) {
    rc = ra_train(c, NULL, NULL, NULL);
    check_rc(c, fa, rc, "ra_train", k, nerr);
  }
  ra_model *m = NULL;
  if (rc == 0) {
    m = ra_model_get(c, "tiny");
    if (!m) {
      cr_assert_neq(ra_errcode(c), 0, "k=%ld: ra_model_get returned NULL without an error", k);
      check_rc(c, fa, ra_errcode(c), "ra_model_get", k, nerr);
    }
  }
  if (m) {
    int32_t tok[2 * 4] = {1, 2, 3, 4, 5, 0, 1, 2};
    ra_tensor in = {RA_I32, 2, {2, 4}, tok}, out = {0};
    rc = ra_forward(m, &in, 1, &out, 1);
    check_rc(c, fa, rc, "ra_forward", k, nerr);
    if (rc == 0) {
      cr_assert_eq(out.shape[0], 2);
      const float *p = out.data;
      double s = 0;
      for (int i = 0; i < 6; i++) s += p[i];
      cr_assert_float_eq(s, 1.0, 1e-4, "k=%ld: softmax row sums to %g", k, s);
    }
    if (rc == 0) {
      rc = ra_save(m, ckpt_path);
      check_rc(c, fa, rc, "ra_save", k, nerr);
    }
    if (rc == 0) {
      rc = ra_load(m, ckpt_path);
      check_rc(c, fa, rc, "ra_load", k, nerr);
    }
  }
  ra_free(c);
  if (fa->live && getenv("RA_FAULTS_TRACE")) trace_report();
  cr_assert_eq(fa->live, 0, "k=%ld: %zu bytes in %ld blocks left after ra_free", k, fa->live, fa->nlive);
  cr_assert_eq(fa->nlive, 0, "k=%ld: %ld blocks left after ra_free", k, fa->nlive);
  cr_assert_eq(fa->bad_osize, 0, "k=%ld: %ld frees or reallocs with a wrong old size", k, fa->bad_osize);
  return fa->hit;
}

static long env_long(const char *name, long dflt) {
  const char *s = getenv(name);
  return s && *s ? atol(s) : dflt;
}

Test(faults, compile_phase_every_allocation, .timeout = 120) {
  FaultAlloc fa;
  int nerr = 0;
  long k = env_long("RA_FAULTS_FROM", 1), runs = 0, absorbed = 0;
  for (;; k++, runs++) {
    int before = nerr;
    if (!run_compile(k, &fa, &nerr)) break;
    if (nerr == before) absorbed++;
    if (nerr == before && getenv("RA_FAULTS_TRACE")) fprintf(stderr, "absorbed: k=%ld\n", k);
    cr_assert_lt(k, 1000000, "no end to the allocations");
  }
  cr_assert_gt(runs, 20, "the compile phase allocates (only %ld runs)", runs);
  cr_log_info("compile phase: %ld allocations, each failed once (%ld absorbed)\n", runs, absorbed);
}

static void training_phase(void) {
  snprintf(ckpt_path, sizeof ckpt_path, "/tmp/rac_faults_%ld.safetensors", (long)getpid());
  FaultAlloc fa;
  int nerr = 0;
  /* how many allocations the whole sequence makes, and where training starts */
  cr_assert(!run_train(0, &fa, &nerr), "the clean run failed");
  cr_assert_eq(nerr, 0);
  long total = fa.count;
  cr_assert_gt(total, 50);
  long stride = env_long("RA_FAULTS_STRIDE", 7);
  long dense = env_long("RA_FAULTS_DENSE", 2000); /* every k up to here, then every stride-th */
  if (stride < 1) stride = 1;
  long runs = 0;
  for (long k = env_long("RA_FAULTS_FROM", 1);; k += k < dense ? 1 : stride) {
    runs++;
    if (!run_train(k, &fa, &nerr)) break;
    cr_assert_lt(k, total + stride + 1, "k=%ld: more allocations than the clean run", k);
  }
  cr_log_info("training phase: %ld allocations, %ld runs (every k up to %ld, then stride %ld)\n",
              total, runs, dense, stride);
  unlink(ckpt_path);
}

Test(faults, training_phase, .timeout = 240) { training_phase(); }

/* The same with option jit: the Jit, its caches and the compiled functions
 * take their memory from the context's allocator too (LLVM's own is not
 * covered). */
Test(faults, training_phase_with_jit, .timeout = 600) {
  ra_ctx *c = ra_new();
  int rc = ra_set_option(c, "jit", "1");
  ra_free(c);
  if (rc == RA_EUSAGE) cr_skip_test("this build has no LLVM JIT");
  cr_assert_eq(rc, RA_OK);
  train_jit = true;
  training_phase();
}

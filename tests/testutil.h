/* testutil.h - small helpers shared by the Criterion suites.
 *
 * Tests run from the repository root (tests/run.sh cds there).  Golden files
 * are compared byte for byte; RA_UPDATE_GOLDEN=1 rewrites them instead (then
 * review the diff before committing).
 */
#ifndef RA_TESTUTIL_H
#define RA_TESTUTIL_H

#include <criterion/criterion.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads a whole file (NUL-terminated, malloc'd) or NULL. */
/* The smallest whole spec: a copy task, one attention layer of two heads,
 * three steps.  Suites that need a model to train, save or misuse share it. */
#define TU_TINY_SPEC \
    "data syn = synthetic(task: copy, length: 6, vocab: 8, examples: 64) {\n" \
    "  split train 0.75 valid 0.125 test 0.125\n" \
    "  seed 3\n" \
    "}\n" \
    "model tiny {\n" \
    "  input  seq : int[6]\n" \
    "  target out : class(8)[6]\n" \
    "  x = embed(seq, vocab: 8, dim: 8) + position(6, dim: 8)\n" \
    "  a = attention(x) { heads 2 }\n" \
    "  logits = linear(x + a, out: 8)\n" \
    "  loss cross_entropy(logits, out)\n" \
    "  output probs = softmax(logits)\n" \
    "}\n" \
    "train tiny on syn {\n" \
    "  optimizer adam { lr 1e-2 }\n" \
    "  batch 8\n" \
    "  steps 3\n" \
    "  seed 1\n" \
    "}\n"

static inline char *tu_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (!buf) { fclose(f); return NULL; }
  size_t got = fread(buf, 1, (size_t)n, f);
  fclose(f);
  buf[got] = 0;
  if (len) *len = got;
  return buf;
}

static inline int tu_write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  fputs(text, f);
  return fclose(f);
}

/* A path for a test's file in a folder of this process's own
 * (/tmp/ra-test-PID/NAME): suites of several checkouts may run at once on
 * one machine, so fixed names in /tmp would collide.  The string stays
 * valid for the next 63 calls. */
static inline const char *tu_tmp(const char *name) {
  static char ring[64][512];
  static int next;
  char *p = ring[next++ % 64];
  snprintf(p, sizeof ring[0], "/tmp/ra-test-%ld", (long)getpid());
  mkdir(p, 0700);
  snprintf(p, sizeof ring[0], "/tmp/ra-test-%ld/%s", (long)getpid(), name);
  return p;
}

/* ---- running the built rac ------------------------------------------------ */

/* The rac binary beside the suite's folder ($B/tests/x -> $B/rac). */
static inline const char *tu_rac(void) {
  static char path[4096];
  if (!path[0]) {
    char exe[4000];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    cr_assert(n > 0, "readlink /proc/self/exe");
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    cr_assert(slash);
    *slash = 0;
    slash = strrchr(exe, '/');
    cr_assert(slash);
    *slash = 0;
    snprintf(path, sizeof path, "%s/rac", exe);
  }
  return path;
}

/* The output of a tu_sh call: exit status (128+N for signal N, 124 on the
 * time limit) and what it printed, malloc'd and NUL-terminated. */
typedef struct TuRun {
  int status;
  char *out, *err;
} TuRun;

static inline void tu_run_free(TuRun *r) {
  free(r->out);
  free(r->err);
  r->out = r->err = NULL;
}

/* Runs a shell command line under `timeout` (seconds), with "$RAC" set to the
 * built rac; captures stdout and stderr. */
static inline TuRun tu_sh(int seconds, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline TuRun tu_sh(int seconds, const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  char dir[] = "/tmp/ra-sh-XXXXXX";
  cr_assert(mkdtemp(dir), "mkdtemp");
  char script[64], outp[64], errp[64], full[16384];
  snprintf(script, sizeof script, "%s/cmd.sh", dir);
  snprintf(outp, sizeof outp, "%s/out", dir);
  snprintf(errp, sizeof errp, "%s/err", dir);
  FILE *f = fopen(script, "w");
  cr_assert(f);
  fprintf(f, "RAC='%s'\n%s\n", tu_rac(), cmd);
  fclose(f);
  snprintf(full, sizeof full, "timeout -k 5 %d bash %s </dev/null >%s 2>%s", seconds, script, outp,
           errp);
  int st = system(full);
  TuRun r = {0};
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = tu_read_file(outp, NULL);
  r.err = tu_read_file(errp, NULL);
  if (!r.out) r.out = calloc(1, 1);
  if (!r.err) r.err = calloc(1, 1);
  snprintf(full, sizeof full, "rm -rf %s", dir);
  (void)!system(full);
  return r;
}

/* Compares text with the golden file (or rewrites it). */
static inline void tu_golden(const char *path, const char *text) {
  const char *upd = getenv("RA_UPDATE_GOLDEN");
  if (upd && *upd == '1') {
    cr_assert(tu_write_file(path, text) == 0, "cannot write %s", path);
    return;
  }
  char *want = tu_read_file(path, NULL);
  cr_assert(want != NULL, "missing golden file %s (run with RA_UPDATE_GOLDEN=1)", path);
  if (strcmp(want, text) != 0) {
    cr_log_error("golden mismatch for %s\n--- expected\n%s\n--- got\n%s", path, want, text);
    free(want);
    cr_assert_fail("golden mismatch: %s", path);
  }
  free(want);
}

/* |a - b| <= atol + rtol |b| for every element; reports the worst index. */
static inline void tu_allclose(const float *a, const float *b, long n, double rtol, double atol,
                               const char *what) {
  long worst = -1;
  double wd = 0;
  for (long i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    double tol = atol + rtol * fabs((double)b[i]);
    if (!(d <= tol) && (worst < 0 || d > wd)) { worst = i; wd = d; }
  }
  cr_assert(worst < 0, "%s: element %ld differs: got %.9g want %.9g", what, worst,
            worst >= 0 ? a[worst] : 0.0, worst >= 0 ? b[worst] : 0.0);
}

/* ---- numeric golden files: '#' comments, then records "name count" and
 * that many numbers (written by tests/gen_golden_*.py) ---- */
typedef struct GoldRec {
  char name[32];
  long n;
  double *v;
} GoldRec;

typedef struct Gold {
  GoldRec rec[32];
  int n;
} Gold;

static inline void tu_gold_load(Gold *g, const char *dir, const char *file) {
  char path[256];
  snprintf(path, sizeof path, "%s%s.txt", dir, file);
  FILE *f = fopen(path, "r");
  cr_assert(f != NULL, "cannot open %s", path);
  memset(g, 0, sizeof *g);
  char name[32];
  while (fscanf(f, " %31s", name) == 1) {
    if (name[0] == '#') {
      int c;
      while ((c = fgetc(f)) != EOF && c != '\n') {}
      continue;
    }
    cr_assert(g->n < 32, "%s: too many records", path);
    GoldRec *r = &g->rec[g->n++];
    snprintf(r->name, sizeof r->name, "%s", name);
    cr_assert(fscanf(f, "%ld", &r->n) == 1 && r->n > 0, "%s: bad count for %s", path, name);
    r->v = malloc((size_t)r->n * sizeof *r->v);
    cr_assert(r->v != NULL);
    for (long i = 0; i < r->n; i++)
      cr_assert(fscanf(f, "%lf", &r->v[i]) == 1, "%s: %s: short record", path, name);
  }
  fclose(f);
}

static inline void tu_gold_free(Gold *g) {
  for (int i = 0; i < g->n; i++) free(g->rec[i].v);
  g->n = 0;
}

static inline const GoldRec *tu_gold_find(const Gold *g, const char *name) {
  for (int i = 0; i < g->n; i++)
    if (strcmp(g->rec[i].name, name) == 0) return &g->rec[i];
  return NULL;
}

/* The values of a record (n < 0: any count); a missing record fails. */
static inline const double *tu_gold_get(const Gold *g, const char *name, long n) {
  const GoldRec *r = tu_gold_find(g, name);
  cr_assert(r != NULL, "golden record %s missing", name);
  cr_assert(n < 0 || r->n == n, "golden record %s: %ld values, want %ld", name, r->n, n);
  return r->v;
}

#endif

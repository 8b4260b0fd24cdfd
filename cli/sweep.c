/* sweep.c - rac sweep (sweep.h, docs/sweep.md).
 *
 * The axes' product is a list of runs in a fixed order (the axes in the
 * order given, repulsion first, seeds innermost).  Each run is a child
 * process: rac itself (/proc/self/exe) with `run FILE --quiet --set log=...
 * --set save=... --seed ... --repulsion ... --set ...`, its output in
 * DIR/runs/NAME.out.  A run that exits 0 gets its result file
 * DIR/runs/NAME.json (written to a temporary name, then renamed), which is
 * what marks it finished: the same command again skips it.  The tables and
 * plots are made from the result files and the runs' logs alone. */
#define _GNU_SOURCE 1
#include "sweep.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jsonl.h"
#include "plot.h"
#include "ra.h"
#include "stats.h"
#include "stdlib_dir.h"
#include "svg.h"

/* The one piece of writable state: the last SIGINT/SIGTERM and how many. */
static volatile sig_atomic_t sweep_signal = 0, sweep_nsignals = 0;

static void on_signal(int sig) {
  sweep_signal = sig;
  sweep_nsignals++;
}

typedef struct Axis {
  char *key;       /* "repulsion" or a --set key */
  int is_set;      /* 1: --set KEY, 0: --repulsion */
  char **vals;
  size_t n;
  int numeric;     /* every value a finite number */
  double *num;
} Axis;

typedef struct Run {
  char *name;
  size_t *idx;     /* value index per axis */
  long long seed;  /* -1: no --seeds */
  size_t arm;
  int finished, failed, running;
  pid_t pid;
  double t0;
  json_t *result;  /* the result object once finished */
} Run;

typedef struct Sweep {
  const char *file, *train, *out, *baseline;
  Axis *axes;
  size_t naxes;
  long long *seeds;
  size_t nseeds;
  int jobs, threads, allow_extern;
  Run *runs;
  size_t nruns, narms;
  char *runsdir;
} Sweep;

static const char sweep_help[] =
    "usage: rac sweep FILE --out DIR [options]\n"
    "\n"
    "Trains FILE over every combination of the axes, N runs at a time, each a child\n"
    "`rac run` logged to DIR/runs/NAME.jsonl; then DIR/sweep.jsonl, DIR/sweep.md\n"
    "(means, 95 % CIs, paired t-tests against the baseline) and SVG plots.  Runs\n"
    "finished before are skipped: the same command resumes a sweep.\n"
    "\n"
    "  --repulsion K1,K2,...  an axis of repulsion kinds (passed to rac run --repulsion)\n"
    "  --seeds A..B | A,B,... the seeds\n"
    "  --set KEY=V1,V2,...    an axis of a train setting (repeatable)\n"
    "  --train NAME           the train block\n"
    "  --baseline VALUE       the baseline value of the first axis (default: its first)\n"
    "  --jobs N               runs at a time (default: cores / threads per run)\n"
    "  --threads T            threads per run (default 1 when jobs > 1)\n"
    "  --allow-extern         passed to every run\n"
    "\n"
    "See docs/sweep.md.\n";

static int serr(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int serr(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("rac sweep: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return code;
}

static int susage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int susage(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("rac sweep: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs("\nusage: rac sweep FILE --out DIR [--train NAME] [--repulsion K1,K2,...]\n"
        "       [--seeds A..B | --seeds A,B,...] [--set KEY=V1,V2,...]... [--baseline VALUE]\n"
        "       [--jobs N] [--threads T] [--allow-extern]\n",
        stderr);
  va_end(ap);
  return 2;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) s = NULL;
  va_end(ap);
  if (!s) {
    fputs("rac sweep: out of memory\n", stderr);
    fflush(stderr);
    _exit(1);
  }
  return s;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void axes_free(Sweep *s) {
  for (size_t a = 0; a < s->naxes; a++) {
    free(s->axes[a].key);
    for (size_t i = 0; i < s->axes[a].n; i++) free(s->axes[a].vals[i]);
    free(s->axes[a].vals);
    free(s->axes[a].num);
  }
  free(s->axes);
  free(s->seeds);
  for (size_t r = 0; r < s->nruns; r++) {
    free(s->runs[r].name);
    free(s->runs[r].idx);
    if (s->runs[r].result) json_decref(s->runs[r].result);
  }
  free(s->runs);
  free(s->runsdir);
}

/* Splits "v1,v2,..." into an axis; an empty item or a repeated value is a
 * usage error naming the option. */
static int axis_parse(Axis *ax, const char *opt, const char *list) {
  size_t cap = 1;
  for (const char *p = list; *p; p++) cap += *p == ',';
  ax->vals = calloc(cap, sizeof *ax->vals);
  ax->num = calloc(cap, sizeof *ax->num);
  if (!ax->vals || !ax->num) return serr(1, "out of memory");
  if (!*list) return susage("%s: no values (give a comma-separated list)", opt);
  ax->numeric = 1;
  const char *p = list;
  for (;;) {
    size_t len = strcspn(p, ",");
    if (len == 0) return susage("%s: an empty value in '%s'", opt, list);
    char *v = strndup(p, len);
    if (!v) return serr(1, "out of memory");
    for (size_t i = 0; i < ax->n; i++)
      if (!strcmp(ax->vals[i], v)) {
        int rc = susage("%s: the value '%s' is given twice", opt, v);
        free(v);
        return rc;
      }
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(d)) ax->numeric = 0;
    ax->num[ax->n] = d;
    ax->vals[ax->n++] = v;
    if (!p[len]) break;
    p += len + 1;
  }
  return 0;
}

static int parse_ll(const char *s, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < 0) return -1;
  *out = v;
  return 0;
}

/* --seeds A..B or A,B,C (non-negative integers, at most 100000). */
static int seeds_parse(Sweep *s, const char *spec) {
  const char *dots = strstr(spec, "..");
  if (!*spec) return susage("--seeds: no values (write A..B or A,B,...)");
  if (dots) {
    char *a = strndup(spec, (size_t)(dots - spec));
    if (!a) return serr(1, "out of memory");
    long long lo, hi;
    int bad = parse_ll(a, &lo) || parse_ll(dots + 2, &hi);
    free(a);
    if (bad) return susage("--seeds %s: expected A..B with non-negative integers A <= B", spec);
    if (lo > hi)
      return susage("--seeds %s: the range is empty (%lld > %lld); write %lld..%lld", spec, lo, hi,
                    hi, lo);
    if (hi - lo >= 100000) return susage("--seeds %s: more than 100000 seeds", spec);
    s->nseeds = (size_t)(hi - lo + 1);
    s->seeds = calloc(s->nseeds, sizeof *s->seeds);
    if (!s->seeds) return serr(1, "out of memory");
    for (size_t i = 0; i < s->nseeds; i++) s->seeds[i] = lo + (long long)i;
    return 0;
  }
  Axis ax = {0};
  int rc = axis_parse(&ax, "--seeds", spec);
  if (rc == 0) {
    s->seeds = calloc(ax.n, sizeof *s->seeds);
    if (!s->seeds) rc = serr(1, "out of memory");
    for (size_t i = 0; rc == 0 && i < ax.n; i++) {
      long long v;
      if (parse_ll(ax.vals[i], &v))
        rc = susage("--seeds: '%s' is not a non-negative integer", ax.vals[i]);
      else {
        for (size_t j = 0; j < s->nseeds; j++)
          if (s->seeds[j] == v) rc = susage("--seeds: the seed %lld is given twice", v);
        s->seeds[s->nseeds++] = v;
      }
    }
  }
  for (size_t i = 0; i < ax.n; i++) free(ax.vals[i]);
  free(ax.vals);
  free(ax.num);
  return rc;
}

static int add_axis(Sweep *s, const char *key, int is_set, const char *opt, const char *list) {
  for (size_t a = 0; a < s->naxes; a++)
    if (!strcmp(s->axes[a].key, key)) return susage("%s: the axis '%s' is given twice", opt, key);
  Axis *na = realloc(s->axes, (s->naxes + 1) * sizeof *na);
  if (!na) return serr(1, "out of memory");
  s->axes = na;
  Axis *ax = &s->axes[s->naxes++];
  memset(ax, 0, sizeof *ax);
  ax->key = strdup(key);
  ax->is_set = is_set;
  if (!ax->key) return serr(1, "out of memory");
  return axis_parse(ax, opt, list);
}

/* A file name made of the axis values: characters other than letters,
 * digits and . _ - + = , become '_'. */
static void sanitize(char *s) {
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          strchr("._-+=,", *s)))
      *s = '_';
}

/* "repulsion=svgd, lr=1e-3" (the arm's values; "all runs" without axes). */
static char *arm_label(const Sweep *s, const size_t *idx, const char *sep) {
  if (s->naxes == 0) return xasprintf("all runs");
  char *l = xasprintf("%s", "");
  for (size_t a = 0; a < s->naxes; a++) {
    char *n = xasprintf("%s%s%s=%s", l, a ? sep : "", s->axes[a].key, s->axes[a].vals[idx[a]]);
    free(l);
    l = n;
  }
  return l;
}

static int make_runs(Sweep *s) {
  size_t narms = 1;
  for (size_t a = 0; a < s->naxes; a++) {
    if (narms > 1000000 / s->axes[a].n) return susage("more than a million runs");
    narms *= s->axes[a].n;
  }
  size_t nseed = s->nseeds ? s->nseeds : 1;
  if (narms > 1000000 / nseed) return susage("more than a million runs");
  s->narms = narms;
  s->nruns = narms * nseed;
  s->runs = calloc(s->nruns, sizeof *s->runs);
  if (!s->runs) return serr(1, "out of memory");
  for (size_t arm = 0; arm < narms; arm++) {
    size_t rest = arm;
    size_t *idx = calloc(s->naxes ? s->naxes : 1, sizeof *idx);
    if (!idx) return serr(1, "out of memory");
    for (size_t a = s->naxes; a-- > 0;) {
      idx[a] = rest % s->axes[a].n;
      rest /= s->axes[a].n;
    }
    for (size_t k = 0; k < nseed; k++) {
      Run *r = &s->runs[arm * nseed + k];
      r->arm = arm;
      r->seed = s->nseeds ? s->seeds[k] : -1;
      r->idx = calloc(s->naxes ? s->naxes : 1, sizeof *r->idx);
      if (!r->idx) { free(idx); return serr(1, "out of memory"); }
      memcpy(r->idx, idx, s->naxes * sizeof *idx);
      char *l = s->naxes ? arm_label(s, idx, ",") : NULL;
      if (s->nseeds) r->name = l ? xasprintf("%s,seed=%lld", l, r->seed) : xasprintf("seed=%lld", r->seed);
      else r->name = l ? xasprintf("%s", l) : xasprintf("run");
      free(l);
      sanitize(r->name);
    }
    free(idx);
  }
  for (size_t i = 0; i < s->nruns; i++)
    for (size_t j = i + 1; j < s->nruns; j++)
      if (!strcmp(s->runs[i].name, s->runs[j].name))
        return susage("two runs would share the name '%s' (values that differ only in characters "
                      "other than letters, digits and ._-+=,)",
                      s->runs[i].name);
  return 0;
}

/* mkdir -p */
static int make_dirs(const char *path) {
  char *p = strdup(path);
  if (!p) return -1;
  for (char *q = p + 1; *q; q++) {
    if (*q != '/') continue;
    *q = 0;
    if (mkdir(p, 0777) != 0 && errno != EEXIST) { free(p); return -1; }
    *q = '/';
  }
  int rc = mkdir(p, 0777) != 0 && errno != EEXIST ? -1 : 0;
  free(p);
  return rc;
}

/* Checks what can be checked before any run starts: the spec loads, every
 * repulsion kind, seed and thread count is accepted, the train block exists
 * and every --set value is accepted (as rac run --set would check it). */
/* A context with the spec loaded; NULL with the message printed and *rc
 * set.  round >= 0: the round-th values of the --set axes are set first
 * (a const of the spec among them applies when the spec loads). */
static ra_ctx *load_spec(const Sweep *s, int *rc, long round) {
  ra_ctx *ctx = ra_new();
  if (!ctx) {
    *rc = serr(1, "out of memory");
    return NULL;
  }
  ra_set_option(ctx, "color", "0");
  if (s->allow_extern) ra_set_option(ctx, "allow_extern", "1");
  cli_find_stdlib(ctx);
  for (size_t a = 0; round >= 0 && a < s->naxes; a++) {
    const Axis *ax = &s->axes[a];
    if (!ax->is_set || (size_t)round >= ax->n) continue;
    char *k = xasprintf("set.%s", ax->key);
    int st = ra_set_option(ctx, k, ax->vals[round]);
    free(k);
    if (st != 0) {
      *rc = susage("%s", ra_error(ctx)); /* "--set KEY=VALUE: ..." */
      ra_free(ctx);
      return NULL;
    }
  }
  if (ra_load_file(ctx, s->file) != 0) {
    const char *e = ra_error(ctx);
    if (ra_errcode(ctx) == RA_EUSAGE) *rc = susage("%s", e);
    else {
      fprintf(stderr, "%s%s", e, *e && e[strlen(e) - 1] == '\n' ? "" : "\n");
      *rc = 1;
    }
    ra_free(ctx);
    return NULL;
  }
  return ctx;
}

/* The train block with the context's --set values applied is checked
 * before the checkpoint is read: a checkpoint that does not exist stops the
 * call there, before any data is read. */
static int probe_train(const Sweep *s, ra_ctx *ctx) {
  char *probe = xasprintf("%s/.settings-probe-does-not-exist.safetensors", s->runsdir);
  const char *summary = NULL;
  int rc = 0;
  int st = ra_eval(ctx, s->train, probe, "test", &summary);
  int code = ra_errcode(ctx);
  if (st != 0 && code == RA_EUSAGE) rc = susage("%s", ra_error(ctx));
  else if (st != 0 && (code == RA_ENOTFOUND || code == RA_ESPEC || code == RA_EEXTERN) &&
           !strstr(ra_error(ctx), probe))
    rc = serr(1, "%s", ra_error(ctx));
  free(probe);
  return rc;
}

/* Checks what can be checked before any run starts: the spec loads, every
 * repulsion kind, seed and thread count is accepted, the train block exists
 * and every --set value is accepted (as rac run --set would check it).  The
 * i-th values of the --set axes are checked together, in a context of
 * their own (a context holds a bounded number of settings). */
static int validate(Sweep *s) {
  int rc = 0;
  ra_ctx *ctx = load_spec(s, &rc, -1);
  if (!ctx) return rc;
  size_t rounds = 0;
  for (size_t a = 0; rc == 0 && a < s->naxes; a++) {
    Axis *ax = &s->axes[a];
    if (ax->is_set) {
      if (ax->n > rounds) rounds = ax->n;
      continue;
    }
    for (size_t i = 0; rc == 0 && i < ax->n; i++)
      if (ra_set_option(ctx, "repulsion", ax->vals[i]) != 0)
        rc = susage("--repulsion %s: %s", ax->vals[i], ra_error(ctx));
  }
  for (size_t i = 0; rc == 0 && i < s->nseeds; i++) {
    char v[32];
    snprintf(v, sizeof v, "%lld", s->seeds[i]);
    if (ra_set_option(ctx, "seed", v) != 0) rc = susage("--seeds: %s", ra_error(ctx));
  }
  if (rc == 0 && s->threads > 0) {
    char v[32];
    snprintf(v, sizeof v, "%d", s->threads);
    if (ra_set_option(ctx, "threads", v) != 0) rc = susage("--threads: %s", ra_error(ctx));
  }
  if (rc == 0 && rounds == 0) rc = probe_train(s, ctx);
  ra_free(ctx);
  for (size_t i = 0; rc == 0 && i < rounds; i++) {
    ctx = load_spec(s, &rc, (long)i);
    if (!ctx) break;
    rc = probe_train(s, ctx);
    ra_free(ctx);
  }
  return rc;
}

/* ---- result files ---- */

static char *run_path(const Sweep *s, const Run *r, const char *ext) {
  return xasprintf("%s/%s%s", s->runsdir, r->name, ext);
}

/* The value of axis a in run r as JSON: a number if it reads as one. */
static json_t *axis_json(const Axis *ax, size_t i) {
  if (!ax->numeric) return json_string(ax->vals[i]);
  char *end;
  errno = 0;
  long long v = strtoll(ax->vals[i], &end, 10);
  if (!errno && !*end) return json_integer(v);
  return json_real(ax->num[i]);
}

static int write_json_atomic(const char *path, json_t *o, char *err, size_t errlen) {
  char *tmp = xasprintf("%s.tmp", path);
  int rc = json_dump_file(o, tmp, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15) | JSON_INDENT(1));
  if (rc == 0 && rename(tmp, path) != 0) rc = -1;
  if (rc) {
    snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    remove(tmp);
  }
  free(tmp);
  return rc ? -1 : 0;
}

/* Builds and writes the result of a run that exited 0, from its log. */
static int finish_run(Sweep *s, Run *r, double seconds, char *err, size_t errlen) {
  char *logp = run_path(s, r, ".jsonl");
  RunLog log;
  int rc = runlog_read(logp, &log, err, errlen);
  if (rc == 0 && !log.test) {
    snprintf(err, errlen, "%s: no evaluation of the test split (is the test split empty?)", logp);
    runlog_free(&log);
    rc = -1;
  }
  if (rc) { free(logp); return -1; }
  json_t *o = json_object();
  json_object_set_new(o, "name", json_string(r->name));
  for (size_t a = 0; a < s->naxes; a++)
    json_object_set_new(o, s->axes[a].key, axis_json(&s->axes[a], r->idx[a]));
  json_object_set_new(o, "seed", r->seed >= 0 ? json_integer(r->seed) : json_null());
  json_t *test = json_object();
  const char *k;
  json_t *v;
  json_object_foreach(log.test, k, v) {
    if (!strcmp(k, "event") || !strcmp(k, "split") || !strcmp(k, "step") || !strcmp(k, "epoch"))
      continue;
    json_object_set(test, k, v);
  }
  json_object_set_new(o, "test", test);
  /* a --set steps axis already holds the same figure */
  json_t *st = json_object_get(log.test, "step");
  if (!json_object_get(o, "steps")) json_object_set(o, "steps", st ? st : json_null());
  json_object_set_new(o, "seconds", json_real(round(seconds * 100) / 100));
  char *rel = xasprintf("runs/%s.jsonl", r->name);
  json_object_set_new(o, "log", json_string(rel));
  free(rel);
  runlog_free(&log);
  char *resp = run_path(s, r, ".json");
  rc = write_json_atomic(resp, o, err, errlen);
  free(resp);
  free(logp);
  if (rc) { json_decref(o); return -1; }
  r->result = o;
  return 0;
}

static int load_result(const Sweep *s, Run *r, char *err, size_t errlen) {
  char *p = run_path(s, r, ".json");
  json_error_t je;
  json_t *o = json_load_file(p, 0, &je);
  int rc = 0;
  if (!o || !json_is_object(o) || !json_is_object(json_object_get(o, "test"))) {
    snprintf(err, errlen, "%s:%d: not a result of rac sweep%s%s (remove it to run it again)", p,
             o ? 1 : je.line, o ? "" : ": ", o ? "" : je.text);
    if (o) json_decref(o);
    rc = -1;
  } else r->result = o;
  free(p);
  return rc;
}

/* ---- running ---- */

static char **child_argv(const Sweep *s, const Run *r) {
  size_t cap = 20 + 2 * s->naxes, n = 0;
  char **v = calloc(cap, sizeof *v);
  if (!v) return NULL;
  v[n++] = xasprintf("rac");
  v[n++] = xasprintf("run");
  v[n++] = xasprintf("%s", s->file);
  if (s->train) {
    v[n++] = xasprintf("--train");
    v[n++] = xasprintf("%s", s->train);
  }
  v[n++] = xasprintf("--quiet");
  /* the log as a train setting, the same as --log */
  v[n++] = xasprintf("--set");
  v[n++] = xasprintf("log=%s/%s.jsonl", s->runsdir, r->name);
  v[n++] = xasprintf("--set");
  v[n++] = xasprintf("save=%s/%s.safetensors", s->runsdir, r->name);
  /* a run stopped before (its checkpoint there, no result file) goes on
   * from its checkpoint; its log is appended to */
  char *ckpt = run_path(s, r, ".safetensors");
  if (access(ckpt, F_OK) == 0) {
    v[n++] = xasprintf("--resume");
    v[n++] = ckpt;
  } else free(ckpt);
  if (r->seed >= 0) {
    v[n++] = xasprintf("--seed");
    v[n++] = xasprintf("%lld", r->seed);
  }
  for (size_t a = 0; a < s->naxes; a++) {
    const Axis *ax = &s->axes[a];
    v[n++] = xasprintf(ax->is_set ? "--set" : "--repulsion");
    v[n++] = ax->is_set ? xasprintf("%s=%s", ax->key, ax->vals[r->idx[a]])
                        : xasprintf("%s", ax->vals[r->idx[a]]);
  }
  if (s->allow_extern) v[n++] = xasprintf("--allow-extern");
  if (s->threads > 0) {
    v[n++] = xasprintf("--threads");
    v[n++] = xasprintf("%d", s->threads);
  }
  v[n] = NULL;
  return v;
}

static void argv_free(char **v) {
  for (size_t i = 0; v && v[i]; i++) free(v[i]);
  free(v);
}

static int launch(Sweep *s, Run *r) {
  char **argv = child_argv(s, r);
  char *outp = run_path(s, r, ".out");
  if (!argv) { free(outp); return serr(1, "out of memory"); }
  fflush(NULL);
  /* SIGINT and SIGTERM blocked across the fork: the child must not run the
   * sweep's handler between fork and exec (a signal passed on then would be
   * lost); it takes the default action or rac run's own handling */
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  sigprocmask(SIG_BLOCK, &block, &old);
  pid_t pid = fork();
  if (pid != 0) sigprocmask(SIG_SETMASK, &old, NULL);
  if (pid < 0) {
    int e = errno;
    argv_free(argv);
    free(outp);
    return serr(1, "cannot start a run: %s", strerror(e));
  }
  if (pid == 0) {
    /* its own process group: a terminal's ^C reaches the sweep, which
     * passes it on once */
    setpgid(0, 0);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigprocmask(SIG_SETMASK, &old, NULL);
    int fd = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    int in = open("/dev/null", O_RDONLY);
    if (fd < 0 || in < 0) _exit(126);
    dup2(in, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    execv("/proc/self/exe", argv);
    static const char msg[] = "rac sweep: cannot execute /proc/self/exe\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(127);
  }
  argv_free(argv);
  free(outp);
  r->pid = pid;
  r->running = 1;
  r->t0 = now_s();
  return 0;
}

/* The last lines of a run's output, indented, to stderr. */
static void print_tail(const char *path, int lines) {
  FILE *f = fopen(path, "r");
  if (!f) return;
  char *buf = NULL;
  size_t cap = 0;
  ssize_t len;
  char **ring = calloc((size_t)lines, sizeof *ring);
  long n = 0;
  while (ring && (len = getline(&buf, &cap, f)) >= 0) {
    free(ring[n % lines]);
    ring[n % lines] = strdup(buf);
    n++;
  }
  fclose(f);
  free(buf);
  if (!ring) return;
  long start = n > lines ? n - lines : 0;
  if (n == 0) fputs("    (no output)\n", stderr);
  for (long i = start; i < n; i++) {
    const char *l = ring[i % lines];
    if (!l) continue;
    fprintf(stderr, "    %s%s", l, l[strlen(l) - 1] == '\n' ? "" : "\n");
  }
  for (int i = 0; i < lines; i++) free(ring[i]);
  free(ring);
}

static const char *sig_name(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal"; }

/* Runs every unfinished run, `jobs` at a time.  Returns the number of
 * failed runs. */
static size_t run_all(Sweep *s, size_t todo) {
  size_t next = 0, running = 0, done = 0, failed = 0;
  int forwarded = 0;
  char err[4600];
  for (;;) {
    if (sweep_nsignals != forwarded) {
      int sig = sweep_signal;
      if (!forwarded)
        fprintf(stderr, "rac sweep: %s: no new runs; waiting for the %zu running to stop\n",
                sig_name(sig), running);
      for (size_t i = 0; i < s->nruns; i++)
        if (s->runs[i].running) kill(s->runs[i].pid, sig);
      forwarded = sweep_nsignals;
    }
    while (!forwarded && running < (size_t)s->jobs && next < s->nruns) {
      Run *r = &s->runs[next++];
      if (r->finished) continue;
      if (launch(s, r) != 0) {
        r->failed = 1;
        failed++;
        done++;
        continue;
      }
      running++;
      fprintf(stderr, "[%zu/%zu] %s: started\n", done + running, todo, r->name);
    }
    if (running == 0 && (forwarded || next >= s->nruns)) break;
    int st;
    pid_t pid = waitpid(-1, &st, WNOHANG);
    if (pid < 0 && errno == ECHILD) break;
    if (pid <= 0) {
      struct timespec ts = {0, 20 * 1000 * 1000};
      nanosleep(&ts, NULL);
      continue;
    }
    Run *r = NULL;
    for (size_t i = 0; i < s->nruns; i++)
      if (s->runs[i].running && s->runs[i].pid == pid) r = &s->runs[i];
    if (!r) continue;
    r->running = 0;
    running--;
    done++;
    double secs = now_s() - r->t0;
    char *outp = run_path(s, r, ".out");
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
      if (finish_run(s, r, secs, err, sizeof err) == 0) {
        r->finished = 1;
        fprintf(stderr, "[%zu/%zu] %s: done in %.1f s\n", done, todo, r->name, secs);
      } else {
        r->failed = 1;
        failed++;
        fprintf(stderr, "rac sweep: run %s finished but its result is unusable: %s\n", r->name, err);
      }
    } else if (forwarded) {
      char *ck = run_path(s, r, ".safetensors");
      int has = access(ck, F_OK) == 0;
      fprintf(stderr, "[%zu/%zu] %s: stopped (%s)\n", done, todo, r->name,
              has ? "it goes on from its last checkpoint when the sweep is resumed"
                  : "no checkpoint yet: it starts over when the sweep is resumed");
      free(ck);
    } else {
      r->failed = 1;
      failed++;
      if (WIFEXITED(st))
        fprintf(stderr, "rac sweep: run %s failed (exit status %d); the end of %s:\n", r->name,
                WEXITSTATUS(st), outp);
      else
        fprintf(stderr, "rac sweep: run %s was killed by signal %d; the end of %s:\n", r->name,
                WTERMSIG(st), outp);
      print_tail(outp, 12);
    }
    free(outp);
  }
  return failed;
}

/* ---- tables ---- */

static void fmt_num(char *b, size_t n, double v) {
  if (isnan(v)) snprintf(b, n, "–");
  else snprintf(b, n, "%.4g", v);
}

/* The values of metric m over the runs of one arm, by seed position. */
static double run_metric(const Run *r, const Metric *m) {
  if (!r->result) return NAN;
  return ev_metric(json_object_get(r->result, "test"), m->name, m->sub);
}

static size_t nseed_slots(const Sweep *s) { return s->nseeds ? s->nseeds : 1; }

/* The arm whose first-axis value is the baseline's, others as in `arm`. */
static size_t baseline_arm(const Sweep *s, size_t arm, size_t base_idx) {
  if (s->naxes == 0) return arm;
  size_t stride = s->narms / s->axes[0].n;
  return base_idx * stride + arm % stride;
}

static int write_md(const Sweep *s, const MetricList *ml, size_t base_idx, const char *path,
                    char *err, size_t errlen) {
  char *tmp = xasprintf("%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) {
    snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    free(tmp);
    return -1;
  }
  size_t nfin = 0, ns = nseed_slots(s);
  for (size_t i = 0; i < s->nruns; i++) nfin += s->runs[i].finished;
  fprintf(f, "# rac sweep of %s\n\n", s->file);
  if (s->train) fprintf(f, "Train block: `%s`.\n", s->train);
  fprintf(f, "Axes:");
  for (size_t a = 0; a < s->naxes; a++) {
    fprintf(f, "%s `%s` ", a ? ";" : "", s->axes[a].key);
    for (size_t i = 0; i < s->axes[a].n; i++) fprintf(f, "%s%s", i ? ", " : "", s->axes[a].vals[i]);
  }
  if (s->nseeds) {
    fprintf(f, "%s seeds ", s->naxes ? ";" : "");
    for (size_t i = 0; i < s->nseeds; i++) fprintf(f, "%s%lld", i ? ", " : "", s->seeds[i]);
  }
  if (!s->naxes && !s->nseeds) fprintf(f, " none (one run)");
  fprintf(f, ".  \n%zu of %zu runs finished.\n\n", nfin, s->nruns);
  char *blabel = NULL;
  if (s->naxes) blabel = xasprintf("%s=%s", s->axes[0].key, s->axes[0].vals[base_idx]);
  fprintf(f, "Figures of the test split at the end of each run.  Per arm (a combination of the "
             "values of the axes other than the seed): n runs, their mean and its 95 %% confidence "
             "interval, mean ± t(0.975, n − 1) · s / √n (Student t, s the sample standard "
             "deviation).");
  if (blabel && s->narms > 1)
    fprintf(f, "  Δ is the mean difference to the baseline arm (`%s`, the other axes the same) "
               "over the seeds both have, with its 95 %% confidence interval and the two-sided "
               "p-value of the paired t-test (n − 1 degrees of freedom).",
            blabel);
  fprintf(f, "  With n < 2 there is no interval and no test.\n");
  double *x = calloc(ns, sizeof *x), *y = calloc(ns, sizeof *y), *bx = calloc(ns, sizeof *bx);
  if (!x || !y || !bx) {
    fclose(f);
    remove(tmp);
    free(tmp), free(x), free(y), free(bx), free(blabel);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  for (size_t mi = 0; mi < ml->n; mi++) {
    const Metric *m = &ml->m[mi];
    char lab[512];
    metric_label(m, lab, sizeof lab);
    fprintf(f, "\n## %s\n\n", lab);
    int cmp = blabel && s->narms > 1;
    if (cmp)
      fprintf(f, "| arm | n | mean | 95 %% CI | Δ vs %s | 95 %% CI of Δ | p (paired t) |\n"
                 "|---|---:|---:|---|---:|---|---:|\n",
              blabel);
    else fprintf(f, "| arm | n | mean | 95 %% CI |\n|---|---:|---:|---|\n");
    for (size_t arm = 0; arm < s->narms; arm++) {
      const Run *first = &s->runs[arm * ns];
      char *al = arm_label(s, first->idx, ", ");
      size_t n = 0;
      for (size_t k = 0; k < ns; k++) {
        double v = run_metric(&s->runs[arm * ns + k], m);
        if (isfinite(v)) x[n++] = v;
      }
      StCI c = st_ci95(x, n);
      char mean[64], lo[64], hi[64], ci[160];
      fmt_num(mean, sizeof mean, c.mean);
      if (n < 2) snprintf(ci, sizeof ci, "n < 2: none");
      else {
        fmt_num(lo, sizeof lo, c.mean - c.half);
        fmt_num(hi, sizeof hi, c.mean + c.half);
        snprintf(ci, sizeof ci, "%s … %s", lo, hi);
      }
      fprintf(f, "| %s | %zu | %s | %s |", al, n, n ? mean : "–", ci);
      if (cmp) {
        size_t barm = baseline_arm(s, arm, base_idx);
        if (barm == arm) fprintf(f, " (baseline) | | |");
        else {
          size_t np = 0;
          for (size_t k = 0; k < ns; k++) {
            double a = run_metric(&s->runs[arm * ns + k], m), b = run_metric(&s->runs[barm * ns + k], m);
            if (isfinite(a) && isfinite(b)) {
              y[np] = a;
              bx[np] = b;
              np++;
            }
          }
          StPaired pt = st_paired(y, bx, np);
          if (np == 0) fprintf(f, " – | no common seeds | |");
          else if (np < 2) fprintf(f, " %+.4g | n < 2: no test | |", pt.mean);
          else {
            char dlo[64], dhi[64], p[64];
            fmt_num(dlo, sizeof dlo, pt.mean - pt.half);
            fmt_num(dhi, sizeof dhi, pt.mean + pt.half);
            if (isnan(pt.t)) snprintf(p, sizeof p, "1 (no differences)");
            else if (isinf(pt.t)) snprintf(p, sizeof p, "0 (equal differences)");
            else snprintf(p, sizeof p, "%.3g", pt.p);
            fprintf(f, " %+.4g | %s … %s (n = %zu) | %s |", pt.mean, dlo, dhi, np, p);
          }
        }
      }
      fputc('\n', f);
      free(al);
    }
  }
  free(x);
  free(y);
  free(bx);
  free(blabel);
  int bad = ferror(f);
  if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
    snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    remove(tmp);
    free(tmp);
    return -1;
  }
  free(tmp);
  return 0;
}

static int write_jsonl(const Sweep *s, const char *path, char *err, size_t errlen) {
  char *tmp = xasprintf("%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  int rc = 0;
  if (!f) rc = -1;
  for (size_t i = 0; f && rc == 0 && i < s->nruns; i++) {
    if (!s->runs[i].result) continue;
    if (json_dumpf(s->runs[i].result, f, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(15)))
      rc = -1;
    fputc('\n', f);
  }
  if (f && (ferror(f) | fclose(f))) rc = -1;
  if (rc == 0 && rename(tmp, path) != 0) rc = -1;
  if (rc) {
    snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    remove(tmp);
  }
  free(tmp);
  return rc;
}

/* ---- plots ---- */

/* final-KEY.svg: the final test metrics against the values of a numeric
 * --set axis, one line per combination of the other axes, 95 % CIs as
 * error bars. */
static int plot_final(const Sweep *s, size_t axis, const MetricList *ml, const char *path,
                      char *err, size_t errlen) {
  const Axis *ax = &s->axes[axis];
  size_t ns = nseed_slots(s);
  /* groups: the arms with the same values on every axis but `axis` */
  size_t stride = 1;
  for (size_t a = axis + 1; a < s->naxes; a++) stride *= s->axes[a].n;
  size_t ngroups = s->narms / ax->n;
  size_t nch = ml->n;
  SvgChart *ch = calloc(nch ? nch : 1, sizeof *ch);
  SvgSeries *se = calloc((nch ? nch : 1) * ngroups, sizeof *se);
  double *buf = calloc((nch ? nch : 1) * ngroups * ax->n * 4, sizeof *buf);
  double *vals = calloc(ns, sizeof *vals);
  char **legend = calloc(ngroups, sizeof *legend), **titles = calloc(nch ? nch : 1, sizeof *titles);
  int rc = 0;
  if (!ch || !se || !buf || !vals || !legend || !titles) {
    snprintf(err, errlen, "out of memory");
    rc = -1;
  }
  double lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < ax->n; i++) {
    if (ax->num[i] < lo) lo = ax->num[i];
    if (ax->num[i] > hi) hi = ax->num[i];
  }
  int logx = lo > 0 && hi / lo >= 20;
  for (size_t g = 0; rc == 0 && g < ngroups; g++) {
    /* the g-th group's arms: inner = g % stride, outer = g / stride */
    size_t arm0 = (g / stride) * stride * ax->n + g % stride;
    const size_t *idx = s->runs[arm0 * ns].idx;
    char *l = xasprintf("%s", "");
    for (size_t a = 0; a < s->naxes; a++) {
      if (a == axis) continue;
      char *n2 = xasprintf("%s%s%s=%s", l, *l ? ", " : "", s->axes[a].key, s->axes[a].vals[idx[a]]);
      free(l);
      l = n2;
    }
    if (!*l) {
      free(l);
      l = xasprintf(s->nseeds ? "mean over the seeds (bars: 95 %% CI)" : "one run per value");
    }
    legend[g] = l;
  }
  for (size_t mi = 0; rc == 0 && mi < nch; mi++) {
    const Metric *m = &ml->m[mi];
    for (size_t g = 0; g < ngroups; g++) {
      double *X = buf + ((mi * ngroups + g) * ax->n) * 4, *Y = X + ax->n, *L = Y + ax->n,
             *H = L + ax->n;
      for (size_t i = 0; i < ax->n; i++) {
        size_t arm = (g / stride) * stride * ax->n + i * stride + g % stride;
        size_t n = 0;
        for (size_t k = 0; k < ns; k++) {
          double v = run_metric(&s->runs[arm * ns + k], m);
          if (isfinite(v)) vals[n++] = v;
        }
        StCI c = st_ci95(vals, n);
        X[i] = ax->num[i];
        Y[i] = n ? c.mean : NAN;
        L[i] = n >= 2 ? c.mean - c.half : NAN;
        H[i] = n >= 2 ? c.mean + c.half : NAN;
      }
      se[mi * ngroups + g] = (SvgSeries){.color = (int)g, .n = ax->n, .x = X, .y = Y, .lo = L,
                                         .hi = H, .markers = 1};
    }
    char lab[512];
    metric_label(m, lab, sizeof lab);
    titles[mi] = xasprintf("test %s", lab);
    ch[mi] = (SvgChart){.title = titles[mi], .xlabel = ax->key, .ylabel = titles[mi] + 5,
                        .logx = logx, .xticks = ax->num, .nxticks = ax->n,
                        .series = &se[mi * ngroups], .nseries = ngroups};
  }
  if (rc == 0) {
    char *title = xasprintf("final test metrics against %s%s", ax->key,
                            s->nseeds ? " (mean and 95 % CI over the seeds)" : "");
    SvgFigure fig = {.title = title, .legend = (const char *const *)legend, .nlegend = ngroups,
                     .charts = ch, .ncharts = nch, .cols = 2};
    rc = svg_write(path, &fig, err, errlen);
    free(title);
  }
  for (size_t g = 0; legend && g < ngroups; g++) free(legend[g]);
  for (size_t i = 0; titles && i < nch; i++) free(titles[i]);
  free(legend);
  free(titles);
  free(ch);
  free(se);
  free(buf);
  free(vals);
  return rc;
}

static int write_plots(const Sweep *s, const MetricList *ml, char *err, size_t errlen) {
  size_t ns = nseed_slots(s);
  RunLog *logs = calloc(s->nruns, sizeof *logs);
  RunLog **ptrs = calloc(s->nruns, sizeof *ptrs);
  PlotGroup *groups = calloc(s->narms, sizeof *groups);
  char **names = calloc(s->narms, sizeof *names);
  int rc = logs && ptrs && groups && names ? 0 : -1;
  if (rc) snprintf(err, errlen, "out of memory");
  size_t ng = 0, nl = 0;
  for (size_t arm = 0; rc == 0 && arm < s->narms; arm++) {
    size_t first = nl;
    for (size_t k = 0; rc == 0 && k < ns; k++) {
      const Run *r = &s->runs[arm * ns + k];
      if (!r->finished) continue;
      char *p = run_path(s, r, ".jsonl");
      rc = runlog_read(p, &logs[nl], err, errlen);
      free(p);
      if (rc == 0) {
        ptrs[nl] = &logs[nl];
        nl++;
      }
    }
    if (rc || nl == first) continue;
    names[ng] = arm_label(s, s->runs[arm * ns].idx, ", ");
    groups[ng] = (PlotGroup){.name = names[ng], .logs = &ptrs[first], .n = nl - first};
    ng++;
  }
  int has_div = 0;
  for (size_t i = 0; i < ml->n; i++) has_div |= ml->m[i].sub && !strcmp(ml->m[i].name, "head_diversity");
  const char *band = s->nseeds > 1 ? " (mean over the seeds; band: their range)" : "";
  if (rc == 0) {
    char *p = xasprintf("%s/curves.svg", s->out), *t = xasprintf("learning curves%s", band);
    rc = plot_curves(p, t, groups, ng, PLOT_LOSS | PLOT_VALID, err, errlen);
    free(p);
    free(t);
  }
  if (rc == 0 && has_div) {
    char *p = xasprintf("%s/diversity.svg", s->out), *t = xasprintf("head diversity per layer%s", band);
    rc = plot_curves(p, t, groups, ng, PLOT_DIVERSITY, err, errlen);
    free(p);
    free(t);
  }
  for (size_t a = 0; rc == 0 && a < s->naxes; a++) {
    if (!s->axes[a].is_set || !s->axes[a].numeric || s->axes[a].n < 2) continue;
    char *p = xasprintf("%s/final-%s.svg", s->out, s->axes[a].key);
    sanitize(p + strlen(s->out) + 7);
    rc = plot_final(s, a, ml, p, err, errlen);
    free(p);
  }
  for (size_t i = 0; i < nl; i++) runlog_free(&logs[i]);
  for (size_t i = 0; i < ng; i++) free(names[i]);
  free(logs);
  free(ptrs);
  free(groups);
  free(names);
  return rc;
}

/* ---- the command ---- */

static int sweep_main(Sweep *s, int argc, char **argv) {
  const char *seeds = NULL, *jobs = NULL, *threads = NULL;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(sweep_help, stdout);
      return 0;
    }
    static const char *const valued[] = {"--train", "--out", "--repulsion", "--seeds", "--set",
                                         "--baseline", "--jobs", "--threads"};
    int takes = 0;
    for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++) takes |= !strcmp(a, valued[k]);
    const char *v = NULL;
    if (takes) {
      if (i + 1 >= argc) return susage("option %s needs a value", a);
      v = argv[++i];
    }
    if (a[0] != '-') {
      if (s->file) return susage("unexpected argument '%s'", a);
      s->file = a;
    } else if (!strcmp(a, "--train")) s->train = v;
    else if (!strcmp(a, "--out")) s->out = v;
    else if (!strcmp(a, "--baseline")) s->baseline = v;
    else if (!strcmp(a, "--seeds")) seeds = v;
    else if (!strcmp(a, "--jobs")) jobs = v;
    else if (!strcmp(a, "--threads")) threads = v;
    else if (!strcmp(a, "--allow-extern")) s->allow_extern = 1;
    else if (!strcmp(a, "--repulsion")) {
      int rc = add_axis(s, "repulsion", 0, "--repulsion", v);
      if (rc) return rc;
    } else if (!strcmp(a, "--set")) {
      const char *eq = strchr(v, '=');
      if (!eq || eq == v) return susage("--set needs KEY=V1,V2,..., got '%s'", v);
      char *key = strndup(v, (size_t)(eq - v));
      if (!key) return serr(1, "out of memory");
      int rc = 0;
      if (!strcmp(key, "save") || !strcmp(key, "log"))
        rc = susage("--set %s: the sweep sets each run's checkpoint and log itself (in DIR/runs)", key);
      else if (!strcmp(key, "seed")) rc = susage("--set seed: use --seeds A..B");
      else if (!strcmp(key, "repulsion")) rc = susage("--set repulsion: use --repulsion K1,K2,...");
      else {
        char *opt = xasprintf("--set %s", key);
        rc = add_axis(s, key, 1, opt, eq + 1);
        free(opt);
      }
      free(key);
      if (rc) return rc;
    } else return susage("unknown option '%s'", a);
  }
  if (!s->file) return susage("needs a FILE");
  if (!s->out) return susage("needs --out DIR");
  if (seeds) {
    int rc = seeds_parse(s, seeds);
    if (rc) return rc;
  }
  long long jv = 0, tv = 0;
  if (jobs && (parse_ll(jobs, &jv) || jv < 1 || jv > 256))
    return susage("--jobs needs an integer from 1 to 256, got '%s'", jobs);
  if (threads && (parse_ll(threads, &tv) || tv < 1 || tv > 256))
    return susage("--threads needs an integer from 1 to 256, got '%s'", threads);
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (ncpu < 1) ncpu = 1;
  if (threads) s->threads = (int)tv;
  if (jobs) s->jobs = (int)jv;
  else s->jobs = (int)(ncpu / (threads ? tv : 1) > 0 ? ncpu / (threads ? tv : 1) : 1);
  if (!threads && s->jobs > 1) s->threads = 1;
  size_t base_idx = 0;
  if (s->baseline) {
    if (!s->naxes) return susage("--baseline %s: there is no axis but the seeds", s->baseline);
    size_t i = 0;
    while (i < s->axes[0].n && strcmp(s->axes[0].vals[i], s->baseline)) i++;
    if (i == s->axes[0].n) {
      char *list = xasprintf("%s", "");
      for (size_t k = 0; k < s->axes[0].n; k++) {
        char *n2 = xasprintf("%s%s%s", list, k ? ", " : "", s->axes[0].vals[k]);
        free(list);
        list = n2;
      }
      int rc = susage("--baseline %s: not a value of the first axis, %s (%s)", s->baseline,
                      s->axes[0].key, list);
      free(list);
      return rc;
    }
    base_idx = i;
  }
  int rc = make_runs(s);
  if (rc) return rc;
  s->runsdir = xasprintf("%s/runs", s->out);
  rc = validate(s);
  if (rc) return rc;
  if (make_dirs(s->runsdir) != 0 || access(s->runsdir, W_OK) != 0)
    return serr(1, "%s: cannot create or write the folder: %s", s->runsdir, strerror(errno));

  char err[4600];
  size_t before = 0;
  for (size_t i = 0; i < s->nruns; i++) {
    Run *r = &s->runs[i];
    char *p = run_path(s, r, ".json");
    int exists = access(p, F_OK) == 0;
    free(p);
    if (!exists) continue;
    if (load_result(s, r, err, sizeof err)) return serr(1, "%s", err);
    r->finished = 1;
    before++;
  }
  size_t todo = s->nruns - before;
  fprintf(stderr, "rac sweep: %zu run%s", s->nruns, s->nruns == 1 ? "" : "s");
  if (before) fprintf(stderr, ", %zu finished before (skipped)", before);
  fprintf(stderr, ", %zu to run", todo);
  if (todo) fprintf(stderr, ", %d at a time%s", s->jobs < (int)todo ? s->jobs : (int)todo, "");
  if (todo && s->threads) fprintf(stderr, ", %d thread%s each", s->threads, s->threads == 1 ? "" : "s");
  fprintf(stderr, "\n");

  struct sigaction sa, old_int, old_term;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  size_t failed = todo ? run_all(s, todo) : 0;
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);

  size_t nfin = 0;
  for (size_t i = 0; i < s->nruns; i++) nfin += s->runs[i].finished;
  int out_rc = 0;
  if (nfin) {
    MetricList ml = {0};
    for (size_t i = 0; i < s->nruns; i++)
      if (s->runs[i].result && metrics_collect(&ml, json_object_get(s->runs[i].result, "test"))) {
        snprintf(err, sizeof err, "out of memory");
        out_rc = -1;
      }
    char *pj = xasprintf("%s/sweep.jsonl", s->out), *pm = xasprintf("%s/sweep.md", s->out);
    if (out_rc == 0) out_rc = write_jsonl(s, pj, err, sizeof err);
    if (out_rc == 0) out_rc = write_md(s, &ml, base_idx, pm, err, sizeof err);
    if (out_rc == 0) out_rc = write_plots(s, &ml, err, sizeof err);
    if (out_rc) fprintf(stderr, "rac sweep: %s\n", err);
    else fprintf(stderr, "rac sweep: wrote %s, %s and the plots in %s\n", pj, pm, s->out);
    free(pj);
    free(pm);
    metrics_free(&ml);
  }
  if (sweep_nsignals) {
    int sig = sweep_signal;
    fprintf(stderr, "rac sweep: stopped by %s with %zu of %zu runs finished; the same command "
                    "resumes the sweep\n",
            sig_name(sig), nfin, s->nruns);
    return 128 + sig;
  }
  if (failed) {
    fprintf(stderr, "rac sweep: %zu of %zu runs failed:", failed, s->nruns);
    for (size_t i = 0; i < s->nruns; i++)
      if (s->runs[i].failed) fprintf(stderr, " %s", s->runs[i].name);
    fprintf(stderr, "\n");
    return 1;
  }
  return out_rc ? 1 : 0;
}

int rac_sweep_main(int argc, char **argv) {
  Sweep s;
  memset(&s, 0, sizeof s);
  int rc = sweep_main(&s, argc, argv);
  axes_free(&s);
  return rc;
}

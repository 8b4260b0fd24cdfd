/* plot.c - learning-curve figures from logs, and the `rac plot` command. */
#include "plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svg.h"

void curve_free(Curve *c) {
  free(c->x);
  free(c->y);
  free(c->lo);
  free(c->hi);
  memset(c, 0, sizeof *c);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The index of x in the increasing a[0..n), or -1. */
static long find_x(const double *a, size_t n, double x) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo < n && a[lo] == x ? (long)lo : -1;
}

int curve_merge(Curve *c, double *const *xs, double *const *ys, const size_t *ns, size_t nruns) {
  memset(c, 0, sizeof *c);
  size_t total = 0;
  for (size_t r = 0; r < nruns; r++) total += ns[r];
  double *all = malloc((total ? total : 1) * sizeof *all);
  if (!all) return -1;
  size_t k = 0;
  for (size_t r = 0; r < nruns; r++)
    for (size_t i = 0; i < ns[r]; i++)
      if (isfinite(ys[r][i])) all[k++] = xs[r][i];
  qsort(all, k, sizeof *all, cmp_double);
  size_t u = 0;
  for (size_t i = 0; i < k; i++)
    if (u == 0 || all[i] != all[u - 1]) all[u++] = all[i];
  c->n = u;
  c->x = all;
  c->y = malloc((u ? u : 1) * sizeof *c->y);
  c->lo = malloc((u ? u : 1) * sizeof *c->lo);
  c->hi = malloc((u ? u : 1) * sizeof *c->hi);
  if (!c->y || !c->lo || !c->hi) {
    curve_free(c);
    return -1;
  }
  for (size_t i = 0; i < u; i++) {
    double s = 0, mn = INFINITY, mx = -INFINITY;
    int cnt = 0;
    for (size_t r = 0; r < nruns; r++) {
      long j = find_x(xs[r], ns[r], c->x[i]);
      if (j < 0 || !isfinite(ys[r][j])) continue;
      double v = ys[r][j];
      s += v;
      cnt++;
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    c->y[i] = cnt ? s / cnt : NAN;
    c->lo[i] = cnt >= 2 ? mn : NAN;
    c->hi[i] = cnt >= 2 ? mx : NAN;
  }
  return 0;
}

/* Storage of one figure's charts and series. */
typedef struct Fig {
  SvgChart *charts;
  size_t ncharts;
  SvgSeries *series;  /* ngroups per chart */
  Curve *curves;
  char **texts;
  size_t ntexts;
} Fig;

static char *keep(Fig *f, const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  char **t = realloc(f->texts, (f->ntexts + 1) * sizeof *t);
  if (!d || !t) {
    free(d);
    if (t) f->texts = t;
    return NULL;
  }
  memcpy(d, s, n);
  f->texts = t;
  f->texts[f->ntexts++] = d;
  return d;
}

/* The trailing moving average of the training loss over w steps, every k-th
 * point kept (and the last). */
static int smooth_loss(const RunLog *l, size_t w, size_t k, double **xo, double **yo, size_t *no) {
  *xo = malloc((l->nsteps ? l->nsteps : 1) * sizeof **xo);
  *yo = malloc((l->nsteps ? l->nsteps : 1) * sizeof **yo);
  if (!*xo || !*yo) return -1;
  double s = 0;
  size_t n = 0;
  for (size_t i = 0; i < l->nsteps; i++) {
    s += l->loss[i];
    if (i >= w) s -= l->loss[i - w];
    size_t have = i + 1 < w ? i + 1 : w;
    if ((i + 1) % k == 0 || i + 1 == l->nsteps) {
      (*xo)[n] = l->step[i];
      (*yo)[n] = s / (double)have;
      n++;
    }
  }
  *no = n;
  return 0;
}

/* A run's eval points of one metric. */
static int eval_points(const RunLog *l, const Metric *m, double **xo, double **yo, size_t *no) {
  size_t ne = json_array_size(l->evals);
  *xo = malloc((ne ? ne : 1) * sizeof **xo);
  *yo = malloc((ne ? ne : 1) * sizeof **yo);
  if (!*xo || !*yo) return -1;
  size_t n = 0;
  for (size_t i = 0; i < ne; i++) {
    const json_t *ev = json_array_get(l->evals, i);
    double v = ev_metric(ev, m->name, m->sub);
    if (!isfinite(v)) continue;
    (*xo)[n] = ev_metric(ev, "step", NULL);
    (*yo)[n] = v;
    n++;
  }
  *no = n;
  return 0;
}

/* Adds one chart: for each group, the merged curve of `get` over its runs. */
static int add_chart(Fig *f, const PlotGroup *g, size_t ng, const char *title, const char *ylabel,
                     const Metric *m, size_t w, size_t k) {
  size_t c = f->ncharts;
  for (size_t gi = 0; gi < ng; gi++) {
    size_t nr = g[gi].n;
    double **xs = calloc(nr ? nr : 1, sizeof *xs), **ys = calloc(nr ? nr : 1, sizeof *ys);
    size_t *ns = calloc(nr ? nr : 1, sizeof *ns);
    int rc = xs && ys && ns ? 0 : -1;
    for (size_t r = 0; rc == 0 && r < nr; r++)
      rc = m ? eval_points(g[gi].logs[r], m, &xs[r], &ys[r], &ns[r])
             : smooth_loss(g[gi].logs[r], w, k, &xs[r], &ys[r], &ns[r]);
    Curve *cv = &f->curves[c * ng + gi];
    if (rc == 0) rc = curve_merge(cv, xs, ys, ns, nr);
    for (size_t r = 0; xs && ys && r < nr; r++) {
      free(xs[r]);
      free(ys[r]);
    }
    free(xs);
    free(ys);
    free(ns);
    if (rc) return -1;
    f->series[c * ng + gi] = (SvgSeries){.color = (int)gi, .n = cv->n, .x = cv->x, .y = cv->y,
                                          .lo = cv->lo, .hi = cv->hi};
  }
  char *t = keep(f, title), *yl = keep(f, ylabel);
  if (!t || !yl) return -1;
  f->charts[c] = (SvgChart){.title = t, .xlabel = "step", .ylabel = yl,
                            .series = &f->series[c * ng], .nseries = ng};
  f->ncharts++;
  return 0;
}

int plot_curves(const char *path, const char *title, const PlotGroup *g, size_t ng,
                unsigned what, char *err, size_t errlen) {
  MetricList ml = {0};
  const char *split = NULL;
  size_t maxsteps = 0;
  for (size_t gi = 0; gi < ng; gi++)
    for (size_t r = 0; r < g[gi].n; r++) {
      const RunLog *l = g[gi].logs[r];
      if (l->nsteps > maxsteps) maxsteps = l->nsteps;
      for (size_t i = 0; i < json_array_size(l->evals); i++) {
        const json_t *ev = json_array_get(l->evals, i);
        if (!split) split = json_string_value(json_object_get(ev, "split"));
        if (metrics_collect(&ml, ev)) goto oom;
      }
    }
  size_t maxc = 1 + ml.n;
  Fig f = {0};
  f.charts = calloc(maxc, sizeof *f.charts);
  f.series = calloc(maxc * (ng ? ng : 1), sizeof *f.series);
  f.curves = calloc(maxc * (ng ? ng : 1), sizeof *f.curves);
  const char **legend = calloc(ng ? ng : 1, sizeof *legend);
  int rc = f.charts && f.series && f.curves && legend ? 0 : -1;
  size_t w = maxsteps >= 80 ? maxsteps / 40 : 1, k = maxsteps > 400 ? maxsteps / 400 : 1;
  char t[512], yl[512];
  if (rc == 0 && (what & PLOT_LOSS)) {
    if (w > 1) snprintf(t, sizeof t, "training loss (mean of the last %zu steps)", w);
    else snprintf(t, sizeof t, "training loss");
    rc = add_chart(&f, g, ng, t, "loss", NULL, w, k);
  }
  for (int pass = 0; pass < 2 && rc == 0; pass++) {
    /* validation metrics first, then head diversity per layer */
    unsigned want = pass == 0 ? PLOT_VALID : PLOT_DIVERSITY;
    if (!(what & want)) continue;
    for (size_t i = 0; i < ml.n && rc == 0; i++) {
      const Metric *m = &ml.m[i];
      int div = m->sub && !strcmp(m->name, "head_diversity");
      if ((pass == 1) != div) continue;
      if (div) {
        snprintf(t, sizeof t, "head diversity, layer %s (%s split)", m->sub, split ? split : "");
        snprintf(yl, sizeof yl, "head diversity");
      } else {
        char lab[400];
        metric_label(m, lab, sizeof lab);
        snprintf(t, sizeof t, "%s %s", split ? split : "", lab);
        snprintf(yl, sizeof yl, "%s", lab);
      }
      rc = add_chart(&f, g, ng, t, yl, m, w, k);
    }
  }
  if (rc == 0) {
    for (size_t gi = 0; gi < ng; gi++) legend[gi] = g[gi].name;
    SvgFigure fig = {.title = title, .legend = legend, .nlegend = ng, .charts = f.charts,
                     .ncharts = f.ncharts, .cols = 2};
    rc = svg_write(path, &fig, err, errlen);
  } else snprintf(err, errlen, "%s: out of memory", path);
  for (size_t i = 0; i < maxc * ng && f.curves; i++) curve_free(&f.curves[i]);
  for (size_t i = 0; i < f.ntexts; i++) free(f.texts[i]);
  free(f.texts);
  free(f.charts);
  free(f.series);
  free(f.curves);
  free(legend);
  metrics_free(&ml);
  return rc;
oom:
  metrics_free(&ml);
  snprintf(err, errlen, "%s: out of memory", path);
  return -1;
}

/* ---- rac plot ---- */

static int plot_usage(const char *msg, const char *arg) {
  fprintf(stderr, "rac plot: ");
  fprintf(stderr, msg, arg);
  fprintf(stderr, "\nusage: rac plot LOG.jsonl... --out FILE.svg [--title TEXT]\n");
  return 2;
}

int rac_plot_main(int argc, char **argv) {
  const char *out = NULL, *title = NULL;
  int nlogs = 0;
  const char **paths = calloc((size_t)argc + 1, sizeof *paths);
  if (!paths) { fprintf(stderr, "rac plot: out of memory\n"); return 1; }
  for (int i = 0; i < argc; i++) {
    const char *s = argv[i];
    if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
      fputs("usage: rac plot LOG.jsonl... --out FILE.svg [--title TEXT]\n"
            "Plots logs of rac run --log: training loss, validation metrics and head\n"
            "diversity per layer against the step, one line per log.\n",
            stdout);
      free(paths);
      return 0;
    }
    if (!strcmp(s, "--out") || !strcmp(s, "--title")) {
      if (i + 1 >= argc) { free(paths); return plot_usage("option %s needs a value", s); }
      if (!strcmp(s, "--out")) out = argv[++i];
      else title = argv[++i];
    } else if (s[0] == '-' && s[1]) {
      free(paths);
      return plot_usage("unknown option '%s'", s);
    } else paths[nlogs++] = s;
  }
  if (!nlogs) { free(paths); return plot_usage("needs at least one LOG.jsonl%s", ""); }
  if (!out) { free(paths); return plot_usage("needs --out FILE.svg%s", ""); }
  RunLog *logs = calloc((size_t)nlogs, sizeof *logs);
  RunLog **ptrs = calloc((size_t)nlogs, sizeof *ptrs);
  PlotGroup *groups = calloc((size_t)nlogs, sizeof *groups);
  char **names = calloc((size_t)nlogs, sizeof *names);
  int rc = logs && ptrs && groups && names ? 0 : 1;
  if (rc) fprintf(stderr, "rac plot: out of memory\n");
  char err[4200];
  int nread = 0;
  for (int i = 0; rc == 0 && i < nlogs; i++) {
    if (runlog_read(paths[i], &logs[i], err, sizeof err)) {
      fprintf(stderr, "rac plot: %s\n", err);
      rc = 1;
      break;
    }
    nread++;
    ptrs[i] = &logs[i];
    /* the name: the file's name without .jsonl; the path if two share it */
    const char *base = strrchr(paths[i], '/');
    base = base ? base + 1 : paths[i];
    size_t bl = strlen(base);
    if (bl > 6 && !strcmp(base + bl - 6, ".jsonl")) bl -= 6;
    int clash = 0;
    for (int j = 0; j < nlogs; j++) {
      const char *b2 = strrchr(paths[j], '/');
      b2 = b2 ? b2 + 1 : paths[j];
      if (j != i && !strncmp(b2, base, bl) && (b2[bl] == 0 || !strcmp(b2 + bl, ".jsonl"))) clash = 1;
    }
    names[i] = clash ? strdup(paths[i]) : strndup(base, bl);
    if (!names[i]) { fprintf(stderr, "rac plot: out of memory\n"); rc = 1; break; }
    groups[i] = (PlotGroup){.name = names[i], .logs = &ptrs[i], .n = 1};
  }
  if (rc == 0) {
    char t[256];
    if (!title) {
      snprintf(t, sizeof t, "%d run%s: loss, validation metrics and head diversity", nlogs,
               nlogs == 1 ? "" : "s");
      title = t;
    }
    if (plot_curves(out, title, groups, (size_t)nlogs, PLOT_LOSS | PLOT_VALID | PLOT_DIVERSITY,
                    err, sizeof err)) {
      fprintf(stderr, "rac plot: %s\n", err);
      rc = 1;
    } else fprintf(stderr, "rac plot: wrote %s\n", out);
  }
  for (int i = 0; i < nread; i++) runlog_free(&logs[i]);
  for (int i = 0; names && i < nlogs; i++) free(names[i]);
  free(names);
  free(groups);
  free(ptrs);
  free(logs);
  free(paths);
  return rc;
}

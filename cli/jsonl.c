/* jsonl.c - the log reader of jsonl.h. */
#include "jsonl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dupstr(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

void runlog_free(RunLog *l) {
  free(l->path);
  free(l->step);
  free(l->loss);
  if (l->evals) json_decref(l->evals);
  if (l->test) json_decref(l->test);
  memset(l, 0, sizeof *l);
}

static int num(const json_t *o, const char *k, double *v) {
  const json_t *x = json_object_get(o, k);
  if (!x || !json_is_number(x)) return -1;
  *v = json_number_value(x);
  return 0;
}

int runlog_read(const char *path, RunLog *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
    return -1;
  }
  out->path = dupstr(path);
  out->evals = json_array();
  size_t cap = 0;
  char *line = NULL;
  size_t lcap = 0;
  ssize_t len;
  long lineno = 0;
  int rc = 0;
  if (!out->path || !out->evals) {
    snprintf(err, errlen, "%s: out of memory", path);
    rc = -1;
  }
  while (rc == 0 && (len = getline(&line, &lcap, f)) >= 0) {
    lineno++;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
    size_t sp = strspn(line, " \t");
    if (line[sp] == 0) continue; /* a blank line */
    json_error_t je;
    json_t *o = json_loadb(line, (size_t)len, 0, &je);
    if (!o || !json_is_object(o)) {
      snprintf(err, errlen, "%s:%ld: not a JSON object%s%s", path, lineno, o ? "" : ": ",
               o ? "" : je.text);
      if (o) json_decref(o);
      rc = -1;
      break;
    }
    const char *ev = json_string_value(json_object_get(o, "event"));
    double step, loss;
    if (!ev) {
      snprintf(err, errlen, "%s:%ld: no \"event\" field (not a log of rac run --log?)", path,
               lineno);
      rc = -1;
    } else if (!strcmp(ev, "step")) {
      if (num(o, "step", &step) || num(o, "loss", &loss)) {
        snprintf(err, errlen, "%s:%ld: a step event needs the numbers \"step\" and \"loss\"", path,
                 lineno);
        rc = -1;
      } else {
        while (out->nsteps && out->step[out->nsteps - 1] >= step) out->nsteps--;
        if (out->nsteps == cap) {
          cap = cap ? 2 * cap : 256;
          double *a = realloc(out->step, cap * sizeof *a);
          if (a) out->step = a;
          double *b = a ? realloc(out->loss, cap * sizeof *b) : NULL;
          if (b) out->loss = b;
          if (!a || !b) {
            snprintf(err, errlen, "%s: out of memory", path);
            rc = -1;
          }
        }
        if (rc == 0) {
          out->step[out->nsteps] = step;
          out->loss[out->nsteps] = loss;
          out->nsteps++;
        }
      }
    } else if (!strcmp(ev, "eval")) {
      const char *split = json_string_value(json_object_get(o, "split"));
      if (!split || num(o, "step", &step)) {
        snprintf(err, errlen, "%s:%ld: an eval event needs a \"split\" and a number \"step\"",
                 path, lineno);
        rc = -1;
      } else if (!strcmp(split, "test")) {
        if (out->test) json_decref(out->test);
        out->test = json_incref(o);
      } else {
        /* a resumed run's evals replace those at or after their step */
        size_t n = json_array_size(out->evals);
        while (n > 0) {
          json_t *last = json_array_get(out->evals, n - 1);
          double ls;
          const char *lsp = json_string_value(json_object_get(last, "split"));
          if (num(last, "step", &ls) || ls < step || !lsp || strcmp(lsp, split)) break;
          json_array_remove(out->evals, --n);
        }
        if (json_array_append(out->evals, o)) {
          snprintf(err, errlen, "%s: out of memory", path);
          rc = -1;
        }
      }
    }
    json_decref(o);
  }
  if (rc == 0 && ferror(f)) {
    snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
    rc = -1;
  }
  free(line);
  fclose(f);
  if (rc) runlog_free(out);
  return rc;
}

double ev_metric(const json_t *ev, const char *name, const char *sub) {
  const json_t *x = json_object_get(ev, name);
  if (x && sub) x = json_is_object(x) ? json_object_get(x, sub) : NULL;
  return x && json_is_number(x) ? json_number_value(x) : NAN;
}

static int metrics_add(MetricList *l, const char *name, const char *sub) {
  for (size_t i = 0; i < l->n; i++)
    if (!strcmp(l->m[i].name, name) && (!sub ? !l->m[i].sub : l->m[i].sub && !strcmp(l->m[i].sub, sub)))
      return 0;
  Metric *m = realloc(l->m, (l->n + 1) * sizeof *m);
  if (!m) return -1;
  l->m = m;
  m[l->n].name = dupstr(name);
  m[l->n].sub = sub ? dupstr(sub) : NULL;
  if (!m[l->n].name || (sub && !m[l->n].sub)) {
    free(m[l->n].name);
    free(m[l->n].sub);
    return -1;
  }
  l->n++;
  return 0;
}

int metrics_collect(MetricList *l, const json_t *ev) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)ev, k, v) {
    if (!strcmp(k, "step") || !strcmp(k, "epoch")) continue;
    if (json_is_number(v)) {
      if (metrics_add(l, k, NULL)) return -1;
    } else if (json_is_object(v)) {
      const char *k2;
      json_t *v2;
      json_object_foreach(v, k2, v2)
        if (json_is_number(v2) && metrics_add(l, k, k2)) return -1;
    }
  }
  return 0;
}

void metrics_free(MetricList *l) {
  for (size_t i = 0; i < l->n; i++) {
    free(l->m[i].name);
    free(l->m[i].sub);
  }
  free(l->m);
  l->m = NULL;
  l->n = 0;
}

void metric_label(const Metric *m, char *buf, size_t n) {
  if (m->sub) snprintf(buf, n, "%s %s", m->name, m->sub);
  else snprintf(buf, n, "%s", m->name);
}

/* jsonl.h - reading the JSON Lines logs of `rac run --log` (jansson).
 *
 * A log has "step" events {step, loss, lr} and "eval" events {split, step,
 * epoch, loss, accuracy?, perplexity, head_diversity?: {layer: value}};
 * other events and other fields are kept as they are, so metrics the log
 * gains later are carried through.  A log appended to by a resumed run
 * repeats steps: a step (or an eval of the same split) at or before an
 * earlier one replaces what came after it. */
#ifndef RAC_JSONL_H
#define RAC_JSONL_H

#include <jansson.h>
#include <stddef.h>

typedef struct RunLog {
  char *path;
  size_t nsteps;
  double *step, *loss;  /* the "step" events */
  json_t *evals;        /* array: the "eval" events of every split but test */
  json_t *test;         /* the last "eval" event of the test split, or NULL */
} RunLog;

/* Reads a log; 0, or -1 with "FILE:LINE: what" (or "FILE: what") in err. */
int runlog_read(const char *path, RunLog *out, char *err, size_t errlen);
void runlog_free(RunLog *l);

/* A metric of an eval event: a number field `name`, or the member `sub` of
 * an object field `name` (head_diversity's layers).  NaN if absent. */
double ev_metric(const json_t *ev, const char *name, const char *sub);

/* The metrics of an eval event, in its order: every number field but step
 * and epoch, and every number member of an object field. */
typedef struct Metric {
  char *name, *sub; /* sub NULL for a plain field */
} Metric;
typedef struct MetricList {
  Metric *m;
  size_t n;
} MetricList;
/* Adds the metrics of ev not in the list yet; 0 or -1 (out of memory). */
int metrics_collect(MetricList *l, const json_t *ev);
void metrics_free(MetricList *l);
/* "accuracy" or "head_diversity topic.r0.a" into buf. */
void metric_label(const Metric *m, char *buf, size_t n);

#endif

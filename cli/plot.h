/* plot.h - learning curves from run logs (rac plot, and the plots of rac
 * sweep): the training loss, the validation metrics and head diversity per
 * layer against the step, one line per group of runs (their mean at each
 * step, with a band from their minimum to their maximum). */
#ifndef RAC_PLOT_H
#define RAC_PLOT_H

#include <stddef.h>

#include "jsonl.h"

typedef struct PlotGroup {
  const char *name;
  RunLog *const *logs;
  size_t n;
} PlotGroup;

enum { PLOT_LOSS = 1, PLOT_VALID = 2, PLOT_DIVERSITY = 4 };

/* One figure with the charts `what` asks for; 0 or -1 with err. */
int plot_curves(const char *path, const char *title, const PlotGroup *groups, size_t ngroups,
                unsigned what, char *err, size_t errlen);

/* A curve over the union of the runs' x values: at each x the mean of the
 * runs that have it, and their min and max (NaN where fewer than two). */
typedef struct Curve {
  size_t n;
  double *x, *y, *lo, *hi;
} Curve;
/* xs[r], ys[r], ns[r]: run r's points (x increasing). 0 or -1 (memory). */
int curve_merge(Curve *c, double *const *xs, double *const *ys, const size_t *ns, size_t nruns);
void curve_free(Curve *c);

/* rac plot LOG.jsonl... --out FILE.svg [--title TEXT] */
int rac_plot_main(int argc, char **argv);

#endif

/* svg.h - line charts as SVG files, drawn by rac itself: a figure is a
 * title, a legend of named colours and a grid of charts; a chart has axes
 * with ticks and labels, and series drawn as lines (NaN breaks a line),
 * optional bands (lo..hi) and optional markers with error bars. */
#ifndef RAC_SVG_H
#define RAC_SVG_H

#include <stddef.h>

typedef struct SvgSeries {
  int color;               /* index into the figure's legend */
  size_t n;
  const double *x, *y;
  const double *lo, *hi;   /* NULL: no band / no error bars */
  int markers;             /* 1: a dot per point, lo..hi as error bars */
} SvgSeries;

typedef struct SvgChart {
  const char *title, *xlabel, *ylabel;
  int logx;                /* x on a log10 scale (x > 0) */
  const double *xticks;    /* NULL: ticks chosen from the range */
  size_t nxticks;
  const SvgSeries *series;
  size_t nseries;
} SvgChart;

typedef struct SvgFigure {
  const char *title;
  const char *const *legend; /* names of the colours 0..nlegend-1 */
  size_t nlegend;
  const SvgChart *charts;
  size_t ncharts;
  int cols;                /* charts per row (0: 2) */
} SvgFigure;

/* The colour of legend entry i ("#rrggbb"). */
const char *svg_color(int i);

/* Writes the figure to path (through path.tmp and a rename).  Returns 0, or
 * -1 with a message naming the file in err. */
int svg_write(const char *path, const SvgFigure *fig, char *err, size_t errlen);

#endif

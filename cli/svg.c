/* svg.c - the SVG writer of svg.h: plain SVG 1.1, fonts and colours inline,
 * no scripts; the same input gives the same bytes. */
#include "svg.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PANEL_W = 470, PANEL_H = 310, MARGIN_L = 70, MARGIN_R = 18, MARGIN_T = 34, MARGIN_B = 50 };

static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

const char *svg_color(int i) {
  int n = (int)(sizeof colors / sizeof colors[0]);
  return colors[((i % n) + n) % n];
}

static void put_text(FILE *f, const char *s) {
  for (; s && *s; s++) {
    switch (*s) {
    case '&': fputs("&amp;", f); break;
    case '<': fputs("&lt;", f); break;
    case '>': fputs("&gt;", f); break;
    case '"': fputs("&quot;", f); break;
    case '\'': fputs("&apos;", f); break;
    default:
      /* control characters are not allowed in XML 1.0 */
      if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n') fputc('?', f);
      else fputc(*s, f);
    }
  }
}

/* A label for tick value v on a scale with tick step `step`. */
static void tick_label(char *buf, size_t n, double v, double step) {
  if (fabs(v) < step * 1e-9) v = 0;
  double av = fabs(v);
  if (v != 0 && (av >= 1e6 || av < 1e-4)) {
    snprintf(buf, n, "%.3g", v);
    return;
  }
  int dec = step > 0 ? (int)ceil(-log10(step) - 1e-9) : 0;
  if (dec < 0) dec = 0;
  if (dec > 8) dec = 8;
  snprintf(buf, n, "%.*f", dec, v);
}

/* A "nice" step (1, 2 or 5 times a power of ten) giving about `want` ticks. */
static double nice_step(double range, int want) {
  double raw = range / want;
  double p = pow(10, floor(log10(raw)));
  double m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

typedef struct Range {
  double lo, hi;
} Range;

static void grow(Range *r, double v) {
  if (!isfinite(v)) return;
  if (v < r->lo) r->lo = v;
  if (v > r->hi) r->hi = v;
}

static void pad_range(Range *r) {
  if (!(r->lo <= r->hi)) { r->lo = 0; r->hi = 1; }
  if (r->hi - r->lo < 1e-12 * (fabs(r->lo) + fabs(r->hi)) || r->hi == r->lo) {
    double d = fabs(r->lo) > 0 ? fabs(r->lo) * 0.05 : 0.5;
    r->lo -= d;
    r->hi += d;
  }
}

typedef struct Map {
  double x0, y0, w, h;  /* plot area in pixels */
  Range xr, yr;         /* data ranges (x in log10 when logx) */
  int logx;
} Map;

static double px(const Map *m, double x) {
  if (m->logx) x = log10(x);
  return m->x0 + (x - m->xr.lo) / (m->xr.hi - m->xr.lo) * m->w;
}
static double py(const Map *m, double y) {
  return m->y0 + m->h - (y - m->yr.lo) / (m->yr.hi - m->yr.lo) * m->h;
}

static int usable(const Map *m, double x, double y) {
  return isfinite(x) && isfinite(y) && (!m->logx || x > 0);
}

static void draw_series(FILE *f, const Map *m, const SvgSeries *s) {
  const char *c = svg_color(s->color);
  /* bands: one polygon per run of points with finite lo and hi */
  if (s->lo && s->hi && !s->markers) {
    size_t i = 0;
    while (i < s->n) {
      while (i < s->n && !(usable(m, s->x[i], s->lo[i]) && isfinite(s->hi[i]))) i++;
      size_t j = i;
      while (j < s->n && usable(m, s->x[j], s->lo[j]) && isfinite(s->hi[j])) j++;
      if (j - i >= 2) {
        fprintf(f, "<polygon fill=\"%s\" fill-opacity=\"0.18\" stroke=\"none\" points=\"", c);
        for (size_t k = i; k < j; k++) fprintf(f, "%.1f,%.1f ", px(m, s->x[k]), py(m, s->hi[k]));
        for (size_t k = j; k-- > i;) fprintf(f, "%.1f,%.1f ", px(m, s->x[k]), py(m, s->lo[k]));
        fputs("\"/>\n", f);
      }
      i = j;
    }
  }
  /* the line, broken where a value is missing */
  int open = 0;
  size_t npts = 0;
  for (size_t i = 0; i < s->n; i++) {
    if (!usable(m, s->x[i], s->y[i])) {
      if (open) fputs("\"/>\n", f);
      open = 0;
      continue;
    }
    if (!open) {
      fprintf(f, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" d=\"M", c);
      open = 1;
    } else fputs(" L", f);
    fprintf(f, "%.1f,%.1f", px(m, s->x[i]), py(m, s->y[i]));
    npts++;
  }
  if (open) fputs("\"/>\n", f);
  if (s->markers || npts == 1)
    for (size_t i = 0; i < s->n; i++) {
      if (!usable(m, s->x[i], s->y[i])) continue;
      double x = px(m, s->x[i]);
      if (s->lo && s->hi && isfinite(s->lo[i]) && isfinite(s->hi[i])) {
        double a = py(m, s->lo[i]), b = py(m, s->hi[i]);
        fprintf(f, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.2\" d=\"M%.1f,%.1f L%.1f,%.1f "
                   "M%.1f,%.1f L%.1f,%.1f M%.1f,%.1f L%.1f,%.1f\"/>\n",
                c, x, a, x, b, x - 4, a, x + 4, a, x - 4, b, x + 4, b);
      }
      fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", x, py(m, s->y[i]), c);
    }
}

static void draw_chart(FILE *f, const SvgChart *ch, double ox, double oy) {
  Map m = {.x0 = ox + MARGIN_L, .y0 = oy + MARGIN_T, .w = PANEL_W - MARGIN_L - MARGIN_R,
           .h = PANEL_H - MARGIN_T - MARGIN_B, .logx = ch->logx};
  m.xr = (Range){INFINITY, -INFINITY};
  m.yr = (Range){INFINITY, -INFINITY};
  for (size_t k = 0; k < ch->nseries; k++) {
    const SvgSeries *s = &ch->series[k];
    for (size_t i = 0; i < s->n; i++) {
      if (!usable(&m, s->x[i], s->y[i])) continue;
      grow(&m.xr, m.logx ? log10(s->x[i]) : s->x[i]);
      grow(&m.yr, s->y[i]);
      if (s->lo) grow(&m.yr, s->lo[i]);
      if (s->hi) grow(&m.yr, s->hi[i]);
    }
  }
  for (size_t i = 0; i < ch->nxticks; i++)
    if (!m.logx || ch->xticks[i] > 0) grow(&m.xr, m.logx ? log10(ch->xticks[i]) : ch->xticks[i]);
  int has_data = m.yr.lo <= m.yr.hi;
  pad_range(&m.xr);
  pad_range(&m.yr);
  /* y: nice ticks, the range widened to them */
  double ys = nice_step(m.yr.hi - m.yr.lo, 5);
  m.yr.lo = floor(m.yr.lo / ys + 1e-9) * ys;
  m.yr.hi = ceil(m.yr.hi / ys - 1e-9) * ys;
  double xs = 0;
  if (ch->nxticks || m.logx) {
    /* given ticks (or log scale): a small margin either side */
    double d = (m.xr.hi - m.xr.lo) * 0.05;
    m.xr.lo -= d;
    m.xr.hi += d;
  } else {
    xs = nice_step(m.xr.hi - m.xr.lo, 6);
    m.xr.lo = floor(m.xr.lo / xs + 1e-9) * xs;
    m.xr.hi = ceil(m.xr.hi / xs - 1e-9) * xs;
  }

  fprintf(f, "<g>\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#ffffff\" "
             "stroke=\"#444444\" stroke-width=\"1\"/>\n",
          m.x0, m.y0, m.w, m.h);
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"14\" "
             "font-weight=\"bold\">",
          m.x0 + m.w / 2, oy + 22);
  put_text(f, ch->title);
  fputs("</text>\n", f);
  char lab[64];
  /* y ticks and grid */
  for (double v = m.yr.lo; v <= m.yr.hi + ys * 1e-6; v += ys) {
    double y = py(&m, v);
    fprintf(f, "<path stroke=\"#e4e4e4\" d=\"M%.1f,%.1f L%.1f,%.1f\"/>\n", m.x0, y, m.x0 + m.w, y);
    fprintf(f, "<path stroke=\"#444444\" d=\"M%.1f,%.1f L%.1f,%.1f\"/>\n", m.x0 - 5, y, m.x0, y);
    tick_label(lab, sizeof lab, v, ys);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%s</text>\n",
            m.x0 - 8, y + 4, lab);
  }
  /* x ticks */
  double tv[64];
  size_t nt = 0;
  if (ch->nxticks) {
    for (size_t i = 0; i < ch->nxticks && nt < 64; i++)
      if (!m.logx || ch->xticks[i] > 0) tv[nt++] = ch->xticks[i];
  } else if (m.logx) {
    for (double e = ceil(m.xr.lo); e <= floor(m.xr.hi) && nt < 64; e++) tv[nt++] = pow(10, e);
  } else {
    for (double v = m.xr.lo; v <= m.xr.hi + xs * 1e-6 && nt < 64; v += xs) tv[nt++] = v;
  }
  for (size_t i = 0; i < nt; i++) {
    double x = px(&m, tv[i]);
    fprintf(f, "<path stroke=\"#444444\" d=\"M%.1f,%.1f L%.1f,%.1f\"/>\n", x, m.y0 + m.h, x,
            m.y0 + m.h + 5);
    if (ch->nxticks || m.logx) snprintf(lab, sizeof lab, "%g", tv[i]);
    else tick_label(lab, sizeof lab, tv[i], xs);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\">%s</text>\n", x,
            m.y0 + m.h + 18, lab);
  }
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\">", m.x0 + m.w / 2,
          m.y0 + m.h + 38);
  put_text(f, ch->xlabel);
  fputs("</text>\n", f);
  double ly = m.y0 + m.h / 2, lx = ox + 16;
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\" "
             "transform=\"rotate(-90 %.1f %.1f)\">",
          lx, ly, lx, ly);
  put_text(f, ch->ylabel);
  fputs("</text>\n", f);
  if (!has_data)
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\" "
               "fill=\"#888888\">no data</text>\n",
            m.x0 + m.w / 2, m.y0 + m.h / 2);
  for (size_t k = 0; k < ch->nseries; k++) draw_series(f, &m, &ch->series[k]);
  fputs("</g>\n", f);
}

int svg_write(const char *path, const SvgFigure *fig, char *err, size_t errlen) {
  size_t tlen = strlen(path) + 5;
  char *tmp = malloc(tlen);
  if (!tmp) { snprintf(err, errlen, "%s: out of memory", path); return -1; }
  snprintf(tmp, tlen, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) {
    snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    free(tmp);
    return -1;
  }
  int cols = fig->cols > 0 ? fig->cols : 2;
  if ((size_t)cols > fig->ncharts && fig->ncharts > 0) cols = (int)fig->ncharts;
  int rows = (int)((fig->ncharts + (size_t)cols - 1) / (size_t)cols);
  double width = (double)cols * PANEL_W + 20;
  /* the legend: entries laid left to right, wrapped to the width */
  double lx = 20, lrow = 0;
  double *ex = calloc(fig->nlegend + 1, sizeof *ex), *ey = calloc(fig->nlegend + 1, sizeof *ey);
  if (!ex || !ey) {
    fclose(f);
    remove(tmp);
    free(tmp), free(ex), free(ey);
    snprintf(err, errlen, "%s: out of memory", path);
    return -1;
  }
  for (size_t i = 0; i < fig->nlegend; i++) {
    double w = 34 + 7.0 * (double)strlen(fig->legend[i]);
    if (lx + w > width - 10 && lx > 20) { lx = 20; lrow++; }
    ex[i] = lx;
    ey[i] = lrow;
    lx += w + 14;
  }
  double top = 44 + (fig->nlegend ? (lrow + 1) * 20 : 0);
  double height = top + rows * PANEL_H + 10;
  fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
             "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%.0f\" "
             "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"DejaVu Sans, Arial, "
             "sans-serif\">\n",
          width, height, width, height);
  fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", width,
          height);
  fprintf(f, "<text x=\"%.1f\" y=\"26\" text-anchor=\"middle\" font-size=\"17\" "
             "font-weight=\"bold\">",
          width / 2);
  put_text(f, fig->title);
  fputs("</text>\n", f);
  for (size_t i = 0; i < fig->nlegend; i++) {
    double y = 44 + ey[i] * 20;
    fprintf(f, "<path stroke=\"%s\" stroke-width=\"3\" d=\"M%.1f,%.1f L%.1f,%.1f\"/>\n",
            svg_color((int)i), ex[i], y + 6, ex[i] + 24, y + 6);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">", ex[i] + 30, y + 10);
    put_text(f, fig->legend[i]);
    fputs("</text>\n", f);
  }
  free(ex);
  free(ey);
  for (size_t c = 0; c < fig->ncharts; c++)
    draw_chart(f, &fig->charts[c], 10 + (double)(c % (size_t)cols) * PANEL_W,
               top + (double)(c / (size_t)cols) * PANEL_H);
  fputs("</svg>\n", f);
  int bad = ferror(f);
  if (fclose(f) != 0 || bad) {
    snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    remove(tmp);
    free(tmp);
    return -1;
  }
  if (rename(tmp, path) != 0) {
    snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    remove(tmp);
    free(tmp);
    return -1;
  }
  free(tmp);
  return 0;
}

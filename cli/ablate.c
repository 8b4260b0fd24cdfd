/* ablate.c - rac eval --ablate-heads (ablate.h): the figures come from
 * ra_ablate_heads; this prints them and draws the curve. */
#include "ablate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svg.h"

/* The SVG's path: out, else CKPT minus `.safetensors`, plus `.ablation.svg`. */
static char *svg_path(const char *ckpt, const char *out) {
  const char *ext = ".safetensors";
  size_t n = strlen(ckpt), e = strlen(ext);
  if (!out && n > e && !strcmp(ckpt + n - e, ext)) n -= e;
  size_t len = out ? strlen(out) + 1 : n + sizeof ".ablation.svg";
  char *p = malloc(len);
  if (!p) return NULL;
  if (out) memcpy(p, out, len);
  else snprintf(p, len, "%.*s.ablation.svg", (int)n, ckpt);
  return p;
}

static int draw(const ra_ablation *a, const char *ckpt, const char *split, const char *path) {
  int n = a->n_heads;
  double *gx = malloc(sizeof(double) * (size_t)(n + 1));
  double *gy = malloc(sizeof(double) * (size_t)(n + 1));
  double *sx = malloc(sizeof(double) * (size_t)n);
  double *ticks = malloc(sizeof(double) * (size_t)(n + 1));
  int rc = 0;
  if (!gx || !gy || !sx || !ticks) {
    fprintf(stderr, "rac: out of memory for the plot\n");
    rc = 1;
  }
  if (rc == 0) {
    gx[0] = n;
    gy[0] = a->base;
    for (int k = 0; k < n; k++) gx[k + 1] = n - k - 1, gy[k + 1] = a->greedy[k];
    for (int i = 0; i < n; i++) sx[i] = i + 1;
    for (int i = 0; i <= n; i++) ticks[i] = i;
    char ylabel[64], title[512], t1[96], t2[96];
    snprintf(ylabel, sizeof ylabel, "%s (%s)", a->metric, split ? split : "test");
    snprintf(t1, sizeof t1, "least important head removed first");
    snprintf(t2, sizeof t2, "one head removed (heads numbered layer by layer)");
    snprintf(title, sizeof title, "head ablation of %s", ckpt);
    SvgSeries g = {.color = 0, .n = (size_t)n + 1, .x = gx, .y = gy, .markers = 1};
    SvgSeries s1 = {.color = 1, .n = (size_t)n, .x = sx, .y = a->single, .markers = 1};
    SvgChart charts[2] = {
        {.title = t1, .xlabel = "heads remaining", .ylabel = ylabel, .xticks = n <= 16 ? ticks : NULL,
         .nxticks = (size_t)n + 1, .series = &g, .nseries = 1},
        {.title = t2, .xlabel = "head removed", .ylabel = ylabel, .xticks = n <= 16 ? ticks + 1 : NULL,
         .nxticks = (size_t)n, .series = &s1, .nseries = 1},
    };
    const char *legend[2] = {"greedy removal", "one head removed"};
    SvgFigure fig = {.title = title, .legend = legend, .nlegend = 2, .charts = charts,
                     .ncharts = 2, .cols = 2};
    char err[1024];
    if (svg_write(path, &fig, err, sizeof err) != 0) {
      fprintf(stderr, "rac: %s\n", err);
      rc = 1;
    }
  }
  free(gx);
  free(gy);
  free(sx);
  free(ticks);
  return rc;
}

int cli_ablate(ra_ctx *ctx, const char *train, const char *ckpt, const char *split,
               const char *out) {
  char *path = svg_path(ckpt, out);
  if (!path) {
    fprintf(stderr, "rac: out of memory\n");
    return 1;
  }
  const ra_ablation *a = NULL;
  if (ra_ablate_heads(ctx, train, ckpt, split, &a) != 0) {
    free(path);
    const char *e = ra_error(ctx);
    size_t n = strlen(e);
    /* a data-parallel run's errors are agreed by its ranks: rank 0 prints */
    if (ra_mpi_rank(ctx, NULL) <= 0) {
      fputs(e, stderr);
      if (n && e[n - 1] != '\n') fputc('\n', stderr);
    }
    return ra_errcode(ctx) == RA_EUSAGE ? 2 : 1;
  }
  if (ra_mpi_rank(ctx, NULL) > 0) { /* the evaluations were shared; rank 0 reports */
    free(path);
    return 0;
  }
  const char *sp = split ? split : "test";
  int n = a->n_heads;
  size_t w = strlen("layer");
  for (int i = 0; i < n; i++)
    if (strlen(a->layer[i]) > w) w = strlen(a->layer[i]);
  printf("%s %s with heads removed (%d heads; %s is better)\n", sp, a->metric, n,
         a->higher_is_better ? "higher" : "lower");
  printf("all heads: %s %.4f\n\n", a->metric, a->base);
  printf("one head removed:\n");
  printf("%-*s  head  %10s  %10s\n", (int)w, "layer", a->metric, "change");
  for (int i = 0; i < n; i++)
    printf("%-*s  %4d  %10.4f  %+10.4f\n", (int)w, a->layer[i], a->head[i], a->single[i],
           a->single[i] - a->base);
  printf("\nremoved one by one, the least important first:\n");
  printf("%4s  %-*s  head  %10s  %10s\n", "left", (int)w, "removed", a->metric, "change");
  printf("%4d  %-*s  %4s  %10.4f  %+10.4f\n", n, (int)w, "(none)", "", a->base, 0.0);
  for (int k = 0; k < n; k++) {
    int i = a->order[k];
    printf("%4d  %-*s  %4d  %10.4f  %+10.4f\n", n - k - 1, (int)w, a->layer[i], a->head[i],
           a->greedy[k], a->greedy[k] - a->base);
  }
  int rc = draw(a, ckpt, split, path);
  if (rc == 0) printf("\nplot: %s\n", path);
  free(path);
  return rc;
}

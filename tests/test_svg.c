/* test_svg.c - the SVG writer (cli/svg.c) and the curve merging of the
 * plots (cli/plot.c). */
#include "testutil.h"
#include "xmlcheck.h"
#include "../cli/plot.h"
#include "../cli/svg.h"

static void write_figure(const char *path) {
  double x[] = {1, 2, 3, 4, 5}, y[] = {0.5, 0.4, NAN, 0.3, 0.25};
  double lo[] = {0.45, 0.35, NAN, 0.28, 0.2}, hi[] = {0.55, 0.45, NAN, 0.33, 0.3};
  double x2[] = {1e-4, 1e-3, 1e-2}, y2[] = {0.6, 0.7, 0.65}, l2[] = {0.55, 0.6, 0.6},
         h2[] = {0.65, 0.8, 0.7};
  SvgSeries s1[] = {{.color = 0, .n = 5, .x = x, .y = y, .lo = lo, .hi = hi},
                    {.color = 1, .n = 5, .x = x, .y = hi}};
  SvgSeries s2[] = {{.color = 0, .n = 3, .x = x2, .y = y2, .lo = l2, .hi = h2, .markers = 1}};
  SvgChart ch[] = {{.title = "loss <train> & \"valid\"", .xlabel = "step", .ylabel = "loss",
                    .series = s1, .nseries = 2},
                   {.title = "accuracy against lr", .xlabel = "lr", .ylabel = "accuracy",
                    .logx = 1, .xticks = x2, .nxticks = 3, .series = s2, .nseries = 1},
                   {.title = "empty", .xlabel = "step", .ylabel = "nothing"}};
  const char *legend[] = {"repulsion=none", "repulsion=svgd & 'more'"};
  SvgFigure fig = {.title = "a figure", .legend = legend, .nlegend = 2, .charts = ch,
                   .ncharts = 3, .cols = 2};
  char err[256];
  cr_assert_eq(svg_write(path, &fig, err, sizeof err), 0, "%s", err);
}

Test(svg, figure_is_well_formed_and_escaped) {
  char dir[] = "/tmp/ra-svg-XXXXXX";
  cr_assert(mkdtemp(dir));
  char path[64], cmd[160];
  snprintf(path, sizeof path, "%s/f.svg", dir);
  write_figure(path);
  char *text = tu_read_file(path, NULL);
  cr_assert(text);
  const char *bad = xml_check(text);
  cr_assert(bad == NULL, "not well formed: %s", bad);
  cr_assert(strstr(text, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
  cr_assert(strstr(text, "loss &lt;train&gt; &amp; &quot;valid&quot;"), "title not escaped");
  cr_assert(strstr(text, "repulsion=svgd &amp; &apos;more&apos;"), "legend not escaped");
  /* the given ticks are labelled, the empty chart says so, the band and
   * the markers are drawn */
  cr_assert(strstr(text, ">0.001</text>") && strstr(text, ">0.0001</text>"));
  cr_assert(strstr(text, ">no data</text>"));
  cr_assert(strstr(text, "<polygon") && strstr(text, "<circle"));
  /* a NaN breaks a line: two paths for each series of the first chart, one
   * for the markers' series */
  int paths = 0;
  for (const char *p = text; (p = strstr(p, "stroke-width=\"1.6\"")); p++) paths++;
  cr_assert_eq(paths, 5, "lines: %d, want 2 + 2 + 1", paths);
  /* the same figure gives the same bytes */
  char path2[64];
  snprintf(path2, sizeof path2, "%s/g.svg", dir);
  write_figure(path2);
  char *text2 = tu_read_file(path2, NULL);
  cr_assert(text2 && !strcmp(text, text2));
  if (system("command -v xmllint >/dev/null 2>&1") == 0) {
    snprintf(cmd, sizeof cmd, "xmllint --noout %s", path);
    cr_assert_eq(system(cmd), 0, "xmllint rejects %s", path);
  }
  free(text);
  free(text2);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  (void)!system(cmd);
}

/* The checker itself rejects what it should. */
Test(svg, xml_check_rejects_malformed) {
  cr_assert(xml_check("<a><b/></a>") == NULL);
  cr_assert(xml_check("<a><b></a>") != NULL);
  cr_assert(xml_check("<a x=1/>") != NULL);
  cr_assert(xml_check("<a>x & y</a>") != NULL);
  cr_assert(xml_check("<a/><b/>") != NULL);
  cr_assert(xml_check("<a t=\"<\"/>") != NULL);
}

Test(svg, unwritable_path_is_an_error) {
  SvgFigure fig = {.title = "t"};
  char err[256] = "";
  cr_assert_eq(svg_write("/nonexistent-dir/x.svg", &fig, err, sizeof err), -1);
  cr_assert(strstr(err, "/nonexistent-dir/x.svg: cannot write"), "%s", err);
}

/* Curves over runs: the union of the steps, the mean of the runs present
 * at each, and their range where two or more are. */
Test(plot, curve_merge_mean_and_range) {
  double xa[] = {1, 2, 3}, ya[] = {1, 2, 3};
  double xb[] = {2, 3, 4}, yb[] = {4, NAN, 8};
  double *xs[] = {xa, xb}, *ys[] = {ya, yb};
  size_t ns[] = {3, 3};
  Curve c;
  cr_assert_eq(curve_merge(&c, xs, ys, ns, 2), 0);
  cr_assert_eq(c.n, 4);
  double wx[] = {1, 2, 3, 4}, wy[] = {1, 3, 3, 8};
  for (size_t i = 0; i < 4; i++) {
    cr_assert_eq(c.x[i], wx[i]);
    cr_assert_eq(c.y[i], wy[i], "y[%zu] = %g", i, c.y[i]);
  }
  cr_assert(isnan(c.lo[0]) && isnan(c.hi[3]));
  cr_assert(c.lo[1] == 2 && c.hi[1] == 4);
  curve_free(&c);
}

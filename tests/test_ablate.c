/* test_ablate.c - rac eval --ablate-heads and ra_ablate_heads: removing no
 * head is plain evaluation bit for bit, removing a head is the model with
 * that head's rows of wo zeroed, the greedy order is the one its figures
 * say, the weights are left as they were, and the command's table, plot
 * and errors.  (The two API tests have no .timeout: under ASan, criterion's
 * runner leaked 48 bytes whenever they ran beside another test with one,
 * in criterion's own allocation; the CLI tests are bounded by tu_sh.) */
#include <math.h>
#include <string.h>

#include "../runtime/api/api_int.h"
#include "../runtime/train/train.h"
#include "ra.h"
#include "testutil.h"
#include "xmlcheck.h"

/* examples/reverse.ra trained for a few steps into ckpt (its data is
 * synthetic: no files). */
static void train_reverse(const char *ckpt) {
  ra_ctx *c = ra_new();
  ra_set_option(c, "quiet", "1");
  ra_set_option(c, "threads", "2");
  ra_set_option(c, "set.steps", "40");
  ra_set_option(c, "set.eval", "off");
  ra_set_option(c, "set.save", ckpt);
  cr_assert_eq(ra_load_file(c, "examples/reverse.ra"), 0, "%s", ra_error(c));
  cr_assert_eq(ra_train(c, NULL, NULL, NULL), 0, "%s", ra_error(c));
  ra_free(c);
}

static ra_ctx *loaded(void) {
  ra_ctx *c = ra_new();
  ra_set_option(c, "quiet", "1");
  ra_set_option(c, "threads", "2");
  cr_assert_eq(ra_load_file(c, "examples/reverse.ra"), 0, "%s", ra_error(c));
  return c;
}

static bool same_double(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* The ablation's figures with nothing removed are train_eval's, every
 * field bit for bit (the same evaluation, on a copy of wo that is the
 * checkpoint's). */
Test(ablate, no_head_removed_is_plain_eval_bit_for_bit) {
  const char *ckpt = tu_tmp("rev.safetensors");
  train_reverse(ckpt);
  ra_ctx *c = loaded();
  TrainDecl t;
  ra_model *m = api_begin_run(c, "test", NULL, ckpt, &t);
  cr_assert_not_null(m, "%s", ra_error(c));
  RunOptions o;
  api_run_options(c, &o);
  char err[1024] = "";
  EvalResult r;
  cr_assert_eq(train_eval(c->prog, &t, &m->ms, &o, SPLIT_TEST, &r, err, sizeof err), 0, "%s", err);
  size_t nw = (size_t)m->ms.nweights;
  float *before = malloc(nw * sizeof(float));
  cr_assert_not_null(before);
  memcpy(before, m->ms.w, nw * sizeof(float));
  Ablation a;
  cr_assert_eq(train_ablate(c->prog, &t, &m->ms, &o, SPLIT_TEST, &a, err, sizeof err), 0, "%s", err);
  cr_assert_eq(a.metric, MET_ACCURACY);
  cr_assert_eq(a.base.examples, r.examples);
  cr_assert(same_double(a.base.loss, r.loss), "%.17g %.17g", a.base.loss, r.loss);
  cr_assert(same_double(a.base.accuracy, r.accuracy));
  cr_assert(same_double(a.base.perplexity, r.perplexity));
  cr_assert_eq(a.base.ngroups, r.ngroups);
  bool same = true;
  for (int g = 0; g < r.ngroups; g++)
    same = same && same_double(a.base.diversity[g], r.diversity[g]) &&
           same_double(a.base.effective[g], r.effective[g]);
  cr_assert(same, "head_diversity or effective_heads differ");
  /* two layers of four heads, layer by layer */
  cr_assert_eq(a.nheads, 8);
  bool listed = true;
  for (int i = 0; i < 8; i++) listed = listed && a.group[i] == i / 4 && a.head[i] == i % 4;
  cr_assert(listed, "the heads are not listed layer by layer");
  cr_assert(memcmp(before, m->ms.w, nw * sizeof(float)) == 0, "the weights changed");
  /* and evaluating again afterwards gives the same figures */
  EvalResult r2;
  cr_assert_eq(train_eval(c->prog, &t, &m->ms, &o, SPLIT_TEST, &r2, err, sizeof err), 0, "%s", err);
  cr_assert(same_double(r2.loss, r.loss));
  ablation_free(m->ms.alloc, &a);
  free(before);
  ra_free(c);
}

/* ckpt with the rows of wo of the given heads (index layer*4 + head)
 * zeroed, saved as out. */
static void zero_heads(const char *ckpt, const int *heads, int n, const char *out) {
  ra_ctx *c = loaded();
  ra_model *m = ra_model_get(c, "reverser");
  cr_assert_not_null(m, "%s", ra_error(c));
  cr_assert_eq(ra_load(m, ckpt), 0, "%s", ra_error(c));
  for (int k = 0; k < n; k++) {
    char path[64];
    snprintf(path, sizeof path, "reverser.r%d.a.wo", heads[k] / 4);
    ra_tensor w;
    cr_assert_eq(ra_param(m, path, &w), 0, "%s", ra_error(c));
    /* [H*hd, d]: head h owns rows h*hd .. (h+1)*hd */
    int64_t rows = w.shape[0] / 4, d = w.shape[1];
    memset((float *)w.data + (heads[k] % 4) * rows * d, 0, (size_t)(rows * d) * sizeof(float));
  }
  cr_assert_eq(ra_save(m, out), 0, "%s", ra_error(c));
  ra_free(c);
}

/* Removing a head is exactly the model whose wo rows of that head are
 * zero: the ablation of that checkpoint has, with nothing removed, the
 * figure the first one had with the head removed.  The greedy steps are
 * the checkpoints with their heads zeroed likewise, and each step removes
 * the head whose removal was best. */
Test(ablate, a_removed_head_is_its_wo_rows_zeroed) {
  const char *ckpt = tu_tmp("rev.safetensors");
  train_reverse(ckpt);
  ra_ctx *c = loaded();
  const ra_ablation *a = NULL;
  cr_assert_eq(ra_ablate_heads(c, NULL, ckpt, NULL, &a), 0, "%s", ra_error(c));
  cr_assert_str_eq(a->metric, "accuracy");
  cr_assert_eq(a->higher_is_better, 1);
  cr_assert_eq(a->n_heads, 8);
  cr_assert_str_eq(a->layer[5], "reverser.r1.a");
  cr_assert_eq(a->head[5], 1);
  /* not every head matters equally, or the test below proves little */
  bool differ = false;
  for (int i = 1; i < 8; i++) differ |= a->single[i] != a->single[0];
  cr_assert(differ, "every head's removal gave %g", a->single[0]);
  double single[8], greedy[8];
  int order[8];
  memcpy(single, a->single, sizeof single);
  memcpy(greedy, a->greedy, sizeof greedy);
  memcpy(order, a->order, sizeof order);
  /* the first step took the best single removal (ties to the earlier) */
  int best = 0;
  for (int i = 1; i < 8; i++)
    if (single[i] > single[best]) best = i;
  cr_assert_eq(order[0], best);
  cr_assert(same_double(greedy[0], single[best]));
  /* every head appears once in the order */
  int seen = 0;
  for (int k = 0; k < 8; k++) seen |= 1 << order[k];
  cr_assert_eq(seen, 255);
  ra_free(c);

  const char *z = tu_tmp("zeroed.safetensors");
  for (int i = 0; i < 8; i += 3) { /* heads 0, 3 and 6: both layers */
    zero_heads(ckpt, &i, 1, z);
    c = loaded();
    const char *sum = NULL;
    cr_assert_eq(ra_eval(c, NULL, z, NULL, &sum), 0, "%s", ra_error(c));
    cr_assert_eq(ra_ablate_heads(c, NULL, z, NULL, &a), 0, "%s", ra_error(c));
    cr_assert(same_double(a->base, single[i]), "head %d: %.17g against %.17g", i, a->base,
              single[i]);
    ra_free(c);
  }
  /* the first three greedy steps, as zeroed checkpoints */
  for (int k = 1; k <= 3; k++) {
    zero_heads(ckpt, order, k, z);
    c = loaded();
    cr_assert_eq(ra_ablate_heads(c, NULL, z, NULL, &a), 0, "%s", ra_error(c));
    cr_assert(same_double(a->base, greedy[k - 1]), "step %d: %.17g against %.17g", k, a->base,
              greedy[k - 1]);
    ra_free(c);
  }
}

/* The command: its table agrees with the API's figures and with plain
 * `rac eval`, the plot is written (where --out says, else beside the
 * checkpoint), and bad uses are clear errors. */
Test(ablate, command_table_plot_and_errors, .timeout = 200) {
  const char *ckpt = tu_tmp("rev.safetensors");
  train_reverse(ckpt);
  const char *svg = tu_tmp("abl.svg");
  TuRun r = tu_sh(120, "$RAC eval examples/reverse.ra --ckpt %s --ablate-heads --quiet --out %s",
                  ckpt, svg);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "test accuracy with heads removed (8 heads; higher is better)\n"), "%s",
            r.out);
  cr_assert(strstr(r.out, "\nremoved one by one, the least important first:\n"), "%s", r.out);
  xml_check_svg_file(svg, "heads remaining");
  /* the figure with all heads is plain eval's */
  TuRun e = tu_sh(60, "$RAC eval examples/reverse.ra --ckpt %s", ckpt);
  cr_assert_eq(e.status, 0, "%s", e.err);
  const char *acc = strstr(e.out, "accuracy ");
  cr_assert_not_null(acc, "%s", e.out);
  char want[64];
  snprintf(want, sizeof want, "all heads: accuracy %.6s\n", acc + 9);
  cr_assert(strstr(r.out, want), "%s not in\n%s", want, r.out);
  /* one row per head in each table, the greedy one down to 0 left */
  int rows = 0;
  for (const char *p = r.out; (p = strstr(p, "reverser.r")); p++) rows++;
  cr_assert_eq(rows, 16, "%s", r.out);
  cr_assert(strstr(r.out, "\n   0  reverser.r"), "%s", r.out);
  tu_run_free(&e);
  tu_run_free(&r);

  /* the default plot path: the checkpoint's, .safetensors -> .ablation.svg */
  r = tu_sh(120, "$RAC eval examples/reverse.ra --ckpt %s --ablate-heads --quiet", ckpt);
  cr_assert_eq(r.status, 0, "%s", r.err);
  char def[600];
  snprintf(def, sizeof def, "%.*s.ablation.svg", (int)(strlen(ckpt) - strlen(".safetensors")), ckpt);
  xml_check_svg_file(def, "heads remaining");
  remove(def);
  tu_run_free(&r);

  r = tu_sh(20, "$RAC run examples/reverse.ra --ablate-heads");
  cr_assert_eq(r.status, 2);
  cr_assert(strstr(r.err, "--ablate-heads is an option of eval, not of 'run'"), "%s", r.err);
  tu_run_free(&r);
  r = tu_sh(20, "$RAC eval examples/reverse.ra --ckpt %s --out %s", ckpt, svg);
  cr_assert_eq(r.status, 2);
  cr_assert(strstr(r.err, "--out goes with eval --ablate-heads"), "%s", r.err);
  tu_run_free(&r);
  r = tu_sh(20, "$RAC eval examples/reverse.ra --ckpt %s.missing --ablate-heads", ckpt);
  cr_assert_eq(r.status, 1);
  cr_assert(strstr(r.err, ".missing"), "%s", r.err);
  tu_run_free(&r);
  /* an unwritable plot path: the table is printed, the error names the file */
  r = tu_sh(120, "$RAC eval examples/reverse.ra --ckpt %s --ablate-heads --quiet --out /nonexistent/dir/a.svg",
            ckpt);
  cr_assert_eq(r.status, 1);
  cr_assert(strstr(r.err, "/nonexistent/dir/a"), "%s", r.err);
  tu_run_free(&r);
  /* a model without an attention layer has no head to remove */
  const char *lic = tu_tmp("lic.ra");
  tu_write_file(lic,
                "data syn = synthetic(task: copy, length: 6, vocab: 8, examples: 64)\n"
                "model pool {\n"
                "  input  seq : int[6]\n"
                "  target out : class(8)[6]\n"
                "  x = embed(seq, vocab: 8, dim: 8)\n"
                "  logits = linear(x, out: 8)\n"
                "  loss cross_entropy(logits, out)\n"
                "}\n"
                "train pool on syn { batch 8  steps 1 }\n");
  const char *pc = tu_tmp("pool.safetensors");
  r = tu_sh(60, "$RAC run %s --quiet --set save=%s && $RAC eval %s --ckpt %s --ablate-heads", lic,
            pc, lic, pc);
  cr_assert_eq(r.status, 2, "%s", r.err);
  cr_assert(strstr(r.err, "model 'pool' has no attention layer whose heads can be removed"), "%s",
            r.err);
  tu_run_free(&r);
}

/* A checkpoint records the heads of each attention layer: with a const
 * that set them otherwise (shapes alone do not show it), loading it is an
 * error naming both, not a silent evaluation of another model. */
Test(ablate, checkpoint_heads_must_match, .timeout = 60) {
  static const char *spec =
      "const h = 2\n"
      "data syn = synthetic(task: copy, length: 6, vocab: 8, examples: 64)\n"
      "model tiny {\n"
      "  input  seq : int[6]\n"
      "  target out : class(8)[6]\n"
      "  x = embed(seq, vocab: 8, dim: 8)\n"
      "  a = attention(x) { heads h }\n"
      "  logits = linear(x + a, out: 8)\n"
      "  loss cross_entropy(logits, out)\n"
      "}\n"
      "train tiny on syn { batch 8  steps 2  metrics accuracy }\n";
  const char *ra = tu_tmp("h.ra"), *ck = tu_tmp("h4.safetensors");
  tu_write_file(ra, spec);
  TuRun r = tu_sh(60, "$RAC run %s --quiet --set h=4 --set save=%s && $RAC eval %s --ckpt %s --set h=4 "
                      "&& $RAC eval %s --ckpt %s --set h=4 --ablate-heads --quiet --out %s.svg",
                  ra, ck, ra, ck, ra, ck, ck);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert(strstr(r.out, "(4 heads; higher is better)"), "%s", r.out);
  tu_run_free(&r);
  r = tu_sh(60, "$RAC eval %s --ckpt %s", ra, ck);
  cr_assert_eq(r.status, 1, "%s", r.err);
  cr_assert(strstr(r.err, "h4.safetensors: trained with heads tiny.a:4, but the model has tiny.a:2"),
            "%s", r.err);
  tu_run_free(&r);
}

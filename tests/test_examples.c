/* test_examples.c - every example trains end to end on a reduced budget
 * and must beat a floor on its test split.  Needs `make data`.
 *
 * The floors are those in the cases below, well under what the budgets
 * reach (measured with 2 threads and the specs' seeds, AMD EPYC family 25
 * model 17: fortunes 2 epochs accuracy 0.585, floor 0.45, chance 0.20;
 * licenses 6 epochs 0.738, floor 0.50, largest class 0.28; charlm 150 steps
 * perplexity 8.87, ceiling 12, about 25 for unigram counts; charlm_bpe 150
 * steps perplexity 56.9 per byte-pair token, ceiling 90, about 181 for
 * unigram counts of its tokens; reverse 2 epochs
 * 1.00, floor 0.90, chance 0.07), so that another BLAS kernel or thread
 * count cannot fail them while a broken model still does. */
#include <string.h>
#include <unistd.h>

#include "ra.h"
#include "testutil.h"

typedef struct Case {
  const char *spec;
  const char *data;       /* a file `make data` builds, or NULL */
  const char *sets[4];    /* "key=value" budget overrides */
  const char *metric;     /* "accuracy" or "perplexity" */
  double floor;           /* accuracy at least / perplexity at most */
} Case;

static double metric_of(const char *summary, const char *metric) {
  const char *p = strstr(summary, metric);
  cr_assert(p, "no %s in '%s'", metric, summary);
  return atof(p + strlen(metric));
}

static void run_case(const Case *k) {
  if (k->data)
    cr_assert(access(k->data, R_OK) == 0, "%s is missing: run `make data` first", k->data);
  ra_ctx *c = ra_new();
  ra_set_option(c, "quiet", "1");
  ra_set_option(c, "threads", "2");
  for (int i = 0; i < 4 && k->sets[i]; i++) {
    char key[64];
    const char *eq = strchr(k->sets[i], '=');
    snprintf(key, sizeof key, "set.%.*s", (int)(eq - k->sets[i]), k->sets[i]);
    cr_assert_eq(ra_set_option(c, key, eq + 1), 0, "%s", ra_error(c));
  }
  char ckpt[256];
  snprintf(ckpt, sizeof ckpt, "/tmp/rac_example_%d.safetensors", (int)getpid());
  char key[] = "set.save";
  ra_set_option(c, key, ckpt);
  cr_assert_eq(ra_load_file(c, k->spec), 0, "%s", ra_error(c));
  cr_assert_eq(ra_train(c, NULL, NULL, NULL), 0, "%s", ra_error(c));
  const char *summary = NULL;
  cr_assert_eq(ra_eval(c, NULL, ckpt, "test", &summary), 0, "%s", ra_error(c));
  double v = metric_of(summary, k->metric);
  cr_log_info("%s: %s", k->spec, summary);
  if (!strcmp(k->metric, "perplexity"))
    cr_assert(v <= k->floor, "%s: perplexity %.3f above the floor %.3f", k->spec, v, k->floor);
  else
    cr_assert(v >= k->floor, "%s: %s %.4f below the floor %.4f", k->spec, k->metric, v, k->floor);
  unlink(ckpt);
  ra_free(c);
}

Test(examples, fortunes, .timeout = 600) {
  Case k = {"examples/fortunes.ra", "data/fortunes.tsv", {"epochs=2"}, "accuracy", 0.45};
  run_case(&k);
}

Test(examples, licenses, .timeout = 600) {
  Case k = {"examples/licenses.ra", "data/licenses.tsv", {"epochs=6"}, "accuracy", 0.50};
  run_case(&k);
}

Test(examples, charlm, .timeout = 600) {
  Case k = {"examples/charlm.ra", "data/corpus.txt", {"steps=150", "eval=none"}, "perplexity", 12.0};
  run_case(&k);
}

Test(examples, charlm_bpe, .timeout = 600) {
  Case k = {"examples/charlm_bpe.ra", "data/corpus.txt", {"steps=150", "eval=none"}, "perplexity", 90.0};
  run_case(&k);
}

Test(examples, reverse, .timeout = 600) {
  Case k = {"examples/reverse.ra", NULL, {"epochs=2"}, "accuracy", 0.90};
  run_case(&k);
}

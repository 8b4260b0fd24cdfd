/* test_heads.c - the effective number of heads (and head_diversity beside
 * it) on hand-computed cases, and in a trained run's log. */
#include <jansson.h>
#include <stdint.h>

#include "../compiler/program.h"
#include "../runtime/train/train.h"
#include "testutil.h"

static void measure(const float *v, int64_t H, int64_t L, double *div, double *eff) {
  heads_measure(v, H, L, NULL, 1, 1, NULL, div, eff);
}

Test(effective_heads, identical_heads_are_one) {
  float v[3 * 4] = {1, 2, -3, 0.5f, 1, 2, -3, 0.5f, 1, 2, -3, 0.5f};
  double div, eff;
  measure(v, 3, 4, &div, &eff);
  cr_assert_float_eq(eff, 1.0, 1e-12, "%.17g", eff);
  cr_assert_float_eq(div, 0.0, 1e-12, "%.17g", div);
  /* an opposite head is alike too (cos -1) */
  v[4] = -1, v[5] = -2, v[6] = 3, v[7] = -0.5f;
  measure(v, 3, 4, &div, &eff);
  cr_assert_float_eq(eff, 1.0, 1e-12, "%.17g", eff);
}

Test(effective_heads, orthogonal_heads_are_m) {
  float v[4 * 5] = {0};
  for (int i = 0; i < 4; i++) v[i * 5 + i] = (float)(i + 1);
  double div, eff;
  measure(v, 4, 5, &div, &eff);
  cr_assert_float_eq(eff, 4.0, 1e-12, "%.17g", eff);
  cr_assert_float_eq(div, 1.0, 1e-12, "%.17g", div);
}

/* two heads at cosine 0.6: M² / (2 + 2·0.36) = 4 / 2.72 */
Test(effective_heads, two_heads_of_a_known_cosine) {
  float v[2 * 2] = {1, 0, 3, 4};
  double div, eff;
  measure(v, 2, 2, &div, &eff);
  cr_assert_float_eq(eff, 4.0 / 2.72, 1e-12, "%.17g", eff);
  cr_assert_float_eq(div, 0.4, 1e-12, "%.17g", div);
}

/* three heads: two alike, one orthogonal to both: 9 / (3 + 2) */
Test(effective_heads, a_pair_and_one_apart) {
  float v[3 * 2] = {1, 0, 2, 0, 0, 5};
  double div, eff;
  measure(v, 3, 2, &div, &eff);
  cr_assert_float_eq(eff, 9.0 / 5.0, 1e-12, "%.17g", eff);
}

/* through wo, as for attention: head contexts [H][T*hd] times each head's
 * rows of wo.  Two heads of hd 1 over T 1, wo rows (1,0) and (0.6,0.8): the
 * contributions are c0·(1,0) and c1·(0.6,0.8), cosine 0.6 whatever c0, c1 > 0. */
Test(effective_heads, contributions_through_wo) {
  float ctx[2] = {2.0f, 0.5f};
  float wo[2 * 2] = {1, 0, 0.6f, 0.8f};
  float scratch[4];
  double div, eff;
  heads_measure(ctx, 2, 1, wo, 1, 2, scratch, &div, &eff);
  cr_assert_float_eq(eff, 4.0 / 2.72, 1e-6, "%.17g", eff);
  /* the same contexts against identical rows of wo: one head */
  float wo2[2 * 2] = {0.6f, 0.8f, 0.6f, 0.8f};
  heads_measure(ctx, 2, 1, wo2, 1, 2, scratch, &div, &eff);
  cr_assert_float_eq(eff, 1.0, 1e-6, "%.17g", eff);
}

Test(effective_heads, one_head_and_a_zero_head) {
  float v[2 * 2] = {1, 2, 0, 0};
  double div, eff;
  measure(v, 1, 2, &div, &eff);
  cr_assert_float_eq(eff, 1.0, 0, "%g", eff);
  measure(v, 2, 2, &div, &eff);
  cr_assert_float_eq(eff, 1.0, 1e-12, "a zero head counts as alike: %g", eff);
}

/* A trained run's log: each eval record names every layer's effective
 * heads, within [1, heads], and the test line shows them. */
Test(effective_heads, in_a_trained_log, .timeout = 120) {
  const char *log = tu_tmp("eff.jsonl");
  TuRun r = tu_sh(100, "$RAC run examples/reverse.ra --set epochs=1 --set save=%s --log %s",
                  tu_tmp("eff.safetensors"), log);
  cr_assert_eq(r.status, 0, "status %d\n%s", r.status, r.err);
  cr_assert(strstr(r.out, " eff ") || strstr(r.err, " eff "), "%s%s", r.out, r.err);
  tu_run_free(&r);
  FILE *f = fopen(log, "r");
  cr_assert(f, "no log %s", log);
  char line[16384];
  int evals = 0;
  while (fgets(line, sizeof line, f)) {
    if (!strstr(line, "\"event\":\"eval\"")) continue;
    json_t *o = json_loads(line, 0, NULL);
    cr_assert(o, "bad line %s", line);
    json_t *e = json_object_get(o, "effective_heads");
    cr_assert(json_is_object(e), "%s", line);
    cr_assert_eq(json_object_size(e), 2, "%s", line);
    const char *k;
    json_t *v;
    json_object_foreach(e, k, v) {
      cr_assert(json_is_number(v), "%s", line);
      cr_assert(json_number_value(v) >= 1 && json_number_value(v) <= 4, "%s: %s", k, line);
    }
    json_decref(o);
    evals++;
  }
  fclose(f);
  cr_assert_geq(evals, 2, "%d eval records", evals);
}

/* test_heads.c - the effective number of heads (and head_diversity beside
 * it) on hand-computed cases, and in a trained run's log. */
#include <jansson.h>
#include <stdint.h>

#include "../compiler/lower_int.h"
#include "../compiler/program.h"
#include "../runtime/exec/exec.h"
#include "../runtime/train/train.h"
#include "irutil.h"
#include "ra.h"
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

/* ---- the penalty of `repulsion penalty`: its value by hand ---- */

/* lw_heads_cos2 of the rows u ([n][H][N], one PARAM) run by the interpreter */
static double heads_cos2(const float *u, int64_t n, int64_t H, int64_t N) {
  Arena ar;
  arena_init(&ar, ra_alloc_default());
  IrFunc *f = ir_func_new(&ar, "cos2", 1);
  IrBuilder B = tu_builder(f);
  int64_t d[3] = {n, H, N};
  IrNode pn = {.op = OP_PARAM, .name = "u", .type = ir_type_make(IR_F32, 3, d, false)};
  int32_t p = lw_heads_cos2(&B, &ar, ir_op(&B, pn), H);
  cr_assert_geq(p, 0);
  cr_assert_eq(f->nodes[p].type.rank, 0);
  cr_assert_eq(ir_add_output(f, "loss", p, OUT_LOSS, 0), 0);
  MemPlan *plan = plan_memory(&ar, f);
  cr_assert(plan);
  int64_t offs[1] = {0};
  Exec *ex = exec_new(ra_alloc_default(), f, plan, (float *)u, offs, 0);
  cr_assert(ex);
  KernelCtx kc;
  memset(&kc, 0, sizeof kc);
  kc.threads = 1;
  cr_assert_eq(exec_run(ex, &kc), 0, "%s", kc.err);
  double v = *(const float *)exec_ptr(ex, p);
  exec_free(ex);
  arena_free(&ar);
  return v;
}

Test(heads_penalty, mean_squared_cosine_of_the_pairs) {
  /* two heads at cosine 0.6: 0.36 */
  float a[4] = {1, 0, 3, 4};
  cr_assert_float_eq(heads_cos2(a, 1, 2, 2), 0.36, 1e-6);
  /* identical heads: 1; orthogonal: 0 */
  float same[6] = {1, 2, 3, 1, 2, 3};
  cr_assert_float_eq(heads_cos2(same, 1, 2, 3), 1.0, 1e-6);
  float orth[9] = {1, 0, 0, 0, 2, 0, 0, 0, 3};
  cr_assert_float_eq(heads_cos2(orth, 1, 3, 3), 0.0, 1e-6);
  /* three heads, two alike, the third orthogonal: pairs (1, 0, 0) -> 1/3 */
  float three[6] = {1, 0, 2, 0, 0, 5};
  cr_assert_float_eq(heads_cos2(three, 1, 3, 2), 1.0 / 3.0, 1e-6);
  /* the mean over examples: 0.36 and 1 -> 0.68 */
  float two[8] = {1, 0, 3, 4, 1, 1, 2, 2};
  cr_assert_float_eq(heads_cos2(two, 2, 2, 2), 0.68, 1e-6);
}

/* The loss of step `step` in a run log, or NAN. */
static double log_step_loss(const char *path, int step) {
  char *text = tu_read_file(path, NULL);
  cr_assert(text, "no log %s", path);
  char key[64];
  snprintf(key, sizeof key, "{\"event\":\"step\",\"step\":%d,\"loss\":", step);
  const char *k = strstr(text, key);
  double v = k ? strtod(k + strlen(key), NULL) : NAN;
  free(text);
  return v;
}

/* reverse.ra for 4 steps with its layers' repulsion replaced by rep
 * (a sed replacement) and the options opts; the log is left at log. */
static void run_reverse(const char *rep, const char *opts, const char *log) {
  const char *spec = tu_tmp("rev.ra");
  TuRun r = tu_sh(100,
                  "sed 's/repulsion svgd { alpha 0.05  group joint  particles qk }/%s/' "
                  "examples/reverse.ra > %s && "
                  "$RAC run %s --set steps=4 --set eval=off --log %s %s",
                  rep, spec, spec, log, opts);
  cr_assert_eq(r.status, 0, "status %d\n%s", r.status, r.err);
  tu_run_free(&r);
}

/* `repulsion penalty { weight 0 }` trains bit for bit as `repulsion none`;
 * a weight adds c · mean cos² to the first step's loss (the same weights
 * then); `--repulsion penalty` puts the term in every layer. */
Test(heads_penalty, in_training, .timeout = 200) {
  const char *none = tu_tmp("none.jsonl"), *zero = tu_tmp("zero.jsonl");
  const char *one = tu_tmp("one.jsonl"), *over = tu_tmp("over.jsonl");
  run_reverse("repulsion none", "", none);
  run_reverse("repulsion penalty { weight 0 }", "", zero);
  run_reverse("repulsion penalty { weight 1 }", "", one);
  run_reverse("repulsion none", "--repulsion penalty", over);
  char *a = tu_read_file(none, NULL), *b = tu_read_file(zero, NULL);
  cr_assert(a && b);
  cr_assert_str_eq(a, b);
  free(a);
  free(b);
  double l0 = log_step_loss(none, 1), l1 = log_step_loss(one, 1), lo = log_step_loss(over, 1);
  cr_assert(isfinite(l0) && isfinite(l1) && isfinite(lo), "%g %g %g", l0, l1, lo);
  /* two layers of 4 heads: each adds at most 1 */
  cr_assert(l1 > l0 + 1e-4 && l1 < l0 + 2, "none %g, penalty %g", l0, l1);
  cr_assert_float_eq(lo, l1, 1e-9, "--repulsion penalty %g, the clause %g", lo, l1);
  cr_assert(log_step_loss(one, 4) != log_step_loss(none, 4));
}

/* ---- repulsion over time, end to end ---- */

typedef struct Train {
  const char *spec;     /* spec text */
  const char *rep;      /* --repulsion, or NULL */
  const char *steps;
  const char *save, *resume;
  int64_t stop_at;      /* > 0: stop after that step */
  const char *start, *stop; /* --set repulsion_start / repulsion_stop */
  const char *when, *alpha; /* --set repulsion_when / repulsion_alpha */
  char *err;            /* out, when given: the error (512 bytes) */
} Train;

static int stop_at(void *ud, int64_t step, double loss) {
  (void)loss;
  return step == *(const int64_t *)ud;
}

static int train(const Train *t) {
  ra_ctx *c = ra_new();
  ra_set_option(c, "quiet", "1");
  ra_set_option(c, "threads", "2");
  ra_set_option(c, "set.steps", t->steps);
  ra_set_option(c, "set.schedule", "constant");
  ra_set_option(c, "set.eval", "off");
  ra_set_option(c, "set.save", t->save);
  if (t->rep) ra_set_option(c, "repulsion", t->rep);
  if (t->resume) ra_set_option(c, "resume", t->resume);
  if (t->start) ra_set_option(c, "set.repulsion_start", t->start);
  if (t->stop) ra_set_option(c, "set.repulsion_stop", t->stop);
  if (t->when) ra_set_option(c, "set.repulsion_when", t->when);
  if (t->alpha) ra_set_option(c, "set.repulsion_alpha", t->alpha);
  int rc = ra_load_string(c, "rev.ra", t->spec);
  if (rc == 0)
    rc = ra_train(c, NULL, t->stop_at > 0 ? stop_at : NULL, (void *)&t->stop_at);
  if (rc && rc != RA_ESTOPPED && !t->err) cr_log_error("%s", ra_error(c));
  if (t->err) snprintf(t->err, 512, "%s", rc ? ra_error(c) : "");
  ra_free(c);
  return rc;
}

/* examples/reverse.ra with its repulsion block's clauses replaced. */
static char *reverse_with(const char *clauses) {
  char *text = tu_read_file("examples/reverse.ra", NULL);
  cr_assert(text);
  const char *old = "repulsion svgd { alpha 0.05  group joint  particles qk }";
  char *at = strstr(text, old);
  cr_assert(at);
  size_t n = strlen(text) + strlen(clauses) + 1;
  char *out = malloc(n);
  cr_assert(out);
  snprintf(out, n, "%.*s%s%s", (int)(at - text), text, clauses, at + strlen(old));
  free(text);
  return out;
}

static void same_file(const char *a, const char *b) {
  size_t la = 0, lb = 0;
  char *fa = tu_read_file(a, &la), *fb = tu_read_file(b, &lb);
  cr_assert(fa && fb, "missing %s or %s", a, b);
  cr_assert(la == lb && memcmp(fa, fb, la) == 0, "%s and %s differ", a, b);
  free(fa);
  free(fb);
}

/* `start 3 stop 6` over 9 steps is bit for bit 3 steps of none, 3 of svgd
 * and 3 of none, resumed from each other's checkpoints: the update applies
 * on steps 3, 4 and 5 (counted from 0) and on no other. */
Test(repulsion_schedule, start_and_stop_apply_exactly_their_steps, .timeout = 200) {
  char *win = reverse_with("repulsion svgd { alpha 0.5  group joint  particles qk  start 3  stop 6 }");
  char *all = reverse_with("repulsion svgd { alpha 0.5  group joint  particles qk }");
  const char *w = tu_tmp("win.safetensors"), *c1 = tu_tmp("c1.safetensors");
  const char *c2 = tu_tmp("c2.safetensors"), *c3 = tu_tmp("c3.safetensors");
  cr_assert_eq(train(&(Train){.spec = win, .steps = "9", .save = w}), 0);
  cr_assert_eq(train(&(Train){.spec = all, .rep = "none", .steps = "3", .save = c1}), 0);
  cr_assert_eq(train(&(Train){.spec = all, .steps = "6", .save = c2, .resume = c1}), 0);
  cr_assert_eq(train(&(Train){.spec = all, .rep = "none", .steps = "9", .save = c3, .resume = c2}),
               0);
  same_file(w, c3);
  /* --set repulsion_start=3 repulsion_stop=6 on the spec without a window */
  const char *o = tu_tmp("over.safetensors");
  cr_assert_eq(train(&(Train){.spec = all, .steps = "9", .save = o, .start = "3", .stop = "6"}), 0);
  same_file(w, o);
  char err[512];
  cr_assert_neq(train(&(Train){.spec = win, .steps = "9", .save = o, .start = "6", .err = err}), 0);
  cr_assert(strstr(err, "layer 'reverser.r0.a': repulsion stop 6 is not after start 6"), "%s", err);
  /* and it is not the same as svgd throughout, nor as none */
  const char *a = tu_tmp("all.safetensors"), *n = tu_tmp("none.safetensors");
  cr_assert_eq(train(&(Train){.spec = all, .steps = "9", .save = a}), 0);
  cr_assert_eq(train(&(Train){.spec = all, .rep = "none", .steps = "9", .save = n}), 0);
  size_t la = 0, lw = 0, ln = 0;
  char *fa = tu_read_file(a, &la), *fw = tu_read_file(w, &lw), *fn = tu_read_file(n, &ln);
  cr_assert(fa && fw && fn);
  cr_assert(la != lw || memcmp(fa, fw, la) != 0, "the window changed nothing");
  cr_assert(ln != lw || memcmp(fn, fw, ln) != 0, "the window applied nothing");
  free(fa);
  free(fw);
  free(fn);
  free(win);
  free(all);
}

/* A trigger that fired survives --resume: stopped after it fired and
 * resumed, the run ends with the bits of the straight one (its checkpoint
 * names the fired trigger).  The first layer's diversity, checked at steps
 * 0, 5, 10, ..., is above 0.92 at step 10 only (0.915, 0.912, 0.931,
 * 0.906, ... without repulsion), so a resumed run that measured again at
 * step 15 instead of keeping the trigger would leave the update out. */
Test(repulsion_schedule, a_trigger_survives_resume, .timeout = 200) {
  char *spec = reverse_with(
      "repulsion svgd { alpha 0.5  group joint  particles qk  when diversity > 0.92  every 5 }");
  const char *s = tu_tmp("straight.safetensors"), *h = tu_tmp("half.safetensors");
  const char *r = tu_tmp("resumed.safetensors");
  cr_assert_eq(train(&(Train){.spec = spec, .steps = "40", .save = s}), 0);
  cr_assert_eq(train(&(Train){.spec = spec, .steps = "40", .save = h, .stop_at = 12}), RA_ESTOPPED);
  size_t lh = 0;
  char *half = tu_read_file(h, &lh);
  const char *key = "\"repulsion_triggered\"";
  bool found = false;
  for (size_t i = 0; half && i + strlen(key) <= lh && !found; i++)
    found = memcmp(half + i, key, strlen(key)) == 0;
  cr_assert(found, "no trigger had fired by step 12");
  free(half);
  cr_assert_eq(train(&(Train){.spec = spec, .steps = "40", .save = r, .resume = h}), 0);
  same_file(s, r);
  free(spec);
}

/* --set repulsion_when=X is the clause `when diversity < X` in every layer,
 * and --set repulsion_alpha=X the clause `alpha X`: the same bits.  The
 * first layer's diversity, checked every 5 steps, first falls below 0.91 at
 * step 15 (see above), so the trigger fires mid-run: without it the run
 * differs. */
Test(repulsion_schedule, when_and_alpha_from_set_are_the_clauses, .timeout = 200) {
  char *when = reverse_with(
      "repulsion svgd { alpha 0.5  group joint  particles qk  when diversity < 0.91  every 5 }");
  char *plain = reverse_with("repulsion svgd { alpha 0.05  group joint  particles qk  every 5 }");
  const char *a = tu_tmp("when.safetensors"), *b = tu_tmp("set.safetensors");
  const char *n = tu_tmp("nowhen.safetensors");
  cr_assert_eq(train(&(Train){.spec = when, .steps = "30", .save = a}), 0);
  cr_assert_eq(train(&(Train){.spec = plain, .steps = "30", .save = b, .when = "0.91",
                              .alpha = "0.5"}),
               0);
  same_file(a, b);
  cr_assert_eq(train(&(Train){.spec = plain, .steps = "30", .save = n, .alpha = "0.5"}), 0);
  size_t la = 0, ln = 0;
  char *fa = tu_read_file(a, &la), *fn = tu_read_file(n, &ln);
  cr_assert(fa && fn);
  cr_assert(la != ln || memcmp(fa, fn, la) != 0, "the trigger changed nothing");
  free(fa);
  free(fn);
  free(when);
  free(plain);
}

/* test_fields.c - data fields typed by what they feed (docs/data.md): a
 * regression spec on a CSV of numbers, a classifier on a CSV of
 * pre-tokenised ids, and the errors of each; run on the built rac. */
#include "testutil.h"

/* y = 0.5 x1 - 0.25 x2 + 0.75 x3 (4 decimals), x in [-1, 1] */
static const char *REG_SPEC =
    "data d = csv(\"tests/data/regression.csv\") {\n"
    "  label column 0\n"
    "  features columns 1..4\n"
    "  split train 0.8 valid 0.1 test 0.1\n"
    "}\n"
    "model r {\n"
    "  input x : f32[4]\n"
    "  target y : f32[1]\n"
    "  h = linear(x, out: 1)\n"
    "  output yhat = h\n"
    "  loss mse(h, y)\n"
    "}\n"
    "train r on d {\n"
    "  optimizer adam { lr 3e-2 }\n"
    "  batch 16\n"
    "  epochs 10\n"
    "  eval valid every epoch\n"
    "}\n";

/* 12 ids from 2..19 each, label 1 when 5 and 7 appear more than once */
static const char *IDS_SPEC =
    "data d = csv(\"%s\") {\n"
    "  features columns 1..12\n"
    "  label column 0\n"
    "  split train 0.8 valid 0.1 test 0.1\n"
    "}\n"
    "model c {\n"
    "  input t : int[12]\n"
    "  target label : class(2)\n"
    "  x = embed(t, vocab: 20, dim: 16)\n"
    "  logits = linear(mean(x), out: 2)\n"
    "  loss cross_entropy(logits, label)\n"
    "}\n"
    "train c on d {\n"
    "  optimizer adam { lr 1e-2 }\n"
    "  batch 16\n"
    "  epochs 10\n"
    "  eval valid every epoch\n"
    "}\n";

/* The train loss of the first and the last epoch line of rac run's output. */
static void first_last_loss(const char *text, double *first, double *last) {
  *first = *last = -1;
  const char *s = text;
  while ((s = strstr(s, "train loss "))) {
    double v = atof(s + 11);
    if (*first < 0) *first = v;
    *last = v;
    s += 11;
  }
  cr_assert(*first >= 0, "no 'train loss' in:\n%s", text);
}

static const char *spec_file(const char *name, const char *text) {
  const char *p = tu_tmp(name);
  cr_assert(tu_write_file(p, text) == 0, "cannot write %s", p);
  return p;
}

Test(fields, regression_on_numbers_trains_checks_predicts) {
  const char *spec = spec_file("reg.ra", REG_SPEC);
  const char *ck = tu_tmp("reg.safetensors");
  TuRun r = tu_sh(60, "$RAC check %s", spec);
  cr_assert_eq(r.status, 0, "check: %d\n%s", r.status, r.err);
  tu_run_free(&r);
  r = tu_sh(120, "$RAC run %s --set save=%s 2>&1", spec, ck);
  cr_assert_eq(r.status, 0, "run: %d\n%s", r.status, r.out);
  double first, last;
  first_last_loss(r.out, &first, &last);
  cr_assert(last < first / 10, "the loss did not fall: %g then %g\n%s", first, last, r.out);
  tu_run_free(&r);
  /* the exact map is linear: the model learns it */
  r = tu_sh(60, "$RAC predict %s --ckpt %s --input '1,0,0,0'", spec, ck);
  cr_assert_eq(r.status, 0, "predict: %d\n%s", r.status, r.err);
  double y = atof(r.out);
  cr_assert(fabs(y - 0.5) < 0.02, "predicted %s", r.out);
  cr_assert(strstr(r.out, "\t1,0,0,0\n"), "the line is echoed: %s", r.out);
  tu_run_free(&r);
  r = tu_sh(60, "$RAC predict %s --ckpt %s --input '0 1 x 0'", spec, ck);
  cr_assert_eq(r.status, 1, "status %d\n%s", r.status, r.err);
  cr_assert(strstr(r.err, "input line 1: column 2: expected a number, found 'x'"), "%s", r.err);
  tu_run_free(&r);
  r = tu_sh(60, "$RAC predict %s --ckpt %s --input '0 1'", spec, ck);
  cr_assert_eq(r.status, 1, "status %d\n%s", r.status, r.err);
  cr_assert(strstr(r.err, "input line 1: expected 4 numbers (input 'x'), found 2"), "%s", r.err);
  tu_run_free(&r);
}

/* labels columns A..B shape [2] feed an f32[2] target */
Test(fields, labels_columns_feed_an_f32_target) {
  const char *spec = spec_file("reg2.ra",
      "data d = csv(\"tests/data/regression.csv\") {\n"
      "  labels columns 0..1 shape [2]\n"
      "  features columns 1..4\n"
      "}\n"
      "model r {\n"
      "  input x : f32[4]\n"
      "  target y : f32[2]\n"
      "  h = linear(x, out: 2)\n"
      "  output yhat = h\n"
      "  loss mse(h, y)\n"
      "}\n"
      "train r on d {\n"
      "  optimizer adam { lr 3e-2 }\n"
      "  batch 16\n"
      "  epochs 10\n"
      "}\n");
  const char *ck = tu_tmp("reg2.safetensors");
  TuRun r = tu_sh(120, "$RAC run %s --set save=%s 2>&1", spec, ck);
  cr_assert_eq(r.status, 0, "run: %d\n%s", r.status, r.out);
  double first, last;
  first_last_loss(r.out, &first, &last);
  cr_assert(last < first / 10, "the loss did not fall: %g then %g\n%s", first, last, r.out);
  tu_run_free(&r);
  /* (y, x1) for x = (1, 0, 0, 0): (0.5, 1) */
  r = tu_sh(60, "$RAC predict %s --ckpt %s --input '1,0,0,0'", spec, ck);
  cr_assert_eq(r.status, 0, "predict: %d\n%s", r.status, r.err);
  double a = 0, b = 0;
  cr_assert_eq(sscanf(r.out, "%lf %lf", &a, &b), 2, "%s", r.out);
  cr_assert(fabs(a - 0.5) < 0.05 && fabs(b - 1) < 0.05, "predicted %s", r.out);
  tu_run_free(&r);
}

Test(fields, classifier_on_token_ids_trains_checks_predicts) {
  char text[2048];
  snprintf(text, sizeof text, IDS_SPEC, "tests/data/token_ids.csv");
  const char *spec = spec_file("ids.ra", text);
  const char *ck = tu_tmp("ids.safetensors");
  TuRun r = tu_sh(60, "$RAC check %s", spec);
  cr_assert_eq(r.status, 0, "check: %d\n%s", r.status, r.err);
  tu_run_free(&r);
  r = tu_sh(120, "$RAC run %s --set save=%s 2>&1", spec, ck);
  cr_assert_eq(r.status, 0, "run: %d\n%s", r.status, r.out);
  double first, last;
  first_last_loss(r.out, &first, &last);
  cr_assert(last < first / 2, "the loss did not fall: %g then %g\n%s", first, last, r.out);
  tu_run_free(&r);
  r = tu_sh(60, "$RAC predict %s --ckpt %s --input '5 7 5 7 3 3 3 3 3 3 3 3'", spec, ck);
  cr_assert_eq(r.status, 0, "predict: %d\n%s", r.status, r.err);
  cr_assert(strncmp(r.out, "1\t", 2) == 0, "predicted %s", r.out);
  tu_run_free(&r);
  r = tu_sh(60, "$RAC predict %s --ckpt %s --input '5 7 3.5 3 3 3 3 3 3 3 3 3'", spec, ck);
  cr_assert_eq(r.status, 1, "status %d\n%s", r.status, r.err);
  cr_assert(strstr(r.err, "input line 1: column 2: expected an integer id, found '3.5'"), "%s",
            r.err);
  tu_run_free(&r);
}

/* 20 examples of 12 ids, the last id of example `at` replaced by `bad`. */
static void write_ids(const char *path, int at, const char *bad) {
  char text[4096];
  size_t n = 0;
  for (int i = 0; i < 20; i++)
    n += (size_t)snprintf(text + n, sizeof text - n, "%d,2,3,4,5,6,7,8,9,10,11,12,%s\n", i % 2,
                          i == at ? bad : "13");
  cr_assert(tu_write_file(path, text) == 0);
}

/* A non-integer where an int input is fed: the file, line and column. */
Test(fields, non_integer_id_names_line_and_column) {
  const char *csv = tu_tmp("ids_bad.csv");
  write_ids(csv, 2, "4.5");
  char text[2048];
  snprintf(text, sizeof text, IDS_SPEC, csv);
  const char *spec = spec_file("ids_bad.ra", text);
  TuRun r = tu_sh(60, "$RAC run %s", spec);
  cr_assert_eq(r.status, 1, "status %d\n%s", r.status, r.err);
  char want[600];
  snprintf(want, sizeof want,
           "%s:3: column 12: expected an integer id (the input it feeds is int), found '4.5'", csv);
  cr_assert(strstr(r.err, want), "want %s\ngot %s", want, r.err);
  tu_run_free(&r);
}

/* An id outside the embedding's vocabulary is an error before the first step. */
Test(fields, id_outside_vocab_is_an_error_before_training) {
  const char *csv = tu_tmp("ids_big.csv");
  write_ids(csv, 4, "20");
  char text[2048];
  snprintf(text, sizeof text, IDS_SPEC, csv);
  const char *spec = spec_file("ids_big.ra", text);
  TuRun r = tu_sh(60, "$RAC run %s 2>&1", spec);
  cr_assert_eq(r.status, 1, "status %d\n%s", r.status, r.out);
  cr_assert(strstr(r.out, ":9:7: error: data 'd', example 4 (in file order, from 0), value 11: "
                          "id 20 of input 't' is outside the embedding's vocab 20 (ids 0..19)"),
            "%s", r.out);
  cr_assert(!strstr(r.out, "train loss"), "no step ran: %s", r.out);
  tu_run_free(&r);
  /* a negative id too */
  write_ids(csv, 7, "-1");
  r = tu_sh(60, "$RAC run %s 2>&1", spec);
  cr_assert_eq(r.status, 1, "status %d\n%s", r.status, r.out);
  cr_assert(strstr(r.out, "example 7 (in file order, from 0), value 11: id -1 of input 't' is "
                          "outside"), "%s", r.out);
  tu_run_free(&r);
}

/* labels columns A..B give one class label per column to a class(K)[N]
 * target: a tag per character (vowel or consonant), learnt and predicted
 * by name. */
Test(fields, labels_columns_feed_a_class_target_per_position) {
  static char tsv[16384];
  size_t n = 0;
  const char *letters = "abcde";
  for (int i = 0; i < 300; i++) {
    char w[5];
    for (int j = 0; j < 4; j++) w[j] = letters[(i * 7 + j * 3 + i / 5 * j) % 5];
    w[4] = 0;
    n += (size_t)snprintf(tsv + n, sizeof tsv - n, "%s", w);
    for (int j = 0; j < 4; j++)
      n += (size_t)snprintf(tsv + n, sizeof tsv - n, "\t%s", w[j] == 'a' || w[j] == 'e' ? "vowel" : "cons");
    n += (size_t)snprintf(tsv + n, sizeof tsv - n, "\n");
  }
  const char *data = tu_tmp("tags.tsv");
  cr_assert(tu_write_file(data, tsv) == 0);
  char text[2048];
  snprintf(text, sizeof text,
           "data d = tsv(\"%s\") {\n"
           "  text column 0 tokenize chars maxlen 4\n"
           "  labels columns 1..4\n"
           "}\n"
           "model tag {\n"
           "  input t : int[4]\n"
           "  target y : class(2)[4]\n"
           "  x = embed(t, vocab: 8, dim: 8)\n"
           "  logits = linear(x, out: 2)\n"
           "  loss cross_entropy(logits, y)\n"
           "}\n"
           "train tag on d {\n  optimizer adam { lr 5e-2 }\n  batch 16\n  epochs 15\n  metrics accuracy\n}\n",
           data);
  const char *spec = spec_file("tags.ra", text);
  const char *ck = tu_tmp("tags.safetensors");
  TuRun r = tu_sh(60, "$RAC check %s", spec);
  cr_assert_eq(r.status, 0, "check: %d\n%s", r.status, r.err);
  tu_run_free(&r);
  r = tu_sh(120, "$RAC run %s --quiet --set save=%s 2>&1", spec, ck);
  cr_assert_eq(r.status, 0, "run: %d\n%s", r.status, r.out);
  cr_assert(strstr(r.out, "acc 1.0000"), "%s", r.out);
  tu_run_free(&r);
  /* the labels are named in sorted order (cons 0, vowel 1), per position */
  r = tu_sh(60, "$RAC predict %s --ckpt %s --input 'abed'", spec, ck);
  cr_assert_eq(r.status, 0, "predict: %d\n%s", r.status, r.err);
  cr_assert_str_eq(r.out, "vowel cons vowel cons\tabed\n");
  tu_run_free(&r);
  /* a label column that is not a class of the checkpoint is an error */
  n = 0;
  for (int i = 0; i < 20; i++)
    n += (size_t)snprintf(tsv + n, sizeof tsv - n, "bbbb\tcons\tcons\tcons\t%s\n", i == 1 ? "other" : "cons");
  cr_assert(tu_write_file(data, tsv) == 0);
  r = tu_sh(60, "$RAC eval %s --ckpt %s --split train", spec, ck);
  cr_assert_eq(r.status, 1, "eval: %d\n%s", r.status, r.out);
  cr_assert(strstr(r.err, ":2: column 4: label 'other' is not one of the 2 labels the checkpoint"), "%s", r.err);
  tu_run_free(&r);
}

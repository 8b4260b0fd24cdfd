/* test_api.c - the public API (ra.h) on misuse: every bad call returns a
 * code and a message, never crashes, exits or prints. */
#include <string.h>

#include "ra.h"
#include "testutil.h"

static const char *tiny_spec =
    "data syn = synthetic(task: copy, length: 6, vocab: 8, examples: 64) {\n"
    "  split train 0.75 valid 0.125 test 0.125\n"
    "  seed 3\n"
    "}\n"
    "model tiny {\n"
    "  input  seq : int[6]\n"
    "  target out : class(8)[6]\n"
    "  x = embed(seq, vocab: 8, dim: 8) + position(6, dim: 8)\n"
    "  a = attention(x) { heads 2 }\n"
    "  logits = linear(x + a, out: 8)\n"
    "  loss cross_entropy(logits, out)\n"
    "  output probs = softmax(logits)\n"
    "}\n"
    "train tiny on syn {\n"
    "  optimizer adam { lr 1e-2 }\n"
    "  batch 8\n"
    "  steps 3\n"
    "  seed 1\n"
    "}\n";

Test(api, version) {
  cr_assert_eq(ra_version(), RA_VERSION_NUM);
  cr_assert_str_eq(ra_version_string(), RA_VERSION_STRING);
}

Test(api, null_handles) {
  cr_assert_neq(ra_set_option(NULL, "threads", "2"), 0);
  cr_assert_neq(ra_load_file(NULL, "x.ra"), 0);
  cr_assert_neq(ra_load_string(NULL, "x", "model m {}"), 0);
  cr_assert_null(ra_model_get(NULL, "m"));
  cr_assert_neq(ra_train(NULL, NULL, NULL, NULL), 0);
  cr_assert_neq(ra_forward(NULL, NULL, 0, NULL, 0), 0);
  cr_assert_neq(ra_param(NULL, "p", NULL), 0);
  cr_assert_neq(ra_save(NULL, "x"), 0);
  cr_assert_neq(ra_load(NULL, "x"), 0);
  cr_assert_neq(ra_register_fn(NULL, "f", "f32(f32)", NULL), 0);
  cr_assert_str_neq(ra_error(NULL), "");
  ra_free(NULL);
}

Test(api, options) {
  ra_ctx *c = ra_new();
  cr_assert_not_null(c);
  cr_assert_eq(ra_set_option(c, "threads", "2"), 0);
  cr_assert_str_eq(ra_error(c), "");
  cr_assert_eq(ra_set_option(c, "threads", "zero"), RA_EUSAGE);
  cr_assert(strstr(ra_error(c), "threads") != NULL);
  cr_assert_eq(ra_set_option(c, "nosuch", "1"), RA_EUSAGE);
  cr_assert(strstr(ra_error(c), "unknown option 'nosuch'") != NULL);
  cr_assert_eq(ra_set_option(c, "repulsion", "svgd"), 0);
  cr_assert_eq(ra_set_option(c, "repulsion", "magic"), RA_EUSAGE);
  cr_assert_eq(ra_set_option(c, NULL, "1"), RA_EUSAGE);
  cr_assert_eq(ra_set_option(c, "seed", NULL), RA_EUSAGE);
  ra_free(c);
}

Test(api, wrong_order) {
  ra_ctx *c = ra_new();
  cr_assert_eq(ra_train(c, NULL, NULL, NULL), RA_EUSAGE);
  cr_assert(strstr(ra_error(c), "no spec is loaded") != NULL);
  cr_assert_null(ra_model_get(c, "tiny"));
  cr_assert_eq(ra_errcode(c), RA_EUSAGE);
  const char *t = NULL;
  cr_assert_neq(ra_dump(c, NULL, "ir", &t), 0);
  ra_free(c);
}

Test(api, bad_spec_is_located) {
  ra_ctx *c = ra_new();
  int rc = ra_load_string(c, "bad.ra", "model m {\n  x = nosuch(1)\n}\n");
  cr_assert_eq(rc, RA_ESPEC);
  cr_assert(strstr(ra_error(c), "bad.ra:2:") != NULL, "got: %s", ra_error(c));
  cr_assert_eq(ra_load_file(c, "/nonexistent/dir/x.ra"), RA_EIO);
  cr_assert(strstr(ra_error(c), "/nonexistent/dir/x.ra") != NULL);
  ra_free(c);
}

Test(api, unknown_names) {
  ra_ctx *c = ra_new();
  cr_assert_eq(ra_load_string(c, "tiny.ra", tiny_spec), 0, "%s", ra_error(c));
  cr_assert_null(ra_model_get(c, "tinny"));
  cr_assert_eq(ra_errcode(c), RA_ENOTFOUND);
  cr_assert(strstr(ra_error(c), "did you mean 'tiny'") != NULL, "got: %s", ra_error(c));
  cr_assert_eq(ra_train(c, "nosuch", NULL, NULL), RA_ENOTFOUND);
  ra_model *m = ra_model_get(c, "tiny");
  cr_assert_not_null(m, "%s", ra_error(c));
  ra_tensor t;
  cr_assert_eq(ra_param(m, "tiny.a.wqq", &t), RA_ENOTFOUND);
  cr_assert(strstr(ra_error(c), "did you mean 'tiny.a.wq'") != NULL, "got: %s", ra_error(c));
  cr_assert_eq(ra_param(m, "tiny.a.wq", &t), 0, "%s", ra_error(c));
  cr_assert_eq(t.ndim, 2);
  cr_assert_eq(t.shape[0], 8);
  cr_assert_eq(t.shape[1], 8);
  ra_free(c);
}

Test(api, forward_shapes_and_dtypes) {
  ra_ctx *c = ra_new();
  cr_assert_eq(ra_load_string(c, "tiny.ra", tiny_spec), 0, "%s", ra_error(c));
  ra_model *m = ra_model_get(c, "tiny");
  cr_assert_not_null(m);
  int32_t tok[3 * 6] = {0};
  for (int i = 0; i < 18; i++) tok[i] = i % 8;
  ra_tensor in = {RA_I32, 2, {3, 6}, tok};
  ra_tensor out = {0};
  cr_assert_eq(ra_forward(m, &in, 1, &out, 1), 0, "%s", ra_error(c));
  cr_assert_eq(out.ndim, 3);
  cr_assert_eq(out.shape[0], 3);
  cr_assert_eq(out.shape[2], 8);
  const float *p = out.data;
  double s = 0;
  for (int k = 0; k < 8; k++) s += p[k];
  cr_assert_float_eq(s, 1.0, 1e-5);
  /* wrong dtype, wrong shape, wrong count, index out of range */
  ra_tensor bad = {RA_F32, 2, {3, 6}, tok};
  cr_assert_eq(ra_forward(m, &bad, 1, &out, 1), RA_ESHAPE);
  cr_assert(strstr(ra_error(c), "input 0") != NULL);
  ra_tensor bad2 = {RA_I32, 2, {3, 5}, tok};
  cr_assert_eq(ra_forward(m, &bad2, 1, &out, 1), RA_ESHAPE);
  cr_assert_eq(ra_forward(m, &in, 2, &out, 1), RA_EUSAGE);
  cr_assert_eq(ra_forward(m, &in, 1, &out, 5), RA_EUSAGE);
  tok[4] = 99;
  cr_assert_eq(ra_forward(m, &in, 1, &out, 1), RA_ERUNTIME);
  cr_assert(strstr(ra_error(c), "99") != NULL, "got: %s", ra_error(c));
  ra_free(c);
}

Test(api, checkpoint_errors) {
  ra_ctx *c = ra_new();
  cr_assert_eq(ra_load_string(c, "tiny.ra", tiny_spec), 0, "%s", ra_error(c));
  ra_model *m = ra_model_get(c, "tiny");
  cr_assert_eq(ra_load(m, "/nonexistent.safetensors"), RA_ECKPT);
  cr_assert(strstr(ra_error(c), "/nonexistent.safetensors") != NULL);
  FILE *f = fopen("/tmp/rac_test_garbage.safetensors", "wb");
  fputs("this is not a checkpoint", f);
  fclose(f);
  cr_assert_eq(ra_load(m, "/tmp/rac_test_garbage.safetensors"), RA_ECKPT);
  cr_assert_eq(ra_save(m, "/tmp/rac_test_ok.safetensors"), 0, "%s", ra_error(c));
  cr_assert_eq(ra_load(m, "/tmp/rac_test_ok.safetensors"), 0, "%s", ra_error(c));
  cr_assert_eq(ra_save(m, "/dev/null/x.safetensors"), RA_EIO);
  /* the same layers under another model's name */
  char other[2048];
  snprintf(other, sizeof other, "%s", tiny_spec);
  char *at = strstr(other, "model tiny {");
  memcpy(at, "model tinz {", 12);
  at = strstr(other, "train tiny on");
  memcpy(at, "train tinz on", 13);
  cr_assert_eq(ra_load_string(c, "other.ra", other), 0, "%s", ra_error(c));
  ra_model *m2 = ra_model_get(c, "tinz");
  cr_assert_not_null(m2, "%s", ra_error(c));
  cr_assert_eq(ra_load(m2, "/tmp/rac_test_ok.safetensors"), RA_ECKPT);
  cr_assert(strstr(ra_error(c), "a checkpoint of model 'tiny', not of 'tinz'") != NULL, "got: %s",
            ra_error(c));
  ra_free(c);
}

static int stop_at_2(void *ud, int64_t step, double loss) {
  (void)loss;
  *(int64_t *)ud = step;
  return step >= 2;
}

Test(api, train_callback_stops) {
  ra_ctx *c = ra_new();
  ra_set_option(c, "quiet", "1");
  cr_assert_eq(ra_load_string(c, "tiny.ra", tiny_spec), 0, "%s", ra_error(c));
  int64_t last = 0;
  cr_assert_eq(ra_train(c, NULL, stop_at_2, &last), RA_ESTOPPED, "%s", ra_error(c));
  cr_assert_eq(last, 2);
  cr_assert_eq(ra_train(c, "tiny", NULL, NULL), 0, "%s", ra_error(c));
  ra_free(c);
}

/* Data that does not fit the model is an error located in the spec, found
 * before the first step. */
Test(api, data_against_model) {
  ra_ctx *c = ra_new();
  ra_set_option(c, "quiet", "1");
  char spec[2048];
  snprintf(spec, sizeof spec, "%s", tiny_spec);
  char *at = strstr(spec, "embed(seq, vocab: 8");
  memcpy(at, "embed(seq, vocab: 4", 19);
  cr_assert_eq(ra_load_string(c, "tiny.ra", spec), 0, "%s", ra_error(c));
  cr_assert_eq(ra_train(c, NULL, NULL, NULL), RA_EDATA);
  cr_assert(strstr(ra_error(c), "tiny.ra:8:7: error: data 'syn' has a vocabulary of 8 tokens") != NULL,
            "got: %s", ra_error(c));
  snprintf(spec, sizeof spec, "%s", tiny_spec);
  at = strstr(spec, "class(8)[6]");
  memcpy(at, "class(5)[6]", 11);
  at = strstr(spec, "linear(x + a, out: 8)");
  memcpy(at, "linear(x + a, out: 5)", 21);
  cr_assert_eq(ra_load_string(c, "tiny.ra", spec), 0, "%s", ra_error(c));
  cr_assert_eq(ra_train(c, NULL, NULL, NULL), RA_EDATA);
  cr_assert(strstr(ra_error(c), "tiny.ra:7:3: error: data 'syn' has 8 classes but target 'out' is class(5)") != NULL,
            "got: %s", ra_error(c));
  ra_free(c);
}

/* `act: silu` trains: the loss of a tiny copy model falls well below its
 * first value. */
static int keep_losses(void *ud, int64_t step, double loss) {
  double *l = ud;
  if (step >= 1 && step <= 60) l[step - 1] = loss;
  return 0;
}

Test(api, ffn_act_silu_trains) {
  static const char *spec =
      "data syn = synthetic(task: copy, length: 6, vocab: 8, examples: 256) {\n"
      "  split train 0.75 valid 0.125 test 0.125\n"
      "  seed 3\n"
      "}\n"
      "model tiny {\n"
      "  input  seq : int[6]\n"
      "  target out : class(8)[6]\n"
      "  x = embed(seq, vocab: 8, dim: 16)\n"
      "  x = x + ffn(x, hidden: 32, act: silu)\n"
      "  loss cross_entropy(linear(x, out: 8), out)\n"
      "}\n"
      "train tiny on syn {\n"
      "  optimizer adam { lr 1e-2 }\n"
      "  batch 16\n"
      "  steps 60\n"
      "  seed 1\n"
      "}\n";
  ra_ctx *c = ra_new();
  ra_set_option(c, "quiet", "1");
  cr_assert_eq(ra_load_string(c, "silu.ra", spec), 0, "%s", ra_error(c));
  double l[60] = {0};
  cr_assert_eq(ra_train(c, NULL, keep_losses, l), 0, "%s", ra_error(c));
  double last = (l[55] + l[56] + l[57] + l[58] + l[59]) / 5;
  cr_expect(l[0] > 1.5, "first loss %g", l[0]);
  cr_expect(last < 0.5 * l[0], "loss %g after 60 steps, %g at the first", last, l[0]);
  ra_free(c);
}

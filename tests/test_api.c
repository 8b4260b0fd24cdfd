/* test_api.c - the public API (ra.h) on misuse: every bad call returns a
 * code and a message, never crashes, exits or prints. */
#include <string.h>

#include "ra.h"
#include "testutil.h"

static const char *tiny_spec = TU_TINY_SPEC;

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
  FILE *f = fopen(tu_tmp("rac_test_garbage.safetensors"), "wb");
  fputs("this is not a checkpoint", f);
  fclose(f);
  cr_assert_eq(ra_load(m, tu_tmp("rac_test_garbage.safetensors")), RA_ECKPT);
  cr_assert_eq(ra_save(m, tu_tmp("rac_test_ok.safetensors")), 0, "%s", ra_error(c));
  cr_assert_eq(ra_load(m, tu_tmp("rac_test_ok.safetensors")), 0, "%s", ra_error(c));
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
  cr_assert_eq(ra_load(m2, tu_tmp("rac_test_ok.safetensors")), RA_ECKPT);
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
  const char *ck = tu_tmp("rac_api_stop.safetensors");
  remove(ck);
  cr_assert_eq(ra_set_option(c, "set.save", ck), 0);
  cr_assert_eq(ra_train(c, NULL, stop_at_2, &last), RA_ESTOPPED, "%s", ra_error(c));
  cr_assert_eq(last, 2);
  /* the stop saved the two steps taken, and says where */
  cr_assert(strstr(ra_error(c), "at step 2 of 3; checkpoint saved to '") && strstr(ra_error(c), ck),
            "%s", ra_error(c));
  cr_assert(ra_last_save(c) && !strcmp(ra_last_save(c), ck));
  ra_model *m = ra_model_get(c, "tiny");
  cr_assert_eq(ra_load(m, ck), 0, "%s", ra_error(c));
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

/* ra_forward takes any number of inputs and outputs (no fixed-size tables):
 * 20 of each, every output checked against its own input. */
Test(api, forward_many_inputs_and_outputs) {
  enum { N = 20 };
  char spec[8192];
  size_t k = (size_t)snprintf(spec, sizeof spec, "model wide {\n");
  for (int i = 0; i < N; i++) k += (size_t)snprintf(spec + k, sizeof spec - k, "  input x%d : f32[3]\n", i);
  k += (size_t)snprintf(spec + k, sizeof spec - k, "  h = linear(x0, out: 3)\n");
  for (int i = 0; i < N; i++)
    k += (size_t)snprintf(spec + k, sizeof spec - k, "  output y%d = x%d * %d.0 + h * 0.0\n", i, i, i + 1);
  snprintf(spec + k, sizeof spec - k, "}\n");
  ra_ctx *c = ra_new();
  cr_assert_eq(ra_load_string(c, "wide.ra", spec), 0, "%s", ra_error(c));
  ra_model *m = ra_model_get(c, "wide");
  cr_assert_not_null(m, "%s", ra_error(c));
  cr_assert_eq(ra_model_n_outputs(m), N);
  float x[N][2 * 3];
  ra_tensor in[N], out[N];
  memset(out, 0, sizeof out);
  for (int i = 0; i < N; i++) {
    for (int j = 0; j < 6; j++) x[i][j] = (float)(i * 10 + j);
    in[i] = (ra_tensor){RA_F32, 2, {2, 3}, x[i]};
  }
  for (int rep = 0; rep < 2; rep++) {
    cr_assert_eq(ra_forward(m, in, N, out, N), 0, "%s", ra_error(c));
    for (int i = 0; i < N; i++) {
      cr_assert_eq(out[i].ndim, 2);
      cr_assert_eq(out[i].shape[0], 2);
      const float *y = out[i].data;
      for (int j = 0; j < 6; j++) cr_assert_float_eq(y[j], x[i][j] * (float)(i + 1), 1e-4, "y%d[%d]", i, j);
    }
  }
  ra_free(c);
}

static float twice(float x) { return 2 * x; }

/* After a failed call, every public call that succeeds leaves no error
 * behind: ra_errcode is RA_OK and ra_error is "". */
Test(api, success_clears_the_last_error) {
  ra_ctx *c = ra_new();
  char dir[] = "/tmp/ra-clear-XXXXXX";
  cr_assert(mkdtemp(dir));
  char spec[64], ckpt[64], in[64];
  snprintf(spec, sizeof spec, "%s/tiny.ra", dir);
  snprintf(ckpt, sizeof ckpt, "%s/tiny.safetensors", dir);
  snprintf(in, sizeof in, "%s/in.txt", dir);
  cr_assert_eq(tu_write_file(spec, tiny_spec), 0);
  cr_assert_eq(tu_write_file(in, "1 2 3 4 5 0\n3 3 3 3 3 3\n"), 0);
#define CLEARS(call)                                                                 \
  do {                                                                               \
    cr_assert_eq(ra_set_option(c, "nosuch", "1"), RA_EUSAGE);                        \
    cr_assert_str_neq(ra_error(c), "");                                              \
    int rc_ = (call);                                                                \
    cr_assert_eq(rc_, 0, "%s: %s", #call, ra_error(c));                              \
    cr_assert_eq(ra_errcode(c), RA_OK, "%s left code %d", #call, ra_errcode(c));     \
    cr_assert_str_eq(ra_error(c), "", "%s left '%s'", #call, ra_error(c));           \
  } while (0)
  CLEARS(ra_set_option(c, "quiet", "1"));
  CLEARS(ra_load_string(c, "tiny.ra", tiny_spec));
  CLEARS(ra_load_file(c, spec));
  ra_model *m = NULL;
  CLEARS((m = ra_model_get(c, "tiny")) ? 0 : -1);
  CLEARS(ra_train(c, NULL, NULL, NULL));
  int32_t tok[6] = {1, 2, 3, 4, 5, 0};
  ra_tensor t = {RA_I32, 2, {1, 6}, tok}, out = {0}, p;
  CLEARS(ra_forward(m, &t, 1, &out, 1));
  CLEARS(ra_param(m, "tiny.a.wq", &p));
  CLEARS(ra_save(m, ckpt));
  CLEARS(ra_load(m, ckpt));
  const char *text = NULL;
  CLEARS(ra_eval(c, NULL, ckpt, "test", &text));
  CLEARS(ra_predict(c, NULL, ckpt, "1 2 3 4 5 0", NULL, &text));
  CLEARS(ra_predict(c, NULL, ckpt, NULL, in, &text));
  CLEARS(ra_bench(c, NULL, 1, &text));
  CLEARS(ra_dump(c, NULL, "ir", &text));
  CLEARS(ra_dump(c, NULL, "ast", &text));
  CLEARS(ra_register_fn(c, "twice", "f32(f32)", (void (*)(void))twice));
#undef CLEARS
  ra_free(c);
  remove(spec);
  remove(ckpt);
  remove(in);
  rmdir(dir);
}

/* A path of about 1000 characters appears whole in the messages about it:
 * a missing data file, a missing checkpoint, a checkpoint that cannot be
 * written (the path and its temporary file).  The folders are under a
 * regular file, so none of them can exist or be made. */
Test(api, long_paths_are_not_cut) {
  char base[] = "/tmp/ra-long-XXXXXX";
  int fd = mkstemp(base);
  cr_assert(fd >= 0);
  close(fd);
  char path[1200];
  size_t k = (size_t)snprintf(path, sizeof path, "%s", base);
  while (k < 1000) k += (size_t)snprintf(path + k, sizeof path - k, "/%s", "nested-folder-of-a-long-path");
  char data[1300], ckpt[1300], spec[4096];
  snprintf(data, sizeof data, "%s/data.tsv", path);
  snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", path);
  snprintf(spec, sizeof spec,
           "data d = tsv(\"%s\") { text column 1 maxlen 8; label column 0 }\n"
           "model m {\n"
           "  input  seq : int[8]\n"
           "  target y : class(2)\n"
           "  logits = linear(mean(embed(seq, vocab: 16, dim: 4)), out: 2)\n"
           "  loss cross_entropy(logits, y)\n"
           "  output p = softmax(logits)\n"
           "}\n"
           "train m on d { optimizer sgd { lr 0.1 } batch 2 steps 1 }\n",
           data);
  ra_ctx *c = ra_new();
  cr_assert_eq(ra_load_string(c, "long.ra", spec), 0, "%s", ra_error(c));
  cr_assert_eq(ra_train(c, NULL, NULL, NULL), RA_EDATA, "%s", ra_error(c));
  cr_assert(strstr(ra_error(c), data), "the data path is cut: %s", ra_error(c));
  ra_model *m = ra_model_get(c, "m");
  cr_assert_not_null(m, "%s", ra_error(c));
  cr_assert_neq(ra_load(m, ckpt), 0);
  cr_assert(strstr(ra_error(c), ckpt), "the checkpoint path is cut: %s", ra_error(c));
  cr_assert_neq(ra_eval(c, NULL, ckpt, "test", NULL), 0);
  cr_assert(strstr(ra_error(c), ckpt), "the checkpoint path is cut: %s", ra_error(c));
  cr_assert_neq(ra_save(m, ckpt), 0);
  cr_assert(strstr(ra_error(c), ckpt), "the checkpoint path is cut: %s", ra_error(c));
  /* the message ends with the reason, not in the middle of a path */
  const char *e = ra_error(c);
  cr_assert(strstr(e, "Not a directory"), "%s", e);
  ra_free(c);
  remove(base);
}

/* Prediction reads lines of any length (a line of 100 000 characters comes
 * back whole, its tokens past the input length dropped as in training), and
 * a line it cannot encode is named by file and line. */
Test(api, predict_long_lines_and_located_errors) {
  enum { N = 100000 };
  char dir[] = "/tmp/ra-predict-XXXXXX";
  cr_assert(mkdtemp(dir));
  char ckpt[64], in[64];
  snprintf(ckpt, sizeof ckpt, "%s/tiny.safetensors", dir);
  snprintf(in, sizeof in, "%s/in.txt", dir);
  ra_ctx *c = ra_new();
  cr_assert_eq(ra_set_option(c, "quiet", "1"), 0);
  cr_assert_eq(ra_load_string(c, "tiny.ra", tiny_spec), 0, "%s", ra_error(c));
  ra_model *m = ra_model_get(c, "tiny");
  cr_assert_not_null(m, "%s", ra_error(c));
  cr_assert_eq(ra_save(m, ckpt), 0, "%s", ra_error(c));
  char *line = malloc(N + 2);
  cr_assert(line);
  for (int i = 0; i < N; i += 2) line[i] = (char)('1' + i / 2 % 7), line[i + 1] = ' ';
  line[N - 1] = '7';
  line[N] = 0;
  const char *out = NULL;
  cr_assert_eq(ra_predict(c, NULL, ckpt, line, NULL, &out), 0, "%s", ra_error(c));
  const char *tab = strchr(out, '\t');
  cr_assert(tab, "%.200s", out);
  cr_assert_eq(strlen(tab + 1), (size_t)N + 1, "the line came back with %zu characters", strlen(tab + 1) - 1);
  cr_assert_eq(strncmp(tab + 1, line, N), 0);
  /* a file: line 3 is not UTF-8 */
  FILE *f = fopen(in, "w");
  cr_assert(f);
  fprintf(f, "%s\n1 2 3\n4 \xff 5\n", line);
  fclose(f);
  cr_assert_eq(ra_predict(c, NULL, ckpt, NULL, in, &out), RA_EDATA);
  char want[128];
  snprintf(want, sizeof want, "%s:3: cannot encode", in);
  cr_assert(strstr(ra_error(c), want), "want '%s', got: %s", want, ra_error(c));
  cr_assert_eq(ra_predict(c, NULL, ckpt, "1 2\n\xff", NULL, &out), RA_EDATA);
  cr_assert(strstr(ra_error(c), "input line 2: cannot encode"), "%s", ra_error(c));
  free(line);
  ra_free(c);
  remove(ckpt);
  remove(in);
  rmdir(dir);
}

/* A class model's prediction names the class whole, however long its label. */
Test(api, predict_long_label) {
  char dir[] = "/tmp/ra-label-XXXXXX";
  cr_assert(mkdtemp(dir));
  char data[64], ckpt[64], spec[1024], label[2][301];
  snprintf(data, sizeof data, "%s/d.tsv", dir);
  snprintf(ckpt, sizeof ckpt, "%s/m.safetensors", dir);
  for (int c = 0; c < 2; c++) {
    memset(label[c], 'a' + c, 300);
    label[c][300] = 0;
  }
  FILE *f = fopen(data, "w");
  cr_assert(f);
  for (int i = 0; i < 8; i++) fprintf(f, "%s\t%s word\n", label[i % 2], i % 2 ? "odd" : "even");
  fclose(f);
  snprintf(spec, sizeof spec,
           "data d = tsv(\"%s\") { text column 1 maxlen 4; label column 0; split train 1.0 }\n"
           "model m {\n"
           "  input  seq : int[4]\n"
           "  target y : class(2)\n"
           "  logits = linear(mean(embed(seq, vocab: 16, dim: 4)), out: 2)\n"
           "  loss cross_entropy(logits, y)\n"
           "  output p = softmax(logits)\n"
           "}\n"
           "train m on d { optimizer sgd { lr 0.1 } batch 2 steps 1 }\n",
           data);
  ra_ctx *c = ra_new();
  cr_assert_eq(ra_set_option(c, "quiet", "1"), 0);
  cr_assert_eq(ra_load_string(c, "label.ra", spec), 0, "%s", ra_error(c));
  ra_model *m = ra_model_get(c, "m");
  cr_assert_not_null(m, "%s", ra_error(c));
  cr_assert_eq(ra_save(m, ckpt), 0, "%s", ra_error(c));
  const char *out = NULL;
  cr_assert_eq(ra_predict(c, NULL, ckpt, "odd word", NULL, &out), 0, "%s", ra_error(c));
  size_t n = strcspn(out, "\t");
  cr_assert_eq(n, 300, "the label came back with %zu characters: %.80s", n, out);
  cr_assert(!strncmp(out, label[0], 300) || !strncmp(out, label[1], 300), "%.80s", out);
  cr_assert(strstr(out, "\todd word\n"), "%.400s", out);
  ra_free(c);
  remove(data);
  remove(ckpt);
  rmdir(dir);
}

/* ra_eval's summary has a line for every attention layer, however many and
 * however long their paths. */
Test(api, eval_summary_lists_every_layer) {
  enum { L = 24 };
  const char *name = "a_model_whose_name_is_long_enough_to_make_long_paths";
  char spec[4096];
  snprintf(spec, sizeof spec,
           "data syn = synthetic(task: copy, length: 4, vocab: 8, examples: 16) {\n"
           "  split train 0.5 valid 0.25 test 0.25\n"
           "}\n"
           "model %s {\n"
           "  input  seq : int[4]\n"
           "  target out : class(8)[4]\n"
           "  x = embed(seq, vocab: 8, dim: 4)\n"
           "  repeat %d {\n"
           "    a = attention(x) { heads 2 }\n"
           "    x = x + a\n"
           "  }\n"
           "  logits = linear(x, out: 8)\n"
           "  loss cross_entropy(logits, out)\n"
           "}\n"
           "train %s on syn { optimizer sgd { lr 0.1 } batch 4 steps 1 }\n",
           name, L, name);
  char dir[] = "/tmp/ra-eval-XXXXXX";
  cr_assert(mkdtemp(dir));
  char ckpt[64];
  snprintf(ckpt, sizeof ckpt, "%s/m.safetensors", dir);
  ra_ctx *c = ra_new();
  cr_assert_eq(ra_load_string(c, "deep.ra", spec), 0, "%s", ra_error(c));
  ra_model *m = ra_model_get(c, name);
  cr_assert_not_null(m, "%s", ra_error(c));
  cr_assert_eq(ra_save(m, ckpt), 0, "%s", ra_error(c));
  const char *sum = NULL;
  cr_assert_eq(ra_eval(c, NULL, ckpt, "test", &sum), 0, "%s", ra_error(c));
  int n = 0;
  for (const char *q = sum; (q = strstr(q, "\n  head_diversity ")); q++) n++;
  cr_assert_eq(n, L, "%d of %d layers in:\n%s", n, L, sum);
  cr_assert(sum[strlen(sum) - 1] >= '0' && sum[strlen(sum) - 1] <= '9', "cut: %s", sum);
  ra_free(c);
  remove(ckpt);
  rmdir(dir);
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

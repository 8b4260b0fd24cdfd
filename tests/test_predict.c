/* test_predict.c - rac predict of a language model: --tokens, --temperature,
 * --top-k and --greedy (options predict.* of ra_predict), and the rule that
 * --set epochs and --set steps are not given together; run on the built rac. */
#include "testutil.h"

static const char *spec, *ck;

/* A small word-level language model trained for a few steps, once. */
static void train_lm(void) {
  static char corpus[8192];
  size_t n = 0;
  static const char *const words[] = {"the", "cat", "sat", "on", "a", "mat", "and", "dog",
                                      "ran", "far", "away", "home"};
  for (int i = 0; i < 600; i++)
    n += (size_t)snprintf(corpus + n, sizeof corpus - n, "%s%s", words[(i * 7 + i / 5) % 12],
                          i % 10 == 9 ? ".\n" : " ");
  const char *txt = tu_tmp("corpus.txt");
  cr_assert(tu_write_file(txt, corpus) == 0);
  char text[2048];
  snprintf(text, sizeof text,
           "data d = text(\"%s\") { tokenize words  window 8  vocab 32 }\n"
           "model lm {\n"
           "  input t : int[8]\n"
           "  target next : class(32)[8]\n"
           "  x = embed(t, vocab: 32, dim: 16) + position(8, dim: 16)\n"
           "  x = x + attention(layernorm(x)) { heads 2; causal }\n"
           "  logits = linear(layernorm(x), out: 32)\n"
           "  loss cross_entropy(logits, next)\n"
           "}\n"
           "train lm on d {\n  batch 8\n  steps 30\n  optimizer adam { lr 1e-2 }\n}\n",
           txt);
  spec = tu_tmp("lm.ra");
  cr_assert(tu_write_file(spec, text) == 0);
  ck = tu_tmp("lm.safetensors");
  TuRun r = tu_sh(120, "$RAC run %s --quiet --set save=%s", spec, ck);
  cr_assert_eq(r.status, 0, "train: %d\n%s", r.status, r.err);
  tu_run_free(&r);
}

static char *predict(const char *opts) {
  TuRun r = tu_sh(60, "$RAC predict %s --ckpt %s --input 'the cat' %s", spec, ck, opts);
  cr_assert_eq(r.status, 0, "predict %s: %d\n%s", opts, r.status, r.err);
  free(r.err);
  cr_assert(strncmp(r.out, "the cat", 7) == 0, "%s", r.out);
  return r.out;
}

/* The generated tokens: each is written after a space (an empty one for
 * <pad> and <unk>), so the count is the spaces after the echoed line. */
static int count_tokens(const char *out) {
  int n = 0;
  for (const char *s = out + 7; *s && *s != '\n'; s++) n += *s == ' ';
  return n;
}

Test(predict, sampling_options, .init = train_lm) {
  /* the default: 200 tokens */
  char *a = predict("");
  cr_assert_eq(count_tokens(a), 200, "%s", a);
  free(a);
  /* --tokens N gives N */
  a = predict("--tokens 7");
  cr_assert_eq(count_tokens(a), 7, "%s", a);
  free(a);
  a = predict("--tokens 1");
  cr_assert_eq(count_tokens(a), 1, "%s", a);
  free(a);
  /* greedy is deterministic and is top-k 1, whatever the seed and temperature */
  a = predict("--greedy --tokens 40");
  char *b = predict("--greedy --tokens 40 --seed 99 --temperature 3");
  char *c = predict("--top-k 1 --tokens 40");
  cr_assert_str_eq(a, b);
  cr_assert_str_eq(a, c);
  free(a);
  free(b);
  free(c);
  /* sampling: the same seed gives the same text; another seed another */
  a = predict("--temperature 2 --top-k 8 --seed 3 --tokens 60");
  b = predict("--temperature 2 --top-k 8 --seed 3 --tokens 60");
  c = predict("--temperature 2 --top-k 8 --seed 4 --tokens 60");
  cr_assert_str_eq(a, b);
  cr_assert_str_neq(a, c, "seeds 3 and 4 sampled the same 60 tokens: %s", a);
  free(a);
  free(b);
  free(c);
  a = predict("--temperature 1.5 --seed 5 --tokens 60");
  b = predict("--temperature 1.5 --seed 5 --tokens 60");
  cr_assert_str_eq(a, b);
  /* top-k K: only the K most likely tokens; with K = 2 at a high
   * temperature the text differs from the greedy one but keeps to them */
  free(a);
  free(b);
}

Test(predict, bad_values_are_usage_errors, .init = train_lm) {
  static const struct { const char *opt, *want; } cases[] = {
      {"--tokens 0", "rac: option predict.tokens (--tokens): expected an integer from 1 to 1000000, got '0'"},
      {"--tokens abc", "got 'abc'"},
      {"--tokens 1000001", "got '1000001'"},
      {"--tokens ''", "got ''"},
      {"--temperature 0", "rac: option predict.temperature (--temperature): expected a number above 0 and at most 1000, got '0'"},
      {"--temperature -1", "got '-1'"},
      {"--temperature nan", "got 'nan'"},
      {"--temperature inf", "got 'inf'"},
      {"--temperature 1x", "got '1x'"},
      {"--top-k 0", "rac: option predict.top_k (--top-k): expected an integer from 1 to 1000000, got '0'"},
      {"--top-k -2", "got '-2'"},
      {"--top-k", "rac: option --top-k needs a value"},
      {"--tokens", "rac: option --tokens needs a value"},
      {"--temperature", "rac: option --temperature needs a value"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    TuRun r = tu_sh(60, "$RAC predict %s --ckpt %s --input 'the cat' %s", spec, ck, cases[i].opt);
    cr_assert_eq(r.status, 2, "%s: status %d\n%s", cases[i].opt, r.status, r.err);
    cr_assert(strstr(r.err, cases[i].want), "%s: want %s, got %s", cases[i].opt, cases[i].want,
              r.err);
    cr_assert_eq(r.out[0], 0, "%s printed %s", cases[i].opt, r.out);
    tu_run_free(&r);
  }
}

/* --set epochs and --set steps together are an error, as in a spec; one of
 * them alone replaces the spec's other one. */
Test(predict, set_epochs_and_steps_together, .init = train_lm) {
  TuRun r = tu_sh(60, "$RAC run %s --quiet --set epochs=1 --set steps=2", spec);
  cr_assert_eq(r.status, 2, "status %d\n%s", r.status, r.err);
  cr_assert(strstr(r.err, "rac: --set steps=2: give either 'epochs' or 'steps', not both "
                          "(--set epochs=1 is given too)"), "%s", r.err);
  tu_run_free(&r);
  r = tu_sh(60, "$RAC run %s --quiet --set steps=3 --set epochs=1", spec);
  cr_assert_eq(r.status, 2, "status %d\n%s", r.status, r.err);
  cr_assert(strstr(r.err, "rac: --set epochs=1: give either 'epochs' or 'steps', not both"),
            "%s", r.err);
  tu_run_free(&r);
  r = tu_sh(60, "$RAC run %s --quiet --set steps=2 --set steps=3", spec);
  cr_assert_eq(r.status, 0, "status %d\n%s", r.status, r.err);
  tu_run_free(&r);
  r = tu_sh(60, "$RAC run %s --quiet --set epochs=1", spec);
  cr_assert_eq(r.status, 0, "status %d\n%s", r.status, r.err);
  tu_run_free(&r);
}

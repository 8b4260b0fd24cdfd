/* test_settings.c - the one table of train settings (compiler/settings.def):
 * a spec's clause, --set KEY=VALUE, the set.KEY option and the threads,
 * seed and repulsion options accept the same values and word the same
 * errors; the docs list exactly the table's settings. */
#include "../compiler/settings.h"
#include "ra.h"
#include "testutil.h"

/* A spec whose train block gets `extra` (a clause, or one inside the
 * optimizer block when opt_extra). */
static char *spec_with(const char *opt, const char *opt_extra, const char *extra) {
  static const char *head =
      "data syn = synthetic(task: copy, length: 6, vocab: 8, examples: 64)\n"
      "model tiny {\n"
      "  input  seq : int[6]\n"
      "  target out : class(8)[6]\n"
      "  logits = linear(embed(seq, vocab: 8, dim: 8), out: 8)\n"
      "  loss cross_entropy(logits, out)\n"
      "}\n";
  size_t n = strlen(head) + strlen(opt_extra) + strlen(extra) + 128;
  char *s = malloc(n);
  cr_assert_not_null(s);
  /* a clause of batch, steps or epochs replaces the spec's own */
  bool batch = !strncmp(extra, "batch ", 6);
  bool length = !strncmp(extra, "steps ", 6) || !strncmp(extra, "epochs ", 7);
  snprintf(s, n, "%strain tiny on syn {\n  optimizer %s { %s }\n%s%s  %s\n}\n", head, opt,
           opt_extra, batch ? "" : "  batch 8\n", length ? "" : "  steps 1\n", extra);
  return s;
}

/* The message body of a spec's first error ("" if it loaded). */
static void spec_error(const char *spec, char *body, size_t n) {
  ra_ctx *c = ra_new();
  cr_assert_not_null(c);
  body[0] = 0;
  if (ra_load_string(c, "t.ra", spec) != 0) {
    const char *e = ra_error(c);
    const char *m = strstr(e, "error: ");
    cr_assert_not_null(m, "%s", e);
    m += 7;
    snprintf(body, n, "%.*s", (int)strcspn(m, "\n"), m);
    cr_assert_eq(ra_errcode(c), RA_ESPEC);
  }
  ra_free(c);
}

/* The message of ra_set_option(key, value) ("" if accepted), after the
 * "--set KEY=VALUE: " it starts with for a set.KEY option. */
static void option_error(const char *key, const char *value, char *body, size_t n) {
  ra_ctx *c = ra_new();
  cr_assert_not_null(c);
  body[0] = 0;
  if (ra_set_option(c, key, value) != 0) {
    cr_assert_eq(ra_errcode(c), RA_EUSAGE);
    const char *e = ra_error(c);
    if (!strncmp(key, "set.", 4)) {
      char pre[256];
      snprintf(pre, sizeof pre, "--set %s=%s: ", key + 4, value);
      cr_assert(!strncmp(e, pre, strlen(pre)), "%s", e);
      e += strlen(pre);
    }
    snprintf(body, n, "%s", e);
  }
  ra_free(c);
}

/* threads N: the spec's clause, --set threads=N and --threads N (through
 * rac and through ra_set_option) accept the same N and say the same. */
Test(settings, threads_three_paths) {
  static const struct {
    const char *n, *msg;
  } cases[] = {
      {"0", "threads must be from 1 to 256, found 0"},
      {"1", ""},
      {"256", ""},
      {"257", "threads must be from 1 to 256, found 257"},
      {"300", "threads must be from 1 to 256, found 300"},
      {"-1", "threads must be from 1 to 256, found -1"},
      {"abc", "'threads' expects an integer, found 'abc'"},
      {"2.5", "'threads' expects an integer, found 2.5"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *n = cases[i].n, *want = cases[i].msg;
    char clause[64], body[1024];
    snprintf(clause, sizeof clause, "threads %s", n);
    char *spec = spec_with("adam", "", clause);
    spec_error(spec, body, sizeof body);
    cr_assert_str_eq(body, want, "spec 'threads %s'", n);
    option_error("threads", n, body, sizeof body);
    cr_assert_str_eq(body, want, "option threads=%s", n);
    option_error("set.threads", n, body, sizeof body);
    cr_assert_str_eq(body, want, "option set.threads=%s", n);

    /* the command line: --threads N and --set threads=N */
    char *plain = spec_with("adam", "", "");
    TuRun r = tu_sh(30,
                    "d=$(mktemp -d); trap 'rm -rf $d' EXIT\n"
                    "cat > $d/t.ra <<'SPEC'\n%sSPEC\n"
                    "$RAC check $d/t.ra --threads %s 2>&1; echo \"status $?\"\n"
                    "$RAC check $d/t.ra --set threads=%s 2>&1; echo \"status $?\"\n",
                    plain, n, n);
    free(plain);
    char expect[2048];
    if (*want)
      snprintf(expect, sizeof expect, "rac: %s\nstatus 2\nrac: --set threads=%s: %s\nstatus 2\n",
               want, n, want);
    else
      snprintf(expect, sizeof expect, "status 0\nstatus 0\n");
    cr_assert_str_eq(r.out, expect, "rac with threads %s", n);
    tu_run_free(&r);
    free(spec);
  }
}

/* Every integer and number setting: a value past its limit is refused by
 * the spec and by --set with one message, and the limit itself is taken. */
Test(settings, limits_agree_for_every_setting) {
  int checked = 0;
  for (int id = 0; id < SETTING_COUNT; id++) {
    const Setting *s = setting_get((SettingId)id);
    if (s->kind != SETK_INT && s->kind != SETK_NUM && s->kind != SETK_SPECIAL) continue;
    if (s->lim.kind == LIM_ANY) continue;
    bool is_int = s->kind == SETK_INT;
    /* a value just outside, and one inside */
    char bad[64], good[64], want[256], lim[96];
    double lo = s->lim.lo, hi = s->lim.hi;
    switch (s->lim.kind) {
    case LIM_MIN: snprintf(bad, sizeof bad, "%g", is_int ? lo - 1 : lo - 0.5); break;
    case LIM_GT: snprintf(bad, sizeof bad, "%g", lo); break;
    case LIM_CLOSED: snprintf(bad, sizeof bad, "%g", is_int ? hi + 1 : hi + 0.5); break;
    default: snprintf(bad, sizeof bad, "%g", is_int ? hi + 1 : hi); break;
    }
    snprintf(good, sizeof good, "%g", lo == 0 && s->lim.kind == LIM_GT ? 0.5 : lo);
    snprintf(want, sizeof want, "%s must be %s, found %s", s->key,
             limits_text(&s->lim, is_int, lim, sizeof lim), bad);
    /* the spec: where the clause goes */
    const char *opt = s->optimizers == OPTS_SGD ? "sgd" : "adam";
    char clause[128], body[1024];
    char *spec = NULL;
    const char *spec_key = !strcmp(s->key, "beta1") || !strcmp(s->key, "beta2") ? "betas" : s->key;
    if (s->where & IN_OPTIMIZER || !strcmp(spec_key, "betas")) {
      if (!strcmp(spec_key, "betas"))
        snprintf(clause, sizeof clause, !strcmp(s->key, "beta2") ? "betas 0.5 %s" : "betas %s 0.5",
                 bad);
      else
        snprintf(clause, sizeof clause, "%s %s", s->key, bad);
      spec = spec_with(opt, clause, "");
    } else {
      if (!strcmp(s->key, "warmup")) snprintf(clause, sizeof clause, "schedule warmup %s", bad);
      else snprintf(clause, sizeof clause, "%s %s", s->key, bad);
      spec = spec_with(opt, "", clause);
    }
    char want_spec[256];
    snprintf(want_spec, sizeof want_spec, "%s must be %s, found %s", spec_key,
             limits_text(&s->lim, is_int, lim, sizeof lim), bad);
    /* repulsion_start and repulsion_stop are a layer's `start` and `stop`
     * in a spec (their limits there: test_heads and tests/bad) */
    if (strncmp(s->key, "repulsion_", 10) != 0) {
      spec_error(spec, body, sizeof body);
      cr_assert_str_eq(body, want_spec, "spec: %s", clause);
    }
    free(spec);
    if (s->where & IN_SET) {
      char key[64];
      snprintf(key, sizeof key, "set.%s", s->key);
      option_error(key, bad, body, sizeof body);
      cr_assert_str_eq(body, want, "--set %s=%s", s->key, bad);
      option_error(key, good, body, sizeof body);
      cr_assert_str_eq(body, "", "--set %s=%s", s->key, good);
    }
    checked++;
  }
  cr_assert_geq(checked, 14);
}

/* An unknown key gets "did you mean" from the table in every path. */
Test(settings, unknown_keys_suggest) {
  char body[1024];
  /* with an integer, an unknown key may be a const of the spec: it is
   * checked when the spec loads (const_overrides_name_what_is_missing) */
  option_error("set.epoch", "x", body, sizeof body);
  cr_assert_str_eq(body, "unknown setting 'epoch'; did you mean 'epochs'?");
  option_error("set.wight_decay", "0.5", body, sizeof body);
  cr_assert_str_eq(body, "unknown setting 'wight_decay'; did you mean 'weight_decay'?");
  option_error("thread", "3", body, sizeof body);
  cr_assert_str_eq(body, "unknown option 'thread'; did you mean 'threads'?");
  option_error("epochs", "3", body, sizeof body);
  cr_assert_str_eq(body, "unknown option 'epochs'; the train setting is 'set.epochs'");
  char *spec = spec_with("adam", "", "threds 2");
  spec_error(spec, body, sizeof body);
  cr_assert_str_eq(body, "unknown clause 'threds' in train; did you mean 'threads'?");
  free(spec);
  spec = spec_with("adam", "lerning_rate 2", "");
  spec_error(spec, body, sizeof body);
  cr_assert(strstr(body, "unknown clause 'lerning_rate' in optimizer adam"), "%s", body);
  free(spec);
  TuRun r = tu_sh(20, "$RAC check examples/fortunes.ra --set wamup=3");
  cr_assert_eq(r.status, 2, "%s", r.err);
  cr_assert_str_eq(r.err, "rac: --set wamup=3: unknown setting 'wamup'; did you mean 'warmup'?\n");
  tu_run_free(&r);
}

/* A word choice says the same in a spec and with --set. */
Test(settings, words_agree) {
  char body[1024], sbody[1024];
  char *spec = spec_with("adam", "", "metrics acuracy");
  spec_error(spec, sbody, sizeof sbody);
  free(spec);
  option_error("set.metrics", "acuracy", body, sizeof body);
  cr_assert_str_eq(sbody, body);
  cr_assert_str_eq(body, "'metrics' expects accuracy, loss, perplexity, head_diversity or effective_heads, found "
                         "'acuracy'; did you mean 'accuracy'?");
  option_error("set.optimizer", "adamm", body, sizeof body);
  cr_assert_str_eq(body, "'optimizer' expects sgd, adam or adamw, found 'adamm'; did you mean "
                         "'adam'?");
  option_error("repulsion", "svdg", body, sizeof body);
  cr_assert_str_eq(body, "'repulsion' expects none, svgd, spos or penalty, found 'svdg'; did you mean "
                         "'svgd'?");
  option_error("set.repulsion", "svdg", body, sizeof body);
  cr_assert_str_eq(body, "'repulsion' expects none, svgd, spos or penalty, found 'svdg'; did you mean "
                         "'svgd'?");
  /* a setting of the other optimizer: the same words in both paths */
  spec = spec_with("adam", "momentum 0.5", "");
  spec_error(spec, sbody, sizeof sbody);
  cr_assert_str_eq(sbody, "'momentum' applies to sgd, not adam");
  ra_ctx *c = ra_new();
  cr_assert_eq(ra_set_option(c, "quiet", "1"), 0);
  cr_assert_eq(ra_set_option(c, "set.momentum", "0.5"), 0, "%s", ra_error(c));
  free(spec);
  spec = spec_with("adam", "", "");
  cr_assert_eq(ra_load_string(c, "t.ra", spec), 0, "%s", ra_error(c));
  cr_assert_eq(ra_train(c, NULL, NULL, NULL), RA_EUSAGE);
  cr_assert_str_eq(ra_error(c), "--set momentum=0.5: 'momentum' applies to sgd, not adam");
  ra_free(c);
  free(spec);
}

/* The seed option and --set seed: the same limits. */
Test(settings, seed_option) {
  char a[1024], b[1024];
  const char *vals[] = {"-1", "x", "99999999999999999999", "0", "7"};
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    option_error("seed", vals[i], a, sizeof a);
    option_error("set.seed", vals[i], b, sizeof b);
    cr_assert_str_eq(a, b, "seed %s", vals[i]);
    cr_assert_eq(*a == 0, i >= 3, "seed %s: '%s'", vals[i], a);
  }
}

/* Splits a markdown table row at unescaped '|' into trimmed cells. */
static int row_cells(const char *line, char cells[][512], int max) {
  int n = 0;
  const char *p = line;
  if (*p != '|') return 0;
  p++;
  while (*p && *p != '\n' && n < max) {
    char buf[512];
    size_t len = 0;
    while (*p && *p != '\n' && !(*p == '|' && p[-1] != '\\')) {
      if (len < sizeof buf - 1) buf[len++] = *p;
      p++;
    }
    if (*p != '|') break;
    p++;
    buf[len] = 0;
    char *s = buf;
    while (*s == ' ') s++;
    len = strlen(s);
    while (len && s[len - 1] == ' ') s[--len] = 0;
    snprintf(cells[n++], 512, "%s", s);
  }
  return n;
}

/* The docs' settings table (docs/language.md §8) lists exactly the table's
 * keys, in its order, with their values and defaults. */
Test(settings, docs_table_matches) {
  char *doc = tu_read_file("docs/language.md", NULL);
  cr_assert_not_null(doc);
  const char *at = strstr(doc, "| setting | in a spec | with `--set` | values | default |");
  cr_assert_not_null(at, "no settings table in docs/language.md");
  at = strchr(at, '\n') + 1;  /* the header */
  at = strchr(at, '\n') + 1;  /* |---| */
  int id = 0;
  while (*at == '|') {
    char cells[8][512];
    int n = row_cells(at, cells, 8);
    cr_assert_eq(n, 5, "a row of %d cells: %.60s", n, at);
    cr_assert_lt(id, SETTING_COUNT, "the docs list more settings than the table: %s", cells[0]);
    const Setting *s = setting_get((SettingId)id);
    char key[64], values[512];
    snprintf(key, sizeof key, "`%s`", s->key);
    cr_assert_str_eq(cells[0], key);
    if (s->lim.kind != LIM_ANY) {
      limits_text(&s->lim, s->kind == SETK_INT, values, sizeof values);
    } else if (s->words) {
      size_t len = 0;
      for (int i = 0; i < s->nwords; i++)
        len += (size_t)snprintf(values + len, sizeof values - len, "%s%s",
                                i == 0 ? "" : i == s->nwords - 1 ? " or " : ", ", s->words[i]);
    } else {
      snprintf(values, sizeof values, "%s", s->kind == SETK_PATH ? "a path" : "?");
    }
    cr_assert_str_eq(cells[3], values, "values of %s", s->key);
    cr_assert_str_eq(cells[4], s->def, "default of %s", s->key);
    id++;
    at = strchr(at, '\n');
    if (!at) break;
    at++;
  }
  cr_assert_eq(id, SETTING_COUNT, "the docs list %d settings, the table %d", id, SETTING_COUNT);
  free(doc);
}

/* --set NAME=INT for a const of the spec replaces its value when the spec
 * loads: every use of it (and every const built from it) follows; a name
 * that is neither a setting nor a const is an error naming it. */
Test(settings, const_overrides_name_what_is_missing) {
  static const char *spec =
      "const d = 8\nconst h = 2\nconst hidden = 2 * d\n"
      "data syn = synthetic(task: copy, length: 6, vocab: 8, examples: 64)\n"
      "model tiny {\n"
      "  input  seq : int[6]\n"
      "  target out : class(8)[6]\n"
      "  x = embed(seq, vocab: 8, dim: d)\n"
      "  a = attention(x) { heads h }\n"
      "  logits = linear(ffn(x + a, hidden: hidden, act: gelu), out: 8)\n"
      "  loss cross_entropy(logits, out)\n"
      "}\n"
      "train tiny on syn { batch 8  steps 1 }\n";
  ra_ctx *c = ra_new();
  cr_assert_eq(ra_set_option(c, "set.d", "12"), 0, "%s", ra_error(c));
  cr_assert_eq(ra_set_option(c, "set.h", "3"), 0, "%s", ra_error(c));
  cr_assert_eq(ra_load_string(c, "t.ra", spec), 0, "%s", ra_error(c));
  const char *text = NULL;
  cr_assert_eq(ra_dump(c, "tiny", "params", &text), 0, "%s", ra_error(c));
  cr_assert(strstr(text, "tiny.a.wq") && strstr(text, "f32[12, 12]"), "%s", text);
  cr_assert(strstr(text, "f32[12, 24]"), "hidden = 2 * d follows d: %s", text);
  /* once loaded, a const cannot change any more: said so */
  cr_assert_eq(ra_set_option(c, "set.h", "4"), RA_EUSAGE);
  cr_assert(strstr(ra_error(c), "set it before ra_load_file"), "%s", ra_error(c));
  ra_free(c);

  /* heads that do not divide the dimension: the spec's located error */
  c = ra_new();
  cr_assert_eq(ra_set_option(c, "set.h", "3"), 0, "%s", ra_error(c));
  cr_assert_eq(ra_load_string(c, "t.ra", spec), RA_ESPEC);
  cr_assert(strstr(ra_error(c), "t.ra:9:7: error: attention: dimension 8 is not divisible by 3 heads"),
            "%s", ra_error(c));
  ra_free(c);

  /* a name near a const, and one near nothing */
  c = ra_new();
  cr_assert_eq(ra_set_option(c, "set.hh", "4"), 0, "%s", ra_error(c));
  cr_assert_eq(ra_load_string(c, "t.ra", spec), RA_EUSAGE);
  cr_assert_str_eq(ra_error(c), "--set hh=4: the spec has no const 'hh'; did you mean 'h'?");
  ra_free(c);
  TuRun r = tu_sh(20, "$RAC check examples/fortunes.ra --set zzzz=3");
  cr_assert_eq(r.status, 2, "%s", r.err);
  cr_assert(strstr(r.err, "rac: --set zzzz=3: unknown setting 'zzzz' (known: ") &&
                strstr(r.err, "; nor is it a const of the spec\n"),
            "%s", r.err);
  tu_run_free(&r);
  r = tu_sh(20, "$RAC check examples/fortunes.ra --set n_heads=2.5");
  cr_assert_eq(r.status, 2, "%s", r.err);
  cr_assert(strstr(r.err, "a const of the spec takes an integer"), "%s", r.err);
  tu_run_free(&r);
  r = tu_sh(20, "$RAC check examples/fortunes.ra --set n_heads=8 && $RAC params examples/fortunes.ra --set n_heads=1");
  cr_assert_eq(r.status, 0, "%s", r.err);
  tu_run_free(&r);
}

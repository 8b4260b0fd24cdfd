/* test_cli.c - the rac command line: usage errors, exit statuses and
 * messages, run on the built rac. */
#include <signal.h>

#include "testutil.h"

#include "ra.h"

/* Every option that takes a value, given last with no value, is a usage
 * error naming the option (exit 2), for each command that could take it. */
Test(cli, option_without_value_is_usage_error) {
  const char *opts[] = {"--train", "--model",     "--ckpt",   "--split", "--input",
                        "--file",  "--steps",     "--threads", "--seed", "--repulsion",
                        "--resume", "--log",      "--set"};
  const char *cmds[] = {"run", "bench", "eval", "predict", "ir"};
  for (size_t c = 0; c < sizeof cmds / sizeof cmds[0]; c++)
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
      TuRun r = tu_sh(20, "$RAC %s examples/fortunes.ra %s", cmds[c], opts[i]);
      cr_assert_eq(r.status, 2, "rac %s FILE %s: status %d\n%s", cmds[c], opts[i], r.status, r.err);
      char want[64];
      snprintf(want, sizeof want, "rac: option %s needs a value\n", opts[i]);
      cr_assert(strstr(r.err, want), "rac %s FILE %s: %s", cmds[c], opts[i], r.err);
      tu_run_free(&r);
    }
}

/* A value that looks like an option is still the value. */
Test(cli, value_may_start_with_dash) {
  TuRun r = tu_sh(20, "$RAC bench examples/fortunes.ra --steps -3");
  cr_assert_eq(r.status, 2, "status %d\n%s", r.status, r.err);
  cr_assert(strstr(r.err, "--steps needs a positive integer, got '-3'"), "%s", r.err);
  tu_run_free(&r);
}

/* A float setting from the command line must be a finite number: inf is
 * refused like nan (usage error naming the setting). */
Test(cli, set_refuses_non_finite) {
  const char *kv[] = {"lr=inf", "lr=nan", "lr=-inf", "clip=inf", "weight_decay=inf", "lr=1e999"};
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
    TuRun r = tu_sh(20, "$RAC run examples/fortunes.ra --quiet --set steps=1 --set %s", kv[i]);
    cr_assert_eq(r.status, 2, "--set %s: status %d\n%s", kv[i], r.status, r.err);
    char key[32], want[96];
    snprintf(key, sizeof key, "%.*s", (int)(strchr(kv[i], '=') - kv[i]), kv[i]);
    snprintf(want, sizeof want, "--set %s: '%s' expects a number, found '%s'", kv[i], key,
             strchr(kv[i], '=') + 1);
    cr_assert(strstr(r.err, want), "--set %s: want '%s', got: %s", kv[i], want, r.err);
    tu_run_free(&r);
  }
}

/* predict --file given a directory: status 1, and the message names the
 * path and says what it is. */
Test(cli, predict_file_is_a_directory) {
  TuRun r = tu_sh(60,
                  "set -e; d=$(mktemp -d); trap 'rm -rf $d' EXIT\n"
                  "cat > $d/t.ra <<'SPEC'\n"
                  "data syn = synthetic(task: copy, length: 6, vocab: 8, examples: 32) {\n"
                  "  split train 0.75 valid 0.125 test 0.125\n"
                  "}\n"
                  "model tiny {\n"
                  "  input  seq : int[6]\n"
                  "  target out : class(8)[6]\n"
                  "  logits = linear(embed(seq, vocab: 8, dim: 8), out: 8)\n"
                  "  loss cross_entropy(logits, out)\n"
                  "  output probs = softmax(logits)\n"
                  "}\n"
                  "train tiny on syn { optimizer sgd { lr 0.1 } batch 8 steps 1 }\n"
                  "SPEC\n"
                  "mkdir $d/in.d\n"
                  "$RAC run $d/t.ra --quiet --set save=$d/t.safetensors >/dev/null\n"
                  "set +e; $RAC predict $d/t.ra --ckpt $d/t.safetensors --file $d/in.d; "
                  "echo \"status $?\"; echo \"dir $d/in.d\"\n");
  cr_assert_eq(r.status, 0, "status %d\n%s\n%s", r.status, r.out, r.err);
  cr_assert(strstr(r.out, "status 1\n"), "%s\n%s", r.out, r.err);
  const char *dir = strstr(r.out, "dir ");
  cr_assert(dir);
  char path[256];
  snprintf(path, sizeof path, "%.*s", (int)strcspn(dir + 4, "\n"), dir + 4);
  char want[320];
  snprintf(want, sizeof want, "%s: cannot read: not a regular file (a directory)", path);
  cr_assert(strstr(r.err, want), "want '%s', got: %s", want, r.err);
  tu_run_free(&r);
}

/* A path setting takes the spec's quoted form too (--set save="x" as in
 * `save "x"`): the file is x, not a name with quotes in it; an opening
 * quote without its closing one is a usage error. */
Test(cli, set_path_in_quotes) {
  TuRun r = tu_sh(120,
                  "set -e; d=$(mktemp -d); trap 'rm -rf $d' EXIT; cd $d\n"
                  "$RAC run $OLDPWD/examples/reverse.ra --quiet --set steps=1 "
                  "--set 'save=\"ck.safetensors\"' >/dev/null\n"
                  "ls; set +e\n"
                  "$RAC run $OLDPWD/examples/reverse.ra --quiet --set steps=1 "
                  "--set 'save=\"ck2.safetensors'; echo \"status $?\"\n");
  cr_assert_eq(r.status, 0, "status %d\n%s\n%s", r.status, r.out, r.err);
  cr_assert(!strncmp(r.out, "ck.safetensors\nstatus 2\n", 25), "%s\n%s", r.out, r.err);
  cr_assert(strstr(r.err, "save: the path \"ck2.safetensors has no closing '\"'"), "%s", r.err);
  tu_run_free(&r);
}

/* --set with a long key: the message names the whole key. */
Test(cli, set_long_key_is_not_cut) {
  char key[301];
  memset(key, 'k', 300);
  key[300] = 0;
  TuRun r = tu_sh(20, "$RAC run examples/fortunes.ra --set %s=1", key);
  cr_assert_eq(r.status, 2, "status %d\n%s", r.status, r.err);
  char want[400];
  snprintf(want, sizeof want, "unknown setting '%s'", key);
  cr_assert(strstr(r.err, want), "%s", r.err);
  tu_run_free(&r);
}

/* A text corpus truncated while rac trains on it (its examples are read
 * from the mapped file at each batch) ends rac with a message saying so:
 * SIGBUS at the next read of a lost page (exit 135). */
Test(cli, data_file_truncated_while_training_is_reported, .timeout = 120) {
  const char *txt = tu_tmp("shrink.txt"), *spec = tu_tmp("shrink.ra"), *err = tu_tmp("shrink.err");
  static char corpus[1 << 18];
  for (size_t i = 0; i + 1 < sizeof corpus; i++) corpus[i] = (char)(i % 61 == 60 ? '\n' : 'a' + (i * 7) % 26);
  cr_assert(tu_write_file(txt, corpus) == 0);
  char text[1024];
  snprintf(text, sizeof text,
           "data d = text(\"%s\") { tokenize chars  window 16  vocab 32 }\n"
           "model m {\n  input t : int[16]\n  target y : class(32)[16]\n"
           "  x = embed(t, vocab: 32, dim: 8)\n  logits = linear(x, out: 32)\n"
           "  loss cross_entropy(logits, y)\n}\n"
           "train m on d {\n  batch 4\n  steps 100000000\n}\n",
           txt);
  cr_assert(tu_write_file(spec, text) == 0);
  TuRun r = tu_sh(100,
                  "$RAC run %s --threads 1 2>%s & pid=$!\n"
                  "until grep -q '^training' %s; do sleep 0.05; done\n"
                  "truncate -s 0 %s\nwait $pid; st=$?\ncat %s >&2\nexit $st",
                  spec, err, err, txt, err);
  cr_assert_eq(r.status, 128 + SIGBUS, "status %d\n%s", r.status, r.err);
  cr_assert(strstr(r.err, "rac: bus error (SIGBUS): a data file read through a memory mapping was "
                          "truncated"),
            "%s", r.err);
  tu_run_free(&r);
}

/* rac bench's report names the GEMM backend as --version does and gives
 * the process's resident peak (bench/run.sh reads both). */
Test(cli, bench_names_the_gemm_backend_and_rss, .timeout = 60) {
  const char *kernels = "";
  const char *gemm = ra_gemm_backend(&kernels);
  char want[128];
  snprintf(want, sizeof want, "  gemm %s (%s)\n", gemm, kernels);
  TuRun r = tu_sh(50, "$RAC bench examples/reverse.ra --steps 1 --threads 1");
  cr_assert_eq(r.status, 0, "status %d\n%s", r.status, r.err);
  cr_assert(strstr(r.out, want), "want '%s' in:\n%s", want, r.out);
  const char *p = strstr(r.out, "\nmax rss ");
  cr_assert(p, "%s", r.out);
  cr_assert_gt(strtod(p + 9, NULL), 1.0, "%s", r.out);
  tu_run_free(&r);
}

/* rac bench --profile: the step's time by node kind, the parts outside the
 * step function, and the rest, adding up to the timed steps. */
Test(cli, bench_profile_accounts_for_the_step, .timeout = 90) {
  TuRun r = tu_sh(80, "$RAC bench examples/reverse.ra --steps 3 --threads 1 --profile");
  cr_assert_eq(r.status, 0, "status %d\n%s", r.status, r.err);
  const char *p = strstr(r.out, "profile of 3 steps:");
  cr_assert(p, "%s", r.out);
  p = strchr(p, '\n');
  double total = 0, kinds = 0, fn = -1;
  int nlines = 0;
  bool matmul = false, optim = false, particles = false;
  while (p && p[1]) {
    char line[512];
    const char *end = strchr(p + 1, '\n');
    size_t len = end ? (size_t)(end - p - 1) : strlen(p + 1);
    snprintf(line, sizeof line, "%.*s", (int)len, p + 1);
    p = end;
    double share = -1, ms = -1;
    cr_assert_eq(sscanf(line, " %lf%% %lf ms", &share, &ms), 2, "line: %.80s", line);
    cr_assert(share >= 0 && ms >= 0, "line: %.80s", line);
    nlines++;
    if (fn < 0) {
      cr_assert(strstr(line, "the step function's"), "line: %.80s", line);
      fn = share;
      total += share;
      continue;
    }
    if (strstr(line, "gradient copies") || strstr(line, "the rest (") ||
        strstr(line, "particle update") || strstr(line, "optimizer")) {
      particles = particles || strstr(line, "particle update");
      optim = optim || strstr(line, "optimizer");
      total += share;
    } else {
      kinds += share;
      if (strstr(line, "matmul [") && strstr(line, "GFLOP/s") && strstr(line, " -> f32["))
        matmul = true;
    }
  }
  cr_assert(matmul && optim && particles, "%s", r.out);
  cr_assert_gt(nlines, 6, "%s", r.out);
  cr_assert(fabs(total - 100.0) < 0.5, "the parts add up to %.1f%%:\n%s", total, r.out);
  cr_assert(fabs(kinds - fn) < 0.1 * nlines + 0.5, "kinds %.1f%% of the function's %.1f%%:\n%s",
            kinds, fn, r.out);
  tu_run_free(&r);
  r = tu_sh(20, "$RAC run examples/reverse.ra --profile");
  cr_assert_eq(r.status, 2, "status %d\n%s", r.status, r.err);
  cr_assert(strstr(r.err, "--profile is an option of bench, not of 'run'"), "%s", r.err);
  tu_run_free(&r);
}

/* --no-chains: the plan prints its chains and scratch without it and none
 * with it; training gives the same loss either way. */
Test(cli, no_chains_plans_without_them, .timeout = 90) {
  TuRun r = tu_sh(30, "$RAC ir --plan examples/fortunes.ra");
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert(strstr(r.out, "\nchain %") && strstr(r.out, " scratch 0 +") &&
                strstr(r.out, "\nscratch "),
            "%s", r.out);
  tu_run_free(&r);
  r = tu_sh(30, "$RAC ir --plan --no-chains examples/fortunes.ra");
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert(!strstr(r.out, "chain") && !strstr(r.out, "scratch"), "%s", r.out);
  tu_run_free(&r);
  TuRun a = tu_sh(80, "$RAC bench examples/fortunes.ra --steps 3 --threads 2");
  TuRun b = tu_sh(80, "$RAC bench examples/fortunes.ra --steps 3 --threads 2 --no-chains --no-fuse");
  cr_assert_eq(a.status, 0, "%s", a.err);
  cr_assert_eq(b.status, 0, "%s", b.err);
  const char *la = strstr(a.out, "\nloss "), *lb = strstr(b.out, "\nloss ");
  cr_assert(la && lb, "%s\n%s", a.out, b.out);
  cr_assert(strncmp(la, lb, 16) == 0, "%s\n%s", a.out, b.out);
  tu_run_free(&a);
  tu_run_free(&b);
}

/* test_sweep.c - rac sweep and rac plot, run on the built rac: a tiny
 * sweep of examples/reverse.ra (2 arms x 2 seeds, 2 at a time), its files
 * against the runs' own logs, the skip on re-running, failures, signals
 * and bad input. */
#include <jansson.h>
#include <sys/time.h>

#include "testutil.h"
#include "xmlcheck.h"
#include "../cli/stats.h"

static double wall(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (double)tv.tv_sec + 1e-6 * (double)tv.tv_usec;
}

/* The test evaluation at the end of a run's log, read line by line here
 * (not with the reader rac uses). */
static json_t *last_test_eval(const char *path) {
  FILE *f = fopen(path, "r");
  cr_assert(f, "cannot open %s", path);
  char line[8192];
  json_t *last = NULL;
  while (fgets(line, sizeof line, f)) {
    if (!strstr(line, "\"split\":\"test\"")) continue;
    if (last) json_decref(last);
    last = json_loads(line, 0, NULL);
    cr_assert(last, "%s: bad line %s", path, line);
  }
  fclose(f);
  cr_assert(last, "%s has no test evaluation", path);
  return last;
}

#define SWEEP_ARGS "examples/reverse.ra --repulsion none,svgd --seeds 1..2 --set epochs=2 --jobs 2"

Test(sweep, tiny_sweep_files_match_the_runs_and_rerun_skips, .timeout = 240) {
  char dir[] = "/tmp/ra-sweep-XXXXXX";
  cr_assert(mkdtemp(dir));
  double t0 = wall();
  TuRun r = tu_sh(200, "$RAC sweep " SWEEP_ARGS " --out %s/s", dir);
  double t1 = wall();
  cr_assert_eq(r.status, 0, "status %d\n%s", r.status, r.err);
  fprintf(stderr, "tiny sweep: %.1f s\n", t1 - t0);
  cr_assert(strstr(r.err, "4 runs, 4 to run, 2 at a time, 1 thread each"), "%s", r.err);
  tu_run_free(&r);

  char path[512];
  snprintf(path, sizeof path, "%s/s/sweep.jsonl", dir);
  char *jsonl = tu_read_file(path, NULL);
  cr_assert(jsonl, "no sweep.jsonl");
  char *jsonl0 = strdup(jsonl);
  snprintf(path, sizeof path, "%s/s/curves.svg", dir);
  char *curves0 = tu_read_file(path, NULL);
  cr_assert(jsonl0 && curves0);
  const char *names[] = {"repulsion=none,epochs=2,seed=1", "repulsion=none,epochs=2,seed=2",
                         "repulsion=svgd,epochs=2,seed=1", "repulsion=svgd,epochs=2,seed=2"};
  double acc[4], loss[4];
  int n = 0;
  for (char *line = jsonl, *nl; *line; line = nl + 1) {
    nl = strchr(line, '\n');
    cr_assert(nl, "sweep.jsonl: unterminated line");
    *nl = 0;
    cr_assert_lt(n, 4, "more than 4 objects in sweep.jsonl");
    json_error_t je;
    json_t *o = json_loads(line, 0, &je);
    cr_assert(o && json_is_object(o), "sweep.jsonl line %d: %s", n + 1, je.text);
    /* in the order of the axes, seeds innermost */
    cr_assert_str_eq(json_string_value(json_object_get(o, "name")), names[n]);
    cr_assert_str_eq(json_string_value(json_object_get(o, "repulsion")), n < 2 ? "none" : "svgd");
    cr_assert_eq(json_integer_value(json_object_get(o, "seed")), n % 2 + 1);
    cr_assert_eq(json_number_value(json_object_get(o, "epochs")), 2);
    cr_assert(json_number_value(json_object_get(o, "seconds")) > 0);
    /* the figures are the run's own final test evaluation, every field */
    snprintf(path, sizeof path, "%s/s/runs/%s.jsonl", dir, names[n]);
    json_t *ev = last_test_eval(path);
    json_t *test = json_object_get(o, "test");
    cr_assert(json_is_object(test));
    const char *k;
    json_t *v;
    size_t nfields = 0;
    json_object_foreach(ev, k, v) {
      if (!strcmp(k, "event") || !strcmp(k, "split") || !strcmp(k, "step") || !strcmp(k, "epoch"))
        continue;
      nfields++;
      json_t *got = json_object_get(test, k);
      cr_assert(got, "%s: test.%s missing", names[n], k);
      cr_assert(json_equal(got, v), "%s: test.%s differs from the log", names[n], k);
    }
    cr_assert_eq(json_object_size(test), nfields, "%s: extra fields in test", names[n]);
    cr_assert(json_is_object(json_object_get(test, "head_diversity")));
    /* effective_heads (reverse.ra asks for it) passes through like head_diversity */
    json_t *eff = json_object_get(json_object_get(test, "effective_heads"), "reverser.r0.a");
    cr_assert(json_is_number(eff), "%s: no test.effective_heads", names[n]);
    cr_assert(json_number_value(eff) >= 1 && json_number_value(eff) <= 4, "%g",
              json_number_value(eff));
    cr_assert(json_equal(json_object_get(o, "steps"), json_object_get(ev, "step")));
    acc[n] = json_number_value(json_object_get(test, "accuracy"));
    loss[n] = json_number_value(json_object_get(test, "loss"));
    json_decref(ev);
    json_decref(o);
    /* the checkpoint and the result file are beside the log */
    snprintf(path, sizeof path, "%s/s/runs/%s.safetensors", dir, names[n]);
    cr_assert(access(path, R_OK) == 0, "no checkpoint %s", path);
    snprintf(path, sizeof path, "%s/s/runs/%s.json", dir, names[n]);
    cr_assert(access(path, R_OK) == 0, "no result file %s", path);
    n++;
  }
  cr_assert_eq(n, 4, "sweep.jsonl has %d objects", n);

  snprintf(path, sizeof path, "%s/s/sweep.md", dir);
  char *md = tu_read_file(path, NULL);
  cr_assert(md, "no sweep.md");
  cr_assert(strstr(md, "\n## accuracy\n"), "%s", md);
  cr_assert(strstr(md, "\n## head_diversity reverser.r0.a\n"), "%s", md);
  cr_assert(strstr(md, "\n## effective_heads reverser.r0.a\n"), "%s", md);
  /* the arms' rows with n and the mean of the runs' accuracies */
  char row[256];
  snprintf(row, sizeof row, "| repulsion=none, epochs=2 | 2 | %.4g |", (acc[0] + acc[1]) / 2);
  cr_assert(strstr(md, row), "want '%s' in\n%s", row, md);
  snprintf(row, sizeof row, "| repulsion=svgd, epochs=2 | 2 | %.4g |", (acc[2] + acc[3]) / 2);
  cr_assert(strstr(md, row), "want '%s' in\n%s", row, md);
  /* the loss table: the interval of the svgd arm and its paired test
   * against none, from the figures of sweep.jsonl (cli/stats.c itself is
   * tested against scipy) */
  const char *ls = strstr(md, "\n## loss\n");
  cr_assert(ls, "no loss table in\n%s", md);
  StCI ci = st_ci95(loss + 2, 2);
  StPaired pt = st_paired(loss + 2, loss, 2);
  cr_assert(isfinite(pt.t), "the losses of the two arms are equal seed by seed");
  char lo[32], hi[32];
  snprintf(lo, sizeof lo, "%.4g", ci.mean - ci.half);
  snprintf(hi, sizeof hi, "%.4g", ci.mean + ci.half);
  snprintf(row, sizeof row, "| repulsion=svgd, epochs=2 | 2 | %.4g | %s … %s | %+.4g |", ci.mean,
           lo, hi, pt.mean);
  cr_assert(strstr(ls, row), "want '%s' in\n%s", row, ls);
  snprintf(lo, sizeof lo, "%.4g", pt.mean - pt.half);
  snprintf(hi, sizeof hi, "%.4g", pt.mean + pt.half);
  snprintf(row, sizeof row, " %s … %s (n = 2) | %.3g |", lo, hi, pt.p);
  cr_assert(strstr(ls, row), "want '%s' in\n%s", row, ls);
  cr_assert(strstr(md, "(baseline)"));
  cr_assert(strstr(md, "Δ vs repulsion=none"));

  const char *svgs[] = {"curves.svg", "diversity.svg"};
  for (size_t i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/s/%s", dir, svgs[i]);
    xml_check_svg_file(path, NULL);
  }
  /* no final-epochs.svg: one value is no curve */
  snprintf(path, sizeof path, "%s/s/final-epochs.svg", dir);
  cr_assert(access(path, F_OK) != 0);

  /* again: every run is skipped, the files come out the same */
  t0 = wall();
  r = tu_sh(60, "$RAC sweep " SWEEP_ARGS " --out %s/s", dir);
  t1 = wall();
  cr_assert_eq(r.status, 0, "status %d\n%s", r.status, r.err);
  cr_assert(strstr(r.err, "4 runs, 4 finished before (skipped), 0 to run"), "%s", r.err);
  cr_assert(!strstr(r.err, "started"), "%s", r.err);
  cr_assert_lt(t1 - t0, 15, "the re-run took %.1f s", t1 - t0);
  tu_run_free(&r);
  snprintf(path, sizeof path, "%s/s/sweep.jsonl", dir);
  char *jsonl2 = tu_read_file(path, NULL);
  snprintf(path, sizeof path, "%s/s/sweep.md", dir);
  char *md2 = tu_read_file(path, NULL);
  snprintf(path, sizeof path, "%s/s/curves.svg", dir);
  char *curves2 = tu_read_file(path, NULL);
  cr_assert(jsonl2 && md2 && curves2);
  cr_assert_str_eq(md2, md, "sweep.md changed on the re-run");
  cr_assert_str_eq(jsonl2, jsonl0, "sweep.jsonl changed on the re-run");
  cr_assert_str_eq(curves2, curves0, "curves.svg changed on the re-run");

  /* rac plot over two of the logs */
  r = tu_sh(60, "$RAC plot '%s/s/runs/%s.jsonl' '%s/s/runs/%s.jsonl' --out %s/two.svg", dir,
            names[0], dir, names[2], dir);
  cr_assert_eq(r.status, 0, "status %d\n%s", r.status, r.err);
  tu_run_free(&r);
  snprintf(path, sizeof path, "%s/two.svg", dir);
  xml_check_svg_file(path, NULL);
  char *two = tu_read_file(path, NULL);
  cr_assert(strstr(two, names[0]) && strstr(two, names[2]), "legend lacks the runs' names");
  cr_assert(strstr(two, "head diversity, layer reverser.r1.a"));
  free(two);
  free(jsonl);
  free(jsonl0);
  free(jsonl2);
  free(curves0);
  free(curves2);
  free(md);
  free(md2);
  snprintf(path, sizeof path, "rm -rf %s", dir);
  (void)!system(path);
}

/* A run that fails is reported with its name and the end of its output;
 * the others still run; the sweep exits 1 and marks none finished. */
/* Every repulsion kind is an arm, penalty included: one object each in
 * sweep.jsonl, in the order given, and a row each in sweep.md. */
Test(sweep, every_repulsion_kind_is_an_arm, .timeout = 200) {
  char dir[] = "/tmp/ra-sweep-XXXXXX";
  cr_assert(mkdtemp(dir));
  TuRun r = tu_sh(180, "$RAC sweep examples/reverse.ra --repulsion none,svgd,spos,penalty "
                       "--seeds 1 --set steps=3 --jobs 2 --out %s/s", dir);
  cr_assert_eq(r.status, 0, "status %d\n%s", r.status, r.err);
  tu_run_free(&r);
  char path[512];
  snprintf(path, sizeof path, "%s/s/sweep.jsonl", dir);
  char *jsonl = tu_read_file(path, NULL);
  cr_assert(jsonl, "no sweep.jsonl");
  const char *kinds[] = {"none", "svgd", "spos", "penalty"};
  int n = 0;
  for (char *line = jsonl, *nl; *line; line = nl + 1) {
    nl = strchr(line, '\n');
    cr_assert(nl);
    *nl = 0;
    cr_assert_lt(n, 4, "more than 4 objects");
    json_t *o = json_loads(line, 0, NULL);
    cr_assert(o, "bad line %s", line);
    cr_assert_str_eq(json_string_value(json_object_get(o, "repulsion")), kinds[n]);
    cr_assert(json_is_object(json_object_get(json_object_get(o, "test"), "effective_heads")), "%s",
              line);
    json_decref(o);
    n++;
  }
  cr_assert_eq(n, 4);
  free(jsonl);
  snprintf(path, sizeof path, "%s/s/sweep.md", dir);
  char *md = tu_read_file(path, NULL);
  cr_assert(md);
  cr_assert(strstr(md, "| repulsion=penalty, steps=3 | 1 |"), "%s", md);
  free(md);
  r = tu_sh(20, "rm -rf %s", dir);
  tu_run_free(&r);
}

Test(sweep, failed_runs_are_reported, .timeout = 120) {
  TuRun r = tu_sh(100,
                  "d=$(mktemp -d); trap 'rm -rf $d' EXIT\n"
                  "sed 's|data/fortunes.tsv|data/no-such-file.tsv|' examples/fortunes.ra > $d/f.ra\n"
                  "$RAC sweep $d/f.ra --out $d/s --seeds 1,2 --jobs 2; echo \"status $?\"\n"
                  "ls $d/s/runs\n");
  cr_assert_eq(r.status, 0, "%s\n%s", r.out, r.err);
  cr_assert(strstr(r.out, "status 1\n"), "%s\n%s", r.out, r.err);
  cr_assert(strstr(r.err, "run seed=1 failed (exit status 1)"), "%s", r.err);
  cr_assert(strstr(r.err, "run seed=2 failed (exit status 1)"), "%s", r.err);
  cr_assert(strstr(r.err, "no-such-file.tsv"), "the tail of the output: %s", r.err);
  cr_assert(strstr(r.err, "2 of 2 runs failed: seed=1 seed=2"), "%s", r.err);
  cr_assert(!strstr(r.out, ".json\n"), "a result file for a failed run: %s", r.out);
  cr_assert(strstr(r.out, "seed=1.out\n"), "%s", r.out);
  tu_run_free(&r);
}

/* SIGTERM: no new runs, the running ones are stopped and waited for, exit
 * 143 with the line that says how to resume. */
Test(sweep, sigterm_stops_and_says_how_to_resume, .timeout = 120) {
  TuRun r = tu_sh(100,
                  "d=$(mktemp -d); trap 'rm -rf $d' EXIT\n"
                  "$RAC sweep examples/reverse.ra --out $d/s --seeds 1..4 --set epochs=500 "
                  "--jobs 2 2>$d/err &\n"
                  "p=$!\n"
                  "for i in $(seq 200); do grep -q started $d/err 2>/dev/null && break; sleep 0.1; done\n"
                  "kill -TERM $p; wait $p; echo \"status $?\"; cat $d/err >&2\n"
                  "ls $d/s/runs\n");
  cr_assert_eq(r.status, 0, "%s\n%s", r.out, r.err);
  cr_assert(strstr(r.out, "status 143\n"), "%s\n%s", r.out, r.err);
  cr_assert(strstr(r.err, "SIGTERM: no new runs"), "%s", r.err);
  cr_assert(strstr(r.err, "the same command resumes the sweep"), "%s", r.err);
  cr_assert(!strstr(r.err, "[3/4] seed=3"), "a run started after the signal: %s", r.err);
  cr_assert(!strstr(r.out, ".json\n"), "%s", r.out);
  tu_run_free(&r);
}

/* Bad input: usage errors (2) name the option and the value; files (1). */
Test(sweep, bad_input_is_a_clear_error) {
  struct {
    const char *args, *want;
    int status;
  } cases[] = {
      {"--seeds 5..1", "--seeds 5..1: the range is empty (5 > 1); write 1..5", 2},
      {"--seeds 1,x", "--seeds: 'x' is not a non-negative integer", 2},
      {"--set lrr=1e-3,2e-3", "--set lrr=1e-3: unknown setting 'lrr'; did you mean 'lr'?", 2},
      {"--set lr=", "--set lr: no values", 2},
      {"--set lr=1e-3,,2e-3", "--set lr: an empty value in '1e-3,,2e-3'", 2},
      {"--set batch=0,8", "--set batch=0: batch must be at least 1", 2},
      {"--repulsion none,bogus", "--repulsion bogus: 'repulsion' expects none, svgd, spos or penalty, found 'bogus'", 2},
      {"--repulsion none,svgd --baseline spos", "--baseline spos: not a value of the first axis", 2},
      {"--set save=x", "--set save: the sweep sets each run's checkpoint and log itself", 2},
      {"--jobs 0", "--jobs needs an integer from 1 to 256, got '0'", 2},
      {"--train nope", "no train block for 'nope'", 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    TuRun r = tu_sh(30, "d=$(mktemp -d); trap 'rm -rf $d' EXIT\n"
                        "$RAC sweep examples/reverse.ra --out $d/s %s; s=$?\n"
                        "test -e $d/s && echo 'made the folder'; exit $s", cases[i].args);
    cr_assert_eq(r.status, cases[i].status, "%s: status %d\n%s", cases[i].args, r.status, r.err);
    cr_assert(strstr(r.err, cases[i].want), "%s: want '%s', got: %s", cases[i].args,
              cases[i].want, r.err);
    cr_assert(!strstr(r.out, "made the folder"), "%s: the output folder was made", cases[i].args);
    tu_run_free(&r);
  }
  TuRun r = tu_sh(30, "d=$(mktemp -d); trap 'rm -rf $d' EXIT; touch $d/file\n"
                      "$RAC sweep examples/reverse.ra --out $d/file/s --seeds 1");
  cr_assert_eq(r.status, 1, "status %d\n%s", r.status, r.err);
  cr_assert(strstr(r.err, "/file/s/runs: cannot create or write the folder: Not a directory"), "%s", r.err);
  tu_run_free(&r);
  r = tu_sh(30, "$RAC sweep examples/reverse.ra --seeds 1");
  cr_assert_eq(r.status, 2);
  cr_assert(strstr(r.err, "needs --out DIR"), "%s", r.err);
  tu_run_free(&r);
  /* many values: each is checked (more than a context holds at once) */
  r = tu_sh(60, "d=$(mktemp -d); trap 'rm -rf $d' EXIT\n"
                "v=$(for i in $(seq 70); do printf '%%se-4,' $i; done)abc\n"
                "$RAC sweep examples/reverse.ra --out $d/s --set lr=$v --set batch=$(seq -s, 1 70)");
  cr_assert_eq(r.status, 2, "status %d\n%s", r.status, r.err);
  cr_assert(strstr(r.err, "rac sweep: --set lr=abc: 'lr' expects a number, found 'abc'"), "%s", r.err);
  tu_run_free(&r);
  r = tu_sh(30, "$RAC sweep --help");
  cr_assert_eq(r.status, 0, "status %d\n%s", r.status, r.err);
  cr_assert(strstr(r.out, "usage: rac sweep FILE --out DIR"), "%s", r.out);
  tu_run_free(&r);
}

/* rac plot: a malformed line is an error naming the file and the line. */
Test(sweep, plot_names_the_bad_line) {
  TuRun r = tu_sh(30, "d=$(mktemp -d); trap 'rm -rf $d' EXIT\n"
                      "printf '{\"event\":\"step\",\"step\":1,\"loss\":2}\\n{\"event\":\"step\",\"st\\n' > $d/l.jsonl\n"
                      "printf '{\"event\":\"step\",\"step\":1}\\n' > $d/m.jsonl\n"
                      "$RAC plot $d/l.jsonl --out $d/p.svg; echo \"status $?\"; "
                      "$RAC plot $d/m.jsonl --out $d/p.svg; echo \"status $?\"; "
                      "$RAC plot $d/l.jsonl; echo \"status $?\"; test -e $d/p.svg && echo written\n");
  cr_assert(strstr(r.out, "status 1\nstatus 1\nstatus 2\n"), "%s\n%s", r.out, r.err);
  cr_assert(strstr(r.err, "/l.jsonl:2: not a JSON object"), "%s", r.err);
  cr_assert(strstr(r.err, "/m.jsonl:1: a step event needs the numbers \"step\" and \"loss\""), "%s", r.err);
  cr_assert(strstr(r.err, "needs --out FILE.svg"), "%s", r.err);
  cr_assert(!strstr(r.out, "written"), "%s", r.out);
  tu_run_free(&r);
}

/* A run stopped after a checkpoint goes on from it when the sweep is run
 * again, and ends with the figures of a run never stopped. */
Test(sweep, resumed_run_matches_a_straight_one, .timeout = 200) {
  TuRun r = tu_sh(180,
                  "d=$(mktemp -d); trap 'rm -rf $d' EXIT\n"
                  "A='examples/reverse.ra --seeds 1 --set epochs=6 --jobs 1 --threads 1'\n"
                  "$RAC sweep $A --out $d/a 2>$d/err &\n"
                  "p=$!\n"
                  "for i in $(seq 1200); do ls $d/a/runs/*.safetensors >/dev/null 2>&1 && break; sleep 0.05; done\n"
                  "kill -TERM $p; wait $p; echo \"first $?\"\n"
                  "test -e $d/a/runs/epochs=6,seed=1.json && echo 'finished before the signal'\n"
                  "$RAC sweep $A --out $d/a 2>>$d/err; "
                  "echo \"second $?\"\n"
                  "$RAC sweep $A --out $d/b 2>>$d/err; echo \"straight $?\"\n"
                  "cat $d/err >&2\n"
                  "sed 's/\"seconds\":[0-9.]*,//' $d/a/sweep.jsonl > $d/a.txt\n"
                  "sed 's/\"seconds\":[0-9.]*,//' $d/b/sweep.jsonl > $d/b.txt\n"
                  "cmp $d/a.txt $d/b.txt && echo same\n");
  cr_assert_eq(r.status, 0, "%s\n%s", r.out, r.err);
  if (strstr(r.out, "finished before the signal")) {
    fprintf(stderr, "the run finished before the signal; nothing was resumed\n");
  } else {
    cr_assert(strstr(r.out, "first 143\n"), "%s\n%s", r.out, r.err);
    cr_assert(strstr(r.err, "it goes on from its last checkpoint"), "%s", r.err);
  }
  cr_assert(strstr(r.out, "second 0\nstraight 0\n"), "%s\n%s", r.out, r.err);
  cr_assert(strstr(r.out, "same\n"), "the resumed sweep's figures differ:\n%s\n%s", r.out, r.err);
  tu_run_free(&r);
}

/* A const of the spec as an axis (examples/fortunes.ra's n_heads): each
 * run has its heads, the tables and the final-n_heads plot have the arms,
 * a checkpoint of the sweep ablates with its own heads; a const the spec
 * does not have, and heads that do not divide the dimension, stop the
 * sweep before any run. */
Test(sweep, heads_from_a_const_and_their_ablation, .timeout = 200) {
  char dir[] = "/tmp/ra-sweep-XXXXXX";
  cr_assert(mkdtemp(dir));
  TuRun r = tu_sh(150, "$RAC sweep examples/fortunes.ra --set n_heads=1,2 --set steps=8 "
                       "--seeds 1..2 --jobs 2 --out %s/h", dir);
  cr_assert_eq(r.status, 0, "status %d\n%s", r.status, r.err);
  tu_run_free(&r);
  char path[600];
  snprintf(path, sizeof path, "%s/h/sweep.jsonl", dir);
  char *jsonl = tu_read_file(path, NULL);
  cr_assert(jsonl);
  int lines = 0;
  for (char *line = jsonl, *nl; (nl = strchr(line, '\n')); line = nl + 1, lines++) {
    *nl = 0;
    json_t *o = json_loads(line, 0, NULL);
    cr_assert(o);
    long long h = json_integer_value(json_object_get(o, "n_heads"));
    cr_assert_eq(h, lines < 2 ? 1 : 2, "%s", line);
    /* effective heads lie in [1, heads] */
    json_t *eff = json_object_get(json_object_get(json_object_get(o, "test"), "effective_heads"),
                                  "topic.r0.a");
    cr_assert(json_is_number(eff), "%s", line);
    cr_assert(json_number_value(eff) >= 1 - 1e-9 && json_number_value(eff) <= (double)h + 1e-9,
              "%s", line);
    json_decref(o);
  }
  cr_assert_eq(lines, 4);
  free(jsonl);
  snprintf(path, sizeof path, "%s/h/sweep.md", dir);
  char *md = tu_read_file(path, NULL);
  cr_assert(md && strstr(md, "| n_heads=2, steps=8 | 2 |") && strstr(md, "## effective_heads topic.r1.a"),
            "%s", md);
  free(md);
  snprintf(path, sizeof path, "%s/h/final-n_heads.svg", dir);
  xml_check_svg_file(path, NULL);

  /* the ablation of an arm's checkpoint: 2 layers of 2 heads */
  r = tu_sh(60, "$RAC eval examples/fortunes.ra --set n_heads=2 --ckpt '%s/h/runs/n_heads=2,steps=8,seed=1.safetensors' "
                "--ablate-heads --quiet --out %s/h/abl.svg", dir, dir);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert(strstr(r.out, "test accuracy with heads removed (4 heads; higher is better)"), "%s", r.out);
  tu_run_free(&r);
  snprintf(path, sizeof path, "%s/h/abl.svg", dir);
  xml_check_svg_file(path, NULL);

  r = tu_sh(30, "$RAC sweep examples/fortunes.ra --set n_head=1,2 --out %s/bad", dir);
  cr_assert_eq(r.status, 2, "%s", r.err);
  cr_assert(strstr(r.err, "--set n_head=1: the spec has no const 'n_head'; did you mean 'n_heads'?"),
            "%s", r.err);
  tu_run_free(&r);
  r = tu_sh(30, "$RAC sweep examples/fortunes.ra --set n_heads=2,3 --out %s/bad", dir);
  cr_assert_eq(r.status, 1, "%s", r.err);
  cr_assert(strstr(r.err, "examples/fortunes.ra:") && strstr(r.err, "not divisible by 3 heads"), "%s",
            r.err);
  tu_run_free(&r);
  snprintf(path, sizeof path, "%s/bad/runs", dir);
  struct stat st;
  cr_assert(stat(path, &st) != 0 || rmdir(path) == 0, "runs were started");
  r = tu_sh(30, "rm -rf %s", dir);
  tu_run_free(&r);
}

/* test_mpi.c - data-parallel training over MPI (docs/distributed.md): the
 * built rac under `mpirun --oversubscribe --allow-run-as-root` on this
 * machine (loopback), against one process with the same global batch.
 * Skipped, saying why, in a build without MPI or without mpirun; the build
 * without MPI is checked to refuse a launched run instead. */
#include <signal.h>

#include "ra.h"
#include "testutil.h"

#define SPEC "tests/mpi/dp.ra"
#define MPIRUN "mpirun --oversubscribe --allow-run-as-root --mca btl self,vader,tcp " \
               "--mca btl_tcp_if_include lo"

static bool have_mpirun(void) {
  return system("command -v mpirun >/dev/null 2>&1") == 0;
}

static void need_mpi(void) {
  if (!ra_mpi_library()) cr_skip_test("this build has no MPI (make MPI=0, or no libopenmpi-dev)");
  if (!have_mpirun()) cr_skip_test("mpirun is not installed (openmpi-bin)");
}

typedef struct Traj {
  double loss[64];
  int n;                    /* step records */
  double valid[8], test;    /* eval records' losses */
  int nvalid, ntest;
} Traj;

/* The step and eval records of a log. */
static Traj read_log(const char *path) {
  Traj t;
  memset(&t, 0, sizeof t);
  char *s = tu_read_file(path, NULL);
  cr_assert(s, "no log %s", path);
  for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
    const char *k = strstr(line, "\"loss\":");
    if (!k) continue;
    double v = strtod(k + 7, NULL);
    if (strstr(line, "\"event\":\"step\"") && t.n < 64) t.loss[t.n++] = v;
    else if (strstr(line, "\"split\":\"valid\"") && t.nvalid < 8) t.valid[t.nvalid++] = v;
    else if (strstr(line, "\"split\":\"test\"")) {
      t.test = v;
      t.ntest++;
    }
  }
  free(s);
  return t;
}

/* Trains SPEC on np processes (1: without mpirun) with extra options;
 * returns the run's output. */
static TuRun train(int np, const char *log, const char *save, const char *extra) {
  if (np == 1)
    return tu_sh(240, "\"$RAC\" run " SPEC " --threads 1 --quiet --log %s --set save=%s %s", log,
                 save, extra);
  return tu_sh(240, MPIRUN " -np %d \"$RAC\" run " SPEC " --threads 1 --quiet --log %s --set save=%s %s",
               np, log, save, extra);
}

static void close_to(const double *a, const double *b, int n, const char *what) {
  for (int i = 0; i < n; i++)
    cr_assert(fabs(a[i] - b[i]) <= 1e-4 + 1e-4 * fabs(b[i]), "%s %d: %.7g against %.7g", what,
              i + 1, a[i], b[i]);
}

/* Every parameter of two checkpoints of SPEC agrees to float tolerance (and
 * some differ at all from a fresh model: they trained). */
static void same_params(const char *a, const char *b) {
  ra_ctx *c = ra_new();
  cr_assert(ra_load_file(c, SPEC) == 0, "%s", ra_error(c));
  ra_model *m = ra_model_get(c, "dp");
  cr_assert(m);
  int np = ra_model_n_params(m);
  cr_assert(np > 0);
  float *wa[64] = {0};
  long nw[64] = {0};
  cr_assert(np <= 64);
  cr_assert(ra_load(m, a) == 0, "%s", ra_error(c));
  for (int i = 0; i < np; i++) {
    ra_tensor t;
    cr_assert(ra_param(m, ra_model_param_name(m, i), &t) == 0, "%s", ra_error(c));
    long n = 1;
    for (int d = 0; d < t.ndim; d++) n *= (long)t.shape[d];
    nw[i] = n;
    wa[i] = malloc((size_t)n * sizeof(float));
    memcpy(wa[i], t.data, (size_t)n * sizeof(float));
  }
  cr_assert(ra_load(m, b) == 0, "%s", ra_error(c));
  for (int i = 0; i < np; i++) {
    ra_tensor t;
    cr_assert(ra_param(m, ra_model_param_name(m, i), &t) == 0, "%s", ra_error(c));
    /* atol: a key bias has no gradient but rounding noise, which Adam
     * turns into steps of up to lr; the rest agree far closer */
    tu_allclose(t.data, wa[i], nw[i], 1e-3, 1e-3, ra_model_param_name(m, i));
    free(wa[i]);
  }
  ra_free(c);
}

/* np ranks against one process: the loss of every step, the evaluations
 * and the final parameters; one log (each step once) and one checkpoint. */
static void against_one(int np) {
  char n1[32], n2[32], n3[32], n4[32];
  snprintf(n1, sizeof n1, "one%d.jsonl", np);
  snprintf(n2, sizeof n2, "one%d.st", np);
  snprintf(n3, sizeof n3, "dp%d.jsonl", np);
  snprintf(n4, sizeof n4, "dp%d.st", np);
  const char *la = tu_tmp(n1), *sa = tu_tmp(n2), *lb = tu_tmp(n3), *sb = tu_tmp(n4);
  TuRun a = train(1, la, sa, "");
  cr_assert_eq(a.status, 0, "one process: %s", a.err);
  TuRun b = train(np, lb, sb, "");
  cr_assert_eq(b.status, 0, "%d ranks: %s%s", np, b.out, b.err);
  Traj ta = read_log(la), tb = read_log(lb);
  cr_assert_eq(ta.n, 20);
  cr_assert_eq(tb.n, 20, "the log of %d ranks holds %d step records, not 20", np, tb.n);
  close_to(tb.loss, ta.loss, 20, "loss of step");
  cr_assert_eq(tb.nvalid, ta.nvalid);
  cr_assert_eq(tb.ntest, 1);
  close_to(tb.valid, ta.valid, ta.nvalid, "valid loss");
  close_to(&tb.test, &ta.test, 1, "test loss");
  /* rank 0 alone prints: the final test line once */
  const char *first = strstr(b.err, "test loss"), *again = first ? strstr(first + 1, "test loss") : NULL;
  cr_assert(first && !again, "the test line should be printed once:\n%s", b.err);
  same_params(sb, sa);
  tu_run_free(&a);
  tu_run_free(&b);
}

Test(mpi, two_ranks_train_as_one_process, .timeout = 300) {
  need_mpi();
  against_one(2);
}

Test(mpi, three_ranks_train_as_one_process, .timeout = 300) {
  need_mpi();
  against_one(3);
}

/* A checkpoint of a 2-rank run resumed on 3 ranks and on 1 process: both
 * continue as a straight run (a constant schedule, so 10 + 10 steps are
 * the 20 of one run). */
Test(mpi, resume_at_another_rank_count, .timeout = 300) {
  need_mpi();
  const char *ls = tu_tmp("straight.jsonl"), *ss = tu_tmp("straight.st");
  const char *lr = tu_tmp("resumed.jsonl"), *sr = tu_tmp("resumed.st");
  const char *l1 = tu_tmp("resumed1.jsonl"), *s1 = tu_tmp("resumed1.st");
  TuRun a = train(1, ls, ss, "--set schedule=constant");
  cr_assert_eq(a.status, 0, "%s", a.err);
  TuRun b = train(2, lr, sr, "--set schedule=constant --set steps=10");
  cr_assert_eq(b.status, 0, "%s", b.err);
  TuRun cp = tu_sh(10, "cp %s %s && cp %s %s", sr, s1, lr, l1);
  cr_assert_eq(cp.status, 0, "%s", cp.err);
  tu_run_free(&cp);
  char extra[1024];
  snprintf(extra, sizeof extra, "--set schedule=constant --resume %s", sr);
  TuRun c = train(3, lr, sr, extra);
  cr_assert_eq(c.status, 0, "%s", c.err);
  snprintf(extra, sizeof extra, "--set schedule=constant --resume %s", s1);
  TuRun d = train(1, l1, s1, extra);
  cr_assert_eq(d.status, 0, "%s", d.err);
  Traj ta = read_log(ls), tc = read_log(lr), td = read_log(l1);
  cr_assert_eq(tc.n, 20, "the resumed log holds %d step records, not 20", tc.n);
  cr_assert_eq(td.n, 20);
  close_to(tc.loss, ta.loss, 20, "loss of step (2 then 3 ranks)");
  close_to(td.loss, ta.loss, 20, "loss of step (2 ranks then 1)");
  same_params(sr, ss);
  same_params(s1, ss);
  tu_run_free(&a);
  tu_run_free(&b);
  tu_run_free(&c);
  tu_run_free(&d);
}

Test(mpi, a_batch_that_does_not_divide_is_refused_once, .timeout = 120) {
  need_mpi();
  TuRun r = tu_sh(120, MPIRUN " -np 2 \"$RAC\" run " SPEC " --threads 1 --set batch=7 "
                  "--set save=%s", tu_tmp("never.st"));
  cr_assert_neq(r.status, 0);
  cr_assert_neq(r.status, 124, "the run hung");
  const char *want = "batch 7 does not divide among 2 processes";
  const char *m = strstr(r.err, want);
  cr_assert(m, "%s", r.err);
  cr_assert(!strstr(m + strlen(want), want), "printed by more than one rank:\n%s", r.err);
  cr_assert(access(tu_tmp("never.st"), F_OK) != 0);
  tu_run_free(&r);
}

/* Ranks that do not hold the same parameters (here: another seed on each,
 * as mpirun's MPMD form allows) are an error at the first checkpoint, and
 * nothing is saved. */
Test(mpi, diverged_ranks_are_an_error_at_the_checkpoint, .timeout = 120) {
  need_mpi();
  const char *save = tu_tmp("diverged.st");
  TuRun r = tu_sh(120, MPIRUN " -np 1 \"$RAC\" run " SPEC " --threads 1 --quiet --seed 1 --set "
                  "save=%s : -np 1 \"$RAC\" run " SPEC " --threads 1 --quiet --seed 2 --set save=%s",
                  save, save);
  cr_assert_eq(r.status, 1, "status %d: %s", r.status, r.err);
  cr_assert(strstr(r.err, "the parameters differ between the 2 ranks at step 10"), "%s", r.err);
  cr_assert(access(save, F_OK) != 0, "a checkpoint was written");
  tu_run_free(&r);
}

/* A rank killed mid-run (SIGKILL): the job ends with an error, it does not
 * hang. */
Test(mpi, a_killed_rank_ends_the_job, .timeout = 180) {
  need_mpi();
  TuRun r = tu_sh(150,
                  MPIRUN " -np 2 \"$RAC\" run " SPEC " --threads 1 --quiet --set steps=1000000 "
                  "--set save=%s & mp=$!\n"
                  "for i in $(seq 100); do\n"
                  "  pids=$(for k in $(pgrep -P $mp); do ps -o comm= -p $k | grep -qx rac && echo $k; done)\n"
                  "  [ $(echo $pids | wc -w) -ge 2 ] && break; sleep 0.2\n"
                  "done\n"
                  "sleep 2\n"
                  "victim=$(echo $pids | cut -d' ' -f2)\n"
                  "[ -n \"$victim\" ] || { echo no rank found >&2; kill $mp; exit 99; }\n"
                  "kill -KILL $victim\n"
                  "t0=$(date +%%s); wait $mp; st=$?; t1=$(date +%%s)\n"
                  "echo \"status $st after $((t1 - t0)) s\"\n"
                  "exit $st",
                  tu_tmp("killed.st"));
  cr_assert_neq(r.status, 99, "no rank to kill: %s", r.err);
  cr_assert_neq(r.status, 124, "the job hung after a rank was killed:\n%s%s", r.out, r.err);
  cr_assert_neq(r.status, 0, "the job should fail when a rank is killed:\n%s%s", r.out, r.err);
  tu_run_free(&r);
}

/* A plain run (no launcher in the environment) starts no MPI, in a build
 * with MPI too: the context has no communicator after training. */
Test(mpi, a_plain_run_starts_no_mpi) {
  cr_assert(!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMI_SIZE") && !getenv("PMIX_RANK"),
            "run the suites outside mpirun");
  ra_ctx *c = ra_new();
  ra_set_option(c, "quiet", "1");
  ra_set_option(c, "threads", "1");
  ra_set_option(c, "set.steps", "2");
  ra_set_option(c, "set.save", tu_tmp("plain.st"));
  cr_assert(ra_load_file(c, SPEC) == 0, "%s", ra_error(c));
  cr_assert(ra_train(c, NULL, NULL, NULL) == 0, "%s", ra_error(c));
  int size = 0;
  cr_assert_eq(ra_mpi_rank(c, &size), -1);
  cr_assert_eq(size, 1);
  ra_free(c);
}

/* Without MPI in the build, a run that a launcher started as one of two
 * processes says so and exits 2, before reading anything. */
Test(mpi, a_build_without_mpi_refuses_a_launched_run) {
  if (ra_mpi_library()) cr_skip_test("this build has MPI (the build without it checks this)");
  TuRun r = tu_sh(60, "OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=0 \"$RAC\" run " SPEC);
  cr_assert_eq(r.status, 2, "status %d: %s", r.status, r.err);
  cr_assert(strstr(r.err, "this build of rac has no MPI"), "%s", r.err);
  TuRun v = tu_sh(60, "\"$RAC\" --version");
  cr_assert(strstr(v.out, "mpi: none"), "%s", v.out);
  tu_run_free(&r);
  tu_run_free(&v);
}

Test(mpi, version_names_the_mpi) {
  TuRun v = tu_sh(60, "\"$RAC\" --version");
  cr_assert_eq(v.status, 0);
  if (ra_mpi_library()) cr_assert(strstr(v.out, "mpi: Open MPI") || strstr(v.out, "mpi: MPI"), "%s", v.out);
  else cr_assert(strstr(v.out, "mpi: none"), "%s", v.out);
  tu_run_free(&v);
}

/* An application that uses MPI hands rac a communicator (tests/mpi/
 * handoff.c, 3 processes): ranks 0 and 1 train together on their part of
 * MPI_COMM_WORLD, rank 2 alone on its own; both see their communicator's
 * size, get the same losses (to float tolerance), and MPI still works for
 * the application after ra_free. */
Test(mpi, an_application_hands_its_communicator, .timeout = 240) {
  need_mpi();
  const char *a = tu_tmp("handoff01.st"), *b = tu_tmp("handoff2.st");
  TuRun r = tu_sh(200, MPIRUN " -np 3 \"$(dirname \"$RAC\")/tests/mpi_handoff\" " SPEC " %s %s",
                  a, b);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  const char *two = strstr(r.out, "size 2 world 3 steps 20 ");
  const char *one = strstr(r.out, "size 1 world 3 steps 20 ");
  cr_assert(two && one, "%s", r.out);
  two += strlen("size 2 world 3 steps 20 ");
  one += strlen("size 1 world 3 steps 20 ");
  double la[20], lb[20];
  for (int i = 0; i < 20; i++) {
    char *end;
    la[i] = strtod(two, &end);
    cr_assert(end != two);
    two = end;
    lb[i] = strtod(one, &end);
    cr_assert(end != one);
    one = end;
  }
  close_to(la, lb, 20, "loss of step");
  same_params(a, b);
  tu_run_free(&r);
}

/* ra_set_mpi_comm checks its call: NULL, and (with MPI in the build) MPI
 * not initialised; without MPI it says the build has none. */
Test(mpi, set_mpi_comm_checks_its_call) {
  ra_ctx *c = ra_new();
  cr_assert_eq(ra_set_mpi_comm(c, NULL), RA_EUSAGE);
  cr_assert(strstr(ra_error(c), "must not be NULL"), "%s", ra_error(c));
  int dummy = 0;
  cr_assert_eq(ra_set_mpi_comm(c, &dummy), RA_EUSAGE);
  if (ra_mpi_library())
    cr_assert(strstr(ra_error(c), "MPI is not initialised"), "%s", ra_error(c));
  else
    cr_assert(strstr(ra_error(c), "this build of rac has no MPI"), "%s", ra_error(c));
  cr_assert_eq(ra_mpi_rank(c, NULL), -1);
  cr_assert_eq(ra_set_mpi_comm(NULL, &dummy), RA_EUSAGE);
  ra_free(c);
}

/* Rank 0's log fails (a full disk): every rank stops at the same step, the
 * message is printed once, nothing hangs. */
Test(mpi, rank_zeros_failing_log_stops_every_rank, .timeout = 120) {
  need_mpi();
  TuRun r = tu_sh(100, MPIRUN " -np 2 \"$RAC\" run " SPEC " --threads 1 --quiet --log /dev/full "
                  "--set save=%s", tu_tmp("full.st"));
  cr_assert_neq(r.status, 124, "the run hung");
  cr_assert_neq(r.status, 0);
  const char *want = "cannot write the log '/dev/full': No space left on device";
  const char *m = strstr(r.err, want);
  cr_assert(m, "%s", r.err);
  cr_assert(!strstr(m + strlen(want), want), "printed more than once:\n%s", r.err);
  tu_run_free(&r);
}

/* rac eval --ablate-heads on 2 ranks shares each evaluation's batches and
 * reports once: the same table as one process (the metric is a mean over
 * the split, reduced exactly as eval's). */
Test(mpi, ablation_on_two_ranks_is_one_process, .timeout = 300) {
  need_mpi();
  const char *log = tu_tmp("abl.jsonl"), *st = tu_tmp("abl.st");
  const char *s1 = tu_tmp("abl1.svg"), *s2 = tu_tmp("abl2.svg");
  TuRun a = train(1, log, st, "--set steps=5");
  cr_assert_eq(a.status, 0, "%s", a.err);
  TuRun one = tu_sh(120, "\"$RAC\" eval " SPEC " --ckpt %s --ablate-heads --out %s --threads 1", st, s1);
  cr_assert_eq(one.status, 0, "%s", one.err);
  TuRun two = tu_sh(200, MPIRUN " -np 2 \"$RAC\" eval " SPEC " --ckpt %s --ablate-heads --out %s --threads 1",
                    st, s2);
  cr_assert_eq(two.status, 0, "%s", two.err);
  const char *cut1 = strstr(one.out, "\nplot: "), *cut2 = strstr(two.out, "\nplot: ");
  cr_assert(cut1 && cut2, "one:\n%s\ntwo:\n%s", one.out, two.out);
  cr_assert_eq(cut1 - one.out, cut2 - two.out, "one:\n%s\ntwo:\n%s", one.out, two.out);
  cr_assert(!strncmp(one.out, two.out, (size_t)(cut1 - one.out)), "one:\n%s\ntwo:\n%s", one.out,
            two.out);
  cr_assert(strstr(one.err, "heads left") && strstr(two.err, "heads left"));
  /* rank 0 alone reports its progress */
  cr_assert_eq(strstr(strstr(two.err, "0 heads left") + 1, "0 heads left"), NULL, "%s", two.err);
  tu_run_free(&a);
  tu_run_free(&one);
  tu_run_free(&two);
}

/* rac bench --profile on two ranks: rank 0 prints one profile, with the
 * wait for the gradient reductions as a part of its own. */
Test(mpi, bench_profile_has_the_reductions, .timeout = 180) {
  need_mpi();
  TuRun r = tu_sh(170, MPIRUN " -np 2 \"$RAC\" bench " SPEC " --threads 1 --steps 3 --profile");
  cr_assert_eq(r.status, 0, "status %d\n%s\n%s", r.status, r.out, r.err);
  const char *p = strstr(r.out, "profile of 3 steps:");
  cr_assert(p, "%s", r.out);
  cr_assert(!strstr(p + 1, "profile of 3 steps:"), "printed by more than one rank:\n%s", r.out);
  const char *red = strstr(p, "gradient reductions over the ranks");
  cr_assert(red, "%s", r.out);
  tu_run_free(&r);
}

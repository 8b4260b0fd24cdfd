/* test_reliability.c - what `rac run` leaves behind when it is stopped, when
 * its disk fills up, or when its paths are wrong: checkpoints and logs are
 * whole, errors name the file, nothing of the user's is overwritten.
 *
 * The runs are real: the built rac (tu_sh), on examples/reverse.ra with a
 * small step count.  Scripts that signal a background rac turn on job
 * control (set -m): a background job of a plain script ignores SIGINT.
 * Time limits are those of tu_sh (the `timeout` command). */
#include "ra.h"
#include "testutil.h"

/* The reverse example: 600 steps on 2 threads (add --set save=...). */
#define REVERSE "$RAC run examples/reverse.ra --threads 2 --set steps=600 --quiet"

/* Waits for the log $d/l.jsonl to have a record, then sends SIG to $pid. */
#define SIGNAL_AFTER_A_STEP(SIG)                                                    \
  "for i in $(seq 400); do [ -s $d/l.jsonl ] && break; sleep 0.05; done\n"          \
  "kill -" SIG " $pid; wait $pid; echo \"status $?\"\n"

/* SIGINT mid-run: the checkpoint of the steps taken is written, rac says
 * how to resume and exits 130; running that line finishes the run with
 * the same bits as a straight run. */
Test(reliability, sigint_saves_and_resume_matches_a_straight_run) {
  TuRun r = tu_sh(380,
                  "set -m; d=$(mktemp -d); trap 'rm -rf $d' EXIT\n"
                  REVERSE " --set save=$d/straight.safetensors || exit 9\n"
                  REVERSE " --set save=$d/run.safetensors --log $d/l.jsonl 2>$d/err & pid=$!\n"
                  SIGNAL_AFTER_A_STEP("INT")
                  "cat $d/err >&2\n"
                  "line=$(sed -n 's/^rac: to resume: //p' $d/err)\n"
                  "[ -n \"$line\" ] || exit 8\n"
                  "eval \"$line\" || exit 7\n"
                  "cmp $d/straight.safetensors $d/run.safetensors && echo same\n");
  cr_assert_eq(r.status, 0, "status %d\n%s\n%s", r.status, r.out, r.err);
  cr_assert(strstr(r.out, "status 130"), "exit 130 after SIGINT:\n%s\n%s", r.out, r.err);
  long step = -1, total = -1;
  const char *at = strstr(r.err, "training interrupted at step ");
  cr_assert(at, "the message says it was interrupted:\n%s", r.err);
  cr_assert_eq(sscanf(at, "training interrupted at step %ld of %ld", &step, &total), 2);
  cr_assert(step > 0 && step < total, "stopped mid-run (step %ld of %ld)", step, total);
  cr_assert(strstr(r.err, "/run.safetensors"), "names the checkpoint:\n%s", r.err);
  cr_assert(strstr(r.out, "same"), "the resumed run differs from the straight one:\n%s\n%s",
            r.out, r.err);
  tu_run_free(&r);
}

/* SIGTERM: the same, exit 143; a train block without `save` writes
 * MODEL.stopped.safetensors in the current folder and says so. */
Test(reliability, sigterm_without_save_writes_the_default) {
  TuRun r = tu_sh(180,
                  "set -m; d=$(mktemp -d); trap 'rm -rf $d' EXIT; top=$PWD\n"
                  "sed '/^  save /d' examples/reverse.ra > $d/nosave.ra\n"
                  "cd $d; RA_STDLIB=$top/stdlib $RAC run nosave.ra --threads 2 --set steps=600 "
                  "--quiet --log l.jsonl 2>err & pid=$!\n"
                  SIGNAL_AFTER_A_STEP("TERM")
                  "cat $d/err >&2\n"
                  "[ -s $d/reverser.stopped.safetensors ] && echo written\n");
  cr_assert_eq(r.status, 0, "status %d\n%s\n%s", r.status, r.out, r.err);
  cr_assert(strstr(r.out, "status 143"), "exit 143 after SIGTERM:\n%s\n%s", r.out, r.err);
  cr_assert(strstr(r.out, "written"), "the default checkpoint is written:\n%s\n%s", r.out, r.err);
  cr_assert(strstr(r.err, "saved to 'reverser.stopped.safetensors'"), "%s", r.err);
  cr_assert(strstr(r.err, "--resume reverser.stopped.safetensors"), "%s", r.err);
  tu_run_free(&r);
}

/* A second signal does not wait for the step and the checkpoint: rac dies
 * of it, without the clean stop's checkpoint and message.  Which of the
 * two is the second is the kernel's: when both are pending before rac
 * runs (a loaded machine), it delivers SIGINT first (the lower number),
 * and rac dies of SIGTERM (143); otherwise of SIGINT (130).  Steps of a
 * batch of 2048 (about 0.1 s) leave the clean stop no time to end between
 * the two. */
Test(reliability, second_signal_exits_at_once) {
  TuRun r = tu_sh(180,
                  "set -m; d=$(mktemp -d); trap 'rm -rf $d' EXIT\n"
                  REVERSE " --set batch=2048 --set save=$d/run.safetensors --log $d/l.jsonl "
                  "2>$d/err & pid=$!\n"
                  "for i in $(seq 400); do [ -s $d/l.jsonl ] && break; sleep 0.05; done\n"
                  "kill -TERM $pid; kill -INT $pid; wait $pid; echo \"status $?\"\n"
                  "cat $d/err >&2\n");
  cr_assert_eq(r.status, 0, "status %d\n%s\n%s", r.status, r.out, r.err);
  cr_assert(strstr(r.out, "status 130") || strstr(r.out, "status 143"),
            "killed by the second signal:\n%s\n%s", r.out, r.err);
  cr_assert(!strstr(r.err, "to resume") && !strstr(r.err, "saved to"),
            "the clean stop ran to its end:\n%s\n%s", r.out, r.err);
  tu_run_free(&r);
}

/* A log that cannot be written is an error naming it (exit 1), not a run
 * that ends with a silently cut file. */
Test(reliability, log_on_a_full_disk_is_an_error) {
  TuRun r = tu_sh(100, "d=$(mktemp -d); trap 'rm -rf $d' EXIT\n"
                       REVERSE " --set save=$d/c.safetensors --log /dev/full\n");
  cr_assert_eq(r.status, 1, "status %d\n%s\n%s", r.status, r.out, r.err);
  cr_assert(strstr(r.err, "cannot write the log '/dev/full': No space left on device"), "%s",
            r.err);
  cr_assert(!strstr(r.err, "saved"), "%s", r.err);
  tu_run_free(&r);
}

/* Killed outright (SIGKILL), rac leaves a log of whole lines: records are
 * written whole, never cut at a buffer's edge. */
Test(reliability, killed_run_leaves_whole_log_lines) {
  TuRun r = tu_sh(100,
                  "set -m; d=$(mktemp -d); trap 'rm -rf $d' EXIT\n"
                  "$RAC run examples/reverse.ra --threads 2 --set steps=100000 --set eval=none "
                  "--set save=$d/c.safetensors --quiet --log $d/l.jsonl & pid=$!\n"
                  "for i in $(seq 400); do [ -s $d/l.jsonl ] && break; sleep 0.05; done\n"
                  "sleep 3; kill -KILL $pid; wait $pid; echo \"status $?\"\n"
                  "cat $d/l.jsonl\n");
  cr_assert(strstr(r.out, "status 137\n"), "status %d\n%.300s\n%s", r.status, r.out, r.err);
  const char *log = strstr(r.out, "status 137\n") + 11;
  size_t n = strlen(log);
  cr_assert(n > 0, "the log has records");
  cr_assert_eq(log[n - 1], '\n', "the log ends mid-record:\n...%s", log + (n > 200 ? n - 200 : 0));
  int lines = 0;
  for (const char *l = log, *nl; (nl = strchr(l, '\n')); l = nl + 1, lines++)
    cr_assert(l[0] == '{' && nl[-1] == '}', "line %d is not whole", lines + 1);
  cr_assert(lines > 1);
  tu_run_free(&r);
}

/* A resumed run continues the log at the checkpoint's step: the records of
 * the earlier run past that step and a half-written last line are dropped,
 * so every step is there once and every line is whole. */
Test(reliability, resume_cuts_the_log_at_the_checkpoint) {
  char dir[] = "/tmp/ra-rel-XXXXXX";
  cr_assert(mkdtemp(dir));
  TuRun r = tu_sh(180,
                  "set -e; d=%s\n"
                  "$RAC run examples/reverse.ra --threads 2 --quiet --set steps=100 "
                  "--set save=$d/c100.safetensors\n"
                  "$RAC run examples/reverse.ra --threads 2 --quiet --set steps=300 "
                  "--set save=$d/full.safetensors --log $d/l.jsonl\n"
                  "printf '{\"event\":\"step\",\"st' >> $d/l.jsonl\n"
                  "$RAC run examples/reverse.ra --threads 2 --quiet --set steps=300 "
                  "--set save=$d/full.safetensors --log $d/l.jsonl --resume $d/c100.safetensors\n",
                  dir);
  cr_assert_eq(r.status, 0, "status %d\n%s\n%s", r.status, r.out, r.err);
  tu_run_free(&r);
  char path[128];
  snprintf(path, sizeof path, "%s/l.jsonl", dir);
  size_t len = 0;
  char *log = tu_read_file(path, &len);
  cr_assert(log && len > 0);
  cr_assert_eq(log[len - 1], '\n', "the log ends with a whole line");
  int seen[301] = {0}, valid = 0, test = 0, lines = 0;
  for (char *line = log, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
    *nl = 0;
    lines++;
    cr_assert(line[0] == '{' && nl[-1] == '}', "line %d is not a whole record: %s", lines, line);
    long step = -1;
    const char *k = strstr(line, "\"step\":");
    cr_assert(k && sscanf(k, "\"step\":%ld", &step) == 1 && step >= 1 && step <= 300,
              "line %d: %s", lines, line);
    if (strstr(line, "\"event\":\"step\"")) seen[step]++;
    valid += strstr(line, "\"split\":\"valid\"") != NULL;
    test += strstr(line, "\"split\":\"test\"") != NULL;
  }
  for (int s = 1; s <= 300; s++) cr_assert_eq(seen[s], 1, "step %d is logged %d times", s, seen[s]);
  cr_assert_eq(valid, 3, "one validation record per epoch, got %d", valid);
  cr_assert_eq(test, 1, "one test record, got %d", test);
  free(log);
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  (void)!system(cmd);
}

/* Past a file size limit (ulimit -f) the write fails and rac says which
 * file, with status 1, instead of dying of SIGXFSZ: the checkpoint, and
 * the log of a train block that saves nothing. */
Test(reliability, file_size_limit_is_reported) {
  TuRun r = tu_sh(180,
                  "d=$(mktemp -d); trap 'rm -rf $d' EXIT\n"
                  "(ulimit -f 64; " REVERSE " --set save=$d/c.safetensors); echo \"status $?\"\n"
                  "sed '/^  save /d' examples/reverse.ra > $d/nosave.ra\n"
                  "(ulimit -f 4; $RAC run $d/nosave.ra --threads 2 --set steps=600 --quiet "
                  "--log $d/l.jsonl); echo \"status $?\"\n");
  cr_assert_eq(r.status, 0, "status %d\n%s\n%s", r.status, r.out, r.err);
  cr_assert(strstr(r.out, "status 1\nstatus 1\n"), "both runs fail with status 1:\n%s\n%s", r.out,
            r.err);
  cr_assert(strstr(r.err, "/c.safetensors: cannot write the checkpoint: File too large"), "%s",
            r.err);
  cr_assert(strstr(r.err, "/l.jsonl': File too large"), "%s", r.err);
  tu_run_free(&r);
}

/* --log or save naming the spec or a data file (by another name, or a hard
 * link) is refused before training, naming both; the files are untouched. */
Test(reliability, outputs_never_overwrite_inputs) {
  TuRun r = tu_sh(180,
                  "d=$(mktemp -d); trap 'rm -rf $d' EXIT\n"
                  "cp data/fortunes.tsv $d/f.tsv; ln $d/f.tsv $d/link.tsv\n"
                  "sed \"s#data/fortunes.tsv#$d/f.tsv#\" examples/fortunes.ra > $d/f.ra\n"
                  "sum0=$(cat $d/f.ra $d/f.tsv | md5sum)\n"
                  "for o in \"--log $d/f.ra\" \"--log $d/link.tsv\" \"--set save=$d/./f.ra\" "
                  "\"--set save=$d/f.tsv\"; do\n"
                  "  $RAC run $d/f.ra --set steps=2 --quiet $o; echo \"status $?\"\n"
                  "done\n"
                  "[ \"$sum0\" = \"$(cat $d/f.ra $d/f.tsv | md5sum)\" ] && echo untouched\n");
  cr_assert_eq(r.status, 0, "status %d\n%s\n%s", r.status, r.out, r.err);
  cr_assert(strstr(r.out, "status 1\nstatus 1\nstatus 1\nstatus 1\nuntouched"),
            "every run is refused, the files are untouched:\n%s\n%s", r.out, r.err);
  cr_assert(strstr(r.err, "the log '") && strstr(r.err, "/f.ra' is the spec file '"), "%s", r.err);
  cr_assert(strstr(r.err, "/link.tsv' is the data file '"), "%s", r.err);
  cr_assert(strstr(r.err, "the save path '") && strstr(r.err, "/./f.ra' is the spec file"), "%s",
            r.err);
  cr_assert(strstr(r.err, "/f.tsv' is the data file '"), "%s", r.err);
  cr_assert(!strstr(r.err, "training "), "refused before training:\n%s", r.err);
  tu_run_free(&r);
}

/* Resuming a finished checkpoint with a new save path writes it there (and
 * says there was nothing to train); "saved" is printed only for a file
 * that was written. */
Test(reliability, finished_checkpoint_resumed_is_saved) {
  TuRun r = tu_sh(100,
                  "d=$(mktemp -d); trap 'rm -rf $d' EXIT\n"
                  "$RAC run examples/reverse.ra --threads 2 --set steps=50 --set save=$d/a.safetensors "
                  "2>/dev/null || exit 9\n"
                  "$RAC run examples/reverse.ra --threads 2 --set steps=50 --set save=$d/b.safetensors "
                  "--resume $d/a.safetensors; echo \"status $?\"\n"
                  "cmp $d/a.safetensors $d/b.safetensors && echo same\n");
  cr_assert_eq(r.status, 0, "status %d\n%s\n%s", r.status, r.out, r.err);
  cr_assert(strstr(r.out, "status 0\nsame"), "the new save path has the checkpoint:\n%s\n%s",
            r.out, r.err);
  cr_assert(strstr(r.err, "nothing to train: the checkpoint is at step 50 and the run has 50 steps"),
            "%s", r.err);
  cr_assert(strstr(r.err, "saved ") && strstr(r.err, "/b.safetensors"), "%s", r.err);
  tu_run_free(&r);
}

/* A save path that cannot be written (a directory, a folder that cannot be
 * made, a read-only folder) is an error before the first step, not at the
 * first checkpoint. */
Test(reliability, unwritable_save_path_is_found_up_front) {
  TuRun r = tu_sh(100,
                  "d=$(mktemp -d); trap 'chmod -R u+w $d; rm -rf $d' EXIT\n"
                  "mkdir $d/dir $d/ro; touch $d/file; chmod 555 $d/ro\n"
                  "ro=$d/ro; [ \"$(id -u)\" = 0 ] && ro=/proc  # root writes anywhere else\n"
                  "for s in $d/dir $d/file/x.safetensors $ro/x.safetensors; do\n"
                  "  $RAC run examples/reverse.ra --threads 2 --set steps=150 --set save=$s; "
                  "echo \"status $?\"\n"
                  "done\n");
  cr_assert_eq(r.status, 0, "status %d\n%s\n%s", r.status, r.out, r.err);
  cr_assert(strstr(r.out, "status 1\nstatus 1\nstatus 1\n"), "%s\n%s", r.out, r.err);
  cr_assert(strstr(r.err, "/dir': it is a directory"), "%s", r.err);
  cr_assert(strstr(r.err, "/file/x.safetensors': cannot create a file in the folder '"), "%s",
            r.err);
  cr_assert(strstr(r.err, "/x.safetensors': cannot create a file in the folder '/proc'") ||
                strstr(r.err, "/ro': Permission denied"), "%s", r.err);
  cr_assert(!strstr(r.err, "training reverser"), "found before the first step:\n%s", r.err);
  tu_run_free(&r);
}

/* ---- the context gives back what the options took ---- */

typedef struct Count {
  long live;   /* blocks not yet freed */
} Count;

static void *counting(void *ud, void *ptr, size_t osize, size_t nsize) {
  Count *c = ud;
  (void)osize;
  if (nsize == 0) {
    if (ptr) c->live--;
    free(ptr);
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (p && !ptr) c->live++;
  return p;
}

/* The "log" and "resume" strings (set, and set again) are freed by ra_free. */
Test(reliability, log_and_resume_options_are_freed) {
  Count c = {0};
  ra_ctx *ctx = ra_new_with_alloc(counting, &c);
  cr_assert(ctx);
  cr_assert_eq(ra_set_option(ctx, "log", "a.jsonl"), 0);
  cr_assert_eq(ra_set_option(ctx, "log", "b.jsonl"), 0);
  cr_assert_eq(ra_set_option(ctx, "resume", "c.safetensors"), 0);
  ra_free(ctx);
  cr_assert_eq(c.live, 0, "%ld blocks left after ra_free", c.live);
}

/* rac with --log and --resume exits 0 (under SAN=1, LeakSanitizer makes a
 * leak at exit a failure). */
Test(reliability, rac_with_log_and_resume_exits_0) {
  TuRun r = tu_sh(100,
                  "set -e; d=$(mktemp -d); trap 'rm -rf $d' EXIT\n"
                  "$RAC run examples/reverse.ra --set steps=3 --set save=$d/c.safetensors "
                  "--log $d/l.jsonl --quiet\n"
                  "$RAC run examples/reverse.ra --set steps=5 --set save=$d/c.safetensors "
                  "--log $d/l.jsonl --resume $d/c.safetensors --quiet\n");
  cr_assert_eq(r.status, 0, "status %d\n%s\n%s", r.status, r.out, r.err);
  tu_run_free(&r);
}

/* The stop flag through the API: ra_train stops after the step it is in
 * and saves it; ra_eval stops between batches. */
Test(reliability, stop_flag_stops_train_and_eval) {
  const char *ck = tu_tmp("rac_rel_flag.safetensors");
  remove(ck);
  ra_ctx *c = ra_new();
  volatile sig_atomic_t flag = 1;
  ra_set_option(c, "quiet", "1");
  ra_set_option(c, "threads", "1");
  ra_set_option(c, "set.steps", "50");
  ra_set_option(c, "set.save", ck);
  cr_assert_eq(ra_load_file(c, "examples/reverse.ra"), 0, "%s", ra_error(c));
  cr_assert_eq(ra_set_stop_flag(c, &flag), 0);
  cr_assert_eq(ra_train(c, NULL, NULL, NULL), RA_ESTOPPED, "%s", ra_error(c));
  cr_assert(strstr(ra_error(c), "training interrupted at step 1 of 50; checkpoint saved to"), "%s",
            ra_error(c));
  cr_assert(ra_last_save(c) && !strcmp(ra_last_save(c), ck));
  const char *summary = NULL;
  cr_assert_eq(ra_eval(c, NULL, ck, "valid", &summary), RA_ESTOPPED, "%s", ra_error(c));
  cr_assert(strstr(ra_error(c), "evaluation stopped after 0 of 400 examples"), "%s", ra_error(c));
  flag = 0;
  cr_assert_eq(ra_eval(c, NULL, ck, "valid", &summary), 0, "%s", ra_error(c));
  ra_set_option(c, "resume", ck);
  cr_assert_eq(ra_train(c, NULL, NULL, NULL), 0, "%s", ra_error(c));
  ra_free(c);
  remove(ck);
}

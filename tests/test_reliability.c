/* test_reliability.c - what `rac run` leaves behind when it is stopped, when
 * its disk fills up, or when its paths are wrong: checkpoints and logs are
 * whole, errors name the file, nothing of the user's is overwritten.
 *
 * The runs are real: the built rac (tu_sh), on examples/reverse.ra with a
 * small step count.  Scripts that signal a background rac turn on job
 * control (set -m): a background job of a plain script ignores SIGINT. */
#include "testutil.h"

/* The reverse example for `steps` steps on 2 threads, saving to $d/NAME. */
#define REVERSE "$RAC run examples/reverse.ra --threads 2 --set steps=600 --quiet"

/* Waits for the log $d/l.jsonl to have a record, then sends SIG to $pid. */
#define SIGNAL_AFTER_A_STEP(SIG)                                                    \
  "for i in $(seq 400); do [ -s $d/l.jsonl ] && break; sleep 0.05; done\n"          \
  "kill -" SIG " $pid; wait $pid; echo \"status $?\"\n"

/* SIGINT mid-run: the checkpoint of the steps taken is written, rac says
 * how to resume and exits 130; running that line finishes the run with
 * the same bits as a straight run. */
Test(reliability, sigint_saves_and_resume_matches_a_straight_run, .timeout = 400) {
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
Test(reliability, sigterm_without_save_writes_the_default, .timeout = 200) {
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
 * of it (the shell reports 128 + SIGINT, not the 143 of a clean stop). */
Test(reliability, second_signal_exits_at_once, .timeout = 200) {
  TuRun r = tu_sh(180,
                  "set -m; d=$(mktemp -d); trap 'rm -rf $d' EXIT\n"
                  REVERSE " --set save=$d/run.safetensors --log $d/l.jsonl 2>$d/err & pid=$!\n"
                  "for i in $(seq 400); do [ -s $d/l.jsonl ] && break; sleep 0.05; done\n"
                  "kill -TERM $pid; kill -INT $pid; wait $pid; echo \"status $?\"\n"
                  "cat $d/err >&2\n");
  cr_assert_eq(r.status, 0, "status %d\n%s\n%s", r.status, r.out, r.err);
  cr_assert(strstr(r.out, "status 130"), "killed by the second signal:\n%s\n%s", r.out, r.err);
  cr_assert(!strstr(r.err, "to resume"), "%s", r.err);
  tu_run_free(&r);
}

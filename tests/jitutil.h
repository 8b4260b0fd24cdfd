/* jitutil.h - suites that run on both executors: with RA_TEST_JIT=1 in the
 * environment (read by the test harness only; the library never reads the
 * environment) an Exec and an optimizer get the JIT's code, so .ci/run can
 * run the gradient checks and the parity tests again on compiled loops.
 * RA_TEST_JIT=1 in a build without LLVM fails the test instead of running
 * the interpreter unnoticed. */
#ifndef RA_JITUTIL_H
#define RA_JITUTIL_H

#include <stdlib.h>
#include <string.h>

#include "../runtime/exec/exec_jit.h"
#include "../runtime/train/optim.h"
#include "testutil.h"

static inline bool tu_jit_wanted(void) {
  const char *s = getenv("RA_TEST_JIT");
  return s && !strcmp(s, "1");
}

/* One Jit per test process (a suite's tests run in processes of their own). */
static inline Jit *tu_jit(void) {
  static Jit *j;
  if (!j) {
    cr_assert(exec_jit_available(), "RA_TEST_JIT=1, but this build has no LLVM JIT");
    char err[512];
    j = exec_jit_new(ra_alloc_default(), err, sizeof err);
    cr_assert(j != NULL, "%s", err);
  }
  return j;
}

/* Gives ex the JIT's code when RA_TEST_JIT=1. */
static inline void tu_maybe_jit(Exec *ex) {
  if (!tu_jit_wanted()) return;
  char err[512];
  cr_assert_eq(exec_jit_attach(ex, tu_jit(), err, sizeof err), 0, "%s", err);
  cr_assert(ex->jit->ncompiled > 0, "RA_TEST_JIT=1, but no node of '%s' compiled", ex->f->name);
}

/* Gives o the compiled update of its kind when RA_TEST_JIT=1. */
static inline void tu_maybe_jit_optim(Optim *o) {
  if (!tu_jit_wanted()) return;
  int kind = o->kind == OPT_ADAM    ? JIT_OPT_ADAM
             : o->kind == OPT_ADAMW ? JIT_OPT_ADAMW
             : o->momentum != 0     ? JIT_OPT_SGD_MOMENTUM
                                    : JIT_OPT_SGD;
  char err[512];
  o->jit = exec_jit_optimizer(tu_jit(), kind, NULL, err, sizeof err);
  cr_assert(o->jit != NULL, "%s", err);
}

#endif

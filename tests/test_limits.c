/* test_limits.c - a run larger than the memory or address space it may have
 * is an error that gives both figures, before anything is allocated: never
 * a kill by the OOM killer, never an endless retry inside OpenBLAS. */
#include "testutil.h"

/* 800 GB of interpreter arena: more than any test machine has. */
Test(limits, plan_larger_than_memory_is_refused_with_both_figures) {
  TuRun r = tu_sh(60, "$RAC run examples/reverse.ra --set batch=8000000 --quiet");
  cr_assert_eq(r.status, 1, "status %d\n%s", r.status, r.err);
  /* the figures follow the plan (about 100 KiB of arena per example) */
  const char *need = strstr(r.err, "out of memory: the run needs ");
  cr_assert(need, "%s", r.err);
  double mib = strtod(need + strlen("out of memory: the run needs "), NULL);
  cr_assert(mib > 700000 && mib < 900000, "%.1f MiB:\n%s", mib, r.err);
  const char *ar = strstr(r.err, "MiB for its buffers (interpreter arenas ");
  cr_assert(ar, "%s", r.err);
  double amib = strtod(ar + strlen("MiB for its buffers (interpreter arenas "), NULL);
  cr_assert(amib > 0.99 * mib && amib <= mib, "arenas %.1f of %.1f MiB:\n%s", amib, mib, r.err);
  cr_assert(strstr(r.err, "MiB can be had (available memory)"), "%s", r.err);
  tu_run_free(&r);
}

/* Whether rac maps libLLVM (a build with the JIT): its ~190 MB of mappings,
 * and the libraries it needs, leave nothing of the limits below.  CI runs
 * this suite in its build without LLVM too (.ci/run). */
static bool rac_maps_llvm(void) {
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "ldd '%s' | grep -q libLLVM", tu_rac());
  return system(cmd) == 0;
}

/* Under `ulimit -v` OpenBLAS retried its buffer allocation for ever in a
 * pool worker (status 124 here: the time limit).  AddressSanitizer needs
 * terabytes of address space, so a sanitizer build cannot run this. */
Test(limits, address_space_limit_is_an_error_not_a_hang) {
#if defined(__SANITIZE_ADDRESS__)
  cr_skip_test("an ASan build cannot run under ulimit -v");
#endif
  if (rac_maps_llvm()) cr_skip_test("rac maps libLLVM: run this in a build with LLVM=0");
  cr_assert(access("data/fortunes.tsv", R_OK) == 0, "make data first");
  for (int threads = 1; threads <= 2; threads++) {
    TuRun r = tu_sh(30, "ulimit -v 100000; $RAC run examples/fortunes.ra --threads %d --quiet",
                    threads);
    cr_assert_eq(r.status, 1, "%d threads: status %d\n%s", threads, r.status, r.err);
    cr_assert(strstr(r.err, "address-space limit (ulimit -v) leaves"), "%s", r.err);
    tu_run_free(&r);
  }
  TuRun r = tu_sh(30, "ulimit -v 400000; $RAC run examples/fortunes.ra --threads 2 --quiet");
  cr_assert_eq(r.status, 1, "status %d\n%s", r.status, r.err);
  cr_assert(strstr(r.err, "140 MiB for each of its 2 threads"), "%s", r.err);
  tu_run_free(&r);
  /* one thread fits in 400 MB and trains */
  const char *save = tu_tmp("ra-limits.safetensors");
  r = tu_sh(60, "ulimit -v 400000; $RAC run examples/fortunes.ra --threads 1 --set epochs=1 "
                "--set save=%s --quiet", save);
  cr_assert_eq(r.status, 0, "status %d\n%s", r.status, r.err);
  tu_run_free(&r);
  remove(save);
}

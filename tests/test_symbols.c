/* test_symbols.c - the libraries define no global name outside ra_*: an
 * application linking libra.a or libra.so cannot collide with k_add,
 * pool_new or train_run. */
#include "testutil.h"

/* Global definitions of a library (nm's own filter), one per line, that do
 * not start with ra_; sanitizer builds add their runtime's hooks. */
static void only_ra(const char *lib, const char *nm_flags) {
  TuRun r = tu_sh(60,
                  "lib=$(dirname \"$RAC\")/%s; test -f \"$lib\" || { echo \"no $lib\"; exit 3; }\n"
                  "nm %s \"$lib\" | awk 'NF == 3 && $2 ~ /^[A-Z]$/ && $2 != \"U\" && $2 != \"w\" "
                  "&& $2 != \"v\" { print $3 }' | grep -v -E '^(ra_|__(asan|ubsan|odr_asan|sancov)|"
                  "_init$|_fini$|_edata$|_end$|__bss_start$)' || true\n",
                  lib, nm_flags);
  cr_assert_eq(r.status, 0, "status %d: %s%s", r.status, r.out, r.err);
  cr_assert_str_empty(r.out, "%s defines global symbols outside ra_*:\n%s", lib, r.out);
  tu_run_free(&r);
}

Test(symbols, static_library_defines_only_ra_names) { only_ra("libra.a", "-g --defined-only"); }

Test(symbols, shared_library_exports_only_ra_names) {
  only_ra("libra.so", "-D -g --defined-only");
}

/* The check itself sees an internal name when one is global: the suites'
 * own archive keeps them. */
Test(symbols, internal_archive_keeps_internal_names) {
  TuRun r = tu_sh(60, "nm -g --defined-only $(dirname \"$RAC\")/libra_int.a | grep -c ' T k_gemm$'");
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert_str_eq(r.out, "1\n");
  tu_run_free(&r);
}

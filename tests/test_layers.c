/* test_layers.c - the layers of the tree include only what they may
 * (tests/check_layers.sh states the rule; docs/hacking.md explains it). */
#include "testutil.h"

Test(layers, every_include_follows_the_layering) {
  TuRun r = tu_sh(60, "bash tests/check_layers.sh");
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "every include follows the rule"), "%s", r.out);
  tu_run_free(&r);
}

/* The check sees a backward include: a copy of the tree where the compiler
 * includes the runtime fails it. */
Test(layers, a_backward_include_is_found) {
  TuRun r = tu_sh(120,
                  "d=$(mktemp -d); trap 'rm -rf $d' EXIT\n"
                  "git ls-files base lang compiler runtime cli | "
                  "  tar -cf - -T - | tar -xf - -C $d; mkdir -p $d/tests; cp tests/check_layers.sh $d/tests/\n"
                  "cd $d && git init -q && echo '#include \"../runtime/exec/pool.h\"' >> compiler/ir.c "
                  "&& git add -A >/dev/null && bash tests/check_layers.sh; echo \"status $?\"");
  cr_assert(strstr(r.out, "compiler/ir.c:") && strstr(r.out, "may not be used from compiler"),
            "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "status 1"), "%s", r.out);
  tu_run_free(&r);
}

/* test_examples_ir.c - every example checks clean, and its IR (forward,
 * with gradients, optimized) and memory plan match golden dumps. */
#include <string.h>

#include "ra.h"
#include "testutil.h"

static const char *examples[] = {"fortunes", "licenses", "charlm", "reverse"};

static void dump_case(const char *name, const char *what, const char *suffix) {
  char spec[256], golden[256];
  snprintf(spec, sizeof spec, "examples/%s.ra", name);
  snprintf(golden, sizeof golden, "tests/golden/examples/%s.%s", name, suffix);
  ra_ctx *c = ra_new();
  ra_set_option(c, "stdlib", "stdlib");
  cr_assert_eq(ra_load_file(c, spec), 0, "%s", ra_error(c));
  cr_assert_str_eq(ra_diagnostics(c), "", "%s has warnings", spec);
  const char *text = NULL;
  cr_assert_eq(ra_dump(c, NULL, what, &text), 0, "%s", ra_error(c));
  tu_golden(golden, text);
  ra_free(c);
}

Test(examples_ir, forward) {
  for (size_t i = 0; i < sizeof examples / sizeof *examples; i++) dump_case(examples[i], "ir", "ir");
}

Test(examples_ir, grad) {
  for (size_t i = 0; i < sizeof examples / sizeof *examples; i++)
    dump_case(examples[i], "grad", "grad.ir");
}

Test(examples_ir, grad_opt) {
  for (size_t i = 0; i < sizeof examples / sizeof *examples; i++)
    dump_case(examples[i], "grad+opt", "opt.ir");
}

Test(examples_ir, plan) {
  for (size_t i = 0; i < sizeof examples / sizeof *examples; i++)
    dump_case(examples[i], "plan", "plan");
}

Test(examples_ir, params) {
  for (size_t i = 0; i < sizeof examples / sizeof *examples; i++)
    dump_case(examples[i], "params", "params");
}

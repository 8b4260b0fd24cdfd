/* fuzz_check.c - libFuzzer target for the whole checker: parse, sema (use,
 * consts, clauses, data and train blocks, externs) and the lowering of every
 * model to IR, with autodiff of each model that has a loss.  `use` resolves
 * against the repository's stdlib folder.  Built by tests/fuzz/fuzz.mk, run
 * by tests/fuzz/run.sh. */
#include <stddef.h>
#include <stdint.h>

#include "../../compiler/program.h"

static void fuzz_one(const uint8_t *data, size_t size) {
  Arena a;
  arena_init(&a, ra_alloc_default());
  SrcSet s;
  src_init(&s, &a);
  DiagList d;
  diag_init(&d, &a, &s);
  int id = src_add(&s, "fuzz.ra", (const char *)data, size);
  if (id >= 0) {
    CompileOptions opt = {.stdlib_dir = "stdlib"};
    Program *p = sema_program(&a, &s, &d, id, &opt);
    if (p && d.nerrors == 0) {
      for (int i = 0; i < p->nmodels; i++) {
        Model *m = lower_model(p, p->models[i], 2);
        if (m && ir_find_output(m->fwd, OUT_LOSS, -1)) {
          IrFunc *g = autodiff(&a, m, p->externs, p->nexterns, &d);
          if (g) {
            IrFunc *o = pass_optimize(&a, g);
            if (o) (void)plan_memory(&a, o);
          }
        }
      }
    }
    (void)diag_render(&d, 0);
  }
  arena_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_one(data, size);
  return 0;
}

/* exec.h - the IR interpreter: runs an IrFunc on its memory plan.
 *
 * An Exec binds a function and its plan to storage: one arena of
 * plan->arena_bytes for every intermediate, a constant buffer filled once,
 * the model's parameter buffer, and caller-owned input buffers.  Running it
 * calls each node's kernel in order.
 */
#ifndef RA_EXEC_H
#define RA_EXEC_H

#include "../../compiler/program.h"
#include "kernels.h"

typedef struct Exec {
  RaAlloc alloc;
  const IrFunc *f;
  const MemPlan *plan;
  char *arena;          /* plan->arena_bytes */
  char *consts;         /* plan->const_bytes, filled at exec_new */
  float *params;        /* the model's parameter buffer (not owned) */
  const int64_t *param_offset; /* floats, by param index (not owned) */
  void **inputs;        /* by input index (not owned), set before running */
  int ninputs;
  int32_t err_node;     /* the node whose kernel failed in the last run, or -1 */
  const struct JitFunc *jit; /* compiled loops by node (exec_jit.h), or NULL */
  void **redirect;      /* by value: the caller's storage for it (exec_redirect), or NULL */
} Exec;

/* NULL when out of memory. */
Exec *exec_new(RaAlloc alloc, const IrFunc *f, const MemPlan *plan, float *params,
               const int64_t *param_offset, int ninputs);
void exec_free(Exec *ex);
/* Runs every node; 0 or -1 with kc->err set. */
int exec_run(Exec *ex, KernelCtx *kc);
/* Where value v lives after a run. */
void *exec_ptr(const Exec *ex, int32_t v);
/* Value v is computed into ptr (ir_bytes of its type) instead of its range
 * of the arena, which then stays unused: the training loop has the
 * gradients written where the optimizer reads them.  Only for an arena
 * value that lives to the end of the function (an output); 0, or -1 for
 * any other value. */
int exec_redirect(Exec *ex, int32_t v, void *ptr);

#endif

/* exec_jit.c - the interpreter's side of the JIT (see exec_jit.h). */
#include "exec_jit.h"

#include <stdio.h>
#include <string.h>

#include "kernels_int.h"

typedef struct LoopArg {
  JitLoopFn fn;
  const void *args;
} LoopArg;

static void loop_chunk(void *arg, int64_t lo, int64_t hi, int worker) {
  const LoopArg *a = arg;
  a->fn(a->args, lo, hi);
}

void exec_jit_loop(Pool *p, int nt, JitLoopFn fn, const void *args, int64_t n) {
  if (n <= 0) return;
  if (nt > 1 && pool_size(p) > 1) {
    LoopArg a = {fn, args};
    pool_for(p, n, 1, loop_chunk, &a);
  } else {
    fn(args, 0, n);
  }
}

/* The arguments of node n's compiled loop: its static part and this run's
 * pointers. */
typedef union JitArgs {
  JitEwArgs ew;
  JitRowArgs row;
  JitFRowArgs frow;
} JitArgs;

static const void *args_of(const JitNode *jn, const IrNode *n, void *out, void *const *in,
                           JitArgs *a) {
  switch (jn->kind) {
  case JIT_EW:
    a->ew = jn->ew;
    a->ew.out = out;
    for (int k = 0; k < n->nin; k++) a->ew.in[k] = in[k];
    return &a->ew;
  case JIT_ROWS:
    a->row = jn->row;
    a->row.y = out;
    a->row.x = in[0];
    a->row.d = n->nin > 1 ? in[1] : NULL;
    return &a->row;
  case JIT_FROWS:
    a->frow = jn->frow;
    a->frow.y = out;
    for (int k = 0; k < n->nin; k++) a->frow.in[k] = in[k];
    return &a->frow;
  default:
    return NULL;
  }
}

int exec_jit_node(Exec *ex, KernelCtx *kc, int32_t i, void *out, void *const *in) {
  const JitFunc *code = ex->jit;
  if (!code || i >= code->n || !code->node[i].fn) return 0;
  const JitNode *jn = &code->node[i];
  JitArgs a;
  const void *args = args_of(jn, &ex->f->nodes[i], out, in, &a);
  if (!args) return 0;
  exec_jit_loop(kc->pool, k_threads(kc, jn->work), jn->fn, args, jn->units);
  return 1;
}

int exec_jit_slice(const Exec *ex, int32_t i, int64_t slices, void *out, void *const *in) {
  const JitFunc *code = ex->jit;
  if (!code || i >= code->n || slices < 1) return 0;
  const JitNode *jn = &code->node[i];
  if (!jn->fn || (jn->kind != JIT_ROWS && jn->kind != JIT_FROWS) || jn->units % slices) return 0;
  JitArgs a;
  jn->fn(args_of(jn, &ex->f->nodes[i], out, in, &a), 0, jn->units / slices);
  return 1;
}

#ifdef RA_HAVE_JIT

bool exec_jit_available(void) { return true; }

Jit *exec_jit_new(RaAlloc alloc, char *err, size_t errlen) { return jit_new(alloc, err, errlen); }

void exec_jit_free(Jit *j) { jit_free(j); }

const char *exec_jit_target(const Jit *j) { return jit_target(j); }

const JitFunc *exec_jit_compile(Jit *j, const IrFunc *f, char *err, size_t errlen) {
  return jit_compile(j, f, err, errlen);
}

bool exec_jit_op_compiles(int op) { return jit_op_compiles(op); }

int exec_jit_attach(Exec *ex, Jit *j, char *err, size_t errlen) {
  const JitFunc *code = jit_compile(j, ex->f, err, errlen);
  if (!code) return -1;
  ex->jit = code;
  return 0;
}

JitLoopFn exec_jit_optimizer(Jit *j, int kind, double *compile_ms, char *err, size_t errlen) {
  return jit_optimizer(j, kind, compile_ms, err, errlen);
}

JitLoopFn exec_jit_particles(Jit *j, double *compile_ms, char *err, size_t errlen) {
  return jit_particles(j, compile_ms, err, errlen);
}

#else

bool exec_jit_available(void) { return false; }

Jit *exec_jit_new(RaAlloc alloc, char *err, size_t errlen) {
  snprintf(err, errlen, "%s", EXEC_NO_JIT_MSG);
  return NULL;
}

void exec_jit_free(Jit *j) {}

const char *exec_jit_target(const Jit *j) { return ""; }

const JitFunc *exec_jit_compile(Jit *j, const IrFunc *f, char *err, size_t errlen) {
  snprintf(err, errlen, "%s", EXEC_NO_JIT_MSG);
  return NULL;
}

bool exec_jit_op_compiles(int op) { return false; }

int exec_jit_attach(Exec *ex, Jit *j, char *err, size_t errlen) {
  snprintf(err, errlen, "%s", EXEC_NO_JIT_MSG);
  return -1;
}

JitLoopFn exec_jit_optimizer(Jit *j, int kind, double *compile_ms, char *err, size_t errlen) {
  snprintf(err, errlen, "%s", EXEC_NO_JIT_MSG);
  return NULL;
}

JitLoopFn exec_jit_particles(Jit *j, double *compile_ms, char *err, size_t errlen) {
  snprintf(err, errlen, "%s", EXEC_NO_JIT_MSG);
  return NULL;
}

#endif

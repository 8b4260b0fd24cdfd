/* exec_jit.h - running an IrFunc's compiled loops (compiler/jit) on the
 * interpreter's storage and pool.
 *
 * The interpreter asks exec_jit_node for each node; a node with code runs
 * its loop through pool_for with the kernels' static partition and
 * thread threshold (K_PAR_MIN), every other node its kernel.  In a build
 * without LLVM (no RA_HAVE_JIT) nothing compiles: exec_jit_available is
 * false and the calls that would compile fail with the message below.
 */
#ifndef RA_EXEC_JIT_H
#define RA_EXEC_JIT_H

#include <stdbool.h>

#include "../../compiler/jit/jit.h"
#include "exec.h"

#define EXEC_NO_JIT_MSG "this build of rac has no LLVM JIT"

bool exec_jit_available(void);
/* A Jit for this process's CPU; NULL with a message. */
Jit *exec_jit_new(RaAlloc alloc, char *err, size_t errlen);
void exec_jit_free(Jit *j);
/* Compiles ex's function with j and makes ex run its loops; 0 or -1 with a
 * message.  The code stays j's (cached by the IR's hash). */
int exec_jit_attach(Exec *ex, Jit *j, char *err, size_t errlen);
/* Runs node i if it has code: 1 when it ran, 0 when the interpreter must
 * run it. */
int exec_jit_node(Exec *ex, KernelCtx *kc, int32_t i, void *out, void *const *in);
/* Runs node i's compiled rows (a row op, or a fused node with one) for one
 * slice of a chain, on this thread: the first units / slices rows of the
 * slice's out and in.  1 when it ran, 0 when the node has no row code. */
int exec_jit_slice(const Exec *ex, int32_t i, int64_t slices, void *out, void *const *in);
/* The optimizer loop of a kind (JIT_OPT_*), NULL with a message. */
JitLoopFn exec_jit_optimizer(Jit *j, int kind, double *compile_ms, char *err, size_t errlen);
/* The particle direction's loop (jit_particles), NULL with a message. */
JitLoopFn exec_jit_particles(Jit *j, double *compile_ms, char *err, size_t errlen);
/* jit_compile and jit_op_compiles (jit.h), for the tests; NULL and false
 * without LLVM. */
const JitFunc *exec_jit_compile(Jit *j, const IrFunc *f, char *err, size_t errlen);
bool exec_jit_op_compiles(int op);
/* The CPU the code is for ("znver4, 16 floats"); "" without LLVM. */
const char *exec_jit_target(const Jit *j);
/* Runs a JitLoopFn over [0, n) on pool p (NULL: this thread), split as
 * pool_for splits it when nt > 1. */
void exec_jit_loop(Pool *p, int nt, JitLoopFn fn, const void *args, int64_t n);

#endif

/* profile.h - where the time of a training step goes (`rac bench
 * --profile`, option bench.profile).
 *
 * The interpreter adds each node's seconds to node_s (KernelCtx.node_s);
 * the training loop adds the parts of a step outside the step function
 * (the gradient copies, the particle update, the optimizer, and under MPI
 * the wait for the gradient reductions and the agreement of the ranks) to
 * part_s.
 * The report groups the nodes by kind (ir_node_kind: the same op,
 * micro-program, attributes and shapes), largest first.
 */
#ifndef RA_PROFILE_H
#define RA_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "../../base/arena.h"
#include "../../compiler/ir.h"

enum { PROF_GRADS, PROF_PARTICLES, PROF_OPTIM, PROF_REDUCE, PROF_NPARTS };

typedef struct StepProfile {
  RaAlloc alloc;
  double *node_s;              /* by node of the step function */
  int n;
  double part_s[PROF_NPARTS];
} StepProfile;

/* 0, or -1 when out of memory. */
int profile_init(StepProfile *p, RaAlloc a, int nnodes);
void profile_free(StepProfile *p);

/* Appends the report of `steps` timed steps taking elapsed_s to buf (cap
 * bytes, NUL-terminated, cut short with "..." when full). */
void profile_report(const StepProfile *p, const IrFunc *f, int64_t steps, double elapsed_s,
                    char *buf, size_t cap);

#endif

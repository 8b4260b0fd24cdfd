/* gradsync.h - the gradients of a data-parallel step summed over the ranks
 * in buckets while the backward pass runs (docs/distributed.md).
 *
 * The gradient outputs of the step's IR are taken in plan order (the node
 * that computes each); consecutive ones form a bucket of about
 * bucket_bytes.  As the interpreter finishes a node (KernelCtx.node_done),
 * the gradients it completed are copied into one contiguous buffer and a
 * bucket that is whole starts its MPI_Iallreduce; the reductions in flight
 * are polled after every node so they progress during the backward pass.
 * gradsync_finish starts what is left, waits, and writes the mean over the
 * ranks into the flat gradient buffer.  Every rank starts the same buckets
 * in the same order (the same plan), even after a failed node.
 */
#ifndef RA_GRADSYNC_H
#define RA_GRADSYNC_H

#include <stdint.h>

#include "../../compiler/program.h"
#include "../exec/exec.h"
#include "dist.h"

typedef struct GradPiece {
  int32_t node;             /* the node that completes it */
  int32_t value;
  int64_t offset;           /* floats: in the flat gradient buffer */
  int64_t n;
  int64_t pos;              /* floats: in the reduction buffer */
  int8_t ends_bucket;       /* its bucket is whole with it */
} GradPiece;

typedef struct GradSync {
  RaAlloc alloc;
  Dist *dist;
  const Exec *ex;
  GradPiece *pieces;        /* by node */
  int npieces;
  int next;                 /* the first not yet copied */
  int64_t bucket_start;     /* pos of the current bucket's first float */
  float *buf;
  int64_t nbuf;
  int nbuckets;
  int rc;                   /* the first MPI error of the step, message in err */
  char err[512];
  /* measured, over the steps since gradsync_init */
  int64_t steps;
  double wait_s;            /* in MPI_Waitall after the backward pass */
  double finish_s;          /* in gradsync_finish (wait and copies) */
  int64_t early_floats;     /* reduced already when the backward pass ended */
} GradSync;

/* bucket_bytes 0: one reduction of every gradient after the backward pass
 * (no overlap, for comparison). */
int gradsync_init(GradSync *s, RaAlloc a, Dist *d, const IrFunc *f, const ParamInfo *params,
                  const Exec *ex, int64_t bucket_bytes, char *err, size_t errlen);
void gradsync_free(GradSync *s);
/* KernelCtx.node_done (ud: the GradSync). */
void gradsync_node(void *ud, int32_t node);
/* After exec_run, whatever it returned: the mean gradient into g. */
int gradsync_finish(GradSync *s, float *g, char *err, size_t errlen);

#endif

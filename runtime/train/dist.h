/* dist.h - the processes of a data-parallel run (docs/distributed.md).
 *
 * The one interface to MPI: dist.c is the only file that includes mpi.h
 * and, in a build without MPI (RA_HAVE_MPI undefined), implements the same
 * calls for one process.  A Dist belongs to a context (ra_ctx): its
 * communicator (a duplicate of MPI_COMM_WORLD or of the application's),
 * whether this context initialised MPI (then ra_free finalises it), and
 * the requests of the gradient reductions in flight.  Every collective
 * runs with MPI_ERRORS_RETURN: an MPI error is a message, not an abort.
 */
#ifndef RA_DIST_H
#define RA_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../base/arena.h"

typedef struct Dist Dist;

/* Whether this build has MPI, and the MPI it was built with ("Open MPI
 * 4.1.4 (MPI 3.1)"; NULL without MPI). */
bool dist_available(void);
const char *dist_library(void);

/* The launcher's environment, read before anything of MPI starts:
 * the number of processes of the job (OMPI_COMM_WORLD_SIZE, PMI_SIZE,
 * PMIX_SIZE, or SLURM_NTASKS under srun's PMI), 1 when not launched, and
 * this process's rank in *rank (0 when unknown). */
int dist_launched_size(int *rank);

/* The processes of a run: on the application's communicator (comm points
 * at an MPI_Comm), else on MPI_COMM_WORLD, initialising MPI when nobody
 * has.  NULL with a message when MPI fails or the build has none. */
Dist *dist_new(RaAlloc a, const void *comm, char *err, size_t errlen);
void dist_free(Dist *d);
int dist_rank(const Dist *d);    /* 0 for NULL */
int dist_size(const Dist *d);    /* 1 for NULL */

/* Every rank passes its status (0 or an RA_E* code with its message in
 * err) and its stop request; all get the first failing rank's code and
 * message (prefixed "rank K: " by that rank) and whether any rank asked
 * to stop.  The return is the agreed code, 0 when every rank passed 0. */
int dist_agree(Dist *d, int rc, char *err, size_t errlen, bool *stop);
/* v[0..n) summed over the ranks, in place (doubles). */
int dist_sum(Dist *d, double *v, int n, char *err, size_t errlen);
/* Whether h is the same on every rank; *lo, *hi the least and greatest. */
int dist_same(Dist *d, uint64_t h, bool *same, uint64_t *lo, uint64_t *hi, char *err,
              size_t errlen);

/* Gradient reductions: starts summing x[0..n) over the ranks in place
 * (MPI_Iallreduce); dist_poll lets the ones in flight progress (called
 * between the nodes of the backward pass); dist_wait waits for all and
 * adds the time waited to *waited (seconds). */
int dist_ireduce(Dist *d, float *x, int64_t n, char *err, size_t errlen);
int dist_poll(Dist *d, char *err, size_t errlen);
int dist_wait(Dist *d, double *waited, char *err, size_t errlen);
/* How many of the reductions in flight, from the first started, have
 * completed (tested, not waited for). */
int dist_done(Dist *d);
/* One blocking sum of x[0..n) (floats, in place). */
int dist_reduce(Dist *d, float *x, int64_t n, char *err, size_t errlen);

#endif

/* pool.h - a small fork-join thread pool, one per context (ra_ctx).
 *
 * pool_for splits [0, n) into contiguous chunks, one per worker, exactly as
 * OpenMP's schedule(static) does (the first n % w chunks are one longer), so
 * a kernel's partition depends only on n and the worker count, never on
 * timing.  The caller runs chunk 0 itself; workers 1..size-1 are pthreads
 * that spin briefly for work and then sleep on a condition variable, so
 * idle workers do not take cores from other processes.
 *
 * A NULL pool, or one of size 1, runs everything serially on the caller.
 * One caller at a time per pool: a pool_for that finds the pool already
 * busy (a nested call from a chunk, say) runs its loop serially instead.
 */
#ifndef RA_POOL_H
#define RA_POOL_H

#include <stdint.h>

#include "../../base/arena.h"

typedef struct Pool Pool;

/* A chunk [lo, hi) of a pool_for loop, run by worker (0 = the caller). */
typedef void (*PoolFn)(void *arg, int64_t lo, int64_t hi, int worker);

/* A pool of nthreads workers (the caller counts as one, so nthreads - 1
 * threads are started; nthreads <= 1 starts none).  NULL when memory or a
 * thread cannot be had: callers then treat the pool as one thread. */
Pool *pool_new(RaAlloc alloc, int nthreads);
/* Stops and joins the workers and frees the pool; NULL is fine. */
void pool_free(Pool *p);
/* Workers, the caller included: 1 for NULL. */
int pool_size(const Pool *p);
/* The pool in *slot if its size is nthreads, else frees it and makes a new
 * one there (NULL if that fails).  Returns *slot. */
Pool *pool_ensure(Pool **slot, RaAlloc alloc, int nthreads);

/* How many chunks pool_for(p, n, min_per_worker, ...) uses: the pool's size,
 * but no more than n / min_per_worker (at least 1) and no more than n. */
int pool_workers(const Pool *p, int64_t n, int64_t min_per_worker);
/* Chunk w of [0, n) split in nw (schedule(static)): [*lo, *hi). */
void pool_chunk(int64_t n, int nw, int w, int64_t *lo, int64_t *hi);

/* Calls fn(arg, lo, hi, w) for each chunk w of [0, n) and returns when all
 * are done.  n <= 0 does nothing. */
void pool_for(Pool *p, int64_t n, int64_t min_per_worker, PoolFn fn, void *arg);

#endif

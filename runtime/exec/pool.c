/* pool.c - the per-context fork-join thread pool (see pool.h).
 *
 * Each worker thread has its own slot (a cache line or more) whose `state`
 * is a job number times two, plus one once the job is claimed.  The caller
 * writes chunk w into slot w and posts it (the next even state); the
 * worker, which spins on the state for up to POOL_SPIN_NS with a pause
 * instruction and then sleeps on the slot's condition variable, claims the
 * chunk (compare-and-swap to odd), runs it and decrements the pool's
 * pending count.  The caller runs chunk 0, then claims and runs itself any
 * chunk whose worker has not started yet (a descheduled or sleeping worker
 * would otherwise hold up the loop: on a busy machine this is what keeps 2
 * threads no slower than 1), then waits for the count to reach zero (spin,
 * then sleep).  A chunk is the same [lo, hi) whoever runs it, so results do
 * not depend on who does.
 *
 * Sleeping without lost wake-ups: the sleeper sets its `sleeping` flag and
 * re-reads the condition under its mutex; the waker changes the condition
 * and then reads the flag (both sequentially consistent), locking the mutex
 * to signal only when the flag is set.
 */
#include "pool.h"

#include <pthread.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

/* How long an idle thread spins before it sleeps: long enough to bridge
 * most gaps between the parallel loops of one step, short enough not to
 * take a core that another process wants (measured on the encoder
 * benchmark, 2 cores: 20 us is as fast as 50 or 200 on an idle machine and
 * as fast as sleeping at once when a core is busy elsewhere). */
#ifndef POOL_SPIN_NS
#define POOL_SPIN_NS 20000
#endif
#define POOL_MAX 1024

typedef struct Worker {
  alignas(64) _Atomic uint64_t state;  /* 2 x job number, + 1 once claimed */
  _Atomic int sleeping;
  /* the chunk, written by the caller before the job is posted */
  PoolFn fn;
  void *arg;
  int64_t lo, hi;
  int w;
  /* fixed */
  Pool *pool;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t th;
} Worker;

struct Pool {
  RaAlloc alloc;
  int size;              /* workers, the caller included */
  int nthreads;          /* threads running (size - 1 once made) */
  Worker *w;             /* size - 1 slots, aligned */
  void *wraw;
  size_t wraw_bytes;
  _Atomic int pending;   /* chunks of the current loop not yet done */
  _Atomic int waiting;   /* the caller sleeps on cv */
  _Atomic int busy;      /* a pool_for is running */
  _Atomic int stop;
  pthread_mutex_t mu;
  pthread_cond_t cv;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield" ::: "memory");
#endif
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Spins until *v != old or POOL_SPIN_NS pass; returns the value last read
 * (still old when the spin ran out). */
static uint64_t spin_while_u64(_Atomic uint64_t *v, uint64_t old) {
  int64_t deadline = 0;
  for (unsigned i = 1;; i++) {
    uint64_t s = atomic_load_explicit(v, memory_order_acquire);
    if (s != old) return s;
    cpu_relax();
    if ((i & 63) == 0) {
      int64_t t = now_ns();
      if (!deadline) deadline = t + POOL_SPIN_NS;
      else if (t >= deadline) return s;
    }
  }
}

/* A chunk is done: the last one wakes a sleeping caller. */
static void chunk_done(Pool *p) {
  if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->waiting)) {
    pthread_mutex_lock(&p->mu);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
  }
}

static void *worker_main(void *arg) {
  Worker *w = arg;
  Pool *p = w->pool;
  uint64_t seen = 1;  /* job 0, done */
  for (;;) {
    uint64_t s = spin_while_u64(&w->state, seen);
    if (s == seen) {
      pthread_mutex_lock(&w->mu);
      atomic_store(&w->sleeping, 1);
      while ((s = atomic_load(&w->state)) == seen) pthread_cond_wait(&w->cv, &w->mu);
      atomic_store(&w->sleeping, 0);
      pthread_mutex_unlock(&w->mu);
    }
    if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
    /* a job that the caller took (odd) or that this thread now claims: that
     * job is dealt with either way; a newer one shows as another state */
    seen = s | 1;
    if ((s & 1) || !atomic_compare_exchange_strong(&w->state, &s, s | 1)) continue;
    w->fn(w->arg, w->lo, w->hi, w->w);
    chunk_done(p);
  }
  return NULL;
}

/* Posts the next job in w (its chunk, or the stop flag, is already
 * written) and wakes w if it sleeps.  The previous job is done, so the
 * state is odd and no one else writes it now. */
static void post(Worker *w) {
  uint64_t s = atomic_load_explicit(&w->state, memory_order_relaxed);
  atomic_store(&w->state, (s | 1) + 1);
  if (atomic_load(&w->sleeping)) {
    pthread_mutex_lock(&w->mu);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
  }
}

void pool_free(Pool *p) {
  if (!p) return;
  atomic_store(&p->stop, 1);
  for (int i = 0; i < p->nthreads; i++) post(&p->w[i]);
  for (int i = 0; i < p->nthreads; i++) pthread_join(p->w[i].th, NULL);
  for (int i = 0; i < p->size - 1 && p->w; i++) {
    pthread_cond_destroy(&p->w[i].cv);
    pthread_mutex_destroy(&p->w[i].mu);
  }
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  RaAlloc a = p->alloc;
  ra_free_mem(&a, p->wraw, p->wraw_bytes);
  ra_free_mem(&a, p, sizeof *p);
}

Pool *pool_new(RaAlloc alloc, int nthreads) {
  if (nthreads < 1) nthreads = 1;
  if (nthreads > POOL_MAX) nthreads = POOL_MAX;
  Pool *p = ra_calloc(&alloc, 1, sizeof *p);
  if (!p) return NULL;
  p->alloc = alloc;
  p->size = 1;
  if (pthread_mutex_init(&p->mu, NULL)) {
    ra_free_mem(&alloc, p, sizeof *p);
    return NULL;
  }
  if (pthread_cond_init(&p->cv, NULL)) {
    pthread_mutex_destroy(&p->mu);
    ra_free_mem(&alloc, p, sizeof *p);
    return NULL;
  }
  if (nthreads == 1) return p;
  int nw = nthreads - 1;
  p->wraw_bytes = (size_t)nw * sizeof(Worker) + alignof(Worker);
  p->wraw = ra_calloc(&alloc, 1, p->wraw_bytes);
  if (!p->wraw) {
    p->wraw_bytes = 0;
    pool_free(p);
    return NULL;
  }
  uintptr_t u = (uintptr_t)p->wraw;
  u = (u + alignof(Worker) - 1) & ~(uintptr_t)(alignof(Worker) - 1);
  p->w = (Worker *)u;
  /* slots whose mutex and condition variable exist count in size */
  for (int i = 0; i < nw; i++) {
    Worker *w = &p->w[i];
    w->pool = p;
    atomic_init(&w->state, 1);
    if (pthread_mutex_init(&w->mu, NULL)) break;
    if (pthread_cond_init(&w->cv, NULL)) {
      pthread_mutex_destroy(&w->mu);
      break;
    }
    p->size++;
  }
  if (p->size != nthreads) {
    pool_free(p);
    return NULL;
  }
  /* workers take no signals: those go to the application's threads */
  sigset_t all, old;
  sigfillset(&all);
  bool masked = pthread_sigmask(SIG_SETMASK, &all, &old) == 0;
  for (int i = 0; i < nw; i++) {
    if (pthread_create(&p->w[i].th, NULL, worker_main, &p->w[i])) break;
    p->nthreads++;
  }
  if (masked) pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (p->nthreads != nw) {
    pool_free(p);
    return NULL;
  }
  return p;
}

int pool_size(const Pool *p) { return p ? p->size : 1; }

Pool *pool_ensure(Pool **slot, RaAlloc alloc, int nthreads) {
  if (nthreads < 1) nthreads = 1;
  if (nthreads > POOL_MAX) nthreads = POOL_MAX;
  if (*slot && pool_size(*slot) == nthreads) return *slot;
  pool_free(*slot);
  *slot = pool_new(alloc, nthreads);
  return *slot;
}

int pool_workers(const Pool *p, int64_t n, int64_t min_per_worker) {
  int64_t nw = pool_size(p);
  if (min_per_worker < 1) min_per_worker = 1;
  int64_t most = n / min_per_worker;
  if (most < nw) nw = most;
  if (n < nw) nw = n;
  return nw < 1 ? 1 : (int)nw;
}

/* libgomp's static schedule without a chunk size: q = n / nw, the first
 * n % nw chunks get q + 1. */
void pool_chunk(int64_t n, int nw, int w, int64_t *lo, int64_t *hi) {
  if (nw < 1) nw = 1;
  int64_t q = n / nw, t = n % nw;
  if (w < t) {
    q++;
    t = 0;
  }
  *lo = q * w + t;
  *hi = *lo + q;
}

void pool_for(Pool *p, int64_t n, int64_t min_per_worker, PoolFn fn, void *arg) {
  if (n <= 0) return;
  int nw = pool_workers(p, n, min_per_worker);
  if (nw == 1) {
    fn(arg, 0, n, 0);
    return;
  }
  if (atomic_exchange(&p->busy, 1)) {  /* nested or concurrent: serial */
    fn(arg, 0, n, 0);
    return;
  }
  atomic_store_explicit(&p->pending, nw - 1, memory_order_relaxed);
  for (int i = 1; i < nw; i++) {
    Worker *w = &p->w[i - 1];
    w->fn = fn;
    w->arg = arg;
    pool_chunk(n, nw, i, &w->lo, &w->hi);
    w->w = i;
    post(w);
  }
  int64_t lo, hi;
  pool_chunk(n, nw, 0, &lo, &hi);
  fn(arg, lo, hi, 0);
  /* chunks whose worker has not claimed them yet: run them here */
  for (int i = 1; i < nw; i++) {
    Worker *w = &p->w[i - 1];
    uint64_t s = atomic_load_explicit(&w->state, memory_order_relaxed);
    if ((s & 1) || !atomic_compare_exchange_strong(&w->state, &s, s | 1)) continue;
    fn(arg, w->lo, w->hi, i);
    atomic_fetch_sub(&p->pending, 1);
  }
  /* wait: spin, then sleep */
  int64_t deadline = 0;
  for (unsigned i = 1; atomic_load_explicit(&p->pending, memory_order_acquire) != 0; i++) {
    cpu_relax();
    if ((i & 63) == 0) {
      int64_t t = now_ns();
      if (!deadline) {
        deadline = t + POOL_SPIN_NS;
      } else if (t >= deadline) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->waiting, 1);
        while (atomic_load(&p->pending) != 0) pthread_cond_wait(&p->cv, &p->mu);
        atomic_store(&p->waiting, 0);
        pthread_mutex_unlock(&p->mu);
        break;
      }
    }
  }
  atomic_store_explicit(&p->busy, 0, memory_order_release);
}

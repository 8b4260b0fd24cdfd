/* dist.c - the processes of a data-parallel run over MPI (dist.h), and the
 * same calls for one process in a build without MPI.  The only file that
 * includes mpi.h. */
#include "dist.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../base/clock.h"
#include "../../include/ra.h"

#ifdef RA_HAVE_MPI
#include <mpi.h>
#endif

static int dfail(char *err, size_t errlen, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (err && errlen) vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return code;
}

static long env_count(const char *name) {
  const char *s = getenv(name);
  if (!s || !*s) return -1;
  char *end;
  long v = strtol(s, &end, 10);
  return *end || v < 0 ? -1 : v;
}

int dist_launched_size(int *rank) {
  /* Open MPI's mpirun, then PMI (MPICH's hydra, srun --mpi=pmi2), PMIx;
   * SLURM's own variables count only under srun's PMI (a batch script's
   * environment has them too, for one process). */
  static const char *const sizes[][2] = {{"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"},
                                         {"PMI_SIZE", "PMI_RANK"},
                                         {"PMIX_SIZE", "PMIX_RANK"}};
  if (rank) *rank = 0;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    long n = env_count(sizes[i][0]);
    if (n < 1) continue;
    long r = env_count(sizes[i][1]);
    if (rank && r >= 0) *rank = (int)r;
    return (int)n;
  }
  if (getenv("PMIX_RANK") || getenv("PMI_RANK") || getenv("PMI_FD")) {
    long n = env_count("SLURM_STEP_NUM_TASKS");
    if (n < 1) n = env_count("SLURM_NTASKS");
    long r = env_count("PMIX_RANK");
    if (r < 0) r = env_count("PMI_RANK");
    if (r < 0) r = env_count("SLURM_PROCID");
    if (rank && r >= 0) *rank = (int)r;
    if (n >= 1) return (int)n;
  }
  return 1;
}

#ifdef RA_HAVE_MPI

struct Dist {
  RaAlloc alloc;
  MPI_Comm comm;
  int rank, size;
  bool own_init;            /* this context called MPI_Init_thread */
  MPI_Request *req;
  int nreq, reqcap;
};

bool dist_available(void) { return true; }

#define DIST_STR_(x) #x
#define DIST_STR(x) DIST_STR_(x)
const char *dist_library(void) {
#if defined(OMPI_MAJOR_VERSION)
  return "Open MPI " DIST_STR(OMPI_MAJOR_VERSION) "." DIST_STR(OMPI_MINOR_VERSION) "."
         DIST_STR(OMPI_RELEASE_VERSION) " (MPI " DIST_STR(MPI_VERSION) "." DIST_STR(MPI_SUBVERSION) ")";
#else
  return "MPI " DIST_STR(MPI_VERSION) "." DIST_STR(MPI_SUBVERSION);
#endif
}

/* An MPI error as a message: "MPI_Allreduce: <MPI's text>". */
static int mpi_fail(char *err, size_t errlen, int code, const char *call) {
  char s[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "error %d", code);
  else s[len < (int)sizeof s ? len : (int)sizeof s - 1] = 0;
  return dfail(err, errlen, RA_ERUNTIME,
               "%s failed: %s (a process of the job ended or the network failed)", call, s);
}

Dist *dist_new(RaAlloc a, const void *comm, char *err, size_t errlen) {
  int inited = 0, finalized = 0;
  MPI_Initialized(&inited);
  MPI_Finalized(&finalized);
  if (finalized) {
    dfail(err, errlen, RA_EUSAGE, "MPI was finalized already in this process: it cannot start "
          "again (a process runs one MPI session)");
    return NULL;
  }
  if (comm && !inited) {
    dfail(err, errlen, RA_EUSAGE, "ra_set_mpi_comm: MPI is not initialised (call MPI_Init first)");
    return NULL;
  }
  bool own = false;
  if (!inited) {
    int provided = 0;
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
    if (rc != MPI_SUCCESS) {
      dfail(err, errlen, RA_ERUNTIME, "MPI_Init_thread failed (error %d)", rc);
      return NULL;
    }
    own = true;
  }
  Dist *d = ra_calloc(&a, 1, sizeof *d);
  if (!d) {
    if (own) MPI_Finalize();
    dfail(err, errlen, RA_ENOMEM, "out of memory");
    return NULL;
  }
  d->alloc = a;
  d->own_init = own;
  MPI_Comm base = comm ? *(const MPI_Comm *)comm : MPI_COMM_WORLD;
  int rc = MPI_Comm_dup(base, &d->comm);
  if (rc != MPI_SUCCESS) {
    mpi_fail(err, errlen, rc, "MPI_Comm_dup");
    d->comm = MPI_COMM_NULL;
    dist_free(d);
    return NULL;
  }
  MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(d->comm, &d->rank);
  MPI_Comm_size(d->comm, &d->size);
  return d;
}

void dist_free(Dist *d) {
  if (!d) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && d->comm != MPI_COMM_NULL) MPI_Comm_free(&d->comm);
  if (d->req) ra_free_mem(&d->alloc, d->req, (size_t)d->reqcap * sizeof *d->req);
  bool own = d->own_init;
  RaAlloc a = d->alloc;
  ra_free_mem(&a, d, sizeof *d);
  if (own && !finalized) MPI_Finalize();
}

int dist_rank(const Dist *d) { return d ? d->rank : 0; }
int dist_size(const Dist *d) { return d ? d->size : 1; }

int dist_agree(Dist *d, int rc, char *err, size_t errlen, bool *stop) {
  if (!d || d->size < 2) return rc;
  /* the least failing rank, and whether any asks to stop (as -1) */
  int v[2] = {rc ? d->rank : d->size, stop && *stop ? -1 : 0};
  int e = MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_INT, MPI_MIN, d->comm);
  if (e != MPI_SUCCESS) return mpi_fail(err, errlen, e, "MPI_Allreduce (status)");
  if (stop) *stop = v[1] < 0;
  if (v[0] >= d->size) return 0;
  struct { int code; char msg[1020]; } m;
  memset(&m, 0, sizeof m);
  if (d->rank == v[0]) {
    m.code = rc;
    if (d->rank) snprintf(m.msg, sizeof m.msg, "rank %d: %.1000s", d->rank, err ? err : "");
    else snprintf(m.msg, sizeof m.msg, "%.1010s", err ? err : "");
  }
  e = MPI_Bcast(&m, (int)sizeof m, MPI_BYTE, v[0], d->comm);
  if (e != MPI_SUCCESS) return mpi_fail(err, errlen, e, "MPI_Bcast (status)");
  m.msg[sizeof m.msg - 1] = 0;
  if (err && errlen) snprintf(err, errlen, "%s", m.msg);
  return m.code ? m.code : RA_ERUNTIME;
}

int dist_sum(Dist *d, double *v, int n, char *err, size_t errlen) {
  if (!d || d->size < 2 || n <= 0) return 0;
  int e = MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, d->comm);
  return e == MPI_SUCCESS ? 0 : mpi_fail(err, errlen, e, "MPI_Allreduce");
}

int dist_same(Dist *d, uint64_t h, bool *same, uint64_t *lo, uint64_t *hi, char *err,
              size_t errlen) {
  *same = true;
  *lo = *hi = h;
  if (!d || d->size < 2) return 0;
  uint64_t v[2] = {h, ~h};
  int e = MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_UINT64_T, MPI_MIN, d->comm);
  if (e != MPI_SUCCESS) return mpi_fail(err, errlen, e, "MPI_Allreduce (parameter hash)");
  *lo = v[0];
  *hi = ~v[1];
  *same = *lo == *hi;
  return 0;
}

int dist_ireduce(Dist *d, float *x, int64_t n, char *err, size_t errlen) {
  if (!d || d->size < 2 || n <= 0) return 0;
  if (d->nreq == d->reqcap) {
    int cap = d->reqcap ? d->reqcap * 2 : 16;
    MPI_Request *r = ra_realloc(&d->alloc, d->req, (size_t)d->reqcap * sizeof *r,
                                (size_t)cap * sizeof *r);
    if (!r) return dfail(err, errlen, RA_ENOMEM, "out of memory for gradient reductions");
    d->req = r;
    d->reqcap = cap;
  }
  /* a bucket is at most 2^31 - 1 floats (an int count): train cuts them */
  int e = MPI_Iallreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, d->comm, &d->req[d->nreq]);
  if (e != MPI_SUCCESS) return mpi_fail(err, errlen, e, "MPI_Iallreduce (gradients)");
  d->nreq++;
  return 0;
}

int dist_poll(Dist *d, char *err, size_t errlen) {
  if (!d || d->nreq == 0) return 0;
  int flag = 0;
  int e = MPI_Testall(d->nreq, d->req, &flag, MPI_STATUSES_IGNORE);
  if (e != MPI_SUCCESS) return mpi_fail(err, errlen, e, "MPI_Testall (gradients)");
  if (flag) d->nreq = 0;
  return 0;
}

int dist_done(Dist *d) {
  if (!d) return 0;
  int k = 0;
  while (k < d->nreq) {
    int flag = 0;
    if (d->req[k] != MPI_REQUEST_NULL &&
        (MPI_Request_get_status(d->req[k], &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS || !flag))
      break;
    k++;
  }
  return k;
}

int dist_wait(Dist *d, double *waited, char *err, size_t errlen) {
  if (!d || d->nreq == 0) return 0;
  double t0 = clock_seconds();
  int e = MPI_Waitall(d->nreq, d->req, MPI_STATUSES_IGNORE);
  d->nreq = 0;
  if (waited) *waited += clock_seconds() - t0;
  return e == MPI_SUCCESS ? 0 : mpi_fail(err, errlen, e, "MPI_Waitall (gradients)");
}

int dist_reduce(Dist *d, float *x, int64_t n, char *err, size_t errlen) {
  if (!d || d->size < 2 || n <= 0) return 0;
  int e = MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, d->comm);
  return e == MPI_SUCCESS ? 0 : mpi_fail(err, errlen, e, "MPI_Allreduce (gradients)");
}

#else /* one process: the build has no MPI */

bool dist_available(void) { return false; }
const char *dist_library(void) { return NULL; }

Dist *dist_new(RaAlloc a, const void *comm, char *err, size_t errlen) {
  (void)a;
  (void)comm;
  dfail(err, errlen, RA_EUSAGE, "this build of rac has no MPI (built with MPI=0, or without "
        "mpicc and libopenmpi-dev)");
  return NULL;
}
void dist_free(Dist *d) { (void)d; }
int dist_rank(const Dist *d) { (void)d; return 0; }
int dist_size(const Dist *d) { (void)d; return 1; }
int dist_agree(Dist *d, int rc, char *err, size_t errlen, bool *stop) {
  (void)d; (void)err; (void)errlen; (void)stop;
  return rc;
}
int dist_sum(Dist *d, double *v, int n, char *err, size_t errlen) {
  (void)d; (void)v; (void)n; (void)err; (void)errlen;
  return 0;
}
int dist_same(Dist *d, uint64_t h, bool *same, uint64_t *lo, uint64_t *hi, char *err,
              size_t errlen) {
  (void)d; (void)err; (void)errlen;
  *same = true;
  *lo = *hi = h;
  return 0;
}
int dist_ireduce(Dist *d, float *x, int64_t n, char *err, size_t errlen) {
  (void)d; (void)x; (void)n; (void)err; (void)errlen;
  return 0;
}
int dist_poll(Dist *d, char *err, size_t errlen) {
  (void)d; (void)err; (void)errlen;
  return 0;
}
int dist_wait(Dist *d, double *waited, char *err, size_t errlen) {
  (void)d; (void)waited; (void)err; (void)errlen;
  return 0;
}
int dist_reduce(Dist *d, float *x, int64_t n, char *err, size_t errlen) {
  (void)d; (void)x; (void)n; (void)err; (void)errlen;
  return 0;
}
int dist_done(Dist *d) { (void)d; return 0; }

#endif

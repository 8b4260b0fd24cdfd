/* handoff.c - an application that uses MPI itself hands rac a communicator
 * (ra_set_mpi_comm; tests/test_mpi.c runs it on 3 processes).  It splits
 * MPI_COMM_WORLD: ranks 0 and 1 train tests/mpi/dp.ra together, rank 2
 * alone on a communicator of its own, and each prints its rank in rac's
 * run, the size, and the loss of every step.  After ra_free the
 * application still uses MPI, then finalises it itself. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "ra.h"

#if defined(__SANITIZE_ADDRESS__)
/* Open MPI's components, unloaded by MPI_Finalize, leave allocations the
 * leak check cannot attribute (rac skips its check after MPI the same way);
 * ASan's memory errors are still found. */
const char *__lsan_default_options(void);
const char *__lsan_default_options(void) { return "detect_leaks=0"; }
#endif

typedef struct Losses {
  double v[64];
  int n;
} Losses;

static int on_step(void *ud, int64_t step, double loss) {
  Losses *l = ud;
  if (l->n < 64) l->v[l->n++] = loss;
  (void)step;
  return 0;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int world;
  MPI_Comm_rank(MPI_COMM_WORLD, &world);
  MPI_Comm part;
  MPI_Comm_split(MPI_COMM_WORLD, world < 2 ? 0 : 1, world, &part);
  ra_ctx *ctx = ra_new();
  ra_set_option(ctx, "quiet", "1");
  ra_set_option(ctx, "threads", "1");
  int rc = ra_set_mpi_comm(ctx, &part);
  Losses l = {{0}, 0};
  if (rc == 0) rc = ra_load_file(ctx, argc > 1 ? argv[1] : "tests/mpi/dp.ra");
  if (rc == 0 && argc > 2) rc = ra_set_option(ctx, "set.save", argv[2 + (world < 2 ? 0 : 1)]);
  if (rc == 0) rc = ra_train(ctx, NULL, on_step, &l);
  int size = 0, rank = ra_mpi_rank(ctx, &size);
  if (rc) fprintf(stderr, "world rank %d: %s\n", world, ra_error(ctx));
  ra_free(ctx);
  MPI_Comm_free(&part);
  /* the application's MPI still works after ra_free */
  int sum = 0, one = 1;
  MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) {
    printf("size %d world %d steps %d", size, sum, l.n);
    for (int i = 0; i < l.n; i++) printf(" %.9g", l.v[i]);
    printf("\n");
  }
  MPI_Finalize();
  return rc ? 1 : 0;
}

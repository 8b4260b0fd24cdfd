/* sgemm_peak.c - OpenBLAS's single-precision GEMM throughput on a large
 * square product (C = A B, row-major, n x n by n x n), on 1 thread and on
 * T threads of its own pool (openblas_set_num_threads), best of R calls
 * each.  Its kernel follows OPENBLAS_CORETYPE when that is set, else its
 * own CPU detection; bench/run.sh runs it both ways.
 *
 *   build/bench/sgemm_peak [threads] [n] [rounds]     (defaults: cores, 2048, 5)
 *
 * Prints "sgemm T G" (GFLOP/s) for 1 and T threads and the kernel OpenBLAS
 * chose ("core NAME").
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

extern void openblas_set_num_threads(int);
extern char *openblas_get_corename(void);

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  int T = argc > 1 ? atoi(argv[1]) : (int)sysconf(_SC_NPROCESSORS_ONLN);
  int n = argc > 2 ? atoi(argv[2]) : 2048;
  int R = argc > 3 ? atoi(argv[3]) : 5;
  if (T < 1 || n < 16 || R < 1) {
    fprintf(stderr, "usage: sgemm_peak [threads >= 1] [n >= 16] [rounds >= 1]\n");
    return 2;
  }
  size_t nn = (size_t)n * (size_t)n;
  float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = malloc(nn * sizeof *c);
  if (!a || !b || !c) {
    fprintf(stderr, "sgemm_peak: out of memory for n = %d\n", n);
    return 1;
  }
  for (size_t i = 0; i < nn; i++) {
    a[i] = (float)((i * 7919) % 1000) * 1e-3f;
    b[i] = (float)((i * 104729) % 1000) * 1e-3f;
  }
  printf("core %s\n", openblas_get_corename());
  int threads[2] = {1, T};
  for (int ti = 0; ti < (T > 1 ? 2 : 1); ti++) {
    openblas_set_num_threads(threads[ti]);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    double best = 1e30;
    for (int r = 0; r < R; r++) {
      double t0 = now();
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
      double dt = now() - t0;
      if (dt < best) best = dt;
    }
    printf("sgemm %d %.1f\n", threads[ti], 2.0 * n * n * (double)n / best / 1e9);
  }
  if (c[nn / 2] == 12345.0f) printf(" ");
  free(a);
  free(b);
  free(c);
  return 0;
}

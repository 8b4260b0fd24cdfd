/* fuse_ab.c - steps/s of a spec with and without the fusion pass, in one
 * process, rounds alternating, best of each (the option "fuse" of
 * ra_set_option).
 *
 *   cc -O2 -Iinclude -o build/fuse_ab bench/fuse_ab.c build/libra.a \
 *      -lopenblas -lffi -ljansson -ldl -lm -lpthread
 *   build/fuse_ab bench/encoder.ra THREADS STEPS ROUNDS
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ra.h"

static double steps_per_s(const char *spec, const char *threads, const char *fuse, long steps) {
  ra_ctx *c = ra_new();
  ra_set_option(c, "quiet", "1");
  ra_set_option(c, "threads", threads);
  ra_set_option(c, "fuse", fuse);
  const char *rep = NULL;
  double v = -1;
  if (ra_load_file(c, spec) == 0 && ra_bench(c, NULL, steps, &rep) == 0) {
    const char *at = strstr(rep, "steps/s");
    if (at) v = strtod(at + strlen("steps/s"), NULL);
  } else {
    fprintf(stderr, "%s\n", ra_error(c));
  }
  ra_free(c);
  return v;
}

int main(int argc, char **argv) {
  const char *spec = argc > 1 ? argv[1] : "bench/encoder.ra";
  const char *threads = argc > 2 ? argv[2] : "1";
  long steps = argc > 3 ? atol(argv[3]) : 20, rounds = argc > 4 ? atol(argv[4]) : 3;
  double best[2] = {0, 0};
  for (long r = 0; r < rounds; r++)
    for (int f = 0; f < 2; f++) {
      double v = steps_per_s(spec, threads, f ? "1" : "0", steps);
      if (v < 0) return 1;
      printf("round %ld fuse %d %.3f steps/s\n", r + 1, f, v);
      if (v > best[f]) best[f] = v;
    }
  printf("threads %s  unfused %.3f  fused %.3f steps/s  fused/unfused %.3f\n", threads, best[0],
         best[1], best[1] / best[0]);
  return 0;
}

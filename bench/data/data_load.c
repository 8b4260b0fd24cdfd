/* data_load.c - times loading a text corpus (both passes over the mapped
 * file: tokens, the windows' offsets, the vocabulary) and reports the peak
 * resident set after it.  Built and run by bench/data.sh.
 *
 *   data_load FILE chars|words|bpe WINDOW VOCAB [REPEATS]              */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "../../runtime/data/data.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: data_load FILE chars|words|bpe WINDOW VOCAB [REPEATS]\n");
    return 2;
  }
  DataDecl d;
  memset(&d, 0, sizeof d);
  d.name = "corpus";
  d.loader = LOADER_TEXT;
  d.path = argv[1];
  d.tokenize = !strcmp(argv[2], "bpe") ? TOK_BPE : !strcmp(argv[2], "words") ? TOK_WORDS : TOK_CHARS;
  d.window = atoll(argv[3]);
  d.vocab = atoll(argv[4]);
  d.split[0] = 0.9;
  d.split[1] = 0.05;
  d.split[2] = 0.05;
  d.seed = 3;
  int reps = argc > 5 ? atoi(argv[5]) : 1;
  char err[1024];
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    DataSet *ds = data_load(ra_alloc_default(), &d, err, sizeof err);
    double t1 = now();
    if (!ds) {
      fprintf(stderr, "%s\n", err);
      return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("load %.3f s  examples %lld  vocab %lld  peak_rss %ld KiB\n", t1 - t0, (long long)ds->n,
           (long long)ds->vocab.n, ru.ru_maxrss);
    data_free(ds);
  }
  return 0;
}

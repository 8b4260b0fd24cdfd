/* embed.c - an application that embeds libra through ra.h alone: it
 * registers a native function, loads embed.ra, trains it with a progress
 * callback, predicts on new input, saves a checkpoint, reloads it into a
 * fresh context, checks that the predictions match, and shows what errors
 * look like.  Exit status 0 when everything behaved as expected.
 *
 *   make && ./embed [embed.ra [STEPS [THREADS]]]     (see README.md)
 *
 * STEPS overrides the train block's `steps` (a quick run, e.g. under
 * valgrind); the check that the model learned is then skipped.  THREADS is
 * the number of worker threads (default 1).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ra.h>

#define N 6     /* sequence length (the spec's `n`) */
#define V 8     /* vocabulary */
#define BATCH 4 /* new sequences to predict */

/* The host functions the spec declares `from host`. */
static float softsign(float x) { return x / (1.0f + fabsf(x)); }
static float softsign_grad(float x) {
  float d = 1.0f + fabsf(x);
  return 1.0f / (d * d);
}

static int on_step(void *ud, int64_t step, double loss) {
  double *last = ud;
  *last = loss;
  if (step % 100 == 0) printf("  step %4lld  loss %.4f\n", (long long)step, loss);
  return 0; /* non-zero would stop training (RA_ESTOPPED) */
}

static void on_log(void *ud, const char *line) {
  (void)ud;
  if (line[0] != '\r') printf("  [log] %s\n", line);
}

/* A context with the options and host functions this spec needs. */
static ra_ctx *setup(const char *spec, const char *steps, const char *threads) {
  ra_ctx *ctx = ra_new();
  if (!ctx) {
    fprintf(stderr, "embed: out of memory\n");
    return NULL;
  }
  if (ra_set_option(ctx, "threads", threads) || ra_set_option(ctx, "seed", "1") ||
      (steps && ra_set_option(ctx, "set.steps", steps)) ||
      ra_register_fn(ctx, "softsign", "f32(f32)", (void (*)(void))softsign) ||
      ra_register_fn(ctx, "softsign_grad", "f32(f32)", (void (*)(void))softsign_grad) ||
      ra_load_file(ctx, spec)) {
    fprintf(stderr, "embed: %s\n", ra_error(ctx));
    ra_free(ctx);
    return NULL;
  }
  return ctx;
}

/* Runs the model on the new sequences; the output storage belongs to the
 * model (data == NULL on entry) and is copied into probs. */
static int predict(ra_ctx *ctx, ra_model *m, const int32_t *seq, float *probs) {
  ra_tensor in = {RA_I32, 2, {BATCH, N}, (void *)seq};
  ra_tensor out = {0};
  if (ra_forward(m, &in, 1, &out, 1)) {
    fprintf(stderr, "embed: %s\n", ra_error(ctx));
    return -1;
  }
  if (out.ndim != 3 || out.shape[0] != BATCH || out.shape[1] != N || out.shape[2] != V) {
    fprintf(stderr, "embed: unexpected output shape\n");
    return -1;
  }
  memcpy(probs, out.data, sizeof(float) * BATCH * N * V);
  return 0;
}

int main(int argc, char **argv) {
  const char *spec = argc > 1 ? argv[1] : "embed.ra";
  const char *steps = argc > 2 ? argv[2] : NULL;
  const char *threads = argc > 3 ? argv[3] : "1";
  const char *ckpt = "embed.safetensors";
  int failures = 0;

  /* the header and the library agree on major.minor */
  if (ra_version() / 100 != RA_VERSION_NUM / 100) {
    fprintf(stderr, "embed: built with libra %s but linked with %s\n", RA_VERSION_STRING,
            ra_version_string());
    return 1;
  }
  printf("libra %s\n", ra_version_string());

  /* ---- train ---- */
  ra_ctx *ctx = setup(spec, steps, threads);
  if (!ctx) return 1;
  ra_set_log(ctx, on_log, NULL);
  double loss = 0;
  printf("training %s\n", spec);
  if (ra_train(ctx, NULL, on_step, &loss)) {
    fprintf(stderr, "embed: %s\n", ra_error(ctx));
    ra_free(ctx);
    return 1;
  }
  printf("final loss %.4f\n", loss);

  /* ---- predict on new input ---- */
  ra_model *m = ra_model_get(ctx, "reverser");
  if (!m) {
    fprintf(stderr, "embed: %s\n", ra_error(ctx));
    ra_free(ctx);
    return 1;
  }
  /* symbols are 2..7 (0 and 1 are <pad> and <unk> in synthetic data) */
  int32_t seq[BATCH * N] = {2, 3, 4, 5, 6, 7, 7, 7, 2, 2, 5, 3, 3, 4, 6, 2, 5, 3, 6, 5, 4, 3, 2, 7};
  static float p1[BATCH * N * V], p2[BATCH * N * V];
  if (predict(ctx, m, seq, p1)) {
    ra_free(ctx);
    return 1;
  }
  int right = 0;
  for (int b = 0; b < BATCH; b++) {
    printf("  input");
    for (int t = 0; t < N; t++) printf(" %d", seq[b * N + t]);
    printf("  ->");
    for (int t = 0; t < N; t++) {
      const float *p = &p1[(b * N + t) * V];
      int best = 0;
      for (int k = 1; k < V; k++)
        if (p[k] > p[best]) best = k;
      printf(" %d", best);
      right += best == seq[b * N + (N - 1 - t)];
    }
    printf("\n");
  }
  printf("reversed correctly: %d of %d symbols\n", right, BATCH * N);
  if (!steps && right < BATCH * N * 3 / 4) {
    fprintf(stderr, "embed: the model did not learn to reverse\n");
    failures++;
  }

  /* ---- save, reload into a fresh context, compare ---- */
  if (ra_save(m, ckpt)) {
    fprintf(stderr, "embed: %s\n", ra_error(ctx));
    ra_free(ctx);
    return 1;
  }
  ra_ctx *ctx2 = setup(spec, steps, threads);
  ra_model *m2 = ctx2 ? ra_model_get(ctx2, "reverser") : NULL;
  if (!m2 || ra_load(m2, ckpt) || predict(ctx2, m2, seq, p2)) {
    if (ctx2) fprintf(stderr, "embed: %s\n", ra_error(ctx2));
    ra_free(ctx2);
    ra_free(ctx);
    return 1;
  }
  if (memcmp(p1, p2, sizeof p1) == 0) {
    printf("reloaded from %s: the predictions match\n", ckpt);
  } else {
    fprintf(stderr, "embed: the reloaded model predicts differently\n");
    failures++;
  }
  remove(ckpt);

  /* ---- what errors look like ---- */
  int rc = ra_load_string(ctx2, "bad.ra",
                          "model m {\n"
                          "  input seq : int[6]\n"
                          "  x = embed(seq, vocab: 8, dim: 16)\n"
                          "  y = atention(x)\n"
                          "}\n");
  printf("a bad spec: code %d\n%s", rc, ra_error(ctx2));
  if (rc != RA_ESPEC || !strstr(ra_error(ctx2), "bad.ra:4:")) failures++;

  ra_tensor wrong = {RA_F32, 2, {BATCH, N}, seq}, out = {0};
  rc = ra_forward(m, &wrong, 1, &out, 1);
  printf("a misuse: code %d: %s\n", rc, ra_error(ctx));
  if (rc != RA_ESHAPE) failures++;

  rc = ra_register_fn(ctx, "softsign", "f32(f32)", (void (*)(void))softsign);
  printf("a misuse: code %d: %s\n", rc, ra_error(ctx));
  if (rc != RA_EUSAGE) failures++;

  ra_free(ctx2);
  ra_free(ctx);
  printf("%s\n", failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}

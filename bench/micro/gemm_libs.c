/* gemm_libs.c - single-precision GEMM throughput of the libraries rac can
 * use, at the shapes of the benchmark encoder's step (bench/encoder.ra:
 * `rac ir bench/encoder.ra --grad --opt` lists them), in one process,
 * alternating libraries round by round so that a machine shared with other
 * work slows them alike.  Each cell is the best round's GFLOP/s on one
 * thread (each library pinned to one thread, as rac runs it).
 *
 * Libraries, each compiled in when its header was found (HAVE_*):
 *   openblas   cblas_sgemm (its kernel follows OPENBLAS_CORETYPE or its own
 *              cpuid; run the program under both to compare)
 *   blis       bli_sgemm_ex, one thread through an rntm_t
 *   libxsmm    JIT kernels from libxsmm_smmdispatch (column-major: the
 *              row-major product is computed as its transpose)
 *   onednn     dnnl_sgemm, one OpenMP thread
 *
 * Also prints each library's kernel choice (cpuid target), a peak figure
 * (a 2048^3 square product), and the bits: whether two calls agree, whether
 * the library on 2 threads of its own agrees with 1, whether a product
 * computed in row blocks (as k_gemm cuts it) matches the whole, and the
 * largest error against a double-precision product.
 *
 *   build/bench/gemm_libs [rounds [text]]   (default 5 rounds; only the
 *                                           shapes whose name has text)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>
void openblas_set_num_threads(int num_threads);
char *openblas_get_corename(void);
char *openblas_get_config(void);

#ifdef HAVE_BLIS
#include <blis.h>
#endif
#ifdef HAVE_XSMM
#include <libxsmm.h>
#endif
#ifdef HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#endif

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct Shape {
  const char *what;
  int m, n, k, ta, tb, batch;
} Shape;

/* m, n, k of the row-major product op(A)[m,k] op(B)[k,n]; batch products of
 * the attention, one per head per example (32 x 8). */
static const Shape shapes[] = {
    {"q/k/v/o proj [2048,128]x[128,128]", 2048, 128, 128, 0, 0, 1},
    {"fused qkv [2048,128]x[128,384]", 2048, 384, 128, 0, 0, 1},
    {"ffn up [2048,128]x[128,512]", 2048, 512, 128, 0, 0, 1},
    {"ffn down [2048,512]x[512,128]", 2048, 128, 512, 0, 0, 1},
    {"dX proj [2048,128]x[128,128]^T", 2048, 128, 128, 0, 1, 1},
    {"dX ffn down [2048,128]x[512,128]^T", 2048, 512, 128, 0, 1, 1},
    {"dX ffn up [2048,512]x[128,512]^T", 2048, 128, 512, 0, 1, 1},
    {"dW proj [128,2048]^Tx[2048,128]", 128, 128, 2048, 1, 0, 1},
    {"dW ffn up [128,2048]^Tx[2048,512]", 128, 512, 2048, 1, 0, 1},
    {"dW ffn down [512,2048]^Tx[2048,128]", 512, 128, 2048, 1, 0, 1},
    {"scores 256x [64,16]x[64,16]^T", 64, 64, 16, 0, 1, 256},
    {"P.V 256x [64,64]x[64,16]", 64, 16, 64, 0, 0, 256},
    {"dV,dK 256x [64,64]^Tx[64,16]", 64, 16, 64, 1, 0, 256},
    {"classifier [32,128]x[128,8]", 32, 8, 128, 0, 0, 1},
    {"block of a wide layer [512,1024]x[1024,1024]", 512, 1024, 1024, 0, 0, 1},
    {"block [512,2048]x[2048,2048]", 512, 2048, 2048, 0, 0, 1},
    {"vocab proj block [512,128]x[128,4000]", 512, 4000, 128, 0, 0, 1},
    {"its dX [512,4000]x[128,4000]^T", 512, 128, 4000, 0, 1, 1},
    {"its dW [128,2048]^Tx[2048,4000]", 128, 4000, 2048, 1, 0, 1},
    {"square [512,512]x[512,512]", 512, 512, 512, 0, 0, 1},
    {"square [512,256]x[256,256]", 512, 256, 256, 0, 0, 1},
    {"square [512,768]x[768,768]", 512, 768, 768, 0, 0, 1},
    {"peak [2048,2048]x[2048,2048]", 2048, 2048, 2048, 0, 0, 1},
};
#define NSHAPES (int)(sizeof shapes / sizeof shapes[0])

enum { L_OPENBLAS, L_BLIS, L_XSMM, L_DNNL, NLIBS };
static const char *lib_name[NLIBS] = {"openblas", "blis", "libxsmm", "onednn"};
static const int lib_present[NLIBS] = {1,
#ifdef HAVE_BLIS
                                       1,
#else
                                       0,
#endif
#ifdef HAVE_XSMM
                                       1,
#else
                                       0,
#endif
#ifdef HAVE_DNNL
                                       1
#else
                                       0
#endif
};

/* Threads each library may use (1 but for the bits check). */
static int lib_threads = 1;

/* One row-major product C = op(A) op(B), beta 0. Returns 0 if the library
 * cannot do it. */
static int gemm(int lib, int ta, int tb, int m, int n, int k, const float *a, int lda,
                const float *b, int ldb, float *c, int ldc) {
  switch (lib) {
  case L_OPENBLAS:
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m,
                n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
    return 1;
#ifdef HAVE_BLIS
  case L_BLIS: {
    float one = 1.0f, zero = 0.0f;
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(lib_threads, &rntm);
    bli_sgemm_ex(ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                 m, n, k, &one, (float *)a, lda, 1, (float *)b, ldb, 1, &zero, c, ldc, 1, NULL,
                 &rntm);
    return 1;
  }
#endif
#ifdef HAVE_XSMM
  case L_XSMM: {
    /* Column-major C^T[n,m] = op(B)^T op(A)^T: B's buffer first.  Its JIT
     * has no transposed first operand: a transposed B is copied (as the
     * runtime does, in panels of columns). */
    static float bt[1 << 20];
    if (tb) {
      if ((int64_t)n * k > (int64_t)(sizeof bt / sizeof bt[0])) return 0;
      for (int j = 0; j < n; j++)
        for (int l = 0; l < k; l++) bt[(int64_t)l * n + j] = b[(int64_t)j * ldb + l];
      b = bt, ldb = n, tb = 0;
    }
    int flags = (ta ? LIBXSMM_GEMM_FLAG_TRANS_B : 0) | LIBXSMM_GEMM_FLAG_BETA_0;
    float one = 1.0f, zero = 0.0f;
    libxsmm_blasint M = n, N = m, K = k, LA = ldb, LB = lda, LC = ldc;
    int prefetch = LIBXSMM_GEMM_PREFETCH_NONE; /* as the runtime: a 3-argument call */
    libxsmm_smmfunction f =
        libxsmm_smmdispatch(M, N, K, &LA, &LB, &LC, &one, &zero, &flags, &prefetch);
    if (!f) return 0;
    f(b, a, c);
    return 1;
  }
#endif
#ifdef HAVE_DNNL
  case L_DNNL:
    return dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c,
                      ldc) == dnnl_success;
#endif
  default:
    return 0;
  }
}

typedef struct Bufs {
  float *a, *b, *c;
  int64_t sa, sb, sc; /* per-product strides of a batch */
} Bufs;

static void fill(float *x, int64_t n, uint64_t s) {
  for (int64_t i = 0; i < n; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    x[i] = (float)((double)(s >> 40) / 16777216.0 * 2 - 1);
  }
}

static Bufs make(const Shape *S) {
  Bufs B;
  B.sa = (int64_t)S->m * S->k, B.sb = (int64_t)S->k * S->n, B.sc = (int64_t)S->m * S->n;
  B.a = aligned_alloc(64, (size_t)(B.sa * S->batch * 4 + 64));
  B.b = aligned_alloc(64, (size_t)(B.sb * S->batch * 4 + 64));
  B.c = aligned_alloc(64, (size_t)(B.sc * S->batch * 4 + 64));
  fill(B.a, B.sa * S->batch, 88172645463325252ull);
  fill(B.b, B.sb * S->batch, 1234567);
  memset(B.c, 0, (size_t)(B.sc * S->batch * 4));
  return B;
}

static int run_shape(int lib, const Shape *S, const Bufs *B) {
  int lda = S->ta ? S->m : S->k, ldb = S->tb ? S->k : S->n;
  for (int i = 0; i < S->batch; i++)
    if (!gemm(lib, S->ta, S->tb, S->m, S->n, S->k, B->a + i * B->sa, lda, B->b + i * B->sb, ldb,
              B->c + i * B->sc, S->n))
      return 0;
  return 1;
}

/* Seconds per call of the whole shape (all products of a batch), best of
 * enough repetitions to fill about 50 ms. */
static double time_shape(int lib, const Shape *S, const Bufs *B) {
  if (!run_shape(lib, S, B)) return -1;
  double t0 = now();
  int reps = 0;
  while (now() - t0 < 0.01) run_shape(lib, S, B), reps++;
  double per = (now() - t0) / reps, best = 1e30;
  int inner = (int)(0.01 / per) + 1;
  for (int r = 0; r < 5; r++) {
    double t1 = now();
    for (int i = 0; i < inner; i++) run_shape(lib, S, B);
    double dt = (now() - t1) / inner;
    if (dt < best) best = dt;
  }
  return best;
}

static uint64_t hash_bits(const float *x, int64_t n) {
  uint64_t h = 1469598103934665603ull;
  for (int64_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, &x[i], 4);
    h = (h ^ u) * 1099511628211ull;
  }
  return h;
}

/* Bits: two calls equal; a product cut in row blocks of 512 (as k_gemm
 * cuts 2048 rows) equal to the whole; max |error| / sum |a||b| against
 * double. */
static void check_bits(int lib, const Shape *S) {
  Bufs B = make(S);
  int64_t nc = B.sc * S->batch;
  if (!run_shape(lib, S, &B)) {
    printf("  %-9s cannot\n", lib_name[lib]);
    return;
  }
  uint64_t h1 = hash_bits(B.c, nc);
  run_shape(lib, S, &B);
  uint64_t h2 = hash_bits(B.c, nc);
  /* The library's own threads (2): libxsmm's kernels have none. */
  const char *thr = "-";
  if (lib != L_XSMM) {
    lib_threads = 2;
    openblas_set_num_threads(2);
#ifdef HAVE_DNNL
    omp_set_num_threads(2);
#endif
    run_shape(lib, S, &B);
    thr = hash_bits(B.c, nc) == h1 ? "same" : "differ";
    lib_threads = 1;
    openblas_set_num_threads(1);
#ifdef HAVE_DNNL
    omp_set_num_threads(1);
#endif
    run_shape(lib, S, &B);
  }
  const char *blocks = "-";
  if (S->batch == 1 && S->m == 2048 && !S->ta) {
    float *whole = malloc((size_t)nc * 4);
    memcpy(whole, B.c, (size_t)nc * 4);
    int lda = S->k, ldb = S->tb ? S->k : S->n;
    for (int lo = 0; lo < S->m; lo += 512)
      gemm(lib, 0, S->tb, 512, S->n, S->k, B.a + (int64_t)lo * lda, lda, B.b, ldb,
           B.c + (int64_t)lo * S->n, S->n);
    blocks = memcmp(whole, B.c, (size_t)nc * 4) ? "differ" : "same";
    free(whole);
  }
  double worst = 0;
  int lda = S->ta ? S->m : S->k, ldb = S->tb ? S->k : S->n;
  for (int p = 0; p < S->batch; p += 37) {
    const float *a = B.a + p * B.sa, *b = B.b + p * B.sb, *c = B.c + p * B.sc;
    for (int i = 0; i < S->m; i += 7)
      for (int j = 0; j < S->n; j += 5) {
        double s = 0, mag = 0;
        for (int l = 0; l < S->k; l++) {
          double x = S->ta ? a[(int64_t)l * lda + i] : a[(int64_t)i * lda + l];
          double y = S->tb ? b[(int64_t)j * ldb + l] : b[(int64_t)l * ldb + j];
          s += x * y, mag += fabs(x * y);
        }
        double e = fabs(c[(int64_t)i * S->n + j] - s) / (mag > 0 ? mag : 1);
        if (e > worst) worst = e;
      }
  }
  printf("  %-9s two calls %s, its 2 threads %s, 512-row blocks %s, max error %.2e (relative to "
         "sum |ab|)\n",
         lib_name[lib], h1 == h2 ? "same" : "DIFFER", thr, blocks, worst);
  free(B.a), free(B.b), free(B.c);
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 5;
  const char *only = argc > 2 ? argv[2] : NULL; /* shapes whose name has this */
  if (rounds < 1) rounds = 1;
  openblas_set_num_threads(1);
  const char *ct = getenv("OPENBLAS_CORETYPE");
  printf("openblas: %s, core %s (OPENBLAS_CORETYPE %s)\n", openblas_get_config(),
         openblas_get_corename(), ct ? ct : "unset");
#ifdef HAVE_BLIS
  printf("blis %s: sub-configuration %s\n", bli_info_get_version_str(),
         bli_arch_string(bli_arch_query_id()));
#endif
#ifdef HAVE_XSMM
  libxsmm_init();
  printf("libxsmm %s: target %s\n", LIBXSMM_VERSION, libxsmm_get_target_arch());
#endif
#ifdef HAVE_DNNL
  omp_set_num_threads(1);
  const dnnl_version_t *v = dnnl_version();
  printf("onednn %d.%d.%d: effective isa %d (dnnl_cpu_isa_t)\n", v->major, v->minor, v->patch,
         (int)dnnl_get_effective_cpu_isa());
#endif

  /* Warm-up: every library's first call (thread set-up, JIT). */
  for (int l = 0; l < NLIBS; l++)
    if (lib_present[l]) {
      Bufs B = make(&shapes[2]);
      for (int i = 0; i < 20; i++) run_shape(l, &shapes[2], &B);
      free(B.a), free(B.b), free(B.c);
    }

  double best[NSHAPES][NLIBS];
  for (int s = 0; s < NSHAPES; s++)
    for (int l = 0; l < NLIBS; l++) best[s][l] = 1e30;
  for (int r = 0; r < rounds; r++)
    for (int s = 0; s < NSHAPES; s++) {
      if (only && !strstr(shapes[s].what, only)) continue;
      Bufs B = make(&shapes[s]);
      for (int l = 0; l < NLIBS; l++) {
        int lib = (l + r) % NLIBS; /* a different library first each round */
        if (!lib_present[lib]) continue;
        double t = time_shape(lib, &shapes[s], &B);
        if (t < 0) best[s][lib] = -1;
        else if (t < best[s][lib]) best[s][lib] = t;
      }
      free(B.a), free(B.b), free(B.c);
    }

  printf("\nGFLOP/s, one thread, best of %d rounds\n%-46s", rounds, "shape (m,n,k ta tb x batch)");
  for (int l = 0; l < NLIBS; l++)
    if (lib_present[l]) printf(" %9s", lib_name[l]);
  printf("\n");
  for (int s = 0; s < NSHAPES; s++) {
    const Shape *S = &shapes[s];
    if (only && !strstr(S->what, only)) continue;
    printf("%-46s", S->what);
    double flop = 2.0 * S->m * S->n * S->k * S->batch;
    for (int l = 0; l < NLIBS; l++) {
      if (!lib_present[l]) continue;
      if (best[s][l] < 0) printf(" %9s", "n/a");
      else printf(" %9.1f", flop / best[s][l] / 1e9);
    }
    printf("\n");
  }
  printf("\nbits\n");
  for (int s = 0; s < NSHAPES - 1; s++) {
    if (only && !strstr(shapes[s].what, only)) continue;
    printf("%s\n", shapes[s].what);
    for (int l = 0; l < NLIBS; l++)
      if (lib_present[l]) check_bits(l, &shapes[s]);
  }
  return 0;
}

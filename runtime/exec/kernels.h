/* kernels.h - the forward kernel of every IR op, dispatched from ops.def.
 *
 * A kernel computes one node: out = op(in...), with shapes read from the
 * node's type and its inputs' types in f.  Kernels split their loops over
 * the workers of kc->pool (pool.h: static chunks, so results do not depend
 * on timing; NULL runs serially) and use GEMM from BLAS.  A kernel returns 0, or -1 with a message in kc->err for
 * run-time errors (an index out of range, a failing native function).
 */
#ifndef RA_KERNELS_H
#define RA_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../compiler/ir.h"
#include "pool.h"

typedef struct ExternFn ExternFn;   /* runtime/api/ffi.c */

typedef struct KernelCtx {
  Pool *pool;           /* workers for parallel loops; NULL = the caller only */
  int threads;          /* pool_size(pool), for reports (kernels use the pool) */
  uint64_t seed;        /* the run's seed (dropout masks) */
  int64_t step;         /* the training step (dropout masks) */
  int64_t example0;     /* the row of the global batch that is row 0 of this
                           one (a rank's share, docs/distributed.md): dropout
                           masks are keyed by the global element index */
  /* called after each node has run (the gradient reductions start there);
   * NULL: none */
  void (*node_done)(void *ud, int32_t node);
  void *node_ud;
  /* when not NULL: exec_run adds each node's seconds to node_s[node]
   * (`rac bench --profile`) */
  double *node_s;
  bool training;        /* dropout active */
  ExternFn *const *externs;  /* by extern index (EXTERN, EXTERN_GRAD) */
  int nexterns;
  char err[512];
} KernelCtx;

typedef int (*KernelFn)(KernelCtx *kc, const IrFunc *f, const IrNode *n,
                        void *out, void *const *in);

#define OP(U, l, a, fl, g) int k_##l(KernelCtx *, const IrFunc *, const IrNode *, void *, void *const *);
#include "../../compiler/ops.def"
#undef OP

extern const KernelFn kernel_table[OP_COUNT];

/* GEMM on row-major matrices: C = alpha op(A) op(B) + beta C (sgemm); large
 * products are split by rows or columns over the pool's workers (NULL: one
 * thread). */
void k_gemm(Pool *pool, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
            float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
            float beta, float *c, int64_t ldc);
/* k_gemm, then C[i, j] = bias[j] + C[i, j] (bias NULL: none), each block
 * right after its product, while it is in the worker's cache. */
void k_gemm_bias(Pool *pool, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                 int64_t ldc, const float *bias);

/* The library k_gemm's products go to ("libxsmm" or "openblas") and, in
 * *kernels when not NULL, the kernel set it chose on this CPU (libxsmm's
 * cpuid target such as "cpx" or "hsw"; OpenBLAS's core such as
 * "Cooperlake" or "Haswell"). */
const char *k_gemm_backend(const char **kernels);

#endif

/* bench_kernels.c - micro-benchmarks of the kernels at the sizes of the
 * reference model (a 2-layer Transformer encoder classifier: d=128, 8 heads,
 * sequence 64, batch 32, ffn 512), forward and backward shapes, with 1 and 2
 * threads, and a few of the medium model's (bench/medium.ra: its weight
 * gradients, the heads' split and merge).  Prints one line per kernel:
 * median time and, for products, GFLOP/s.  Compare with torch_kernels.py
 * (the reference model's shapes, same thread counts).
 *
 *   make -C bench/micro run      (or build/bench/bench_kernels [threads...])
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../compiler/ir.h"
#include "../../runtime/exec/kernels.h"
#include "../../runtime/exec/pool.h"
#include "../../runtime/train/optim.h"

#define MAXV 64  /* values of the benchmark function */

typedef struct B {
  Arena ar;
  IrFunc *f;
  IrBuilder ib;  /* nodes through the shape rules; a misfit ends the run */
  void *buf[MAXV];
} B;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void misfit(void *ud, Span at, const char *msg) {
  fprintf(stderr, "bench_kernels: %s\n", msg);
  exit(1);
}

static int32_t leaf(B *b, int rank, const int64_t *d) {
  IrNode n = {.op = OP_PARAM, .type = ir_type_make(IR_F32, rank, d, false)};
  int32_t id = ir_op(&b->ib, n);
  if (id >= MAXV) misfit(NULL, SPAN_NONE, "more values than MAXV");
  int64_t m = ir_numel(&n.type);
  float *x = malloc((size_t)m * 4);
  uint64_t s = 88172645463325252ull + (uint64_t)id;
  for (int64_t i = 0; i < m; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    x[i] = (float)((double)(s >> 40) / 16777216.0 * 2 - 1);
  }
  b->buf[id] = x;
  return id;
}

/* Node id (from the builder b->ib) with an output buffer. */
static int32_t buffered(B *b, int32_t id) {
  if (id >= MAXV) misfit(NULL, SPAN_NONE, "more values than MAXV");
  b->buf[id] = calloc((size_t)ir_numel(&b->f->nodes[id].type), 4);
  return id;
}

static int32_t node(B *b, IrNode n) { return buffered(b, ir_op(&b->ib, n)); }

/* Median seconds of one call over enough repetitions. */
static double time_node(B *b, int32_t v, Pool *pool) {
  KernelCtx kc;
  memset(&kc, 0, sizeof kc);
  kc.pool = pool;
  kc.threads = pool_size(pool);
  kc.training = true;
  const IrNode *n = &b->f->nodes[v];
  void *in[IR_MAX_IN];
  for (int k = 0; k < n->nin; k++) in[k] = b->buf[n->in[k]];
  double ts[41];
  int reps = 1;
  /* warm up and pick a repetition count of about 2 ms per sample */
  double t0 = now();
  kernel_table[n->op](&kc, b->f, n, b->buf[v], in);
  double one = now() - t0;
  if (one < 2e-3) reps = (int)(2e-3 / (one > 1e-7 ? one : 1e-7)) + 1;
  for (int s = 0; s < 41; s++) {
    t0 = now();
    for (int r = 0; r < reps; r++)
      if (kernel_table[n->op](&kc, b->f, n, b->buf[v], in)) {
        fprintf(stderr, "%s: %s\n", ir_op_info[n->op].name, kc.err);
        exit(1);
      }
    ts[s] = (now() - t0) / reps;
  }
  for (int i = 1; i < 41; i++)
    for (int j = i; j > 0 && ts[j] < ts[j - 1]; j--) {
      double t = ts[j];
      ts[j] = ts[j - 1];
      ts[j - 1] = t;
    }
  return ts[20];
}

/* Median seconds of one AdamW update (runtime/train/optim.c) of n weights. */
static double time_adamw(int64_t n, Pool *pool) {
  float *w = calloc((size_t)n, 4), *g = calloc((size_t)n, 4), *m = calloc((size_t)n, 4),
        *v = calloc((size_t)n, 4);
  if (!w || !g || !m || !v) misfit(NULL, SPAN_NONE, "out of memory");
  for (int64_t i = 0; i < n; i++) w[i] = (float)(i % 97) * 0.01f, g[i] = (float)(i % 13) * 1e-3f;
  Optim o = {.kind = OPT_ADAMW, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01,
             .n = n, .m = m, .v = v, .pool = pool};
  double ts[41];
  optim_step(&o, w, g, 1e-3, NULL);
  for (int s = 0; s < 41; s++) {
    double t0 = now();
    optim_step(&o, w, g, 1e-3, NULL);
    ts[s] = now() - t0;
  }
  for (int i = 1; i < 41; i++)
    for (int j = i; j > 0 && ts[j] < ts[j - 1]; j--) {
      double t = ts[j];
      ts[j] = ts[j - 1];
      ts[j - 1] = t;
    }
  free(w);
  free(g);
  free(m);
  free(v);
  return ts[20];
}

static void report(const char *name, double sec, double flops) {
  if (flops > 0)
    printf("  %-34s %9.1f us  %7.1f GFLOP/s\n", name, sec * 1e6, flops / sec * 1e-9);
  else
    printf("  %-34s %9.1f us\n", name, sec * 1e6);
}

#define D(...) ((const int64_t[]){__VA_ARGS__})

/* A FUSED node over inputs in[] running the micro-ops m[0..n) (rowop as in
 * IrFused), with an output buffer. */
static int32_t fused(B *b, const int32_t *in, int nin, const IrMicro *m, int n, int rowop) {
  IrMicro *ops = arena_alloc(&b->ar, (size_t)n * sizeof *ops);
  IrFused *p = arena_alloc(&b->ar, sizeof *p);
  if (!ops || !p) misfit(NULL, SPAN_NONE, "out of memory");
  memcpy(ops, m, (size_t)n * sizeof *ops);
  *p = (IrFused){n, rowop, ops};
  IrNode nd = {.op = OP_FUSED, .nin = (uint8_t)nin, .fused = p};
  for (int k = 0; k < nin; k++) nd.in[k] = in[k];
  return node(b, nd);
}

#define E(j) IR_FUSED_EXT(j)

static int32_t matmul(B *b, int32_t x, int32_t y, int ta, int tb) {
  return buffered(b, ir_matmul(&b->ib, x, y, ta, tb));
}

int main(int argc, char **argv) {
  int tlist[8] = {1, 2}, nt = 2;
  if (argc > 1) {
    nt = 0;
    for (int i = 1; i < argc && nt < 8; i++) tlist[nt++] = atoi(argv[i]);
  }
  const int64_t Bn = 32, T = 64, d = 128, H = 8, hd = 16, F = 512, BT = Bn * T;
  for (int ti = 0; ti < nt; ti++) {
    Pool *th = pool_new(ra_alloc_default(), tlist[ti]);
    printf("threads %d\n", pool_size(th));
    B b;
    memset(&b, 0, sizeof b);
    arena_init(&b.ar, ra_alloc_default());
    b.f = ir_func_new(&b.ar, "bench", Bn);
    b.ib = ir_builder(b.f, SPAN_NONE);
    b.ib.report = misfit;
    /* projections (one GEMM over B*T rows) and their backward forms */
    int32_t x = leaf(&b, 3, D(Bn, T, d)), w = leaf(&b, 2, D(d, d));
    int32_t w1 = leaf(&b, 2, D(d, F)), w2 = leaf(&b, 2, D(F, d));
    int32_t h = leaf(&b, 3, D(Bn, T, F));
    int32_t x2 = leaf(&b, 2, D(BT, d)), h2 = leaf(&b, 2, D(BT, F));
    struct { const char *name; int32_t v; double fl; } mm[] = {
        {"matmul x[B,T,128] w[128,128]", matmul(&b, x, w, 0, 0), 2.0 * BT * d * d},
        {"matmul x[B,T,128] w[128,512]", matmul(&b, x, w1, 0, 0), 2.0 * BT * d * F},
        {"matmul h[B,T,512] w[512,128]", matmul(&b, h, w2, 0, 0), 2.0 * BT * F * d},
        {"dx = dy[B,T,512] w1^T", matmul(&b, h, w1, 0, 1), 2.0 * BT * d * F},
        {"dw = x^T[128,BT] dy[BT,512]", matmul(&b, x2, h2, 1, 0), 2.0 * BT * d * F},
    };
    for (size_t i = 0; i < sizeof mm / sizeof *mm; i++)
      report(mm[i].name, time_node(&b, mm[i].v, th), mm[i].fl);
    /* the medium model's weight gradients X^T dY (k = batch x sequence =
     * 2048), and the same with X^T made first (ta = 0) */
    {
      int32_t X = leaf(&b, 2, D(2048, 256)), XT = leaf(&b, 2, D(256, 2048));
      int32_t G = leaf(&b, 2, D(2048, 1024)), G2 = leaf(&b, 2, D(2048, 256));
      double f1 = 2.0 * 2048 * 256 * 1024, f2 = 2.0 * 2048 * 256 * 256;
      report("medium dW1 = x^T[256,2048] dy", time_node(&b, matmul(&b, X, G, 1, 0), th), f1);
      report("  the same, x^T made first", time_node(&b, matmul(&b, XT, G, 0, 0), th), f1);
      report("medium dWq = x^T dy[2048,256]", time_node(&b, matmul(&b, X, G2, 1, 0), th), f2);
      report("  the same, x^T made first", time_node(&b, matmul(&b, XT, G2, 0, 0), th), f2);
    }
    /* attention products: 256 small GEMMs */
    int32_t q = leaf(&b, 4, D(Bn, H, T, hd)), k = leaf(&b, 4, D(Bn, H, T, hd));
    int32_t p = leaf(&b, 4, D(Bn, H, T, T));
    double af = 2.0 * Bn * H * T * T * hd;
    report("scores q k^T [B,H,64,16]", time_node(&b, matmul(&b, q, k, 0, 1), th), af);
    report("context p v [B,H,64,64]x[..,64,16]", time_node(&b, matmul(&b, p, k, 0, 0), th), af);
    report("dp = dctx v^T", time_node(&b, matmul(&b, q, k, 0, 1), th), af);
    report("dv = p^T dctx", time_node(&b, matmul(&b, p, q, 1, 0), th), af);
    /* row-wise kernels */
    int32_t sm = node(&b, (IrNode){.op = OP_SOFTMAX, .nin = 1, .in = {p}});
    report("softmax [B,H,64,64]", time_node(&b, sm, th), 0);
    report("softmax_grad", time_node(&b, node(&b, (IrNode){.op = OP_SOFTMAX_GRAD, .nin = 2, .in = {sm, p}}), th), 0);
    IrNode ln = {.op = OP_LAYERNORM, .nin = 1, .in = {x}};
    ln.attr.f[0] = 1e-5;
    report("layernorm [B,T,128]", time_node(&b, node(&b, ln), th), 0);
    IrNode lg = {.op = OP_LAYERNORM_GRAD, .nin = 2, .in = {x, x}};
    lg.attr.f[0] = 1e-5;
    report("layernorm_grad", time_node(&b, node(&b, lg), th), 0);
    report("gelu [B,T,512]", time_node(&b, node(&b, (IrNode){.op = OP_GELU, .nin = 1, .in = {h}}), th), 0);
    report("gelu_grad", time_node(&b, node(&b, (IrNode){.op = OP_GELU_GRAD, .nin = 2, .in = {h, h}}), th), 0);
    int32_t bias = leaf(&b, 1, D(F));
    report("add bias [B,T,512]+[512]", time_node(&b, node(&b, (IrNode){.op = OP_ADD, .nin = 2, .in = {h, bias}}), th), 0);
    IrNode st = {.op = OP_SUM_TO, .nin = 1, .in = {h}};
    st.type = ir_type_make(IR_F32, 1, D(F), false);
    report("sum_to [B,T,512]->[512]", time_node(&b, node(&b, st), th), 0);
    int32_t x4 = leaf(&b, 4, D(Bn, T, H, hd));
    IrNode tp = {.op = OP_TRANSPOSE, .nin = 1, .in = {x4}};
    tp.attr.i[0] = 0, tp.attr.i[1] = 2, tp.attr.i[2] = 1, tp.attr.i[3] = 3;
    report("transpose [B,T,H,16] (0,2,1,3)", time_node(&b, node(&b, tp), th), 0);
    /* the heads' split and merge at the medium model's size (2 MiB) */
    int32_t xs = leaf(&b, 4, D(16, 128, 8, 32)), xm = leaf(&b, 4, D(16, 8, 128, 32));
    tp.in[0] = xs;
    report("split [16,128,8,32] (0,2,1,3)", time_node(&b, node(&b, tp), th), 0);
    tp.in[0] = xm;
    report("merge [16,8,128,32] (0,2,1,3)", time_node(&b, node(&b, tp), th), 0);
    /* fused chains (compiler/fuse.c) against their nodes one by one */
    {
      IrType th_ = b.f->nodes[h].type, tp_ = b.f->nodes[p].type, tx_ = b.f->nodes[x].type;
      IrType tb_ = ir_type_make(IR_F32, 1, D(F), false), td_ = ir_type_make(IR_F32, 1, D(d), false);
      int32_t g = leaf(&b, 1, D(d));
      int32_t sa = node(&b, (IrNode){.op = OP_ADD, .nin = 2, .in = {h, bias}});
      int32_t sg = node(&b, (IrNode){.op = OP_GELU, .nin = 1, .in = {sa}});
      double t2 = time_node(&b, sa, th) + time_node(&b, sg, th);
      IrMicro ag[] = {{.op = OP_ADD, .nin = 2, .in = {E(0), E(1)}, .type = th_},
                      {.op = OP_GELU, .nin = 1, .in = {0}, .type = th_}};
      report("add bias, gelu: 2 nodes", t2, 0);
      IrMicro g1[] = {{.op = OP_GELU, .nin = 1, .in = {E(0)}, .type = th_}};
      report("  fused {gelu} alone", time_node(&b, fused(&b, (int32_t[]){h}, 1, g1, 1, -1), th), 0);
      report("  fused {add; gelu}", time_node(&b, fused(&b, (int32_t[]){h, bias}, 2, ag, 2, -1), th), 0);
      IrNode sc = {.op = OP_SCALE, .nin = 1, .in = {p}, .attr.f = {0.25}};
      int32_t ss = node(&b, sc);
      int32_t sx = node(&b, (IrNode){.op = OP_SOFTMAX, .nin = 1, .in = {ss}});
      report("scale, softmax [B,H,64,64]: 2 nodes", time_node(&b, ss, th) + time_node(&b, sx, th), 0);
      IrMicro ssm[] = {{.op = OP_SCALE, .nin = 1, .in = {E(0)}, .attr.f = {0.25}, .type = tp_},
                       {.op = OP_SOFTMAX, .nin = 1, .in = {0}, .type = tp_}};
      report("  fused {scale; softmax}", time_node(&b, fused(&b, (int32_t[]){p}, 1, ssm, 2, 1), th), 0);
      int32_t m1 = node(&b, (IrNode){.op = OP_MUL, .nin = 2, .in = {g, x}});
      IrNode lg2 = {.op = OP_LAYERNORM_GRAD, .nin = 2, .in = {x, m1}, .attr.f = {1e-5}};
      int32_t l2 = node(&b, lg2);
      int32_t a2 = node(&b, (IrNode){.op = OP_ADD, .nin = 2, .in = {x, l2}});
      report("mul, layernorm_grad, add: 3 nodes",
             time_node(&b, m1, th) + time_node(&b, l2, th) + time_node(&b, a2, th), 0);
      IrMicro mla[] = {{.op = OP_MUL, .nin = 2, .in = {E(0), E(1)}, .type = tx_},
                       {.op = OP_LAYERNORM_GRAD, .nin = 2, .in = {E(1), 0}, .attr.f = {1e-5}, .type = tx_},
                       {.op = OP_ADD, .nin = 2, .in = {E(1), 1}, .type = tx_}};
      report("  fused {mul; layernorm_grad; add}", time_node(&b, fused(&b, (int32_t[]){g, x}, 2, mla, 3, 1), th), 0);
      IrNode st2 = {.op = OP_SUM_TO, .nin = 1, .in = {m1}, .type = td_};
      report("mul, sum_to [B,T,128]->[128]: 2 nodes", time_node(&b, m1, th) + time_node(&b, node(&b, st2), th), 0);
      IrMicro ms[] = {{.op = OP_MUL, .nin = 2, .in = {E(0), E(1)}, .type = tx_},
                      {.op = OP_SUM_TO, .nin = 1, .in = {0}, .type = td_}};
      report("  fused {mul; sum_to}", time_node(&b, fused(&b, (int32_t[]){g, x}, 2, ms, 2, 1), th), 0);
      (void)tb_;
    }
    IrNode dr = {.op = OP_DROPOUT, .nin = 1, .in = {p}};
    dr.attr.f[0] = 0.1;
    report("dropout [B,H,64,64]", time_node(&b, node(&b, dr), th), 0);
    report("adamw 917,768 weights", time_adamw(917768, th), 0);
    for (int i = 0; i < MAXV; i++) free(b.buf[i]);
    arena_free(&b.ar);
    pool_free(th);
  }
  return 0;
}

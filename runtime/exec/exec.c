/* exec.c - the IR interpreter: binds an IrFunc and its memory plan to
 * storage and runs each node's kernel in order (see exec.h).
 *
 * Storage: one arena of plan->arena_bytes (64-byte aligned) for every
 * intermediate, a constant buffer filled once, the model's parameters and
 * the caller's input buffers.  A VIEW value shares the storage of another.
 */
#include "exec.h"

#include "exec_jit.h"

#include "../../base/clock.h"

#include <stdio.h>
#include <string.h>

#define EXEC_ALIGN 64

/* The Exec and what it owns; the Exec comes first so the two convert. */
typedef struct ExecOwned {
  Exec ex;
  void *arena_raw;
  size_t arena_raw_bytes;
  void *consts_raw;
  size_t consts_raw_bytes;
  void **inputs_own;
  size_t inputs_bytes;
  size_t redirect_bytes;
  char *scratch;        /* the chains' scratch, one block a worker */
  size_t scratch_bytes; /* all of it */
  int scratch_workers;
} ExecOwned;

static void *aligned_block(RaAlloc *a, size_t bytes, void **raw, size_t *raw_bytes) {
  *raw_bytes = bytes + EXEC_ALIGN;
  *raw = ra_malloc(a, *raw_bytes);
  if (!*raw) return NULL;
  uintptr_t p = ((uintptr_t)*raw + EXEC_ALIGN - 1) & ~(uintptr_t)(EXEC_ALIGN - 1);
  return (void *)p;
}

Exec *exec_new(RaAlloc alloc, const IrFunc *f, const MemPlan *plan, float *params,
               const int64_t *param_offset, int ninputs) {
  if (!f || !plan) return NULL;
  ExecOwned *o = ra_calloc(&alloc, 1, sizeof *o);
  if (!o) return NULL;
  Exec *ex = &o->ex;
  ex->alloc = alloc;
  ex->f = f;
  ex->plan = plan;
  ex->params = params;
  ex->param_offset = param_offset;
  ex->ninputs = ninputs;
  ex->err_node = -1;
  ex->arena = aligned_block(&ex->alloc, plan->arena_bytes, &o->arena_raw, &o->arena_raw_bytes);
  ex->consts = aligned_block(&ex->alloc, plan->const_bytes, &o->consts_raw, &o->consts_raw_bytes);
  o->inputs_bytes = (size_t)(ninputs > 0 ? ninputs : 1) * sizeof(void *);
  o->inputs_own = ra_calloc(&ex->alloc, 1, o->inputs_bytes);
  ex->inputs = o->inputs_own;
  if (!ex->arena || !ex->consts || !o->inputs_own) {
    exec_free(ex);
    return NULL;
  }
  /* constants are filled once */
  KernelCtx kc;
  memset(&kc, 0, sizeof kc);  /* no pool: on this thread */
  kc.threads = 1;
  for (int i = 0; i < f->n; i++) {
    const IrNode *n = &f->nodes[i];
    if (n->op == OP_CONST && plan->kind[i] == STORE_CONST)
      k_const(&kc, f, n, ex->consts + plan->offset[i], NULL);
  }
  return ex;
}

void exec_free(Exec *ex) {
  if (!ex) return;
  ExecOwned *o = (ExecOwned *)ex;
  RaAlloc a = ex->alloc;
  ra_free_mem(&a, o->arena_raw, o->arena_raw_bytes);
  ra_free_mem(&a, o->consts_raw, o->consts_raw_bytes);
  ra_free_mem(&a, o->inputs_own, o->inputs_bytes);
  if (ex->redirect) ra_free_mem(&a, ex->redirect, o->redirect_bytes);
  if (o->scratch) ra_free_mem(&a, o->scratch, o->scratch_bytes);
  ra_free_mem(&a, o, sizeof *o);
}

void *exec_ptr(const Exec *ex, int32_t v) {
  const MemPlan *p = ex->plan;
  for (int hops = 0; hops <= ex->f->n; hops++) {
    if (v < 0 || v >= ex->f->n) return NULL;
    const IrNode *n = &ex->f->nodes[v];
    switch (p->kind[v]) {
    case STORE_ARENA:
      return ex->redirect && ex->redirect[v] ? ex->redirect[v] : ex->arena + p->offset[v];
    case STORE_CONST:
      return ex->consts + p->offset[v];
    case STORE_PARAM: {
      int64_t k = n->attr.i[0];
      if (!ex->params || !ex->param_offset || k < 0) return NULL;
      return ex->params + ex->param_offset[k];
    }
    case STORE_INPUT: {
      int64_t k = n->attr.i[0];
      if (!ex->inputs || k < 0 || k >= ex->ninputs) return NULL;
      return ex->inputs[k];
    }
    case STORE_VIEW:
      v = (int32_t)p->offset[v];
      break;
    case STORE_SCRATCH: /* one slice at a time, inside its chain's run */
    default:
      return NULL;
    }
  }
  return NULL;  /* a cycle of views */
}

int exec_redirect(Exec *ex, int32_t v, void *ptr) {
  if (!ex || !ptr || v < 0 || v >= ex->f->n || ex->plan->kind[v] != STORE_ARENA ||
      ex->plan->last_use[v] < ex->f->n)
    return -1;
  if (!ex->redirect) {
    ExecOwned *o = (ExecOwned *)ex;
    o->redirect_bytes = sizeof *ex->redirect * (size_t)ex->f->n;
    ex->redirect = ra_calloc(&ex->alloc, 1, o->redirect_bytes);
    if (!ex->redirect) return -1;
  }
  ex->redirect[v] = ptr;
  return 0;
}

static int run_fail(Exec *ex, KernelCtx *kc, int32_t i, const char *what) {
  const IrNode *n = &ex->f->nodes[i];
  ex->err_node = i;
  snprintf(kc->err, sizeof kc->err, "%s %%%d: %s", ir_op_info[n->op].name, (int)i, what);
  return -1;
}

/* ---- chains (compiler/chain.c): slice by slice through their nodes ---- */

/* What a worker records of a chain's run, after its scratch values in its
 * block: the seconds spent in each node when profiling, and its first
 * failure (the node + 1, or 0). */
typedef struct ChainWorker {
  double secs[CHAIN_MAX];
  int failed;
  char err[400];
} ChainWorker;

/* A worker's block: the chain's scratch values, then its ChainWorker. */
static size_t scratch_block(const MemPlan *p) {
  return (p->scratch_bytes + sizeof(ChainWorker) + EXEC_ALIGN - 1) & ~(size_t)(EXEC_ALIGN - 1);
}

/* Scratch for the pool's workers (made on the first run that needs it). */
static char *scratch_for(Exec *ex, int workers) {
  ExecOwned *o = (ExecOwned *)ex;
  if (o->scratch && o->scratch_workers >= workers) return o->scratch;
  if (o->scratch) ra_free_mem(&ex->alloc, o->scratch, o->scratch_bytes);
  o->scratch_bytes = scratch_block(ex->plan) * (size_t)workers + EXEC_ALIGN;
  o->scratch = ra_malloc(&ex->alloc, o->scratch_bytes);
  o->scratch_workers = o->scratch ? workers : 0;
  return o->scratch;
}

/* Where a chain's value lives: its whole tensor (step: a slice's bytes;
 * 0 for an operand every slice reads whole), or a worker's scratch. */
typedef struct ChainVal {
  char *base;
  size_t step;
  size_t at;            /* scratch: the offset in the worker's block */
  bool scratch;
} ChainVal;

typedef struct ChainRun {
  Exec *ex;
  const KernelCtx *kc;
  const Chain *c;
  char *scratch;        /* aligned; worker w's block at w * block */
  size_t block;
  bool timed;
  ChainVal val[CHAIN_MAX * (IR_MAX_IN + 1)]; /* by slice-function node */
} ChainRun;

static ChainWorker *chain_worker(const ChainRun *R, int w) {
  return (ChainWorker *)(void *)(R->scratch + (size_t)w * R->block + R->ex->plan->scratch_bytes);
}

static void chain_slices(void *arg, int64_t lo, int64_t hi, int worker) {
  ChainRun *R = arg;
  const Chain *c = R->c;
  const IrFunc *sf = c->slice;
  KernelCtx kc = *R->kc;  /* every kernel on this thread */
  kc.pool = NULL;
  kc.threads = 1;
  kc.node_s = NULL;
  kc.node_done = NULL;
  char *scr = R->scratch + (size_t)worker * R->block;
  ChainWorker *cw = chain_worker(R, worker);
  int len = c->last - c->first + 1;
  for (int64_t s = lo; s < hi; s++)
    for (int j = 0; j < len; j++) {
      int32_t q = c->nouter + j;
      const IrNode *n = &sf->nodes[q];
      void *in[IR_MAX_IN];
      for (int k = 0; k < n->nin; k++) {
        const ChainVal *v = &R->val[n->in[k]];
        in[k] = v->scratch ? scr + v->at : v->base + v->step * (size_t)s;
      }
      const ChainVal *v = &R->val[q];
      void *out = v->scratch ? scr + v->at : v->base + v->step * (size_t)s;
      double t0 = R->timed ? clock_seconds() : 0;
      if (!(R->ex->jit && exec_jit_slice(R->ex, c->first + j, c->slices, out, in)) &&
          kernel_table[n->op](&kc, sf, n, out, in)) {
        cw->failed = j + 1;
        memcpy(cw->err, kc.err, sizeof cw->err - 1); /* cut at 399 bytes */
        return;
      }
      if (R->timed) cw->secs[j] += clock_seconds() - t0;
    }
}

static int run_chain(Exec *ex, KernelCtx *kc, const Chain *c) {
  const MemPlan *p = ex->plan;
  int workers = pool_workers(kc->pool, c->slices, 1);
  char *raw = scratch_for(ex, workers);
  if (!raw) {
    ex->err_node = c->first;
    snprintf(kc->err, sizeof kc->err, "out of memory for %d workers' scratch of %zu bytes",
             workers, p->scratch_bytes);
    return -1;
  }
  ChainRun *R = &(ChainRun){.ex = ex, .kc = kc, .c = c, .block = scratch_block(p),
                            .timed = kc->node_s != NULL};
  R->scratch = (char *)(((uintptr_t)raw + EXEC_ALIGN - 1) & ~(uintptr_t)(EXEC_ALIGN - 1));
  int len = c->last - c->first + 1;
  for (int q = 0; q < c->nouter + len; q++) {
    int32_t v = q < c->nouter ? c->ext[q] : c->first + (q - c->nouter);
    bool whole = q < c->nouter && !c->ext_sliced[q];
    ChainVal *cv = &R->val[q];
    if (p->kind[v] == STORE_SCRATCH) {
      cv->scratch = true;
      cv->at = (size_t)p->offset[v];
      continue;
    }
    cv->base = exec_ptr(ex, v);
    if (!cv->base) {
      ex->err_node = v;
      snprintf(kc->err, sizeof kc->err, "%s %%%d: a value of a chain has no storage",
               ir_op_info[ex->f->nodes[v].op].name, (int)v);
      return -1;
    }
    cv->step = whole ? 0 : chain_slice_bytes(c, &ex->f->nodes[v].type);
  }
  for (int w = 0; w < workers; w++) memset(chain_worker(R, w), 0, sizeof(ChainWorker));
  double t0 = R->timed ? clock_seconds() : 0;
  pool_for(kc->pool, c->slices, 1, chain_slices, R);
  for (int w = 0; w < workers; w++) {
    const ChainWorker *cw = chain_worker(R, w);
    if (!cw->failed) continue;
    ex->err_node = c->first + cw->failed - 1;
    snprintf(kc->err, sizeof kc->err, "%s %%%d: %s",
             ir_op_info[ex->f->nodes[ex->err_node].op].name, (int)ex->err_node, cw->err);
    return -1;
  }
  if (R->timed) {
    /* the chain's time shared among its nodes as the workers spent it */
    double wall = clock_seconds() - t0, sum = 0, sj[CHAIN_MAX] = {0};
    for (int w = 0; w < workers; w++)
      for (int j = 0; j < len; j++) sj[j] += chain_worker(R, w)->secs[j];
    for (int j = 0; j < len; j++) sum += sj[j];
    for (int j = 0; j < len; j++) kc->node_s[c->first + j] += sum > 0 ? wall * sj[j] / sum : wall / len;
  }
  if (kc->node_done)
    for (int32_t i = c->first; i <= c->last; i++) kc->node_done(kc->node_ud, i);
  return 0;
}

int exec_run(Exec *ex, KernelCtx *kc) {
  const IrFunc *f = ex->f;
  const MemPlan *p = ex->plan;
  ex->err_node = -1;
  kc->err[0] = 0;
  int next_chain = 0;
  for (int32_t i = 0; i < f->n; i++) {
    const IrNode *n = &f->nodes[i];
    if (next_chain < p->nchains && p->chains[next_chain].first == i) {
      const Chain *c = &p->chains[next_chain++];
      if (run_chain(ex, kc, c)) return -1;
      i = c->last;
      continue;
    }
    if (n->op >= OP_COUNT) return run_fail(ex, kc, i, "unknown op");
    if (ir_op_info[n->op].flags & OPF_LEAF) {
      if (n->op == OP_CONST && p->kind[i] != STORE_CONST) {
        void *out = exec_ptr(ex, i);
        if (!out) return run_fail(ex, kc, i, "constant has no storage");
        k_const(kc, f, n, out, NULL);
      } else if (n->op == OP_INPUT && !exec_ptr(ex, i)) {
        char msg[256];
        snprintf(msg, sizeof msg, "input '%s' (index %lld) was not given",
                 n->name ? n->name : "?", (long long)n->attr.i[0]);
        return run_fail(ex, kc, i, msg);
      } else if (n->op == OP_PARAM && !exec_ptr(ex, i)) {
        return run_fail(ex, kc, i, "no parameter buffer");
      }
      if (kc->node_done) kc->node_done(kc->node_ud, i);
      continue;
    }
    void *in[IR_MAX_IN];
    int nin = n->nin <= IR_MAX_IN ? n->nin : IR_MAX_IN;
    for (int k = 0; k < nin; k++) {
      in[k] = exec_ptr(ex, n->in[k]);
      if (!in[k]) return run_fail(ex, kc, i, "an operand has no storage");
    }
    void *out = exec_ptr(ex, i);
    if (!out) return run_fail(ex, kc, i, "the result has no storage");
    double t0 = kc->node_s ? clock_seconds() : 0;
    if (!(ex->jit && exec_jit_node(ex, kc, i, out, in)) &&
        kernel_table[n->op](kc, f, n, out, in)) {
      ex->err_node = i;
      if (!kc->err[0]) run_fail(ex, kc, i, "kernel failed");
      return -1;
    }
    if (kc->node_s) kc->node_s[i] += clock_seconds() - t0;
    if (kc->node_done) kc->node_done(kc->node_ud, i);
  }
  return 0;
}

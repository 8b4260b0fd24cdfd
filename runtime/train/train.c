/* train.c - the training loop, evaluation and benchmark over the IR
 * interpreter.  One step: batch -> step IR (forward, loss, gradients) ->
 * particle updates -> clipping -> optimizer; then progress, evaluation,
 * logs and checkpoints.  Everything is deterministic for a given seed and
 * thread count. */
#include "train.h"

#include "../../base/clock.h"
#include "profile.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../compiler/autodiff.h"
#include "../../include/ra.h"
#include "../../base/file.h"
#include "../../base/utf8.h"
#include "../exec/exec.h"
#include "../exec/exec_jit.h"
#include "../exec/kernels.h"
#include "dist.h"
#include "gradsync.h"
#include "optim.h"
#include "particles.h"
#include "../exec/rng.h"
#include "../exec/sysmem.h"

/* ---- small helpers ---- */

static int fail(char *err, size_t errlen, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return code;
}

static void emit(const RunOptions *o, const char *fmt, ...) {
  if (!o->log) return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  o->log(o->log_ud, line);
}

/* ---- model state ---- */

int mstate_init(ModelState *ms, RaAlloc alloc, const Model *m, uint64_t seed) {
  memset(ms, 0, sizeof *ms);
  ms->alloc = alloc;
  ms->name = m->name;
  ms->params = m->params;
  ms->nparams = m->nparams;
  ms->nweights = m->nweights;
  ms->groups = m->groups;
  ms->ngroups = m->ngroups;
  ms->w = ra_calloc(&alloc, (size_t)(m->nweights ? m->nweights : 1), sizeof(float));
  ms->offsets = ra_calloc(&alloc, (size_t)(m->nparams ? m->nparams : 1), sizeof(int64_t));
  if (!ms->w || !ms->offsets) {
    mstate_free(ms);
    return RA_ENOMEM;
  }
  for (int i = 0; i < m->nparams; i++) ms->offsets[i] = m->params[i].offset;
  for (int i = 0; i < m->nparams; i++) {
    const ParamInfo *pi = &m->params[i];
    float *x = ms->w + pi->offset;
    int64_t n = ir_numel(&pi->type);
    switch (pi->init) {
    case INIT_ZEROS: break;
    case INIT_ONES:
      for (int64_t k = 0; k < n; k++) x[k] = 1.0f;
      break;
    case INIT_NORMAL:
      rng_fill_normal(seed, RNG_STREAM_INIT + (uint64_t)i, x, n, 0.0f, (float)pi->scale);
      break;
    case INIT_UNIFORM:
      rng_fill_uniform(seed, RNG_STREAM_INIT + (uint64_t)i, x, n, -(float)pi->scale,
                       (float)pi->scale);
      break;
    }
  }
  ms->initialized = true;
  return 0;
}

void mstate_free(ModelState *ms) {
  size_t n = (size_t)(ms->nweights ? ms->nweights : 1) * sizeof(float);
  ra_free_mem(&ms->alloc, ms->w, n);
  ra_free_mem(&ms->alloc, ms->opt_m, n);
  ra_free_mem(&ms->alloc, ms->opt_v, n);
  ra_free_mem(&ms->alloc, ms->offsets, (size_t)(ms->nparams ? ms->nparams : 1) * sizeof(int64_t));
  data_vocab_free(ms->vocab);
  if (ms->from) ra_free_mem(&ms->alloc, ms->from, strlen(ms->from) + 1);
  memset(ms, 0, sizeof *ms);
}

/* ---- a compiled function bound to storage ---- */

typedef struct Bound {
  RaAlloc alloc;
  Model *m;
  IrFunc *f;
  MemPlan *plan;
  Exec *ex;
  int nin;               /* inputs + targets */
  void *in[16];
  size_t in_bytes[16];
  double jit_ms;         /* compiling its loops took (0: cached or no JIT) */
} Bound;

static void bound_free(Bound *b) {
  if (b->ex) exec_free(b->ex);
  for (int i = 0; i < b->nin; i++) ra_free_mem(&b->alloc, b->in[i], b->in_bytes[i]);
  memset(b, 0, sizeof *b);
}

/* The per-example type of model input k (targets follow inputs). */
static const ModelVar *model_var(const Model *m, int k) {
  return k < m->ninputs ? &m->inputs[k] : &m->targets[k - m->ninputs];
}

/* rep_override: a RepKind for every layer (--repulsion), or -1. */
static int bound_make(Bound *b, RaAlloc alloc, Program *p, const AstItem *item, int64_t batch,
                      int rep_override, bool with_grad, ModelState *ms, char *err, size_t errlen) {
  memset(b, 0, sizeof *b);
  b->alloc = alloc;
  b->m = lower_model_rep(p, item, batch, rep_override);
  if (!b->m) return fail(err, errlen, RA_ESPEC, "model '%s' does not compile", item->name);
  if (b->m->nweights != ms->nweights)
    return fail(err, errlen, RA_ESPEC, "model '%s' changed its parameters", item->name);
  IrFunc *f = b->m->fwd;
  if (with_grad) {
    f = autodiff(p->arena, b->m, p->externs, p->nexterns, p->diags);
    if (!f) return fail(err, errlen, RA_ESPEC, "model '%s' cannot be differentiated", item->name);
  }
  b->f = pass_compile(p->arena, f, !p->no_fuse);
  if (!b->f) return fail(err, errlen, RA_ENOMEM, "out of memory optimizing '%s'", item->name);
  b->plan = plan_memory_chains(p->arena, b->f, !p->no_chains);
  if (!b->plan) return fail(err, errlen, RA_ENOMEM, "out of memory planning '%s'", item->name);
  b->nin = b->m->ninputs + b->m->ntargets;
  if (b->nin > 16) return fail(err, errlen, RA_ESPEC, "model '%s' has more than 16 inputs", item->name);
  for (int k = 0; k < b->nin; k++) {
    IrType t = model_var(b->m, k)->type;
    b->in_bytes[k] = (size_t)batch * ir_bytes(&t);
  }
  return 0;
}

/* Bytes bound_alloc will take. */
static uint64_t bound_bytes(const Bound *b) {
  uint64_t n = b->plan ? b->plan->arena_bytes : 0;
  for (int k = 0; k < b->nin; k++) n += b->in_bytes[k];
  return n;
}

/* The batch inputs and the interpreter's arena of a planned Bound. */
static int bound_alloc(Bound *b, ModelState *ms, struct Jit *jit, char *err, size_t errlen) {
  for (int k = 0; k < b->nin; k++) {
    b->in[k] = ra_calloc(&b->alloc, 1, b->in_bytes[k]);
    if (!b->in[k]) return fail(err, errlen, RA_ENOMEM, "out of memory for batch inputs");
  }
  b->ex = exec_new(b->alloc, b->f, b->plan, ms->w, ms->offsets, b->nin);
  if (!b->ex) return fail(err, errlen, RA_ENOMEM, "out of memory: the step needs %zu bytes",
                          b->plan->arena_bytes);
  for (int k = 0; k < b->nin; k++) b->ex->inputs[k] = b->in[k];
  if (jit) {
    char why[512];
    if (exec_jit_attach(b->ex, jit, why, sizeof why) != 0)
      return fail(err, errlen, RA_ERUNTIME, "%s", why);
    b->jit_ms = b->ex->jit->compile_ms;
  }
  return 0;
}

static int bound_run(Bound *b, KernelCtx *kc, char *err, size_t errlen) {
  if (exec_run(b->ex, kc) != 0) return fail(err, errlen, RA_ERUNTIME, "%s", kc->err);
  return 0;
}

/* Fills the bound inputs with rows [r0, r0 + rn) of a batch of the data
 * set (a rank's share of it; the whole batch is r0 0, rn bs). */
static int64_t bound_fill_rows(Bound *b, const DataSet *ds, int split, const DataOrder *order,
                               int64_t start, int64_t bs, int64_t r0, int64_t rn) {
  void *ins[DATA_MAX_INPUTS] = {0};
  for (int k = 0; k < ds->nin; k++) ins[k] = b->in[k];
  int32_t *tg = b->m->ntargets > 0 ? (int32_t *)b->in[b->m->ninputs] : NULL;
  return data_batch_rows(ds, split, order, start, bs, r0, rn, ins, tg);
}

static int64_t bound_fill(Bound *b, const DataSet *ds, int split, const DataOrder *order,
                          int64_t start, int64_t bs) {
  return bound_fill_rows(b, ds, split, order, start, bs, 0, bs);
}

/* ---- data against the model ---- */

/* "file:line:col" of a span, for run-time errors that belong to the spec. */
static const char *where(const Program *p, Span sp, char *buf, size_t n) {
  if (sp.file < 0 || sp.file >= p->src->n) snprintf(buf, n, "rac");
  else snprintf(buf, n, "%s:%d:%d", p->src->files[sp.file].path, sp.line, sp.col);
  return buf;
}

static int check_data(const Program *p, const Model *m, const DataSet *ds, const TrainDecl *t,
                      char *err, size_t errlen) {
  char at[FILE_MSG_MAX];
  if (ds->nin != m->ninputs)
    return fail(err, errlen, RA_EDATA, "data '%s' gives %d inputs but model '%s' takes %d", t->data,
                ds->nin, m->name, m->ninputs);
  /* vocabulary against embed's vocab: every GATHER indexed by an input */
  for (int i = 0; i < m->fwd->n; i++) {
    const IrNode *n = &m->fwd->nodes[i];
    if (n->op != OP_GATHER) continue;
    const IrNode *idx = &m->fwd->nodes[n->in[1]];
    const IrNode *tab = &m->fwd->nodes[n->in[0]];
    if (idx->op != OP_INPUT || idx->attr.i[0] >= m->ninputs) continue;
    int64_t rows = tab->type.dim[0];
    int k = (int)idx->attr.i[0];
    if (ds->tok[k] == TOK_NONE && ds->in_type[k].dtype == IR_I32) {
      /* integer ids read from columns: each must be a row of the table */
      int64_t per = 1;
      for (int d = 0; d < ds->in_type[k].rank; d++) per *= ds->in_type[k].dim[d];
      const int32_t *ids = ds->in_data[k];
      for (int64_t e = 0; e < ds->n * per; e++)
        if (ids[e] < 0 || ids[e] >= rows)
          return fail(err, errlen, RA_EDATA,
                      "%s: error: data '%s', example %lld (in file order, from 0), value %lld: "
                      "id %d of input '%s' is outside the embedding's vocab %lld (ids 0..%lld)",
                      where(p, n->span, at, sizeof at), t->data, (long long)(e / per),
                      (long long)(e % per), (int)ids[e], m->inputs[k].name, (long long)rows,
                      (long long)(rows - 1));
      continue;
    }
    if (ds->vocab.n > rows)
      return fail(err, errlen, RA_EDATA,
                  "%s: error: data '%s' has a vocabulary of %lld tokens but the embedding of "
                  "input '%s' has vocab %lld: raise vocab here or lower it in the data",
                  where(p, n->span, at, sizeof at), t->data, (long long)ds->vocab.n,
                  m->inputs[idx->attr.i[0]].name, (long long)rows);
  }
  if (m->ntargets > 0) {
    const ModelVar *tv = &m->targets[0];
    int64_t need = ds->decl->loader == LOADER_TSV || ds->decl->loader == LOADER_CSV
                       ? ds->classes
                       : ds->vocab.n;
    if (tv->classes > 0 && need > tv->classes)
      return fail(err, errlen, RA_EDATA, "%s: error: data '%s' has %lld classes but target '%s' is class(%lld)",
                  where(p, tv->span, at, sizeof at), t->data, (long long)need, tv->name,
                  (long long)tv->classes);
  }
  for (int s = 0; s < 3; s++) {
    if (s == SPLIT_TRAIN && ds->split_n[s] == 0)
      return fail(err, errlen, RA_EDATA, "data '%s' has no training examples after the split",
                  t->data);
  }
  return 0;
}

/* ---- evaluation ---- */

/* head_diversity and effective_heads of one example (docs/language.md §8),
 * from the cosines between the heads' contributions to the layer output:
 * diversity = 1 - the mean over head pairs of |cos|, effective = M² / Σᵢⱼ
 * cosᵢⱼ² (the diagonal included).  A head whose contribution is zero counts
 * as alike to every other (cos 1).  For attention, head i's contribution is
 * C_i · wo[i·hd:(i+1)·hd, :] ([T, dim], all heads in the same space); for
 * attnpool, row i of A·x.  heads: [H][L]; scratch: H * (L / hd) * dim
 * floats when wo is given. */
void heads_measure(const float *heads, int64_t H, int64_t L, const float *wo, int64_t hd,
                   int64_t dim, float *scratch, double *diversity, double *effective) {
  if (H < 2) {
    *diversity = 1.0;
    *effective = (double)(H > 0 ? H : 1);
    return;
  }
  const float *v = heads;
  int64_t n = L;
  if (wo) {
    int64_t T = L / hd;
    for (int64_t i = 0; i < H; i++)
      for (int64_t t = 0; t < T; t++) {
        float *o = scratch + (i * T + t) * dim;
        const float *c = heads + i * L + t * hd;
        for (int64_t j = 0; j < dim; j++) o[j] = 0;
        for (int64_t k = 0; k < hd; k++) {
          const float *w = wo + (i * hd + k) * dim;
          for (int64_t j = 0; j < dim; j++) o[j] += c[k] * w[j];
        }
      }
    v = scratch;
    n = T * dim;
  }
  double acc = 0, sq = (double)H;
  int64_t pairs = 0;
  for (int64_t i = 0; i < H; i++)
    for (int64_t j = i + 1; j < H; j++) {
      double dot = 0, ni = 0, nj = 0;
      for (int64_t k = 0; k < n; k++) {
        dot += (double)v[i * n + k] * v[j * n + k];
        ni += (double)v[i * n + k] * v[i * n + k];
        nj += (double)v[j * n + k] * v[j * n + k];
      }
      double c = (ni > 0 && nj > 0) ? fabs(dot) / sqrt(ni * nj) : 1.0;
      if (c > 1.0) c = 1.0;
      acc += c;
      sq += 2 * c * c;
      pairs++;
    }
  *diversity = 1.0 - acc / (double)pairs;
  *effective = (double)H * (double)H / sq;
}

/* Floats of scratch head_diversity needs for the groups of m. */
static int64_t diversity_scratch(const Bound *b) {
  int64_t most = 0;
  for (int g = 0; g < b->m->ngroups; g++) {
    const IrOutput *ho = ir_find_output(b->f, OUT_HEADS, g);
    if (!ho) continue;
    const HeadGroup *hg = &b->m->groups[g];
    const IrType *ht = &b->f->nodes[ho->value].type;
    int64_t H = ht->dim[1], L = ir_numel(ht) / (ht->dim[0] * H);
    int64_t need = hg->head_dim > 0 ? H * (L / hg->head_dim) * hg->dim : 0;
    if (need > most) most = need;
  }
  return most;
}

static void eval_accumulate(const Bound *b, int64_t real, double *loss_sum, int64_t *npos,
                            int64_t *correct, double *div_sum, double *eff_sum, int ngroups,
                            float *scratch) {
  const IrOutput *po = ir_find_output(b->f, OUT_PRED, -1);
  if (po && b->m->ntargets > 0) {
    const IrType *lt = &b->f->nodes[po->value].type;
    const float *logits = exec_ptr(b->ex, po->value);
    const int32_t *tg = b->in[b->m->ninputs + po->index];
    int64_t K = lt->dim[lt->rank - 1];
    int64_t per = ir_numel(lt) / (lt->dim[0] * K);
    for (int64_t r = 0; r < real * per; r++) {
      const float *x = logits + r * K;
      int64_t arg = 0;
      float mx = x[0];
      for (int64_t k = 1; k < K; k++)
        if (x[k] > mx) { mx = x[k]; arg = k; }
      double se = 0;
      for (int64_t k = 0; k < K; k++) se += exp((double)x[k] - mx);
      int32_t y = tg[r];
      if (y < 0 || y >= K) continue;
      *loss_sum += log(se) + mx - x[y];
      *correct += arg == y;
      (*npos)++;
    }
  } else {
    const IrOutput *lo = ir_find_output(b->f, OUT_LOSS, -1);
    if (lo) {
      *loss_sum += *(const float *)exec_ptr(b->ex, lo->value) * (double)real;
      *npos += real;
    }
  }
  for (int g = 0; g < ngroups && g < 64; g++) {
    const IrOutput *ho = ir_find_output(b->f, OUT_HEADS, g);
    if (!ho) continue;
    const HeadGroup *hg = &b->m->groups[g];
    const IrType *ht = &b->f->nodes[ho->value].type;
    const float *h = exec_ptr(b->ex, ho->value);
    int64_t H = ht->dim[1], L = ir_numel(ht) / (ht->dim[0] * H);
    const float *wo = NULL;
    if (!hg->attnpool && hg->wo >= 0)
      wo = b->ex->params + b->m->params[hg->wo].offset;
    for (int64_t e = 0; e < real; e++) {
      double dv, ef;
      heads_measure(h + e * H * L, H, L, wo, hg->head_dim, hg->dim, scratch, &dv, &ef);
      div_sum[g] += dv;
      eff_sum[g] += ef;
    }
  }
}

/* Polled between steps and between evaluation batches (ra_set_stop_flag). */
static bool stop_requested(volatile sig_atomic_t *stop) { return stop && *stop; }

/* Evaluates a split; over the ranks of dist (NULL: one process), rank k
 * takes batches k, k + N, ... and the sums are reduced, so every rank gets
 * the whole split's figures (a stop then waits for the next step). */
static int run_eval(Bound *b, const DataSet *ds, int split, KernelCtx *kc, int ngroups,
                    Dist *dist, volatile sig_atomic_t *stop, EvalResult *r, char *err,
                    size_t errlen) {
  memset(r, 0, sizeof *r);
  r->accuracy = -1;
  r->ngroups = ngroups < 64 ? ngroups : 64;
  int64_t bs = b->f->batch, n = ds->split_n[split];
  double loss_sum = 0, div_sum[64] = {0}, eff_sum[64] = {0};
  int64_t npos = 0, correct = 0;
  int64_t nscratch = diversity_scratch(b);
  float *scratch = ra_calloc(&b->alloc, (size_t)(nscratch ? nscratch : 1), sizeof(float));
  if (!scratch) return fail(err, errlen, RA_ENOMEM, "out of memory for evaluation");
  bool was = kc->training;
  kc->training = false;
  int rc = 0;
  int nranks = dist_size(dist);
  if (nranks > 1) stop = NULL;
  for (int64_t s = (int64_t)dist_rank(dist) * bs; s < n && rc == 0; s += bs * nranks) {
    if (stop_requested(stop)) {
      rc = fail(err, errlen, RA_ESTOPPED, "evaluation stopped after %lld of %lld examples",
                (long long)s, (long long)n);
      break;
    }
    int64_t real = bound_fill(b, ds, split, NULL, s, bs);
    rc = bound_run(b, kc, err, errlen);
    if (rc == 0)
      eval_accumulate(b, real, &loss_sum, &npos, &correct, div_sum, eff_sum, r->ngroups,
                      scratch);
  }
  kc->training = was;
  ra_free_mem(&b->alloc, scratch, (size_t)(nscratch ? nscratch : 1) * sizeof(float));
  if (nranks > 1) {
    rc = dist_agree(dist, rc, err, errlen, NULL);
    double v[3 + 2 * 64] = {loss_sum, (double)npos, (double)correct};
    for (int g = 0; g < r->ngroups; g++) {
      v[3 + g] = div_sum[g];
      v[3 + 64 + g] = eff_sum[g];
    }
    if (rc == 0) rc = dist_sum(dist, v, 3 + 2 * 64, err, errlen);
    loss_sum = v[0];
    npos = (int64_t)v[1];
    correct = (int64_t)v[2];
    for (int g = 0; g < r->ngroups; g++) {
      div_sum[g] = v[3 + g];
      eff_sum[g] = v[3 + 64 + g];
    }
  }
  if (rc) return rc;
  r->examples = n;
  r->loss = npos ? loss_sum / (double)npos : 0;
  r->perplexity = exp(r->loss);
  if (ir_find_output(b->f, OUT_PRED, -1) && npos) r->accuracy = (double)correct / (double)npos;
  for (int g = 0; g < r->ngroups; g++) {
    r->diversity[g] = n ? div_sum[g] / (double)n : 0;
    r->effective[g] = n ? eff_sum[g] / (double)n : 0;
  }
  return 0;
}

static const char *split_name(int s) {
  return s == SPLIT_TRAIN ? "train" : s == SPLIT_VALID ? "valid" : "test";
}

/* "valid loss 0.41 acc 0.873 ppl 1.51 div 0.42/0.45 eff 2.31/2.87" */
static void eval_text(const EvalResult *r, int split, unsigned metrics, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "%s loss %.4f", split_name(split), r->loss);
  if (r->accuracy >= 0 && (metrics & MET_ACCURACY) && k < n)
    k += (size_t)snprintf(buf + k, n - k, " acc %.4f", r->accuracy);
  if ((metrics & MET_PERPLEXITY) && k < n)
    k += (size_t)snprintf(buf + k, n - k, " ppl %.3f", r->perplexity);
  if ((metrics & MET_HEAD_DIVERSITY) && r->ngroups && k < n) {
    k += (size_t)snprintf(buf + k, n - k, " div");
    for (int g = 0; g < r->ngroups && k < n; g++)
      k += (size_t)snprintf(buf + k, n - k, "%s%.3f", g ? "/" : " ", r->diversity[g]);
  }
  if ((metrics & MET_EFFECTIVE_HEADS) && r->ngroups && k < n) {
    k += (size_t)snprintf(buf + k, n - k, " eff");
    for (int g = 0; g < r->ngroups && k < n; g++)
      k += (size_t)snprintf(buf + k, n - k, "%s%.3f", g ? "/" : " ", r->effective[g]);
  }
}

/* ---- the JSON Lines log ----
 *
 * Records are formatted whole, gathered in a buffer and written with
 * write(2): a killed run leaves whole lines (at most the last one cut by a
 * full disk, which is reported).  The buffer is written out after the first
 * record, every LOG_FLUSH_SECONDS, before and after each evaluation, at a
 * stop and at the end; every write and the close are checked. */

#define LOG_FLUSH_SECONDS 2.0

typedef struct LogFile {
  const char *path;
  int fd;                   /* -1: no log */
  size_t n;
  double last_flush;        /* < 0: nothing written yet */
  char buf[16384];
} LogFile;

static int log_fail(const LogFile *lg, int e, char *err, size_t errlen) {
  return fail(err, errlen, RA_EIO, "cannot write the log '%s': %s", lg->path, strerror(e));
}

static int log_flush(LogFile *lg, char *err, size_t errlen) {
  size_t off = 0;
  while (lg->fd >= 0 && off < lg->n) {
    ssize_t w = write(lg->fd, lg->buf + off, lg->n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int e = w < 0 ? errno : EIO;
      lg->n = 0;
      return log_fail(lg, e, err, errlen);
    }
    off += (size_t)w;
  }
  lg->n = 0;
  lg->last_flush = clock_seconds();
  return 0;
}

/* Adds one whole record (a line with its '\n'). */
static int log_record(LogFile *lg, const char *line, size_t len, char *err, size_t errlen) {
  if (lg->fd < 0) return 0;
  if (lg->n + len > sizeof lg->buf) {
    int rc = log_flush(lg, err, errlen);
    if (rc) return rc;
  }
  if (len > sizeof lg->buf) return fail(err, errlen, RA_EIO, "a record of the log '%s' is too long", lg->path);
  memcpy(lg->buf + lg->n, line, len);
  lg->n += len;
  if (lg->last_flush < 0 || clock_seconds() - lg->last_flush >= LOG_FLUSH_SECONDS)
    return log_flush(lg, err, errlen);
  return 0;
}

static int log_close(LogFile *lg, char *err, size_t errlen) {
  if (lg->fd < 0) return 0;
  int rc = log_flush(lg, err, errlen);
  int fd = lg->fd;
  lg->fd = -1;
  if (close(fd) != 0 && rc == 0) rc = log_fail(lg, errno, err, errlen);
  return rc;
}

/* Whether a whole line of an earlier run's log belongs before a checkpoint
 * at `step`: records up to that step, except the test evaluation that ends
 * a run (a resumed run writes its own). */
static bool log_line_before(const char *line, int64_t step) {
  const char *k = strstr(line, "\"step\":");
  if (!k) return false;
  char *end;
  long long s = strtoll(k + 7, &end, 10);
  if (end == k + 7) return false;
  if (s < step) return true;
  return s == step && !strstr(line, "\"split\":\"test\"");
}

/* Cuts the log of a resumed run after its last whole record up to the
 * checkpoint's step: no half line, no record the resumed run writes again. */
static int log_cut(LogFile *lg, int64_t step, char *err, size_t errlen) {
  char chunk[8192], head[512];
  size_t hn = 0;
  off_t pos = 0, cut = 0;
  bool done = false;
  while (!done) {
    ssize_t r = read(lg->fd, chunk, sizeof chunk);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return fail(err, errlen, RA_EIO, "cannot read the log '%s': %s", lg->path, strerror(errno));
    if (r == 0) break;
    for (ssize_t i = 0; i < r && !done; i++, pos++) {
      if (chunk[i] != '\n') {
        if (hn < sizeof head - 1) head[hn++] = chunk[i];
        continue;
      }
      head[hn] = 0;
      hn = 0;
      if (log_line_before(head, step)) cut = pos + 1;
      else done = true;
    }
  }
  if (ftruncate(lg->fd, cut) != 0 || lseek(lg->fd, 0, SEEK_END) < 0)
    return fail(err, errlen, RA_EIO, "cannot cut the log '%s' at the checkpoint's step %lld: %s",
                lg->path, (long long)step, strerror(errno));
  return 0;
}

/* Opens the log: a new one, or (resume_step >= 0) the run's earlier log cut
 * at the checkpoint's step, to be continued. */
static int log_open(LogFile *lg, const char *path, int64_t resume_step, char *err, size_t errlen) {
  lg->path = path;
  lg->n = 0;
  lg->last_flush = -1;
  make_parent_dirs(path);
  /* O_NONBLOCK: a FIFO with no reader is an error (ENXIO), never a hang */
  int flags = O_CREAT | O_CLOEXEC | O_NONBLOCK | (resume_step >= 0 ? O_RDWR : O_WRONLY | O_TRUNC);
  lg->fd = open(path, flags, 0644);
  if (lg->fd < 0 && errno == ENXIO)
    return fail(err, errlen, RA_EIO, "cannot write the log '%s': a FIFO with no reader", path);
  if (lg->fd < 0) return log_fail(lg, errno, err, errlen);
  int fl = fcntl(lg->fd, F_GETFL);
  if (fl >= 0) fcntl(lg->fd, F_SETFL, fl & ~O_NONBLOCK);
  struct stat st;
  if (resume_step >= 0 && fstat(lg->fd, &st) == 0 && S_ISREG(st.st_mode))
    return log_cut(lg, resume_step, err, errlen);
  return 0;
}

static int log_step(LogFile *lg, int64_t step, double loss, double lr, char *err, size_t errlen) {
  if (lg->fd < 0) return 0;
  char line[256];
  int n = snprintf(line, sizeof line, "{\"event\":\"step\",\"step\":%lld,\"loss\":%.6g,\"lr\":%.6g}\n",
                   (long long)step, loss, lr);
  return log_record(lg, line, (size_t)n, err, errlen);
}

static int eval_json(LogFile *lg, const EvalResult *r, int split, int64_t step, int64_t epoch,
                     const Model *m, unsigned metrics, char *err, size_t errlen) {
  if (lg->fd < 0) return 0;
  char line[16384];
  size_t k = (size_t)snprintf(line, sizeof line,
                              "{\"event\":\"eval\",\"split\":\"%s\",\"step\":%lld,\"epoch\":%lld,"
                              "\"loss\":%.6g", split_name(split), (long long)step, (long long)epoch,
                              r->loss);
  if (r->accuracy >= 0 && k < sizeof line)
    k += (size_t)snprintf(line + k, sizeof line - k, ",\"accuracy\":%.6g", r->accuracy);
  if (k < sizeof line) k += (size_t)snprintf(line + k, sizeof line - k, ",\"perplexity\":%.6g", r->perplexity);
  if (r->ngroups && k < sizeof line) {
    k += (size_t)snprintf(line + k, sizeof line - k, ",\"head_diversity\":{");
    for (int g = 0; g < r->ngroups && k < sizeof line; g++)
      k += (size_t)snprintf(line + k, sizeof line - k, "%s\"%s\":%.6g", g ? "," : "",
                            m->groups[g].path, r->diversity[g]);
    if (k < sizeof line) k += (size_t)snprintf(line + k, sizeof line - k, "}");
  }
  if ((metrics & MET_EFFECTIVE_HEADS) && r->ngroups && k < sizeof line) {
    k += (size_t)snprintf(line + k, sizeof line - k, ",\"effective_heads\":{");
    for (int g = 0; g < r->ngroups && k < sizeof line; g++)
      k += (size_t)snprintf(line + k, sizeof line - k, "%s\"%s\":%.6g", g ? "," : "",
                            m->groups[g].path, r->effective[g]);
    if (k < sizeof line) k += (size_t)snprintf(line + k, sizeof line - k, "}");
  }
  if (k < sizeof line) k += (size_t)snprintf(line + k, sizeof line - k, "}\n");
  if (k >= sizeof line)
    return fail(err, errlen, RA_EIO, "an evaluation record of the log '%s' is too long", lg->path);
  int rc = log_record(lg, line, k, err, errlen);
  return rc ? rc : log_flush(lg, err, errlen);
}

/* ---- the loop ---- */

typedef struct Loop {
  Program *p;
  const TrainDecl *t;
  ModelState *ms;
  const RunOptions *o;
  const AstItem *item;
  DataSet *ds;
  Bound step, eval;
  bool have_eval;
  KernelCtx kc;
  float *g;
  float *pwork, *ptheta, *pgrad;
  int64_t pwork_n, pbuf_n;
  float *dscratch;          /* heads_measure's, for `when` triggers */
  int64_t dscratch_n;
  Optim opt;
  JitLoopFn pdir;           /* the particle direction's compiled loop, or NULL */
  Pool *own_pool;           /* when the caller gave no pool */
  LogFile log;
  uint64_t seed;
  int64_t saved_step;       /* the step of the last checkpoint at t->save, or -1 */
  /* data parallel (docs/distributed.md): this rank's share of each batch */
  Dist *dist;
  int rank, nranks;
  int64_t lbatch;           /* rows of the batch this rank runs */
  GradSync gs;              /* the gradient reductions (nranks > 1) */
  bool have_gs, overlap;
  StepProfile *prof;        /* `rac bench --profile`: the parts of each step; NULL */
  bool *grad_copy;          /* by output of the step: a gradient copied after it
                               (the others are computed in g: exec_redirect) */
  int grad_copy_n;
} Loop;

/* The pool for a run on `threads` workers: the caller's (remade if its size
 * differs), else a new one left in *own for the caller to free.  NULL (one
 * thread) when a pool cannot be made. */
static Pool *run_pool(const RunOptions *o, RaAlloc a, int threads, Pool **own) {
  if (o->pool) return pool_ensure(o->pool, a, threads);
  *own = threads > 1 ? pool_new(a, threads) : NULL;
  return *own;
}

static void loop_free(Loop *L) {
  RaAlloc a = L->ms->alloc;
  bound_free(&L->step);
  if (L->have_eval) bound_free(&L->eval);
  if (L->ds) data_free(L->ds);
  size_t nw = (size_t)(L->ms->nweights ? L->ms->nweights : 1) * sizeof(float);
  ra_free_mem(&a, L->g, nw);
  if (L->grad_copy) ra_free_mem(&a, L->grad_copy, (size_t)L->grad_copy_n * sizeof(bool));
  ra_free_mem(&a, L->pwork, (size_t)L->pwork_n * sizeof(float));
  ra_free_mem(&a, L->ptheta, (size_t)L->pbuf_n * sizeof(float));
  ra_free_mem(&a, L->pgrad, (size_t)L->pbuf_n * sizeof(float));
  if (L->dscratch) ra_free_mem(&a, L->dscratch, (size_t)L->dscratch_n * sizeof(float));
  if (L->log.fd >= 0) close(L->log.fd); /* after an error; log_close checks */
  if (L->have_gs) gradsync_free(&L->gs);
  pool_free(L->own_pool);
}

/* A layer's repulsion with --repulsion and --set repulsion_start, _stop,
 * _when and _alpha. */
static Repulsion group_rep(const Loop *L, const HeadGroup *hg) {
  Repulsion r = hg->rep;
  if (L->t->has_repulsion_override) r.kind = L->t->repulsion_override;
  if (L->t->has_repulsion_start) r.start = L->t->repulsion_start;
  if (L->t->has_repulsion_stop) r.stop = L->t->repulsion_stop;
  if (L->t->has_repulsion_when) r.when = REP_WHEN_LT, r.threshold = L->t->repulsion_when;
  if (L->t->has_repulsion_alpha) r.alpha = L->t->repulsion_alpha;
  return r;
}

/* What a loop needs: the training step (with gradients, particle buffers),
 * the evaluation forward pass, or both. */
enum { LOOP_STEP = 1, LOOP_EVAL = 2 };

/* The whole run against the memory that can be had, before any of its large
 * buffers is allocated: interpreter arenas, batch inputs, gradients,
 * optimizer moments (parameters are already held). */
static int loop_check_memory(const Loop *L, int need, int threads, char *err, size_t errlen) {
  uint64_t arenas = bound_bytes(&L->step) + bound_bytes(&L->eval);
  uint64_t nw = (uint64_t)(L->ms->nweights ? L->ms->nweights : 1) * sizeof(float);
  /* over several ranks, the gradients' reduction buffer too */
  uint64_t grads = (need & LOOP_STEP) ? nw * (L->nranks > 1 ? 2 : 1) : 0;
  uint64_t moments = (need & LOOP_STEP) && !L->ms->opt_m ? 2 * nw : 0;
  char what[160];
  snprintf(what, sizeof what,
           "its buffers (interpreter arenas %.1f MiB, gradients %.1f MiB, optimizer state %.1f MiB)",
           (double)arenas / 1048576.0, (double)grads / 1048576.0, (double)moments / 1048576.0);
  char why[512];
  if (sysmem_check(arenas + grads + moments, threads, what, why, sizeof why) != 0)
    return fail(err, errlen, RA_ENOMEM, "%s", why);
  return 0;
}

static int loop_setup(Loop *L, Program *p, const TrainDecl *t, ModelState *ms,
                      const RunOptions *o, int need, char *err, size_t errlen) {
  memset(L, 0, sizeof *L);
  L->log.fd = -1;
  L->p = p;
  L->t = t;
  L->ms = ms;
  L->o = o;
  RaAlloc a = L->ms->alloc;
  L->item = sema_find_model(L->p, t->model);
  if (!L->item) return fail(err, errlen, RA_ENOTFOUND, "no model '%s'", t->model);
  const DataDecl *dd = NULL;
  for (int i = 0; i < L->p->ndata; i++)
    if (strcmp(L->p->data[i].name, t->data) == 0) dd = &L->p->data[i];
  if (!dd) return fail(err, errlen, RA_ENOTFOUND, "no data set '%s'", t->data);
  L->seed = L->o->has_seed ? L->o->seed : t->seed;
  L->dist = o->dist;
  L->rank = dist_rank(L->dist);
  L->nranks = dist_size(L->dist);
  L->lbatch = t->batch;
  if ((need & LOOP_STEP) && L->nranks > 1) {
    if (t->batch % L->nranks != 0)
      return fail(err, errlen, RA_EUSAGE,
                  "batch %lld does not divide among %d processes: each rank runs an equal "
                  "share of every batch (docs/distributed.md); make the batch a multiple of %d "
                  "(--set batch=%lld) or start %d processes", (long long)t->batch, L->nranks,
                  L->nranks, (long long)((t->batch / L->nranks + 1) * L->nranks),
                  L->nranks);
    L->lbatch = t->batch / L->nranks;
  }
  /* the vocabulary and labels the model was trained with, when known */
  L->ds = data_load_with(a, dd, ms->vocab, err, errlen);
  if (!L->ds) return RA_EDATA;
  if (!ms->vocab && !(ms->vocab = data_vocab_of(a, L->ds)))
    return fail(err, errlen, RA_ENOMEM, "out of memory");
  uint64_t h = data_settings_hash(dd);
  if (ms->from && ms->spec_hash && ms->spec_hash != h)
    emit(o, "warning: %s: trained with other data settings than data '%s' has now (spec_hash "
            "%016llx, not %016llx): the file, split, seed or tokenizer changed, so the splits "
            "may not be the ones it was trained with",
         ms->from, dd->name, (unsigned long long)ms->spec_hash, (unsigned long long)h);
  if (need & LOOP_STEP) ms->spec_hash = h;
  int rc = 0, rep_override = t->has_repulsion_override ? (int)t->repulsion_override : -1;
  if (need & LOOP_STEP) {
    rc = bound_make(&L->step, a, L->p, L->item, L->lbatch, rep_override, true, L->ms, err,
                    errlen);
    if (rc) return rc;
  }
  if (need & LOOP_EVAL) {
    L->have_eval = true; /* loop_free frees a partly made one too */
    rc = bound_make(&L->eval, a, L->p, L->item, t->batch, rep_override, false, L->ms, err,
                    errlen);
    if (rc) return rc;
  }
  rc = check_data(p, (need & LOOP_STEP) ? L->step.m : L->eval.m, L->ds, t, err, errlen);
  if (rc) return rc;
  int threads = L->o->threads > 0 ? L->o->threads : t->threads > 0 ? (int)t->threads
                                        : (L->o->default_threads > 0 ? L->o->default_threads : 1);
  rc = loop_check_memory(L, need, threads, err, errlen);
  if (rc) return rc;
  if ((need & LOOP_STEP) && (rc = bound_alloc(&L->step, L->ms, o->jit, err, errlen)) != 0) return rc;
  if ((need & LOOP_EVAL) && (rc = bound_alloc(&L->eval, L->ms, o->jit, err, errlen)) != 0) return rc;
  memset(&L->kc, 0, sizeof L->kc);
  L->kc.pool = run_pool(L->o, a, threads, &L->own_pool);
  L->kc.threads = pool_size(L->kc.pool);
  L->kc.seed = L->seed;
  L->kc.training = true;
  L->kc.externs = L->o->externs;
  L->kc.nexterns = L->o->nexterns;
  if (!(need & LOOP_STEP)) return 0;
  size_t nw = (size_t)(L->ms->nweights ? L->ms->nweights : 1);
  L->g = ra_calloc(&a, nw, sizeof(float));
  if (!L->g) return fail(err, errlen, RA_ENOMEM, "out of memory for gradients");
  /* one process: each gradient computed where the optimizer reads it (a
   * value that is two parameters' gradients, or no arena value, is copied
   * after the step) */
  if (L->nranks == 1) {
    const IrFunc *f = L->step.f;
    L->grad_copy_n = f->nout > 0 ? f->nout : 1;
    L->grad_copy = ra_calloc(&a, (size_t)L->grad_copy_n, sizeof(bool));
    if (!L->grad_copy) return fail(err, errlen, RA_ENOMEM, "out of memory for gradients");
    for (int i = 0; i < f->nout; i++) {
      const IrOutput *o = &f->outs[i];
      if (o->role != OUT_GRAD) continue;
      const ParamInfo *pi = &L->ms->params[o->index];
      bool shared = false;
      for (int j = 0; j < i; j++) shared = shared || f->outs[j].value == o->value;
      L->grad_copy[i] = shared || ir_numel(&f->nodes[o->value].type) != ir_numel(&pi->type) ||
                        exec_redirect(L->step.ex, o->value, L->g + pi->offset) != 0;
    }
  }
  if (L->nranks > 1) {
    int64_t bucket = o->bucket_bytes < 0 ? TRAIN_BUCKET_BYTES_DEFAULT : o->bucket_bytes;
    rc = gradsync_init(&L->gs, a, L->dist, L->step.f, L->ms->params, L->step.ex, bucket, err,
                       errlen);
    if (rc) return rc;
    L->have_gs = true;
    L->overlap = bucket > 0;
  }
  /* particle buffers: the largest set */
  const Model *m = L->step.m;
  for (int gi = 0; gi < m->ngroups; gi++) {
    const HeadGroup *hg = &m->groups[gi];
    for (int s = 0; s < particles_nsets(hg); s++) {
      int64_t D = particles_dim(hg, m->params, s), M = hg->heads;
      if (M * D > L->pbuf_n) L->pbuf_n = M * D;
      int64_t w = particles_work_floats(M, D);
      if (w > L->pwork_n) L->pwork_n = w;
    }
  }
  if (L->pbuf_n) {
    L->ptheta = ra_calloc(&a, (size_t)L->pbuf_n, sizeof(float));
    L->pgrad = ra_calloc(&a, (size_t)L->pbuf_n, sizeof(float));
    L->pwork = ra_calloc(&a, (size_t)(L->pwork_n ? L->pwork_n : 1), sizeof(float));
    if (!L->ptheta || !L->pgrad || !L->pwork)
      return fail(err, errlen, RA_ENOMEM, "out of memory for particles");
  }
  bool when = false;
  for (int gi = 0; gi < m->ngroups; gi++) {
    Repulsion r = group_rep(L, &m->groups[gi]);
    when |= r.when != REP_WHEN_NONE;
    if (r.stop > 0 && r.stop <= r.start)
      return fail(err, errlen, RA_EUSAGE,
                  "layer '%s': repulsion stop %lld is not after start %lld (with "
                  "--set repulsion_start/repulsion_stop): it would never apply",
                  m->groups[gi].path, (long long)r.stop, (long long)r.start);
  }
  if (when) {
    int64_t n = diversity_scratch(&L->step);
    L->dscratch_n = n > 0 ? n : 1;
    L->dscratch = ra_calloc(&a, (size_t)L->dscratch_n, sizeof(float));
    if (!L->dscratch) return fail(err, errlen, RA_ENOMEM, "out of memory for head diversity");
  }
  return 0;
}

/* The head_diversity of group g over the training batch just run, for a
 * `when` trigger. */
typedef struct Measure {
  Loop *L;
  int g;
  double last;              /* the last diversity measured */
} Measure;

static double step_diversity(void *ud) {
  Measure *mu = ud;
  const Bound *b = &mu->L->step;
  const HeadGroup *hg = &b->m->groups[mu->g];
  const IrOutput *ho = ir_find_output(b->f, OUT_HEADS, mu->g);
  if (!ho) return 1.0;
  const IrType *ht = &b->f->nodes[ho->value].type;
  const float *h = exec_ptr(b->ex, ho->value);
  int64_t n = ht->dim[0], H = ht->dim[1], L = ir_numel(ht) / (n * H);
  const float *wo = !hg->attnpool && hg->wo >= 0 ? b->ex->params + b->m->params[hg->wo].offset
                                                 : NULL;
  double sum = 0;
  for (int64_t e = 0; e < n; e++) {
    double dv, ef;
    heads_measure(h + e * H * L, H, L, wo, hg->head_dim, hg->dim, mu->L->dscratch, &dv, &ef);
    sum += dv;
  }
  /* over the global batch: every rank measures its share (each rank asks
   * at the same steps: the schedule is the same everywhere) */
  double v[2] = {sum, (double)n};
  char why[512];
  if (mu->L->nranks > 1 && dist_sum(mu->L->dist, v, 2, why, sizeof why) == 0) {
    sum = v[0];
    n = (int64_t)v[1];
  }
  return mu->last = n ? sum / (double)n : 1.0;
}

/* A `when` trigger that fired, in the log: the step (numbered as in step
 * records) whose update is the first, the layer and the diversity measured. */
static int log_trigger(LogFile *lg, int64_t step, const char *layer, double div, char *err,
                       size_t errlen) {
  if (lg->fd < 0) return 0;
  char line[1024];
  int n = snprintf(line, sizeof line,
                   "{\"event\":\"repulsion\",\"step\":%lld,\"layer\":\"%s\",\"diversity\":%.6g}\n",
                   (long long)step, layer, div);
  if (n < 0 || (size_t)n >= sizeof line)
    return fail(err, errlen, RA_EIO, "a record of the log '%s' is too long", lg->path);
  return log_record(lg, line, (size_t)n, err, errlen);
}

/* Repulsive particle updates on the gradient buffer (language.md §6). */
static int loop_particles(Loop *L, int64_t step, char *err, size_t errlen) {
  const Model *m = L->step.m;
  for (int gi = 0; gi < m->ngroups; gi++) {
    const HeadGroup *hg = &m->groups[gi];
    Repulsion rep = group_rep(L, hg);
    /* the schedule (start, stop, every, when); penalty is in the loss */
    bool was = gi < 64 && (L->ms->rep_triggered >> gi & 1), on = was;
    Measure mu = {L, gi, 0};
    if (!repulsion_applies(&rep, step, &on, step_diversity, &mu)) continue;
    if (on && !was && gi < 64) {
      L->ms->rep_triggered |= (uint64_t)1 << gi;
      int rc = log_trigger(&L->log, step + 1, hg->path, mu.last, err, errlen);
      if (rc) return rc;
    }
    for (int s = 0; s < particles_nsets(hg); s++) {
      int64_t D = particles_dim(hg, m->params, s);
      particles_gather(hg, m->params, s, L->ms->w, L->ptheta, L->kc.pool);
      particles_gather(hg, m->params, s, L->g, L->pgrad, L->kc.pool);
      if (particles_update(&rep, hg->heads, D, L->ptheta, L->pgrad, L->pwork, L->seed,
                           RNG_STREAM_SPOS + (uint64_t)gi * 16 + (uint64_t)s, step, NULL,
                           L->kc.pool, L->pdir) != 0)
        return fail(err, errlen, RA_ESPEC,
                    "line %d: the repulsion settings of '%s' cannot be applied (stepsize %g, "
                    "beta %g, bandwidth %g)",
                    hg->span.line, hg->path, rep.stepsize, rep.beta, rep.bandwidth);
      particles_scatter(hg, m->params, s, L->pgrad, L->g, L->kc.pool);
    }
  }
  return 0;
}

/* One optimizer step on the current batch; returns the loss through *loss. */
static int loop_step(Loop *L, int64_t step, int64_t total, double *loss, char *err,
                     size_t errlen) {
  L->kc.step = step;
  L->kc.example0 = (int64_t)L->rank * L->lbatch;
  L->kc.node_done = L->overlap ? gradsync_node : NULL;
  L->kc.node_ud = &L->gs;
  int rc = bound_run(&L->step, &L->kc, err, errlen);
  L->kc.node_done = NULL;
  const IrOutput *lo = ir_find_output(L->step.f, OUT_LOSS, -1);
  if (L->nranks > 1) {
    double r0 = L->prof ? clock_seconds() : 0;
    /* every rank reduces the same buckets, even after its own failure;
     * then all agree on the first failure, and the loss is the mean of the
     * ranks' means (equal shares: the global batch's mean) */
    int grc = gradsync_finish(&L->gs, L->g, rc ? NULL : err, rc ? 0 : errlen);
    if (rc == 0) rc = grc;
    rc = dist_agree(L->dist, rc, err, errlen, NULL);
    if (rc) return rc;
    double v = *(const float *)exec_ptr(L->step.ex, lo->value);
    rc = dist_sum(L->dist, &v, 1, err, errlen);
    if (rc) return rc;
    *loss = v / (double)L->nranks;
    if (L->prof) L->prof->part_s[PROF_REDUCE] += clock_seconds() - r0;
  } else {
    if (rc) return rc;
    *loss = *(const float *)exec_ptr(L->step.ex, lo->value);
  }
  if (!isfinite(*loss))
    return fail(err, errlen, RA_ERUNTIME,
                "the loss became %s at step %lld: lower the learning rate or add clip",
                isnan(*loss) ? "NaN" : "infinite", (long long)step);
  const IrFunc *f = L->step.f;
  double t0 = L->prof ? clock_seconds() : 0;
  for (int i = 0; i < f->nout && L->nranks == 1; i++) {
    const IrOutput *o = &f->outs[i];
    if (o->role != OUT_GRAD || !L->grad_copy[i]) continue;
    const ParamInfo *pi = &L->ms->params[o->index];
    memcpy(L->g + pi->offset, exec_ptr(L->step.ex, o->value),
           (size_t)ir_numel(&pi->type) * sizeof(float));
  }
  double t1 = L->prof ? clock_seconds() : 0;
  rc = loop_particles(L, step, err, errlen);
  if (rc) return rc;
  double t2 = L->prof ? clock_seconds() : 0;
  if (L->t->clip > 0) clip_global_norm(L->g, L->ms->nweights, L->t->clip);
  optim_step(&L->opt, L->ms->w, L->g, sched_lr(L->t, step, total), NULL);
  if (L->prof) {
    L->prof->part_s[PROF_GRADS] += t1 - t0;
    L->prof->part_s[PROF_PARTICLES] += t2 - t1;
    L->prof->part_s[PROF_OPTIM] += clock_seconds() - t2;
  }
  return 0;
}

static void progress_line(Loop *L, int64_t step, int64_t total, double loss, double rate) {
  const RunOptions *o = L->o;
  if (o->quiet || !o->log) return;
  double eta = rate > 0 ? (double)(total - step) / rate : 0;
  int width = 24, fill = total ? (int)((double)width * (double)step / (double)total) : width;
  char bar[32];
  for (int i = 0; i < width; i++) bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
  bar[width] = 0;
  emit(o, "\rstep %lld/%lld [%s] loss %.4f  %.1f steps/s  ETA %d:%02d", (long long)step,
       (long long)total, bar, loss, rate, (int)(eta / 60), (int)eta % 60);
}

/* ---- outputs that would overwrite inputs ---- */

static bool same_file(const struct stat *a, const char *path) {
  struct stat st;
  return path && stat(path, &st) == 0 && st.st_dev == a->st_dev && st.st_ino == a->st_ino;
}

/* Whether the file out (existing) is an input of the run: a spec file, a
 * data file (either place data.c looks), or the checkpoint resumed from.
 * Names it in what/which. */
static bool is_input(const Program *p, const RunOptions *o, const struct stat *out,
                     const char **what, const char **which, char *buf, size_t n) {
  for (int i = 0; i < p->src->n; i++)
    if (same_file(out, p->src->files[i].path)) {
      *what = i == 0 ? "spec file" : "module";
      *which = p->src->files[i].path;
      return true;
    }
  for (int i = 0; i < p->ndata; i++) {
    const DataDecl *d = &p->data[i];
    if (!d->path || !*d->path) continue;
    *what = "data file";
    *which = d->path;
    if (same_file(out, d->path)) return true;
    if (d->path[0] != '/' && d->spec_dir && *d->spec_dir) {
      snprintf(buf, n, "%s/%s", d->spec_dir, d->path);
      *which = buf;
      if (same_file(out, buf)) return true;
    }
  }
  *what = "checkpoint to resume from";
  *which = o->resume;
  return same_file(out, o->resume);
}

/* Refuses, before anything is written, a log or save path that is one of
 * the run's inputs or the other output (compared as files, not names). */
static int check_outputs(const Program *p, const TrainDecl *t, const RunOptions *o,
                         const char *log_path, char *err, size_t errlen) {
  const char *outs[2] = {log_path, t->save};
  const char *names[2] = {"the log", "the save path"};
  for (int k = 0; k < 2; k++) {
    struct stat st;
    if (!outs[k] || stat(outs[k], &st) != 0) continue;
    const char *what, *which;
    char buf[4096];
    bool hit = is_input(p, o, &st, &what, &which, buf, sizeof buf);
    if (hit && k == 1 && !strcmp(what, "checkpoint to resume from"))
      hit = false; /* resuming in place rewrites the checkpoint, as it should */
    if (!hit && k == 0 && same_file(&st, t->save)) {
      hit = true;
      what = "save path";
      which = t->save;
    }
    if (hit)
      return fail(err, errlen, RA_EIO,
                  "%s '%s' is the %s '%s' (the same file): writing it would destroy it; "
                  "choose another path", names[k], outs[k], what, which);
  }
  return 0;
}

/* Finds a save path that cannot be written before the first step rather
 * than at the first checkpoint: not a directory, and its folder (made as a
 * save makes it) takes a new file (a probe, created and removed). */
static int check_save_path(const char *path, char *err, size_t errlen) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    return fail(err, errlen, RA_EIO, "cannot save checkpoints to '%s': it is a directory", path);
  char dir[4096];
  if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
    return fail(err, errlen, RA_EIO, "cannot save checkpoints to '%.200s...': the path is too long",
                path);
  char *slash = strrchr(dir, '/');
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == dir) dir[1] = 0;
  else *slash = 0;
  make_parent_dirs(path);
  char probe[4200];
  snprintf(probe, sizeof probe, "%s/.rac-probe-XXXXXX", dir);
  int fd = mkstemp(probe);
  if (fd < 0)
    return fail(err, errlen, RA_EIO, "cannot save checkpoints to '%s': cannot create a file in "
                "the folder '%s': %s", path, dir, strerror(errno));
  close(fd);
  unlink(probe);
  return 0;
}

/* rc as every rank of the run sees it: a step of rank 0's log (or any
 * rank-local failure) is agreed before the next collective. */
static int agreed(Loop *L, int rc, char *err, size_t errlen) {
  return L->nranks > 1 ? dist_agree(L->dist, rc, err, errlen, NULL) : rc;
}

/* FNV-1a over the parameters' bytes and the step. */
static uint64_t params_hash(const ModelState *ms) {
  uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)ms->step;
  const unsigned char *b = (const unsigned char *)ms->w;
  size_t n = (size_t)ms->nweights * sizeof(float);
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

/* Saves the model state at path and tells the caller (RunOptions.saved).
 * Over several ranks, every rank calls it: the parameters are first
 * checked equal on every rank (a hash), rank 0 writes, and all agree on
 * how that went. */
static int loop_save(Loop *L, const char *path, char *err, size_t errlen) {
  int rc = 0;
  if (L->nranks > 1) {
    bool same;
    uint64_t lo, hi;
    rc = dist_same(L->dist, params_hash(L->ms), &same, &lo, &hi, err, errlen);
    if (rc) return rc;
    if (!same)
      return fail(err, errlen, RA_ERUNTIME,
                  "the parameters differ between the %d ranks at step %lld (hashes %016llx .. "
                  "%016llx): the ranks diverged, so no checkpoint was written to '%s'",
                  L->nranks, (long long)L->ms->step, (unsigned long long)lo,
                  (unsigned long long)hi, path);
  }
  if (L->rank == 0) rc = mstate_save(L->ms, path, err, errlen);
  rc = dist_agree(L->dist, rc, err, errlen, NULL);
  if (rc == 0 && L->o->saved && L->o->saved_len)
    snprintf(L->o->saved, L->o->saved_len, "%s", path);
  return rc;
}

/* A stop after the step L->ms->step (the callback, the stop flag, or the
 * flag during an evaluation): the checkpoint of the steps taken goes to the
 * train block's save path (unless it is there already), else to
 * MODEL.stopped.safetensors in the current folder; then RA_ESTOPPED. */
static int loop_stop(Loop *L, int64_t total, bool by_callback, char *err, size_t errlen) {
  const char *path = L->t->save;
  char def[512];
  if (!path) {
    snprintf(def, sizeof def, "%s.stopped.safetensors", L->ms->name);
    path = def;
  }
  long long step = (long long)L->ms->step;
  const char *how = by_callback ? "stopped by the callback" : "interrupted";
  if (!(L->t->save && L->saved_step == L->ms->step)) {
    char why[1024];
    int rc = loop_save(L, path, why, sizeof why);
    if (rc)
      return fail(err, errlen, rc, "training %s at step %lld of %lld; the checkpoint could not "
                  "be saved: %s", how, step, (long long)total, why);
    if (L->t->save) L->saved_step = L->ms->step;
  }
  char why[1024];
  int rc = log_close(&L->log, why, sizeof why);
  if (rc)
    return fail(err, errlen, rc, "training %s at step %lld of %lld; checkpoint saved to '%s', "
                "but %s", how, step, (long long)total, path, why);
  return fail(err, errlen, RA_ESTOPPED, "training %s at step %lld of %lld; checkpoint saved to '%s'",
              how, step, (long long)total, path);
}

/* With a JIT, the optimizer's update (L->opt set up first) and, when a
 * head group moves its particles (svgd, spos), their direction compiled;
 * the compile time goes to *ms. */
static int loop_jit_update(Loop *L, double *ms, char *err, size_t errlen) {
  *ms = 0;
  L->pdir = NULL;
  if (!L->o->jit) return 0;
  char why[512];
  const Model *m = L->step.m;
  for (int gi = 0; gi < m->ngroups && !L->pdir; gi++) {
    Repulsion rep = group_rep(L, &m->groups[gi]);
    if (rep.kind != REP_SVGD && rep.kind != REP_SPOS) continue; /* none, or a penalty */
    if (!(L->pdir = exec_jit_particles(L->o->jit, ms, why, sizeof why)))
      return fail(err, errlen, RA_ERUNTIME, "%s", why);
  }
  const TrainDecl *t = L->t;
  int kind = t->opt == OPT_ADAM    ? JIT_OPT_ADAM
             : t->opt == OPT_ADAMW ? JIT_OPT_ADAMW
             : t->momentum != 0    ? JIT_OPT_SGD_MOMENTUM
                                   : JIT_OPT_SGD;
  double oms;
  L->opt.jit = exec_jit_optimizer(L->o->jit, kind, &oms, why, sizeof why);
  if (!L->opt.jit) return fail(err, errlen, RA_ERUNTIME, "%s", why);
  *ms += oms;
  return 0;
}

/* Everything a run needs before its first step: the checks of its output
 * paths, the resumed checkpoint, the loop, optimizer state and the log. */
static int run_prepare(Loop *L, Program *p, const TrainDecl *t, ModelState *ms,
                       const RunOptions *o, char *err, size_t errlen) {
  memset(L, 0, sizeof *L);
  L->ms = ms; /* loop_free needs it even when loop_setup is not reached */
  const char *log_path = o->log_path ? o->log_path : t->log;
  /* over several ranks, rank 0 alone writes the log and checkpoints */
  bool writer = dist_rank(o->dist) == 0;
  if (!writer) log_path = NULL;
  int rc = writer ? check_outputs(p, t, o, log_path, err, errlen) : 0;
  if (rc == 0 && t->save && writer) rc = check_save_path(t->save, err, errlen);
  /* the checkpoint first: the data is encoded with its vocabulary */
  if (rc == 0 && o->resume) rc = mstate_load(ms, o->resume, true, err, errlen);
  if (rc) return rc;
  rc = loop_setup(L, p, t, ms, o, LOOP_STEP | LOOP_EVAL, err, errlen);
  if (rc) return rc;
  L->saved_step = -1;
  RaAlloc a = ms->alloc;
  size_t nw = (size_t)(ms->nweights ? ms->nweights : 1);
  if (!ms->opt_m) ms->opt_m = ra_calloc(&a, nw, sizeof(float));
  if (!ms->opt_v) ms->opt_v = ra_calloc(&a, nw, sizeof(float));
  if (!ms->opt_m || !ms->opt_v)
    return fail(err, errlen, RA_ENOMEM, "out of memory for optimizer state");
  L->opt = (Optim){.kind = t->opt, .lr = t->lr, .momentum = t->momentum, .beta1 = t->beta1,
                   .beta2 = t->beta2, .eps = t->eps, .weight_decay = t->weight_decay,
                   .n = ms->nweights, .m = ms->opt_m, .v = ms->opt_v, .t = ms->step,
                   .pool = L->kc.pool};
  double jms;
  rc = loop_jit_update(L, &jms, err, errlen);
  if (rc) return rc;
  if (log_path) return log_open(&L->log, log_path, o->resume ? ms->step : -1, err, errlen);
  return 0;
}

/* The end of an epoch (or an evaluation point) after `step` steps: the
 * evaluation, the epoch's line and the checkpoint. */
static int run_checkpoint(Loop *L, int64_t epoch, int64_t step, int64_t total, bool do_eval,
                          double train_loss, double rate, char *err, size_t errlen) {
  const TrainDecl *t = L->t;
  const RunOptions *o = L->o;
  const Model *m = L->step.m;
  char line[512] = "";
  int rc = 0;
  if (do_eval && L->ds->split_n[t->eval_split] > 0) {
    EvalResult r;
    rc = log_flush(&L->log, err, errlen); /* the steps are out before a long evaluation */
    if ((rc = agreed(L, rc, err, errlen)) != 0) return rc;
    rc = run_eval(&L->eval, L->ds, t->eval_split, &L->kc, m->ngroups, L->dist, o->stop, &r, err,
                  errlen);
    if (rc == RA_ESTOPPED) rc = loop_stop(L, total, false, err, errlen);
    if (rc) return rc;
    eval_text(&r, t->eval_split, t->metrics | MET_LOSS, line, sizeof line);
    rc = eval_json(&L->log, &r, t->eval_split, step, L->ms->epoch, m, t->metrics, err, errlen);
    if ((rc = agreed(L, rc, err, errlen)) != 0) return rc;
  }
  if (!o->quiet)
    emit(o, "epoch %lld step %lld/%lld  train loss %.4f  %s  (%.1f steps/s)", (long long)(epoch + 1),
         (long long)step, (long long)total, train_loss, line, rate);
  if (t->save) {
    rc = loop_save(L, t->save, err, errlen);
    if (rc == 0) L->saved_step = L->ms->step;
  }
  return rc;
}

/* Steps from the model's step to `total`, spe steps an epoch. */
static int run_steps(Loop *L, int64_t total, int64_t spe, DataOrder *order, char *err,
                     size_t errlen) {
  const TrainDecl *t = L->t;
  const RunOptions *o = L->o;
  ModelState *ms = L->ms;
  double t0 = clock_seconds(), last_print = 0, loss_sum = 0;
  int64_t loss_n = 0, cur_epoch = -1, first_step = ms->step;
  for (int64_t step = first_step; step < total; step++) {
    int64_t epoch = step / spe, in_epoch = step % spe;
    if (epoch != cur_epoch) {
      data_shuffle(L->ds, SPLIT_TRAIN, L->seed, epoch, order);
      cur_epoch = epoch;
    }
    bound_fill_rows(&L->step, L->ds, SPLIT_TRAIN, order, in_epoch * t->batch, t->batch,
                    (int64_t)L->rank * L->lbatch, L->lbatch);
    double loss;
    int rc = loop_step(L, step, total, &loss, err, errlen);
    if (rc) return rc;
    ms->step = step + 1;
    ms->epoch = (step + 1) / spe;
    L->opt.t = ms->step;
    loss_sum += loss;
    loss_n++;
    /* over several ranks rank 0's log error is agreed at the step's end */
    char lerr[512] = "";
    int lrc = log_step(&L->log, step + 1, loss, sched_lr(t, step, total),
                       L->nranks > 1 ? lerr : err, L->nranks > 1 ? sizeof lerr : errlen);
    if (lrc && L->nranks == 1) return lrc;
    double el = clock_seconds() - t0;
    double rate = (double)(step + 1 - first_step) / (el > 1e-9 ? el : 1e-9);
    if (o->progress && el - last_print > 0.1) {
      progress_line(L, step + 1, total, loss_sum / (double)loss_n, rate);
      last_print = el;
    }
    bool end_epoch = (step + 1) % spe == 0 || step + 1 == total;
    bool do_eval = t->eval_on && (t->eval_every_steps > 0 ? (step + 1) % t->eval_every_steps == 0
                                                          : end_epoch);
    if (end_epoch || do_eval) {
      rc = run_checkpoint(L, epoch, step + 1, total, do_eval,
                          loss_sum / (double)(loss_n ? loss_n : 1), rate, err, errlen);
      if (rc) return rc;
      loss_sum = 0;
      loss_n = 0;
    }
    /* last, so a callback that stops at an epoch's end finds its checkpoint */
    bool by_callback = o->on_step && o->on_step(o->step_ud, step + 1, loss) != 0;
    bool stop = by_callback || stop_requested(o->stop);
    if (L->nranks > 1) { /* rank 0's log and any rank's stop, agreed by all */
      if (lrc) snprintf(err, errlen, "%s", lerr);
      rc = dist_agree(L->dist, lrc, err, errlen, &stop);
      if (rc) return rc;
    }
    if (stop) return loop_stop(L, total, by_callback, err, errlen);
  }
  return 0;
}

/* After the last step: the test split, and the save path holds the final
 * state (a resumed finished run included). */
static int run_finish(Loop *L, int64_t total, char *err, size_t errlen) {
  const TrainDecl *t = L->t;
  const RunOptions *o = L->o;
  ModelState *ms = L->ms;
  int rc = 0;
  if (L->ds->split_n[SPLIT_TEST] > 0) {
    EvalResult r;
    rc = run_eval(&L->eval, L->ds, SPLIT_TEST, &L->kc, L->step.m->ngroups, L->dist, o->stop, &r,
                  err, errlen);
    if (rc == RA_ESTOPPED) return loop_stop(L, total, false, err, errlen);
    if (rc) return rc;
    char line[512];
    eval_text(&r, SPLIT_TEST, t->metrics | MET_LOSS, line, sizeof line);
    emit(o, "%s", line);
    rc = eval_json(&L->log, &r, SPLIT_TEST, ms->step, ms->epoch, L->step.m, t->metrics, err, errlen);
    if ((rc = agreed(L, rc, err, errlen)) != 0) return rc;
  }
  if (t->save && L->saved_step != ms->step) {
    rc = loop_save(L, t->save, err, errlen);
    if (rc) return rc;
    L->saved_step = ms->step;
  }
  if (L->saved_step >= 0) emit(o, "saved %s", t->save);
  return 0;
}

/* The options of one rank: over several, rank 0 alone prints. */
static RunOptions rank_options(const RunOptions *o) {
  RunOptions r = *o;
  if (dist_rank(o->dist) != 0) {
    r.log = NULL;
    r.progress = false;
  }
  return r;
}

int train_run(Program *p, const TrainDecl *t, ModelState *ms, const RunOptions *o0, char *err,
              size_t errlen) {
  RunOptions ro = rank_options(o0);
  const RunOptions *o = &ro;
  Loop L;
  int rc = run_prepare(&L, p, t, ms, o, err, errlen);
  int64_t ntrain = rc ? 0 : L.ds->split_n[SPLIT_TRAIN];
  DataOrder order;
  memset(&order, 0, sizeof order);
  if (rc == 0 && data_order_init(&order, L.ds, SPLIT_TRAIN) != 0)
    rc = fail(err, errlen, RA_ENOMEM, "out of memory");
  /* every rank is ready, or none starts */
  if (o->dist) rc = dist_agree(o->dist, rc, err, errlen, NULL);
  if (rc) {
    data_order_free(&order);
    if (L.p) loop_free(&L); /* loop_setup was reached */
    return rc;
  }
  int64_t spe = (ntrain + t->batch - 1) / t->batch;
  int64_t total = t->steps > 0 ? t->steps : t->epochs * spe;
  char ranks[96] = "";
  if (L.nranks > 1)
    snprintf(ranks, sizeof ranks, " on each of %d processes (%lld examples each a step)",
             L.nranks, (long long)L.lbatch);
  if (!o->quiet)
    emit(o, "training %s on %s: %lld parameters, %lld train / %lld valid / %lld test examples, "
          "%lld steps, batch %lld, %d threads%s",
         L.step.m->name, t->data, (long long)ms->nweights, (long long)ntrain,
         (long long)L.ds->split_n[SPLIT_VALID], (long long)L.ds->split_n[SPLIT_TEST],
         (long long)total, (long long)t->batch, L.kc.threads, ranks);
  int64_t first_step = ms->step;
  rc = run_steps(&L, total, spe, &order, err, errlen);
  data_order_free(&order);
  if (rc == 0 && first_step >= total && !o->quiet)
    emit(o, "nothing to train: the checkpoint is at step %lld and the run has %lld steps",
         (long long)first_step, (long long)total);
  if (rc == 0) rc = run_finish(&L, total, err, errlen);
  /* the records so far are written out on errors too; the first error wins */
  char lerr[512];
  int lrc = log_close(&L.log, lerr, sizeof lerr);
  if (lrc && rc == 0) rc = fail(err, errlen, lrc, "%s", lerr);
  loop_free(&L);
  return rc;
}

int train_eval(Program *p, const TrainDecl *t, ModelState *ms, const RunOptions *o0, int split,
               EvalResult *r, char *err, size_t errlen) {
  RunOptions ro = rank_options(o0);
  const RunOptions *o = &ro;
  Loop L;
  int rc = loop_setup(&L, p, t, ms, o, LOOP_EVAL, err, errlen);
  if (o->dist) rc = dist_agree(o->dist, rc, err, errlen, NULL);
  if (rc == 0) {
    if (L.ds->split_n[split] == 0)
      rc = fail(err, errlen, RA_EDATA, "the %s split of '%s' is empty", split_name(split), t->data);
    else
      rc = run_eval(&L.eval, L.ds, split, &L.kc, L.eval.m->ngroups, L.dist, o->stop, r, err,
                    errlen);
  }
  loop_free(&L);
  return rc;
}

/* ---- head ablation ---- */

double ablation_value(const Ablation *a, const EvalResult *r) {
  return a->metric == MET_ACCURACY ? r->accuracy : a->metric == MET_PERPLEXITY ? r->perplexity
                                                                               : r->loss;
}

const char *ablation_metric_name(const Ablation *a) {
  return a->metric == MET_ACCURACY ? "accuracy" : a->metric == MET_PERPLEXITY ? "perplexity" : "loss";
}

static bool ablation_better(const Ablation *a, double x, double y) {
  return a->metric == MET_ACCURACY ? x > y : x < y;
}

void ablation_free(RaAlloc alloc, Ablation *a) {
  size_t n = (size_t)(a->nheads > 0 ? a->nheads : 1);
  ra_free_mem(&alloc, a->group, n * sizeof(int));
  ra_free_mem(&alloc, a->head, n * sizeof(int));
  ra_free_mem(&alloc, a->order, n * sizeof(int));
  ra_free_mem(&alloc, a->single, n * sizeof(double));
  ra_free_mem(&alloc, a->greedy, n * sizeof(double));
  memset(a, 0, sizeof *a);
}

/* The candidates' rows of wo in w: the original's (orig), zero for the
 * heads marked removed. */
static void ablation_apply(const Model *m, const Ablation *a, const bool *removed, float *w,
                           const float *orig) {
  for (int i = 0; i < a->nheads; i++) {
    const HeadGroup *hg = &m->groups[a->group[i]];
    int64_t rows = hg->head_dim * hg->dim;
    int64_t off = m->params[hg->wo].offset + (int64_t)a->head[i] * rows;
    if (removed[i]) memset(w + off, 0, (size_t)rows * sizeof(float));
    else memcpy(w + off, orig + off, (size_t)rows * sizeof(float));
  }
}

int train_ablate(Program *p, const TrainDecl *t, ModelState *ms, const RunOptions *o0, int split,
                 Ablation *a, char *err, size_t errlen) {
  memset(a, 0, sizeof *a);
  RaAlloc al = ms->alloc;
  RunOptions ro = rank_options(o0);
  const RunOptions *o = &ro;
  Loop L;
  int rc = loop_setup(&L, p, t, ms, o, LOOP_EVAL, err, errlen);
  if (o->dist) rc = dist_agree(o->dist, rc, err, errlen, NULL);
  float *orig = NULL;
  bool *removed = NULL;
  size_t nw = (size_t)(ms->nweights ? ms->nweights : 1);
  const Model *m = rc == 0 ? L.eval.m : NULL;
  if (rc == 0 && L.ds->split_n[split] == 0)
    rc = fail(err, errlen, RA_EDATA, "the %s split of '%s' is empty", split_name(split), t->data);
  if (rc == 0) {
    bool classifies = ir_find_output(L.eval.f, OUT_PRED, -1) && m->ntargets > 0;
    a->metric = classifies && (t->metrics & MET_ACCURACY) ? MET_ACCURACY
                : (t->metrics & MET_PERPLEXITY)           ? MET_PERPLEXITY
                                                          : MET_LOSS;
    for (int g = 0; g < m->ngroups; g++)
      if (!m->groups[g].attnpool && m->groups[g].wo >= 0) a->nheads += (int)m->groups[g].heads;
    if (a->nheads == 0)
      rc = fail(err, errlen, RA_EUSAGE,
                "model '%s' has no attention layer whose heads can be removed (the hops of "
                "attnpool have no output projection)",
                m->name);
  }
  if (rc == 0) {
    size_t n = (size_t)a->nheads;
    a->group = ra_calloc(&al, n, sizeof(int));
    a->head = ra_calloc(&al, n, sizeof(int));
    a->order = ra_calloc(&al, n, sizeof(int));
    a->single = ra_calloc(&al, n, sizeof(double));
    a->greedy = ra_calloc(&al, n, sizeof(double));
    orig = ra_malloc(&al, nw * sizeof(float));
    removed = ra_calloc(&al, n, sizeof(bool));
    if (!a->group || !a->head || !a->order || !a->single || !a->greedy || !orig || !removed)
      rc = fail(err, errlen, RA_ENOMEM, "out of memory for the head ablation");
  }
  if (rc == 0) {
    memcpy(orig, ms->w, nw * sizeof(float));
    int k = 0;
    for (int g = 0; g < m->ngroups; g++) {
      if (m->groups[g].attnpool || m->groups[g].wo < 0) continue;
      for (int h = 0; h < m->groups[g].heads; h++) a->group[k] = g, a->head[k++] = h;
    }
    rc = run_eval(&L.eval, L.ds, split, &L.kc, m->ngroups, L.dist, o->stop, &a->base, err, errlen);
  }
  for (int step = 0; rc == 0 && step < a->nheads; step++) {
    int best = -1;
    double bestv = 0;
    for (int i = 0; i < a->nheads && rc == 0; i++) {
      if (removed[i]) continue;
      removed[i] = true;
      ablation_apply(m, a, removed, ms->w, orig);
      EvalResult r;
      rc = run_eval(&L.eval, L.ds, split, &L.kc, m->ngroups, L.dist, o->stop, &r, err, errlen);
      removed[i] = false;
      if (rc) break;
      double v = ablation_value(a, &r);
      if (step == 0) a->single[i] = v;
      if (best < 0 || ablation_better(a, v, bestv)) best = i, bestv = v;
    }
    if (rc) break;
    removed[best] = true;
    a->order[step] = best;
    a->greedy[step] = bestv;
    if (!o->quiet)
      emit(o, "removed %s head %d: %s %.4f, %d heads left", m->groups[a->group[best]].path,
           a->head[best], ablation_metric_name(a), bestv, a->nheads - step - 1);
  }
  if (orig) memcpy(ms->w, orig, nw * sizeof(float));
  ra_free_mem(&al, orig, nw * sizeof(float));
  if (removed) ra_free_mem(&al, removed, (size_t)a->nheads * sizeof(bool));
  if (rc) ablation_free(al, a);
  loop_free(&L);
  return rc;
}

static double step_flops(const IrFunc *f) {
  double fl = 0;
  for (int i = 0; i < f->n; i++) fl += ir_matmul_flops(f, &f->nodes[i]);
  return fl;
}

int train_bench(Program *p, const TrainDecl *t, ModelState *ms, const RunOptions *o0,
                int64_t steps, char *report, size_t replen, char *err, size_t errlen) {
  RunOptions ro = rank_options(o0);
  const RunOptions *o = &ro;
  Loop L;
  int rc = loop_setup(&L, p, t, ms, o, LOOP_STEP, err, errlen);
  if (o->dist) rc = dist_agree(o->dist, rc, err, errlen, NULL);
  RaAlloc a = ms->alloc;
  size_t nw = (size_t)(ms->nweights ? ms->nweights : 1);
  float *m1 = NULL, *v1 = NULL;
  if (rc == 0) {
    m1 = ra_calloc(&a, nw, sizeof(float));
    v1 = ra_calloc(&a, nw, sizeof(float));
    if (!m1 || !v1) rc = fail(err, errlen, RA_ENOMEM, "out of memory");
  }
  if (rc == 0) {
    L.opt = (Optim){.kind = t->opt, .lr = t->lr, .momentum = t->momentum, .beta1 = t->beta1,
                    .beta2 = t->beta2, .eps = t->eps, .weight_decay = t->weight_decay,
                    .n = ms->nweights, .m = m1, .v = v1, .pool = L.kc.pool};
    double opt_ms = 0;
    rc = loop_jit_update(&L, &opt_ms, err, errlen);
    int64_t ntrain = L.ds->split_n[SPLIT_TRAIN];
    DataOrder order;
    if (data_order_init(&order, L.ds, SPLIT_TRAIN) != 0) rc = fail(err, errlen, RA_ENOMEM, "out of memory");
    else data_shuffle(L.ds, SPLIT_TRAIN, L.seed, 0, &order);
    double loss = 0, t0 = 0, wait0 = 0, fin0 = 0;
    int64_t early0 = 0;
    StepProfile prof = {0};
    if (rc == 0 && o->profile && profile_init(&prof, a, L.step.f->n) != 0)
      rc = fail(err, errlen, RA_ENOMEM, "out of memory");
    if (o->dist) rc = dist_agree(o->dist, rc, err, errlen, NULL);
    for (int64_t s = 0; s <= steps && rc == 0; s++) {
      if (s == 1) { /* step 0 warms up */
        t0 = clock_seconds();
        wait0 = L.gs.wait_s;
        fin0 = L.gs.finish_s;
        early0 = L.gs.early_floats;
        if (prof.node_s) {
          L.kc.node_s = prof.node_s;
          L.prof = &prof;
        }
      }
      bound_fill_rows(&L.step, L.ds, SPLIT_TRAIN, &order, (s * t->batch) % (ntrain ? ntrain : 1),
                      t->batch, (int64_t)L.rank * L.lbatch, L.lbatch);
      rc = loop_step(&L, s, steps + 1, &loss, err, errlen);
    }
    data_order_free(&order);
    L.kc.node_s = NULL;
    L.prof = NULL;
    if (rc == 0) {
      double el = clock_seconds() - t0;
      double sps = (double)steps / el;
      double flops = step_flops(L.step.f);
      size_t peak = L.step.plan->arena_bytes + L.step.plan->const_bytes +
                    (size_t)ms->nweights * sizeof(float) * 4;
      for (int k = 0; k < L.step.nin; k++) peak += L.step.in_bytes[k];
      /* the process's resident peak (getrusage: KiB on Linux), as a peer
       * program measures its own */
      struct rusage ru;
      double rss = getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / 1024.0 : 0.0;
      const char *kernels = "";
      const char *gemm = k_gemm_backend(&kernels);
      snprintf(report, replen,
               "model %s  batch %lld  threads %d  steps %lld  gemm %s (%s)\n"
               "steps/s %.3f\nsamples/s %.1f\nms/step %.2f\nGFLOP/step %.3f\nGFLOP/s %.2f\n"
               "peak memory %.1f MiB (arena %.1f MiB)\nmax rss %.1f MiB\nloss %.4f\n",
               L.step.m->name, (long long)t->batch, L.kc.threads, (long long)steps, gemm, kernels,
               sps, sps * (double)t->batch, 1000.0 / sps, flops * 1e-9, flops * 1e-9 * sps,
               (double)peak / 1048576.0, (double)L.step.plan->arena_bytes / 1048576.0, rss, loss);
      if (L.nranks > 1) {
        /* the reduction alone: every gradient in one blocking call, after
         * the ranks met (no compute, no waiting for a slower rank) */
        double alone = 0;
        for (int k = 0; k < 10 && rc == 0; k++) {
          rc = dist_agree(L.dist, 0, err, errlen, NULL);
          double a0 = clock_seconds();
          if (rc == 0) rc = dist_reduce(L.dist, L.gs.buf, L.gs.nbuf, err, errlen);
          alone += clock_seconds() - a0;
        }
        size_t k = strlen(report);
        double mib = (double)L.gs.nbuf * sizeof(float) / 1048576.0;
        snprintf(report + k, replen > k ? replen - k : 0,
                 "ranks %d (batch %lld each)\nallreduce %.2f MiB/step in %d bucket%s (%s)\n"
                 "allreduce wait ms/step %.2f (after the backward pass)\n"
                 "allreduce finish ms/step %.2f (wait, copies and the mean)\n"
                 "allreduce alone ms %.2f (one blocking call of every gradient)\n"
                 "allreduce done during the backward pass %.1f%% of the bytes\n",
                 L.nranks, (long long)L.lbatch, mib, L.gs.nbuckets, L.gs.nbuckets == 1 ? "" : "s",
                 L.overlap ? "overlapping the backward pass" : "one reduction after it",
                 1000.0 * (L.gs.wait_s - wait0) / (double)steps,
                 1000.0 * (L.gs.finish_s - fin0) / (double)steps, 1000.0 * alone / 10.0,
                 100.0 * (double)(L.gs.early_floats - early0) /
                     ((double)(L.gs.nbuf ? L.gs.nbuf : 1) * (double)steps));
      }
      if (o->jit) {
        size_t k = strlen(report);
        snprintf(report + k, replen > k ? replen - k : 0,
                 "jit compile %.0f ms (%d of %d nodes, %d kernels, %s)\n", L.step.jit_ms + opt_ms,
                 L.step.ex->jit->ncompiled, L.step.f->n, L.step.ex->jit->nkernels, exec_jit_target(o->jit));
      }
      if (prof.node_s) profile_report(&prof, L.step.f, steps, el, report, replen);
    }
    profile_free(&prof);
  }
  ra_free_mem(&a, m1, nw * sizeof(float));
  ra_free_mem(&a, v1, nw * sizeof(float));
  loop_free(&L);
  return rc;
}

/* ---- prediction on raw text ---- */

typedef struct TextBuf {
  RaAlloc alloc;
  char *s;
  size_t n, cap;
  bool failed; /* a realloc failed: the text is incomplete */
} TextBuf;

static void tb_add(TextBuf *b, const char *s, size_t k) {
  if (b->failed) return;
  if (b->n + k + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 1024;
    while (cap < b->n + k + 1) cap *= 2;
    char *ns = ra_realloc(&b->alloc, b->s, b->cap, cap);
    if (!ns) {
      b->failed = true;
      return;
    }
    b->s = ns;
    b->cap = cap;
  }
  memcpy(b->s + b->n, s, k);
  b->n += k;
  b->s[b->n] = 0;
}

static void tb_puts(TextBuf *b, const char *s) { tb_add(b, s, strlen(s)); }

/* s[0..n) with each byte that starts no valid UTF-8 sequence written as
 * U+FFFD (byte-pair tokens may end inside a character, and a sampled
 * sequence of them need not join into valid text). */
static void tb_add_utf8(TextBuf *b, const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, run = 0;
  while (i < n) {
    int k = utf8_seq_len(u + i, n - i, NULL);
    if (k > 0) {
      i += (size_t)k;
      continue;
    }
    tb_add(b, s + run, i - run);
    tb_add(b, "\xEF\xBF\xBD", 3);
    run = ++i;
  }
  tb_add(b, s + run, n - run);
}

/* How predict picks each generated token (RunOptions' predict_*). */
typedef struct Sampler {
  int64_t tokens;
  double temperature;
  int64_t top_k;     /* 0: every token */
  bool greedy;
  uint64_t seed;
  int64_t *order;    /* [K] scratch for top-k */
} Sampler;

/* x[a] ranks above x[b]: larger, ties to the smaller id. */
static bool ranks_above(const float *x, int64_t a, int64_t b) {
  return x[a] > x[b] || (x[a] == x[b] && a < b);
}

/* A token from logits x[K]: the argmax when greedy (or top-k 1), else
 * sampled at the temperature among the top k (all when 0) with the counter
 * RNG, draw i. */
static int64_t sample_token(const float *x, int64_t K, const Sampler *s, uint64_t i) {
  int64_t arg = 0;
  for (int64_t k = 1; k < K; k++) if (ranks_above(x, k, arg)) arg = k;
  if (s->greedy || s->top_k == 1) return arg;
  int64_t n = K;
  const int64_t *ids = NULL;
  if (s->top_k > 0 && s->top_k < K) {
    /* the k best by partial selection: order[0..k) sorted by rank */
    n = s->top_k;
    int64_t m = 0;
    for (int64_t k = 0; k < K; k++) {
      int64_t j = m < n ? m++ : n;
      if (j == n && !ranks_above(x, k, s->order[n - 1])) continue;
      if (j == n) j = n - 1;
      while (j > 0 && ranks_above(x, k, s->order[j - 1])) {
        s->order[j] = s->order[j - 1];
        j--;
      }
      s->order[j] = k;
    }
    ids = s->order;
  }
  double mx = x[arg], sum = 0;
  for (int64_t k = 0; k < n; k++) sum += exp((x[ids ? ids[k] : k] - mx) / s->temperature);
  double u = rng_uniform(s->seed, RNG_STREAM_DATA + 0x99, i) * sum, acc = 0;
  for (int64_t k = 0; k < n; k++) {
    acc += exp((x[ids ? ids[k] : k] - mx) / s->temperature);
    if (acc >= u) return ids ? ids[k] : k;
  }
  return ids ? ids[n - 1] : K - 1;
}

/* A line of numbers separated by commas, tabs or spaces into the model's
 * input 0 (f32, or integer ids for an int input). */
static int encode_numbers(Bound *b, const char *line, const char *src, int64_t lineno,
                          char *err, size_t errlen) {
  const IrType *t = &b->m->inputs[0].type;
  int64_t want = 1;
  for (int i = t->batched ? 1 : 0; i < t->rank; i++) want *= t->dim[i];
  bool ints = t->dtype == IR_I32;
  int64_t got = 0;
  const char *s = line;
  for (;;) {
    while (*s == ' ' || *s == '\t' || *s == ',') s++;
    if (!*s) break;
    char *end = NULL;
    errno = 0;
    double v = 0;
    if (ints) {
      long long iv = strtoll(s, &end, 10);
      if (errno || iv < INT32_MIN || iv > INT32_MAX) end = (char *)s;
      v = (double)iv;
    } else {
      v = strtod(s, &end);
      if (!isfinite(v) || fabs(v) > 3.4e38) end = (char *)s;
    }
    if (end == s || (*end && *end != ' ' && *end != '\t' && *end != ',')) {
      size_t w = strcspn(s, " \t,");
      return fail(err, errlen, RA_EDATA, "%s%s%lld: column %lld: expected %s, found '%.*s'",
                  src ? src : "input line", src ? ":" : " ", (long long)lineno, (long long)got,
                  ints ? "an integer id" : "a number", (int)(w > 40 ? 40 : w), s);
    }
    if (got < want) {
      if (ints) ((int32_t *)b->in[0])[got] = (int32_t)v;
      else ((float *)b->in[0])[got] = (float)v;
    }
    got++;
    s = end;
  }
  if (got != want)
    return fail(err, errlen, RA_EDATA, "%s%s%lld: expected %lld %s (input '%s'), found %lld",
                src ? src : "input line", src ? ":" : " ", (long long)lineno, (long long)want,
                ints ? "ids" : "numbers", b->m->inputs[0].name, (long long)got);
  return 0;
}

/* The model's first output, its numbers separated by spaces. */
static void print_values(const Bound *b, TextBuf *out) {
  const IrOutput *oo = ir_find_output(b->f, OUT_OUTPUT, -1);
  if (!oo) return;
  const IrType *ot = &b->f->nodes[oo->value].type;
  int64_t n = ir_numel(ot);
  const float *x = exec_ptr(b->ex, oo->value);
  char num[48];
  for (int64_t i = 0; i < n; i++) {
    snprintf(num, sizeof num, "%s%.6g", i ? " " : "", (double)x[i]);
    tb_puts(out, num);
  }
}

/* One line of the text to predict for (line number lineno of src, a file's
 * path, or of the text given inline when src is NULL). */
static void predict_line(Bound *b, const DataSet *ds, const char *line, const char *src,
                         int64_t lineno, KernelCtx *kc, const Sampler *sm, TextBuf *out,
                         char *err, size_t errlen, int *rc) {
  const IrOutput *po = ir_find_output(b->f, OUT_PRED, -1);
  int32_t *in = b->in[0];
  int64_t T = b->m->inputs[0].type.dim[0];
  if (ds->tok[0] == TOK_NONE) { /* numbers or ids, as in the data's columns */
    if ((*rc = encode_numbers(b, line, src, lineno, err, errlen))) return;
    if ((*rc = bound_run(b, kc, err, errlen))) return;
    if (!po) {
      print_values(b, out);
      tb_puts(out, "\t");
      tb_puts(out, line);
      tb_puts(out, "\n");
      return;
    }
  }
  int n = ds->tok[0] == TOK_NONE ? 0 : data_encode_text(ds, 0, line, in);
  if (n < 0) {
    *rc = fail(err, errlen, RA_EDATA, "%s%s%lld: cannot encode '%.40s%s' (not valid UTF-8, or "
                                      "the model's input is not text)",
               src ? src : "input line", src ? ":" : " ", (long long)lineno, line,
               strlen(line) > 40 ? "..." : "");
    return;
  }
  const IrType *lt = &b->f->nodes[po->value].type;
  int64_t K = lt->dim[lt->rank - 1];
  if (lt->rank == 2) { /* one class per example */
    if (ds->tok[0] != TOK_NONE && (*rc = bound_run(b, kc, err, errlen))) return;
    const float *x = exec_ptr(b->ex, po->value);
    double mx = x[0], sum = 0;
    int64_t arg = 0;
    for (int64_t k = 1; k < K; k++) if (x[k] > mx) { mx = x[k]; arg = k; }
    for (int64_t k = 0; k < K; k++) sum += exp(x[k] - mx);
    char head[64];
    const char *name = ds->label_names && arg < ds->classes ? ds->label_names[arg] : NULL;
    if (name) tb_puts(out, name); /* a label of any length */
    else {
      snprintf(head, sizeof head, "%lld", (long long)arg);
      tb_puts(out, head);
    }
    snprintf(head, sizeof head, "\t%.3f\t", 1.0 / sum);
    tb_puts(out, head);
    tb_puts(out, line);
    tb_puts(out, "\n");
    return;
  }
  bool words = ds->decl->loader == LOADER_TEXT ? ds->tok[0] == TOK_WORDS : true;
  if (ds->decl->loader != LOADER_TEXT) { /* one class per position */
    if ((*rc = bound_run(b, kc, err, errlen))) return;
    const float *x = exec_ptr(b->ex, po->value);
    for (int64_t i = 0; i < n && i < T; i++) {
      int64_t arg = 0;
      for (int64_t k = 1; k < K; k++) if (x[i * K + k] > x[i * K + arg]) arg = k;
      if (i && words) tb_puts(out, " ");
      /* class labels per position (labels columns) by name, else tokens */
      tb_puts(out, ds->label_names && arg < ds->classes ? ds->label_names[arg]
                   : arg < ds->vocab.n                  ? ds->vocab.words[arg]
                                                        : "?");
    }
    tb_puts(out, "\t");
    tb_puts(out, line);
    tb_puts(out, "\n");
    return;
  }
  /* a language model: continue the text (causal models read position n-1) */
  int64_t len = n > 0 ? n : 1;
  if (n == 0) in[0] = 0;
  tb_puts(out, line);
  bool bytes = ds->tok[0] == TOK_BPE; /* tokens are bytes: joined, then made valid */
  TextBuf gen = {out->alloc, NULL, 0, 0, false};
  TextBuf *to = bytes ? &gen : out;
  for (int64_t g = 0; g < sm->tokens; g++) {
    if ((*rc = bound_run(b, kc, err, errlen))) break;
    const float *x = (const float *)exec_ptr(b->ex, po->value) + (len - 1) * K;
    int64_t tok = sample_token(x, K, sm, (uint64_t)g);
    const char *w = tok < ds->vocab.n ? ds->vocab.words[tok] : "?";
    if (words) tb_puts(to, " ");
    tb_puts(to, tok <= 1 ? "" : w);
    if (len < T) {
      in[len++] = (int32_t)tok;
    } else {
      memmove(in, in + 1, (size_t)(T - 1) * sizeof(int32_t));
      in[T - 1] = (int32_t)tok;
    }
  }
  if (bytes) {
    if (gen.failed) out->failed = true;
    else if (gen.n) tb_add_utf8(out, gen.s, gen.n);
    ra_free_mem(&gen.alloc, gen.s, gen.cap);
  }
  if (*rc) return;
  tb_puts(out, "\n");
}

int train_predict(Program *p, const TrainDecl *t, ModelState *ms, const RunOptions *o,
                  const char *text, const char *src, char **result, char *err, size_t errlen) {
  *result = NULL;
  const AstItem *item = sema_find_model(p, t->model);
  const DataDecl *dd = NULL;
  for (int i = 0; i < p->ndata; i++)
    if (strcmp(p->data[i].name, t->data) == 0) dd = &p->data[i];
  if (!item || !dd) return fail(err, errlen, RA_ENOTFOUND, "no model or data for '%s'", t->model);
  /* the checkpoint's vocabulary and labels when it has them: no data file */
  DataSet *ds = ms->vocab && ms->vocab->ntokens > 0 ? data_from_vocab(ms->alloc, dd, ms->vocab, err, errlen)
                                                    : data_load(ms->alloc, dd, err, errlen);
  if (!ds) return RA_EDATA;
  Bound b;
  int rc = bound_make(&b, ms->alloc, p, item, 1, -1, false, ms, err, errlen);
  if (rc == 0) rc = bound_alloc(&b, ms, o->jit, err, errlen);
  bool numbers = ds->nin == 1 && ds->tok[0] == TOK_NONE;
  if (rc == 0 && numbers && b.m->ninputs == 1 &&
      (ir_find_output(b.f, OUT_PRED, -1) || ir_find_output(b.f, OUT_OUTPUT, -1))) {
    /* features or integer ids: one line of numbers per example */
  } else if (rc == 0 && (b.m->ninputs != 1 || b.m->inputs[0].type.dtype != IR_I32 ||
                  b.m->inputs[0].type.rank != 1 || !ir_find_output(b.f, OUT_PRED, -1)))
    rc = fail(err, errlen, RA_EUSAGE,
              "predict needs a model with one input and a cross_entropy loss (or, for numbers, "
              "an 'output'); '%s' has %d inputs", t->model, b.m->ninputs);
  KernelCtx kc;
  memset(&kc, 0, sizeof kc);
  Pool *own_pool = NULL;
  kc.pool = run_pool(o, ms->alloc, o->threads > 0 ? o->threads : o->default_threads, &own_pool);
  kc.threads = pool_size(kc.pool);
  kc.externs = o->externs;
  kc.nexterns = o->nexterns;
  TextBuf out = {ms->alloc, NULL, 0, 0, false};
  Sampler sm;
  sm.tokens = o->predict_tokens > 0 ? o->predict_tokens : 200;
  sm.temperature = o->predict_temperature > 0 ? o->predict_temperature : 0.8;
  sm.top_k = o->predict_top_k > 0 ? o->predict_top_k : 0;
  sm.greedy = o->predict_greedy;
  sm.seed = o->has_seed ? o->seed : t->seed;
  sm.order = NULL;
  size_t order_bytes = 0;
  if (rc == 0 && sm.top_k > 1) {
    order_bytes = sizeof(int64_t) * (size_t)sm.top_k;
    sm.order = ra_malloc(&ms->alloc, order_bytes);
    if (!sm.order) rc = fail(err, errlen, RA_ENOMEM, "out of memory for top-k");
  }
  const char *s = text;
  char *line = NULL; /* the current line, of any length */
  size_t linecap = 0;
  int64_t lineno = 0;
  while (rc == 0 && *s) {
    const char *e = strchr(s, '\n');
    size_t k = e ? (size_t)(e - s) : strlen(s);
    lineno++;
    if (k + 1 > linecap) {
      size_t cap = linecap ? linecap : 256;
      while (cap < k + 1) cap *= 2;
      char *nl = ra_realloc(&ms->alloc, line, linecap, cap);
      if (!nl) {
        rc = fail(err, errlen, RA_ENOMEM, "out of memory for a line of %zu bytes", k);
        break;
      }
      line = nl;
      linecap = cap;
    }
    memcpy(line, s, k);
    line[k] = 0;
    if (k && line[k - 1] == '\r') line[k - 1] = 0;
    if (line[0]) predict_line(&b, ds, line, src, lineno, &kc, &sm, &out, err, errlen, &rc);
    s = e ? e + 1 : s + strlen(s);
  }
  ra_free_mem(&ms->alloc, line, linecap);
  if (sm.order) ra_free_mem(&ms->alloc, sm.order, order_bytes);
  bound_free(&b);
  data_free(ds);
  pool_free(own_pool);
  if (rc == 0 && !out.s) tb_puts(&out, "");
  if (rc == 0 && (!out.s || out.failed)) rc = fail(err, errlen, RA_ENOMEM, "out of memory");
  if (rc) {
    ra_free_mem(&ms->alloc, out.s, out.cap);
    return rc;
  }
  /* hand back exactly strlen + 1 bytes, so train_text_free knows the size */
  char *exact = ra_realloc(&ms->alloc, out.s, out.cap, out.n + 1);
  if (!exact) {
    ra_free_mem(&ms->alloc, out.s, out.cap);
    return fail(err, errlen, RA_ENOMEM, "out of memory");
  }
  *result = exact;
  return 0;
}

void train_text_free(RaAlloc alloc, char *s) {
  if (s) ra_free_mem(&alloc, s, strlen(s) + 1);
}

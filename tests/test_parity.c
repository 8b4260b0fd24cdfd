/* test_parity.c - numerical parity of a whole training step with PyTorch.
 *
 * For each spec in tests/parity/, tests/gen_golden_parity.py stored (in
 * tests/golden/parity/<name>.safetensors) random parameters, a batch of 4,
 * and what a float64 PyTorch implementation written from language.md
 * computes for them: the loss, the outputs, every parameter's gradient, the
 * gradient after the particle transform (svgd, or spos with its noise term
 * dropped) and the parameters after one AdamW step.  Here rac compiles the
 * spec (sema, lowering for batch 4, autodiff, passes, memory plan), runs the
 * step in the interpreter on those parameters and that batch, applies
 * particles_update_noise and optim_step, and compares each stage at float32
 * precision.  Parameter paths must match too: every parameter of the model
 * must be in the file and every parameter in the file in the model.
 */
#include <setjmp.h>

#include "testutil.h"
#include "jitutil.h"

#include "../compiler/autodiff.h"
#include "../compiler/program.h"
#include "../runtime/data/ckpt.h"
#include "../runtime/exec/exec.h"
#include "../runtime/train/optim.h"
#include "../runtime/train/particles.h"

#define RTOL 1e-4
#define ATOL 1e-5
#define BATCH 4

/* AdamW settings of the reference step (gen_golden_parity.py). */
#define LR 1e-2
#define BETA1 0.9
#define BETA2 0.999
#define EPS 1e-8
#define WD 0.01

typedef struct Rig {
  RaAlloc alloc;
  Arena arena;
  jmp_buf oom;
  SrcSet src;
  DiagList diags;
  Program *prog;
  Model *m;
  Ckpt *ck;
  float *w;          /* parameters from the golden file, by ParamInfo.offset */
  float *g;          /* rac's gradients, same layout */
  int64_t *offs;
  const char *rep;   /* "svgd" or "spos": the golden file's prefix */
  float loss;
} Rig;

static const CkptTensor *need(const Rig *r, const char *name) {
  const CkptTensor *t = ckpt_find(r->ck, name);
  cr_assert(t != NULL, "the golden file has no tensor '%s'", name);
  return t;
}

static int64_t numel_of(const CkptTensor *t) {
  int64_t n = 1;
  for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
  return n;
}

static void shape_must_match(const CkptTensor *t, const IrType *ty, bool batched,
                             const char *what) {
  int off = batched ? 1 : 0;
  cr_assert_eq(t->ndim, ty->rank + off, "%s: rank %d in the golden file, %d in rac", what,
               t->ndim, ty->rank + off);
  if (batched) cr_assert_eq(t->shape[0], BATCH, "%s: batch %lld", what, (long long)t->shape[0]);
  for (int d = 0; d < ty->rank; d++)
    cr_assert_eq(t->shape[d + off], ty->dim[d], "%s: dim %d is %lld in the golden file, %lld in rac",
                 what, d, (long long)t->shape[d + off], (long long)ty->dim[d]);
}

/* sema, then lowering for batch BATCH; out of memory unwinds to here. */
static void rig_compile(Rig *r, const char *path, const char *text, size_t len,
                        const char *name) {
  arena_init(&r->arena, r->alloc);
  r->arena.oom_jmp = &r->oom;
  if (setjmp(r->oom)) cr_assert_fail("out of memory compiling %s", path);
  src_init(&r->src, &r->arena);
  diag_init(&r->diags, &r->arena, &r->src);
  int file = src_add(&r->src, path, text, len);
  CompileOptions co = {.stdlib_dir = "stdlib"};
  r->prog = sema_program(&r->arena, &r->src, &r->diags, file, &co);
  cr_assert(r->prog != NULL && r->diags.nerrors == 0, "%s does not compile:\n%s", path,
            diag_render(&r->diags, 0));
  const AstItem *item = sema_find_model(r->prog, name);
  cr_assert(item != NULL, "%s has no model '%s'", path, name);
  r->m = lower_model(r->prog, item, BATCH);
  cr_assert(r->m != NULL, "%s: lowering failed:\n%s", path, diag_render(&r->diags, 0));
  r->arena.oom_jmp = NULL; /* the frame of the setjmp above ends here */
}

/* Compiles tests/parity/<name>.ra for batch BATCH and loads the golden
 * parameters into w. */
static void rig_open(Rig *r, const char *name) {
  memset(r, 0, sizeof *r);
  r->alloc = ra_alloc_default();
  char path[256], err[1024] = "";
  snprintf(path, sizeof path, "tests/golden/parity/%s.safetensors", name);
  r->ck = ckpt_read(r->alloc, path, err, sizeof err);
  cr_assert(r->ck != NULL, "cannot read %s: %s", path, err);
  const char *rep = ckpt_meta(r->ck, "repulsion");
  cr_assert(rep != NULL, "%s: no 'repulsion' metadata", path);
  r->rep = rep;

  snprintf(path, sizeof path, "tests/parity/%s.ra", name);
  size_t len = 0;
  char *text = tu_read_file(path, &len);
  cr_assert(text != NULL, "cannot read %s", path);
  rig_compile(r, path, text, len, name);
  free(text);

  /* the parameters: same paths both ways, same shapes */
  const Model *m = r->m;
  r->w = calloc((size_t)m->nweights + 1, sizeof(float));
  r->g = calloc((size_t)m->nweights + 1, sizeof(float));
  r->offs = calloc((size_t)m->nparams + 1, sizeof(int64_t));
  cr_assert(r->w && r->g && r->offs);
  for (int i = 0; i < m->nparams; i++) {
    const ParamInfo *pi = &m->params[i];
    const CkptTensor *t = ckpt_find(r->ck, pi->path);
    cr_assert(t != NULL, "rac's parameter '%s' is not in the golden file (paths changed?)",
              pi->path);
    cr_assert_eq(t->dtype, 0);
    shape_must_match(t, &pi->type, false, pi->path);
    memcpy(r->w + pi->offset, t->data, (size_t)numel_of(t) * sizeof(float));
    r->offs[i] = pi->offset;
  }
  int nfile = 0;
  for (int k = 0; k < r->ck->n; k++) {
    const char *tn = r->ck->t[k].name;
    if (strchr(tn, '/') || !strncmp(tn, "input.", 6) || !strncmp(tn, "output.", 7) ||
        !strcmp(tn, "loss"))
      continue;
    bool found = false;
    for (int i = 0; i < m->nparams && !found; i++) found = !strcmp(m->params[i].path, tn);
    cr_assert(found, "the golden file's parameter '%s' is not a parameter of rac's model", tn);
    nfile++;
  }
  cr_assert_eq(nfile, m->nparams, "parameter counts differ: %d in the file, %d in rac", nfile,
               m->nparams);
}

static void rig_close(Rig *r) {
  free(r->w);
  free(r->g);
  free(r->offs);
  ckpt_free(r->ck);
  arena_free(&r->arena);
}

/* Runs f (compiled from fun) on the golden batch; calls back with the Exec
 * before freeing it. */
typedef void (*RunCheck)(Rig *r, const IrFunc *f, Exec *ex);

static void run_func(Rig *r, IrFunc *fun, RunCheck check) {
  IrFunc *f = pass_optimize(&r->arena, fun);
  cr_assert(f != NULL, "pass_optimize failed");
  MemPlan *plan = plan_memory(&r->arena, f);
  cr_assert(plan != NULL, "plan_memory failed");
  const Model *m = r->m;
  int nin = m->ninputs + m->ntargets;
  cr_assert_eq(m->ninputs, 1);
  cr_assert_eq(m->ntargets, 1);
  const CkptTensor *tok = need(r, "input.tokens"), *tgt = need(r, "input.target");
  cr_assert_eq(tok->dtype, 1);
  cr_assert_eq(tgt->dtype, 1);
  shape_must_match(tok, &m->inputs[0].type, true, "input.tokens");
  shape_must_match(tgt, &m->targets[0].type, true, "input.target");
  Exec *ex = exec_new(r->alloc, f, plan, r->w, r->offs, nin);
  cr_assert(ex != NULL, "exec_new failed (%zu arena bytes)", plan->arena_bytes);
  tu_maybe_jit(ex);
  ex->inputs[0] = tok->data;
  ex->inputs[1] = tgt->data;
  KernelCtx kc;
  memset(&kc, 0, sizeof kc);
  kc.threads = 1;
  kc.training = true;
  int rc = exec_run(ex, &kc);
  if (rc != 0) exec_free(ex);
  cr_assert_eq(rc, 0, "exec_run failed: %s", kc.err);
  check(r, f, ex);
  exec_free(ex);
}

static void take_grads(Rig *r, const IrFunc *f, Exec *ex) {
  const IrOutput *lo = ir_find_output(f, OUT_LOSS, -1);
  cr_assert(lo != NULL, "the step has no loss output");
  r->loss = *(const float *)exec_ptr(ex, lo->value);
  int ngrad = 0;
  for (int i = 0; i < f->nout; i++) {
    const IrOutput *o = &f->outs[i];
    if (o->role != OUT_GRAD) continue;
    cr_assert(o->index >= 0 && o->index < r->m->nparams);
    const ParamInfo *pi = &r->m->params[o->index];
    cr_assert(ir_numel(&f->nodes[o->value].type) == ir_numel(&pi->type));
    memcpy(r->g + pi->offset, exec_ptr(ex, o->value),
           (size_t)ir_numel(&pi->type) * sizeof(float));
    ngrad++;
  }
  cr_assert_eq(ngrad, r->m->nparams, "%d gradients for %d parameters", ngrad, r->m->nparams);
}

/* The training step: loss and gradients into r->loss, r->g. */
static void rig_step(Rig *r) {
  IrFunc *f = autodiff(&r->arena, r->m, NULL, 0, &r->diags);
  cr_assert(f != NULL, "autodiff failed:\n%s", diag_render(&r->diags, 0));
  run_func(r, f, take_grads);
}

static void cmp_param(const Rig *r, const char *prefix, const ParamInfo *pi, const float *got,
                      double rtol, double atol) {
  char name[512], what[600];
  snprintf(name, sizeof name, "%s%s", prefix, pi->path);
  const CkptTensor *t = need(r, name);
  cr_assert_eq(numel_of(t), ir_numel(&pi->type), "%s: size", name);
  snprintf(what, sizeof what, "%s (rac vs float64 PyTorch)", name);
  tu_allclose(got + pi->offset, t->data, numel_of(t), rtol, atol, what);
}

/* ---- loss, outputs and gradients ---- */

static void check_outputs(Rig *r, const IrFunc *f, Exec *ex) {
  const IrOutput *o = NULL;
  for (int i = 0; i < f->nout; i++)
    if (f->outs[i].role == OUT_OUTPUT && f->outs[i].name && !strcmp(f->outs[i].name, "probs"))
      o = &f->outs[i];
  cr_assert(o != NULL, "the forward pass has no output 'probs'");
  const CkptTensor *t = need(r, "output.probs");
  cr_assert_eq(ir_numel(&f->nodes[o->value].type), numel_of(t), "output.probs: size");
  tu_allclose(exec_ptr(ex, o->value), t->data, numel_of(t), RTOL, ATOL, "output.probs");
}

static void check_loss_grads(const char *name) {
  Rig r;
  rig_open(&r, name);
  rig_step(&r);
  const float *want = need(&r, "loss")->data;
  tu_allclose(&r.loss, want, 1, RTOL, ATOL, "loss");
  for (int i = 0; i < r.m->nparams; i++)
    cmp_param(&r, "grad/", &r.m->params[i], r.g, RTOL, ATOL);
  run_func(&r, r.m->fwd, check_outputs);
  rig_close(&r);
}

Test(parity, tiny_loss_outputs_and_gradients) { check_loss_grads("tiny"); }
Test(parity, tiny_lm_loss_outputs_and_gradients) { check_loss_grads("tiny_lm"); }

/* ---- the particle transform ---- */

/* Replaces r->g by the particle directions of every head group (noise-free
 * spos), as the training loop does.  Returns the number of sets updated. */
static int rig_particles(Rig *r) {
  const Model *m = r->m;
  int nsets = 0;
  for (int gi = 0; gi < m->ngroups; gi++) {
    const HeadGroup *hg = &m->groups[gi];
    if (hg->rep.kind == REP_NONE) continue;
    for (int s = 0; s < particles_nsets(hg); s++) {
      int64_t M = hg->heads, D = particles_dim(hg, m->params, s);
      cr_assert(M > 0 && D > 0);
      float *theta = calloc((size_t)(M * D), sizeof(float));
      float *g = calloc((size_t)(M * D), sizeof(float));
      float *work = calloc((size_t)particles_work_floats(M, D) + 1, sizeof(float));
      cr_assert(theta && g && work);
      particles_gather(hg, m->params, s, r->w, theta, NULL);
      particles_gather(hg, m->params, s, r->g, g, NULL);
      ParticleStats st;
      int rc = particles_update_noise(&hg->rep, M, D, theta, g, work, NULL, &st, NULL, NULL);
      cr_assert_eq(rc, 0, "particles_update_noise failed on set %d of %s", s, hg->path);
      particles_scatter(hg, m->params, s, g, r->g, NULL);
      free(theta);
      free(g);
      free(work);
      nsets++;
    }
  }
  return nsets;
}

static bool is_particle_param(const Rig *r, int pidx) {
  for (int gi = 0; gi < r->m->ngroups; gi++) {
    const HeadGroup *hg = &r->m->groups[gi];
    if (hg->rep.kind != REP_NONE && (pidx == hg->wq || pidx == hg->wk || pidx == hg->wv))
      return true;
  }
  return false;
}

static void check_particles(const char *name, RepKind kind, double alpha, double beta,
                            bool causal) {
  Rig r;
  rig_open(&r, name);
  /* the head group as the spec says */
  cr_assert_eq(r.m->ngroups, 1);
  const HeadGroup *hg = &r.m->groups[0];
  cr_assert_eq(hg->heads, 2);
  cr_assert_eq(hg->head_dim, 4);
  cr_assert_eq(hg->causal, causal);
  cr_assert_eq(hg->rep.kind, kind);
  cr_assert_eq(hg->rep.group, GROUP_EACH);
  cr_assert_eq(hg->rep.particles, (unsigned)(PART_Q | PART_K | PART_V));
  cr_assert(hg->rep.bw_median);
  cr_assert_float_eq(hg->rep.alpha, alpha, 1e-12);
  cr_assert_float_eq(hg->rep.stepsize, 1.0, 1e-12);
  if (kind == REP_SPOS) cr_assert_float_eq(hg->rep.beta, beta, 1e-12);
  cr_assert(hg->wq >= 0 && hg->wk >= 0 && hg->wv >= 0);

  rig_step(&r);
  float *before = malloc(sizeof(float) * (size_t)(r.m->nweights + 1));
  cr_assert(before);
  memcpy(before, r.g, sizeof(float) * (size_t)r.m->nweights);
  cr_assert_eq(rig_particles(&r), 3, "group each over q, k, v: three particle sets");
  char prefix[16];
  snprintf(prefix, sizeof prefix, "%s/", r.rep);
  for (int i = 0; i < r.m->nparams; i++) {
    const ParamInfo *pi = &r.m->params[i];
    if (is_particle_param(&r, i)) {
      cmp_param(&r, prefix, pi, r.g, RTOL, ATOL);
    } else {
      /* everything else keeps its gradient */
      int64_t n = ir_numel(&pi->type);
      cr_assert(memcmp(before + pi->offset, r.g + pi->offset, sizeof(float) * (size_t)n) == 0,
                "%s: the particle transform touched a non-particle gradient", pi->path);
    }
  }
  free(before);
  rig_close(&r);
}

Test(parity, tiny_svgd) { check_particles("tiny", REP_SVGD, 0.5, 0.0, false); }
Test(parity, tiny_lm_spos_without_noise) { check_particles("tiny_lm", REP_SPOS, 0.5, 0.1, true); }

/* ---- one AdamW step ---- */

/* The reference transformed gradient G of parameter i (svgd/ or spos/ for
 * particle parameters, else grad/), as float32. */
static const float *ref_G(const Rig *r, int i, char *prefix) {
  snprintf(prefix, 16, "%s/", is_particle_param(r, i) ? r->rep : "grad");
  char name[512];
  snprintf(name, sizeof name, "%s%s", prefix, r->m->params[i].path);
  return need(r, name)->data;
}

static void check_adamw(const char *name) {
  Rig r;
  rig_open(&r, name);
  rig_step(&r);
  rig_particles(&r);
  int64_t n = r.m->nweights;
  float *gref = calloc((size_t)n + 1, sizeof(float));
  float *w1 = malloc(sizeof(float) * (size_t)(n + 1));
  float *w2 = malloc(sizeof(float) * (size_t)(n + 1));
  float *mo = calloc((size_t)n + 1, sizeof(float)), *vo = calloc((size_t)n + 1, sizeof(float));
  cr_assert(gref && w1 && w2 && mo && vo);
  for (int i = 0; i < r.m->nparams; i++) {
    char prefix[16];
    const ParamInfo *pi = &r.m->params[i];
    memcpy(gref + pi->offset, ref_G(&r, i, prefix), sizeof(float) * (size_t)ir_numel(&pi->type));
  }

  /* 1. the optimizer alone: AdamW on the reference G, tight */
  memcpy(w1, r.w, sizeof(float) * (size_t)n);
  Optim o = {.kind = OPT_ADAMW, .lr = LR, .beta1 = BETA1, .beta2 = BETA2, .eps = EPS,
             .weight_decay = WD, .n = n, .m = mo, .v = vo, .t = 0};
  tu_maybe_jit_optim(&o);
  optim_step(&o, w1, gref, LR, NULL);
  cr_assert_eq(o.t, 1);
  for (int i = 0; i < r.m->nparams; i++)
    cmp_param(&r, "adamw_step/", &r.m->params[i], w1, 1e-6, 1e-7);

  /* 2. the whole chain: AdamW on rac's own G.  The first Adam step moves
   * each weight by lr G/(|G| + eps), whose sensitivity to an error e in G is
   * lr eps |e| / (|G| + eps)^2: large where G is mathematically 0 (the key
   * bias, whose gradient softmax's shift invariance cancels) and float32
   * leaves a residue.  Each element's tolerance adds that sensitivity for
   * the observed gradient error, which the checks above bound. */
  memset(mo, 0, sizeof(float) * (size_t)n);
  memset(vo, 0, sizeof(float) * (size_t)n);
  memcpy(w2, r.w, sizeof(float) * (size_t)n);
  o = (Optim){.kind = OPT_ADAMW, .lr = LR, .beta1 = BETA1, .beta2 = BETA2, .eps = EPS,
              .weight_decay = WD, .n = n, .m = mo, .v = vo, .t = 0};
  tu_maybe_jit_optim(&o);
  optim_step(&o, w2, r.g, LR, NULL);
  for (int i = 0; i < r.m->nparams; i++) {
    const ParamInfo *pi = &r.m->params[i];
    char nm[512];
    snprintf(nm, sizeof nm, "adamw_step/%s", pi->path);
    const float *want = need(&r, nm)->data;
    for (int64_t k = 0; k < ir_numel(&pi->type); k++) {
      int64_t j = pi->offset + k;
      double e = fabs((double)r.g[j] - (double)gref[j]), a = fabs((double)gref[j]);
      double sens = LR * fmin(2.0, EPS * (2.0 * e + 1e-9) / ((a + EPS) * (a + EPS)));
      double tol = ATOL + RTOL * fabs((double)want[k]) + sens;
      cr_assert(fabs((double)w2[j] - (double)want[k]) <= tol,
                "%s[%lld]: got %.9g want %.9g (G rac %.9g ref %.9g)", nm, (long long)k, w2[j],
                want[k], r.g[j], gref[j]);
    }
  }
  free(gref);
  free(w1);
  free(w2);
  free(mo);
  free(vo);
  rig_close(&r);
}

Test(parity, tiny_adamw_step) { check_adamw("tiny"); }
Test(parity, tiny_lm_adamw_step) { check_adamw("tiny_lm"); }

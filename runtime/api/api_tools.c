/* api_tools.c - the tooling half of ra.h: text dumps of every compiler
 * stage (`rac ir`, `rac params`, --dump=ast) and prediction on raw text. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../compiler/autodiff.h"
#include "../../base/file.h"
#include "../../base/sbuf.h"
#include "api_int.h"
#include "../data/data.h"

static int64_t dump_batch(ra_ctx *ctx, const char *model) {
  for (int i = 0; i < ctx->prog->ntrains; i++)
    if (!strcmp(ctx->prog->trains[i].model, model)) return ctx->prog->trains[i].batch;
  return 1;
}

static const char *params_table(ra_ctx *ctx, const Model *m) {
  SBuf b;
  sbuf_init(&b, ctx->prog->arena);
  char ty[128];
  int w = 4;
  for (int i = 0; i < m->nparams; i++) {
    int k = (int)strlen(m->params[i].path);
    if (k > w) w = k;
  }
  sbuf_printf(&b, "%-*s  %-16s %10s\n", w, "path", "shape", "count");
  for (int i = 0; i < m->nparams; i++) {
    const ParamInfo *pi = &m->params[i];
    sbuf_printf(&b, "%-*s  %-16s %10lld\n", w, pi->path, ir_type_str(&pi->type, ty, sizeof ty),
                (long long)ir_numel(&pi->type));
  }
  sbuf_printf(&b, "total: %lld parameters in %d tensors (%.2f MiB as f32)\n",
              (long long)m->nweights, m->nparams, (double)m->nweights * 4.0 / 1048576.0);
  const char *s = sbuf_str(&b);
  return s ? s : "";
}

/* Hands a dump to the caller; out of memory if it or its copy failed. */
static int dump_out(ra_ctx *ctx, const char *s, const char **text) {
  *text = api_set_text(ctx, s);
  if (!s || !ctx->text || ctx->prog->arena->failed) {
    *text = "";
    return api_fail(ctx, RA_ENOMEM, "ra_dump: out of memory");
  }
  return api_ok(ctx);
}

int ra_dump(ra_ctx *ctx, const char *model_name, const char *what, const char **text) {
  if (!ctx) return RA_EUSAGE;
  if (!what || !text) return api_fail(ctx, RA_EUSAGE, "ra_dump: what and text must not be NULL");
  *text = "";
  if (!ctx->prog) return api_fail(ctx, RA_EUSAGE, "ra_dump: no spec is loaded");
  if (!strcmp(what, "ast")) {
    api_compile_begin(ctx);
    return dump_out(ctx, ast_dump(ctx->prog->arena, ctx->prog->files[0]), text);
  }
  const char *name = model_name;
  if (!name) {
    if (ctx->prog->nmodels == 0) return api_fail(ctx, RA_ENOTFOUND, "the spec has no model");
    name = ctx->prog->models[0]->name;
  }
  const AstItem *item = sema_find_model(ctx->prog, name);
  if (!item) return api_fail(ctx, RA_ENOTFOUND, "no model named '%s'", name);
  bool grad = strstr(what, "grad") != NULL, opt = strstr(what, "opt") != NULL;
  bool plan = strstr(what, "plan") != NULL, params = !strcmp(what, "params");
  if (!grad && !opt && !plan && !params && strcmp(what, "ir"))
    return api_fail(ctx, RA_EUSAGE, "ra_dump: unknown dump '%s' (ast, ir, grad, opt, grad+opt, plan, params)", what);
  api_compile_begin(ctx);
  Model *m = lower_model(ctx->prog, item, dump_batch(ctx, name));
  if (!m) return api_compile_fail(ctx, name);
  if (params) {
    return dump_out(ctx, params_table(ctx, m), text);
  }
  IrFunc *f = m->fwd;
  if (grad || plan) {
    f = autodiff(ctx->prog->arena, m, ctx->prog->externs, ctx->prog->nexterns, &ctx->diags);
    if (!f) return api_compile_fail(ctx, name);
  }
  if (opt || plan) f = pass_compile(ctx->prog->arena, f, !ctx->prog->no_fuse);
  if (!f) return api_fail(ctx, RA_ENOMEM, "out of memory");
  if (plan) {
    MemPlan *mp = plan_memory_chains(ctx->prog->arena, f, !ctx->prog->no_chains);
    if (!mp) return api_fail(ctx, RA_ENOMEM, "out of memory");
    return dump_out(ctx, plan_print(ctx->prog->arena, f, mp), text);
  }
  return dump_out(ctx, ir_print(ctx->prog->arena, f, &ctx->src, true), text);
}

/* ---- predict ---- */

int ra_predict(ra_ctx *ctx, const char *train_name, const char *ckpt, const char *text,
               const char *file, const char **result) {
  if (!ctx) return RA_EUSAGE;
  if (!ckpt) return api_fail(ctx, RA_EUSAGE, "ra_predict: a checkpoint is needed");
  if (!text == !file) return api_fail(ctx, RA_EUSAGE, "ra_predict: give either text or a file");
  TrainDecl t;
  ra_model *m = api_begin_run(ctx, "ra_predict", train_name, ckpt, &t);
  if (!m) return ctx->code;
  char err[FILE_MSG_MAX] = "";
  int rc;
  size_t len = 0;
  char *buf = NULL;
  if (file) {
    char why[256];
    if (file_read_all(&ctx->alloc, file, (uint64_t)1 << 30, &buf, &len, why, sizeof why) != 0)
      return api_fail(ctx, strstr(why, "out of memory") ? RA_ENOMEM : RA_EIO, "%s: cannot read: %s",
                      file, why);
    text = buf;
  }
  RunOptions o;
  api_run_options(ctx, &o);
  char *out = NULL;
  rc = train_predict(ctx->prog, &t, &m->ms, &o, text, file, &out, err, sizeof err);
  if (buf) ra_free_mem(&ctx->alloc, buf, len + 1);
  if (rc) return api_fail(ctx, rc, "%s", err);
  const char *r = api_set_text(ctx, out);
  train_text_free(ctx->alloc, out);
  if (!ctx->text) return api_fail(ctx, RA_ENOMEM, "ra_predict: out of memory for the result");
  if (result) *result = r;
  return api_ok(ctx);
}

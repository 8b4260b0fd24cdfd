/* state.c - a ModelState to and from a .safetensors checkpoint: parameters
 * by path, optimizer moments as "optim.m/<path>" and "optim.v/<path>", and
 * metadata (format, version, model, spec hash, step, epoch). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <sys/stat.h>

#include "../include/ra.h"
#include "ckpt.h"
#include "train.h"

/* mkdir -p of the folder that will hold path ("runs/x.safetensors"). */
void make_parent_dirs(const char *path) {
  char buf[4096];
  size_t n = strlen(path);
  if (n >= sizeof buf) return;
  memcpy(buf, path, n + 1);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return;
    *p = '/';
  }
}

#define CKPT_FORMAT "rac-checkpoint"
#define CKPT_VERSION "1"
#define CKPT_MAX_COUNT 1000000000000000LL /* step, epoch */

int mstate_save(const ModelState *ms, const char *path, uint64_t spec_hash, char *err,
                size_t errlen) {
  int nt = ms->nparams * (ms->opt_m ? 3 : 1);
  RaAlloc a = ms->alloc;
  CkptTensor *t = ra_calloc(&a, (size_t)(nt ? nt : 1), sizeof *t);
  char **names = ra_calloc(&a, (size_t)(nt ? nt : 1), sizeof *names);
  if (!t || !names) {
    ra_free_mem(&a, t, sizeof *t * (size_t)(nt ? nt : 1));
    ra_free_mem(&a, names, sizeof *names * (size_t)(nt ? nt : 1));
    snprintf(err, errlen, "out of memory saving '%s'", path);
    return RA_ENOMEM;
  }
  int k = 0, rc = 0;
  for (int pass = 0; pass < (ms->opt_m ? 3 : 1) && rc == 0; pass++) {
    for (int i = 0; i < ms->nparams; i++) {
      const ParamInfo *pi = &ms->params[i];
      const float *base = pass == 0 ? ms->w : pass == 1 ? ms->opt_m : ms->opt_v;
      const char *pre = pass == 0 ? "" : pass == 1 ? "optim.m/" : "optim.v/";
      size_t len = strlen(pre) + strlen(pi->path) + 1; /* freed as strlen + 1 */
      names[k] = ra_malloc(&a, len);
      if (!names[k]) { rc = RA_ENOMEM; break; }
      snprintf(names[k], len, "%s%s", pre, pi->path);
      t[k].name = names[k];
      t[k].dtype = 0;
      t[k].ndim = pi->type.rank;
      for (int d = 0; d < pi->type.rank; d++) t[k].shape[d] = pi->type.dim[d];
      t[k].data = (void *)(base + pi->offset);
      k++;
    }
  }
  if (rc == 0) {
    make_parent_dirs(path);
    char hash[32], step[32], epoch[32];
    snprintf(hash, sizeof hash, "%016" PRIx64, spec_hash);
    snprintf(step, sizeof step, "%" PRId64, ms->step);
    snprintf(epoch, sizeof epoch, "%" PRId64, ms->epoch);
    CkptMeta meta[] = {{"format", CKPT_FORMAT}, {"version", CKPT_VERSION},
                       {"model", ms->name},     {"spec_hash", hash},
                       {"step", step},          {"epoch", epoch}};
    if (ckpt_write(path, t, k, meta, (int)(sizeof meta / sizeof meta[0]), err, errlen) != 0)
      rc = RA_EIO;
  } else {
    snprintf(err, errlen, "out of memory saving '%s'", path);
  }
  for (int i = 0; i < k; i++) ra_free_mem(&a, names[i], strlen(names[i]) + 1);
  ra_free_mem(&a, t, sizeof *t * (size_t)(nt ? nt : 1));
  ra_free_mem(&a, names, sizeof *names * (size_t)(nt ? nt : 1));
  return rc;
}

/* The tensor `name` of c as the parameter pi expects it (f32, pi's shape,
 * every element finite); NULL with the error set. */
static const float *check_tensor(const Ckpt *c, const char *path, const char *name,
                                 const ParamInfo *pi, char *err, size_t errlen) {
  const CkptTensor *t = ckpt_find(c, name);
  if (!t) {
    snprintf(err, errlen, "%s: no tensor '%s' (the checkpoint is of another model?)", path, name);
    return NULL;
  }
  bool ok = t->dtype == 0 && t->ndim == pi->type.rank;
  for (int d = 0; ok && d < t->ndim; d++) ok = t->shape[d] == pi->type.dim[d];
  if (!ok) {
    char want[96];
    ir_type_str(&pi->type, want, sizeof want);
    char got[160];
    int n = snprintf(got, sizeof got, "%s[", t->dtype == 0 ? "f32" : "i32");
    for (int d = 0; d < t->ndim && n < (int)sizeof got - 24; d++)
      n += snprintf(got + n, sizeof got - (size_t)n, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    snprintf(got + n, sizeof got - (size_t)n, "]");
    snprintf(err, errlen, "%s: tensor '%s' is %s but the model expects %s", path, name, got, want);
    return NULL;
  }
  const float *x = t->data;
  int64_t n = ir_numel(&pi->type);
  for (int64_t i = 0; i < n; i++) {
    if (isfinite(x[i])) continue;
    snprintf(err, errlen, "%s: tensor '%s': element %lld is %s", path, name, (long long)i,
             isnan(x[i]) ? "NaN" : "infinite");
    return NULL;
  }
  return x;
}

/* A counter of the metadata ("step", "epoch"): decimal digits only, at most
 * 10^15.  Missing is an error only when need. */
static int meta_count(const Ckpt *c, const char *path, const char *key, bool need, int64_t *out,
                      char *err, size_t errlen) {
  const char *s = ckpt_meta(c, key);
  *out = 0;
  if (!s) {
    if (!need) return 0;
    snprintf(err, errlen, "%s: metadata '%s' is missing (needed to resume)", path, key);
    return RA_ECKPT;
  }
  int64_t v = 0;
  size_t n = strlen(s);
  bool ok = n > 0 && n <= 16;
  for (size_t i = 0; ok && i < n; i++) {
    if (s[i] < '0' || s[i] > '9') ok = false;
    else v = v * 10 + (s[i] - '0');
  }
  if (!ok || v > CKPT_MAX_COUNT) {
    snprintf(err, errlen, "%s: metadata '%s' is '%.40s', not a whole number from 0 to %lld", path,
             key, s, (long long)CKPT_MAX_COUNT);
    return RA_ECKPT;
  }
  *out = v;
  return 0;
}

/* Everything is checked before anything is copied: a checkpoint that fails
 * leaves the model as it was. */
int mstate_load(ModelState *ms, const char *path, uint64_t spec_hash, bool need_optim,
                char *err, size_t errlen) {
  Ckpt *c = ckpt_read(ms->alloc, path, err, errlen);
  if (!c) return RA_ECKPT;
  int rc = 0;
  const char *fmt = ckpt_meta(c, "format");
  if (!fmt || strcmp(fmt, CKPT_FORMAT) != 0) {
    snprintf(err, errlen, "%s: not a rac checkpoint (metadata 'format' is %s%s%s)", path,
             fmt ? "'" : "", fmt ? fmt : "missing", fmt ? "'" : "");
    rc = RA_ECKPT;
  }
  const char *ver = ckpt_meta(c, "version");
  if (rc == 0 && (!ver || strcmp(ver, CKPT_VERSION) != 0)) {
    snprintf(err, errlen, "%s: checkpoint version %s; this rac reads version %s", path,
             ver ? ver : "(missing)", CKPT_VERSION);
    rc = RA_ECKPT;
  }
  const char *model = ckpt_meta(c, "model");
  if (rc == 0 && model && ms->name && strcmp(model, ms->name) != 0) {
    snprintf(err, errlen, "%s: a checkpoint of model '%s', not of '%s'", path, model, ms->name);
    rc = RA_ECKPT;
  }
  (void)spec_hash; /* a different spec with the same parameters may load its weights */
  int64_t step = 0, epoch = 0;
  if (rc == 0) rc = meta_count(c, path, "step", need_optim, &step, err, errlen);
  if (rc == 0) rc = meta_count(c, path, "epoch", need_optim, &epoch, err, errlen);
  /* every source tensor, found and checked: weights, then m and v */
  int nsrc = ms->nparams * (need_optim ? 3 : 1);
  const float **src = NULL;
  if (rc == 0) {
    src = ra_calloc(&ms->alloc, (size_t)(nsrc ? nsrc : 1), sizeof *src);
    if (!src) {
      snprintf(err, errlen, "out of memory loading '%s'", path);
      rc = RA_ENOMEM;
    }
  }
  for (int k = 0; rc == 0 && k < nsrc; k++) {
    const ParamInfo *pi = &ms->params[k % ms->nparams];
    int pass = k / ms->nparams;
    char name[512];
    snprintf(name, sizeof name, "%s%s", pass == 0 ? "" : pass == 1 ? "optim.m/" : "optim.v/",
             pi->path);
    src[k] = check_tensor(c, path, name, pi, err, errlen);
    if (!src[k]) rc = RA_ECKPT;
  }
  if (rc == 0 && need_optim) {
    size_t nw = (size_t)(ms->nweights ? ms->nweights : 1);
    if (!ms->opt_m) ms->opt_m = ra_calloc(&ms->alloc, nw, sizeof(float));
    if (!ms->opt_v) ms->opt_v = ra_calloc(&ms->alloc, nw, sizeof(float));
    if (!ms->opt_m || !ms->opt_v) {
      snprintf(err, errlen, "out of memory loading '%s'", path);
      rc = RA_ENOMEM;
    }
  }
  /* nothing fails from here */
  for (int k = 0; rc == 0 && k < nsrc; k++) {
    const ParamInfo *pi = &ms->params[k % ms->nparams];
    int pass = k / ms->nparams;
    float *dst = pass == 0 ? ms->w : pass == 1 ? ms->opt_m : ms->opt_v;
    memcpy(dst + pi->offset, src[k], (size_t)ir_numel(&pi->type) * sizeof(float));
  }
  if (rc == 0 && need_optim) {
    ms->step = step;
    ms->epoch = epoch;
  }
  if (rc == 0) ms->initialized = true;
  if (src) ra_free_mem(&ms->alloc, src, sizeof *src * (size_t)(nsrc ? nsrc : 1));
  ckpt_free(c);
  return rc;
}

/* gradsync.c - bucketed gradient reductions overlapping the backward pass
 * (gradsync.h). */
#include "gradsync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../base/clock.h"
#include "../../include/ra.h"

/* An MPI count is an int: no bucket is larger. */
#define BUCKET_MAX_FLOATS ((int64_t)1 << 30)

static int by_node(const void *a, const void *b) {
  const GradPiece *x = a, *y = b;
  if (x->node != y->node) return x->node < y->node ? -1 : 1;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

int gradsync_init(GradSync *s, RaAlloc a, Dist *d, const IrFunc *f, const ParamInfo *params,
                  const Exec *ex, int64_t bucket_bytes, char *err, size_t errlen) {
  memset(s, 0, sizeof *s);
  s->alloc = a;
  s->dist = d;
  s->ex = ex;
  int n = 0;
  for (int i = 0; i < f->nout; i++) n += f->outs[i].role == OUT_GRAD;
  s->pieces = ra_calloc(&a, (size_t)(n ? n : 1), sizeof *s->pieces);
  if (!s->pieces) {
    snprintf(err, errlen, "out of memory for the gradient reductions");
    return RA_ENOMEM;
  }
  for (int i = 0; i < f->nout; i++) {
    const IrOutput *o = &f->outs[i];
    if (o->role != OUT_GRAD) continue;
    GradPiece *p = &s->pieces[s->npieces++];
    p->value = o->value;
    p->node = o->value;
    p->offset = params[o->index].offset;
    p->n = ir_numel(&params[o->index].type);
  }
  qsort(s->pieces, (size_t)s->npieces, sizeof *s->pieces, by_node);
  int64_t per = bucket_bytes > 0 ? bucket_bytes / (int64_t)sizeof(float) : 0;
  if (per < 1 && bucket_bytes > 0) per = 1;
  if (per > BUCKET_MAX_FLOATS) per = BUCKET_MAX_FLOATS;
  int64_t pos = 0, in_bucket = 0;
  for (int i = 0; i < s->npieces; i++) {
    GradPiece *p = &s->pieces[i];
    p->pos = pos;
    pos += p->n;
    in_bucket += p->n;
    bool last = i + 1 == s->npieces;
    bool full = per > 0 && in_bucket >= per;
    /* without overlap one bucket, but none beyond an MPI count */
    bool over = !last && in_bucket + s->pieces[i + 1].n > BUCKET_MAX_FLOATS;
    if (last || full || over) {
      p->ends_bucket = 1;
      s->nbuckets++;
      in_bucket = 0;
    }
  }
  s->nbuf = pos;
  s->buf = ra_calloc(&a, (size_t)(pos ? pos : 1), sizeof(float));
  if (!s->buf) {
    gradsync_free(s);
    snprintf(err, errlen, "out of memory for the gradient reductions (%lld floats)",
             (long long)pos);
    return RA_ENOMEM;
  }
  return 0;
}

void gradsync_free(GradSync *s) {
  if (s->pieces) ra_free_mem(&s->alloc, s->pieces, (size_t)(s->npieces ? s->npieces : 1) * sizeof *s->pieces);
  if (s->buf) ra_free_mem(&s->alloc, s->buf, (size_t)(s->nbuf ? s->nbuf : 1) * sizeof(float));
  memset(s, 0, sizeof *s);
}

/* Copies pieces up to node (all when node < 0) and starts the buckets they
 * complete. */
static void take(GradSync *s, int32_t node) {
  while (s->next < s->npieces && (node < 0 || s->pieces[s->next].node <= node)) {
    GradPiece *p = &s->pieces[s->next++];
    const float *src = exec_ptr(s->ex, p->value);
    if (src) memcpy(s->buf + p->pos, src, (size_t)p->n * sizeof(float));
    else memset(s->buf + p->pos, 0, (size_t)p->n * sizeof(float));
    if (!p->ends_bucket) continue;
    int64_t end = p->pos + p->n;
    if (s->rc == 0)
      s->rc = dist_ireduce(s->dist, s->buf + s->bucket_start, end - s->bucket_start, s->err,
                           sizeof s->err);
    s->bucket_start = end;
  }
}

void gradsync_node(void *ud, int32_t node) {
  GradSync *s = ud;
  if (s->next < s->npieces && s->pieces[s->next].node <= node) take(s, node);
  if (s->rc == 0) s->rc = dist_poll(s->dist, s->err, sizeof s->err);
}

int gradsync_finish(GradSync *s, float *g, char *err, size_t errlen) {
  double t0 = clock_seconds();
  /* the overlap: the buckets whose sums were complete before the wait */
  int done = s->rc ? 0 : dist_done(s->dist), b = 0;
  for (int i = 0; i < s->next && b < done; i++) {
    s->early_floats += s->pieces[i].n;
    b += s->pieces[i].ends_bucket;
  }
  take(s, -1);
  int rc = s->rc;
  if (rc) snprintf(err, errlen, "%s", s->err);
  double waited = 0;
  int wrc = dist_wait(s->dist, &waited, rc ? NULL : err, rc ? 0 : errlen);
  if (!rc) rc = wrc;
  s->wait_s += waited;
  s->next = 0;
  s->bucket_start = 0;
  s->rc = 0;
  if (rc) return rc;
  int size = dist_size(s->dist);
  float inv = 1.0f / (float)size;
  for (int i = 0; i < s->npieces; i++) {
    const GradPiece *p = &s->pieces[i];
    const float *src = s->buf + p->pos;
    float *dst = g + p->offset;
    if (size == 1) memcpy(dst, src, (size_t)p->n * sizeof(float));
    else
      for (int64_t k = 0; k < p->n; k++) dst[k] = src[k] * inv;
  }
  s->steps++;
  s->finish_s += clock_seconds() - t0;
  return 0;
}

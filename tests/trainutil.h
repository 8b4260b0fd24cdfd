/* trainutil.h - training a spec for a few steps through ra.h in a test,
 * and comparing two such runs bit for bit: every step's loss and the
 * saved checkpoint (test_determinism, test_fuse, test_chain). */
#ifndef RA_TRAINUTIL_H
#define RA_TRAINUTIL_H

#include <stdio.h>
#include <string.h>

#include "ra.h"
#include "testutil.h"

#define TU_MAX_STEPS 32
#define TU_MAX_OPTS 8

typedef struct TuTrain {
  const char *spec;    /* a file, or the name of source when source is set */
  const char *source;
  const char *ckpt;    /* saved here (set.save) */
  const char *steps;   /* set.steps */
  const char *opt[TU_MAX_OPTS][2]; /* further options: key, value (NULL key: none) */
  double loss[TU_MAX_STEPS];
  int n, rc;
  char err[512];
} TuTrain;

static inline int tu_record_loss(void *ud, int64_t step, double loss) {
  TuTrain *r = ud;
  if (r->n < TU_MAX_STEPS) r->loss[r->n++] = loss;
  (void)step;
  return 0;
}

/* Trains r->spec quietly with the stdlib of this tree; r->rc and r->err
 * say how it went. */
static inline void tu_train(TuTrain *r) {
  ra_ctx *c = ra_new();
  ra_set_option(c, "quiet", "1");
  ra_set_option(c, "stdlib", "stdlib");
  r->rc = 0;
  for (int k = 0; k < TU_MAX_OPTS && r->opt[k][0] && r->rc == 0; k++)
    r->rc = ra_set_option(c, r->opt[k][0], r->opt[k][1]);
  if (r->rc == 0) r->rc = ra_set_option(c, "set.steps", r->steps);
  if (r->rc == 0) r->rc = ra_set_option(c, "set.save", r->ckpt);
  if (r->rc == 0)
    r->rc = r->source ? ra_load_string(c, r->spec, r->source) : ra_load_file(c, r->spec);
  if (r->rc == 0) r->rc = ra_train(c, NULL, tu_record_loss, r);
  snprintf(r->err, sizeof r->err, "%s", ra_error(c));
  ra_free(c);
}

/* Both ran, for the same steps, to the same losses and checkpoint bytes
 * (then removed); what names the comparison in a failure. */
static inline void tu_same_bits(TuTrain *a, TuTrain *b, const char *what) {
  cr_assert_eq(a->rc, 0, "%s: %s", what, a->err);
  cr_assert_eq(b->rc, 0, "%s: %s", what, b->err);
  cr_assert(a->n > 0 && a->n == b->n, "%s: %d and %d steps", what, a->n, b->n);
  cr_assert(memcmp(a->loss, b->loss, sizeof a->loss) == 0, "%s: the losses differ", what);
  size_t la = 0, lb = 0;
  char *fa = tu_read_file(a->ckpt, &la), *fb = tu_read_file(b->ckpt, &lb);
  cr_assert(fa && fb, "%s: checkpoints missing", what);
  cr_assert(la == lb && memcmp(fa, fb, la) == 0, "%s: the checkpoints differ", what);
  free(fa);
  free(fb);
  remove(a->ckpt);
  remove(b->ckpt);
}

#endif

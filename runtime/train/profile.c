/* profile.c - the report of `rac bench --profile` (profile.h). */
#include "profile.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A report line is shown when it takes this share of the step or more. */
#define PROF_MIN_SHARE 0.003
#define PROF_KIND_CHARS 160

int profile_init(StepProfile *p, RaAlloc a, int nnodes) {
  memset(p, 0, sizeof *p);
  p->alloc = a;
  p->n = nnodes;
  p->node_s = ra_calloc(&a, (size_t)(nnodes > 0 ? nnodes : 1), sizeof(double));
  return p->node_s ? 0 : -1;
}

void profile_free(StepProfile *p) {
  if (p->node_s) ra_free_mem(&p->alloc, p->node_s, (size_t)(p->n > 0 ? p->n : 1) * sizeof(double));
  p->node_s = NULL;
}

typedef struct Kind {
  const char *text;
  double s, flops;
  int count;
} Kind;

static int by_text(const void *a, const void *b) {
  return strcmp(((const Kind *)a)->text, ((const Kind *)b)->text);
}

static int by_time(const void *a, const void *b) {
  double x = ((const Kind *)a)->s, y = ((const Kind *)b)->s;
  return x < y ? 1 : x > y ? -1 : strcmp(((const Kind *)a)->text, ((const Kind *)b)->text);
}

typedef struct Out {
  char *buf;
  size_t cap, len;
} Out;

static void out_printf(Out *o, const char *fmt, ...) {
  if (o->len + 1 >= o->cap) return;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
  va_end(ap);
  if (k < 0) return;
  if (o->len + (size_t)k >= o->cap) {
    o->len = o->cap - 1;
    if (o->cap >= 4) memcpy(o->buf + o->cap - 4, "...", 4);
  } else {
    o->len += (size_t)k;
  }
}

static void line(Out *o, double s, double step_s, int64_t steps, int count, double gflops,
                 const char *text) {
  double ms = 1e3 * s / (double)steps;
  out_printf(o, "  %5.1f%%  %8.3f ms", 100.0 * s / step_s / (double)steps, ms);
  if (count) out_printf(o, "  x%-3d", count);
  else out_printf(o, "      ");
  if (gflops > 0) out_printf(o, "  %6.1f GFLOP/s", gflops);
  else out_printf(o, "                ");
  size_t k = strlen(text);
  out_printf(o, "  %.*s%s\n", (int)(k > PROF_KIND_CHARS ? PROF_KIND_CHARS : k), text,
             k > PROF_KIND_CHARS ? "..." : "");
}

void profile_report(const StepProfile *p, const IrFunc *f, int64_t steps, double elapsed_s,
                    char *buf, size_t cap) {
  Out o = {buf, cap, strlen(buf)};
  if (steps < 1 || !(elapsed_s > 0)) return;
  double step_s = elapsed_s / (double)steps;
  Arena ar;
  RaAlloc a = p->alloc;
  arena_init(&ar, a);
  Kind *k = ra_calloc(&a, (size_t)(f->n > 0 ? f->n : 1), sizeof(Kind));
  int nk = 0;
  for (int i = 0; k && i < f->n && i < p->n; i++) {
    const IrNode *n = &f->nodes[i];
    if (ir_op_info[n->op].flags & OPF_LEAF) continue;
    const char *t = ir_node_kind(&ar, f, i);
    k[nk++] = (Kind){t ? t : "?", p->node_s[i], ir_matmul_flops(f, n), 1};
  }
  if (!k) {
    out_printf(&o, "profile: out of memory\n");
    arena_free(&ar);
    return;
  }
  qsort(k, (size_t)nk, sizeof *k, by_text);
  int m = 0;
  for (int i = 0; i < nk; i++) {
    if (m && !strcmp(k[m - 1].text, k[i].text)) {
      k[m - 1].s += k[i].s;
      k[m - 1].flops += k[i].flops;
      k[m - 1].count++;
    } else {
      k[m++] = k[i];
    }
  }
  qsort(k, (size_t)m, sizeof *k, by_time);
  double nodes_s = 0, parts_s = 0;
  for (int i = 0; i < m; i++) nodes_s += k[i].s;
  for (int i = 0; i < PROF_NPARTS; i++) parts_s += p->part_s[i];
  out_printf(&o,
             "profile of %lld steps: share of the step, ms/step, nodes of the kind, "
             "GFLOP/s of matmuls\n",
             (long long)steps);
  out_printf(&o, "  %5.1f%%  %8.3f ms  the step function's %d nodes\n",
             100.0 * nodes_s / elapsed_s, 1e3 * nodes_s / (double)steps, nk);
  int shown = 0;
  double rest = 0;
  int nrest = 0;
  for (int i = 0; i < m; i++) {
    if (k[i].s >= PROF_MIN_SHARE * elapsed_s) {
      line(&o, k[i].s, step_s, steps, k[i].count,
           k[i].flops > 0 && k[i].s > 0 ? k[i].flops * (double)steps / k[i].s * 1e-9 : 0,
           k[i].text);
      shown++;
    } else {
      rest += k[i].s;
      nrest++;
    }
  }
  if (nrest) {
    char t[96];
    snprintf(t, sizeof t, "%d more kinds, under %.1f%% each", nrest, 100.0 * PROF_MIN_SHARE);
    line(&o, rest, step_s, steps, 0, 0, t);
  }
  static const char *const part[PROF_NPARTS] = {
      "gradient copies out of the arena", "particle update (repulsion)", "optimizer",
      "gradient reductions over the ranks (the wait after the backward pass)"};
  for (int i = 0; i < PROF_NPARTS; i++)
    if (i != PROF_REDUCE || p->part_s[i] > 0) line(&o, p->part_s[i], step_s, steps, 0, 0, part[i]);
  double other = elapsed_s - nodes_s - parts_s;
  line(&o, other > 0 ? other : 0, step_s, steps, 0, 0, "the rest (batches, the loop)");
  ra_free_mem(&a, k, (size_t)(f->n > 0 ? f->n : 1) * sizeof(Kind));
  arena_free(&ar);
}

/* print.c - the stable text form of the IR (ir_print), used by `rac ir` and
 * the golden tests.  docs/ir.md describes the format:
 *
 *   func classifier.fwd batch 32 {
 *     %3 = matmul %1, %2 [ta=0 tb=1] : f32[32, 48, 64]   ; 14:7
 *     out loss %57
 *     out grad classifier.x.embed.table #0 %80
 *   }
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ir.h"

typedef struct Buf {
  Arena *arena;
  char *s;
  size_t len, cap;
  bool failed;
} Buf;

static void buf_grow(Buf *b, size_t need) {
  if (b->failed || b->len + need + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + need + 1) cap *= 2;
  char *s = arena_alloc(b->arena, cap);
  if (!s) {
    b->failed = true;
    return;
  }
  if (b->len) memcpy(s, b->s, b->len);
  s[b->len] = 0;
  b->s = s;
  b->cap = cap;
}

static void bprintf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(Buf *b, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  buf_grow(b, (size_t)n);
  if (b->failed) return;
  if ((size_t)n < sizeof tmp) {
    memcpy(b->s + b->len, tmp, (size_t)n + 1);
  } else {
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
  }
  b->len += (size_t)n;
}

static void bputs(Buf *b, const char *s) { bprintf(b, "%s", s); }

/* Names print bare when made of [A-Za-z0-9_.:/-], else quoted with escapes. */
static void bname(Buf *b, const char *s) {
  if (!s) {
    bputs(b, "\"\"");
    return;
  }
  bool plain = *s != 0;
  for (const char *p = s; *p && plain; p++) {
    char c = *p;
    plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '_' || c == '.' || c == ':' || c == '/' || c == '-';
  }
  if (plain) {
    bputs(b, s);
    return;
  }
  bputs(b, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      bprintf(b, "\\%c", *p);
    else if (*p == '\n')
      bputs(b, "\\n");
    else if (*p < 0x20 || *p >= 0x7f)
      bprintf(b, "\\x%02x", *p);
    else
      bprintf(b, "%c", *p);
  }
  bputs(b, "\"");
}

/* The attributes an op uses, in brackets (nothing for ops without any). */
static void battrs(Buf *b, const IrNode *n) {
  const IrAttr *a = &n->attr;
  switch ((IrOp)n->op) {
  case OP_SCALE:
    bprintf(b, " [f=%.9g]", a->f[0]);
    break;
  case OP_LAYERNORM:
  case OP_LAYERNORM_GRAD:
    bprintf(b, " [eps=%.9g]", a->f[0]);
    break;
  case OP_MATMUL:
    bprintf(b, " [ta=%lld tb=%lld]", (long long)a->i[0], (long long)a->i[1]);
    break;
  case OP_SUM:
  case OP_MEAN:
  case OP_MAX:
  case OP_MAX_GRAD:
  case OP_BROADCAST:
  case OP_CONCAT:
    bprintf(b, " [axis=%lld]", (long long)a->i[0]);
    break;
  case OP_SLICE:
    bprintf(b, " [axis=%lld from=%lld]", (long long)a->i[0], (long long)a->i[1]);
    break;
  case OP_TRANSPOSE:
    bputs(b, " [perm=");
    for (int k = 0; k < n->type.rank; k++)
      bprintf(b, k ? ",%lld" : "%lld", (long long)a->i[k]);
    bputs(b, "]");
    break;
  case OP_DROPOUT:
  case OP_DROPOUT_GRAD:
    bprintf(b, " [p=%.9g stream=%lld]", a->f[0], (long long)a->i[0]);
    break;
  case OP_CAUSAL_MASK:
    bprintf(b, " [fill=%.9g]", a->f[0]);
    break;
  case OP_EXTERN:
  case OP_EXTERN_GRAD:
    bprintf(b, " [fn=%lld]", (long long)a->i[0]);
    break;
  default:
    break;
  }
}

static const char *role_word(int role) {
  switch (role) {
  case OUT_LOSS: return "loss";
  case OUT_OUTPUT: return "output";
  case OUT_PRED: return "pred";
  case OUT_HEADS: return "heads";
  case OUT_GRAD: return "grad";
  default: return "?";
  }
}

char *ir_print(Arena *arena, const IrFunc *f, const SrcSet *src, bool with_spans) {
  Buf b = {arena, NULL, 0, 0, false};
  buf_grow(&b, 64);
  if (b.failed) return NULL;
  b.s[0] = 0;
  bputs(&b, "func ");
  bname(&b, f->name);
  bprintf(&b, " batch %lld {\n", (long long)f->batch);
  char tb[128];
  for (int i = 0; i < f->n; i++) {
    const IrNode *n = &f->nodes[i];
    bprintf(&b, "  %%%d = %s", i, n->op < OP_COUNT ? ir_op_info[n->op].name : "?");
    switch ((IrOp)n->op) {
    case OP_INPUT:
    case OP_PARAM:
      bputs(&b, " ");
      bname(&b, n->name);
      bprintf(&b, " #%lld", (long long)n->attr.i[0]);
      break;
    case OP_CONST:
      if (!n->data) {
        bprintf(&b, " %.9g", n->attr.f[0]);
      } else {
        int64_t cnt = ir_numel(&n->type);
        bputs(&b, " {");
        for (int64_t k = 0; k < cnt && k < 4; k++) bprintf(&b, k ? ", %.9g" : "%.9g", n->data[k]);
        bputs(&b, cnt > 4 ? ", ...}" : "}");
      }
      break;
    default:
      for (int k = 0; k < n->nin; k++) bprintf(&b, k ? ", %%%d" : " %%%d", (int)n->in[k]);
      break;
    }
    battrs(&b, n);
    bprintf(&b, " : %s", ir_type_str(&n->type, tb, sizeof tb));
    if (with_spans && n->span.file >= 0 && n->span.line > 0) {
      bputs(&b, "   ; ");
      if (n->span.file > 0 && src && n->span.file < src->n && src->files[n->span.file].path)
        bprintf(&b, "%s:", src->files[n->span.file].path);
      bprintf(&b, "%d:%d", (int)n->span.line, (int)n->span.col);
    }
    bputs(&b, "\n");
  }
  for (int i = 0; i < f->nout; i++) {
    const IrOutput *o = &f->outs[i];
    const char *word = role_word(o->role);
    bprintf(&b, "  out %s", word);
    const char *name = o->name;
    if (name && o->role == OUT_GRAD && strncmp(name, "grad:", 5) == 0) name += 5;
    if (name && strcmp(name, word) != 0) {
      bputs(&b, " ");
      bname(&b, name);
    }
    if (o->role == OUT_PRED || o->role == OUT_HEADS || o->role == OUT_GRAD)
      bprintf(&b, " #%d", (int)o->index);
    bprintf(&b, " %%%d\n", (int)o->value);
  }
  bputs(&b, "}\n");
  return b.failed ? NULL : b.s;
}

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

#include "../base/sbuf.h"

#include "ir.h"



/* Names print bare when made of [A-Za-z0-9_.:/-], else quoted with escapes. */
static void bname(SBuf *b, const char *s) {
  if (!s) {
    sbuf_add(b, "\"\"");
    return;
  }
  bool plain = *s != 0;
  for (const char *p = s; *p && plain; p++) {
    char c = *p;
    plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '_' || c == '.' || c == ':' || c == '/' || c == '-';
  }
  if (plain) {
    sbuf_add(b, s);
    return;
  }
  sbuf_add(b, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      sbuf_printf(b, "\\%c", *p);
    else if (*p == '\n')
      sbuf_add(b, "\\n");
    else if (*p < 0x20 || *p >= 0x7f)
      sbuf_printf(b, "\\x%02x", *p);
    else
      sbuf_printf(b, "%c", *p);
  }
  sbuf_add(b, "\"");
}

/* The attributes an op uses, in brackets (nothing for ops without any). */
static void battrs(SBuf *b, const IrNode *n) {
  const IrAttr *a = &n->attr;
  switch ((IrOp)n->op) {
  case OP_SOFTMAX:
  case OP_SOFTMAX_GRAD:
    if (a->i[0]) sbuf_add(b, " [causal]");
    break;
  case OP_SCALE:
    sbuf_printf(b, " [f=%.9g]", a->f[0]);
    break;
  case OP_LAYERNORM:
  case OP_LAYERNORM_GRAD:
    sbuf_printf(b, " [eps=%.9g]", a->f[0]);
    break;
  case OP_MATMUL:
    sbuf_printf(b, " [ta=%lld tb=%lld%s]", (long long)a->i[0], (long long)a->i[1],
                a->i[2] == IR_MM_TRI_A     ? " tri=a"
                : a->i[2] == IR_MM_TRI_OUT ? " tri=out"
                                           : "");
    break;
  case OP_SUM:
  case OP_MEAN:
  case OP_MAX:
  case OP_MAX_GRAD:
  case OP_BROADCAST:
  case OP_CONCAT:
    sbuf_printf(b, " [axis=%lld]", (long long)a->i[0]);
    break;
  case OP_SLICE:
    sbuf_printf(b, " [axis=%lld from=%lld]", (long long)a->i[0], (long long)a->i[1]);
    break;
  case OP_TRANSPOSE:
    sbuf_add(b, " [perm=");
    for (int k = 0; k < n->type.rank; k++)
      sbuf_printf(b, k ? ",%lld" : "%lld", (long long)a->i[k]);
    sbuf_add(b, "]");
    break;
  case OP_DROPOUT:
  case OP_DROPOUT_GRAD:
    sbuf_printf(b, " [p=%.9g stream=%lld]", a->f[0], (long long)a->i[0]);
    break;
  case OP_CAUSAL_MASK:
    sbuf_printf(b, " [fill=%.9g]", a->f[0]);
    break;
  case OP_EXTERN:
  case OP_EXTERN_GRAD:
    sbuf_printf(b, " [fn=%lld]", (long long)a->i[0]);
    break;
  default:
    break;
  }
}

/* A fused node's micro-program: " {mul $0, $1; add $2, @0}", $j being
 * the node's input j and @k micro-op k, attributes in brackets as on a
 * node; every micro-op has the node's type but for a row op's prologue
 * (its operand's type) and sum_to, whose type is printed. */
static void bfused(SBuf *b, const IrFused *p) {
  sbuf_add(b, " {");
  for (int k = 0; k < p->n; k++) {
    const IrMicro *m = &p->ops[k];
    sbuf_printf(b, "%s%s", k ? "; " : "", m->op < OP_COUNT ? ir_op_info[m->op].name : "?");
    for (int j = 0; j < m->nin; j++) {
      int32_t r = m->in[j];
      if (r < 0) sbuf_printf(b, j ? ", $%d" : " $%d", (int)(-1 - r));
      else sbuf_printf(b, j ? ", @%d" : " @%d", (int)r);
    }
    IrNode t;
    memset(&t, 0, sizeof t);
    t.op = m->op;
    t.attr = m->attr;
    t.type = m->type;
    battrs(b, &t);
    if (m->op == OP_SUM_TO) {
      char tb[128];
      sbuf_printf(b, " : %s", ir_type_str(&m->type, tb, sizeof tb));
    }
  }
  sbuf_add(b, "}");
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

char *ir_node_kind(Arena *arena, const IrFunc *f, int32_t i) {
  const IrNode *n = &f->nodes[i];
  SBuf b;
  sbuf_init(&b, arena);
  sbuf_add(&b, n->op < OP_COUNT ? ir_op_info[n->op].name : "?");
  if (n->op == OP_FUSED && n->fused) bfused(&b, n->fused);
  battrs(&b, n);
  char tb[128];
  sbuf_add(&b, " :");
  for (int k = 0; k < n->nin && !(ir_op_info[n->op].flags & OPF_LEAF); k++)
    sbuf_printf(&b, k ? ", %s" : " %s", ir_type_str(&f->nodes[n->in[k]].type, tb, sizeof tb));
  sbuf_printf(&b, " -> %s", ir_type_str(&n->type, tb, sizeof tb));
  return sbuf_str(&b);
}

char *ir_print(Arena *arena, const IrFunc *f, const SrcSet *src, bool with_spans) {
  SBuf b;
  sbuf_init(&b, arena);
  sbuf_add(&b, "func ");
  bname(&b, f->name);
  sbuf_printf(&b, " batch %lld {\n", (long long)f->batch);
  char tb[128];
  for (int i = 0; i < f->n; i++) {
    const IrNode *n = &f->nodes[i];
    sbuf_printf(&b, "  %%%d = %s", i, n->op < OP_COUNT ? ir_op_info[n->op].name : "?");
    switch ((IrOp)n->op) {
    case OP_INPUT:
    case OP_PARAM:
      sbuf_add(&b, " ");
      bname(&b, n->name);
      sbuf_printf(&b, " #%lld", (long long)n->attr.i[0]);
      break;
    case OP_CONST:
      if (!n->data) {
        sbuf_printf(&b, " %.9g", n->attr.f[0]);
      } else {
        int64_t cnt = ir_numel(&n->type);
        sbuf_add(&b, " {");
        for (int64_t k = 0; k < cnt && k < 4; k++) sbuf_printf(&b, k ? ", %.9g" : "%.9g", n->data[k]);
        sbuf_add(&b, cnt > 4 ? ", ...}" : "}");
      }
      break;
    default:
      for (int k = 0; k < n->nin; k++) sbuf_printf(&b, k ? ", %%%d" : " %%%d", (int)n->in[k]);
      break;
    }
    if (n->op == OP_FUSED && n->fused) bfused(&b, n->fused);
    battrs(&b, n);
    sbuf_printf(&b, " : %s", ir_type_str(&n->type, tb, sizeof tb));
    if (with_spans && n->span.file >= 0 && n->span.line > 0) {
      sbuf_add(&b, "   ; ");
      if (n->span.file > 0 && src && n->span.file < src->n && src->files[n->span.file].path)
        sbuf_printf(&b, "%s:", src->files[n->span.file].path);
      sbuf_printf(&b, "%d:%d", (int)n->span.line, (int)n->span.col);
    }
    sbuf_add(&b, "\n");
  }
  for (int i = 0; i < f->nout; i++) {
    const IrOutput *o = &f->outs[i];
    const char *word = role_word(o->role);
    sbuf_printf(&b, "  out %s", word);
    const char *name = o->name;
    if (name && o->role == OUT_GRAD && strncmp(name, "grad:", 5) == 0) name += 5;
    if (name && strcmp(name, word) != 0) {
      sbuf_add(&b, " ");
      bname(&b, name);
    }
    if (o->role == OUT_PRED || o->role == OUT_HEADS || o->role == OUT_GRAD)
      sbuf_printf(&b, " #%d", (int)o->index);
    sbuf_printf(&b, " %%%d\n", (int)o->value);
  }
  sbuf_add(&b, "}\n");
  return sbuf_str(&b);
}

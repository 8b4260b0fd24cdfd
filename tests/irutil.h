/* irutil.h - building IR by hand in tests: types from text and the IR
 * builder with failures that fail the test. */
#ifndef RA_IRUTIL_H
#define RA_IRUTIL_H

#include <stdlib.h>
#include <string.h>

#include "../compiler/ir.h"
#include "testutil.h"

/* "f32[2, 3]", "i32[4]", "f32[]" (scalar); a leading 'B' marks the value as
 * batched ("Bf32[32, 4]"). */
static inline IrType tu_type(const char *s) {
  IrType t;
  memset(&t, 0, sizeof t);
  if (*s == 'B') {
    t.batched = 1;
    s++;
  }
  t.dtype = strncmp(s, "i32", 3) == 0 ? IR_I32 : IR_F32;
  s += 4; /* "f32[" */
  while (*s && *s != ']') {
    char *end;
    t.dim[t.rank++] = strtoll(s, &end, 10);
    s = end;
    while (*s == ',' || *s == ' ') s++;
  }
  return t;
}

/* The IR builder (ir.h) for tests: every node must fit, or the test fails
 * with the builder's message. */
static inline void tu_builder_fail(void *ud, Span at, const char *msg) {
  (void)ud;
  (void)at;
  cr_assert_fail("IR builder: %s", msg);
}

static inline IrBuilder tu_builder(IrFunc *f) {
  IrBuilder b = ir_builder(f, SPAN_NONE);
  b.report = tu_builder_fail;
  return b;
}

/* The builder calls that take a type, with the type as text. */
static inline int32_t tu_input(IrBuilder *b, const char *name, int index, const char *t) {
  return ir_op(b, (IrNode){.op = OP_INPUT, .name = name, .attr.i = {index}, .type = tu_type(t)});
}

static inline int32_t tu_fill(IrBuilder *b, const char *t, double v) {
  IrType ty = tu_type(t);
  return ir_fill(b, &ty, v);
}

static inline int32_t tu_reshape(IrBuilder *b, int32_t x, const char *t) {
  IrType ty = tu_type(t);
  return ir_reshape(b, x, &ty);
}

#endif

/* irutil.h - building IR by hand in tests: types from text and checked
 * emission. */
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

/* ir_emit that must succeed. */
static inline int32_t tu_emit(IrFunc *f, IrNode n) {
  char err[256];
  int32_t id = ir_emit(f, &n, err, sizeof err);
  cr_assert(id >= 0, "%s", err);
  return id;
}

#endif

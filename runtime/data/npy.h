/* npy.h - NumPy's .npy arrays (format versions 1.0, 2.0 and 3.0):
 * little-endian float32, float64, int32 and int64 in C order. */
#ifndef RA_NPY_H
#define RA_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "../../compiler/ir.h"

typedef enum { NPY_F4, NPY_F8, NPY_I4, NPY_I8 } NpyDtype;

typedef struct NpyArray {
  NpyDtype dtype;
  int ndim;                /* 1 .. 8 */
  int64_t shape[8];
  int64_t count;           /* elements */
  const unsigned char *data;
} NpyArray;

/* Parses the header of the file buf[0..len) and checks that the data
 * section holds exactly the elements of the shape.  0, or -1 with the
 * problem (without the path) in err. */
int npy_parse(const unsigned char *buf, size_t len, NpyArray *out, char *err, size_t errlen);

/* The name of a dtype as NumPy writes it ("float32", ...). */
const char *npy_dtype_name(NpyDtype t);

/* Elements [first, first + n) of a as f32 (to == IR_F32; every value finite
 * and in float32's range) or int32 (to == IR_I32; an integer array only,
 * every value in int32's range) into out.  0, or -1 naming the element. */
int npy_convert(const NpyArray *a, int64_t first, int64_t n, IrDtype to, void *out, char *err,
                size_t errlen);

#endif

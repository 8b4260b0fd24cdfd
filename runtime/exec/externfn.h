/* ffi.h - native functions (language.md §9) as the kernels see them.
 *
 * An ExternFn is one resolved `extern fn`: plain C function pointers that
 * the EXTERN and EXTERN_GRAD kernels call.  How they are found (dlopen and
 * dlsym, or registered by the host) and wrapped (libffi) is runtime/api/ffi.c's
 * business; the kernels only call the pointers below.
 *
 *   scalar form  y = fn(x) per element;  dx = dy * grad(x)
 *   array form   afn(buf, n) in place on a copy of x;
 *                agrad(buf, n) turns a copy of x into dy/dx, then dx = dy * buf
 */
#ifndef RA_FFI_H
#define RA_FFI_H

#include <stdbool.h>
#include <stdint.h>

struct ExternFn {
  const char *name;                    /* as declared, for messages */
  bool array_form;
  float (*fn)(float);                  /* scalar form */
  float (*grad)(float);                /* dy/dx, NULL if not differentiable */
  void (*afn)(float *x, int32_t n);    /* array form, in place */
  void (*agrad)(float *x, int32_t n);  /* array form derivative, in place */
  void *impl;                          /* ffi.c's private data (libffi cif, handles) */
};

#endif

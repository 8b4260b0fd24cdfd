/* ra.h - the one public header of libra, the rac language and runtime.
 *
 * Everything hangs off a ra_ctx (no global state): load a .ra spec, train a
 * model, run it forward, read its parameters, save and load checkpoints,
 * register native functions.  Every call returns 0 on success and a non-zero
 * RA_E* code on error, with a message (with file:line:col for errors in a
 * spec) from ra_error().  The library never exits, aborts or prints unless
 * asked to (see the "log" callbacks).
 */
#ifndef RA_H
#define RA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(RA_BUILDING_LIB)
#define RA_API __attribute__((visibility("default")))
#else
#define RA_API
#endif

#define RA_VERSION_MAJOR 0
#define RA_VERSION_MINOR 1
#define RA_VERSION_PATCH 0
#define RA_VERSION_STRING "0.1.0"
#define RA_VERSION_NUM (RA_VERSION_MAJOR * 10000 + RA_VERSION_MINOR * 100 + RA_VERSION_PATCH)

/* Status codes. */
enum {
  RA_OK = 0,
  RA_ESPEC = 1,     /* an error in a .ra file (diagnostics in ra_error) */
  RA_EDATA = 2,     /* a data file is missing or malformed */
  RA_EUSAGE = 3,    /* misuse: NULL handle, wrong order, bad option */
  RA_ENOTFOUND = 4, /* an unknown name (model, train, param, output) */
  RA_ESHAPE = 5,    /* a tensor of the wrong shape or dtype */
  RA_EIO = 6,       /* a file could not be read or written */
  RA_ECKPT = 7,     /* a checkpoint is corrupt or does not match */
  RA_ENOMEM = 8,    /* out of memory */
  RA_EEXTERN = 9,   /* native code refused, missing library or symbol */
  RA_ESTOPPED = 10, /* a callback asked to stop */
  RA_ERUNTIME = 11, /* a run-time failure (NaN loss, index out of range) */
};

typedef struct ra_ctx ra_ctx;      /* one per thread of use */
typedef struct ra_model ra_model;  /* owned by its ra_ctx */

enum { RA_F32, RA_I32 };           /* ra_tensor.dtype */
typedef struct {
  int dtype;
  int ndim;
  int64_t shape[8];
  void *data;
} ra_tensor;

/* Version of the library actually linked (compare with RA_VERSION_NUM). */
RA_API int ra_version(void);
RA_API const char *ra_version_string(void);
/* The library this build does its GEMMs with ("libxsmm" or "openblas") and,
 * in *kernels when not NULL, the kernel set it chose on this CPU ("cpx",
 * "skx", "hsw" for libxsmm's cpuid targets; OpenBLAS's core name). */
RA_API const char *ra_gemm_backend(const char **kernels);

/* A context with the default allocator, or with one of the caller's
 * (realloc-like: nsize 0 frees). */
RA_API ra_ctx *ra_new(void);
RA_API ra_ctx *ra_new_with_alloc(void *(*alloc)(void *ud, void *ptr, size_t osize,
                                                size_t nsize),
                                 void *ud);
RA_API void ra_free(ra_ctx *ctx);
/* The last error ("" if none: a call that succeeds clears it).  Valid until
 * the next call on ctx. */
RA_API const char *ra_error(ra_ctx *ctx);
/* The code of the last error (RA_OK if none, or after a call that succeeded). */
RA_API int ra_errcode(ra_ctx *ctx);

/* Options: "threads" (N), "seed" (N), "allow_extern" (0|1), "jit" (0|1),
 * "repulsion" (none|svgd|spos, overrides every train block),
 * "stdlib" (folder), "ra_path" (colon-separated folders), "color" (0|1),
 * "progress" (0|1|auto), and any train clause as "set.KEY" (e.g.
 * "set.epochs" = "2").  Unknown keys are RA_EUSAGE. */
RA_API int ra_set_option(ra_ctx *ctx, const char *key, const char *value);

/* Loading a spec parses and checks it; no data is read. */
RA_API int ra_load_file(ra_ctx *ctx, const char *path);
RA_API int ra_load_string(ra_ctx *ctx, const char *name, const char *source);

RA_API ra_model *ra_model_get(ra_ctx *ctx, const char *model_name);

/* Trains with a train block, named by its model (or "model:data"; NULL
 * takes the first).  on_step may be NULL; returning non-zero from it stops
 * training cleanly (RA_ESTOPPED). */
RA_API int ra_train(ra_ctx *ctx, const char *train_name,
                    int (*on_step)(void *ud, int64_t step, double loss), void *ud);

/* Forward pass on a batch of any size: inputs in the model's `input` order,
 * outputs in its `output` order.  Output tensors with data == NULL get
 * storage owned by the model, valid until the next call; otherwise the
 * caller's buffer is filled (shape must match). */
RA_API int ra_forward(ra_model *m, const ra_tensor *inputs, int n_inputs,
                      ra_tensor *outputs, int n_outputs);
/* A view of a parameter's storage (writes go to the model). */
RA_API int ra_param(ra_model *m, const char *path, ra_tensor *out);
RA_API int ra_save(ra_model *m, const char *path);
RA_API int ra_load(ra_model *m, const char *path);

/* Native functions for `extern fn NAME(...) -> ... from host`.
 * signature: "f32(f32)" (elementwise) or "void(f32[],i32)" (array form).
 * Before or after loading a spec; externs are resolved when a model first
 * runs (ra_train, ra_forward, ra_eval, ra_bench).  Host functions need no
 * allow_extern; a name registered twice is RA_EUSAGE. */
RA_API int ra_register_fn(ra_ctx *ctx, const char *name, const char *signature,
                          void (*fn)(void));

/* ---- introspection and tooling (what rac itself uses) ---- */
/* Diagnostics of the last load, rendered (with source lines and carets). */
RA_API const char *ra_diagnostics(ra_ctx *ctx);
/* Text dumps; the string is owned by ctx, valid until the next call.
 * what: "ast", "ir", "grad", "opt", "plan", "params". */
RA_API int ra_dump(ra_ctx *ctx, const char *model_name, const char *what,
                   const char **text);
/* Model metadata. */
RA_API int ra_model_n_params(ra_model *m);
RA_API const char *ra_model_param_name(ra_model *m, int i);
RA_API int ra_model_n_inputs(ra_model *m);
RA_API int ra_model_n_outputs(ra_model *m);
RA_API const char *ra_model_output_name(ra_model *m, int i);

/* Progress and log lines during training ("plain" lines, or the one-line
 * progress bar when progress is on and the sink is a terminal). */
RA_API void ra_set_log(ra_ctx *ctx, void (*log)(void *ud, const char *line), void *ud);

/* Evaluates a checkpoint on a split ("train", "valid", "test"); writes a
 * one-line summary into *summary (owned by ctx). */
RA_API int ra_eval(ra_ctx *ctx, const char *train_name, const char *ckpt,
                   const char *split, const char **summary);
/* Predicts for raw text (tokenized as the data set does) or a file of lines. */
RA_API int ra_predict(ra_ctx *ctx, const char *train_name, const char *ckpt,
                      const char *text, const char *file, const char **result);
/* Benchmarks steps of a train block; *report owned by ctx. */
RA_API int ra_bench(ra_ctx *ctx, const char *train_name, int64_t steps,
                    const char **report);

#ifdef __cplusplus
}
#endif
#endif

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

#include <signal.h>
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
/* The MPI this build trains data-parallel with ("Open MPI 4.1.4 (MPI 3.1)"),
 * or NULL for a build without MPI (docs/distributed.md). */
RA_API const char *ra_mpi_library(void);

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

/* Options: "threads", "seed" and "repulsion" (train settings, overriding
 * every train block), "allow_extern" (0|1), "jit" (0|1:
 * elementwise, softmax and layernorm loops and the optimizer compiled for
 * this CPU with LLVM, the interpreter's bits; RA_EUSAGE in a build without
 * LLVM, RA_ERUNTIME when LLVM fails), "stdlib" (folder), "ra_path" (colon-separated folders), "color" (0|1),
 * "fuse" (0|1, default 1: 0 compiles without the fusion pass, for
 * comparison; results are the same bits either way), "mpi.bucket_bytes"
 * (a data-parallel run's gradient buckets, default 262144; 0: one
 * reduction after the backward pass instead of buckets overlapping it),
 * "progress" (0|1), "quiet" (0|1), "log" (a JSON Lines file of
 * metrics, overriding the train block's: whole records, written out every
 * 2 seconds and at evaluations, every write checked; with "resume" it is cut
 * back to the checkpoint's step and continued), "resume" (a checkpoint to
 * continue training from), and any train setting as "set.KEY" (e.g.
 * "set.epochs" = "2"; "set.epochs" and "set.steps" together are refused,
 * as in a spec), and for ra_predict of a language model "predict.tokens"
 * (1 to 1000000, default 200), "predict.temperature" (above 0, at most
 * 1000, default 0.8), "predict.top_k" (1 to 1000000, default all tokens)
 * and "predict.greedy" (0|1: the most likely token, as top_k 1); sampling
 * is deterministic for a seed.  The train settings and their limits are listed
 * once, in docs/language.md section 8; a value is checked when it is set
 * (a setting of the other optimizer when ra_train applies it) and a bad one
 * is RA_EUSAGE with the message a spec would get, without the location.
 * Unknown keys are RA_EUSAGE, with "did you mean".  ra_train refuses,
 * before the first step, a log or save path that is the spec, a data file
 * or the resumed checkpoint, and a save path it cannot write. */
RA_API int ra_set_option(ra_ctx *ctx, const char *key, const char *value);

/* Data-parallel training (docs/distributed.md).  Launched by mpirun or srun
 * as several processes (read from the launcher's environment), ra_train,
 * ra_eval and ra_bench start MPI on their first call (MPI_Init_thread,
 * finalised by ra_free) and share every batch among the processes; a
 * process that was not launched so starts no MPI.  An application that
 * uses MPI itself hands its communicator instead: comm points at an
 * MPI_Comm (MPI initialised, MPI_THREAD_SERIALIZED or more when several
 * threads call MPI), which ctx duplicates at once (MPI_Comm_dup: its
 * messages never mix with the application's) and frees in ra_free; the
 * application finalises MPI after ra_free.  Every process of the
 * communicator must make the same calls on ctx.  RA_EUSAGE in a build
 * without MPI. */
RA_API int ra_set_mpi_comm(ra_ctx *ctx, const void *comm);
/* This process's rank in ctx's run (-1 while ctx has no communicator),
 * and in *size (may be NULL) the number of processes (1 without one).
 * Errors of a data-parallel run are agreed: every rank gets the same
 * code and message, so one rank (0) can print them. */
RA_API int ra_mpi_rank(ra_ctx *ctx, int *size);

/* Loading a spec parses and checks it; no data is read. */
RA_API int ra_load_file(ra_ctx *ctx, const char *path);
RA_API int ra_load_string(ra_ctx *ctx, const char *name, const char *source);

RA_API ra_model *ra_model_get(ra_ctx *ctx, const char *model_name);

/* Trains with a train block, named by its model (or "model:data"; NULL
 * takes the first).  on_step may be NULL; returning non-zero from it stops
 * training cleanly (RA_ESTOPPED), as does the stop flag (ra_set_stop_flag).
 * A stop comes after a whole step: the checkpoint of the steps taken is
 * written (atomically) to the train block's `save` path, or, when it has
 * none, to "MODEL.stopped.safetensors" in the current folder, the log is
 * flushed, and ra_error says where it was saved (ra_last_save gives the
 * path); --resume / the "resume" option from it continues bit for bit. */
RA_API int ra_train(ra_ctx *ctx, const char *train_name,
                    int (*on_step)(void *ud, int64_t step, double loss), void *ud);
/* A flag the library polls between training steps and between evaluation
 * batches: once *flag is non-zero, ra_train stops as above (RA_ESTOPPED)
 * and ra_eval returns RA_ESTOPPED.  Meant for a signal handler that sets a
 * volatile sig_atomic_t; the library only reads it.  NULL removes it; the
 * flag must outlive its use by ctx. */
RA_API int ra_set_stop_flag(ra_ctx *ctx, volatile sig_atomic_t *flag);
/* The checkpoint the last ra_train on ctx wrote last (its `save` path, or
 * where a stop saved), or NULL when it wrote none.  Valid until the next
 * ra_train or ra_free. */
RA_API const char *ra_last_save(ra_ctx *ctx);

/* Forward pass on a batch of any size: inputs in the model's `input` order,
 * outputs in its `output` order.  Output tensors with data == NULL get
 * storage owned by the model, valid until the next call; otherwise the
 * caller's buffer is filled (shape must match). */
RA_API int ra_forward(ra_model *m, const ra_tensor *inputs, int n_inputs,
                      ra_tensor *outputs, int n_outputs);
/* A view of a parameter's storage (writes go to the model). */
RA_API int ra_param(ra_model *m, const char *path, ra_tensor *out);
/* Saving is atomic (a temporary beside path, renamed over it); loading
 * checks every tensor and the metadata first, so on error the model's
 * weights are unchanged (RA_ECKPT names the file and the tensor or key). */
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
 * progress bar when progress is on and the sink is a terminal), and
 * warnings ("warning: ..."): a checkpoint evaluated or resumed with data
 * settings other than its spec_hash records (docs/data.md) gets one. */
RA_API void ra_set_log(ra_ctx *ctx, void (*log)(void *ud, const char *line), void *ud);

/* Evaluates a checkpoint on a split ("train", "valid", "test"); writes a
 * one-line summary into *summary (owned by ctx).  The data is encoded with
 * the checkpoint's vocabulary and labels when it stores them; a label it
 * lacks is RA_EDATA naming the data file, the line and the checkpoint. */
RA_API int ra_eval(ra_ctx *ctx, const char *train_name, const char *ckpt,
                   const char *split, const char **summary);
/* Heads removed from a checkpoint's attention layers (rac eval
 * --ablate-heads).  Removing head h of a layer zeroes its rows of the
 * layer's output projection wo (the bias stays), in a copy: the model's
 * weights are unchanged afterwards.  The metric is the train block's:
 * accuracy for a classifier whose metrics list it, else perplexity when
 * listed, else loss.  First each head alone is removed (single), then heads
 * are removed greedily, at each step the one whose removal hurts the metric
 * least (ties to the earlier head), until none is left.  attnpool hops have
 * no output projection and are not candidates; a model without a candidate
 * is RA_EUSAGE.  Every array has n_heads entries, heads listed layer by
 * layer; all of it is owned by ctx, valid until the next ra_ablate_heads, a
 * load or ra_free. */
typedef struct ra_ablation {
  const char *metric;        /* "accuracy", "perplexity" or "loss" */
  int higher_is_better;      /* 1 for accuracy */
  double base;               /* nothing removed: the figure ra_eval reports */
  int n_heads;
  const char *const *layer;  /* head i's layer (as head_diversity names it) */
  const int *head;           /* its index in the layer */
  const double *single;      /* the metric with head i alone removed */
  const int *order;          /* greedy: step k + 1 removed head order[k] */
  const double *greedy;      /* the metric with order[0..k] removed
                                (n_heads - k - 1 heads left) */
} ra_ablation;
RA_API int ra_ablate_heads(ra_ctx *ctx, const char *train_name, const char *ckpt,
                           const char *split, const ra_ablation **out);
/* Predicts for raw text or a file of lines, tokenized with the vocabulary and
 * labels stored in the checkpoint (no data file is read), or, for a
 * checkpoint without them, as the data set does. */
RA_API int ra_predict(ra_ctx *ctx, const char *train_name, const char *ckpt,
                      const char *text, const char *file, const char **result);
/* Benchmarks steps of a train block; *report owned by ctx. */
RA_API int ra_bench(ra_ctx *ctx, const char *train_name, int64_t steps,
                    const char **report);

#ifdef __cplusplus
}
#endif
#endif

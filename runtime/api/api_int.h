/* api_int.h - the insides of ra_ctx and ra_model, shared by the files that
 * implement ra.h (api.c, api_tools.c, ffi.c).  Not installed. */
#ifndef RA_API_INT_H
#define RA_API_INT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../compiler/program.h"
#include "../../include/ra.h"
#include "../exec/exec.h"
#include "../exec/exec_jit.h"
#include "../train/dist.h"
#include "../train/train.h"

#ifndef RA_STDLIB_DIR
#define RA_STDLIB_DIR "/usr/local/share/rac/stdlib"
#endif

typedef struct HostFn {
  char *name;
  char *signature;
  void (*fn)(void);
} HostFn;

typedef struct FwdBuf {
  void *p;
  size_t bytes;
} FwdBuf;

struct ra_model {
  ra_ctx *ctx;
  const AstItem *item;
  const char *name;
  Model *meta;              /* lowered for batch 1: parameters, inputs, outputs */
  ModelState ms;
  /* the forward pass for the last batch size used by ra_forward */
  int64_t fwd_batch;
  Model *flm;
  IrFunc *ff;
  Exec *fex;
  /* its input and output buffers, one per input (and target) and output of
   * that pass, allocated with it */
  FwdBuf *fin, *fout;
  int nfin, nfout;
  ra_model *next;
};

struct ra_ctx {
  RaAlloc alloc;
  /* the last error */
  int code;
  char *err;
  size_t errcap;
  bool err_lost;            /* the last message did not fit and memory ran out */
  /* options */
  int threads;
  /* the worker threads, made on first use with the run's thread count and
   * remade when it changes (pool_ensure); freed by ra_free */
  Pool *pool;
  uint64_t seed;
  bool has_seed;
  /* predict of a sequence model: 0 (or false) for the defaults */
  int64_t predict_tokens, predict_top_k;
  double predict_temperature;
  bool predict_greedy;
  bool allow_extern;
  bool use_jit;             /* option jit: compiled loops (compiler/jit) */
  Jit *jit;                 /* made when the option is first set, freed by
                               ra_free; its code cache lives as long */
  bool no_fuse;             /* option "fuse" 0: compile without pass_fuse */
  bool no_chains;           /* option "chains" 0: plan without chains */
  /* data-parallel runs (docs/distributed.md): the processes, made by the
   * first ra_train/ra_eval/ra_bench launched by mpirun or srun, or by
   * ra_set_mpi_comm; freed (and MPI finalised, when this context started
   * it) by ra_free */
  Dist *dist;
  int64_t bucket_bytes;     /* option mpi.bucket_bytes; < 0: the default */
  bool bench_profile;       /* option bench.profile: ra_bench's report has the profile */
  bool has_rep_override;
  RepKind rep_override;
  char *stdlib, *ra_path;
  bool color, progress, quiet;
  char *log_path, *resume;
  volatile sig_atomic_t *stop;  /* ra_set_stop_flag; polled, never written */
  char *last_save;          /* what the last ra_train saved last, or NULL */
  struct { char *key, *value; } sets[64];
  int nsets;
  /* set.NAME for a name that is no train setting: a const of the spec,
   * applied when a spec loads (names owned by ctx) */
  ConstOverride csets[64];
  int ncsets;
  void (*log)(void *ud, const char *line);
  void *log_ud;
  /* the loaded spec */
  Arena arena;
  SrcSet src;
  DiagList diags;
  Program *prog;
  char *diag_text;
  ra_model *models;
  /* native functions */
  HostFn *host;
  int nhost, hostcap;
  ExternFn **externs;       /* by extern index, after ffi_prepare */
  int nexterns;
  void *ffi_state;
  /* text handed to the caller */
  char *text;
  /* the last ra_ablate_heads: its result and the public view of it */
  Ablation ablation;
  const char **ablation_layers;
  ra_ablation ablation_view;
};

/* The processes of a run when rac was launched as several (ctx->dist),
 * before anything of MPI starts otherwise; RA_EUSAGE in a build without
 * MPI.  Then api_agree makes every rank see the first rank's failure of a
 * step before the run (loading a checkpoint, a spec error). */
int api_dist(ra_ctx *ctx);
int api_agree(ra_ctx *ctx, int code);

int api_fail(ra_ctx *ctx, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A public call that succeeds ends with this: RA_OK, and no error left from
 * an earlier call. */
int api_ok(ra_ctx *ctx);
char *api_strdup(ra_ctx *ctx, const char *s);
const char *api_set_text(ra_ctx *ctx, const char *s);
ra_model *api_model(ra_ctx *ctx, const char *name);
const TrainDecl *api_find_train(ra_ctx *ctx, const char *name);
int api_train_decl(ra_ctx *ctx, const char *name, TrainDecl *out);
void api_run_options(ra_ctx *ctx, RunOptions *o);
ra_model *api_begin_run(ra_ctx *ctx, const char *fn, const char *train_name, const char *ckpt,
                        TrainDecl *t);
/* Around compile steps after loading: RA_ENOMEM if the arena ran out,
 * else RA_ESPEC with the rendered diagnostics. */
void api_compile_begin(ra_ctx *ctx);
int api_compile_fail(ra_ctx *ctx, const char *model);

/* ffi.c: resolves the program's extern functions (dlopen/dlsym or host
 * registrations) into ctx->externs; refuses unless allow_extern.  Called
 * before running anything; cheap when already done. */
int ffi_prepare(ra_ctx *ctx);
void ffi_unload(ra_ctx *ctx);     /* closes libraries, frees ctx->externs */
void ffi_host_free(ra_ctx *ctx);  /* frees the host registrations */

#endif

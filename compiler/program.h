/* program.h - what the compiler makes of a .ra file, and the pass pipeline.
 *
 * sema (sema.c, clauses.c) resolves `use`, consts, data, train and extern
 * items into plain structs; lower (lower.c) turns a model into an IR
 * function for a given batch size, recording its parameters, inputs,
 * targets, outputs and head groups (attention/attnpool layers with their
 * repulsion settings).  autodiff.c, passes.c and plan.c then work on IR.
 */
#ifndef RA_PROGRAM_H
#define RA_PROGRAM_H

#include "../lang/ast.h"
#include "ir.h"

/* ---- parameters ---- */
typedef enum {
  INIT_ZEROS,
  INIT_ONES,
  INIT_NORMAL,    /* normal(0, scale) */
  INIT_UNIFORM,   /* uniform(-scale, scale) */
} InitKind;

typedef struct ParamInfo {
  const char *path;   /* "classifier.r1.a.wq" */
  IrType type;        /* unbatched */
  InitKind init;
  double scale;
  Span span;          /* the layer call that owns it */
  int64_t offset;     /* in floats, in the model's one parameter buffer */
} ParamInfo;

/* ---- repulsion (language.md §6) ---- */
typedef enum { REP_NONE, REP_SVGD, REP_SPOS, REP_PENALTY } RepKind;
typedef enum { GROUP_EACH, GROUP_JOINT } RepGroup;
enum { PART_Q = 1, PART_K = 2, PART_V = 4, PART_O = 8 };

typedef struct Repulsion {
  RepKind kind;
  RepGroup group;      /* default each */
  unsigned particles;  /* PART_* mask, default q|k|v */
  int64_t every;       /* default 1 */
  bool bw_median;      /* default true */
  double bandwidth;    /* h when !bw_median */
  double alpha;        /* default 1 */
  double stepsize;     /* default 1 */
  double beta;         /* default 1 (spos) */
  double weight;       /* default 1 (penalty: c of c · mean cos²) */
  /* when it applies (language.md §6): steps in [start, stop), stop 0 = no
   * end; with a trigger (when != REP_WHEN_NONE), from the first checked
   * step whose measured head diversity compares true with threshold on */
  int64_t start, stop;
  int when;            /* REP_WHEN_* */
  double threshold;
  Span span;
} Repulsion;
enum { REP_WHEN_NONE, REP_WHEN_LT, REP_WHEN_LE, REP_WHEN_GT, REP_WHEN_GE };

/* An attention or attnpool layer: its heads are the particles. */
typedef struct HeadGroup {
  const char *path;    /* "classifier.r0.a" */
  Span span;
  bool attnpool;
  int64_t heads, head_dim, dim;
  bool causal;
  /* parameter indices, -1 when absent.  Attention: wq wk wv [dim, H*hd],
   * wo [H*hd, dim]; head i owns columns (rows for wo) [i*hd, (i+1)*hd).
   * attnpool: w2 [hidden, H], head i owns column i. */
  int32_t wq, wk, wv, wo, w2;
  Repulsion rep;
} HeadGroup;

typedef struct ModelVar {
  const char *name;
  Span span;
  IrType type;         /* per example (unbatched) */
  int64_t classes;     /* class(K): K; else 0 */
} ModelVar;

/* A model lowered for one batch size. */
typedef struct Model {
  const char *name;
  Span span;
  const AstItem *item;
  IrFunc *fwd;         /* forward: loss, outputs, preds, heads */
  ParamInfo *params;
  int nparams;
  int64_t nweights;    /* total floats */
  ModelVar *inputs, *targets;
  int ninputs, ntargets;
  HeadGroup *groups;
  int ngroups;
  int ndropout;        /* dropout streams used */
} Model;

/* ---- data (language.md §8) ---- */
typedef enum { LOADER_TSV, LOADER_CSV, LOADER_TEXT, LOADER_SYNTHETIC, LOADER_NPY } LoaderKind;
typedef enum { TOK_NONE, TOK_CHARS, TOK_WORDS, TOK_BPE } TokKind;
typedef enum { FIELD_TEXT, FIELD_FEATURES, FIELD_LABEL } FieldRole;
typedef enum { SYN_COPY, SYN_REVERSE, SYN_RECALL } SynTask;

typedef struct DataField {
  FieldRole role;
  Span span;
  int64_t column;        /* 0-based index, or -1 when named */
  const char *column_name;
  int64_t col_lo, col_hi;   /* features: columns lo..hi inclusive */
  const char *col_lo_name, *col_hi_name;
  bool range;            /* features, labels: columns col_lo..col_hi */
  bool typed;            /* sema set shape.dtype from a train block */
  const char *path;      /* npy: the array's file, as written */
  Span path_span;
  IrType shape;          /* per-example type: text int[maxlen]; features and labels f32
                          * (int when sema binds features to an int input); label:
                          * rank 0 i32 (class), or f32 when bound to an f32 target */
  TokKind tokenize;
  int64_t vocab;         /* cap, specials included */
  int64_t maxlen;
} DataField;

typedef struct DataDecl {
  const char *name;
  Span span;
  LoaderKind loader;
  const char *path;      /* as written; NULL for synthetic */
  Span path_span;
  const char *spec_dir;  /* folder of the .ra file, for relative paths */
  DataField fields[8];
  int nfields;
  bool header;           /* tsv/csv: first line is a header */
  double split[3];       /* train valid test fractions */
  uint64_t seed;
  /* text loader */
  TokKind tokenize;
  int64_t window;
  int64_t vocab;
  /* synthetic */
  SynTask task;
  int64_t length;        /* sequence length */
  int64_t examples;      /* how many to generate */
} DataDecl;

/* ---- train (language.md §8) ---- */
typedef enum { OPT_SGD, OPT_ADAM, OPT_ADAMW } OptKind;
typedef enum { SCHED_CONSTANT, SCHED_WARMUP_CONSTANT, SCHED_WARMUP_LINEAR,
               SCHED_WARMUP_COSINE } SchedKind;
enum { MET_ACCURACY = 1, MET_LOSS = 2, MET_PERPLEXITY = 4, MET_HEAD_DIVERSITY = 8,
       MET_EFFECTIVE_HEADS = 16 };
typedef enum { SPLIT_TRAIN, SPLIT_VALID, SPLIT_TEST } SplitKind;

typedef struct TrainDecl {
  const char *model, *data;
  Span span, model_span, data_span;
  OptKind opt;
  double lr, momentum, beta1, beta2, eps, weight_decay;
  SchedKind sched;
  int64_t warmup;
  int64_t batch;
  int64_t epochs, steps;   /* exactly one is > 0 */
  double clip;             /* 0 = off */
  uint64_t seed;
  SplitKind eval_split;
  bool eval_on;
  int64_t eval_every_steps; /* 0 = every epoch */
  unsigned metrics;         /* MET_* */
  const char *save, *log;
  int64_t threads;          /* 0 = default */
  bool has_repulsion_override;
  RepKind repulsion_override;
  /* --set repulsion_start / repulsion_stop: every layer's start and stop
   * (stop 0: no end), when has_ */
  bool has_repulsion_start, has_repulsion_stop;
  int64_t repulsion_start, repulsion_stop;
  /* --set repulsion_when=X (every layer's trigger becomes `when diversity
   * < X`) and --set repulsion_alpha=X (every layer's alpha), when has_ */
  bool has_repulsion_when, has_repulsion_alpha;
  double repulsion_when, repulsion_alpha;
} TrainDecl;

/* ---- extern functions (language.md §9) ---- */
typedef struct ExternDecl {
  const char *name;
  Span span;
  const char *lib;         /* NULL: from host */
  Span lib_span;
  const char *grad;        /* NULL: not differentiable */
  Span grad_span;
  bool array_form;         /* f(x: f32[], n: int) */
  const char *spec_dir;
} ExternDecl;

/* ---- consts ---- */
typedef struct ConstVal {
  const char *name;
  Span span;
  int64_t value;           /* consts are integers (language.md §3) */
  bool failed;             /* its definition had an error: uses fail quietly */
} ConstVal;

/* `--set NAME=INT` for a const NAME of the spec: its value replaces the
 * const's definition (language.md §3). */
typedef struct ConstOverride {
  const char *name;
  int64_t value;
} ConstOverride;

/* ---- the whole program ---- */
typedef struct Program {
  Arena *arena;
  SrcSet *src;
  DiagList *diags;
  AstFile **files;          /* main file first, then modules */
  int nfiles;
  const AstItem **models;   /* model items, by name lookup */
  int nmodels;
  const AstItem **blocks;
  int nblocks;
  DataDecl *data;
  int ndata;
  TrainDecl *trains;
  int ntrains;
  ExternDecl *externs;
  int nexterns;
  ConstVal *consts;
  int nconsts;
  bool no_fuse;             /* compile without pass_fuse (option "fuse" 0) */
  bool no_chains;           /* plan without chains (option "chains" 0) */
  const ConstOverride *overrides; /* CompileOptions' */
  int noverrides;
} Program;

typedef struct CompileOptions {
  const char *stdlib_dir;   /* where `use "std/..."` looks first */
  const char *ra_path;      /* RA_PATH value (colon separated), or NULL */
  const ConstOverride *overrides;
  int noverrides;
} CompileOptions;

/* sema.c: parses file (already in src) and everything it uses, checks all
 * items (models are lowered once with batch 1 to check them).  Returns the
 * program; errors are in diags (check diags->nerrors). */
Program *sema_program(Arena *arena, SrcSet *src, DiagList *diags, int file,
                      const CompileOptions *opt);
/* Applies `--set key=value` to a train block; the keys, limits and
 * messages are those of the settings table (settings.c, settings.def).
 * Returns 0 or -1 with a message in err (the block is then unchanged). */
int sema_train_set(Program *p, TrainDecl *t, const char *key,
                   const char *value, char *err, size_t errlen);
const AstItem *sema_find_model(const Program *p, const char *name);
/* Whether the program (its files and modules) defines a const name; with
 * none, *suggest is the nearest const name or NULL. */
bool sema_has_const(const Program *p, const char *name, const char **suggest);

/* lower.c: the model's forward IR for a batch size, with all metadata.
 * NULL on error (diagnostics in p->diags). */
Model *lower_model(Program *p, const AstItem *model, int64_t batch);
/* Same, with every attention layer's repulsion kind replaced by rep_override
 * (a RepKind; -1: each layer's own), as --repulsion does: it decides which
 * layers get the penalty term of `repulsion penalty`. */
Model *lower_model_rep(Program *p, const AstItem *model, int64_t batch, int rep_override);

/* autodiff.c: appends the backward pass to a copy of m->fwd: the result
 * computes the loss and one OUT_GRAD output per parameter.  externs[i] is
 * extern index i (EXTERN's i[0]; NULL and 0 when the model calls none); an
 * extern whose `grad` is NULL has no gradient.  NULL on error (a located
 * diagnostic: no loss, no parameter, an op without a rule, an extern
 * without a gradient on the path to the loss). */
IrFunc *autodiff(Arena *arena, const Model *m, const ExternDecl *externs, int nexterns,
                 DiagList *diags);

/* passes.c: dead-code elimination, common subexpressions, and the pipeline
 * that also folds constants; each returns a new function (outputs kept). */
IrFunc *pass_dce(Arena *arena, const IrFunc *f);
IrFunc *pass_cse(Arena *arena, const IrFunc *f);
IrFunc *pass_optimize(Arena *arena, const IrFunc *f); /* fold, CSE, DCE */
/* fuse.c: chains of elementwise ops (and a row op they feed or follow)
 * become FUSED nodes; values read outside a chain, and outputs, stay. */
IrFunc *pass_fuse(Arena *arena, const IrFunc *f);
/* causal.c: marks the matmuls of causal attention that may skip the
 * triangle above the diagonal (MATMUL's i[2], IR_MM_TRI_*). */
IrFunc *pass_causal(Arena *arena, const IrFunc *f);
/* Products A B^T with a large 2-D B: B^T made once by a transpose node,
 * then A (B^T) (compiler/transb.c). */
IrFunc *pass_transb(Arena *arena, const IrFunc *f);
/* add(bias, matmul) as the product's third input, added by the GEMM
 * (compiler/bias.c). */
IrFunc *pass_bias(Arena *arena, const IrFunc *f);
/* The pipeline from autodiff to the memory plan: pass_optimize, then
 * pass_fuse when fuse is true, then pass_transb, pass_causal and pass_bias
 * (docs/ir.md, "Passes"). */
IrFunc *pass_compile(Arena *arena, const IrFunc *f, bool fuse);

/* chain.c: runs of nodes executed slice of items by slice (docs/ir.md,
 * "Chains"). */
#define CHAIN_MAX 32          /* nodes per chain */
typedef struct Chain {
  int32_t first, last;        /* the chain's nodes [first, last] */
  int lead;                   /* its values' leading dims that are sliced */
  int64_t items;              /* their product */
  int64_t per, slices;        /* items per slice (dividing dim lead - 1); items / per */
  /* the nodes cut to one slice: leaves 0..nouter-1 stand for the operands
   * from outside the chain (ext[k], sliced when ext_sliced[k], else whole),
   * then the chain's nodes in order */
  const IrFunc *slice;
  const int32_t *ext;
  const uint8_t *ext_sliced;
  int nouter;
  size_t scratch;             /* bytes of one slice of its STORE_SCRATCH values */
} Chain;
/* The chains of f, in node order, in *out; their count, or -1 when out of
 * memory. */
int chain_find(Arena *a, const IrFunc *f, Chain **out);
/* Bytes of one slice of a value of type t in chain c. */
size_t chain_slice_bytes(const Chain *c, const IrType *t);

/* plan.c: where each value lives.  STORE_SCRATCH: a value read only inside
 * its chain, one slice at a time in a worker's scratch. */
typedef enum { STORE_ARENA, STORE_PARAM, STORE_INPUT, STORE_CONST, STORE_VIEW,
               STORE_SCRATCH } StoreKind;
typedef struct MemPlan {
  uint8_t *kind;        /* StoreKind per value */
  int64_t *offset;      /* bytes in the arena (ARENA), or in the const
                           buffer (CONST), or in a worker's scratch
                           (SCRATCH); VIEW: the value whose storage it
                           shares */
  int32_t *last_use;    /* node index of the last reader (or n: output) */
  size_t arena_bytes;   /* peak: the size of the one arena */
  size_t const_bytes;
  Chain *chains;        /* chain.c, in node order */
  int nchains;
  size_t scratch_bytes; /* a worker's scratch: the largest chain's */
} MemPlan;

/* The plan, with the function's chains when chains is true (option
 * "chains"); plan_memory: with them. */
MemPlan *plan_memory_chains(Arena *arena, const IrFunc *f, bool chains);
MemPlan *plan_memory(Arena *arena, const IrFunc *f);
/* The plan as text (`rac ir --plan`): one line per value (storage and byte
 * range, or the value it views), then "peak N bytes (X MiB), naive M
 * bytes". */
char *plan_print(Arena *arena, const IrFunc *f, const MemPlan *plan);

#endif

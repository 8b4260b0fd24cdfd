/* train.h - model state, the training loop, evaluation and benchmarking.
 *
 * A ModelState is what a trained model is: its parameters (one buffer, laid
 * out by ParamInfo.offset), optimizer moments and progress counters.  The
 * loop is: batch -> step IR (forward, loss, gradients) -> particle updates
 * (svgd/spos, language.md §6) -> clipping -> optimizer -> metrics, progress,
 * evaluation, checkpoint.
 */
#ifndef RA_TRAIN_H
#define RA_TRAIN_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../compiler/program.h"
#include "../data/data.h"
#include "../exec/kernels.h"

typedef struct ModelState {
  RaAlloc alloc;
  const char *name;
  ParamInfo *params;        /* copy of the lowered model's (paths in arena) */
  int nparams;
  int64_t nweights;
  int64_t *offsets;         /* params[i].offset by index, for the interpreter */
  float *w;                 /* parameters */
  float *opt_m, *opt_v;     /* optimizer moments (NULL until training) */
  int64_t step;             /* optimizer steps taken */
  int64_t epoch;
  bool initialized;
  DataVocab *vocab;         /* tokenizer, vocabulary and labels it was trained
                               with (from the data or a checkpoint), or NULL */
  uint64_t spec_hash;       /* data_settings_hash of its training data, 0 unknown */
  uint64_t rep_triggered;   /* bit g: head group g's `when` trigger has fired */
  const HeadGroup *groups;  /* the model's attention layers (their heads are
                               checked against a checkpoint's "heads") */
  int ngroups;
  char *from;               /* the checkpoint it was loaded from, or NULL */
} ModelState;

typedef struct RunOptions {
  int threads;              /* 0: the train block's, else default_threads */
  int default_threads;
  Pool **pool;              /* the caller's pool, (re)made with the thread count
                               the run uses; NULL: a pool for this call only */
  uint64_t seed;            /* used when has_seed */
  bool has_seed;
  /* predict of a sequence model (docs/embedding.md, predict.*): tokens to
   * generate, sampling temperature, top-k (0: all), greedy (argmax) */
  int64_t predict_tokens;
  double predict_temperature;
  int64_t predict_top_k;
  bool predict_greedy;
  bool progress;            /* one-line progress bar (a terminal) */
  bool quiet;
  const char *log_path;     /* overrides the train block's */
  const char *resume;       /* checkpoint to resume from */
  ExternFn *const *externs;
  int nexterns;
  struct Jit *jit;          /* compile the loops with it (compiler/jit); NULL:
                               the interpreter's kernels */
  /* data-parallel training over the ranks of dist (docs/distributed.md);
   * NULL: one process.  Gradients are reduced in buckets of bucket_bytes
   * (0: one reduction after the backward pass; < 0: the default) */
  struct Dist *dist;
  int64_t bucket_bytes;
  bool profile;             /* train_bench: the report has the step's profile
                               (profile.h) */
  /* sinks */
  void (*log)(void *ud, const char *line);   /* lines; '\r'-led = progress */
  void *log_ud;
  int (*on_step)(void *ud, int64_t step, double loss);
  void *step_ud;
  volatile sig_atomic_t *stop; /* non-zero: stop after the current step */
  /* out: the checkpoint train_run wrote last ("" if none) */
  char *saved;
  size_t saved_len;
} RunOptions;

/* Results of an evaluation pass. */
typedef struct EvalResult {
  int64_t examples;
  double loss;              /* mean per predicted position */
  double accuracy;          /* -1 when the model has no classification */
  double perplexity;
  int ngroups;
  double diversity[64];     /* per head group: head_diversity */
  double effective[64];     /* per head group: effective_heads */
} EvalResult;

/* head_diversity and effective_heads of one example's heads ([H][L]; wo,
 * hd, dim and scratch as train.c says; wo NULL: the rows themselves). */
void heads_measure(const float *heads, int64_t H, int64_t L, const float *wo, int64_t hd,
                   int64_t dim, float *scratch, double *diversity, double *effective);

int mstate_init(ModelState *ms, RaAlloc alloc, const Model *m, uint64_t seed);
void mstate_free(ModelState *ms);

/* The gradient bucket of a data-parallel step when RunOptions.bucket_bytes
 * is negative. */
#define TRAIN_BUCKET_BYTES_DEFAULT ((int64_t)1 << 18)

/* Trains; returns 0, RA_ESTOPPED (callback or stop flag; the checkpoint of
 * the steps taken is saved first) or another RA_E* code with a message in
 * err. */
int train_run(Program *p, const TrainDecl *t, ModelState *ms, const RunOptions *o,
              char *err, size_t errlen);
/* Evaluates on a split; fills *r. */
int train_eval(Program *p, const TrainDecl *t, ModelState *ms, const RunOptions *o,
               int split, EvalResult *r, char *err, size_t errlen);
/* Heads removed one at a time (rac eval --ablate-heads, ra_ablate_heads).
 * Removing head h of an attention layer zeroes rows [h*hd, (h+1)*hd) of its
 * output projection wo (the head's whole contribution to the layer output;
 * the bias bo stays); attnpool hops have no such projection and are not
 * candidates.  metric: MET_ACCURACY (higher is better), MET_PERPLEXITY or
 * MET_LOSS (lower is better), chosen from the train block's metrics. */
typedef struct Ablation {
  int metric;
  EvalResult base;          /* nothing removed: what train_eval gives */
  int nheads;               /* the candidates, layer by layer */
  int *group, *head;        /* [nheads] head i is head head[i] of group group[i] */
  double *single;           /* [nheads] the metric with head i alone removed */
  int *order;               /* [nheads] greedy: the head removed at step k + 1 */
  double *greedy;           /* [nheads] the metric with order[0..k] removed */
} Ablation;

/* The metric of r that Ablation.metric names, and its name ("accuracy",
 * "perplexity", "loss"). */
double ablation_value(const Ablation *a, const EvalResult *r);
const char *ablation_metric_name(const Ablation *a);
/* Evaluates with every head removed alone, then removes heads greedily (at
 * each step the one whose removal hurts the metric least; ties to the
 * earlier head) until none is left.  ms->w is as it was afterwards.  Free
 * with ablation_free. */
int train_ablate(Program *p, const TrainDecl *t, ModelState *ms, const RunOptions *o,
                 int split, Ablation *a, char *err, size_t errlen);
void ablation_free(RaAlloc alloc, Ablation *a);
/* Times `steps` training steps (after one warm-up step); fills a text report. */
int train_bench(Program *p, const TrainDecl *t, ModelState *ms, const RunOptions *o,
                int64_t steps, char *report, size_t replen, char *err, size_t errlen);

/* Predicts for each line of text (lines of any length; a line's tokens past
 * the model's input length are dropped, as in training): a class model prints
 * "label<TAB>p<TAB>line", a sequence model continues the line by 200 sampled
 * tokens.  src names the text in messages ("src:line: ..."): a file's path,
 * or NULL for text given inline.  *result is allocated with ms->alloc (free
 * with train_text_free). */
int train_predict(Program *p, const TrainDecl *t, ModelState *ms, const RunOptions *o,
                  const char *text, const char *src, char **result, char *err, size_t errlen);
void train_text_free(RaAlloc alloc, char *s);

/* Checkpoints (ckpt.h) of a ModelState: parameters by path, optimizer
 * moments as "optim.m/<path>", "optim.v/<path>", metadata with format,
 * version, model, spec hash (ms->spec_hash), step and epoch, and (when ms->vocab is set)
 * tokenizer, vocab and labels.  Loading checks everything before it copies
 * anything: on error the state is as it was. */
int mstate_save(const ModelState *ms, const char *path, char *err, size_t errlen);
int mstate_load(ModelState *ms, const char *path, bool need_optim, char *err, size_t errlen);
/* The checkpoints' spec_hash: a hash of the data settings (loader, file name
 * as written, header, fields with their columns, tokenizers, caps and
 * lengths, split fractions, seed, window, synthetic task).  A checkpoint
 * whose hash differs from the data it is evaluated on or resumed with gets
 * a warning through the log sink (the split may not be the one it was
 * trained with). */
uint64_t data_settings_hash(const DataDecl *d);

/* Creates the folders that will hold path (mkdir -p of its parent). */
void make_parent_dirs(const char *path);

#endif

/* data.h - data sets: loaders (tsv, csv, text, synthetic), tokenizers
 * (chars, words with a vocabulary cap, <pad> = 0 and <unk> = 1), splits,
 * shuffling and batches, all deterministic from the seed. */
#ifndef RA_DATA_H
#define RA_DATA_H

#include <stdbool.h>
#include <stdint.h>

#include "../../compiler/program.h"
#include "bpe.h"
#include "keyperm.h"

typedef struct Vocab {
  char **words;     /* id -> token (UTF-8); 0 "<pad>", 1 "<unk>" */
  int64_t n;
  /* hash table, owned */
  int64_t *slots;
  int64_t nslots;
} Vocab;

/* Inputs a data set may feed (npy arrays; the model may have fewer). */
#define DATA_MAX_INPUTS 8

/* The most examples a data set has: its split indices and shuffle orders
 * are uint32 (4 bytes an example; docs/data.md). */
#define DATA_MAX_EXAMPLES ((int64_t)UINT32_MAX)
/* From this many examples on, a data set's split and a split's shuffles
 * are keyed bijections computed per index (keyperm.h) instead of stored
 * Fisher-Yates permutations, so that no array of n is held: far above
 * every data set of the examples and tests, whose orders stay as they
 * were recorded (docs/data.md, "Large data sets"). */
#define DATA_KEYED_MIN ((int64_t)1 << 24)

/* One example field: int tokens, float features, or a class / token target. */
typedef struct DataSet {
  RaAlloc alloc;
  const DataDecl *decl;
  int64_t n;              /* examples */
  int nin;                /* input fields */
  IrType in_type[DATA_MAX_INPUTS];  /* per example */
  IrType tgt_type;        /* per example: rank 0 class, int[T], or f32[..] numbers */
  int64_t classes;        /* labels: number of distinct labels (K) */
  char **label_names;     /* id -> label text (tsv/csv) */
  Vocab vocab;            /* text fields and text loader */
  TokKind tok[8];         /* per input: TOK_CHARS, TOK_WORDS or TOK_BPE for text, TOK_NONE */
  Bpe bpe;                /* tokenize bpe: the merges (vocab is their tokens, no hash) */
  void *in_data[DATA_MAX_INPUTS];   /* [n][numel(in_type[k])] f32 or i32 */
  int32_t *tgt_data;      /* [n][numel(tgt_type)]: ids, or f32 bits when tgt_type is f32 */
  const struct DataText *text; /* text loader (chars, words): examples read from the
                                 * mapped file by data_batch (in_data, tgt_data NULL) */
  uint32_t *split_idx[3]; /* example indices of train / valid / test, ascending (a data set
                           * has at most DATA_MAX_EXAMPLES examples) */
  int64_t split_n[3];
  /* n >= DATA_KEYED_MIN, but for tokenize bpe (split_idx NULL): split s is
   * the images of positions split_cut[s] .. split_cut[s+1] under split_key,
   * in that order (data_split_example reads either form) */
  bool split_keyed;
  KeyPerm split_key;
  int64_t split_cut[4];
} DataSet;

/* An epoch's order of a split's examples (data_shuffle): a stored
 * permutation of its positions, or a keyed bijection when the data set
 * has DATA_KEYED_MIN examples or more. */
typedef struct DataOrder {
  int64_t n;              /* the split's examples */
  uint32_t *perm;         /* [n], or NULL when keyed */
  KeyPerm key;
  RaAlloc alloc;
} DataOrder;

/* What a trained model knows of its data, so that predict and eval do not
 * depend on the data file (stored in checkpoints, docs/data.md): the
 * tokenizer of each input, the vocabulary in id order, the label names in
 * class order.  Everything in its own arena. */
typedef struct DataVocab {
  RaAlloc alloc;
  Arena arena;
  int nin;
  TokKind tok[8];
  char **tokens;          /* ntokens == 0: no text input */
  int64_t ntokens;
  int32_t (*merges)[2];   /* tokenize bpe: the merges in order (tokens are theirs) */
  int64_t nmerges;
  char **labels;          /* nlabels == 0: no label names */
  int64_t nlabels;
  const char *source;     /* the checkpoint it came from (messages), or NULL */
} DataVocab;

/* Loads and tokenizes; err gets "path:line: message" on failure.
 * Returns NULL on error. */
DataSet *data_load(RaAlloc alloc, const DataDecl *d, char *err, size_t errlen);
/* The same, encoding text with fixed's vocabulary (tokens it lacks are
 * <unk>) and labels with fixed's label names (a label it lacks is an error
 * naming the line and fixed->source); a tokenizer other than fixed's is an
 * error too.  fixed NULL: data_load. */
DataSet *data_load_with(RaAlloc alloc, const DataDecl *d, const DataVocab *fixed, char *err,
                        size_t errlen);
/* A data set without examples, from v alone: enough for data_encode_text
 * and the label names (predict without the data file). */
DataSet *data_from_vocab(RaAlloc alloc, const DataDecl *d, const DataVocab *v, char *err,
                         size_t errlen);
/* A DataVocab: empty (to fill), or a copy of a data set's.  NULL when out of
 * memory. */
DataVocab *data_vocab_new(RaAlloc alloc);
DataVocab *data_vocab_of(RaAlloc alloc, const DataSet *ds);
void data_vocab_free(DataVocab *v);
/* Sets v's merges (tokenize bpe) and the tokens they make.  0; -1 when out
 * of memory; -2 with *bad the first merge that refers to a token not made
 * before it. */
int data_vocab_set_merges(DataVocab *v, const int32_t (*merges)[2], int64_t n, int64_t *bad);
void data_free(DataSet *ds);
/* Encodes raw text as the data set's text field does (for predict).  field
 * is the input index (0 .. nin-1); out gets numel(in_type[field]) ids,
 * padded with <pad>.  Returns the number of real tokens, or -1 when the
 * input is not text or the text is not valid UTF-8. */
int data_encode_text(const DataSet *ds, int field, const char *text, int32_t *out);
/* Fills batch inputs/targets with examples order[start .. start+bs) of a
 * split (order from data_shuffle, or NULL for split order).  Short final
 * batches are padded by repeating examples; returns the real count. */
int64_t data_batch(const DataSet *ds, int split, const DataOrder *order, int64_t start,
                   int64_t bs, void **inputs, int32_t *targets);
/* Rows [r0, r0 + rn) of that batch (a rank's share, docs/distributed.md)
 * into rows 0 .. rn of inputs/targets, padded as the whole batch is;
 * returns the real count of the whole batch. */
int64_t data_batch_rows(const DataSet *ds, int split, const DataOrder *order, int64_t start,
                        int64_t bs, int64_t r0, int64_t rn, void **inputs, int32_t *targets);
/* Example ex (in file order) into in[k] (numel(in_type[k]) values each, f32
 * or int32) and tg (numel(tgt_type)), either NULL to skip. */
void data_example(const DataSet *ds, int64_t ex, void **in, int32_t *tg);
/* Example j (0 .. split_n - 1) of a split, in split order. */
int64_t data_split_example(const DataSet *ds, int split, int64_t j);
/* An order for a split (its permutation's array allocated when stored);
 * 0, or -1 when out of memory.  data_order_free frees it. */
int data_order_init(DataOrder *o, const DataSet *ds, int split);
void data_order_free(DataOrder *o);
/* The order of a split for an epoch, from (seed, epoch), and the position
 * within the split (0 .. split_n - 1) it puts at pos. */
void data_shuffle(const DataSet *ds, int split, uint64_t seed, int64_t epoch, DataOrder *o);
int64_t data_order_at(const DataOrder *o, int64_t pos);

/* ---- tokenize.c: tokenizers and vocabularies ----
 * chars: one token per Unicode code point.  words: runs of letters, digits,
 * '_' and non-ASCII code points, ASCII letters lowercased; each punctuation
 * character is a token of its own; whitespace separates. */
typedef int (*TokEmitFn)(void *ud, const char *tok, size_t len);
/* Calls emit for each token of s[0..n); stops early when emit returns
 * non-zero (and returns that).  Returns -1 on invalid UTF-8 or a NUL byte,
 * with *bad = its byte offset. */
int tok_split(TokKind kind, const char *s, size_t n, TokEmitFn emit, void *ud, size_t *bad);
/* Interns a token (words: ASCII-lowercased when fold) into v, growing it in
 * arena a; returns its id, or -1 when out of memory. */
int64_t vocab_intern(Arena *a, Vocab *v, const char *tok, size_t len, int fold);
/* The id of a token, or -1 when absent. */
int64_t vocab_lookup(const Vocab *v, const char *tok, size_t len, int fold);
/* A vocabulary with the specials and the cap - 2 most frequent tokens of
 * full (counts[i] for token i; ties by bytes); remap[i] gets each full id's
 * new id (1 = <unk> when cut).  Returns 0, or -1 when out of memory. */
int vocab_build(Arena *a, Vocab *out, const Vocab *full, const int64_t *counts, int64_t cap,
                int32_t *remap);

#endif

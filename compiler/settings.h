/* settings.h - the train settings: one table (settings.def), their limits,
 * their word lists, and the reader of a setting given as text.
 *
 * A spec's train and optimizer blocks (clauses.c), `--set KEY=VALUE` and
 * the "set.KEY" option (settings_apply, through sema_train_set) and the
 * "threads", "seed" and "repulsion" options (runtime/api.c) all look a
 * setting up here, check its value with the same limits and word the same
 * message: a spec's with file:line:col and a caret, the others without.
 */
#ifndef RA_SETTINGS_H
#define RA_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "program.h"

/* ---- limits ---- */
typedef enum {
  LIM_ANY,        /* no limit */
  LIM_MIN,        /* at least lo */
  LIM_GT,         /* greater than lo */
  LIM_HALF_OPEN,  /* in [lo, hi) */
  LIM_CLOSED,     /* in [lo, hi]; for integers "from lo to hi" */
} LimitKind;

typedef struct Limits {
  LimitKind kind;
  double lo, hi;
} Limits;

/* Checks v against l; on failure writes "NAME must be at least 1, found 0"
 * (or "greater than", "in [0, 1)", "from 1 to 256") into msg and returns
 * -1.  These two are the only wording of a range error in the compiler. */
int limits_check_int(const char *name, const Limits *l, int64_t v, char *msg, size_t n);
int limits_check_num(const char *name, const Limits *l, double v, char *msg, size_t n);
/* "at least 1", "greater than 0", "in [0, 1)", "from 1 to 256", or "any":
 * the words after "must be", as the docs' settings table shows them. */
const char *limits_text(const Limits *l, bool is_int, char *buf, size_t n);

/* ---- word lists (each defined once, in settings.c) ---- */
enum { NOPTIMIZERS = 3, NSCHEDULES = 2, NSCHEDULE_AFTER = 3, NSPLITS = 3, NMETRICS = 5,
       NREPULSIONS = 4 };
extern const char *const setting_optimizers[NOPTIMIZERS];     /* sgd adam adamw: OptKind */
extern const char *const setting_schedules[NSCHEDULES];       /* constant warmup */
extern const char *const setting_schedule_after[NSCHEDULE_AFTER]; /* constant linear cosine */
extern const char *const setting_splits[NSPLITS];             /* train valid test: SplitKind */
extern const char *const setting_metrics[NMETRICS];           /* bit i is MET_* */
extern const char *const setting_repulsions[NREPULSIONS];     /* none svgd spos penalty: RepKind */

/* ---- the table ---- */
typedef enum { SETK_INT, SETK_NUM, SETK_PATH, SETK_SPECIAL } SettingKind;
enum { IN_TRAIN = 1, IN_OPTIMIZER = 2, IN_SET = 4, IN_OPTION = 8 };
enum { OPTS_SGD = 1u << OPT_SGD, OPTS_ADAM = (1u << OPT_ADAM) | (1u << OPT_ADAMW),
       OPTS_ALL = OPTS_SGD | OPTS_ADAM };

typedef enum {
#define SETTING(key, ...) SET_##key,
#include "settings.def"
#undef SETTING
  SETTING_COUNT
} SettingId;

typedef struct Setting {
  const char *key;
  SettingKind kind;
  Limits lim;
  size_t field;               /* offsetof(TrainDecl, ...) */
  unsigned optimizers;        /* OPTS_* */
  const char *const *words;   /* a word choice's words, or NULL */
  int nwords;
  unsigned where;             /* IN_* */
  const char *def;            /* the default, for the docs */
} Setting;

const Setting *setting_get(SettingId id);
/* The setting of that key usable where (IN_* mask), or NULL. */
const Setting *setting_find(const char *key, unsigned where);
/* The keys usable where, in table order, into names (and their ids into
 * ids when not NULL); returns how many (at most SETTING_COUNT). */
int setting_keys(unsigned where, const char **names, SettingId *ids);
/* "unknown setting 'epoch'; did you mean 'epochs'?" (or the list of keys)
 * into msg; returns -1. */
int setting_unknown(const char *key, unsigned where, char *msg, size_t n);
/* "'momentum' applies to sgd, not adam" into msg and -1 when s does not
 * apply to optimizer k; else 0. */
int setting_check_optimizer(const Setting *s, OptKind k, char *msg, size_t n);

/* A value given as text (--set, options): an integer or a finite number of
 * the setting's kind, within its limits.  "'lr' expects a number, found
 * 'fast'", "lr must be greater than 0, found -1"; 0 or -1 with msg. */
int setting_parse_int(const Setting *s, const char *text, int64_t *out, char *msg, size_t n);
int setting_parse_num(const Setting *s, const char *text, double *out, char *msg, size_t n);
/* text[0..len) as one of the words w: its index, or -1 with "'KEY' expects
 * a, b or c, found 'x'" (and "did you mean" when one is close) in msg: the
 * one wording of a wrong word, a spec's clauses' too. */
int words_parse(const char *key, const char *const *w, int nw, const char *text, int len,
                char *msg, size_t n);
/* One of s's words (a word choice); its index, or -1 with "'repulsion'
 * expects none, svgd, spos or penalty, found 'magic'" (with "did you mean"). */
int setting_parse_word(const Setting *s, const char *text, char *msg, size_t n);

/* Applies `key=value` to t as --set does.  Paths are copied into a (when a
 * is NULL they are only checked: an option is checked when it is set, then
 * applied to the train block when a run starts).  With check_opt, a
 * setting of the other optimizer is refused.  On error t is unchanged. */
int settings_apply(TrainDecl *t, Arena *a, const char *key, const char *value, bool check_opt,
                   char *msg, size_t n);

/* The one rule of settings given together: 'epochs' and 'steps' exclude
 * each other, in a train block and among the --set options of one run (a
 * single --set of either replaces the spec's other one).  The message when
 * keys a and b may not both be given, or NULL. */
const char *settings_exclusive(const char *a, const char *b);

#endif

/* settings.c - the table of train settings, their limits and word lists, and
 * the reader of a setting given as text (settings.h).
 *
 * The table is settings.def; nothing here is writable.  A spec's clauses
 * are read in clauses.c with the same table, limits and words.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clauses.h"
#include "settings.h"

/* ---- word lists ---- */

const char *const setting_optimizers[NOPTIMIZERS] = {"sgd", "adam", "adamw"};
const char *const setting_schedules[NSCHEDULES] = {"constant", "warmup"};
const char *const setting_schedule_after[NSCHEDULE_AFTER] = {"constant", "linear", "cosine"};
const char *const setting_splits[NSPLITS] = {"train", "valid", "test"};
const char *const setting_metrics[NMETRICS] = {"accuracy", "loss", "perplexity",
                                               "head_diversity", "effective_heads"};
const char *const setting_repulsions[NREPULSIONS] = {"none", "svgd", "spos", "penalty"};

/* ---- the table ---- */

#define OPTIMIZERS setting_optimizers, NOPTIMIZERS
#define SCHEDULES setting_schedules, NSCHEDULES
#define SPLITS setting_splits, NSPLITS
#define METRICS setting_metrics, NMETRICS
#define REPULSIONS setting_repulsions, NREPULSIONS
#define NOWORDS NULL, 0

static const Setting TABLE[SETTING_COUNT] = {
#define SETTING(key, kind, lim, lo, hi, field, opts, words, where, def) \
  {#key, kind, {lim, lo, hi}, offsetof(TrainDecl, field), opts, words, where, def},
#include "settings.def"
#undef SETTING
};

const Setting *setting_get(SettingId id) {
  return id >= 0 && id < SETTING_COUNT ? &TABLE[id] : NULL;
}

const Setting *setting_find(const char *key, unsigned where) {
  if (!key) return NULL;
  for (int i = 0; i < SETTING_COUNT; i++)
    if ((TABLE[i].where & where) && strcmp(TABLE[i].key, key) == 0) return &TABLE[i];
  return NULL;
}

int setting_keys(unsigned where, const char **names, SettingId *ids) {
  int n = 0;
  for (int i = 0; i < SETTING_COUNT; i++) {
    if (!(TABLE[i].where & where)) continue;
    if (names) names[n] = TABLE[i].key;
    if (ids) ids[n] = (SettingId)i;
    n++;
  }
  return n;
}

static int fail(char *msg, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *msg, size_t n, const char *fmt, ...) {
  if (msg && n) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, n, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* "a, b or c" into buf. */
static const char *word_list(const char *const *w, int nw, char *buf, size_t n) {
  size_t len = 0;
  buf[0] = 0;
  for (int i = 0; i < nw && len < n; i++)
    len += (size_t)snprintf(buf + len, n - len, "%s%s", i == 0 ? "" : i == nw - 1 ? " or " : ", ",
                            w[i]);
  return buf;
}

int setting_unknown(const char *key, unsigned where, char *msg, size_t n) {
  const char *names[SETTING_COUNT];
  int nk = setting_keys(where, names, NULL);
  const char *s = diag_suggest(key, names, nk);
  if (s) return fail(msg, n, "unknown setting '%s'; did you mean '%s'?", key, s);
  char list[512];
  return fail(msg, n, "unknown setting '%s' (known: %s)", key, word_list(names, nk, list, sizeof list));
}

int setting_check_optimizer(const Setting *s, OptKind k, char *msg, size_t n) {
  if (s->optimizers & (1u << k)) return 0;
  return fail(msg, n, "'%s' applies to %s, not %s", s->key,
              s->optimizers == OPTS_SGD ? "sgd" : "adam and adamw", setting_optimizers[k]);
}

/* ---- limits ---- */

const char *limits_text(const Limits *l, bool is_int, char *buf, size_t n) {
  switch (l->kind) {
  case LIM_MIN:
    if (is_int) snprintf(buf, n, "at least %lld", (long long)l->lo);
    else snprintf(buf, n, "at least %g", l->lo);
    break;
  case LIM_GT:
    if (is_int) snprintf(buf, n, "greater than %lld", (long long)l->lo);
    else snprintf(buf, n, "greater than %g", l->lo);
    break;
  case LIM_HALF_OPEN: snprintf(buf, n, "in [%g, %g)", l->lo, l->hi); break;
  case LIM_CLOSED:
    if (is_int) snprintf(buf, n, "from %lld to %lld", (long long)l->lo, (long long)l->hi);
    else snprintf(buf, n, "in [%g, %g]", l->lo, l->hi);
    break;
  default: snprintf(buf, n, "any"); break;
  }
  return buf;
}

int limits_check_int(const char *name, const Limits *l, int64_t v, char *msg, size_t n) {
  bool ok = true;
  switch (l->kind) {
  case LIM_MIN: ok = v >= (int64_t)l->lo; break;
  case LIM_GT: ok = v > (int64_t)l->lo; break;
  case LIM_HALF_OPEN: ok = v >= (int64_t)l->lo && v < (int64_t)l->hi; break;
  case LIM_CLOSED: ok = v >= (int64_t)l->lo && v <= (int64_t)l->hi; break;
  default: break;
  }
  if (ok) return 0;
  char t[96];
  return fail(msg, n, "%s must be %s, found %lld", name, limits_text(l, true, t, sizeof t),
              (long long)v);
}

int limits_check_num(const char *name, const Limits *l, double v, char *msg, size_t n) {
  bool ok = true;
  switch (l->kind) {
  case LIM_MIN: ok = v >= l->lo; break;
  case LIM_GT: ok = v > l->lo; break;
  case LIM_HALF_OPEN: ok = v >= l->lo && v < l->hi; break;
  case LIM_CLOSED: ok = v >= l->lo && v <= l->hi; break;
  default: ok = !isnan(v); break;
  }
  if (ok) return 0;
  char t[96];
  return fail(msg, n, "%s must be %s, found %g", name, limits_text(l, false, t, sizeof t), v);
}

/* ---- values as text ---- */

/* Is text a whole finite number (shown unquoted in messages, as a spec's
 * number literal is)? */
static bool is_number_text(const char *text) {
  if (!*text || strchr(" \t\n", text[0])) return false;
  char *end;
  errno = 0;
  double x = strtod(text, &end);
  return !errno && !*end && isfinite(x);
}

int setting_parse_int(const Setting *s, const char *text, int64_t *out, char *msg, size_t n) {
  if (!text || !*text) return fail(msg, n, "missing value after '%s' (expected an integer)", s->key);
  char *end;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  bool digits = end != text && !strchr(" \t\n", text[0]);
  if (digits && !*end && errno == ERANGE)
    return fail(msg, n, "integer %s does not fit in 64 bits", text);
  if (!digits || *end || errno) {
    if (is_number_text(text))
      return fail(msg, n, "'%s' expects an integer, found %s", s->key, text);
    return fail(msg, n, "'%s' expects an integer, found '%s'", s->key, text);
  }
  if (limits_check_int(s->key, &s->lim, v, msg, n)) return -1;
  *out = v;
  return 0;
}

int setting_parse_num(const Setting *s, const char *text, double *out, char *msg, size_t n) {
  if (!text || !*text) return fail(msg, n, "missing value after '%s' (expected a number)", s->key);
  if (!is_number_text(text)) /* nan, inf and out of range too */
    return fail(msg, n, "'%s' expects a number, found '%s'", s->key, text);
  double v = strtod(text, NULL);
  if (limits_check_num(s->key, &s->lim, v, msg, n)) return -1;
  *out = v;
  return 0;
}

int words_parse(const char *key, const char *const *w, int nw, const char *text,
                         int len, char *msg, size_t n) {
  for (int i = 0; i < nw; i++)
    if ((int)strlen(w[i]) == len && strncmp(w[i], text, (size_t)len) == 0) return i;
  char list[256], word[256];
  word_list(w, nw, list, sizeof list);
  if (len == 0) return fail(msg, n, "missing value after '%s' (expected %s)", key, list);
  const char *s = NULL;
  if (len < (int)sizeof word) {
    memcpy(word, text, (size_t)len);
    word[len] = 0;
    s = diag_suggest(word, w, nw);
  }
  if (s) return fail(msg, n, "'%s' expects %s, found '%.*s'; did you mean '%s'?", key, list, len,
                     text, s);
  return fail(msg, n, "'%s' expects %s, found '%.*s'", key, list, len, text);
}

int setting_parse_word(const Setting *s, const char *text, char *msg, size_t n) {
  if (!text) text = "";
  return words_parse(s->key, s->words, s->nwords, text, (int)strlen(text), msg, n);
}

/* ---- --set KEY=VALUE ---- */

typedef struct Tok {
  const char *s;
  int len;
} Tok;

/* Splits text at the separators into at most max words; returns how many
 * (max + 1 when there are more). */
static int split_words(const char *text, const char *seps, Tok *w, int max) {
  int n = 0;
  for (const char *p = text;;) {
    p += strspn(p, seps);
    if (!*p) break;
    int len = (int)strcspn(p, seps);
    if (n == max) return max + 1;
    w[n].s = p;
    w[n].len = len;
    n++;
    p += len;
  }
  return n;
}

static bool tok_is(Tok t, const char *s) {
  return (int)strlen(s) == t.len && strncmp(t.s, s, (size_t)t.len) == 0;
}

/* eval: SPLIT [every epoch | every N [steps]], or off / none. */
static int set_eval(const Setting *s, TrainDecl *t, const char *value, char *msg, size_t n) {
  Tok w[4];
  int nw = split_words(value, " \t", w, 4);
  if (nw == 1 && (tok_is(w[0], "off") || tok_is(w[0], "none"))) {
    t->eval_on = false;
    return 0;
  }
  int sp = -1;
  for (int i = 0; nw >= 1 && nw <= 4 && i < NSPLITS; i++)
    if (tok_is(w[0], setting_splits[i])) sp = i;
  if (sp < 0) {
    const char *words[NSPLITS + 1];
    char list[128];
    memcpy(words, s->words, sizeof(char *) * NSPLITS);
    words[NSPLITS] = "off";
    return fail(msg, n, "'%s' expects %s (then 'every epoch' or 'every N steps'), found '%s'",
                s->key, word_list(words, NSPLITS + 1, list, sizeof list), value);
  }
  int64_t every = 0;
  if (nw >= 2) {
    if (!tok_is(w[1], "every") || nw < 3)
      return fail(msg, n, "eval: expected 'every epoch' or 'every N steps' after '%.*s'",
                  w[0].len, w[0].s);
    if (!tok_is(w[2], "epoch")) {
      char num[32];
      char *end = NULL;
      long long v = 0;
      errno = 0;
      if (w[2].len < (int)sizeof num) {
        memcpy(num, w[2].s, (size_t)w[2].len);
        num[w[2].len] = 0;
        v = strtoll(num, &end, 10);
      }
      if (!end || *end || errno || end == num)
        return fail(msg, n, "'every' expects 'epoch' or a number of steps, found '%.*s'",
                    w[2].len, w[2].s);
      static const Limits every_min = {LIM_MIN, 1, 0};
      if (limits_check_int("every", &every_min, v, msg, n)) return -1;
      every = v;
      if (nw == 4 && !tok_is(w[3], "steps") && !tok_is(w[3], "step"))
        return fail(msg, n, "eval: unexpected '%.*s'", w[3].len, w[3].s);
    } else if (nw == 4) {
      return fail(msg, n, "eval: unexpected '%.*s'", w[3].len, w[3].s);
    }
  }
  t->eval_on = true;
  t->eval_split = (SplitKind)sp;
  t->eval_every_steps = every;
  return 0;
}

/* metrics: names separated by commas or spaces. */
static int set_metrics(const Setting *s, TrainDecl *t, const char *value, char *msg, size_t n) {
  unsigned mask = 0;
  for (const char *p = value;;) {
    p += strspn(p, ", \t");
    if (!*p) break;
    int len = (int)strcspn(p, ", \t");
    int m = words_parse(s->key, s->words, s->nwords, p, len, msg, n);
    if (m < 0) return -1;
    mask |= 1u << m;
    p += len;
  }
  if (!mask) {
    char list[128];
    return fail(msg, n, "missing value after '%s' (expected %s)", s->key,
                word_list(s->words, s->nwords, list, sizeof list));
  }
  t->metrics = mask;
  return 0;
}

static int set_special(const Setting *s, TrainDecl *t, const char *value, char *msg, size_t n) {
  SettingId id = (SettingId)(s - TABLE);
  int w;
  switch (id) {
  case SET_optimizer:
    if ((w = setting_parse_word(s, value, msg, n)) < 0) return -1;
    if ((OptKind)w != t->opt) {
      double lr = t->lr;
      train_opt_defaults(t, (OptKind)w);
      t->lr = lr;
    }
    return 0;
  case SET_schedule:
    /* with --set the warmup length is its own setting */
    w = words_parse(s->key, setting_schedule_after, NSCHEDULE_AFTER, value, (int)strlen(value),
                      msg, n);
    if (w < 0) return -1;
    t->sched = w == 1 ? SCHED_WARMUP_LINEAR : w == 2 ? SCHED_WARMUP_COSINE
             : t->warmup > 0 ? SCHED_WARMUP_CONSTANT : SCHED_CONSTANT;
    return 0;
  case SET_eval: return set_eval(s, t, value, msg, n);
  case SET_metrics: return set_metrics(s, t, value, msg, n);
  case SET_repulsion:
    if ((w = setting_parse_word(s, value, msg, n)) < 0) return -1;
    t->has_repulsion_override = true;
    t->repulsion_override = (RepKind)w;
    return 0;
  default: return fail(msg, n, "unknown setting '%s'", s->key);
  }
}

const char *settings_exclusive(const char *a, const char *b) {
  if (!a || !b) return NULL;
  bool ea = strcmp(a, "epochs") == 0, sa = strcmp(a, "steps") == 0;
  bool eb = strcmp(b, "epochs") == 0, sb = strcmp(b, "steps") == 0;
  if ((ea && sb) || (sa && eb)) return "give either 'epochs' or 'steps', not both";
  return NULL;
}

int settings_apply(TrainDecl *t, Arena *a, const char *key, const char *value, bool check_opt,
                   char *msg, size_t n) {
  if (msg && n) msg[0] = 0;
  if (!key || !value) return fail(msg, n, "--set expects key=value");
  const Setting *s = setting_find(key, IN_SET);
  if (!s) return setting_unknown(key, IN_SET, msg, n);
  TrainDecl c = *t;
  char *field = (char *)&c + s->field;
  int64_t iv;
  double dv;
  switch (s->kind) {
  case SETK_INT:
    if (setting_parse_int(s, value, &iv, msg, n)) return -1;
    memcpy(field, &iv, sizeof iv);  /* int64_t, or the uint64_t seed */
    if (s == &TABLE[SET_epochs]) c.steps = 0;
    if (s == &TABLE[SET_repulsion_start]) c.has_repulsion_start = true;
    if (s == &TABLE[SET_repulsion_stop]) c.has_repulsion_stop = true;
    if (s == &TABLE[SET_steps]) c.epochs = 0;
    if (s == &TABLE[SET_warmup]) {
      if (c.sched == SCHED_CONSTANT && iv > 0) c.sched = SCHED_WARMUP_CONSTANT;
      if (iv == 0) c.sched = SCHED_CONSTANT;
    }
    break;
  case SETK_NUM:
    if (setting_parse_num(s, value, &dv, msg, n)) return -1;
    if (check_opt && setting_check_optimizer(s, c.opt, msg, n)) return -1;
    if (s == &TABLE[SET_repulsion_when]) c.has_repulsion_when = true;
    if (s == &TABLE[SET_repulsion_alpha]) c.has_repulsion_alpha = true;
    memcpy(field, &dv, sizeof dv);
    break;
  case SETK_PATH: {
    /* written as in the spec (save "runs/x.st") or bare (save=runs/x.st) */
    size_t len = strlen(value);
    const char *from = value;
    if (len && value[0] == '"') {
      if (len < 2 || value[len - 1] != '"')
        return fail(msg, n, "%s: the path %s has no closing '\"'", s->key, value);
      from++, len -= 2;
    }
    if (!len) return fail(msg, n, "missing value after '%s' (expected a path)", s->key);
    const char *v = from;
    if (a && !(v = arena_strndup(a, from, len))) return fail(msg, n, "%s: out of memory", s->key);
    if (!a) v = NULL; /* checked only */
    if (v) memcpy(field, &v, sizeof v);
    break;
  }
  case SETK_SPECIAL:
    if (set_special(s, &c, value, msg, n)) return -1;
    break;
  }
  *t = c;
  return 0;
}

int sema_train_set(Program *p, TrainDecl *t, const char *key, const char *value, char *err,
                   size_t errlen) {
  if (!p || !p->arena) return fail(err, errlen, "--set needs a loaded program");
  return settings_apply(t, p->arena, key, value, true, err, errlen);
}

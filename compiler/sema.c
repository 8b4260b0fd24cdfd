/* sema.c - the checks of a whole program (program.h).
 *
 * sema_program parses the main file and every module it uses (the stdlib
 * folder first, then the using file's folder, then RA_PATH), gathers the
 * items of all files into one namespace, evaluates consts, reads data and
 * train blocks (clauses.c), checks extern declarations, lowers each model
 * once (batch 1) to check it, and checks that each train block's data fits
 * its model.  It reports as many errors as it can in one run.
 * (sema_train_set, `--set key=value`, is in settings.c.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../base/file.h"
#include "clauses.h"

/* ---- module loading ---- */

typedef struct Loaded {
  bool have_id;
  dev_t dev;
  ino_t ino;
  bool loading;          /* on the current chain of `use` */
  int file;
} Loaded;

/* One `use` being followed, linked towards the main file. */
typedef struct UseLink {
  int file;              /* the file being loaded by this use */
  Span use;              /* the use item, in the file that uses it */
  const struct UseLink *up;
} UseLink;

typedef struct Sema {
  Program *p;
  const CompileOptions *opt;
  Loaded *loaded;
  int nloaded, capl;
  PtrVec files;
  int depth;
  bool syntax_errors;    /* a file did not parse cleanly */
} Sema;

static bool file_id(const char *path, dev_t *dev, ino_t *ino) {
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return false;
  *dev = st.st_dev;
  *ino = st.st_ino;
  return true;
}

static Loaded *add_loaded(Sema *s, int file, const char *path) {
  if (s->nloaded == s->capl) {
    int cap = s->capl ? s->capl * 2 : 8;
    Loaded *l = arena_alloc(s->p->arena, sizeof(Loaded) * (size_t)cap);
    if (!l) return NULL;
    if (s->nloaded) memcpy(l, s->loaded, sizeof(Loaded) * (size_t)s->nloaded);
    s->loaded = l;
    s->capl = cap;
  }
  Loaded *l = &s->loaded[s->nloaded++];
  memset(l, 0, sizeof *l);
  l->file = file;
  l->have_id = path && file_id(path, &l->dev, &l->ino);
  return l;
}

static Loaded *find_loaded_file(Sema *s, int file) {
  for (int i = 0; i < s->nloaded; i++)
    if (s->loaded[i].file == file) return &s->loaded[i];
  return NULL;
}

static const char *join_path(Arena *a, const char *dir, const char *rel) {
  if (rel[0] == '/' || !dir || !*dir || strcmp(dir, ".") == 0) return arena_strdup(a, rel);
  size_t n = strlen(dir);
  return arena_printf(a, "%s%s%s", dir, dir[n - 1] == '/' ? "" : "/", rel);
}

static bool ends_with(const char *s, const char *suf) {
  size_t n = strlen(s), m = strlen(suf);
  return n >= m && strcmp(s + n - m, suf) == 0;
}

/* Reads a whole file into the source set; the file index or -1. */
static int read_source(Sema *s, const char *path, Span use) {
  Program *p = s->p;
  char why[256], *buf;
  size_t got;
  if (file_read_all(&p->arena->alloc, path, (uint64_t)1 << 30, &buf, &got, why, sizeof why) != 0) {
    diag_error(p->diags, use, "cannot read module %s: %s", path, why);
    return -1;
  }
  int idx = src_add(p->src, path, buf, got);
  ra_free_mem(&p->arena->alloc, buf, got + 1);
  if (idx < 0) diag_error(p->diags, use, "cannot read module %s: out of memory", path);
  return idx;
}

static void load_file(Sema *s, int file, const UseLink *chain);

/* Follows one `use` item of file `from`. */
static void follow_use(Sema *s, int from, const AstItem *it, const UseLink *chain) {
  Program *p = s->p;
  if (!it->path || !*it->path) {
    diag_error(p->diags, it->path_span.line ? it->path_span : it->span,
               "use needs a module name, as in use \"std/encoder\"");
    return;
  }
  const char *rel = ends_with(it->path, ".ra") ? it->path
                                                : arena_printf(p->arena, "%s.ra", it->path);
  if (!rel) return;
  /* the places to look, in order */
  const char *tried[64];
  int ntried = 0;
  if (s->opt && s->opt->stdlib_dir && *s->opt->stdlib_dir)
    tried[ntried++] = join_path(p->arena, s->opt->stdlib_dir, rel);
  const char *dir = p->src->files[from].dir;
  tried[ntried++] = join_path(p->arena, dir && *dir ? dir : ".", rel);
  if (s->opt && s->opt->ra_path) {
    const char *q = s->opt->ra_path;
    while (*q && ntried < 64) {
      const char *colon = strchr(q, ':');
      size_t n = colon ? (size_t)(colon - q) : strlen(q);
      if (n > 0) {
        const char *d = arena_strndup(p->arena, q, n);
        if (d) tried[ntried++] = join_path(p->arena, d, rel);
      }
      q += n;
      if (*q == ':') q++;
    }
  }
  if (rel[0] == '/') ntried = 1, tried[0] = rel;
  const char *found = NULL;
  dev_t dev = 0;
  ino_t ino = 0;
  for (int i = 0; i < ntried && !found; i++)
    if (tried[i] && file_id(tried[i], &dev, &ino)) found = tried[i];
  Span at = it->path_span.line ? it->path_span : it->span;
  if (!found) {
    Diag *d = diag_error(p->diags, at, "cannot find module \"%s\"", it->path);
    for (int i = 0; i < ntried; i++)
      if (tried[i]) diag_note(p->diags, d, SPAN_NONE, "looked for %s", tried[i]);
    return;
  }
  for (int i = 0; i < s->nloaded; i++) {
    Loaded *l = &s->loaded[i];
    if (!l->have_id || l->dev != dev || l->ino != ino) continue;
    if (!l->loading) return; /* already loaded: once is enough */
    /* a cycle: from file l->file down the chain back to here */
    const char *path = p->src->files[l->file].path;
    const char *text = arena_strdup(p->arena, path);
    const UseLink *links[64];
    int n = 0;
    for (const UseLink *u = chain; u && n < 64; u = u->up) {
      if (u->file == l->file) break;
      links[n++] = u;
    }
    for (int k = n - 1; k >= 0; k--)
      if (text) text = arena_printf(p->arena, "%s -> %s", text, p->src->files[links[k]->file].path);
    text = text ? arena_printf(p->arena, "%s -> %s", text, path) : NULL;
    Diag *d = diag_error(p->diags, at, "use cycle: %s", text ? text : path);
    for (int k = n - 1; k >= 0; k--)
      diag_note(p->diags, d, links[k]->use, "%s is used here",
                p->src->files[links[k]->file].path);
    return;
  }
  if (s->depth >= 64) {
    diag_error(p->diags, at, "modules are nested more than 64 deep");
    return;
  }
  int idx = read_source(s, found, at);
  if (idx < 0) return;
  UseLink link = {idx, at, chain};
  s->depth++;
  load_file(s, idx, &link);
  s->depth--;
}

static void load_file(Sema *s, int file, const UseLink *chain) {
  Program *p = s->p;
  Loaded *l = add_loaded(s, file, p->src->files[file].path);
  if (!l) return;
  int li = (int)(l - s->loaded);
  int before = p->diags->nerrors;
  AstFile *f = ra_parse(p->arena, p->src, file, p->diags);
  if (p->diags->nerrors > before) s->syntax_errors = true;
  if (!f) return;
  ptrvec_push(p->arena, &s->files, f);
  s->loaded[li].loading = true;
  for (int i = 0; i < f->nitems; i++)
    if (f->items[i] && f->items[i]->kind == IT_USE) follow_use(s, file, f->items[i], chain);
  l = find_loaded_file(s, file);
  if (l) l->loading = false;
}

/* ---- the namespace ---- */

static const char *kind_name(ItemKind k) {
  switch (k) {
  case IT_CONST: return "a const";
  case IT_DATA: return "a data set";
  case IT_BLOCK: return "a block";
  case IT_MODEL: return "a model";
  case IT_EXTERN: return "an extern function";
  default: return "an item";
  }
}

static bool named_item(const AstItem *it) {
  return it && it->name && (it->kind == IT_CONST || it->kind == IT_DATA || it->kind == IT_BLOCK ||
                            it->kind == IT_MODEL || it->kind == IT_EXTERN);
}

/* The first item of that name, any kind. */
static const AstItem *find_item(const Program *p, const char *name) {
  for (int f = 0; f < p->nfiles; f++)
    for (int i = 0; i < p->files[f]->nitems; i++) {
      const AstItem *it = p->files[f]->items[i];
      if (named_item(it) && strcmp(it->name, name) == 0) return it;
    }
  return NULL;
}

static void check_duplicates(Program *p) {
  for (int f = 0; f < p->nfiles; f++)
    for (int i = 0; i < p->files[f]->nitems; i++) {
      const AstItem *it = p->files[f]->items[i];
      if (!named_item(it)) continue;
      const AstItem *first = find_item(p, it->name);
      if (first == it) continue;
      Diag *d;
      if (first->kind == it->kind)
        d = diag_error(p->diags, it->name_span, "'%s' is already defined", it->name);
      else
        d = diag_error(p->diags, it->name_span, "'%s' is already defined as %s", it->name,
                       kind_name(first->kind));
      diag_note(p->diags, d, first->name_span, "'%s' was first defined here", it->name);
    }
}

/* Names of items of one kind, for "did you mean". */
static int names_of(const Program *p, ItemKind k, const char **out, int max) {
  int n = 0;
  for (int f = 0; f < p->nfiles; f++)
    for (int i = 0; i < p->files[f]->nitems && n < max; i++) {
      const AstItem *it = p->files[f]->items[i];
      if (named_item(it) && it->kind == k) out[n++] = it->name;
    }
  return n;
}

/* ---- externs (language.md §9) ---- */

static bool type_is(const AstType *t, TypeBase b, bool array) {
  if (!t || t->base != b) return false;
  if (array) return t->has_dims && t->ndims == 0;
  return !t->has_dims && t->ndims == 0;
}

/* 1 scalar form, 2 array form, 0 neither. */
static int extern_form(const AstItem *it) {
  if (it->nparams == 1 && type_is(it->params[0].type, TY_F32, false) &&
      type_is(it->ret, TY_F32, false))
    return 1;
  if (it->nparams == 2 && type_is(it->params[0].type, TY_F32, true) &&
      type_is(it->params[1].type, TY_INT, false) && !it->ret)
    return 2;
  return 0;
}

static void check_externs(Program *p, const char *const *dirs) {
  int n = 0;
  for (int f = 0; f < p->nfiles; f++)
    for (int i = 0; i < p->files[f]->nitems; i++)
      if (p->files[f]->items[i] && p->files[f]->items[i]->kind == IT_EXTERN) n++;
  if (!n) return;
  p->externs = arena_alloc(p->arena, sizeof(ExternDecl) * (size_t)n);
  if (!p->externs) return;
  for (int f = 0; f < p->nfiles; f++)
    for (int i = 0; i < p->files[f]->nitems; i++) {
      const AstItem *it = p->files[f]->items[i];
      if (!it || it->kind != IT_EXTERN) continue;
      int form = extern_form(it);
      if (!form) {
        Diag *d = diag_error(p->diags, it->name_span,
                             "extern '%s' has an unsupported signature", it->name);
        diag_note(p->diags, d, it->span,
                  "an extern is either scalar, (x: f32) -> f32, or array, (x: f32[], n: int) "
                  "with no return type");
      }
      ExternDecl *e = &p->externs[p->nexterns++];
      e->name = it->name;
      e->span = it->name_span;
      e->lib = it->from_host ? NULL : it->path;
      e->lib_span = it->path_span;
      e->grad = it->grad;
      e->grad_span = it->grad_span;
      e->array_form = form == 2;
      e->spec_dir = dirs[f];
      if (!it->from_host && (!it->path || !*it->path))
        diag_error(p->diags, it->path_span.line ? it->path_span : it->span,
                   "extern '%s' needs a library path (from \"lib.so\") or 'from host'", it->name);
    }
  /* grad names another extern of the same form */
  for (int i = 0; i < p->nexterns; i++) {
    ExternDecl *e = &p->externs[i];
    if (!e->grad) continue;
    if (strcmp(e->grad, e->name) == 0) {
      diag_error(p->diags, e->grad_span, "the grad of '%s' must be another extern function",
                 e->name);
      continue;
    }
    const AstItem *g = find_item(p, e->grad);
    if (!g || g->kind != IT_EXTERN) {
      const char *cands[256];
      int nc = names_of(p, IT_EXTERN, cands, 256);
      const char *s = diag_suggest(e->grad, cands, nc);
      Diag *d;
      if (g)
        d = diag_error(p->diags, e->grad_span, "grad '%s' is %s, not an extern function",
                       e->grad, kind_name(g->kind));
      else if (s)
        d = diag_error(p->diags, e->grad_span, "unknown extern function '%s'; did you mean '%s'?",
                       e->grad, s);
      else
        d = diag_error(p->diags, e->grad_span,
                       "unknown extern function '%s' (declare it with extern fn)", e->grad);
      if (g) diag_note(p->diags, d, g->name_span, "'%s' is defined here", e->grad);
      continue;
    }
    int fg = extern_form(g);
    int fe = 0;
    const AstItem *self = find_item(p, e->name);
    if (self && self->kind == IT_EXTERN) fe = extern_form(self);
    if (fg && fe && fg != fe) {
      Diag *d = diag_error(p->diags, e->grad_span,
                           "grad '%s' must have the same form as '%s' (%s)", e->grad, e->name,
                           fe == 1 ? "scalar" : "array");
      diag_note(p->diags, d, g->name_span, "'%s' is declared in the %s form here", e->grad,
                fg == 1 ? "scalar" : "array");
    }
  }
}

/* ---- train blocks against models and data ---- */

/* "int[48]", "f32[4, 8]", "class(8)", "class(128)[48]". */
static const char *type_text(Arena *a, const IrType *t, int64_t classes) {
  char buf[160];
  size_t n = 0;
  if (classes > 0)
    n += (size_t)snprintf(buf, sizeof buf, "class(%lld)", (long long)classes);
  else
    n += (size_t)snprintf(buf, sizeof buf, "%s", t->dtype == IR_I32 ? "int" : "f32");
  int r0 = t->batched ? 1 : 0;
  if (t->rank > r0) {
    n += (size_t)snprintf(buf + n, sizeof buf - n, "[");
    for (int i = r0; i < t->rank && n < sizeof buf - 24; i++)
      n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%lld", i > r0 ? ", " : "",
                            (long long)t->dim[i]);
    snprintf(buf + n, sizeof buf - n, "]");
  }
  const char *r = arena_strdup(a, buf);
  return r ? r : "?";
}

static bool same_shape(const IrType *a, const IrType *b) {
  int ra = a->batched ? 1 : 0, rb = b->batched ? 1 : 0;
  if (a->rank - ra != b->rank - rb) return false;
  for (int i = 0; i < a->rank - ra; i++)
    if (a->dim[ra + i] != b->dim[rb + i]) return false;
  return true;
}

/* What a data set feeds: inputs in order and at most one target.  A table's
 * features and labels take their element type from what they feed
 * (docs/data.md): numbers or integer ids for an int input, numbers for an
 * f32 target, class labels for a class target. */
typedef struct Feed {
  IrType in[8];
  Span in_span[8];
  int field[8];        /* the table field of each input, or -1 */
  int nin;
  bool has_target;
  bool target_label;   /* a class label (rank 0) */
  IrType target;
  Span target_span;
  int target_field;    /* the table field of the target, or -1 */
} Feed;

static void data_feed(const DataDecl *d, Feed *fd) {
  memset(fd, 0, sizeof *fd);
  fd->target_field = -1;
  for (int i = 0; i < 8; i++) fd->field[i] = -1;
  IrType seq;
  memset(&seq, 0, sizeof seq);
  seq.dtype = IR_I32;
  seq.rank = 1;
  switch (d->loader) {
  case LOADER_TSV:
  case LOADER_CSV:
    for (int i = 0; i < d->nfields; i++) {
      const DataField *f = &d->fields[i];
      if (f->role == FIELD_LABEL) {
        fd->has_target = true;
        fd->target_label = !f->range;
        fd->target = f->shape;
        fd->target_span = f->span;
        fd->target_field = i;
      } else if (fd->nin < 8) {
        fd->in_span[fd->nin] = f->span;
        fd->field[fd->nin] = f->role == FIELD_FEATURES ? i : -1;
        fd->in[fd->nin++] = f->shape;
      }
    }
    break;
  case LOADER_TEXT:
    seq.dim[0] = d->window;
    fd->in[0] = seq;
    fd->in_span[0] = d->span;
    fd->nin = 1;
    fd->has_target = true;
    fd->target = seq;
    fd->target_span = d->span;
    break;
  case LOADER_NPY: /* typed by check_npy_binding */
    break;
  case LOADER_SYNTHETIC:
    seq.dim[0] = d->length;
    fd->in[0] = seq;
    fd->in_span[0] = d->span;
    fd->nin = 1;
    fd->has_target = true;
    fd->target_span = d->span;
    if (d->task == SYN_RECALL) {
      fd->target_label = true;
      memset(&fd->target, 0, sizeof fd->target);
      fd->target.dtype = IR_I32;
    } else {
      fd->target = seq;
    }
    break;
  }
}

static int64_t type_numel(const IrType *t) {
  int64_t n = 1;
  for (int i = t->batched ? 1 : 0; i < t->rank; i++) n *= t->dim[i];
  return n;
}

/* Gives a table field the element type of what it feeds: dt, and for a
 * label the target's shape.  A field a second train block reads as another
 * type is an error at that block. */
static bool type_field(Program *p, const TrainDecl *t, const DataDecl *d, int fi, IrDtype dt,
                       const IrType *shape) {
  DataField *f = &p->data[d - p->data].fields[fi];
  if (f->typed && f->shape.dtype != dt) {
    Diag *g = diag_error(p->diags, t->data_span,
                         "data '%s' is read as %s here but as %s by another train block",
                         d->name, dt == IR_I32 ? "integers" : "numbers",
                         f->shape.dtype == IR_I32 ? "integers" : "numbers");
    diag_note(p->diags, g, f->span, "the field is here");
    return false;
  }
  f->typed = true;
  f->shape.dtype = dt;
  if (shape) {
    f->shape = *shape;
    f->shape.batched = 0;
    if (shape->batched) {
      f->shape.rank = (uint8_t)(shape->rank - 1);
      for (int i = 0; i < f->shape.rank; i++) f->shape.dim[i] = shape->dim[i + 1];
    }
    f->shape.dtype = dt;
  }
  return true;
}

/* npy arrays take the types of what they feed: their shapes are checked
 * against them when the files are read (docs/data.md). */
static void check_npy_binding(Program *p, const TrainDecl *t, const Model *m,
                              const DataDecl *d) {
  int nin = 0, label = -1;
  for (int i = 0; i < d->nfields; i++) {
    if (d->fields[i].role == FIELD_LABEL) label = i;
    else nin++;
  }
  if (m->ninputs != nin) {
    Diag *g = diag_error(p->diags, t->data_span,
                         "data '%s' gives %d input%s but model '%s' takes %d", d->name, nin,
                         nin == 1 ? "" : "s", m->name, m->ninputs);
    diag_note(p->diags, g, m->span, "model '%s' is here", m->name);
    if (m->ninputs > nin)
      diag_note(p->diags, g, d->span, "each further input is a clause input npy(\"x2.npy\")");
    return;
  }
  /* the arrays feed the inputs in order */
  for (int i = 0, k = 0; i < d->nfields; i++)
    if (d->fields[i].role != FIELD_LABEL) {
      type_field(p, t, d, i, m->inputs[k].type.dtype, &m->inputs[k].type);
      k++;
    }
  bool has = label >= 0;
  if (m->ntargets != (has ? 1 : 0)) {
    Diag *g = has ? diag_error(p->diags, t->data_span,
                               "data '%s' gives a target but model '%s' declares none", d->name,
                               m->name)
                  : diag_error(p->diags, t->data_span,
                               "data '%s' gives no target for target '%s' (add a 'label "
                               "npy(\"y.npy\")' clause)", d->name, m->targets[0].name);
    diag_note(p->diags, g, has ? m->span : m->targets[0].span, "%s is here",
              has ? "the model" : "the target");
    return;
  }
  if (has) type_field(p, t, d, label, m->targets[0].type.dtype, &m->targets[0].type);
}

static void check_binding(Program *p, const TrainDecl *t, const Model *m, const DataDecl *d) {
  if (d->loader == LOADER_NPY) {
    check_npy_binding(p, t, m, d);
    return;
  }
  Feed fd;
  data_feed(d, &fd);
  Arena *a = p->arena;
  bool table = d->loader == LOADER_TSV || d->loader == LOADER_CSV;
  if (fd.nin != m->ninputs) {
    Diag *g = diag_error(p->diags, t->data_span,
                         "data '%s' gives %d input%s but model '%s' takes %d", d->name, fd.nin,
                         fd.nin == 1 ? "" : "s", m->name, m->ninputs);
    for (int i = 0; i < m->ninputs; i++)
      diag_note(p->diags, g, m->inputs[i].span, "input '%s' : %s", m->inputs[i].name,
                type_text(a, &m->inputs[i].type, 0));
    if (m->ninputs == 0) diag_note(p->diags, g, m->span, "model '%s' is here", m->name);
  } else {
    for (int i = 0; i < fd.nin; i++) {
      const ModelVar *v = &m->inputs[i];
      /* features read numbers for an f32 input, integer ids for an int one */
      bool either = fd.field[i] >= 0 && (v->type.dtype == IR_F32 || v->type.dtype == IR_I32);
      if (either) fd.in[i].dtype = v->type.dtype;
      if (v->type.dtype == fd.in[i].dtype && same_shape(&v->type, &fd.in[i])) {
        if (either) type_field(p, t, d, fd.field[i], v->type.dtype, NULL);
        continue;
      }
      Diag *g = diag_error(p->diags, t->data_span, "data '%s' gives %s for input '%s' : %s",
                           d->name, type_text(a, &fd.in[i], 0), v->name,
                           type_text(a, &v->type, v->classes));
      diag_note(p->diags, g, v->span, "'%s' is declared here", v->name);
      if (table) diag_note(p->diags, g, fd.in_span[i], "the field that feeds it is here");
    }
  }
  int ntgt = fd.has_target ? 1 : 0;
  if (m->ntargets > ntgt) {
    const ModelVar *v = &m->targets[ntgt];
    Diag *g;
    if (ntgt == 0)
      g = diag_error(p->diags, t->data_span, "data '%s' gives no target for target '%s'%s",
                     d->name, v->name,
                     table ? " (add a 'label column N' field)" : "");
    else
      g = diag_error(p->diags, t->data_span, "data '%s' gives one target but model '%s' has %d",
                     d->name, m->name, m->ntargets);
    diag_note(p->diags, g, v->span, "'%s' is declared here", v->name);
    return;
  }
  if (m->ntargets < ntgt) {
    Diag *g = diag_error(p->diags, t->data_span,
                         "data '%s' gives a target but model '%s' declares none", d->name,
                         m->name);
    diag_note(p->diags, g, m->span, "add a line such as 'target label : class(K)' to '%s'",
              m->name);
    return;
  }
  if (!ntgt) return;
  const ModelVar *v = &m->targets[0];
  int r = v->type.rank - (v->type.batched ? 1 : 0);
  const char *got;
  bool ok;
  const char *hint = NULL;
  if (fd.target_field >= 0) {
    /* a table's label: class labels for class(K), numbers for f32 */
    const DataField *f = &d->fields[fd.target_field];
    int64_t cols = f->range ? type_numel(&f->shape) : 1;
    got = f->range ? arena_printf(a, "%lld %s%s", (long long)cols,
                                  v->type.dtype == IR_F32 ? "number" : "class label",
                                  cols == 1 ? "" : "s")
                   : v->type.dtype == IR_F32 ? "one number" : "class labels";
    if (v->type.dtype == IR_F32) {
      ok = type_numel(&v->type) == cols;
      if (ok) ok = type_field(p, t, d, fd.target_field, IR_F32, &v->type);
      else if (!f->range)
        hint = "one 'label column' gives one number; use 'labels columns A..B shape [..]'";
    } else if (f->range && v->type.dtype == IR_I32) {
      /* one class label per column, for a class(K)[..] target */
      ok = r >= 1 && type_numel(&v->type) == cols;
      if (ok) ok = type_field(p, t, d, fd.target_field, IR_I32, &v->type);
      else
        hint = r == 0 ? "'labels columns A..B' give one class label per column, for a target "
                        "class(K)[N] with N = B - A + 1; one class takes 'label column C'"
                      : "'labels columns A..B' give one class label per column: the target's "
                        "positions must be B - A + 1";
    } else {
      ok = !f->range && v->type.dtype == IR_I32 && r == 0;
    }
  } else {
    got = fd.target_label ? "class labels" : type_text(a, &fd.target, 0);
    if (fd.target_label) ok = v->type.dtype == IR_I32 && r == 0;
    else ok = v->type.dtype == fd.target.dtype && same_shape(&v->type, &fd.target);
  }
  if (!ok) {
    Diag *g = diag_error(p->diags, t->data_span, "data '%s' gives %s for target '%s' : %s",
                         d->name, got ? got : "?", v->name, type_text(a, &v->type, v->classes));
    diag_note(p->diags, g, v->span, "'%s' is declared here", v->name);
    if (fd.target_field >= 0)
      diag_note(p->diags, g, fd.target_span, "%s", hint ? hint : "the field that feeds it is here");
  }
}

static const DataDecl *find_data(const Program *p, const char *name) {
  for (int i = 0; i < p->ndata; i++)
    if (strcmp(p->data[i].name, name) == 0) return &p->data[i];
  return NULL;
}

/* Resolves one side of `train m on d`; NULL (diagnosed) when it is not
 * an item of the wanted kind. */
static const AstItem *train_ref(Program *p, const char *name, Span at, ItemKind want,
                                const char *what) {
  if (!name) return NULL;
  const AstItem *it = find_item(p, name);
  if (it && it->kind == want) return it;
  if (it) {
    Diag *d = diag_error(p->diags, at, "'%s' is %s, not %s", name, kind_name(it->kind), what);
    diag_note(p->diags, d, it->name_span, "'%s' is defined here", name);
    return NULL;
  }
  const char *cands[256];
  int n = names_of(p, want, cands, 256);
  const char *s = diag_suggest(name, cands, n);
  const char *word = want == IT_MODEL ? "model" : "data set";
  if (s)
    diag_error(p->diags, at, "unknown %s '%s'; did you mean '%s'?", word, name, s);
  else
    diag_error(p->diags, at, "unknown %s '%s'", word, name);
  return NULL;
}

/* ---- the program ---- */

static int count_kind(const Program *p, ItemKind k) {
  int n = 0;
  for (int f = 0; f < p->nfiles; f++)
    for (int i = 0; i < p->files[f]->nitems; i++)
      if (p->files[f]->items[i] && p->files[f]->items[i]->kind == k) n++;
  return n;
}

Program *sema_program(Arena *arena, SrcSet *src, DiagList *diags, int file,
                      const CompileOptions *opt) {
  Program *p = arena_alloc(arena, sizeof *p);
  if (!p) return NULL;
  p->arena = arena;
  p->src = src;
  p->diags = diags;
  p->overrides = opt ? opt->overrides : NULL;
  p->noverrides = opt ? opt->noverrides : 0;
  Sema s;
  memset(&s, 0, sizeof s);
  s.p = p;
  s.opt = opt;
  if (file < 0 || file >= src->n) return p;
  load_file(&s, file, NULL);
  p->files = (AstFile **)s.files.v;
  p->nfiles = s.files.n;
  if (arena->failed) {
    diag_error(diags, SPAN_NONE, "out of memory");
    return p;
  }
  /* a partial tree would only give follow-on errors: fix the syntax first */
  if (s.syntax_errors) return p;

  /* the folder of each file, for relative paths in data and extern */
  const char **dirs = arena_alloc(arena, sizeof(char *) * (size_t)(p->nfiles + 1));
  if (!dirs) return p;
  for (int f = 0; f < p->nfiles; f++) {
    const char *d = src->files[p->files[f]->file].dir;
    dirs[f] = d && *d ? d : ".";
  }

  check_duplicates(p);
  /* models built from a broken const would only repeat its error */
  bool consts_ok = sema_eval_consts(p) == 0;

  /* models and blocks */
  int nm = count_kind(p, IT_MODEL), nb = count_kind(p, IT_BLOCK);
  p->models = arena_alloc(arena, sizeof(AstItem *) * (size_t)(nm + 1));
  p->blocks = arena_alloc(arena, sizeof(AstItem *) * (size_t)(nb + 1));
  int nd = count_kind(p, IT_DATA), nt = count_kind(p, IT_TRAIN);
  p->data = arena_alloc(arena, sizeof(DataDecl) * (size_t)(nd + 1));
  p->trains = arena_alloc(arena, sizeof(TrainDecl) * (size_t)(nt + 1));
  bool *data_ok = arena_alloc(arena, sizeof(bool) * (size_t)(nd + 1));
  if (!p->models || !p->blocks || !p->data || !p->trains || !data_ok) return p;
  for (int f = 0; f < p->nfiles; f++)
    for (int i = 0; i < p->files[f]->nitems; i++) {
      const AstItem *it = p->files[f]->items[i];
      if (!it) continue;
      if (it->kind == IT_MODEL) p->models[p->nmodels++] = it;
      if (it->kind == IT_BLOCK) p->blocks[p->nblocks++] = it;
    }

  /* data sets */
  for (int f = 0; f < p->nfiles; f++)
    for (int i = 0; i < p->files[f]->nitems; i++) {
      const AstItem *it = p->files[f]->items[i];
      if (!it || it->kind != IT_DATA) continue;
      DataDecl *d = &p->data[p->ndata];
      data_ok[p->ndata] = clauses_data(p, it, dirs[f], d) == 0;
      p->ndata++;
    }

  check_externs(p, dirs);

  /* each model once, for its errors and its inputs */
  Model **lowered = arena_alloc(arena, sizeof(Model *) * (size_t)(p->nmodels + 1));
  if (!lowered) return p;
  for (int i = 0; i < p->nmodels && consts_ok; i++) lowered[i] = lower_model(p, p->models[i], 1);

  /* train blocks */
  for (int f = 0; f < p->nfiles; f++)
    for (int i = 0; i < p->files[f]->nitems; i++) {
      const AstItem *it = p->files[f]->items[i];
      if (!it || it->kind != IT_TRAIN) continue;
      TrainDecl *t = &p->trains[p->ntrains++];
      int rc = clauses_train(p, it, t);
      const AstItem *mi = train_ref(p, t->model, t->model_span, IT_MODEL, "a model");
      const AstItem *di = train_ref(p, t->data, t->data_span, IT_DATA, "a data set");
      if (rc || !mi || !di) continue;
      const Model *m = NULL;
      for (int k = 0; k < p->nmodels; k++)
        if (p->models[k] == mi) m = lowered[k];
      if (m && m->fwd && !ir_find_output(m->fwd, OUT_LOSS, -1)) {
        Diag *g = diag_error(p->diags, t->model_span,
                             "model '%s' has no loss, so it cannot be trained", m->name);
        diag_note(p->diags, g, mi->name_span,
                  "add a line such as 'loss cross_entropy(logits, label)' to '%s'", m->name);
      }
      const DataDecl *d = find_data(p, t->data);
      if (m && d && data_ok[d - p->data]) check_binding(p, t, m, d);
    }
  if (arena->failed) diag_error(diags, SPAN_NONE, "out of memory");
  return p;
}

const AstItem *sema_find_model(const Program *p, const char *name) {
  if (!p || !name) return NULL;
  for (int i = 0; i < p->nmodels; i++)
    if (p->models[i]->name && strcmp(p->models[i]->name, name) == 0) return p->models[i];
  return NULL;
}

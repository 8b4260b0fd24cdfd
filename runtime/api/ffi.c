/* ffi.c - native functions (language.md §9): `extern fn ... from "lib.so"`
 * resolved with dlopen/dlsym, `extern fn ... from host` resolved among the
 * functions the application registered with ra_register_fn, and both called
 * through libffi.
 *
 * Design.  The kernels (kernels_ew.c) call plain C function pointers from an
 * ExternFn: float fn(float) in the scalar form, void afn(float *, int32_t) in
 * the array form.  For every extern, ffi_prepare builds a libffi call
 * interface (ffi_cif) from the signature the spec declares, and a libffi
 * closure with that same interface; the closure's entry point is what goes
 * into ExternFn.fn (or .afn), and its handler forwards the arguments to the
 * resolved symbol with ffi_call(cif, symbol).  So the one place native code
 * is entered is ffi_call with an interface built at run time from the
 * declaration; nothing casts a dlsym'd pointer to a guessed C type.  The
 * derivative of extern f is the closure of the extern its `grad` names.
 *
 * Lifetime: the state (closures, library handles, ExternFn tables) belongs to
 * the loaded program: ffi_prepare builds it once per load (cheap afterwards),
 * ffi_unload frees it (a new load, ra_free, or a registration that changes
 * what a name resolves to).  Host registrations live until ra_free.
 * Memory: our tables come from the context's allocator; libffi's closures
 * and the dynamic loader allocate with their own (malloc) allocator.
 *
 * Permission: loading a library needs allow_extern; host functions do not,
 * since the application registered them itself. */
#include <dlfcn.h>
#include <ffi.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api_int.h"
#include "../exec/externfn.h"

/* One resolved extern: the symbol, its call interface and its closure. */
typedef struct FfiTarget {
  ffi_cif cif;
  ffi_type *args[2];
  void (*sym)(void);     /* the native function (dlsym or host) */
  ffi_closure *closure;  /* libffi closure forwarding to sym */
  void *code;            /* the closure's entry point */
} FfiTarget;

typedef struct FfiState {
  const Program *prog;   /* the program this state was built for */
  int n;
  FfiTarget *t;          /* [n] */
  ExternFn *fns;         /* [n] */
  ExternFn **ptrs;       /* [n], what the kernels index */
  void **libs;           /* [n] dlopen handles (NULL for host externs) */
} FfiState;

/* ---- closure handlers: forward to the symbol through ffi_call ---- */

static void call_scalar(ffi_cif *cif, void *ret, void **args, void *ud) {
  FfiTarget *t = ud;
  union { ffi_arg a; float f; double d; } r;
  memset(&r, 0, sizeof r);
  ffi_call(&t->cif, t->sym, &r, args);
  *(float *)ret = r.f;
  (void)cif;
}

static void call_array(ffi_cif *cif, void *ret, void **args, void *ud) {
  FfiTarget *t = ud;
  ffi_call(&t->cif, t->sym, NULL, args);
  (void)cif;
  (void)ret;
}

/* ---- messages ---- */

static const char *span_file(ra_ctx *ctx, Span s) {
  if (s.file < 0 || s.file >= ctx->src.n) return "<spec>";
  return ctx->src.files[s.file].path;
}

#define LOC_FMT "%s:%d:%d: error: "
#define LOC_ARGS(ctx, s) span_file(ctx, s), (int)(s).line, (int)(s).col

static Span lib_span(const ExternDecl *e) { return e->lib_span.line ? e->lib_span : e->span; }

/* ---- host registrations ---- */

static const HostFn *host_find(ra_ctx *ctx, const char *name) {
  for (int i = 0; i < ctx->nhost; i++)
    if (!strcmp(ctx->host[i].name, name)) return &ctx->host[i];
  return NULL;
}

/* The canonical form of a signature ("f32(f32)" or "void(f32[],i32)") with
 * the spaces taken out, or NULL if it is neither. */
static const char *sig_canon(const char *sig) {
  char buf[64];
  size_t k = 0;
  for (const char *s = sig; *s; s++) {
    if (*s == ' ' || *s == '\t') continue;
    if (k + 1 >= sizeof buf) return NULL;
    buf[k++] = *s;
  }
  buf[k] = 0;
  if (!strcmp(buf, "f32(f32)")) return "f32(f32)";
  if (!strcmp(buf, "void(f32[],i32)")) return "void(f32[],i32)";
  return NULL;
}

static bool is_ident(const char *s) {
  if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_')) return false;
  for (s++; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_'))
      return false;
  return true;
}

int ra_register_fn(ra_ctx *ctx, const char *name, const char *signature, void (*fn)(void)) {
  if (!ctx) return RA_EUSAGE;
  if (!name || !signature || !fn)
    return api_fail(ctx, RA_EUSAGE, "ra_register_fn: %s is NULL",
                    !name ? "name" : !signature ? "signature" : "fn");
  if (!is_ident(name))
    return api_fail(ctx, RA_EUSAGE, "ra_register_fn: '%s' is not a valid function name", name);
  const char *sig = sig_canon(signature);
  if (!sig)
    return api_fail(ctx, RA_EUSAGE,
                    "ra_register_fn: '%s': unsupported signature '%s' (use \"f32(f32)\" for "
                    "float f(float), or \"void(f32[],i32)\" for void f(float *, int32_t))",
                    name, signature);
  if (host_find(ctx, name))
    return api_fail(ctx, RA_EUSAGE, "ra_register_fn: a function named '%s' is already registered",
                    name);
  if (ctx->nhost == ctx->hostcap) {
    int cap = ctx->hostcap ? ctx->hostcap * 2 : 8;
    HostFn *h = ra_realloc(&ctx->alloc, ctx->host, sizeof *h * (size_t)ctx->hostcap,
                           sizeof *h * (size_t)cap);
    if (!h) return api_fail(ctx, RA_ENOMEM, "ra_register_fn: out of memory");
    ctx->host = h;
    ctx->hostcap = cap;
  }
  char *nm = api_strdup(ctx, name), *sg = api_strdup(ctx, sig);
  if (!nm || !sg) {
    if (nm) ra_free_mem(&ctx->alloc, nm, strlen(nm) + 1);
    if (sg) ra_free_mem(&ctx->alloc, sg, strlen(sg) + 1);
    return api_fail(ctx, RA_ENOMEM, "ra_register_fn: out of memory");
  }
  ctx->host[ctx->nhost++] = (HostFn){nm, sg, fn};
  /* what a `from host` name resolves to may have changed: resolve again */
  ffi_unload(ctx);
  return api_ok(ctx);
}

void ffi_host_free(ra_ctx *ctx) {
  for (int i = 0; i < ctx->nhost; i++) {
    ra_free_mem(&ctx->alloc, ctx->host[i].name, strlen(ctx->host[i].name) + 1);
    ra_free_mem(&ctx->alloc, ctx->host[i].signature, strlen(ctx->host[i].signature) + 1);
  }
  ra_free_mem(&ctx->alloc, ctx->host, sizeof *ctx->host * (size_t)ctx->hostcap);
  ctx->host = NULL;
  ctx->nhost = ctx->hostcap = 0;
}

/* ---- libraries ---- */

/* dlopen's the library of e: a relative path is tried in the spec's folder
 * first, then as given (a bare name then also searches the system's library
 * path; a path with a slash is relative to the working directory). */
static int open_lib(ra_ctx *ctx, const ExternDecl *e, void **out) {
  const char *lib = e->lib;
  const char *dir = e->spec_dir && *e->spec_dir ? e->spec_dir : ".";
  char path[4096];
  if (lib[0] != '/') {
    int k = snprintf(path, sizeof path, "%s/%s", dir, lib);
    if (k > 0 && (size_t)k < sizeof path && access(path, F_OK) == 0) {
      dlerror();
      void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
      if (!h) {
        const char *de = dlerror();
        return api_fail(ctx, RA_EEXTERN, LOC_FMT "cannot load '%s' for extern function '%s': %s",
                        LOC_ARGS(ctx, lib_span(e)), path, e->name, de ? de : "unknown error");
      }
      *out = h;
      return 0;
    }
  }
  dlerror();
  void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *de = dlerror();
    bool looked = lib[0] != '/';
    return api_fail(ctx, RA_EEXTERN,
                    LOC_FMT "cannot load library '%s' for extern function '%s': %s%s%s%s",
                    LOC_ARGS(ctx, lib_span(e)), lib, e->name, de ? de : "unknown error",
                    looked ? " (also looked in '" : "", looked ? dir : "", looked ? "')" : "");
  }
  *out = h;
  return 0;
}

/* ---- prepare and unload ---- */

static void state_free(ra_ctx *ctx, FfiState *st) {
  if (!st) return;
  for (int i = 0; i < st->n; i++) {
    if (st->t && st->t[i].closure) ffi_closure_free(st->t[i].closure);
    if (st->libs && st->libs[i]) dlclose(st->libs[i]);
  }
  size_t n = (size_t)st->n;
  ra_free_mem(&ctx->alloc, st->t, sizeof *st->t * n);
  ra_free_mem(&ctx->alloc, st->fns, sizeof *st->fns * n);
  ra_free_mem(&ctx->alloc, st->ptrs, sizeof *st->ptrs * n);
  ra_free_mem(&ctx->alloc, st->libs, sizeof *st->libs * n);
  ra_free_mem(&ctx->alloc, st, sizeof *st);
}

void ffi_unload(ra_ctx *ctx) {
  state_free(ctx, ctx->ffi_state);
  ctx->ffi_state = NULL;
  ctx->externs = NULL;
  ctx->nexterns = 0;
}

static int find_decl(const Program *p, const char *name) {
  for (int i = 0; i < p->nexterns; i++)
    if (p->externs[i].name && !strcmp(p->externs[i].name, name)) return i;
  return -1;
}

/* Resolves extern i's symbol, builds its interface and closure. */
static int resolve_one(ra_ctx *ctx, FfiState *st, int i) {
  const ExternDecl *e = &ctx->prog->externs[i];
  FfiTarget *t = &st->t[i];
  if (!e->lib) {
    const HostFn *h = host_find(ctx, e->name);
    if (!h)
      return api_fail(ctx, RA_EEXTERN,
                      LOC_FMT "extern function '%s' is declared 'from host', but the application "
                      "registered no function '%s' (ra_register_fn)",
                      LOC_ARGS(ctx, e->span), e->name, e->name);
    bool h_array = !strcmp(h->signature, "void(f32[],i32)");
    if (h_array != e->array_form)
      return api_fail(ctx, RA_EEXTERN,
                      LOC_FMT "extern function '%s' is declared in the %s form, %s, but the host "
                      "registered it as \"%s\"",
                      LOC_ARGS(ctx, e->span), e->name, e->array_form ? "array" : "scalar",
                      e->array_form ? "(x: f32[], n: int)" : "(x: f32) -> f32", h->signature);
    t->sym = h->fn;
  } else {
    if (open_lib(ctx, e, &st->libs[i])) return ctx->code;
    dlerror();
    void *s = dlsym(st->libs[i], e->name);
    const char *de = dlerror();
    if (!s || de)
      return api_fail(ctx, RA_EEXTERN, LOC_FMT "library '%s' has no function '%s'%s%s",
                      LOC_ARGS(ctx, e->span), e->lib, e->name, de ? ": " : "", de ? de : "");
    /* object pointer to function pointer, as POSIX dlsym requires */
    memcpy(&t->sym, &s, sizeof t->sym);
  }
  ffi_status fs;
  if (e->array_form) {
    t->args[0] = &ffi_type_pointer;
    t->args[1] = &ffi_type_sint32;
    fs = ffi_prep_cif(&t->cif, FFI_DEFAULT_ABI, 2, &ffi_type_void, t->args);
  } else {
    t->args[0] = &ffi_type_float;
    fs = ffi_prep_cif(&t->cif, FFI_DEFAULT_ABI, 1, &ffi_type_float, t->args);
  }
  if (fs != FFI_OK)
    return api_fail(ctx, RA_EEXTERN,
                    LOC_FMT "libffi cannot describe extern function '%s' (status %d)",
                    LOC_ARGS(ctx, e->span), e->name, (int)fs);
  t->closure = ffi_closure_alloc(sizeof(ffi_closure), &t->code);
  if (!t->closure)
    return api_fail(ctx, RA_ENOMEM, "out of memory: no libffi closure for extern function '%s'",
                    e->name);
  fs = ffi_prep_closure_loc(t->closure, &t->cif, e->array_form ? call_array : call_scalar, t,
                            t->code);
  if (fs != FFI_OK)
    return api_fail(ctx, RA_EEXTERN,
                    LOC_FMT "libffi cannot make a closure for extern function '%s' (status %d)",
                    LOC_ARGS(ctx, e->span), e->name, (int)fs);
  ExternFn *x = &st->fns[i];
  x->name = e->name;
  x->array_form = e->array_form;
  x->impl = t;
  /* the closure's entry point is a function of the declared type */
  if (e->array_form) memcpy(&x->afn, &t->code, sizeof x->afn);
  else memcpy(&x->fn, &t->code, sizeof x->fn);
  return 0;
}

int ffi_prepare(ra_ctx *ctx) {
  if (!ctx->prog || ctx->prog->nexterns == 0) return 0;
  FfiState *old = ctx->ffi_state;
  if (old && old->prog == ctx->prog) return 0;
  ffi_unload(ctx);
  const Program *p = ctx->prog;
  /* permission first, before anything is opened */
  if (!ctx->allow_extern)
    for (int i = 0; i < p->nexterns; i++) {
      const ExternDecl *e = &p->externs[i];
      if (!e->lib) continue;
      return api_fail(ctx, RA_EEXTERN,
                      LOC_FMT "extern function '%s' would load native code from '%s'; "
                      "allow it with --allow-extern (option allow_extern)",
                      LOC_ARGS(ctx, e->span), e->name, e->lib);
    }
  size_t n = (size_t)p->nexterns;
  FfiState *st = ra_calloc(&ctx->alloc, 1, sizeof *st);
  if (!st) return api_fail(ctx, RA_ENOMEM, "out of memory resolving extern functions");
  st->prog = p;
  st->n = p->nexterns;
  st->t = ra_calloc(&ctx->alloc, n, sizeof *st->t);
  st->fns = ra_calloc(&ctx->alloc, n, sizeof *st->fns);
  st->ptrs = ra_calloc(&ctx->alloc, n, sizeof *st->ptrs);
  st->libs = ra_calloc(&ctx->alloc, n, sizeof *st->libs);
  if (!st->t || !st->fns || !st->ptrs || !st->libs) {
    state_free(ctx, st);
    return api_fail(ctx, RA_ENOMEM, "out of memory resolving extern functions");
  }
  for (int i = 0; i < st->n; i++) {
    if (resolve_one(ctx, st, i)) {
      int code = ctx->code;
      state_free(ctx, st);
      return code;
    }
    st->ptrs[i] = &st->fns[i];
  }
  /* each extern's derivative is the extern its `grad` names */
  for (int i = 0; i < st->n; i++) {
    const ExternDecl *e = &p->externs[i];
    if (!e->grad) continue;
    int g = find_decl(p, e->grad);
    if (g < 0 || p->externs[g].array_form != e->array_form) {
      /* sema reports these; a program that got here has none */
      Span s = e->grad_span.line ? e->grad_span : e->span;
      int code = api_fail(ctx, RA_EEXTERN,
                          LOC_FMT "the grad '%s' of '%s' is not an extern of the same form",
                          LOC_ARGS(ctx, s), e->grad, e->name);
      state_free(ctx, st);
      return code;
    }
    if (e->array_form) st->fns[i].agrad = st->fns[g].afn;
    else st->fns[i].grad = st->fns[g].fn;
  }
  ctx->ffi_state = st;
  ctx->externs = st->ptrs;
  ctx->nexterns = st->n;
  return 0;
}

/* ffi.c - extern functions (language.md §9): host registrations and, when
 * allowed, native libraries resolved with dlopen/dlsym and called through
 * libffi.  (Being built: see docs/embedding.md.) */
#include <string.h>

#include "api_int.h"

int ffi_prepare(ra_ctx *ctx) {
  if (!ctx->prog || ctx->prog->nexterns == 0) return 0;
  const ExternDecl *e = &ctx->prog->externs[0];
  if (!ctx->allow_extern)
    return api_fail(ctx, RA_EEXTERN,
                    "%s:%d:%d: error: extern function '%s' would load native code from '%s'; "
                    "allow it with --allow-extern (option allow_extern)",
                    ctx->src.files[e->span.file].path, e->span.line, e->span.col, e->name,
                    e->lib ? e->lib : "the host application");
  return api_fail(ctx, RA_EEXTERN, "extern functions are not available in this build yet");
}

void ffi_unload(ra_ctx *ctx) { (void)ctx; }
void ffi_host_free(ra_ctx *ctx) { (void)ctx; }

int ra_register_fn(ra_ctx *ctx, const char *name, const char *signature, void (*fn)(void)) {
  if (!ctx) return RA_EUSAGE;
  (void)name; (void)signature; (void)fn;
  return api_fail(ctx, RA_EUSAGE, "ra_register_fn: host functions are not available in this build yet");
}

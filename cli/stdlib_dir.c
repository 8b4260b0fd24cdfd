/* stdlib_dir.c - where rac's commands find the stdlib folder (stdlib_dir.h). */
#include "stdlib_dir.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_find_stdlib(ra_ctx *ctx) {
  if (getenv("RA_STDLIB")) {
    ra_set_option(ctx, "stdlib", getenv("RA_STDLIB"));
    return;
  }
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return;
  exe[n] = 0;
  char *slash = strrchr(exe, '/');
  if (!slash) return;
  *slash = 0;
  const char *cands[] = {"/../stdlib", "/../share/rac/stdlib"};
  for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
    char dir[PATH_MAX + 32], probe[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s%s", exe, cands[i]);
    snprintf(probe, sizeof probe, "%s/std", dir);
    if (access(probe, R_OK) == 0) {
      ra_set_option(ctx, "stdlib", dir);
      return;
    }
  }
}

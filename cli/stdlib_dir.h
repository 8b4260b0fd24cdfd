/* stdlib_dir.h - where rac's commands find the stdlib folder. */
#ifndef RAC_STDLIB_DIR_H
#define RAC_STDLIB_DIR_H

#include "ra.h"

/* Sets ctx's "stdlib" option: $RA_STDLIB, else the folder beside the binary
 * (in-tree: build/../stdlib; installed: bin/../share/rac/stdlib). */
void cli_find_stdlib(ra_ctx *ctx);

#endif

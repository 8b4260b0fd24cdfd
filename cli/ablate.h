/* ablate.h - rac eval --ablate-heads: the table and the plot of
 * ra_ablate_heads. */
#ifndef RAC_ABLATE_H
#define RAC_ABLATE_H

#include "ra.h"

/* Runs the ablation of ckpt, prints its table on stdout and writes its SVG
 * to out (NULL: the checkpoint's path without `.safetensors`, plus
 * `.ablation.svg`).  Returns rac's exit status. */
int cli_ablate(ra_ctx *ctx, const char *train, const char *ckpt, const char *split,
               const char *out);

#endif

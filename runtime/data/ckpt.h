/* ckpt.h - checkpoints as .safetensors: an 8-byte little-endian header
 * length, a JSON header (name -> dtype, shape, data_offsets; "__metadata__"
 * with format, version, spec hash, step, rng state) and the raw data.
 * Written atomically: a temporary beside the target (".NAME.rac-tmp"),
 * fsync, rename; any failure removes the temporary and leaves the target. */
#ifndef RA_CKPT_H
#define RA_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "../../base/arena.h"

typedef struct CkptTensor {
  const char *name;
  int dtype;            /* 0 f32, 1 i32 */
  int ndim;
  int64_t shape[8];
  void *data;           /* write: caller's; read: owned by the Ckpt */
} CkptTensor;

typedef struct CkptMeta {
  const char *key, *value;
} CkptMeta;

typedef struct Ckpt {
  RaAlloc alloc;
  CkptTensor *t;
  int n;
  CkptMeta *meta;
  int nmeta;
  void *blob;           /* read: the data section's bytes */
  size_t blob_len;
} Ckpt;

int ckpt_write(const char *path, const CkptTensor *t, int n, const CkptMeta *meta,
               int nmeta, char *err, size_t errlen);
/* The temporary a save of path writes: ".NAME.rac-tmp" in path's folder.
 * One left by a killed save is removed by the next save of path.  -1 when
 * it does not fit in out. */
int ckpt_temp_name(const char *path, char *out, size_t outlen);
/* Reads and validates (header bounds, offsets, dtypes, sizes); NULL on error
 * with a message naming the file and the problem.  The header is checked
 * before the data is read: c->blob holds the data section only. */
Ckpt *ckpt_read(RaAlloc alloc, const char *path, char *err, size_t errlen);
void ckpt_free(Ckpt *c);
const CkptTensor *ckpt_find(const Ckpt *c, const char *name);
const char *ckpt_meta(const Ckpt *c, const char *key);

#endif

/* file.h - opening and reading files without blocking or surprises.
 *
 * Every file the library reads (specs, modules, data, checkpoints, predict
 * input) is opened here: O_NONBLOCK, so a FIFO or a device given by mistake
 * cannot block in open(); then fstat, and anything but a regular file is
 * refused with what it is ("a directory", "a FIFO", ...). */
#ifndef RA_FILE_H
#define RA_FILE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"

/* The size of a buffer for a message about files: room for two whole paths
 * (a file and the other name it was looked for under, a checkpoint and its
 * temporary file) and the text around them, so no path is cut. */
#ifdef PATH_MAX
#define FILE_MSG_MAX (2 * PATH_MAX + 1024)
#else
#define FILE_MSG_MAX (2 * 4096 + 1024)
#endif

/* A read-only descriptor of a regular file (blocking mode restored), its size
 * in *size; -1 with the reason (without the path) in err.  A missing file's
 * message is strerror's ("No such file or directory"). */
int file_open_regular(const char *path, uint64_t *size, char *err, size_t errlen);

/* Reads a whole regular file of at most max bytes into a NUL-terminated
 * buffer from `a` (of *len + 1 bytes: free with ra_free_mem(a, buf, *len + 1)).
 * 0, or -1 with the reason (without the path) in err. */
int file_read_all(const RaAlloc *a, const char *path, uint64_t max, char **buf, size_t *len,
                  char *err, size_t errlen);

/* Maps a whole regular file read-only (opened as file_open_regular opens
 * it): *base and *len; an empty file gives NULL and 0.  0, or -1 with the
 * reason (without the path) in err ("cannot map the file: ...").  Pages
 * are read on first use, so the file is never copied into memory; a file
 * truncated while mapped raises SIGBUS on the next access to a page past
 * its new end (the kernel's rule for mappings: docs/data.md). */
int file_map(const char *path, const void **base, size_t *len, char *err, size_t errlen);
void file_unmap(const void *base, size_t len);
/* Hints that base[off .. off + n) of a mapping will be read in order, or
 * is done with (its pages leave the process's resident set and are read
 * again from the page cache if used). */
void file_map_sequential(const void *base, size_t len);
void file_map_done(const void *base, size_t len, size_t off, size_t n);
/* The size of the file at path now, or -1 (a file that changed while mapped). */
int64_t file_size_now(const char *path);

/* What a file-system object is, for messages: "a directory", "a FIFO", ... */
const char *file_kind(unsigned mode);

#endif

/* file.c - opening and reading regular files (see file.h). */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

const char *file_kind(unsigned mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "of an unknown kind";
}

int file_open_regular(const char *path, uint64_t *size, char *err, size_t errlen) {
  if (err && errlen) err[0] = 0;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (err && errlen) snprintf(err, errlen, "%s", strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    if (err && errlen) snprintf(err, errlen, "%s", strerror(errno));
    close(fd);
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    if (err && errlen) snprintf(err, errlen, "not a regular file (%s)", file_kind(st.st_mode));
    close(fd);
    return -1;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  if (size) *size = (uint64_t)st.st_size;
  return fd;
}

int file_read_all(const RaAlloc *a, const char *path, uint64_t max, char **buf, size_t *len,
                  char *err, size_t errlen) {
  *buf = NULL;
  *len = 0;
  uint64_t size;
  int fd = file_open_regular(path, &size, err, errlen);
  if (fd < 0) return -1;
  if (size > max) {
    if (err && errlen)
      snprintf(err, errlen, "the file is too large (%llu bytes; at most %llu)",
               (unsigned long long)size, (unsigned long long)max);
    close(fd);
    return -1;
  }
  char *b = ra_malloc(a, (size_t)size + 1);
  if (!b) {
    if (err && errlen)
      snprintf(err, errlen, "out of memory reading the file (%llu bytes)", (unsigned long long)size);
    close(fd);
    return -1;
  }
  size_t got = 0;
  while (got < size) {
    ssize_t r = read(fd, b + got, (size_t)size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      if (err && errlen) snprintf(err, errlen, "read error: %s", strerror(errno));
      break;
    }
    if (r == 0) {
      if (err && errlen)
        snprintf(err, errlen, "the file shrank while being read (%zu of %llu bytes)", got,
                 (unsigned long long)size);
      break;
    }
    got += (size_t)r;
  }
  close(fd);
  if (got != size) {
    ra_free_mem(a, b, (size_t)size + 1);
    return -1;
  }
  b[size] = 0;
  *buf = b;
  *len = (size_t)size;
  return 0;
}

int file_map(const char *path, const void **base, size_t *len, char *err, size_t errlen) {
  *base = NULL;
  *len = 0;
  uint64_t size;
  int fd = file_open_regular(path, &size, err, errlen);
  if (fd < 0) return -1;
  if (size == 0) {
    close(fd);
    return 0;
  }
  if (size > (uint64_t)SIZE_MAX) {
    if (err && errlen) snprintf(err, errlen, "the file is too large to map (%llu bytes)", (unsigned long long)size);
    close(fd);
    return -1;
  }
  void *p = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
  int e = errno;
  close(fd);
  if (p == MAP_FAILED) {
    if (err && errlen) snprintf(err, errlen, "cannot map the file: %s", strerror(e));
    return -1;
  }
  *base = p;
  *len = (size_t)size;
  return 0;
}

void file_unmap(const void *base, size_t len) {
  if (base && len) munmap((void *)base, len);
}

void file_map_sequential(const void *base, size_t len) {
  if (base && len) madvise((void *)base, len, MADV_SEQUENTIAL);
}

void file_map_done(const void *base, size_t len, size_t off, size_t n) {
  if (!base || off >= len) return;
  long pg = sysconf(_SC_PAGESIZE);
  size_t page = pg > 0 ? (size_t)pg : 4096;
  size_t a = (off + page - 1) / page * page; /* whole pages inside the range */
  size_t b = off + n > len ? len : off + n;
  if (b == len) b = (len + page - 1) / page * page;
  else b = b / page * page;
  if (b > a) madvise((char *)base + a, b - a, MADV_DONTNEED);
}

int64_t file_size_now(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return -1;
  return (int64_t)st.st_size;
}

/* sysmem.c - the memory a run may still take (see sysmem.h). */
#include "sysmem.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

/* The number after `key` in a "key value" text file, times `unit`. */
static int read_kv(const char *path, const char *key, uint64_t unit, uint64_t *v) {
  FILE *f = fopen(path, "re");
  if (!f) return -1;
  char line[256];
  int rc = -1;
  size_t kl = strlen(key);
  while (fgets(line, sizeof line, f)) {
    unsigned long long x;
    if (strncmp(line, key, kl) == 0 && sscanf(line + kl, " %llu", &x) == 1) {
      *v = (uint64_t)x * unit;
      rc = 0;
      break;
    }
  }
  fclose(f);
  return rc;
}

/* The single number in a file ("max" reads as no limit). */
static int read_num(const char *path, uint64_t *v) {
  FILE *f = fopen(path, "re");
  if (!f) return -1;
  unsigned long long x;
  int ok = fscanf(f, "%llu", &x) == 1;
  fclose(f);
  if (!ok) return -1;
  *v = (uint64_t)x;
  return 0;
}

static double mib(uint64_t b) { return (double)b / (1024.0 * 1024.0); }

int sysmem_check(uint64_t need, int threads, const char *what, char *err, size_t errlen) {
  if (threads < 1) threads = 1;
  uint64_t avail = UINT64_MAX, v;
  const char *which = "";
  if (read_kv("/proc/meminfo", "MemAvailable:", 1024, &v) == 0 && v < avail) {
    avail = v;
    which = "available memory";
  }
  uint64_t max, cur;
  if (read_num("/sys/fs/cgroup/memory.max", &max) == 0 &&
      read_num("/sys/fs/cgroup/memory.current", &cur) == 0 && max > cur && max - cur < avail) {
    avail = max - cur;
    which = "the cgroup's memory.max";
  }
  /* address space: the run's own bytes plus every GEMM thread's reservation */
  uint64_t va_need = need + (uint64_t)threads * (SYSMEM_BLAS_BUFFER + SYSMEM_THREAD_EXTRA);
  struct rlimit rl;
  uint64_t vm = 0;
  read_kv("/proc/self/status", "VmSize:", 1024, &vm);
  if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    uint64_t left = (uint64_t)rl.rlim_cur > vm ? (uint64_t)rl.rlim_cur - vm : 0;
    if (va_need > left) {
      if (err && errlen)
        snprintf(err, errlen,
                 "out of memory: the run needs %.1f MiB of address space, %.1f MiB for %s and "
                 "%.0f MiB for each of its %d thread%s (an OpenBLAS buffer and a stack), but the "
                 "address-space limit (ulimit -v) leaves %.1f MiB: raise the limit or use fewer "
                 "threads",
                 mib(va_need), mib(need), what, mib(SYSMEM_BLAS_BUFFER + SYSMEM_THREAD_EXTRA),
                 threads, threads == 1 ? "" : "s", mib(left));
      return -1;
    }
  }
  if (getrlimit(RLIMIT_DATA, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      (uint64_t)rl.rlim_cur < avail) {
    avail = (uint64_t)rl.rlim_cur;
    which = "the data limit (ulimit -d)";
  }
  if (need > avail) {
    if (err && errlen)
      snprintf(err, errlen,
               "out of memory: the run needs %.1f MiB for %s, but only %.1f MiB can be had (%s)",
               mib(need), what, mib(avail), which);
    return -1;
  }
  return 0;
}

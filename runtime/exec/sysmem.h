/* sysmem.h - how much memory a run may still take, checked before its
 * buffers are allocated, so that a plan too large for the machine is an
 * error with both figures instead of a kill by the kernel's OOM killer (or
 * an endless retry inside OpenBLAS's buffer allocation under `ulimit -v`). */
#ifndef RA_SYSMEM_H
#define RA_SYSMEM_H

#include <stddef.h>
#include <stdint.h>

/* Address space OpenBLAS reserves for each thread that runs a GEMM (its
 * BUFFER_SIZE on x86-64), plus a thread's stack and slack: measured, each
 * thread past the first adds 140 MiB to VmPeak. */
#define SYSMEM_BLAS_BUFFER ((uint64_t)128 << 20)
#define SYSMEM_THREAD_EXTRA ((uint64_t)12 << 20)

/* Checks that `need` bytes of memory, and `need` plus `threads` threads'
 * reservations of address space, can still be had: the least of the
 * machine's available memory (/proc/meminfo), the cgroup's limit and the
 * address-space and data limits (ulimit -v, -d).  0, or -1 with a message
 * "the run needs N MiB for WHAT, but only M MiB can be had (which limit)". */
int sysmem_check(uint64_t need, int threads, const char *what, char *err, size_t errlen);

#endif

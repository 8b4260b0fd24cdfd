/* fma_peak.c - the machine's FP32 FMA throughput: chains of 512-bit
 * (AVX-512F) and 256-bit (AVX2/FMA3) fused multiply-adds on enough
 * independent accumulators to hide the FMA latency, on 1 thread and on N
 * threads (one chain set per thread).  Prints GFLOP/s in total and per core
 * and FLOP/cycle at the clock measured with rdtsc (the TSC rate, which on
 * a virtual machine is the nominal clock, not the boost clock).
 *
 *   build/bench/fma_peak [threads]      (default: every online core)
 *
 * The last lines, "peak T G", give for 1 and T threads the GFLOP/s of the
 * widest FMA cpuid reports (AVX-512F, else AVX2/FMA3): bench/run.sh reads
 * them as the machine's FMA peak.
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define ACC 12 /* independent accumulators: latency 4 x 2 pipes, plus slack */
#define REPS 50000000L

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct Job {
  int wide; /* 512 or 256 */
  long reps;
  float out;
} Job;

/* The loops are written in assembly so that the accumulators stay in
 * registers (a compiler may keep an array of vectors in memory). */
#define FMA12(op, r)                                                          \
  op " %%" r "14, %%" r "15, %%" r "0\n\t" op " %%" r "14, %%" r "15, %%" r "1\n\t" \
  op " %%" r "14, %%" r "15, %%" r "2\n\t" op " %%" r "14, %%" r "15, %%" r "3\n\t" \
  op " %%" r "14, %%" r "15, %%" r "4\n\t" op " %%" r "14, %%" r "15, %%" r "5\n\t" \
  op " %%" r "14, %%" r "15, %%" r "6\n\t" op " %%" r "14, %%" r "15, %%" r "7\n\t" \
  op " %%" r "14, %%" r "15, %%" r "8\n\t" op " %%" r "14, %%" r "15, %%" r "9\n\t" \
  op " %%" r "14, %%" r "15, %%" r "10\n\t" op " %%" r "14, %%" r "15, %%" r "11\n\t"

__attribute__((target("avx512f"))) static float chain512(long reps) {
  float out[16];
  __asm__ volatile(
      "vbroadcastss %[a], %%zmm14\n\t"
      "vbroadcastss %[b], %%zmm15\n\t"
      "vxorps %%zmm0, %%zmm0, %%zmm0\n\t vmovaps %%zmm0, %%zmm1\n\t vmovaps %%zmm0, %%zmm2\n\t"
      "vmovaps %%zmm0, %%zmm3\n\t vmovaps %%zmm0, %%zmm4\n\t vmovaps %%zmm0, %%zmm5\n\t"
      "vmovaps %%zmm0, %%zmm6\n\t vmovaps %%zmm0, %%zmm7\n\t vmovaps %%zmm0, %%zmm8\n\t"
      "vmovaps %%zmm0, %%zmm9\n\t vmovaps %%zmm0, %%zmm10\n\t vmovaps %%zmm0, %%zmm11\n\t"
      "1:\n\t" FMA12("vfmadd231ps", "zmm") "dec %[n]\n\t jnz 1b\n\t"
      "vaddps %%zmm1, %%zmm0, %%zmm0\n\t vaddps %%zmm11, %%zmm0, %%zmm0\n\t"
      "vmovups %%zmm0, %[out]\n\t"
      : [n] "+r"(reps), [out] "=m"(out)
      : [a] "m"((float){0.999999f}), [b] "m"((float){1e-7f})
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
        "xmm10", "xmm11", "xmm14", "xmm15", "cc", "memory");
  return out[0];
}

__attribute__((target("avx2,fma"))) static float chain256(long reps) {
  float out[8];
  __asm__ volatile(
      "vbroadcastss %[a], %%ymm14\n\t"
      "vbroadcastss %[b], %%ymm15\n\t"
      "vxorps %%ymm0, %%ymm0, %%ymm0\n\t vmovaps %%ymm0, %%ymm1\n\t vmovaps %%ymm0, %%ymm2\n\t"
      "vmovaps %%ymm0, %%ymm3\n\t vmovaps %%ymm0, %%ymm4\n\t vmovaps %%ymm0, %%ymm5\n\t"
      "vmovaps %%ymm0, %%ymm6\n\t vmovaps %%ymm0, %%ymm7\n\t vmovaps %%ymm0, %%ymm8\n\t"
      "vmovaps %%ymm0, %%ymm9\n\t vmovaps %%ymm0, %%ymm10\n\t vmovaps %%ymm0, %%ymm11\n\t"
      "1:\n\t" FMA12("vfmadd231ps", "ymm") "dec %[n]\n\t jnz 1b\n\t"
      "vaddps %%ymm1, %%ymm0, %%ymm0\n\t vaddps %%ymm11, %%ymm0, %%ymm0\n\t"
      "vmovups %%ymm0, %[out]\n\t vzeroupper\n\t"
      : [n] "+r"(reps), [out] "=m"(out)
      : [a] "m"((float){0.999999f}), [b] "m"((float){1e-7f})
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
        "xmm10", "xmm11", "xmm14", "xmm15", "cc", "memory");
  return out[0];
}

static void *run(void *arg) {
  Job *j = arg;
  j->out = j->wide == 512 ? chain512(j->reps) : chain256(j->reps);
  return NULL;
}

/* Best of 3: seconds for T threads each doing reps iterations. */
static double measure(int wide, int T, long reps) {
  double best = 1e30;
  for (int round = 0; round < 3; round++) {
    pthread_t th[64];
    Job job[64];
    double t0 = now();
    for (int t = 0; t < T; t++) {
      job[t] = (Job){wide, reps, 0};
      pthread_create(&th[t], NULL, run, &job[t]);
    }
    for (int t = 0; t < T; t++) pthread_join(th[t], NULL);
    double dt = now() - t0;
    if (job[0].out == 12345.0f) printf(" ");
    if (dt < best) best = dt;
  }
  return best;
}

static double tsc_ghz(void) {
  double t0 = now();
  unsigned long long c0 = __builtin_ia32_rdtsc();
  while (now() - t0 < 0.2) {
  }
  unsigned long long c1 = __builtin_ia32_rdtsc();
  return (double)(c1 - c0) / (now() - t0) / 1e9;
}

int main(int argc, char **argv) {
  int T = argc > 1 ? atoi(argv[1]) : (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (T < 1) T = 1;
  if (T > 64) T = 64;
  __builtin_cpu_init();
  int has512 = __builtin_cpu_supports("avx512f"), has256 = __builtin_cpu_supports("fma");
  double ghz = tsc_ghz();
  printf("fma_peak: %d accumulators, TSC %.2f GHz\n", ACC, ghz);
  int threads[2] = {1, T};
  double best[2] = {0, 0};
  for (int ti = 0; ti < (T > 1 ? 2 : 1); ti++) {
    int nt = threads[ti];
    for (int w = 0; w < 2; w++) {
      int wide = w == 0 ? 512 : 256;
      if ((wide == 512 && !has512) || (wide == 256 && !has256)) {
        printf("%3d-bit FMA  %d thread(s)  not supported\n", wide, nt);
        continue;
      }
      double dt = measure(wide, nt, REPS);
      double flop = (double)nt * REPS * ACC * (wide / 32) * 2;
      double g = flop / dt / 1e9;
      printf("%3d-bit FMA  %d thread(s)  %7.1f GFLOP/s  %6.1f per core  %5.1f FLOP/cycle/core at TSC\n",
             wide, nt, g, g / nt, g / nt / ghz);
      if ((wide == 512 && has512) || (wide == 256 && !has512)) best[ti] = g;
    }
  }
  for (int ti = 0; ti < (T > 1 ? 2 : 1); ti++)
    printf("peak %d %.1f\n", threads[ti], best[ti]);
  return 0;
}

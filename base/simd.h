/* simd.h - hot loops compiled for several instruction sets.
 *
 * K_CLONES compiles a function for AVX-512, AVX2+FMA and baseline x86-64,
 * picked at load time (GCC function multi-versioning; not under the
 * sanitizers, whose runtimes are not ready when the ifunc resolvers run).
 * The clones compute the same bits: the code is C11 (no contraction of
 * a*b + c into an FMA, -ffp-contract=off), so a clone with FMA
 * instructions uses them only where the code calls fmaf, which is
 * correctly rounded in every clone. */
#ifndef RA_SIMD_H
#define RA_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define K_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define K_CLONES
#endif

/* Inlined into every loop that calls it, the clones' too (a call out of a
 * clone would run the baseline code, fmaf a library call). */
#if defined(__GNUC__)
#define K_INLINE static inline __attribute__((always_inline))
#else
#define K_INLINE static inline
#endif

#endif

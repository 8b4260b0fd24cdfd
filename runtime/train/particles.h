/* particles.h - repulsive particle updates (language.md §6): svgd, spos.
 *
 * A particle set is M particles of D floats laid out [M][D] (theta) with the
 * loss gradients g laid out the same way.  particles_update replaces g by
 * the svgd or spos direction G, in place.  gather/scatter move the heads'
 * slices of a layer's weights between the parameter buffer and [M][D].
 */
#ifndef RA_PARTICLES_H
#define RA_PARTICLES_H

#include <stdbool.h>
#include <stdint.h>

#include "../../compiler/program.h"
#include "../../compiler/jit/jit.h"
#include "../exec/pool.h"

typedef struct ParticleStats {
  double h2;        /* the bandwidth used, h^2 */
  double med;       /* median of D (0 if fixed bandwidth) */
  double med_abs_g; /* spos: median |g| */
} ParticleStats;

/* theta, g: [M][D].  g is overwritten with G.  work: scratch of at least
 * particles_work_floats(M, D) floats.  seed/stream/step pick the spos noise
 * (counter RNG: stream identifies the particle set, step the update).
 * pool: the workers that share the loops (NULL: the caller alone; the
 * bits are the same either way).  dir: the direction's compiled loop
 * (exec_jit_particles), or NULL for the C loops; the bits are the same.  Returns 0, or -1 if M < 1 or D < 1. */
int particles_update(const Repulsion *rep, int64_t M, int64_t D, const float *theta,
                     float *g, float *work, uint64_t seed, uint64_t stream, int64_t step,
                     ParticleStats *stats, Pool *pool, JitLoopFn dir);
int64_t particles_work_floats(int64_t M, int64_t D);
/* The same update with the spos noise given explicitly: xi [M][D] standard
 * normal draws, or NULL for none (the noise-free part).  particles_update
 * fills xi from rng_normal(seed, stream, step*M*D + i*D + d) and calls this.
 * work as above.  Returns 0, or -1 if M < 1, D < 1 or a setting is invalid
 * (fixed bandwidth <= 0, spos with stepsize <= 0 or beta < 0). */
int particles_update_noise(const Repulsion *rep, int64_t M, int64_t D, const float *theta,
                           float *g, float *work, const float *xi, ParticleStats *stats,
                           Pool *pool, JitLoopFn dir);

/* Whether rep's particle update applies at step (0-based: the steps taken
 * before it, as ModelState.step): start <= step < stop (stop 0: no end) and
 * step % every == 0.  With a trigger (rep->when), such a step also needs
 * *triggered: while it is false, measure(ud) (the layer's diversity on the
 * step's batch) is called and compared with the threshold; once true it
 * sets *triggered, which stays set.  svgd and spos only (false otherwise). */
bool repulsion_applies(const Repulsion *rep, int64_t step, bool *triggered,
                       double (*measure)(void *ud), void *ud);

/* The particle sets of a head group: how many, and the particle size of
 * each (group each: one set per chosen matrix; joint: one set). */
int particles_nsets(const HeadGroup *g);
int64_t particles_dim(const HeadGroup *g, const ParamInfo *params, int set);
/* Copies head slices of the set's matrices from buf (params or grads, laid
 * out by ParamInfo.offset) into out [M][D], or back (scatter), with the
 * rows shared among pool's workers (NULL: the caller alone). */
void particles_gather(const HeadGroup *g, const ParamInfo *params, int set,
                      const float *buf, float *out, Pool *pool);
void particles_scatter(const HeadGroup *g, const ParamInfo *params, int set,
                       const float *in, float *buf, Pool *pool);

#endif

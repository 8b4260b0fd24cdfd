/* sweep.h - rac sweep: many runs of one spec over the product of axes
 * (repulsion kinds, seeds, --set values), as child processes of rac, then
 * sweep.jsonl, sweep.md (means, confidence intervals, paired tests) and
 * SVG plots.  See docs/sweep.md. */
#ifndef RAC_SWEEP_H
#define RAC_SWEEP_H

/* argv: the arguments after "sweep".  Returns rac's exit status. */
int rac_sweep_main(int argc, char **argv);

#endif

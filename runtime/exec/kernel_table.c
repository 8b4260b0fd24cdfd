/* kernel_table.c - the forward kernel of every op, indexed by IrOp, built
 * from ops.def (k_<lower> by convention). */
#include "kernels.h"

const KernelFn kernel_table[OP_COUNT] = {
#define OP(U, l, a, fl, g) [OP_##U] = k_##l,
#include "../../compiler/ops.def"
#undef OP
};

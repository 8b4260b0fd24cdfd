/* jit.c - the LLVM-C backend (see jit.h): LLJIT for the host CPU, the
 * caches, and the code generators of the elementwise, row and optimizer
 * loops.
 *
 * The generated code uses explicit vector types (<16 x float>) and no
 * fast-math flags, so LLVM may neither reassociate nor contract a*b+c into
 * an FMA: each float operation is the one opmath.h or the kernel does, in
 * the same order, and rounds the same way (an FMA only where the C code
 * calls fmaf: llvm.fma, the optimizer's).  Reductions (the row sums of
 * softmax and layernorm) keep the kernels' 16 interleaved partials and
 * their pairwise combination (kernels_int.h, k_row_sum).
 */
#include "jit.h"

#include "../opmath.h"
#include "../../base/clock.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define VW 16   /* floats per vector */

typedef struct Kern {
  uint64_t hash;
  char *key;
  size_t keylen;
  JitLoopFn fn;
} Kern;

typedef struct FuncEntry {
  JitFunc *code;
  size_t node_bytes;
} FuncEntry;

struct Jit {
  RaAlloc alloc;
  LLVMOrcLLJITRef lljit;
  LLVMTargetMachineRef tm;   /* for the data layout and the IR passes */
  char *triple;
  char target[128];
  Kern *kern;
  int nkern, capkern;
  FuncEntry *func;
  int nfunc, capfunc;
  uint64_t next_sym;
};

/* ---- process-wide LLVM initialisation (the only state outside a Jit) ---- */

static pthread_once_t llvm_once = PTHREAD_ONCE_INIT;

static void llvm_init(void) {
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
}

static int fail(char *err, size_t errlen, const char *what, const char *msg) {
  snprintf(err, errlen, "jit: %s%s%s", what, msg ? ": " : "", msg ? msg : "");
  return -1;
}

/* Takes an LLVMErrorRef into err; -1. */
static int fail_llvm(char *err, size_t errlen, const char *what, LLVMErrorRef e) {
  char *m = LLVMGetErrorMessage(e);
  fail(err, errlen, what, m);
  LLVMDisposeErrorMessage(m);
  return -1;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++) {
    h ^= s[i];
    h *= 0x100000001b3ull;
  }
  return h;
}
#define FNV0 0xcbf29ce484222325ull

static LLVMTargetMachineRef host_tm(const char *triple, char *err, size_t errlen) {
  LLVMTargetRef t;
  char *msg = NULL;
  if (LLVMGetTargetFromTriple(triple, &t, &msg)) {
    fail(err, errlen, "no target for this machine", msg);
    LLVMDisposeMessage(msg);
    return NULL;
  }
  char *cpu = LLVMGetHostCPUName(), *feat = LLVMGetHostCPUFeatures();
  LLVMTargetMachineRef tm = LLVMCreateTargetMachine(t, triple, cpu, feat, LLVMCodeGenLevelDefault,
                                                    LLVMRelocDefault, LLVMCodeModelJITDefault);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(feat);
  if (!tm) fail(err, errlen, "cannot make a target machine for the host CPU", NULL);
  return tm;
}

Jit *jit_new(RaAlloc alloc, char *err, size_t errlen) {
  pthread_once(&llvm_once, llvm_init);
  Jit *j = ra_calloc(&alloc, 1, sizeof *j);
  if (!j) {
    fail(err, errlen, "out of memory", NULL);
    return NULL;
  }
  j->alloc = alloc;
  char *triple = LLVMGetDefaultTargetTriple();
  size_t tl = strlen(triple) + 1;
  j->triple = ra_malloc(&j->alloc, tl);
  if (!j->triple) {
    LLVMDisposeMessage(triple);
    ra_free_mem(&j->alloc, j, sizeof *j);
    fail(err, errlen, "out of memory", NULL);
    return NULL;
  }
  memcpy(j->triple, triple, tl);
  LLVMDisposeMessage(triple);
  j->tm = host_tm(j->triple, err, errlen);
  LLVMTargetMachineRef tm2 = j->tm ? host_tm(j->triple, err, errlen) : NULL;
  if (!tm2) {
    jit_free(j);
    return NULL;
  }
  LLVMOrcLLJITBuilderRef b = LLVMOrcCreateLLJITBuilder();
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(
      b, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm2));
  LLVMErrorRef e = LLVMOrcCreateLLJIT(&j->lljit, b);
  if (e) {
    j->lljit = NULL;
    fail_llvm(err, errlen, "cannot create the LLJIT", e);
    jit_free(j);
    return NULL;
  }
  char *cpu = LLVMGetTargetMachineCPU(j->tm);
  snprintf(j->target, sizeof j->target, "%s, %d floats", cpu, VW);
  LLVMDisposeMessage(cpu);
  return j;
}

void jit_free(Jit *j) {
  if (!j) return;
  RaAlloc a = j->alloc;
  if (j->lljit) {
    LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->lljit);
    if (e) LLVMConsumeError(e);
  }
  if (j->tm) LLVMDisposeTargetMachine(j->tm);
  for (int i = 0; i < j->nkern; i++) ra_free_mem(&a, j->kern[i].key, j->kern[i].keylen);
  ra_free_mem(&a, j->kern, sizeof *j->kern * (size_t)j->capkern);
  for (int i = 0; i < j->nfunc; i++) {
    ra_free_mem(&a, j->func[i].code->node, j->func[i].node_bytes);
    ra_free_mem(&a, j->func[i].code, sizeof *j->func[i].code);
  }
  ra_free_mem(&a, j->func, sizeof *j->func * (size_t)j->capfunc);
  if (j->triple) ra_free_mem(&a, j->triple, strlen(j->triple) + 1);
  ra_free_mem(&a, j, sizeof *j);
}

const char *jit_target(const Jit *j) { return j ? j->target : ""; }


/* ---- the emitter ---- */

typedef struct E {
  LLVMContextRef C;
  LLVMModuleRef M;
  LLVMBuilderRef B;
  LLVMValueRef fn;
  LLVMTypeRef f32, f64, i1, i32, i64, ptr, v16, vi16;
} E;

static LLVMValueRef splat(LLVMTypeRef ty, LLVMValueRef s, int n) {
  (void)ty;
  LLVMValueRef el[VW];
  for (int i = 0; i < n; i++) el[i] = s;
  return LLVMConstVector(el, (unsigned)n);
}

/* A float constant of type ty (float or a float vector). */
static LLVMValueRef cf(E *e, LLVMTypeRef ty, float v) {
  LLVMValueRef s = LLVMConstReal(e->f32, (double)v);
  if (LLVMGetTypeKind(ty) == LLVMVectorTypeKind) return splat(ty, s, (int)LLVMGetVectorSize(ty));
  return s;
}


static LLVMValueRef ci32(E *e, LLVMTypeRef fty, int v) {
  LLVMValueRef s = LLVMConstInt(e->i32, (unsigned long long)(long long)v, 1);
  if (LLVMGetTypeKind(fty) == LLVMVectorTypeKind) return splat(NULL, s, (int)LLVMGetVectorSize(fty));
  return s;
}

static LLVMTypeRef int_of(E *e, LLVMTypeRef fty) {
  return LLVMGetTypeKind(fty) == LLVMVectorTypeKind ? LLVMVectorType(e->i32, LLVMGetVectorSize(fty))
                                                    : e->i32;
}

static LLVMValueRef c64(E *e, int64_t v) { return LLVMConstInt(e->i64, (unsigned long long)v, 1); }

static LLVMValueRef call1(E *e, const char *name, LLVMValueRef x) {
  LLVMTypeRef ty = LLVMTypeOf(x);
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(e->M, id, &ty, 1);
  LLVMTypeRef fty = LLVMIntrinsicGetType(e->C, id, &ty, 1);
  return LLVMBuildCall2(e->B, fty, f, &x, 1, "");
}

static LLVMValueRef call2(E *e, const char *name, LLVMValueRef x, LLVMValueRef y) {
  LLVMTypeRef ty = LLVMTypeOf(x);
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(e->M, id, &ty, 1);
  LLVMTypeRef fty = LLVMIntrinsicGetType(e->C, id, &ty, 1);
  LLVMValueRef a[2] = {x, y};
  return LLVMBuildCall2(e->B, fty, f, a, 2, "");
}

static LLVMValueRef call3(E *e, const char *name, LLVMValueRef x, LLVMValueRef y,
                          LLVMValueRef z) {
  LLVMTypeRef ty = LLVMTypeOf(x);
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(e->M, id, &ty, 1);
  LLVMTypeRef fty = LLVMIntrinsicGetType(e->C, id, &ty, 1);
  LLVMValueRef a[3] = {x, y, z};
  return LLVMBuildCall2(e->B, fty, f, a, 3, "");
}

/* fmaf(a, b, c): one rounding, as the C loop's */
/* fmaf(a, b, c): one rounding, as the C code's */
#define FMA(a, b, c) call3(e, "llvm.fma", a, b, c)

#define ADD(a, b) LLVMBuildFAdd(e->B, a, b, "")
#define SUB(a, b) LLVMBuildFSub(e->B, a, b, "")
#define MUL(a, b) LLVMBuildFMul(e->B, a, b, "")
#define DIV(a, b) LLVMBuildFDiv(e->B, a, b, "")
#define NEG(a) LLVMBuildFNeg(e->B, a, "")
#define SEL(c, a, b) LLVMBuildSelect(e->B, c, a, b, "")
#define CMP(p, a, b) LLVMBuildFCmp(e->B, p, a, b, "")
#define K(v) cf(e, ty, v)

/* km_exp of opmath.h, operation for operation. */
static LLVMValueRef em_exp(E *e, LLVMValueRef x) {
  LLVMTypeRef ty = LLVMTypeOf(x);
  LLVMValueRef lo = CMP(LLVMRealOLT, x, K(-87.3f));
  LLVMValueRef xc = SEL(lo, K(-87.3f), x);
  xc = SEL(CMP(LLVMRealOGT, xc, K(88.3f)), K(88.3f), xc);
  LLVMValueRef r = SUB(FMA(xc, K(1.44269504088896341f), K(12582912.0f)), K(12582912.0f));
  LLVMValueRef f = FMA(r, K(-0.693145751953125f), xc);
  f = FMA(r, K(-1.428606765330187045e-06f), f);
  static const float c[] = {0.00837482698f, 0.0416682102f, 0.166664198f, 0.499999911f, 1.0f, 1.0f};
  LLVMValueRef p = K(0.00138377224f);
  for (int i = 0; i < 6; i++) p = FMA(p, f, K(c[i]));
  LLVMTypeRef ity = int_of(e, ty);
  LLVMValueRef rn = SEL(CMP(LLVMRealOEQ, r, r), r, K(0.0f)); /* no fptosi of NaN */
  LLVMValueRef ir = LLVMBuildFPToSI(e->B, rn, ity, "");
  ir = LLVMBuildShl(e->B, LLVMBuildAdd(e->B, ir, ci32(e, ty, 127), ""), ci32(e, ty, 23), "");
  LLVMValueRef u = LLVMBuildBitCast(e->B, ir, ty, "");
  LLVMValueRef v = MUL(p, u);
  return SEL(lo, K(0.0f), v);
}

/* km_cdf_e of opmath.h: Phi(x), and e^(-x^2/2) in *ez. */
static LLVMValueRef em_cdf_e(E *e, LLVMValueRef x, LLVMValueRef *ez) {
  LLVMTypeRef ty = LLVMTypeOf(x);
  LLVMValueRef z = MUL(call1(e, "llvm.fabs", x), K(0.70710678118654752f));
  LLVMValueRef t = DIV(K(1.0f), FMA(K(0.5f), z, K(1.0f)));
  static const float c[] = {-0.231024578f, 0.486483783f, -0.447281837f, 0.127270505f,
                            -0.0572981238f, 0.0930148438f, 0.175375074f, 0.246880695f,
                            0.282093853f, 0.282094806f};
  LLVMValueRef q = K(0.0423909761f);
  for (int i = 0; i < 10; i++) q = FMA(q, t, K(c[i]));
  *ez = em_exp(e, NEG(MUL(z, z)));
  LLVMValueRef half_erfc = MUL(MUL(K(0.5f), MUL(t, *ez)), q);
  LLVMValueRef up = SUB(K(1.0f), half_erfc);
  return SEL(CMP(LLVMRealOGE, x, K(0.0f)), up, half_erfc);
}

static LLVMValueRef em_sigmoid(E *e, LLVMValueRef x) {
  LLVMTypeRef ty = LLVMTypeOf(x);
  LLVMValueRef ex = em_exp(e, NEG(call1(e, "llvm.fabs", x)));
  LLVMValueRef d = DIV(K(1.0f), ADD(K(1.0f), ex));
  LLVMValueRef ed = MUL(ex, d);
  return SEL(CMP(LLVMRealOGE, x, K(0.0f)), d, ed);
}

static LLVMValueRef em_tanh(E *e, LLVMValueRef x) {
  LLVMTypeRef ty = LLVMTypeOf(x);
  LLVMValueRef z = call1(e, "llvm.fabs", x);
  LLVMValueRef x2 = MUL(x, x);
  LLVMValueRef h = ADD(K(-0.0088632355f), MUL(x2, K(0.0035921280f)));
  h = ADD(K(0.021869488f), MUL(x2, h));
  h = ADD(K(-0.053968254f), MUL(x2, h));
  h = ADD(K(0.13333333f), MUL(x2, h));
  h = ADD(K(-0.33333333f), MUL(x2, h));
  h = ADD(K(1.0f), MUL(x2, h));
  LLVMValueRef small = MUL(x, h);
  LLVMValueRef ex = em_exp(e, MUL(K(-2.0f), z));
  LLVMValueRef big = call2(e, "llvm.copysign", DIV(SUB(K(1.0f), ex), ADD(K(1.0f), ex)), x);
  return SEL(CMP(LLVMRealOLT, z, K(0.4f)), small, big);
}

/* One micro-op on values of type ty (float or a vector of floats); NULL for
 * an op without code here. */
static LLVMValueRef em_micro(E *e, const JitMicro *m, LLVMValueRef a, LLVMValueRef b) {
  LLVMTypeRef ty = LLVMTypeOf(a);
  switch (m->op) {
  case OP_ADD: return ADD(a, b);
  case OP_SUB: return SUB(a, b);
  case OP_MUL: return MUL(a, b);
  case OP_DIV: return DIV(a, b);
  case OP_NEG: return NEG(a);
  case OP_SCALE: return MUL(a, K(m->s));
  case OP_SQUARE: return MUL(a, a);
  case OP_RELU: return SEL(CMP(LLVMRealOGT, a, K(0.0f)), a, K(0.0f));
  case OP_GELU: {
    LLVMValueRef ez;
    return MUL(a, em_cdf_e(e, a, &ez));
  }
  case OP_TANH: return em_tanh(e, a);
  case OP_SIGMOID: return em_sigmoid(e, a);
  case OP_SILU: return MUL(a, em_sigmoid(e, a));
  /* (a, dy) */
  case OP_RELU_GRAD: return SEL(CMP(LLVMRealOGT, a, K(0.0f)), b, K(0.0f));
  case OP_GELU_GRAD: {
    LLVMValueRef ez, c = em_cdf_e(e, a, &ez);
    return MUL(b, ADD(c, MUL(a, MUL(K(0.39894228040143268f), ez))));
  }
  case OP_TANH_GRAD: return MUL(b, SUB(K(1.0f), MUL(a, a)));
  case OP_SIGMOID_GRAD: return MUL(MUL(b, a), SUB(K(1.0f), a));
  case OP_SILU_GRAD: {
    LLVMValueRef s = em_sigmoid(e, a);
    return MUL(b, MUL(s, ADD(K(1.0f), MUL(a, SUB(K(1.0f), s)))));
  }
  default: return NULL;
  }
}

bool jit_op_compiles(int op) {
  switch (op) {
  case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_NEG: case OP_SCALE:
  case OP_SQUARE: case OP_RELU: case OP_GELU: case OP_TANH: case OP_SIGMOID: case OP_SILU:
  case OP_RELU_GRAD: case OP_GELU_GRAD: case OP_TANH_GRAD: case OP_SIGMOID_GRAD:
  case OP_SILU_GRAD:
    return true;
  default:
    return false;
  }
}

int jit_prog_of_node(const IrNode *n, JitProg *p) {
  if (!jit_op_compiles(n->op) || n->nin < 1 || n->nin > 2) return -1;
  memset(p, 0, sizeof *p);
  p->nin = n->nin;
  p->n = 1;
  p->op[0] = (JitMicro){.op = n->op, .nin = n->nin, .in = {0, (uint8_t)(n->nin > 1)},
                        .s = (float)n->attr.f[0]};
  return 0;
}

#ifdef IR_FUSED_MAX
/* The elementwise micro-program of a FUSED node (ir.h, IrFused): refs
 * -1 - j (external input j) become operand j, refs k >= 0 operand nin + k.
 * bc[j] says whether input j is read with broadcasting (by add, sub, mul or
 * div), flat[j] whether some other op reads it flat.  -1 for a program with
 * a row op, sum_to, dropout or causal_mask (the interpreter runs those). */
static int prog_of_fused(const IrNode *n, JitProg *p, bool *bc, bool *flat) {
  const IrFused *fz = n->fused;
  if (!fz || fz->rowop >= 0 || fz->n < 1 || fz->n > JIT_MAX_MICRO || n->nin > IR_MAX_IN) return -1;
  memset(p, 0, sizeof *p);
  p->nin = n->nin;
  p->n = fz->n;
  for (int j = 0; j < fz->n; j++) {
    const IrMicro *m = &fz->ops[j];
    if (!jit_op_compiles(m->op) || m->nin < 1 || m->nin > 2) return -1;
    JitMicro *q = &p->op[j];
    q->op = m->op;
    q->nin = m->nin;
    q->s = (float)m->attr.f[0];
    for (int k = 0; k < m->nin; k++) {
      int32_t r = m->in[k];
      if (r < 0) {
        int32_t x = -1 - r;
        if (x >= n->nin) return -1;
        q->in[k] = (uint8_t)x;
        if (ir_op_info[m->op].flags & OPF_BCAST) bc[x] = true;
        else flat[x] = true;
      } else {
        if (r >= j) return -1;
        q->in[k] = (uint8_t)(n->nin + r);
      }
    }
  }
  /* an input read both ways is read flat: it must have the result's shape */
  for (int x = 0; x < n->nin; x++)
    if (flat[x]) bc[x] = false;
  return 0;
}
#endif

/* ---- loops ---- */

static LLVMBasicBlockRef block(E *e, const char *name) {
  return LLVMAppendBasicBlockInContext(e->C, e->fn, name);
}

static LLVMValueRef var(E *e, LLVMTypeRef ty, LLVMValueRef init) {
  /* allocas in the entry block, so mem2reg promotes them */
  LLVMBasicBlockRef cur = LLVMGetInsertBlock(e->B);
  LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(e->fn);
  LLVMValueRef first = LLVMGetFirstInstruction(entry);
  if (first) LLVMPositionBuilderBefore(e->B, first);
  else LLVMPositionBuilderAtEnd(e->B, entry);
  LLVMValueRef a = LLVMBuildAlloca(e->B, ty, "");
  LLVMPositionBuilderAtEnd(e->B, cur);
  if (init) LLVMBuildStore(e->B, init, a);
  return a;
}

static LLVMValueRef ld(E *e, LLVMTypeRef ty, LLVMValueRef p) { return LLVMBuildLoad2(e->B, ty, p, ""); }

/* Loads a field of the argument block at byte offset off. */
static LLVMValueRef arg_at(E *e, LLVMValueRef args, size_t off, LLVMTypeRef ty) {
  LLVMValueRef idx = c64(e, (int64_t)off);
  LLVMValueRef p = LLVMBuildGEP2(e->B, LLVMInt8TypeInContext(e->C), args, &idx, 1, "");
  return ld(e, ty, p);
}

static LLVMValueRef fptr(E *e, LLVMTypeRef elem, LLVMValueRef base, LLVMValueRef i) {
  return LLVMBuildGEP2(e->B, elem, base, &i, 1, "");
}

static LLVMValueRef vload(E *e, LLVMTypeRef ty, LLVMValueRef p) {
  LLVMValueRef v = LLVMBuildLoad2(e->B, ty, p, "");
  LLVMSetAlignment(v, 4);
  return v;
}

static void vstore(E *e, LLVMValueRef v, LLVMValueRef p) {
  LLVMValueRef s = LLVMBuildStore(e->B, v, p);
  LLVMSetAlignment(s, 4);
}

/* A counted loop: for (i = from; i + step <= to; i += step) body(i).  The
 * builder is left in the body; loop_end closes it.  i is an i64 variable. */
typedef struct Loop {
  LLVMBasicBlockRef cond, body, end;
  LLVMValueRef iv, step;
} Loop;

static Loop loop_begin(E *e, LLVMValueRef iv, LLVMValueRef to, int64_t step) {
  Loop l = {block(e, "cond"), block(e, "body"), block(e, "end"), iv, c64(e, step)};
  LLVMBuildBr(e->B, l.cond);
  LLVMPositionBuilderAtEnd(e->B, l.cond);
  LLVMValueRef i = ld(e, e->i64, iv);
  LLVMValueRef nx = LLVMBuildAdd(e->B, i, l.step, "");
  LLVMBuildCondBr(e->B, LLVMBuildICmp(e->B, LLVMIntSLE, nx, to, ""), l.body, l.end);
  LLVMPositionBuilderAtEnd(e->B, l.body);
  return l;
}

static void loop_end(E *e, Loop *l) {
  LLVMValueRef i = ld(e, e->i64, l->iv);
  LLVMBuildStore(e->B, LLVMBuildAdd(e->B, i, l->step, ""), l->iv);
  LLVMBuildBr(e->B, l->cond);
  LLVMPositionBuilderAtEnd(e->B, l->end);
}

static LLVMValueRef new_fn(E *e, const char *name) {
  LLVMTypeRef ps[3] = {e->ptr, e->i64, e->i64};
  LLVMTypeRef fty = LLVMFunctionType(LLVMVoidTypeInContext(e->C), ps, 3, 0);
  e->fn = LLVMAddFunction(e->M, name, fty);
  LLVMPositionBuilderAtEnd(e->B, block(e, "entry"));
  return e->fn;
}

/* ---- elementwise ---- */

typedef struct EwKey {
  JitProg prog;
  uint8_t inner[IR_MAX_IN];  /* 1: contiguous along the inner dim, 0: repeated */
} EwKey;

/* Runs the program on one vector (or scalar) of inputs vals; NULL if an op
 * has no code. */
static LLVMValueRef em_prog(E *e, const JitProg *p, LLVMValueRef *vals) {
  LLVMValueRef v[IR_MAX_IN + JIT_MAX_MICRO];
  for (int k = 0; k < p->nin; k++) v[k] = vals[k];
  for (int j = 0; j < p->n; j++) {
    const JitMicro *m = &p->op[j];
    if (m->in[0] >= p->nin + j || (m->nin > 1 && m->in[1] >= p->nin + j)) return NULL;
    LLVMValueRef r = em_micro(e, m, v[m->in[0]], m->nin > 1 ? v[m->in[1]] : NULL);
    if (!r) return NULL;
    v[p->nin + j] = r;
  }
  return v[p->nin + p->n - 1];
}

#define OFF(T, f) ((size_t)offsetof(T, f))

static int emit_ew(E *e, const char *name, const EwKey *k) {
  const JitProg *p = &k->prog;
  new_fn(e, name);
  LLVMValueRef args = LLVMGetParam(e->fn, 0), lo = LLVMGetParam(e->fn, 1),
               hi = LLVMGetParam(e->fn, 2);
  LLVMValueRef out = arg_at(e, args, OFF(JitEwArgs, out), e->ptr);
  LLVMValueRef in[IR_MAX_IN];
  for (int q = 0; q < p->nin; q++)
    in[q] = arg_at(e, args, OFF(JitEwArgs, in) + (size_t)q * sizeof(void *), e->ptr);
  LLVMValueRef rank = arg_at(e, args, OFF(JitEwArgs, rank), e->i64);
  LLVMValueRef L = arg_at(e, args, OFF(JitEwArgs, L), e->i64);
  LLVMValueRef per_row = arg_at(e, args, OFF(JitEwArgs, per_row), e->i64);
  LLVMValueRef tv = var(e, e->i64, lo);
  Loop lt = loop_begin(e, tv, hi, 1);
  LLVMValueRef t = ld(e, e->i64, tv);
  LLVMValueRef row = LLVMBuildSDiv(e->B, t, per_row, "");
  LLVMValueRef c0 = LLVMBuildMul(e->B, LLVMBuildSRem(e->B, t, per_row, ""), c64(e, JIT_TILE), "");
  LLVMValueRef rem = LLVMBuildSub(e->B, L, c0, "");
  LLVMValueRef len = LLVMBuildSelect(e->B, LLVMBuildICmp(e->B, LLVMIntSLT, rem, c64(e, JIT_TILE), ""),
                                     rem, c64(e, JIT_TILE), "");
  /* operand offsets of this row: for j = rank-2 .. 0 */
  LLVMValueRef offv[IR_MAX_IN];
  for (int q = 0; q < p->nin; q++) offv[q] = var(e, e->i64, c64(e, 0));
  LLVMValueRef rr = var(e, e->i64, row);
  LLVMValueRef jv = var(e, e->i64, LLVMBuildSub(e->B, rank, c64(e, 2), ""));
  {
    LLVMBasicBlockRef cond = block(e, "dcond"), body = block(e, "dbody"), end = block(e, "dend");
    LLVMBuildBr(e->B, cond);
    LLVMPositionBuilderAtEnd(e->B, cond);
    LLVMValueRef j = ld(e, e->i64, jv);
    LLVMBuildCondBr(e->B, LLVMBuildICmp(e->B, LLVMIntSGE, j, c64(e, 0), ""), body, end);
    LLVMPositionBuilderAtEnd(e->B, body);
    j = ld(e, e->i64, jv);
    LLVMValueRef dp = LLVMBuildGEP2(e->B, LLVMInt8TypeInContext(e->C), args,
                                    (LLVMValueRef[]){c64(e, (int64_t)OFF(JitEwArgs, dim))}, 1, "");
    LLVMValueRef d = ld(e, e->i64, fptr(e, e->i64, dp, j));
    LLVMValueRef r = ld(e, e->i64, rr);
    LLVMValueRef ix = LLVMBuildSRem(e->B, r, d, "");
    LLVMBuildStore(e->B, LLVMBuildSDiv(e->B, r, d, ""), rr);
    for (int q = 0; q < p->nin; q++) {
      LLVMValueRef sp = LLVMBuildGEP2(
          e->B, LLVMInt8TypeInContext(e->C), args,
          (LLVMValueRef[]){c64(e, (int64_t)(OFF(JitEwArgs, stride) + (size_t)q * IR_MAX_RANK * 8))},
          1, "");
      LLVMValueRef s = ld(e, e->i64, fptr(e, e->i64, sp, j));
      LLVMValueRef o = ld(e, e->i64, offv[q]);
      LLVMBuildStore(e->B, LLVMBuildAdd(e->B, o, LLVMBuildMul(e->B, ix, s, ""), ""), offv[q]);
    }
    LLVMBuildStore(e->B, LLVMBuildSub(e->B, j, c64(e, 1), ""), jv);
    LLVMBuildBr(e->B, cond);
    LLVMPositionBuilderAtEnd(e->B, end);
  }
  LLVMValueRef po = fptr(e, e->f32, out, LLVMBuildAdd(e->B, LLVMBuildMul(e->B, row, L, ""), c0, ""));
  LLVMValueRef pin[IR_MAX_IN], rep_s[IR_MAX_IN], rep_v[IR_MAX_IN];
  for (int q = 0; q < p->nin; q++) {
    LLVMValueRef o = ld(e, e->i64, offv[q]);
    if (k->inner[q]) o = LLVMBuildAdd(e->B, o, c0, "");
    pin[q] = fptr(e, e->f32, in[q], o);
    if (!k->inner[q]) {
      rep_s[q] = ld(e, e->f32, pin[q]);
      LLVMValueRef u = LLVMGetUndef(e->v16);
      u = LLVMBuildInsertElement(e->B, u, rep_s[q], c64(e, 0), "");
      LLVMValueRef zero[VW];
      for (int i = 0; i < VW; i++) zero[i] = LLVMConstInt(e->i32, 0, 0);
      rep_v[q] = LLVMBuildShuffleVector(e->B, u, u, LLVMConstVector(zero, VW), "");
    }
  }
  /* vectors, then the scalar tail */
  LLVMValueRef iv = var(e, e->i64, c64(e, 0));
  for (int pass = 0; pass < 2; pass++) {
    Loop li = loop_begin(e, iv, len, pass == 0 ? VW : 1);
    LLVMValueRef i = ld(e, e->i64, iv);
    LLVMValueRef vals[IR_MAX_IN];
    for (int q = 0; q < p->nin; q++) {
      if (!k->inner[q]) vals[q] = pass == 0 ? rep_v[q] : rep_s[q];
      else vals[q] = vload(e, pass == 0 ? e->v16 : e->f32, fptr(e, e->f32, pin[q], i));
    }
    LLVMValueRef r = em_prog(e, p, vals);
    if (!r) return -1;
    vstore(e, r, fptr(e, e->f32, po, i));
    loop_end(e, &li);
  }
  loop_end(e, &lt);
  LLVMBuildRetVoid(e->B);
  return 0;
}

/* ---- rows: softmax, layernorm and their gradients ---- */

enum { RED_SUM, RED_MAX };

/* The kernels' 16-partial reduction of term(j) over a row of L: acc[l] over
 * j = l mod 16, tail into the first lanes, then acc[l] += acc[l + w] for
 * w = 8, 4, 2, 1.  term is given as up to two row pointers and a mode. */
enum { T_X, T_XY, T_DXC, T_XC2 };

static LLVMValueRef term(E *e, int mode, LLVMTypeRef ty, LLVMValueRef x, LLVMValueRef y,
                         LLVMValueRef i, LLVMValueRef c) {
  LLVMValueRef xv = vload(e, ty, fptr(e, e->f32, x, i));
  if (mode == T_X) return xv;
  if (mode == T_XC2) {
    LLVMValueRef dv = SUB(xv, c);
    return MUL(dv, dv);
  }
  LLVMValueRef yv = vload(e, ty, fptr(e, e->f32, y, i));
  if (mode == T_XY) return MUL(xv, yv);
  return MUL(xv, SUB(yv, c)); /* T_DXC: x = d, y = x */
}

static LLVMValueRef combine(E *e, int red, LLVMValueRef acc, LLVMValueRef v) {
  if (red == RED_SUM) return ADD(acc, v);
  return SEL(CMP(LLVMRealOGT, v, acc), v, acc); /* x > acc ? x : acc */
}

static LLVMValueRef bcast(E *e, LLVMTypeRef ty, LLVMValueRef s) {
  if (LLVMGetTypeKind(ty) != LLVMVectorTypeKind) return s;
  LLVMValueRef u = LLVMBuildInsertElement(e->B, LLVMGetUndef(ty), s, c64(e, 0), "");
  LLVMValueRef zero[VW];
  for (int i = 0; i < VW; i++) zero[i] = LLVMConstInt(e->i32, 0, 0);
  return LLVMBuildShuffleVector(e->B, u, u, LLVMConstVector(zero, LLVMGetVectorSize(ty)), "");
}

static LLVMValueRef em_reduce(E *e, int red, int mode, LLVMValueRef x, LLVMValueRef y,
                              LLVMValueRef L, LLVMValueRef cscalar) {
  LLVMValueRef accv = var(e, e->v16, cf(e, e->v16, red == RED_SUM ? 0.0f : -INFINITY));
  LLVMValueRef jv = var(e, e->i64, c64(e, 0));
  LLVMValueRef cvec = cscalar ? bcast(e, e->v16, cscalar) : NULL;
  Loop l = loop_begin(e, jv, L, VW);
  LLVMValueRef j = ld(e, e->i64, jv);
  LLVMBuildStore(e->B, combine(e, red, ld(e, e->v16, accv), term(e, mode, e->v16, x, y, j, cvec)),
                 accv);
  loop_end(e, &l);
  /* tail: lane l takes element j + l */
  LLVMValueRef j0 = ld(e, e->i64, jv);
  LLVMValueRef lv = var(e, e->i64, c64(e, 0));
  LLVMValueRef rest = LLVMBuildSub(e->B, L, j0, "");
  Loop lt = loop_begin(e, lv, rest, 1);
  LLVMValueRef ln = ld(e, e->i64, lv);
  LLVMValueRef t = term(e, mode, e->f32, x, y, LLVMBuildAdd(e->B, j0, ln, ""), cscalar);
  LLVMValueRef acc = ld(e, e->v16, accv);
  LLVMValueRef a = LLVMBuildExtractElement(e->B, acc, ln, "");
  LLVMBuildStore(e->B, LLVMBuildInsertElement(e->B, acc, combine(e, red, a, t), ln, ""), accv);
  loop_end(e, &lt);
  LLVMValueRef v = ld(e, e->v16, accv);
  for (int w = 8; w > 0; w /= 2) {
    LLVMValueRef ml[8], mh[8];
    for (int i = 0; i < w; i++) {
      ml[i] = LLVMConstInt(e->i32, (unsigned long long)i, 0);
      mh[i] = LLVMConstInt(e->i32, (unsigned long long)(i + w), 0);
    }
    LLVMValueRef vl = LLVMBuildShuffleVector(e->B, v, v, LLVMConstVector(ml, (unsigned)w), "");
    LLVMValueRef vh = LLVMBuildShuffleVector(e->B, v, v, LLVMConstVector(mh, (unsigned)w), "");
    v = combine(e, red, vl, vh);
  }
  return LLVMBuildExtractElement(e->B, v, c64(e, 0), "");
}

/* for j in [0, L): store f(j) at out[j], vectors then the tail. */
typedef LLVMValueRef (*RowMap)(E *e, LLVMTypeRef ty, LLVMValueRef j, void *ud);

static void row_map(E *e, LLVMValueRef out, LLVMValueRef L, RowMap f, void *ud) {
  LLVMValueRef jv = var(e, e->i64, c64(e, 0));
  for (int pass = 0; pass < 2; pass++) {
    Loop l = loop_begin(e, jv, L, pass == 0 ? VW : 1);
    LLVMValueRef j = ld(e, e->i64, jv);
    LLVMTypeRef ty = pass == 0 ? e->v16 : e->f32;
    vstore(e, f(e, ty, j, ud), fptr(e, e->f32, out, j));
    loop_end(e, &l);
  }
}

typedef struct RowCtx {
  LLVMValueRef y, x, d, a, b, c;  /* row pointers and scalars */
} RowCtx;

static LLVMValueRef map_exp(E *e, LLVMTypeRef ty, LLVMValueRef j, void *ud) {
  RowCtx *r = ud;
  return em_exp(e, SUB(vload(e, ty, fptr(e, e->f32, r->x, j)), bcast(e, ty, r->a)));
}
static LLVMValueRef map_scale(E *e, LLVMTypeRef ty, LLVMValueRef j, void *ud) {
  RowCtx *r = ud;
  return MUL(vload(e, ty, fptr(e, e->f32, r->y, j)), bcast(e, ty, r->a));
}
static LLVMValueRef map_softmax_grad(E *e, LLVMTypeRef ty, LLVMValueRef j, void *ud) {
  RowCtx *r = ud;
  LLVMValueRef yv = vload(e, ty, fptr(e, e->f32, r->x, j)), dv = vload(e, ty, fptr(e, e->f32, r->d, j));
  return MUL(yv, SUB(dv, bcast(e, ty, r->a)));
}
static LLVMValueRef map_norm(E *e, LLVMTypeRef ty, LLVMValueRef j, void *ud) {
  RowCtx *r = ud; /* (x - mu) * rs */
  return MUL(SUB(vload(e, ty, fptr(e, e->f32, r->x, j)), bcast(e, ty, r->a)), bcast(e, ty, r->b));
}
static LLVMValueRef map_norm_grad(E *e, LLVMTypeRef ty, LLVMValueRef j, void *ud) {
  RowCtx *r = ud; /* rs * (d - md - (x - mu) * rs * mdx); a = mu, b = rs, c = md, y = mdx */
  LLVMValueRef xv = vload(e, ty, fptr(e, e->f32, r->x, j)), dv = vload(e, ty, fptr(e, e->f32, r->d, j));
  LLVMValueRef rs = bcast(e, ty, r->b);
  LLVMValueRef t = MUL(MUL(SUB(xv, bcast(e, ty, r->a)), rs), bcast(e, ty, r->y));
  return MUL(rs, SUB(SUB(dv, bcast(e, ty, r->c)), t));
}

/* mean and rstd of a row (row_stats in kernels_nn.c) */
static void em_stats(E *e, LLVMValueRef x, LLVMValueRef L, LLVMValueRef eps, LLVMValueRef *mu,
                     LLVMValueRef *rs) {
  LLVMValueRef Lf = LLVMBuildSIToFP(e->B, L, e->f32, "");
  *mu = DIV(em_reduce(e, RED_SUM, T_X, x, NULL, L, NULL), Lf);
  LLVMValueRef ss = em_reduce(e, RED_SUM, T_XC2, x, NULL, L, *mu);
  LLVMValueRef sq = call1(e, "llvm.sqrt", ADD(DIV(ss, Lf), eps));
  *rs = DIV(LLVMConstReal(e->f32, 1.0), sq);
}

/* out[j] = 0 for j in [from, to) */
static void row_zero(E *e, LLVMValueRef out, LLVMValueRef from, LLVMValueRef to) {
  LLVMValueRef jv = var(e, e->i64, from);
  for (int pass = 0; pass < 2; pass++) {
    Loop l = loop_begin(e, jv, to, pass == 0 ? VW : 1);
    LLVMTypeRef ty = pass == 0 ? e->v16 : e->f32;
    vstore(e, cf(e, ty, 0.0f), fptr(e, e->f32, out, ld(e, e->i64, jv)));
    loop_end(e, &l);
  }
}

/* Row op op of one row into y from the rows x (and d), as its kernel in
 * kernels_nn.c: softmax and its gradient over the first n of L entries,
 * the rest 0 (k_softmax_row: a causal prefix, or n = L); layernorm and its
 * gradient over all L.  y may be x or d (each entry is read before it is
 * written). */
static int em_rowop(E *e, int op, LLVMValueRef y, LLVMValueRef x, LLVMValueRef d,
                    LLVMValueRef n, LLVMValueRef L, LLVMValueRef eps) {
  RowCtx r = {y, x, d, NULL, NULL, NULL};
  switch (op) {
  case OP_SOFTMAX: {
    LLVMValueRef mx = em_reduce(e, RED_MAX, T_X, r.x, NULL, n, NULL);
    LLVMBasicBlockRef masked = block(e, "masked"), live = block(e, "live"), done = block(e, "done");
    LLVMBuildCondBr(e->B, CMP(LLVMRealOEQ, mx, LLVMConstReal(e->f32, -INFINITY)), masked, live);
    LLVMPositionBuilderAtEnd(e->B, masked);
    row_zero(e, r.y, c64(e, 0), n);
    LLVMBuildBr(e->B, done);
    LLVMPositionBuilderAtEnd(e->B, live);
    r.a = mx;
    row_map(e, r.y, n, map_exp, &r);
    LLVMValueRef s = em_reduce(e, RED_SUM, T_X, r.y, NULL, n, NULL);
    r.a = DIV(LLVMConstReal(e->f32, 1.0), s);
    row_map(e, r.y, n, map_scale, &r);
    LLVMBuildBr(e->B, done);
    LLVMPositionBuilderAtEnd(e->B, done);
    row_zero(e, r.y, n, L);
    return 0;
  }
  case OP_SOFTMAX_GRAD:
    r.a = em_reduce(e, RED_SUM, T_XY, r.x, r.d, n, NULL);
    row_map(e, r.y, n, map_softmax_grad, &r);
    row_zero(e, r.y, n, L);
    return 0;
  case OP_LAYERNORM:
    em_stats(e, r.x, L, eps, &r.a, &r.b);
    row_map(e, r.y, L, map_norm, &r);
    return 0;
  case OP_LAYERNORM_GRAD: {
    em_stats(e, r.x, L, eps, &r.a, &r.b);
    LLVMValueRef Lf = LLVMBuildSIToFP(e->B, L, e->f32, "");
    r.c = DIV(em_reduce(e, RED_SUM, T_X, r.d, NULL, L, NULL), Lf);
    LLVMValueRef dot = em_reduce(e, RED_SUM, T_DXC, r.d, r.x, L, r.a);
    LLVMValueRef out = r.y;
    r.y = DIV(MUL(dot, r.b), Lf);
    row_map(e, out, L, map_norm_grad, &r);
    return 0;
  }
  default:
    return -1;
  }
}

/* Row r's prefix for a causal row op (k_row_prefix): r % L + 1. */
static LLVMValueRef prefix(E *e, LLVMValueRef r, LLVMValueRef L) {
  return LLVMBuildAdd(e->B, LLVMBuildSRem(e->B, r, L, ""), c64(e, 1), "");
}

static int emit_rows(E *e, const char *name, int op, bool causal) {
  new_fn(e, name);
  LLVMValueRef args = LLVMGetParam(e->fn, 0), lo = LLVMGetParam(e->fn, 1),
               hi = LLVMGetParam(e->fn, 2);
  LLVMValueRef Y = arg_at(e, args, OFF(JitRowArgs, y), e->ptr);
  LLVMValueRef X = arg_at(e, args, OFF(JitRowArgs, x), e->ptr);
  LLVMValueRef D = arg_at(e, args, OFF(JitRowArgs, d), e->ptr);
  LLVMValueRef L = arg_at(e, args, OFF(JitRowArgs, L), e->i64);
  LLVMValueRef eps = arg_at(e, args, OFF(JitRowArgs, eps), e->f32);
  LLVMValueRef rv = var(e, e->i64, lo);
  Loop lr = loop_begin(e, rv, hi, 1);
  LLVMValueRef row = ld(e, e->i64, rv), off = LLVMBuildMul(e->B, row, L, "");
  LLVMValueRef d = op == OP_SOFTMAX_GRAD || op == OP_LAYERNORM_GRAD ? fptr(e, e->f32, D, off) : NULL;
  if (em_rowop(e, op, fptr(e, e->f32, Y, off), fptr(e, e->f32, X, off), d,
               causal ? prefix(e, row, L) : L, L, eps))
    return -1;
  loop_end(e, &lr);
  LLVMBuildRetVoid(e->B);
  return 0;
}

/* ---- fused nodes with a row op ---- */

/* A fused node's program as the generated code runs it: every micro-op in
 * order (the row op among them, s 0: eps is a run-time argument; a causal
 * mask's s its fill), where the row op is, whether it takes a causal
 * prefix, and which inputs are one row read by every row. */
typedef struct FRowKey {
  JitProg prog;
  int32_t rowop;
  uint8_t causal;
  uint8_t vec[IR_MAX_IN];
} FRowKey;

/* causal_mask of entry j of a row whose index in its [T, T] matrix is rr
 * (T = L): a where j <= rr, else fill (kernels_fused.c). */
static LLVMValueRef em_mask(E *e, LLVMTypeRef ty, LLVMValueRef a, LLVMValueRef j,
                            LLVMValueRef rr, float fill) {
  LLVMValueRef keep;
  if (LLVMGetTypeKind(ty) == LLVMVectorTypeKind) {
    LLVMTypeRef vi = LLVMVectorType(e->i64, VW);
    LLVMValueRef lane[VW];
    for (int i = 0; i < VW; i++) lane[i] = c64(e, i);
    LLVMValueRef jj = bcast(e, vi, j), rv = bcast(e, vi, rr);
    keep = LLVMBuildICmp(e->B, LLVMIntSLE, LLVMBuildAdd(e->B, jj, LLVMConstVector(lane, VW), ""),
                         rv, "");
  } else {
    keep = LLVMBuildICmp(e->B, LLVMIntSLE, j, rr, "");
  }
  return SEL(keep, a, cf(e, ty, fill));
}

/* Micro-ops [k0, k1) over entries [0, len) of a row, the last one's value
 * stored at dst[j]: inputs from their rows inrow, micro-op have (the row
 * op, or -1) read at have_at; -1 when a micro-op reads a value the span
 * does not have. */
static int em_span(E *e, const FRowKey *k, int k0, int k1, LLVMValueRef dst, LLVMValueRef *inrow,
                   LLVMValueRef rr, LLVMValueRef len, int have, LLVMValueRef have_at) {
  const JitProg *p = &k->prog;
  LLVMValueRef jv = var(e, e->i64, c64(e, 0));
  for (int pass = 0; pass < 2; pass++) {
    Loop l = loop_begin(e, jv, len, pass == 0 ? VW : 1);
    LLVMValueRef j = ld(e, e->i64, jv);
    LLVMTypeRef ty = pass == 0 ? e->v16 : e->f32;
    LLVMValueRef v[IR_MAX_IN + JIT_MAX_MICRO] = {NULL};
    LLVMValueRef r = NULL;
    for (int m = k0; m < k1; m++) {
      const JitMicro *mi = &p->op[m];
      LLVMValueRef a[2] = {NULL, NULL};
      for (int t = 0; t < mi->nin; t++) {
        int ref = mi->in[t];
        if (!v[ref] && ref < p->nin) v[ref] = vload(e, ty, fptr(e, e->f32, inrow[ref], j));
        if (!v[ref] && ref - p->nin == have) v[ref] = vload(e, ty, fptr(e, e->f32, have_at, j));
        if (!v[ref]) return -1;
        a[t] = v[ref];
      }
      r = mi->op == OP_CAUSAL_MASK ? em_mask(e, ty, a[0], j, rr, mi->s) : em_micro(e, mi, a[0], a[1]);
      if (!r) return -1;
      v[p->nin + m] = r;
    }
    vstore(e, r, fptr(e, e->f32, dst, j));
    loop_end(e, &l);
  }
  return 0;
}

static int emit_frows(E *e, const char *name, const FRowKey *k) {
  const JitProg *p = &k->prog;
  int ro = k->rowop;
  const JitMicro *rm = &p->op[ro];
  new_fn(e, name);
  LLVMValueRef args = LLVMGetParam(e->fn, 0), lo = LLVMGetParam(e->fn, 1),
               hi = LLVMGetParam(e->fn, 2);
  LLVMValueRef Y = arg_at(e, args, OFF(JitFRowArgs, y), e->ptr);
  LLVMValueRef L = arg_at(e, args, OFF(JitFRowArgs, L), e->i64);
  LLVMValueRef eps = arg_at(e, args, OFF(JitFRowArgs, eps), e->f32);
  LLVMValueRef IN[IR_MAX_IN];
  for (int q = 0; q < p->nin; q++)
    IN[q] = arg_at(e, args, OFF(JitFRowArgs, in) + (size_t)q * sizeof(void *), e->ptr);
  LLVMValueRef rv = var(e, e->i64, lo);
  Loop lr = loop_begin(e, rv, hi, 1);
  LLVMValueRef row = ld(e, e->i64, rv), off = LLVMBuildMul(e->B, row, L, "");
  LLVMValueRef y = fptr(e, e->f32, Y, off), inrow[IR_MAX_IN];
  for (int q = 0; q < p->nin; q++) inrow[q] = k->vec[q] ? IN[q] : fptr(e, e->f32, IN[q], off);
  LLVMValueRef rr = LLVMBuildSRem(e->B, row, L, "");
  LLVMValueRef n = k->causal ? prefix(e, row, L) : L;
  /* the prologue: the row op's operand (its entries past a causal prefix
   * are never read) */
  if (ro > 0 && em_span(e, k, 0, ro, y, inrow, rr, n, -1, NULL)) return -1;
  LLVMValueRef a[2] = {NULL, NULL};
  for (int t = 0; t < rm->nin; t++) a[t] = rm->in[t] < p->nin ? inrow[rm->in[t]] : y;
  if (em_rowop(e, rm->op, y, a[0], a[1], n, L, eps)) return -1;
  if (ro + 1 < p->n && em_span(e, k, ro + 1, p->n, y, inrow, rr, L, ro, y)) return -1;
  loop_end(e, &lr);
  LLVMBuildRetVoid(e->B);
  return 0;
}

/* ---- the optimizer (optim.c, opt_range: float arithmetic) ---- */


static int emit_opt(E *e, const char *name, int kind) {
  new_fn(e, name);
  LLVMValueRef args = LLVMGetParam(e->fn, 0), lo = LLVMGetParam(e->fn, 1),
               hi = LLVMGetParam(e->fn, 2);
#define SCALAR(f) arg_at(e, args, OFF(JitOptArgs, f), e->f32)
  LLVMValueRef W = arg_at(e, args, OFF(JitOptArgs, w), e->ptr);
  LLVMValueRef G = arg_at(e, args, OFF(JitOptArgs, g), e->ptr);
  LLVMValueRef Mm = arg_at(e, args, OFF(JitOptArgs, m), e->ptr);
  LLVMValueRef Vv = arg_at(e, args, OFF(JitOptArgs, v), e->ptr);
  LLVMValueRef wd = SCALAR(wd), decay = SCALAR(decay), b1 = SCALAR(b1), omb1 = SCALAR(omb1),
               b2 = SCALAR(b2), omb2 = SCALAR(omb2), eps = SCALAR(eps), isb = SCALAR(inv_sb),
               nss = SCALAR(nss), nlr = SCALAR(nlr), mu = SCALAR(mu);
#undef SCALAR
  LLVMValueRef iv = var(e, e->i64, lo);
  for (int pass = 0; pass < 2; pass++) {
    Loop l = loop_begin(e, iv, hi, pass == 0 ? VW : 1);
    LLVMValueRef i = ld(e, e->i64, iv);
    LLVMTypeRef ty = pass == 0 ? e->v16 : e->f32;
#define S(x) bcast(e, ty, x)
    LLVMValueRef pw = fptr(e, e->f32, W, i), pg = fptr(e, e->f32, G, i);
    LLVMValueRef pm = fptr(e, e->f32, Mm, i), pv = fptr(e, e->f32, Vv, i);
    LLVMValueRef wi = vload(e, ty, pw), gi = vload(e, ty, pg);
    if (kind == JIT_OPT_SGD || kind == JIT_OPT_SGD_MOMENTUM) {
      LLVMValueRef d = FMA(S(wd), wi, gi);
      if (kind == JIT_OPT_SGD_MOMENTUM) {
        d = FMA(S(mu), vload(e, ty, pm), d);
        vstore(e, d, pm);
      }
      vstore(e, FMA(S(nlr), d, wi), pw);
    } else {
      LLVMValueRef d = gi;
      if (kind == JIT_OPT_ADAMW) wi = MUL(wi, S(decay));
      else d = FMA(S(wd), wi, gi);
      LLVMValueRef m = FMA(S(b1), vload(e, ty, pm), MUL(S(omb1), d));
      LLVMValueRef v = FMA(S(b2), vload(e, ty, pv), MUL(MUL(S(omb2), d), d));
      vstore(e, m, pm);
      vstore(e, v, pv);
      LLVMValueRef denom = FMA(call1(e, "llvm.sqrt", v), S(isb), S(eps));
      vstore(e, FMA(S(nss), DIV(m, denom), wi), pw);
    }
#undef S
    loop_end(e, &l);
  }
  LLVMBuildRetVoid(e->B);
  return 0;
}

/* ---- the particle update's direction (particles.c: svgd_eight, svgd_one,
 * direction) ----
 * For each block of coordinates: particles in groups of four, eight
 * coordinates at a time in vectors of doubles (rows past M - 1 repeat the
 * last and are not stored), the coordinates past the last multiple of
 * eight one by one, then the block copied from out over g.  Each sum over
 * the particles is the C code's chain of double multiplies and adds in
 * index order.  M, spos and the noise are run-time arguments: one loop
 * serves every particle set, and its code does not grow with M. */

enum { PART_IG = 4 };

typedef struct PartE {
  LLVMValueRef theta, kern, xi, g, out, D, M, spos;
  LLVMValueRef h2, alpha, inv_m, s, beta, noise; /* double scalars */
} PartE;

/* Element (i, d) of an [M][D] array. */
static LLVMValueRef part_at(E *e, const PartE *P, LLVMValueRef base, LLVMValueRef i,
                            LLVMValueRef d) {
  return fptr(e, e->f32, base, LLVMBuildAdd(e->B, LLVMBuildMul(e->B, i, P->D, ""), d, ""));
}

/* float, or a vector of floats as wide as the double vector ty */
static LLVMTypeRef floats_of(E *e, LLVMTypeRef ty) {
  bool vec = LLVMGetTypeKind(ty) == LLVMVectorTypeKind;
  return vec ? LLVMVectorType(e->f32, LLVMGetVectorSize(ty)) : e->f32;
}

/* The floats at p as doubles of type ty (double or a vector of them). */
static LLVMValueRef part_load(E *e, LLVMTypeRef ty, LLVMValueRef p) {
  return LLVMBuildFPExt(e->B, vload(e, floats_of(e, ty), p), ty, "");
}

/* Continues in a new block when cond holds, else skips it; returns the
 * block after (part_if_end). */
static LLVMBasicBlockRef part_if(E *e, LLVMValueRef cond) {
  LLVMBasicBlockRef yes = block(e, "then"), next = block(e, "next");
  LLVMBuildCondBr(e->B, cond, yes, next);
  LLVMPositionBuilderAtEnd(e->B, yes);
  return next;
}

static void part_if_end(E *e, LLVMBasicBlockRef next) {
  LLVMBuildBr(e->B, next);
  LLVMPositionBuilderAtEnd(e->B, next);
}

/* direction(): G from the sums kg and r of particle i, stored at (i, d);
 * spos (a run-time flag) adds beta g_i and, when xi is not NULL, takes
 * off the noise. */
static void part_store(E *e, const PartE *P, LLVMTypeRef ty, LLVMValueRef i, LLVMValueRef d,
                       LLVMValueRef kg, LLVMValueRef r) {
#define S(x) bcast(e, ty, x)
  LLVMValueRef G = var(e, ty, MUL(SUB(kg, MUL(S(P->alpha), DIV(r, S(P->h2)))), S(P->inv_m)));
  LLVMBasicBlockRef after = part_if(e, LLVMBuildICmp(e->B, LLVMIntNE, P->spos, c64(e, 0), ""));
  LLVMValueRef gi = part_load(e, ty, part_at(e, P, P->g, i, d));
  LLVMBuildStore(e->B, ADD(ld(e, ty, G), MUL(S(P->beta), gi)), G);
  LLVMBasicBlockRef no_noise = part_if(e, LLVMBuildIsNotNull(e->B, P->xi, ""));
  LLVMValueRef xi = part_load(e, ty, part_at(e, P, P->xi, i, d));
  LLVMBuildStore(e->B, SUB(ld(e, ty, G), MUL(S(P->noise), xi)), G);
  part_if_end(e, no_noise);
  part_if_end(e, after);
  vstore(e, LLVMBuildFPTrunc(e->B, MUL(S(P->s), ld(e, ty, G)), floats_of(e, ty), ""),
         part_at(e, P, P->out, i, d));
#undef S
}

/* Particles i0 .. i0 + n - 1 (n of them; rows past M - 1 repeat the last,
 * only those below M are stored) at coordinates d, ty wide: the sums over
 * j in a loop. */
static void part_sums(E *e, const PartE *P, LLVMTypeRef ty, LLVMValueRef i0, int n,
                      LLVMValueRef d) {
  LLVMValueRef row[PART_IG], ti[PART_IG], kg[PART_IG], r[PART_IG];
  LLVMValueRef last = LLVMBuildSub(e->B, P->M, c64(e, 1), "");
  for (int q = 0; q < n; q++) {
    LLVMValueRef i = LLVMBuildAdd(e->B, i0, c64(e, q), "");
    row[q] = LLVMBuildSelect(e->B, LLVMBuildICmp(e->B, LLVMIntSLT, i, P->M, ""), i, last, "");
    ti[q] = part_load(e, ty, part_at(e, P, P->theta, row[q], d));
    kg[q] = var(e, ty, LLVMConstNull(ty));
    r[q] = var(e, ty, LLVMConstNull(ty));
  }
  LLVMValueRef jv = var(e, e->i64, c64(e, 0));
  Loop lj = loop_begin(e, jv, P->M, 1);
  LLVMValueRef j = ld(e, e->i64, jv);
  LLVMValueRef gj = part_load(e, ty, part_at(e, P, P->g, j, d));
  LLVMValueRef tj = part_load(e, ty, part_at(e, P, P->theta, j, d));
  for (int q = 0; q < n; q++) {
    LLVMValueRef kij_at = LLVMBuildAdd(e->B, LLVMBuildMul(e->B, row[q], P->M, ""), j, "");
    LLVMValueRef kp = fptr(e, e->f32, P->kern, kij_at);
    LLVMValueRef kij = bcast(e, ty, LLVMBuildFPExt(e->B, ld(e, e->f32, kp), e->f64, ""));
    LLVMBuildStore(e->B, ADD(ld(e, ty, kg[q]), MUL(kij, gj)), kg[q]);
    LLVMBuildStore(e->B, ADD(ld(e, ty, r[q]), MUL(kij, SUB(ti[q], tj))), r[q]);
  }
  loop_end(e, &lj);
  for (int q = 0; q < n; q++) {
    LLVMValueRef i = LLVMBuildAdd(e->B, i0, c64(e, q), "");
    LLVMBasicBlockRef next = part_if(e, LLVMBuildICmp(e->B, LLVMIntSLT, i, P->M, ""));
    part_store(e, P, ty, i, d, ld(e, ty, kg[q]), ld(e, ty, r[q]));
    part_if_end(e, next);
  }
}

static int emit_part(E *e, const char *name) {
  new_fn(e, name);
  LLVMValueRef args = LLVMGetParam(e->fn, 0), lo = LLVMGetParam(e->fn, 1),
               hi = LLVMGetParam(e->fn, 2);
  PartE P;
#define F(f, t) arg_at(e, args, OFF(JitPartArgs, f), t)
  P.theta = F(theta, e->ptr), P.kern = F(kern, e->ptr), P.xi = F(xi, e->ptr);
  P.g = F(g, e->ptr), P.out = F(out, e->ptr), P.D = F(D, e->i64), P.M = F(M, e->i64);
  P.spos = F(spos, e->i64);
  P.h2 = F(h2, e->f64), P.alpha = F(alpha, e->f64), P.inv_m = F(inv_m, e->f64);
  P.s = F(s, e->f64), P.beta = F(beta, e->f64), P.noise = F(noise, e->f64);
#undef F
  LLVMTypeRef v8 = LLVMVectorType(e->f64, 8);
  LLVMValueRef groups = LLVMBuildSDiv(e->B, LLVMBuildAdd(e->B, P.M, c64(e, PART_IG - 1), ""),
                                      c64(e, PART_IG), "");
  LLVMValueRef bv = var(e, e->i64, lo), gv = var(e, e->i64, NULL), iv = var(e, e->i64, NULL),
               dv = var(e, e->i64, NULL);
  Loop lb = loop_begin(e, bv, hi, 1);
  LLVMValueRef b = ld(e, e->i64, bv);
  LLVMValueRef d0 = LLVMBuildMul(e->B, b, c64(e, JIT_PART_BLOCK), "");
  LLVMValueRef end = LLVMBuildAdd(e->B, d0, c64(e, JIT_PART_BLOCK), "");
  LLVMValueRef short_end = LLVMBuildICmp(e->B, LLVMIntSLT, end, P.D, "");
  LLVMValueRef d1 = LLVMBuildSelect(e->B, short_end, end, P.D, "");
  LLVMValueRef w = LLVMBuildSub(e->B, d1, d0, "");
  LLVMValueRef w8 = LLVMBuildMul(e->B, LLVMBuildSDiv(e->B, w, c64(e, 8), ""), c64(e, 8), "");
  LLVMValueRef d8 = LLVMBuildAdd(e->B, d0, w8, "");
  /* groups of four particles, eight coordinates at a time */
  LLVMBuildStore(e->B, c64(e, 0), gv);
  Loop lg = loop_begin(e, gv, groups, 1);
  LLVMValueRef i0 = LLVMBuildMul(e->B, ld(e, e->i64, gv), c64(e, PART_IG), "");
  LLVMBuildStore(e->B, d0, dv);
  Loop l8 = loop_begin(e, dv, d8, 8);
  part_sums(e, &P, v8, i0, PART_IG, ld(e, e->i64, dv));
  loop_end(e, &l8);
  loop_end(e, &lg);
  /* the rest of the block, one particle and coordinate at a time */
  LLVMBuildStore(e->B, c64(e, 0), iv);
  Loop li = loop_begin(e, iv, P.M, 1);
  LLVMValueRef i = ld(e, e->i64, iv);
  LLVMBuildStore(e->B, d8, dv);
  Loop l1 = loop_begin(e, dv, d1, 1);
  part_sums(e, &P, e->f64, i, 1, ld(e, e->i64, dv));
  loop_end(e, &l1);
  loop_end(e, &li);
  /* the block's directions over g */
  LLVMValueRef bytes = LLVMBuildMul(e->B, w, c64(e, (int64_t)sizeof(float)), "");
  LLVMBuildStore(e->B, c64(e, 0), iv);
  Loop lc = loop_begin(e, iv, P.M, 1);
  i = ld(e, e->i64, iv);
  LLVMBuildMemCpy(e->B, part_at(e, &P, P.g, i, d0), 4, part_at(e, &P, P.out, i, d0), 4, bytes);
  loop_end(e, &lc);
  loop_end(e, &lb);
  LLVMBuildRetVoid(e->B);
  return 0;
}

/* ---- plans of nodes ---- */

/* The op's cost per element, as the kernels weigh it (opmath.h). */
static int op_cost(int op) {
  switch (op) {
#define C3(U, l, E) case OP_##U: return 1;
#define C4(U, l, c, E) case OP_##U: return c;
    OPMATH_BINARY(C3)
    OPMATH_UNARY(C4)
    OPMATH_GRAD(C4)
#undef C3
#undef C4
  default: return 1;
  }
}

/* NumPy strides of x against out (kernels_ew.c, strides_for). */
static void strides_for(const IrType *out, const IrType *x, int64_t *s) {
  int R = out->rank, r = x->rank;
  int64_t st = 1;
  for (int j = R - 1; j >= 0; j--) {
    int xj = j - (R - r);
    s[j] = (xj >= 0 && x->dim[xj] == out->dim[j] && out->dim[j] != 1) ? st : 0;
    if (xj >= 0) st *= x->dim[xj];
  }
}

/* The collapsed loop of an elementwise node over nin operands; -1 if it
 * does not fit the generated loop. */
/* bc[q]: input q is read with NumPy broadcasting; else flat (the same
 * element count).  Flat inputs of another shape than the result's fit only
 * when no input broadcasts. */
static int ew_plan(const IrFunc *f, const IrNode *n, int nin, const bool *bc, JitEwArgs *a,
                   uint8_t *inner) {
  memset(a, 0, sizeof *a);
  const IrType *out = &n->type;
  int64_t N = ir_numel(out);
  if (out->dtype != IR_F32) return -1;
  bool bcast = false, reshaped = false;
  for (int q = 0; q < nin; q++) {
    const IrType *t = &f->nodes[n->in[q]].type;
    if (t->dtype != IR_F32 || t->rank > out->rank) return -1;
    if (bc[q]) {
      bcast = true;
    } else {
      if (ir_numel(t) != N) return -1;
      bool same = t->rank == out->rank;
      for (int d = 0; same && d < t->rank; d++) same = t->dim[d] == out->dim[d];
      if (!same) reshaped = true;
    }
  }
  if (bcast && reshaped) return -1;
  if (!bcast) {
    a->rank = 1;
    a->dim[0] = N;
    for (int q = 0; q < nin; q++) {
      a->stride[q][0] = 1;
      inner[q] = 1;
    }
  } else {
    int64_t s[IR_MAX_IN][IR_MAX_RANK];
    for (int q = 0; q < nin; q++) strides_for(out, &f->nodes[n->in[q]].type, s[q]);
    int R = 0;
    for (int j = 0; j < out->rank; j++) {
      int64_t d = out->dim[j];
      if (d == 1) continue;
      bool merge = R > 0;
      for (int q = 0; q < nin && merge; q++) {
        int64_t p = a->stride[q][R - 1];
        merge = (p == 0 && s[q][j] == 0) || (s[q][j] != 0 && p == s[q][j] * d);
      }
      if (merge) {
        a->dim[R - 1] *= d;
        for (int q = 0; q < nin; q++) a->stride[q][R - 1] = s[q][j];
        continue;
      }
      a->dim[R] = d;
      for (int q = 0; q < nin; q++) a->stride[q][R] = s[q][j];
      R++;
    }
    if (R == 0) {
      R = 1;
      a->dim[0] = 1;
    }
    a->rank = R;
    for (int q = 0; q < nin; q++) {
      int64_t st = a->stride[q][R - 1];
      if (st != 0 && st != 1) return -1;
      inner[q] = (uint8_t)st;
    }
  }
  a->L = a->dim[a->rank - 1];
  a->per_row = (a->L + JIT_TILE - 1) / JIT_TILE;
  return 0;
}

/* ---- kernel keys and the cache ---- */

enum { KEY_EW = 1, KEY_ROWS, KEY_OPT, KEY_FROWS, KEY_PART };

typedef struct Key {
  uint8_t tag;
  uint8_t causal;   /* rows: over causal prefixes */
  uint8_t pad[2];
  int32_t op;       /* rows: the op; opt: the kind */
  EwKey ew;
  FRowKey fr;
} Key;

static uint64_t key_hash(const Key *k) { return fnv(FNV0, k, sizeof *k); }

static Kern *kern_find(Jit *j, const Key *k, uint64_t h) {
  for (int i = 0; i < j->nkern; i++)
    if (j->kern[i].hash == h && j->kern[i].keylen == sizeof *k && !memcmp(j->kern[i].key, k, sizeof *k))
      return &j->kern[i];
  return NULL;
}

static Kern *kern_add(Jit *j, const Key *k, uint64_t h) {
  if (j->nkern == j->capkern) {
    int cap = j->capkern ? j->capkern * 2 : 32;
    Kern *nk = ra_realloc(&j->alloc, j->kern, sizeof *nk * (size_t)j->capkern, sizeof *nk * (size_t)cap);
    if (!nk) return NULL;
    j->kern = nk;
    j->capkern = cap;
  }
  char *copy = ra_malloc(&j->alloc, sizeof *k);
  if (!copy) return NULL;
  memcpy(copy, k, sizeof *k);
  Kern *r = &j->kern[j->nkern++];
  *r = (Kern){h, copy, sizeof *k, NULL};
  return r;
}

/* A module of the kernels in pend (those without code yet), compiled and
 * looked up. */
static int build(Jit *j, const int *pend, int np, char *err, size_t errlen) {
  if (np == 0) return 0;
  LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
  E e;
  memset(&e, 0, sizeof e);
  e.C = LLVMOrcThreadSafeContextGetContext(tsc);
  e.M = LLVMModuleCreateWithNameInContext("rac", e.C);
  e.B = LLVMCreateBuilderInContext(e.C);
  e.f32 = LLVMFloatTypeInContext(e.C);
  e.f64 = LLVMDoubleTypeInContext(e.C);
  e.i1 = LLVMInt1TypeInContext(e.C);
  e.i32 = LLVMInt32TypeInContext(e.C);
  e.i64 = LLVMInt64TypeInContext(e.C);
  e.ptr = LLVMPointerTypeInContext(e.C, 0);
  e.v16 = LLVMVectorType(e.f32, VW);
  LLVMSetTarget(e.M, j->triple);
  LLVMTargetDataRef td = LLVMCreateTargetDataLayout(j->tm);
  LLVMSetModuleDataLayout(e.M, td);
  LLVMDisposeTargetData(td);
  char (*names)[32] = ra_malloc(&j->alloc, sizeof *names * (size_t)np);
  int rc = names ? 0 : fail(err, errlen, "out of memory", NULL);
  for (int i = 0; i < np && rc == 0; i++) {
    Key k;
    memcpy(&k, j->kern[pend[i]].key, sizeof k);
    snprintf(names[i], sizeof names[i], "rk%llu", (unsigned long long)j->next_sym++);
    if (k.tag == KEY_EW) rc = emit_ew(&e, names[i], &k.ew);
    else if (k.tag == KEY_ROWS) rc = emit_rows(&e, names[i], k.op, k.causal);
    else if (k.tag == KEY_FROWS) rc = emit_frows(&e, names[i], &k.fr);
    else if (k.tag == KEY_PART) rc = emit_part(&e, names[i]);
    else rc = emit_opt(&e, names[i], k.op);
    if (rc) fail(err, errlen, "an op without code generation", NULL);
  }
  LLVMDisposeBuilder(e.B);
  char *msg = NULL;
  if (rc == 0 && LLVMVerifyModule(e.M, LLVMReturnStatusAction, &msg)) {
    rc = fail(err, errlen, "generated code does not verify", msg);
  }
  if (msg) LLVMDisposeMessage(msg);
  if (rc == 0) {
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMErrorRef pe = LLVMRunPasses(e.M, "function(mem2reg,instcombine,simplifycfg,loop-mssa(licm),gvn,simplifycfg)", j->tm, po);
    LLVMDisposePassBuilderOptions(po);
    if (pe) rc = fail_llvm(err, errlen, "optimizing the generated code", pe);
  }
  if (rc) {
    LLVMDisposeModule(e.M);
    LLVMOrcDisposeThreadSafeContext(tsc);
    ra_free_mem(&j->alloc, names, sizeof *names * (size_t)np);
    return -1;
  }
  LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(e.M, tsc);
  LLVMOrcDisposeThreadSafeContext(tsc);
  LLVMErrorRef ae = LLVMOrcLLJITAddLLVMIRModule(j->lljit, LLVMOrcLLJITGetMainJITDylib(j->lljit), tsm);
  if (ae) {
    LLVMOrcDisposeThreadSafeModule(tsm);
    ra_free_mem(&j->alloc, names, sizeof *names * (size_t)np);
    return fail_llvm(err, errlen, "adding the module", ae);
  }
  for (int i = 0; i < np; i++) {
    LLVMOrcExecutorAddress addr = 0;
    LLVMErrorRef le = LLVMOrcLLJITLookup(j->lljit, &addr, names[i]);
    if (le) {
      ra_free_mem(&j->alloc, names, sizeof *names * (size_t)np);
      return fail_llvm(err, errlen, "compiling", le);
    }
    JitLoopFn fn;
    void *vp = (void *)(uintptr_t)addr;
    memcpy(&fn, &vp, sizeof fn);
    j->kern[pend[i]].fn = fn;
  }
  ra_free_mem(&j->alloc, names, sizeof *names * (size_t)np);
  return 0;
}

/* ---- compiling a function ---- */

static uint64_t ir_hash(const IrFunc *f) {
  uint64_t h = fnv(FNV0, &f->n, sizeof f->n);
  for (int i = 0; i < f->n; i++) {
    const IrNode *n = &f->nodes[i];
    h = fnv(h, &n->op, sizeof n->op);
    h = fnv(h, &n->nin, sizeof n->nin);
    h = fnv(h, n->in, sizeof n->in[0] * n->nin);
    h = fnv(h, &n->type.dtype, 2);
    h = fnv(h, n->type.dim, sizeof n->type.dim[0] * n->type.rank);
    h = fnv(h, n->attr.i, sizeof n->attr.i);
    h = fnv(h, n->attr.f, sizeof n->attr.f);
#ifdef IR_FUSED_MAX
    if (n->fused) { /* the micro-program, field by field (IrMicro has padding) */
      h = fnv(h, &n->fused->n, sizeof n->fused->n);
      h = fnv(h, &n->fused->rowop, sizeof n->fused->rowop);
      for (int j = 0; j < n->fused->n; j++) {
        const IrMicro *m = &n->fused->ops[j];
        h = fnv(h, &m->op, sizeof m->op);
        h = fnv(h, &m->nin, sizeof m->nin);
        h = fnv(h, m->in, sizeof m->in);
        h = fnv(h, m->attr.i, sizeof m->attr.i);
        h = fnv(h, m->attr.f, sizeof m->attr.f);
        h = fnv(h, &m->type.rank, 1);
        h = fnv(h, m->type.dim, sizeof m->type.dim[0] * m->type.rank);
      }
    }
#endif
  }
  return h;
}

static bool is_row_op(int op) {
  return op == OP_SOFTMAX || op == OP_SOFTMAX_GRAD || op == OP_LAYERNORM ||
         op == OP_LAYERNORM_GRAD;
}

/* Softmax rows of t that take causal prefixes (k_row_prefix). */
static bool causal_rows(int op, const IrAttr *a, const IrType *t) {
  return (op == OP_SOFTMAX || op == OP_SOFTMAX_GRAD) && a->i[0] && t->rank >= 2 &&
         t->dim[t->rank - 2] == t->dim[t->rank - 1];
}

#ifdef IR_FUSED_MAX
/* A fused node with a row op (softmax, layernorm or their gradients) whose
 * micro-ops all have code, with causal masks on square [L, L] matrices,
 * and inputs each read flat or as one row of L by every row; 0 for any
 * other (the interpreter runs it). */
static int frow_plan(const IrFunc *f, const IrNode *n, JitNode *jn, Key *k) {
  const IrFused *fz = n->fused;
  int ro = fz->rowop;
  if (fz->n > JIT_MAX_MICRO || n->nin > IR_MAX_IN || n->type.dtype != IR_F32) return 0;
  const IrMicro *rm = &fz->ops[ro];
  const IrType *R = &rm->type;
  if (!is_row_op(rm->op) || R->rank < 1) return 0;
  int64_t L = R->dim[R->rank - 1], N = ir_numel(R);
  if (L < 1 || ir_numel(&n->type) != N) return 0;
  FRowKey *fr = &k->fr;
  JitProg *p = &fr->prog;
  p->nin = n->nin;
  p->n = fz->n;
  fr->rowop = ro;
  fr->causal = causal_rows(rm->op, &rm->attr, R);
  int64_t cost = 0;
  for (int j = 0; j < fz->n; j++) {
    const IrMicro *m = &fz->ops[j];
    if (m->nin < 1 || m->nin > 2) return 0;
    if (j != ro && m->op == OP_CAUSAL_MASK) {
      const IrType *t = &m->type;
      if (t->rank < 2 || t->dim[t->rank - 1] != L || t->dim[t->rank - 2] != L) return 0;
    } else if (j != ro && !jit_op_compiles(m->op)) {
      return 0;
    }
    JitMicro *q = &p->op[j];
    q->op = m->op;
    q->nin = m->nin;
    q->s = j == ro ? 0.0f : (float)m->attr.f[0];
    for (int t = 0; t < m->nin; t++) {
      int32_t r = m->in[t];
      if (r < 0) {
        if (-1 - r >= n->nin) return 0;
        q->in[t] = (uint8_t)(-1 - r);
        continue;
      }
      /* the row op reads the last of the prologue; the prologue its own
       * values; the epilogue the row op's and its own */
      bool ok = j == ro ? r == ro - 1 : j < ro ? r < j : r >= ro && r < j;
      if (!ok) return 0;
      q->in[t] = (uint8_t)(n->nin + r);
    }
    cost += j == ro ? 8 : op_cost(m->op);
  }
  for (int q = 0; q < n->nin; q++) {
    const IrType *t = &f->nodes[n->in[q]].type;
    if (t->dtype != IR_F32) return 0;
    if (ir_numel(t) == N) continue;
    if (ir_numel(t) != L || t->rank < 1 || t->dim[t->rank - 1] != L) return 0;
    fr->vec[q] = 1;
  }
  k->tag = KEY_FROWS;
  jn->kind = JIT_FROWS;
  jn->units = N / L;
  jn->frow.L = L;
  jn->frow.eps = (float)rm->attr.f[0];
  jn->work = N * cost;
  return 1;
}
#endif

/* The kernel key and static arguments of node i, or 0 when it stays on the
 * interpreter. */
static int node_plan(const IrFunc *f, const IrNode *n, JitNode *jn, Key *k) {
  memset(k, 0, sizeof *k);
#ifdef IR_FUSED_MAX
  if (n->op == OP_FUSED && n->fused && n->fused->rowop >= 0) return frow_plan(f, n, jn, k);
#endif

  unsigned fl = ir_op_info[n->op].flags;
  bool ew = (fl & OPF_EW) && jit_op_compiles(n->op);
  bool bc[IR_MAX_IN] = {false}, flat[IR_MAX_IN] = {false};
  int64_t cost = 0;
  if (ew) {
    if (n->nin > IR_MAX_IN || jit_prog_of_node(n, &k->ew.prog)) return 0;
    for (int q = 0; q < n->nin; q++) bc[q] = (fl & OPF_BCAST) != 0;
    cost = (fl & OPF_BCAST) ? 1 : op_cost(n->op);
  }
#ifdef IR_FUSED_MAX
  if (n->op == OP_FUSED) {
    if (prog_of_fused(n, &k->ew.prog, bc, flat)) return 0;
    for (int j = 0; j < k->ew.prog.n; j++) cost += op_cost(k->ew.prog.op[j].op);
    ew = true;
  }
#endif
  (void)flat;
  if (ew) {
    k->tag = KEY_EW;
    if (ew_plan(f, n, n->nin, bc, &jn->ew, k->ew.inner)) return 0;
    int64_t N = ir_numel(&n->type);
    int64_t rows = 1;
    for (int d = 0; d < jn->ew.rank - 1; d++) rows *= jn->ew.dim[d];
    jn->kind = JIT_EW;
    jn->units = rows * jn->ew.per_row;
    jn->work = N * cost;
    return 1;
  }
  if (is_row_op(n->op)) {
    if (n->type.dtype != IR_F32 || n->type.rank < 1) return 0;
    k->causal = causal_rows(n->op, &n->attr, &n->type);
    int64_t N = ir_numel(&n->type), L = n->type.dim[n->type.rank - 1];
    for (int q = 0; q < n->nin; q++) {
      const IrType *t = &f->nodes[n->in[q]].type;
      if (t->dtype != IR_F32 || ir_numel(t) != N) return 0;
    }
    k->tag = KEY_ROWS;
    k->op = n->op;
    jn->kind = JIT_ROWS;
    jn->units = L ? N / L : 0;
    jn->row.L = L;
    jn->row.eps = (float)n->attr.f[0];
    int c = n->op == OP_SOFTMAX ? 8 : n->op == OP_SOFTMAX_GRAD ? 3 : n->op == OP_LAYERNORM ? 4 : 8;
    jn->work = N * c;
    return 1;
  }
  return 0;
}

const JitFunc *jit_compile(Jit *j, const IrFunc *f, char *err, size_t errlen) {
  uint64_t h = ir_hash(f);
  for (int i = 0; i < j->nfunc; i++)
    if (j->func[i].code->hash == h && j->func[i].code->n == f->n) {
      j->func[i].code->compile_ms = 0;
      return j->func[i].code;
    }
  double t0 = 1e3 * clock_seconds();
  if (j->nfunc == j->capfunc) {
    int cap = j->capfunc ? j->capfunc * 2 : 8;
    FuncEntry *nf = ra_realloc(&j->alloc, j->func, sizeof *nf * (size_t)j->capfunc, sizeof *nf * (size_t)cap);
    if (!nf) {
      fail(err, errlen, "out of memory", NULL);
      return NULL;
    }
    j->func = nf;
    j->capfunc = cap;
  }
  JitFunc *code = ra_calloc(&j->alloc, 1, sizeof *code);
  size_t nb = sizeof(JitNode) * (size_t)(f->n ? f->n : 1);
  JitNode *nodes = code ? ra_calloc(&j->alloc, 1, nb) : NULL;
  int *pend = nodes ? ra_malloc(&j->alloc, sizeof *pend * (size_t)(f->n ? f->n : 1)) : NULL;
  int *kid = pend ? ra_malloc(&j->alloc, sizeof *kid * (size_t)(f->n ? f->n : 1)) : NULL;
  if (!kid) {
    if (pend) ra_free_mem(&j->alloc, pend, sizeof *pend * (size_t)(f->n ? f->n : 1));
    if (nodes) ra_free_mem(&j->alloc, nodes, nb);
    if (code) ra_free_mem(&j->alloc, code, sizeof *code);
    fail(err, errlen, "out of memory", NULL);
    return NULL;
  }
  int np = 0, rc = 0, used = 0;
  for (int i = 0; i < f->n && rc == 0; i++) {
    kid[i] = -1;
    Key k;
    if (!node_plan(f, &f->nodes[i], &nodes[i], &k)) {
      nodes[i].kind = JIT_NONE;
      continue;
    }
    uint64_t kh = key_hash(&k);
    Kern *kk = kern_find(j, &k, kh);
    if (!kk) {
      kk = kern_add(j, &k, kh);
      if (!kk) {
        rc = fail(err, errlen, "out of memory", NULL);
        break;
      }
      pend[np++] = (int)(kk - j->kern);
    }
    kid[i] = (int)(kk - j->kern);
  }
  if (rc == 0) rc = build(j, pend, np, err, errlen);
  if (rc) {
    /* kernels without code are dropped again */
    int w = 0;
    for (int i = 0; i < j->nkern; i++) {
      if (j->kern[i].fn) j->kern[w++] = j->kern[i];
      else ra_free_mem(&j->alloc, j->kern[i].key, j->kern[i].keylen);
    }
    j->nkern = w;
  } else {
    bool *seen = ra_calloc(&j->alloc, (size_t)(j->nkern ? j->nkern : 1), sizeof *seen);
    for (int i = 0; i < f->n; i++) {
      if (kid[i] < 0) continue;
      nodes[i].fn = j->kern[kid[i]].fn;
      code->ncompiled++;
      if (seen && !seen[kid[i]]) {
        seen[kid[i]] = true;
        used++;
      }
    }
    if (seen) ra_free_mem(&j->alloc, seen, (size_t)(j->nkern ? j->nkern : 1) * sizeof *seen);
  }
  ra_free_mem(&j->alloc, kid, sizeof *kid * (size_t)(f->n ? f->n : 1));
  ra_free_mem(&j->alloc, pend, sizeof *pend * (size_t)(f->n ? f->n : 1));
  if (rc) {
    ra_free_mem(&j->alloc, nodes, nb);
    ra_free_mem(&j->alloc, code, sizeof *code);
    return NULL;
  }
  code->hash = h;
  code->n = f->n;
  code->node = nodes;
  code->nkernels = used;
  code->compile_ms = 1e3 * clock_seconds() - t0;
  j->func[j->nfunc++] = (FuncEntry){code, nb};
  return code;
}

/* The loop of key k: from the cache, or compiled now (its time in
 * *compile_ms); NULL with a message. */
static JitLoopFn one_kernel(Jit *j, const Key *k, double *compile_ms, char *err, size_t errlen) {
  if (compile_ms) *compile_ms = 0;
  uint64_t h = key_hash(k);
  Kern *kk = kern_find(j, k, h);
  if (kk && kk->fn) return kk->fn;
  double t0 = 1e3 * clock_seconds();
  if (!kk && !(kk = kern_add(j, k, h))) {
    fail(err, errlen, "out of memory", NULL);
    return NULL;
  }
  int idx = (int)(kk - j->kern);
  if (build(j, &idx, 1, err, errlen)) {
    ra_free_mem(&j->alloc, kk->key, kk->keylen);
    j->nkern--;
    return NULL;
  }
  if (compile_ms) *compile_ms = 1e3 * clock_seconds() - t0;
  return kk->fn;
}

JitLoopFn jit_optimizer(Jit *j, int kind, double *compile_ms, char *err, size_t errlen) {
  if (compile_ms) *compile_ms = 0;
  if (kind < 0 || kind >= JIT_OPT_COUNT) {
    fail(err, errlen, "unknown optimizer", NULL);
    return NULL;
  }
  Key k;
  memset(&k, 0, sizeof k);
  k.tag = KEY_OPT;
  k.op = kind;
  return one_kernel(j, &k, compile_ms, err, errlen);
}

JitLoopFn jit_particles(Jit *j, double *compile_ms, char *err, size_t errlen) {
  Key k;
  memset(&k, 0, sizeof k);
  k.tag = KEY_PART;
  return one_kernel(j, &k, compile_ms, err, errlen);
}

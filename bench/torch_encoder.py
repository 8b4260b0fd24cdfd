#!/usr/bin/python3
"""torch_encoder.py - the benchmark models of bench/ in plain PyTorch, for the speed comparison.

The same models and the same training step as `rac bench bench/MODEL.ra`
(MODEL: tiny, small = encoder.ra, medium, charlm; see MODELS below): a
pre-norm Transformer (learned positions, attention, ffn with erf GELU),
an encoder classifier (mean pool, linear to 8 classes) or a causal
character model (final layernorm, linear to the vocabulary at every
position), cross entropy, then the SVGD transform of each layer's q, k and
v head gradients (language.md section 6: group each, median bandwidth,
alpha 0.1) and AdamW (lr 1e-3, weight decay 0.01).  The q, k and v
projections are one fused nn.Linear(d, 3d) (PyTorch's fastest way: one
GEMM instead of three); its rows [0, d), [d, 2d), [2d, 3d) are q, k and v,
each a group of particles, as rac's wq, wk, wv.  Batches are random tokens
of the benchmark's shapes (the cost does not depend on the values).

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/torch_encoder.py --model small --threads 2 --steps 20

Prints "steps/s X" (and samples/s, ms/step, GFLOP/step, max rss) on
stdout; bench/run.sh reads it.  GFLOP/step counts the model's matmuls
(forward, and the two products of each in the backward pass) as rac bench
does.
"""
import argparse
import math
import os
import resource
import sys
import time

# name: d, heads, layers, seq, batch, vocab, ffn, causal (a language model)
MODELS = {
    "tiny":   dict(d=64,  heads=4, layers=1, seq=64,  batch=32, vocab=256,  ffn=256,  causal=False),
    "small":  dict(d=128, heads=8, layers=2, seq=64,  batch=32, vocab=4000, ffn=512,  causal=False),
    "medium": dict(d=256, heads=8, layers=4, seq=128, batch=16, vocab=8000, ffn=1024, causal=False),
    "charlm": dict(d=128, heads=8, layers=2, seq=128, batch=16, vocab=96,   ffn=512,  causal=True),
}
CLASSES = 8
ALPHA = 0.1


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=sorted(MODELS), default="small")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    return ap.parse_args()


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and "torch" not in sys.modules:
    # Debian's torch does its GEMMs in the system OpenBLAS, whose own thread
    # pool ignores torch.set_num_threads and starts one thread per core: fix
    # both pools to the thread count before the libraries load.
    os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)
    os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


class Attention(nn.Module):
    def __init__(self, d, heads, seq, causal):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.o = nn.Linear(d, d)
        # rac: scale, then the causal mask (-inf above the diagonal), softmax
        self.register_buffer("mask", torch.triu(torch.ones(seq, seq, dtype=torch.bool), 1)
                             if causal else None)

    def forward(self, x):
        B, T, d = x.shape
        H = self.heads
        q, k, v = self.qkv(x).view(B, T, 3, H, d // H).permute(2, 0, 3, 1, 4)
        s = q @ k.transpose(-1, -2) / math.sqrt(d // H)
        if self.mask is not None:
            s = s.masked_fill(self.mask, float("-inf"))
        w = torch.softmax(s, dim=-1)
        return self.o((w @ v).transpose(1, 2).reshape(B, T, d))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln1 = nn.LayerNorm(c["d"])
        self.attn = Attention(c["d"], c["heads"], c["seq"], c["causal"])
        self.ln2 = nn.LayerNorm(c["d"])
        self.ff1 = nn.Linear(c["d"], c["ffn"])
        self.ff2 = nn.Linear(c["ffn"], c["d"])

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.ff2(F.gelu(self.ff1(self.ln2(x))))


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed = nn.Embedding(c["vocab"], c["d"])
        self.pos = nn.Parameter(torch.randn(c["seq"], c["d"]) * 0.02)
        self.layers = nn.ModuleList(Layer(c) for _ in range(c["layers"]))
        if c["causal"]:
            self.lnf = nn.LayerNorm(c["d"])
            self.out = nn.Linear(c["d"], c["vocab"])
        else:
            self.out = nn.Linear(c["d"], CLASSES)

    def forward(self, tokens, labels):
        x = self.embed(tokens) + self.pos
        for layer in self.layers:
            x = layer(x)
        if self.c["causal"]:
            logits = self.out(self.lnf(x))
            return F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1))
        return F.cross_entropy(self.out(x.mean(dim=1)), labels)


def matmul_flops(c):
    """The model's matmul FLOPs per step: each product of the forward pass
    once, and twice more in the backward pass (the gradients of both
    operands), as rac bench counts its matmul nodes."""
    d, H, T, B, f = c["d"], c["heads"], c["seq"], c["batch"], c["ffn"]
    N = B * T
    per_layer = 2 * N * d * 3 * d + 2 * N * d * d + 2 * 2 * N * d * f + 2 * 2 * B * H * T * T * (d // H)
    head = 2 * N * d * c["vocab"] if c["causal"] else 2 * B * d * CLASSES
    return 3 * (c["layers"] * per_layer + head)


@torch.no_grad()
def svgd_(theta, grad, heads, alpha):
    """Replaces grad by the SVGD direction over the heads of theta (a
    [heads * hd, in] block of rows of an nn.Linear weight, so head i is rows
    [i*hd, (i+1)*hd): a plain view).  rac flattens its [in, out] columns; the
    kernel and the repulsion do not depend on the order within a particle."""
    theta = theta.reshape(heads, -1)
    g = grad.view(heads, -1)
    M = heads
    dist = (theta.unsqueeze(1) - theta.unsqueeze(0)).pow(2).sum(-1)  # direct, D_ii = 0
    s = dist.flatten().sort().values
    n = s.numel()
    med = (0.5 * (s[n // 2 - 1] + s[n // 2]) if n % 2 == 0 else s[n // 2]).item()
    h2 = 0.5 * med / math.log(M + 1) if (M > 1 and med > 1e-12) else 1.0
    K = torch.exp(dist / (-2.0 * h2))
    R = (theta * K.sum(dim=1, keepdim=True) - K @ theta) / h2
    g.copy_((K @ g - alpha * R) / M)


def blas_library():
    """The OpenBLAS this process loaded (its path names the flavour:
    openblas-pthread or openblas-openmp), from /proc/self/maps."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                if "libopenblas" in line:
                    return os.path.realpath(line.split()[-1])
    except OSError:
        pass
    return "unknown"


def main():
    a = ARGS
    c = MODELS[a.model]
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.autograd.set_detect_anomaly(False)
    torch.manual_seed(a.seed)

    model = Model(c)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    d = c["d"]
    # each layer's q, k and v weights: row blocks of the fused projection
    particles = [(layer.attn.qkv.weight, r) for layer in model.layers for r in range(3)]
    gen = torch.Generator().manual_seed(a.seed)
    B, T = c["batch"], c["seq"]
    label_shape, nlabel = ((B, T), c["vocab"]) if c["causal"] else ((B,), CLASSES)
    batches = [(torch.randint(0, c["vocab"], (B, T), generator=gen),
                torch.randint(0, nlabel, label_shape, generator=gen)) for _ in range(8)]

    def step(i):
        tokens, labels = batches[i % len(batches)]
        opt.zero_grad(set_to_none=False)
        loss = model(tokens, labels)
        loss.backward()
        for w, r in particles:
            rows = slice(r * d, (r + 1) * d)
            svgd_(w[rows], w.grad[rows], c["heads"], ALPHA)
        opt.step()
        return loss.item()

    for i in range(a.warmup):
        step(i)
    t0 = time.perf_counter()
    for i in range(a.steps):
        loss = step(i)
    el = time.perf_counter() - t0
    sps = a.steps / el
    fl = matmul_flops(c)
    print("torch %s  model %s  batch %d  threads %d  steps %d" % (torch.__version__, a.model, B, a.threads, a.steps))
    print("steps/s %.3f" % sps)
    print("samples/s %.1f" % (sps * B))
    print("ms/step %.2f" % (1000.0 / sps))
    print("GFLOP/step %.3f" % (fl * 1e-9))
    print("GFLOP/s %.2f" % (fl * 1e-9 * sps))
    print("max rss %.1f MiB" % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0))
    print("parameters %d" % sum(p.numel() for p in model.parameters()))
    print("blas %s" % blas_library())
    print("loss %.4f" % loss)


if __name__ == "__main__":
    main()

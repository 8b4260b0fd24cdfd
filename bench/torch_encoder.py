#!/usr/bin/python3
"""torch_encoder.py - bench/encoder.ra in plain PyTorch, for the speed comparison.

The same model and the same training step as `rac bench bench/encoder.ra`:
a 2-layer pre-norm Transformer encoder (d 128, 8 heads, sequence 64, ffn 512
with erf GELU), learned positions, mean pool, a linear classifier, cross
entropy, then the SVGD transform of each layer's q, k and v head gradients
(language.md section 6: group each, median bandwidth, alpha 0.1) and AdamW.
Attention is written out from nn.Linear so it mirrors rac's op for op.
Batches are random tokens of the benchmark's shapes (the cost does not
depend on the values).

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/torch_encoder.py --threads 2 --steps 20

Prints "steps/s X" (and samples/s, ms/step) on stdout; bench/run.sh reads it.
"""
import argparse
import math
import os
import sys
import time


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
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

D, HEADS, SEQ, BATCH, VOCAB, HIDDEN, LAYERS, CLASSES = 128, 8, 64, 32, 4000, 512, 2, 8
ALPHA = 0.1


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x):
        B, T, d = x.shape
        H = self.heads
        q = self.q(x).view(B, T, H, d // H).transpose(1, 2)
        k = self.k(x).view(B, T, H, d // H).transpose(1, 2)
        v = self.v(x).view(B, T, H, d // H).transpose(1, 2)
        w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // H), dim=-1)
        return self.o((w @ v).transpose(1, 2).reshape(B, T, d))


class Layer(nn.Module):
    def __init__(self, d, heads, hidden):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = Attention(d, heads)
        self.ln2 = nn.LayerNorm(d)
        self.ff1 = nn.Linear(d, hidden)
        self.ff2 = nn.Linear(hidden, d)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.ff2(F.gelu(self.ff1(self.ln2(x))))


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D)
        self.pos = nn.Parameter(torch.randn(SEQ, D) * 0.02)
        self.layers = nn.ModuleList(Layer(D, HEADS, HIDDEN) for _ in range(LAYERS))
        self.out = nn.Linear(D, CLASSES)

    def forward(self, tokens, labels):
        x = self.embed(tokens) + self.pos
        for layer in self.layers:
            x = layer(x)
        return F.cross_entropy(self.out(x.mean(dim=1)), labels)


@torch.no_grad()
def svgd_(weight, heads, alpha):
    """Replaces weight.grad by the SVGD direction over its heads.  nn.Linear
    stores [out, in], so head i's slice is rows [i*hd, (i+1)*hd): a plain
    view.  (rac flattens the [in, out] columns; the kernel and the repulsion
    do not depend on the order within a particle.)"""
    theta = weight.view(heads, -1)
    g = weight.grad.view(heads, -1)
    M = heads
    dist = (theta.unsqueeze(1) - theta.unsqueeze(0)).pow(2).sum(-1)  # direct, D_ii = 0
    s = dist.flatten().sort().values
    n = s.numel()
    med = (0.5 * (s[n // 2 - 1] + s[n // 2]) if n % 2 == 0 else s[n // 2]).item()
    h2 = 0.5 * med / math.log(M + 1) if (M > 1 and med > 1e-12) else 1.0
    K = torch.exp(dist / (-2.0 * h2))
    R = (theta * K.sum(dim=1, keepdim=True) - K @ theta) / h2
    g.copy_((K @ g - alpha * R) / M)


def main():
    a = ARGS
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.autograd.set_detect_anomaly(False)
    torch.manual_seed(a.seed)

    model = Encoder()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    particles = [m.weight for layer in model.layers for m in (layer.attn.q, layer.attn.k, layer.attn.v)]
    gen = torch.Generator().manual_seed(a.seed)
    batches = [(torch.randint(0, VOCAB, (BATCH, SEQ), generator=gen),
                torch.randint(0, CLASSES, (BATCH,), generator=gen)) for _ in range(8)]

    def step(i):
        tokens, labels = batches[i % len(batches)]
        opt.zero_grad(set_to_none=False)
        loss = model(tokens, labels)
        loss.backward()
        for w in particles:
            svgd_(w, HEADS, ALPHA)
        opt.step()
        return loss.item()

    for i in range(a.warmup):
        step(i)
    t0 = time.perf_counter()
    for i in range(a.steps):
        loss = step(i)
    el = time.perf_counter() - t0
    sps = a.steps / el
    print("torch %s  batch %d  threads %d  steps %d" % (torch.__version__, BATCH, a.threads, a.steps))
    print("steps/s %.3f" % sps)
    print("samples/s %.1f" % (sps * BATCH))
    print("ms/step %.2f" % (1000.0 / sps))
    print("loss %.4f" % loss)


if __name__ == "__main__":
    main()

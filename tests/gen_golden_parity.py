#!/usr/bin/python3
"""gen_golden_parity.py - float64 PyTorch references for tests/test_parity.c.

For each spec in tests/parity/ (tiny.ra, tiny_lm.ra) this builds the same
model again, by hand, from the formulas of language.md section 5 (Numerics)
and section 6 (repulsion), in float64 with torch autograd - an
implementation independent of rac's compiler and kernels.  It draws seeded
random parameters (rounded to float32, the values rac will see) and a batch
of 4 examples, and writes tests/golden/parity/<name>.safetensors with:

  <path>               every parameter, F32, by its rac parameter path
  input.tokens         I32 [4, T]
  input.target         I32 [4] or [4, T]
  loss                 F32 [1], the mean cross entropy
  output.probs         F32, softmax(logits)
  grad/<path>          d loss / d parameter, for every parameter
  svgd/<path> or spos/<path>
                       the gradient after the particle transform, for the
                       attention's wq, wk, wv (group each: three particle
                       sets of M = heads particles); spos without its noise
                       term (xi = 0)
  adamw_step/<path>    the parameters after one AdamW step (lr 1e-2, betas
                       0.9 0.999, eps 1e-8, weight decay 0.01, decay on every
                       parameter) on the transformed gradient

The safetensors file is written by hand (8-byte little-endian header length,
JSON header, raw little-endian data); no package beyond torch is needed.

Run from the repository root with Debian's python3-torch:
    /usr/bin/python3 tests/gen_golden_parity.py
"""
import json
import math
import os
import struct

import torch

torch.set_default_dtype(torch.float64)

OUT = os.path.join("tests", "golden", "parity")
BATCH = 4
LR, BETA1, BETA2, EPS, WD = 1e-2, 0.9, 0.999, 1e-8, 0.01

# The two specs of tests/parity/, restated.  `prefix` is the model name;
# `head` is "mean" (classifier: mean pool then linear) or "lm" (layernorm
# then linear at every position, targets per position).
SPECS = [
    dict(name="tiny", seq=6, vocab=11, dim=8, heads=2, hidden=16, classes=3,
         causal=False, head="mean", rep="svgd", alpha=0.5, beta=0.0, stepsize=1.0,
         seed=20240611),
    dict(name="tiny_lm", seq=5, vocab=7, dim=8, heads=2, hidden=16, classes=7,
         causal=True, head="lm", rep="spos", alpha=0.5, beta=0.1, stepsize=1.0,
         seed=20240612),
]


def param_shapes(s):
    """Parameter paths (the lowering's naming rules) and shapes, in order."""
    n, d, h = s["name"], s["dim"], s["hidden"]
    p = [
        ("x.embed.table", (s["vocab"], d)),
        ("x.position.table", (s["seq"], d)),
        ("a.layernorm.gain", (d,)),
        ("a.layernorm.bias", (d,)),
        ("a.wq", (d, d)), ("a.bq", (d,)),
        ("a.wk", (d, d)), ("a.bk", (d,)),
        ("a.wv", (d, d)), ("a.bv", (d,)),
        ("a.wo", (d, d)), ("a.bo", (d,)),
        ("x_2.layernorm.gain", (d,)),
        ("x_2.layernorm.bias", (d,)),
        ("x_2.ffn.w1", (d, h)), ("x_2.ffn.b1", (h,)),
        ("x_2.ffn.w2", (h, d)), ("x_2.ffn.b2", (d,)),
    ]
    if s["head"] == "lm":
        p += [("logits.layernorm.gain", (d,)), ("logits.layernorm.bias", (d,))]
    p += [("logits.w", (d, s["classes"])), ("logits.b", (s["classes"],))]
    return [(n + "." + k, shape) for k, shape in p]


def random_params(s, gen):
    """Seeded values with sizes that keep every path of the model busy
    (non-uniform attention, gelu on both sides of 0), rounded to float32."""
    out = {}
    for path, shape in param_shapes(s):
        leaf = path.rsplit(".", 1)[1]
        z = torch.randn(shape, generator=gen)
        if leaf == "table":
            v = 0.5 * z
        elif leaf == "gain":
            v = 1.0 + 0.2 * z
        elif leaf in ("bias", "bq", "bk", "bv", "bo", "b1", "b2", "b"):
            v = 0.1 * z
        else:  # weights [in, out]
            v = z / math.sqrt(shape[0])
        out[path] = v.to(torch.float32).to(torch.float64)
    return out


def random_batch(s, gen):
    tok = torch.randint(0, s["vocab"], (BATCH, s["seq"]), generator=gen)
    if s["head"] == "lm":
        tgt = torch.randint(0, s["classes"], (BATCH, s["seq"]), generator=gen)
    else:
        tgt = torch.randint(0, s["classes"], (BATCH,), generator=gen)
    return tok, tgt


# ---- the model, from language.md section 5 ----

def layernorm(x, gain, bias):
    mu = x.mean(dim=-1, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)  # biased
    return (x - mu) / torch.sqrt(var + 1e-5) * gain + bias


def gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def log_softmax(z):
    m = z.max(dim=-1, keepdim=True).values
    return z - m - torch.log(torch.exp(z - m).sum(dim=-1, keepdim=True))


def attention(x, P, pre, heads, causal):
    B, T, d = x.shape
    q = x @ P[pre + "wq"] + P[pre + "bq"]
    k = x @ P[pre + "wk"] + P[pre + "bk"]
    v = x @ P[pre + "wv"] + P[pre + "bv"]
    hd = q.shape[-1] // heads
    outs = []
    for i in range(heads):  # head i owns columns [i*hd, (i+1)*hd)
        qi, ki, vi = (t[:, :, i * hd:(i + 1) * hd] for t in (q, k, v))
        sc = qi @ ki.transpose(1, 2) / math.sqrt(hd)
        if causal:
            mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
            sc = sc.masked_fill(mask, float("-inf"))
        w = torch.exp(log_softmax(sc))
        outs.append(w @ vi)
    return torch.cat(outs, dim=-1) @ P[pre + "wo"] + P[pre + "bo"]


def forward_functional(s, P, tok, tgt):
    """The same model through torch.nn.functional, to check forward()."""
    F = torch.nn.functional
    n = s["name"] + "."
    d, H = s["dim"], s["heads"]
    x = F.embedding(tok, P[n + "x.embed.table"]) + P[n + "x.position.table"]
    h = F.layer_norm(x, (d,), P[n + "a.layernorm.gain"], P[n + "a.layernorm.bias"], 1e-5)
    B, T, _ = x.shape
    q, k, v = (F.linear(h, P[n + "a.w" + c].t(), P[n + "a.b" + c]).view(B, T, H, -1)
               .transpose(1, 2) for c in "qkv")
    sc = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if s["causal"]:
        sc = sc + torch.full((T, T), float("-inf")).triu(1)
    o = (F.softmax(sc, dim=-1) @ v).transpose(1, 2).reshape(B, T, -1)
    x = x + F.linear(o, P[n + "a.wo"].t(), P[n + "a.bo"])
    h = F.layer_norm(x, (d,), P[n + "x_2.layernorm.gain"], P[n + "x_2.layernorm.bias"], 1e-5)
    h = F.gelu(F.linear(h, P[n + "x_2.ffn.w1"].t(), P[n + "x_2.ffn.b1"]))
    x = x + F.linear(h, P[n + "x_2.ffn.w2"].t(), P[n + "x_2.ffn.b2"])
    if s["head"] == "mean":
        logits = F.linear(x.mean(dim=1), P[n + "logits.w"].t(), P[n + "logits.b"])
        return F.cross_entropy(logits, tgt)
    h = F.layer_norm(x, (d,), P[n + "logits.layernorm.gain"], P[n + "logits.layernorm.bias"],
                     1e-5)
    logits = F.linear(h, P[n + "logits.w"].t(), P[n + "logits.b"])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))


def forward(s, P, tok, tgt):
    n = s["name"] + "."
    x = P[n + "x.embed.table"][tok] + P[n + "x.position.table"]
    a = attention(layernorm(x, P[n + "a.layernorm.gain"], P[n + "a.layernorm.bias"]), P,
                  n + "a.", s["heads"], s["causal"])
    x = x + a
    h = layernorm(x, P[n + "x_2.layernorm.gain"], P[n + "x_2.layernorm.bias"])
    x = x + gelu(h @ P[n + "x_2.ffn.w1"] + P[n + "x_2.ffn.b1"]) @ P[n + "x_2.ffn.w2"] \
        + P[n + "x_2.ffn.b2"]
    if s["head"] == "mean":
        logits = x.mean(dim=1) @ P[n + "logits.w"] + P[n + "logits.b"]
    else:
        h = layernorm(x, P[n + "logits.layernorm.gain"], P[n + "logits.layernorm.bias"])
        logits = h @ P[n + "logits.w"] + P[n + "logits.b"]
    lp = log_softmax(logits)
    nll = -lp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
    return nll.mean(), torch.exp(lp)


# ---- the particle transform, from language.md section 6 ----

def median(vals):
    v = sorted(float(x) for x in vals.reshape(-1))
    m = len(v)
    return v[m // 2] if m % 2 else 0.5 * (v[m // 2 - 1] + v[m // 2])


def transform_set(theta, g, kind, alpha, beta, s):
    """theta, g: [M, D].  Returns G with the spos noise term dropped."""
    M = theta.shape[0]
    D = torch.zeros(M, M)
    for i in range(M):
        for j in range(M):
            D[i, j] = ((theta[i] - theta[j]) ** 2).sum()
    med = median(D)
    h2 = 1.0 if (M == 1 or med <= 1e-12) else 0.5 * med / math.log(M + 1)
    K = torch.exp(-D / (2.0 * h2))
    R = (theta * K.sum(dim=1, keepdim=True) - K @ theta) / h2
    G = s * (K @ g - alpha * R) / M
    if kind == "spos":
        G = G + s * beta * g
    return G


def head_slices(W, heads):
    """Particle i = columns [i*hd, (i+1)*hd) of W, flattened row by row."""
    hd = W.shape[1] // heads
    return torch.stack([W[:, i * hd:(i + 1) * hd].reshape(-1) for i in range(heads)])


def unslice(rows, shape, heads):
    W = torch.zeros(shape)
    hd = shape[1] // heads
    for i in range(heads):
        W[:, i * hd:(i + 1) * hd] = rows[i].reshape(shape[0], hd)
    return W


def adamw(w, g):
    """torch.optim.AdamW's first step from zero moments, written out."""
    t = 1
    w = w * (1.0 - LR * WD)
    m = (1.0 - BETA1) * g
    v = (1.0 - BETA2) * g * g
    mhat = m / (1.0 - BETA1 ** t)
    vhat = v / (1.0 - BETA2 ** t)
    return w - LR * mhat / (torch.sqrt(vhat) + EPS)


def check_adamw_against_torch(P, G):
    """The hand-written step must agree with torch.optim.AdamW itself."""
    ps = [torch.nn.Parameter(P[k].clone()) for k in sorted(P)]
    for p, k in zip(ps, sorted(P)):
        p.grad = G[k].clone()
    opt = torch.optim.AdamW(ps, lr=LR, betas=(BETA1, BETA2), eps=EPS, weight_decay=WD)
    opt.step()
    for p, k in zip(ps, sorted(P)):
        ref = adamw(P[k], G[k])
        assert torch.allclose(p.detach(), ref, rtol=1e-12, atol=1e-14), k


# ---- safetensors ----

def write_safetensors(path, tensors, meta):
    """tensors: list of (name, dtype "F32"|"I32", torch tensor)."""
    header = {"__metadata__": meta}
    blobs = []
    off = 0
    for name, dt, t in tensors:
        if dt == "F32":
            b = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        else:
            b = t.detach().to(torch.int32).contiguous().numpy().astype("<i4").tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def generate(s):
    gen = torch.Generator().manual_seed(s["seed"])
    P = random_params(s, gen)
    tok, tgt = random_batch(s, gen)
    leaves = {k: v.clone().requires_grad_(True) for k, v in P.items()}
    loss, probs = forward(s, leaves, tok, tgt)
    loss.backward()
    grads = {k: v.grad.detach().clone() for k, v in leaves.items()}
    ref = forward_functional(s, P, tok, tgt)
    assert abs(ref.item() - loss.item()) < 1e-12, (ref.item(), loss.item())

    # particle sets: Q, K and V of the one attention layer (group each)
    n = s["name"] + "."
    G = dict(grads)
    for mat in ("a.wq", "a.wk", "a.wv"):
        path = n + mat
        theta = head_slices(P[path], s["heads"])
        g = head_slices(grads[path], s["heads"])
        Gs = transform_set(theta, g, s["rep"], s["alpha"], s["beta"], s["stepsize"])
        G[path] = unslice(Gs, P[path].shape, s["heads"])
    check_adamw_against_torch(P, G)

    tensors = []
    for path, _ in param_shapes(s):
        tensors.append((path, "F32", P[path]))
    tensors.append(("input.tokens", "I32", tok))
    tensors.append(("input.target", "I32", tgt))
    tensors.append(("loss", "F32", loss.detach().reshape(1)))
    tensors.append(("output.probs", "F32", probs.detach()))
    for path, _ in param_shapes(s):
        tensors.append(("grad/" + path, "F32", grads[path]))
    for mat in ("a.wq", "a.wk", "a.wv"):
        tensors.append((s["rep"] + "/" + n + mat, "F32", G[n + mat]))
    for path, _ in param_shapes(s):
        tensors.append(("adamw_step/" + path, "F32", adamw(P[path], G[path])))
    meta = {"format": "rac-parity", "spec": "tests/parity/%s.ra" % s["name"],
            "generator": "tests/gen_golden_parity.py (torch %s, float64)" % torch.__version__,
            "batch": str(BATCH), "repulsion": s["rep"], "alpha": repr(s["alpha"]),
            "beta": repr(s["beta"]), "lr": repr(LR), "betas": "%r %r" % (BETA1, BETA2),
            "eps": repr(EPS), "weight_decay": repr(WD), "seed": str(s["seed"])}
    out = os.path.join(OUT, s["name"] + ".safetensors")
    write_safetensors(out, tensors, meta)
    print("%s: loss %.6f, %d tensors, %d bytes" % (out, loss.item(), len(tensors),
                                                    os.path.getsize(out)))


def main():
    os.makedirs(OUT, exist_ok=True)
    for s in SPECS:
        generate(s)


if __name__ == "__main__":
    main()

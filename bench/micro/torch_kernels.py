"""torch_kernels.py - PyTorch (CPU) timings of the shapes bench_kernels uses.

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 torch_kernels.py 1 2
"""
import sys
import time

import torch
import torch.nn.functional as F


def median_time(fn):
    fn()
    t0 = time.perf_counter()
    fn()
    one = time.perf_counter() - t0
    reps = max(1, int(2e-3 / max(one, 1e-7)) + 1)
    ts = []
    for _ in range(41):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        ts.append((time.perf_counter() - t0) / reps)
    ts.sort()
    return ts[20]


def report(name, sec, flops=0.0):
    if flops:
        print(f"  {name:<34} {sec * 1e6:9.1f} us  {flops / sec * 1e-9:7.1f} GFLOP/s")
    else:
        print(f"  {name:<34} {sec * 1e6:9.1f} us")


def main():
    threads = [int(a) for a in sys.argv[1:]] or [1, 2]
    B, T, d, H, hd, Fd = 32, 64, 128, 8, 16, 512
    BT = B * T
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.rand(*s, generator=g) * 2 - 1
    x, w, w1, w2 = r(B, T, d), r(d, d), r(d, Fd), r(Fd, d)
    h, x2, h2 = r(B, T, Fd), r(BT, d), r(BT, Fd)
    q, k, p = r(B, H, T, hd), r(B, H, T, hd), r(B, H, T, T)
    bias, x4 = r(Fd), r(B, T, H, hd)
    print(f"torch {torch.__version__}, {torch.__config__.parallel_info().splitlines()[0]}")
    with torch.no_grad():
        for th in threads:
            torch.set_num_threads(th)
            print(f"threads {th} (torch)")
            report("matmul x[B,T,128] w[128,128]", median_time(lambda: x @ w), 2.0 * BT * d * d)
            report("matmul x[B,T,128] w[128,512]", median_time(lambda: x @ w1), 2.0 * BT * d * Fd)
            report("matmul h[B,T,512] w[512,128]", median_time(lambda: h @ w2), 2.0 * BT * Fd * d)
            report("dx = dy[B,T,512] w1^T", median_time(lambda: h @ w1.t()), 2.0 * BT * d * Fd)
            report("dw = x^T[128,BT] dy[BT,512]", median_time(lambda: x2.t() @ h2), 2.0 * BT * d * Fd)
            af = 2.0 * B * H * T * T * hd
            report("scores q k^T [B,H,64,16]", median_time(lambda: q @ k.transpose(-1, -2)), af)
            report("context p v [B,H,64,64]x[..,64,16]", median_time(lambda: p @ k), af)
            report("dv = p^T dctx", median_time(lambda: p.transpose(-1, -2) @ q), af)
            report("softmax [B,H,64,64]", median_time(lambda: torch.softmax(p, -1)))
            sm = torch.softmax(p, -1)
            report("softmax_grad", median_time(
                lambda: torch._softmax_backward_data(p, sm, -1, sm.dtype)))
            report("layernorm [B,T,128]", median_time(lambda: F.layer_norm(x, (d,))))
            report("gelu [B,T,512]", median_time(lambda: F.gelu(h)))
            report("add bias [B,T,512]+[512]", median_time(lambda: h + bias))
            report("sum_to [B,T,512]->[512]", median_time(lambda: h.sum((0, 1))))
            report("transpose [B,T,H,16] (0,2,1,3)",
                   median_time(lambda: x4.permute(0, 2, 1, 3).contiguous()))
            report("dropout [B,H,64,64]", median_time(lambda: F.dropout(p, 0.1, True)))


if __name__ == "__main__":
    main()

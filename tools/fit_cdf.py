#!/usr/bin/python3
"""fit_cdf.py - the polynomials of km_cdf_e and km_exp (compiler/opmath.h).

erfc(z) = t e^(-z^2) Q(t), t = 1 / (1 + z/2): Q(t) = erfcx(z) / t is smooth
on t in (0, 1] (Q(0) = 1 / (2 sqrt(pi)), Q(1) = 1).  This fits Q with a
polynomial of degree 10 (least squares on Chebyshev nodes, reweighted
toward the largest relative error), prints its coefficients as floats, and
checks Phi(x) = erfc(-x / sqrt 2) / 2 evaluated as opmath.h does it in
float (fmaf Horner's rule, km_exp) against scipy's ndtr, beside the
formula used before it (Numerical Recipes' erfcc).

With --exp: the degree-6 polynomial of km_exp, fitted to e^f on
[-ln2/2, ln2/2] the same way.

    /usr/bin/python3 tools/fit_cdf.py [--exp]
"""
import sys
import numpy as np
from scipy.special import erfcx, ndtr

DEG = 10
f32 = np.float32


def fit(deg, npts=4000, lo=0.0, hi=1.0, target=None, iters=30):
    """Coefficients (constant first) and relative error of a polynomial
    fitted to target on Chebyshev nodes of [lo, hi] (default: Q(t))."""
    k = np.arange(npts)
    t = lo + (hi - lo) * (0.5 - 0.5 * np.cos(np.pi * (k + 0.5) / npts))
    if target is None:
        q = erfcx(2 * (1 / t - 1)) / t
    else:
        q = target(t)
    w = 1 / q
    V = np.vander(t, deg + 1, increasing=True)
    for _ in range(iters):
        c, *_ = np.linalg.lstsq(V * w[:, None], q * w, rcond=None)
        r = (V @ c - q) / q
        w = w * (1 + 50 * np.abs(r) / np.abs(r).max())
    return c, np.abs(r).max()


def fma(a, b, c):
    return f32(np.float64(a) * np.float64(b) + np.float64(c))


def km_exp(x):
    x = f32(x)
    xc = np.minimum(np.maximum(x, f32(-87.3)), f32(88.3))
    r = fma(xc, f32(1.44269504088896341), f32(12582912.0)) - f32(12582912.0)
    fr = fma(r, f32(-0.693145751953125), xc)
    fr = fma(r, f32(-1.428606765330187045e-06), fr)
    p = f32(0.00138377224)
    for cc in [0.00837482698, 0.0416682102, 0.166664198, 0.499999911, 1.0, 1.0]:
        p = fma(p, fr, f32(cc))
    u = ((r.astype(np.int32) + 127) << 23).astype(np.int32).view(np.float32)
    return np.where(x < f32(-87.3), f32(0), p * u)


def cdf_new(x, c32):
    z = np.abs(x) * f32(0.70710678118654752)
    t = f32(1) / fma(f32(0.5), z, f32(1))
    q = np.full_like(t, c32[-1])
    for cc in c32[-2::-1]:
        q = fma(q, t, cc)
    h = f32(0.5) * (t * km_exp(-(z * z))) * q
    return np.where(x >= 0, f32(1) - h, h)


def cdf_nr(x):
    z = np.abs(x) * f32(0.70710678118654752)
    t = f32(1) / (f32(1) + f32(0.5) * z)
    cs = [1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398,
          1.48851587, -0.82215223, 0.17087277]
    p = f32(cs[-1])
    for cc in cs[-2::-1]:
        p = f32(cc) + t * p
    h = f32(0.5) * t * km_exp(-z * z - f32(1.26551223) + t * p)
    return np.where(x >= 0, f32(1) - h, h)


def main():
    if "--exp" in sys.argv[1:]:
        h = 0.3466  # ln 2 / 2, rounded up
        c, err = fit(6, lo=-h, hi=h, target=np.exp, iters=40)
        print("km_exp: degree 6, relative error %.3g" % err)
        print("coefficients, f^0 first:", ", ".join("%.9g" % v for v in c.astype(np.float32)))
        return
    c, err = fit(DEG)
    c32 = c.astype(np.float32)
    print("degree %d, relative error of Q %.3g" % (DEG, err))
    print("coefficients, t^0 first:", ", ".join("%.9g" % v for v in c32))
    x = np.linspace(-13, 8, 2000001).astype(np.float32)
    ref = ndtr(x.astype(np.float64))
    new, old = cdf_new(x, c32), cdf_nr(x)
    for lo, hi in [(-13, -5), (-5, -1), (-1, 0), (0, 8)]:
        m = (x >= lo) & (x < hi)
        r = ref[m]
        print("Phi on [%g, %g): relative error %.3g, absolute %.3g (before: %.3g, %.3g)" %
              (lo, hi, (np.abs(new[m] - r) / r).max(), np.abs(new[m] - r).max(),
               (np.abs(old[m] - r) / r).max(), np.abs(old[m] - r).max()))


if __name__ == "__main__":
    main()

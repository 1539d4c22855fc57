#!/usr/bin/python3
"""Mean log-likelihood per row of a faiss-gmm model on a vector file, in float64.

  score_model.py MODEL.gmm DATA.u8bin|.fbin [--chunk 8192]

An independent scorer (numpy, float64, no faiss-gmm code): it reads the model
file (magic "FGMM0001" or a checkpoint's "FGMMCKP1", then int32 d, k,
covariance type (0 spherical, 1 diagonal), normalize flag, then float32
weights, means and variances) and prints the mean over rows of
log sum_k w_k N(x | mu_k, diag(var_k)). bench/fast_recall.sh uses it to
score the fast class's and the fp32 class's final models alike.
"""
import argparse, sys
import numpy as np


def read_model(path):
    with open(path, "rb") as f:
        magic = f.read(8)
        if magic not in (b"FGMM0001", b"FGMMCKP1"):
            sys.exit(f"{path}: not a faiss-gmm model (magic {magic!r})")
        d, k, cov, _ = np.fromfile(f, dtype=np.int32, count=4)
        if cov not in (0, 1):
            sys.exit(f"{path}: covariance type {cov} is not spherical (0) or diagonal (1)")
        w = np.fromfile(f, dtype=np.float32, count=k).astype(np.float64)
        mu = np.fromfile(f, dtype=np.float32, count=k * d).astype(np.float64).reshape(k, d)
        nv = k if cov == 0 else k * d
        var = np.fromfile(f, dtype=np.float32, count=nv).astype(np.float64)
        if var.size != nv:
            sys.exit(f"{path}: truncated")
    var = np.repeat(var[:, None], d, axis=1) if cov == 0 else var.reshape(k, d)
    return w, mu, var


def read_vectors(path):
    with open(path, "rb") as f:
        n, d = np.fromfile(f, dtype=np.int32, count=2)
        dt = np.uint8 if path.endswith(".u8bin") else np.float32
        x = np.fromfile(f, dtype=dt, count=int(n) * int(d))
    if x.size != int(n) * int(d):
        sys.exit(f"{path}: truncated")
    return x.reshape(int(n), int(d))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("--chunk", type=int, default=8192)
    a = ap.parse_args()
    w, mu, var = read_model(a.model)
    x = read_vectors(a.data)
    if x.shape[1] != mu.shape[1]:
        sys.exit(f"{a.data} has dimension {x.shape[1]} but the model {mu.shape[1]}")
    prec = 1.0 / var
    # log w_k - 0.5 sum_j [log(2 pi var_kj) + (x_j - mu_kj)^2 / var_kj], expanded:
    const = np.log(w) - 0.5 * (np.log(2 * np.pi * var).sum(1) + (mu * mu * prec).sum(1))
    lin = (mu * prec).T  # d x k
    total = 0.0
    for i in range(0, x.shape[0], a.chunk):
        xc = x[i:i + a.chunk].astype(np.float64)
        l = const + xc @ lin - 0.5 * (xc * xc) @ prec.T
        m = l.max(1, keepdims=True)
        total += float((m[:, 0] + np.log(np.exp(l - m).sum(1))).sum())
    print(f"{total / x.shape[0]:.6f}")


if __name__ == "__main__":
    main()

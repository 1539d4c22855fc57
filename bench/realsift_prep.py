#!/usr/bin/python3
"""Inputs of bench/run_realsift.sh that are made once, not per run.

  realsift_prep.py DATA OUTDIR [--sample 262144] [--tune-queries 2000]

* OUTDIR/sample.u8bin: a fixed random sample of the base (seed 14), the one
  training set of every quantizer (k-means and GMM alike), small enough to
  carry to a GPU machine (xz-packed) where the base (128 MB) is not.
* OUTDIR/tune_query.u8bin + tune_gt.ivecs: the first --tune-queries rows of
  the learn set as queries, with their exact top-100 among the base vectors
  (float64-exact ranks are not needed: float32 BLAS ties are rare and shared
  by every row tuned against). T and lambda are tuned on these, never on the
  10,000 queries the results report.
"""
import argparse, os, sys
import numpy as np


def read_u8bin(path):
    with open(path, "rb") as f:
        n, d = np.fromfile(f, dtype=np.int32, count=2)
        x = np.fromfile(f, dtype=np.uint8, count=int(n) * int(d))
    if x.size != int(n) * int(d):
        sys.exit(f"{path}: truncated ({x.size} of {n}x{d} values)")
    return x.reshape(int(n), int(d))


def write_u8bin(path, x):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        np.array(x.shape, dtype=np.int32).tofile(f)
        np.ascontiguousarray(x, dtype=np.uint8).tofile(f)
    os.replace(tmp, path)


def write_ivecs(path, ids):
    k = ids.shape[1]
    rows = np.hstack([np.full((ids.shape[0], 1), k, np.int32), ids.astype(np.int32)])
    tmp = path + ".tmp"
    rows.tofile(tmp)
    os.replace(tmp, path)


def exact_top(base, queries, k, block=200_000):
    """Top-k by L2 over the base in blocks (never n_base x n_queries at once in float64)."""
    q = queries.astype(np.float32)
    qn = (q * q).sum(1)
    best_d = np.full((len(q), k), np.inf, np.float32)
    best_i = np.zeros((len(q), k), np.int64)
    for b0 in range(0, len(base), block):
        xb = base[b0:b0 + block].astype(np.float32)
        d = qn[:, None] + (xb * xb).sum(1)[None, :] - 2 * q @ xb.T
        cand_d = np.hstack([best_d, d])
        cand_i = np.hstack([best_i, np.arange(b0, b0 + len(xb))[None, :].repeat(len(q), 0)])
        sel = np.argpartition(cand_d, k - 1, axis=1)[:, :k]
        best_d = np.take_along_axis(cand_d, sel, 1)
        best_i = np.take_along_axis(cand_i, sel, 1)
    order = np.argsort(best_d, axis=1, kind="stable")
    return np.take_along_axis(best_i, order, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--sample", type=int, default=262144)
    ap.add_argument("--tune-queries", type=int, default=2000)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    base = read_u8bin(os.path.join(a.data, "realsift1m_base.u8bin"))
    rng = np.random.default_rng(14)
    idx = np.sort(rng.choice(len(base), size=a.sample, replace=False))
    write_u8bin(os.path.join(a.out, "sample.u8bin"), base[idx])
    learn = read_u8bin(os.path.join(a.data, "realsift1m_learn.u8bin"))[: a.tune_queries]
    write_u8bin(os.path.join(a.out, "tune_query.u8bin"), learn)
    write_ivecs(os.path.join(a.out, "tune_gt.ivecs"), exact_top(base, learn, 100))
    print(f"sample {a.sample} rows, {len(learn)} tuning queries -> {a.out}")


if __name__ == "__main__":
    main()

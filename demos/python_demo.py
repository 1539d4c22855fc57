#!/usr/bin/python3
"""k-means vs GMM IVF indexes from Python, at equal entries scanned.

    PYTHONPATH=build/python /usr/bin/python3 demos/python_demo.py [--nlist 1024]

Reads ../shared/data/realsift1m (u8bin base and queries, ivecs ground
truth) when present, else a synthetic mixture with brute-force ground
truth. Prints 10-recall@10 against the mean number of list entries each
query scanned, for: k-means (faiss's), k-means + SOAR spill, spherical GMM,
spherical GMM + SOAR spill.
"""

import argparse
import os
import time

import faiss
import numpy as np

import faiss_gmm

HERE = os.path.dirname(os.path.abspath(__file__))
REAL = os.path.join(HERE, "..", "..", "shared", "data", "realsift1m")


def load_data(args):
    base = os.path.join(REAL, "realsift1m_base.u8bin")
    if os.path.exists(base) and not args.synthetic:
        xb = faiss_gmm.read_vectors(base, args.nb)
        xq = faiss_gmm.read_vectors(os.path.join(REAL, "realsift1m_query.u8bin"), args.nq)
        if args.nb == 0:
            gt = faiss_gmm.read_vectors(os.path.join(REAL, "realsift1m_groundtruth.ivecs"))
            return "realsift1m", xb, xq, gt.view(np.int32)[:, :10].astype(np.int64)
        name = f"realsift1m (first {len(xb)} base vectors)"
    else:
        rng = np.random.default_rng(1)
        centres = rng.standard_normal((200, 32)) * 0.8
        xb = (centres[rng.integers(0, 200, args.nb or 200000)]
              + rng.standard_normal((args.nb or 200000, 32))).astype(np.float32)
        xq = (centres[rng.integers(0, 200, args.nq)]
              + rng.standard_normal((args.nq, 32))).astype(np.float32)
        name = "synthetic mixture (200 x N(c, I) in 32-d)"
    flat = faiss.IndexFlatL2(xb.shape[1])
    flat.add(xb)
    return name, xb, xq, flat.search(xq, 10)[1]


def recall_curve(index, xq, gt, nprobes, search):
    rows = []
    for nprobe in nprobes:
        stats = faiss.cvar.indexIVF_stats
        stats.reset()
        I = search(index, xq, nprobe)
        recall = np.mean([len(set(I[i]) & set(gt[i])) / 10 for i in range(len(xq))])
        rows.append((nprobe, stats.ndis / len(xq), recall))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nlist", type=int, default=1024)
    ap.add_argument("--nb", type=int, default=0, help="base vectors to use (0: all)")
    ap.add_argument("--nq", type=int, default=2000)
    ap.add_argument("--synthetic", action="store_true")
    args = ap.parse_args()
    name, xb, xq, gt = load_data(args)
    d = xb.shape[1]
    print(f"{name}: {len(xb)} base, {len(xq)} queries, d={d}, IVF{args.nlist},Flat")
    desc = f"IVF{args.nlist},Flat"
    plain = lambda idx, q, p: faiss_gmm.search_mixture(idx, q, 10, nprobe=p, order="distance",
                                                       max_copies=1)[1]
    spilled = lambda idx, q, p: faiss_gmm.search_mixture(idx, q, 10, nprobe=p,
                                                         order="distance", max_copies=2)[1]
    results = {}
    for trainer in ("kmeans", "gmm"):
        t0 = time.time()
        index = faiss_gmm.index_factory(d, desc, xb, trainer=trainer, max_iter=20)
        t_train = time.time() - t0
        soar = faiss.deserialize_index(faiss.serialize_index(index))
        index.add(xb)
        faiss_gmm.add_multi_assign(soar, xb, rule="soar", lambda_=1.0)
        print(f"  {trainer}: trained in {t_train:.1f} s")
        nprobes = [1, 2, 4, 8, 16, 32, 64]
        results[trainer] = recall_curve(index, xq, gt, nprobes, plain)
        results[trainer + "+soar"] = recall_curve(soar, xq, gt, nprobes, spilled)
    print(f"\n{'method':<12} {'nprobe':>6} {'scanned':>10} {'R10@10':>7}")
    for method, rows in results.items():
        for nprobe, scanned, recall in rows:
            print(f"{method:<12} {nprobe:>6} {scanned:>10.0f} {recall:>7.3f}")


if __name__ == "__main__":
    main()

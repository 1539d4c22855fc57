#!/usr/bin/python3
"""Summaries for bench/run_realsift.sh (its eval logs in, text out).

  realsift_summary.py tune DIR
      prints "T lambda_gmm lambda_kmeans": for each rule the candidate with
      the fewest entries scanned (geometric mean of the counts at
      10-recall@10 = 0.90 and 0.95) on the tuning queries.
  realsift_summary.py report WORK ELAPSED QUERIES T LG LK TAU
      the markdown of bench/ivf_results/realsift1m.md.
  realsift_summary.py csv WORK
      every measured point (row, probing, seed, nprobe, recall, scanned, QPS,
      entries per vector): bench/ivf_results/realsift1m.csv.
  realsift_summary.py precision WORK MODELS QUERIES
      bench/fast_recall.sh's table: 10-recall@10 per nprobe of the fast
      class's models against fp32's, beside the spread between seeds.
  realsift_summary.py plot WORK OUTDIR
      realsift1m-NLIST.dat/.gp (gnuplot: recall against entries scanned, the
      distance-probed rows, mean over seeds) for each nlist.
"""
import glob, math, os, re, statistics, sys

TARGETS = (0.90, 0.95)


def curve(path, with_nprobe=False):
    """(scanned per query, R10@10, QPS[, nprobe]) per nprobe row of an eval log."""
    pts = []
    for line in open(path):
        f = line.split()
        if len(f) == 7 and f[0].isdigit():
            pt = (float(f[4]), float(f[2]), float(f[6]))
            pts.append(pt + (int(f[0]),) if with_nprobe else pt)
    return pts


def per_vector(path):
    m = re.search(r"([0-9.]+) per vector", open(path).read())
    return float(m.group(1)) if m else 1.0


def at(pts, target):
    """Entries scanned and QPS where R10@10 reaches target (log-linear), or (None, None)."""
    for (s0, r0, q0), (s1, r1, q1) in zip(pts, pts[1:]):
        if r0 < target <= r1:
            t = (target - r0) / (r1 - r0)
            return math.exp(math.log(s0) + t * (math.log(s1) - math.log(s0))), q0 + t * (q1 - q0)
    return None, None


def cell(pts_list, t):
    """Mean entries scanned at recall t over seeds; '> grid' where the largest nprobe stays
    below t, '< grid' where the smallest is already above it."""
    vals = [at(c, t)[0] for c in pts_list]
    vals = [v for v in vals if v]
    if vals:
        return f"{statistics.mean(vals):.0f}"
    if all(c and c[0][1] >= t for c in pts_list):
        return "< grid"
    return "> grid"


def runs(directory):
    """{(name, probe): {seed: (curve, entries per vector)}} from name.probe.seed.eval files."""
    out = {}
    for e in sorted(glob.glob(os.path.join(directory, "*.eval"))):
        name, probe, seed = os.path.basename(e)[:-5].rsplit(".", 2)
        out.setdefault((name, probe), {})[seed] = (curve(e), per_vector(e))
    return out


def score(pts):
    vals = [at(pts, t)[0] for t in TARGETS]
    return math.sqrt(vals[0] * vals[1]) if all(vals) else float("inf")


def tune(directory):
    r = runs(directory)
    best = {}
    for (name, _), seeds in r.items():
        rule, value = name.rsplit("-", 1)
        sc = score(next(iter(seeds.values()))[0])
        if rule not in best or sc < best[rule][0]:
            best[rule] = (sc, value[1:])
    print(best["gmm+tempered"][1], best["gmm+soar"][1], best["kmeans+soar"][1])


def fmt_ratio(v):
    if not v:
        return "-"
    m = statistics.mean(v)
    return f"{m:.3f} ({min(v):.3f}-{max(v):.3f})" if len(v) > 1 else f"{m:.3f}"


def ratios(ref, seeds, t):
    """ref's entries over this row's at recall t, per seed both have."""
    out = []
    for s, (c, _) in seeds.items():
        mine = at(c, t)[0]
        theirs = at(ref[s][0], t)[0] if s in ref else None
        if mine and theirs:
            out.append(theirs / mine)
    return out


def nlist_table(directory, nlist):
    r = runs(directory)
    km = r.get(("kmeans", "distance"), {})
    kms = r.get(("kmeans+soar", "distance"), {})
    print(f"\n### IVF{nlist},Flat\n")
    print("| quantizer + spill | probing | entries / vector | scanned @0.90 | vs k-means @0.90 "
          "| vs k-means+SOAR @0.90 | scanned @0.95 | vs k-means @0.95 | vs k-means+SOAR @0.95 "
          "| QPS @0.90 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    order = lambda kv: (not kv[0][0].startswith("kmeans"), kv[0][1] != "distance", kv[0][0])
    best = None
    for (name, probe), seeds in sorted(r.items(), key=order):
        cells = []
        for t in TARGETS:
            cells.append(cell([c for c, _ in seeds.values()], t))
            cells.append(fmt_ratio(ratios(km, seeds, t)))
            cells.append(fmt_ratio(ratios(kms, seeds, t)) if name.startswith("gmm") else "")
        q = [v for v in (at(c, TARGETS[0])[1] for c, _ in seeds.values()) if v]
        epv = statistics.mean(e for _, e in seeds.values())
        qps = f"{statistics.mean(q):.0f}" if q else "-"
        print(f"| {name} | {probe} | {epv:.3f} | " + " | ".join(cells) + f" | {qps} |")
        if name.startswith("gmm") and epv <= 2.0:
            rk = [ratios(km, seeds, t) for t in TARGETS]
            rs = [ratios(kms, seeds, t) for t in TARGETS]
            if all(rk) and all(rs):
                key = min(statistics.mean(v) for v in rk)
                if best is None or key > best[0]:
                    best = (key, name, probe, rk, rs)
    if best:
        _, name, probe, rk, rs = best
        print(f"\nBest GMM row at IVF{nlist} ({name}, {probe} probing): "
              f"{fmt_ratio(rk[0])} / {fmt_ratio(rk[1])} x fewer entries than k-means at "
              f"0.90 / 0.95 (goal 1.5), {fmt_ratio(rs[0])} / {fmt_ratio(rs[1])} x fewer than "
              "SOAR on k-means (goal 1.1).")
    single = r.get(("gmm-sphe", "distance"))
    if single and km:
        print(f"Plain single-assignment GMM (spherical) vs k-means: "
              f"{fmt_ratio(ratios(km, single, 0.90))} / {fmt_ratio(ratios(km, single, 0.95))} "
              "(goal: >= 1, a tie).")


def tune_table(directory):
    r = runs(directory)
    print("| rule | value | scanned @0.90 | scanned @0.95 | entries / vector |")
    print("|---|---|---|---|---|")
    for (name, _), seeds in sorted(r.items()):
        rule, value = name.rsplit("-", 1)
        c, epv = next(iter(seeds.values()))
        a, b = (at(c, t)[0] for t in TARGETS)
        f = lambda v: f"{v:.0f}" if v else "-"
        print(f"| {rule} | {value[1:]} | {f(a)} | {f(b)} | {epv:.3f} |")


def report(work, elapsed, queries, T, lg, lk, tau):
    print("# realsift1m: k-means and GMM IVF, single assignment and spill rules (issue 14)\n")
    print(f"Generated by `bench/run_realsift.sh` on this machine's CPU (2 cores) from GMM "
          f"models fitted on an H200 by `bench/device_realsift_models.sh` (or here when absent); "
          f"the last invocation took {int(elapsed) // 60} min (stages already done in WORK are "
          f"not counted). 1,000,000 base vectors, the first {queries} of the 10,000 queries, "
          "exact top-100 ground truth. Every quantizer is trained on one fixed sample of "
          "262,144 base rows (`bench/realsift_prep.py`, seed 14): FAISS's k-means with 30 "
          "iterations, the GMM with 10 k-means + 20 EM iterations (fp32). At most 2 entries "
          "per vector. \"vs X\": X's entries scanned at that 10-recall@10 over this row's, per "
          "seed (> 1: this row scans fewer), mean and range over the seeds. QPS: 2 threads, "
          "through `search_mixture` for every row but plain k-means (FAISS's own search), "
          "with other work on the machine at times: read it as indicative.\n")
    print(f"Spill settings: resp and tempered need responsibility >= tau = {tau}; tuned on "
          "2,000 learn vectors as queries (their exact top-100 in the base), IVF1024 seed 1, "
          f"never on the reported queries: T = {T}, SOAR lambda = {lg} on GMM means, "
          f"lambda = {lk} on k-means centroids.\n")
    print("Rows: `kmeans` FAISS k-means IVF; `gmm-sphe` / `gmm-diag` spherical / diagonal "
          "GMM, single assignment to the nearest mean; `+soar`, `+tempered`, `+resp` the spill "
          "rules; `+probable` single assignment to the most probable component. Probing: "
          "`distance` (FAISS's order) or `posterior` (log pi + log N(q)).\n")
    print("## Tuning (learn queries)\n")
    tune_table(os.path.join(work, "tune"))
    print("\n## Results (reported queries)")
    for d in nlist_dirs(work):
        nlist_table(d, os.path.basename(d)[5:])
        print(f"\n![IVF{os.path.basename(d)[5:]}](realsift1m-{os.path.basename(d)[5:]}.svg)")


def nlist_dirs(work):
    return sorted(glob.glob(os.path.join(work, "nlist*")), key=lambda p: int(os.path.basename(p)[5:]))


def csv(work):
    print("nlist,row,probing,seed,nprobe,recall_10_10,scanned_per_query,qps,entries_per_vector")
    for d in nlist_dirs(work):
        for e in sorted(glob.glob(os.path.join(d, "*.eval"))):
            name, probe, seed = os.path.basename(e)[:-5].rsplit(".", 2)
            epv = per_vector(e)
            for sc, r, q, npb in curve(e, with_nprobe=True):
                print(f"{os.path.basename(d)[5:]},{name},{probe},{seed},{npb},{r:.4f},{sc:.1f},"
                      f"{q:.0f},{epv:.3f}")


def final_ll(model_log):
    """The last 'log-likelihood' figure of a faiss-gmm train log, or None."""
    if not os.path.exists(model_log):
        return None
    vals = re.findall(r"log-likelihood[^-0-9]*(-?[0-9.]+(?:e[-+]?[0-9]+)?)", open(model_log).read())
    return float(vals[-1]) if vals else None


def scored(path):
    """The float64 log-likelihood bench/score_model.py wrote, or None."""
    return float(open(path).read()) if os.path.exists(path) else None


def precision(work, models, queries):
    print("# realsift1m: IVF from fast-class GMM models against fp32 (issue 16)\n")
    print("Generated by `bench/fast_recall.sh`: GMM models fitted on an H200 "
          "(`bench/device_realsift_models.sh`, PRECISIONS=\"fp32 fast\") on the fixed "
          "262,144-row sample, 10 k-means + 20 EM iterations from the same seed and initial "
          "rows (the GPU k-means runs in each precision's class too, so what EM starts from "
          "may already differ: this compares what a user of each gets); IVF<nlist>,Flat over "
          "the 1,000,000 "
          f"base vectors, single assignment, distance probing, the first {queries} queries, "
          "exact ground truth. `fast - fp32`: difference of 10-recall@10 at the same nprobe; "
          "`seed 1 - seed 2`: the same difference between the fp32 models of the two seeds "
          "(the seed noise the issue compares with).\n")
    for d in nlist_dirs(work):
        nlist = os.path.basename(d)[5:]
        def seeds_of(name):
            out = {}
            for e in glob.glob(os.path.join(d, f"{name}.distance.*.eval")):
                out[e.rsplit(".", 2)[1]] = curve(e, with_nprobe=True)
            return out
        for cov in ("sphe", "diag"):
            fp, fa = seeds_of(f"gmm-{cov}-fp32"), seeds_of(f"gmm-{cov}-fast")
            if not fp or not fa:
                continue
            full = "spherical" if cov == "sphe" else "diagonal"
            print(f"\n## IVF{nlist},Flat, {full}\n")
            lls = []
            for s in sorted(fp):
                a = final_ll(os.path.join(models, f"gmm-{full}-{nlist}-{s}.log"))
                b = final_ll(os.path.join(models, f"gmm-{full}-{nlist}-{s}-fast.log"))
                fa64, fb64 = (scored(os.path.join(work, f"gmm-{full}-{nlist}-{s}{x}.ll"))
                              for x in ("", "-fast"))
                if None not in (a, b, fa64, fb64):
                    lls.append(f"| {s} | {fa64:.4f} | {fb64:.4f} | {fb64 - fa64:+.4f} | "
                               f"{a:.4f} | {b:.4f} | {b - a:+.4f} |")
            if lls:
                print("Mean log-likelihood per row of the final models on the training sample: "
                      "scored in float64 by `bench/score_model.py` (the yardstick), and as each "
                      "run's own last E-step reported it (the fast class's includes its log Z "
                      "error).\n")
                print("| seed | fp32, float64 | fast, float64 | fast - fp32 | fp32, own | "
                      "fast, own | fast - fp32 |")
                print("|---|---|---|---|---|---|---|")
                print("\n".join(lls) + "\n")
            seeds = sorted(set(fp) & set(fa))
            head = "| nprobe | " + " | ".join(f"fp32 s{s} | fast s{s} | fast - fp32 s{s}" for s in seeds)
            print(head + " | seed 1 - seed 2 (fp32) |")
            print("|---" * (1 + 3 * len(seeds) + 1) + "|")
            worst = {"prec": 0.0, "seed": 0.0}
            npb = [p[3] for p in fp[seeds[0]]]
            for i, nprobe in enumerate(npb):
                cells = []
                for s in seeds:
                    a, b = fp[s][i][1], fa[s][i][1]
                    worst["prec"] = max(worst["prec"], abs(b - a))
                    cells += [f"{a:.4f}", f"{b:.4f}", f"{b - a:+.4f}"]
                sd = ""
                if len(seeds) >= 2:
                    v = fp[seeds[0]][i][1] - fp[seeds[1]][i][1]
                    worst["seed"] = max(worst["seed"], abs(v))
                    sd = f"{v:+.4f}"
                print(f"| {nprobe} | " + " | ".join(cells) + f" | {sd} |")
            print(f"\nLargest |fast - fp32|: {worst['prec']:.4f}; largest |seed 1 - seed 2|: "
                  f"{worst['seed']:.4f}.")


PLOTTED = ("kmeans", "kmeans+soar", "gmm-sphe", "gmm-sphe+probable", "gmm-sphe+soar",
           "gmm-sphe+tempered", "gmm-diag", "gmm-diag+soar")


def plot(work, outdir):
    for d in nlist_dirs(work):
        nlist = os.path.basename(d)[5:]
        r = runs(d)
        stem = f"realsift1m-{nlist}"
        titles = []
        with open(os.path.join(outdir, stem + ".dat"), "w") as f:
            for name in PLOTTED:
                seeds = r.get((name, "distance"))
                if not seeds:
                    continue
                # Seeds share the nprobe grid: average point by point.
                cs = [c for c, _ in seeds.values()]
                f.write(f"# {name}\n")
                for pts in zip(*cs):
                    f.write(f"{statistics.mean(p[0] for p in pts):.1f} "
                            f"{statistics.mean(p[1] for p in pts):.4f}\n")
                f.write("\n\n")
                titles.append(name)
        with open(os.path.join(outdir, stem + ".gp"), "w") as g:
            g.write("set terminal svg size 900,600 dynamic font 'sans,11'\n"
                    f"set output '{stem}.svg'\n"
                    f"set title 'realsift1m, IVF{nlist},Flat: distance probing, mean of the seeds' "
                    "noenhanced\n"
                    "set logscale x\nset xlabel 'entries scanned per query'\n"
                    "set ylabel '10-recall@10' noenhanced\nset yrange [0.8:1]\n"
                    "set key bottom right noenhanced\nset grid\nplot " +
                    ", \\\n  ".join(f"'{stem}.dat' index {i} with linespoints title '{t}'"
                                     for i, t in enumerate(titles)) + "\n")


if __name__ == "__main__":
    if sys.argv[1] == "tune":
        tune(sys.argv[2])
    elif sys.argv[1] == "precision":
        precision(sys.argv[2], sys.argv[3], sys.argv[4])
    elif sys.argv[1] == "csv":
        csv(sys.argv[2])
    elif sys.argv[1] == "plot":
        plot(sys.argv[2], sys.argv[3])
    else:
        report(*sys.argv[2:9])

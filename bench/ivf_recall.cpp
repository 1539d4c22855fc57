/**
 * The IVF recall benchmark (issue 4): k-means IVF against GMM IVF
 * (spherical, diagonal) x {single, multi-assignment} x {distance, posterior,
 * adaptive probing} on one data set, over several seeds.
 *
 * τ, m (multi-assignment) and p (adaptive mass) are chosen on held-out base
 * vectors used as queries, never on the real queries. Writes, for the data
 * set: every operating point (CSV), the mean curves (gnuplot data and
 * script) and a markdown section (tables at equal recall and equal cost);
 * bench/run_ivf_bench.sh runs it over every set and assembles
 * bench/IVF_RESULTS.md.
 */
#include <faiss/IVFlib.h>
#include <faiss/IndexIVF.h>
#include <faiss/clone_index.h>
#include <faiss/index_factory.h>
#include <faiss_gmm/IVFEvaluation.h>
#include <faiss_gmm/IVFMixture.h>
#include <faiss_gmm/IndexIVFTraining.h>
#include <faiss_gmm/SyntheticData.h>
#include <faiss_gmm/VectorIO.h>
#include <faiss_gmm/utils/FileUtils.h>
#include <faiss_gmm/utils/Utils.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>

using namespace faiss_gmm;

namespace {

struct DataSet {
    std::string name, description;
    int d = 0;
    idx_t nb = 0, nq = 0;
    std::vector<float> xb, xq;
    std::vector<int32_t> gt;
    int gt_k = 0;
};

/// One curve: a method (training x assignment x probing) at one seed.
struct Curve {
    std::string method;
    int seed;
    double entries_per_vector = 1, train_s = 0;
    std::vector<RecallPoint> points;
};

/// Scanned entries at which a curve reaches 10@10 recall `target`: as
/// faiss_gmm::scanned_at_recall, but a curve already above target at its
/// first point gives that point (the summaries pick a level k-means spans)
double scanned_to_reach(const std::vector<RecallPoint>& pts, double target) {
    if (!pts.empty() && pts[0].recall_10_10 >= target) return pts[0].scanned_per_query;
    return scanned_at_recall(pts, target);
}

/// 10@10 recall of a curve at `scanned` entries per query (interpolated as
/// above; NaN outside the curve's range).
double recall_at_scanned(const std::vector<RecallPoint>& pts, double scanned) {
    for (size_t i = 1; i < pts.size(); i++) {
        const auto &a = pts[i - 1], &b = pts[i];
        if (scanned < a.scanned_per_query || scanned > b.scanned_per_query) continue;
        if (b.scanned_per_query == a.scanned_per_query) return std::max(a.recall_10_10, b.recall_10_10);
        const double t = (std::log(scanned) - std::log(a.scanned_per_query)) /
                         (std::log(b.scanned_per_query) - std::log(a.scanned_per_query));
        return a.recall_10_10 + t * (b.recall_10_10 - a.recall_10_10);
    }
    if (!pts.empty() && std::abs(scanned - pts[0].scanned_per_query) < 1e-9)
        return pts[0].recall_10_10;
    return NAN;
}

/// Entries scanned to reach recall 0.9, for tuning: lower is better;
/// never reaching 0.9 ranks last.
double tuning_cost(const std::vector<RecallPoint>& pts) {
    const double s = scanned_to_reach(pts, 0.9);
    return std::isnan(s) ? INFINITY : s;
}

std::unique_ptr<faiss::Index> kmeans_ivf(const DataSet& ds, int nlist, int niter, int seed) {
    std::unique_ptr<faiss::Index> index(
        faiss::index_factory(ds.d, ("IVF" + std::to_string(nlist) + ",Flat").c_str()));
    auto* ivf = faiss::ivflib::extract_index_ivf(index.get());
    ivf->cp.niter = niter;
    ivf->cp.seed = seed;
    index->train(ds.nb, ds.xb.data());
    return index;
}

/// GMM IVF as train_index_gmm() builds it, with the IVF's own clustering
/// parameters set as for k-means: gp.niter EM iterations and gp.seed
/// (train_index_gmm takes both from the IVF's `cp`, as FAISS does, not from
/// gp; left at FAISS's defaults they would be 10 iterations and one seed
/// for every run).
std::unique_ptr<faiss::Index> gmm_ivf(int d, int nlist, idx_t n, const float* x,
                                      const GaussianMixtureParameters& gp,
                                      GaussianMixture* model) {
    std::unique_ptr<faiss::Index> index(
        faiss::index_factory(d, ("IVF" + std::to_string(nlist) + ",Flat").c_str()));
    auto* ivf = faiss::ivflib::extract_index_ivf(index.get());
    ivf->cp.niter = gp.niter;
    ivf->cp.seed = gp.seed;
    train_index_gmm(index.get(), n, x, gp, model);
    return index;
}

std::vector<float> sample_rows(const std::vector<float>& x, int d, const std::vector<idx_t>& rows) {
    std::vector<float> out(rows.size() * size_t(d));
    for (size_t i = 0; i < rows.size(); i++)
        std::copy(x.begin() + rows[i] * d, x.begin() + (rows[i] + 1) * d, out.begin() + i * d);
    return out;
}

struct Tuned {
    MultiAssignParameters ma;
    double mass = 0.9;
    std::string log;
};

/// τ, m and p on held-out base vectors: hold out `nt` base rows as queries,
/// train GMM IVF on the rest (seed 0), brute-force their ground truth, pick
/// the (τ, m) whose multi-assigned index needs the fewest scanned entries for
/// 0.9 10@10 with posterior probing, then p the same way with adaptive probing.
Tuned tune(const DataSet& ds, int nlist, const GaussianMixtureParameters& gp,
           const std::vector<int>& nprobes, int nt) {
    std::mt19937_64 rng(777);
    std::vector<idx_t> perm(ds.nb);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    std::vector<idx_t> qrows(perm.begin(), perm.begin() + nt), brows(perm.begin() + nt, perm.end());
    std::sort(brows.begin(), brows.end());
    const auto tq = sample_rows(ds.xb, ds.d, qrows), tb = sample_rows(ds.xb, ds.d, brows);
    const idx_t nb = idx_t(brows.size());
    const auto gt = brute_force_ground_truth(ds.d, nb, tb.data(), nt, tq.data(), 10);
    GaussianMixture model;
    std::unique_ptr<faiss::Index> trained = gmm_ivf(ds.d, nlist, nb, tb.data(), gp, &model);

    Tuned best;
    std::ostringstream log;
    double best_cost = INFINITY;
    MixtureSearchParameters sp;
    sp.order = ProbeOrder::Posterior;
    {
        std::unique_ptr<faiss::Index> single(faiss::clone_index(trained.get()));
        single->add(nb, tb.data());
        sp.max_copies = 1;
        const double c = tuning_cost(evaluate_ivf_mixture(single.get(), model, nt, tq.data(),
                                                          gt.data(), 10, nprobes, sp));
        log << "single: " << c;
    }
    // Candidate lists once (nearest mean, top 3 by responsibility); each
    // (tau, m) only selects from them (select_lists: the rule of assign_multi).
    constexpr int kMaxM = 3;
    std::vector<idx_t> nearest(nb), top(size_t(nb) * kMaxM), lists(size_t(nb) * kMaxM);
    std::vector<float> ndis(nb), resp(size_t(nb) * kMaxM);
    faiss::ivflib::extract_index_ivf(trained.get())
        ->quantizer->search(nb, tb.data(), 1, ndis.data(), nearest.data());
    model.top_components(nb, tb.data(), kMaxM, top.data(), resp.data());
    std::unique_ptr<faiss::Index> best_index;
    for (int m : {2, 3}) {
        for (float tau : {0.05f, 0.1f, 0.2f, 0.3f, 0.4f}) {
            std::unique_ptr<faiss::Index> ix(faiss::clone_index(trained.get()));
            MultiAssignParameters ma;
            ma.tau = tau;
            ma.max_lists = m;
            select_lists(nb, nearest.data(), kMaxM, top.data(), resp.data(), ma, lists.data());
            const auto st = add_preassigned(ix.get(), nb, tb.data(), nullptr, m, lists.data());
            sp.max_copies = m;
            const double c = tuning_cost(evaluate_ivf_mixture(ix.get(), model, nt, tq.data(),
                                                              gt.data(), 10, nprobes, sp));
            char buf[96];
            snprintf(buf, sizeof buf, "; m=%d tau=%.2f: %.0f (x%.2f entries)", m, tau, c,
                     st.entries_per_vector());
            log << buf;
            if (c < best_cost) best_cost = c, best.ma = ma, best_index = std::move(ix);
        }
    }
    if (!best_index) {  // no (tau, m) reached 0.9: the defaults
        best_index.reset(faiss::clone_index(trained.get()));
        add_multi_assign(best_index.get(), model, nb, tb.data(), best.ma);
    }
    faiss::Index* ix = best_index.get();
    sp.max_copies = best.ma.max_lists;
    best_cost = INFINITY;
    for (double mass : {0.9, 0.99, 0.999, 0.9999, 0.99999, 0.999999}) {
        sp.mass = mass;
        const double c = tuning_cost(
            evaluate_ivf_mixture(ix, model, nt, tq.data(), gt.data(), 10, nprobes, sp));
        char buf[64];
        snprintf(buf, sizeof buf, "; p=%g: %.0f", mass, c);
        log << buf;
        if (c < best_cost) best_cost = c, best.mass = mass;
    }
    best.log = log.str();
    return best;
}

DataSet load_real(const std::string& root, const std::string& name, idx_t max_q) {
    DataSet ds;
    ds.name = name;
    const std::string base = root + "/" + name + "/" + name;
    ds.xb = read_vectors(base + "_base.fvecs", &ds.nb, &ds.d);
    int dq;
    ds.xq = read_vectors(base + "_query.fvecs", &ds.nq, &dq, max_q);
    FAISS_GMM_CHECK(dq == ds.d, name + ": queries and base differ in dimension");
    const std::string gt_path = base + "_groundtruth.ivecs";
    std::string gt_from = "ground truth from the set";
    if (FILE* f = fopen(gt_path.c_str(), "rb")) {
        fclose(f);
        idx_t ng;
        ds.gt = read_ivectors(gt_path, &ng, &ds.gt_k);
        FAISS_GMM_CHECK(ng >= ds.nq, name + ": fewer ground-truth rows than queries");
        ds.gt.resize(size_t(ds.nq) * ds.gt_k);
    } else {  // none shipped: exact search, as deep as the base allows
        ds.gt_k = int(std::min<idx_t>(100, ds.nb));
        ds.gt = brute_force_ground_truth(ds.d, ds.nb, ds.xb.data(), ds.nq, ds.xq.data(), ds.gt_k);
        gt_from = "brute-force ground truth (the set ships none)";
    }
    ds.description = std::to_string(ds.nb) + " x " + std::to_string(ds.d) + ", " +
                     std::to_string(ds.nq) + " queries, " + gt_from;
    return ds;
}

DataSet make_synthetic(const std::string& kind, idx_t n, int d, idx_t nq) {
    SyntheticMixtureParameters sp;
    sp.d = d;
    sp.n_clusters = 1000;
    sp.seed = 2024;
    std::string what;
    if (kind == "skewed") {  // unequal sizes, moderate spreads (the demo's generator)
        sp.size_skew = 1.0;
        sp.spread_min = 0.15;
        sp.spread_max = 0.6;
        what = "1000 isotropic Gaussians, weights ~ 1/rank, std devs 0.15..0.6";
    } else if (kind == "spreads") {  // equal sizes, very unequal spreads
        sp.size_skew = 0.0;
        sp.spread_min = 0.05;
        sp.spread_max = 1.0;
        what = "1000 isotropic Gaussians, equal weights, std devs 0.05..1.0";
    } else if (kind == "aniso") {
        sp.size_skew = 0.5;
        sp.spread_min = 0.1;
        sp.spread_max = 0.5;
        sp.anisotropic = true;
        what = "1000 anisotropic Gaussians (per-dimension std devs x 1/4..4), weights ~ "
               "1/rank^0.5, std devs 0.1..0.5";
    } else {
        throw Error("unknown synthetic kind '" + kind + "' (skewed, spreads, aniso)");
    }
    SyntheticMixture mix(sp);
    DataSet ds;
    ds.name = "synthetic-" + kind;
    ds.d = d;
    ds.nb = n;
    ds.nq = nq;
    ds.xb.resize(size_t(n) * d);
    ds.xq.resize(size_t(nq) * d);
    mix.sample(n, 1, ds.xb.data());
    mix.sample(nq, 2, ds.xq.data());
    ds.gt_k = 100;
    ds.gt = brute_force_ground_truth(d, n, ds.xb.data(), nq, ds.xq.data(), ds.gt_k);
    ds.description = std::to_string(n) + " x " + std::to_string(d) + " drawn from " + what +
                     "; " + std::to_string(nq) + " queries from the same mixture, brute-force "
                     "ground truth";
    return ds;
}

std::string fmt(const char* f, double v) {
    if (std::isnan(v)) return "n/a";
    char buf[64];
    snprintf(buf, sizeof buf, f, v);
    return buf;
}

/// The report of one data set from its curves: mean curves and gnuplot
/// script, the markdown section (after `header`) and its summary row.
void write_report(const std::string& stem, const std::string& name, const std::string& header,
                  int nlist, int nseeds, const std::vector<int>& nprobes,
                  const std::vector<Curve>& curves) {
    // Methods in first-seen order.
    std::vector<std::string> methods;
    for (const auto& c : curves)
        if (std::find(methods.begin(), methods.end(), c.method) == methods.end())
            methods.push_back(c.method);
    auto of = [&](const std::string& m) {
        std::vector<const Curve*> v;
        for (const auto& c : curves)
            if (c.method == m) v.push_back(&c);
        return v;
    };
    auto kmeans_of = [&](int seed) -> const Curve* {
        for (const auto& c : curves)
            if (c.method == "k-means" && c.seed == seed) return &c;
        return nullptr;
    };

    // Mean curves for gnuplot: one block per method.
    write_file_atomic(stem + ".dat", [&](FILE* f) {
        for (const auto& m : methods) {
            const auto cs = of(m);
            fprintf(f, "# %s\n", m.c_str());
            for (size_t i = 0; i < cs[0]->points.size(); i++) {
                double s = 0, r = 0;
                for (const auto* c : cs) s += c->points[i].scanned_per_query, r += c->points[i].recall_10_10;
                fprintf(f, "%.2f %.4f\n", s / cs.size(), r / cs.size());
            }
            fprintf(f, "\n\n");
        }
    });
    write_file_atomic(stem + ".gp", [&](FILE* f) {
        fprintf(f,
                "set terminal svg size 900,600 dynamic font 'sans,11'\n"
                "set output '%s.svg'\n"
                "set title '%s: IVF%d,Flat, 10-recall@10 vs list entries scanned per query "
                "(mean of %d seeds)' noenhanced\n"
                "set logscale x\nset xlabel 'entries scanned per query'\n"
                "set ylabel '10-recall@10' noenhanced\nset key bottom right noenhanced\nset grid\n"
                "plot ",
                name.c_str(), name.c_str(), nlist, nseeds);
        for (size_t i = 0; i < methods.size(); i++)
            fprintf(f, "%s'%s.dat' index %zu with linespoints title '%s'", i ? ", \\\n  " : "",
                    name.c_str(), i, methods[i].c_str());
        fprintf(f, "\n");
    });

    std::ostringstream md;
    md << header;
    md << "Entries scanned per query to reach a 10-recall@10, relative to k-means (mean of "
          "the per-seed ratios, [min, max]; < 1 is cheaper), and storage (list entries per "
          "vector):\n\n| method | entries/vector | @0.8 | @0.9 | @0.95 | @0.99 | verdict |\n|---|---|---|---|---|---|---|\n";
    const double levels[4] = {0.8, 0.9, 0.95, 0.99};
    bool any_first = false;
    for (const auto& m : methods) {
        const auto cs = of(m);
        md << "| " << m << " | " << fmt("%.2f", cs[0]->entries_per_vector);
        int wins = 0, losses = 0, known = 0;
        for (double lv : levels) {
            std::vector<double> ratios;
            bool first = false;  // reached at nprobe 1 by either curve of some seed
            for (const auto* c : cs) {
                const Curve* k = kmeans_of(c->seed);
                const double a = scanned_to_reach(c->points, lv),
                             b = scanned_to_reach(k->points, lv);
                if (!std::isnan(a) && !std::isnan(b)) ratios.push_back(a / b);
                first |= c->points[0].recall_10_10 >= lv || k->points[0].recall_10_10 >= lv;
            }
            if (ratios.size() < cs.size() || ratios.empty()) {
                md << " | n/a";
                continue;
            }
            const double mean = std::accumulate(ratios.begin(), ratios.end(), 0.0) / ratios.size();
            const double lo = *std::min_element(ratios.begin(), ratios.end()),
                         hi = *std::max_element(ratios.begin(), ratios.end());
            md << " | " << fmt("%.2f", mean) << " [" << fmt("%.2f", lo) << ", "
               << fmt("%.2f", hi) << "]" << (first && m != "k-means" ? "*" : "");
            any_first |= first && m != "k-means";
            if (first) continue;  // the cost of nprobe 1, not of the level: no verdict
            known++;
            wins += hi < 0.97;
            losses += lo > 1.03;
        }
        const char* verdict = m == "k-means" ? "reference"
                              : known == 0   ? "n/a"
                              : wins == known ? "wins"
                              : losses == known ? "loses"
                              : wins > 0 && losses == 0 ? "wins at some levels, ties at others"
                              : losses > 0 && wins == 0 ? "loses at some levels, ties at others"
                              : wins > 0 ? "mixed" : "ties";
        md << " | " << verdict << " |\n";
    }
    md << "\nA method wins at a level when every seed's ratio is below 0.97, loses when "
          "every seed's is above 1.03, and ties otherwise; the verdict counts the levels "
          "without *.";
    if (any_first)
        md << " *: a curve already reaches the level at nprobe 1, so the ratio compares the "
              "entries of nprobe 1 (an upper bound on the true cost) and gives no verdict.";
    md << "\n\n";
    // Recall at equal cost: at k-means's entries scanned for nprobe 1, 4, 16.
    md << "10-recall@10 at the entries k-means scans at a given nprobe (mean over seeds, "
          "interpolated on each curve):\n\n| method";
    std::vector<size_t> at;
    for (size_t i = 0; i < nprobes.size(); i++)
        if (nprobes[i] == 1 || nprobes[i] == 4 || nprobes[i] == 16) at.push_back(i);
    for (size_t i : at) md << " | = k-means nprobe " << nprobes[i];
    md << " |\n|---";
    for (size_t i = 0; i < at.size(); i++) md << "|---";
    md << "|\n";
    for (const auto& m : methods) {
        md << "| " << m;
        for (size_t i : at) {
            double s = 0;
            int cnt = 0;
            for (const auto* c : of(m)) {
                const double r = recall_at_scanned(
                    c->points, kmeans_of(c->seed)->points[i].scanned_per_query);
                if (!std::isnan(r)) s += r, cnt++;
            }
            md << " | " << (cnt == int(of(m).size()) ? fmt("%.3f", s / cnt) : "n/a");
        }
        md << " |\n";
    }
    md << "\nk-means at those points: ";
    for (size_t j = 0; j < at.size(); j++) {
        double s = 0;
        for (const auto* c : of("k-means")) s += c->points[at[j]].scanned_per_query;
        md << (j ? ", " : "") << "nprobe " << nprobes[at[j]] << " scans "
           << fmt("%.0f", s / nseeds) << " entries";
    }
    md << ". n/a: outside the method's measured range.\n\n";
    md << "![" << name << "](ivf_results/" << name << ".svg)\n\n";
    md << "Training time per fit (s, mean): ";
    for (const auto* m : {"k-means", "GMM-sph single distance", "GMM-diag single distance"}) {
        double s = 0;
        for (const auto* c : of(m)) s += c->train_s;
        md << m << " " << fmt("%.1f", s / nseeds) << (std::string(m) == "GMM-diag single distance" ? "" : ", ");
    }
    md << ". Every point: `" << name << ".csv`.\n\n";
    write_file_atomic(stem + ".md", [&](FILE* f) { fputs(md.str().c_str(), f); });

    // One summary row at the first of 10@10 = 0.9, 0.95, 0.99 that no
    // k-means seed reaches at nprobe 1: k-means's cost, then the plain
    // (single, distance) spherical GMM and the cheapest GMM method.
    double slv = 0.99;
    for (double lv : {0.9, 0.95, 0.99}) {
        bool first = false;
        for (const auto* c : of("k-means")) first |= c->points[0].recall_10_10 >= lv;
        if (!first) {
            slv = lv;
            break;
        }
    }
    auto ratio_at = [&](const std::string& m, double lv, double* lo, double* hi) -> double {
        std::vector<double> r;
        for (const auto* c : of(m)) {
            const double a = scanned_to_reach(c->points, lv),
                         b = scanned_to_reach(kmeans_of(c->seed)->points, lv);
            if (!std::isnan(a) && !std::isnan(b)) r.push_back(a / b);
        }
        if (r.size() < of(m).size() || r.empty()) return NAN;
        *lo = *std::min_element(r.begin(), r.end());
        *hi = *std::max_element(r.begin(), r.end());
        return std::accumulate(r.begin(), r.end(), 0.0) / r.size();
    };
    double km_cost = 0;
    for (const auto* c : of("k-means")) km_cost += scanned_to_reach(c->points, slv) / nseeds;
    std::string best;
    double best_r = INFINITY, best_lo = 0, best_hi = 0;
    for (const auto& m : methods) {
        double lo, hi;
        const double r = m == "k-means" ? NAN : ratio_at(m, slv, &lo, &hi);
        if (!std::isnan(r) && r < best_r) best_r = r, best = m, best_lo = lo, best_hi = hi;
    }
    std::ostringstream sm;
    // A set measured before a fix says so in its header: flag its row too.
    const bool stale = header.find("not rerun after the fix") != std::string::npos;
    sm << "| " << name << (stale ? " (old run: see its section)" : "") << " | " << nlist << " | "
       << fmt("%.2f", slv) << " | "
       << fmt("%.0f", km_cost) << " | ";
    double lo = 0, hi = 0;
    const double plain = ratio_at("GMM-sph single distance", slv, &lo, &hi);
    sm << fmt("%.2f", plain) << " [" << fmt("%.2f", lo) << ", " << fmt("%.2f", hi) << "] | ";
    if (best.empty())
        sm << "n/a | n/a | n/a |\n";
    else
        sm << best << " | " << fmt("%.2f", best_r) << " [" << fmt("%.2f", best_lo) << ", "
           << fmt("%.2f", best_hi) << "] | "
           << (best_hi < 0.97 ? "GMM wins" : best_lo > 1.03 ? "k-means wins" : "tie") << " |\n";
    write_file_atomic(stem + ".summary.md", [&](FILE* f) { fputs(sm.str().c_str(), f); });
}

/// Rebuilds a data set's report from its CSV and header (NAME.header.md,
/// or the part of an older NAME.md before its tables): the tables change,
/// the measurements do not.
int report_only(const std::string& stem, const std::string& name) {
    FILE* f = fopen((stem + ".csv").c_str(), "r");
    FAISS_GMM_CHECK(f, "cannot open " + stem + ".csv");
    std::vector<Curve> curves;
    char line[1024];
    FAISS_GMM_CHECK(fgets(line, sizeof line, f), stem + ".csv is empty");
    while (fgets(line, sizeof line, f)) {
        std::stringstream ss(line);
        std::string method, tok;
        std::getline(ss, method, ',');
        std::vector<double> v;
        while (std::getline(ss, tok, ',')) v.push_back(std::stod(tok));
        FAISS_GMM_CHECK(v.size() == 10, stem + ".csv: bad row: " + line);
        const int seed = int(v[0]);
        if (curves.empty() || curves.back().method != method || curves.back().seed != seed)
            curves.push_back(Curve{method, seed, v[8], v[9], {}});
        RecallPoint p;
        p.nprobe = int(v[1]);
        p.recall_1_1 = v[2];
        p.recall_10_10 = v[3];
        p.recall_100_100 = v[4];
        p.scanned_per_query = v[5];
        p.lists_per_query = v[6];
        p.qps = v[7];
        curves.back().points.push_back(p);
    }
    fclose(f);
    FAISS_GMM_CHECK(!curves.empty(), stem + ".csv has no rows");
    auto slurp = [](const std::string& path) {
        std::string out;
        FILE* h = fopen(path.c_str(), "r");
        if (!h) return out;
        char buf[4096];
        size_t r;
        while ((r = fread(buf, 1, sizeof buf, h)) > 0) out.append(buf, r);
        fclose(h);
        return out;
    };
    std::string header = slurp(stem + ".header.md");
    if (header.empty()) {
        header = slurp(stem + ".md");
        const size_t cut = header.find("Entries scanned per query to reach");
        FAISS_GMM_CHECK(cut != std::string::npos, "no header in " + stem + ".{header.md,md}");
        header = header.substr(0, cut);
        write_file_atomic(stem + ".header.md", [&](FILE* h) { fputs(header.c_str(), h); });
    }
    const size_t ivf = header.find(". IVF");
    FAISS_GMM_CHECK(ivf != std::string::npos, "no IVF<nlist> in the header of " + stem);
    const int nlist = std::stoi(header.substr(ivf + 5));
    int nseeds = 0;
    for (const auto& c : curves) nseeds = std::max(nseeds, c.seed);
    std::vector<int> nprobes;
    for (const auto& p : curves[0].points) nprobes.push_back(p.nprobe);
    write_report(stem, name, header, nlist, nseeds, nprobes, curves);
    fprintf(stderr, "%s: report rebuilt from %s.csv\n", name.c_str(), stem.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"IVF recall: k-means IVF against GMM IVF (faiss-gmm issue 4)"};
    std::string dataset, synthetic, root = "../shared/data", out_dir = "bench/ivf_results";
    idx_t n = 1000000, nq = 1000, max_q = 0;
    int d = 32, nlist = 64, nseeds = 3, niter = 20, kmeans_niter = 10, tune_queries = 500;
    std::string nprobe_list = "1,2,4,8,16,32,64";
    app.add_option("--dataset", dataset, "a set under --data-root (NAME/NAME_base.fvecs ...)");
    app.add_option("--synthetic", synthetic, "skewed, spreads or aniso (instead of --dataset)");
    app.add_option("--data-root", root, "folder of the real sets")->capture_default_str();
    app.add_option("--n", n, "synthetic base size")->capture_default_str();
    app.add_option("--d", d, "synthetic dimension")->capture_default_str();
    app.add_option("--nq", nq, "synthetic queries")->capture_default_str();
    app.add_option("--max-queries", max_q, "use at most this many real queries (0: all)");
    app.add_option("--nlist", nlist, "inverted lists")->capture_default_str();
    app.add_option("--seeds", nseeds, "training seeds")->capture_default_str();
    app.add_option("--niter", niter, "EM iterations (k-means gets these + --kmeans-niter)")
        ->capture_default_str();
    app.add_option("--kmeans-niter", kmeans_niter, "k-means iterations of the GMM init")
        ->capture_default_str();
    app.add_option("--nprobe", nprobe_list, "comma-separated nprobe values")->capture_default_str();
    app.add_option("--tune-queries", tune_queries, "held-out base vectors used to tune")
        ->capture_default_str();
    app.add_option("--out-dir", out_dir, "where NAME.csv / .dat / .gp / .md go")
        ->capture_default_str();
    std::string report;
    app.add_option("--report-only", report,
                   "rebuild NAME's report (tables, plots' data) from --out-dir/NAME.csv");
    CLI11_PARSE(app, argc, argv);

    try {
        if (!report.empty()) return report_only(out_dir + "/" + report, report);
        FAISS_GMM_CHECK(dataset.empty() != synthetic.empty(),
                        "give exactly one of --dataset and --synthetic");
        std::vector<int> nprobes;
        for (int np : parse_int_list(nprobe_list))
            if (np <= nlist) nprobes.push_back(np);
        const double t_start = wall_seconds();
        DataSet ds = dataset.empty() ? make_synthetic(synthetic, n, d, nq)
                                     : load_real(root, dataset, max_q);
        fprintf(stderr, "%s: %s (%.1f s)\n", ds.name.c_str(), ds.description.c_str(),
                wall_seconds() - t_start);

        GaussianMixtureParameters gp;
        gp.niter = niter;
        gp.kmeans_niter = kmeans_niter;
        gp.tol = 0;  // as many iterations as k-means gets, whatever the likelihood does
        const CovarianceType covs[2] = {CovarianceType::Spherical, CovarianceType::Diagonal};
        const char* cov_names[2] = {"sph", "diag"};

        // Tuning on held-out base vectors, one choice per covariance type.
        Tuned tuned[2];
        const int nt = int(std::min<idx_t>(tune_queries, ds.nb / 10));
        for (int c = 0; c < 2; c++) {
            gp.covariance_type = covs[c];
            gp.seed = 0;
            const double t0 = wall_seconds();
            tuned[c] = tune(ds, nlist, gp, nprobes, nt);
            fprintf(stderr, "tuned %s (%.1f s): tau=%.2f m=%d p=%g  [%s]\n", cov_names[c],
                    wall_seconds() - t0, tuned[c].ma.tau, tuned[c].ma.max_lists, tuned[c].mass,
                    tuned[c].log.c_str());
        }

        std::vector<Curve> curves;
        for (int seed = 1; seed <= nseeds; seed++) {
            double t0 = wall_seconds();
            auto km = kmeans_ivf(ds, nlist, kmeans_niter + niter, seed);
            Curve ck{"k-means", seed, 1.0, wall_seconds() - t0, {}};
            km->add(ds.nb, ds.xb.data());
            ck.points = evaluate_ivf(km.get(), ds.nq, ds.xq.data(), ds.gt.data(), ds.gt_k, nprobes);
            curves.push_back(ck);
            for (int c = 0; c < 2; c++) {
                gp.covariance_type = covs[c];
                gp.seed = seed;
                t0 = wall_seconds();
                GaussianMixture model;
                std::unique_ptr<faiss::Index> trained =
                    gmm_ivf(ds.d, nlist, ds.nb, ds.xb.data(), gp, &model);
                const double t_train = wall_seconds() - t0;
                for (int multi = 0; multi < 2; multi++) {
                    std::unique_ptr<faiss::Index> ix(faiss::clone_index(trained.get()));
                    MultiAssignParameters ma = tuned[c].ma;
                    if (!multi) ma.max_lists = 1;
                    const auto st = add_multi_assign(ix.get(), model, ds.nb, ds.xb.data(), ma);
                    const std::string base = std::string("GMM-") + cov_names[c] +
                                             (multi ? " multi" : " single");
                    MixtureSearchParameters sp;
                    sp.max_copies = ma.max_lists;
                    const char* probe_names[3] = {"distance", "posterior", "adaptive"};
                    for (int pr = 0; pr < 3; pr++) {
                        sp.order = pr == 0 ? ProbeOrder::Distance : ProbeOrder::Posterior;
                        sp.mass = pr == 2 ? tuned[c].mass : 0.0;
                        Curve cv{base + " " + probe_names[pr], seed, st.entries_per_vector(),
                                 t_train, {}};
                        cv.points = evaluate_ivf_mixture(ix.get(), model, ds.nq, ds.xq.data(),
                                                         ds.gt.data(), ds.gt_k, nprobes, sp);
                        curves.push_back(cv);
                    }
                }
            }
            fprintf(stderr, "seed %d done (%.0f s since start)\n", seed, wall_seconds() - t_start);
        }

        const std::string stem = out_dir + "/" + ds.name;
        // Every operating point.
        write_file_atomic(stem + ".csv", [&](FILE* f) {
            fprintf(f, "method,seed,nprobe,recall_1_1,recall_10_10,recall_100_100,"
                       "scanned_per_query,lists_per_query,qps,entries_per_vector,train_s\n");
            for (const auto& c : curves)
                for (const auto& p : c.points)
                    fprintf(f, "%s,%d,%d,%.4f,%.4f,%.4f,%.1f,%.2f,%.0f,%.3f,%.2f\n",
                            c.method.c_str(), c.seed, p.nprobe, p.recall_1_1, p.recall_10_10,
                            p.recall_100_100, p.scanned_per_query, p.lists_per_query, p.qps,
                            c.entries_per_vector, c.train_s);
        });
        // The markdown section.
        std::ostringstream md;  // the header: what was run
        md << "## " << ds.name << "\n\n" << ds.description << ". IVF" << nlist
           << ",Flat; k-means: FAISS, " << kmeans_niter + niter << " iterations; GMM: k-means init "
           << kmeans_niter << " + " << niter << " EM iterations; both on FAISS's sample of at most "
           << "256 vectors per list; " << nseeds << " seeds; nprobe " << nprobe_list << ".\n\n";
        md << "Tuned on " << nt << " held-out base vectors (the real queries were not used): ";
        for (int c = 0; c < 2; c++)
            md << (c ? "; " : "") << cov_names[c] << " τ = " << fmt("%.2f", tuned[c].ma.tau)
               << ", m = " << tuned[c].ma.max_lists << ", p = " << fmt("%g", tuned[c].mass);
        md << ".\n\n";
        write_file_atomic(stem + ".header.md", [&](FILE* f) { fputs(md.str().c_str(), f); });
        write_report(stem, ds.name, md.str(), nlist, nseeds, nprobes, curves);
        fprintf(stderr, "%s: wrote %s.{csv,dat,gp,md} in %.0f s\n", ds.name.c_str(), stem.c_str(),
                wall_seconds() - t_start);
        return 0;
    } catch (const std::exception& e) {
        fprintf(stderr, "ivf_recall: %s\n", e.what());
        return 1;
    }
}

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

#include "IvfReport.h"

using namespace faiss_gmm;
using namespace faiss_gmm::ivf_bench;

namespace {

struct DataSet {
    std::string name, description;
    int d = 0;
    idx_t nb = 0, nq = 0;
    std::vector<float> xb, xq;
    std::vector<int32_t> gt;
    int gt_k = 0;
};

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
                                      const GaussianMixtureParameters& gp, GaussianMixture* model) {
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
        const double c = tuning_cost(
            evaluate_ivf_mixture(single.get(), model, nt, tq.data(), gt.data(), 10, nprobes, sp));
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
            const double c = tuning_cost(
                evaluate_ivf_mixture(ix.get(), model, nt, tq.data(), gt.data(), 10, nprobes, sp));
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
        const double c =
            tuning_cost(evaluate_ivf_mixture(ix, model, nt, tq.data(), gt.data(), 10, nprobes, sp));
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
        what =
            "1000 anisotropic Gaussians (per-dimension std devs x 1/4..4), weights ~ "
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
    ds.description = std::to_string(n) + " x " + std::to_string(d) + " drawn from " + what + "; " +
                     std::to_string(nq) +
                     " queries from the same mixture, brute-force "
                     "ground truth";
    return ds;
}

/// The benchmark's command line.
struct Options {
    std::string dataset, synthetic, root = "../shared/data", out_dir = "bench/ivf_results";
    idx_t n = 1000000, nq = 1000, max_q = 0;
    int d = 32, nlist = 64, nseeds = 3, niter = 20, kmeans_niter = 10, tune_queries = 500;
    std::string nprobe_list = "1,2,4,8,16,32,64";
    std::string report;

    void add_to(CLI::App& app) {
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
        app.add_option("--nprobe", nprobe_list, "comma-separated nprobe values")
            ->capture_default_str();
        app.add_option("--tune-queries", tune_queries, "held-out base vectors used to tune")
            ->capture_default_str();
        app.add_option("--out-dir", out_dir, "where NAME.csv / .dat / .gp / .md go")
            ->capture_default_str();
        app.add_option("--report-only", report,
                       "rebuild NAME's report (tables, plots' data) from --out-dir/NAME.csv");
    }
};

const CovarianceType kCovs[2] = {CovarianceType::Spherical, CovarianceType::Diagonal};
const char* const kCovNames[2] = {"sph", "diag"};

/// One seed's curves: k-means, then per covariance type the GMM IVF single
/// and multi-assigned, each probed by distance, posterior and adaptively.
void measure_seed(const DataSet& ds, const Options& o, GaussianMixtureParameters gp,
                  const Tuned (&tuned)[2], const std::vector<int>& nprobes, int seed,
                  std::vector<Curve>& curves) {
    double t0 = wall_seconds();
    auto km = kmeans_ivf(ds, o.nlist, o.kmeans_niter + o.niter, seed);
    Curve ck{"k-means", seed, 1.0, wall_seconds() - t0, {}};
    km->add(ds.nb, ds.xb.data());
    ck.points = evaluate_ivf(km.get(), ds.nq, ds.xq.data(), ds.gt.data(), ds.gt_k, nprobes);
    curves.push_back(ck);
    for (int c = 0; c < 2; c++) {
        gp.covariance_type = kCovs[c];
        gp.seed = seed;
        t0 = wall_seconds();
        GaussianMixture model;
        std::unique_ptr<faiss::Index> trained =
            gmm_ivf(ds.d, o.nlist, ds.nb, ds.xb.data(), gp, &model);
        const double t_train = wall_seconds() - t0;
        for (int multi = 0; multi < 2; multi++) {
            std::unique_ptr<faiss::Index> ix(faiss::clone_index(trained.get()));
            MultiAssignParameters ma = tuned[c].ma;
            if (!multi) ma.max_lists = 1;
            const auto st = add_multi_assign(ix.get(), model, ds.nb, ds.xb.data(), ma);
            const std::string base =
                std::string("GMM-") + kCovNames[c] + (multi ? " multi" : " single");
            MixtureSearchParameters sp;
            sp.max_copies = ma.max_lists;
            const char* probe_names[3] = {"distance", "posterior", "adaptive"};
            for (int pr = 0; pr < 3; pr++) {
                sp.order = pr == 0 ? ProbeOrder::Distance : ProbeOrder::Posterior;
                sp.mass = pr == 2 ? tuned[c].mass : 0.0;
                Curve cv{base + " " + probe_names[pr], seed, st.entries_per_vector(), t_train, {}};
                cv.points = evaluate_ivf_mixture(ix.get(), model, ds.nq, ds.xq.data(), ds.gt.data(),
                                                 ds.gt_k, nprobes, sp);
                curves.push_back(cv);
            }
        }
    }
}

/// Every operating point, one CSV row each.
void write_csv(const std::string& stem, const std::vector<Curve>& curves) {
    write_file_atomic(stem + ".csv", [&](FILE* f) {
        fprintf(f,
                "method,seed,nprobe,recall_1_1,recall_10_10,recall_100_100,"
                "scanned_per_query,lists_per_query,qps,entries_per_vector,train_s\n");
        for (const auto& c : curves)
            for (const auto& p : c.points)
                fprintf(f, "%s,%d,%d,%.4f,%.4f,%.4f,%.1f,%.2f,%.0f,%.3f,%.2f\n", c.method.c_str(),
                        c.seed, p.nprobe, p.recall_1_1, p.recall_10_10, p.recall_100_100,
                        p.scanned_per_query, p.lists_per_query, p.qps, c.entries_per_vector,
                        c.train_s);
    });
}

/// The markdown section's header: what was run and what tuning chose.
std::string report_header(const DataSet& ds, const Options& o, const Tuned (&tuned)[2], int nt) {
    std::ostringstream md;
    md << "## " << ds.name << "\n\n"
       << ds.description << ". IVF" << o.nlist << ",Flat; k-means: FAISS, "
       << o.kmeans_niter + o.niter << " iterations; GMM: k-means init " << o.kmeans_niter << " + "
       << o.niter << " EM iterations; both on FAISS's sample of at most "
       << "256 vectors per list; " << o.nseeds << " seeds; nprobe " << o.nprobe_list << ".\n\n";
    md << "Tuned on " << nt << " held-out base vectors (the real queries were not used): ";
    for (int c = 0; c < 2; c++)
        md << (c ? "; " : "") << kCovNames[c] << " τ = " << fmt("%.2f", tuned[c].ma.tau)
           << ", m = " << tuned[c].ma.max_lists << ", p = " << fmt("%g", tuned[c].mass);
    md << ".\n\n";
    return md.str();
}

/// Load or make the data set, tune on held-out base rows, measure every
/// seed, write the CSV and the report.
int run(const Options& o) {
    FAISS_GMM_CHECK(o.dataset.empty() != o.synthetic.empty(),
                    "give exactly one of --dataset and --synthetic");
    std::vector<int> nprobes;
    for (int np : parse_int_list(o.nprobe_list))
        if (np <= o.nlist) nprobes.push_back(np);
    const double t_start = wall_seconds();
    DataSet ds = o.dataset.empty() ? make_synthetic(o.synthetic, o.n, o.d, o.nq)
                                   : load_real(o.root, o.dataset, o.max_q);
    fprintf(stderr, "%s: %s (%.1f s)\n", ds.name.c_str(), ds.description.c_str(),
            wall_seconds() - t_start);

    GaussianMixtureParameters gp;
    gp.niter = o.niter;
    gp.kmeans_niter = o.kmeans_niter;
    gp.tol = 0;  // as many iterations as k-means gets, whatever the likelihood does

    // Tuning on held-out base vectors, one choice per covariance type.
    Tuned tuned[2];
    const int nt = int(std::min<idx_t>(o.tune_queries, ds.nb / 10));
    for (int c = 0; c < 2; c++) {
        gp.covariance_type = kCovs[c];
        gp.seed = 0;
        const double t0 = wall_seconds();
        tuned[c] = tune(ds, o.nlist, gp, nprobes, nt);
        fprintf(stderr, "tuned %s (%.1f s): tau=%.2f m=%d p=%g  [%s]\n", kCovNames[c],
                wall_seconds() - t0, tuned[c].ma.tau, tuned[c].ma.max_lists, tuned[c].mass,
                tuned[c].log.c_str());
    }

    std::vector<Curve> curves;
    for (int seed = 1; seed <= o.nseeds; seed++) {
        measure_seed(ds, o, gp, tuned, nprobes, seed, curves);
        fprintf(stderr, "seed %d done (%.0f s since start)\n", seed, wall_seconds() - t_start);
    }

    const std::string stem = o.out_dir + "/" + ds.name;
    write_csv(stem, curves);
    const std::string header = report_header(ds, o, tuned, nt);
    write_file_atomic(stem + ".header.md", [&](FILE* f) { fputs(header.c_str(), f); });
    write_report(stem, ds.name, header, o.nlist, o.nseeds, nprobes, curves);
    fprintf(stderr, "%s: wrote %s.{csv,dat,gp,md} in %.0f s\n", ds.name.c_str(), stem.c_str(),
            wall_seconds() - t_start);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"IVF recall: k-means IVF against GMM IVF (faiss-gmm issue 4)"};
    Options o;
    o.add_to(app);
    CLI11_PARSE(app, argc, argv);
    try {
        if (!o.report.empty()) return report_only(o.out_dir + "/" + o.report, o.report);
        return run(o);
    } catch (const std::exception& e) {
        fprintf(stderr, "ivf_recall: %s\n", e.what());
        return 1;
    }
}

#include "Demo.h"

#include <faiss/IVFlib.h>
#include <faiss/IndexIVF.h>
#include <faiss/clone_index.h>
#include <faiss/index_factory.h>
#include <faiss_gmm/IVFEvaluation.h>
#include <faiss_gmm/IVFMixture.h>
#include <faiss_gmm/IndexIVFTraining.h>
#include <faiss_gmm/SyntheticData.h>
#include <faiss_gmm/utils/Utils.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include "CliData.h"

namespace faiss_gmm {

namespace {

/// Base and query rows of one demo run.
struct DemoData {
    idx_t n = 0, nq = 0;
    int d = 0;
    std::vector<float> xb, xq;
};

DemoData demo_data(const DemoParameters& dp) {
    DemoData dd;
    dd.nq = dp.nq;
    if (dp.data.empty()) {
        SyntheticMixtureParameters sp;
        sp.d = dp.d;
        sp.n_clusters = 256;
        sp.size_skew = 1.0;
        sp.spread_min = 0.15;
        sp.spread_max = 0.6;
        sp.seed = 2024;
        SyntheticMixture mix(sp);
        dd.n = dp.n;
        dd.d = dp.d;
        dd.xb.resize(size_t(dd.n) * dd.d);
        dd.xq.resize(size_t(dd.nq) * dd.d);
        mix.sample(dd.n, 1, dd.xb.data());
        mix.sample(dd.nq, 2, dd.xq.data());
        printf(
            "data: %lld x %d drawn from a known mixture of %d Gaussians (weights ~ 1/rank, "
            "std devs %.2f..%.2f), %lld queries from the same mixture\n",
            (long long)dd.n, dd.d, sp.n_clusters, sp.spread_min, sp.spread_max, (long long)dd.nq);
        return dd;
    }
    idx_t nall;
    auto all = load_rows(dp.data, &nall, &dd.d);
    FAISS_GMM_CHECK(nall > dp.nq, "--data needs more rows than --nq");
    // The last nq rows are the queries, the rest the base.
    dd.n = nall - dp.nq;
    dd.xb.assign(all.begin(), all.begin() + size_t(dd.n) * dd.d);
    dd.xq.assign(all.begin() + size_t(dd.n) * dd.d, all.end());
    printf("data: %s, base %lld x %d, queries: its last %lld rows\n", dp.data.c_str(),
           (long long)dd.n, dd.d, (long long)dd.nq);
    return dd;
}

/// One way of building the index, and what its search gave.
struct DemoRow {
    std::string name;
    double entries_per_vector = 1;
    std::vector<RecallPoint> curve;
};

/// A SOAR-spilled copy of the trained (empty) `index`, searched each id once.
DemoRow soar_row(const std::string& name, const faiss::Index* index, GaussianMixture model,
                 const GaussianMixtureParameters& p, float lambda, const DemoData& dd,
                 const std::vector<int32_t>& gt, const std::vector<int>& nprobes) {
    std::unique_ptr<faiss::Index> spilled(faiss::clone_index(index));
    MultiAssignParameters ma;
    ma.rule = SpillRule::Soar;
    ma.max_lists = 2;
    ma.lambda = lambda;
    model.params = p;  // SOAR reads the index's centroids; the model gives the backend
    const MultiAssignStats st = add_multi_assign(spilled.get(), model, dd.n, dd.xb.data(), ma);
    MixtureSearchParameters sp;
    sp.order = ProbeOrder::Distance;
    sp.max_copies = ma.max_lists;
    return {name, st.entries_per_vector(),
            evaluate_ivf_mixture(spilled.get(), model, dd.nq, dd.xq.data(), gt.data(), 10, nprobes,
                                 sp)};
}

void print_curves(const std::vector<DemoRow>& rows) {
    printf("\n10-recall@10 and entries scanned per query, by nprobe\n%7s", "nprobe");
    for (const auto& r : rows) printf(" | %15s %9s", r.name.c_str(), "scanned");
    printf("\n");
    for (size_t i = 0; i < rows[0].curve.size(); i++) {
        printf("%7d", rows[0].curve[i].nprobe);
        for (const auto& r : rows)
            printf(" | %15.4f %9.0f", r.curve[i].recall_10_10, r.curve[i].scanned_per_query);
        printf("\n");
    }
}

/// The comparison that counts: entries scanned at equal recall.
void print_equal_recall(const std::vector<DemoRow>& rows) {
    const double targets[] = {0.90, 0.95};
    printf(
        "\nAt equal recall (entries scanned per query; x = k-means's count over this row's, "
        "> 1: fewer)\n%-15s %9s",
        "", "entries/v");
    for (double t : targets) printf(" | %8s@%.2f %7s", "scanned", t, "x");
    printf("\n");
    std::vector<double> best(2, 1.0);  // the fewest scanned relative to k-means, per target
    std::vector<std::string> winner(2, rows[0].name);
    for (const auto& r : rows) {
        printf("%-15s %9.3f", r.name.c_str(), r.entries_per_vector);
        for (int j = 0; j < 2; j++) {
            const double s = scanned_at_recall(r.curve, targets[j]);
            const double k = scanned_at_recall(rows[0].curve, targets[j]);
            if (std::isnan(s) || std::isnan(k)) {
                printf(" | %13s %7s", "off the grid", "-");
                continue;
            }
            printf(" | %13.0f %6.3fx", s, k / s);
            if (k / s > best[j]) best[j] = k / s, winner[j] = r.name;
        }
        printf("\n");
    }
    if (winner[0] == winner[1] && winner[0] != rows[0].name)
        printf(
            "\nwinner at equal entries scanned: %s (%.3fx / %.3fx fewer than k-means at "
            "0.90 / 0.95)\n",
            winner[0].c_str(), best[0], best[1]);
    else if (winner[0] == rows[0].name && winner[1] == rows[0].name)
        printf("\nno row scans fewer entries than k-means at these recalls\n");
    else
        printf("\nno single winner: %s at 0.90, %s at 0.95\n", winner[0].c_str(),
               winner[1].c_str());
}

}  // namespace

int run_demo(const DemoParameters& dp, const GaussianMixtureParameters& p) {
    const DemoData dd = demo_data(dp);
    FAISS_GMM_CHECK(dp.nlist <= dd.n, "--nlist larger than the number of base vectors");
    const std::string factory = "IVF" + std::to_string(dp.nlist) + ",Flat";
    double t0 = wall_seconds();
    auto gt = brute_force_ground_truth(dd.d, dd.n, dd.xb.data(), dd.nq, dd.xq.data(), 10);
    fprintf(stderr, "faiss-gmm: ground truth in %.2f s\n", wall_seconds() - t0);
    const auto nprobes = parse_int_list(dp.nprobes);

    // k-means: FAISS's own training with as many iterations as the GMM's
    // k-means initialisation plus its EM iterations, on the same rows.
    std::unique_ptr<faiss::Index> km(faiss::index_factory(dd.d, factory.c_str()));
    auto* km_ivf = faiss::ivflib::extract_index_ivf(km.get());
    km_ivf->cp.niter = p.kmeans_niter + p.niter;
    km_ivf->cp.seed = p.seed;
    km_ivf->cp.max_points_per_centroid = 1 << 30;
    t0 = wall_seconds();
    km->train(dd.n, dd.xb.data());
    const double t_km = wall_seconds() - t0;

    print_backend(p);
    t0 = wall_seconds();
    GaussianMixture model;
    std::unique_ptr<faiss::Index> gm(
        index_factory_gmm(dd.d, factory, dd.n, dd.xb.data(), p, faiss::METRIC_L2, &model));
    const double t_gm = wall_seconds() - t0;

    DemoRow km_soar =
        soar_row("k-means+SOAR", km.get(), GaussianMixture(), p, dp.lambda_kmeans, dd, gt, nprobes);
    DemoRow gm_soar = soar_row("GMM+SOAR", gm.get(), model, p, dp.lambda_gmm, dd, gt, nprobes);
    km->add(dd.n, dd.xb.data());
    gm->add(dd.n, dd.xb.data());
    const std::vector<DemoRow> rows = {
        {"k-means", 1, evaluate_ivf(km.get(), dd.nq, dd.xq.data(), gt.data(), 10, nprobes)},
        km_soar,
        {"GMM", 1, evaluate_ivf(gm.get(), dd.nq, dd.xq.data(), gt.data(), 10, nprobes)},
        gm_soar};

    printf("\n%s on %lld vectors, %lld queries, exact distances inside lists\n", factory.c_str(),
           (long long)dd.n, (long long)dd.nq);
    printf(
        "training: k-means %d iterations %.2f s | GMM (%s, k-means init %d it + %zu EM it) "
        "%.2f s | SOAR lambda %.3g on k-means, %.3g on GMM, at most 2 lists per vector\n",
        km_ivf->cp.niter, t_km, to_string(p.covariance_type), p.kmeans_niter,
        model.iteration_stats.size(), t_gm, dp.lambda_kmeans, dp.lambda_gmm);
    print_curves(rows);
    print_equal_recall(rows);
    printf("\nbench/ivf_results/realsift1m.md has the comparison on 1M real SIFT vectors.\n");
    return 0;
}

}  // namespace faiss_gmm

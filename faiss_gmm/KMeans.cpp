#include <faiss/IndexFlat.h>
#include <faiss/utils/random.h>
#include <faiss_gmm/EStep.h>
#include <faiss_gmm/KMeans.h>
#include <faiss_gmm/utils/FileUtils.h>
#include <faiss_gmm/utils/Interrupt.h>
#include <faiss_gmm/utils/Utils.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>

namespace faiss_gmm {

namespace {

/// FAISS's split_clusters (faiss/Clustering.cpp, 1.7.3): each empty cluster
/// takes a copy of a cluster drawn with probability (size - 1) / (n - k),
/// both moved apart by a relative 1/1024 with alternating signs.
int split_clusters(int d, int k, idx_t n, std::vector<double>& hassign, float* centroids) {
    constexpr double kEps = 1.0 / 1024;
    int nsplit = 0;
    faiss::RandomGenerator rng(1234);
    for (int ci = 0; ci < k; ci++) {
        if (hassign[ci] != 0) continue;
        int cj = 0;
        for (;; cj = (cj + 1) % k) {
            const float p = float((hassign[cj] - 1.0) / float(std::max<idx_t>(n - k, 1)));
            if (rng.rand_float() < p) break;
        }
        std::memcpy(centroids + size_t(ci) * d, centroids + size_t(cj) * d, sizeof(float) * d);
        for (int j = 0; j < d; j++) {
            const bool even = j % 2 == 0;
            centroids[size_t(ci) * d + j] *= float(even ? 1 + kEps : 1 - kEps);
            centroids[size_t(cj) * d + j] *= float(even ? 1 - kEps : 1 + kEps);
        }
        hassign[ci] = float(hassign[cj] / 2);
        hassign[cj] -= hassign[ci];
        nsplit++;
    }
    return nsplit;
}

}  // namespace

std::vector<idx_t> faiss_sample_rows(idx_t n, idx_t m, int64_t seed) {
    FAISS_GMM_CHECK(n < (idx_t(1) << 31), "FAISS's sample: at most 2^31 rows");
    FAISS_GMM_CHECK(m >= 0 && m <= n, "FAISS's sample: m must be in [0, n]");
    std::vector<int> perm(n);
    faiss::rand_perm(perm.data(), size_t(n), seed);
    return std::vector<idx_t>(perm.begin(), perm.begin() + m);
}

std::vector<float> kmeans_initial_centroids(int d, int k, idx_t n, const float* x, int64_t seed,
                                            int redo) {
    FAISS_GMM_CHECK_ARG(idx_t(k) <= n, "k=" + std::to_string(k) + " clusters but only " +
                                           std::to_string(n) + " rows (need k <= n)");
    const std::vector<idx_t> perm = faiss_sample_rows(n, k, seed + 1 + int64_t(redo) * 15486557L);
    std::vector<float> c(size_t(k) * d);
    for (int i = 0; i < k; i++)
        std::memcpy(c.data() + size_t(i) * d, x + size_t(perm[i]) * d, sizeof(float) * d);
    return c;
}

std::vector<float> kmeans_plus_plus(EStepBackend& backend, int d, int k, idx_t n, const float* x,
                                    const float* w, uint64_t seed) {
    FAISS_GMM_CHECK(n >= 1 && k >= 1, "kmeans_plus_plus: need rows and centres");
    std::vector<float> mu(size_t(k) * d);
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u01(0, 1);
    const idx_t first = std::uniform_int_distribution<idx_t>(0, n - 1)(rng);
    std::memcpy(mu.data(), x + size_t(first) * d, sizeof(float) * d);
    auto dist = backend.seeding_distances(n, d, x, w);
    for (int c = 1; c < k; c++) {
        const double total = dist->add_centre(mu.data() + size_t(c - 1) * d);
        idx_t pick = std::uniform_int_distribution<idx_t>(0, n - 1)(rng);
        if (total > 0) {
            const idx_t i = dist->draw(u01(rng) * total);
            if (i >= 0) pick = i;
        }
        std::memcpy(mu.data() + size_t(c) * d, x + size_t(pick) * d, sizeof(float) * d);
    }
    return mu;
}

std::vector<faiss::ClusteringIterationStats> kmeans_iterations(
    EStepBackend& backend, int d, int k, idx_t n, const float* x, const float* w, int niter,
    bool spherical, std::vector<float>& centroids, bool verbose) {
    FAISS_GMM_CHECK_ARG(centroids.size() == size_t(k) * d, "k-means needs k x d initial centroids");
    GaussianMixture cm = nearest_mean_model(d, k, centroids.data());
    std::vector<faiss::ClusteringIterationStats> out;
    for (int it = 0; it < niter; it++) {
        check_interrupted();
        const double t0 = wall_seconds();
        cm.means = centroids;
        // Sums about the centroids' mean: a point near the data.
        std::vector<double> shift(d, 0.0);
        for (int i = 0; i < k; i++)
            for (int j = 0; j < d; j++) shift[j] += centroids[size_t(i) * d + j] / double(k);
        SufficientStatistics st;
        st.reset(d, k, CovarianceType::Spherical, shift);
        double obj = 0;
        AssignOutputs ao;
        ao.stats = &st;
        ao.objective = &obj;
        backend.assign(cm, HardAssign::NearestMean, n, x, w, ao);
        const double t1 = wall_seconds();
        // FAISS's compute_centroids: the mean of each cluster's rows; empty
        // clusters are zero until split_clusters refills them.
        for (int c = 0; c < k; c++)
            for (int j = 0; j < d; j++)
                centroids[size_t(c) * d + j] =
                    st.nk[c] > 0 ? float(st.sum_x[size_t(c) * d + j] / st.nk[c] + shift[j]) : 0.f;
        std::vector<double> hassign = st.nk;
        for (double& h : hassign) h = float(h);  // FAISS counts in float
        faiss::ClusteringIterationStats s;
        s.nsplit = split_clusters(d, k, n, hassign, centroids.data());
        if (spherical) l2_normalize_rows(d, k, centroids.data());
        double sum = 0, sq = 0;
        for (double h : st.nk) sum += h, sq += h * h;
        s.obj = float(obj);
        s.time_search = t1 - t0;
        s.time = wall_seconds() - t0;
        s.imbalance_factor = sum > 0 ? sq * k / (sum * sum) : 0;
        out.push_back(s);
        if (verbose)
            fprintf(stderr,
                    "  k-means iteration %d (%.3f s, assign %.3f s): objective=%g imbalance=%.3f "
                    "nsplit=%d\n",
                    it, s.time, s.time_search, s.obj, s.imbalance_factor, s.nsplit);
    }
    return out;
}

KMeansClustering::KMeansClustering(int d_, int k_) : faiss::Clustering(d_, k_) {}

KMeansClustering::KMeansClustering(int d_, int k_, const faiss::ClusteringParameters& cp)
    : faiss::Clustering(d_, k_, cp) {}

void KMeansClustering::train(idx_t n, const float* x, faiss::Index& index, const float* w) {
    FAISS_GMM_CHECK_ARG(index.d == int(d), "index dimension " + std::to_string(index.d) +
                                               " does not match clustering dimension " +
                                               std::to_string(d));
    FAISS_GMM_CHECK_ARG(idx_t(k) <= n, "k=" + std::to_string(k) + " clusters but only " +
                                           std::to_string(n) + " training points (need k <= n)");
    // The public size_t fields may have been set past what the int-sized model takes.
    FAISS_GMM_CHECK_ARG(k <= size_t(INT32_MAX),
                        "k=" + std::to_string(k) + " clusters: at most 2^31 - 1");
    std::unique_ptr<EStepBackend> be;
    if (!frozen_centroids && !int_centroids) be = make_estep_backend(backend);
    if (!be || !be->on_gpu()) {
        faiss::Clustering::train(n, x, index, w);  // FAISS's own k-means
        return;
    }
    check_finite_rows(n, int(d), x, "training data");
    if (n < idx_t(k) * min_points_per_centroid)
        fprintf(stderr,
                "WARNING clustering %lld points to %zd centroids: please provide at least %lld "
                "training points\n",
                (long long)n, k, (long long)k * min_points_per_centroid);
    std::vector<float> xs, ws;
    if (n > idx_t(k) * max_points_per_centroid) {
        const idx_t m = idx_t(k) * max_points_per_centroid;
        const std::vector<idx_t> perm = faiss_sample_rows(n, m, seed);
        if (verbose)
            fprintf(stderr, "Sampling a subset of %lld / %lld for training\n", (long long)m,
                    (long long)n);
        xs.resize(size_t(m) * d);
        if (w) ws.resize(m);
        for (idx_t i = 0; i < m; i++) {
            std::memcpy(xs.data() + size_t(i) * d, x + size_t(perm[i]) * d, sizeof(float) * d);
            if (w) ws[i] = w[perm[i]];
        }
        n = m;
        x = xs.data();
        w = w ? ws.data() : nullptr;
    }
    const double t0 = wall_seconds();
    be->pin_rows(n, int(d), x, w);
    time_upload = wall_seconds() - t0;
    const std::vector<float> given =
        centroids.size() == size_t(k) * d ? centroids : std::vector<float>();
    double best = HUGE_VAL;
    std::vector<float> best_c;
    iteration_stats.clear();
    for (int redo = 0; redo < std::max(1, nredo); redo++) {
        std::vector<float> c = given.empty() || redo > 0
                                   ? kmeans_initial_centroids(int(d), int(k), n, x, seed, redo)
                                   : given;
        if (spherical) l2_normalize_rows(int(d), int(k), c.data());
        auto st = kmeans_iterations(*be, int(d), int(k), n, x, w, niter, spherical, c, verbose);
        iteration_stats.insert(iteration_stats.end(), st.begin(), st.end());
        const double obj = st.empty() ? 0 : st.back().obj;
        if (redo == 0 || obj < best) best = obj, best_c = std::move(c);
    }
    be->unpin_rows();
    centroids = best_c;
    if (!index.is_trained) index.train(k, centroids.data());
    index.reset();
    index.add(k, centroids.data());
}

}  // namespace faiss_gmm

#include <faiss_gmm/Clustering.h>
#include <faiss_gmm/utils/FileUtils.h>

#include <cmath>
#include <cstdint>

namespace faiss_gmm {

GmmClustering::GmmClustering(int d_, int k_) : faiss::Clustering(d_, k_) {}

GmmClustering::GmmClustering(int d_, int k_, const faiss::ClusteringParameters& cp,
                             const GaussianMixtureParameters& g)
    : faiss::Clustering(d_, k_, cp), gmm(g) {}

void GmmClustering::train(idx_t n, const float* x, faiss::Index& index, const float* w) {
    FAISS_GMM_CHECK(index.d == int(d), "index dimension " + std::to_string(index.d) +
                                           " does not match clustering dimension " +
                                           std::to_string(d));
    FAISS_GMM_CHECK(idx_t(k) <= n, "k=" + std::to_string(k) + " clusters but only " +
                                       std::to_string(n) + " training points (need k <= n)");
    // The public size_t fields may have been set past what the int-sized model takes.
    FAISS_GMM_CHECK(k <= size_t(INT32_MAX),
                    "k=" + std::to_string(k) + " clusters: at most 2^31 - 1");
    GaussianMixtureParameters p = gmm;
    p.niter = niter;
    p.max_points_per_component = max_points_per_centroid;
    p.min_points_per_component = min_points_per_centroid;
    p.normalize_means = spherical;
    p.verbose = verbose || gmm.verbose;

    const bool have_init = centroids.size() == size_t(k) * d;
    FAISS_GMM_CHECK(!frozen_centroids || have_init,
                    "frozen_centroids is set but no k x d centroids were provided");
    iteration_stats.clear();
    if (frozen_centroids) {
        check_finite_rows(n, int(d), x, "training data");
    } else {
        double best = -INFINITY;
        for (int redo = 0; redo < std::max(1, nredo); redo++) {
            // Wraps (as unsigned) instead of overflowing for seeds near INT_MAX.
            p.seed = int(uint32_t(seed) + 1000u * uint32_t(redo));
            GaussianMixture g(int(d), int(k), p);
            if (have_init && redo == 0)
                g.fit_from_means(n, x, centroids.data(), w);
            else
                g.fit(n, x, w);
            double ll =
                g.iteration_stats.empty() ? -INFINITY : g.iteration_stats.back().log_likelihood;
            if (redo == 0 || ll > best) {
                best = ll;
                model = std::move(g);
            }
        }
        centroids = model.means;
        for (const auto& s : model.iteration_stats) {
            faiss::ClusteringIterationStats cs;
            cs.obj = float(-s.log_likelihood);
            cs.time = s.time;
            cs.time_search = s.time_estep;
            cs.imbalance_factor = s.imbalance_factor;
            cs.nsplit = s.n_reseeded;
            iteration_stats.push_back(cs);
        }
    }
    post_process_centroids();  // spherical / int_centroids, as FAISS
    if (!index.is_trained) index.train(k, centroids.data());
    index.reset();
    index.add(k, centroids.data());
}

}  // namespace faiss_gmm

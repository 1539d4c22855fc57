/**
 * A drop-in replacement for faiss::Clustering that trains with GMM-EM.
 */
#pragma once

#include <faiss/Clustering.h>
#include <faiss_gmm/GaussianMixture.h>

namespace faiss_gmm {

/**
 * faiss::Clustering whose train() runs GMM-EM instead of k-means.
 *
 * The inherited ClusteringParameters keep their FAISS meaning where one
 * exists: niter (EM iterations), seed, max_points_per_centroid,
 * min_points_per_centroid, spherical (normalised means, for inner product),
 * verbose, nredo (keep the run of best log-likelihood), frozen_centroids
 * (no update: the given centroids are kept), int_centroids. Everything
 * GMM-specific is in `gmm`. After train(): `centroids` holds the k means,
 * `iteration_stats` one entry per EM iteration (obj = minus the mean
 * log-likelihood per row, so lower is better as for k-means; time_search = E-step
 * seconds; imbalance_factor from soft counts; nsplit = re-seeded
 * components) and `index` holds the k means, as after faiss::Clustering.
 */
struct GmmClustering : faiss::Clustering {
    GaussianMixtureParameters gmm;  ///< GMM options (covariance type, tol, reg_covar, device...)
    GaussianMixture model;          ///< the fitted mixture of the best run

    /** k clusters in dimension d, FAISS defaults for the inherited fields. */
    GmmClustering(int d, int k);
    /** With explicit FAISS clustering parameters and GMM parameters. */
    GmmClustering(int d, int k, const faiss::ClusteringParameters& cp,
                  const GaussianMixtureParameters& gmm = {});

    /** Fit the mixture on n rows of x and leave the means in `index`. */
    void train(idx_t n, const float* x, faiss::Index& index,
               const float* x_weights = nullptr) override;
};

}  // namespace faiss_gmm

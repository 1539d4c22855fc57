/**
 * Lloyd's k-means with faiss::Clustering's semantics on any E-step backend:
 * on a GPU the assignment is the E-step's pass-1 kernel with an argmax
 * policy and the update's sums a fused one-hot accumulation
 * (kernels/HardAssignKernels.cuh), so nothing proportional to n * k runs
 * on the host; on the CPU it is FAISS's own exact search.
 */
#pragma once

#include <faiss/Clustering.h>
#include <faiss_gmm/GaussianMixture.h>

#include <vector>

namespace faiss_gmm {

class EStepBackend;

/**
 * The rows faiss::Clustering trains on when it subsamples n rows to m:
 * the first m of faiss::rand_perm(n, seed). At most 2^31 rows (FAISS's int
 * permutation).
 */
std::vector<idx_t> faiss_sample_rows(idx_t n, idx_t m, int64_t seed);

/**
 * The initial centroids faiss::Clustering draws (run `redo`): rows
 * perm[0..k) of faiss::rand_perm(n, seed + 1 + redo * 15486557).
 */
std::vector<float> kmeans_initial_centroids(int d, int k, idx_t n, const float* x, int64_t seed,
                                            int redo = 0);

/**
 * k-means++ seeding (Arthur & Vassilvitskii: D^2 sampling) of k centres
 * from rows x (n x d, weights may be null): the first row uniform, each
 * next one with probability proportional to w_i times its squared distance
 * to the nearest centre so far (uniform when every row sits on a centre).
 * The distances live where `backend` keeps rows (the device on a GPU: pin
 * the rows first); the draws come from std::mt19937_64(seed) on the host,
 * so every backend gives the same centres up to rounding of the sums.
 * Returns k x d floats.
 */
std::vector<float> kmeans_plus_plus(EStepBackend& backend, int d, int k, idx_t n, const float* x,
                                    const float* w, uint64_t seed);

/**
 * niter Lloyd iterations on rows x (n x d, weights may be null) from
 * `centroids` (k x d, updated in place), as faiss::Clustering iterates:
 * assign each row to its nearest centroid, move each centroid to the
 * (weighted) mean of its rows, split the largest clusters into empty ones
 * (FAISS's split_clusters: its random generator and perturbation), and
 * L2-normalise when `spherical`. The assignment runs on `backend` (pin the
 * rows there first, and they go up once). Returns one entry per iteration:
 * obj = sum ||x - c||^2 before the update (unweighted, as FAISS), time, time_search (the
 * assignment), imbalance_factor, nsplit.
 */
std::vector<faiss::ClusteringIterationStats> kmeans_iterations(
    EStepBackend& backend, int d, int k, idx_t n, const float* x, const float* w, int niter,
    bool spherical, std::vector<float>& centroids, bool verbose = false);

/**
 * faiss::Clustering whose train() runs on the GPU when one is chosen
 * (kmeans_iterations with a GPU backend), and is FAISS's own k-means on the
 * CPU. Every inherited field keeps its FAISS meaning (niter, nredo, seed,
 * max/min_points_per_centroid and FAISS's subsample, spherical, verbose,
 * given initial `centroids`, iteration_stats); the GPU path starts from the
 * same centroids FAISS would draw and gives FAISS's result up to the
 * assignment of near ties. frozen_centroids and int_centroids run FAISS's
 * CPU k-means.
 */
struct KMeansClustering : faiss::Clustering {
    /// Backend choice and GPU precision (device, precision, gpu_device,
    /// gpu_devices and max_block_bytes are read; the rest is ignored).
    GaussianMixtureParameters backend;
    double time_upload = 0;  ///< seconds the last train() spent putting the rows on the device

    /** k clusters in dimension d, FAISS's defaults for the inherited fields. */
    KMeansClustering(int d, int k);
    /** With explicit FAISS clustering parameters. */
    KMeansClustering(int d, int k, const faiss::ClusteringParameters& cp);

    /** Cluster n rows of x; the centroids end in `centroids` and in `index`. */
    void train(idx_t n, const float* x, faiss::Index& index,
               const float* x_weights = nullptr) override;
};

}  // namespace faiss_gmm

/**
 * `faiss-gmm demo`: k-means IVF against GMM IVF, each alone and with SOAR
 * spilling, compared at equal entries scanned.
 */
#pragma once

#include <faiss_gmm/GaussianMixture.h>
#include <faiss_gmm/utils/Common.h>

#include <string>

namespace faiss_gmm {

/** What the demo runs on and how. */
struct DemoParameters {
    std::string data;  ///< vectors whose last nq rows become the queries; empty: synthetic
    idx_t n = 200000;  ///< synthetic base size
    int d = 64;        ///< synthetic dimension
    int nlist = 1024;  ///< inverted lists
    idx_t nq = 1000;   ///< queries
    std::string nprobes = "1,2,3,4,6,8,12,16,24,32,48,64";  ///< the recall curve's nprobe values
    /// SOAR's lambda on k-means centroids and on GMM means: the values tuned
    /// on realsift1m's learn queries (bench/ivf_results/realsift1m.md).
    float lambda_kmeans = 0.5f;
    float lambda_gmm = 1.0f;
};

/**
 * Build IVF<nlist>,Flat four ways on the same base (k-means, k-means + SOAR,
 * GMM, GMM + SOAR, at most 2 entries per vector), print each recall curve
 * and the entries scanned per query at 10-recall@10 = 0.90 and 0.95, and
 * name the row that scans fewest (or say that none beats k-means).
 * @return the process exit code
 */
int run_demo(const DemoParameters& dp, const GaussianMixtureParameters& p);

}  // namespace faiss_gmm

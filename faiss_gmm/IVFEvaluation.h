/**
 * Recall of IVF indexes against exact ground truth, as ANN benchmarks
 * report it: k-recall@k and vectors scanned per query, vs nprobe.
 */
#pragma once

#include <faiss/Index.h>
#include <faiss_gmm/IVFMixture.h>
#include <faiss_gmm/utils/Common.h>

#include <vector>

namespace faiss_gmm {

/** One operating point of an IVF index. */
struct RecallPoint {
    int nprobe;                ///< lists probed
    double recall_1_1;         ///< 1-recall@1
    double recall_10_10;       ///< 10-recall@10 (|top10 ∩ true top10| / 10)
    double recall_100_100;     ///< 100-recall@100; NaN when ground truth has < 100 columns
    double scanned_per_query;  ///< list entries whose distance was computed, per query
    double lists_per_query;    ///< inverted lists probed, per query (< nprobe when adaptive)
    double qps;                ///< queries per second of this search
};

/**
 * Exact k nearest neighbours of nq queries among nb base vectors (L2 or IP):
 * nq x k ids, by FAISS's flat index.
 */
std::vector<int32_t> brute_force_ground_truth(int d, idx_t nb, const float* xb, idx_t nq,
                                              const float* xq, int k,
                                              faiss::MetricType metric = faiss::METRIC_L2);

/**
 * Search `index` (an IVF, possibly inside IndexPreTransform) at each nprobe
 * and compare with gt (nq x gt_k ids, nearest first).
 */
std::vector<RecallPoint> evaluate_ivf(faiss::Index* index, idx_t nq, const float* xq,
                                      const int32_t* gt, int gt_k, const std::vector<int>& nprobes);

/**
 * As evaluate_ivf, searching through search_mixture() with `params` (probe
 * order, adaptive mass, copies) and its nprobe set to each of nprobes:
 * each id is counted once, scanned entries include every copy.
 */
std::vector<RecallPoint> evaluate_ivf_mixture(const faiss::Index* index,
                                              const GaussianMixture& model, idx_t nq,
                                              const float* xq, const int32_t* gt, int gt_k,
                                              const std::vector<int>& nprobes,
                                              const MixtureSearchParameters& params);

/**
 * Entries scanned per query where a recall curve (points by increasing
 * nprobe) first reaches 10-recall@10 = target: log-linear between the two
 * points around it, the way bench/ivf_results compare indexes at equal
 * recall. NaN when the curve never reaches target or starts above it
 * (the nprobe grid does not bracket it).
 */
double scanned_at_recall(const std::vector<RecallPoint>& curve, double target);

/** k-recall@k of result ids (nq x res_k) against gt (nq x gt_k). */
double k_recall_at_k(idx_t nq, const faiss::Index::idx_t* ids, int res_k, const int32_t* gt,
                     int gt_k, int k);

}  // namespace faiss_gmm

#include <faiss/IVFlib.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVF.h>
#include <faiss_gmm/IVFEvaluation.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <unordered_set>

namespace faiss_gmm {

std::vector<int32_t> brute_force_ground_truth(int d, idx_t nb, const float* xb, idx_t nq,
                                              const float* xq, int k, faiss::MetricType metric) {
    FAISS_GMM_CHECK(k >= 1 && idx_t(k) <= nb, "ground truth: need 1 <= k <= nb");
    faiss::IndexFlat index(d, metric);
    index.add(nb, xb);
    std::vector<float> dis(size_t(nq) * k);
    std::vector<faiss::Index::idx_t> ids(size_t(nq) * k);
    index.search(nq, xq, k, dis.data(), ids.data());
    return std::vector<int32_t>(ids.begin(), ids.end());
}

double k_recall_at_k(idx_t nq, const faiss::Index::idx_t* ids, int res_k, const int32_t* gt,
                     int gt_k, int k) {
    if (gt_k < k || res_k < k) return NAN;
    double hits = 0;
    for (idx_t q = 0; q < nq; q++) {
        // An id a multi-assigned index returns twice (plain FAISS search) is
        // one neighbour found: erase it from the truth once counted.
        std::unordered_set<int64_t> truth(gt + q * gt_k, gt + q * gt_k + k);
        for (int j = 0; j < k; j++) hits += truth.erase(ids[q * res_k + j]);
    }
    return hits / (double(nq) * k);
}

double scanned_at_recall(const std::vector<RecallPoint>& curve, double target) {
    if (curve.empty() || curve.front().recall_10_10 >= target) return NAN;
    for (size_t i = 1; i < curve.size(); i++) {
        const RecallPoint &a = curve[i - 1], &b = curve[i];
        if (a.recall_10_10 < target && target <= b.recall_10_10) {
            const double t = (target - a.recall_10_10) / (b.recall_10_10 - a.recall_10_10);
            return std::exp(std::log(a.scanned_per_query) +
                            t * (std::log(b.scanned_per_query) - std::log(a.scanned_per_query)));
        }
    }
    return NAN;
}

namespace {

/// The work of one search: what was probed and scanned, summed over queries.
struct SearchWork {
    int nprobe;
    double ndis, nlist;
};

/// One RecallPoint per nprobe: `search(nprobe, ids)` fills nq x res_k ids and
/// returns its work; recall, work per query and QPS come from here.
template <class Search>
std::vector<RecallPoint> recall_curve(idx_t nq, int res_k, const int32_t* gt, int gt_k,
                                      const std::vector<int>& nprobes, Search&& search) {
    std::vector<idx_t> ids(size_t(nq) * res_k);
    std::vector<RecallPoint> out;
    for (int np : nprobes) {
        auto t0 = std::chrono::steady_clock::now();
        const SearchWork w = search(std::max(np, 1), ids.data());
        double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        RecallPoint p;
        p.nprobe = w.nprobe;
        p.recall_1_1 = k_recall_at_k(nq, ids.data(), res_k, gt, gt_k, 1);
        p.recall_10_10 = k_recall_at_k(nq, ids.data(), res_k, gt, gt_k, 10);
        p.recall_100_100 = k_recall_at_k(nq, ids.data(), res_k, gt, gt_k, 100);
        p.scanned_per_query = w.ndis / nq;
        p.lists_per_query = w.nlist / nq;
        p.qps = nq / std::max(dt, 1e-9);
        out.push_back(p);
    }
    return out;
}

}  // namespace

std::vector<RecallPoint> evaluate_ivf(faiss::Index* index, idx_t nq, const float* xq,
                                      const int32_t* gt, int gt_k,
                                      const std::vector<int>& nprobes) {
    faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index);
    FAISS_GMM_CHECK(ivf, "evaluate_ivf: the index holds no IndexIVF");
    const int res_k = int(std::min<idx_t>(100, index->ntotal));
    std::vector<float> dis(size_t(nq) * res_k);
    return recall_curve(nq, res_k, gt, gt_k, nprobes, [&](int np, idx_t* ids) {
        ivf->nprobe = std::min<size_t>(np, ivf->nlist);
        faiss::indexIVF_stats.reset();
        index->search(nq, xq, res_k, dis.data(), ids);
        return SearchWork{int(ivf->nprobe), double(faiss::indexIVF_stats.ndis),
                          double(faiss::indexIVF_stats.nlist)};
    });
}

std::vector<RecallPoint> evaluate_ivf_mixture(const faiss::Index* index,
                                              const GaussianMixture& model, idx_t nq,
                                              const float* xq, const int32_t* gt, int gt_k,
                                              const std::vector<int>& nprobes,
                                              const MixtureSearchParameters& params) {
    const int res_k = int(std::min<idx_t>(100, index->ntotal));
    FAISS_GMM_CHECK(res_k >= 1, "evaluate_ivf_mixture: the index is empty");
    MixtureSearchParameters sp = params;
    if (sp.max_copies <= 0) sp.max_copies = count_max_copies(index);  // once, not per point
    std::vector<float> dis(size_t(nq) * res_k);
    return recall_curve(nq, res_k, gt, gt_k, nprobes, [&](int np, idx_t* ids) {
        sp.nprobe = np;
        MixtureSearchStats st;
        search_mixture(index, model, nq, xq, res_k, dis.data(), ids, sp, &st);
        return SearchWork{sp.nprobe, st.ndis, st.nlist};
    });
}

}  // namespace faiss_gmm

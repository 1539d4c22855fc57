#include <faiss/IVFlib.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/utils/distances.h>
#include <omp.h>
#include <faiss_gmm/IVFMixture.h>
#include <faiss_gmm/IndexIVFTraining.h>
#include <faiss_gmm/impl/Spill.h>
#include <faiss_gmm/utils/FileUtils.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>
#include <unordered_map>

namespace faiss_gmm {

namespace {

/// The IVF inside `index` and, for an IndexPreTransform, the chain in front.
struct IvfParts {
    faiss::IndexIVF* ivf = nullptr;
    const faiss::IndexPreTransform* pre = nullptr;
};

IvfParts ivf_parts(const faiss::Index* index, const char* what) {
    FAISS_GMM_CHECK_ARG(index, std::string(what) + ": null index");
    IvfParts p;
    p.pre = dynamic_cast<const faiss::IndexPreTransform*>(index);
    p.ivf = faiss::ivflib::try_extract_index_ivf(const_cast<faiss::Index*>(index));
    FAISS_GMM_CHECK_ARG(p.ivf, std::string(what) + ": the index holds no IndexIVF");
    FAISS_GMM_CHECK_ARG(p.ivf->is_trained, std::string(what) + ": the index is not trained");
    // Other wrappers (IndexIDMap, IndexRefine, nested chains) would map ids
    // or vectors in ways that adding and searching past them would skip.
    FAISS_GMM_CHECK_ARG(
        p.pre ? p.pre->index == p.ivf : index == p.ivf,
        std::string(what) + ": the index must be an IndexIVF or one IndexPreTransform over one");
    return p;
}

void check_model_fits(const faiss::IndexIVF* ivf, const GaussianMixture& model, const char* what) {
    model.check_model();
    FAISS_GMM_CHECK_ARG(model.d == ivf->d && idx_t(model.k) == idx_t(ivf->nlist),
                    std::string(what) + ": the model (d=" + std::to_string(model.d) +
                        ", k=" + std::to_string(model.k) + ") is not the index's (d=" +
                        std::to_string(ivf->d) + ", nlist=" + std::to_string(ivf->nlist) + ")");
}

/// x in the IVF's space: the chain applied (owned copy) or x itself.
struct Transformed {
    const float* x;
    std::unique_ptr<const float[]> owned;
};

Transformed to_ivf_space(const IvfParts& p, idx_t n, const float* x) {
    Transformed t{x, nullptr};
    if (p.pre && !p.pre->chain.empty()) {
        t.x = p.pre->apply_chain(n, x);
        if (t.x != x) t.owned.reset(t.x);
    }
    return t;
}

/**
 * FAISS's search_preassigned runs one thread in its default parallel mode
 * (IndexIVF::search makes the threads, one query slice each): slice here
 * the same way, so that the scan runs on every core as FAISS's own search.
 */
void search_preassigned_sliced(const faiss::IndexIVF* ivf, idx_t n, const float* x, idx_t k,
                               const idx_t* assign, const float* cdis, float* dis, idx_t* ids,
                               const faiss::SearchParametersIVF& sp,
                               faiss::IndexIVFStats& stats) {
    const int nt = int(std::max<idx_t>(1, std::min<idx_t>(omp_get_max_threads(), n)));
    const size_t nprobe = sp.nprobe;
    std::vector<faiss::IndexIVFStats> part(nt);
    std::vector<std::string> errors(nt);
#pragma omp parallel for if (nt > 1)
    for (int s = 0; s < nt; s++) {
        const idx_t i0 = n * s / nt, i1 = n * (s + 1) / nt;
        if (i1 <= i0) continue;
        try {  // an exception may not leave an OpenMP region
            ivf->search_preassigned(i1 - i0, x + size_t(i0) * ivf->d, k, assign + i0 * nprobe,
                                    cdis + i0 * nprobe, dis + i0 * k, ids + i0 * k, false, &sp,
                                    &part[s]);
        } catch (const std::exception& e) {
            errors[s] = e.what();
        }
    }
    for (int s = 0; s < nt; s++) {
        FAISS_GMM_CHECK(errors[s].empty(), "search_mixture: " + errors[s]);
        stats.add(part[s]);
    }
}

}  // namespace

namespace {

/// Whether the rule reads the model (SOAR from the nearest list reads only centroids).
bool needs_model(const MultiAssignParameters& p) {
    return p.primary == PrimaryList::MostProbable || (p.rule != SpillRule::Soar && p.max_lists > 1);
}

void check_assign_params(const IvfParts& parts, const GaussianMixture& model,
                         const MultiAssignParameters& p) {
    if (needs_model(p) || model.k > 0) check_model_fits(parts.ivf, model, "assign_multi");
    FAISS_GMM_CHECK_ARG(
        p.max_lists >= 1 && idx_t(p.max_lists) <= idx_t(parts.ivf->nlist),
        "assign_multi: max_lists must be in [1, nlist], got " + std::to_string(p.max_lists));
    FAISS_GMM_CHECK_ARG(
        p.rule != SpillRule::Tempered || (p.temperature > 0 && std::isfinite(p.temperature)),
        "assign_multi: the temperature must be positive, got " + std::to_string(p.temperature));
    FAISS_GMM_CHECK_ARG(p.lambda >= 0 && std::isfinite(p.lambda),
                    "assign_multi: lambda must be >= 0, got " + std::to_string(p.lambda));
    FAISS_GMM_CHECK_ARG(p.tau >= 0.f && p.tau <= 1.f,
                    "assign_multi: tau must be in [0, 1], got " + std::to_string(p.tau));
}

void check_add_ids(const faiss::Index* index, const idx_t* xids) {
    FAISS_GMM_CHECK_ARG(xids || index->ntotal == 0,
                    "add_preassigned: give ids when adding to a non-empty index (its ntotal "
                    "counts list entries, not vectors, once vectors have several)");
}

/// The primary list of every row in one call (on the GPU when the model's
/// device allows one: one backend, the rows up once).
std::vector<idx_t> primary_lists(const IvfParts& parts, const GaussianMixture& model, idx_t n,
                                 const float* xt, const MultiAssignParameters& p) {
    std::vector<idx_t> first(n);  // idx_t is FAISS's id type (Common.h)
    if (p.primary == PrimaryList::MostProbable) {
        std::vector<float> r(n);
        model.top_components(n, xt, 1, first.data(), r.data());
    } else {
        assign_to_lists(parts.ivf, n, xt, first.data(), model.params);
    }
    return first;
}

/// assign_multi on n vectors already checked and in the IVF's space.
void assign_in_ivf_space(const IvfParts& parts, const GaussianMixture& model, idx_t n,
                         const float* xt, const MultiAssignParameters& p, idx_t* lists) {
    const int d = parts.ivf->d, m = p.max_lists;
    const std::vector<idx_t> first = primary_lists(parts, model, n, xt, p);
    if (p.rule == SpillRule::Soar) {
        const idx_t k = idx_t(parts.ivf->nlist);
        std::vector<float> centroids(size_t(k) * d);
        parts.ivf->quantizer->reconstruct_n(0, k, centroids.data());
        for (idx_t i = 0; i < n; i++) lists[size_t(i) * m] = first[i];
        soar_lists(d, k, centroids.data(), n, xt, p.lambda, m, lists);
        return;
    }
    // Tempering keeps the ranking and changes the responsibilities tau reads.
    const bool temper = p.rule == SpillRule::Tempered && m > 1;
    const GaussianMixture tempered =
        temper ? tempered_mixture(model, p.temperature) : GaussianMixture();
    const GaussianMixture& spill = temper ? tempered : model;
    // Rows in blocks, so that the top-m labels and responsibilities stay
    // O(block * m) whatever n is (large: each block's top_components
    // starts a backend, on the GPU its kernels' m passes).
    const idx_t bs = idx_t(1) << 20;
    std::vector<idx_t> top(m > 1 ? size_t(std::min(bs, n)) * m : 0);
    std::vector<float> resp(top.size());
    for (idx_t i0 = 0; i0 < n; i0 += bs) {
        const idx_t nb = std::min(bs, n - i0);
        if (m > 1) spill.top_components(nb, xt + size_t(i0) * d, m, top.data(), resp.data());
        select_lists(nb, first.data() + i0, m > 1 ? m : 0, top.data(), resp.data(), p,
                     lists + size_t(i0) * m);
    }
}

/// add_preassigned on n vectors already checked and in the IVF's space.
MultiAssignStats add_in_ivf_space(faiss::Index* index, const IvfParts& parts, idx_t n,
                                  const float* xt, const idx_t* xids, int max_lists,
                                  const idx_t* lists) {
    const int d = parts.ivf->d;
    const idx_t nlist = idx_t(parts.ivf->nlist);
    // Every row's lists first, so that a bad one adds nothing.
    for (idx_t i = 0; i < n; i++) {
        const idx_t* row = lists + size_t(i) * max_lists;
        FAISS_GMM_CHECK_ARG(row[0] >= 0 && row[0] < nlist,
                        "add_preassigned: vector " + std::to_string(i) + " has no valid list");
        for (int j = 1; j < max_lists; j++)
            FAISS_GMM_CHECK_ARG(row[j] >= -1 && row[j] < nlist,
                            "add_preassigned: vector " + std::to_string(i) + " has list " +
                                std::to_string(row[j]) + ", outside [0, nlist)");
    }
    // One entry per (vector, list): the vector repeated, its id repeated.
    // In blocks, so that the repeated copy is bounded.
    MultiAssignStats st;
    st.n_vectors = n;
    const idx_t bs = 65536;
    std::vector<float> rep;
    std::vector<idx_t> rep_ids, rep_lists;
    for (idx_t i0 = 0; i0 < n; i0 += bs) {
        const idx_t nb = std::min(bs, n - i0);
        rep.clear();
        rep_ids.clear();
        rep_lists.clear();
        for (idx_t i = i0; i < i0 + nb; i++) {
            const idx_t* row = lists + size_t(i) * max_lists;
            for (int j = 0; j < max_lists && row[j] >= 0; j++) {
                rep.insert(rep.end(), xt + size_t(i) * d, xt + size_t(i + 1) * d);
                rep_ids.push_back(xids ? xids[i] : i);
                rep_lists.push_back(row[j]);
            }
        }
        parts.ivf->add_core(idx_t(rep_ids.size()), rep.data(), rep_ids.data(), rep_lists.data());
        st.n_entries += idx_t(rep_ids.size());
    }
    if (parts.pre) index->ntotal = parts.ivf->ntotal;
    return st;
}

}  // namespace

void select_lists(idx_t n, const idx_t* nearest, int t, const idx_t* top, const float* resp,
                  const MultiAssignParameters& p, idx_t* lists) {
    const int m = p.max_lists;
    FAISS_GMM_CHECK_ARG(m >= 1 && (m == 1 || t >= m),
                    "select_lists: need max_lists >= 1 and t >= max_lists candidates");
    // The first m - 1 candidates (by decreasing responsibility) other than the
    // nearest list and >= tau: any t >= m candidates give the same lists.
#pragma omp parallel for
    for (idx_t i = 0; i < n; i++) {
        idx_t* row = lists + size_t(i) * m;
        int filled = 0;
        row[filled++] = nearest[i];
        for (int j = 0; j < t && filled < m; j++) {
            const idx_t c = top[size_t(i) * t + j];
            if (c != row[0] && resp[size_t(i) * t + j] >= p.tau) row[filled++] = c;
        }
        for (; filled < m; filled++) row[filled] = -1;
    }
}

void assign_multi(const faiss::Index* index, const GaussianMixture& model, idx_t n, const float* x,
                  const MultiAssignParameters& p, idx_t* lists) {
    const IvfParts parts = ivf_parts(index, "assign_multi");
    check_assign_params(parts, model, p);
    if (n == 0) return;
    FAISS_GMM_CHECK_ARG(x && lists, "assign_multi: null input");
    check_finite_rows(n, index->d, x, "vectors to add");
    const Transformed xt = to_ivf_space(parts, n, x);
    assign_in_ivf_space(parts, model, n, xt.x, p, lists);
}

MultiAssignStats add_preassigned(faiss::Index* index, idx_t n, const float* x, const idx_t* xids,
                                 int max_lists, const idx_t* lists) {
    const IvfParts parts = ivf_parts(index, "add_preassigned");
    FAISS_GMM_CHECK_ARG(max_lists >= 1, "add_preassigned: max_lists must be >= 1");
    check_add_ids(index, xids);
    if (n == 0) return MultiAssignStats();
    FAISS_GMM_CHECK_ARG(x && lists, "add_preassigned: null input");
    check_finite_rows(n, index->d, x, "vectors to add");
    const Transformed xt = to_ivf_space(parts, n, x);
    return add_in_ivf_space(index, parts, n, xt.x, xids, max_lists, lists);
}

MultiAssignStats add_multi_assign(faiss::Index* index, const GaussianMixture& model, idx_t n,
                                  const float* x, const MultiAssignParameters& p,
                                  const idx_t* xids) {
    // One check and one transform of the vectors for both steps.
    const IvfParts parts = ivf_parts(index, "add_multi_assign");
    check_assign_params(parts, model, p);
    check_add_ids(index, xids);
    if (n == 0) return MultiAssignStats();
    FAISS_GMM_CHECK_ARG(x, "add_multi_assign: null input");
    check_finite_rows(n, index->d, x, "vectors to add");
    const Transformed xt = to_ivf_space(parts, n, x);
    std::vector<idx_t> lists(size_t(n) * p.max_lists);
    assign_in_ivf_space(parts, model, n, xt.x, p, lists.data());
    return add_in_ivf_space(index, parts, n, xt.x, xids, p.max_lists, lists.data());
}

int count_max_copies(const faiss::Index* index) {
    const IvfParts parts = ivf_parts(index, "count_max_copies");
    const faiss::InvertedLists* il = parts.ivf->invlists;
    std::unordered_map<idx_t, int> count;
    count.reserve(size_t(parts.ivf->ntotal));
    int most = parts.ivf->ntotal > 0 ? 1 : 0;
    for (size_t l = 0; l < parts.ivf->nlist; l++) {
        const size_t ls = il->list_size(l);
        if (ls == 0) continue;
        faiss::InvertedLists::ScopedIds ids(il, l);
        for (size_t j = 0; j < ls; j++) most = std::max(most, ++count[ids[j]]);
    }
    return most;
}

void probe_by_posterior(const GaussianMixture& model, const float* centroids, bool ip, idx_t nq,
                        const float* xq, int nprobe, double mass, idx_t* assign, float* cdis) {
    FAISS_GMM_CHECK_ARG(nprobe >= 1 && nprobe <= model.k,
                        "probe_by_posterior: nprobe must be in [1, k]");
    FAISS_GMM_CHECK_ARG(mass >= 0 && std::isfinite(mass), "probe_by_posterior: mass must be >= 0");
    if (nq == 0) return;
    const int d = model.d;
    std::vector<idx_t> top(size_t(nq) * nprobe);
    std::vector<float> resp(size_t(nq) * nprobe);
    model.top_components(nq, xq, nprobe, top.data(), resp.data());
    const bool adaptive = mass > 0 && mass < 1;
    const float worst =
        ip ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
#pragma omp parallel for
    for (idx_t q = 0; q < nq; q++) {
        double cum = 0;
        bool stop = false;
        for (int j = 0; j < nprobe; j++) {
            const size_t e = size_t(q) * nprobe + j;
            if (stop) {
                assign[e] = -1;  // FAISS skips lists < 0
                cdis[e] = worst;
                continue;
            }
            const float* c = centroids + size_t(top[e]) * d;
            const float* v = xq + size_t(q) * d;
            assign[e] = top[e];
            cdis[e] = ip ? faiss::fvec_inner_product(v, c, d) : faiss::fvec_L2sqr(v, c, d);
            cum += resp[e];
            if (adaptive && cum >= mass) stop = true;
        }
    }
}

void keep_distinct(idx_t nq, idx_t kk, const float* fd, const idx_t* fi, idx_t k, bool ip,
                   float* distances, idx_t* labels) {
#pragma omp parallel for
    for (idx_t q = 0; q < nq; q++) {
        const float* dq = fd + size_t(q) * kk;
        const idx_t* iq = fi + size_t(q) * kk;
        float* dout = distances + size_t(q) * k;
        idx_t* lout = labels + size_t(q) * k;
        idx_t got = 0;
        for (idx_t j = 0; j < kk && got < k; j++) {
            if (iq[j] < 0) break;
            bool seen = false;
            for (idx_t t = 0; t < got && !seen; t++) seen = lout[t] == iq[j];
            if (seen) continue;
            dout[got] = dq[j];
            lout[got++] = iq[j];
        }
        for (; got < k; got++) {
            // FAISS's own padding: id -1 at the worst float distance.
            dout[got] = ip ? -std::numeric_limits<float>::max() : std::numeric_limits<float>::max();
            lout[got] = -1;
        }
    }
}

void search_mixture(const faiss::Index* index, const GaussianMixture& model, idx_t nq,
                    const float* xq, idx_t k, float* distances, idx_t* labels,
                    const MixtureSearchParameters& p, MixtureSearchStats* stats) {
    const IvfParts parts = ivf_parts(index, "search_mixture");
    const faiss::IndexIVF* ivf = parts.ivf;
    // Distance order without a mass cut reads no model (k-means IVF with
    // SOAR's copies): an empty one is accepted there.
    if (model.k > 0 || p.order != ProbeOrder::Distance || p.mass > 0)
        check_model_fits(ivf, model, "search_mixture");
    FAISS_GMM_CHECK_ARG(k >= 1, "search_mixture: k must be >= 1");
    FAISS_GMM_CHECK_ARG(p.nprobe >= 1, "search_mixture: nprobe must be >= 1");
    FAISS_GMM_CHECK_ARG(p.mass >= 0 && std::isfinite(p.mass), "search_mixture: mass must be >= 0");
    if (nq == 0) return;
    FAISS_GMM_CHECK_ARG(xq && distances && labels, "search_mixture: null input");
    check_finite_rows(nq, index->d, xq, "queries");
    const int copies = p.max_copies > 0 ? p.max_copies : std::max(1, count_max_copies(index));
    const int nprobe = int(std::min<idx_t>(p.nprobe, idx_t(ivf->nlist)));
    const bool ip = ivf->metric_type == faiss::METRIC_INNER_PRODUCT;
    const Transformed qt = to_ivf_space(parts, nq, xq);
    const int d = ivf->d;

    // Lists per query, and their centroid distances (IVFPQ's precomputed
    // tables add them to the code distances, so they must be the metric's).
    std::vector<idx_t> assign(size_t(nq) * nprobe);
    std::vector<float> cdis(size_t(nq) * nprobe);
    if (p.order == ProbeOrder::Distance) {
        ivf->quantizer->search(nq, qt.x, nprobe, cdis.data(), assign.data());
    } else {
        std::vector<float> centroids(size_t(ivf->nlist) * d);
        ivf->quantizer->reconstruct_n(0, ivf->nlist, centroids.data());
        probe_by_posterior(model, centroids.data(), ip, nq, qt.x, nprobe, p.mass, assign.data(),
                           cdis.data());
    }

    // Over-fetch k * copies entries: an id held `copies` times can fill at
    // most that many places, so k distinct ids survive; the first copy of an
    // id in FAISS's sorted results is its best distance.
    const idx_t kk = std::min<idx_t>(k * copies, std::max<idx_t>(ivf->ntotal, k));
    faiss::SearchParametersIVF sp;
    sp.nprobe = size_t(nprobe);
    faiss::IndexIVFStats ivf_stats;
    const idx_t qb = 4096;  // queries per block: bounds the over-fetched results
    std::vector<float> fd(size_t(std::min(qb, nq)) * kk);
    std::vector<idx_t> fi(fd.size());
    for (idx_t q0 = 0; q0 < nq; q0 += qb) {
        const idx_t nb = std::min(qb, nq - q0);
        search_preassigned_sliced(ivf, nb, qt.x + size_t(q0) * d, kk,
                                  assign.data() + size_t(q0) * nprobe,
                                  cdis.data() + size_t(q0) * nprobe, fd.data(), fi.data(), sp,
                                  ivf_stats);
        keep_distinct(nb, kk, fd.data(), fi.data(), k, ip, distances + size_t(q0) * k,
                      labels + size_t(q0) * k);
    }
    if (stats) {
        stats->nq += nq;
        stats->ndis += double(ivf_stats.ndis);
        stats->nlist += double(ivf_stats.nlist);
    }
}

}  // namespace faiss_gmm

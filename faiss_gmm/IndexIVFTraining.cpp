#include <faiss/IVFlib.h>
#include <faiss/IndexIVF.h>
#include <faiss/index_factory.h>
#include <faiss_gmm/IndexIVFTraining.h>
#include <faiss_gmm/utils/FileUtils.h>

#include <memory>

namespace faiss_gmm {

IndexFlatGmm::IndexFlatGmm(int d_, int nlist_, faiss::MetricType metric,
                           const faiss::ClusteringParameters& cp_,
                           const GaussianMixtureParameters& gmm_)
    : faiss::IndexFlatL2(d_), nlist(nlist_), cp(cp_), gmm(gmm_) {
    metric_type = metric;
    if (metric == faiss::METRIC_INNER_PRODUCT) cp.spherical = true;
}

void IndexFlatGmm::train(idx_t n, const float* x) {
    GmmClustering clus(d, nlist, cp, gmm);
    faiss::IndexFlatL2 scratch(d);
    clus.train(n, x, scratch);
    model = clus.model;
    reset();
    add(nlist, clus.centroids.data());
    is_trained = true;
}

void train_index_gmm(faiss::Index* index, idx_t n, const float* x,
                     const GaussianMixtureParameters& gmm, GaussianMixture* model_out) {
    FAISS_GMM_CHECK(index, "null index");
    faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index);
    FAISS_GMM_CHECK(ivf, "the index holds no IndexIVF: there is no coarse quantizer to train");
    FAISS_GMM_CHECK(!index->is_trained && !ivf->is_trained, "the index is already trained");
    FAISS_GMM_CHECK(x && n > 0, "no training data");
    FAISS_GMM_CHECK(idx_t(ivf->nlist) <= n, "nlist=" + std::to_string(ivf->nlist) +
                                                " lists but only " + std::to_string(n) +
                                                " training vectors (need nlist <= n)");
    check_finite_rows(n, index->d, x, "training data");

    IndexFlatGmm gq(ivf->d, int(ivf->nlist), ivf->metric_type, ivf->cp, gmm);
    faiss::Index* original = ivf->quantizer;
    const char saved_mode = ivf->quantizer_trains_alone;
    ivf->quantizer = &gq;
    ivf->quantizer_trains_alone = 1;
    try {
        index->train(n, x);  // transforms, then IVF: GMM quantizer, then codes
    } catch (...) {
        ivf->quantizer = original;
        ivf->quantizer_trains_alone = saved_mode;
        throw;
    }
    ivf->quantizer = original;
    ivf->quantizer_trains_alone = saved_mode;
    original->reset();
    if (!original->is_trained) original->train(ivf->nlist, gq.get_xb());
    original->add(ivf->nlist, gq.get_xb());
    if (model_out) *model_out = gq.model;
}

faiss::Index* index_factory_gmm(int d, const std::string& description, idx_t n, const float* x,
                                const GaussianMixtureParameters& gmm, faiss::MetricType metric,
                                GaussianMixture* model_out) {
    std::unique_ptr<faiss::Index> index;
    try {
        index.reset(faiss::index_factory(d, description.c_str(), metric));
    } catch (const std::exception& e) {
        throw Error("faiss-gmm: bad factory string '" + description + "': " + e.what());
    }
    train_index_gmm(index.get(), n, x, gmm, model_out);
    return index.release();
}

}  // namespace faiss_gmm

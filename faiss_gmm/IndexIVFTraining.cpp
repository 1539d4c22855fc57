#include <faiss/IVFlib.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/index_factory.h>
#include <faiss_gmm/EStep.h>
#include <faiss_gmm/IndexIVFTraining.h>
#include <faiss_gmm/KMeans.h>
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
    faiss::IndexFlatL2 scratch(d);
    std::vector<float> centroids;
    if (fitted) {
        model = *fitted;
        centroids = fitted->means;
    } else if (use_kmeans) {
        KMeansClustering km(d, nlist, cp);
        km.backend = gmm;
        km.verbose = cp.verbose || gmm.verbose;
        km.train(n, x, scratch);
        centroids = std::move(km.centroids);
    } else {
        GmmClustering clus(d, nlist, cp, gmm);
        clus.train(n, x, scratch);
        model = clus.model;
        centroids = std::move(clus.centroids);
    }
    reset();
    add(nlist, centroids.data());
    is_trained = true;
}

namespace {

void train_index_with(faiss::Index* index, idx_t n, const float* x,
                      const GaussianMixtureParameters& gmm, GaussianMixture* model_out,
                      bool kmeans, const GaussianMixture* fitted = nullptr) {
    FAISS_GMM_CHECK_ARG(index, "null index");
    faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index);
    FAISS_GMM_CHECK_ARG(ivf, "the index holds no IndexIVF: there is no coarse quantizer to train");
    if (fitted) {
        FAISS_GMM_CHECK_ARG(index == ivf,
                        "a fitted model needs a plain IVF index: a pre-transform (OPQ, PCA) would "
                        "be trained anew and no longer match the model's space");
        fitted->check_model();
        FAISS_GMM_CHECK_ARG(fitted->d == ivf->d && idx_t(fitted->k) == idx_t(ivf->nlist),
                        "the model (d=" + std::to_string(fitted->d) + ", k=" +
                                std::to_string(fitted->k) + ") does not fit the index (d=" +
                                std::to_string(ivf->d) + ", nlist=" + std::to_string(ivf->nlist) +
                                ")");
    }
    FAISS_GMM_CHECK_ARG(!index->is_trained && !ivf->is_trained, "the index is already trained");
    FAISS_GMM_CHECK_ARG(x && n > 0, "no training data");
    FAISS_GMM_CHECK_ARG(fitted || idx_t(ivf->nlist) <= n, "nlist=" + std::to_string(ivf->nlist) +
                                                " lists but only " + std::to_string(n) +
                                                " training vectors (need nlist <= n)");
    check_finite_rows(n, index->d, x, "training data");

    // The trainer's seed seeds FAISS's sample too (both default to 1234):
    // `build --seed` must change the run, not only the EM's draws.
    faiss::ClusteringParameters cp = ivf->cp;
    cp.seed = gmm.seed;
    IndexFlatGmm gq(ivf->d, int(ivf->nlist), ivf->metric_type, cp, gmm);
    gq.use_kmeans = kmeans;
    gq.fitted = fitted;
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

}  // namespace

void train_index_gmm(faiss::Index* index, idx_t n, const float* x,
                     const GaussianMixtureParameters& gmm, GaussianMixture* model_out) {
    train_index_with(index, n, x, gmm, model_out, false);
}

void train_index_kmeans(faiss::Index* index, idx_t n, const float* x,
                        const GaussianMixtureParameters& gmm) {
    train_index_with(index, n, x, gmm, nullptr, true);
}

void train_index_from_model(faiss::Index* index, const GaussianMixture& model, idx_t n,
                            const float* x) {
    train_index_with(index, n, x, model.params, nullptr, false, &model);
}

void assign_to_lists(const faiss::IndexIVF* ivf, idx_t n, const float* x, idx_t* lists,
                     const GaussianMixtureParameters& p) {
    FAISS_GMM_CHECK_ARG(ivf && ivf->is_trained, "assign_to_lists: the IVF is not trained");
    const auto* flat = dynamic_cast<const faiss::IndexFlat*>(ivf->quantizer);
    const bool gpu = flat && flat->metric_type == faiss::METRIC_L2 && p.device != Device::Cpu &&
                     gpu_backend_available() && flat->ntotal == idx_t(ivf->nlist);
    if (!gpu) {
        ivf->quantizer->assign(n, x, lists);
        return;
    }
    const GaussianMixture terms = nearest_mean_model(int(ivf->d), int(ivf->nlist), flat->get_xb());
    auto backend = make_estep_backend(p);
    AssignOutputs out;
    out.labels = lists;
    backend->assign(terms, HardAssign::NearestMean, n, x, nullptr, out);
}

void add_to_index(faiss::Index* index, idx_t n, const float* x,
                  const GaussianMixtureParameters& p) {
    FAISS_GMM_CHECK_ARG(index, "null index");
    faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index);
    if (!ivf || n == 0) {
        index->add(n, x);
        return;
    }
    FAISS_GMM_CHECK_ARG(index->is_trained, "add_to_index: the index is not trained");
    check_finite_rows(n, index->d, x, "vectors to add");
    const float* xt = x;
    std::unique_ptr<const float[]> owned;
    auto* pt = dynamic_cast<faiss::IndexPreTransform*>(index);
    if (pt && pt->index == ivf && !pt->chain.empty()) {
        xt = pt->apply_chain(n, x);
        owned.reset(xt);
    }
    FAISS_GMM_CHECK_ARG(
        pt ? pt->index == ivf : index == ivf,
        "add_to_index: the IVF must be the index or the end of one pre-transform chain");
    std::vector<idx_t> lists(n);
    assign_to_lists(ivf, n, xt, lists.data(), p);
    static_assert(sizeof(idx_t) == sizeof(faiss::Index::idx_t), "id types differ");
    ivf->add_core(n, xt, nullptr, reinterpret_cast<const faiss::Index::idx_t*>(lists.data()));
    if (pt) pt->ntotal = ivf->ntotal;
}

faiss::Index* index_factory_gmm(int d, const std::string& description, idx_t n, const float* x,
                                const GaussianMixtureParameters& gmm, faiss::MetricType metric,
                                GaussianMixture* model_out) {
    std::unique_ptr<faiss::Index> index;
    try {
        index.reset(faiss::index_factory(d, description.c_str(), metric));
    } catch (const std::exception& e) {
        throw InvalidArgument("faiss-gmm: bad factory string '" + description + "': " + e.what());
    }
    train_index_gmm(index.get(), n, x, gmm, model_out);
    return index.release();
}

}  // namespace faiss_gmm

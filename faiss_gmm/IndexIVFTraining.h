/**
 * GMM-trained coarse quantizers for standard FAISS IVF indexes.
 */
#pragma once

#include <faiss/IndexFlat.h>
#include <faiss_gmm/Clustering.h>

#include <string>

namespace faiss_gmm {

/**
 * A self-training coarse quantizer: an IndexFlatL2 whose train(n, x) fits a
 * GMM with nlist components and stores the means. Install it as the
 * quantizer of an IndexIVF with quantizer_trains_alone = 1 and the IVF (also
 * inside IndexPreTransform chains such as OPQ or PCA, which hand the
 * transformed vectors down) trains through GMM. For inner product the metric
 * is switched to METRIC_INNER_PRODUCT and the means are normalised.
 */
struct IndexFlatGmm : faiss::IndexFlatL2 {
    int nlist;                       ///< number of components / inverted lists
    faiss::ClusteringParameters cp;  ///< FAISS clustering parameters (niter, seed, sampling)
    GaussianMixtureParameters gmm;   ///< GMM parameters
    GaussianMixture model;           ///< the fitted mixture, after train()
    /// Train with k-means (KMeansClustering: the GPU k-means when gmm.device
    /// allows a GPU, else FAISS's) instead of the GMM; `model` then stays empty.
    bool use_kmeans = false;
    /// A mixture fitted before (not owned; it must outlive train()): train()
    /// installs its means and fits nothing, so that one model serves several
    /// indexes (spill rules, codes) built over the same data.
    const GaussianMixture* fitted = nullptr;

    /** A quantizer of nlist means in dimension d for the given metric. */
    IndexFlatGmm(int d, int nlist, faiss::MetricType metric = faiss::METRIC_L2,
                 const faiss::ClusteringParameters& cp = {},
                 const GaussianMixtureParameters& gmm = {});

    /** Fit the GMM on (n, x) and replace the stored vectors by its means. */
    void train(idx_t n, const float* x) override;
};

/**
 * GMM-train an untrained FAISS index that holds an IndexIVF (directly or in
 * an IndexPreTransform chain): the coarse quantizer is fitted by GMM, the rest
 * (OPQ rotation, PQ / SQ codebooks) is trained as FAISS does. The index keeps
 * its own quantizer type (the means are added to it), so the result is a
 * standard FAISS index. The IVF's `cp` (niter, seed, max_points_per_centroid)
 * applies. Throws Error when the index has no IVF, is already trained, or the
 * data is bad. The fitted mixture goes to model_out when given.
 */
void train_index_gmm(faiss::Index* index, idx_t n, const float* x,
                     const GaussianMixtureParameters& gmm = {},
                     GaussianMixture* model_out = nullptr);

/**
 * As train_index_gmm, with k-means (FAISS's semantics, the IVF's cp) as the
 * quantizer's trainer: on the GPU when gmm.device allows one (gmm's device,
 * precision and GPU fields are read), else FAISS's own k-means.
 */
void train_index_kmeans(faiss::Index* index, idx_t n, const float* x,
                        const GaussianMixtureParameters& gmm = {});

/**
 * As train_index_gmm with a mixture fitted before (GaussianMixture::load,
 * train_index_gmm's model_out): the coarse quantizer takes model's means
 * without EM, the rest of the index (PQ / SQ codebooks) trains on (n, x) as
 * FAISS does. The index must be a plain IndexIVF (a pre-transform such as
 * OPQ would be trained anew and no longer match the model's space) with
 * nlist == model.k and d == model.d; Throws Error otherwise.
 */
void train_index_from_model(faiss::Index* index, const GaussianMixture& model, idx_t n,
                            const float* x);

/**
 * The nearest list of each row of x (n x ivf->d, in the IVF's space, after
 * any pre-transform) by L2 to the quantizer's centroids: the GPU's argmax
 * kernels when p.device allows a GPU and the quantizer is an IndexFlat of
 * the L2 metric, else the quantizer's own search.
 */
void assign_to_lists(const faiss::IndexIVF* ivf, idx_t n, const float* x, idx_t* lists,
                     const GaussianMixtureParameters& p = {});

/**
 * index->add(n, x) for an index holding an IndexIVF (directly or in an
 * IndexPreTransform chain), with the list assignment by assign_to_lists
 * (on the GPU when one is allowed), then FAISS's add_core (codes, lists).
 * The result is the index FAISS's own add() builds, up to near ties.
 */
void add_to_index(faiss::Index* index, idx_t n, const float* x,
                  const GaussianMixtureParameters& p = {});

/**
 * faiss::index_factory(d, description, metric) followed by
 * train_index_gmm(): returns a trained, empty, standard FAISS index (the
 * caller owns it and adds the vectors). E.g. "IVF1024,Flat", "IVF4096,PQ32",
 * "OPQ16,IVF1024,PQ16", "IVF1024,SQ8".
 */
faiss::Index* index_factory_gmm(int d, const std::string& description, idx_t n, const float* x,
                                const GaussianMixtureParameters& gmm = {},
                                faiss::MetricType metric = faiss::METRIC_L2,
                                GaussianMixture* model_out = nullptr);

}  // namespace faiss_gmm

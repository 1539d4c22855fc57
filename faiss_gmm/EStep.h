/**
 * The backend seam: an E-step turns a block of rows and the current model
 * into sufficient statistics (O(K*D)) and per-row log-normalisers (O(N)).
 * The CPU backend (OpenBLAS) lives in impl/CpuEStep; the fused CUDA kernels
 * plug in behind the same interface.
 */
#pragma once

#include <faiss_gmm/GaussianMixture.h>

#include <memory>
#include <vector>

namespace faiss_gmm {

class DataSource;

/**
 * Sums over rows of the E-step, in double. Sums of x are taken about `shift`
 * (x - shift), a point near the data: second moments about a nearby point
 * keep their digits when the data sits far from the origin (SIFT: 0..180).
 */
struct SufficientStatistics {
    int d = 0, k = 0;
    CovarianceType covariance_type = CovarianceType::Spherical;
    std::vector<double> shift;   ///< d: the point the sums are taken about
    std::vector<double> nk;      ///< k: sum_i w_i r_ik
    std::vector<double> sum_x;   ///< k x d: sum_i w_i r_ik (x_i - shift)
    std::vector<double> sum_x2;  ///< k (spherical: sum w r ||x - shift||^2), k x d (diagonal: sum
                                 ///< w r (x - shift)^2) or k x d x d (full: sum w r (x - shift)
                                 ///< (x - shift)^T)
    double sum_log_norm = 0;     ///< sum_i w_i log Z_i
    double sum_weights = 0;      ///< sum_i w_i (n when unweighted)

    /** Zeroed statistics of the given shape about the given shift. */
    void reset(int d, int k, CovarianceType c, const std::vector<double>& shift);
    /** Add another set taken about the same shift (blocks, threads, ranks). */
    void merge(const SufficientStatistics& other);
};

/** The point the E-step centres on: sum_k pi_k mu_k (no pass over data). */
std::vector<double> mixture_center(const GaussianMixture& model);

/// How EStepBackend::assign picks each row's component.
enum class HardAssign {
    NearestMean = 0,   ///< the nearest mean in L2 (k-means; weights and variances ignored)
    MostProbable = 1,  ///< the largest responsibility (predict, the top-1 of top_components)
};

/**
 * The model whose most probable component is the nearest of `means`
 * (k x d): equal weights and unit spherical variances, so log pi + log N =
 * const - ||x - mu||^2 / 2. What HardAssign::NearestMean reads of a model
 * is its means; this gives them a model that passes check_model().
 */
GaussianMixture nearest_mean_model(int d, int k, const float* means);

/// What EStepBackend::assign writes; each may be null.
struct AssignOutputs {
    idx_t* labels = nullptr;  ///< n: the component of each row
    float* resp = nullptr;    ///< n: that component's responsibility (MostProbable only)
    /// One-hot statistics added (the caller resets them: shape and shift):
    /// Nk, sum w (x - s) and the second moments of the rows given to each component.
    SufficientStatistics* stats = nullptr;
    double* objective =
        nullptr;  ///< += sum ||x - mu_label||^2, unweighted as FAISS's (NearestMean)
};

/**
 * k-means++'s state over n rows (D^2 sampling): each row's squared distance
 * to its nearest chosen centre, where the backend keeps the rows (device
 * memory on a GPU). kmeans_plus_plus (KMeans.h) draws and orders the steps.
 */
class SeedingDistances {
   public:
    virtual ~SeedingDistances() = default;
    /**
     * Fold centre c (d floats, host) in: dist_i = min(dist_i, ||x_i -
     * c||^2) (= on the first call), in double. Returns sum_i w_i dist_i.
     */
    virtual double add_centre(const float* c) = 0;
    /**
     * The first row whose running sum w_0 dist_0 + ... + w_i dist_i reaches
     * r, never a row of zero mass; -1 when none does (r above the total by
     * rounding).
     */
    virtual idx_t draw(double r) = 0;
};

/** One E-step implementation. */
class EStepBackend {
   public:
    virtual ~EStepBackend() = default;
    /** Short name for logs ("cpu", "gpu:0"). */
    virtual std::string name() const = 0;
    /**
     * Add the statistics of rows x (n x d, host memory) under `model` into
     * `stats` (already reset with its shift). `weights` (n, may be null)
     * weight the rows; `log_norm` (n, may be null) receives log Z_i.
     */
    virtual void accumulate(const GaussianMixture& model, idx_t n, const float* x,
                            const float* weights, float* log_norm, SufficientStatistics& stats) = 0;
    /**
     * Add the statistics of rows [i0, i0 + n) of src (unweighted). The
     * default reads float32 blocks of at most block_bytes() and calls
     * accumulate(); the GPU backend streams the stored bytes instead.
     * Throws Error naming the first row holding a NaN or Inf.
     */
    virtual void accumulate_source(const GaussianMixture& model, const DataSource& src, idx_t i0,
                                   idx_t n, SufficientStatistics& stats);
    /**
     * Hard assignment of rows x (n x d, host; weights may be null) under
     * `model`: see HardAssign and AssignOutputs. The default runs on the
     * CPU (FAISS's exact IndexFlatL2 search for NearestMean); the GPU
     * backend runs the E-step's kernels with an argmax policy, so nothing
     * proportional to n * k runs on the host.
     */
    virtual void assign(const GaussianMixture& model, HardAssign how, idx_t n, const float* x,
                        const float* weights, const AssignOutputs& out);
    /**
     * The t most probable components of each row of x (n x d, host) under
     * `model`, best first (ties to the lower index): labels and their
     * responsibilities, n x t each. The default runs on the CPU; the GPU
     * backend runs t argmax passes of the E-step's kernels.
     */
    virtual void top_components(const GaussianMixture& model, idx_t n, const float* x, int t,
                                idx_t* labels, float* resp);
    /**
     * k-means++'s distances over rows x (n x d, host; weights may be null),
     * which stay unchanged while the result lives. The default keeps them
     * on the host; the GPU backend on the device (reading pinned rows).
     */
    virtual std::unique_ptr<SeedingDistances> seeding_distances(idx_t n, int d, const float* x,
                                                                const float* weights);
    /**
     * Promise that rows x (n x d) and weights (may be null) stay unchanged
     * until unpin_rows() or the backend's end: the GPU backend then keeps a
     * device copy, and accumulate / assign on exactly (n, x, weights) read
     * it instead of the host (the rows go up once per fit). Default: nothing.
     */
    virtual void pin_rows(idx_t n, int d, const float* x, const float* weights) {}
    /** Forget pinned rows (frees their device copy). */
    virtual void unpin_rows() {}
    /** Whether the work runs on a GPU (the trainer then uses the GPU k-means). */
    virtual bool on_gpu() const { return false; }
    /** Host bytes one streamed block may take. */
    virtual size_t block_bytes() const { return size_t(64) << 20; }
    /** Device memory the backend holds now (its buffers only grow): 0 on the CPU. */
    virtual size_t device_bytes() const { return 0; }
};

/**
 * Rows split over several backends (the GPUs of a host, or workers sharing
 * one), each driven by its own host thread; each backend sums its share
 * into its own statistics, which are added on the host in double. The M-step
 * runs on the host, so the O(K*D) sums go there whatever the reduction:
 * adding a few MB per iteration on the CPU costs microseconds next to the
 * E-step, where an NCCL all-reduce would add a communicator and a device
 * copy for nothing.
 */
class ShardedEStep : public EStepBackend {
   public:
    explicit ShardedEStep(std::vector<std::unique_ptr<EStepBackend>> workers);
    std::string name() const override;
    /** Contiguous row ranges, one per worker, in proportion 1 : 1 : ... */
    void accumulate(const GaussianMixture& model, idx_t n, const float* x, const float* weights,
                    float* log_norm, SufficientStatistics& stats) override;
    void accumulate_source(const GaussianMixture& model, const DataSource& src, idx_t i0, idx_t n,
                           SufficientStatistics& stats) override;
    void assign(const GaussianMixture& model, HardAssign how, idx_t n, const float* x,
                const float* weights, const AssignOutputs& out) override;
    void top_components(const GaussianMixture& model, idx_t n, const float* x, int t, idx_t* labels,
                        float* resp) override;
    /** Each worker's distances over its share; totals and draws in row order. */
    std::unique_ptr<SeedingDistances> seeding_distances(idx_t n, int d, const float* x,
                                                        const float* weights) override;
    /** Each worker pins its share of the rows. */
    void pin_rows(idx_t n, int d, const float* x, const float* weights) override;
    void unpin_rows() override;
    bool on_gpu() const override;
    size_t n_workers() const { return workers_.size(); }
    size_t device_bytes() const override;

   private:
    /// Run f(w, begin, count) for each worker's share of n rows, in threads;
    /// rethrows the first worker's error.
    template <class F>
    void for_shares(idx_t n, F&& f);
    std::vector<std::unique_ptr<EStepBackend>> workers_;
};

/** Whether a GPU E-step backend is compiled in and a GPU is visible. */
bool gpu_backend_available();

/**
 * The backend for `params.device`: Auto picks the GPU when
 * gpu_backend_available(), else the CPU; Gpu throws Error when unavailable.
 * On the GPU: the devices of params.gpu_devices (repeats allowed: workers
 * sharing a device), else params.gpu_device when >= 0, else every visible
 * GPU; more than one makes a ShardedEStep.
 */
std::unique_ptr<EStepBackend> make_estep_backend(const GaussianMixtureParameters& params);

}  // namespace faiss_gmm

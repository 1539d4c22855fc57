/**
 * Gaussian mixture model trained with EM: the parameters, the model and the
 * fit loop. The E-step itself is delegated to an EStepBackend (CPU or GPU)
 * so that the N x K responsibility matrix never exists at full size.
 */
#pragma once

#include <faiss_gmm/utils/Common.h>

#include <memory>
#include <string>
#include <vector>

namespace faiss_gmm {

struct SufficientStatistics;
class DataSource;
class EStepBackend;
class Communicator;

/// Shape of each component's covariance.
enum class CovarianceType {
    Spherical = 0,  ///< one variance per component (sigma_k^2 I)
    Diagonal = 1,   ///< one variance per component and dimension
    Full = 2,       ///< a full D x D covariance per component (GPU E-step: D <= 128)
};

/// How the means are initialised.
enum class InitMethod {
    /// k-means on the training sample (default), with FAISS's semantics:
    /// on the GPU backend our GPU k-means (kmeans_iterations), on the CPU
    /// faiss::Clustering itself
    KMeans = 0,
    KMeansPlusPlus = 1,  ///< D^2 sampling (Arthur & Vassilvitskii)
    RandomRows = 2,      ///< k distinct random rows
    FaissKMeans = 3,     ///< faiss::Clustering on the CPU, whatever the backend
};

/// Which E-step implementation runs.
enum class Device {
    Auto = 0,  ///< the GPU when one is present and built in, else the CPU
    Cpu = 1,   ///< always the CPU (OpenBLAS) backend
    Gpu = 2,   ///< the GPU backend; an error when none is available
};

/// Numeric precision of the E-step's dot products (GPU backends).
enum class Precision {
    Fp32 = 0,  ///< float32-class results (default): 3xTF32 tensor-core products
    Tf32 = 1,  ///< results to ~1e-3: TF32-class tensor-core products
    Bf16 = 2,  ///< results to ~5e-3: bf16-class tensor-core products
    /// single bf16 products for the log-densities and the accumulation:
    /// per-step statistics to ~1e-2 (bench/NOTES.md), for speed
    Fast = 3,
};

const char* to_string(CovarianceType c);
const char* to_string(InitMethod m);
const char* to_string(Device d);
const char* to_string(Precision p);
/** Parse "spherical" / "diagonal" (throws Error on anything else). */
CovarianceType covariance_type_from_string(const std::string& s);
/** Parse "kmeans" / "kmeans++" / "random" / "faiss-kmeans" (throws Error otherwise). */
InitMethod init_method_from_string(const std::string& s);
/** Parse "auto" / "cpu" / "gpu" (throws Error otherwise). */
Device device_from_string(const std::string& s);
/** "fp32", "tf32", "bf16" or "fast"; throws Error naming the bad value. */
Precision precision_from_string(const std::string& s);

/** Parameters of a GMM fit, in the style of faiss::ClusteringParameters. */
struct GaussianMixtureParameters {
    CovarianceType covariance_type =
        CovarianceType::Spherical;  ///< spherical by default: the cheapest and the closest to
                                    ///< k-means
    int niter = 20;                 ///< maximum number of EM iterations
    double tol = 1e-4;  ///< stop when the mean log-likelihood per row changes less than this
    /// Added to every variance in the M-step, in units of the training
    /// sample's mean per-dimension variance, so one default suits data of any
    /// scale (SIFT's 0..180 as well as unit vectors). Keeps components on
    /// constant dimensions (MNIST's empty border pixels) from collapsing.
    double reg_covar = 1e-3;
    InitMethod init = InitMethod::KMeans;  ///< initialisation of the means
    int kmeans_niter = 10;                 ///< k-means iterations when init == KMeans
    int seed = 1234;  ///< seed of every random choice (subsample, init, re-seeding)
    /// Subsample to at most k * this many rows, as FAISS does for k-means
    /// (256 in faiss::ClusteringParameters); 0 or negative keeps every row.
    int max_points_per_component = 256;
    int min_points_per_component = 39;  ///< warn when n < k * this (FAISS's threshold)
    /// A component whose responsibility mass falls below this many rows is
    /// re-seeded by splitting the heaviest one (as FAISS splits for empty clusters).
    double min_component_mass = 1.0;
    bool normalize_means = false;  ///< L2-normalise means after each M-step (inner-product IVF, as
                                   ///< FAISS's spherical k-means)
    Device device = Device::Auto;  ///< which E-step backend runs
    Precision precision = Precision::Fp32;  ///< GPU E-step accuracy class (the CPU is always fp32);
                                            ///< d > 128 runs fp32 SIMT kernels
    int gpu_device = -1;  ///< GPU ordinal; -1: every visible GPU (rows split between them)
    /// GPUs to split the rows over (overrides gpu_device); a device may
    /// repeat (workers sharing it).
    std::vector<int> gpu_devices;
    /// Full-data mode on the GPU: keep each GPU's share of the rows (as
    /// stored: uint8 rows take a quarter of float32) resident on the device
    /// after the first iteration when it fits in this many bytes, so later
    /// iterations read no host memory; 0 streams every iteration (device
    /// memory stays at a few blocks). The source must not change during the fit.
    size_t gpu_cache_bytes = 0;
    size_t max_block_bytes =
        size_t(64) << 20;  ///< scratch budget per E-step block (bounds the rows x K slice)
    bool verbose = false;  ///< print per-iteration progress on stderr
    /// After every EM iteration, write the model and the EM state here
    /// (atomically: temporary file, then rename); "" writes none. The file
    /// also loads as a model (GaussianMixture::load).
    std::string checkpoint_path;
    /// Continue from checkpoint_path when it exists (same data and
    /// parameters): the run then ends as the uninterrupted one would.
    bool resume = false;
};

/** What one EM iteration did (see GaussianMixture::iteration_stats). */
struct GmmIterationStats {
    double log_likelihood;  ///< mean log-likelihood per (weighted) row under the model entering the
                            ///< iteration
    double time;            ///< seconds for the whole iteration
    double time_estep;      ///< seconds spent in the E-step
    int n_reseeded;         ///< components re-seeded (empty or collapsed) in the M-step
    double imbalance_factor;  ///< k * sum(Nk^2) / (sum Nk)^2 from soft counts, as FAISS's imbalance
                              ///< factor
};

/** A fitted (or being fitted) Gaussian mixture over R^d with k components. */
class GaussianMixture {
   public:
    int d = 0;  ///< dimension
    int k = 0;  ///< number of components
    GaussianMixtureParameters params;

    std::vector<float> weights;    ///< k mixing weights pi_k, summing to 1
    std::vector<float> means;      ///< k x d component means (row-major)
    std::vector<float> variances;  ///< k (spherical), k x d (diagonal) variances, or k x d x d
                                   ///< covariances (full: row-major, symmetric positive definite)
    std::vector<GmmIterationStats> iteration_stats;  ///< one entry per EM iteration of the last fit
    /// Where the last fit's time went (seconds): rows to the device, the
    /// initialisation (means and initial statistics), the EM iterations.
    double time_upload = 0, time_init = 0, time_em = 0;
    bool converged = false;         ///< whether the last fit met tol before niter
    size_t estep_device_bytes = 0;  ///< device memory the E-step held at the end of the last fit
                                    ///< (0 on the CPU): what bounds a streamed fit's GPU use

    GaussianMixture() = default;
    /** An unfitted model of k components in dimension d. */
    GaussianMixture(int d, int k, const GaussianMixtureParameters& params = {});

    /**
     * Fit with EM on n rows of x (n x d, row-major), optionally weighted.
     * Subsamples to k * max_points_per_component rows as FAISS does.
     * Throws Error on NaN/Inf rows (naming the first), k > n or bad sizes.
     */
    void fit(idx_t n, const float* x, const float* sample_weights = nullptr);

    /**
     * Fit on rows read from a source (files, generators, shards). With
     * max_points_per_component > 0 (the default, FAISS's rule) only the
     * k * max_points_per_component sampled rows are read, and the result
     * equals fit() on the same rows in memory. With max_points_per_component
     * <= 0 every EM iteration streams all rows through the E-step (device
     * memory stays bounded by the backend's blocks); the initialisation then
     * runs on k * 256 sampled rows.
     */
    void fit(const DataSource& data);
    /**
     * Fit on data split over the processes of comm (MPI ranks): each passes
     * its own shard, and the shards in rank order form the data. The result
     * is that of fit() on the whole data on one process: the same sample
     * (gathered from the ranks that hold its rows), and in full-data mode
     * each iteration's statistics summed over the ranks. Every process ends
     * with the same model; only rank 0 prints progress and writes
     * checkpoints, and a resume reads rank 0's checkpoint. With several
     * ranks and no GPU chosen, each rank takes GPU local_rank % count.
     * An Error on one rank leaves the others in a collective: end the job
     * with comm.abort() (the CLI does).
     */
    void fit(const DataSource& shard, const Communicator& comm);
    /**
     * Fit starting from the given means (k x d) instead of running the
     * initialiser; variances and weights come from a hard assignment.
     */
    void fit_from_means(idx_t n, const float* x, const float* init_means,
                        const float* sample_weights = nullptr);

    /** Per-row log-likelihood log p(x_i) (n floats into out). */
    void score_samples(idx_t n, const float* x, float* out) const;
    /** Mean per-row log-likelihood. */
    double score(idx_t n, const float* x) const;
    /** Most responsible component of each row (n labels). */
    void predict(idx_t n, const float* x, idx_t* labels) const;
    /**
     * The t most responsible components of each row, most responsible first:
     * labels and responsibilities are n x t.
     */
    void top_components(idx_t n, const float* x, int t, idx_t* labels,
                        float* responsibilities) const;
    /** Bayesian information criterion on (n, x): -2 log L + p log n. */
    double bic(idx_t n, const float* x) const;
    /** Number of free parameters of the model. */
    double n_parameters() const;

    /** Write the model to path atomically (temporary file, then rename). */
    void save(const std::string& path) const;
    /** Read a model written by save(); throws Error on a bad file. */
    static GaussianMixture load(const std::string& path);

    /** Check that sizes and values are a usable model (throws Error). */
    void check_model() const;

    /** Component c's variance along dimension j, whatever the covariance type. */
    float variance(int c, int j) const {
        switch (params.covariance_type) {
            case CovarianceType::Spherical:
                return variances[c];
            case CovarianceType::Diagonal:
                return variances[size_t(c) * d + j];
            default:
                return variances[(size_t(c) * d + j) * d + j];  // the diagonal
        }
    }

    /** Number of variance values: k, k * d or k * d * d (full: the covariances). */
    size_t n_variances() const {
        switch (params.covariance_type) {
            case CovarianceType::Spherical:
                return size_t(k);
            case CovarianceType::Diagonal:
                return size_t(k) * d;
            default:
                return size_t(k) * d * d;
        }
    }

   private:
    /// Validation, subsampling and initialisation on rows in memory; then
    /// EM over them, or over `stream` when given (full-data mode).
    /// `stream` is this process's shard of the comm's data (n_stream rows in all).
    void fit_impl(idx_t n, const float* x, const float* init_mu, const float* w,
                  const DataSource* stream, idx_t n_stream, const Communicator& comm);
    /// The E-step backend of a fit (a GPU each for ranks sharing a host).
    std::unique_ptr<EStepBackend> fit_backend(const Communicator& comm) const;
    /// EM iterations after those in iteration_stats (a resumed run), prev:
    /// the last one's log-likelihood; estep(backend, stats) sums the
    /// statistics of n_rows rows (all processes').
    template <class EStepFn>
    void run_em(EStepBackend& backend, idx_t n_rows, double prev, const Communicator& comm,
                EStepFn&& estep);
    /// The checkpoint's EM state (read by rank 0, sent to all) into this
    /// model; false when there is none.
    bool resume_from_checkpoint(double* prev_log_likelihood, const Communicator& comm);
    void write_checkpoint(double prev_log_likelihood) const;
    void init_means(EStepBackend& backend, idx_t n, const float* x, const float* w,
                    std::vector<float>& mu) const;
    /// shift: the sample mean, the point the initial statistics are taken about.
    void init_from_hard_assignment(EStepBackend& backend, idx_t n, const float* x, const float* w,
                                   const float* mu, const std::vector<double>& shift);
    /// The M-step: weights, means and covariances from the statistics,
    /// reg added to the variances; returns the components re-seeded.
    int m_step(const SufficientStatistics& st, double reg);
    /// Component c's parameters from its statistics (total: the sum of
    /// Nk); false when it is empty, not positive definite or collapsed.
    bool update_component(int c, const SufficientStatistics& st, double reg, double total);
    /// Re-seed every component marked dead by splitting the heaviest one;
    /// returns how many.
    int reseed(std::vector<char>& dead);
    double reg_absolute_ = 0;  ///< reg_covar in data units, set by fit
};

}  // namespace faiss_gmm

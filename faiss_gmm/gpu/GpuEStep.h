/**
 * The CUDA E-step backend: host policy (device, stream, row blocks, copies)
 * around the fused kernels in kernels/EStepKernels.cuh.
 */
#pragma once

#include <cuda_runtime_api.h>
#include <faiss_gmm/EStep.h>
#include <faiss_gmm/gpu/CudaUtils.h>
#include <faiss_gmm/gpu/MmaPlan.h>

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

namespace faiss_gmm {
namespace gpu {

struct MmaModelView;       // kernels/EStepKernels.cuh
struct LogDensityView;     // kernels/EStepKernels.cuh
struct Pass1Out;           // kernels/EStepKernels.cuh
struct FullModelView;      // kernels/EStepFullKernels.cuh
struct FullStatsView;      // kernels/EStepFullKernels.cuh
class DeviceRowGenerator;  // GpuSynthetic.h

/** Fused CUDA E-step on one device. */
class GpuEStep : public EStepBackend {
   public:
    /// Default bound of one host-path row block (two are allocated).
    static constexpr size_t kDefaultBlockBytes = size_t(64) << 20;

    /**
     * device: CUDA ordinal (-1: the current one). block_bytes bounds one of
     * the two row blocks of the host-pointer path (each has a page-locked
     * host copy and a device copy). precision picks the kernels' plan.
     * cache_bytes: see accumulate_source (0: no cache).
     */
    explicit GpuEStep(int device = -1, size_t block_bytes = kDefaultBlockBytes,
                      Precision precision = Precision::Fp32, size_t cache_bytes = 0);
    ~GpuEStep() override;

    std::string name() const override { return "gpu:" + std::to_string(device_); }

    /**
     * Host-pointer path, double-buffered: while the kernels run on one
     * block, the host packs the next into page-locked memory and a second
     * stream copies it to the device.
     */
    void accumulate(const GaussianMixture& model, idx_t n, const float* x, const float* weights,
                    float* log_norm, SufficientStatistics& stats) override;

    /**
     * Streaming path: rows [i0, i0 + n) of src cross PCIe in their stored
     * type (uint8 and float16 are converted on the device), in blocks of
     * block_bytes, through two slots: while the kernels run on block b the
     * copy engine uploads block b+1 and host threads read block b+2 into
     * page-locked memory. Rows already in page-locked memory (a source over
     * cudaHostAlloc'ed or registered rows) are copied straight from there;
     * rows of a synthetic source (DataSource::generator) are generated on
     * the device instead, bit-identical to the host's. When the range's stored bytes fit in
     * cache_bytes, the first call uploads them into a device cache and later calls on the same
     * source and range (the next EM iterations) read no host memory at all: the source must not
     * change while this backend lives (one fit).
     */
    void accumulate_source(const GaussianMixture& model, const DataSource& src, idx_t i0, idx_t n,
                           SufficientStatistics& stats) override;

    /**
     * Device-resident path: x (n x d), weights (n, may be null) and
     * log_norm (n, device memory, required) live on this backend's device;
     * work is queued on `stream`, which is synchronised before returning.
     */
    void accumulate_device(const GaussianMixture& model, idx_t n, const float* x_dev,
                           const float* weights_dev, float* log_norm_dev,
                           SufficientStatistics& stats, cudaStream_t stream);

    /**
     * Hard assignment on the device: the pass-1 kernels with an argmax
     * policy (the nearest mean, or the most probable component with its
     * responsibility), then the one-hot statistics by atomics
     * (kernels/HardAssignKernels.cuh). Pinned rows are read on the device;
     * others go up in blocks.
     */
    void assign(const GaussianMixture& model, HardAssign how, idx_t n, const float* x,
                const float* weights, const AssignOutputs& out) override;
    /**
     * The t most probable components of each row: t passes of the argmax
     * kernels, pass j taking only the components after pass j - 1's pick
     * (Pass1Out::bound_val), so O(n t) device memory and no n x k matrix.
     */
    void top_components(const GaussianMixture& model, idx_t n, const float* x, int t, idx_t* labels,
                        float* resp) override;
    /** k-means++'s distances on the device (pinned rows, else a device copy). */
    std::unique_ptr<SeedingDistances> seeding_distances(idx_t n, int d, const float* x,
                                                        const float* weights) override;
    /** Upload the rows once (page-locked staging, double-buffered). */
    void pin_rows(idx_t n, int d, const float* x, const float* weights) override;
    void unpin_rows() override;
    bool on_gpu() const override { return true; }

    int device() const { return device_; }
    size_t block_bytes() const override { return block_bytes_; }
    size_t device_bytes() const override;

    /** The tensor-core plan a Precision maps to (used while d <= 128). */
    static MmaPlan plan_for(Precision p);

    /**
     * Replace the plan (tests and benchmarks compare plans); use_mma = false
     * forces the fp32 SIMT kernels, use_wgmma = false the mma.sync kernels
     * where the wgmma ones would run (wgmma_coverage). Throws for a plan
     * not compiled in.
     */
    void set_kernel_plan(bool use_mma, const MmaPlan& plan, bool use_wgmma = true);

    /**
     * Whether accumulate_source makes a synthetic source's rows on the
     * device (default true); false reads them on the host and copies them,
     * as any other source (tests compare the two, benchmarks the link).
     */
    void set_device_generation(bool on) { device_generation_ = on; }

   private:
    std::vector<double> choose_centre(idx_t n, const float* x, bool x_on_device,
                                      const std::vector<double>& fallback, cudaStream_t stream);
    /// The model's terms on the device; the kernels' centre from the rows
    /// (fallback: when they give none).
    void upload_model(const GaussianMixture& model, const std::vector<double>& fallback, idx_t n,
                      const float* x, bool x_on_device, cudaStream_t stream);
    void run_block(idx_t n, const float* x, const float* w, float* lz, cudaStream_t stream);
    void download_stats(SufficientStatistics& st, cudaStream_t stream);
    /// Add device sums acc (nk | sum_x | sum_x2 | 2 sums, about centre_) to
    /// st moved to st.shift; returns the two trailing sums.
    std::array<double, 2> download_sums(SufficientStatistics& st, const double* acc, bool spherical,
                                        cudaStream_t stream);
    /// One block of assign(): labels (and responsibilities) of rows x_dev
    /// into labels_ / resp_ from row `at`, one-hot sums into hacc_.
    void assign_block(idx_t n, const float* x_dev, const float* w_dev, idx_t at, bool with_resp,
                      bool stats_spherical, bool want_stats, bool want_obj);
    /// The argmax kernels of the current model on rows x_dev, writing po.
    void assign_kernels(idx_t n, const float* x_dev, const Pass1Out& po);
    // Full covariance (GpuFull.cpp): its own model layout and sums about
    // each component's mean, moved to the caller's frame once per call.
    void upload_full_model(const GaussianMixture& model, const std::vector<double>& shift,
                           cudaStream_t stream);
    /// Stage mu' (k x d, about centre_) into fraw_ and, with covariances
    /// (k d d) and weights (k; both null for one-hot moments: no W, c = 0),
    /// W_k and c_k made on the device (a component that does not factor is
    /// an Error naming it); then stage_frame.
    void stage_full(const float* mu, const float* weights, const float* covs,
                    const std::vector<double>& shift, cudaStream_t stream);
    /// fmo_ (mu' + centre_ - shift) for the caller's shift, and the sums zeroed.
    void stage_frame(const float* mu, const std::vector<double>& shift, cudaStream_t stream);
    /// The one-hot statistics of a hard assignment with full second
    /// moments: the k-means means as the components' centres, about shift.
    void prepare_full_hard(const float* means, const std::vector<double>& shift,
                           cudaStream_t stream);
    void run_full_block(idx_t n, const float* x, const float* w, float* lz, cudaStream_t stream);
    /// Moves the sums to acc_ (nk | sum_x | sum_x2 | sums, about st.shift) and adds them to st.
    void download_full_stats(SufficientStatistics& st, bool with_sums, cudaStream_t stream);
    FullModelView full_view() const;
    FullStatsView full_stats();
    /// The means about centre_, rounded to float (k x d).
    std::vector<float> centred_means(const float* means) const;
    /// Whether (n, x, w) are the pinned rows.
    bool resident(idx_t n, const float* x, const float* w) const {
        return pinned_x_ && x == pinned_x_ && n == pinned_n_ && w == pinned_w_;
    }
    MmaModelView mma_view() const;
    LogDensityView simt_view() const;
    WgmmaCoverage wgmma_plan() const;
    /// Tensor-core kernels for the current model (else the fp32 SIMT ones).
    bool mma_path() const;
    /// The model's rows are uploaded pre-split (MmaModelView::split_bf16).
    /// 3xbf16 logits always; single bf16 logits where the wgmma kernels run
    /// them (they read the high parts), not on mma.sync (fp32 rows).
    bool split_bf16() const {
        return plan_.logits == MmaPrecision::Bf16x3 ||
               (plan_.logits == MmaPrecision::Bf16 && wgmma_plan().log_norm);
    }
    /// Doubles in acc_: nk (k) | sum_x (k x d) | sum_x2 (k or k x d) | sums (2).
    size_t acc_len() const {
        return size_t(k_) + size_t(k_) * d_ + (spherical_ ? size_t(k_) : size_t(k_) * d_) + 2;
    }

    int device_ = 0;
    int num_sms_ = 1;
    size_t block_bytes_;
    cudaStream_t stream_ = nullptr;       // kernels (and the host path's results)
    cudaStream_t copy_stream_ = nullptr;  // the host path's uploads
    int d_ = 0, k_ = 0;
    int dp_ = 0, kp_ = 0;  // row length and row count of the uploaded a_ (padded for the mma path)
    bool spherical_ = true;
    bool use_mma_ = true;        // tensor-core kernels when d <= kMmaMaxDim
    bool use_wgmma_ = true;      // Hopper's wgmma kernels where they take the plan
    bool wgmma_device_ = false;  // this device runs them (wgmma_device)
    MmaPlan plan_;
    std::vector<double> centre_;  // what the kernels subtract (stats converted to st.shift)
    // The model as uploaded: shift (the kernels' centre, dp_ floats, zero
    // past d_) | weights | means | variances.
    DeviceBuffer<float> raw_;
    DeviceBuffer<float> sample_dev_;  // the centre's sample, gathered on the device
    DeviceBuffer<float> a_, b_, c_;
    DeviceBuffer<double> acc_;  // nk | sum_x | sum_x2 | sums(2)
    // The host path's two slots: page-locked staging, device copies, events.
    DeviceBuffer<float> x_[2], w_[2], lz_[2];
    PinnedBuffer<float> hx_[2], hw_[2], hlz_[2];
    // The streaming path's slots: raw rows (stored type) on both sides, and
    // the converted float rows of the block being computed.
    DeviceBuffer<uint8_t> raw_dev_[2];
    PinnedBuffer<uint8_t> raw_host_[2];
    DeviceBuffer<float> converted_;
    // The device cache of one source range (see accumulate_source).
    size_t cache_limit_ = 0;
    DeviceBuffer<uint8_t> cache_;
    uint64_t cache_uid_ = 0;  // DataSource::uid of the rows cache_ holds (0: none)
    idx_t cache_i0_ = 0, cache_n_ = 0;
    Event copied_[2], done_[2];
    // A synthetic source's rows are made on the device (GpuSynthetic.h).
    bool device_generation_ = true;
    const DeviceRowGenerator* device_generator(const DataSource& src);
    std::unique_ptr<DeviceRowGenerator> gen_;
    uint64_t gen_uid_ = 0;  // DataSource::uid of gen_'s source (0: none)
    // Pinned rows (pin_rows) on the device, with their weights and log Z.
    const float* pinned_x_ = nullptr;
    const float* pinned_w_ = nullptr;
    idx_t pinned_n_ = 0;
    DeviceBuffer<float> rx_, rw_, rlz_;
    // assign(): labels and responsibilities (n), one-hot sums (+ objective).
    DeviceBuffer<int32_t> labels_;
    DeviceBuffer<float> resp_;
    DeviceBuffer<double> hacc_;
    PinnedBuffer<int32_t> hlabels_;
    PinnedBuffer<float> hresp_;
    // Page-locked staging of the model terms, the statistics and the centre's sample.
    PinnedBuffer<float> hmodel_, sample_;
    PinnedBuffer<double> hstats_;
    // Full covariance: the model is full_ (the E-step) or full_hard_ (an
    // assignment's one-hot full moments) as uploaded; fraw_ = mu' (k x
    // fdp_) | centre (fdp_) | c (k) | covariances | weights; fw_ the rounded
    // W; fmo_ = mu' + centre - the caller's shift (k d); facc_ = nk | sum_z |
    // sum_zz.
    bool full_ = false, full_hard_ = false;
    int full_zp_ = 2, full_wp_ = 2;  // bf16 parts of z and W_k (FullModelView)
    int fdp_ = 0;  // full_padded_dim(d_)
    DeviceBuffer<float> fraw_;
    DeviceBuffer<uint16_t> fw_;
    DeviceBuffer<double> fmo_, facc_;
    DeviceBuffer<int32_t> fbad_;  // per component: its covariance did not factor
    PinnedBuffer<float> hfull_;
    PinnedBuffer<double> hmo_;
    PinnedBuffer<int32_t> hbad_;
};

}  // namespace gpu
}  // namespace faiss_gmm

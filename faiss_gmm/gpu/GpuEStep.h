/**
 * The CUDA E-step backend: host policy (device, stream, row blocks, copies)
 * around the fused kernels in kernels/EStepKernels.cuh.
 */
#pragma once

#include <cuda_runtime_api.h>
#include <faiss_gmm/EStep.h>
#include <faiss_gmm/gpu/CudaUtils.h>

namespace faiss_gmm {
namespace gpu {

/** Fused CUDA E-step on one device. */
class GpuEStep : public EStepBackend {
   public:
    /**
     * device: CUDA ordinal (-1: the current one). block_bytes bounds the
     * device buffer for host rows copied per step.
     */
    explicit GpuEStep(int device = -1, size_t block_bytes = size_t(256) << 20);
    ~GpuEStep() override;

    std::string name() const override { return "gpu:" + std::to_string(device_); }

    /** Host-pointer path: rows are copied to the device block by block. */
    void accumulate(const GaussianMixture& model, idx_t n, const float* x, const float* weights,
                    float* log_norm, SufficientStatistics& stats) override;

    /**
     * Device-resident path: x (n x d), weights (n, may be null) and
     * log_norm (n, device memory, required) live on this backend's device;
     * work is queued on `stream`, which is synchronised before returning.
     */
    void accumulate_device(const GaussianMixture& model, idx_t n, const float* x_dev,
                           const float* weights_dev, float* log_norm_dev,
                           SufficientStatistics& stats, cudaStream_t stream);

    int device() const { return device_; }

   private:
    void upload_model(const GaussianMixture& model, const SufficientStatistics& st,
                      cudaStream_t stream);
    void run_block(idx_t n, const float* x, const float* w, float* lz, cudaStream_t stream);
    void download_stats(SufficientStatistics& st, cudaStream_t stream);

    int device_ = 0;
    int num_sms_ = 1;
    size_t block_bytes_;
    cudaStream_t stream_ = nullptr;
    int d_ = 0, k_ = 0;
    bool spherical_ = true;
    DeviceBuffer<float> shift_, a_, b_, c_;
    DeviceBuffer<double> acc_;  // nk | sum_x | sum_x2 | sums(2)
    DeviceBuffer<float> x_, w_, lz_;
};

}  // namespace gpu
}  // namespace faiss_gmm

// GpuEStep's k-means++ distances: O(n) doubles on the device, one centre
// up and one scalar down per call (kernels/SeedingKernels.cuh).
#include <faiss_gmm/gpu/GpuEStep.h>

#include <algorithm>
#include <kernels/SeedingKernels.cuh>

namespace faiss_gmm {
namespace gpu {

namespace {

/// The distance state of rows on one device; lives no longer than its GpuEStep.
class GpuSeedingDistances : public SeedingDistances {
   public:
    /// Rows x_dev / w_dev on `device` (w_dev may be null); `stream` is the backend's.
    GpuSeedingDistances(int device, cudaStream_t stream, idx_t n, int d, const float* x_dev,
                        const float* w_dev)
        : device_(device), stream_(stream) {
        view_.x = x_dev;
        view_.n = n;
        view_.d = d;
        view_.w = w_dev;
        dist_.reserve(size_t(n));
        partial_.reserve(size_t((n + kSeedRowsPerBlock - 1) / kSeedRowsPerBlock));
        view_.dist = dist_.data();
        view_.partial = partial_.data();
        centre_.reserve(size_t(d));
        hcentre_.reserve(size_t(d));
        total_.reserve(1);
        pick_.reserve(1);
        htotal_.reserve(1);
        hpick_.reserve(1);
    }

    /// Owns the rows' device copy (rows that were not pinned).
    void own_rows(idx_t n, int d, const float* x, const float* w) {
        FAISS_GMM_CUDA_CHECK(cudaSetDevice(device_));
        rows_.reserve(size_t(n) * d);
        FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(rows_.data(), x, sizeof(float) * size_t(n) * d,
                                             cudaMemcpyHostToDevice, stream_));
        view_.x = rows_.data();
        if (w) {
            weights_.reserve(size_t(n));
            FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(weights_.data(), w, sizeof(float) * n,
                                                 cudaMemcpyHostToDevice, stream_));
            view_.w = weights_.data();
        }
    }

    double add_centre(const float* c) override {
        FAISS_GMM_CUDA_CHECK(cudaSetDevice(device_));
        std::copy_n(c, view_.d, hcentre_.data());
        FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(centre_.data(), hcentre_.data(),
                                             sizeof(float) * view_.d, cudaMemcpyHostToDevice,
                                             stream_));
        FAISS_GMM_CUDA_CHECK(launch_seed_update(view_, centre_.data(), first_, stream_));
        first_ = false;
        FAISS_GMM_CUDA_CHECK(launch_seed_total(view_, total_.data(), stream_));
        return download(total_, htotal_);
    }

    idx_t draw(double r) override {
        FAISS_GMM_CUDA_CHECK(cudaSetDevice(device_));
        FAISS_GMM_CUDA_CHECK(launch_seed_find(view_, r, pick_.data(), stream_));
        return idx_t(download(pick_, hpick_));
    }

   private:
    /// One scalar to the host (synchronises the stream).
    template <class T>
    T download(const DeviceBuffer<T>& dev, PinnedBuffer<T>& host) {
        FAISS_GMM_CUDA_CHECK(
            cudaMemcpyAsync(host.data(), dev.data(), sizeof(T), cudaMemcpyDeviceToHost, stream_));
        FAISS_GMM_CUDA_CHECK(cudaStreamSynchronize(stream_));
        return host.data()[0];
    }

    int device_;
    cudaStream_t stream_;
    bool first_ = true;
    SeedingView view_;
    DeviceBuffer<double> dist_, partial_;
    DeviceBuffer<float> centre_, rows_, weights_;
    DeviceBuffer<double> total_;
    DeviceBuffer<int64_t> pick_;
    PinnedBuffer<float> hcentre_;
    PinnedBuffer<double> htotal_;
    PinnedBuffer<int64_t> hpick_;
};

}  // namespace

std::unique_ptr<SeedingDistances> GpuEStep::seeding_distances(idx_t n, int d, const float* x,
                                                              const float* w) {
    FAISS_GMM_CUDA_CHECK(cudaSetDevice(device_));
    FAISS_GMM_CHECK(n >= 1, "seeding_distances: no rows");
    const bool res = resident(n, x, w);
    auto s = std::make_unique<GpuSeedingDistances>(
        device_, stream_, n, d, res ? rx_.data() : nullptr, res && w ? rw_.data() : nullptr);
    if (!res) s->own_rows(n, d, x, w);
    return s;
}

}  // namespace gpu
}  // namespace faiss_gmm

#include <faiss_gmm/gpu/GpuEStep.h>
#include <faiss_gmm/impl/CpuEStep.h>

#include <algorithm>
#include <cmath>
#include <kernels/EStepKernels.cuh>

namespace faiss_gmm {
namespace gpu {

GpuEStep::GpuEStep(int device, size_t block_bytes) : block_bytes_(block_bytes) {
    int count = 0;
    FAISS_GMM_CUDA_CHECK(cudaGetDeviceCount(&count));
    if (device < 0) FAISS_GMM_CUDA_CHECK(cudaGetDevice(&device));
    FAISS_GMM_CHECK(device < count, "GPU " + std::to_string(device) + " does not exist (" +
                                        std::to_string(count) + " visible)");
    device_ = device;
    FAISS_GMM_CUDA_CHECK(cudaSetDevice(device_));
    FAISS_GMM_CUDA_CHECK(
        cudaDeviceGetAttribute(&num_sms_, cudaDevAttrMultiProcessorCount, device_));
    FAISS_GMM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

GpuEStep::~GpuEStep() {
    if (stream_) cudaStreamDestroy(stream_);
}

void GpuEStep::upload_model(const GaussianMixture& model, const SufficientStatistics& st,
                            cudaStream_t stream) {
    FAISS_GMM_CHECK(
        st.d == model.d && st.k == model.k && st.covariance_type == model.params.covariance_type,
        "statistics were reset for another model shape");
    LogDensityTerms t(model, st.shift);
    d_ = model.d;
    k_ = model.k;
    spherical_ = model.params.covariance_type == CovarianceType::Spherical;
    shift_.reserve(t.shift.size());
    a_.reserve(t.a.size());
    b_.reserve(t.b.size());
    c_.reserve(t.c.size());
    auto up = [&](DeviceBuffer<float>& dst, const std::vector<float>& src) {
        FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), src.size() * sizeof(float),
                                             cudaMemcpyHostToDevice, stream));
    };
    up(shift_, t.shift);
    up(a_, t.a);
    up(b_, t.b);
    up(c_, t.c);
    const size_t nacc = size_t(k_) + size_t(k_) * d_ + st.sum_x2.size() + 2;
    acc_.reserve(nacc);
    FAISS_GMM_CUDA_CHECK(cudaMemsetAsync(acc_.data(), 0, nacc * sizeof(double), stream));
    // The host-side terms go out of scope: finish the copies first.
    FAISS_GMM_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void GpuEStep::run_block(idx_t n, const float* x, const float* w, float* lz, cudaStream_t stream) {
    LogDensityView m;
    m.d = d_;
    m.k = k_;
    m.spherical = spherical_;
    m.shift = shift_.data();
    m.a = a_.data();
    m.b = b_.data();
    m.c = c_.data();
    StatsView s;
    s.nk = acc_.data();
    s.sum_x = s.nk + k_;
    s.sum_x2 = s.sum_x + size_t(k_) * d_;
    s.sums = s.sum_x2 + (spherical_ ? size_t(k_) : size_t(k_) * d_);
    launch_log_norm(x, n, w, m, lz, s, stream);
    FAISS_GMM_CUDA_CHECK(cudaGetLastError());
    launch_accumulate(x, n, w, lz, m, s, num_sms_, stream);
    FAISS_GMM_CUDA_CHECK(cudaGetLastError());
}

void GpuEStep::download_stats(SufficientStatistics& st, cudaStream_t stream) {
    const size_t nx2 = st.sum_x2.size();
    std::vector<double> h(size_t(k_) + size_t(k_) * d_ + nx2 + 2);
    FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(h.data(), acc_.data(), h.size() * sizeof(double),
                                         cudaMemcpyDeviceToHost, stream));
    FAISS_GMM_CUDA_CHECK(cudaStreamSynchronize(stream));
    const double* p = h.data();
    for (int c = 0; c < k_; c++) st.nk[c] += p[c];
    p += k_;
    for (size_t i = 0; i < st.sum_x.size(); i++) st.sum_x[i] += p[i];
    p += st.sum_x.size();
    for (size_t i = 0; i < nx2; i++) st.sum_x2[i] += p[i];
    p += nx2;
    st.sum_log_norm += p[0];
    st.sum_weights += p[1];
    FAISS_GMM_CHECK(std::isfinite(p[0]),
                    "non-finite log-likelihood in the E-step (degenerate model?)");
}

void GpuEStep::accumulate_device(const GaussianMixture& model, idx_t n, const float* x_dev,
                                 const float* weights_dev, float* log_norm_dev,
                                 SufficientStatistics& st, cudaStream_t stream) {
    FAISS_GMM_CHECK(log_norm_dev || n == 0, "accumulate_device needs a log_norm buffer");
    FAISS_GMM_CUDA_CHECK(cudaSetDevice(device_));
    upload_model(model, st, stream);
    run_block(n, x_dev, weights_dev, log_norm_dev, stream);
    download_stats(st, stream);
}

void GpuEStep::accumulate(const GaussianMixture& model, idx_t n, const float* x,
                          const float* weights, float* log_norm, SufficientStatistics& st) {
    FAISS_GMM_CUDA_CHECK(cudaSetDevice(device_));
    upload_model(model, st, stream_);
    const size_t row_bytes = sizeof(float) * (size_t(model.d) + 2);
    const idx_t bs = std::max<idx_t>(1, std::min<idx_t>(n, idx_t(block_bytes_ / row_bytes)));
    x_.reserve(size_t(bs) * model.d);
    lz_.reserve(size_t(bs));
    if (weights) w_.reserve(size_t(bs));
    // Simple copy-then-compute on one stream (the pipelined, pinned,
    // double-buffered path is the streaming issue's work).
    for (idx_t i0 = 0; i0 < n; i0 += bs) {
        const idx_t nb = std::min(bs, n - i0);
        FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(x_.data(), x + size_t(i0) * model.d,
                                             sizeof(float) * size_t(nb) * model.d,
                                             cudaMemcpyHostToDevice, stream_));
        if (weights)
            FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(w_.data(), weights + i0, sizeof(float) * nb,
                                                 cudaMemcpyHostToDevice, stream_));
        run_block(nb, x_.data(), weights ? w_.data() : nullptr, lz_.data(), stream_);
        if (log_norm)
            FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(log_norm + i0, lz_.data(), sizeof(float) * nb,
                                                 cudaMemcpyDeviceToHost, stream_));
        FAISS_GMM_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }
    download_stats(st, stream_);
}

}  // namespace gpu
}  // namespace faiss_gmm

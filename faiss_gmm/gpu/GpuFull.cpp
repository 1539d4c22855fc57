// GpuEStep's full-covariance path (issue 17): the whitening matrices made
// on the device (launch_full_model_terms, as FullDensityTerms does on the
// host), the fused kernels of kernels/EStepFullKernels.cuh, and the sums, taken about
// each component's own mean on the device, moved to the caller's frame
// there (launch_full_finish) before they come down.
#include <faiss_gmm/gpu/GpuEStep.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <kernels/EStepFullKernels.cuh>

namespace faiss_gmm {
namespace gpu {

FullModelView GpuEStep::full_view() const {
    // fraw_: mu' (k x fdp) | centre (fdp) | c (k) | covariances | weights: the
    // 16-byte copies of mu' and the centre stay aligned.
    FullModelView m;
    m.d = d_;
    m.k = k_;
    m.dp = fdp_;
    m.z_parts = full_zp_;
    m.w_parts = full_wp_;
    m.w = fw_.data();
    m.mu = fraw_.data();
    m.shift = m.mu + size_t(k_) * fdp_;
    m.c = m.shift + fdp_;
    return m;
}

FullStatsView GpuEStep::full_stats() {
    FullStatsView s;
    s.nk = facc_.data();
    s.sum_z = s.nk + k_;
    s.sum_zz = s.sum_z + size_t(k_) * fdp_;
    return s;
}

std::vector<float> GpuEStep::centred_means(const float* means) const {
    // As FullDensityTerms rounds them: float(mu - centre), in double.
    std::vector<float> mu(size_t(k_) * d_);
    for (int ci = 0; ci < k_; ci++)
        for (int j = 0; j < d_; j++)
            mu[size_t(ci) * d_ + j] = float(means[size_t(ci) * d_ + j] - centre_[j]);
    return mu;
}

void GpuEStep::stage_full(const float* mu, const float* weights, const float* covs,
                          const std::vector<double>& shift, cudaStream_t stream) {
    FAISS_GMM_CHECK_ARG(d_ <= kFullMaxDim,
                        "the GPU full-covariance kernels take d <= " + std::to_string(kFullMaxDim) +
                            " (d = " + std::to_string(d_) + "): use device=cpu");
    const int d = d_, k = k_;
    fdp_ = full_padded_dim(d);
    const size_t dd = size_t(d) * d, nmu = size_t(k) * fdp_;
    // fraw_: mu' | centre | c (written on the device) | covariances | weights.
    const size_t at_cov = nmu + fdp_ + k, len = at_cov + (covs ? size_t(k) * dd + k : 0);
    hfull_.reserve(len);
    float* h = hfull_.data();
    std::fill(h, h + at_cov, 0.f);
    for (int ci = 0; ci < k; ci++)
        std::copy(mu + size_t(ci) * d, mu + size_t(ci + 1) * d, h + size_t(ci) * fdp_);
    for (int j = 0; j < d; j++) h[nmu + j] = float(centre_[j]);
    if (covs) {
        std::memcpy(h + at_cov, covs, sizeof(float) * size_t(k) * dd);
        std::memcpy(h + at_cov + size_t(k) * dd, weights, sizeof(float) * k);
    }
    fraw_.reserve(len);
    FAISS_GMM_CUDA_CHECK(
        cudaMemcpyAsync(fraw_.data(), h, sizeof(float) * len, cudaMemcpyHostToDevice, stream));
    if (covs) {
        // W_k and c_k on the device (O(K D^3) in double: ~1 s on the host's
        // LAPACK at K = 1024, D = 128), then the components it could not factor.
        fw_.reserve(size_t(k) * full_wp_ * fdp_ * fdp_);
        fbad_.reserve(size_t(k));
        FAISS_GMM_CUDA_CHECK(cudaMemsetAsync(fbad_.data(), 0, sizeof(int32_t) * k, stream));
        float* raw = fraw_.data();
        FAISS_GMM_CUDA_CHECK(launch_full_model_terms(raw + at_cov, raw + at_cov + size_t(k) * dd, d,
                                                     k, fdp_, full_wp_, fw_.data(),
                                                     raw + nmu + fdp_, fbad_.data(), stream));
        hbad_.reserve(size_t(k));
        FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(hbad_.data(), fbad_.data(), sizeof(int32_t) * k,
                                             cudaMemcpyDeviceToHost, stream));
        FAISS_GMM_CUDA_CHECK(cudaStreamSynchronize(stream));
        for (int ci = 0; ci < k; ci++)
            FAISS_GMM_CHECK(!hbad_.data()[ci],
                            "model component " + std::to_string(ci) +
                                " has a covariance that is not positive definite");
    }
    stage_frame(mu, shift, stream);
}

void GpuEStep::stage_frame(const float* mu, const std::vector<double>& shift, cudaStream_t stream) {
    const int d = d_, k = k_;
    const size_t dd = size_t(d) * d, nmu = size_t(k) * fdp_;
    // The page-locked staging may still feed a copy queued by this call.
    FAISS_GMM_CUDA_CHECK(cudaStreamSynchronize(stream));
    // x - s = z + (mu' + centre - s), in double.
    hmo_.reserve(size_t(k) * d);
    for (int ci = 0; ci < k; ci++)
        for (int j = 0; j < d; j++)
            hmo_.data()[size_t(ci) * d + j] =
                double(mu[size_t(ci) * d + j]) + centre_[j] - shift[j];
    fmo_.reserve(size_t(k) * d);
    FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(fmo_.data(), hmo_.data(), sizeof(double) * size_t(k) * d,
                                         cudaMemcpyHostToDevice, stream));
    const size_t nf = size_t(k) + nmu + nmu * fdp_,
                 na = size_t(k) + size_t(k) * d + size_t(k) * dd + 2;
    facc_.reserve(nf);
    acc_.reserve(na);
    FAISS_GMM_CUDA_CHECK(cudaMemsetAsync(facc_.data(), 0, nf * sizeof(double), stream));
    FAISS_GMM_CUDA_CHECK(cudaMemsetAsync(acc_.data(), 0, na * sizeof(double), stream));
}

void GpuEStep::upload_full_model(const GaussianMixture& model, const std::vector<double>& shift,
                                 cudaStream_t stream) {
    full_ = true;
    // The parts of z and W_k by class (bench/NOTES.md, "Full covariance on
    // the GPU"): fp32 (3xTF32 logits) splits both, tf32 and bf16 (3xbf16)
    // z only, fast (one bf16 product) neither.
    const bool single = plan_.logits == MmaPrecision::Bf16 || plan_.logits == MmaPrecision::Tf32;
    full_zp_ = single ? 1 : 2;
    full_wp_ = plan_.logits == MmaPrecision::Tf32x3 ? 2 : 1;
    const std::vector<float> mu = centred_means(model.means.data());
    stage_full(mu.data(), model.weights.data(), model.variances.data(), shift, stream);
}

void GpuEStep::prepare_full_hard(const float* means, const std::vector<double>& shift,
                                 cudaStream_t stream) {
    full_hard_ = true;
    const std::vector<float> mu = centred_means(means);
    // A full model already uploaded keeps its terms (the same mu'); the
    // one-hot pass reads only mu' and the centre.
    if (full_)
        stage_frame(mu.data(), shift, stream);
    else
        stage_full(mu.data(), nullptr, nullptr, shift, stream);
}

void GpuEStep::run_full_block(idx_t n, const float* x, const float* w, float* lz,
                              cudaStream_t stream) {
    const FullModelView m = full_view();
    Pass1Out po;
    po.log_norm = lz;
    po.sums = acc_.data() + size_t(k_) + size_t(k_) * d_ + size_t(k_) * d_ * d_;
    FAISS_GMM_CUDA_CHECK(launch_full_log_norm(x, n, w, m, po, stream));
    FAISS_GMM_CUDA_CHECK(
        launch_full_accumulate(x, n, w, lz, nullptr, m, full_stats(), num_sms_, stream));
}

void GpuEStep::download_full_stats(SufficientStatistics& st, bool with_sums, cudaStream_t stream) {
    FAISS_GMM_CHECK(st.d == d_ && st.k == k_ && st.covariance_type == CovarianceType::Full,
                    "statistics were reset for another model shape");
    const int d = d_, k = k_;
    const size_t dd = size_t(d) * d, len = size_t(k) + size_t(k) * d + size_t(k) * dd + 2;
    FAISS_GMM_CUDA_CHECK(
        launch_full_finish(full_view(), full_stats(), fmo_.data(), acc_.data(), stream));
    hstats_.reserve(len);
    FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(hstats_.data(), acc_.data(), len * sizeof(double),
                                         cudaMemcpyDeviceToHost, stream));
    FAISS_GMM_CUDA_CHECK(cudaStreamSynchronize(stream));
    const double* nk = hstats_.data();
    const double* s1 = nk + k;
    const double* s2 = s1 + size_t(k) * d;
    const double* sums = s2 + size_t(k) * dd;
    for (int c = 0; c < k; c++) st.nk[c] += nk[c];
    for (size_t i = 0; i < size_t(k) * d; i++) st.sum_x[i] += s1[i];
#pragma omp parallel for schedule(static) if (size_t(k) * dd > 65536)
    for (int64_t i = 0; i < int64_t(size_t(k) * dd); i++) st.sum_x2[i] += s2[i];
    if (!with_sums) return;
    st.sum_log_norm += sums[0];
    st.sum_weights += sums[1];
    FAISS_GMM_CHECK(std::isfinite(sums[0]),
                    "non-finite log-likelihood in the E-step (degenerate model?)");
}

}  // namespace gpu
}  // namespace faiss_gmm

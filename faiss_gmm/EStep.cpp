#include <faiss_gmm/EStep.h>
#include <faiss_gmm/impl/CpuEStep.h>
#include <faiss_gmm/utils/Device.h>
#ifdef FAISS_GMM_WITH_CUDA
#include <faiss_gmm/gpu/GpuEStep.h>
#endif

namespace faiss_gmm {

void SufficientStatistics::reset(int d_, int k_, CovarianceType c,
                                 const std::vector<double>& shift_) {
    FAISS_GMM_CHECK(int(shift_.size()) == d_, "shift has the wrong dimension");
    d = d_;
    k = k_;
    covariance_type = c;
    shift = shift_;
    nk.assign(k, 0.0);
    sum_x.assign(size_t(k) * d, 0.0);
    sum_x2.assign(c == CovarianceType::Spherical ? size_t(k) : size_t(k) * d, 0.0);
    sum_log_norm = 0;
    sum_weights = 0;
}

void SufficientStatistics::merge(const SufficientStatistics& o) {
    FAISS_GMM_CHECK(
        o.d == d && o.k == k && o.covariance_type == covariance_type && o.shift == shift,
        "merging statistics of different shapes or shifts");
    for (size_t i = 0; i < nk.size(); i++) nk[i] += o.nk[i];
    for (size_t i = 0; i < sum_x.size(); i++) sum_x[i] += o.sum_x[i];
    for (size_t i = 0; i < sum_x2.size(); i++) sum_x2[i] += o.sum_x2[i];
    sum_log_norm += o.sum_log_norm;
    sum_weights += o.sum_weights;
}

std::vector<double> mixture_center(const GaussianMixture& m) {
    std::vector<double> c(m.d, 0.0);
    double tot = 0;
    for (int i = 0; i < m.k; i++) tot += m.weights[i];
    for (int i = 0; i < m.k; i++)
        for (int j = 0; j < m.d; j++)
            c[j] += double(m.weights[i]) / tot * m.means[size_t(i) * m.d + j];
    return c;
}

bool gpu_backend_available() {
#ifdef FAISS_GMM_WITH_CUDA
    return cuda_device_count() > 0;
#else
    return false;
#endif
}

std::unique_ptr<EStepBackend> make_estep_backend(const GaussianMixtureParameters& p) {
    if (p.device == Device::Gpu) {
        FAISS_GMM_CHECK(gpu_backend_available(),
                        std::string("device=gpu was asked for but no GPU E-step is available (") +
                            std::to_string(cuda_device_count()) + " CUDA device(s) visible" +
#ifdef FAISS_GMM_WITH_CUDA
                            ")"
#else
                            "; this build has no CUDA support)"
#endif
        );
    }
#ifdef FAISS_GMM_WITH_CUDA
    if (p.device != Device::Cpu && gpu_backend_available())
        return std::make_unique<gpu::GpuEStep>(p.gpu_device, gpu::GpuEStep::kDefaultBlockBytes,
                                               p.precision);
#endif
    return std::make_unique<CpuEStep>(p.max_block_bytes);
}

}  // namespace faiss_gmm

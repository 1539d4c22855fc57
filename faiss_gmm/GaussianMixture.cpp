// GaussianMixture: the enums' names, the model's checks, the M-step and
// inference (score, predict, top components, BIC). Training (fit and the
// EM driver) is in GaussianMixtureFit.cpp, files in GaussianMixtureIO.cpp.
#include <faiss_gmm/EStep.h>
#include <faiss_gmm/GaussianMixture.h>
#include <faiss_gmm/impl/CpuEStep.h>
#include <faiss_gmm/impl/FullCovariance.h>
#include <faiss_gmm/utils/Device.h>
#include <faiss_gmm/utils/Utils.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <random>

namespace faiss_gmm {

const char* to_string(CovarianceType c) {
    switch (c) {
        case CovarianceType::Spherical:
            return "spherical";
        case CovarianceType::Diagonal:
            return "diagonal";
        case CovarianceType::Full:
            return "full";
    }
    return "?";
}
const char* to_string(InitMethod m) {
    switch (m) {
        case InitMethod::KMeans:
            return "kmeans";
        case InitMethod::KMeansPlusPlus:
            return "kmeans++";
        case InitMethod::RandomRows:
            return "random";
        case InitMethod::FaissKMeans:
            return "faiss-kmeans";
    }
    return "?";
}
const char* to_string(Device d) {
    switch (d) {
        case Device::Auto:
            return "auto";
        case Device::Cpu:
            return "cpu";
        case Device::Gpu:
            return "gpu";
    }
    return "?";
}
const char* to_string(Precision p) {
    switch (p) {
        case Precision::Fp32:
            return "fp32";
        case Precision::Tf32:
            return "tf32";
        case Precision::Bf16:
            return "bf16";
        case Precision::Fast:
            return "fast";
    }
    return "?";
}
Precision precision_from_string(const std::string& s) {
    if (s == "fp32") return Precision::Fp32;
    if (s == "tf32") return Precision::Tf32;
    if (s == "bf16") return Precision::Bf16;
    if (s == "fast") return Precision::Fast;
    throw InvalidArgument("faiss-gmm: unknown precision '" + s + "' (fp32, tf32 or bf16)");
}
CovarianceType covariance_type_from_string(const std::string& s) {
    if (s == "spherical") return CovarianceType::Spherical;
    if (s == "diagonal" || s == "diag") return CovarianceType::Diagonal;
    if (s == "full") return CovarianceType::Full;
    throw InvalidArgument("faiss-gmm: unknown covariance type '" + s +
                          "' (spherical, diagonal or full)");
}
InitMethod init_method_from_string(const std::string& s) {
    if (s == "kmeans") return InitMethod::KMeans;
    if (s == "kmeans++") return InitMethod::KMeansPlusPlus;
    if (s == "random") return InitMethod::RandomRows;
    if (s == "faiss-kmeans") return InitMethod::FaissKMeans;
    throw InvalidArgument("faiss-gmm: unknown init '" + s +
                          "' (kmeans, kmeans++, random or faiss-kmeans)");
}
Device device_from_string(const std::string& s) {
    if (s == "auto") return Device::Auto;
    if (s == "cpu") return Device::Cpu;
    if (s == "gpu") return Device::Gpu;
    throw InvalidArgument("faiss-gmm: unknown device '" + s + "' (auto, cpu or gpu)");
}

GaussianMixture::GaussianMixture(int d_, int k_, const GaussianMixtureParameters& p)
    : d(d_), k(k_), params(p) {
    FAISS_GMM_CHECK_ARG(d > 0, "dimension d must be positive, got " + std::to_string(d));
    FAISS_GMM_CHECK_ARG(k > 0, "number of components k must be positive, got " + std::to_string(k));
    FAISS_GMM_CHECK_ARG(p.reg_covar >= 0, "reg_covar must be >= 0");
    FAISS_GMM_CHECK_ARG(p.niter >= 0, "niter must be >= 0");
}

void GaussianMixture::check_model() const {
    FAISS_GMM_CHECK(d > 0 && k > 0, "model has no shape (not fitted or loaded)");
    FAISS_GMM_CHECK(weights.size() == size_t(k) && means.size() == size_t(k) * d &&
                        variances.size() == n_variances(),
                    "model arrays do not match k=" + std::to_string(k) +
                        ", d=" + std::to_string(d) + " (not fitted?)");
    // Branch-free integer scans of the bits (they vectorise; this runs on
    // every E-step over K x D values): exponent all ones = Inf or NaN.
    auto bad = [](const std::vector<float>& v, bool need_positive) {
        const uint32_t* u = reinterpret_cast<const uint32_t*>(v.data());
        uint32_t b = 0;
        for (size_t i = 0; i < v.size(); i++) {
            b |= uint32_t((u[i] & 0x7f800000u) == 0x7f800000u);
            if (need_positive) b |= (u[i] >> 31) | uint32_t((u[i] & 0x7fffffffu) == 0);
        }
        return b != 0;
    };
    FAISS_GMM_CHECK(!bad(weights, false) &&
                        std::all_of(weights.begin(), weights.end(), [](float w) { return w >= 0; }),
                    "model has a bad weight");
    if (params.covariance_type == CovarianceType::Full) {
        // Off-diagonal covariances may be any sign; positive definiteness is
        // checked where the E-step factors them (it names the component).
        FAISS_GMM_CHECK(!bad(variances, false), "model has a non-finite covariance");
        for (int c = 0; c < k; c++)
            for (int j = 0; j < d; j++)
                FAISS_GMM_CHECK(variance(c, j) > 0,
                                "model component " + std::to_string(c) +
                                    " has a non-positive variance on its covariance's diagonal");
    } else {
        FAISS_GMM_CHECK(!bad(variances, true), "model has a non-positive or non-finite variance");
    }
    FAISS_GMM_CHECK(!bad(means, false), "model has a non-finite mean");
}

double GaussianMixture::n_parameters() const {
    // A symmetric covariance has d (d + 1) / 2 free values, not d^2.
    const double cov = params.covariance_type == CovarianceType::Full ? double(k) * d * (d + 1) / 2
                                                                      : double(n_variances());
    return double(k - 1) + double(k) * d + cov;
}

int GaussianMixture::m_step(const SufficientStatistics& st, double reg) {
    double total = 0;
    for (double v : st.nk) total += v;
    FAISS_GMM_CHECK(total > 0, "all responsibilities are zero (all sample weights zero?)");
    std::vector<char> dead(k, 0);
    for (int c = 0; c < k; c++) dead[c] = !update_component(c, st, reg, total);
    const int n_reseeded = reseed(dead);
    double wsum = 0;
    for (float v : weights) wsum += v;
    for (float& v : weights) v = float(v / wsum);
    if (params.normalize_means) l2_normalize_rows(d, k, means.data());
    return n_reseeded;
}

bool GaussianMixture::update_component(int c, const SufficientStatistics& st, double reg,
                                       double total) {
    const bool spherical = params.covariance_type == CovarianceType::Spherical;
    const bool full = params.covariance_type == CovarianceType::Full;
    const size_t dd = size_t(d) * d;
    double nk = st.nk[c];
    if (nk < params.min_component_mass || nk <= 0) return false;
    weights[c] = float(nk / total);
    double vsum = 0, mnorm2 = 0;
    std::vector<double> m(d);
    for (int j = 0; j < d; j++) {
        m[j] = st.sum_x[size_t(c) * d + j] / nk;
        means[size_t(c) * d + j] = float(m[j] + st.shift[j]);
        mnorm2 += m[j] * m[j];
    }
    if (full) {
        // Not positive definite even with reg on the diagonal: re-seeded
        // like an empty component (and counted with them).
        if (!covariance_from_moments(d, nk, st.sum_x.data() + size_t(c) * d,
                                     st.sum_x2.data() + c * dd, reg, variances.data() + c * dd))
            return false;
        for (int j = 0; j < d; j++) vsum += (variance(c, j) - reg) / d;
    } else if (spherical) {
        double v = std::max(0.0, (st.sum_x2[c] / nk - mnorm2) / d);
        variances[c] = float(v + reg);
        vsum = v;
    } else {
        for (int j = 0; j < d; j++) {
            double v = std::max(0.0, st.sum_x2[size_t(c) * d + j] / nk - m[j] * m[j]);
            variances[size_t(c) * d + j] = float(v + reg);
            vsum += v / d;
        }
    }
    // Collapsed: no spread left beyond the regularisation (a component
    // sitting on duplicates); it would take mass from nothing.
    return !(vsum <= 1e-6 * reg && nk < 2 * params.min_component_mass);
}

int GaussianMixture::reseed(std::vector<char>& dead) {
    // Split the currently heaviest component along a random +-1 direction
    // scaled by its spread (FAISS splits empty k-means clusters the same
    // way, with a multiplicative perturbation).
    const size_t dd = size_t(d) * d;
    int n_reseeded = 0;
    std::mt19937_64 rng(uint64_t(int64_t(params.seed)) * 7919 + iteration_stats.size());
    for (int c = 0; c < k; c++) {
        if (!dead[c]) continue;
        int heavy = -1;
        for (int j = 0; j < k; j++)
            if (!dead[j] && (heavy < 0 || weights[j] > weights[heavy])) heavy = j;
        FAISS_GMM_CHECK(heavy >= 0, "every component is empty");
        for (int j = 0; j < d; j++) {
            double sd = std::sqrt(variance(heavy, j));
            double delta = (rng() & 1 ? 0.1 : -0.1) * sd;
            float base = means[size_t(heavy) * d + j];
            means[size_t(c) * d + j] = float(base + delta);
            means[size_t(heavy) * d + j] = float(base - delta);
        }
        if (params.covariance_type == CovarianceType::Spherical)
            variances[c] = variances[heavy];
        else if (params.covariance_type == CovarianceType::Full)
            std::copy_n(variances.begin() + heavy * dd, dd, variances.begin() + c * dd);
        else
            std::copy_n(variances.begin() + size_t(heavy) * d, d,
                        variances.begin() + size_t(c) * d);
        weights[heavy] *= 0.5f;
        weights[c] = weights[heavy];
        dead[c] = 0;
        n_reseeded++;
    }
    return n_reseeded;
}

void GaussianMixture::score_samples(idx_t n, const float* x, float* out) const {
    check_model();
    auto backend = make_estep_backend(params);
    SufficientStatistics st;
    st.reset(d, k, params.covariance_type, mixture_center(*this));
    backend->accumulate(*this, n, x, nullptr, out, st);
}

double GaussianMixture::score(idx_t n, const float* x) const {
    std::vector<float> s(n);
    score_samples(n, x, s.data());
    double t = 0;
    for (float v : s) t += v;
    return n ? t / n : 0.0;
}

void GaussianMixture::predict(idx_t n, const float* x, idx_t* labels) const {
    std::vector<float> r(n);
    top_components(n, x, 1, labels, r.data());
}

void GaussianMixture::top_components(idx_t n, const float* x, int t, idx_t* labels,
                                     float* resp) const {
    check_model();
    FAISS_GMM_CHECK_ARG(t >= 1 && t <= k, "top_components: t must be in [1, k]");
    if (params.device != Device::Cpu && gpu_backend_available()) {
        // On the device: the E-step's kernels with an argmax policy, t
        // passes (nothing of size n * k on the host).
        auto backend = make_estep_backend(params);
        if (t > 1) return backend->top_components(*this, n, x, t, labels, resp);
        AssignOutputs out;
        out.labels = labels;
        out.resp = resp;
        backend->assign(*this, HardAssign::MostProbable, n, x, nullptr, out);
        return;
    }
    cpu_top_components(*this, n, x, t, labels, resp);
}

double GaussianMixture::bic(idx_t n, const float* x) const {
    return -2.0 * score(n, x) * n + n_parameters() * std::log(double(n));
}

}  // namespace faiss_gmm
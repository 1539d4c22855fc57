#include <faiss_gmm/impl/CpuEStep.h>
#include <faiss_gmm/impl/FullCovariance.h>

#include <algorithm>
#include <cmath>
#include <string>

extern "C" {
// Fortran LAPACK (OpenBLAS ships it), as FAISS declares its routines.
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);
void dtrtri_(const char* uplo, const char* diag, const int* n, double* a, const int* lda,
             int* info);
}

namespace faiss_gmm {

namespace {

constexpr double kLog2Pi = 1.8378770664093453;  // log(2 pi)

}  // namespace

bool whitening_matrix(int d, const double* cov, double* w, double* half_log_det_prec) {
    // S is symmetric: its row-major array is its column-major one. dpotrf
    // leaves L (column-major, lower) and dtrtri L^-1 in place.
    std::vector<double> a(cov, cov + size_t(d) * d);
    int info = 0;
    dpotrf_("L", &d, a.data(), &d, &info);
    if (info != 0) return false;
    dtrtri_("L", "N", &d, a.data(), &d, &info);
    if (info != 0) return false;
    double hl = 0;
    for (int i = 0; i < d; i++) {
        for (int j = 0; j < d; j++) w[size_t(i) * d + j] = j <= i ? a[i + size_t(j) * d] : 0.0;
        const double wii = w[size_t(i) * d + i];
        if (!(wii > 0) || !std::isfinite(wii)) return false;
        hl += std::log(wii);
    }
    *half_log_det_prec = hl;
    return true;
}

bool covariance_from_moments(int d, double nk, const double* sum_x, const double* sum_xx,
                             double reg, float* cov) {
    std::vector<double> m(d), s(size_t(d) * d), w(size_t(d) * d);
    for (int j = 0; j < d; j++) m[j] = sum_x[j] / nk;
    for (int i = 0; i < d; i++)
        for (int j = 0; j <= i; j++) {
            const double v = 0.5 * (sum_xx[size_t(i) * d + j] + sum_xx[size_t(j) * d + i]) / nk -
                             m[i] * m[j] + (i == j ? reg : 0.0);
            s[size_t(i) * d + j] = s[size_t(j) * d + i] = double(float(v));
        }
    // The check runs on the values the model will keep (rounded to float).
    double hl = 0;
    if (!whitening_matrix(d, s.data(), w.data(), &hl)) return false;
    for (size_t i = 0; i < s.size(); i++) cov[i] = float(s[i]);
    return true;
}

FullDensityTerms::FullDensityTerms(int d_, int k_, const float* weights, const float* means,
                                   const float* covs, const std::vector<double>& shift)
    : d(d_), k(k_), mu(size_t(k_) * d_), w(size_t(k_) * d_ * d_), c(k_), half_log_det_prec(k_) {
    const size_t dd = size_t(d) * d;
    int bad = -1;
#pragma omp parallel for schedule(dynamic) if (size_t(k) * dd > 65536)
    for (int ci = 0; ci < k; ci++) {
        std::vector<double> s(covs + ci * dd, covs + (ci + 1) * dd), wd(dd);
        double hl = 0;
        if (!whitening_matrix(d, s.data(), wd.data(), &hl)) {
#pragma omp critical
            bad = bad < 0 ? ci : std::min(bad, ci);
            continue;
        }
        for (size_t e = 0; e < dd; e++) w[ci * dd + e] = float(wd[e]);
        for (int j = 0; j < d; j++)
            mu[size_t(ci) * d + j] = float(means[size_t(ci) * d + j] - shift[j]);
        half_log_det_prec[ci] = hl;
        c[ci] = float(std::log(std::max(double(weights[ci]), 1e-300)) - 0.5 * d * kLog2Pi + hl);
    }
    FAISS_GMM_CHECK(bad < 0, "model component " + std::to_string(bad) +
                                 " has a covariance that is not positive definite");
}

void full_log_prob_block(const FullDensityTerms& t, idx_t n, const float* xc, float* out,
                         std::vector<float>& scratch) {
    const int d = t.d, k = t.k;
    const size_t nd = size_t(n) * d;
    scratch.resize(std::max(scratch.size(), 2 * nd));
    float* z = scratch.data();
    float* y = z + nd;
    for (int ci = 0; ci < k; ci++) {
        const float* mu = t.mu.data() + size_t(ci) * d;
        // Centre on the component first, then whiten: no cancellation
        // between two large whitened terms.
#pragma omp parallel for if (nd > 65536)
        for (idx_t i = 0; i < n; i++)
            for (int j = 0; j < d; j++) z[size_t(i) * d + j] = xc[size_t(i) * d + j] - mu[j];
        gemm_abt(int(n), d, d, 1.f, z, t.w.data() + size_t(ci) * d * d, 0.f, y);
#pragma omp parallel for if (nd > 65536)
        for (idx_t i = 0; i < n; i++) {
            double q = 0;
            for (int j = 0; j < d; j++) q += double(y[size_t(i) * d + j]) * y[size_t(i) * d + j];
            out[size_t(i) * k + ci] = float(t.c[ci] - 0.5 * q);
        }
    }
}

void full_accumulate_block(int d, int k, idx_t n, const float* r, const float* xc, double* sum_xx,
                           std::vector<float>& scratch) {
    const size_t nd = size_t(n) * d, dd = size_t(d) * d;
    scratch.resize(std::max(scratch.size(), nd + dd));
    float* b = scratch.data();
    float* s = b + nd;
    for (int ci = 0; ci < k; ci++) {
        bool any = false;
        for (idx_t i = 0; i < n && !any; i++) any = r[size_t(i) * k + ci] != 0.f;
        if (!any) continue;
#pragma omp parallel for if (nd > 65536)
        for (idx_t i = 0; i < n; i++) {
            const float ri = r[size_t(i) * k + ci];
            for (int j = 0; j < d; j++) b[size_t(i) * d + j] = ri * xc[size_t(i) * d + j];
        }
        gemm_atb(d, d, int(n), b, xc, s);
        double* acc = sum_xx + ci * dd;
        for (size_t e = 0; e < dd; e++) acc[e] += s[e];
    }
}

}  // namespace faiss_gmm

// The float64 full-covariance reference shared by the CPU and GPU tests:
// its own Cholesky (no LAPACK, no BLAS), the E-step row by row, and random
// correlated models.
#pragma once

#include <faiss_gmm/EStep.h>
#include <faiss_gmm/GaussianMixture.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "TestUtils.h"

namespace faiss_gmm {
namespace test {

/// Lower-triangular L with S = L L^T (plain Cholesky-Banachiewicz, float64).
inline std::vector<double> naive_cholesky(int d, const float* s) {
    std::vector<double> l(size_t(d) * d, 0.0);
    for (int i = 0; i < d; i++)
        for (int j = 0; j <= i; j++) {
            double v = s[size_t(i) * d + j];
            for (int t = 0; t < j; t++) v -= l[size_t(i) * d + t] * l[size_t(j) * d + t];
            l[size_t(i) * d + j] = i == j ? std::sqrt(v) : v / l[size_t(j) * d + j];
        }
    return l;
}

/// Float64 E-step of a full-covariance model: stats about `shift`.
struct FullRef {
    std::vector<double> log_norm, nk, sum_x, sum_xx;
    double sum_log_norm = 0;
};

inline FullRef naive_full_estep(const GaussianMixture& m, int64_t n, const float* x,
                                const std::vector<double>& shift, const float* w = nullptr) {
    const int d = m.d, k = m.k;
    const size_t dd = size_t(d) * d;
    std::vector<std::vector<double>> chol(k);
    std::vector<double> logc(k);
    for (int c = 0; c < k; c++) {
        chol[c] = naive_cholesky(d, m.variances.data() + c * dd);
        double ld = 0;
        for (int j = 0; j < d; j++) ld += std::log(chol[c][size_t(j) * d + j]);
        logc[c] = std::log(double(m.weights[c])) - 0.5 * d * std::log(2 * M_PI) - ld;
    }
    FullRef r;
    r.log_norm.resize(n);
    r.nk.assign(k, 0);
    r.sum_x.assign(size_t(k) * d, 0);
    r.sum_xx.assign(size_t(k) * dd, 0);
    std::vector<double> lp(k), z(d), v(d);
    for (int64_t i = 0; i < n; i++) {
        for (int c = 0; c < k; c++) {
            // Forward substitution: L z = x - mu, q = ||z||^2.
            double q = 0;
            for (int a = 0; a < d; a++) {
                double t = double(x[i * d + a]) - m.means[size_t(c) * d + a];
                for (int b = 0; b < a; b++) t -= chol[c][size_t(a) * d + b] * z[b];
                z[a] = t / chol[c][size_t(a) * d + a];
                q += z[a] * z[a];
            }
            lp[c] = logc[c] - 0.5 * q;
        }
        const double mx = *std::max_element(lp.begin(), lp.end());
        double s = 0;
        for (double l : lp) s += std::exp(l - mx);
        const double lz = mx + std::log(s);
        r.log_norm[i] = lz;
        const double wi = w ? w[i] : 1.0;
        r.sum_log_norm += wi * lz;
        for (int j = 0; j < d; j++) v[j] = double(x[i * d + j]) - shift[j];
        for (int c = 0; c < k; c++) {
            const double resp = wi * std::exp(lp[c] - lz);
            if (resp == 0) continue;
            r.nk[c] += resp;
            for (int a = 0; a < d; a++) {
                r.sum_x[size_t(c) * d + a] += resp * v[a];
                for (int b = 0; b < d; b++)
                    r.sum_xx[c * dd + size_t(a) * d + b] += resp * v[a] * v[b];
            }
        }
    }
    return r;
}

/// A random model on data x with full covariances: S = s (A A^T / d + 0.2 I)
/// at the data's scale, A standard normal (correlated, well conditioned).
inline GaussianMixture random_full_model(int d, int k, const std::vector<float>& x,
                                         std::mt19937_64& rng) {
    GaussianMixture diag = random_model(d, k, CovarianceType::Diagonal, x, rng);
    GaussianMixtureParameters p;
    p.covariance_type = CovarianceType::Full;
    GaussianMixture m(d, k, p);
    m.weights = diag.weights;
    m.means = diag.means;
    m.variances.assign(m.n_variances(), 0.f);
    std::normal_distribution<double> g(0, 1);
    const size_t dd = size_t(d) * d;
    for (int c = 0; c < k; c++) {
        double scale = 0;
        for (int j = 0; j < d; j++) scale += diag.variances[size_t(c) * d + j] / d;
        std::vector<double> a(dd);
        for (auto& v : a) v = g(rng);
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) {
                double s = i == j ? 0.2 : 0.0;
                for (int t = 0; t < d; t++) s += a[size_t(i) * d + t] * a[size_t(j) * d + t] / d;
                m.variances[c * dd + size_t(i) * d + j] = float(scale * s);
            }
    }
    // Symmetric to the bit (the loop above already is).
    return m;
}

}  // namespace test
}  // namespace faiss_gmm

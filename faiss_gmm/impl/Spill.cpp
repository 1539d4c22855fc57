#include <faiss_gmm/impl/CpuEStep.h>
#include <faiss_gmm/impl/FullCovariance.h>
#include <faiss_gmm/impl/Spill.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

namespace faiss_gmm {

GaussianMixture tempered_mixture(const GaussianMixture& model, double temperature) {
    model.check_model();
    FAISS_GMM_CHECK_ARG(temperature > 0 && std::isfinite(temperature),
                        "the spill temperature must be positive and finite");
    const int d = model.d, k = model.k;
    GaussianMixture t = model;
    // Full: log det(2 pi S_k) = d log 2 pi - 2 sum log W_jj, from the terms
    // the E-step uses (which name a component that is not positive definite).
    std::unique_ptr<FullDensityTerms> full;
    if (model.params.covariance_type == CovarianceType::Full)
        full = std::make_unique<FullDensityTerms>(d, k, model.weights.data(), model.means.data(),
                                                  model.variances.data(), std::vector<double>(d));
    // (log pi - 0.5 sum log(2 pi var) - q / 2) / T = log pi' - 0.5 sum
    // log(2 pi T var) - q / (2 T): log pi' collects the rest.
    std::vector<double> lw(k);
    double mx = -std::numeric_limits<double>::infinity();
    for (int c = 0; c < k; c++) {
        double log_det = 0;
        if (full) {
            log_det = d * std::log(2 * M_PI) - 2 * full->half_log_det_prec[c];
        } else {
            for (int j = 0; j < d; j++)
                log_det += std::log(2 * M_PI * double(model.variance(c, j)));
        }
        lw[c] = std::log(double(model.weights[c])) / temperature - 0.5 * log_det / temperature +
                0.5 * (log_det + d * std::log(temperature));
        mx = std::max(mx, lw[c]);
    }
    double s = 0;
    for (double v : lw) s += std::exp(v - mx);
    for (int c = 0; c < k; c++) t.weights[c] = float(std::exp(lw[c] - mx) / s);
    for (auto& v : t.variances) v = float(v * temperature);
    return t;
}

void soar_lists(int d, idx_t k, const float* centroids, idx_t n, const float* x, float lambda,
                int m, idx_t* lists) {
    FAISS_GMM_CHECK_ARG(m >= 1 && m <= k, "SOAR: max_lists must be in [1, k]");
    FAISS_GMM_CHECK_ARG(lambda >= 0 && std::isfinite(lambda), "SOAR: lambda must be >= 0");
    if (m == 1 || n == 0) return;
    std::vector<float> cnorm(k);
    for (idx_t c = 0; c < k; c++) {
        double s = 0;
        for (int j = 0; j < d; j++) s += double(centroids[c * d + j]) * centroids[c * d + j];
        cnorm[c] = float(s);
    }
    // Blocks of rows: x c^T and each residual's r c^T, bs x k floats each.
    const idx_t bs = std::max<idx_t>(1, std::min<idx_t>(n, (idx_t(32) << 20) / (4 * k)));
    std::vector<float> xc(size_t(bs) * k), rc(size_t(m - 1) * bs * k), res(size_t(m - 1) * bs * d);
    std::vector<float> xnorm(bs);
    std::vector<double> rx(size_t(m - 1) * bs), rnorm(size_t(m - 1) * bs);
    for (idx_t i0 = 0; i0 < n; i0 += bs) {
        const idx_t nb = std::min(bs, n - i0);
        const float* xb = x + size_t(i0) * d;
        gemm_abt(int(nb), int(k), d, 1.f, xb, centroids, 0.f, xc.data());
        for (idx_t i = 0; i < nb; i++) {
            double s = 0;
            for (int j = 0; j < d; j++) s += double(xb[i * d + j]) * xb[i * d + j];
            xnorm[i] = float(s);
        }
        for (int p = 1; p < m; p++) {
            // The residual of the list chosen last: r = x - c_p, r.x, ||r||^2.
            float* r = res.data() + size_t(p - 1) * bs * d;
#pragma omp parallel for
            for (idx_t i = 0; i < nb; i++) {
                const idx_t cp = lists[size_t(i0 + i) * m + p - 1];
                double dot = 0, nn = 0;
                for (int j = 0; j < d; j++) {
                    const float v = xb[i * d + j] - centroids[cp * d + j];
                    r[i * d + j] = v;
                    dot += double(v) * xb[i * d + j];
                    nn += double(v) * v;
                }
                rx[size_t(p - 1) * bs + i] = dot;
                rnorm[size_t(p - 1) * bs + i] = nn;
            }
            gemm_abt(int(nb), int(k), d, 1.f, r, centroids, 0.f,
                     rc.data() + size_t(p - 1) * bs * k);
#pragma omp parallel for
            for (idx_t i = 0; i < nb; i++) {
                idx_t* row = lists + size_t(i0 + i) * m;
                double best = std::numeric_limits<double>::infinity();
                idx_t arg = -1;
                for (idx_t c = 0; c < k; c++) {
                    if (std::find(row, row + p, c) != row + p) continue;
                    double s = double(xnorm[i]) - 2.0 * xc[size_t(i) * k + c] + cnorm[c];
                    for (int q = 0; q < p; q++) {
                        const double nn = rnorm[size_t(q) * bs + i];
                        if (nn <= 0) continue;  // x on its centroid: no direction to penalise
                        const double e = rx[size_t(q) * bs + i] - rc[(size_t(q) * bs + i) * k + c];
                        s += lambda * e * e / nn;
                    }
                    if (s < best) best = s, arg = c;
                }
                row[p] = arg;
            }
        }
    }
}

}  // namespace faiss_gmm

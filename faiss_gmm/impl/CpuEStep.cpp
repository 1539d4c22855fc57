#include <faiss_gmm/impl/CpuEStep.h>
#include <faiss_gmm/impl/FullCovariance.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

extern "C" {
// Fortran BLAS, as FAISS declares it: no cblas header needed.
int sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
           const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
           const float* beta, float* c, const int* ldc);
}

namespace faiss_gmm {

namespace {

constexpr double kLog2Pi = 1.8378770664093453;  // log(2 pi)

/// Floats of cpu_log_prob_block's x2 for `rows` rows: the squared norms
/// (spherical), the squares (diagonal), none (full covariance whitens instead).
size_t x2_floats(CovarianceType c, idx_t rows, int d) {
    return c == CovarianceType::Spherical  ? size_t(rows)
           : c == CovarianceType::Diagonal ? size_t(rows) * d
                                           : 0;
}

}  // namespace

void gemm_atb(int m, int n, int kk, const float* a, const float* b, float* c) {
    const float one = 1, zero = 0;
    sgemm_("N", "T", &n, &m, &kk, &one, b, &n, a, &m, &zero, c, &n);
}

void gemm_abt(int m, int n, int kk, float alpha, const float* a, const float* b, float beta,
              float* c) {
    // Column-major view: C^T (n x m) = B (n x kk, ld kk)^T' ... expressed as T/N.
    sgemm_("T", "N", &n, &m, &kk, &alpha, b, &kk, a, &kk, &beta, c, &n);
}

LogDensityTerms::LogDensityTerms(const GaussianMixture& model, const std::vector<double>& sh)
    : d(model.d), k(model.k), covariance_type(model.params.covariance_type) {
    model.check_model();
    FAISS_GMM_CHECK(int(sh.size()) == d, "shift has the wrong dimension");
    shift.assign(sh.begin(), sh.end());
    if (covariance_type == CovarianceType::Full) {
        full = std::make_shared<FullDensityTerms>(d, k, model.weights.data(), model.means.data(),
                                                  model.variances.data(), sh);
        return;
    }
    a.resize(size_t(k) * d);
    b.resize(model.n_variances());
    c.resize(k);
    const bool spherical = covariance_type == CovarianceType::Spherical;
    // O(K * D) per E-step, with a log per variance: threads over components.
#pragma omp parallel for schedule(static) if (size_t(k) * d > 65536)
    for (int ci = 0; ci < k; ci++) {
        const float* mu = model.means.data() + size_t(ci) * d;
        double log_pi = std::log(std::max(double(model.weights[ci]), 1e-300));
        double quad = 0, log_det = spherical ? d * std::log(double(model.variances[ci])) : 0;
        for (int j = 0; j < d; j++) {
            double var = spherical ? model.variances[ci] : model.variances[size_t(ci) * d + j];
            double m = double(mu[j]) - sh[j];
            a[size_t(ci) * d + j] = float(m / var);
            quad += m * m / var;
            if (!spherical) {
                log_det += std::log(var);
                b[size_t(ci) * d + j] = float(1.0 / var);
            }
        }
        if (spherical) b[ci] = float(1.0 / model.variances[ci]);
        c[ci] = float(log_pi - 0.5 * (d * kLog2Pi + log_det + quad));
    }
}

void cpu_log_prob_block(const LogDensityTerms& t, idx_t n, const float* x, float* xc, float* x2,
                        float* out) {
    const int d = t.d, k = t.k;
    const bool spherical = t.covariance_type == CovarianceType::Spherical;
    if (t.full) {
#pragma omp parallel for if (n * d > 65536)
        for (idx_t i = 0; i < n; i++)
            for (int j = 0; j < d; j++) xc[i * d + j] = x[i * d + j] - t.shift[j];
        std::vector<float> scratch;
        full_log_prob_block(*t.full, n, xc, out, scratch);
        return;
    }
#pragma omp parallel for if (n * d > 65536)
    for (idx_t i = 0; i < n; i++) {
        const float* xi = x + i * d;
        float* ci = xc + i * d;
        double norm = 0;
        for (int j = 0; j < d; j++) {
            float v = xi[j] - t.shift[j];
            ci[j] = v;
            if (spherical)
                norm += double(v) * v;
            else
                x2[i * d + j] = v * v;
        }
        if (spherical) x2[i] = float(norm);
    }
    gemm_abt(int(n), k, d, 1.0f, xc, t.a.data(), 0.0f, out);
    if (!spherical) gemm_abt(int(n), k, d, -0.5f, x2, t.b.data(), 1.0f, out);
#pragma omp parallel for if (n * k > 65536)
    for (idx_t i = 0; i < n; i++) {
        float* row = out + i * k;
        float half_norm = spherical ? 0.5f * x2[i] : 0.0f;
        for (int ci = 0; ci < k; ci++) {
            row[ci] += t.c[ci];
            if (spherical) row[ci] -= half_norm * t.b[ci];
        }
    }
}

idx_t CpuEStep::block_rows(int d, int k) const {
    // Per row: k log-densities + d centred values + d squares.
    size_t per_row = sizeof(float) * (size_t(k) + 2 * size_t(d) + 2);
    size_t fixed = sizeof(float) * size_t(k) * d;
    size_t rows = block_bytes_ > fixed ? (block_bytes_ - fixed) / per_row : 1;
    return idx_t(std::max<size_t>(1, std::min<size_t>(rows, 1 << 20)));
}

void CpuEStep::accumulate(const GaussianMixture& model, idx_t n, const float* x,
                          const float* weights, float* log_norm, SufficientStatistics& st) {
    const int d = model.d, k = model.k;
    const bool spherical = model.params.covariance_type == CovarianceType::Spherical;
    const bool full = model.params.covariance_type == CovarianceType::Full;
    FAISS_GMM_CHECK(st.d == d && st.k == k && st.covariance_type == model.params.covariance_type,
                    "statistics were reset for another model shape");
    if (n == 0) return;
    LogDensityTerms terms(model, st.shift);
    std::vector<float> full_scratch;
    const idx_t bs = std::min(n, block_rows(d, k));
    std::vector<float> lp(size_t(bs) * k), xc(size_t(bs) * d),
        x2(x2_floats(model.params.covariance_type, bs, d)), tmp(size_t(k) * d), tmp_k(k);
    const int nthreads = omp_get_max_threads();
    std::vector<double> nk_thread(size_t(nthreads) * k);

    for (idx_t i0 = 0; i0 < n; i0 += bs) {
        const idx_t nb = std::min(bs, n - i0);
        cpu_log_prob_block(terms, nb, x + i0 * d, xc.data(), x2.data(), lp.data());
        std::fill(nk_thread.begin(), nk_thread.end(), 0.0);
        double sum_lz = 0, sum_w = 0;
        bool bad = false;
#pragma omp parallel for reduction(+ : sum_lz, sum_w) reduction(|| : bad)
        for (idx_t i = 0; i < nb; i++) {
            float* row = lp.data() + size_t(i) * k;
            float mx = -std::numeric_limits<float>::infinity();
            for (int c = 0; c < k; c++) mx = std::max(mx, row[c]);
            // One exp per entry: keep e = exp(l - max), then r = w e / sum(e).
            double s = 0;
            for (int c = 0; c < k; c++) {
                // Below e^-87 the result is subnormal (< FLT_MIN) and glibc's
                // expf takes a slow path; such terms are 1e-38 of the row's
                // largest, so they are zero here.
                const float t = row[c] - mx;
                const float e = t < -87.f ? 0.f : std::exp(t);
                row[c] = e;
                s += e;
            }
            double lz = double(mx) + std::log(s);
            if (!std::isfinite(lz)) bad = true;
            float w = weights ? weights[i0 + i] : 1.0f;
            if (log_norm) log_norm[i0 + i] = float(lz);
            sum_lz += w * lz;
            sum_w += w;
            double* nk = nk_thread.data() + size_t(omp_get_thread_num()) * k;
            const float scale = float(w / s);
            for (int c = 0; c < k; c++) {
                float r = row[c] * scale;
                row[c] = r;
                nk[c] += r;
            }
        }
        FAISS_GMM_CHECK(!bad, "non-finite log-likelihood in the E-step (degenerate model?)");
        st.sum_log_norm += sum_lz;
        st.sum_weights += sum_w;
        for (int t = 0; t < nthreads; t++)
            for (int c = 0; c < k; c++) st.nk[c] += nk_thread[size_t(t) * k + c];
        // sum_x += R^T xc ; second moment likewise.
        gemm_atb(k, d, int(nb), lp.data(), xc.data(), tmp.data());
        for (size_t j = 0; j < tmp.size(); j++) st.sum_x[j] += tmp[j];
        if (full) {
            full_accumulate_block(d, k, nb, lp.data(), xc.data(), st.sum_x2.data(), full_scratch);
        } else if (spherical) {
            gemm_atb(k, 1, int(nb), lp.data(), x2.data(), tmp_k.data());
            for (int c = 0; c < k; c++) st.sum_x2[c] += tmp_k[c];
        } else {
            gemm_atb(k, d, int(nb), lp.data(), x2.data(), tmp.data());
            for (size_t j = 0; j < tmp.size(); j++) st.sum_x2[j] += tmp[j];
        }
    }
}

void cpu_top_components(const GaussianMixture& model, idx_t n, const float* x, int t, idx_t* labels,
                        float* resp) {
    const int d = model.d, k = model.k;
    LogDensityTerms terms(model, mixture_center(model));
    CpuEStep sizing(model.params.max_block_bytes);
    const idx_t bs = std::max<idx_t>(1, std::min(n, sizing.block_rows(d, k)));
    std::vector<float> lp(size_t(bs) * k), xc(size_t(bs) * d),
        x2(x2_floats(model.params.covariance_type, bs, d));
    for (idx_t i0 = 0; i0 < n; i0 += bs) {
        idx_t nb = std::min(bs, n - i0);
        cpu_log_prob_block(terms, nb, x + i0 * d, xc.data(), x2.data(), lp.data());
#pragma omp parallel for
        for (idx_t i = 0; i < nb; i++) {
            const float* row = lp.data() + size_t(i) * k;
            float mx = *std::max_element(row, row + k);
            // Terms below e^-80 of the largest change the sum by < k e^-80:
            // skip their exp (most of them, in high dimension).
            double s = 0;
            for (int c = 0; c < k; c++) {
                const double e = double(row[c]) - mx;
                if (e > -80) s += std::exp(e);
            }
            double lz = mx + std::log(s);
            idx_t* lab = labels + (i0 + i) * t;
            float* rsp = resp + (i0 + i) * t;
            auto better = [&](int a, int b) {
                return row[a] > row[b] || (row[a] == row[b] && a < b);
            };
            if (t <= 32) {
                // Insertion into the t best so far: O(k) for the small t of
                // IVF use (lists per vector, nprobe), no per-row allocation.
                int best[32], nb = 0;
                for (int c = 0; c < k; c++) {
                    if (nb == t && !better(c, best[t - 1])) continue;
                    int j = nb < t ? nb++ : t - 1;
                    while (j > 0 && better(c, best[j - 1])) best[j] = best[j - 1], j--;
                    best[j] = c;
                }
                for (int j = 0; j < t; j++) lab[j] = best[j];
            } else {
                std::vector<int> idx(k);
                std::iota(idx.begin(), idx.end(), 0);
                std::partial_sort(idx.begin(), idx.begin() + t, idx.end(), better);
                for (int j = 0; j < t; j++) lab[j] = idx[j];
            }
            for (int j = 0; j < t; j++) rsp[j] = float(std::exp(double(row[lab[j]]) - lz));
        }
    }
}

}  // namespace faiss_gmm

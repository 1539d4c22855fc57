/**
 * CPU E-step on OpenBLAS: log-densities through the
 * ||x||^2 - 2 x.mu + ||mu||^2 expansion (sgemm), log-sum-exp per row,
 * accumulation by sgemm, rows in blocks bounded by a memory budget.
 */
#pragma once

#include <faiss_gmm/EStep.h>

#include <memory>

namespace faiss_gmm {

struct FullDensityTerms;  // impl/FullCovariance.h

/**
 * Per-component constants of the log-density in the centred frame
 * (x' = x - shift, mu' = mu - shift):
 *   log pi_k + log N(x | mu_k, S_k) = c_k + x'.a_k - 0.5 * (x'^2).b_k
 * with a_k = mu'_k / var_k and b_k = 1 / var_k (per dimension for diagonal,
 * scalar times ||x'||^2 for spherical). Shared by every backend. A full
 * covariance has no such expansion: its terms are in `full` instead.
 */
struct LogDensityTerms {
    int d = 0, k = 0;
    CovarianceType covariance_type = CovarianceType::Spherical;
    std::vector<float> shift;  ///< d
    std::vector<float> a;      ///< k x d: mu'_k / var_k
    std::vector<float> b;      ///< k (spherical) or k x d (diagonal): 1 / var_k
    std::vector<float> c;      ///< k: log pi_k - 0.5 (sum log(2 pi var) + mu'^2 / var)
    std::shared_ptr<const FullDensityTerms> full;  ///< full covariance only (a, b, c empty)

    /** Fold the model's parameters about shift. */
    LogDensityTerms(const GaussianMixture& model, const std::vector<double>& shift);
};

/** Row-major C (m x n) = alpha A (m x kk) B^T (n x kk) + beta C, by OpenBLAS's sgemm. */
void gemm_abt(int m, int n, int kk, float alpha, const float* a, const float* b, float beta,
              float* c);

/** Row-major C (m x n) = A^T B, A stored kk x m and B kk x n, by OpenBLAS's sgemm. */
void gemm_atb(int m, int n, int kk, const float* a, const float* b, float* c);

/**
 * log pi_k + log N(x_i | mu_k, S_k) for a block of rows: out is n x k.
 * xc (n x d) receives x - shift; x2 (n x d for diagonal, n for spherical,
 * unused for full) receives its squares / squared norms. Uses sgemm;
 * OpenMP over rows.
 */
void cpu_log_prob_block(const LogDensityTerms& t, idx_t n, const float* x, float* xc, float* x2,
                        float* out);

/**
 * The t most responsible components of each row on the CPU (row blocks of
 * model.params.max_block_bytes, never n x k): GaussianMixture::top_components.
 */
void cpu_top_components(const GaussianMixture& model, idx_t n, const float* x, int t, idx_t* labels,
                        float* resp);

/** The OpenBLAS backend. */
class CpuEStep : public EStepBackend {
   public:
    /** block_bytes bounds the scratch of one block (rows x K floats and rows x D). */
    explicit CpuEStep(size_t block_bytes = size_t(64) << 20) : block_bytes_(block_bytes) {}
    std::string name() const override { return "cpu"; }
    void accumulate(const GaussianMixture& model, idx_t n, const float* x, const float* weights,
                    float* log_norm, SufficientStatistics& stats) override;

    size_t block_bytes() const override { return block_bytes_; }
    /** Rows per block for a model of k components in dimension d. */
    idx_t block_rows(int d, int k) const;

   private:
    size_t block_bytes_;
};

}  // namespace faiss_gmm

/**
 * Full-covariance pieces of the CPU backend and the M-step: a D x D
 * covariance per component, used through the Cholesky factor of its
 * precision (LAPACK through OpenBLAS), whitened distances and the second
 * moments sum r (x - shift)(x - shift)^T as BLAS products per component,
 * never an N x K matrix beyond the caller's row block.
 */
#pragma once

#include <faiss_gmm/utils/Common.h>

#include <vector>

namespace faiss_gmm {

/**
 * The whitening matrix of one covariance S (d x d, symmetric, row-major):
 * W = L^-1 with S = L L^T (L lower triangular), so that
 * (x - mu)^T S^-1 (x - mu) = ||W (x - mu)||^2; W^T is the upper-triangular
 * Cholesky factor of the precision (scikit-learn's precisions_cholesky_).
 * Writes W (row-major, zero above the diagonal) and returns
 * log det S^-1 / 2 = sum log W_ii; returns false, writing nothing, when S
 * is not positive definite.
 */
bool whitening_matrix(int d, const double* cov, double* w, double* half_log_det_prec);

/**
 * The M-step's covariance of one component from its statistics about a
 * shift: S = sum_xx / nk - m m^T + reg I with m = sum_x / nk (both taken
 * about the shift), into cov (d x d floats, symmetrised). Returns false
 * when S is not positive definite (the caller re-seeds the component).
 */
bool covariance_from_moments(int d, double nk, const double* sum_x, const double* sum_xx,
                             double reg, float* cov);

/**
 * Per-component terms of the full-covariance log-density in the centred
 * frame (x' = x - shift): log pi_k + log N(x | mu_k, S_k) =
 * c_k - 0.5 ||W_k (x' - mu'_k)||^2.
 */
struct FullDensityTerms {
    int d = 0, k = 0;
    std::vector<float> mu;                  ///< k x d: mu'_k = mu_k - shift
    std::vector<float> w;                   ///< k x d x d: W_k (row-major, lower triangular)
    std::vector<float> c;                   ///< k: log pi_k - d/2 log(2 pi) + sum log W_k,ii
    std::vector<double> half_log_det_prec;  ///< k: sum log W_k,ii = -log det S_k / 2

    /** From covariances (k x d x d); throws Error naming a component that is not PD. */
    FullDensityTerms(int d, int k, const float* weights, const float* means, const float* covs,
                     const std::vector<double>& shift);
};

/**
 * out (n x k) = the log-densities of the centred rows xc (n x d) under
 * every component: per component, the whitened block (xc - mu'_k) W_k^T by
 * sgemm and its row norms. scratch grows to 2 n d floats.
 */
void full_log_prob_block(const FullDensityTerms& t, idx_t n, const float* xc, float* out,
                         std::vector<float>& scratch);

/**
 * sum_xx (k x d x d, double) += sum_i r_ik xc_i xc_i^T for the block's
 * responsibilities r (n x k, row-major) and centred rows xc (n x d): per
 * component (diag(r_k) xc)^T xc by sgemm. scratch grows to n d + d d floats.
 */
void full_accumulate_block(int d, int k, idx_t n, const float* r, const float* xc, double* sum_xx,
                           std::vector<float>& scratch);

}  // namespace faiss_gmm

/**
 * Full-covariance E-step kernels (issue 17): host launchers. A component's
 * log-density is c_k - 1/2 ||W_k z||^2 with z = x - shift - mu'_k and W_k
 * the lower-triangular whitening matrix (faiss_gmm/impl/FullCovariance.h),
 * computed on bf16 tensor cores (mma.sync m16n8k16) per (row tile,
 * component). Neither pass writes the N x K responsibilities; extra device
 * memory is the model (K D^2) and the sums (K D^2 doubles).
 */
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "EStepKernels.cuh"

namespace faiss_gmm {
namespace gpu {

/// Largest dimension the full-covariance kernels take (a component's W_k
/// and a row tile sit in shared memory).
constexpr int kFullMaxDim = 128;

/// Row length of the kernels' operands: d rounded up to 32.
inline int full_padded_dim(int d) { return (d + 31) / 32 * 32; }

/// The model as the kernels read it (built by the host once per E-step).
struct FullModelView {
    int d = 0;   ///< dimension (<= kFullMaxDim)
    int k = 0;   ///< components
    int dp = 0;  ///< full_padded_dim(d): row stride of w and mu
    /// bf16 parts of z and of W_k (full_parts_supported): (2, 2) takes hi hi
    /// + hi lo + lo hi (~16 bits, the fp32 class), (2, 1) two products (W_k
    /// rounded once: tf32 and bf16 classes), (1, 1) one (the fast class).
    int z_parts = 2, w_parts = 2;
    /// k x w_parts x dp x dp bf16 bits: W_k row-major (zero above the
    /// diagonal and past d), the high part then the low part.
    const uint16_t* w = nullptr;
    const float* mu = nullptr;     ///< k x dp: mu_k - shift, zero past d
    const float* c = nullptr;      ///< k: log2(e) (log pi_k - d/2 log 2 pi + sum_i log W_k,ii)
    const float* shift = nullptr;  ///< dp: the centre the rows are taken about, zero past d
};

/// The (z, W) part counts the kernels are compiled for.
inline bool full_parts_supported(int z_parts, int w_parts) {
    return (z_parts == 2 && (w_parts == 1 || w_parts == 2)) || (z_parts == 1 && w_parts == 1);
}

/// Sums about each component's own mean (z = x - shift - mu'_k), zeroed by
/// the caller; launch_full_finish moves them to the caller's frame.
struct FullStatsView {
    double* nk = nullptr;      ///< k: sum w r
    double* sum_z = nullptr;   ///< k x dp: sum w r z
    double* sum_zz = nullptr;  ///< k x dp x dp: sum w r z z^T (element (i, j) valid for j <= i)
};

/**
 * The model's full-covariance terms on the device (kernels/ModelTerms.cu),
 * in double as faiss_gmm::FullDensityTerms: per component the Cholesky
 * factor of S_k (covs: k x d x d floats), W_k = L_k^-1 rounded to float and
 * into the view's w layout (w_parts bf16 parts, zero-padded to dp), c_k =
 * log2(e) (log pi_k - d/2 log 2 pi + sum_i log W_k,ii), and bad_k = 1 where
 * S_k is not positive definite (then its w and c are not written).
 */
cudaError_t launch_full_model_terms(const float* covs, const float* weights, int d, int k, int dp,
                                    int w_parts, uint16_t* w, float* c, int32_t* bad,
                                    cudaStream_t stream);

/**
 * Pass 1 over rows x (n x d, device, row-major; weights may be null): the
 * log-sum-exp over the components (log Z), and with out.labels the
 * (bounded) argmax, as launch_assign_mma. The log-sum-exp always runs, so
 * out.log_norm_in is not read: every pass of a top-T recomputes log Z
 * bit-identically.
 * Returns the first CUDA error (cudaErrorInvalidValue for d > kFullMaxDim).
 */
cudaError_t launch_full_log_norm(const float* x, int64_t n, const float* weights,
                                 const FullModelView& m, const Pass1Out& out, cudaStream_t stream);

/**
 * Pass 2: r = w exp(l - log Z) recomputed per (row, component), and Nk,
 * sum r z, sum r z z^T added into st. With labels (n, not null) the
 * responsibilities are one-hot instead (r = w where labels_i = k; W unused:
 * the hard-assignment statistics), and log_norm is not read.
 */
cudaError_t launch_full_accumulate(const float* x, int64_t n, const float* weights,
                                   const float* log_norm, const int32_t* labels,
                                   const FullModelView& m, const FullStatsView& st, int num_sms,
                                   cudaStream_t stream);

/**
 * The sums of st moved to a frame of the caller's: out = nk (k) | sum_x
 * (k x d) | sum_x2 (k x d x d, symmetric), with x - s = z + mo_k where mo
 * (k x d doubles) = mu'_k + shift - s. Adds into out.
 */
cudaError_t launch_full_finish(const FullModelView& m, const FullStatsView& st, const double* mo,
                               double* out, cudaStream_t stream);

}  // namespace gpu
}  // namespace faiss_gmm

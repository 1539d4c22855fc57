/**
 * Fused GMM E-step kernels: host launchers. The kernels never write the
 * N x K responsibilities: extra device memory is O(N) (log Z) plus the
 * O(K * D) accumulators the caller owns.
 */
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace faiss_gmm {
namespace gpu {

/// The model folded as faiss_gmm::LogDensityTerms, in device memory:
/// log pi_k + log N(x | k) = c_k + x'.a_k - 0.5 (x'^2).b_k, x' = x - shift.
struct LogDensityView {
    int d = 0;                     ///< dimension
    int k = 0;                     ///< components
    bool spherical = true;         ///< b is k scalars (times ||x'||^2) instead of k x d
    const float* shift = nullptr;  ///< d
    const float* a = nullptr;      ///< k x d
    const float* b = nullptr;      ///< k or k x d
    const float* c = nullptr;      ///< k
};

/// Device accumulators (zeroed by the caller; kernels add into them).
struct StatsView {
    double* nk = nullptr;      ///< k: sum w r
    double* sum_x = nullptr;   ///< k x d: sum w r x'
    double* sum_x2 = nullptr;  ///< k (sum w r ||x'||^2) or k x d (sum w r x'^2)
    double* sums = nullptr;    ///< 2: sum w log Z, sum w
};

/**
 * Pass 1: log Z_i for rows x (n x d, device, row-major) into log_norm (n),
 * and sum w log Z, sum w into stats.sums. weights may be null (all ones).
 */
void launch_log_norm(const float* x, int64_t n, const float* weights, const LogDensityView& m,
                     float* log_norm, const StatsView& stats, cudaStream_t stream);

/**
 * Pass 2: recompute the log-densities, r = w exp(l - log Z), and add
 * Nk, sum r x', sum r x'^2 into stats. num_sms sizes the grid.
 */
void launch_accumulate(const float* x, int64_t n, const float* weights, const float* log_norm,
                       const LogDensityView& m, const StatsView& stats, int num_sms,
                       cudaStream_t stream);

}  // namespace gpu
}  // namespace faiss_gmm

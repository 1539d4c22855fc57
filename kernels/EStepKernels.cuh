/**
 * Fused GMM E-step kernels: host launchers. The kernels never write the
 * N x K responsibilities: extra device memory is O(N) (log Z) plus the
 * O(K * D) accumulators the caller owns.
 */
#pragma once

#include <cuda_runtime.h>
#include <faiss_gmm/gpu/MmaPlan.h>

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
 * What pass 1 writes per row. The E-step fills log_norm and sums; a hard
 * assignment fills labels (the argmax of the log-densities: the nearest
 * mean for k-means terms, the most probable component for a model's), and
 * with log_norm or top_resp also runs the log-sum-exp.
 */
struct Pass1Out {
    float* log_norm = nullptr;  ///< n: log Z_i, or null
    double* sums = nullptr;     ///< 2: += sum w log Z, sum w, or null
    int32_t* labels = nullptr;  ///< n: argmax component, or null (the E-step)
    float* top_resp = nullptr;  ///< n: that component's responsibility, or null
    /// n: the chosen component's log-density in the kernel's own units (fed
    /// back as bound_val by the next pass of a top-T), or null.
    float* top_val = nullptr;
    /// Top-T passes after the first: each row's previous pick (its top_val
    /// and label); only components after it in the order (value down,
    /// index up) compete. Null: no bound.
    const float* bound_val = nullptr;
    const int32_t* bound_arg = nullptr;  ///< n: with bound_val
    /// n: log Z_i of an earlier pass, for top_resp without the log-sum-exp.
    const float* log_norm_in = nullptr;
};

/// Whether a hard assignment writing `out` needs the log-sum-exp (log Z,
/// or a responsibility without an earlier pass's log Z).
inline bool assign_lse(const Pass1Out& out) {
    return out.log_norm || out.sums || (out.top_resp && !out.log_norm_in);
}

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

/// The model as the host holds it (GaussianMixture's arrays, device copies)
/// and the centre the kernels subtract.
struct RawModelView {
    int d = 0;                         ///< dimension
    int k = 0;                         ///< components
    bool spherical = true;             ///< variances: k (spherical) or k x d
    const float* weights = nullptr;    ///< k
    const float* means = nullptr;      ///< k x d
    const float* variances = nullptr;  ///< k or k x d
    const float* centre = nullptr;     ///< d
};

/// Where launch_model_terms writes: LogDensityView's arrays (mma = false:
/// k x d, natural-log units) or MmaModelView's (mma = true: kp x dp rows,
/// log2 units, b as -b / 2, pre-split bf16 rows when split_bf16).
struct TermsTarget {
    bool mma = false;
    bool split_bf16 = false;
    int dp = 0;  ///< mma: row stride (>= d)
    int kp = 0;  ///< mma: rows (>= k); c = -inf and a = b = 0 past k
    float* a = nullptr;
    float* b = nullptr;  ///< per component (spherical) or a row per component
    float* c = nullptr;
};

/**
 * The per-component log-density terms (faiss_gmm::LogDensityTerms, computed
 * in double) from the raw model, written for the E-step kernels.
 */
cudaError_t launch_model_terms(const RawModelView& raw, const TermsTarget& out,
                               cudaStream_t stream);

/// Largest dimension the tensor-core kernels take (whole rows live in shared
/// memory); larger d runs the fp32 SIMT kernels.
constexpr int kMmaMaxDim = 128;
/// Component rows of MmaModelView are padded to a multiple of this.
constexpr int kMmaCompPad = 128;

/// The model as the tensor-core kernels read it: log2 units, zero-padded so
/// that tiles are plain 16-byte copies. Built by the host once per E-step.
struct MmaModelView {
    int d = 0;              ///< dimension
    int k = 0;              ///< components
    int dp = 0;             ///< d rounded up to 16 (row stride of a and b)
    int kp = 0;             ///< k rounded up to kMmaCompPad
    bool spherical = true;  ///< b is bsph (per component) instead of a kp x dp tile
    /// a and b rows pre-split for 3xbf16 log-densities (required exactly when
    /// the plan's logits are Bf16x3): each row of dp words holds dp bf16 high
    /// parts, then dp bf16 low parts (v = hi + lo to ~16 bits).
    bool split_bf16 = false;
    const float* shift = nullptr;  ///< dp: the centre, zero past d
    const float* a = nullptr;      ///< kp x dp: log2(e) a_k, zero past d and past k
    const float* b = nullptr;      ///< kp x dp (diagonal): -log2(e)/2 b_k, zero-padded
    const float* c = nullptr;      ///< kp: log2(e) c_k, -inf past k
    const float* bsph = nullptr;   ///< kp (spherical): -log2(e)/2 b_k, zero past k
};

/**
 * Pass 1 on tensor cores (d <= kMmaMaxDim): as launch_log_norm. Returns the
 * first CUDA error (cudaErrorInvalidValue for d > kMmaMaxDim).
 */
cudaError_t launch_log_norm_mma(const float* x, int64_t n, const float* weights,
                                const MmaModelView& m, MmaPrecision logits, float* log_norm,
                                const StatsView& stats, cudaStream_t stream);

/**
 * Pass 2 on tensor cores (d <= kMmaMaxDim): as launch_accumulate, with the
 * logits at the precision pass 1 used. Returns the first CUDA error
 * (cudaErrorInvalidValue for d > kMmaMaxDim or a plan not compiled in).
 */
cudaError_t launch_accumulate_mma(const float* x, int64_t n, const float* weights,
                                  const float* log_norm, const MmaModelView& m, const MmaPlan& plan,
                                  const StatsView& stats, int num_sms, cudaStream_t stream);

/**
 * Pass 1 on Hopper's warpgroup tensor-core instructions, for the logits
 * wgmma_coverage lists (3xbf16, the model split as MmaModelView::split_bf16):
 * as launch_log_norm_mma.
 */
cudaError_t launch_log_norm_wgmma(const float* x, int64_t n, const float* weights,
                                  const MmaModelView& m, MmaPrecision logits, float* log_norm,
                                  const StatsView& stats, cudaStream_t stream);

/**
 * Pass 2 on Hopper's warpgroup tensor-core instructions, for the plans
 * wgmma_coverage lists (3xbf16 logits with bf16 or TF32 accumulation;
 * 3xTF32 throughout, spherical): as launch_accumulate_mma.
 */
cudaError_t launch_accumulate_wgmma(const float* x, int64_t n, const float* weights,
                                    const float* log_norm, const MmaModelView& m,
                                    const MmaPlan& plan, const StatsView& stats, int num_sms,
                                    cudaStream_t stream);

/**
 * Hard assignment of rows x (n x d, device) under the terms m: out.labels
 * (required) receives each row's argmax component, ties to the lower
 * index; out.log_norm / out.top_resp / out.sums (optional) also run the
 * log-sum-exp. The same skeletons and log-density precisions as pass 1;
 * returns the first CUDA error. _mma: d <= kMmaMaxDim, any logits; _wgmma:
 * the logits wgmma_coverage lists for pass 1; the SIMT form any d.
 */
cudaError_t launch_assign_mma(const float* x, int64_t n, const MmaModelView& m, MmaPrecision logits,
                              const Pass1Out& out, cudaStream_t stream);
/** As launch_assign_mma, on Hopper's wgmma (3xbf16 logits, split model). */
cudaError_t launch_assign_wgmma(const float* x, int64_t n, const MmaModelView& m,
                                MmaPrecision logits, const Pass1Out& out, cudaStream_t stream);
/** As launch_assign_mma, fp32 SIMT (any d). */
cudaError_t launch_assign(const float* x, int64_t n, const LogDensityView& m, const Pass1Out& out,
                          cudaStream_t stream);

}  // namespace gpu
}  // namespace faiss_gmm

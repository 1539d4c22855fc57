/**
 * Statistics of a hard assignment (one-hot responsibilities): k-means'
 * update, the GMM's initial statistics, and the k-means objective. The
 * labels come from the pass-1 skeletons with the argmax policy
 * (launch_assign_* in EStepKernels.cuh); nothing of size N x K exists.
 */
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "EStepKernels.cuh"

namespace faiss_gmm {
namespace gpu {

/// The rows and their labels for launch_hard_stats (device memory).
struct HardRowsView {
    const float* x = nullptr;         ///< n x d rows
    int64_t n = 0;                    ///< rows
    int d = 0;                        ///< dimension
    const float* w = nullptr;         ///< n weights, or null (all ones)
    const int32_t* labels = nullptr;  ///< n components in [0, k)
    const float* shift = nullptr;     ///< d: the point the sums are taken about
};

/**
 * Add, per component c, Nk = sum w, sum w (x - shift), and sum w ||x -
 * shift||^2 (spherical) or sum w (x - shift)^2 (diagonal) over the rows
 * labelled c into stats (double; nk, sum_x, sum_x2; sums unused). With
 * means (k x d) and obj non-null, obj += sum ||x - mean_label||^2
 * (k-means' objective, unweighted as FAISS's; each distance computed directly
 * in fp32).
 */
cudaError_t launch_hard_stats(const HardRowsView& rows, int k, bool spherical,
                              const StatsView& stats, const float* means, double* obj, int num_sms,
                              cudaStream_t stream);

}  // namespace gpu
}  // namespace faiss_gmm

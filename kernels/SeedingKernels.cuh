/**
 * k-means++ seeding (D^2 sampling) on the device: each row's squared
 * distance to its nearest chosen centre stays in device memory (O(N)
 * doubles); a step folds one centre in and finds the row where the running
 * sum of w d^2 reaches a draw. The host keeps the random draws and the
 * order (faiss_gmm::kmeans_plus_plus), one scalar each way per step.
 */
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace faiss_gmm {
namespace gpu {

/// Rows per block of launch_seed_update: one partial sum each.
constexpr int kSeedRowsPerBlock = 1024;

/// The rows and the distance state (device memory).
struct SeedingView {
    const float* x = nullptr;   ///< n x d rows
    int64_t n = 0;              ///< rows
    int d = 0;                  ///< dimension
    const float* w = nullptr;   ///< n weights, or null (all ones)
    double* dist = nullptr;     ///< n: squared distance to the nearest chosen centre
    double* partial = nullptr;  ///< ceil(n / kSeedRowsPerBlock): sum w dist per block of rows
};

/**
 * dist_i = ||x_i - centre||^2 (first) or min(dist_i, ||x_i - centre||^2),
 * in double from the fp32 values; then the per-block sums of w dist.
 * centre: d floats, device.
 */
cudaError_t launch_seed_update(const SeedingView& v, const float* centre, bool first,
                               cudaStream_t stream);

/** *total = the sum of the block sums (one warp, in launch_seed_find's order). */
cudaError_t launch_seed_total(const SeedingView& v, double* total, cudaStream_t stream);

/**
 * One warp scans the block sums, then the rows of the block where the
 * running sum of w dist first reaches r, in row order: *pick = that row
 * (never one of zero mass; the block's last row of mass when rounding
 * leaves its rows short of r), or -1 when no running sum reaches r.
 */
cudaError_t launch_seed_find(const SeedingView& v, double r, int64_t* pick, cudaStream_t stream);

}  // namespace gpu
}  // namespace faiss_gmm

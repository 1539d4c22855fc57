/**
 * SyntheticSource's rows made on the device: the same counter-based
 * generator (splitmix64 seed per row, wyrand draws, the 4096-level noise
 * table) and the same fp32 operations in the same order as the host's
 * SyntheticSource::read_raw, so the rows are bit-identical to the host's.
 * A billion-row pass is then not bound by the host's cores or the link.
 */
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace faiss_gmm {
namespace gpu {

/** A synthetic source's tables on the device (all device pointers). */
struct SyntheticRowsView {
    const float* centers = nullptr;  ///< k x d component centres
    const float* stddevs = nullptr;  ///< k x d standard deviations
    const double* cdf = nullptr;     ///< k normalised cumulative weights (last = 1)
    const float* noise = nullptr;    ///< 2^noise_bits noise levels
    int d = 0;                       ///< dimension
    int k = 0;                       ///< components
    int noise_bits = 12;             ///< bits of one noise draw
    uint64_t key = 0;                ///< row i's state starts at splitmix64(key + i)
    float scale = 1.f;               ///< stored value = scale * draw + offset
    float offset = 0.f;              ///< (rounded for uint8 / float16)
    int element = 0;                 ///< 0 float32, 1 uint8 (half up, clamped), 2 float16 bits
};

/// The widest row (bytes) the kernel stages in shared memory; wider rows
/// are generated on the host.
constexpr int kSyntheticMaxRowBytes = (64 << 10) - 8;

/**
 * Rows [i0, i0 + count) of the source into out (count x d elements of
 * v.element, contiguous); queued on stream. cudaErrorInvalidValue for a
 * row wider than kSyntheticMaxRowBytes or a bad view.
 */
cudaError_t launch_synthetic_rows(const SyntheticRowsView& v, int64_t i0, int64_t count, void* out,
                                  cudaStream_t stream);

}  // namespace gpu
}  // namespace faiss_gmm

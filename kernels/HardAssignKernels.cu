// Statistics of a hard assignment: a warp per row (lanes over dimensions,
// so each row's double atomics go to consecutive addresses and coalesce),
// warps grid-striding over the rows.
#include <algorithm>

#include "HardAssignKernels.cuh"

namespace faiss_gmm {
namespace gpu {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

template <bool kSpherical>
__global__ void __launch_bounds__(kThreads)
    hard_stats_kernel(HardRowsView r, int k, StatsView st, const float* __restrict__ means,
                      double* __restrict__ obj) {
    __shared__ double red[kWarps];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int64_t nwarps = int64_t(gridDim.x) * kWarps;
    double dist_sum = 0;
    for (int64_t i = int64_t(blockIdx.x) * kWarps + warp; i < r.n; i += nwarps) {
        const int c = r.labels[i];
        if (c < 0 || c >= k) continue;  // cannot happen for finite rows; never write outside
        const double wi = r.w ? double(r.w[i]) : 1.0;
        const float* row = r.x + i * r.d;
        float sq = 0, dd = 0;
        for (int j = lane; j < r.d; j += 32) {
            const float v = row[j] - r.shift[j];
            const size_t at = size_t(c) * r.d + j;
            atomicAdd(st.sum_x + at, wi * v);
            if (kSpherical)
                sq = fmaf(v, v, sq);
            else
                atomicAdd(st.sum_x2 + at, wi * double(v) * v);
            if (means) {
                const float e = row[j] - means[at];
                dd = fmaf(e, e, dd);
            }
        }
#pragma unroll
        for (int o = 16; o; o >>= 1) {
            sq += __shfl_xor_sync(0xffffffffu, sq, o);
            dd += __shfl_xor_sync(0xffffffffu, dd, o);
        }
        if (lane == 0) {
            atomicAdd(st.nk + c, wi);
            if (kSpherical) atomicAdd(st.sum_x2 + c, wi * sq);
            dist_sum += dd;  // unweighted, as FAISS's objective
        }
    }
    if (!obj) return;
    if (lane == 0) red[warp] = dist_sum;
    __syncthreads();
    if (threadIdx.x == 0) {
        double s = 0;
        for (int i = 0; i < kWarps; i++) s += red[i];
        atomicAdd(obj, s);
    }
}

}  // namespace

cudaError_t launch_hard_stats(const HardRowsView& rows, int k, bool spherical,
                              const StatsView& stats, const float* means, double* obj, int num_sms,
                              cudaStream_t stream) {
    if (rows.n == 0) return cudaSuccess;
    if (!rows.x || !rows.labels || !rows.shift || rows.d <= 0 || k <= 0)
        return cudaErrorInvalidValue;
    // Enough warps to keep the atomics in flight: 8 blocks per SM.
    const int64_t want = (rows.n + kWarps - 1) / kWarps;
    const unsigned grid = unsigned(std::min<int64_t>(want, int64_t(std::max(num_sms, 1)) * 8));
    if (spherical)
        hard_stats_kernel<true><<<grid, kThreads, 0, stream>>>(rows, k, stats, means, obj);
    else
        hard_stats_kernel<false><<<grid, kThreads, 0, stream>>>(rows, k, stats, means, obj);
    return cudaGetLastError();
}

}  // namespace gpu
}  // namespace faiss_gmm

// k-means++ steps: a warp per row for the distances (lanes over the
// dimensions, coalesced), one warp for the scan (a step reads O(N / 1024)
// block sums and one block of rows).
#include "SeedingKernels.cuh"

namespace faiss_gmm {
namespace gpu {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

__global__ void __launch_bounds__(kThreads)
    seed_update_kernel(SeedingView v, const float* __restrict__ centre, bool first) {
    __shared__ double red[kWarps];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int64_t r0 = int64_t(blockIdx.x) * kSeedRowsPerBlock;
    const int64_t r1 = min(r0 + kSeedRowsPerBlock, v.n);
    double part = 0;
    for (int64_t i = r0 + warp; i < r1; i += kWarps) {
        const float* row = v.x + i * v.d;
        double s = 0;
        for (int j = lane; j < v.d; j += 32) {
            const double e = double(row[j]) - double(centre[j]);
            s = fma(e, e, s);
        }
#pragma unroll
        for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0) {
            const double dmin = first ? s : fmin(v.dist[i], s);
            v.dist[i] = dmin;
            part += (v.w ? double(v.w[i]) : 1.0) * dmin;
        }
    }
    if (lane == 0) red[warp] = part;
    __syncthreads();
    if (threadIdx.x == 0) {
        double b = 0;
        for (int i = 0; i < kWarps; i++) b += red[i];
        v.partial[blockIdx.x] = b;
    }
}

/// Inclusive prefix sum over the warp's 32 values (lane order).
__device__ __forceinline__ double warp_scan(double x, int lane) {
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        const double y = __shfl_up_sync(0xffffffffu, x, o);
        if (lane >= o) x += y;
    }
    return x;
}

__global__ void seed_total_kernel(SeedingView v, double* total) {
    const int lane = threadIdx.x;
    const int64_t nblocks = (v.n + kSeedRowsPerBlock - 1) / kSeedRowsPerBlock;
    double run = 0;  // in seed_find_kernel's order
    for (int64_t c = 0; c < nblocks; c += 32) {
        const int64_t b = c + lane;
        run += warp_scan(b < nblocks ? v.partial[b] : 0.0, lane);
        run = __shfl_sync(0xffffffffu, run, 31);
    }
    if (lane == 0) *total = run;
}

__global__ void seed_find_kernel(SeedingView v, double r, int64_t* pick) {
    const int lane = threadIdx.x;
    const int64_t nblocks = (v.n + kSeedRowsPerBlock - 1) / kSeedRowsPerBlock;
    // The block sums, 32 at a time: the first block whose running sum reaches r.
    double run = 0, before = 0;
    int64_t block = -1;
    for (int64_t c = 0; c < nblocks && block < 0; c += 32) {
        const int64_t b = c + lane;
        const double x = b < nblocks ? v.partial[b] : 0.0;
        const double inc = run + warp_scan(x, lane);
        const unsigned hit = __ballot_sync(0xffffffffu, b < nblocks && x > 0 && inc >= r);
        if (block < 0 && hit) {
            const int l = __ffs(hit) - 1;
            block = c + l;
            before = __shfl_sync(0xffffffffu, inc - x, l);
        }
        run = __shfl_sync(0xffffffffu, inc, 31);
    }
    if (block < 0) {
        if (lane == 0) *pick = -1;
        return;
    }
    // Its rows in order; past its end by rounding, its last row of nonzero mass.
    const int64_t r0 = block * kSeedRowsPerBlock;
    const int64_t r1 = min(r0 + kSeedRowsPerBlock, v.n);
    int64_t found = -1, last = -1;
    run = before;
    for (int64_t c = r0; c < r1 && found < 0; c += 32) {
        const int64_t i = c + lane;
        const double x = i < r1 ? (v.w ? double(v.w[i]) : 1.0) * v.dist[i] : 0.0;
        const double inc = run + warp_scan(x, lane);
        const unsigned hit = __ballot_sync(0xffffffffu, x > 0 && inc >= r);
        const unsigned mass = __ballot_sync(0xffffffffu, x > 0);
        if (hit) found = c + __ffs(hit) - 1;
        if (mass) last = c + 31 - __clz(mass);
        run = __shfl_sync(0xffffffffu, inc, 31);
    }
    if (lane == 0) *pick = found >= 0 ? found : last;
}

}  // namespace

cudaError_t launch_seed_update(const SeedingView& v, const float* centre, bool first,
                               cudaStream_t stream) {
    if (v.n <= 0) return cudaSuccess;
    const unsigned blocks = unsigned((v.n + kSeedRowsPerBlock - 1) / kSeedRowsPerBlock);
    seed_update_kernel<<<blocks, kThreads, 0, stream>>>(v, centre, first);
    return cudaGetLastError();
}

cudaError_t launch_seed_total(const SeedingView& v, double* total, cudaStream_t stream) {
    seed_total_kernel<<<1, 32, 0, stream>>>(v, total);
    return cudaGetLastError();
}

cudaError_t launch_seed_find(const SeedingView& v, double r, int64_t* pick, cudaStream_t stream) {
    seed_find_kernel<<<1, 32, 0, stream>>>(v, r, pick);
    return cudaGetLastError();
}

}  // namespace gpu
}  // namespace faiss_gmm
